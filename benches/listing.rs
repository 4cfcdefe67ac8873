//! A ListObjects page out of a bucket of 1,000,000 objects, and a ListObjectVersions page out
//! of a bucket of 1,000,000 versions: both must cost O(page).
//! `cargo bench --bench listing`; results in docs/performance.md.

use coffre_meta::{
    AccessKeyRecord, BucketRecord, IamCommand, MetaCommand, MetaStore, NewTenant, ObjectRecord, PartInfo, Quota,
    TenantRecord, UserRecord, DEFAULT_TENANT,
};
use coffre_types::{Scheme, VersionId};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Duration;

const OBJECTS: usize = 1_000_000;

fn record(i: usize) -> ObjectRecord {
    let v = VersionId::random();
    ObjectRecord {
        version: v,
        size: i as u64,
        etag: format!("{:032x}", i),
        last_modified_ms: 1_700_000_000_000,
        scheme: Scheme::DEFAULT,
        packages_per_stripe: 64,
        parts: vec![PartInfo {
            version: v,
            size: i as u64,
            md5: format!("{:032x}", i),
            wrapped_key: vec![0; 72],
            nodes: (1..=6).map(|n| format!("node-{n}")).collect(),
            degraded: vec![],
            checksum: None,
        }],
        sealed: vec![0; 64],
        version_state: Default::default(),
    }
}

fn key(i: usize) -> Vec<u8> {
    // 1000 "directories" of 1000 files.
    format!("dir{:04}/file{:07}", i % 1000, i).into_bytes()
}

fn listing(c: &mut Criterion) {
    let dir = tempfile::tempdir_in(std::env::var("COFFRE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let m = MetaStore::open(dir.path()).unwrap();
    m.apply(MetaCommand::Iam(IamCommand::CreateTenant(Box::new(NewTenant {
        name: DEFAULT_TENANT.into(),
        record: TenantRecord {
            created_ms: 0,
            kek: vec![],
            quota: Quota::default(),
            oidc: None,
        },
        admin_user: "admin".into(),
        admin: UserRecord {
            id: "AIDA0".into(),
            created_ms: 0,
            admin: true,
            policies: vec![],
        },
        access_key: "AK".into(),
        key: AccessKeyRecord {
            tenant: DEFAULT_TENANT.into(),
            user: "admin".into(),
            secret: vec![],
            created_ms: 0,
            enabled: true,
            expires_ms: None,
        },
    }))))
    .unwrap();
    m.create_bucket(
        "big",
        &BucketRecord {
            created_ms: 0,
            region: "fr-par".into(),
            countries: vec!["FR".into()],
            failure_domain: "node".into(),
            scheme: Scheme::DEFAULT,
            tenant: DEFAULT_TENANT.into(),
        },
    )
    .unwrap();
    let t = std::time::Instant::now();
    for chunk in (0..OBJECTS).collect::<Vec<_>>().chunks(10_000) {
        let items: Vec<_> = chunk.iter().map(|&i| (key(i), record(i))).collect();
        m.import_objects("big", &items).unwrap();
    }
    eprintln!("loaded {OBJECTS} objects in {:?}", t.elapsed());

    let mut g = c.benchmark_group("list_1M");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    g.bench_function("page_1000_from_middle", |b| {
        b.iter(|| {
            i = (i + 7919) % OBJECTS;
            let (page, _) = m.list("big", b"", None, Some(&key(i)), 1000).unwrap();
            assert!(!page.is_empty());
        })
    });
    g.bench_function("page_1000_common_prefixes_delimiter", |b| {
        b.iter(|| {
            let (page, more) = m.list("big", b"", Some(b"/"), None, 1000).unwrap();
            assert_eq!((page.len(), more), (1000, false));
        })
    });
    g.bench_function("page_1000_under_prefix", |b| {
        b.iter(|| {
            let (page, _) = m.list("big", b"dir0500/", Some(b"/"), None, 1000).unwrap();
            assert_eq!(page.len(), 1000);
        })
    });
    g.finish();

    // 250,000 keys of 4 versions each: the current one and 3 noncurrent.
    m.create_bucket(
        "hist",
        &BucketRecord {
            created_ms: 0,
            region: "fr-par".into(),
            countries: vec!["FR".into()],
            failure_domain: "node".into(),
            scheme: Scheme::DEFAULT,
            tenant: DEFAULT_TENANT.into(),
        },
    )
    .unwrap();
    let keys = OBJECTS / 4;
    let t = std::time::Instant::now();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(10_000) {
        let mut current = Vec::new();
        let mut older = Vec::new();
        for &i in chunk {
            for v in 0..4u64 {
                let mut r = record(i);
                r.version_state.versioned = true;
                r.version_state.seq = 1_000 + v;
                match v {
                    3 => current.push((key(i), r)),
                    _ => older.push((key(i), r)),
                }
            }
        }
        m.import_objects("hist", &current).unwrap();
        m.import_versions("hist", &older).unwrap();
    }
    eprintln!("loaded {} versions of {keys} keys in {:?}", keys * 4, t.elapsed());
    let mut g = c.benchmark_group("list_versions_1M");
    g.sample_size(30).measurement_time(Duration::from_secs(5));
    let mut i = 0usize;
    g.bench_function("page_1000_from_middle", |b| {
        b.iter(|| {
            i = (i + 7919) % keys;
            let (page, _) = m.list_versions("hist", b"", None, Some(&key(i)), None, 1000).unwrap();
            assert!(!page.is_empty());
        })
    });
    g.bench_function("page_1000_common_prefixes_delimiter", |b| {
        b.iter(|| {
            let (page, more) = m.list_versions("hist", b"", Some(b"/"), None, None, 1000).unwrap();
            assert_eq!((page.len(), more), (1000, false));
        })
    });
    g.finish();
}

criterion_group!(benches, listing);
criterion_main!(benches);
