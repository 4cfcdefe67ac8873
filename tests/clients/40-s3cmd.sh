# s3cmd: mb, put, ls, get, del, rb.
host=${ENDPOINT#http://}
s3() { s3cmd --no-ssl --host="$host" --host-bucket="$host" --access_key="$AWS_ACCESS_KEY_ID" --secret_key="$AWS_SECRET_ACCESS_KEY" --region=fr-par "$@"; }
head -c 200000 /dev/urandom > s3cmd.bin
s3 mb s3://s3cmd-bkt
s3 put s3cmd.bin s3://s3cmd-bkt/x/s3cmd.bin
listing=$(s3 ls s3://s3cmd-bkt/x/) && grep -q s3cmd.bin <<<"$listing"
s3 get --force s3://s3cmd-bkt/x/s3cmd.bin s3cmd.back
cmp s3cmd.bin s3cmd.back
info=$(s3 info s3://s3cmd-bkt/x/s3cmd.bin) && grep -q "$(md5sum < s3cmd.bin | cut -d" " -f1)" <<<"$info"
s3 del s3://s3cmd-bkt/x/s3cmd.bin
s3 rb s3://s3cmd-bkt
