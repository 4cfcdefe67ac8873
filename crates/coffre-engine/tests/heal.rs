//! Healing degraded writes, on six real local shard stores (one refusing writes for a while):
//! an object whose healing keeps failing does not keep the others degraded, and what healing
//! moves is audited before the pass goes on.

use bytes::Bytes;
use coffre_data::{BoxFuture, LocalShardStore, ShardStore, StoreError, StoreStat};
use coffre_engine::{BodyInfo, BucketRecord, ClusterNode, Engine, EngineConfig, NewObject};
use coffre_types::ShardId;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A local store that refuses writes while `refusing`.
struct Flaky {
    inner: LocalShardStore,
    refusing: Arc<AtomicBool>,
}

impl ShardStore for Flaky {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        if self.refusing.load(Ordering::Relaxed) {
            return Box::pin(async { Err(StoreError::Unavailable("refusing writes".into())) });
        }
        self.inner.put(id, data)
    }
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        self.inner.get(id)
    }
    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.delete(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        self.inner.list()
    }
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        self.inner.stat()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_cannot_heal_does_not_keep_the_others_degraded() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(coffre_meta::MetaStore::open(&dir.path().join("meta")).unwrap());
    let keys = Arc::new(coffre_crypto::Keyring::new(
        coffre_crypto::MasterKey::from_bytes([5; 32]),
        vec![],
    ));
    coffre_iam::Iam::new(meta.clone(), keys.clone())
        .ensure_root(coffre_engine::DEFAULT_TENANT, "ROOTKEY", "root-secret-secret")
        .await
        .unwrap();
    let refusing = Arc::new(AtomicBool::new(true));
    let nodes: Vec<ClusterNode> = (1..=6)
        .map(|i| {
            let id = format!("node-{i}");
            let inner = LocalShardStore::open(id.clone(), &dir.path().join(&id)).unwrap();
            let flag = if i == 6 {
                refusing.clone()
            } else {
                Arc::new(AtomicBool::new(false))
            };
            let location = coffre_cluster::Location {
                country: "FR".into(),
                site: "local".into(),
                zone: id,
            };
            ClusterNode::new(
                Arc::new(Flaky { inner, refusing: flag }),
                location,
                String::new(),
                false,
            )
        })
        .collect();
    let (engine, _damaged) = Engine::new(meta, nodes, None, keys, EngineConfig::default());
    let record = BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        failure_domain: "node".into(),
        scheme: coffre_types::Scheme::DEFAULT,
        tenant: coffre_engine::DEFAULT_TENANT.into(),
    };
    engine.create_bucket("b", record.clone()).await.unwrap();
    // Three objects written while node-6 refuses: each is missing its shard there.
    let mut written = Vec::new();
    for key in ["a-broken", "b-fine", "c-fine"] {
        let body = Bytes::from(vec![key.as_bytes()[0]; 100_000]);
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(body)]);
        let rec = engine
            .put(
                "b",
                &record,
                key,
                stream,
                NewObject {
                    attrs: Default::default(),
                    body: BodyInfo::default(),
                    condition: Default::default(),
                    lock: Default::default(),
                },
            )
            .await
            .unwrap();
        assert!(rec.is_degraded(), "{key} was written with node-6 refusing");
        written.push(rec);
    }
    refusing.store(false, Ordering::Relaxed);
    // The first object's layout is lost (metadata damage): its healing fails on every pass.
    let broken = written[0].parts[0].version;
    engine
        .meta()
        .apply(coffre_meta::MetaCommand::GcDone {
            raw_key: vec![],
            versions: vec![broken],
        })
        .unwrap();
    for _ in 0..3 {
        engine.heal().await.unwrap();
    }
    for key in ["b-fine", "c-fine"] {
        assert!(!engine.head("b", key).unwrap().is_degraded(), "{key} healed");
    }
    assert!(engine.head("b", "a-broken").unwrap().is_degraded(), "it cannot heal");
}
