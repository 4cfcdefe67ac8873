use super::*;
use coffre_types::VersionId;
use std::io::Write;

fn sid(i: u32) -> ShardId {
    ShardId {
        version: VersionId([1; 16]),
        part: 0,
        stripe: i,
        index: 0,
    }
}

#[test]
fn large_shards_read_back_after_leaving_the_page_cache() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    let data = |i: u32, len: usize| {
        (0..len)
            .map(|j| (j as u32 ^ i).wrapping_mul(2_654_435_761) as u8)
            .collect::<Vec<u8>>()
    };
    // Around the size from which pages are dropped, between small records.
    let sizes = [
        DROP_CACHE_FROM - 1,
        3,
        DROP_CACHE_FROM,
        17,
        DROP_CACHE_FROM + 4097,
        2 * DROP_CACHE_FROM,
    ];
    for (i, len) in sizes.iter().enumerate() {
        s.put_blocking(sid(i as u32), &data(i as u32, *len)).unwrap();
    }
    for round in 0..2 {
        for (i, len) in sizes.iter().enumerate() {
            assert_eq!(
                &s.get_blocking(sid(i as u32)).unwrap()[..],
                &data(i as u32, *len)[..],
                "shard {i}, round {round}"
            );
        }
    }
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for (i, len) in sizes.iter().enumerate() {
        assert_eq!(&s.get_blocking(sid(i as u32)).unwrap()[..], &data(i as u32, *len)[..]);
    }
}

#[test]
fn put_get_delete_reopen() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    s.put_blocking(sid(1), b"one").unwrap();
    s.put_blocking(sid(2), b"two").unwrap();
    s.put_blocking(sid(3), b"").unwrap();
    s.delete_blocking(sid(2)).unwrap();
    assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"one");
    assert!(matches!(s.get_blocking(sid(2)), Err(StoreError::NotFound(_))));
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"one");
    assert_eq!(&s.get_blocking(sid(3)).unwrap()[..], b"");
    assert!(matches!(s.get_blocking(sid(2)), Err(StoreError::NotFound(_))));
}

#[test]
fn torn_tail_is_cut_and_later_writes_survive() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    s.put_blocking(sid(1), b"kept").unwrap();
    let seg = segment_path(d.path(), s.inner.active.lock().unwrap().segment);
    drop(s);
    // A crash in the middle of the next record.
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&header(KIND_PUT, &sid(2), 100, 0)).unwrap();
    f.write_all(b"partial").unwrap();
    drop(f);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"kept");
    assert!(s.get_blocking(sid(2)).is_err());
    s.put_blocking(sid(3), b"after").unwrap();
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert_eq!(&s.get_blocking(sid(3)).unwrap()[..], b"after");
}

#[test]
fn a_damaged_header_costs_only_its_own_record() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for i in 0..3 {
        s.put_blocking(sid(i), &[i as u8; 5000]).unwrap();
    }
    let seg = segment_path(d.path(), s.inner.active.lock().unwrap().segment);
    drop(s);
    // Bit rot in the second record's header.
    let mut b = std::fs::read(&seg).unwrap();
    b[HEADER_LEN + HASH_LEN + 5000 + 10] ^= 0xFF;
    std::fs::write(&seg, &b).unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert_eq!(&s.get_blocking(sid(0)).unwrap()[..], &[0u8; 5000][..]);
    assert!(s.get_blocking(sid(1)).is_err());
    assert_eq!(
        &s.get_blocking(sid(2)).unwrap()[..],
        &[2u8; 5000][..],
        "the record after survives"
    );
    assert_eq!(
        std::fs::metadata(&seg).unwrap().len(),
        b.len() as u64,
        "nothing truncated"
    );
}

#[test]
fn compaction_keeps_deleted_shards_deleted() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    s.put_blocking(sid(1), &[1; 1000]).unwrap();
    s.put_blocking(sid(2), &[2; 100_000]).unwrap(); // keeps segment 1 over half live
    drop(s);
    // Segment 2 holds only the tombstone of shard 1 (whose data is in segment 1).
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    s.delete_blocking(sid(1)).unwrap();
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert!(s.compact().unwrap() > 0, "the tombstone-only segment is compacted");
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert!(
        s.get_blocking(sid(1)).is_err(),
        "a compacted tombstone must not revive shard 1"
    );
    assert_eq!(&s.get_blocking(sid(2)).unwrap()[..], &[2u8; 100_000][..]);
}

#[test]
fn compaction_reclaims_dead_segments() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for i in 0..10 {
        s.put_blocking(sid(i), &[i as u8; 1000]).unwrap();
    }
    for i in 0..8 {
        s.delete_blocking(sid(i)).unwrap();
    }
    drop(s);
    // Reopening seals the old segment.
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert!(s.compact().unwrap() > 0);
    for i in 8..10 {
        assert_eq!(&s.get_blocking(sid(i)).unwrap()[..], &[i as u8; 1000][..]);
    }
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert_eq!(s.stat_blocking().unwrap().shards, 2);
    assert!(s.get_blocking(sid(0)).is_err());
    assert_eq!(&s.get_blocking(sid(9)).unwrap()[..], &[9u8; 1000][..]);
}

fn small() -> SegmentLimits {
    SegmentLimits {
        bytes: 1 << 20,
        records: 4,
    }
}

fn data_of(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|j| (i as usize * 31 + j) as u8).collect()
}

#[test]
fn a_start_reads_the_index_not_the_indexed_segments() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open_with_limits("n1", d.path(), small()).unwrap();
    for i in 0..20 {
        s.put_blocking(sid(i), &data_of(i, 100)).unwrap();
    }
    s.delete_blocking(sid(3)).unwrap();
    s.flush_index().unwrap();
    let through = s.inner.index.through();
    assert!(through >= 5, "sealed segments are indexed: {through}");
    assert_eq!(
        s.inner.index.unflushed(),
        1,
        "only the active segment's record is in memory"
    );
    drop(s);
    // A record slipped into an indexed segment after the fact: a start that scanned the
    // indexed segments would find it.
    let mut f = OpenOptions::new().append(true).open(segment_path(d.path(), 1)).unwrap();
    let extra = b"not indexed";
    f.write_all(&header(
        KIND_PUT,
        &sid(99),
        extra.len() as u32,
        crc_fast::crc32_iscsi(extra),
    ))
    .unwrap();
    f.write_all(extra).unwrap();
    drop(f);
    let s = LocalShardStore::open_with_limits("n1", d.path(), small()).unwrap();
    assert!(
        s.inner.index.through() > through,
        "the segment active at the stop was scanned and indexed"
    );
    assert_eq!(s.inner.index.unflushed(), 0);
    for i in 0..20 {
        match s.get_blocking(sid(i)) {
            Ok(b) => assert_eq!(&b[..], &data_of(i, 100)[..], "shard {i}"),
            Err(StoreError::NotFound(_)) => assert_eq!(i, 3),
            Err(e) => panic!("shard {i}: {e}"),
        }
    }
    assert!(
        s.get_blocking(sid(99)).is_err(),
        "indexed segments are not scanned again"
    );
    assert_eq!(s.stat_blocking().unwrap().shards, 19);
    drop(s);
    // Without its index (lost, or a store from before it), a start rebuilds it from every
    // segment: now the slipped-in record counts.
    std::fs::remove_dir_all(d.path().join("index")).unwrap();
    let s = LocalShardStore::open_with_limits("n1", d.path(), small()).unwrap();
    assert_eq!(&s.get_blocking(sid(99)).unwrap()[..], extra);
    assert_eq!(&s.get_blocking(sid(19)).unwrap()[..], &data_of(19, 100)[..]);
    assert!(s.get_blocking(sid(3)).is_err());
    assert_eq!(s.stat_blocking().unwrap().shards, 20);
}

#[test]
fn writers_racing_over_segment_seals_and_compaction_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let limits = SegmentLimits {
        bytes: 4 << 10,
        records: 3,
    };
    let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let compactor = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                s.compact().unwrap();
                s.flush_index().unwrap();
            }
        })
    };
    // Each writer owns three shard ids and keeps a model of them.
    let writers: Vec<_> = (0..8u32)
        .map(|w| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut model: HashMap<ShardId, Vec<u8>> = HashMap::new();
                for round in 0..150u32 {
                    let id = sid(w * 3 + round % 3);
                    if round % 7 == 6 {
                        s.delete_blocking(id).unwrap();
                        model.remove(&id);
                    } else {
                        let v = data_of(w * 1000 + round, (round as usize * 37) % 700);
                        s.put_blocking(id, &v).unwrap();
                        model.insert(id, v);
                    }
                    let got = s.get_blocking(id).ok().map(|b| b.to_vec());
                    assert_eq!(got.as_ref(), model.get(&id), "writer {w} round {round}");
                }
                model
            })
        })
        .collect();
    let mut model = HashMap::new();
    for w in writers {
        model.extend(w.join().unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    compactor.join().unwrap();
    let check = |s: &LocalShardStore, when: &str| {
        for i in 0..24 {
            let got = s.get_blocking(sid(i)).ok().map(|b| b.to_vec());
            assert_eq!(got.as_ref(), model.get(&sid(i)), "shard {i} {when}");
        }
        let mut listed = s.inner.index.list().unwrap();
        listed.sort_unstable_by_key(|i| i.to_bytes());
        let mut expected: Vec<ShardId> = model.keys().copied().collect();
        expected.sort_unstable_by_key(|i| i.to_bytes());
        assert_eq!(listed, expected, "{when}");
        assert_eq!(s.stat_blocking().unwrap().shards, model.len() as u64, "{when}");
    };
    check(&s, "after the race");
    let used = s.stat_blocking().unwrap().used_bytes;
    drop(s);
    let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
    check(&s, "after a restart");
    assert_eq!(s.stat_blocking().unwrap().used_bytes, used);
    drop(s);
    std::fs::remove_dir_all(d.path().join("index")).unwrap();
    let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
    check(&s, "after a rebuild of the index");
    assert_eq!(
        s.stat_blocking().unwrap().used_bytes,
        used,
        "the persisted live counts match a rebuild"
    );
}

#[derive(Clone, Debug)]
enum Op {
    Put(u32, usize),
    Delete(u32),
    Restart { lose_index: bool },
    Compact,
    FlushIndex,
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        6 => (0..6u32, 0..600usize).prop_map(|(k, l)| Op::Put(k, l)),
        2 => (0..6u32).prop_map(Op::Delete),
        1 => any::<bool>().prop_map(|lose_index| Op::Restart { lose_index }),
        1 => Just(Op::Compact),
        1 => Just(Op::FlushIndex),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Whatever the interleaving of writes, seals, indexing, compaction, restarts and lost
    /// indexes, the store answers like a map, and its persisted counts match a rebuild.
    #[test]
    fn the_store_behaves_like_a_map(ops in proptest::collection::vec(op(), 1..40)) {
        let d = tempfile::tempdir().unwrap();
        let limits = SegmentLimits { bytes: 2 << 10, records: 3 };
        let mut s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
        let mut model: HashMap<u32, Vec<u8>> = HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            match op {
                Op::Put(k, len) => {
                    let v = data_of(*k * 7 + n as u32, *len);
                    s.put_blocking(sid(*k), &v).unwrap();
                    model.insert(*k, v);
                }
                Op::Delete(k) => {
                    s.delete_blocking(sid(*k)).unwrap();
                    model.remove(k);
                }
                Op::Restart { lose_index } => {
                    drop(s);
                    if *lose_index {
                        std::fs::remove_dir_all(d.path().join("index")).unwrap();
                    }
                    s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
                }
                Op::Compact => {
                    s.compact().unwrap();
                }
                Op::FlushIndex => s.flush_index().unwrap(),
            }
            for k in 0..6 {
                let got = s.get_blocking(sid(k)).ok().map(|b| b.to_vec());
                proptest::prop_assert_eq!(got.as_ref(), model.get(&k), "shard {} after {:?}", k, op);
            }
            proptest::prop_assert_eq!(s.stat_blocking().unwrap().shards, model.len() as u64);
        }
        let used = s.stat_blocking().unwrap().used_bytes;
        drop(s);
        std::fs::remove_dir_all(d.path().join("index")).unwrap();
        let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
        proptest::prop_assert_eq!(s.stat_blocking().unwrap().used_bytes, used);
        proptest::prop_assert_eq!(s.stat_blocking().unwrap().shards, model.len() as u64);
    }
}
