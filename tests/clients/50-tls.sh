# TLS on the S3 listener: aws-cli and curl over HTTPS with a private CA; TLS 1.3 and 1.2 with
# AEAD suites only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=coffre-test" \
  -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout tls.key -out tls.pem 2>/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
COFFRE_ROOT_ACCESS_KEY=$AWS_ACCESS_KEY_ID COFFRE_ROOT_SECRET_KEY=$AWS_SECRET_ACCESS_KEY RUST_LOG=warn \
  "$COFFRE_BIN" server --data tls-data --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 --tls-cert tls.pem --tls-key tls.key > tls-banner.txt &
tls_pid=$!
trap 'kill $tls_pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -fs --cacert tls.pem "https://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
grep -q "https://127.0.0.1:$port" tls-banner.txt
test "$(curl -fsS --cacert tls.pem "https://127.0.0.1:$port/health")" = ok
aws() { command aws --endpoint-url "https://127.0.0.1:$port" --ca-bundle tls.pem "$@"; }
aws s3 mb s3://tls-bkt
head -c 3000000 /dev/urandom > tls.bin
aws s3 cp tls.bin s3://tls-bkt/x && aws s3 cp s3://tls-bkt/x tls.back && cmp tls.bin tls.back
# SSE-C over TLS (refused over plain HTTP): aws-cli's --sse-c, single and multipart, then a copy
# to another key; without the key the object is unreadable.
# aws-cli takes the 32 key bytes as they are (it base64-encodes them): 32 hex characters.
ck=$(openssl rand -hex 16) ck2=$(openssl rand -hex 16)
head -c $((20 * 1024 * 1024)) /dev/urandom > ssec.bin
aws s3 cp tls.bin s3://tls-bkt/c1 --sse-c AES256 --sse-c-key "$ck"
aws s3 cp ssec.bin s3://tls-bkt/c2 --sse-c AES256 --sse-c-key "$ck"
aws s3 cp s3://tls-bkt/c2 ssec.back --sse-c AES256 --sse-c-key "$ck" && cmp ssec.bin ssec.back
if aws s3 cp s3://tls-bkt/c1 nokey.back 2>/dev/null; then echo "an SSE-C object was read without its key"; exit 1; fi
if aws s3 cp s3://tls-bkt/c1 wrong.back --sse-c AES256 --sse-c-key "$ck2" 2>/dev/null; then echo "read with another key"; exit 1; fi
aws s3 cp s3://tls-bkt/c1 s3://tls-bkt/c3 --sse-c-copy-source AES256 --sse-c-copy-source-key "$ck" --sse-c AES256 --sse-c-key "$ck2"
aws s3 cp s3://tls-bkt/c3 c3.back --sse-c AES256 --sse-c-key "$ck2" && cmp tls.bin c3.back
s_client() { openssl s_client -connect "127.0.0.1:$port" -CAfile tls.pem "$@" </dev/null 2>&1; }
out=$(s_client -tls1_3) && grep -q "TLSv1.3" <<<"$out"
out=$(s_client -tls1_2) && grep -q "TLSv1.2" <<<"$out" && grep -q "GCM\|CHACHA20" <<<"$out"
out=$(s_client -tls1_2 -cipher AES128-SHA || true)
if grep -q "Cipher is AES128-SHA" <<<"$out"; then echo "CBC suite accepted"; exit 1; fi
# Plain HTTP to the TLS port gets nothing.
if curl -fs "http://127.0.0.1:$port/health"; then echo "plain HTTP answered on the TLS port"; exit 1; fi
