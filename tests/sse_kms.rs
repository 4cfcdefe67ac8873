//! SSE-KMS through the real server and the AWS SDK for Rust: a tenant's named KMS keys made
//! with `coffre admin kms-key`, objects written under them (single, multipart, copy between
//! keys, bucket default), a disabled key's objects refused until enabled, another tenant's
//! key refused, bucket policy conditions on the key, every use in the audit log, rotation,
//! and shredding (tests/clients/12-awscli-sse-kms.sh does the same with aws-cli).

mod common;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    CompletedMultipartUpload, CompletedPart, ServerSideEncryption, ServerSideEncryptionByDefault,
    ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use common::*;
use serde_json::Value;

/// `coffre admin kms-key create --tenant T NAME --json`: (key id, ARN).
fn create_key(s: &Server, tenant: &str, name: &str) -> (String, String) {
    let (ok, out, err) = s.admin(&["kms-key", "create", "--tenant", tenant, name, "--json"]);
    assert!(ok, "kms-key create: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 2, "create --json prints key_id and arn only: {out}");
    (
        v["key_id"].as_str().unwrap().to_string(),
        v["arn"].as_str().unwrap().to_string(),
    )
}

fn key_cmd(s: &Server, verb: &str, tenant: &str, name: &str, extra: &[&str]) -> Value {
    let mut args = vec!["kms-key", verb, "--tenant", tenant, name];
    args.extend_from_slice(extra);
    s.admin_json(&args)
}

async fn get_err(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> (u16, String) {
    let e = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect_err("the read must be refused");
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    (status, e.code().unwrap_or("").to_string())
}

async fn put_kms(c: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8], kms: &str) -> Result<(), (u16, String)> {
    c.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(body.to_vec()))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(kms)
        .send()
        .await
        .map(drop)
        .map_err(|e| {
            (
                e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
                e.code().unwrap_or("").to_string(),
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_under_a_tenants_kms_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut s = Server::start_at(&data_dir, "127.0.0.1:0");
    let (access, secret) = s.tenant("clinique", &[]);
    s.tenant("mairie", &[]);
    let c = client_with(&s.endpoint, &access, &secret);
    let (id1, arn1) = create_key(&s, "clinique", "dossiers");
    let (_, arn2) = create_key(&s, "clinique", "archives");
    let (other_id, other_arn) = create_key(&s, "mairie", "secret");
    assert_eq!(arn1, format!("arn:aws:kms:fr-par:clinique:key/{id1}"));
    // Names are unique in a tenant, not across tenants.
    let (ok, _, err) = s.admin(&["kms-key", "create", "--tenant", "clinique", "dossiers"]);
    assert!(!ok && err.contains("already exists"), "{err}");
    c.create_bucket().bucket("kms").send().await.unwrap();

    // A single PUT: the answer names the key (ARN) and echoes the context.
    let small = data(3000, 1);
    let context = base64_of(br#"{"service":"cardiologie"}"#);
    let put = c
        .put_object()
        .bucket("kms")
        .key("small")
        .body(ByteStream::from(small.clone()))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&id1)
        .ssekms_encryption_context(&context)
        .send()
        .await
        .unwrap();
    assert_eq!(put.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(put.ssekms_key_id(), Some(arn1.as_str()));
    assert_eq!(put.ssekms_encryption_context(), Some(context.as_str()));
    let got = c.get_object().bucket("kms").key("small").send().await.unwrap();
    assert_eq!(got.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(got.ssekms_key_id(), Some(arn1.as_str()));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &small[..]);

    // Multipart: the key chosen at creation encrypts every part.
    let parts = [data(5 << 20, 2), data(1 << 20, 3)];
    let up = c
        .create_multipart_upload()
        .bucket("kms")
        .key("big")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id("alias/dossiers")
        .send()
        .await
        .unwrap();
    assert_eq!(up.ssekms_key_id(), Some(arn1.as_str()));
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("kms")
            .key("big")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    let completed = c
        .complete_multipart_upload()
        .bucket("kms")
        .key("big")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    assert_eq!(completed.ssekms_key_id(), Some(arn1.as_str()));
    let whole = [parts[0].clone(), parts[1].clone()].concat();
    assert_eq!(get_body(&c, "kms", "big").await, whole);
    let head = c.head_object().bucket("kms").key("big").send().await.unwrap();
    assert_eq!(head.ssekms_key_id(), Some(arn1.as_str()));

    // A copy moves the object to another key.
    let copy = c
        .copy_object()
        .bucket("kms")
        .key("small-archived")
        .copy_source("kms/small")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&arn2)
        .send()
        .await
        .unwrap();
    assert_eq!(copy.ssekms_key_id(), Some(arn2.as_str()));

    // Another tenant's key: by ARN it is refused, by id it is not found.
    assert_eq!(
        put_kms(&c, "kms", "x", b"x", &other_arn).await,
        Err((403, "AccessDenied".into()))
    );
    assert_eq!(
        put_kms(&c, "kms", "x", b"x", &other_id).await,
        Err((400, "KMS.NotFoundException".into()))
    );
    // aws:kms with no key and no bucket default: Coffre has no AWS-managed key.
    let e = c
        .put_object()
        .bucket("kms")
        .key("x")
        .body(ByteStream::from_static(b"x"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("InvalidArgument"));

    // Disabled: unreadable (403 KMS.DisabledException), nothing new written under it; HEAD
    // and the copy under the other key still answer; enabled again, readable again.
    assert_eq!(key_cmd(&s, "disable", "clinique", "dossiers", &[])["state"], "Disabled");
    assert_eq!(get_err(&c, "kms", "small").await, (403, "KMS.DisabledException".into()));
    assert_eq!(get_err(&c, "kms", "big").await, (403, "KMS.DisabledException".into()));
    assert_eq!(
        put_kms(&c, "kms", "new", b"new", &id1).await,
        Err((403, "KMS.DisabledException".into()))
    );
    let e = c
        .copy_object()
        .bucket("kms")
        .key("copy-of-disabled")
        .copy_source("kms/small")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("KMS.DisabledException"));
    c.head_object().bucket("kms").key("small").send().await.unwrap();
    assert_eq!(get_body(&c, "kms", "small-archived").await, small);
    assert_eq!(key_cmd(&s, "enable", "clinique", &arn1, &[])["state"], "Enabled");
    assert_eq!(get_body(&c, "kms", "small").await, small);

    // Rotation: new writes use the new version, the old one still decrypts.
    let rotated = key_cmd(&s, "rotate", "clinique", "dossiers", &[]);
    assert_eq!(rotated["versions"], 2);
    put_kms(&c, "kms", "after-rotation", b"new material", "dossiers")
        .await
        .unwrap();
    assert_eq!(get_body(&c, "kms", "after-rotation").await, b"new material");
    assert_eq!(get_body(&c, "kms", "big").await, whole);

    // Bucket default with BucketKeyEnabled: a plain PUT is encrypted under the key.
    c.put_bucket_encryption()
        .bucket("kms")
        .server_side_encryption_configuration(kms_default(&arn2, Some(true)))
        .send()
        .await
        .unwrap();
    let cfg = c.get_bucket_encryption().bucket("kms").send().await.unwrap();
    let rule = &cfg.server_side_encryption_configuration().unwrap().rules()[0];
    let by_default = rule.apply_server_side_encryption_by_default().unwrap();
    assert_eq!(by_default.kms_master_key_id(), Some(arn2.as_str()));
    let plain = c
        .put_object()
        .bucket("kms")
        .key("by-default")
        .body(ByteStream::from_static(b"defaut"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.ssekms_key_id(), Some(arn2.as_str()));
    assert_eq!(plain.bucket_key_enabled(), Some(true));
    // Explicit AES256 still wins over the default.
    let s3 = c
        .put_object()
        .bucket("kms")
        .key("aes")
        .body(ByteStream::from_static(b"aes"))
        .server_side_encryption(ServerSideEncryption::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(s3.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    // Another tenant's key cannot be a bucket default.
    let e = c
        .put_bucket_encryption()
        .bucket("kms")
        .server_side_encryption_configuration(kms_default(&other_arn, None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));

    // Every use of a key is in the audit log, under the bucket owner's tenant, naming the key.
    let found = s.admin_json(&["audit", "search", "--tenant", "clinique", "--op", "kms:Decrypt"]);
    let events = found["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["key"] == "small" && e["status"] == 403 && e["detail"] == arn1.as_str()),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["key"] == "small" && e["status"] == 200));
    let found = s.admin_json(&["audit", "search", "--tenant", "clinique", "--op", "kms:GenerateDataKey"]);
    assert!(found["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["key"] == "by-default" && e["detail"] == arn2.as_str()));

    // The keys and what they encrypted survive a restart.
    s.kill();
    let s = Server::start_at(&data_dir, "127.0.0.1:0");
    let c = client_with(&s.endpoint, &access, &secret);
    assert_eq!(get_body(&c, "kms", "big").await, whole);
    assert_eq!(get_body(&c, "kms", "by-default").await, b"defaut");

    // Shredding: scheduled, the key is unusable at once; cancelled, it is back disabled;
    // shredded now, what it encrypted is unreadable for good.
    let pending = key_cmd(&s, "schedule-deletion", "clinique", "dossiers", &["--days", "7"]);
    assert_eq!(pending["state"], "PendingDeletion");
    assert_eq!(
        get_err(&c, "kms", "big").await,
        (403, "KMS.KMSInvalidStateException".into())
    );
    let (ok, _, err) = s.admin(&["kms-key", "enable", "--tenant", "clinique", "dossiers"]);
    assert!(!ok, "a key pending deletion is not enabled: cancel first ({err})");
    assert_eq!(
        key_cmd(&s, "cancel-deletion", "clinique", "dossiers", &[])["state"],
        "Disabled"
    );
    key_cmd(&s, "enable", "clinique", "dossiers", &[]);
    assert_eq!(get_body(&c, "kms", "big").await, whole);
    let gone = key_cmd(&s, "schedule-deletion", "clinique", "dossiers", &["--days", "0"]);
    assert_eq!(gone["state"], "Deleted");
    assert_eq!(gone["versions"], 0);
    assert_eq!(get_err(&c, "kms", "big").await.0, 403);
    assert_eq!(get_err(&c, "kms", "after-rotation").await.0, 403);
    assert_eq!(get_body(&c, "kms", "small-archived").await, small);
    let list = s.admin_json(&["kms-key", "list", "--tenant", "clinique"]);
    let states: Vec<(&str, &str)> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["name"].as_str().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![("archives", "Enabled"), ("dossiers", "Deleted")]);
    // Its name is free again.
    create_key(&s, "clinique", "dossiers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_policies_see_the_kms_headers() {
    let s = Server::start();
    let c = s.client();
    let (_, arn) = create_key(&s, "default", "approuvee");
    let (other_id, _) = create_key(&s, "default", "autre");
    c.create_bucket().bucket("kms-policy").send().await.unwrap();
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::kms-policy/*",
            "Condition":{{"StringNotEquals":{{"s3:x-amz-server-side-encryption":"aws:kms"}}}}}},
          {{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::kms-policy/*",
            "Condition":{{"StringNotEquals":{{"s3:x-amz-server-side-encryption-aws-kms-key-id":"{arn}"}}}}}}]}}"#
    );
    c.put_bucket_policy()
        .bucket("kms-policy")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let e = c
        .put_object()
        .bucket("kms-policy")
        .key("plain")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDenied"));
    assert_eq!(
        put_kms(&c, "kms-policy", "other-key", b"x", &other_id).await,
        Err((403, "AccessDenied".into()))
    );
    put_kms(&c, "kms-policy", "approved", b"ok", &arn).await.unwrap();
    assert_eq!(get_body(&c, "kms-policy", "approved").await, b"ok");
}

/// A bucket default: `aws:kms` under `key`, with `BucketKeyEnabled` as given.
fn kms_default(key: &str, bucket_key: Option<bool>) -> ServerSideEncryptionConfiguration {
    ServerSideEncryptionConfiguration::builder()
        .rules(
            ServerSideEncryptionRule::builder()
                .apply_server_side_encryption_by_default(
                    ServerSideEncryptionByDefault::builder()
                        .sse_algorithm(ServerSideEncryption::AwsKms)
                        .kms_master_key_id(key)
                        .build()
                        .unwrap(),
                )
                .set_bucket_key_enabled(bucket_key)
                .build(),
        )
        .build()
        .unwrap()
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(b)
}
