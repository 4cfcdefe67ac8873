//! Versioning checked against a sequential model: any sequence of writes, deletes, deletes of
//! versions and versioning changes leaves the store listing exactly what S3's rules say.

use super::*;
use crate::commands::{DeleteGuard, DeleteTarget, MetaCommand, Outcome, VersioningChange, WriteCondition};
use crate::records::LockMode;
use crate::tests::{bucket_of, rec, tenant_command};
use crate::{Quota, Retention, VersioningStatus, DEFAULT_TENANT};
use coffre_types::VersionId;
use proptest::prelude::*;

fn store() -> (tempfile::TempDir, MetaStore) {
    let d = tempfile::tempdir().unwrap();
    let m = MetaStore::open(d.path()).unwrap();
    m.apply(tenant_command(DEFAULT_TENANT, Quota::default())).unwrap();
    m.create_bucket("b", &bucket_of(DEFAULT_TENANT)).unwrap();
    (d, m)
}

fn put(m: &MetaStore, key: &str, size: u64, now_ms: u64) -> Result<ObjectRecord, MetaError> {
    put_with(m, key, rec(size), now_ms)
}

fn put_with(m: &MetaStore, key: &str, record: ObjectRecord, now_ms: u64) -> Result<ObjectRecord, MetaError> {
    match m.apply(MetaCommand::CommitObject(crate::CommitObject {
        bucket: "b".into(),
        key: key.as_bytes().to_vec(),
        record,
        layouts: vec![],
        condition: WriteCondition::default(),
        now_ms,
    }))? {
        Outcome::Object(Some(r)) => Ok(r),
        other => panic!("commit answered {other:?}"),
    }
}

fn delete(m: &MetaStore, key: &str, version: Option<VersionSel>, bypass: bool, now_ms: u64) -> crate::DeleteResult {
    match m
        .apply(MetaCommand::DeleteVersions {
            bucket: "b".into(),
            targets: vec![DeleteTarget {
                key: key.as_bytes().to_vec(),
                version,
                marker_tag: VersionId::random(),
                guard: DeleteGuard::None,
            }],
            bypass_governance: bypass,
            now_ms,
        })
        .unwrap()
    {
        Outcome::DeleteResults(mut r) => r.pop().unwrap(),
        other => panic!("delete answered {other:?}"),
    }
}

fn set_status(m: &MetaStore, status: VersioningStatus) -> Result<Outcome, MetaError> {
    m.apply(MetaCommand::ConfigureVersioning {
        bucket: "b".into(),
        change: VersioningChange::Status(status),
    })
}

/// Every version of the bucket, listed in pages of `page`: (key, versionId, marker, latest).
fn listing(m: &MetaStore, page: usize) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut key_marker, mut version_marker): (Option<Vec<u8>>, Option<VersionSel>) = (None, None);
    loop {
        let (entries, truncated) = m
            .list_versions("b", b"", None, key_marker.as_deref(), version_marker, page)
            .unwrap();
        assert!(entries.len() <= page);
        for e in &entries {
            if let VersionEntry::Version { key, record, is_latest } = e {
                out.push((
                    String::from_utf8(key.clone()).unwrap(),
                    record.version_id(),
                    record.is_delete_marker(),
                    *is_latest,
                ));
            }
        }
        if !truncated {
            return out;
        }
        let Some(VersionEntry::Version { key, record, .. }) = entries.last() else {
            panic!("a truncated page ends with a version")
        };
        key_marker = Some(key.clone());
        version_marker = Some(VersionSel::parse(&record.version_id()).unwrap());
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(usize, u64),
    Delete(usize),
    DeleteVersion(usize, usize),
    Status(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, 1..100u64).prop_map(|(k, s)| Op::Put(k, s)),
        2 => (0..3usize).prop_map(Op::Delete),
        2 => (0..3usize, 0..4usize).prop_map(|(k, i)| Op::DeleteVersion(k, i)),
        1 => any::<bool>().prop_map(Op::Status),
    ]
}

/// The model's version of a key: (versionId, marker, size), newest first.
type Model = std::collections::BTreeMap<String, Vec<(String, bool, u64)>>;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn versions_follow_the_s3_model(ops in prop::collection::vec(op(), 1..40), page in 1..4usize, enabled: bool) {
        let (_d, m) = store();
        let keys = ["a", "a/b", "b\u{0}c"];
        let mut model = Model::new();
        let mut status: Option<VersioningStatus> = None;
        if enabled {
            set_status(&m, VersioningStatus::Enabled).unwrap();
            status = Some(VersioningStatus::Enabled);
        }
        let mut now = 1_000u64;
        for op in ops {
            now += 1;
            match op {
                Op::Put(k, size) => {
                    let r = put(&m, keys[k], size, now).unwrap();
                    let versions = model.entry(keys[k].to_string()).or_default();
                    match status {
                        None => versions.clear(),
                        Some(VersioningStatus::Suspended) => versions.retain(|v| v.0 != "null"),
                        Some(VersioningStatus::Enabled) => {}
                    }
                    prop_assert_eq!(r.version_id() == "null", status != Some(VersioningStatus::Enabled));
                    versions.insert(0, (r.version_id(), false, size));
                }
                Op::Delete(k) => {
                    let res = delete(&m, keys[k], None, false, now);
                    let versions = model.entry(keys[k].to_string()).or_default();
                    match status {
                        None => {
                            prop_assert_eq!(res.removed.is_some(), !versions.is_empty());
                            versions.clear();
                        }
                        Some(s) => {
                            if s == VersioningStatus::Suspended {
                                versions.retain(|v| v.0 != "null");
                            }
                            let id = res.marker.clone().expect("a marker");
                            prop_assert_eq!(id == "null", s == VersioningStatus::Suspended);
                            versions.insert(0, (id, true, 0));
                        }
                    }
                }
                Op::DeleteVersion(k, i) => {
                    let versions = model.entry(keys[k].to_string()).or_default();
                    if let Some((id, marker, _)) = versions.get(i).cloned() {
                        let res = delete(&m, keys[k], Some(VersionSel::parse(&id).unwrap()), false, now);
                        prop_assert_eq!(res.removed, Some((id, marker)));
                        versions.remove(i);
                    }
                }
                Op::Status(enabled) => {
                    let s = if enabled { VersioningStatus::Enabled } else { VersioningStatus::Suspended };
                    set_status(&m, s).unwrap();
                    status = Some(s);
                }
            }
            // The store lists what the model holds, in S3's order, in pages of any size.
            let expected: Vec<(String, String, bool, bool)> = model
                .iter()
                .flat_map(|(k, vs)| vs.iter().enumerate().map(move |(i, (id, marker, _))| (k.clone(), id.clone(), *marker, i == 0)))
                .collect();
            prop_assert_eq!(listing(&m, page), expected);
            // The current object is the newest version when it is not a marker.
            for (k, vs) in &model {
                let current = m.get_object("b", k.as_bytes()).unwrap().map(|r| r.version_id());
                let newest = vs.first().filter(|v| !v.1).map(|v| v.0.clone());
                prop_assert_eq!(current, newest);
                for (id, marker, size) in vs {
                    let (found, _) = m.find_version("b", k.as_bytes(), VersionSel::parse(id).unwrap()).unwrap().unwrap();
                    prop_assert_eq!((found.is_delete_marker(), found.size), (*marker, *size));
                }
            }
            // Usage counts every version and marker.
            let usage = m.bucket_usage("b").unwrap();
            let all: Vec<&(String, bool, u64)> = model.values().flatten().collect();
            prop_assert_eq!(usage.objects, all.len() as u64);
            prop_assert_eq!(usage.bytes, all.iter().map(|v| v.2).sum::<u64>());
        }
    }
}

#[test]
fn listing_rolls_prefixes_and_resumes() {
    let (_d, m) = store();
    set_status(&m, VersioningStatus::Enabled).unwrap();
    for (i, k) in ["x/1", "x/2", "y", "z/1"].iter().enumerate() {
        put(&m, k, 1, 10 + i as u64).unwrap();
        put(&m, k, 2, 20 + i as u64).unwrap();
    }
    let (page, truncated) = m.list_versions("b", b"", Some(b"/"), None, None, 10).unwrap();
    assert!(!truncated);
    let shown: Vec<String> = page
        .iter()
        .map(|e| match e {
            VersionEntry::CommonPrefix(p) => format!("[{}]", String::from_utf8_lossy(p)),
            VersionEntry::Version { key, is_latest, .. } => {
                format!("{}{}", String::from_utf8_lossy(key), if *is_latest { "*" } else { "" })
            }
        })
        .collect();
    assert_eq!(shown, ["[x/]", "y*", "y", "[z/]"]);
    // After the common prefix x/, the listing goes on with y.
    let (page, _) = m.list_versions("b", b"", Some(b"/"), Some(b"x/"), None, 1).unwrap();
    assert!(matches!(&page[0], VersionEntry::Version { key, .. } if key == b"y"));
    // A bucket with versions is not empty.
    assert!(matches!(m.delete_bucket("b"), Err(MetaError::BucketNotEmpty)));
}

#[test]
fn locked_versions_resist_everything_but_a_bypass_of_governance() {
    let (_d, m) = store();
    set_status(&m, VersioningStatus::Enabled).unwrap();
    m.apply(MetaCommand::ConfigureVersioning {
        bucket: "b".into(),
        change: VersioningChange::ObjectLock(None),
    })
    .unwrap();
    // Suspending a lock-enabled bucket is refused.
    assert!(matches!(
        set_status(&m, VersioningStatus::Suspended),
        Err(MetaError::InvalidBucketState(_))
    ));
    let now = 1_000_000;
    let mut compliance = rec(5);
    compliance.version_state.retention = Some(Retention {
        mode: LockMode::Compliance,
        until_ms: now + 1000,
    });
    let c = put_with(&m, "k", compliance, now).unwrap();
    let mut governance = rec(6);
    governance.version_state.retention = Some(Retention {
        mode: LockMode::Governance,
        until_ms: now + 1000,
    });
    let g = put_with(&m, "k", governance, now + 1).unwrap();
    let sel = |r: &ObjectRecord| Some(VersionSel::parse(&r.version_id()).unwrap());
    // A COMPLIANCE version cannot be deleted, even with a bypass.
    for bypass in [false, true] {
        let res = delete(&m, "k", sel(&c), bypass, now + 2);
        assert!(res.refused.is_some() && res.removed.is_none());
    }
    // GOVERNANCE: only with the bypass.
    assert!(delete(&m, "k", sel(&g), false, now + 2).refused.is_some());
    // A delete marker can still be placed on a locked object.
    let marker = delete(&m, "k", None, false, now + 3).marker.unwrap();
    assert!(m.get_object("b", b"k").unwrap().is_none());
    assert_eq!(
        delete(&m, "k", sel(&g), true, now + 4).removed.unwrap().0,
        g.version_id()
    );
    // Removing the marker brings the COMPLIANCE version back as current.
    delete(&m, "k", Some(VersionSel::parse(&marker).unwrap()), false, now + 5);
    assert_eq!(m.get_object("b", b"k").unwrap().unwrap().version_id(), c.version_id());
    // Its retention cannot be shortened, weakened or removed; it can be extended.
    let change = |r: Option<Retention>, bypass: bool| {
        m.apply(MetaCommand::UpdateVersion(crate::UpdateVersion {
            bucket: "b".into(),
            key: b"k".to_vec(),
            sel: sel(&c),
            expect: None,
            change: crate::VersionChange::Retention(r),
            bypass_governance: bypass,
            now_ms: now + 6,
        }))
    };
    assert!(matches!(change(None, true), Err(MetaError::Locked(_))));
    assert!(matches!(
        change(
            Some(Retention {
                mode: LockMode::Compliance,
                until_ms: now + 10
            }),
            true
        ),
        Err(MetaError::Locked(_))
    ));
    assert!(matches!(
        change(
            Some(Retention {
                mode: LockMode::Governance,
                until_ms: now + 5000
            }),
            true
        ),
        Err(MetaError::Locked(_))
    ));
    change(
        Some(Retention {
            mode: LockMode::Compliance,
            until_ms: now + 5000,
        }),
        false,
    )
    .unwrap();
    // Once the date has passed, the version goes like any other.
    assert!(delete(&m, "k", sel(&c), false, now + 4999).refused.is_some());
    assert!(delete(&m, "k", sel(&c), false, now + 5001).removed.is_some());
    // A legal hold protects whatever the date.
    let h = put(&m, "h", 1, now).unwrap();
    m.apply(MetaCommand::UpdateVersion(crate::UpdateVersion {
        bucket: "b".into(),
        key: b"h".to_vec(),
        sel: None,
        expect: None,
        change: crate::VersionChange::LegalHold(true),
        bypass_governance: false,
        now_ms: now,
    }))
    .unwrap();
    assert!(delete(&m, "h", sel(&h), true, u64::MAX / 2).refused.is_some());
}

#[test]
fn default_retention_applies_to_new_versions() {
    let (_d, m) = store();
    set_status(&m, VersioningStatus::Enabled).unwrap();
    let d = crate::DefaultRetention {
        mode: LockMode::Governance,
        days: Some(2),
        years: None,
    };
    m.apply(MetaCommand::ConfigureVersioning {
        bucket: "b".into(),
        change: VersioningChange::ObjectLock(Some(d)),
    })
    .unwrap();
    let r = put(&m, "k", 1, 1000).unwrap();
    assert_eq!(
        r.version_state.retention,
        Some(Retention {
            mode: LockMode::Governance,
            until_ms: 1000 + 2 * 86_400_000
        })
    );
    // Without Object Lock, a write asking for a retention is refused.
    let (_d2, plain) = store();
    let mut asked = rec(1);
    asked.version_state.legal_hold = true;
    assert!(matches!(
        put_with(&plain, "k", asked, 1),
        Err(MetaError::InvalidRequest(_))
    ));
}

#[test]
fn a_degraded_noncurrent_version_keeps_its_heal_entry_until_healed() {
    let (_d, m) = store();
    set_status(&m, VersioningStatus::Enabled).unwrap();
    let mut degraded = rec(5);
    degraded.parts[0].degraded = vec![1];
    let d = put_with(&m, "k", degraded, 10).unwrap();
    // A healthy overwrite: the degraded version is noncurrent, and still to heal.
    put(&m, "k", 3, 11).unwrap();
    let entries = m.to_heal(None, 10).unwrap();
    assert_eq!(entries.len(), 1);
    let raw = entries[0].2.clone();
    let drop_heal = || m.apply(MetaCommand::DropHeal { raw_key: raw.clone() }).unwrap();
    assert_eq!(drop_heal(), Outcome::Done(false), "a degraded version is left");
    // Healed: recorded on the noncurrent version, and then the entry can go.
    let mut parts = d.parts.clone();
    parts[0].degraded.clear();
    parts[0].nodes = vec!["n2".into()];
    let cmd = |version| MetaCommand::UpdateVersionParts {
        bucket: "b".into(),
        key: b"k".to_vec(),
        seq: d.version_state.seq,
        version,
        parts: parts.clone(),
    };
    assert_eq!(
        m.apply(cmd(VersionId::random())).unwrap(),
        Outcome::Done(false),
        "another version"
    );
    assert_eq!(m.apply(cmd(d.version)).unwrap(), Outcome::Done(true));
    let old = &m.noncurrent_versions("b", b"k").unwrap()[0];
    assert!(!old.is_degraded());
    assert_eq!(old.parts[0].nodes, ["n2"]);
    assert_eq!(drop_heal(), Outcome::Done(true));
    assert!(m.to_heal(None, 10).unwrap().is_empty());
}
