//! The `coffre server` command line: configuration file, virtual-hosted-style requests,
//! graceful shutdown, credentials on first start.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_maps_stores_and_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let disks: Vec<_> = (1..=3).map(|i| dir.path().join(format!("disk{i}"))).collect();
    let mut toml = String::from("[server]\nscheme = \"2+1\"\nregion = \"fr-par\"\n");
    for (i, d) in disks.iter().enumerate() {
        toml.push_str(&format!("[[stores]]\nid = \"disk-{i}\"\npath = \"{}\"\n", d.display()));
    }
    let cfg = dir.path().join("coffre.toml");
    std::fs::write(&cfg, toml).unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    );
    let c = s.client();
    c.create_bucket().bucket("cfg").send().await.unwrap();
    let d = data(3 << 20, 4);
    c.put_object()
        .bucket("cfg")
        .key("k")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    let got = get_body(&c, "cfg", "k").await;
    assert!(got[..] == d[..]);
    for disk in &disks {
        let segs = std::fs::read_dir(disk).unwrap().count();
        assert!(segs > 0, "{} holds a segment", disk.display());
    }
    assert!(
        !dir.path().join("data").join("nodes").exists(),
        "no default stores when stores are configured"
    );

    // A typo in the file is an error, not silently ignored.
    std::fs::write(&cfg, "[server]\nlisten_addr = \"x\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args([
            "server",
            "--data",
            dir.path().join("d2").to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listen_addr"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_hosted_style() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--domain", "s3.coffre.test"]);
    let c = s.client();
    c.create_bucket().bucket("vhost").send().await.unwrap();
    c.put_object()
        .bucket("vhost")
        .key("dir/obj")
        .body(ByteStream::from_static(b"virtual"))
        .send()
        .await
        .unwrap();
    let port = s.addr.rsplit(':').next().unwrap();
    let host = format!("vhost.s3.coffre.test:{port}");
    let sg = sign(&host, "GET", "/dir/obj", "", &[], &sha256_of(b""), now());
    let (status, _, body) = raw_request(&s.addr, "GET", "/dir/obj", &sg.headers, b"");
    assert_eq!((status, body.as_str()), (200, "virtual"));
    let sg = sign(&host, "GET", "/", "list-type=2", &[], &sha256_of(b""), now());
    let (status, _, body) = raw_request(&s.addr, "GET", "/?list-type=2", &sg.headers, b"");
    assert_eq!(status, 200);
    assert!(body.contains("<Key>dir/obj</Key>"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_in_flight_requests_finish() {
    use std::io::{Read, Write};
    let mut s = Server::start();
    s.client().create_bucket().bucket("term").send().await.unwrap();
    let d = data(8 << 20, 6);
    // A PUT whose body is half sent when SIGTERM arrives: the request is surely in flight.
    let sg = sign(
        &s.addr,
        "PUT",
        "/term/big",
        "",
        &[("content-length", &d.len().to_string())],
        "UNSIGNED-PAYLOAD",
        now(),
    );
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    let mut head = String::from("PUT /term/big HTTP/1.1\r\n");
    for (k, v) in &sg.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&d[..d.len() / 2]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    conn.write_all(&d[d.len() / 2..]).unwrap();
    let mut resp = vec![0u8; 4096];
    let n = conn.read(&mut resp).unwrap();
    let resp = String::from_utf8_lossy(&resp[..n]).to_string();
    assert!(resp.starts_with("HTTP/1.1 200"), "the in-flight PUT completes: {resp}");
    drop(conn);
    let status = s.child.wait().unwrap();
    assert!(status.success(), "clean exit after SIGTERM: {status}");
    // The object is there after a restart.
    let s2 = Server::start_at(&s.data, "127.0.0.1:0");
    assert!(get_body(&s2.client(), "term", "big").await == d);
}

#[test]
fn first_start_generates_credentials_and_prints_them_once_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args([
                "server",
                "--data",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
            ])
            .env_remove("COFFRE_ROOT_ACCESS_KEY")
            .env_remove("COFFRE_ROOT_SECRET_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = String::new();
        let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
        use std::io::BufRead;
        while !out.contains("Try it") {
            if r.read_line(&mut out).unwrap() == 0 {
                break;
            }
        }
        for _ in 0..3 {
            r.read_line(&mut out).unwrap();
        }
        let _ = child.kill();
        let _ = child.wait();
        out
    };
    let first = run();
    let creds = std::fs::read_to_string(data.join("credentials")).unwrap();
    let secret = creds.lines().nth(1).unwrap();
    // Not at a terminal (a service's output goes to journald or `docker logs`): the secret
    // is only in the 0600 file, which the banner names.
    assert!(
        !first.contains(secret),
        "a piped first start never prints the secret: {first}"
    );
    assert!(
        first.contains("not printed") && first.contains("credentials"),
        "{first}"
    );
    assert!(first.contains("aws --endpoint-url http://127.0.0.1:"), "{first}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(data.join("credentials"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(data.join("master.key")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let second = run();
    assert!(!second.contains(secret), "the secret is shown only once");
    assert!(second.contains(creds.lines().next().unwrap()));

    // At a terminal (`script` gives the server one), the first start shows the secret once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let bin = env!("CARGO_BIN_EXE_coffre");
    let command = format!(
        "{bin} server --data {} --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0",
        data.display()
    );
    let mut child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env_remove("COFFRE_ROOT_ACCESS_KEY")
        .env_remove("COFFRE_ROOT_SECRET_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = String::new();
    let mut r = std::io::BufReader::new(child.stdout.take().unwrap());
    use std::io::BufRead;
    while !out.contains("Try it") {
        if r.read_line(&mut out).unwrap() == 0 {
            break;
        }
    }
    // The server is `script`'s child: ended by its own data directory (unique to this test),
    // then `script` ends with it.
    let _ = Command::new("pkill").args(["-f", data.to_str().unwrap()]).status();
    let _ = child.wait();
    let creds = std::fs::read_to_string(data.join("credentials")).unwrap();
    let secret = creds.lines().nth(1).unwrap();
    assert!(
        out.contains(secret),
        "a first start at a terminal shows the secret: {out}"
    );
}

#[test]
fn short_root_secrets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for secret in ["", "short-secret"] {
        let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args(["server", "--data", dir.path().join("data").to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .env("COFFRE_ROOT_ACCESS_KEY", "ROOTKEY")
            .env("COFFRE_ROOT_SECRET_KEY", secret)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{secret:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("COFFRE_ROOT_SECRET_KEY") && err.contains("16"), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_rotation_rewraps_without_rewriting_data() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let mut s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("rot").send().await.unwrap();
    let d = data(5 << 20, 8);
    c.put_object()
        .bucket("rot")
        .key("obj")
        .body(ByteStream::from(d.clone()))
        .tagging("k=v")
        .send()
        .await
        .unwrap();
    let id = c
        .create_multipart_upload()
        .bucket("rot")
        .key("mp")
        .content_type("text/x-mp")
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string();
    let part = c
        .upload_part()
        .bucket("rot")
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    // A COMPLIANCE-locked version made noncurrent by an overwrite: rotating the master key
    // re-wraps its data key like a current one's (Object Lock outlives key rotations).
    c.create_bucket()
        .bucket("rot-lock")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let locked = c
        .put_object()
        .bucket("rot-lock")
        .key("backup")
        .body(ByteStream::from_static(b"locked bytes"))
        .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Compliance)
        .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(now() as i64 + 86_400))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    put(&c, "rot-lock", "backup", b"newer".to_vec()).await;
    s.kill();
    let old_key = std::fs::read_to_string(s.data.join("master.key")).unwrap();
    let segments_before: Vec<_> = std::fs::read_dir(s.data.join("nodes/node-1"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();

    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["rotate-master-key", "--data", s.data.to_str().unwrap()])
        .env_remove("COFFRE_MASTER_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("3 objects, 1 parts, 1 uploads"), "{said}");
    let new_key = std::fs::read_to_string(s.data.join("master.key")).unwrap();
    assert_ne!(old_key, new_key);
    assert!(!s.data.join("master.key.next").exists());
    let segments_after: Vec<_> = std::fs::read_dir(s.data.join("nodes/node-1"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .collect();
    assert_eq!(segments_before, segments_after, "no data rewritten");

    let s2 = Server::start_at(&s.data, "127.0.0.1:0");
    let c2 = s2.client();
    let got = get_body(&c2, "rot", "obj").await;
    assert!(got[..] == d[..]);
    let old_version = c2
        .get_object()
        .bucket("rot-lock")
        .key("backup")
        .version_id(&locked)
        .send()
        .await
        .unwrap();
    assert_eq!(
        old_version.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    assert_eq!(&old_version.body.collect().await.unwrap().to_vec()[..], b"locked bytes");
    let e = c2
        .delete_object()
        .bucket("rot-lock")
        .key("backup")
        .version_id(&locked)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.into_service_error().meta().code(), Some("AccessDenied"));
    assert_eq!(
        c2.get_object_tagging()
            .bucket("rot")
            .key("obj")
            .send()
            .await
            .unwrap()
            .tag_set()[0]
            .value(),
        "v"
    );
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    c2.complete_multipart_upload()
        .bucket("rot")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    let h = c2.head_object().bucket("rot").key("mp").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/x-mp"));
    drop(s2);

    // The old key alone can no longer open anything: the server refuses to start, saying so.
    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args([
            "server",
            "--data",
            s.data.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .env("COFFRE_MASTER_KEY", old_key.trim())
        .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
        .env("COFFRE_ROOT_SECRET_KEY", SECRET)
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the master key the store was written with"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_limit_from_the_file_and_for_the_embedded_server_only() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("coffre.toml");
    std::fs::write(&cfg, "[server]\ninline_max = \"8K\"\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &["--config", cfg.to_str().unwrap()],
    );
    let c = s.client();
    c.create_bucket().bucket("lim").send().await.unwrap();
    for (key, n, inline) in [("at", 8 << 10, true), ("over", (8 << 10) + 1, false)] {
        c.put_object()
            .bucket("lim")
            .key(key)
            .body(ByteStream::from(data(n, 1)))
            .send()
            .await
            .unwrap();
        let v = s.admin_json(&["placement", "lim", key]);
        assert_eq!(v["inline"].as_bool(), Some(inline), "{key}: {v}");
        assert_eq!(get_body(&c, "lim", key).await, data(n, 1));
    }
    drop(s);

    // Refused before anything is opened: over the bound, and in a cluster (whose metadata is
    // on gateways, not with the shards).
    let refused = |toml: &str, extra: &[&str], says: &str| {
        std::fs::write(&cfg, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args(["server", "--data", dir.path().join("d2").to_str().unwrap()])
            .args(["--config", cfg.to_str().unwrap()])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(!out.status.success());
        assert!(err.contains(says), "{err}");
    };
    refused("[server]\ninline_max = \"1M\"\n", &[], "at most 65536 bytes");
    let cluster = "[cluster]\nca = \"/nonexistent/ca.pem\"\nidentity = \"/nonexistent/gw\"\n";
    refused(cluster, &["--inline-max", "16K"], "inlined only by the embedded server");
    // Without the flag a cluster simply does not inline: what fails here is the missing CA.
    std::fs::write(&cfg, cluster).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["server", "--data", dir.path().join("d3").to_str().unwrap()])
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("inline"));
}

/// Finding 7 of the third review: a root key an operator disabled is not re-enabled by a
/// restart (which used to do it silently).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_root_key_stays_disabled_across_restarts() {
    let mut s = Server::start();
    s.client().list_buckets().send().await.unwrap();
    let (ok, _, err) = s.admin(&["key", "disable", "--tenant", "default", ACCESS]);
    assert!(ok, "{err}");
    assert!(s.client().list_buckets().send().await.is_err());
    s.kill();
    let again = Server::start_at(&s.data, "127.0.0.1:0");
    let e = again.client().list_buckets().send().await.unwrap_err();
    let status = e.raw_response().map(|r| r.status().as_u16());
    assert_eq!(status, Some(403), "still refused after the restart");
    let keys = again.admin_json(&["key", "list", "--tenant", "default"]);
    let root = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["access_key"] == ACCESS)
        .unwrap_or_else(|| panic!("{keys}"));
    assert_eq!(root["enabled"], false, "{keys}");
}
