#!/usr/bin/env bash
# What a bucket-wide proof of possession costs: a gateway in front of COFFRE_PROOF_NODES (6)
# `coffre node`s (mutual TLS, 4+2, one country), filled by the load benchmark's PUT phase with
# COFFRE_PROOF_OBJECTS (10000) objects of 4 KiB; then `coffre admin audit residency bench
# --proof` (every object when there are at most 10 000, and samples of 10 000 and 1 000) and
# `coffre verify-placement` on each file,
# timed, with the file's size. Usage: scripts/proof-cost.sh (docs/performance.md).
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
s3=$(free_port); admin=$(free_port); token=proof-admin-token-0123456789abcdef0123
objects=${COFFRE_PROOF_OBJECTS:-10000}
"$bin" admin ca init --out "$work/ca" >/dev/null
entries=""
for n in $(seq "${COFFRE_PROOF_NODES:-6}"); do
  "$bin" admin node-identity --ca "$work/ca" --id "node-$n" --country FR --site "site-$(( n % 3 ))" --out "$work/id-$n" >/dev/null
  port=$(free_port)
  RUST_LOG=error "$bin" node --data "$work/node-$n" --listen "127.0.0.1:$port" --identity "$work/id-$n" >/dev/null 2>&1 &
  pids+=($!)
  entries+="[[nodes]]\naddress = \"https://127.0.0.1:$port\"\n"
done
"$bin" admin node-identity --ca "$work/ca" --id gw-1 --country FR --site site-1 --role gateway --out "$work/gw" >/dev/null
echo -e "[cluster]\nca = \"$work/ca\"\nidentity = \"$work/gw\"\n$entries" > "$work/gw.toml"
sleep 0.5
COFFRE_ROOT_ACCESS_KEY=BENCHKEY COFFRE_ROOT_SECRET_KEY=bench-secret-key-0123 COFFRE_ADMIN_TOKEN=$token RUST_LOG=error \
  "$bin" server --data "$work/data" --listen "127.0.0.1:$s3" --admin-listen "127.0.0.1:$admin" --config "$work/gw.toml" >/dev/null &
pids+=($!)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$s3/health" >/dev/null && break; sleep 0.1; done
start=$(date +%s)
COFFRE_BENCH_MAX_OPS="$objects" COFFRE_BENCH_ONLY=PUT COFFRE_BENCH_ENDPOINT="http://127.0.0.1:$s3" \
  COFFRE_BENCH_ACCESS_KEY=BENCHKEY COFFRE_BENCH_SECRET_KEY=bench-secret-key-0123 COFFRE_BENCH_SIZES=4096 \
  COFFRE_BENCH_SECS=86400 COFFRE_BENCH_DIR="$work" cargo bench --bench load 2>/dev/null | grep -E '^PUT' || true
echo "filled in $(( $(date +%s) - start )) s"
export COFFRE_ADMIN_ENDPOINT="http://127.0.0.1:$admin" COFFRE_ADMIN_TOKEN=$token
measure() {
  local name=$1; shift
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$bin" admin audit residency bench --proof "$@" > "$work/$name.json"
  t1=$(date +%s.%N)
  "$bin" verify-placement "$work/$name.json" --ca "$work/ca/ca.pem" --json > "$work/$name.verdict"
  t2=$(date +%s.%N)
  python3 - "$work/$name.json" "$work/$name.verdict" "$t0" "$t1" "$t2" "$name" <<'PY'
import json, os, sys
proof, verdict, t0, t1, t2, name = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:6]), sys.argv[6]
p, v = json.load(open(proof)), json.load(open(verdict))
shards = sum(len(part["shards"]) for o in p["objects"] for part in o["parts"])
print(f"{name}: {len(p['objects'])} of {p['total_objects']} objects, {shards} shards, "
      f"{len(p['attestations'])} node answers; proof {t1 - t0:.2f} s, "
      f"{os.path.getsize(proof) / 1e6:.1f} MB; verify {t2 - t1:.2f} s, ok={v['ok']}")
PY
}
[ "$objects" -le 10000 ] && measure all
measure sample-10000 --sample 10000
measure sample-1000 --sample 1000
