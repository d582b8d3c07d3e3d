#!/usr/bin/env bash
# Triggers per second to a local Sockudo: this crate vs the official Node library
# (`pusher` on npm), sequential and with 64 in flight, plus the cost of signing
# one request. Starts Sockudo through .ci/sockudo.sh if nothing answers yet.
#
#   bash pusher-client/bench/run.sh
#
# Tunables: BENCH_SEQUENTIAL (5000), BENCH_CONCURRENT (20000), BENCH_IN_FLIGHT (64),
# and the SOCKUDO_* variables of .ci/sockudo.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

bash "$root/.ci/sockudo.sh"
if [ ! -d "$here/../tests/js/node_modules/pusher" ]; then
  (cd "$here/../tests/js" && npm ci --no-audit --no-fund)
fi

out=$(mktemp)
echo "== pusher-client (Rust) =="
(cd "$root" && cargo bench -p pusher-client --bench trigger 2>/dev/null) | tee -a "$out"
echo "== pusher (Node $(node --version)) =="
node "$here/node_trigger.js" | tee -a "$out"

value() { awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$out"; }
rs=$(value rust_sequential_per_sec); rc=$(value rust_concurrent_per_sec)
ns=$(value node_sequential_per_sec); nc=$(value node_concurrent_per_sec)
sign=$(value sign_request_ns)
echo "== summary =="
awk -v rs="$rs" -v rc="$rc" -v ns="$ns" -v nc="$nc" -v sign="$sign" 'BEGIN {
  printf "sequential:    rust %6d/s   node %6d/s   ratio %.2fx\n", rs, ns, rs / ns
  printf "64 in flight:  rust %6d/s   node %6d/s   ratio %.2fx\n", rc, nc, rc / nc
  printf "signing one request: %d ns\n", sign
}'
rm -f "$out"
