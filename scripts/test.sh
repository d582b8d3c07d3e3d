#!/usr/bin/env bash
# Runs the whole test suite, on a fresh machine too: installs and starts what
# the tests need (a local Sockudo server, pusher-js from npm), then runs every
# test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# A Pusher-compatible server for pusher-client's integration tests.
bash .ci/sockudo.sh

# Unmodified pusher-js (and the official Node library) from npm.
for dir in pusher-client/tests/js; do
  if [ -f "$dir/package.json" ] && [ ! -d "$dir/node_modules" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --silent)
  fi
done

cargo test --workspace --all-features "$@"
