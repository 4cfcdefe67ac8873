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
