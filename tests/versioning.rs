//! End-to-end: versioning and Object Lock through the real `coffre server` and the official
//! AWS SDK for Rust.

mod common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, DefaultRetention, Delete, ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled,
    ObjectLockLegalHold, ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, VersioningConfiguration,
};
use common::*;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

async fn enable(c: &aws_sdk_s3::Client, bucket: &str, status: BucketVersioningStatus) {
    c.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap();
}

async fn put_v(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) -> String {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .unwrap()
        .version_id()
        .expect("a version id")
        .to_string()
}

async fn get_v(c: &aws_sdk_s3::Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    c.get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .to_vec()
}

/// Every (key, versionId, is delete marker, is latest) of a bucket, in pages of `page`.
async fn all_versions(c: &aws_sdk_s3::Client, bucket: &str, page: i32) -> Vec<(String, String, bool, bool)> {
    let mut out = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    loop {
        let r = c
            .list_object_versions()
            .bucket(bucket)
            .max_keys(page)
            .set_key_marker(km.clone())
            .set_version_id_marker(vm.clone())
            .send()
            .await
            .unwrap();
        // Versions and markers come in separate lists: merge them back into listing order.
        let mut page_items: Vec<(String, String, bool, bool, i64)> = Vec::new();
        for v in r.versions() {
            page_items.push((
                v.key().unwrap().into(),
                v.version_id().unwrap().into(),
                false,
                v.is_latest().unwrap(),
                v.last_modified().unwrap().to_millis().unwrap(),
            ));
        }
        for m in r.delete_markers() {
            page_items.push((
                m.key().unwrap().into(),
                m.version_id().unwrap().into(),
                true,
                m.is_latest().unwrap(),
                m.last_modified().unwrap().to_millis().unwrap(),
            ));
        }
        // Key order, then newest first: ids sort by their seq (hex), "null" by its time.
        page_items.sort_by(|a, b| a.0.cmp(&b.0).then(b.4.cmp(&a.4)).then(b.1.cmp(&a.1)));
        out.extend(page_items.into_iter().map(|(k, v, m, l, _)| (k, v, m, l)));
        if !r.is_truncated().unwrap_or(false) {
            return out;
        }
        km = r.next_key_marker().map(String::from);
        vm = r.next_version_id_marker().map(String::from);
    }
}

#[tokio::test]
async fn versions_keep_old_bytes_and_delete_markers_hide_keys() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("versioned").send().await.unwrap();
    // Never enabled: no status, and objects are the null version.
    let st = c.get_bucket_versioning().bucket("versioned").send().await.unwrap();
    assert!(st.status().is_none());
    put(&c, "versioned", "old", b"before versioning".to_vec()).await;
    enable(&c, "versioned", BucketVersioningStatus::Enabled).await;
    let st = c.get_bucket_versioning().bucket("versioned").send().await.unwrap();
    assert_eq!(st.status(), Some(&BucketVersioningStatus::Enabled));

    // Overwrites keep every version readable by id.
    let v1 = put_v(&c, "versioned", "k", b"one").await;
    let v2 = put_v(&c, "versioned", "k", b"two").await;
    assert_ne!(v1, v2);
    assert_eq!(get_body(&c, "versioned", "k").await, b"two");
    assert_eq!(get_v(&c, "versioned", "k", &v1).await, b"one");
    let head = c
        .head_object()
        .bucket("versioned")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.version_id(), Some(v1.as_str()));
    assert_eq!(head.content_length(), Some(3));
    // The object written before versioning is the null version, and stays one.
    let v3 = put_v(&c, "versioned", "old", b"after").await;
    assert_eq!(get_v(&c, "versioned", "old", "null").await, b"before versioning");
    assert_eq!(get_v(&c, "versioned", "old", &v3).await, b"after");

    // DELETE without a version puts a marker: the key reads as gone, its versions stay.
    let d = c.delete_object().bucket("versioned").key("k").send().await.unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    let marker = d.version_id().unwrap().to_string();
    let e = c.get_object().bucket("versioned").key("k").send().await.unwrap_err();
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 404);
    assert_eq!(raw.headers().get("x-amz-delete-marker"), Some("true"));
    assert_eq!(raw.headers().get("x-amz-version-id"), Some(marker.as_str()));
    // Naming the marker itself is a 405.
    let e = c
        .head_object()
        .bucket("versioned")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 405);
    assert_eq!(get_v(&c, "versioned", "k", &v2).await, b"two");
    // ListObjects shows no key whose newest version is a marker; ListObjectVersions shows all.
    let keys: Vec<String> = c
        .list_objects_v2()
        .bucket("versioned")
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .map(|o| o.key().unwrap().to_string())
        .collect();
    assert_eq!(keys, ["old"]);
    let expected = vec![
        ("k".to_string(), marker.clone(), true, true),
        ("k".to_string(), v2.clone(), false, false),
        ("k".to_string(), v1.clone(), false, false),
        ("old".to_string(), v3.clone(), false, true),
        ("old".to_string(), "null".to_string(), false, false),
    ];
    for page in [1, 2, 1000] {
        assert_eq!(all_versions(&c, "versioned", page).await, expected, "pages of {page}");
    }
    // Deleting the marker by id brings the key back.
    let d = c
        .delete_object()
        .bucket("versioned")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    assert_eq!(get_body(&c, "versioned", "k").await, b"two");
    // Deleting the current version by id makes the previous one current.
    c.delete_object()
        .bucket("versioned")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "versioned", "k").await, b"one");
    let e = c
        .get_object()
        .bucket("versioned")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchVersion");
    let e = c
        .get_object()
        .bucket("versioned")
        .key("k")
        .version_id("nonsense")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidArgument");

    // DeleteObjects with and without versions.
    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("k").version_id(&v1).build().unwrap())
        .objects(ObjectIdentifier::builder().key("old").build().unwrap())
        .build()
        .unwrap();
    let r = c.delete_objects().bucket("versioned").delete(del).send().await.unwrap();
    assert!(r.errors().is_empty(), "{:?}", r.errors());
    let by_key = |k: &str| r.deleted().iter().find(|d| d.key() == Some(k)).unwrap().clone();
    assert_eq!(by_key("k").version_id(), Some(v1.as_str()));
    assert_eq!(by_key("old").delete_marker(), Some(true));
    assert!(by_key("old").delete_marker_version_id().is_some());
    assert!(c
        .list_objects_v2()
        .bucket("versioned")
        .send()
        .await
        .unwrap()
        .contents()
        .is_empty());
    // The bucket is not empty while versions remain.
    let e = c.delete_bucket().bucket("versioned").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BucketNotEmpty");

    // Tagging a noncurrent version by id.
    let tagging = aws_sdk_s3::types::Tagging::builder()
        .tag_set(aws_sdk_s3::types::Tag::builder().key("t").value("1").build().unwrap())
        .build()
        .unwrap();
    c.put_object_tagging()
        .bucket("versioned")
        .key("old")
        .version_id("null")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    let t = c
        .get_object_tagging()
        .bucket("versioned")
        .key("old")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(t.tag_set().len(), 1);
    let t = c
        .get_object_tagging()
        .bucket("versioned")
        .key("old")
        .version_id(&v3)
        .send()
        .await
        .unwrap();
    assert!(t.tag_set().is_empty());

    // Copy from an old version; multipart completes into a new version.
    let copied = c
        .copy_object()
        .bucket("versioned")
        .key("copy")
        .copy_source(format!("versioned/old?versionId={v3}"))
        .send()
        .await
        .unwrap();
    assert_eq!(copied.copy_source_version_id(), Some(v3.as_str()));
    assert!(copied.version_id().is_some());
    assert_eq!(get_body(&c, "versioned", "copy").await, b"after");
    let up = c
        .create_multipart_upload()
        .bucket("versioned")
        .key("copy")
        .send()
        .await
        .unwrap();
    let part = c
        .upload_part()
        .bucket("versioned")
        .key("copy")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"multipart"))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("versioned")
        .key("copy")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mpu_version = done.version_id().unwrap().to_string();
    assert_eq!(get_v(&c, "versioned", "copy", &mpu_version).await, b"multipart");
    assert_eq!(
        get_v(&c, "versioned", "copy", copied.version_id().unwrap()).await,
        b"after"
    );
}

#[tokio::test]
async fn suspended_versioning_replaces_only_the_null_version() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("suspended").send().await.unwrap();
    enable(&c, "suspended", BucketVersioningStatus::Enabled).await;
    let kept = put_v(&c, "suspended", "k", b"kept").await;
    enable(&c, "suspended", BucketVersioningStatus::Suspended).await;
    let st = c.get_bucket_versioning().bucket("suspended").send().await.unwrap();
    assert_eq!(st.status(), Some(&BucketVersioningStatus::Suspended));
    // A null version: the PUT names no version, as S3 answers in a suspended bucket.
    let r = c
        .put_object()
        .bucket("suspended")
        .key("k")
        .body(ByteStream::from_static(b"null one"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version_id(), None);
    // A null version: the PUT names no version, as S3 answers in a suspended bucket.
    let r = c
        .put_object()
        .bucket("suspended")
        .key("k")
        .body(ByteStream::from_static(b"null two"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version_id(), None);
    assert_eq!(get_body(&c, "suspended", "k").await, b"null two");
    assert_eq!(get_v(&c, "suspended", "k", &kept).await, b"kept");
    let versions = all_versions(&c, "suspended", 1000).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    // A delete puts a null marker in place of the null version.
    let d = c.delete_object().bucket("suspended").key("k").send().await.unwrap();
    assert_eq!((d.delete_marker(), d.version_id()), (Some(true), Some("null")));
    let versions = all_versions(&c, "suspended", 1000).await;
    assert_eq!(
        versions,
        [
            ("k".into(), "null".into(), true, true),
            ("k".into(), kept.clone(), false, false)
        ]
    );
    // Usage (what `admin tenant show` reports) counts the noncurrent version and the marker.
    let v = s.admin_json(&["tenant", "show", "default"]);
    assert_eq!(v["usage"]["objects"], 2, "{v}");
    assert_eq!(v["usage"]["bytes"], 4, "{v}");
}

fn in_days(days: i64) -> DateTime {
    DateTime::from_secs(now() as i64 + days * 86_400)
}

#[tokio::test]
async fn object_lock_protects_versions_from_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut s = Server::start_at(&data, "127.0.0.1:0");
    let c = s.client();
    c.create_bucket()
        .bucket("lock")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    // Object Lock turned versioning on, for good.
    let st = c.get_bucket_versioning().bucket("lock").send().await.unwrap();
    assert_eq!(st.status(), Some(&BucketVersioningStatus::Enabled));
    let e = c
        .put_bucket_versioning()
        .bucket("lock")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidBucketState");
    let cfg = c.get_object_lock_configuration().bucket("lock").send().await.unwrap();
    assert_eq!(
        cfg.object_lock_configuration().unwrap().object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );

    // COMPLIANCE: not deleted by id, not by DeleteObjects, not shortened, not after a restart.
    let compliance = c
        .put_object()
        .bucket("lock")
        .key("c")
        .body(ByteStream::from_static(b"compliance"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_days(1))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let head = c.head_object().bucket("lock").key("c").send().await.unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    for bypass in [false, true] {
        let e = c
            .delete_object()
            .bucket("lock")
            .key("c")
            .version_id(&compliance)
            .bypass_governance_retention(bypass)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e.into_service_error()), "AccessDenied");
    }
    let del = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("c")
                .version_id(&compliance)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let r = c.delete_objects().bucket("lock").delete(del).send().await.unwrap();
    assert_eq!(r.errors().len(), 1);
    assert_eq!(r.errors()[0].code(), Some("AccessDenied"));
    let shorter = ObjectLockRetention::builder()
        .mode(ObjectLockRetentionMode::Compliance)
        .retain_until_date(DateTime::from_secs(now() as i64 + 3600))
        .build();
    let e = c
        .put_object_retention()
        .bucket("lock")
        .key("c")
        .version_id(&compliance)
        .retention(shorter)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    // An overwrite makes a new version; a delete places a marker: the locked bytes stay.
    put_v(&c, "lock", "c", b"overwrite").await;
    let d = c.delete_object().bucket("lock").key("c").send().await.unwrap();
    assert_eq!(d.delete_marker(), Some(true));
    s.kill();
    let s = Server::start_at(&data, "127.0.0.1:0");
    let c = s.client();
    assert_eq!(get_v(&c, "lock", "c", &compliance).await, b"compliance");
    let e = c
        .delete_object()
        .bucket("lock")
        .key("c")
        .version_id(&compliance)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    let r = c
        .get_object_retention()
        .bucket("lock")
        .key("c")
        .version_id(&compliance)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Compliance)
    );

    // GOVERNANCE: deleted only with the bypass header.
    let governance = c
        .put_object()
        .bucket("lock")
        .key("g")
        .body(ByteStream::from_static(b"governance"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_days(1))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let e = c
        .delete_object()
        .bucket("lock")
        .key("g")
        .version_id(&governance)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    c.delete_object()
        .bucket("lock")
        .key("g")
        .version_id(&governance)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap();

    // Legal hold on: nothing removes the version; off: it goes.
    let held = put_v(&c, "lock", "h", b"held").await;
    let hold = |on: bool| {
        ObjectLockLegalHold::builder()
            .status(if on {
                ObjectLockLegalHoldStatus::On
            } else {
                ObjectLockLegalHoldStatus::Off
            })
            .build()
    };
    c.put_object_legal_hold()
        .bucket("lock")
        .key("h")
        .version_id(&held)
        .legal_hold(hold(true))
        .send()
        .await
        .unwrap();
    let got = c
        .get_object_legal_hold()
        .bucket("lock")
        .key("h")
        .version_id(&held)
        .send()
        .await
        .unwrap();
    assert_eq!(got.legal_hold().unwrap().status(), Some(&ObjectLockLegalHoldStatus::On));
    let e = c
        .delete_object()
        .bucket("lock")
        .key("h")
        .version_id(&held)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    c.put_object_legal_hold()
        .bucket("lock")
        .key("h")
        .version_id(&held)
        .legal_hold(hold(false))
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("lock")
        .key("h")
        .version_id(&held)
        .send()
        .await
        .unwrap();

    // Default retention applies to versions that name none.
    c.put_object_lock_configuration()
        .bucket("lock")
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Governance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let d = put_v(&c, "lock", "d", b"default").await;
    let r = c
        .get_object_retention()
        .bucket("lock")
        .key("d")
        .version_id(&d)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.retention().unwrap().mode(),
        Some(&ObjectLockRetentionMode::Governance)
    );

    // Lock headers on CreateMultipartUpload reach the object Complete makes.
    let up = c
        .create_multipart_upload()
        .bucket("lock")
        .key("mpu")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_days(2))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let part = c
        .upload_part()
        .bucket("lock")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"multipart locked"))
        .send()
        .await
        .unwrap();
    let done = c
        .complete_multipart_upload()
        .bucket("lock")
        .key("mpu")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mpu = done.version_id().unwrap().to_string();
    let head = c
        .head_object()
        .bucket("lock")
        .key("mpu")
        .version_id(&mpu)
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    let e = c
        .delete_object()
        .bucket("lock")
        .key("mpu")
        .version_id(&mpu)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");

    // Without Object Lock on the bucket, lock headers are refused.
    c.create_bucket().bucket("plain").send().await.unwrap();
    let e = c
        .put_object()
        .bucket("plain")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    let e = c
        .get_object_lock_configuration()
        .bucket("plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "ObjectLockConfigurationNotFoundError");

    // The operator cannot erase a tenant whose versions are under COMPLIANCE retention.
    let (ak, sk) = s.tenant("hopital", &[]);
    let t = client_with(&s.endpoint, &ak, &sk);
    t.create_bucket()
        .bucket("hopital-backups")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    t.put_object()
        .bucket("hopital-backups")
        .key("b")
        .body(ByteStream::from_static(b"backup"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_days(1))
        .send()
        .await
        .unwrap();
    let (ok, _, err) = s.admin(&["tenant", "delete", "hopital", "--erase", "--force"]);
    assert!(!ok, "erasure of locked data must be refused");
    assert!(err.contains("COMPLIANCE"), "{err}");
    assert_eq!(get_body(&t, "hopital-backups", "b").await, b"backup");
}

/// Waits (up to a minute) until `check` holds; the lifecycle runs on its own clock.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "lifecycle never got to: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

async fn lifecycle(c: &aws_sdk_s3::Client, bucket: &str, rules: Vec<aws_sdk_s3::types::LifecycleRule>) {
    c.put_bucket_lifecycle_configuration()
        .bucket(bucket)
        .lifecycle_configuration(
            aws_sdk_s3::types::BucketLifecycleConfiguration::builder()
                .set_rules(Some(rules))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn lifecycle_expires_versions_markers_and_uploads_on_an_accelerated_clock() {
    use aws_sdk_s3::types::{
        AbortIncompleteMultipartUpload, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
        NoncurrentVersionExpiration,
    };
    let dir = tempfile::tempdir().unwrap();
    // A lifecycle day of 2 seconds (a test-only setting).
    let s = Server::start_with_env(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &[("COFFRE_LIFECYCLE_DAY_SECONDS", "2")],
    );
    let c = s.client();
    let rule = |id: &str, prefix: &str| {
        LifecycleRule::builder()
            .id(id)
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix(prefix).build())
    };
    // A versioned bucket: current versions expire into markers, then the noncurrent
    // versions go (keeping the newest noncurrent one of `keep/`), then the lone markers.
    c.create_bucket().bucket("lc-versions").send().await.unwrap();
    enable(&c, "lc-versions", BucketVersioningStatus::Enabled).await;
    lifecycle(
        &c,
        "lc-versions",
        vec![
            rule("current", "cur/")
                .expiration(LifecycleExpiration::builder().days(1).build())
                .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
                .build()
                .unwrap(),
            rule("markers", "cur/")
                .expiration(
                    LifecycleExpiration::builder()
                        .expired_object_delete_marker(true)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("keep", "keep/")
                .noncurrent_version_expiration(
                    NoncurrentVersionExpiration::builder()
                        .noncurrent_days(1)
                        .newer_noncurrent_versions(1)
                        .build(),
                )
                .build()
                .unwrap(),
            rule("uploads", "up/")
                .abort_incomplete_multipart_upload(
                    AbortIncompleteMultipartUpload::builder()
                        .days_after_initiation(1)
                        .build(),
                )
                .build()
                .unwrap(),
        ],
    )
    .await;
    let got = c
        .get_bucket_lifecycle_configuration()
        .bucket("lc-versions")
        .send()
        .await
        .unwrap();
    assert_eq!(got.rules().len(), 4);
    put_v(&c, "lc-versions", "cur/a", b"a").await;
    for i in 0..3 {
        put_v(&c, "lc-versions", "keep/k", format!("k{i}").as_bytes()).await;
    }
    put_v(&c, "lc-versions", "other", b"untouched").await;
    let up = c
        .create_multipart_upload()
        .bucket("lc-versions")
        .key("up/u")
        .send()
        .await
        .unwrap();
    // GET/HEAD announce the expiry of an object a rule expires.
    let head = c.head_object().bucket("lc-versions").key("cur/a").send().await.unwrap();
    let exp = head.expiration().expect("x-amz-expiration");
    assert!(exp.contains("rule-id=\"current\""), "{exp}");
    assert!(c
        .head_object()
        .bucket("lc-versions")
        .key("other")
        .send()
        .await
        .unwrap()
        .expiration()
        .is_none());

    // cur/a: current → marker, then the old version, then the marker itself: nothing left.
    eventually("cur/a gone for good", || async {
        all_versions(&c, "lc-versions", 1000)
            .await
            .iter()
            .all(|v| v.0 != "cur/a")
    })
    .await;
    eventually("keep/k keeps its current and one noncurrent version", || async {
        all_versions(&c, "lc-versions", 1000)
            .await
            .iter()
            .filter(|v| v.0 == "keep/k")
            .count()
            == 2
    })
    .await;
    assert_eq!(get_body(&c, "lc-versions", "keep/k").await, b"k2");
    eventually("the stale upload aborted", || async {
        c.list_multipart_uploads()
            .bucket("lc-versions")
            .send()
            .await
            .unwrap()
            .uploads()
            .is_empty()
    })
    .await;
    let e = c
        .upload_part()
        .bucket("lc-versions")
        .key("up/u")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchUpload");
    assert_eq!(get_body(&c, "lc-versions", "other").await, b"untouched");

    // A lock-enabled bucket: the expiry places a marker over a COMPLIANCE version, but the
    // version itself stays until its retention ends.
    c.create_bucket()
        .bucket("lc-locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    lifecycle(
        &c,
        "lc-locked",
        vec![rule("all", "")
            .expiration(LifecycleExpiration::builder().days(1).build())
            .noncurrent_version_expiration(NoncurrentVersionExpiration::builder().noncurrent_days(1).build())
            .build()
            .unwrap()],
    )
    .await;
    let locked = c
        .put_object()
        .bucket("lc-locked")
        .key("backup")
        .body(ByteStream::from_static(b"locked"))
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(in_days(1))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    eventually("the locked object hidden by a marker", || async {
        c.get_object().bucket("lc-locked").key("backup").send().await.is_err()
    })
    .await;
    // Several more lifecycle days: the version is still there, whole.
    tokio::time::sleep(std::time::Duration::from_secs(8)).await;
    assert_eq!(get_v(&c, "lc-locked", "backup", &locked).await, b"locked");

    // An unversioned bucket: expiry deletes.
    c.create_bucket().bucket("lc-plain").send().await.unwrap();
    lifecycle(
        &c,
        "lc-plain",
        vec![rule("tmp", "tmp/")
            .expiration(LifecycleExpiration::builder().days(1).build())
            .build()
            .unwrap()],
    )
    .await;
    put(&c, "lc-plain", "tmp/x", b"x".to_vec()).await;
    put(&c, "lc-plain", "keep", b"y".to_vec()).await;
    eventually("tmp/x deleted", || async {
        c.head_object().bucket("lc-plain").key("tmp/x").send().await.is_err()
    })
    .await;
    assert_eq!(get_body(&c, "lc-plain", "keep").await, b"y");
    c.delete_bucket_lifecycle().bucket("lc-plain").send().await.unwrap();
    let e = c
        .get_bucket_lifecycle_configuration()
        .bucket("lc-plain")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchLifecycleConfiguration");

    // Progress is in the metrics.
    let body = s.metrics();
    let value = |name: &str| -> u64 {
        body.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {body}"))
    };
    assert!(value("coffre_lifecycle_expired_current_total") >= 3);
    assert!(value("coffre_lifecycle_expired_noncurrent_total") >= 2);
    assert!(value("coffre_lifecycle_removed_delete_markers_total") >= 1);
    assert!(value("coffre_lifecycle_aborted_uploads_total") >= 1);
    assert!(value("coffre_lifecycle_skipped_locked_total") >= 1);
}

#[tokio::test]
async fn veeam_sosapi_objects_report_capabilities_and_capacity() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket()
        .bucket("veeam-repo")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let folder = ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c";
    let system = get_body(&c, "veeam-repo", &format!("{folder}/system.xml")).await;
    let system = String::from_utf8(system).unwrap();
    assert!(system.contains("<CapacityInfo>true</CapacityInfo>"), "{system}");
    assert!(
        system.contains("<ProtocolVersion>\"1.0\"</ProtocolVersion>"),
        "{system}"
    );
    let number = |doc: &str, tag: &str| -> u64 {
        let start = doc.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
        let end = doc[start..].find('<').unwrap() + start;
        doc[start..end].parse().unwrap()
    };
    // Without a quota: the usable space of the nodes (positive), and what the bucket holds.
    put(&c, "veeam-repo", "backup.vbk", data(100_000, 3)).await;
    let cap = String::from_utf8(get_body(&c, "veeam-repo", &format!("{folder}/capacity.xml")).await).unwrap();
    assert_eq!(number(&cap, "Used"), 100_000, "{cap}");
    assert!(number(&cap, "Capacity") > 0 && number(&cap, "Available") > 0, "{cap}");
    // With a bucket quota: the quota, and what is left of it.
    let (ok, _, err) = s.admin(&["bucket", "quota", "veeam-repo", "--bytes", "1000000"]);
    assert!(ok, "{err}");
    let cap = String::from_utf8(get_body(&c, "veeam-repo", &format!("{folder}/capacity.xml")).await).unwrap();
    assert_eq!(
        (
            number(&cap, "Capacity"),
            number(&cap, "Available"),
            number(&cap, "Used")
        ),
        (1_000_000, 900_000, 100_000),
        "{cap}"
    );
    let head = c
        .head_object()
        .bucket("veeam-repo")
        .key(format!("{folder}/capacity.xml"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(cap.len() as i64));
    // The store answers these objects itself: they cannot be written.
    let e = c
        .put_object()
        .bucket("veeam-repo")
        .key(format!("{folder}/system.xml"))
        .body(ByteStream::from_static(b"<x/>"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
}
