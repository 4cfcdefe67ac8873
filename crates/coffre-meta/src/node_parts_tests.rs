//! The index of the parts each node holds: kept by commits, repairs and the GC; a lost node's
//! parts marked degraded where they are (versions, upload parts); built once for a store
//! written before it.

use super::*;
use crate::tests::{bucket_of, tenant_command};
use crate::HealedShard;
use coffre_types::Scheme;

const MIB: u64 = 1 << 20;

fn six_nodes() -> Vec<String> {
    (1..=6).map(|i| format!("n{i}")).collect()
}

fn record(size: u64, nodes: Vec<String>) -> ObjectRecord {
    let mut r = crate::tests::rec(size);
    r.parts[0].nodes = nodes;
    r
}

fn layout() -> LayoutRecord {
    LayoutRecord { hashes: vec![[1; 32]] }
}

fn store() -> (tempfile::TempDir, MetaStore) {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    m.apply(tenant_command(DEFAULT_TENANT, Quota::default())).unwrap();
    m.create_bucket("b", &bucket_of(DEFAULT_TENANT)).unwrap();
    (d, m)
}

fn parts(m: &MetaStore, node: &str) -> Vec<VersionId> {
    m.parts_on_node(node, None, 1000)
        .unwrap()
        .into_iter()
        .map(|p| p.part)
        .collect()
}

#[test]
fn commits_repairs_and_the_gc_keep_the_index() {
    let (_d, m) = store();
    let first = record(4 * MIB, six_nodes());
    let v1 = first.parts[0].version;
    m.begin_write(&v1, &six_nodes()).unwrap();
    m.commit_object("b", b"k", &first, &[(v1, layout())]).unwrap();
    for n in six_nodes() {
        assert_eq!(parts(&m, &n), vec![v1], "{n}");
    }
    let h = m.node_holdings("n3").unwrap();
    assert_eq!(
        (h.parts, h.bytes),
        (1, MIB),
        "a shard index holds the part's bytes over k"
    );
    assert_eq!(h.stripes, 1);
    assert_eq!(m.indexed_nodes().unwrap(), six_nodes());

    // A repair moves shard 2 from n3 to n7: n3 loses the entry, n7 gets it.
    let mut moved = first.parts.clone();
    moved[0].nodes[2] = "n7".into();
    m.apply(MetaCommand::UpdateParts {
        bucket: "b".into(),
        key: b"k".to_vec(),
        version: first.version,
        parts: moved,
    })
    .unwrap();
    assert!(parts(&m, "n3").is_empty());
    assert_eq!(parts(&m, "n7"), vec![v1]);

    // Replaced (no versioning): the old part stays indexed until the GC removed its shards.
    let second = record(MIB, six_nodes());
    let v2 = second.parts[0].version;
    m.begin_write(&v2, &six_nodes()).unwrap();
    m.commit_object("b", b"k", &second, &[(v2, layout())]).unwrap();
    assert_eq!(parts(&m, "n1").len(), 2);
    let gc = m.gc_batch(u64::MAX, 10).unwrap();
    m.gc_done(&gc[0].0, &gc[0].1).unwrap();
    assert_eq!(parts(&m, "n1"), vec![v2]);
    assert!(parts(&m, "n7").is_empty());
    assert_eq!(m.node_holdings("n7").unwrap(), NodeHoldings::default());
}

#[test]
fn a_lost_node_s_parts_are_marked_degraded_where_they_are() {
    let (_d, m) = store();
    let r = record(MIB, six_nodes());
    let v = r.parts[0].version;
    m.begin_write(&v, &six_nodes()).unwrap();
    m.commit_object("b", b"k", &r, &[(v, layout())]).unwrap();
    let lost = |node: &str, part: VersionId| {
        m.apply(MetaCommand::EvacuatePart {
            node: node.into(),
            part,
        })
        .unwrap()
    };
    assert_eq!(lost("n4", v), Outcome::Done(true));
    let now = m.get_object("b", b"k").unwrap().unwrap();
    assert_eq!(now.parts[0].degraded, vec![3]);
    assert_eq!(m.to_heal(None, 10).unwrap().len(), 1, "queued for repair");
    // Until the repair moves the shard, the entry stays (what is left to rebuild).
    assert_eq!(parts(&m, "n4"), vec![v]);
    // Marking again changes nothing; a node the part is not on has nothing to mark.
    assert_eq!(lost("n4", v), Outcome::Done(true));
    assert_eq!(m.get_object("b", b"k").unwrap().unwrap(), now);
    assert_eq!(lost("n9", v), Outcome::Done(false));

    // A part gone (its version deleted, its layout collected) leaves the index when walked.
    let gone = record(MIB, six_nodes());
    let gv = gone.parts[0].version;
    m.begin_write(&gv, &six_nodes()).unwrap();
    m.commit_object("b", b"gone", &gone, &[(gv, layout())]).unwrap();
    m.delete_object("b", b"gone").unwrap();
    let gc = m.gc_batch(u64::MAX, 10).unwrap();
    assert_eq!(gc.len(), 1);
    // (Before the GC ran: the part is held by nothing, its entry goes.)
    assert_eq!(lost("n2", gv), Outcome::Done(false));
    assert_eq!(parts(&m, "n2"), vec![v]);

    // An upload's part: marked in the upload, degraded in the object once completed.
    let id = [9u8; 16];
    let up = UploadRecord {
        created_ms: 1,
        scheme: Scheme::DEFAULT,
        packages_per_stripe: 64,
        sealed: vec![],
        checksum_algorithm: None,
        checksum_type: None,
        completed: None,
    };
    m.create_upload("b", b"mp", &id, &up).unwrap();
    let mut info = record(5 * MIB, six_nodes()).parts.remove(0);
    info.nodes[5] = "n8".into();
    m.begin_write(&info.version, &info.nodes).unwrap();
    let part = UploadPartRecord {
        info: info.clone(),
        last_modified_ms: 1,
    };
    m.commit_part("b", b"mp", &id, 1, &part, &layout()).unwrap();
    assert_eq!(parts(&m, "n8"), vec![info.version]);
    assert_eq!(lost("n8", info.version), Outcome::Done(true));
    let mut obj = record(5 * MIB, vec![]);
    obj.parts = vec![PartInfo {
        degraded: vec![5],
        ..info.clone()
    }];
    m.complete_upload("b", b"mp", &id, &[1], &obj).unwrap();
    assert_eq!(m.get_object("b", b"mp").unwrap().unwrap().parts[0].degraded, vec![5]);
}

#[test]
fn a_store_written_before_the_index_gets_it_at_start_up() {
    let (d, m) = store();
    let mut all = Vec::new();
    for i in 0..5u8 {
        let r = record(MIB, six_nodes());
        let v = r.parts[0].version;
        // Layouts as they were written before they named their owner.
        m.commit_object("b", &[b'k', i], &r, &[]).unwrap();
        m.db.put_cf(m.cf(keys::CF_LAYOUTS), keys::version(&v), records::encode(&layout()))
            .unwrap();
        all.push(v);
    }
    all.sort_by_key(|v| v.0);
    // As a store of the version before: no index, no marker.
    let cf = m.cf(keys::CF_NODE_PARTS);
    let entries: Vec<Vec<u8>> =
        m.db.iterator_cf(cf, rocksdb::IteratorMode::Start)
            .map(|i| i.unwrap().0.to_vec())
            .collect();
    for k in entries {
        m.db.delete_cf(cf, k).unwrap();
    }
    assert!(parts(&m, "n1").is_empty());
    assert!(m.layout_owner(&all[0]).unwrap().is_none());
    drop(m);
    let m = MetaStore::open(d.path()).unwrap();
    let mut found = parts(&m, "n1");
    found.sort_by_key(|v| v.0);
    assert_eq!(found, all);
    for v in &all {
        let owner = m.layout_owner(v).unwrap().unwrap();
        assert_eq!(owner.bucket, "b");
        assert_eq!(m.get_layout(v).unwrap(), Some(layout()), "the layout itself unchanged");
    }
}

#[test]
fn the_repair_queue_puts_the_stripes_closest_to_loss_first() {
    let (d, m) = store();
    // "a" has lost one shard (it can lose one more), "z" two (none more): "z" first.
    for (key, lost) in [("a", vec![0u8]), ("z", vec![0u8, 1]), ("m", vec![])] {
        let mut r = record(MIB, six_nodes());
        r.parts[0].degraded = lost;
        m.commit_object("b", key.as_bytes(), &r, &[]).unwrap();
    }
    let queue: Vec<Vec<u8>> = m.to_heal(None, 10).unwrap().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(queue, vec![b"z".to_vec(), b"a".to_vec()]);
    // A new finding on "a" makes it as urgent as "z" (and keys of one margin go in order).
    let v = m.get_object("b", b"a").unwrap().unwrap().parts[0].version;
    m.apply(MetaCommand::MarkDegraded {
        bucket: "b".into(),
        key: b"a".to_vec(),
        part: v,
        index: 5,
    })
    .unwrap();
    let queue = m.to_heal(None, 10).unwrap();
    let keys: Vec<&[u8]> = queue.iter().map(|(_, k, _)| k.as_slice()).collect();
    assert_eq!(keys, vec![b"a".as_slice(), b"z".as_slice()]);
    // Healed ("a" whole again): it leaves the queue, old entries included.
    let mut whole = m.get_object("b", b"a").unwrap().unwrap();
    whole.parts[0].degraded.clear();
    m.apply(MetaCommand::UpdateParts {
        bucket: "b".into(),
        key: b"a".to_vec(),
        version: whole.version,
        parts: whole.parts.clone(),
    })
    .unwrap();
    m.apply(MetaCommand::DropHeal {
        raw_key: queue[0].2.clone(),
    })
    .unwrap();
    let keys: Vec<Vec<u8>> = m.to_heal(None, 10).unwrap().into_iter().map(|(_, k, _)| k).collect();
    assert_eq!(keys, vec![b"z".to_vec()]);

    // A queue written before the risk order (heal entries without a margin) gets it at start.
    let okey = keys::object("b", b"z");
    let repair: Vec<Vec<u8>> =
        m.db.iterator_cf(m.cf(keys::CF_REPAIR), rocksdb::IteratorMode::Start)
            .map(|i| i.unwrap().0.to_vec())
            .collect();
    for k in repair {
        m.db.delete_cf(m.cf(keys::CF_REPAIR), k).unwrap();
    }
    m.db.put_cf(m.cf(keys::CF_HEAL), &okey, []).unwrap();
    assert!(m.to_heal(None, 10).unwrap().is_empty());
    drop(m);
    let m = MetaStore::open(d.path()).unwrap();
    let queue = m.to_heal(None, 10).unwrap();
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].2, keys::repair(0, &okey));
}

/// Overwrites, a lost node's marks, repairs and the GC racing on few keys: every command
/// re-checks under the key's lock what it relies on and writes before it lets go, so at the
/// end the index and the repair queue say what the records say, as a sequential run would
/// leave them: each node indexed with exactly the current parts it holds (a mark written after
/// its lock was released once brought a replaced version back, its shards collected and the
/// new one's orphaned), every degraded shard one of the lost node's and its key queued, no
/// mark lost to a repair that read the record before it.
#[test]
fn marks_repairs_and_the_gc_racing_overwrites_leave_the_index_and_the_queue_true() {
    let (_d, m) = store();
    let keys: Vec<Vec<u8>> = (0..3).map(|i| format!("k{i}").into_bytes()).collect();
    let writers_done = std::sync::atomic::AtomicUsize::new(0);
    // Parts the lost node's walk found holding a shard there, so marked.
    let marked = std::sync::Mutex::new(std::collections::HashSet::new());
    let done = || writers_done.load(std::sync::atomic::Ordering::Relaxed) == 2;
    std::thread::scope(|s| {
        for w in 0..2 {
            let (m, keys, writers_done) = (&m, &keys, &writers_done);
            s.spawn(move || {
                for i in 0..300 {
                    let r = record(MIB, six_nodes());
                    let v = r.parts[0].version;
                    m.begin_write(&v, &six_nodes()).unwrap();
                    m.commit_object("b", &keys[(i + w) % keys.len()], &r, &[(v, layout())])
                        .unwrap();
                }
                writers_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        }
        // n3 is lost: its parts are marked as the evacuate worker does, again and again.
        s.spawn(|| {
            while !done() {
                for p in parts(&m, "n3") {
                    let found = m
                        .apply(MetaCommand::EvacuatePart {
                            node: "n3".into(),
                            part: p,
                        })
                        .unwrap();
                    if found == Outcome::Done(true) {
                        marked.lock().unwrap().insert(p);
                    }
                }
            }
        });
        // The repair, as the engine's: what it read degraded goes to n7 (recorded as
        // `HealShards`), then the key leaves the queue if nothing under it is degraded.
        s.spawn(|| {
            while !done() {
                for (bucket, key, raw) in m.to_heal(None, 10).unwrap() {
                    if let Some(r) = m.get_object(&bucket, &key).unwrap() {
                        let healed: Vec<HealedShard> = r
                            .parts
                            .iter()
                            .flat_map(|p| {
                                p.degraded.iter().map(|i| HealedShard {
                                    part: p.version,
                                    index: *i,
                                    node: "n7".into(),
                                })
                            })
                            .collect();
                        m.apply(MetaCommand::HealShards {
                            bucket: bucket.clone(),
                            key: key.clone(),
                            seq: None,
                            version: r.version,
                            healed,
                        })
                        .unwrap();
                    }
                    m.apply(MetaCommand::DropHeal { raw_key: raw }).unwrap();
                }
            }
        });
        s.spawn(|| {
            while !done() {
                for (raw, gc) in m.gc_batch(u64::MAX, 10).unwrap() {
                    m.gc_done(&raw, &gc).unwrap();
                }
            }
        });
    });
    // What is left to collect is collected; then the model: the current records.
    loop {
        let gc = m.gc_batch(u64::MAX, 100).unwrap();
        if gc.is_empty() {
            break;
        }
        for (raw, g) in gc {
            m.gc_done(&raw, &g).unwrap();
        }
    }
    let mut want: std::collections::BTreeMap<String, Vec<VersionId>> = Default::default();
    let queued: Vec<Vec<u8>> = m.to_heal(None, 100).unwrap().into_iter().map(|(_, k, _)| k).collect();
    for key in &keys {
        let r = m.get_object("b", key).unwrap().unwrap();
        for p in &r.parts {
            for n in &p.nodes {
                want.entry(n.clone()).or_default().push(p.version);
            }
            for i in &p.degraded {
                assert_eq!(p.nodes[*i as usize], "n3", "only the lost node's shards are marked");
            }
            // A mark is never lost: a part found on n3 keeps its shard there marked until
            // the repair moved it.
            if marked.lock().unwrap().contains(&p.version) {
                for (i, n) in p.nodes.iter().enumerate() {
                    assert!(n != "n3" || p.degraded.contains(&(i as u8)), "a mark was lost: {p:?}");
                }
            }
            if !p.degraded.is_empty() {
                assert!(queued.contains(key), "a degraded key is queued");
            }
        }
    }
    for n in ["n1", "n2", "n3", "n4", "n5", "n6", "n7"] {
        let mut have = parts(&m, n);
        let mut expected = want.remove(n).unwrap_or_default();
        have.sort();
        expected.sort();
        expected.dedup();
        assert_eq!(have, expected, "{n}: the index holds exactly its current parts");
    }
}
