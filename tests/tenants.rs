//! Tenants, users, access keys and policies, end to end against the real binary: isolation
//! of tenants on every S3 operation, a policy matrix (identity and bucket policies, Deny,
//! conditions on source address and transport), anonymous access through a bucket policy,
//! disabled and expired keys, canned ACLs, quotas, STS with a local OIDC issuer, and the
//! erasure of a tenant.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier};
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

/// The HTTP status of a failed call (HEAD answers carry no error code).
macro_rules! refused_status {
    ($call:expr) => {
        match $call.send().await {
            Ok(_) => panic!("expected a refusal: {}", stringify!($call)),
            Err(e) => e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_on_every_operation() {
    let s = Server::start();
    let (ak, sk) = s.tenant("hopital", &[]);
    let (bk, bs) = s.tenant("mairie", &[]);
    let a = client_with(&s.endpoint, &ak, &sk);
    let b = client_with(&s.endpoint, &bk, &bs);
    a.create_bucket().bucket("dossiers").send().await.unwrap();
    put(&a, "dossiers", "patient/1.pdf", data(10_000, 1)).await;
    b.create_bucket().bucket("deliberations").send().await.unwrap();
    put(&b, "deliberations", "d1", b"mairie".to_vec()).await;

    // ListBuckets: each tenant sees its own, the root (default tenant) neither.
    let names = |r: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        r.buckets()
            .iter()
            .filter_map(|x| x.name().map(str::to_string))
            .collect()
    };
    assert_eq!(names(a.list_buckets().send().await.unwrap()), vec!["dossiers"]);
    assert_eq!(names(b.list_buckets().send().await.unwrap()), vec!["deliberations"]);
    assert!(names(s.client().list_buckets().send().await.unwrap()).is_empty());
    let owner = a.list_buckets().send().await.unwrap();
    assert_eq!(owner.owner().and_then(|o| o.id()), Some("hopital"));

    // Every operation of the other tenant on A's bucket: AccessDenied, never content.
    let denied = "AccessDenied";
    assert_eq!(refused!(b.list_objects_v2().bucket("dossiers")), denied);
    assert_eq!(refused!(b.list_objects().bucket("dossiers")), denied);
    assert_eq!(refused!(b.get_object().bucket("dossiers").key("patient/1.pdf")), denied);
    assert_eq!(
        refused_status!(b.head_object().bucket("dossiers").key("patient/1.pdf")),
        403
    );
    assert_eq!(refused_status!(b.head_bucket().bucket("dossiers")), 403);
    assert_eq!(
        refused!(b
            .put_object()
            .bucket("dossiers")
            .key("x")
            .body(ByteStream::from_static(b"x"))),
        denied
    );
    assert_eq!(
        refused!(b.delete_object().bucket("dossiers").key("patient/1.pdf")),
        denied
    );
    assert_eq!(
        refused!(b.get_object_tagging().bucket("dossiers").key("patient/1.pdf")),
        denied
    );
    assert_eq!(refused!(b.get_bucket_location().bucket("dossiers")), denied);
    assert_eq!(refused!(b.get_bucket_policy().bucket("dossiers")), denied);
    assert_eq!(refused!(b.list_multipart_uploads().bucket("dossiers")), denied);
    assert_eq!(refused!(b.delete_bucket().bucket("dossiers")), denied);
    assert_eq!(
        refused!(b.create_multipart_upload().bucket("dossiers").key("big")),
        denied
    );
    // Copy out of A's bucket into B's own: reading the source is refused.
    assert_eq!(
        refused!(b
            .copy_object()
            .bucket("deliberations")
            .key("stolen")
            .copy_source("dossiers/patient/1.pdf")),
        denied
    );
    // Nor into A's bucket from B's.
    assert_eq!(
        refused!(b
            .copy_object()
            .bucket("dossiers")
            .key("planted")
            .copy_source("deliberations/d1")),
        denied
    );
    // An upload A started cannot be fed, listed or aborted by B.
    let up = a
        .create_multipart_upload()
        .bucket("dossiers")
        .key("scan")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    assert_eq!(
        refused!(b
            .upload_part()
            .bucket("dossiers")
            .key("scan")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from_static(b"x"))),
        denied
    );
    assert_eq!(
        refused!(b.list_parts().bucket("dossiers").key("scan").upload_id(id)),
        denied
    );
    assert_eq!(
        refused!(b.abort_multipart_upload().bucket("dossiers").key("scan").upload_id(id)),
        denied
    );
    // UploadPartCopy of A's object into B's own upload.
    let bup = b
        .create_multipart_upload()
        .bucket("deliberations")
        .key("copy")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(b
            .upload_part_copy()
            .bucket("deliberations")
            .key("copy")
            .upload_id(bup.upload_id().unwrap())
            .part_number(1)
            .copy_source("dossiers/patient/1.pdf")),
        denied
    );
    // DeleteObjects: each key refused, nothing deleted.
    let del = b
        .delete_objects()
        .bucket("dossiers")
        .delete(
            Delete::builder()
                .objects(ObjectIdentifier::builder().key("patient/1.pdf").build().unwrap())
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(del.errors().len(), 1);
    assert_eq!(del.errors()[0].code(), Some("AccessDenied"));
    assert!(del.deleted().is_empty());
    assert_eq!(get_body(&a, "dossiers", "patient/1.pdf").await, data(10_000, 1));
    // Bucket names are one namespace: B cannot take A's.
    assert_eq!(refused!(b.create_bucket().bucket("dossiers")), "BucketAlreadyExists");
    assert_eq!(
        refused!(a.create_bucket().bucket("dossiers")),
        "BucketAlreadyOwnedByYou"
    );
    // A bucket that does not exist is NoSuchBucket to anyone.
    assert_eq!(refused!(b.list_objects_v2().bucket("nowhere")), "NoSuchBucket");
    // x-amz-expected-bucket-owner names the tenant.
    a.list_objects_v2()
        .bucket("dossiers")
        .expected_bucket_owner("hopital")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(a.list_objects_v2().bucket("dossiers").expected_bucket_owner("mairie")),
        denied
    );
    // A tenant's keys never work on the operator's plane.
    let (status, _, _) = raw_request(
        s.admin_endpoint.trim_start_matches("http://"),
        "GET",
        "/v1/tenants",
        &[
            ("host".into(), "admin".into()),
            ("authorization".into(), format!("Bearer {sk}")),
        ],
        b"",
    );
    assert_eq!(status, 401);
    let (ok, _, _) = std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args([
            "admin",
            "tenant",
            "list",
            "--endpoint",
            &s.admin_endpoint,
            "--token",
            &sk,
        ])
        .output()
        .map(|o| (o.status.success(), (), ()))
        .unwrap();
    assert!(!ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_matrix() {
    let s = Server::start();
    let (ak, sk) = s.tenant("chu", &[]);
    let (bk, bs) = s.tenant("labo", &[]);
    let admin = client_with(&s.endpoint, &ak, &sk);
    admin.create_bucket().bucket("imagerie").send().await.unwrap();
    put(&admin, "imagerie", "public/a.txt", b"a".to_vec()).await;
    put(&admin, "imagerie", "secret/b.txt", b"b".to_vec()).await;

    // A reader: Get and List, Deny on secret/ (explicit Deny wins over its own Allow).
    let reader = user_with_policy(
        &s,
        "chu",
        "reader",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::imagerie","arn:aws:s3:::imagerie/*"]},
            {"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::imagerie/secret/*"}]}"#,
    );
    assert_eq!(get_body(&reader, "imagerie", "public/a.txt").await, b"a");
    assert_eq!(
        refused!(reader.get_object().bucket("imagerie").key("secret/b.txt")),
        "AccessDenied"
    );
    reader.list_objects_v2().bucket("imagerie").send().await.unwrap();
    assert_eq!(
        refused!(reader
            .put_object()
            .bucket("imagerie")
            .key("x")
            .body(ByteStream::from_static(b"x"))),
        "AccessDenied"
    );
    // A user without any policy can do nothing, not even list its tenant's buckets.
    let nobody = user_with_policy(
        &s,
        "chu",
        "nobody",
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:GetBucketLocation","Resource":"arn:aws:s3:::other"}]}"#,
    );
    assert_eq!(refused!(nobody.list_buckets()), "AccessDenied");
    assert_eq!(refused!(nobody.list_objects_v2().bucket("imagerie")), "AccessDenied");
    assert_eq!(refused!(nobody.create_bucket().bucket("nobodys")), "AccessDenied");
    // A writer confined to its home prefix by a policy variable, and a listing condition.
    let writer = user_with_policy(
        &s,
        "chu",
        "jean",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject"],"Resource":"arn:aws:s3:::imagerie/home/${aws:username}/*"},
            {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::imagerie",
             "Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}}]}"#,
    );
    put(&writer, "imagerie", "home/jean/notes", b"n".to_vec()).await;
    assert_eq!(
        refused!(writer
            .put_object()
            .bucket("imagerie")
            .key("home/paul/x")
            .body(ByteStream::from_static(b"x"))),
        "AccessDenied"
    );
    writer
        .list_objects_v2()
        .bucket("imagerie")
        .prefix("home/jean/")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(writer.list_objects_v2().bucket("imagerie").prefix("secret/")),
        "AccessDenied"
    );
    assert_eq!(refused!(writer.list_objects_v2().bucket("imagerie")), "AccessDenied");

    // Bucket policy: source address and transport conditions, and a grant to another
    // tenant's user (which also needs its own tenant's Allow: its admin has it).
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"labo-reads","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::labo:root"]},
         "Action":"s3:GetObject","Resource":"arn:aws:s3:::imagerie/public/*",
         "Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"}}},
        {"Sid":"labo-never-from-afar","Effect":"Deny","Principal":{"AWS":"labo"},
         "Action":"s3:*","Resource":"arn:aws:s3:::imagerie/*",
         "Condition":{"NotIpAddress":{"aws:SourceIp":["127.0.0.0/8","::1/128"]}}}]}"#;
    admin
        .put_bucket_policy()
        .bucket("imagerie")
        .policy(policy)
        .send()
        .await
        .unwrap();
    let got = admin.get_bucket_policy().bucket("imagerie").send().await.unwrap();
    assert_eq!(got.policy(), Some(policy));
    let labo = client_with(&s.endpoint, &bk, &bs);
    assert_eq!(get_body(&labo, "imagerie", "public/a.txt").await, b"a");
    assert_eq!(
        refused!(labo.get_object().bucket("imagerie").key("secret/b.txt")),
        "AccessDenied"
    );
    // The same grant from an address outside 10.0.0.0/8 only: refused from here.
    admin
        .put_bucket_policy()
        .bucket("imagerie")
        .policy(policy.replace("127.0.0.0/8\"}}", "10.0.0.0/8\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(labo.get_object().bucket("imagerie").key("public/a.txt")),
        "AccessDenied"
    );
    // TLS required: this listener is plain HTTP, so even the owner's users are refused.
    admin
        .put_bucket_policy()
        .bucket("imagerie")
        .policy(
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*",
                "Resource":["arn:aws:s3:::imagerie","arn:aws:s3:::imagerie/*"],
                "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(reader.get_object().bucket("imagerie").key("public/a.txt")),
        "AccessDenied"
    );
    assert_eq!(refused!(admin.list_objects_v2().bucket("imagerie")), "AccessDenied");
    // …but the owner's admin can always mend the policy.
    admin.delete_bucket_policy().bucket("imagerie").send().await.unwrap();
    assert_eq!(
        refused!(admin.get_bucket_policy().bucket("imagerie")),
        "NoSuchBucketPolicy"
    );
    assert_eq!(get_body(&reader, "imagerie", "public/a.txt").await, b"a");
    // Malformed policies are refused, naming the fault.
    let e = admin
        .put_bucket_policy()
        .bucket("imagerie")
        .policy(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::elsewhere/*"}]}"#)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(code(&e), "MalformedPolicy");
    assert!(e.meta().message().unwrap_or("").contains("not in bucket 'imagerie'"));
    let (ok, _, err) = {
        let f = s.data.join("bad.json");
        std::fs::write(&f, r#"{"Statement":[{"Effect":"Allow","Action":"s3:Get*"}]}"#).unwrap();
        s.admin(&[
            "user",
            "policy",
            "--tenant",
            "chu",
            "reader",
            "p2",
            "--file",
            f.to_str().unwrap(),
        ])
    };
    assert!(!ok && err.contains("Resource or NotResource"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_access_only_where_a_bucket_policy_allows_it() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("publications").send().await.unwrap();
    c.create_bucket().bucket("interne").send().await.unwrap();
    put(&c, "publications", "rapport.pdf", b"rapport public".to_vec()).await;
    put(&c, "interne", "note.txt", b"interne".to_vec()).await;
    let addr = s.addr.clone();
    let get = |path: &str| raw_request(&addr, "GET", path, &[("host".into(), addr.clone())], b"");
    // Before any policy: anonymous requests are refused.
    let (status, _, body) = get("/publications/rapport.pdf");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("<Code>AccessDenied</Code>"));
    c.put_bucket_policy()
        .bucket("publications")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*",
                "Action":"s3:GetObject","Resource":"arn:aws:s3:::publications/*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let status = c
        .get_bucket_policy_status()
        .bucket("publications")
        .send()
        .await
        .unwrap();
    assert_eq!(status.policy_status().and_then(|p| p.is_public()), Some(true));
    let (status, _, body) = get("/publications/rapport.pdf");
    assert_eq!((status, body.as_str()), (200, "rapport public"));
    // Only what it grants: no listing, no write, nothing of the other bucket.
    assert_eq!(get("/publications").0, 403);
    assert_eq!(get("/interne/note.txt").0, 403);
    assert_eq!(get("/").0, 403);
    let (status, _, _) = raw_request(
        &addr,
        "PUT",
        "/publications/vandal",
        &[("host".into(), addr.clone())],
        b"x",
    );
    assert_eq!(status, 403);
    // A presigned URL of a private object keeps working.
    let url = c
        .get_object()
        .bucket("interne")
        .key("note.txt")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let target = url.uri().split_once(&addr).unwrap().1.to_string();
    let (status, _, body) = get(&target);
    assert_eq!((status, body.as_str()), (200, "interne"));

    // Canned ACLs: public-read on a bucket with ACLs enabled is the equivalent policy
    // (listing for everyone); under BucketOwnerEnforced (the default) it is refused.
    assert_eq!(
        refused!(c
            .create_bucket()
            .bucket("annuaire")
            .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)),
        "InvalidBucketAclWithObjectOwnership"
    );
    c.create_bucket()
        .bucket("annuaire")
        .acl(aws_sdk_s3::types::BucketCannedAcl::PublicRead)
        .object_ownership(aws_sdk_s3::types::ObjectOwnership::ObjectWriter)
        .send()
        .await
        .unwrap();
    put(&c, "annuaire", "liste.csv", b"a;b".to_vec()).await;
    let (status, _, body) = get("/annuaire?list-type=2");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Key>liste.csv</Key>"));
    assert_eq!(get("/annuaire/liste.csv").0, 403, "READ on a bucket lists it only");
    let acl = c.get_bucket_acl().bucket("annuaire").send().await.unwrap();
    let perms: Vec<_> = acl
        .grants()
        .iter()
        .filter_map(|g| g.permission().map(|p| p.as_str().to_string()))
        .collect();
    assert_eq!(perms, vec!["FULL_CONTROL", "READ"]);
    c.put_bucket_acl()
        .bucket("annuaire")
        .acl(aws_sdk_s3::types::BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    assert_eq!(get("/annuaire?list-type=2").0, 403);
    // Object ACLs granting others are refused, never ignored; private is accepted.
    assert_eq!(
        refused!(c
            .put_object()
            .bucket("interne")
            .key("x")
            .acl(aws_sdk_s3::types::ObjectCannedAcl::PublicRead)
            .body(ByteStream::from_static(b"x"))),
        "AccessControlListNotSupported"
    );
    c.put_object()
        .bucket("interne")
        .key("y")
        .acl(aws_sdk_s3::types::ObjectCannedAcl::Private)
        .body(ByteStream::from_static(b"y"))
        .send()
        .await
        .unwrap();
    let oacl = c.get_object_acl().bucket("interne").key("y").send().await.unwrap();
    assert_eq!(oacl.owner().and_then(|o| o.id()), Some("default"));
    assert_eq!(oacl.grants().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_expired_and_deleted_keys_are_refused() {
    let s = Server::start();
    let (ak, sk) = s.tenant("archives", &[]);
    let a = client_with(&s.endpoint, &ak, &sk);
    a.create_bucket().bucket("fonds").send().await.unwrap();
    let v = s.admin_json(&["key", "create", "--tenant", "archives", "--user", "admin"]);
    let (k2, s2) = (v["access_key"].as_str().unwrap(), v["secret_key"].as_str().unwrap());
    let second = client_with(&s.endpoint, k2, s2);
    second.list_objects_v2().bucket("fonds").send().await.unwrap();
    let (ok, _, _) = s.admin(&["key", "disable", "--tenant", "archives", k2]);
    assert!(ok);
    assert_eq!(refused!(second.list_objects_v2().bucket("fonds")), "InvalidAccessKeyId");
    // Another tenant cannot enable it.
    s.tenant("autre", &[]);
    let (ok, _, err) = s.admin(&["key", "enable", "--tenant", "autre", k2]);
    assert!(!ok && err.contains("not found"), "{err}");
    assert!(s.admin(&["key", "enable", "--tenant", "archives", k2]).0);
    second.list_objects_v2().bucket("fonds").send().await.unwrap();
    assert!(s.admin(&["key", "delete", "--tenant", "archives", k2]).0);
    assert_eq!(refused!(second.list_objects_v2().bucket("fonds")), "InvalidAccessKeyId");
    // A key with an expiry stops working once it has passed.
    let v = s.admin_json(&[
        "key",
        "create",
        "--tenant",
        "archives",
        "--user",
        "admin",
        "--expires-in-secs",
        "2",
    ]);
    let short = client_with(
        &s.endpoint,
        v["access_key"].as_str().unwrap(),
        v["secret_key"].as_str().unwrap(),
    );
    short.list_objects_v2().bucket("fonds").send().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(refused!(short.list_objects_v2().bucket("fonds")), "InvalidAccessKeyId");
    // A wrong secret is a signature mismatch; listing keys never shows secrets.
    let wrong = client_with(&s.endpoint, &ak, "not-the-secret");
    assert_eq!(refused!(wrong.list_buckets()), "SignatureDoesNotMatch");
    let (ok, out, _) = s.admin(&["key", "list", "--tenant", "archives", "--json"]);
    assert!(ok && out.contains(&ak) && !out.contains(&sk));
    // Secrets are never in clear at rest.
    let meta = std::fs::read_dir(s.data.join("meta")).unwrap();
    for f in meta.flatten() {
        let bytes = std::fs::read(f.path()).unwrap_or_default();
        assert!(
            !bytes.windows(sk.len()).any(|w| w == sk.as_bytes()),
            "{} holds a secret in clear",
            f.path().display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_writes_and_store_nothing() {
    let s = Server::start();
    let (ak, sk) = s.tenant("petite", &["--quota-bytes", "100000", "--quota-objects", "3"]);
    let c = client_with(&s.endpoint, &ak, &sk);
    c.create_bucket().bucket("quota").send().await.unwrap();
    put(&c, "quota", "a", data(60_000, 1)).await;
    let e = c
        .put_object()
        .bucket("quota")
        .key("b")
        .body(ByteStream::from(data(60_000, 2)))
        .send()
        .await
        .unwrap_err();
    let raw = e.raw_response().map(|r| r.status().as_u16());
    let e = e.into_service_error();
    assert_eq!((code(&e), raw), ("QuotaExceeded".to_string(), Some(403)));
    assert!(e.meta().message().unwrap_or("").contains("tenant 'petite'"));
    assert_eq!(refused_status!(c.head_object().bucket("quota").key("b")), 404);
    // A part counts its bytes before it is stored.
    let up = c
        .create_multipart_upload()
        .bucket("quota")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    assert_eq!(
        refused!(c
            .upload_part()
            .bucket("quota")
            .key("mp")
            .upload_id(id)
            .part_number(1)
            .body(ByteStream::from(data(50_000, 3)))),
        "QuotaExceeded"
    );
    let p1 = c
        .upload_part()
        .bucket("quota")
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(ByteStream::from(data(20_000, 3)))
        .send()
        .await
        .unwrap();
    // Two more objects: three in all, the object quota.
    put(&c, "quota", "b", data(10_000, 4)).await;
    put(&c, "quota", "c", data(10, 5)).await;
    assert_eq!(
        refused!(c
            .put_object()
            .bucket("quota")
            .key("d")
            .body(ByteStream::from_static(b"d"))),
        "QuotaExceeded"
    );
    // The upload would make a fourth object: refused at Complete, nothing visible.
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p1.e_tag().unwrap())
                .build(),
        )
        .build();
    assert_eq!(
        refused!(c
            .complete_multipart_upload()
            .bucket("quota")
            .key("mp")
            .upload_id(id)
            .multipart_upload(done)),
        "QuotaExceeded"
    );
    assert_eq!(refused_status!(c.head_object().bucket("quota").key("mp")), 404);
    // Overwriting with less, and deleting, always work.
    put(&c, "quota", "a", data(100, 6)).await;
    c.delete_object().bucket("quota").key("c").send().await.unwrap();
    put(&c, "quota", "d", b"d".to_vec()).await;
    let show = s.admin_json(&["tenant", "show", "petite"]);
    assert_eq!(show["usage"]["objects"], 3);
    assert_eq!(show["usage"]["bytes"], 100 + 10_000 + 1);
    assert_eq!(show["quota_bytes"], 100_000);
    // A bucket quota, on the root's bucket.
    let root = s.client();
    root.create_bucket().bucket("limitee").send().await.unwrap();
    let (ok, out, err) = s.admin(&["bucket", "quota", "limitee", "--objects", "1"]);
    assert!(ok, "{err}{out}");
    put(&root, "limitee", "1", b"1".to_vec()).await;
    assert_eq!(
        refused!(root
            .put_object()
            .bucket("limitee")
            .key("2")
            .body(ByteStream::from_static(b"2"))),
        "QuotaExceeded"
    );
}

// ---- STS: a local OIDC issuer whose keys the test makes ----

fn b64url(d: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
}

struct Issuer {
    pair: ring::signature::EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
}

impl Issuer {
    fn new() -> Issuer {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        Issuer {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap(),
            rng,
        }
    }

    fn jwks(&self) -> String {
        use ring::signature::KeyPair;
        let p = self.pair.public_key().as_ref();
        serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "test", "use": "sig", "alg": "ES256",
            "x": b64url(&p[1..33]), "y": b64url(&p[33..65])}]})
        .to_string()
    }

    fn token(&self, claims: serde_json::Value) -> String {
        let h = b64url(br#"{"alg":"ES256","kid":"test","typ":"JWT"}"#);
        let p = b64url(claims.to_string().as_bytes());
        let sig = self.pair.sign(&self.rng, format!("{h}.{p}").as_bytes()).unwrap();
        format!("{h}.{p}.{}", b64url(sig.as_ref()))
    }
}

/// `AssumeRoleWithWebIdentity` (unsigned, as clients send it): (status, body).
fn assume(s: &Server, role: &str, token: &str) -> (u16, String) {
    let enc = |v: &str| percent_encode(v);
    let form = format!(
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={}&RoleSessionName=jean&WebIdentityToken={}",
        enc(role),
        enc(token)
    );
    let (status, _, body) = raw_request(
        &s.addr,
        "POST",
        "/",
        &[
            ("host".into(), s.addr.clone()),
            ("content-type".into(), "application/x-www-form-urlencoded".into()),
        ],
        form.as_bytes(),
    );
    (status, body)
}

fn percent_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn between<'a>(body: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let start = body
        .find(&open)
        .map(|i| i + open.len())
        .unwrap_or_else(|| panic!("no {tag} in {body}"));
    &body[start..start + body[start..].find("</").unwrap()]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_web_identity_from_a_local_issuer() {
    let s = Server::start();
    let (ak, sk) = s.tenant("prefecture", &[]);
    let admin = client_with(&s.endpoint, &ak, &sk);
    admin.create_bucket().bucket("actes").send().await.unwrap();
    put(&admin, "actes", "arrete.pdf", b"arrete".to_vec()).await;
    let issuer = Issuer::new();
    let jwks = s.data.join("jwks.json");
    std::fs::write(&jwks, issuer.jwks()).unwrap();
    let (ok, _, err) = s.admin(&[
        "tenant",
        "oidc",
        "prefecture",
        "--issuer",
        "https://idp.example/realms/etat",
        "--audience",
        "coffre",
        "--jwks-file",
        jwks.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let policy = s.data.join("readers.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],
            "Resource":["arn:aws:s3:::actes","arn:aws:s3:::actes/*"]}]}"#,
    )
    .unwrap();
    let (ok, out, err) = s.admin(&[
        "role",
        "put",
        "--tenant",
        "prefecture",
        "lecteurs",
        "--policy-file",
        policy.to_str().unwrap(),
        "--claim",
        "groups=agents-*",
    ]);
    assert!(
        ok && out.contains("arn:aws:iam::prefecture:role/lecteurs"),
        "{err}{out}"
    );
    let role = "arn:aws:iam::prefecture:role/lecteurs";
    let now = now() as i64;
    let claims = |exp: i64, aud: &str, groups: &str| {
        serde_json::json!({"iss": "https://idp.example/realms/etat", "aud": aud, "sub": "jean.dupont",
            "exp": exp, "iat": now, "groups": [groups]})
    };
    let (status, body) = assume(&s, role, &issuer.token(claims(now + 600, "coffre", "agents-ddt")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(between(&body, "SubjectFromWebIdentityToken"), "jean.dupont");
    let (tak, tsk, tok) = (
        between(&body, "AccessKeyId").to_string(),
        between(&body, "SecretAccessKey").to_string(),
        between(&body, "SessionToken").to_string(),
    );
    assert!(tak.starts_with("ASIA"));
    let temp = aws_sdk_s3::Client::from_conf(
        client_builder(&s.endpoint, &tak, &tsk)
            .credentials_provider(aws_credential_types::Credentials::new(
                &tak,
                &tsk,
                Some(tok.clone()),
                None,
                "sts",
            ))
            .build(),
    );
    assert_eq!(get_body(&temp, "actes", "arrete.pdf").await, b"arrete");
    assert_eq!(
        refused!(temp
            .put_object()
            .bucket("actes")
            .key("x")
            .body(ByteStream::from_static(b"x"))),
        "AccessDenied"
    );
    // The session token is checked on every request: altered, or another key's, refused.
    let mut bad = tok.clone();
    bad.push('A');
    let forged = aws_sdk_s3::Client::from_conf(
        client_builder(&s.endpoint, &tak, &tsk)
            .credentials_provider(aws_credential_types::Credentials::new(
                &tak,
                &tsk,
                Some(bad),
                None,
                "sts",
            ))
            .build(),
    );
    assert_eq!(refused!(forged.list_objects_v2().bucket("actes")), "InvalidToken");
    // Expired token, wrong audience, tampered signature, a group the role does not take.
    let (status, body) = assume(&s, role, &issuer.token(claims(now - 3600, "coffre", "agents-ddt")));
    assert_eq!(status, 400);
    assert!(body.contains("<Code>ExpiredTokenException</Code>"), "{body}");
    let (status, body) = assume(&s, role, &issuer.token(claims(now + 600, "autre-app", "agents-ddt")));
    assert_eq!(status, 400);
    assert!(
        body.contains("<Code>InvalidIdentityToken</Code>") && body.contains("audience"),
        "{body}"
    );
    let good = issuer.token(claims(now + 600, "coffre", "agents-ddt"));
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    parts[1] = b64url(claims(now + 600, "coffre", "agents-admin").to_string().as_bytes());
    let (status, body) = assume(&s, role, &parts.join("."));
    assert_eq!(status, 400);
    assert!(body.contains("<Code>InvalidIdentityToken</Code>"), "{body}");
    let (status, body) = assume(
        &s,
        role,
        &Issuer::new().token(claims(now + 600, "coffre", "agents-ddt")),
    );
    assert_eq!(status, 400, "another issuer's key: {body}");
    let (status, body) = assume(&s, role, &issuer.token(claims(now + 600, "coffre", "public")));
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    // A role of another tenant, whose issuer is not this one: refused, the token being
    // checked first (no issuer of that tenant trusts it).
    s.tenant("ailleurs", &[]);
    let (status, body) = assume(&s, "arn:aws:iam::ailleurs:role/lecteurs", &good);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>InvalidIdentityToken</Code>"), "{body}");
    // Which roles exist is not told to a caller without a valid token: a forged token gets
    // the same answer for a role that exists and for one that does not.
    let forged_token = parts.join(".");
    let existing = assume(&s, role, &forged_token);
    let missing = assume(&s, "arn:aws:iam::prefecture:role/inexistant", &forged_token);
    let code_of = |b: &str| between(b, "Code").to_string();
    assert_eq!((existing.0, code_of(&existing.1)), (missing.0, code_of(&missing.1)));
    // Deleting the role ends its sessions, and creating a role of the same name again does
    // not revive them (a session names its role's unique id).
    assert!(s.admin(&["role", "delete", "--tenant", "prefecture", "lecteurs"]).0);
    assert_eq!(refused!(temp.list_objects_v2().bucket("actes")), "InvalidToken");
    let (ok, _, err) = s.admin(&[
        "role",
        "put",
        "--tenant",
        "prefecture",
        "lecteurs",
        "--policy-file",
        policy.to_str().unwrap(),
        "--claim",
        "groups=agents-*",
    ]);
    assert!(ok, "{err}");
    assert_eq!(refused!(temp.list_objects_v2().bucket("actes")), "InvalidToken");
    let (status, body) = assume(&s, role, &good);
    assert_eq!(status, 200, "the new role has sessions of its own: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erased_tenant_data_cannot_be_decrypted() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Deleted data is kept for an hour: the shards stay on disk for this test to read.
    let mut s = Server::start_with(&data_dir, "127.0.0.1:0", &["--gc-grace-secs", "3600"]);
    let (ak, sk) = s.tenant("clinique", &[]);
    let c = client_with(&s.endpoint, &ak, &sk);
    c.create_bucket().bucket("dossiers-clinique").send().await.unwrap();
    let secret_text = b"DIAGNOSTIC CONFIDENTIEL ".repeat(4000);
    put(&c, "dossiers-clinique", "p/1", secret_text.clone()).await;
    let placement = s.admin_json(&["placement", "dossiers-clinique", "p/1"]);
    // Without --force, a tenant whose buckets hold objects is not erased.
    let (ok, _, err) = s.admin(&["tenant", "delete", "clinique", "--erase"]);
    assert!(!ok && err.contains("--force"), "{err}");
    let (ok, _, err) = s.admin(&["tenant", "delete", "clinique"]);
    assert!(!ok && err.contains("--erase"), "{err}");
    c.list_objects_v2().bucket("dossiers-clinique").send().await.unwrap();
    // The record of the object as it was: its wrapped data key (what an old copy of the
    // metadata would hold).
    s.kill();
    let (wrapped, version) = {
        let meta = coffre_meta::MetaStore::open(&data_dir.join("meta")).unwrap();
        let rec = meta.get_object("dossiers-clinique", b"p/1").unwrap().unwrap();
        (rec.parts[0].wrapped_key.clone(), rec.parts[0].version)
    };
    let mut s = Server::start_with(&data_dir, "127.0.0.1:0", &["--gc-grace-secs", "3600"]);
    let (ok, out, err) = s.admin(&["tenant", "delete", "clinique", "--erase", "--force"]);
    assert!(ok, "{err}");
    let cert: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(cert["certificate"]["tenant"], "clinique");
    assert_eq!(cert["certificate"]["objects"], 1);
    assert_eq!(cert["certificate"]["bytes"], secret_text.len());
    // The certificate verifies; altered, it does not.
    let file = dir.path().join("erasure.json");
    std::fs::write(&file, &out).unwrap();
    let (ok, msg, err) = s.admin(&["verify-certificate", file.to_str().unwrap()]);
    assert!(ok && msg.contains("certificate valid"), "{err}");
    let tampered = dir.path().join("tampered.json");
    std::fs::write(&tampered, out.replace("\"objects\": 1", "\"objects\": 0")).unwrap();
    let (ok, _, err) = s.admin(&["verify-certificate", tampered.to_str().unwrap()]);
    assert!(!ok && err.contains("NOT valid"), "{err}");
    // The tenant, its bucket and its keys are gone.
    let again = client_with(&s.endpoint, &ak, &sk);
    assert_eq!(refused!(again.list_buckets()), "InvalidAccessKeyId");
    let (ok, _, _) = s.admin(&["tenant", "show", "clinique"]);
    assert!(!ok);
    s.kill();

    // The shards are still on disk: read them back. Their bytes are ciphertext, and no key
    // left anywhere — not the master key, not any tenant's — opens the data key.
    let keys = coffre_crypto::Keyring::new(
        coffre_crypto::MasterKey::load_or_create(&data_dir.join("master.key")).unwrap(),
        vec![],
    );
    assert!(
        keys.unwrap(&wrapped, &version.0).is_err(),
        "the master key alone opens nothing"
    );
    let meta = coffre_meta::MetaStore::open(&data_dir.join("meta")).unwrap();
    for (name, t) in meta.list_tenants().unwrap() {
        let tk = keys.unwrap_tenant_key(&t.kek, &name).unwrap();
        assert!(tk.unwrap(&wrapped, &version.0).is_err(), "tenant {name}'s key opens it");
    }
    drop(meta);
    let mut read = 0;
    for shard in placement["shards"].as_array().unwrap() {
        let node = shard["node"].as_str().unwrap();
        let store = coffre_data::LocalShardStore::open(node, &data_dir.join("nodes").join(node)).unwrap();
        let id = coffre_types::ShardId {
            version,
            part: 0,
            stripe: shard["stripe"].as_u64().unwrap() as u32,
            index: shard["index"].as_u64().unwrap() as u8,
        };
        use coffre_data::ShardStore;
        if let Ok(bytes) = store.get(id).await {
            read += 1;
            assert_eq!(
                hex::encode(blake3::hash(&bytes).as_bytes()),
                shard["blake3"].as_str().unwrap()
            );
            assert!(!bytes.windows(24).any(|w| w == &secret_text[..24]), "plaintext on disk");
        }
    }
    assert!(read >= 4, "the shards were read back from disk ({read})");
}

/// A query-API call signed for `service` with a tenant's keys: (status, body).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iam_api_manages_a_tenants_own_users() {
    let s = Server::start();
    let (ak, sk) = s.tenant("mutuelle", &[]);
    let (bk, bs) = s.tenant("voisin", &[]);
    let me = (ak.as_str(), sk.as_str());
    let (status, body) = query_api(&s, "iam", me, "Action=CreateUser&Version=2010-05-08&UserName=compta");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<Arn>arn:aws:iam::mutuelle:user/compta</Arn>"), "{body}");
    let (status, body) = query_api(&s, "iam", me, "Action=CreateUser&UserName=compta");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("<Code>EntityAlreadyExists</Code>"));
    let (_, body) = query_api(&s, "iam", me, "Action=ListUsers");
    assert!(body.contains("<UserName>admin</UserName>") && body.contains("<UserName>compta</UserName>"));
    // A policy document with spaces, as forms encode them (`+`).
    let doc = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]}"#;
    let form = format!(
        "Action=PutUserPolicy&UserName=compta&PolicyName=list&PolicyDocument={}",
        percent_encode(doc).replace("%20", "+")
    );
    let (status, body) = query_api(&s, "iam", me, &form);
    assert_eq!(status, 200, "{body}");
    let (status, body) = query_api(&s, "iam", me, "Action=CreateAccessKey&UserName=compta");
    assert_eq!(status, 200, "{body}");
    let (ck, cs) = (
        between(&body, "AccessKeyId").to_string(),
        between(&body, "SecretAccessKey").to_string(),
    );
    client_with(&s.endpoint, &ck, &cs).list_buckets().send().await.unwrap();
    // The user manages nothing; the other tenant sees none of it.
    let (status, body) = query_api(&s, "iam", (&ck, &cs), "Action=CreateUser&UserName=x");
    assert_eq!(status, 403, "{body}");
    let (_, body) = query_api(&s, "iam", (&bk, &bs), "Action=ListUsers");
    assert!(!body.contains("compta"), "{body}");
    let (status, body) = query_api(&s, "iam", (&bk, &bs), "Action=DeleteUser&UserName=compta");
    assert_eq!(status, 404, "{body}");
    let (_, body) = query_api(&s, "sts", (&ck, &cs), "Action=GetCallerIdentity&Version=2011-06-15");
    assert!(body.contains("<Arn>arn:aws:iam::mutuelle:user/compta</Arn>"), "{body}");
    // Signed for another service than the action's, or with a wrong secret: refused.
    let (status, body) = query_api(&s, "s3", me, "Action=ListUsers");
    assert_eq!(status, 400, "{body}");
    let (status, body) = query_api(&s, "iam", (&ak, "wrong"), "Action=ListUsers");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let (status, body) = query_api(&s, "iam", me, "Action=AttachRolePolicy");
    assert_eq!(status, 400);
    assert!(body.contains("InvalidAction"), "{body}");
}

/// A tiny HTTPS server answering every request with `body` (an issuer's JWKS endpoint), its
/// certificate (for `localhost`) written to `ca_file` for the gateway to trust; returns its
/// URL. It serves `count` requests, then ends.
fn serve_jwks(body: String, count: usize, ca_file: &std::path::Path) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use std::io::{Read, Write};
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(ca_file, made.cert.pem()).unwrap();
    let cert = CertificateDer::from(made.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = std::sync::Arc::new(
        rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "https://localhost:{}/realms/etat/protocol/openid-connect/certs",
        l.local_addr().unwrap().port()
    );
    std::thread::spawn(move || {
        for stream in l.incoming().take(count) {
            let Ok(mut tcp) = stream else { continue };
            let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
            let mut buf = [0u8; 4096];
            let _ = tls.read(&mut buf);
            let _ = write!(
                tls,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.flush();
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sts_fetches_the_issuers_keys_when_configured_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("issuer-ca.pem");
    let issuer = Issuer::new();
    let url = serve_jwks(issuer.jwks(), 1, &ca);
    let s = Server::start_with_env(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &[("SSL_CERT_FILE", ca.to_str().unwrap())],
    );
    s.tenant("region", &[]);
    // Keys that decide who gets credentials are fetched over HTTPS only.
    let (ok, _, err) = s.admin(&[
        "tenant",
        "oidc",
        "region",
        "--issuer",
        "https://idp.example/realms/etat",
        "--audience",
        "coffre",
        "--jwks-url",
        &url.replace("https://", "http://"),
    ]);
    assert!(!ok && err.contains("https"), "{err}");
    let (ok, _, err) = s.admin(&[
        "tenant",
        "oidc",
        "region",
        "--issuer",
        "https://idp.example/realms/etat",
        "--audience",
        "coffre",
        "--jwks-url",
        &url,
    ]);
    assert!(ok, "{err}");
    let policy = s.data.join("p.json");
    std::fs::write(
        &policy,
        r#"{"Statement":[{"Effect":"Allow","Action":"s3:ListAllMyBuckets","Resource":"*"}]}"#,
    )
    .unwrap();
    assert!(
        s.admin(&[
            "role",
            "put",
            "--tenant",
            "region",
            "agents",
            "--policy-file",
            policy.to_str().unwrap()
        ])
        .0
    );
    let now = now() as i64;
    let token = |sub: &str| {
        issuer.token(serde_json::json!({"iss": "https://idp.example/realms/etat", "aud": ["coffre"], "sub": sub, "exp": now + 300}))
    };
    // Fetched once, then kept: the second call needs no server (it served one request).
    for sub in ["a", "b"] {
        let (status, body) = assume(&s, "arn:aws:iam::region:role/agents", &token(sub));
        assert_eq!(status, 200, "{body}");
        assert_eq!(between(&body, "SubjectFromWebIdentityToken"), sub);
    }
    let tak = {
        let (_, body) = assume(&s, "arn:aws:iam::region:role/agents", &token("c"));
        (
            between(&body, "AccessKeyId").to_string(),
            between(&body, "SecretAccessKey").to_string(),
            between(&body, "SessionToken").to_string(),
        )
    };
    let temp = aws_sdk_s3::Client::from_conf(
        client_builder(&s.endpoint, &tak.0, &tak.1)
            .credentials_provider(aws_credential_types::Credentials::new(
                &tak.0,
                &tak.1,
                Some(tak.2),
                None,
                "sts",
            ))
            .build(),
    );
    temp.list_buckets().send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_conditions_and_what_missing_keys_reveal() {
    let s = Server::start();
    let (ak, sk) = s.tenant("musee", &[]);
    let (bk, bs) = s.tenant("visiteurs", &[]);
    let owner = client_with(&s.endpoint, &ak, &sk);
    let other = client_with(&s.endpoint, &bk, &bs);
    owner.create_bucket().bucket("collections").send().await.unwrap();
    owner
        .put_object()
        .bucket("collections")
        .key("public/tableau")
        .tagging("diffusion=publique")
        .body(ByteStream::from_static(b"tableau"))
        .send()
        .await
        .unwrap();
    owner
        .put_object()
        .bucket("collections")
        .key("public/reserve")
        .tagging("diffusion=interne")
        .body(ByteStream::from_static(b"reserve"))
        .send()
        .await
        .unwrap();
    // Reads by the object's tags; writes only with the tag they must carry; listing of
    // public/ only.
    owner
        .put_bucket_policy()
        .bucket("collections")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"visiteurs"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::collections/*",
             "Condition":{"StringEquals":{"s3:ExistingObjectTag/diffusion":"publique"}}},
            {"Effect":"Allow","Principal":{"AWS":"visiteurs"},"Action":["s3:PutObject","s3:PutObjectTagging"],"Resource":"arn:aws:s3:::collections/depot/*",
             "Condition":{"StringEquals":{"s3:RequestObjectTag/origine":"visiteur"}}},
            {"Effect":"Allow","Principal":{"AWS":"visiteurs"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::collections",
             "Condition":{"StringLike":{"s3:prefix":"public/*"}}}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&other, "collections", "public/tableau").await, b"tableau");
    assert_eq!(
        refused!(other.get_object().bucket("collections").key("public/reserve")),
        "AccessDenied"
    );
    other
        .put_object()
        .bucket("collections")
        .key("depot/carte")
        .tagging("origine=visiteur")
        .body(ByteStream::from_static(b"carte"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused!(other
            .put_object()
            .bucket("collections")
            .key("depot/carte2")
            .body(ByteStream::from_static(b"x"))),
        "AccessDenied"
    );
    // A key that does not exist: 404 to whoever may list where it would be, 403 to others.
    assert_eq!(
        refused_status!(owner.head_object().bucket("collections").key("nowhere")),
        404
    );
    assert_eq!(
        refused_status!(other.head_object().bucket("collections").key("public/nothing")),
        404
    );
    assert_eq!(
        refused_status!(other.head_object().bucket("collections").key("prive/nothing")),
        403
    );
    // NotPrincipal with Allow is refused (as AWS does).
    assert_eq!(
        refused!(owner.put_bucket_policy().bucket("collections").policy(
            r#"{"Statement":[{"Effect":"Allow","NotPrincipal":{"AWS":"visiteurs"},"Action":"s3:ListBucket","Resource":"arn:aws:s3:::collections"}]}"#
        )),
        "MalformedPolicy"
    );
}
