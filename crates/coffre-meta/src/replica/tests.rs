//! Replicas in one process, over a memory transport that can cut replicas off.

use super::*;
use crate::tests::{bucket_of, rec, tenant_command};
use crate::{keys, Quota, WriteCondition, DEFAULT_TENANT};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, Weak};

/// Replicas by address; a replica in `isolated` neither sends nor receives.
#[derive(Default)]
struct MemNet {
    replicas: Mutex<HashMap<String, Weak<Replica>>>,
    isolated: Mutex<HashSet<String>>,
}

struct MemTransport {
    from: String,
    net: Arc<MemNet>,
}

impl Transport for MemTransport {
    fn call(
        &self,
        address: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<u8>, TransportError>> + Send + 'static>> {
        let cut = {
            let iso = self.net.isolated.lock().unwrap();
            iso.contains(&self.from) || iso.contains(address)
        };
        let target = self.net.replicas.lock().unwrap().get(address).and_then(Weak::upgrade);
        Box::pin(async move {
            match (cut, target) {
                (false, Some(r)) => tokio::time::timeout(timeout, async move { r.handle(&request).await })
                    .await
                    .map_err(|_| TransportError {
                        maybe_sent: true,
                        message: "timed out".into(),
                    }),
                _ => {
                    // A cut link looks like a peer that never answers, briefly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Err(TransportError {
                        maybe_sent: false,
                        message: "unreachable".into(),
                    })
                }
            }
        })
    }
}

struct Cluster {
    net: Arc<MemNet>,
    dirs: Vec<tempfile::TempDir>,
    addresses: Vec<String>,
    replicas: Vec<Option<Arc<Replica>>>,
    snapshot_every: u64,
}

fn config(address: &str, dir: &std::path::Path, snapshot_every: u64) -> ReplicaConfig {
    let mut c = ReplicaConfig::new(address, dir.join("snapshots"));
    c.heartbeat = Duration::from_millis(50);
    c.election_timeout = Duration::from_millis(300);
    c.request_timeout = Duration::from_secs(3);
    c.snapshot_every = snapshot_every;
    c
}

impl Cluster {
    async fn start(n: usize, snapshot_every: u64) -> Cluster {
        let addresses: Vec<String> = (0..n).map(|i| format!("mem://replica-{i}")).collect();
        let mut c = Cluster {
            net: Arc::new(MemNet::default()),
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            addresses,
            replicas: (0..n).map(|_| None).collect(),
            snapshot_every,
        };
        for i in 0..n {
            c.start_one(i).await;
        }
        for r in c.replicas.iter().flatten() {
            r.join_initial(&c.addresses).await.unwrap();
        }
        c
    }

    async fn start_one(&mut self, i: usize) {
        let store = Arc::new(MetaStore::open(&self.dirs[i].path().join("meta")).unwrap());
        let transport = Arc::new(MemTransport {
            from: self.addresses[i].clone(),
            net: self.net.clone(),
        });
        let r = Replica::start(
            store,
            config(&self.addresses[i], self.dirs[i].path(), self.snapshot_every),
            transport,
        )
        .await
        .unwrap();
        self.net
            .replicas
            .lock()
            .unwrap()
            .insert(self.addresses[i].clone(), Arc::downgrade(&r));
        self.replicas[i] = Some(r);
    }

    async fn stop(&mut self, i: usize) {
        if let Some(r) = self.replicas[i].take() {
            r.shutdown().await;
        }
    }

    fn replica(&self, i: usize) -> &Arc<Replica> {
        self.replicas[i].as_ref().unwrap()
    }

    fn isolate(&self, i: usize, cut: bool) {
        let mut iso = self.net.isolated.lock().unwrap();
        match cut {
            true => iso.insert(self.addresses[i].clone()),
            false => iso.remove(&self.addresses[i]),
        };
    }

    async fn leader(&self) -> usize {
        for _ in 0..200 {
            for (i, r) in self.replicas.iter().enumerate() {
                if r.as_ref().is_some_and(|r| r.is_leader()) {
                    return i;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no leader elected");
    }

    async fn stop_all(&mut self) {
        for i in 0..self.replicas.len() {
            self.stop(i).await;
        }
    }
}

/// Every record of the state machine, in order (what must be identical on every replica).
fn scan(store: &MetaStore) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, name) in keys::STATE_CFS.iter().enumerate() {
        for item in store.db.iterator_cf(store.cf(name), rocksdb::IteratorMode::Start) {
            let (k, v) = item.unwrap();
            out.push((i, k.to_vec(), v.to_vec()));
        }
    }
    out
}

fn put(bucket: &str, key: &str, size: u64) -> MetaCommand {
    MetaCommand::CommitObject(crate::CommitObject {
        bucket: bucket.into(),
        key: key.as_bytes().to_vec(),
        record: rec(size),
        layouts: vec![],
        condition: WriteCondition::default(),
        now_ms: 1000 + size,
    })
}

fn create_bucket(name: &str) -> MetaCommand {
    MetaCommand::CreateBucket {
        name: name.into(),
        record: bucket_of(DEFAULT_TENANT),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_through_any_replica_give_identical_replicas() {
    let mut c = Cluster::start(3, 10_000).await;
    c.leader().await;
    c.replica(0)
        .propose(tenant_command(DEFAULT_TENANT, Quota::default()))
        .await
        .unwrap();
    c.replica(1).propose(create_bucket("b")).await.unwrap();
    // A refusal travels back from the leader as it is.
    let again = c.replica(2).propose(create_bucket("b")).await;
    assert!(matches!(again, Err(MetaError::BucketExists)), "{again:?}");
    for i in 0..60u64 {
        let via = (i % 3) as usize;
        c.replica(via)
            .propose(put("b", &format!("k{}", i % 7), i))
            .await
            .unwrap();
    }
    let deleted = c
        .replica(2)
        .propose(MetaCommand::DeleteObjects {
            bucket: "b".into(),
            keys: vec![b"k1".to_vec(), b"nope".to_vec()],
            now_ms: 5000,
        })
        .await
        .unwrap();
    assert_eq!(deleted, Outcome::Deleted(vec![true, false]));
    for i in 0..3 {
        c.replica(i).barrier().await.unwrap();
    }
    let first = scan(c.replica(0).store());
    assert!(first.len() > 10);
    for i in 1..3 {
        assert!(first == scan(c.replica(i).store()), "replica {i} differs");
    }
    // A read after the barrier on any replica sees the last write made through another.
    c.replica(0).propose(put("b", "last", 42)).await.unwrap();
    c.replica(2).barrier().await.unwrap();
    assert_eq!(c.replica(2).store().get_object("b", b"last").unwrap().unwrap().size, 42);
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minority_refuses_writes_and_the_majority_goes_on() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    c.replica(leader)
        .propose(tenant_command(DEFAULT_TENANT, Quota::default()))
        .await
        .unwrap();
    c.replica(leader).propose(create_bucket("b")).await.unwrap();
    // Cut the leader off: it cannot commit, and says so; nothing it was asked is applied.
    c.isolate(leader, true);
    let refused = c.replica(leader).propose(put("b", "lost", 1)).await;
    assert!(matches!(refused, Err(MetaError::Unavailable(_))), "{refused:?}");
    assert!(matches!(
        c.replica(leader).barrier().await,
        Err(MetaError::Unavailable(_))
    ));
    // The two others elect a leader and take writes.
    let other = (leader + 1) % 3;
    c.replica(other).propose(put("b", "kept", 2)).await.unwrap();
    c.isolate(leader, false);
    // Healed: the old leader follows, and never shows the write it could not commit.
    c.replica(leader).barrier().await.unwrap();
    let old = c.replica(leader).store();
    assert_eq!(old.get_object("b", b"kept").unwrap().unwrap().size, 2);
    assert!(old.get_object("b", b"lost").unwrap().is_none());
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_replica_catches_up_by_snapshot_and_a_restarted_one_by_log() {
    let mut c = Cluster::start(3, 20).await;
    let leader = c.leader().await;
    c.replica(leader)
        .propose(tenant_command(DEFAULT_TENANT, Quota::default()))
        .await
        .unwrap();
    c.replica(leader).propose(create_bucket("b")).await.unwrap();
    let lagging = (leader + 1) % 3;
    c.isolate(lagging, true);
    for i in 0..150u64 {
        c.replica(leader)
            .propose(put("b", &format!("k{}", i % 13), i))
            .await
            .unwrap();
    }
    // The log the lagging replica needs is gone (snapshots every 20 entries).
    c.replica(leader).snapshot_now().await.unwrap();
    c.isolate(lagging, false);
    c.replica(lagging).barrier().await.unwrap();
    assert!(scan(c.replica(leader).store()) == scan(c.replica(lagging).store()));

    // A replica stopped, then started again on its data, catches up from where it was.
    let restarted = (leader + 2) % 3;
    c.stop(restarted).await;
    for i in 0..10u64 {
        c.replica(leader).propose(put("b", "after", i)).await.unwrap();
    }
    c.start_one(restarted).await;
    c.replica(restarted).barrier().await.unwrap();
    assert_eq!(
        c.replica(restarted)
            .store()
            .get_object("b", b"after")
            .unwrap()
            .unwrap()
            .size,
        9
    );
    assert!(scan(c.replica(leader).store()) == scan(c.replica(restarted).store()));
    c.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_lost_a_new_one_takes_over_and_membership_changes() {
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    c.replica(leader)
        .propose(tenant_command(DEFAULT_TENANT, Quota::default()))
        .await
        .unwrap();
    c.replica(leader).propose(create_bucket("b")).await.unwrap();
    c.stop(leader).await;
    let next = c.leader().await;
    assert_ne!(next, leader);
    c.replica(next).propose(put("b", "k", 7)).await.unwrap();
    // Remove the stopped replica; a set of two still commits with both.
    let gone = replica_id(&c.addresses[leader]);
    c.replica(next).remove_replica(gone).await.unwrap();
    let status = c.replica(next).status();
    assert_eq!(status.replicas.len(), 2, "{status:?}");
    assert_eq!(status.leader, Some(c.replica(next).id()));
    // Add it back, wiped: it joins as a learner, catches up, becomes a voter.
    c.dirs[leader] = tempfile::tempdir().unwrap();
    c.start_one(leader).await;
    let id = c.replica(next).add_replica(&c.addresses[leader]).await.unwrap();
    assert_eq!(id, gone);
    c.replica(leader).barrier().await.unwrap();
    assert_eq!(
        c.replica(leader).store().get_object("b", b"k").unwrap().unwrap().size,
        7
    );
    let status = c.replica(next).status();
    assert_eq!(
        status.replicas.iter().filter(|r| r.state != "learner").count(),
        3,
        "{status:?}"
    );
    c.stop_all().await;
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(&d.path().join("meta")).unwrap();
    m.apply(tenant_command(DEFAULT_TENANT, Quota::default())).unwrap();
    m.apply(create_bucket("b")).unwrap();
    let (_, file) = snapshot::build(&m, &d.path().join("snaps")).unwrap();
    let path = file.path.clone();
    drop(file);
    snapshot::verify(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(snapshot::verify(&path), Err(MetaError::Corrupt(_))));
    std::fs::write(&path, &bytes[..bytes.len() - 40]).unwrap();
    assert!(matches!(snapshot::verify(&path), Err(MetaError::Corrupt(_))));
}

#[test]
fn an_interrupted_install_is_finished_at_open() {
    let d = tempfile::tempdir().unwrap();
    let source = MetaStore::open(&d.path().join("a")).unwrap();
    source.apply(tenant_command(DEFAULT_TENANT, Quota::default())).unwrap();
    source.apply(create_bucket("b")).unwrap();
    source.apply(put("b", "k", 3)).unwrap();
    let (_, file) = snapshot::build(&source, &d.path().join("snaps")).unwrap();
    let path = file.path.clone();
    drop(file);
    let target_dir = d.path().join("b");
    {
        // A crash right after the install began: the record says which file, the state
        // column families hold something else.
        let t = MetaStore::open(&target_dir).unwrap();
        t.apply(tenant_command("other", Quota::default())).unwrap();
        t.put_raft_state_synced(keys::RAFT_INSTALLING, path.to_string_lossy().as_bytes())
            .unwrap();
    }
    let t = MetaStore::open(&target_dir).unwrap();
    assert!(scan(&source) == scan(&t));
    assert_eq!(t.get_object("b", b"k").unwrap().unwrap().size, 3);
}

#[test]
fn an_abort_after_its_commit_collects_nothing() {
    // A commit whose answer was lost, then the writer's abort: the shards stay.
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    m.apply(tenant_command(DEFAULT_TENANT, Quota::default())).unwrap();
    m.apply(create_bucket("b")).unwrap();
    let r = rec(5);
    let v = r.version;
    m.begin_write(&v, &["n1".into()]).unwrap();
    m.apply(MetaCommand::CommitObject(crate::CommitObject {
        bucket: "b".into(),
        key: b"k".to_vec(),
        record: r,
        layouts: vec![(v, crate::LayoutRecord { hashes: vec![] })],
        condition: WriteCondition::default(),
        now_ms: 1,
    }))
    .unwrap();
    m.abort_write(&v, &["n1".into()], None).unwrap();
    assert!(m.gc_batch(u64::MAX, 10).unwrap().is_empty());
    assert!(m.get_object("b", b"k").unwrap().is_some());
}

/// One step of a random history on a few keys of two buckets.
fn command(op: u8, key: u8, size: u64, bucket: u8) -> MetaCommand {
    let b = format!("b{}", bucket % 2);
    let k = format!("k{}", key % 4);
    match op % 6 {
        0 => create_bucket(&b),
        1 => put(&b, &k, size),
        2 => {
            let mut record = rec(size);
            record.parts[0].nodes.clear();
            MetaCommand::CommitInlineObject(crate::CommitInlineObject {
                bucket: b,
                key: k.into_bytes(),
                record,
                packages: size.to_be_bytes().to_vec(),
                condition: WriteCondition::default(),
                now_ms: size,
            })
        }
        3 => MetaCommand::DeleteObjects {
            bucket: b,
            keys: vec![k.into_bytes()],
            now_ms: size,
        },
        4 => MetaCommand::DeleteBucket { name: b },
        _ => MetaCommand::CommitObject(crate::CommitObject {
            bucket: b,
            key: k.into_bytes(),
            record: rec(size),
            layouts: vec![],
            condition: WriteCondition {
                if_none_match: true,
                ..Default::default()
            },
            now_ms: size,
        }),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The same log applied by two state machines gives byte-identical stores, whatever
    /// the commands refused along the way.
    #[test]
    fn the_same_log_gives_the_same_store(steps in proptest::collection::vec((any::<u8>(), any::<u8>(), 1u64..1000, any::<u8>()), 1..60)) {
        let log: Vec<MetaCommand> = std::iter::once(tenant_command(DEFAULT_TENANT, Quota::default()))
            .chain(steps.iter().map(|(o, k, s, b)| command(*o, *k, *s, *b)))
            .collect();
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (MetaStore::open(da.path()).unwrap(), MetaStore::open(db.path()).unwrap());
        for (i, cmd) in log.into_iter().enumerate() {
            let at = codec::encode(&openraft::LogId::new(openraft::CommittedLeaderId::new(1, 1), i as u64 + 1));
            let ra = a.apply_at(cmd.clone(), Some(&at));
            let rb = b.apply_at(cmd, Some(&at));
            prop_assert_eq!(format!("{ra:?}"), format!("{rb:?}"));
        }
        prop_assert!(scan(&a) == scan(&b));
    }
}

/// Whether `pattern` is in any file under `dir` (RocksDB tables and logs, snapshots).
fn on_disk(dir: &std::path::Path, pattern: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if std::fs::read(&p).is_ok_and(|b| b.windows(pattern.len()).any(|w| w == pattern)) {
                found.push(p);
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_tenant_key_leaves_no_trace_on_any_replica() {
    const KEK: &[u8] = b"WRAPPED-KEK-OF-TENANT-ERASED-0123456789";
    let mut c = Cluster::start(3, 10_000).await;
    let leader = c.leader().await;
    let mut create = tenant_command("erased", Quota::default());
    if let MetaCommand::Iam(crate::IamCommand::CreateTenant(t)) = &mut create {
        t.record.kek = KEK.to_vec();
    }
    c.replica(leader).propose(create).await.unwrap();
    for i in 0..3 {
        c.replica(i).barrier().await.unwrap();
        c.replica(i).snapshot_now().await.unwrap();
    }
    // Everywhere now: the records, the logs, the snapshots.
    for d in &c.dirs {
        assert!(
            !on_disk(d.path(), KEK).is_empty(),
            "the test must see the key where it is"
        );
    }
    c.replica(leader)
        .propose(MetaCommand::Iam(crate::IamCommand::DeleteTenant {
            name: "erased".into(),
        }))
        .await
        .unwrap();
    if let Err(e) = c.replica((leader + 1) % 3).forget_history().await {
        panic!("{e}");
    }
    for d in &c.dirs {
        let left = on_disk(d.path(), KEK);
        assert!(left.is_empty(), "the erased key is still in {left:?}");
    }
    // The set goes on.
    c.replica(leader)
        .propose(tenant_command(DEFAULT_TENANT, Quota::default()))
        .await
        .unwrap();
    c.stop_all().await;
}
