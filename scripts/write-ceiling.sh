#!/usr/bin/env bash
# The machine's write ceiling for large objects: the disk's sequential, fsynced write bandwidth
# (16 MiB writes, each followed by fdatasync, as a node appends a large shard and syncs it),
# measured where the data directory lives, divided by 1.5 (a 4+2 layout writes 1.5 bytes for
# each byte of object). Issue 15 asks 64 MiB PUTs to reach 80 % of it. Prints the median of
# three runs.
#
#   scripts/write-ceiling.sh [--dir DIR] [--mib 2048] [--overhead 1.5]
set -euo pipefail
dir=${TMPDIR:-/tmp} mib=2048 overhead=1.5
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --mib) mib=$2; shift 2 ;;
    --overhead) overhead=$2; shift 2 ;;
    *) echo "unknown argument: $1 (see the head of $0)" >&2; exit 2 ;;
  esac
done
python3 - "$dir" "$mib" "$overhead" <<'EOF'
import os, statistics, sys, time
where, mib, overhead = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
chunk = os.urandom(16 << 20)  # random: a disk that compresses or dedupes zeros would flatter
runs = []
for run in range(3):
    path = os.path.join(where, f".write-ceiling-{os.getpid()}-{run}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        start = time.monotonic()
        for _ in range(max(1, mib // 16)):
            os.write(fd, chunk)
            os.fdatasync(fd)
        secs = time.monotonic() - start
    finally:
        os.close(fd)
        os.unlink(path)
    runs.append(max(1, mib // 16) * 16 / secs)
    print(f"run {run + 1}: {runs[-1]:.0f} MiB/s written and synced")
bw = statistics.median(runs)
print(f"disk: {bw:.0f} MiB/s (median); ceiling for a {overhead}x layout: {bw / overhead:.0f} MiB/s of objects; 80 %: {0.8 * bw / overhead:.0f} MiB/s")
EOF
