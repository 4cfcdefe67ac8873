//! The scrub of a local store: damage found (flipped bytes, an erased record, a legacy
//! record's CRC), nothing found in an intact store, the walk resumed after a reopen, the
//! findings kept until acknowledged, the pace.

use super::*;
use coffre_types::VersionId;
use std::os::unix::fs::FileExt;

fn sid(v: u8, i: u32) -> ShardId {
    ShardId {
        version: VersionId([v; 16]),
        part: 0,
        stripe: i,
        index: (i % 6) as u8,
    }
}

fn body(i: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|j| (j as u32 ^ i).wrapping_mul(2_654_435_761) as u8)
        .collect()
}

/// (segment file, offset of the record's data) of shard `id`.
fn where_is(s: &LocalShardStore, id: ShardId) -> (std::fs::File, u64, u32) {
    let loc = s.inner.index.lookup(&id).unwrap().unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(segment_path(&s.inner.dir, loc.segment))
        .unwrap();
    (f, loc.offset, loc.len)
}

fn full_pass(s: &LocalShardStore) -> ScrubStatus {
    s.scrub_request(ScrubRequest {
        start: true,
        ..Default::default()
    })
    .unwrap();
    for _ in 0..10_000 {
        s.scrub_step(4096).unwrap();
        if !s.scrub_requested() {
            return s.scrub_request(ScrubRequest::default()).unwrap();
        }
    }
    panic!("the pass never ended");
}

#[test]
fn an_intact_store_scrubs_clean_and_each_damage_is_found_once() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for i in 0..50 {
        s.put_blocking(sid(1, i), &body(i, 1000 + i as usize)).unwrap();
    }
    let st = full_pass(&s);
    assert_eq!((st.passes, st.corrupt_found, st.pass_shards), (1, 0, 50), "{st:?}");
    assert!(st.findings.is_empty());

    // A flipped byte in one shard's data, an erased header in another's.
    let (f, off, len) = where_is(&s, sid(1, 7));
    let mut b = [0u8; 1];
    let at = off + HASH_LEN as u64 + (len as u64 - HASH_LEN as u64) / 2;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 1], at).unwrap();
    let (f, off, _) = where_is(&s, sid(1, 30));
    f.write_all_at(&[0u8; HEADER_LEN], off - HEADER_LEN as u64).unwrap();
    let st = full_pass(&s);
    assert_eq!(st.corrupt_found, 2, "{st:?}");
    let mut want = vec![hex::encode(sid(1, 7).to_bytes()), hex::encode(sid(1, 30).to_bytes())];
    want.sort();
    assert_eq!(st.findings, want);

    // Kept until acknowledged, across a reopen; then forgotten.
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    let st = s.scrub_request(ScrubRequest::default()).unwrap();
    assert_eq!((st.findings_pending, st.passes), (2, 2));
    let st = s
        .scrub_request(ScrubRequest {
            ack: want.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(st.findings_pending, 0);
    // Repaired (written again), the shard scrubs clean.
    s.put_blocking(sid(1, 7), &body(7, 1007)).unwrap();
    let st = full_pass(&s);
    assert!(st.corrupt_found >= 2 && st.findings.len() <= 1, "{st:?}");
}

#[test]
fn a_record_written_before_hashes_is_checked_by_its_crc() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    // As an earlier version wrote it: `KIND_PUT`, no hash.
    let data = body(3, 4000);
    s.put_unlocked(KIND_PUT, sid(2, 3), &[&data]).unwrap();
    s.put_blocking(sid(2, 4), &body(4, 4000)).unwrap();
    assert_eq!(&s.get_blocking(sid(2, 3)).unwrap()[..], &data[..]);
    assert_eq!(full_pass(&s).corrupt_found, 0);
    let (f, off, _) = where_is(&s, sid(2, 3));
    f.write_all_at(&[0xff, 0xff], off + 100).unwrap();
    let st = full_pass(&s);
    assert_eq!(st.findings, vec![hex::encode(sid(2, 3).to_bytes())], "{st:?}");
}

#[test]
fn a_pass_resumes_where_it_stopped_after_a_reopen() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for i in 0..100 {
        s.put_blocking(sid(3, i), &body(i, 1000)).unwrap();
    }
    s.scrub_request(ScrubRequest {
        start: true,
        ..Default::default()
    })
    .unwrap();
    // About 1000 bytes a shard (and its hash): ten steps of three shards.
    for _ in 0..10 {
        let step = s.scrub_step(3 * 1032).unwrap();
        assert_eq!(step.shards, 3);
    }
    drop(s);
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    assert!(s.scrub_requested());
    let st = s.scrub_request(ScrubRequest::default()).unwrap();
    assert_eq!((st.running, st.pass_shards), (true, 30));
    while s.scrub_requested() {
        s.scrub_step(1 << 20).unwrap();
    }
    let st = s.scrub_request(ScrubRequest::default()).unwrap();
    // Every shard exactly once over the two lives of the store.
    assert_eq!((st.passes, st.shards_checked), (1, 100), "{st:?}");
}

#[test]
fn the_pace_spreads_a_pass_over_the_period_under_the_cap() {
    let d = tempfile::tempdir().unwrap();
    let s = LocalShardStore::open("n1", d.path()).unwrap();
    for i in 0..64 {
        s.put_blocking(sid(4, i), &body(i, 64 << 10)).unwrap();
    }
    let live: u64 = s.inner.index.stats().iter().map(|(_, st)| st.live).sum();
    let set = |rate: u64, period: u64| {
        s.scrub_request(ScrubRequest {
            rate_mib: Some(rate),
            period_secs: Some(period),
            ..Default::default()
        })
        .unwrap();
    };
    set(64, 2);
    assert_eq!(s.scrub_pace(), live / 2);
    set(64, 30 * 86_400);
    assert_eq!(s.scrub_pace(), scrub::MIN_PACE_FOR_TESTS);
    set(1, 1);
    assert_eq!(s.scrub_pace(), 1 << 20, "capped");
    s.scrub_request(ScrubRequest {
        start: true,
        rate_mib: Some(5),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.scrub_pace(), 5 << 20, "an asked pass runs at the cap");
    set(0, 1);
    assert_eq!(s.scrub_pace(), u64::MAX, "0: no cap");
}

#[test]
fn the_shards_of_a_lost_segment_file_are_found_missing() {
    let d = tempfile::tempdir().unwrap();
    let limits = SegmentLimits {
        bytes: 1 << 20,
        records: 4,
    };
    let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
    for i in 0..20 {
        s.put_blocking(sid(2, i), &body(i, 500)).unwrap();
    }
    // The segment of shard 5 (sealed: four records a segment) goes, as with a disk's bad
    // sector under a whole file, or an operator's mistake; the store is restarted.
    let lost_segment = s.inner.index.lookup(&sid(2, 5)).unwrap().unwrap().segment;
    let in_it: Vec<u32> = (0..20)
        .filter(|i| s.inner.index.lookup(&sid(2, *i)).unwrap().unwrap().segment == lost_segment)
        .collect();
    assert!(!in_it.is_empty() && in_it.len() < 20);
    drop(s);
    std::fs::remove_file(segment_path(d.path(), lost_segment)).unwrap();
    let s = LocalShardStore::open_with_limits("n1", d.path(), limits).unwrap();
    let st = full_pass(&s);
    let mut want: Vec<String> = in_it.iter().map(|i| hex::encode(sid(2, *i).to_bytes())).collect();
    want.sort();
    assert_eq!(st.findings, want, "{st:?}");
    assert_eq!(st.corrupt_found, in_it.len() as u64);
}
