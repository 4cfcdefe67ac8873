# restic: init, backup, check (reading all data), restore, and the restored tree is identical.
export RESTIC_REPOSITORY="s3:$ENDPOINT/restic-bkt" RESTIC_PASSWORD=coffre-test-password
mkdir -p rs/data/deep
for i in $(seq 1 30); do head -c $((i * 12345)) /dev/urandom > rs/data/f$i; done
head -c $((20 * 1024 * 1024)) /dev/urandom > rs/data/deep/big
restic init
restic backup rs/data
echo more > rs/data/new && restic backup rs/data
# Big packs (64 MiB; restic's S3 library sends them as single PUTs, not multipart).
head -c $((150 * 1024 * 1024)) /dev/urandom > rs/data/deep/huge
restic backup --pack-size 64 rs/data
restic check --read-data
restic restore latest --target rs/restore
diff -r rs/data rs/restore/rs/data
test "$(restic snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 3
