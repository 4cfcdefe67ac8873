use super::*;
use ring::signature::Ed25519KeyPair;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct MemHead(Mutex<Option<(u64, Hash)>>);

impl HeadStore for MemHead {
    fn load(&self) -> Result<Option<(u64, Hash)>, String> {
        Ok(*self.0.lock().unwrap())
    }
    fn record(&self, n: u64, h: &Hash) -> Result<(), String> {
        *self.0.lock().unwrap() = Some((n, *h));
        Ok(())
    }
}

fn pkcs8() -> Vec<u8> {
    Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .unwrap()
        .as_ref()
        .to_vec()
}

fn key(pkcs8: &[u8]) -> Ed25519KeyPair {
    Ed25519KeyPair::from_pkcs8(pkcs8).unwrap()
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig::new(dir.to_path_buf(), "gw1")
}

fn event(i: usize, tenant: &str) -> Event {
    Event {
        tenant: tenant.into(),
        bucket: format!("bucket-{}", i % 3),
        key: format!("key-{i}"),
        ..Event::now("PutObject", format!("user:u{i}"))
    }
}

async fn write(dir: &Path, pk: &[u8], head: &Arc<MemHead>, cfg: AuditConfig, events: Vec<Event>) -> Arc<AuditLog> {
    let log = AuditLog::open(cfg, pk, None, head.clone()).unwrap();
    let _ = dir;
    for e in events {
        log.append(e).await.unwrap();
    }
    log
}

fn expect(log_key: &[u8], head: &MemHead) -> Expectations {
    let mut pk = [0u8; 32];
    use ring::signature::KeyPair;
    pk.copy_from_slice(key(log_key).public_key().as_ref());
    Expectations {
        public_key: pk,
        gateway: Some("gw1".into()),
        tenant: None,
        tenant_tag: None,
        head: *head.0.lock().unwrap(),
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    segment::list_segments(dir).unwrap()
}

/// The line numbers (from 1) of the entries of a segment, and the lines.
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn entry_line(lines: &[String], n: u64) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(&format!("{{\"n\":{n},")))
        .unwrap()
}

#[tokio::test]
async fn a_written_log_verifies_and_restarts_continue_the_chain() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let log = write(
        d.path(),
        &pk,
        &head,
        config(d.path()),
        (0..50).map(|i| event(i, "t1")).collect(),
    )
    .await;
    log.close().await;
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!((r.entries, r.last_entry, r.last_signed), (50, Some(50), Some(50)));
    let log = write(
        d.path(),
        &pk,
        &head,
        config(d.path()),
        (50..60).map(|i| event(i, "t1")).collect(),
    )
    .await;
    log.close().await;
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.entries, 60);
    // Another key does not verify it.
    let r = verify_dir(d.path(), None, None, expect(&pkcs8(), &head)).unwrap();
    assert!(!r.ok);
}

#[derive(Clone, Copy, Debug)]
enum Tamper {
    EditByte,
    Delete,
    Swap,
    TruncateMiddleSegment,
    TruncateTail,
}

/// Writes `count` entries over several segments, applies `tamper` around entry `at`, and
/// returns what verification reports.
async fn tampered(count: usize, at: u64, tamper: Tamper) -> Report {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let mut cfg = config(d.path());
    cfg.segment_bytes = 4096;
    cfg.checkpoint_every = 7;
    let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
    for i in 0..count {
        log.append(event(i, if i % 2 == 0 { "t1" } else { "t2" }))
            .await
            .unwrap();
    }
    log.close().await;
    let segs = segments(d.path());
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let seg = segs
        .iter()
        .find(|p| lines(p).iter().any(|l| l.starts_with(&format!("{{\"n\":{at},"))))
        .unwrap()
        .clone();
    let mut ls = lines(&seg);
    let i = entry_line(&ls, at);
    match tamper {
        Tamper::EditByte => ls[i] = ls[i].replacen("key-", "kez-", 1),
        Tamper::Delete => {
            ls.remove(i);
        }
        Tamper::Swap => {
            let j = (i + 1..ls.len())
                .find(|j| ls[*j].starts_with("{\"n\":"))
                .unwrap_or(i - 1);
            ls.swap(i, j);
        }
        Tamper::TruncateMiddleSegment | Tamper::TruncateTail => ls.truncate(i),
    }
    let target = match tamper {
        Tamper::TruncateMiddleSegment => segs[segs.len() / 2].clone(),
        Tamper::TruncateTail => segs.last().unwrap().clone(),
        _ => seg,
    };
    if matches!(tamper, Tamper::TruncateMiddleSegment | Tamper::TruncateTail) {
        let mut tl = lines(&target);
        let cut = tl.len() / 2;
        tl.truncate(cut.max(2));
        std::fs::write(&target, tl.join("\n") + "\n").unwrap();
    } else {
        std::fs::write(&target, ls.join("\n") + "\n").unwrap();
    }
    verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap()
}

#[tokio::test]
async fn every_tampering_is_found_where_it_is() {
    for (tamper, at) in [
        (Tamper::EditByte, 37),
        (Tamper::Delete, 37),
        (Tamper::Swap, 37),
        (Tamper::EditByte, 1),
        (Tamper::Delete, 120),
    ] {
        let r = tampered(120, at, tamper).await;
        let p = r.problem.unwrap_or_else(|| panic!("{tamper:?} at {at} not found"));
        assert_eq!(p.position.entry, at, "{tamper:?}: {p}");
    }
    for tamper in [Tamper::TruncateMiddleSegment, Tamper::TruncateTail] {
        let r = tampered(120, 5, tamper).await;
        let p = r.problem.unwrap_or_else(|| panic!("{tamper:?} not found"));
        assert!(
            p.what.contains("missing") || p.what.contains("truncated"),
            "{tamper:?}: {p}"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    #[test]
    fn tampering_anywhere_is_found(at in 1u64..=60, which in 0usize..3) {
        let tamper = [Tamper::EditByte, Tamper::Delete, Tamper::Swap][which];
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let r = rt.block_on(tampered(60, at, tamper));
        let p = r.problem.expect("found");
        // A swap is first seen at the earlier of the two entries.
        let swapped_back = matches!(tamper, Tamper::Swap) && p.position.entry + 1 == at;
        proptest::prop_assert!(p.position.entry == at || swapped_back, "{:?} at {}: {}", tamper, at, p);
    }
}

#[tokio::test]
async fn start_up_removes_a_torn_record_and_refuses_a_shortened_chain() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let log = write(
        d.path(),
        &pk,
        &head,
        config(d.path()),
        (0..10).map(|i| event(i, "t1")).collect(),
    )
    .await;
    log.close().await;
    // A crash in the middle of a write: half a line at the end, never acknowledged.
    let seg = segments(d.path()).pop().unwrap();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, b"{\"n\":11,\"h\":\"00").unwrap();
    drop(f);
    let log = write(d.path(), &pk, &head, config(d.path()), vec![event(11, "t1")]).await;
    log.close().await;
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.entries, 11);
    // Acknowledged entries removed from the tail: refused…
    let mut ls = lines(&seg);
    let i = entry_line(&ls, 9);
    ls.truncate(i);
    std::fs::write(&seg, ls.join("\n") + "\n").unwrap();
    let err = AuditLog::open(config(d.path()), &pk, None, head.clone()).err().unwrap();
    assert!(err.contains("truncated"), "{err}");
    // …unless accepted, which the log itself then says.
    let mut cfg = config(d.path());
    cfg.accept_truncation = true;
    let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
    log.append(event(12, "t1")).await.unwrap();
    log.close().await;
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    let found = search(d.path(), &Query::default()).unwrap();
    assert!(found.iter().any(|f| f.event.op == "system:AuditTruncationAccepted"));
}

#[tokio::test]
async fn an_export_holds_one_tenant_and_verifies_alone() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let events = (0..40).map(|i| event(i, ["t1", "t2", ""][i % 3])).collect();
    let log = write(d.path(), &pk, &head, config(d.path()), events).await;
    log.checkpoint().await.unwrap();
    let out = d.path().join("t1.jsonl");
    let mut f = std::fs::File::create(&out).unwrap();
    let summary = export(&log, "t1", None, None, &mut f).unwrap();
    drop(f);
    assert_eq!((summary.entries, summary.redacted), (14, 26));
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains("\"tenant\":\"t2\"") && !text.contains("user:u1\""));
    let mut e = expect(&pk, &head);
    e.head = None;
    let r = verify_export(&out, e.clone()).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!((r.entries, r.redacted), (40, 26));
    // Hiding one of the tenant's entries behind a redaction is found.
    let mut ls: Vec<String> = text.lines().map(str::to_string).collect();
    let i = ls
        .iter()
        .position(|l| l.starts_with("{\"n\":") && l.contains("\"tenant\":\"t1\""))
        .unwrap();
    let Ok(Record::Entry { n, h, event, .. }) = Record::parse(ls[i].as_bytes()) else {
        panic!()
    };
    ls[i] = Record::Redacted {
        n,
        h,
        tenant: chain::tenant_tag("t1"),
        content: content_hash(&event),
    }
    .render();
    std::fs::write(&out, ls.join("\n") + "\n").unwrap();
    let r = verify_export(&out, e).unwrap();
    assert!(r.problem.unwrap().what.contains("redacted"));
}

/// With keyed tenant tags, another tenant's tag in an export tells nothing of its name (it
/// is not the hash of a guess), and the export still proves that none of its own tenant's
/// entries was left out: its header's tag is signed, and logs written before tags were keyed
/// still verify.
#[tokio::test]
async fn keyed_tags_hide_other_tenants_and_still_prove_an_export_whole() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    // Ten entries written unkeyed (as before), then thirty keyed, in one chain.
    let log = write(
        d.path(),
        &pk,
        &head,
        config(d.path()),
        (0..10).map(|i| event(i, ["t1", "t2"][i % 2])).collect(),
    )
    .await;
    log.close().await;
    let mut cfg = config(d.path());
    cfg.tag_key = Some([9; 32]);
    let events = (10..40).map(|i| event(i, ["t1", "t2", ""][i % 3])).collect();
    let log = write(d.path(), &pk, &head, cfg, events).await;
    log.checkpoint().await.unwrap();
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "the whole log: {:?}", r.problem);
    let out = d.path().join("t1.jsonl");
    let mut f = std::fs::File::create(&out).unwrap();
    export(&log, "t1", None, None, &mut f).unwrap();
    drop(f);
    let text = std::fs::read_to_string(&out).unwrap();
    let guessed = hex::encode(chain::tenant_tag("t2"));
    let keyed = hex::encode(chain::keyed_tenant_tag(&[9; 32], "t2"));
    let redacted: Vec<&str> = text.lines().filter(|l| l.contains("\"c\":")).collect();
    assert!(redacted.iter().any(|l| l.contains(&keyed)));
    assert_eq!(
        redacted.iter().filter(|l| l.contains(&guessed)).count(),
        5,
        "only the entries written before tags were keyed"
    );
    let mut e = expect(&pk, &head);
    e.head = None;
    let r = verify_export(&out, e.clone()).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    // Hiding a keyed entry of the tenant behind a redaction is found.
    let ls: Vec<String> = text.lines().map(str::to_string).collect();
    let i = ls
        .iter()
        .rposition(|l| l.starts_with("{\"n\":") && l.contains("\"tenant\":\"t1\""))
        .unwrap();
    let Ok(Record::Entry { n, h, tag, event }) = Record::parse(ls[i].as_bytes()) else {
        panic!()
    };
    assert_eq!(tag, Some(chain::keyed_tenant_tag(&[9; 32], "t1")));
    let mut hidden = ls.clone();
    hidden[i] = Record::Redacted {
        n,
        h,
        tenant: tag.unwrap(),
        content: content_hash(&event),
    }
    .render();
    std::fs::write(&out, hidden.join("\n") + "\n").unwrap();
    let r = verify_export(&out, e.clone()).unwrap();
    assert!(r.problem.unwrap().what.contains("redacted"));
    // A header whose tag was changed (to hide every keyed entry of the tenant) is refused.
    let mut forged = ls.clone();
    forged[0] = forged[0].replace(&hex::encode(tag.unwrap()), &hex::encode([7u8; 32]));
    assert_ne!(forged[0], ls[0]);
    std::fs::write(&out, forged.join("\n") + "\n").unwrap();
    let r = verify_export(&out, e).unwrap();
    assert!(
        r.problem.unwrap().what.contains("not signed"),
        "the header's tag is signed"
    );
}

#[tokio::test]
async fn search_finds_by_bucket_key_operation_and_time() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let log = write(
        d.path(),
        &pk,
        &head,
        config(d.path()),
        (0..30).map(|i| event(i, "t1")).collect(),
    )
    .await;
    log.close().await;
    let q = Query {
        bucket: Some("bucket-1".into()),
        ..Query::default()
    };
    assert_eq!(search(d.path(), &q).unwrap().len(), 10);
    let q = Query {
        bucket: Some("bucket-1".into()),
        key: Some("key-4".into()),
        ..Query::default()
    };
    let found = search(d.path(), &q).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].event.principal, "user:u4");
    let q = Query {
        op: Some("PutObject".into()),
        key: Some("key-4".into()),
        ..Query::default()
    };
    assert_eq!(search(d.path(), &q).unwrap().len(), 1);
    let q = Query {
        op: Some("DeleteObject".into()),
        ..Query::default()
    };
    assert!(search(d.path(), &q).unwrap().is_empty());
    let q = Query {
        since: Some(coffre_types::now_millis() + 60_000),
        ..Query::default()
    };
    assert!(search(d.path(), &q).unwrap().is_empty());
    assert_eq!(parse_age("7d"), Some(7 * 86_400_000));
    assert_eq!(parse_age("x"), None);
}

#[test]
fn public_keys_read_back() {
    let k = [7u8; 32];
    assert_eq!(parse_public_key(&public_key_pem(&k)), Some(k));
    assert_eq!(parse_public_key(&hex::encode(k)), Some(k));
    assert_eq!(parse_public_key("nonsense"), None);
}

/// Reads `count` octet-counted syslog messages from a collector's connection.
async fn read_frames(mut conn: impl tokio::io::AsyncRead + Unpin, count: usize) -> Vec<String> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    while out.len() < count {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the forwarder closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(sp) = buf.iter().position(|&b| b == b' ') {
            let len: usize = std::str::from_utf8(&buf[..sp]).unwrap().parse().unwrap();
            if buf.len() < sp + 1 + len {
                break;
            }
            out.push(String::from_utf8(buf[sp + 1..sp + 1 + len].to_vec()).unwrap());
            buf.drain(..sp + 1 + len);
        }
    }
    out
}

#[tokio::test]
async fn durable_entries_reach_a_syslog_collector_over_tcp_and_tls() {
    for tls in [false, true] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let target = if tls {
            SyslogTarget::parse(&format!("tls://localhost:{port}"), Some(cert.pem().as_bytes()), "gw1").unwrap()
        } else {
            SyslogTarget::parse(&format!("tcp://127.0.0.1:{port}"), None, "gw1").unwrap()
        };
        let d = tempfile::tempdir().unwrap();
        let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
        let mut cfg = config(d.path());
        cfg.syslog = Some(target);
        let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
        for i in 0..5 {
            log.append(event(i, "t1")).await.unwrap();
        }
        let (tcp, _) = listener.accept().await.unwrap();
        let frames = if tls {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let server = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
                )
                .unwrap();
            let conn = tokio_rustls::TlsAcceptor::from(Arc::new(server))
                .accept(tcp)
                .await
                .unwrap();
            read_frames(conn, 5).await
        } else {
            read_frames(tcp, 5).await
        };
        for (i, f) in frames.iter().enumerate() {
            let (header, json) = f.split_once(" coffre - audit - ").unwrap();
            assert!(header.starts_with("<110>1 20") && header.ends_with(" gw1"), "{header}");
            let e: Event = serde_json::from_str(json).unwrap();
            assert_eq!(e.key, format!("key-{i}"));
        }
        log.close().await;
        // Without the collector's CA, no TLS target.
        assert!(SyslogTarget::parse("tls://localhost:1", None, "gw1").is_err());
    }
}

#[tokio::test]
async fn expired_segments_go_and_what_remains_still_verifies() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let mut cfg = config(d.path());
    cfg.segment_bytes = 2048;
    cfg.retention = std::time::Duration::from_millis(1);
    let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
    for i in 0..40 {
        log.append(event(i, "t1")).await.unwrap();
        // Segments start at distinct milliseconds: the older ones fall out of the retention.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    log.close().await;
    let remaining = segments(d.path());
    assert!(remaining.len() <= 2, "{} segments left", remaining.len());
    assert!(
        !remaining[0].ends_with(segment::segment_name(1)),
        "the first segment expired"
    );
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert!(r.first_entry.unwrap() > 1);
    let expired = search(d.path(), &Query::default()).unwrap();
    assert!(expired.iter().any(|f| f.event.op == "system:AuditSegmentExpired"));
}

#[tokio::test]
async fn an_accepted_break_keeps_one_chain_across_segments() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let mut cfg = config(d.path());
    cfg.segment_bytes = 2048;
    let log = AuditLog::open(cfg.clone(), &pk, None, head.clone()).unwrap();
    for i in 0..30 {
        log.append(event(i, "t1")).await.unwrap();
    }
    log.close().await;
    assert!(segments(d.path()).len() >= 3);
    // An entry of the last segment altered: refused, then accepted.
    let last = segments(d.path()).pop().unwrap();
    let mut ls = lines(&last);
    let i = ls.iter().position(|l| l.starts_with("{\"n\":")).unwrap();
    ls[i] = ls[i].replacen("key-", "kez-", 1);
    std::fs::write(&last, ls.join("\n") + "\n").unwrap();
    assert!(AuditLog::open(cfg.clone(), &pk, None, head.clone()).is_err());
    cfg.accept_truncation = true;
    let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
    log.append(event(99, "t1")).await.unwrap();
    log.close().await;
    // The older segments and the continued one verify as one chain; the rest is kept aside.
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.first_entry, Some(1));
    assert!(last.with_extension("log.broken").exists());
}

/// Many requests appending at once (leader-follower group commit), some giving up while they
/// wait (a closed connection: the writer handed to a request that is gone must pass on), and
/// internal events nobody waits for: every event queued is written exactly once, every
/// acknowledged request got its own entry number, and the chain verifies. Checked against
/// the model "the log holds exactly the events submitted, each answer names its own".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_and_requests_that_give_up_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (pk, head) = (pkcs8(), Arc::new(MemHead::default()));
    let mut cfg = config(d.path());
    // Small segments and frequent checkpoints: batches cross both.
    cfg.segment_bytes = 64 << 10;
    cfg.checkpoint_every = 37;
    let log = AuditLog::open(cfg, &pk, None, head.clone()).unwrap();
    let (tasks, per_task) = (48usize, 40usize);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let log = log.clone();
        handles.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0..per_task {
                let mut e = event(i, "t1");
                e.key = format!("task{t}-{i}");
                match (t + i) % 5 {
                    // Gives up at its first wait (after queueing).
                    0 => {
                        let _ = tokio::time::timeout(std::time::Duration::ZERO, log.append(e)).await;
                    }
                    // Nobody waits.
                    1 => log.record(e),
                    _ => {
                        let key = e.key.clone();
                        acknowledged.push((log.append(e).await.unwrap(), key));
                    }
                }
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = Vec::new();
    for h in handles {
        acknowledged.extend(
            tokio::time::timeout(std::time::Duration::from_secs(60), h)
                .await
                .expect("no writer left stranded")
                .unwrap(),
        );
    }
    // What nobody waited for is written by then too.
    let state = tokio::time::timeout(std::time::Duration::from_secs(60), log.checkpoint())
        .await
        .expect("the checkpoint is answered")
        .unwrap();
    assert_eq!(state.0, (tasks * per_task) as u64, "every event queued is written once");
    log.close().await;
    let r = verify_dir(d.path(), None, None, expect(&pk, &head)).unwrap();
    assert!(r.ok, "{:?}", r.problem);
    assert_eq!(r.entries, (tasks * per_task) as u64);
    // Each answer names the entry holding that request's event.
    let mut written = std::collections::HashMap::new();
    for seg in segments(d.path()) {
        for line in lines(&seg) {
            if let Ok(Record::Entry { n, event, .. }) = Record::parse(line.as_bytes()) {
                let e: serde_json::Value = serde_json::from_slice(&event).unwrap();
                assert!(written.insert(n, e["key"].as_str().unwrap().to_string()).is_none());
            }
        }
    }
    assert_eq!(written.len(), tasks * per_task);
    let mut numbers = std::collections::HashSet::new();
    for (n, key) in &acknowledged {
        assert!(numbers.insert(*n), "entry {n} answered twice");
        assert_eq!(written.get(n), Some(key), "entry {n}");
    }
    // Appends after the close are refused.
    assert!(log.append(event(0, "t1")).await.is_err());
}
