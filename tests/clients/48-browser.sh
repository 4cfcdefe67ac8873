# A real browser (headless Chromium) on a page of another origin: it uploads one file with a
# presigned POST form and another with a presigned PUT through fetch() (a preflighted request),
# then reads both back through CORS, reading the exposed ETag. The page reports to the page
# server; the script checks the report and the stored objects.
browser=$(command -v chromium-headless-shell || command -v chromium || true)
[ -n "$browser" ] || { echo "no chromium: install chromium-headless-shell"; exit 1; }
page_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
origin="http://127.0.0.1:$page_port"
python3 - "$origin" <<'PY'
import json, os, sys
import boto3
origin = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="fr-par")
s3.create_bucket(Bucket="browser-bkt")
s3.put_bucket_cors(Bucket="browser-bkt", CORSConfiguration={"CORSRules": [
    {"AllowedOrigins": [origin], "AllowedMethods": ["GET", "PUT", "POST"], "AllowedHeaders": ["*"],
     "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 60}]})
post = s3.generate_presigned_post("browser-bkt", "forms/${filename}",
                                  Conditions=[["starts-with", "$key", "forms/"], ["content-length-range", 1, 1 << 20]],
                                  ExpiresIn=600)
sign = lambda m, k: s3.generate_presigned_url(m, Params={"Bucket": "browser-bkt", "Key": k}, ExpiresIn=600)
cfg = {"post": post, "put": sign("put_object", "fetched/doc.pdf"),
       "get_form": sign("get_object", "forms/hello.txt"), "get_put": sign("get_object", "fetched/doc.pdf")}
page = """<!doctype html><html><body><script>
const cfg = %s;
async function run() {
  const out = {};
  const fd = new FormData();
  for (const [k, v] of Object.entries(cfg.post.fields)) fd.append(k, v);
  fd.append("file", new Blob(["hello from a form"], {type: "text/plain"}), "hello.txt");
  out.post = (await fetch(cfg.post.url, {method: "POST", body: fd})).status;
  const put = await fetch(cfg.put, {method: "PUT", body: "%%PDF-from-fetch", headers: {"Content-Type": "application/pdf"}});
  out.put = put.status;
  out.put_etag = put.headers.get("ETag");
  const g1 = await fetch(cfg.get_form); out.get_form = [g1.status, await g1.text()];
  const g2 = await fetch(cfg.get_put); out.get_put = [g2.status, await g2.text(), g2.headers.get("ETag")];
  return out;
}
run().catch(e => ({error: String(e)})).then(r => fetch("/result", {method: "POST", body: JSON.stringify(r)}));
</script></body></html>""" % json.dumps(cfg)
open("page.html", "w").write(page)
PY
python3 - "$page_port" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open("page.html", "rb").read()
        self.send_response(200); self.send_header("content-type", "text/html"); self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def do_POST(self):
        data = self.rfile.read(int(self.headers["content-length"]))
        open("result.json", "wb").write(data)
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
page_pid=$!
# Its own session, so that ending it ends all of Chromium's processes.
setsid "$browser" --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$PWD/chromium-profile" \
  "$origin/" >chromium.log 2>&1 &
browser_pid=$!
trap 'rc=$?; kill -- -$browser_pid 2>/dev/null; kill $page_pid 2>/dev/null; wait $browser_pid $page_pid 2>/dev/null || true; exit $rc' EXIT
for _ in $(seq 600); do [ -s result.json ] && break; sleep 0.1; done
[ -s result.json ] || { echo "the page reported nothing in 60 s"; tail -20 chromium.log; exit 1; }
cat result.json; echo
python3 - <<'PY'
import json, os
import boto3
r = json.load(open("result.json"))
assert "error" not in r, r
assert r["post"] == 204, r
assert r["put"] == 200 and r["put_etag"], r
assert r["get_form"] == [200, "hello from a form"], r
assert r["get_put"][:2] == [200, "%PDF-from-fetch"] and r["get_put"][2] == r["put_etag"], r
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="fr-par")
keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="browser-bkt")["Contents"])
assert keys == ["fetched/doc.pdf", "forms/hello.txt"], keys
for k in keys:
    s3.delete_object(Bucket="browser-bkt", Key=k)
s3.delete_bucket(Bucket="browser-bkt")
print("browser ok")
PY
