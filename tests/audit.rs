//! End-to-end: the audit log through the real `coffre server`, the AWS SDK for Rust and the
//! real `coffre admin audit …` / `coffre audit verify` commands.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn coffre(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(args)
        .output()
        .expect("run coffre")
}

/// `coffre audit verify --dir DIR --trust FILE --json`: (exit 0, report).
fn verify_offline(dir: &Path, trust: &Path) -> (bool, Value) {
    let out = coffre(&[
        "audit",
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "--trust",
        trust.to_str().unwrap(),
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "audit verify printed no report ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

fn events(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut a = vec!["audit", "search"];
    a.extend_from_slice(args);
    let v = s.admin_json(&a);
    v["events"].as_array().cloned().unwrap_or_default()
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

const ROOT: &str = "arn:aws:iam::default:user/admin";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_operations_produce_exactly_the_expected_entries() {
    let s = Server::start();
    let c = s.client();
    let (t2_access, t2_secret) = s.tenant("t2", &[]);
    c.create_bucket().bucket("audited").send().await.unwrap();
    put(&c, "audited", "doc.txt", b"hello audit".to_vec()).await;
    assert_eq!(get_body(&c, "audited", "doc.txt").await, b"hello audit");
    c.head_object().bucket("audited").key("doc.txt").send().await.unwrap();
    // Refused: another tenant's key, then a wrong secret.
    let other = client_with(&s.endpoint, &t2_access, &t2_secret);
    assert!(other
        .get_object()
        .bucket("audited")
        .key("doc.txt")
        .send()
        .await
        .is_err());
    let forged = client_with(&s.endpoint, ACCESS, "not-the-secret");
    let r = forged
        .put_object()
        .bucket("audited")
        .key("forged")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(r.is_err());
    c.delete_object().bucket("audited").key("doc.txt").send().await.unwrap();
    // IAM and STS calls of tenant t2: one made, one refused, one question.
    let t2 = (t2_access.as_str(), t2_secret.as_str());
    assert_eq!(query_api(&s, "iam", t2, "Action=CreateUser&UserName=compta").0, 200);
    assert_eq!(query_api(&s, "iam", t2, "Action=CreateUser&UserName=compta").0, 409);
    assert_eq!(query_api(&s, "sts", t2, "Action=GetCallerIdentity").0, 200);

    let got: Vec<(String, String, u64, String, String)> = events(&s, &["--bucket", "audited"])
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_string(),
                e["key"].as_str().unwrap_or("").to_string(),
                e["status"].as_u64().unwrap(),
                e["error"].as_str().unwrap_or("").to_string(),
                e["principal"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let row = |op: &str, key: &str, status: u64, error: &str, principal: &str| {
        (
            op.to_string(),
            key.to_string(),
            status,
            error.to_string(),
            principal.to_string(),
        )
    };
    assert_eq!(
        got,
        vec![
            row("CreateBucket", "", 200, "", ROOT),
            row("PutObject", "doc.txt", 200, "", ROOT),
            row("GetObject", "doc.txt", 200, "", ROOT),
            row("HeadObject", "doc.txt", 200, "", ROOT),
            row(
                "GetObject",
                "doc.txt",
                403,
                "AccessDenied",
                "arn:aws:iam::t2:user/admin"
            ),
            row("PutObject", "forged", 403, "SignatureDoesNotMatch", "anonymous"),
            row("DeleteObject", "doc.txt", 204, "", ROOT),
        ]
    );
    let all = events(&s, &["--bucket", "audited"]);
    // Bytes, the connection, the access keys (even the forged request's claim), the tenants.
    assert_eq!(all[1]["bytes_in"], 11);
    assert_eq!(all[2]["bytes_out"], 11);
    assert!(all[2]["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(all[2]["tls"], false);
    assert_eq!(all[2]["access_key"], ACCESS);
    assert_eq!(all[4]["access_key"], t2_access.as_str());
    assert_eq!(all[5]["access_key"], ACCESS);
    assert!(all
        .iter()
        .all(|e| e["tenant"] == "default" && !e["request_id"].as_str().unwrap().is_empty()));
    // The operator's action and the tenant's IAM and STS calls, under the tenant they concern.
    let t2_events: Vec<(String, u64, String)> = events(&s, &["--tenant", "t2"])
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
                e["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let t = |op: &str, status: u64, error: &str| (op.to_string(), status, error.to_string());
    assert_eq!(
        t2_events,
        vec![
            t("admin:TenantsCreate", 200, ""),
            t("CreateUser", 200, ""),
            t("CreateUser", 409, "EntityAlreadyExists"),
            t("GetCallerIdentity", 200, ""),
        ]
    );
    // No secret, no signature in the log.
    for p in segments(&s.data.join("audit")) {
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(SECRET) && !text.contains(&t2_secret) && !text.contains("Signature="));
    }
    // The chain verifies online, and offline with the public key beside the segments.
    let v = s.admin_json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let (ok, v) = verify_offline(&s.data.join("audit"), &s.data.join("audit/audit.pub"));
    assert!(ok, "{v}");
}

/// Applies `edit` to the lines of the segment holding entry `n` in a copy of `audit`, and
/// returns what the offline verifier says of the copy.
fn tamper(audit: &Path, work: &Path, name: &str, n: u64, edit: impl Fn(&mut Vec<String>, usize)) -> Value {
    let copy = work.join(name);
    copy_dir(audit, &copy);
    let prefix = format!("{{\"n\":{n},");
    let seg = segments(&copy)
        .into_iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .any(|l| l.starts_with(&prefix))
        })
        .expect("the entry's segment");
    let mut lines: Vec<String> = std::fs::read_to_string(&seg)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let i = lines.iter().position(|l| l.starts_with(&prefix)).unwrap();
    edit(&mut lines, i);
    std::fs::write(&seg, lines.join("\n") + "\n").unwrap();
    let (ok, v) = verify_offline(&copy, &audit.join("audit.pub"));
    assert!(!ok, "{name}: not detected");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_found_where_it_is_and_a_shortened_chain_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_at(&data, "127.0.0.1:0");
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    for i in 0..20 {
        put(&c, "bkt", &format!("k{i}"), vec![i as u8; 10]).await;
    }
    assert_eq!(s.admin_json(&["audit", "verify"])["ok"], true);
    s.kill();
    let audit = data.join("audit");
    let (ok, v) = verify_offline(&audit, &audit.join("audit.pub"));
    assert!(ok, "{v}");
    let last = v["last_entry"].as_u64().unwrap();
    let work = dir.path().join("work");
    let problem = |v: &Value| {
        (
            v["problem"]["position"]["entry"].as_u64().unwrap(),
            v["problem"]["position"]["segment"].as_str().unwrap().to_string(),
        )
    };
    // One byte changed in entry 10.
    let v = tamper(&audit, &work, "edit", 10, |l, i| {
        l[i] = l[i].replacen("PutObject", "PutObjecT", 1)
    });
    assert_eq!(problem(&v).0, 10, "{v}");
    // Entry 12 deleted.
    let v = tamper(&audit, &work, "delete", 12, |l, i| {
        l.remove(i);
    });
    assert_eq!(problem(&v).0, 12, "{v}");
    // Entries 14 and 15 swapped.
    let v = tamper(&audit, &work, "swap", 14, |l, i| l.swap(i, i + 1));
    assert_eq!(problem(&v).0, 14, "{v}");
    // A key other than the log's is not trusted.
    let other = work.join("other.pub");
    std::fs::write(&other, format!("{}\n", hex::encode([7u8; 32]))).unwrap();
    let out = coffre(&[
        "audit",
        "verify",
        "--dir",
        audit.to_str().unwrap(),
        "--trust",
        other.to_str().unwrap(),
    ]);
    assert!(!out.status.success());

    // The tail cut off the real log: the online check and the start-up both notice.
    let seg = segments(&audit).pop().unwrap();
    let text = std::fs::read_to_string(&seg).unwrap();
    let cut = text.find(&format!("{{\"n\":{},", last - 3)).unwrap();
    std::fs::write(&seg, &text[..cut]).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args([
            "server",
            "--data",
            data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
        .env("COFFRE_ROOT_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("truncated") && err.contains("--audit-accept-truncation"),
        "{err}"
    );
    let s = Server::start_with(&data, "127.0.0.1:0", &["--audit-accept-truncation"]);
    let v = s.admin_json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let accepted = events(&s, &[]);
    let e = accepted
        .iter()
        .find(|e| e["op"] == "system:AuditTruncationAccepted")
        .expect("the acceptance is logged");
    assert!(e["detail"].as_str().unwrap().contains(&format!("entry {last}")), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_writes_keeps_every_acknowledged_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_at(&data, "127.0.0.1:0");
    let c = s.client();
    c.create_bucket().bucket("load").send().await.unwrap();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (c, acked) = (c.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let key = format!("w{w}-{i}");
                let r = c
                    .put_object()
                    .bucket("load")
                    .key(&key)
                    .body(ByteStream::from(vec![w as u8; 4096]))
                    .send()
                    .await;
                match r {
                    Ok(_) => acked.lock().unwrap().push(key),
                    Err(_) => break,
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    s.kill(); // SIGKILL
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "only {} writes acknowledged", acked.len());
    let s = Server::start_at(&data, "127.0.0.1:0");
    let v = s.admin_json(&["audit", "verify"]);
    assert_eq!(v["ok"], true, "{v}");
    let logged: std::collections::HashSet<String> = events(&s, &["--bucket", "load", "--limit", "100000"])
        .iter()
        .filter(|e| e["op"] == "PutObject" && e["status"] == 200)
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = acked.iter().filter(|k| !logged.contains(*k)).collect();
    assert!(missing.is_empty(), "acknowledged but not in the audit log: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_holds_one_tenant_and_verifies_offline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start();
    let (a_access, a_secret) = s.tenant("alpha", &[]);
    let (b_access, b_secret) = s.tenant("beta", &[]);
    let a = client_with(&s.endpoint, &a_access, &a_secret);
    let b = client_with(&s.endpoint, &b_access, &b_secret);
    a.create_bucket().bucket("alpha-bucket").send().await.unwrap();
    b.create_bucket().bucket("beta-bucket").send().await.unwrap();
    for i in 0..5 {
        put(&a, "alpha-bucket", &format!("a-secret-name-{i}"), vec![1u8; 100]).await;
        put(&b, "beta-bucket", &format!("b-secret-name-{i}"), vec![2u8; 100]).await;
    }
    let out = dir.path().join("alpha.jsonl");
    let (ok, _, err) = s.admin(&["audit", "export", "--tenant", "alpha", "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("a-secret-name-4") && text.contains("alpha-bucket"));
    assert!(
        !text.contains("beta") && !text.contains("b-secret-name"),
        "another tenant's events leaked"
    );
    let (ok, v) = verify_offline(&out, &s.data.join("audit/audit.pub"));
    assert!(ok, "{v}");
    assert!(v["entries"].as_u64().unwrap() > v["redacted"].as_u64().unwrap());
    // An entry of alpha's removed from the export is noticed.
    let lines: Vec<&str> = text.lines().collect();
    let i = lines.iter().position(|l| l.contains("a-secret-name-2")).unwrap();
    let mut cut = lines.clone();
    cut.remove(i);
    std::fs::write(&out, cut.join("\n") + "\n").unwrap();
    let (ok, _) = verify_offline(&out, &s.data.join("audit/audit.pub"));
    assert!(!ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_are_forwarded_to_a_syslog_collector() {
    use std::io::Read;
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", collector.local_addr().unwrap());
    let received = std::thread::spawn(move || {
        let (mut conn, _) = collector.accept().unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        while !text.contains("\"op\":\"PutObject\"") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "the collector's connection closed");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    });
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--audit-syslog", &target]);
    let c = s.client();
    c.create_bucket().bucket("siem").send().await.unwrap();
    put(&c, "siem", "forwarded", b"x".to_vec()).await;
    let text = tokio::task::spawn_blocking(move || received.join().unwrap())
        .await
        .unwrap();
    // RFC 5424 with octet counting: `LEN <110>1 TIME HOST coffre - audit - {event}`.
    let first = text.split_once(' ').unwrap();
    assert!(
        first.0.parse::<usize>().is_ok() && first.1.starts_with("<110>1 "),
        "{text}"
    );
    assert!(
        text.contains(" server coffre - audit - {") && text.contains("\"key\":\"forwarded\""),
        "{text}"
    );
}

/// Sends a request whole, waits `delay`, and closes the connection, whatever the server
/// answered by then (before, while or after it handles the request).
fn send_and_hang_up(addr: &str, method: &str, target: &str, headers: &[(String, String)], body: &[u8], delay: u64) {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let mut req = format!("{method} {target} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let _ = s.write_all(req.as_bytes());
    let _ = s.write_all(body);
    std::thread::sleep(std::time::Duration::from_millis(delay));
    let _ = s.shutdown(std::net::Shutdown::Both);
}

/// A deterministic stream of delays (0 to 15 ms).
struct Delays(u64);

impl Delays {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % 16
    }
}

/// The entries matching `op` and `matches`, whose status says the change was made (`ok`, or
/// 0 for an entry recovered from its note).
fn made(entries: &[Value], op: &str, ok: &[u64], matches: impl Fn(&Value) -> bool) -> usize {
    entries
        .iter()
        .filter(|e| e["op"] == op && matches(e))
        .filter(|e| {
            let s = e["status"].as_u64().unwrap_or(999);
            s == 0 || ok.contains(&s)
        })
        .count()
}

/// Clients PUT, DELETE, create IAM users and delete users through the admin API, and hang up
/// at random points: afterwards every change visible in the store has exactly one audit
/// entry, and every entry of a change is visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_of_clients_that_hang_up_have_exactly_one_entry_each() {
    const N: usize = 40;
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("hangups").send().await.unwrap();
    for i in 0..N {
        put(&c, "hangups", &format!("del-{i}"), b"to delete".to_vec()).await;
    }
    for i in 0..N / 2 {
        let (status, body) = query_api(
            &s,
            "iam",
            (ACCESS, SECRET),
            &format!("Action=CreateUser&UserName=du{i}"),
        );
        assert_eq!(status, 200, "{body}");
    }
    let token = std::fs::read_to_string(s.data.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let admin = s.admin_endpoint.trim_start_matches("http://").to_string();
    let addr = s.addr.clone();
    let mut delays = Delays(29);
    let mut jobs: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
    for i in 0..N {
        let (d1, d2) = (delays.next(), delays.next());
        let body = format!("hung-up put {i}").into_bytes();
        let path = format!("/hangups/put-{i}");
        let sg = sign(&addr, "PUT", &path, "", &[], &sha256_of(&body), now());
        let a = addr.clone();
        jobs.push(Box::new(move || {
            send_and_hang_up(&a, "PUT", &path, &sg.headers, &body, d1)
        }));
        let path = format!("/hangups/del-{i}");
        let sg = sign(&addr, "DELETE", &path, "", &[], &sha256_of(b""), now());
        let a = addr.clone();
        jobs.push(Box::new(move || {
            send_and_hang_up(&a, "DELETE", &path, &sg.headers, b"", d2)
        }));
    }
    for i in 0..N / 2 {
        let (d1, d2) = (delays.next(), delays.next());
        let form = format!("Action=CreateUser&UserName=hu{i}");
        let ct = "application/x-www-form-urlencoded; charset=utf-8";
        let sg = sign_for(
            "iam",
            ACCESS,
            SECRET,
            &addr,
            "POST",
            "/",
            "",
            &[("content-type", ct)],
            &sha256_of(form.as_bytes()),
            now(),
        );
        let a = addr.clone();
        jobs.push(Box::new(move || {
            send_and_hang_up(&a, "POST", "/", &sg.headers, form.as_bytes(), d1)
        }));
        let headers = vec![
            ("host".to_string(), admin.clone()),
            ("authorization".to_string(), format!("Bearer {token}")),
        ];
        let (a, path) = (admin.clone(), format!("/v1/tenants/default/users/du{i}"));
        jobs.push(Box::new(move || {
            send_and_hang_up(&a, "DELETE", &path, &headers, b"", d2)
        }));
    }
    let threads: Vec<_> = jobs.into_iter().map(std::thread::spawn).collect();
    for t in threads {
        t.join().unwrap();
    }

    // What the store holds and what the log says, once both stop moving.
    let snapshot = || async {
        let keys: std::collections::BTreeSet<String> = c
            .list_objects_v2()
            .bucket("hangups")
            .send()
            .await
            .unwrap()
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        let users: std::collections::BTreeSet<String> = s.admin_json(&["user", "list", "--tenant", "default"])["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["user"].as_str().unwrap().to_string())
            .collect();
        let entries = events(&s, &["--tenant", "default", "--limit", "100000"]);
        (keys, users, entries)
    };
    let mut last = snapshot().await;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now = snapshot().await;
        let settled = now.0 == last.0 && now.1 == last.1;
        last = now;
        if settled {
            break;
        }
    }
    let (keys, users, entries) = last;
    let mut changed = 0;
    for i in 0..N {
        let put_key = format!("put-{i}");
        let n = made(&entries, "PutObject", &[200], |e| e["key"] == put_key.as_str());
        let present = keys.contains(&put_key);
        assert_eq!(
            n,
            usize::from(present),
            "{put_key}: present {present}, {n} entries of a write"
        );
        let del_key = format!("del-{i}");
        let n = made(&entries, "DeleteObject", &[204], |e| e["key"] == del_key.as_str());
        let gone = !keys.contains(&del_key);
        assert_eq!(
            n,
            usize::from(gone),
            "{del_key}: gone {gone}, {n} entries of a deletion"
        );
        changed += usize::from(present) + usize::from(gone);
    }
    for i in 0..N / 2 {
        let user = format!("hu{i}");
        let named = format!("UserName={user}");
        let n = made(&entries, "CreateUser", &[200], |e| {
            e["detail"].as_str().is_some_and(|d| d.split(' ').any(|w| w == named))
        });
        let present = users.contains(&user);
        assert_eq!(
            n,
            usize::from(present),
            "{user}: created {present}, {n} entries of a creation"
        );
        let user = format!("du{i}");
        let path = format!("DELETE /v1/tenants/default/users/{user}");
        let n = made(&entries, "admin:TenantsUsersDelete", &[200, 204], |e| {
            e["detail"] == path.as_str()
        });
        let gone = !users.contains(&user);
        assert_eq!(
            n,
            usize::from(gone),
            "{user}: deleted {gone}, {n} entries of a deletion"
        );
        changed += usize::from(present) + usize::from(gone);
    }
    // The clients hung up at every point: some changes were made, not necessarily all.
    assert!(changed > 0, "no request was handled at all");
    // Every note was settled: nothing is left for a later recovery to write twice.
    assert_eq!(
        made(&entries, "PutObject", &[], |_| true) + made(&entries, "DeleteObject", &[], |_| true),
        0,
        "no entry was recovered from a note while the server ran"
    );
}

/// Findings 8, 9 and 10: an entry names everything its request acted on: a copy's source
/// (filed under the source's owner, allowed or refused), each key of a DeleteObjects, the
/// user and key of an IAM call, and the signer and key of a form upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_name_everything_their_request_acted_on() {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let s = Server::start();
    let (ak, sk) = s.tenant("source-t", &[]);
    let (bk, bs) = s.tenant("copieur", &[]);
    let (ck, cs) = s.tenant("curieux", &[]);
    let owner = client_with(&s.endpoint, &ak, &sk);
    let copier = client_with(&s.endpoint, &bk, &bs);
    let nosy = client_with(&s.endpoint, &ck, &cs);
    owner.create_bucket().bucket("src").send().await.unwrap();
    put(&owner, "src", "doc", b"shared".to_vec()).await;
    owner
        .put_bucket_policy()
        .bucket("src")
        .policy(r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"copieur"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::src/*"}]}"#)
        .send()
        .await
        .unwrap();
    copier.create_bucket().bucket("dst").send().await.unwrap();
    nosy.create_bucket().bucket("nosy").send().await.unwrap();
    copier
        .copy_object()
        .bucket("dst")
        .key("copy")
        .copy_source("src/doc")
        .send()
        .await
        .unwrap();
    assert!(nosy
        .copy_object()
        .bucket("nosy")
        .key("copy")
        .copy_source("src/doc")
        .send()
        .await
        .is_err());
    let sources: Vec<(String, u64)> = events(&s, &["--tenant", "source-t"])
        .iter()
        .filter(|e| e["op"] == "CopySource")
        .map(|e| {
            assert_eq!(e["bucket"], "src");
            assert_eq!(e["key"], "doc");
            (
                e["principal"].as_str().unwrap().to_string(),
                e["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sources,
        vec![
            ("arn:aws:iam::copieur:user/admin".to_string(), 200),
            ("arn:aws:iam::curieux:user/admin".to_string(), 403)
        ]
    );

    // Each key of a DeleteObjects.
    let c = s.client();
    c.create_bucket().bucket("batch").send().await.unwrap();
    for k in ["a", "b"] {
        put(&c, "batch", k, b"x".to_vec()).await;
    }
    let objects = ["a", "b"]
        .iter()
        .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
        .collect::<Vec<_>>();
    c.delete_objects()
        .bucket("batch")
        .delete(Delete::builder().set_objects(Some(objects)).build().unwrap())
        .send()
        .await
        .unwrap();
    let batch = events(&s, &["--bucket", "batch"]);
    let deleted: Vec<(&str, u64)> = batch
        .iter()
        .filter(|e| e["op"] == "BatchDeleteObject")
        .map(|e| (e["key"].as_str().unwrap(), e["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(deleted, vec![("a", 204), ("b", 204)]);
    let request = batch.iter().find(|e| e["op"] == "DeleteObjects").unwrap();
    assert!(batch
        .iter()
        .filter(|e| e["op"] == "BatchDeleteObject")
        .all(|e| e["request_id"] == request["request_id"]));

    // IAM calls name the user and the key they acted on.
    let (status, body) = query_api(&s, "iam", (ACCESS, SECRET), "Action=CreateUser&UserName=compta");
    assert_eq!(status, 200, "{body}");
    let (status, body) = query_api(&s, "iam", (ACCESS, SECRET), "Action=CreateAccessKey&UserName=compta");
    assert_eq!(status, 200, "{body}");
    let key_id = body.split("<AccessKeyId>").nth(1).unwrap().split('<').next().unwrap();
    let iam = events(&s, &["--tenant", "default"]);
    let detail_of = |op: &str| {
        iam.iter()
            .filter(|e| e["op"] == op)
            .map(|e| e["detail"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(detail_of("CreateUser"), vec!["UserName=compta".to_string()]);
    assert_eq!(
        detail_of("CreateAccessKey"),
        vec![format!("UserName=compta AccessKeyId={key_id}")]
    );

    // A signed form upload names its signer, its key and the object.
    c.create_bucket().bucket("forms").send().await.unwrap();
    let policy = format!(
        r#"{{"expiration": "{}", "conditions": [{{"bucket": "forms"}}, ["starts-with", "$key", ""],
        {{"x-amz-algorithm": "AWS4-HMAC-SHA256"}}, ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]}}"#,
        expiration(600)
    );
    let mut fields: Vec<(&str, String)> = vec![("key", "form-upload".to_string())];
    fields.extend(signed_fields(&policy));
    let (ct, form) = form_body(&fields, "f.txt", b"form data");
    let (status, _, xml) = post_form(&s, "forms", &ct, &form);
    assert_eq!(status, 204, "{xml}");
    let post = events(&s, &["--bucket", "forms"])
        .into_iter()
        .find(|e| e["op"] == "PostObject")
        .unwrap();
    assert_eq!(post["principal"], ROOT);
    assert_eq!(post["access_key"], ACCESS);
    assert_eq!(post["key"], "form-upload");
    assert_eq!(post["status"], 204);
}
