//! The index of the parts each node holds: kept by commits, repairs and the GC; a lost node's
//! parts marked degraded where they are (versions, upload parts); built once for a store
//! written before it.

use super::*;
use crate::tests::{bucket_of, tenant_command};
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
