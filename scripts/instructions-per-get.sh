#!/usr/bin/env bash
# Instructions the server spends per 4 KiB GET, counted by callgrind (repeatable, unlike
# timings on a shared machine): the server runs under valgrind, boto3 sends N GETs of one
# object; run with two N and divide the difference by the difference of N (start-up cancels).
#   bash scripts/instructions-per-get.sh PATH/TO/coffre 200 600 [policy]
# With `policy`, the bucket has a policy (two statements with conditions) that every GET
# evaluates. Needs valgrind and boto3.
set -euo pipefail
BIN=${1:?coffre binary}; N1=${2:-200}; N2=${3:-600}; POLICY=${4:-}
count() {
  local n=$1 d port pid
  d=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  COFFRE_ROOT_ACCESS_KEY=CGKEY COFFRE_ROOT_SECRET_KEY=cg-secret RUST_LOG=error MALLOC_ARENA_MAX=2 \
    valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" "$BIN" server --data "$d/data" \
    --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 >/dev/null 2>"$d/err" &
  pid=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
  python3 - "$port" "$n" "$POLICY" <<'PY'
import json, sys, boto3, botocore
port, n, policy = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="fr-par", aws_access_key_id="CGKEY",
                  aws_secret_access_key="cg-secret",
                  config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 0}))
s3.create_bucket(Bucket="cgbench")
s3.put_object(Bucket="cgbench", Key="obj", Body=b"x" * 4096)
if policy == "policy":
    s3.put_bucket_policy(Bucket="cgbench", Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::partner:root"}, "Action": ["s3:GetObject", "s3:ListBucket"],
         "Resource": ["arn:aws:s3:::cgbench", "arn:aws:s3:::cgbench/*"], "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
        {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::cgbench/*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringLike": {"aws:UserAgent": "forbidden-*"}}}]}))
for _ in range(n):
    assert len(s3.get_object(Bucket="cgbench", Key="obj")["Body"].read()) == 4096
PY
  kill -TERM "$pid"; wait "$pid" || true
  sed -n 's/^summary: //p' "$d/cg.out"
  rm -rf "$d"
}
a=$(count "$N1"); b=$(count "$N2")
echo "instructions per GET: $(( (b - a) / (N2 - N1) ))"
