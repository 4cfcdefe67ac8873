use super::*;
use coffre_types::Scheme;

fn part(size: u64) -> PartInfo {
    PartInfo {
        version: VersionId::random(),
        size,
        md5: "00".repeat(16),
        wrapped_key: vec![],
        nodes: vec!["n1".into()],
        degraded: vec![],
        checksum: None,
    }
}

fn rec(size: u64) -> ObjectRecord {
    let p = part(size);
    ObjectRecord {
        version: p.version,
        size,
        etag: "e".into(),
        last_modified_ms: 1,
        scheme: Scheme::DEFAULT,
        packages_per_stripe: 64,
        parts: vec![p],
        sealed: vec![],
    }
}

fn upload_record() -> UploadRecord {
    UploadRecord {
        created_ms: 10,
        scheme: Scheme::DEFAULT,
        packages_per_stripe: 64,
        sealed: vec![],
        checksum_algorithm: None,
        checksum_type: None,
        completed: None,
    }
}

fn store_with(keys: &[&str]) -> (tempfile::TempDir, MetaStore) {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    let b = BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        failure_domain: "node".into(),
        scheme: Scheme::DEFAULT,
    };
    m.create_bucket("b", &b).unwrap();
    m.create_bucket("c", &b).unwrap();
    for k in keys {
        m.commit_object("b", k.as_bytes(), &rec(1), &[]).unwrap();
    }
    m.commit_object("c", b"zzz", &rec(1), &[]).unwrap();
    (d, m)
}

fn names(page: &[ListEntry]) -> Vec<String> {
    page.iter()
        .map(|e| match e {
            ListEntry::Object(k, _) => String::from_utf8(k.clone()).unwrap(),
            ListEntry::CommonPrefix(p) => format!("[{}]", String::from_utf8(p.clone()).unwrap()),
        })
        .collect()
}

#[test]
fn list_with_delimiter_and_pages() {
    let (_d, m) = store_with(&["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"]);
    let (p, more) = m.list("b", b"", Some(b"/"), None, 1000).unwrap();
    assert_eq!(names(&p), ["[a/]", "b", "[c/]", "d"]);
    assert!(!more);
    let (p, more) = m.list("b", b"", Some(b"/"), None, 2).unwrap();
    assert_eq!(names(&p), ["[a/]", "b"]);
    assert!(more);
    let (p, _) = m.list("b", b"", Some(b"/"), Some(b"b"), 2).unwrap();
    assert_eq!(names(&p), ["[c/]", "d"]);
    let (p, _) = m.list("b", b"", Some(b"/"), Some(b"a/"), 2).unwrap();
    assert_eq!(names(&p), ["b", "[c/]"]);
    let (p, _) = m.list("b", b"a/", Some(b"/"), None, 10).unwrap();
    assert_eq!(names(&p), ["a/1", "a/2", "[a/b/]"]);
    let (p, _) = m.list("b", b"a/", None, Some(b"a/1"), 10).unwrap();
    assert_eq!(names(&p), ["a/2", "a/b/3"]);
    let (p, more) = m.list("b", b"zz", None, None, 10).unwrap();
    assert!(p.is_empty() && !more);
}

#[test]
fn overwrite_and_delete_queue_gc() {
    let (_d, m) = store_with(&["k"]);
    let first = m.get_object("b", b"k").unwrap().unwrap();
    let second = rec(2);
    m.commit_object(
        "b",
        b"k",
        &second,
        &[(second.version, LayoutRecord { hashes: vec![[1; 32]] })],
    )
    .unwrap();
    assert!(m.get_layout(&second.version).unwrap().is_some());
    assert_eq!(m.get_object("b", b"k").unwrap().unwrap().size, 2);
    let gc = m.gc_batch(u64::MAX, 10).unwrap();
    assert_eq!(gc.len(), 1);
    assert_eq!(gc[0].1.parts[0].version, first.version);
    assert_eq!(gc[0].1.parts[0].stripes, Some(1));
    // The replaced version's layout stays until the GC is done with it.
    assert!(m.get_layout(&first.version).is_ok());
    m.gc_done(&gc[0].0, &gc[0].1).unwrap();
    assert!(m.gc_batch(u64::MAX, 10).unwrap().is_empty());
    assert!(m.delete_object("b", b"k").unwrap());
    assert!(!m.delete_object("b", b"k").unwrap());
    assert_eq!(m.gc_batch(u64::MAX, 10).unwrap().len(), 1);
    assert!(matches!(m.delete_bucket("c"), Err(MetaError::BucketNotEmpty)));
    m.delete_bucket("b").unwrap();
    assert!(matches!(m.delete_bucket("b"), Err(MetaError::NoSuchBucket)));
}

#[test]
fn intents_survive_reopen() {
    let d = tempfile::tempdir().unwrap();
    let v = VersionId::random();
    {
        let m = MetaStore::open(d.path()).unwrap();
        m.begin_write(&v, &["n1".into()]).unwrap();
    }
    let m = MetaStore::open(d.path()).unwrap();
    let i = m.intents().unwrap();
    assert_eq!(i.len(), 1);
    assert_eq!(i[0].0, v);
    m.abort_write(&v, &i[0].1.nodes, None).unwrap();
    assert!(m.intents().unwrap().is_empty());
    assert_eq!(m.gc_batch(u64::MAX, 10).unwrap().len(), 1);
}

#[test]
fn multipart_lifecycle() {
    let (_d, m) = store_with(&[]);
    let id = [7u8; 16];
    let up = upload_record();
    m.create_upload("b", b"big", &id, &up).unwrap();
    let parts: Vec<UploadPartRecord> = (0..3)
        .map(|_| UploadPartRecord {
            info: part(5 << 20),
            last_modified_ms: 1,
        })
        .collect();
    for (i, p) in parts.iter().enumerate() {
        m.commit_part("b", b"big", &id, i as u32 + 1, p, &LayoutRecord::default())
            .unwrap();
    }
    // Replacing part 2 queues the old one for GC.
    let p2 = UploadPartRecord {
        info: part(6 << 20),
        last_modified_ms: 2,
    };
    m.commit_part("b", b"big", &id, 2, &p2, &LayoutRecord::default())
        .unwrap();
    assert_eq!(m.gc_batch(u64::MAX, 10).unwrap().len(), 1);
    let (listed, more) = m.list_parts(&id, 1, 1).unwrap();
    assert_eq!((listed[0].0, more), (2, true));
    assert_eq!(m.list_uploads("b", b"", None, 10).unwrap().0.len(), 1);
    assert!(matches!(m.delete_bucket("b"), Err(MetaError::BucketNotEmpty)));
    // Complete with parts 1 and 2: part 3 goes to GC; the upload is marked completed.
    let mut obj = rec(0);
    obj.parts = vec![parts[0].info.clone(), p2.info.clone()];
    m.complete_upload("b", b"big", &id, &[1, 2], &obj).unwrap();
    assert_eq!(m.get_object("b", b"big").unwrap().unwrap().parts.len(), 2);
    assert!(m.get_upload("b", b"big", &id).unwrap().unwrap().completed.is_some());
    assert!(m.list_uploads("b", b"", None, 10).unwrap().0.is_empty());
    assert!(m.list_parts(&id, 0, 10).unwrap().0.is_empty());
    assert!(matches!(
        m.complete_upload("b", b"big", &id, &[1, 2], &obj),
        Err(MetaError::NoSuchUpload)
    ));
    assert!(matches!(
        m.commit_part("b", b"big", &id, 4, &p2, &LayoutRecord::default()),
        Err(MetaError::NoSuchUpload)
    ));
    let gc = m.gc_batch(u64::MAX, 10).unwrap();
    assert_eq!(gc.len(), 2);
    // Entries of one millisecond sort by version id: look for the dropped part in any.
    assert!(gc
        .iter()
        .any(|(_, g)| g.parts.iter().any(|p| p.version == parts[2].info.version)));
    // A completed marker does not keep its bucket (checked on a scratch store).
    {
        let (_d2, m2) = store_with(&[]);
        m2.create_upload("c", b"k", &id, &up).unwrap();
        assert!(matches!(m2.delete_bucket("c"), Err(MetaError::BucketNotEmpty)));
        let mut o = rec(0);
        o.parts.clear();
        m2.delete_object("c", b"zzz").unwrap();
        m2.complete_upload("c", b"k", &id, &[], &o).unwrap();
        m2.delete_object("c", b"k").unwrap();
        m2.delete_bucket("c").unwrap();
        assert!(m2.get_upload("c", b"k", &id).unwrap().is_none());
    }
    // Stale markers expire.
    assert_eq!(m.stale_uploads(11).unwrap().len(), 1);
    assert!(!m.abort_upload("b", b"big", &id).unwrap());
    assert!(m.get_upload("b", b"big", &id).unwrap().is_none());
}

#[test]
fn complete_refuses_a_part_replaced_since_it_was_read() {
    let (_d, m) = store_with(&[]);
    let id = [9u8; 16];
    let up = upload_record();
    m.create_upload("b", b"k", &id, &up).unwrap();
    let first = UploadPartRecord {
        info: part(10),
        last_modified_ms: 1,
    };
    m.commit_part("b", b"k", &id, 1, &first, &LayoutRecord::default())
        .unwrap();
    // Complete read part 1 as `first`; a re-upload of part 1 commits before it.
    let mut obj = rec(0);
    obj.parts = vec![first.info.clone()];
    let second = UploadPartRecord {
        info: part(10),
        last_modified_ms: 2,
    };
    m.commit_part("b", b"k", &id, 1, &second, &LayoutRecord::default())
        .unwrap();
    assert!(matches!(
        m.complete_upload("b", b"k", &id, &[1], &obj),
        Err(MetaError::PartChanged)
    ));
    assert!(m.get_object("b", b"k").unwrap().is_none());
    // Nothing the object would reference was queued: only `first`, replaced by `second`.
    let gc = m.gc_batch(u64::MAX, 10).unwrap();
    assert!(gc
        .iter()
        .all(|(_, g)| g.parts.iter().all(|p| p.version != second.info.version)));
    obj.parts = vec![second.info.clone()];
    m.complete_upload("b", b"k", &id, &[1], &obj).unwrap();
    assert_eq!(
        m.get_object("b", b"k").unwrap().unwrap().parts[0].version,
        second.info.version
    );
}

#[test]
fn conditions_are_checked_at_commit() {
    let (_d, m) = store_with(&[]);
    let put = |cond: WriteCondition| {
        m.apply(MetaCommand::CommitObject {
            bucket: "b".into(),
            key: b"lock".to_vec(),
            record: rec(1),
            layouts: vec![],
            condition: cond,
            now_ms: 5,
        })
    };
    let none_match = WriteCondition {
        if_none_match: true,
        ..Default::default()
    };
    let if_match = |e: &str| WriteCondition {
        if_match: Some(e.into()),
        ..Default::default()
    };
    assert!(matches!(
        put(if_match("e")),
        Err(MetaError::PreconditionFailed { exists: false })
    ));
    put(none_match.clone()).unwrap();
    assert!(matches!(
        put(none_match),
        Err(MetaError::PreconditionFailed { exists: true })
    ));
    assert!(matches!(
        put(if_match("other")),
        Err(MetaError::PreconditionFailed { exists: true })
    ));
    put(if_match("e")).unwrap();
    put(if_match("*")).unwrap();
}

#[test]
fn deleting_a_bucket_never_interleaves_with_a_commit_into_it() {
    // Many writers commit into a bucket while it is deleted: either the delete finds it
    // non-empty, or every later commit finds no bucket. Never an object without a bucket.
    for round in 0..20 {
        let (_d, m) = store_with(&[]);
        m.delete_object("c", b"zzz").unwrap();
        let m = std::sync::Arc::new(m);
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..20 {
                        let _ = m.commit_object("c", format!("{w}-{i}").as_bytes(), &rec(1), &[]);
                    }
                })
            })
            .collect();
        let deleted = (0..50).any(|_| m.delete_bucket("c").is_ok());
        for w in writers {
            w.join().unwrap();
        }
        let objects = m.scan_objects("c").count();
        if deleted {
            assert_eq!(objects, 0, "round {round}: objects left in a deleted bucket");
            assert!(m.get_bucket("c").unwrap().is_none());
        }
    }
}

#[test]
fn a_lease_taken_before_replacement_holds_the_gc() {
    let (_d, m) = store_with(&["k"]);
    let (old, lease) = m.open_object("b", b"k").unwrap().unwrap();
    m.commit_object("b", b"k", &rec(2), &[]).unwrap();
    let versions: Vec<VersionId> = old.parts.iter().map(|p| p.version).collect();
    assert!(m.leased(&versions));
    drop(lease);
    assert!(!m.leased(&versions));
}

#[test]
fn an_overwrite_clears_the_heal_entry_of_a_degraded_version() {
    let (_d, m) = store_with(&[]);
    let mut degraded = rec(1);
    degraded.parts[0].degraded = vec![3];
    m.commit_object("b", b"k", &degraded, &[]).unwrap();
    assert_eq!(m.to_heal(None, 10).unwrap().len(), 1);
    m.commit_object("b", b"k", &rec(1), &[]).unwrap();
    assert!(m.to_heal(None, 10).unwrap().is_empty());
}

#[test]
fn gc_entries_wait_for_their_grace() {
    let (_d, m) = store_with(&["k"]);
    m.apply(MetaCommand::DeleteObjects {
        bucket: "b".into(),
        keys: vec![b"k".to_vec()],
        now_ms: 1_000,
    })
    .unwrap();
    assert!(m.gc_batch(999, 10).unwrap().is_empty());
    assert_eq!(m.gc_batch(1_000, 10).unwrap().len(), 1);
}

#[test]
fn commands_roundtrip_through_their_encoding() {
    let cmd = MetaCommand::CommitObject {
        bucket: "b".into(),
        key: b"k".to_vec(),
        record: rec(3),
        layouts: vec![(VersionId::random(), LayoutRecord { hashes: vec![[2; 32]] })],
        condition: WriteCondition {
            if_match: Some("x".into()),
            if_none_match: false,
        },
        now_ms: 7,
    };
    let bytes = records::encode(&cmd);
    assert_eq!(records::decode::<MetaCommand>(&bytes).unwrap(), cmd);
}
