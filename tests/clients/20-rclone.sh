# rclone: copy, sync, check (md5 via ETag) and a download compared byte for byte.
# rclone refuses a custom CA bundle with its own transport; plain HTTP needs none.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_COFFRE_TYPE=s3 RCLONE_CONFIG_COFFRE_PROVIDER=Other RCLONE_CONFIG_COFFRE_ENDPOINT="$ENDPOINT" \
  RCLONE_CONFIG_COFFRE_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_COFFRE_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  RCLONE_CONFIG_COFFRE_REGION=fr-par
mkdir -p rc/src/sub
for i in $(seq 1 20); do head -c $((i * 7919)) /dev/urandom > rc/src/f$i; done
head -c $((30 * 1024 * 1024)) /dev/urandom > rc/src/sub/large
rclone mkdir coffre:rclone-bkt
rclone copy rc/src coffre:rclone-bkt/data
rclone check rc/src coffre:rclone-bkt/data
rm rc/src/f3 && echo changed > rc/src/f4
rclone sync rc/src coffre:rclone-bkt/data
rclone check rc/src coffre:rclone-bkt/data
rclone copy coffre:rclone-bkt/data rc/back
diff -r rc/src rc/back
test "$(rclone lsf coffre:rclone-bkt/data | grep -c '^f')" -eq 19
rclone purge coffre:rclone-bkt
# A file larger than the upload cutoff goes up in 5 MiB parts (multipart).
rclone copy --s3-upload-cutoff 5M --s3-chunk-size 5M rc/src/sub/large coffre:rclone-mp/
rclone check rc/src/sub coffre:rclone-mp/ --include large
rclone copy coffre:rclone-mp/large rc/mp-back/ && cmp rc/src/sub/large rc/mp-back/large
rclone purge coffre:rclone-mp
