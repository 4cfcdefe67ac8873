//! Test harness: starts the real `coffre` binary on a free port and hands out clients.
#![allow(dead_code)]

pub mod cluster;

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const ACCESS: &str = "COFFRETESTKEY";
pub const SECRET: &str = "coffre-test-secret-key";

pub struct Server {
    pub child: Child,
    pub endpoint: String,
    pub addr: String,
    /// The admin API (`http://…`), from the banner.
    pub admin_endpoint: String,
    pub data: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    pub fn start() -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let mut s = Server::start_at(&data, "127.0.0.1:0");
        s._dir = Some(dir);
        s
    }

    /// Starts (or restarts) a server on an existing data directory.
    pub fn start_at(data: &Path, listen: &str) -> Server {
        Server::start_with(data, listen, &[])
    }

    /// Starts a server with extra command-line arguments.
    pub fn start_with(data: &Path, listen: &str, extra: &[&str]) -> Server {
        Server::start_with_env(data, listen, extra, &[])
    }

    /// Starts a server with extra command-line arguments and environment variables.
    pub fn start_with_env(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Server::start_logging_to(data, listen, extra, env, Stdio::inherit())
    }

    /// Starts a server whose logs (stderr) go to `stderr`.
    pub fn start_logging_to(data: &Path, listen: &str, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args([
                "server",
                "--data",
                data.to_str().expect("utf-8 path"),
                "--listen",
                listen,
            ])
            .args(["--admin-listen", "127.0.0.1:0"])
            // GC as hot as it goes: readers rely on their leases, not on a grace period.
            .args(if extra.contains(&"--gc-grace-secs") {
                &[][..]
            } else {
                &["--gc-grace-secs", "0"][..]
            })
            .args(extra)
            .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
            .env("COFFRE_ROOT_SECRET_KEY", SECRET)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn coffre");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        let mut admin_endpoint = String::new();
        let addr = loop {
            line.clear();
            if lines.read_line(&mut line).expect("read banner") == 0 {
                panic!("coffre exited before printing its endpoint");
            }
            if let Some(rest) = line.trim().strip_prefix("Coffre admin endpoint: ") {
                admin_endpoint = rest.split_whitespace().next().expect("address").to_string();
            }
            if let Some(rest) = line.trim().strip_prefix("Coffre S3 endpoint: http://") {
                break rest.split_whitespace().next().expect("address").to_string();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server {
            child,
            endpoint: format!("http://{addr}"),
            addr,
            admin_endpoint,
            data: data.to_path_buf(),
            _dir: None,
        }
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        client_with(&self.endpoint, ACCESS, SECRET)
    }

    /// Runs `coffre admin <args…>` against this server's admin API: (success, stdout, stderr).
    pub fn admin(&self, args: &[&str]) -> (bool, String, String) {
        let token = std::fs::read_to_string(self.data.join("admin.token")).expect("admin token");
        let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .arg("admin")
            .args(args)
            .env("COFFRE_ADMIN_ENDPOINT", &self.admin_endpoint)
            .env("COFFRE_ADMIN_TOKEN", token.trim())
            .output()
            .expect("run coffre admin");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `GET /metrics` of the admin API.
    pub fn metrics(&self) -> String {
        let (status, body) = self.admin_call("GET", "/metrics", b"");
        assert_eq!(status, 200, "{body}");
        body
    }

    /// One raw call of the admin API with the token: (status, body).
    pub fn admin_call(&self, method: &str, target: &str, body: &[u8]) -> (u16, String) {
        let admin = self.admin_endpoint.trim_start_matches("http://").to_string();
        let token = std::fs::read_to_string(self.data.join("admin.token")).expect("admin token");
        let (status, _, body) = raw_request(
            &admin,
            method,
            target,
            &[
                ("host".into(), admin.clone()),
                ("authorization".into(), format!("Bearer {}", token.trim())),
            ],
            body,
        );
        (status, body)
    }

    /// `coffre admin <args…> --json` that must succeed, parsed.
    pub fn admin_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let (ok, out, err) = self.admin(&a);
        assert!(ok, "coffre admin {args:?} failed: {err}");
        let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("coffre admin {args:?}: {e}: {out}"));
        check_against_openapi(args, &v);
        v
    }

    /// A new tenant; returns its admin's (access key, secret key).
    pub fn tenant(&self, name: &str, extra: &[&str]) -> (String, String) {
        let mut args = vec!["tenant", "create", name];
        args.extend_from_slice(extra);
        let v = self.admin_json(&args);
        assert_eq!(v["tenant"], name);
        assert_eq!(v["user"], "admin");
        (
            v["access_key"].as_str().unwrap().to_string(),
            v["secret_key"].as_str().unwrap().to_string(),
        )
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The admin API's OpenAPI document (docs/admin-api.json; tests/admin_api.rs checks the
/// server serves it).
pub fn openapi() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/admin-api.json"))
            .expect("docs/admin-api.json");
        serde_json::from_str(&text).expect("the OpenAPI document is JSON")
    })
}

/// The schema the OpenAPI document gives the answer of the call whose `x-coffre-cli` names
/// the command `args` begins with (the longest such command), if one does.
pub fn cli_answer_schema(args: &[&str]) -> Option<(String, serde_json::Value)> {
    let doc = openapi();
    let mut best: Option<(usize, String, serde_json::Value)> = None;
    for (path, methods) in doc["paths"].as_object()? {
        for (method, op) in methods.as_object()? {
            for cli in op["x-coffre-cli"].as_array().into_iter().flatten() {
                let words: Vec<&str> = cli
                    .as_str()?
                    .split_whitespace()
                    .skip(2)
                    .take_while(|w| !w.starts_with("--"))
                    .collect();
                if args.len() >= words.len()
                    && args[..words.len()] == words[..]
                    && best.as_ref().is_none_or(|b| b.0 < words.len())
                {
                    let schema = op["responses"]["200"]["content"]["application/json"]["schema"].clone();
                    best = Some((words.len(), format!("{} {path}", method.to_uppercase()), schema));
                }
            }
        }
    }
    best.map(|(_, call, schema)| (call, schema))
}

/// Checks a `coffre admin … --json` answer against its schema in the OpenAPI document, when
/// the document names the command.
pub fn check_against_openapi(args: &[&str], answer: &serde_json::Value) {
    let Some((call, schema)) = cli_answer_schema(args) else {
        return;
    };
    // The document as the root, so that its `#/components/schemas/…` references resolve.
    let mut root = openapi().clone();
    root["$ref"] = schema["$ref"].clone();
    let validator = jsonschema::draft202012::new(&root).expect("the OpenAPI document's schemas compile");
    let errors: Vec<String> = validator
        .iter_errors(answer)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "coffre admin {args:?} --json does not match the schema of {call}: {errors:?}\n{answer}"
    );
}

/// A TCP port free on 127.0.0.1 now (for a listener a test names before starting it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client_with(endpoint: &str, access: &str, secret: &str) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(client_builder(endpoint, access, secret).build())
}

pub fn client_builder(endpoint: &str, access: &str, secret: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("fr-par"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .force_path_style(true)
}

/// Deterministic test data.
pub fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = seed as u32 | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// PUTs `body` under `bucket/key` (the PUT must succeed).
pub async fn put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body.into()))
        .send()
        .await
        .unwrap();
}

/// The whole body of an object (the GET must succeed).
/// Turns versioning on for `bucket`.
pub async fn enable_versioning(c: &aws_sdk_s3::Client, bucket: &str) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// Writes `key` as a multipart upload of `parts`, in order; returns the whole object's bytes.
pub async fn multipart_put(c: &aws_sdk_s3::Client, bucket: &str, key: &str, parts: &[&[u8]]) -> Vec<u8> {
    let up = c
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (n, body) in (1..).zip(parts) {
        let part = c
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        done.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(part.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    parts.concat()
}

pub async fn get_body(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<u8> {
    let r = c.get_object().bucket(bucket).key(key).send().await.unwrap();
    r.body.collect().await.unwrap().into_bytes().to_vec()
}

pub fn md5_hex(d: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(d))
}

// ---- A minimal, independent SigV4 signer for hand-made requests (error cases). ----

fn sha256_hex(d: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, d))
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg.as_bytes())
        .as_ref()
        .to_vec()
}

pub fn amz_date(unix: u64) -> String {
    // civil date from unix seconds
    let days = (unix / 86400) as i64;
    let s = unix % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub struct Signed {
    pub headers: Vec<(String, String)>,
    pub signature: String,
    pub signing_key: Vec<u8>,
    pub date: String,
    pub scope: String,
}

/// Signs `method path?query` with the given extra headers (names lower-case) and payload hash.
pub fn sign(
    addr: &str,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload_hash: &str,
    unix: u64,
) -> Signed {
    sign_for(
        "s3",
        ACCESS,
        SECRET,
        addr,
        method,
        path,
        query,
        extra,
        payload_hash,
        unix,
    )
}

/// As `sign`, for a service (`s3`, `iam`, `sts`) and keys. Query APIs send no
/// `x-amz-content-sha256`: the payload hash is signed without the header.
#[allow(clippy::too_many_arguments)]
pub fn sign_for(
    service: &str,
    access: &str,
    secret: &str,
    addr: &str,
    method: &str,
    path: &str,
    query: &str,
    extra: &[(&str, &str)],
    payload_hash: &str,
    unix: u64,
) -> Signed {
    let date = amz_date(unix);
    let day = &date[..8];
    let mut headers: Vec<(String, String)> = vec![("host".into(), addr.into()), ("x-amz-date".into(), date.clone())];
    if service == "s3" {
        headers.push(("x-amz-content-sha256".into(), payload_hash.into()));
    }
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let canon_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let canonical = format!(
        "{method}\n{path}\n{query}\n{canon_headers}\n{}\n{payload_hash}",
        signed.join(";")
    );
    let scope = format!("{day}/fr-par/{service}/aws4_request");
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    );
    let mut k = hmac(format!("AWS4{secret}").as_bytes(), day);
    for p in ["fr-par", service, "aws4_request"] {
        k = hmac(&k, p);
    }
    let signature = hex::encode(hmac(&k, &sts));
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={access}/{scope},SignedHeaders={},Signature={signature}",
        signed.join(";")
    );
    headers.push(("authorization".into(), auth));
    Signed {
        headers,
        signature,
        signing_key: k,
        date,
        scope,
    }
}

pub fn chunk_signature(s: &Signed, previous: &str, data: &[u8]) -> String {
    let sts = format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{previous}\n{}\n{}",
        s.date,
        s.scope,
        sha256_hex(b""),
        sha256_hex(data)
    );
    hex::encode(hmac(&s.signing_key, &sts))
}

/// Sends a raw HTTP/1.1 request; returns (status, headers text, body).
pub fn raw_request(
    addr: &str,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers.iter().any(|(k, _)| k == "content-length") {
        req.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    req.push_str("connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).expect("write");
    s.write_all(body).expect("write body");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

pub fn sha256_of(d: &[u8]) -> String {
    sha256_hex(d)
}

pub fn trailer_signature(s: &Signed, previous: &str, trailer: &str) -> String {
    let sts = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{previous}\n{}",
        s.date,
        s.scope,
        sha256_hex(trailer.as_bytes())
    );
    hex::encode(hmac(&s.signing_key, &sts))
}

pub fn crc32_b64(d: &[u8]) -> String {
    use base64::Engine;
    let c = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32IsoHdlc, d) as u32;
    base64::engine::general_purpose::STANDARD.encode(c.to_be_bytes())
}

/// Shards held by all the server's stores, from the admin API's `/metrics`.
pub async fn total_shards(s: &Server) -> u64 {
    let admin = s.admin_endpoint.trim_start_matches("http://").to_string();
    let token = std::fs::read_to_string(s.data.join("admin.token")).expect("admin token");
    let (_, _, body) = raw_request(
        &admin,
        "GET",
        "/metrics",
        &[
            ("host".into(), admin.clone()),
            ("authorization".into(), format!("Bearer {}", token.trim())),
        ],
        b"",
    );
    body.lines()
        .filter(|l| l.starts_with("coffre_store_shards{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Polls `/metrics` (up to 10 s) until the stores hold `want` shards; returns the last count.
pub async fn wait_for_shards(s: &Server, want: u64) -> u64 {
    let mut got = 0;
    for _ in 0..100 {
        got = total_shards(s).await;
        if got == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    got
}

/// A signed call of the IAM or STS query API (`service`: `iam` or `sts`) with a form body.
pub fn query_api(s: &Server, service: &str, keys: (&str, &str), form: &str) -> (u16, String) {
    let ct = "application/x-www-form-urlencoded; charset=utf-8";
    let sg = sign_for(
        service,
        keys.0,
        keys.1,
        &s.addr,
        "POST",
        "/",
        "",
        &[("content-type", ct)],
        &sha256_of(form.as_bytes()),
        now(),
    );
    let (status, _, body) = raw_request(&s.addr, "POST", "/", &sg.headers, form.as_bytes());
    (status, body)
}

// ---- Users with policies, browser forms. ----

/// A user of `tenant` with an inline policy; returns its client.
pub fn user_with_policy(s: &Server, tenant: &str, user: &str, policy: &str) -> aws_sdk_s3::Client {
    let (ok, _, err) = s.admin(&["user", "create", "--tenant", tenant, user]);
    assert!(ok, "{err}");
    let f = s.data.join(format!("{tenant}-{user}.json"));
    std::fs::write(&f, policy).unwrap();
    let (ok, _, err) = s.admin(&[
        "user",
        "policy",
        "--tenant",
        tenant,
        user,
        "p1",
        "--file",
        f.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let k = s.admin_json(&["key", "create", "--tenant", tenant, "--user", user]);
    client_with(
        &s.endpoint,
        k["access_key"].as_str().unwrap(),
        k["secret_key"].as_str().unwrap(),
    )
}

pub fn hmac_sha256(key: &[u8], msg: &str) -> Vec<u8> {
    ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), msg.as_bytes())
        .as_ref()
        .to_vec()
}

/// A browser form: fields then the file, as `multipart/form-data`.
pub fn form_body(fields: &[(&str, String)], filename: &str, file: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----coffre-form-7d3a";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    b.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    b.extend_from_slice(file);
    b.extend(format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"ignored-after-file\"\r\n\r\nx\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// The SigV4 fields of a form signing `policy_json` (what boto3's generate_presigned_post makes).
pub fn signed_fields(policy_json: &str) -> Vec<(&'static str, String)> {
    signed_fields_of(ACCESS, SECRET, policy_json)
}

/// As `signed_fields`, with the keys given.
pub fn signed_fields_of(access: &str, secret: &str, policy_json: &str) -> Vec<(&'static str, String)> {
    let date = amz_date(now());
    let day = &date[..8];
    let policy = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, policy_json.as_bytes());
    let mut k = hmac_sha256(format!("AWS4{secret}").as_bytes(), day);
    for p in ["fr-par", "s3", "aws4_request"] {
        k = hmac_sha256(&k, p);
    }
    let signature = hex::encode(hmac_sha256(&k, &policy));
    vec![
        ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_string()),
        ("x-amz-credential", format!("{access}/{day}/fr-par/s3/aws4_request")),
        ("x-amz-date", date),
        ("policy", policy),
        ("x-amz-signature", signature),
    ]
}

pub fn post_form(s: &Server, bucket: &str, content_type: &str, body: &[u8]) -> (u16, String, String) {
    let h = vec![
        ("host".to_string(), s.addr.clone()),
        ("content-type".to_string(), content_type.to_string()),
        ("origin".to_string(), "https://app.example".to_string()),
    ];
    raw_request(&s.addr, "POST", &format!("/{bucket}"), &h, body)
}

pub fn expiration(offset_secs: i64) -> String {
    let t = (now() as i64 + offset_secs) as u64 * 1000;
    let iso = coffre_types::time::iso8601(t);
    format!("{}Z", &iso[..19])
}
