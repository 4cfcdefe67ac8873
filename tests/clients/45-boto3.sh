# boto3 (the AWS SDK for Python): buckets, put/get with checksums, managed multipart transfer,
# paginated listing, presigned URL, errors.
python3 - <<'PY'
import hashlib, io, os, urllib.request
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="fr-par")
s3.create_bucket(Bucket="boto3-bkt")
body = os.urandom(300_000)
s3.put_object(Bucket="boto3-bkt", Key="a/one", Body=body, ChecksumAlgorithm="SHA256", Metadata={"origin": "boto3"})
got = s3.get_object(Bucket="boto3-bkt", Key="a/one", ChecksumMode="ENABLED")
assert got["Body"].read() == body
assert got["Metadata"] == {"origin": "boto3"}, got["Metadata"]
assert "ChecksumSHA256" in got

big = os.urandom(23 * 1024 * 1024)
cfg = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=4)
s3.upload_fileobj(io.BytesIO(big), "boto3-bkt", "a/big", Config=cfg)
out = io.BytesIO()
s3.download_fileobj("boto3-bkt", "a/big", out, Config=cfg)
assert out.getvalue() == big
head = s3.head_object(Bucket="boto3-bkt", Key="a/big")
assert head["ETag"].strip('"').endswith("-3"), head["ETag"]

for i in range(25):
    s3.put_object(Bucket="boto3-bkt", Key=f"many/{i:03d}", Body=b"x")
keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket="boto3-bkt", Prefix="many/", PaginationConfig={"PageSize": 7}) for o in page.get("Contents", [])]
assert keys == [f"many/{i:03d}" for i in range(25)], keys

url = s3.generate_presigned_url("get_object", Params={"Bucket": "boto3-bkt", "Key": "a/one"}, ExpiresIn=300)
assert urllib.request.urlopen(url).read() == body

try:
    s3.get_object(Bucket="boto3-bkt", Key="missing")
    raise SystemExit("expected NoSuchKey")
except ClientError as e:
    assert e.response["Error"]["Code"] == "NoSuchKey", e.response
print("boto3 ok")
PY
