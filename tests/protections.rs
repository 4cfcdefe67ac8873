//! The third security review's findings on permissions, end to end against the real binary:
//! protections and labels set through a write's headers need their own actions, policies are
//! managed by their owner only, a grant to a tenant is delegated by its own policies, tag
//! conditions read the version asked for, anonymous links cannot restyle an answer, signed
//! bodies are what was signed, form fields are taken once, and what anonymous callers make
//! the gateway hold is bounded.

mod common;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockLegalHoldStatus, ObjectLockMode};
use common::*;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

/// The S3 error code of a failed call (panics if it succeeded).
macro_rules! refused {
    ($call:expr) => {
        match $call.send().await {
            Ok(_) => panic!("expected a refusal: {}", stringify!($call)),
            Err(e) => code(&e.into_service_error()),
        }
    };
}

fn in_days(days: i64) -> DateTime {
    DateTime::from_secs(now() as i64 + days * 86_400)
}

const WRITER: &str = r#"{"Statement":[
    {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:ListBucket","s3:CreateBucket"],"Resource":"*"},
    {"Effect":"Deny","Action":["s3:PutObjectRetention","s3:PutObjectLegalHold","s3:PutObjectTagging"],"Resource":"*"}]}"#;

/// Finding 2: retention, legal hold and tags set through PutObject, CopyObject and
/// CreateMultipartUpload headers need their own actions; a lock-enabled bucket needs the lock
/// configuration's; and no retention runs more than 100 years.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protections_and_labels_need_their_own_permission() {
    let s = Server::start();
    let root = s.client();
    root.create_bucket()
        .bucket("archives")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    put(&root, "archives", "source", b"to copy".to_vec()).await;
    let writer = user_with_policy(&s, "default", "writer", WRITER);
    let body = || ByteStream::from_static(b"cannot be deleted by anyone");
    let denied = "AccessDenied";
    assert_eq!(
        refused!(writer
            .put_object()
            .bucket("archives")
            .key("compliance")
            .body(body())
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(in_days(3650))),
        denied
    );
    assert_eq!(
        refused!(writer
            .put_object()
            .bucket("archives")
            .key("held")
            .body(body())
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)),
        denied
    );
    assert_eq!(
        refused!(writer
            .put_object()
            .bucket("archives")
            .key("tagged")
            .body(body())
            .tagging("classification=secret")),
        denied
    );
    assert_eq!(
        refused!(writer
            .copy_object()
            .bucket("archives")
            .key("copied")
            .copy_source("archives/source")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(in_days(3650))),
        denied
    );
    assert_eq!(
        refused!(writer
            .copy_object()
            .bucket("archives")
            .key("copied")
            .copy_source("archives/source")
            .tagging_directive(aws_sdk_s3::types::TaggingDirective::Replace)
            .tagging("classification=secret")),
        denied
    );
    assert_eq!(
        refused!(writer
            .create_multipart_upload()
            .bucket("archives")
            .key("multipart")
            .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)),
        denied
    );
    assert_eq!(
        refused!(writer
            .create_bucket()
            .bucket("locked-by-writer")
            .object_lock_enabled_for_bucket(true)),
        denied
    );
    // Nothing was written by the refused requests.
    for key in ["compliance", "held", "tagged", "copied"] {
        assert!(
            root.head_object().bucket("archives").key(key).send().await.is_err(),
            "{key}"
        );
    }
    assert!(root.head_bucket().bucket("locked-by-writer").send().await.is_err());
    // What the writer may do, it does.
    writer
        .put_object()
        .bucket("archives")
        .key("plain")
        .body(body())
        .send()
        .await
        .unwrap();
    writer.create_bucket().bucket("writers-own").send().await.unwrap();
    // With the actions, the same headers work.
    let keeper = user_with_policy(
        &s,
        "default",
        "keeper",
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:PutObject","s3:PutObjectRetention","s3:PutObjectLegalHold","s3:PutObjectTagging","s3:CreateBucket","s3:PutBucketObjectLockConfiguration","s3:PutBucketVersioning"],"Resource":"*"}]}"#,
    );
    keeper
        .put_object()
        .bucket("archives")
        .key("kept")
        .body(body())
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(in_days(1))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .tagging("classification=secret")
        .send()
        .await
        .unwrap();
    keeper
        .create_bucket()
        .bucket("keepers-locked")
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    // No retention beyond 100 years, whoever asks.
    let far = DateTime::from_secs(253_402_214_400); // 9999-12-31
    assert_eq!(
        refused!(root
            .put_object()
            .bucket("archives")
            .key("forever")
            .body(body())
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(far)),
        "InvalidArgument"
    );
    assert!(root
        .head_object()
        .bucket("archives")
        .key("forever")
        .send()
        .await
        .is_err());

    // A form's tags need the tagging action too.
    let k = s.admin_json(&["key", "create", "--tenant", "default", "--user", "writer"]);
    let (ak, sk) = (k["access_key"].as_str().unwrap(), k["secret_key"].as_str().unwrap());
    root.create_bucket().bucket("forms").send().await.unwrap();
    let policy = format!(
        r#"{{"expiration": "{}", "conditions": [{{"bucket": "forms"}}, ["starts-with", "$key", ""], ["starts-with", "$tagging", ""],
        {{"x-amz-algorithm": "AWS4-HMAC-SHA256"}}, ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]}}"#,
        expiration(600)
    );
    let mut fields: Vec<(&str, String)> = vec![
        ("key", "form-tagged".to_string()),
        (
            "tagging",
            "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>".to_string(),
        ),
    ];
    fields.extend(signed_fields_of(ak, sk, &policy));
    let (ct, form) = form_body(&fields, "f.txt", b"form data");
    let (status, _, xml) = post_form(&s, "forms", &ct, &form);
    assert_eq!(status, 403, "{xml}");
    assert!(xml.contains("AccessDenied"), "{xml}");
    assert!(root
        .head_object()
        .bucket("forms")
        .key("form-tagged")
        .send()
        .await
        .is_err());
}

/// Finding 4: `s3:ExistingObjectTag` is read from the version the request names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_conditions_read_the_version_asked_for() {
    let s = Server::start();
    let root = s.client();
    root.create_bucket().bucket("rapports").send().await.unwrap();
    enable_versioning(&root, "rapports").await;
    let old = root
        .put_object()
        .bucket("rapports")
        .key("r.pdf")
        .body(ByteStream::from_static(b"confidential draft"))
        .send()
        .await
        .unwrap();
    let new = root
        .put_object()
        .bucket("rapports")
        .key("r.pdf")
        .body(ByteStream::from_static(b"published"))
        .tagging("public=yes")
        .send()
        .await
        .unwrap();
    let reader = user_with_policy(
        &s,
        "default",
        "lecteur",
        r#"{"Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:GetObjectVersion"],"Resource":"arn:aws:s3:::rapports/*",
            "Condition":{"StringEquals":{"s3:ExistingObjectTag/public":"yes"}}}]}"#,
    );
    let got = reader
        .get_object()
        .bucket("rapports")
        .key("r.pdf")
        .send()
        .await
        .unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"published");
    reader
        .get_object()
        .bucket("rapports")
        .key("r.pdf")
        .version_id(new.version_id().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(reader
            .get_object()
            .bucket("rapports")
            .key("r.pdf")
            .version_id(old.version_id().unwrap())),
        "AccessDenied"
    );
}

/// Finding 11: a bucket's policy is read and changed by its owner's identities only, whatever
/// the policy grants to others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_manages_a_bucket_policy() {
    let s = Server::start();
    let (ak, sk) = s.tenant("proprio", &[]);
    let (bk, bs) = s.tenant("voisin", &[]);
    let owner = client_with(&s.endpoint, &ak, &sk);
    let other = client_with(&s.endpoint, &bk, &bs);
    owner.create_bucket().bucket("partage").send().await.unwrap();
    let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":["s3:GetBucketPolicy","s3:PutBucketPolicy","s3:DeleteBucketPolicy"],"Resource":"arn:aws:s3:::partage"},
        {"Effect":"Allow","Principal":{"AWS":"voisin"},"Action":["s3:GetBucketPolicy","s3:PutBucketPolicy","s3:DeleteBucketPolicy"],"Resource":"arn:aws:s3:::partage"}]}"#;
    owner
        .put_bucket_policy()
        .bucket("partage")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let (status, _, body) = raw_request(
        &s.addr,
        "GET",
        "/partage?policy",
        &[("host".into(), s.addr.clone())],
        b"",
    );
    assert_eq!(status, 403, "anonymous: {body}");
    assert!(!body.contains("Statement"), "{body}");
    assert_eq!(refused!(other.get_bucket_policy().bucket("partage")), "AccessDenied");
    assert_eq!(
        refused!(other.put_bucket_policy().bucket("partage").policy(
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::partage"}]}"#
        )),
        "AccessDenied"
    );
    assert_eq!(refused!(other.delete_bucket_policy().bucket("partage")), "AccessDenied");
    let got = owner.get_bucket_policy().bucket("partage").send().await.unwrap();
    assert_eq!(got.policy(), Some(policy), "unchanged, and still the owner's to read");
}

/// Finding 18: within a tenant, a bucket policy naming the tenant is delegated by each
/// caller's own policies; naming the caller (or everyone) grants it directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_to_the_tenant_is_delegated_by_its_users_policies() {
    let s = Server::start();
    let root = s.client();
    root.create_bucket().bucket("interne").send().await.unwrap();
    put(&root, "interne", "note", b"internal".to_vec()).await;
    let nothing = r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#;
    let plain = user_with_policy(&s, "default", "plain", nothing);
    let named = user_with_policy(&s, "default", "named", nothing);
    root.put_bucket_policy()
        .bucket("interne")
        .policy(
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::default:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::interne/*"},
            {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::default:user/named"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::interne/*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(plain.get_object().bucket("interne").key("note")),
        "AccessDenied"
    );
    assert_eq!(get_body(&named, "interne", "note").await, b"internal");
    // A user whose own policy delegates the tenant's grant reads it.
    let delegated = user_with_policy(
        &s,
        "default",
        "delegated",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::interne/*"}]}"#,
    );
    assert_eq!(get_body(&delegated, "interne", "note").await, b"internal");
}

/// Finding 13: an anonymous request cannot choose the headers of its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_gets_cannot_override_answer_headers() {
    let s = Server::start();
    let root = s.client();
    root.create_bucket().bucket("public").send().await.unwrap();
    put(&root, "public", "page", b"<script>alert(1)</script>".to_vec()).await;
    root.put_bucket_policy()
        .bucket("public")
        .policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::public/*"}]}"#)
        .send()
        .await
        .unwrap();
    let host = [("host".to_string(), s.addr.clone())];
    let (status, head, body) = raw_request(
        &s.addr,
        "GET",
        "/public/page?response-content-type=text/html",
        &host,
        b"",
    );
    assert_eq!(status, 400, "{head}{body}");
    assert!(body.contains("InvalidRequest"), "{body}");
    let (status, head, _) = raw_request(&s.addr, "GET", "/public/page", &host, b"");
    assert_eq!(status, 200);
    assert!(!head.to_ascii_lowercase().contains("text/html"), "{head}");
    // A signed request may.
    let got = root
        .get_object()
        .bucket("public")
        .key("page")
        .response_content_type("text/plain")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
}

/// Finding 14: the IAM query API acts on the body it received, which must be the body signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iam_api_refuses_a_body_other_than_the_one_signed() {
    let s = Server::start();
    let signed_body = "Action=ListUsers";
    let sent_body = "Action=CreateUser&UserName=intrus";
    let hash = sha256_of(signed_body.as_bytes());
    let ct = "application/x-www-form-urlencoded; charset=utf-8";
    let sg = sign_for(
        "iam",
        ACCESS,
        SECRET,
        &s.addr,
        "POST",
        "/",
        "",
        &[("content-type", ct), ("x-amz-content-sha256", &hash)],
        &hash,
        now(),
    );
    let (status, _, body) = raw_request(&s.addr, "POST", "/", &sg.headers, sent_body.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("XAmzContentSHA256Mismatch"), "{body}");
    let users = s.admin_json(&["user", "list", "--tenant", "default"]);
    assert!(!users.to_string().contains("intrus"), "{users}");
    // The body it signed is taken.
    let sg = sign_for(
        "iam",
        ACCESS,
        SECRET,
        &s.addr,
        "POST",
        "/",
        "",
        &[("content-type", ct), ("x-amz-content-sha256", &hash)],
        &hash,
        now(),
    );
    let (status, _, body) = raw_request(&s.addr, "POST", "/", &sg.headers, signed_body.as_bytes());
    assert_eq!(status, 200, "{body}");
}

/// Finding 15: a form field given twice is refused (the value checked is the value stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_fields_are_given_once() {
    let s = Server::start();
    s.client().create_bucket().bucket("forms").send().await.unwrap();
    let policy = format!(
        r#"{{"expiration": "{}", "conditions": [{{"bucket": "forms"}}, ["starts-with", "$key", ""], {{"x-amz-meta-status": "draft"}},
        {{"x-amz-algorithm": "AWS4-HMAC-SHA256"}}, ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""]]}}"#,
        expiration(600)
    );
    let mut fields: Vec<(&str, String)> = vec![
        ("key", "doubled".to_string()),
        ("x-amz-meta-status", "draft".to_string()),
        ("x-amz-meta-status", "approved".to_string()),
    ];
    fields.extend(signed_fields(&policy));
    let (ct, body) = form_body(&fields, "f.txt", b"data");
    let (status, _, xml) = post_form(&s, "forms", &ct, &body);
    assert_eq!(status, 400, "{xml}");
    assert!(xml.contains("InvalidArgument"), "{xml}");
    assert!(s
        .client()
        .head_object()
        .bucket("forms")
        .key("doubled")
        .send()
        .await
        .is_err());
}

/// Finding 3: what anonymous requests make the gateway read before anything authorizes them
/// is bounded: DeleteObjects lists all together, POST form fields each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_bodies_read_before_authorization_are_bounded() {
    use std::io::Write;
    let s = Server::start();
    s.client().create_bucket().bucket("ouvert").send().await.unwrap();
    // Anonymous DeleteObjects declaring 4 MiB lists, never finished: the first few are read,
    // then the budget they share is full and the others get SlowDown at once.
    let declared = 4 << 20;
    let mut held = Vec::new();
    let mut slowed = 0;
    for _ in 0..12 {
        let mut c = std::net::TcpStream::connect(&s.addr).unwrap();
        write!(
            c,
            "POST /ouvert?delete HTTP/1.1\r\nhost: {}\r\ncontent-length: {declared}\r\n\r\n<Delete>",
            s.addr
        )
        .unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_millis(1500)))
            .unwrap();
        let mut buf = [0u8; 512];
        use std::io::Read;
        if let Ok(n) = c.read(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("HTTP/1.1 503") && text.contains("SlowDown") {
                slowed += 1;
            }
        }
        held.push(c);
    }
    assert_eq!(
        slowed, 8,
        "16 MiB for anonymous lists: four of 4 MiB are read, the rest refused"
    );
    drop(held);
    // Form fields before the file: at most 20 KiB together.
    let mut fields: Vec<(&str, String)> = vec![("key", "big".to_string())];
    let filler = "x".repeat(15 << 10);
    fields.push(("x-amz-meta-a", filler.clone()));
    fields.push(("x-amz-meta-b", filler));
    let (ct, body) = form_body(&fields, "f.txt", b"data");
    let (status, _, xml) = post_form(&s, "ouvert", &ct, &body);
    assert_eq!(status, 400, "{xml}");
    assert!(xml.contains("MaxPostPreDataLengthExceeded"), "{xml}");
}
