#!/usr/bin/env bash
# Measures the server's peak RSS while aws-cli uploads a 5 GiB object in multipart with 8 parts
# in flight (a measured check, not a timed test). Prints the peak, then checks it is < 256 MiB.
# Usage: scripts/measure-multipart-rss.sh [PATH/TO/coffre] [SIZE_GIB]
set -euo pipefail
bin=${1:-${CARGO_TARGET_DIR:-$HOME/.cache/coffre-target}/release/coffre}
gib=${2:-5}
work=$(mktemp -d -p "${COFFRE_BENCH_DIR:-/tmp}")
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ACCESS_KEY_ID=RSSKEY AWS_SECRET_ACCESS_KEY=rss-secret AWS_DEFAULT_REGION=fr-par AWS_CONFIG_FILE="$work/aws.cfg"
printf '[default]\ns3 =\n  max_concurrent_requests = 8\n  multipart_chunksize = 64MB\n' > "$AWS_CONFIG_FILE"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COFFRE_ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID COFFRE_ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY RUST_LOG=warn \
  "$bin" server --data "$work/data" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 >/dev/null &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
aws --endpoint-url "http://127.0.0.1:$port" s3 mb s3://rss >/dev/null
start=$(date +%s.%N)
head -c "$((gib * 1024 * 1024 * 1024))" /dev/zero | aws --endpoint-url "http://127.0.0.1:$port" s3 cp - s3://rss/big --expected-size "$((gib * 1024 * 1024 * 1024))" --only-show-errors
end=$(date +%s.%N)
size=$(aws --endpoint-url "http://127.0.0.1:$port" s3api head-object --bucket rss --key big --query ContentLength --output text)
peak_kib=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "uploaded ${size} bytes in $(python3 -c "print(round($end-$start,1))") s; server peak RSS $((peak_kib / 1024)) MiB"
test "$size" -eq "$((gib * 1024 * 1024 * 1024))"
test "$peak_kib" -lt $((256 * 1024))
