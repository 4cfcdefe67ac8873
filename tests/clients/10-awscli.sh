# aws-cli (from PyPI): buckets, small and large copies, ls, sync, rm, presign, s3api checksums.
aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }
aws s3 mb s3://awscli-bkt
head -c 1000 /dev/urandom > small.bin
head -c $((50 * 1024 * 1024)) /dev/urandom > big.bin
aws s3 cp small.bin s3://awscli-bkt/dir/small.bin
aws s3 cp big.bin s3://awscli-bkt/dir/big.bin
aws s3 cp s3://awscli-bkt/dir/small.bin small.back
aws s3 cp s3://awscli-bkt/dir/big.bin big.back
cmp small.bin small.back
cmp big.bin big.back
listing=$(aws s3 ls s3://awscli-bkt/dir/) && grep -q big.bin <<<"$listing"
mkdir -p tree/a/b && for i in 1 2 3; do head -c $((i * 3000)) /dev/urandom > tree/a/f$i; done && echo hi > tree/a/b/g
aws s3 sync tree s3://awscli-bkt/tree
rm -rf tree.back && aws s3 sync s3://awscli-bkt/tree tree.back
diff -r tree tree.back
test "$(aws s3 sync tree s3://awscli-bkt/tree | wc -l)" -eq 0   # nothing left to sync
url=$(aws s3 presign s3://awscli-bkt/dir/small.bin --expires-in 300)
curl -fsS "$url" -o presigned.back && cmp small.bin presigned.back
for alg in CRC32 CRC32C SHA1 SHA256; do
  aws s3api put-object --bucket awscli-bkt --key "sum-$alg" --body small.bin --checksum-algorithm "$alg" >/dev/null
  head=$(aws s3api head-object --bucket awscli-bkt --key "sum-$alg" --checksum-mode ENABLED) && grep -qi "checksum$alg" <<<"$head"
done
aws s3 rm --recursive s3://awscli-bkt/
test -z "$(aws s3 ls s3://awscli-bkt/)"
aws s3 rb s3://awscli-bkt
