#!/usr/bin/env bash
# Side by side, in one run: the same S3 load (benches/load.rs, the AWS SDK for Rust: 4 KiB
# with 16 clients, 1 MiB with 8, 64 MiB with 4; PUT then GET of what was written) against
# Coffre's embedded default (started here, fresh data directory: 4+2, encryption, fsync,
# audit log) and, with --peer, against another S3 server that you started (Garage, MinIO;
# docs/performance.md says how to build Garage from its public repository). Prints each
# side's ops/s, p50 and p99 and Coffre's ratio.
#
#   scripts/bench-compare.sh [--secs 10] [--sizes 4096,1048576,67108864] [--dir DIR]
#       [--peer ENDPOINT ACCESS_KEY SECRET_KEY [--peer-region garage] [--peer-name garage]]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
secs=10 sizes=4096,1048576,67108864 dir=${TMPDIR:-/tmp}
peer="" peer_access="" peer_secret="" peer_region=fr-par peer_name=peer
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) secs=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    --peer) peer=$2 peer_access=$3 peer_secret=$4; shift 4 ;;
    --peer-region) peer_region=$2; shift 2 ;;
    --peer-name) peer_name=$2; shift 2 ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done
cargo bench --no-run --bench load >/dev/null 2>&1 || cargo bench --no-run --bench load
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
run() { # name, then environment for the load
  local name=$1; shift
  echo "== $name" >&2
  env COFFRE_BENCH_SECS="$secs" COFFRE_BENCH_SIZES="$sizes" COFFRE_BENCH_DIR="$dir" "$@" \
    cargo bench --bench load 2>/dev/null | tee /dev/stderr | grep -E '^(PUT|GET) ' >"$out/$name"
}
run coffre
[ -n "$peer" ] && run "$peer_name" COFFRE_BENCH_ENDPOINT="$peer" COFFRE_BENCH_ACCESS_KEY="$peer_access" \
  COFFRE_BENCH_SECRET_KEY="$peer_secret" COFFRE_BENCH_REGION="$peer_region"

echo
echo "$(date -u +%F) $(nproc) cores, $(free -g | awk '/^Mem/ {print $2}') GiB, $(uname -r); $secs s per phase"
python3 - "$out" coffre ${peer:+"$peer_name"} <<'PY'
import sys
out, names = sys.argv[1], sys.argv[2:]
def parse(name):
    rows = {}
    for line in open(f"{out}/{name}"):
        f = line.split()
        # PUT 4 KiB x16 4.7 MiB/s 1201.2 ops/s p50 12.9 ms p99 23.3 ms (12021 ops)
        key = f"{f[0]} {f[1]} {f[2]} {f[3]}"
        rows[key] = (float(f[6]), float(f[9]), float(f[12]))
    return rows
data = {n: parse(n) for n in names}
w = max(14, *(len(n) + 7 for n in names))
head = f"{'phase':<18}" + "".join(f"  {n + ' ops/s':>{w}}{'p50 ms':>8}{'p99 ms':>8}" for n in names)
if len(names) == 2:
    head += f"{'ops ratio':>11}{'p99 ratio':>11}"
print(head)
for key in data["coffre"]:
    line = f"{key:<18}"
    for n in names:
        ops, p50, p99 = data[n].get(key, (0, 0, 0))
        line += f"  {ops:>{w}.1f}{p50:>8.1f}{p99:>8.1f}"
    if len(names) == 2 and key in data[names[1]] and data[names[1]][key][0] > 0:
        (o1, _, q1), (o2, _, q2) = data["coffre"][key], data[names[1]][key]
        line += f"{o1 / o2:>10.2f}x{q1 / q2 if q2 else 0:>10.2f}x"
    print(line)
PY
