#!/usr/bin/env bash
# The image alone: built by docker/build.sh (no registry), it runs as a non-root user, becomes
# healthy, serves S3 with the root keys given by environment, keeps its data in the /data
# volume across a container replacement, and its audit log verifies. Ends what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash docker/build.sh >/dev/null
name="coffre-image-test-$$"
vol="coffre-image-test-$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker volume rm -f "$vol" >/dev/null 2>&1 || true
}
trap cleanup EXIT
export AWS_ACCESS_KEY_ID=IMAGETESTKEY AWS_SECRET_ACCESS_KEY=image-test-secret-key AWS_DEFAULT_REGION=fr-par
start() {
  docker run -d --name "$name" -p "127.0.0.1:$port:9000" -v "$vol:/data" \
    -e COFFRE_ROOT_ACCESS_KEY="$AWS_ACCESS_KEY_ID" -e COFFRE_ROOT_SECRET_KEY="$AWS_SECRET_ACCESS_KEY" \
    coffre:latest >/dev/null
  for _ in $(seq 60); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$name")" = healthy ] && return 0
    sleep 1
  done
  docker logs "$name" | tail -20
  echo "FAIL: the container never became healthy"
  exit 1
}
start
[ "$(docker inspect -f '{{.Config.User}}' "$name")" = "10001:10001" ] || { echo "FAIL: not the non-root user"; exit 1; }
s3() { aws --endpoint-url "http://127.0.0.1:$port" s3 "$@"; }
head -c 300000 /dev/urandom >"/tmp/$name.bin"
s3 mb s3://image-test >/dev/null
s3 cp "/tmp/$name.bin" s3://image-test/obj >/dev/null
# Replaced by a new container on the same volume: the object is still there, intact.
docker rm -f "$name" >/dev/null
start
s3 cp s3://image-test/obj "/tmp/$name.back" >/dev/null
cmp "/tmp/$name.bin" "/tmp/$name.back" || { echo "FAIL: the object changed"; exit 1; }
rm -f "/tmp/$name.bin" "/tmp/$name.back"
docker exec "$name" /usr/local/bin/coffre audit verify --dir /data/audit --trust /data/audit/audit.pub >/dev/null \
  || { echo "FAIL: the audit log does not verify"; exit 1; }
echo "PASS docker image: non-root, healthy, S3 served, data kept across a replacement, audit verified"
