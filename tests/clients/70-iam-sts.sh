# aws iam and aws sts from aws-cli: a tenant's admin manages its users, keys and inline
# policies through the IAM query API on the S3 endpoint; a web identity from a local OIDC
# issuer (keys made here) gets temporary credentials with AssumeRoleWithWebIdentity.
aws() { command aws --endpoint-url "$ENDPOINT" "$@"; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
creds=$("$COFFRE_BIN" admin tenant create iam-script --json)
export AWS_ACCESS_KEY_ID=$(json '["access_key"]' <<<"$creds") AWS_SECRET_ACCESS_KEY=$(json '["secret_key"]' <<<"$creds")

test "$(aws sts get-caller-identity --query Account --output text)" = iam-script
aws s3 mb s3://iam-script-bkt
echo "rapport" > rapport.txt
aws s3 cp rapport.txt s3://iam-script-bkt/docs/rapport.txt

aws iam create-user --user-name lecteur >/dev/null
test "$(aws iam list-users --query 'Users[].UserName' --output text | tr '\t' '\n' | sort | tr '\n' ' ')" = "admin lecteur "
cat > read-docs.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
   "Resource": ["arn:aws:s3:::iam-script-bkt", "arn:aws:s3:::iam-script-bkt/docs/*"]}]}
JSON
aws iam put-user-policy --user-name lecteur --policy-name read-docs --policy-document file://read-docs.json
test "$(aws iam list-user-policies --user-name lecteur --query 'PolicyNames[0]' --output text)" = read-docs
aws iam get-user-policy --user-name lecteur --policy-name read-docs --query 'PolicyDocument.Statement[0].Effect' --output text | grep -qx Allow
if aws iam put-user-policy --user-name lecteur --policy-name bad --policy-document '{"Statement":[{"Effect":"Allow"}]}' 2>err.txt; then
  echo "a malformed policy was accepted"; exit 1
fi
grep -q MalformedPolicyDocument err.txt
key=$(aws iam create-access-key --user-name lecteur)
lak=$(json '["AccessKey"]["AccessKeyId"]' <<<"$key"); lsk=$(json '["AccessKey"]["SecretAccessKey"]' <<<"$key")
as_reader() { AWS_ACCESS_KEY_ID=$lak AWS_SECRET_ACCESS_KEY=$lsk AWS_SESSION_TOKEN= command aws --endpoint-url "$ENDPOINT" "$@"; }
as_reader s3 cp s3://iam-script-bkt/docs/rapport.txt back.txt && cmp rapport.txt back.txt
if as_reader s3 cp rapport.txt s3://iam-script-bkt/docs/other.txt 2>err.txt; then echo "the reader could write"; exit 1; fi
grep -q AccessDenied err.txt
# The reader cannot manage users (no iam:* allowed), the admin can.
if as_reader iam create-user --user-name intrus 2>err.txt; then echo "the reader created a user"; exit 1; fi
grep -q AccessDenied err.txt
test "$(aws iam list-access-keys --user-name lecteur --query 'AccessKeyMetadata[0].Status' --output text)" = Active
aws iam update-access-key --user-name lecteur --access-key-id "$lak" --status Inactive
if as_reader s3 ls s3://iam-script-bkt/docs/ 2>err.txt; then echo "a disabled key worked"; exit 1; fi
grep -q InvalidAccessKeyId err.txt
aws iam update-access-key --user-name lecteur --access-key-id "$lak" --status Active
as_reader s3 ls s3://iam-script-bkt/docs/ | grep -q rapport.txt
if aws iam delete-user --user-name lecteur 2>err.txt; then echo "a user with keys was deleted"; exit 1; fi
grep -q DeleteConflict err.txt
aws iam delete-access-key --user-name lecteur --access-key-id "$lak"
aws iam delete-user-policy --user-name lecteur --policy-name read-docs
aws iam delete-user --user-name lecteur
if aws iam get-user --user-name lecteur 2>err.txt; then echo "the user is still there"; exit 1; fi
grep -q NoSuchEntity err.txt

# STS: a local issuer (an EC key made now), its JWKS given to the tenant inline.
python3 -c "import cryptography" 2>/dev/null || python3 -m pip install -q cryptography
python3 - <<'PY'
import base64, json, time
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives import hashes, serialization
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = ec.generate_private_key(ec.SECP256R1())
nums = key.public_key().public_numbers()
jwk = {"kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig",
       "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}
open("jwks.json", "w").write(json.dumps({"keys": [jwk]}))
def token(claims):
    h = b64(json.dumps({"alg": "ES256", "kid": "k1", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    r, s = utils.decode_dss_signature(key.sign(f"{h}.{p}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{h}.{p}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
now = int(time.time())
base = {"iss": "https://keycloak.example/realms/etat", "aud": "coffre", "sub": "marie", "groups": ["archivistes"]}
open("token.jwt", "w").write(token(dict(base, exp=now + 600)))
open("expired.jwt", "w").write(token(dict(base, exp=now - 600)))
PY
"$COFFRE_BIN" admin tenant oidc iam-script --issuer https://keycloak.example/realms/etat --audience coffre --jwks-file jwks.json
cat > role.json <<'JSON'
{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"],
   "Resource": ["arn:aws:s3:::iam-script-bkt", "arn:aws:s3:::iam-script-bkt/*"]}]}
JSON
"$COFFRE_BIN" admin role put --tenant iam-script archivistes --policy-file role.json --claim groups=archivistes
role=arn:aws:iam::iam-script:role/archivistes
out=$(aws sts assume-role-with-web-identity --role-arn "$role" --role-session-name marie --web-identity-token "$(cat token.jwt)")
export AWS_ACCESS_KEY_ID=$(json '["Credentials"]["AccessKeyId"]' <<<"$out")
export AWS_SECRET_ACCESS_KEY=$(json '["Credentials"]["SecretAccessKey"]' <<<"$out")
export AWS_SESSION_TOKEN=$(json '["Credentials"]["SessionToken"]' <<<"$out")
test "$(aws sts get-caller-identity --query Arn --output text)" = "arn:aws:sts::iam-script:assumed-role/archivistes/marie"
aws s3 cp s3://iam-script-bkt/docs/rapport.txt sts.txt && cmp rapport.txt sts.txt
if aws s3 cp rapport.txt s3://iam-script-bkt/x 2>err.txt; then echo "the role could write"; exit 1; fi
grep -q AccessDenied err.txt
unset AWS_SESSION_TOKEN
if aws sts assume-role-with-web-identity --role-arn "$role" --role-session-name marie --web-identity-token "$(cat expired.jwt)" 2>err.txt; then
  echo "an expired token was taken"; exit 1
fi
grep -q ExpiredToken err.txt
echo "iam and sts ok"
