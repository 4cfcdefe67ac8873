#!/usr/bin/env bash
# Time to redundancy: how fast a cluster returns to full redundancy after losing a node for good.
# Starts seven `coffre node`s on loopback (4+2 needs a seventh node for a lost one's shards to go
# somewhere: the six others of a stripe's nodes hold one each already) behind a gateway, writes
# GIB gibibytes, kills one node, declares it dead (`coffre admin nodes remove --dead --wait`),
# and prints the time until every stripe is back at k+m, the repair throughput (bytes of shards
# rebuilt per second), and that throughput as a share of the physical limit: this machine's
# disk, measured here, doing k shard reads and one shard write per rebuilt shard (every node
# shares the one disk on loopback).
# With REPAIR_MIB, the repair worker's rate knob is set to it first (`coffre admin workers set
# repair rate`), and the rate achieved is printed against it: the repair rate knob's benchmark.
# Usage: scripts/time-to-redundancy.sh GIB [REPAIR_MIB]   (env: COFFRE_BENCH_DIR for the work
# directory, COFFRE_BIN for a built binary to use rather than building one)
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${1:?usage: scripts/time-to-redundancy.sh GIB [REPAIR_MIB]}
repair_mib=${2:-0}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}"
bin=${COFFRE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --bins -q
  bin="$CARGO_TARGET_DIR/release/coffre"
fi
work=$(mktemp -d -p "${COFFRE_BENCH_DIR:-/tmp}")
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
k=4

# The disk's sequential bandwidth, bypassing the page cache (as large shards do).
dd if=/dev/urandom of="$work/dd.src" bs=4M count=64 status=none
write_mbs=$(dd if="$work/dd.src" of="$work/dd.test" bs=4M oflag=direct conv=fsync 2>&1 | awk '/copied/ {print $(NF-1) * ($NF == "GB/s" ? 1000 : 1)}')
read_mbs=$(dd if="$work/dd.test" of=/dev/null bs=4M iflag=direct 2>&1 | awk '/copied/ {print $(NF-1) * ($NF == "GB/s" ? 1000 : 1)}')
rm -f "$work/dd.src" "$work/dd.test"

"$bin" admin ca init --out "$work/ca" >/dev/null
nodes=""
for n in 1 2 3 4 5 6 7; do
  "$bin" admin node-identity --ca "$work/ca" --id "node-$n" --country FR --site "site-$(( n % 4 ))" --out "$work/id-$n" >/dev/null
  port=$(free_port)
  RUST_LOG=error "$bin" node --data "$work/data-$n" --listen "127.0.0.1:$port" --identity "$work/id-$n" >/dev/null 2>&1 &
  pids+=($!)
  eval "node_pid_$n=$!"
  nodes+="[[nodes]]\naddress = \"https://127.0.0.1:$port\"\n"
done
"$bin" admin node-identity --ca "$work/ca" --id gw-1 --country FR --site site-1 --role gateway --out "$work/gw" >/dev/null
echo -e "[cluster]\nca = \"$work/ca\"\nidentity = \"$work/gw\"\n$nodes" > "$work/gw.toml"
s3=$(free_port); admin=$(free_port)
token=ttr-admin-token-0123456789abcdef0123456789
sleep 0.5
COFFRE_ROOT_ACCESS_KEY=TTRKEY COFFRE_ROOT_SECRET_KEY=ttr-secret-0123456789 COFFRE_ADMIN_TOKEN=$token RUST_LOG=error \
  "$bin" server --data "$work/gw-data" --listen "127.0.0.1:$s3" --admin-listen "127.0.0.1:$admin" --config "$work/gw.toml" >/dev/null &
pids+=($!)
for _ in $(seq 300); do curl -fs "http://127.0.0.1:$s3/health" >/dev/null && break; sleep 0.1; done

# GIB GiB of 64 MiB objects, four uploads at a time.
ENDPOINT="http://127.0.0.1:$s3" GIB="$gib" python3 - <<'PY'
import os, boto3, concurrent.futures
from boto3.s3.transfer import TransferConfig
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="fr-par",
                  aws_access_key_id="TTRKEY", aws_secret_access_key="ttr-secret-0123456789")
s3.create_bucket(Bucket="ttr")
size = 64 << 20
blobs = [os.urandom(size) for _ in range(4)]
count = int(float(os.environ["GIB"]) * 1024 * 1024 * 1024) // size
cfg = TransferConfig(multipart_threshold=1 << 30)
def put(i):
    s3.put_object(Bucket="ttr", Key=f"obj-{i:06}", Body=blobs[i % 4])
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    list(pool.map(put, range(count)))
print(f"written: {count} objects of 64 MiB")
PY

if [ "$repair_mib" != 0 ]; then
  "$bin" admin workers set repair rate "$repair_mib" --endpoint "http://127.0.0.1:$admin" --token "$token" >/dev/null
fi
kill -9 "$node_pid_1"
start=$(date +%s.%N)
out=$("$bin" admin nodes remove --dead --wait --endpoint "http://127.0.0.1:$admin" --token "$token" node-1)
end=$(date +%s.%N)
echo "$out" | head -1
bytes=$(echo "$out" | head -1 | sed -n 's/.*stripes, \([0-9]*\) bytes).*/\1/p')
python3 - "$start" "$end" "${bytes:-0}" "$read_mbs" "$write_mbs" "$k" "$repair_mib" <<'PY'
import sys
start, end, rebuilt, read_mbs, write_mbs, k, cap = (float(x) for x in sys.argv[1:])
secs = end - start
mbs = rebuilt / secs / 1e6
# Per rebuilt shard byte: k bytes read and one written, on the one disk.
limit = 1 / (k / read_mbs + 1 / write_mbs)
print(f"time to full redundancy: {secs:.1f} s for {rebuilt / 1e6:.0f} MB of lost shards")
print(f"repair throughput: {mbs:.1f} MB/s (shard bytes rebuilt per second)")
print(f"disk: read {read_mbs:.0f} MB/s, write {write_mbs:.0f} MB/s; limit for k={k:.0f} reads + 1 write per shard: {limit:.1f} MB/s")
print(f"share of the physical limit: {100 * mbs / limit:.0f} %")
if cap:
    mib = rebuilt / secs / (1 << 20)
    print(f"repair rate knob {cap:.0f} MiB/s: {mib:.1f} MiB/s achieved ({100 * (mib - cap) / cap:+.1f} % of the knob)")
PY
