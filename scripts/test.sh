#!/usr/bin/env bash
# Runs the whole test suite, on a fresh machine too: installs and starts what
# the tests need (a local Sockudo server, headless Chromium, pusher-js and
# playwright-core from npm), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

apt_install() {
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

# Headless Chromium for the browser tests, Node.js for pusher-js.
command -v chromium >/dev/null 2>&1 || apt_install chromium
command -v node >/dev/null 2>&1 || apt_install nodejs npm

# A Pusher-compatible server for the integration tests.
bash .ci/sockudo.sh

# Unmodified pusher-js (and the official Node library, playwright-core) from npm.
for dir in pusher-client/tests/js examples/web examples/tests/browser; do
  if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
done

cargo test --workspace --all-features "$@"
