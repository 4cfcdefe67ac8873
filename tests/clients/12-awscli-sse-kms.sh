# SSE-KMS with aws-cli: a tenant's named KMS keys (coffre admin kms-key), `--sse aws:kms
# --sse-kms-key-id` on single and multipart uploads, a copy from one key to another, a bucket
# default; a disabled key makes its objects unreadable (403) until enabled again; another
# tenant's key is refused; a shredded key leaves its objects unreadable for good.
aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
creds=$("$COFFRE_BIN" admin tenant create kms-script --json)
export AWS_ACCESS_KEY_ID=$(json '["access_key"]' <<<"$creds") AWS_SECRET_ACCESS_KEY=$(json '["secret_key"]' <<<"$creds")
"$COFFRE_BIN" admin tenant create kms-other --json >/dev/null

created=$("$COFFRE_BIN" admin kms-key create --tenant kms-script dossiers --json)
key_id=$(json '["key_id"]' <<<"$created"); arn=$(json '["arn"]' <<<"$created")
test "$arn" = "arn:aws:kms:fr-par:kms-script:key/$key_id"
archive_arn=$("$COFFRE_BIN" admin kms-key create --tenant kms-script archives --json | json '["arn"]')
other_arn=$("$COFFRE_BIN" admin kms-key create --tenant kms-other secret --json | json '["arn"]')
"$COFFRE_BIN" admin kms-key list --tenant kms-script | grep -q "dossiers.*Enabled"

aws s3 mb s3://kms-script-bkt
head -c 3000 /dev/urandom > small.bin
head -c $((20 * 1024 * 1024)) /dev/urandom > big.bin
aws s3 cp --no-progress small.bin s3://kms-script-bkt/small.bin --sse aws:kms --sse-kms-key-id "$key_id"
aws s3 cp --no-progress big.bin s3://kms-script-bkt/big.bin --sse aws:kms --sse-kms-key-id "$arn"   # multipart
for k in small big; do
  head=$(aws s3api head-object --bucket kms-script-bkt --key $k.bin)
  test "$(json '["ServerSideEncryption"]' <<<"$head")" = aws:kms
  test "$(json '["SSEKMSKeyId"]' <<<"$head")" = "$arn"
  aws s3 cp --no-progress s3://kms-script-bkt/$k.bin $k.back && cmp $k.bin $k.back
done

# A copy moves an object to another key; the source's key is not the copy's.
aws s3 cp --no-progress s3://kms-script-bkt/small.bin s3://kms-script-bkt/copy.bin --sse aws:kms --sse-kms-key-id alias/archives
got=$(aws s3api head-object --bucket kms-script-bkt --key copy.bin --query SSEKMSKeyId --output text)
test "$got" = "$archive_arn" || { echo "copy.bin is under $got, not $archive_arn"; exit 1; }

# Disabled: unreadable (403 KMS.DisabledException) and no new writes; the copy under the
# other key still reads.
"$COFFRE_BIN" admin kms-key disable --tenant kms-script dossiers | grep -q Disabled
if aws s3 cp --no-progress s3://kms-script-bkt/small.bin x.back 2>err.txt; then echo "read under a disabled key"; exit 1; fi
grep -q "KMS.DisabledException" err.txt
if aws s3 cp --no-progress small.bin s3://kms-script-bkt/new.bin --sse aws:kms --sse-kms-key-id "$key_id" 2>err.txt; then
  echo "written under a disabled key"; exit 1
fi
grep -q "KMS.DisabledException" err.txt
aws s3 cp --no-progress s3://kms-script-bkt/copy.bin copy.back && cmp small.bin copy.back
"$COFFRE_BIN" admin kms-key enable --tenant kms-script dossiers | grep -q Enabled
aws s3 cp --no-progress s3://kms-script-bkt/big.bin big.back && cmp big.bin big.back

# Another tenant's key is refused.
if aws s3 cp --no-progress small.bin s3://kms-script-bkt/theirs.bin --sse aws:kms --sse-kms-key-id "$other_arn" 2>err.txt; then
  echo "written under another tenant's key"; exit 1
fi
grep -q "AccessDenied" err.txt

# Bucket default: aws:kms with a key; a plain upload is encrypted under it.
aws s3api put-bucket-encryption --bucket kms-script-bkt --server-side-encryption-configuration \
  "{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\",\"KMSMasterKeyID\":\"$arn\"},\"BucketKeyEnabled\":true}]}"
aws s3 cp --no-progress small.bin s3://kms-script-bkt/default.bin
head=$(aws s3api head-object --bucket kms-script-bkt --key default.bin)
test "$(json '["SSEKMSKeyId"]' <<<"$head")" = "$arn"
test "$(json '["BucketKeyEnabled"]' <<<"$head")" = True

# Shredded now: every object under the key is unreadable for good, the others are not.
"$COFFRE_BIN" admin kms-key schedule-deletion --tenant kms-script dossiers --days 0 | grep -q Deleted
if aws s3 cp --no-progress s3://kms-script-bkt/default.bin x.back 2>/dev/null; then echo "read after shredding"; exit 1; fi
aws s3 cp --no-progress s3://kms-script-bkt/copy.bin copy.back && cmp small.bin copy.back
aws s3api delete-bucket-encryption --bucket kms-script-bkt
aws s3 rm --recursive s3://kms-script-bkt/ >/dev/null
aws s3 rb s3://kms-script-bkt
