#!/usr/bin/env bash
# Load benchmark of a cluster on this machine: six `coffre node`s (3 sites, FR) behind a gateway,
# all on loopback (mutual TLS, HTTP/2 between gateway and nodes), driven by benches/load.rs.
# With --replicas 3: three gateways, each a metadata replica (Raft), the load sent to the first.
# Usage: scripts/bench-cluster.sh [--replicas N] [SECONDS_PER_PHASE]
set -euo pipefail
cd "$(dirname "$0")/.."
replicas=1
if [ "${1:-}" = "--replicas" ]; then replicas=$2; shift 2; fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
cargo build --release --bins -q
bin="$CARGO_TARGET_DIR/release/coffre"
work=$(mktemp -d -p "${COFFRE_BENCH_DIR:-/tmp}")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
"$bin" admin ca init --out "$work/ca" >/dev/null
nodes=""
for n in 1 2 3 4 5 6; do
  "$bin" admin node-identity --ca "$work/ca" --id "node-$n" --country FR --site "site-$(( (n + 1) / 2 ))" --out "$work/id-$n" >/dev/null
  port=$(free_port)
  "$bin" node --data "$work/data-$n" --listen "127.0.0.1:$port" --identity "$work/id-$n" >/dev/null 2>&1 &
  pids+=($!)
  nodes+="[[nodes]]\naddress = \"https://127.0.0.1:$port\"\n"
done
# Every gateway of a replica set shares the master key.
export COFFRE_MASTER_KEY=$(python3 -c 'import os; print(os.urandom(32).hex())')
rafts=(); list=""
for g in $(seq "$replicas"); do
  rafts+=("127.0.0.1:$(free_port)")
  list+="${list:+, }\"https://${rafts[-1]}\""
done
s3ports=()
for g in $(seq "$replicas"); do
  "$bin" admin node-identity --ca "$work/ca" --id "gw-$g" --country FR --site "site-$(( (g - 1) % 3 + 1 ))" --role gateway --out "$work/gw-$g" >/dev/null
  cfg="$work/gw-$g.toml"
  echo -e "[cluster]\nca = \"$work/ca\"\nidentity = \"$work/gw-$g\"\n$nodes" > "$cfg"
  echo -e "[regions.fr-par]\ncountries = [\"FR\"]\nfailure_domain = \"site\"" >> "$cfg"
  if [ "$replicas" -gt 1 ]; then
    echo -e "[meta]\nlisten = \"${rafts[$((g - 1))]}\"\nreplicas = [$list]" >> "$cfg"
  fi
  s3ports+=("$(free_port)")
done
sleep 0.5
for g in $(seq "$replicas"); do
  COFFRE_ROOT_ACCESS_KEY=BENCHKEY COFFRE_ROOT_SECRET_KEY=bench-secret COFFRE_ADMIN_TOKEN=bench-admin-token-0123456789abcdef0123 RUST_LOG=error \
    "$bin" server --data "$work/gw-data-$g" --listen "127.0.0.1:${s3ports[$((g - 1))]}" --admin-listen 127.0.0.1:0 --config "$work/gw-$g.toml" >/dev/null &
  pids+=($!)
done
s3=${s3ports[0]}
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$s3/health" >/dev/null && break; sleep 0.1; done
COFFRE_BENCH_ENDPOINT="http://127.0.0.1:$s3" COFFRE_BENCH_SECS="${1:-8}" COFFRE_BENCH_DIR="$work" \
  cargo bench --bench load 2>/dev/null | grep -E '^(PUT|GET|coffre)'
