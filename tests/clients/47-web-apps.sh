# Browser and document applications, with the real tools: boto3's generate_presigned_post sent
# with `curl -F`, boto3's checksum helpers on a managed multipart upload (CompleteMultipartUpload
# carries the object's checksum), CORS rules set with aws-cli and a preflight with curl,
# GetObjectAttributes, and SSE-S3 headers.
python3 - <<'PY'
import base64, hashlib, io, os, subprocess
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="fr-par",
                  config=Config(signature_version="s3v4", request_checksum_calculation="when_supported"))
s3.create_bucket(Bucket="web-bkt")

# A presigned POST form, as a web page gets it from its back end, sent by curl.
post = s3.generate_presigned_post("web-bkt", "uploads/${filename}",
                                  Fields={"Content-Type": "text/plain"},
                                  Conditions=[["starts-with", "$key", "uploads/"], {"Content-Type": "text/plain"},
                                              ["content-length-range", 1, 4096]],
                                  ExpiresIn=300)
with open("form.txt", "wb") as f:
    f.write(b"sent by a form\n")
args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}"]
for k, v in post["fields"].items():
    args += ["-F", f"{k}={v}"]
args += ["-F", "file=@form.txt", post["url"]]
code = subprocess.run(args, check=True, capture_output=True, text=True).stdout
assert code == "204", code
got = s3.get_object(Bucket="web-bkt", Key="uploads/form.txt")
assert got["Body"].read() == b"sent by a form\n"
assert got["ContentType"] == "text/plain"
# Over the policy's size range: refused, nothing stored.
with open("big.txt", "wb") as f:
    f.write(b"x" * 5000)
args[-2] = "file=@big.txt"
code = subprocess.run(args, check=True, capture_output=True, text=True).stdout
assert code == "400", code
keys = [o["Key"] for o in s3.list_objects_v2(Bucket="web-bkt").get("Contents", [])]
assert keys == ["uploads/form.txt"], keys

# boto3's checksum helpers: a multipart upload_file with SHA256, completed with its checksum.
body = os.urandom(12 * 1024 * 1024)
cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(body), "web-bkt", "doc.bin", Config=cfg, ExtraArgs={"ChecksumAlgorithm": "SHA256"})
head = s3.head_object(Bucket="web-bkt", Key="doc.bin", ChecksumMode="ENABLED")
parts = [body[i:i + 5 * 1024 * 1024] for i in range(0, len(body), 5 * 1024 * 1024)]
composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()).decode()
assert head["ChecksumSHA256"] == f"{composite}-{len(parts)}", (head["ChecksumSHA256"], composite)
assert head["ServerSideEncryption"] == "AES256"
attrs = s3.get_object_attributes(Bucket="web-bkt", Key="doc.bin", ObjectAttributes=["ObjectParts", "Checksum", "ObjectSize"])
assert attrs["ObjectSize"] == len(body)
assert attrs["ObjectParts"]["TotalPartsCount"] == len(parts), attrs["ObjectParts"]
assert attrs["ObjectParts"]["Parts"][0]["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(parts[0]).digest()).decode()
# FULL_OBJECT CRC32 through the helpers of a single PUT: the CRC comes back.
s3.put_object(Bucket="web-bkt", Key="crc", Body=b"abc", ChecksumAlgorithm="CRC32")
assert s3.head_object(Bucket="web-bkt", Key="crc", ChecksumMode="ENABLED")["ChecksumCRC32"] == "NSRBwg=="
print("boto3 web ok")
PY

aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }
cat > cors.json <<'JSON'
{"CORSRules": [{"AllowedOrigins": ["https://docs.example"], "AllowedMethods": ["GET", "PUT", "POST"],
                "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 300}]}
JSON
aws s3api put-bucket-cors --bucket web-bkt --cors-configuration file://cors.json
aws s3api get-bucket-cors --bucket web-bkt | grep -q docs.example
pre=$(curl -sS -o /dev/null -D - -X OPTIONS "$ENDPOINT/web-bkt/uploads/form.txt" \
  -H "Origin: https://docs.example" -H "Access-Control-Request-Method: PUT" -H "Access-Control-Request-Headers: content-type")
grep -qi "^access-control-allow-origin: https://docs.example" <<<"$pre"
grep -qi "^access-control-allow-headers: content-type" <<<"$pre"
test "$(curl -sS -o /dev/null -w '%{http_code}' -X OPTIONS "$ENDPOINT/web-bkt/x" \
  -H "Origin: https://evil.example" -H "Access-Control-Request-Method: PUT")" = 403
aws s3api delete-bucket-cors --bucket web-bkt
aws s3api get-bucket-encryption --bucket web-bkt | grep -q AES256
aws s3 cp form.txt s3://web-bkt/sse.txt --sse AES256
aws s3api head-object --bucket web-bkt --key sse.txt | grep -q '"ServerSideEncryption": "AES256"'
aws s3 rm --recursive s3://web-bkt/ >/dev/null
aws s3 rb s3://web-bkt
