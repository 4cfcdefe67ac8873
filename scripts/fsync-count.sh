#!/usr/bin/env bash
# Syncs per operation: runs `coffre server` (embedded defaults, fresh data directory) under
# strace, counting fsync and fdatasync calls and writes to files opened O_DSYNC (the audit
# segment: each such write returns once on stable storage), drives it with the load benchmark
# (benches/load.rs), and prints for each phase the operations, the syncs inside it and their
# ratio. With one client (--clients 1) a sync serves one request: the count per operation as
# designed; with the benchmark's clients (the default) group commits share syncs.
#
#   scripts/fsync-count.sh [--secs 5] [--sizes 4096,1048576,67108864] [--clients N]
#       [-- extra server arguments, e.g. --inline-max 0 or --audit off]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
secs=5 sizes=4096,1048576,67108864 clients=""
while [ $# -gt 0 ]; do
  case "$1" in
    --secs) secs=$2; shift 2 ;;
    --sizes) sizes=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done
command -v strace >/dev/null || bash scripts/deps.sh strace
cargo build --release --bin coffre >/dev/null 2>&1 || cargo build --release --bin coffre
cargo bench --no-run --bench load >/dev/null 2>&1 || cargo bench --no-run --bench load
work=$(mktemp -d)
server=""
cleanup() {
  if [ -n "$server" ]; then
    pkill -f "coffre server --data $work/data" || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
COFFRE_ROOT_ACCESS_KEY=SYNCKEY COFFRE_ROOT_SECRET_KEY=sync-secret RUST_LOG=warn \
  strace -f -qq -ttt -e trace=fsync,fdatasync,openat,close,pwrite64 -o "$work/strace" \
  "$CARGO_TARGET_DIR/release/coffre" server --data "$work/data" --listen 127.0.0.1:0 \
  --admin-listen 127.0.0.1:0 "$@" >"$work/banner" &
server=$!
for _ in $(seq 300); do
  grep -q "Coffre S3 endpoint" "$work/banner" 2>/dev/null && break
  sleep 0.1
done
endpoint=$(sed -n 's/^Coffre S3 endpoint: \(http:[^ ]*\).*/\1/p' "$work/banner")
[ -n "$endpoint" ] || { echo "the server did not start" >&2; exit 1; }
env COFFRE_BENCH_ENDPOINT="$endpoint" COFFRE_BENCH_ACCESS_KEY=SYNCKEY COFFRE_BENCH_SECRET_KEY=sync-secret \
  COFFRE_BENCH_SECS="$secs" COFFRE_BENCH_SIZES="$sizes" COFFRE_BENCH_MARKS="$work/marks" \
  ${clients:+COFFRE_BENCH_CLIENTS="$clients"} cargo bench --bench load 2>/dev/null | grep -E '^(PUT|GET) ' >&2
# Stop the server itself (strace, its parent, exits with it).
pkill -f "coffre server --data $work/data" || true
wait "$server" 2>/dev/null || true
server=""
echo "$(date -u +%F) $(nproc) cores; server: coffre server $*; syncs counted by strace (which slows every sync)"
python3 - "$work/marks" "$work/strace" <<'PY'
import sys, re
marks = [l.split() for l in open(sys.argv[1])]
times = []
dsync = set()  # descriptors of files opened O_DSYNC
opening = set()  # threads inside an O_DSYNC openat that strace printed unfinished
for line in open(sys.argv[2]):
    # With several threads strace splits a call another thread interrupts into an
    # "<unfinished ...>" line and a "<... CALL resumed>" line: a call counts where it starts.
    m = re.match(r"(\d+)\s+(\d+\.\d+)\s+(.*)", line)
    if not m:
        continue
    tid, t, rest = m.group(1), float(m.group(2)), m.group(3)
    ret = re.search(r"\)\s+=\s+(-?\d+)", rest)
    resumed = re.match(r"<\.\.\. (\w+) resumed>", rest)
    if resumed:
        if resumed.group(1) == "openat" and tid in opening and ret and int(ret.group(1)) >= 0:
            dsync.add(int(ret.group(1)))
        opening.discard(tid)
        continue
    call = re.match(r"(\w+)\((\d*)", rest)
    if not call:
        continue
    name, first = call.group(1), call.group(2)
    if name in ("fsync", "fdatasync"):
        times.append(t)
    elif name == "openat" and "O_DSYNC" in rest:
        if ret:
            if int(ret.group(1)) >= 0:
                dsync.add(int(ret.group(1)))
        else:
            opening.add(tid)
    elif name == "close" and first:
        dsync.discard(int(first))
    elif name == "pwrite64" and first and int(first) in dsync:
        times.append(t)
print(f"{'phase':<24}{'ops':>8}{'syncs':>9}{'syncs/op':>10}")
for name, size, clients, start, end, ops in marks:
    size, start, end, ops = int(size), float(start), float(end), int(ops)
    n = sum(1 for t in times if start <= t <= end)
    human = f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"
    print(f"{name + ' ' + human + ' x' + clients:<24}{ops:>8}{n:>9}{n / max(ops, 1):>10.2f}")
PY
