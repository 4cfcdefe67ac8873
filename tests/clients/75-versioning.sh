# Versioning and Object Lock with real clients: aws s3api flows, restic backing up into a
# lock-enabled bucket, rclone listing old versions (--s3-versions).
aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# aws s3api: versions, a delete marker, old bytes by id, the marker removed.
aws s3api create-bucket --bucket ver-cli
aws s3api put-bucket-versioning --bucket ver-cli --versioning-configuration Status=Enabled
test "$(aws s3api get-bucket-versioning --bucket ver-cli | json 'd["Status"]')" = Enabled
echo one > one.txt && echo two > two.txt
v1=$(aws s3api put-object --bucket ver-cli --key doc --body one.txt | json 'd["VersionId"]')
aws s3api put-object --bucket ver-cli --key doc --body two.txt >/dev/null
aws s3api get-object --bucket ver-cli --key doc --version-id "$v1" out1.txt >/dev/null && cmp one.txt out1.txt
marker=$(aws s3api delete-object --bucket ver-cli --key doc | json 'd["VersionId"]')
if aws s3api head-object --bucket ver-cli --key doc 2>/dev/null; then echo "a deleted key still reads"; exit 1; fi
test "$(aws s3api list-object-versions --bucket ver-cli | json '(len(d["Versions"]), len(d["DeleteMarkers"]))')" = "(2, 1)"
aws s3api delete-object --bucket ver-cli --key doc --version-id "$marker" >/dev/null
aws s3 cp s3://ver-cli/doc back.txt && cmp two.txt back.txt

# Object Lock: COMPLIANCE resists everyone, GOVERNANCE gives way to the bypass, legal hold.
aws s3api create-bucket --bucket lock-cli --object-lock-enabled-for-bucket
aws s3api put-object-lock-configuration --bucket lock-cli \
  --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":1}}}'
until=$(date -u -d '+1 day' +%Y-%m-%dT%H:%M:%SZ)
vc=$(aws s3api put-object --bucket lock-cli --key c --body one.txt --object-lock-mode COMPLIANCE \
  --object-lock-retain-until-date "$until" | json 'd["VersionId"]')
if aws s3api delete-object --bucket lock-cli --key c --version-id "$vc" --bypass-governance-retention 2>err.txt; then
  echo "a COMPLIANCE version was deleted"; exit 1
fi
grep -q AccessDenied err.txt
vg=$(aws s3api put-object --bucket lock-cli --key g --body one.txt | json 'd["VersionId"]')
test "$(aws s3api get-object-retention --bucket lock-cli --key g --version-id "$vg" | json 'd["Retention"]["Mode"]')" = GOVERNANCE
if aws s3api delete-object --bucket lock-cli --key g --version-id "$vg" 2>/dev/null; then
  echo "a GOVERNANCE version was deleted without the bypass"; exit 1
fi
aws s3api delete-object --bucket lock-cli --key g --version-id "$vg" --bypass-governance-retention >/dev/null
aws s3api put-object-legal-hold --bucket lock-cli --key c --version-id "$vc" --legal-hold Status=ON
test "$(aws s3api get-object-legal-hold --bucket lock-cli --key c --version-id "$vc" | json 'd["LegalHold"]["Status"]')" = ON

# restic into a lock-enabled bucket: every pack it writes is retained (GOVERNANCE, 1 day).
aws s3api create-bucket --bucket restic-lock --object-lock-enabled-for-bucket
aws s3api put-object-lock-configuration --bucket restic-lock \
  --object-lock-configuration '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":1}}}'
export RESTIC_REPOSITORY="s3:$ENDPOINT/restic-lock" RESTIC_PASSWORD=coffre-test-password
mkdir -p rl/data && for i in $(seq 1 10); do head -c $((i * 54321)) /dev/urandom > rl/data/f$i; done
restic init
restic backup rl/data
echo more > rl/data/more && restic backup rl/data
restic check --read-data
restic restore latest --target rl/restore
diff -r rl/data rl/restore/rl/data
pack=$(aws s3api list-object-versions --bucket restic-lock --prefix data/ | json 'd["Versions"][0]["Key"] + " " + d["Versions"][0]["VersionId"]')
if aws s3api delete-object --bucket restic-lock --key "${pack% *}" --version-id "${pack#* }" 2>/dev/null; then
  echo "a retained restic pack was deleted"; exit 1
fi

# rclone lists old versions with --s3-versions.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_COFFRE_TYPE=s3 RCLONE_CONFIG_COFFRE_PROVIDER=Other RCLONE_CONFIG_COFFRE_ENDPOINT="$ENDPOINT" \
  RCLONE_CONFIG_COFFRE_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" RCLONE_CONFIG_COFFRE_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
  RCLONE_CONFIG_COFFRE_REGION=fr-par
aws s3api create-bucket --bucket ver-rclone
aws s3api put-bucket-versioning --bucket ver-rclone --versioning-configuration Status=Enabled
mkdir -p rv && echo first > rv/file.txt
rclone copy rv coffre:ver-rclone
sleep 1.1 && echo second > rv/file.txt
rclone copy rv coffre:ver-rclone
test "$(rclone lsf coffre:ver-rclone | wc -l)" -eq 1
listing=$(rclone lsf --s3-versions coffre:ver-rclone)
echo "$listing"
test "$(wc -l <<<"$listing")" -eq 2
old=$(grep -- '-v' <<<"$listing")
rclone cat "coffre:ver-rclone/$old" --s3-versions | grep -qx first
