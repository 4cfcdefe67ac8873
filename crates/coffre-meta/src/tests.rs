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

pub(crate) fn rec(size: u64) -> ObjectRecord {
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
        version_state: Default::default(),
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

pub(crate) fn bucket_of(tenant: &str) -> BucketRecord {
    BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        failure_domain: "node".into(),
        scheme: Scheme::DEFAULT,
        tenant: tenant.into(),
    }
}

/// A tenant with its admin user and key `AK-<name>`.
fn create_tenant(m: &MetaStore, name: &str, quota: Quota) {
    m.apply(tenant_command(name, quota)).unwrap();
}

/// The command creating tenant `name`.
pub(crate) fn tenant_command(name: &str, quota: Quota) -> MetaCommand {
    MetaCommand::Iam(IamCommand::CreateTenant(Box::new(NewTenant {
        name: name.into(),
        record: TenantRecord {
            created_ms: 1,
            kek: vec![1; 8],
            quota,
            oidc: None,
        },
        admin_user: "admin".into(),
        admin: UserRecord {
            id: format!("AIDA-{name}"),
            created_ms: 1,
            admin: true,
            policies: vec![],
        },
        access_key: format!("AK-{name}"),
        key: AccessKeyRecord {
            tenant: name.into(),
            user: "admin".into(),
            secret: vec![2; 8],
            created_ms: 1,
            enabled: true,
            expires_ms: None,
        },
    })))
}

fn store_with(keys: &[&str]) -> (tempfile::TempDir, MetaStore) {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    create_tenant(&m, DEFAULT_TENANT, Quota::default());
    let b = bucket_of(DEFAULT_TENANT);
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
    m.begin_write(&second.version, &["n1".into()]).unwrap();
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
        m.begin_write(&p.info.version, &[]).unwrap();
        m.commit_part("b", b"big", &id, i as u32 + 1, p, &LayoutRecord::default())
            .unwrap();
    }
    // Replacing part 2 queues the old one for GC.
    let p2 = UploadPartRecord {
        info: part(6 << 20),
        last_modified_ms: 2,
    };
    m.begin_write(&p2.info.version, &[]).unwrap();
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
    m.begin_write(&first.info.version, &[]).unwrap();
    m.commit_part("b", b"k", &id, 1, &first, &LayoutRecord::default())
        .unwrap();
    // Complete read part 1 as `first`; a re-upload of part 1 commits before it.
    let mut obj = rec(0);
    obj.parts = vec![first.info.clone()];
    let second = UploadPartRecord {
        info: part(10),
        last_modified_ms: 2,
    };
    m.begin_write(&second.info.version, &[]).unwrap();
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
        m.apply(MetaCommand::CommitObject(crate::CommitObject {
            bucket: "b".into(),
            key: b"lock".to_vec(),
            record: rec(1),
            layouts: vec![],
            condition: cond,
            now_ms: 5,
        }))
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
    let cmd = MetaCommand::CommitObject(crate::CommitObject {
        bucket: "b".into(),
        key: b"k".to_vec(),
        record: rec(3),
        layouts: vec![(VersionId::random(), LayoutRecord { hashes: vec![[2; 32]] })],
        condition: WriteCondition {
            if_match: Some("x".into()),
            if_none_match: false,
            owner: Some("t".into()),
        },
        now_ms: 7,
    });
    let bytes = records::encode(&cmd);
    assert_eq!(records::decode::<MetaCommand>(&bytes).unwrap(), cmd);
}

#[test]
fn a_write_aborted_first_never_commits() {
    // The abort reached the log before the commit (its writer gave up waiting): the commit
    // is refused, and the shards stay queued for GC, never current.
    let (_d, m) = store_with(&[]);
    let r = rec(4);
    let v = r.version;
    m.begin_write(&v, &["n1".into()]).unwrap();
    m.abort_write(&v, &["n1".into()], None).unwrap();
    let late = m.commit_object("b", b"k", &r, &[(v, LayoutRecord { hashes: vec![[3; 32]] })]);
    assert!(matches!(late, Err(MetaError::Unavailable(_))), "{late:?}");
    assert!(m.get_object("b", b"k").unwrap().is_none());
    assert_eq!(m.gc_batch(u64::MAX, 10).unwrap().len(), 1);
    // The same for a part of a multipart upload.
    let id = [5u8; 16];
    m.create_upload("b", b"big", &id, &upload_record()).unwrap();
    let p = UploadPartRecord {
        info: part(10),
        last_modified_ms: 1,
    };
    m.begin_write(&p.info.version, &[]).unwrap();
    m.abort_write(&p.info.version, &[], None).unwrap();
    let late = m.commit_part("b", b"big", &id, 1, &p, &LayoutRecord::default());
    assert!(matches!(late, Err(MetaError::Unavailable(_))), "{late:?}");
}

#[test]
fn refusals_keep_their_kind_through_the_replicas_encoding() {
    let all = [
        MetaError::Corrupt("c".into()),
        MetaError::NoSuchBucket,
        MetaError::BucketExists,
        MetaError::BucketTaken,
        MetaError::BucketNotEmpty,
        MetaError::NoSuchUpload,
        MetaError::NoSuchKey,
        MetaError::PreconditionFailed { exists: true },
        MetaError::PartChanged,
        MetaError::QuotaExceeded("q".into()),
        MetaError::NoSuchEntity("e".into()),
        MetaError::EntityExists("x".into()),
        MetaError::DeleteConflict("d".into()),
        MetaError::Unavailable("u".into()),
    ];
    for e in all {
        let back: MetaError = postcard::from_bytes(&postcard::to_allocvec(&e).unwrap()).unwrap();
        assert_eq!(format!("{back:?}"), format!("{e:?}"));
    }
}

#[test]
fn tenants_users_and_keys() {
    let (_d, m) = store_with(&[]);
    create_tenant(&m, "hopital", Quota::default());
    let iam = |c| m.apply(MetaCommand::Iam(c));
    // A second tenant of the same name, or a key id in use, is refused whole.
    assert!(matches!(
        m.apply(MetaCommand::Iam(IamCommand::SetTenantQuota {
            name: "nope".into(),
            quota: Quota::default()
        })),
        Err(MetaError::NoSuchEntity(_))
    ));
    let user = UserRecord {
        id: "AIDA2".into(),
        created_ms: 2,
        admin: false,
        policies: vec![],
    };
    iam(IamCommand::CreateUser {
        tenant: "hopital".into(),
        name: "backup".into(),
        record: user.clone(),
    })
    .unwrap();
    assert!(matches!(
        iam(IamCommand::CreateUser {
            tenant: "hopital".into(),
            name: "backup".into(),
            record: user.clone()
        }),
        Err(MetaError::EntityExists(_))
    ));
    let key = AccessKeyRecord {
        tenant: "hopital".into(),
        user: "backup".into(),
        secret: vec![3],
        created_ms: 2,
        enabled: true,
        expires_ms: None,
    };
    iam(IamCommand::CreateAccessKey {
        id: "AK2".into(),
        record: key.clone(),
    })
    .unwrap();
    assert!(matches!(
        iam(IamCommand::CreateAccessKey {
            id: "AK-default".into(),
            record: key.clone()
        }),
        Err(MetaError::EntityExists(_))
    ));
    let keys_of = |u: Option<&str>| -> Vec<String> {
        m.list_access_keys("hopital", u)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(keys_of(Some("backup")), vec!["AK2"]);
    assert_eq!(keys_of(None), vec!["AK-hopital", "AK2"]);
    // Another tenant cannot touch the key; its own tenant can.
    assert!(matches!(
        iam(IamCommand::SetAccessKeyEnabled {
            tenant: "default".into(),
            id: "AK2".into(),
            enabled: false
        }),
        Err(MetaError::NoSuchEntity(_))
    ));
    iam(IamCommand::SetAccessKeyEnabled {
        tenant: "hopital".into(),
        id: "AK2".into(),
        enabled: false,
    })
    .unwrap();
    assert!(!m.get_access_key("AK2").unwrap().unwrap().enabled);
    // A user with keys stays unless its keys go with it; the admin stays.
    let delete = |with_keys| {
        iam(IamCommand::DeleteUser {
            tenant: "hopital".into(),
            name: "backup".into(),
            with_keys,
        })
    };
    assert!(matches!(delete(false), Err(MetaError::DeleteConflict(_))));
    delete(true).unwrap();
    assert!(m.get_access_key("AK2").unwrap().is_none());
    assert!(matches!(
        iam(IamCommand::DeleteUser {
            tenant: "hopital".into(),
            name: "admin".into(),
            with_keys: true
        }),
        Err(MetaError::DeleteConflict(_))
    ));
    // A tenant with a bucket stays; without, everything of it goes.
    m.create_bucket("hb", &bucket_of("hopital")).unwrap();
    assert!(matches!(
        m.create_bucket("hb", &bucket_of("default")),
        Err(MetaError::BucketTaken)
    ));
    assert!(matches!(
        m.create_bucket("hb", &bucket_of("hopital")),
        Err(MetaError::BucketExists)
    ));
    assert!(matches!(
        m.create_bucket("xb", &bucket_of("ghost")),
        Err(MetaError::NoSuchEntity(_))
    ));
    let del = || iam(IamCommand::DeleteTenant { name: "hopital".into() });
    assert!(matches!(del(), Err(MetaError::DeleteConflict(_))));
    m.delete_bucket("hb").unwrap();
    let g = m.generation();
    del().unwrap();
    assert!(m.generation() > g, "identity changes move the generation");
    assert!(m.get_tenant("hopital").unwrap().is_none());
    assert!(m.get_access_key("AK-hopital").unwrap().is_none());
    assert!(m.list_users("hopital").unwrap().is_empty());
    assert_eq!(
        m.list_tenants()
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect::<Vec<_>>(),
        vec!["default"]
    );
}

#[test]
fn usage_is_counted_and_quotas_hold() {
    let (_d, m) = store_with(&[]);
    create_tenant(
        &m,
        "t",
        Quota {
            bytes: Some(100),
            objects: Some(3),
        },
    );
    m.create_bucket("tb", &bucket_of("t")).unwrap();
    m.commit_object("tb", b"a", &rec(60), &[]).unwrap();
    // Over the byte quota: refused, nothing counted.
    assert!(matches!(
        m.commit_object("tb", b"b", &rec(50), &[]),
        Err(MetaError::QuotaExceeded(_))
    ));
    assert!(m.get_object("tb", b"b").unwrap().is_none());
    // Overwriting with less always passes.
    m.commit_object("tb", b"a", &rec(10), &[]).unwrap();
    m.commit_object("tb", b"b", &rec(10), &[]).unwrap();
    m.commit_object("tb", b"c", &rec(10), &[]).unwrap();
    assert!(matches!(
        m.commit_object("tb", b"d", &rec(1), &[]),
        Err(MetaError::QuotaExceeded(_))
    ));
    assert_eq!(m.tenant_usage("t").unwrap(), Usage { bytes: 30, objects: 3 });
    assert_eq!(m.bucket_usage("tb").unwrap(), Usage { bytes: 30, objects: 3 });
    m.delete_object("tb", b"a").unwrap();
    assert_eq!(m.tenant_usage("t").unwrap(), Usage { bytes: 20, objects: 2 });
    // A bucket quota, tighter than the tenant's.
    m.put_bucket_config(
        "tb",
        BucketConfigKind::Quota,
        Some(&Quota {
            bytes: Some(25),
            objects: None,
        }),
    )
    .unwrap();
    assert!(matches!(
        m.commit_object("tb", b"e", &rec(6), &[]),
        Err(MetaError::QuotaExceeded(m)) if m.contains("bucket 'tb'")
    ));
    m.commit_object("tb", b"e", &rec(5), &[]).unwrap();
    // Another tenant's usage is its own.
    m.commit_object("b", b"x", &rec(1000), &[]).unwrap();
    assert_eq!(m.tenant_usage("t").unwrap(), Usage { bytes: 25, objects: 3 });
}

#[test]
fn concurrent_writers_never_pass_a_quota() {
    let (_d, m) = store_with(&[]);
    create_tenant(
        &m,
        "q",
        Quota {
            bytes: None,
            objects: Some(10),
        },
    );
    m.create_bucket("qb", &bucket_of("q")).unwrap();
    let m = std::sync::Arc::new(m);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let m = m.clone();
            std::thread::spawn(move || {
                (0..5)
                    .filter(|i| {
                        m.commit_object("qb", format!("{t}-{i}").as_bytes(), &rec(1), &[])
                            .is_ok()
                    })
                    .count()
            })
        })
        .collect();
    let ok: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(ok, 10, "exactly the quota's worth of new objects");
    assert_eq!(m.tenant_usage("q").unwrap().objects, 10);
}

#[test]
fn usage_of_a_store_from_before_counting() {
    let d = tempfile::tempdir().unwrap();
    {
        let m = MetaStore::open(d.path()).unwrap();
        create_tenant(&m, DEFAULT_TENANT, Quota::default());
        m.create_bucket("b", &bucket_of(DEFAULT_TENANT)).unwrap();
        m.commit_object("b", b"1", &rec(7), &[]).unwrap();
        m.commit_object("b", b"2", &rec(8), &[]).unwrap();
    }
    // Take the counters away, as a store of the previous version has none. (The log still
    // holds merges of the counters: the operator must be there to replay them.)
    {
        let cfs = keys::ALL_CFS.iter().map(|n| {
            let mut o = rocksdb::Options::default();
            if *n == keys::CF_USAGE {
                o.set_merge_operator_associative("coffre-usage-sum", crate::iam::sum_usage);
            }
            rocksdb::ColumnFamilyDescriptor::new(*n, o)
        });
        let mut db = rocksdb::DB::open_cf_descriptors(&rocksdb::Options::default(), d.path(), cfs).unwrap();
        db.drop_cf(keys::CF_USAGE).unwrap();
    }
    let m = MetaStore::open(d.path()).unwrap();
    assert_eq!(m.bucket_usage("b").unwrap(), Usage { bytes: 15, objects: 2 });
    assert_eq!(m.tenant_usage(DEFAULT_TENANT).unwrap(), Usage { bytes: 15, objects: 2 });
}

#[test]
fn a_write_lands_only_in_the_bucket_it_started_for() {
    let (_d, m) = store_with(&[]);
    create_tenant(&m, "other", Quota::default());
    let put = |owner: &str| {
        m.apply(MetaCommand::CommitObject(crate::CommitObject {
            bucket: "b".into(),
            key: b"k".to_vec(),
            record: rec(1),
            layouts: vec![],
            condition: WriteCondition {
                owner: Some(owner.into()),
                ..Default::default()
            },
            now_ms: 5,
        }))
    };
    // "b" was deleted and created again by another tenant while the write ran.
    assert!(matches!(put("other"), Err(MetaError::NoSuchBucket)));
    put(DEFAULT_TENANT).unwrap();
}

#[test]
fn a_tenant_is_never_deleted_under_a_bucket_being_created() {
    // Many rounds of: threads create buckets for a tenant while another deletes it. Either the
    // deletion sees a bucket and refuses, or the creations find no tenant: never a bucket
    // whose owner is gone.
    for round in 0..20 {
        let (_d, m) = store_with(&[]);
        let m = std::sync::Arc::new(m);
        let t = format!("t{round}");
        create_tenant(&m, &t, Quota::default());
        let creators: Vec<_> = (0..4)
            .map(|i| {
                let (m, t) = (m.clone(), t.clone());
                std::thread::spawn(move || {
                    let _ = m.create_bucket(&format!("b{round}-{i}"), &bucket_of(&t));
                })
            })
            .collect();
        let deleter = {
            let (m, t) = (m.clone(), t.clone());
            std::thread::spawn(move || m.apply(MetaCommand::Iam(IamCommand::DeleteTenant { name: t })).is_ok())
        };
        creators.into_iter().for_each(|c| c.join().unwrap());
        let deleted = deleter.join().unwrap();
        let owned = m.buckets_of(&t).unwrap();
        match deleted {
            true => assert!(
                owned.is_empty(),
                "round {round}: buckets of a deleted tenant: {owned:?}"
            ),
            false => assert!(m.get_tenant(&t).unwrap().is_some()),
        }
        for (_, b) in m.list_buckets().unwrap() {
            assert!(
                m.get_tenant(&b.tenant).unwrap().is_some(),
                "round {round}: orphan bucket"
            );
        }
    }
}

#[test]
fn an_inlined_object_commits_without_intent_and_its_data_goes_with_its_gc_entry() {
    let (_d, m) = store_with(&[]);
    let inline = |size: u64, packages: Vec<u8>, condition: WriteCondition| {
        let mut r = rec(size);
        r.parts[0].nodes.clear();
        let v = r.version;
        let out = m.apply(MetaCommand::CommitInlineObject(crate::CommitInlineObject {
            bucket: "b".into(),
            key: b"small".to_vec(),
            record: r,
            packages,
            condition,
            now_ms: 10,
        }));
        (v, out)
    };
    // No intent was written: an inlined part never had shards to orphan.
    let (first, out) = inline(3, vec![1, 2, 3, 4], WriteCondition::default());
    out.unwrap();
    assert_eq!(
        m.get_part_data(&first).unwrap(),
        Some(PartData::Inline(vec![1, 2, 3, 4]))
    );
    assert_eq!(m.get_layout(&first).unwrap(), None);
    assert_eq!(m.get_object("b", b"small").unwrap().unwrap().version, first);
    assert_eq!(m.bucket_usage("b").unwrap(), Usage { bytes: 3, objects: 1 });
    // Its condition is checked inside the commit.
    let (refused, out) = inline(
        5,
        vec![9],
        WriteCondition {
            if_none_match: true,
            ..Default::default()
        },
    );
    assert!(
        matches!(out, Err(MetaError::PreconditionFailed { exists: true })),
        "{out:?}"
    );
    assert_eq!(m.get_part_data(&refused).unwrap(), None);
    // A record claiming two parts is refused whole.
    let mut two = rec(2);
    two.parts.push(part(1));
    let out = m.apply(MetaCommand::CommitInlineObject(crate::CommitInlineObject {
        bucket: "b".into(),
        key: b"other".to_vec(),
        record: two,
        packages: vec![],
        condition: WriteCondition::default(),
        now_ms: 10,
    }));
    assert!(out.is_err());
    assert!(m.get_object("b", b"other").unwrap().is_none());
    // Overwritten: the old version is queued for GC, its data stays until the GC is done.
    let (second, out) = inline(4, vec![5, 6, 7, 8, 9], WriteCondition::default());
    out.unwrap();
    let batch = m.gc_batch(u64::MAX, 10).unwrap();
    assert_eq!(batch.len(), 1);
    let (raw, gc) = &batch[0];
    assert_eq!(gc.parts[0].version, first);
    assert!(gc.parts[0].nodes.is_empty(), "no shard to remove");
    assert!(m.get_part_data(&first).unwrap().is_some());
    m.gc_done(raw, gc).unwrap();
    assert_eq!(m.get_part_data(&first).unwrap(), None);
    assert_eq!(
        m.get_part_data(&second).unwrap(),
        Some(PartData::Inline(vec![5, 6, 7, 8, 9]))
    );
    assert_eq!(m.bucket_usage("b").unwrap(), Usage { bytes: 4, objects: 1 });
}
