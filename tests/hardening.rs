//! The store under attack and under concurrency: each test here is a finding of the hardening
//! review (issue 8) that failed before its fix, driven through the real binary.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("").to_string()
}

const UNSIGNED: &str = "UNSIGNED-PAYLOAD";

fn status_of<E>(e: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    e.raw_response().map_or(0, |r| r.status().as_u16())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presigned_put_plus_an_unsigned_copy_source_is_refused() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("vault").send().await.unwrap();
    put(&c, "vault", "secret", b"top secret").await;
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let p = c
        .put_object()
        .bucket("vault")
        .key("upload")
        .presigned(cfg)
        .await
        .unwrap();
    let target = p.uri().strip_prefix(&s.endpoint).unwrap().to_string();
    let host = ("host".to_string(), s.addr.clone());
    // The URL as given works for what it was signed for…
    let (status, _, _) = raw_request(&s.addr, "PUT", &target, std::slice::from_ref(&host), b"mine");
    assert_eq!(status, 200);
    // …but not as a copy of another object, nor with metadata or tags nobody signed.
    for extra in [
        ("x-amz-copy-source", "/vault/secret"),
        ("x-amz-meta-owner", "mallory"),
        ("x-amz-tagging", "public=yes"),
        ("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg=="),
    ] {
        let (status, _, body) = raw_request(
            &s.addr,
            "PUT",
            &target,
            &[host.clone(), (extra.0.into(), extra.1.into())],
            b"",
        );
        assert_eq!(status, 403, "{extra:?}: {body}");
        assert!(body.contains("AccessDenied") && body.contains(extra.0), "{body}");
    }
    assert_eq!(
        get_body(&c, "vault", "upload").await,
        b"mine",
        "nothing was copied over it"
    );
    // A header-signed request with an extra unsigned x-amz-* header is refused the same way.
    let mut signed = sign(&s.addr, "PUT", "/vault/k2", "", &[], UNSIGNED, now());
    signed.headers.push(("x-amz-meta-added".into(), "1".into()));
    let (status, _, body) = raw_request(&s.addr, "PUT", "/vault/k2", &signed.headers, b"x");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("were not signed: x-amz-meta-added"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_heads_cannot_exhaust_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        &dir.path().join("d"),
        "127.0.0.1:0",
        &["--max-connections-per-ip", "20", "--header-timeout-secs", "5"],
    );
    // One address opens 40 connections and sends half a request head on each.
    let mut conns = Vec::new();
    for _ in 0..40 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
        let mut conn = socket
            .connect(s.addr.parse().unwrap())
            .await
            .unwrap()
            .into_std()
            .unwrap();
        conn.set_nonblocking(false).unwrap();
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        conns.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (mut slow, mut refused) = (Vec::new(), 0);
    for mut conn in conns {
        conn.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 512];
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => {
                let answer = String::from_utf8_lossy(&buf[..n]);
                assert!(
                    answer.starts_with("HTTP/1.1 503") && answer.contains("SlowDown"),
                    "{answer}"
                );
                refused += 1;
            }
            _ => slow.push(conn),
        }
    }
    assert_eq!(
        (slow.len(), refused),
        (20, 20),
        "the cap per address holds the flood at 20"
    );
    // Everyone else is still served meanwhile.
    let (status, _, body) = raw_request(&s.addr, "GET", "/health", &[("host".into(), s.addr.clone())], b"");
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    // The half-sent heads are cut once their time is up, and their places come back.
    for mut conn in slow {
        conn.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        let mut rest = Vec::new();
        let _ = conn.read_to_end(&mut rest);
    }
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.3:0".parse().unwrap()).unwrap();
    let mut conn = socket
        .connect(s.addr.parse().unwrap())
        .await
        .unwrap()
        .into_std()
        .unwrap();
    conn.set_nonblocking(false).unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_with_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(&dir.path().join("d"), "127.0.0.1:0", &["--body-timeout-secs", "1"]);
    s.client().create_bucket().bucket("bkt").send().await.unwrap();
    let signed = sign(&s.addr, "PUT", "/bkt/slow", "", &[], UNSIGNED, now());
    let mut conn = std::net::TcpStream::connect(&s.addr).unwrap();
    let mut head = "PUT /bkt/slow HTTP/1.1\r\ncontent-length: 1000\r\n".to_string();
    for (k, v) in &signed.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&[b'x'; 10]).unwrap(); // … and then nothing.
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("RequestTimeout"), "{answer}");
    let e = s
        .client()
        .head_object()
        .bucket("bkt")
        .key("slow")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&e), 404, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_numbers_and_xml_get_s3_errors() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    put(&c, "bkt", "k", b"0123456789").await;
    // The last byte of the widest range there is: the object, whole.
    let r = c
        .get_object()
        .bucket("bkt")
        .key("k")
        .range("bytes=0-18446744073709551615")
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_range(), Some("bytes 0-9/10"));
    assert_eq!(r.body.collect().await.unwrap().into_bytes().as_ref(), b"0123456789");
    // DeleteObjects: 1001 keys is MalformedXML; so is a body of 100,000 tiny elements, stopped
    // at the first element over the limit.
    let over: Vec<ObjectIdentifier> = (0..1001)
        .map(|i| ObjectIdentifier::builder().key(format!("k{i}")).build().unwrap())
        .collect();
    let e = c
        .delete_objects()
        .bucket("bkt")
        .delete(Delete::builder().set_objects(Some(over)).build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "MalformedXML");
    let body = format!("<Delete>{}</Delete>", "<Object/>".repeat(100_000));
    let md5 = {
        use base64::Engine;
        use md5::Digest;
        base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body.as_bytes()))
    };
    let signed = sign(
        &s.addr,
        "POST",
        "/bkt",
        "delete=",
        &[("content-md5", &md5)],
        &sha256_of(body.as_bytes()),
        now(),
    );
    let (status, _, answer) = raw_request(&s.addr, "POST", "/bkt?delete", &signed.headers, body.as_bytes());
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("MalformedXML"), "{answer}");
    // The object is still there: nothing was half-done.
    assert_eq!(get_body(&c, "bkt", "k").await, b"0123456789");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("locks").send().await.unwrap();
    // If-None-Match: * creates a lock file once; the second writer is refused.
    let put = |body: &'static [u8]| {
        c.put_object()
            .bucket("locks")
            .key("state.lock")
            .body(ByteStream::from_static(body))
    };
    let first = put(b"holder-1").if_none_match("*").send().await.unwrap();
    let e = put(b"holder-2").if_none_match("*").send().await.unwrap_err();
    assert_eq!(status_of(&e), 412);
    assert_eq!(code(&e.into_service_error()), "PreconditionFailed");
    assert_eq!(get_body(&c, "locks", "state.lock").await, b"holder-1");
    // If-Match: only over the version one read.
    let etag = first.e_tag().unwrap().to_string();
    let e = put(b"stale")
        .if_match("\"00000000000000000000000000000000\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "PreconditionFailed");
    put(b"holder-1 v2").if_match(&etag).send().await.unwrap();
    let e = put(b"again").if_match(&etag).send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "PreconditionFailed", "the etag changed");
    let e = c
        .put_object()
        .bucket("locks")
        .key("absent")
        .if_match(&etag)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchKey");
    // Concurrent creators with If-None-Match: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.put_object()
                .bucket("locks")
                .key("race.lock")
                .if_none_match("*")
                .body(ByteStream::from(format!("writer {i}").into_bytes()))
                .send()
                .await
                .map(|_| i)
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        if let Ok(i) = t.await.unwrap() {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        get_body(&c, "locks", "race.lock").await,
        format!("writer {}", winners[0]).as_bytes()
    );
    // CompleteMultipartUpload and CopyObject honour them too.
    let up = c
        .create_multipart_upload()
        .bucket("locks")
        .key("state.lock")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = c
        .upload_part()
        .bucket("locks")
        .key("state.lock")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from_static(b"mpu"))
        .send()
        .await
        .unwrap();
    let parts = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("locks")
        .key("state.lock")
        .upload_id(id)
        .multipart_upload(parts)
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "PreconditionFailed");
    assert_eq!(get_body(&c, "locks", "state.lock").await, b"holder-1 v2");
    let signed = sign(
        &s.addr,
        "PUT",
        "/locks/state.lock",
        "",
        &[("x-amz-copy-source", "/locks/race.lock"), ("if-none-match", "*")],
        UNSIGNED,
        now(),
    );
    let (status, _, body) = raw_request(&s.addr, "PUT", "/locks/state.lock", &signed.headers, b"");
    assert_eq!(status, 412, "{body}");
    assert_eq!(get_body(&c, "locks", "state.lock").await, b"holder-1 v2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn complete_racing_a_part_reupload_never_loses_the_object() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let a = data(64 << 10, 1);
    let b = data(64 << 10, 2);
    for round in 0..20 {
        let key = format!("obj-{round}");
        let up = c
            .create_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .send()
            .await
            .unwrap();
        let id = up.upload_id().unwrap().to_string();
        let part = |body: Vec<u8>| {
            c.upload_part()
                .bucket("mpu")
                .key(&key)
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from(body))
                .send()
        };
        let first = part(a.clone()).await.unwrap();
        // Complete with part 1 as first uploaded, while part 1 is uploaded again (same ETag
        // cannot be asked twice, so the racer uploads the same bytes).
        let complete = c
            .complete_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .parts(
                        CompletedPart::builder()
                            .part_number(1)
                            .e_tag(first.e_tag().unwrap())
                            .build(),
                    )
                    .build(),
            )
            .send();
        let again = part(if round % 2 == 0 { a.clone() } else { b.clone() });
        let (done, _) = tokio::join!(complete, again);
        if done.is_ok() {
            let head = c.head_object().bucket("mpu").key(&key).send().await;
            assert!(head.is_ok(), "round {round}: completed, then HEAD failed");
            let got = get_body(&c, "mpu", &key).await;
            assert!(
                got == a || got == b,
                "round {round}: a completed object must read back whole"
            );
            // The GC runs hot (grace 0); read again once it had the time to collect.
            tokio::time::sleep(Duration::from_millis(700)).await;
            let got = get_body(&c, "mpu", &key).await;
            assert!(
                got == a || got == b,
                "round {round}: collected from under a committed object"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_keeps_its_version_while_it_is_overwritten_and_collected() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let old = data(24 << 20, 7);
    put(&c, "bkt", "k", old.clone()).await;
    // A GET that reads slowly.
    let get = c.get_object().bucket("bkt").key("k").send().await.unwrap();
    let mut body = get.body.into_async_read();
    let mut got = vec![0u8; 1 << 20];
    tokio::io::AsyncReadExt::read_exact(&mut body, &mut got).await.unwrap();
    // Meanwhile: overwritten, then deleted; the GC (grace 0) runs several passes.
    put(&c, "bkt", "k", data(100, 8)).await;
    c.delete_object().bucket("bkt").key("k").send().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut body, &mut rest)
        .await
        .unwrap();
    got.extend_from_slice(&rest);
    assert!(got == old, "the slow GET read the version it started with, whole");
    // Once it is done, the shards do go.
    assert_eq!(wait_for_shards(&s, 0).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_racing_delete_bucket_leave_nothing_behind() {
    let s = Server::start();
    let c = s.client();
    for round in 0..10 {
        c.create_bucket().bucket("ephemeral").send().await.unwrap();
        let mut puts = Vec::new();
        for i in 0..6 {
            let c = c.clone();
            puts.push(tokio::spawn(async move {
                c.put_object()
                    .bucket("ephemeral")
                    .key(format!("k{i}"))
                    .body(ByteStream::from(vec![i as u8; 1000]))
                    .send()
                    .await
                    .is_ok()
            }));
        }
        let mut deleted = false;
        for _ in 0..20 {
            if c.delete_bucket().bucket("ephemeral").send().await.is_ok() {
                deleted = true;
                break;
            }
            // Not empty yet: delete what is there and try again.
            let listed = c.list_objects_v2().bucket("ephemeral").send().await;
            if let Ok(l) = listed {
                for o in l.contents() {
                    let _ = c.delete_object().bucket("ephemeral").key(o.key().unwrap()).send().await;
                }
            }
        }
        for p in puts {
            p.await.unwrap();
        }
        if !deleted {
            continue;
        }
        // Re-created, the bucket is empty: no PUT committed into the deleted one.
        if c.create_bucket().bucket("ephemeral").send().await.is_err() {
            panic!("round {round}: the bucket was deleted but could not be re-created");
        }
        let l = c.list_objects_v2().bucket("ephemeral").send().await.unwrap();
        assert_eq!(l.key_count(), Some(0), "round {round}: objects reappeared");
        c.delete_bucket().bucket("ephemeral").send().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_door_is_shut() {
    // A short token is refused at start.
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["server", "--data", dir.path().join("d").to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("COFFRE_ADMIN_TOKEN", "")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 32"), "{out:?}");
    // Malformed admin requests get JSON errors, the metrics need the token.
    let s = Server::start();
    let admin = s.admin_endpoint.trim_start_matches("http://").to_string();
    let token = std::fs::read_to_string(s.data.join("admin.token")).unwrap();
    let auth = ("authorization".to_string(), format!("Bearer {}", token.trim()));
    let host = ("host".to_string(), admin.clone());
    for (method, path) in [
        ("POST", "/v1/nodes/drain"),
        ("POST", "/v1/nodes/%FF%FE/drain"),
        ("DELETE", "/v1/nodes/%FF"),
        ("GET", "/v1/placement?bucket=%FF"),
        ("PUT", "/v1/buckets//policy"),
    ] {
        let (status, _, body) = raw_request(&admin, method, path, &[host.clone(), auth.clone()], b"");
        assert!((400..500).contains(&status), "{method} {path}: {status} {body}");
        assert!(body.contains("\"error\""), "{method} {path}: {body}");
    }
    let (status, _, _) = raw_request(&admin, "GET", "/metrics", std::slice::from_ref(&host), b"");
    assert_eq!(status, 401);
    let (status, _, body) = raw_request(&admin, "GET", "/metrics", &[host, auth], b"");
    assert_eq!(status, 200);
    assert!(body.contains("coffre_store_shards{store=\"node-1\"}"), "{body}");
    // The S3 port serves no metrics: `/metrics` there is a bucket (that does not exist).
    let (status, _, body) = raw_request(&s.addr, "GET", "/metrics", &[("host".into(), s.addr.clone())], b"");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("NoSuchBucket") && !body.contains("coffre_"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_at_rest_is_readable_by_others_and_checksums_are_sealed() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let put = c
        .put_object()
        .bucket("bkt")
        .key("scan.pdf")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"a confidential scan"))
        .send()
        .await
        .unwrap();
    let sha = put.checksum_sha256().unwrap().to_string();
    // Still answered in clear to the client…
    let head = c
        .head_object()
        .bucket("bkt")
        .key("scan.pdf")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_sha256(), Some(sha.as_str()));
    // …but nowhere in clear on disk, and nothing there is for other users.
    let mut stack = vec![s.data.clone()];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
                continue;
            }
            files += 1;
            assert_eq!(
                meta.permissions().mode() & 0o077,
                0,
                "{} is readable by others",
                e.path().display()
            );
            let bytes = std::fs::read(e.path()).unwrap();
            assert!(
                !bytes.windows(sha.len()).any(|w| w == sha.as_bytes()),
                "the content's SHA-256 is in clear in {}",
                e.path().display()
            );
        }
    }
    assert!(files > 10, "only {files} files looked at");
}
