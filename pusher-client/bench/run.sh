#!/usr/bin/env bash
# Triggers per second to a local Sockudo: this crate vs the official Node library
# (`pusher` on npm), sequential and with 64 in flight, plus the cost of signing
# one request. Starts Sockudo through .ci/sockudo.sh if nothing answers yet.
#
#   bash pusher-client/bench/run.sh
#
# The crate is measured twice: over HTTP/1.1 (what the Node library speaks) and
# over HTTP/2 with prior knowledge (h2c). Sockudo answers every HTTP/1.1 API
# request with `Connection: close`, so over HTTP/1.1 both libraries open one TCP
# connection per trigger; over h2c one connection carries all of them.
#
# Tunables: BENCH_SEQUENTIAL (5000), BENCH_CONCURRENT (20000), BENCH_IN_FLIGHT (64),
# BENCH_ROUNDS (1; the median of the rounds is reported), and the SOCKUDO_*
# variables of .ci/sockudo.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
rounds=${BENCH_ROUNDS:-1}

bash "$root/.ci/sockudo.sh"
if [ ! -d "$here/../tests/js/node_modules/pusher" ]; then
  (cd "$here/../tests/js" && npm ci --no-audit --no-fund)
fi
(cd "$root" && cargo bench -p pusher-client --bench trigger --no-run 2>/dev/null)

out=$(mktemp)
for round in $(seq 1 "$rounds"); do
  echo "== round $round: pusher-client (Rust), HTTP/1.1 =="
  (cd "$root" && BENCH_H2C= cargo bench -p pusher-client --bench trigger 2>/dev/null) | tee -a "$out"
  echo "== round $round: pusher (Node $(node --version)), HTTP/1.1 =="
  node "$here/node_trigger.js" | tee -a "$out"
  echo "== round $round: pusher-client (Rust), HTTP/2 prior knowledge =="
  (cd "$root" && BENCH_H2C=1 cargo bench -p pusher-client --bench trigger 2>/dev/null) \
    | grep -v sign_request | tee -a "$out"
done

median() {
  awk -v k="$1" '$1 == "RESULT" && $2 == k { print $3 }' "$out" | sort -n \
    | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else print v[int((NR + 1) / 2)] }'
}
rs=$(median rust_sequential_per_sec); rc=$(median rust_concurrent_per_sec)
hs=$(median rust_h2c_sequential_per_sec); hc=$(median rust_h2c_concurrent_per_sec)
ns=$(median node_sequential_per_sec); nc=$(median node_concurrent_per_sec)
sign=$(median sign_request_ns)
echo "== summary (median of $rounds round(s), triggers per second) =="
awk -v rs="$rs" -v rc="$rc" -v hs="$hs" -v hc="$hc" -v ns="$ns" -v nc="$nc" -v sign="$sign" 'BEGIN {
  printf "                node      rust http/1.1          rust h2c\n"
  printf "sequential    %6d    %6d  (%.2fx)     %6d  (%.2fx)\n", ns, rs, rs / ns, hs, hs / ns
  printf "64 in flight  %6d    %6d  (%.2fx)     %6d  (%.2fx)\n", nc, rc, rc / nc, hc, hc / nc
  printf "signing one request: %d ns\n", sign
}'
rm -f "$out"
