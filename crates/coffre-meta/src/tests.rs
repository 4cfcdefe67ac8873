use super::*;
use coffre_types::Scheme;

fn rec(size: u64) -> ObjectRecord {
    ObjectRecord {
        version: VersionId::random(),
        size,
        etag: "e".into(),
        last_modified_ms: 1,
        scheme: Scheme::DEFAULT,
        packages_per_stripe: 64,
        nodes: vec!["n1".into()],
        parts: vec![size],
        wrapped_key: vec![],
        degraded: vec![],
        sealed: vec![],
    }
}

fn store_with(keys: &[&str]) -> (tempfile::TempDir, MetaStore) {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    let b = BucketRecord {
        created_ms: 0,
        region: "fr-par".into(),
        countries: vec!["FR".into()],
        scheme: Scheme::DEFAULT,
    };
    m.create_bucket("b", &b).unwrap();
    m.create_bucket("c", &b).unwrap();
    for k in keys {
        m.commit_object("b", k.as_bytes(), &rec(1), &LayoutRecord::default())
            .unwrap();
    }
    m.commit_object("c", b"zzz", &rec(1), &LayoutRecord::default())
        .unwrap();
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
    m.commit_object("b", b"k", &rec(2), &LayoutRecord::default())
        .unwrap();
    assert_eq!(m.get_object("b", b"k").unwrap().unwrap().size, 2);
    let gc = m.gc_batch(10).unwrap();
    assert_eq!(gc.len(), 1);
    assert_eq!(gc[0].1.version, first.version);
    assert!(m.get_layout(&first.version).unwrap().is_none());
    assert!(m.delete_object("b", b"k").unwrap());
    assert!(!m.delete_object("b", b"k").unwrap());
    assert_eq!(m.gc_batch(10).unwrap().len(), 2);
    assert!(matches!(
        m.delete_bucket("c"),
        Err(MetaError::BucketNotEmpty)
    ));
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
    m.abort_write(&v, &i[0].1.nodes, vec![]).unwrap();
    assert!(m.intents().unwrap().is_empty());
    assert_eq!(m.gc_batch(10).unwrap().len(), 1);
}
