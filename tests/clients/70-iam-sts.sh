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

# A public document bucket: a bucket policy lets anyone read, plain curl works, nothing else.
aws s3 mb s3://iam-script-public
aws s3 cp rapport.txt s3://iam-script-public/rapport.txt
aws s3 cp rapport.txt s3://iam-script-public/private/rapport.txt
test "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/iam-script-public/rapport.txt")" = 403
aws s3api put-bucket-policy --bucket iam-script-public --policy '{"Version": "2012-10-17", "Statement": [
  {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::iam-script-public/*"},
  {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::iam-script-public/private/*"}]}'
test "$(aws s3api get-bucket-policy-status --bucket iam-script-public --query PolicyStatus.IsPublic --output text)" = True
curl -fsS "$ENDPOINT/iam-script-public/rapport.txt" | cmp - rapport.txt
test "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/iam-script-public/private/rapport.txt")" = 403
test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @rapport.txt "$ENDPOINT/iam-script-public/x")" = 403
test "$(curl -s -o /dev/null -w '%{http_code}' "$ENDPOINT/iam-script-public?list-type=2")" = 403

# STS: a local issuer (an EC and an RSA key made now), its JWKS given to the tenant inline.
python3 -c "import cryptography" 2>/dev/null || python3 -m pip install -q cryptography
python3 - <<'PY'
import base64, json, time
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.hazmat.primitives import hashes
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
ec_key = ec.generate_private_key(ec.SECP256R1())
rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
e, r = ec_key.public_key().public_numbers(), rsa_key.public_key().public_numbers()
jwks = {"keys": [
    {"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "x": b64(e.x.to_bytes(32, "big")), "y": b64(e.y.to_bytes(32, "big"))},
    {"kty": "RSA", "kid": "rsa1", "use": "sig", "alg": "RS256", "n": b64(r.n.to_bytes(256, "big")), "e": b64(r.e.to_bytes(3, "big"))},
]}
open("jwks.json", "w").write(json.dumps(jwks))
def token(claims, alg):
    h = b64(json.dumps({"alg": alg, "kid": "ec1" if alg == "ES256" else "rsa1", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    msg = f"{h}.{p}".encode()
    if alg == "ES256":
        r_, s_ = utils.decode_dss_signature(ec_key.sign(msg, ec.ECDSA(hashes.SHA256())))
        sig = r_.to_bytes(32, "big") + s_.to_bytes(32, "big")
    else:
        sig = rsa_key.sign(msg, padding.PKCS1v15(), hashes.SHA256())
    return f"{h}.{p}.{b64(sig)}"
now = int(time.time())
base = {"iss": "https://keycloak.example/realms/etat", "aud": "coffre", "sub": "marie", "groups": ["archivistes"]}
open("token.jwt", "w").write(token(dict(base, exp=now + 600), "ES256"))
open("token-rsa.jwt", "w").write(token(dict(base, exp=now + 600), "RS256"))
open("expired.jwt", "w").write(token(dict(base, exp=now - 600), "RS256"))
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
aws sts assume-role-with-web-identity --role-arn "$role" --role-session-name marie --web-identity-token "$(cat token-rsa.jwt)" \
  --query Credentials.AccessKeyId --output text | grep -q '^ASIA'
if aws sts assume-role-with-web-identity --role-arn "$role" --role-session-name marie --web-identity-token "$(cat expired.jwt)" 2>err.txt; then
  echo "an expired token was taken"; exit 1
fi
grep -q ExpiredToken err.txt
echo "iam and sts ok"
