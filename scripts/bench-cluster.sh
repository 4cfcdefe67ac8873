#!/usr/bin/env bash
# Load benchmark of a cluster on this machine: six `coffre node`s (3 sites, FR) behind a gateway,
# all on loopback (mutual TLS, HTTP/2 between gateway and nodes), driven by benches/load.rs.
# Usage: scripts/bench-cluster.sh [SECONDS_PER_PHASE]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
cargo build --release --bins -q
bin="$CARGO_TARGET_DIR/release/coffre"
work=$(mktemp -d -p "${COFFRE_BENCH_DIR:-/tmp}")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin" admin ca init --out "$work/ca" >/dev/null
echo -e "[cluster]\nca = \"$work/ca\"\nidentity = \"$work/gw\"" > "$work/gw.toml"
"$bin" admin node-identity --ca "$work/ca" --id gw --country FR --site s1 --role gateway --out "$work/gw" >/dev/null
for n in 1 2 3 4 5 6; do
  "$bin" admin node-identity --ca "$work/ca" --id "node-$n" --country FR --site "site-$(( (n + 1) / 2 ))" --out "$work/id-$n" >/dev/null
  port=$(free_port)
  "$bin" node --data "$work/data-$n" --listen "127.0.0.1:$port" --identity "$work/id-$n" >/dev/null 2>&1 &
  pids+=($!)
  echo -e "[[nodes]]\naddress = \"https://127.0.0.1:$port\"" >> "$work/gw.toml"
done
echo -e "[regions.fr-par]\ncountries = [\"FR\"]\nfailure_domain = \"site\"" >> "$work/gw.toml"
sleep 0.5
s3=$(free_port)
COFFRE_ROOT_ACCESS_KEY=BENCHKEY COFFRE_ROOT_SECRET_KEY=bench-secret RUST_LOG=warn \
  "$bin" server --data "$work/gw-data" --listen "127.0.0.1:$s3" --admin-listen 127.0.0.1:0 --config "$work/gw.toml" >/dev/null &
pids+=($!)
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$s3/health" >/dev/null && break; sleep 0.1; done
COFFRE_BENCH_ENDPOINT="http://127.0.0.1:$s3" COFFRE_BENCH_SECS="${1:-8}" COFFRE_BENCH_DIR="$work" \
  cargo bench --bench load 2>/dev/null | grep -E '^(PUT|GET|coffre)'
