#!/usr/bin/env bash
# End-to-end benchmark of the signup server (HTTP -> workflow -> Pusher ->
# pusher-js): builds signup-server in release, starts it on a fresh SQLite file
# with no sleep and no failures, runs e2e.mjs against it, stops the server.
#
#   bash examples/bench/run.sh [--signups 5000] [--clients 64]
#
# Uses the embedded Pusher server unless PUSHER_URL is set (for Sockudo, also
# set PUSHER_HTTP2_PRIOR_KNOWLEDGE=true).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"

cargo build --release -q -p examples --bin signup-server
target_dir=$(cargo metadata --format-version 1 --no-deps | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
server_bin="$target_dir/release/signup-server"

harness=examples/tests/browser
if [ ! -d "$harness/node_modules/pusher-js" ]; then
  (cd "$harness" && npm ci --no-audit --no-fund --silent)
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

(
  cd "$work"
  SIGNUP_ADDR=127.0.0.1:0 LOCAL_PUSHER_ADDR=127.0.0.1:0 \
    WORKFLOW_DATABASE_URL="sqlite://$work/bench.db" \
    SIGNUP_SLEEP=0s SIGNUP_FAILURE_RATE=0 RUST_LOG="${RUST_LOG:-warn}" \
    exec "$server_bin"
) >"$work/stdout" 2>"$work/stderr" &
server_pid=$!

url=
for _ in $(seq 1 100); do
  url=$(sed -n 's#^signup server: \(http://[^ ]*\).*#\1#p' "$work/stdout")
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "run.sh: signup-server exited:" >&2
    cat "$work/stdout" "$work/stderr" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "run.sh: signup-server did not start within 10 s" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi
grep '^pusher:\|^store:' "$work/stdout"

node examples/bench/e2e.mjs --url "$url" "$@"
