//! A change and its audit entry are one unit: a change committed by a request whose process
//! stopped before the entry was written gets its entry from the note in its batch, once and
//! only once (`coffre_engine::audit_notes`).

use coffre_engine::audit::Event;
use coffre_engine::{AuditOptions, BucketRecord, Engine, EngineConfig};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

async fn engine(dir: &Path) -> Arc<Engine> {
    let meta = Arc::new(coffre_meta::MetaStore::open(&dir.join("meta")).unwrap());
    let keys = Arc::new(coffre_crypto::Keyring::new(
        coffre_crypto::MasterKey::from_bytes([7; 32]),
        vec![],
    ));
    if meta.get_tenant(coffre_engine::DEFAULT_TENANT).unwrap().is_none() {
        let iam = coffre_iam::Iam::new(meta.clone(), keys.clone());
        iam.ensure_root(coffre_engine::DEFAULT_TENANT, "ROOTKEY", "root-secret-secret")
            .await
            .unwrap();
    }
    let (engine, _damaged) = Engine::new(meta, vec![], None, keys, EngineConfig::default());
    engine
        .open_audit(AuditOptions {
            dir: dir.join("audit"),
            identity: None,
            gateway: "server".into(),
            retention: std::time::Duration::from_secs(86_400),
            accept_truncation: false,
            syslog: None,
        })
        .unwrap();
    engine
}

fn bucket() -> BucketRecord {
    BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        failure_domain: "node".into(),
        scheme: coffre_types::Scheme::DEFAULT,
        tenant: coffre_engine::DEFAULT_TENANT.into(),
    }
}

/// A request creating bucket `name` in an audit scope, which appends its entry only if
/// `answered` (else the process "stops" between the commit and the entry).
async fn create_bucket(engine: &Arc<Engine>, id: &str, name: &str, answered: bool) {
    let scope = engine.audit_scope(id).expect("an audit log");
    let mut e = Event::now("CreateBucket", "arn:aws:iam::default:user/admin");
    e.request_id = id.to_string();
    e.bucket = name.to_string();
    let draft = e.clone();
    scope
        .run(async {
            coffre_engine::audit_notes::draft(&draft);
            engine.create_bucket(name, bucket()).await.unwrap();
        })
        .await;
    if answered {
        scope.append(vec![e]).await.unwrap();
    }
}

/// Every entry of the log, by request id: (count, statuses).
async fn entries(engine: &Arc<Engine>) -> HashMap<String, Vec<u64>> {
    let log = engine.audit().unwrap().clone();
    log.checkpoint().await.unwrap();
    let found = coffre_engine::audit::search(&log.dir, &Default::default()).unwrap();
    let mut by_id: HashMap<String, Vec<u64>> = HashMap::new();
    for f in found {
        by_id
            .entry(f.event.request_id.clone())
            .or_default()
            .push(f.event.status as u64);
    }
    by_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_entry_was_cut_off_gets_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    // Answered: its entry is written by the request; cut off: none is.
    create_bucket(&e, "REQ-ANSWERED", "answered", true).await;
    create_bucket(&e, "REQ-CUT", "cut", false).await;
    // Written to the log, but the process stopped before it knew (not marked written).
    let scope = e.audit_scope("REQ-UNMARKED").unwrap();
    let mut written = Event::now("CreateBucket", "arn:aws:iam::default:user/admin");
    written.request_id = "REQ-UNMARKED".into();
    let draft = written.clone();
    scope
        .run(async {
            coffre_engine::audit_notes::draft(&draft);
            e.create_bucket("unmarked", bucket()).await.unwrap();
        })
        .await;
    e.audit().unwrap().append(written).await.unwrap();
    drop(scope);
    // A request that changes nothing leaves no note.
    let scope = e.audit_scope("REQ-READ").unwrap();
    scope
        .run(async {
            coffre_engine::audit_notes::draft(&Event::now("admin:TenantsGet", "operator"));
        })
        .await;
    drop(scope);
    assert_eq!(
        e.meta().audit_notes("server", 100).unwrap().len(),
        3,
        "one note per change"
    );

    let recovered = e.settle_audit_notes().await.unwrap();
    assert_eq!(recovered, 1, "only the cut-off change gets its entry from its note");
    assert!(
        e.meta().audit_notes("server", 100).unwrap().is_empty(),
        "every note is settled"
    );
    let by_id = entries(&e).await;
    assert_eq!(by_id["REQ-ANSWERED"], vec![200]);
    assert_eq!(by_id["REQ-CUT"], vec![0], "recovered, its answer unknown");
    assert_eq!(by_id["REQ-UNMARKED"], vec![200], "not written twice");
    assert!(!by_id.contains_key("REQ-READ"));
    let log = e.audit().unwrap().clone();
    let found = coffre_engine::audit::search(&log.dir, &Default::default()).unwrap();
    let cut = found.iter().find(|f| f.event.request_id == "REQ-CUT").unwrap();
    assert!(cut.event.detail.as_deref().unwrap().contains("recovered"));
    assert_eq!(
        (cut.event.op.as_str(), cut.event.bucket.as_str()),
        ("CreateBucket", "cut")
    );
    assert_eq!(
        e.settle_audit_notes().await.unwrap(),
        0,
        "settling again changes nothing"
    );
    assert_eq!(entries(&e).await.values().map(Vec::len).sum::<usize>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_survives_a_restart_and_is_settled_by_the_next_process() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = engine(dir.path()).await;
        create_bucket(&e, "REQ-BEFORE-STOP", "stopped", false).await;
        create_bucket(&e, "REQ-DONE", "done", true).await;
        e.audit().unwrap().close().await;
    }
    let e = engine(dir.path()).await;
    assert_eq!(e.meta().audit_notes("server", 100).unwrap().len(), 2);
    assert_eq!(e.settle_audit_notes().await.unwrap(), 1);
    let by_id = entries(&e).await;
    assert_eq!(by_id["REQ-BEFORE-STOP"], vec![0]);
    assert_eq!(by_id["REQ-DONE"], vec![200]);
    // The chain still verifies across the recovered entry.
    let log = e.audit().unwrap().clone();
    let report = coffre_engine::audit::verify_dir(
        &log.dir,
        None,
        None,
        coffre_engine::audit::Expectations {
            public_key: log.public_key,
            gateway: None,
            tenant: None,
            tenant_tag: None,
            head: None,
        },
    )
    .unwrap();
    assert!(report.ok, "{report:?}");
}
