#!/usr/bin/env bash
# What a Prometheus scrape of /metrics costs on a store holding many objects, idle and under
# load: starts the embedded server (six shard stores), or with COFFRE_SCRAPE_NODES=N a gateway
# in front of N `coffre node`s (mutual TLS, 4+2), fills it with the load benchmark's PUT phase
# (4 KiB objects: COFFRE_SCRAPE_FILL_SECS seconds, or COFFRE_SCRAPE_OBJECTS objects), then
# times 50 scrapes idle and 50 during a PUT load.
# Usage: scripts/scrape-cost.sh  (docs/performance.md, "What a metrics scrape costs")
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
cargo build --release --bins -q
cargo bench --no-run --bench load -q 2>/dev/null
bin="$CARGO_TARGET_DIR/release/coffre"
work=$(mktemp -d -p "${COFFRE_BENCH_DIR:-/tmp}")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(free_port); admin=$(free_port); token=scrape-admin-token-0123456789abcdef0123
config=()
nodes=${COFFRE_SCRAPE_NODES:-0}
if [ "$nodes" -gt 0 ]; then
  "$bin" admin ca init --out "$work/ca" >/dev/null
  entries=""
  for n in $(seq "$nodes"); do
    "$bin" admin node-identity --ca "$work/ca" --id "node-$n" --country FR --site "site-$(( n % 3 ))" --out "$work/id-$n" >/dev/null
    port=$(free_port)
    RUST_LOG=error "$bin" node --data "$work/node-$n" --listen "127.0.0.1:$port" --identity "$work/id-$n" >/dev/null 2>&1 &
    pids+=($!)
    entries+="[[nodes]]\naddress = \"https://127.0.0.1:$port\"\n"
  done
  "$bin" admin node-identity --ca "$work/ca" --id gw-1 --country FR --site site-1 --role gateway --out "$work/gw" >/dev/null
  echo -e "[cluster]\nca = \"$work/ca\"\nidentity = \"$work/gw\"\n$entries" > "$work/gw.toml"
  config=(--config "$work/gw.toml")
  sleep 0.5
fi
COFFRE_ROOT_ACCESS_KEY=BENCHKEY COFFRE_ROOT_SECRET_KEY=bench-secret-key-0123 COFFRE_ADMIN_TOKEN=$token RUST_LOG=error \
  "$bin" server --data "$work/data" --listen "127.0.0.1:$s3" --admin-listen "127.0.0.1:$admin" "${config[@]}" >/dev/null &
pids+=($!)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$s3/health" >/dev/null && break; sleep 0.1; done
bench() {
  COFFRE_BENCH_MAX_OPS="${2:-100000}" COFFRE_BENCH_ONLY="${3:-}" COFFRE_BENCH_ENDPOINT="http://127.0.0.1:$s3" COFFRE_BENCH_ACCESS_KEY=BENCHKEY COFFRE_BENCH_SECRET_KEY=bench-secret-key-0123 \
    COFFRE_BENCH_SIZES=4096 COFFRE_BENCH_SECS="$1" COFFRE_BENCH_DIR="$work" cargo bench --bench load 2>/dev/null | grep -E '^(PUT|GET)' || true
}
# The server's own time for scrapes so far (its admin call histogram): "sum count".
served() {
  curl -s -H "authorization: Bearer $token" "http://127.0.0.1:$admin/metrics" |
    awk '/^coffre_admin_request_duration_seconds_sum\{operation="MetricsGet"/ {s=$2} /^coffre_admin_request_duration_seconds_count\{operation="MetricsGet"/ {c=$2} END {print s+0, c+0}'
}
scrapes() {
  read -r sum0 count0 < <(served)
  for _ in $(seq 50); do
    curl -s -o /dev/null -w '%{time_total}\n' -H "authorization: Bearer $token" "http://127.0.0.1:$admin/metrics"
  done | sort -n | awk '{a[NR]=$1} END {printf "scrape: p50 %.2f ms, p90 %.2f ms, max %.2f ms (%d scrapes, seen by curl)", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000, NR}'
  read -r sum1 count1 < <(served)
  awk -v s0="$sum0" -v c0="$count0" -v s1="$sum1" -v c1="$count1" 'BEGIN {printf "; in the server: %.2f ms on average\n", (s1 - s0) / (c1 - c0) * 1000}'
}
if [ -n "${COFFRE_SCRAPE_OBJECTS:-}" ]; then
  start=$(date +%s)
  bench 86400 "$COFFRE_SCRAPE_OBJECTS" PUT
  echo "filled in $(( $(date +%s) - start )) s"
else
  bench "${COFFRE_SCRAPE_FILL_SECS:-60}"
fi
objects=$(curl -s -H "authorization: Bearer $token" "http://127.0.0.1:$admin/metrics" | awk '/^coffre_tenant_objects\{tenant="default"\}/ {print $2}')
bytes=$(curl -s -H "authorization: Bearer $token" "http://127.0.0.1:$admin/metrics" | wc -c)
echo "objects stored: $objects over ${nodes:-0} nodes (0: the embedded stores); scrape size: $bytes bytes"
echo -n "idle   "; scrapes
bench 30 >/dev/null &
load=$!
sleep 8
echo -n "loaded "; scrapes
wait $load
