//! End-to-end, for browser and document applications: CORS (rules, preflight, headers on
//! actual and error responses, presigned URLs), checksums as S3 answers them (BadDigest,
//! CompleteMultipartUpload validated against its parts), GetObjectAttributes, default
//! encryption and SSE headers, ownership controls and the expected bucket owner.

mod common;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart, CorsConfiguration,
    CorsRule, ObjectAttributes, ObjectOwnership, OwnershipControls, OwnershipControlsRule, ServerSideEncryption,
    ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
};
use base64::Engine as _;
use common::*;
use std::time::Duration;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

fn b64(d: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(d)
}

fn sha256_raw(d: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, d).as_ref().to_vec()
}

/// `(status, header value)` of a raw request's response header.
fn header_of(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// An unauthenticated request with the given headers (what a browser's preflight is).
fn plain(s: &Server, method: &str, target: &str, extra: &[(&str, &str)]) -> (u16, String, String) {
    let mut h = vec![("host".to_string(), s.addr.clone())];
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    raw_request(&s.addr, method, target, &h, b"")
}

#[tokio::test]
async fn cors_rules_preflights_and_response_headers() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("docs").send().await.unwrap();
    let e = c.get_bucket_cors().bucket("docs").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchCORSConfiguration");
    // No rules: a preflight is refused, an actual response carries nothing.
    let (st, _, body) = plain(
        &s,
        "OPTIONS",
        "/docs/a.pdf",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
        ],
    );
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("<Code>AccessForbidden</Code>"), "{body}");

    let rules = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .id("app")
                .allowed_origins("https://app.example")
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("content-type")
                .allowed_headers("x-amz-*")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .unwrap(),
        )
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("*")
                .allowed_methods("GET")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    c.put_bucket_cors()
        .bucket("docs")
        .cors_configuration(rules)
        .send()
        .await
        .unwrap();
    let got = c.get_bucket_cors().bucket("docs").send().await.unwrap();
    let first = &got.cors_rules()[0];
    assert_eq!(first.id(), Some("app"));
    assert_eq!(first.allowed_methods(), ["GET", "PUT"]);
    assert_eq!(first.allowed_headers(), ["content-type", "x-amz-*"]);
    assert_eq!(first.expose_headers(), ["ETag"]);
    assert_eq!(first.max_age_seconds(), Some(600));
    assert_eq!(got.cors_rules()[1].allowed_origins(), ["*"]);

    // Preflight: the first matching rule answers.
    let (st, head, _) = plain(
        &s,
        "OPTIONS",
        "/docs/a.pdf",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "Content-Type, X-Amz-Meta-Author"),
        ],
    );
    assert_eq!(st, 200, "{head}");
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        header_of(&head, "access-control-allow-methods").as_deref(),
        Some("GET, PUT")
    );
    assert_eq!(
        header_of(&head, "access-control-allow-headers").as_deref(),
        Some("content-type, x-amz-meta-author")
    );
    assert_eq!(header_of(&head, "access-control-max-age").as_deref(), Some("600"));
    assert_eq!(
        header_of(&head, "access-control-expose-headers").as_deref(),
        Some("ETag")
    );
    assert!(header_of(&head, "vary").is_some_and(|v| v.contains("Origin")));
    // A header no rule allows, a method no rule allows, another origin asking to PUT: 403.
    for extra in [
        [
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "authorization-x"),
        ],
        [
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
            ("x-ignored", ""),
        ],
        [
            ("origin", "https://evil.example"),
            ("access-control-request-method", "PUT"),
            ("x-ignored", ""),
        ],
    ] {
        let (st, head, _) = plain(&s, "OPTIONS", "/docs/a.pdf", &extra);
        assert_eq!(st, 403, "{extra:?}");
        assert!(header_of(&head, "access-control-allow-origin").is_none());
    }
    // Any origin may GET, through the wildcard rule.
    let (st, head, _) = plain(
        &s,
        "OPTIONS",
        "/docs/a.pdf",
        &[
            ("origin", "https://other.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(st, 200);
    assert_eq!(header_of(&head, "access-control-allow-origin").as_deref(), Some("*"));
    // Not a CORS request: 400, as S3.
    assert_eq!(plain(&s, "OPTIONS", "/docs/a.pdf", &[]).0, 400);
    assert_eq!(
        plain(&s, "OPTIONS", "/docs/a.pdf", &[("origin", "https://app.example")]).0,
        400
    );
    assert_eq!(
        plain(
            &s,
            "OPTIONS",
            "/nobucket/a",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET")
            ]
        )
        .0,
        404
    );

    // Actual requests through presigned URLs, as a browser's fetch() sends them.
    put(&c, "docs", "a.pdf", b"%PDF-1.7".to_vec()).await;
    let presign = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let url = c
        .get_object()
        .bucket("docs")
        .key("a.pdf")
        .presigned(presign.clone())
        .await
        .unwrap();
    let target = url.uri().strip_prefix(&s.endpoint).unwrap().to_string();
    let (st, head, body) = plain(&s, "GET", &target, &[("origin", "https://app.example")]);
    assert_eq!((st, body.as_str()), (200, "%PDF-1.7"));
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    assert_eq!(
        header_of(&head, "access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(
        header_of(&head, "access-control-expose-headers").as_deref(),
        Some("ETag")
    );
    // An error response carries the grant too (the page can read the error).
    let missing = c
        .get_object()
        .bucket("docs")
        .key("missing.pdf")
        .presigned(presign.clone())
        .await
        .unwrap();
    let target = missing.uri().strip_prefix(&s.endpoint).unwrap().to_string();
    let (st, head, body) = plain(&s, "GET", &target, &[("origin", "https://app.example")]);
    assert_eq!(st, 404, "{body}");
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    // A presigned PUT from the page.
    let up = c
        .put_object()
        .bucket("docs")
        .key("b.txt")
        .presigned(presign)
        .await
        .unwrap();
    let target = up.uri().strip_prefix(&s.endpoint).unwrap().to_string();
    let h = vec![
        ("host".to_string(), s.addr.clone()),
        ("origin".to_string(), "https://app.example".to_string()),
    ];
    let (st, head, _) = raw_request(&s.addr, "PUT", &target, &h, b"from the browser");
    assert_eq!(st, 200, "{head}");
    assert!(header_of(&head, "access-control-allow-origin").is_some());
    assert_eq!(get_body(&c, "docs", "b.txt").await, b"from the browser");
    // Another origin: only the wildcard rule's grant (GET), no credentials.
    let (_, head, _) = plain(&s, "GET", "/docs/a.pdf", &[("origin", "https://other.example")]);
    assert_eq!(header_of(&head, "access-control-allow-origin").as_deref(), Some("*"));
    assert!(header_of(&head, "access-control-allow-credentials").is_none());
    let h = vec![
        ("host".to_string(), s.addr.clone()),
        ("origin".to_string(), "https://other.example".to_string()),
    ];
    let (_, head, _) = raw_request(&s.addr, "PUT", &target, &h, b"refused grant");
    assert!(header_of(&head, "access-control-allow-origin").is_none(), "{head}");

    // Rules are validated.
    let bad = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("*")
                .allowed_methods("PATCH")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let e = c
        .put_bucket_cors()
        .bucket("docs")
        .cors_configuration(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");

    c.delete_bucket_cors().bucket("docs").send().await.unwrap();
    let e = c.get_bucket_cors().bucket("docs").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchCORSConfiguration");
    let (st, _, _) = plain(
        &s,
        "OPTIONS",
        "/docs/a.pdf",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ],
    );
    assert_eq!(st, 403);
}

#[tokio::test]
async fn checksum_mismatches_are_bad_digest() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("sums").send().await.unwrap();
    let body = vec![b'A'; 1024];
    let good = b64(&sha256_raw(&body));
    let r = c
        .put_object()
        .bucket("sums")
        .key("k")
        .body(ByteStream::from(body.clone()))
        .checksum_sha256(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.checksum_sha256(), Some(good.as_str()));
    assert_eq!(r.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    for wrong in [b64(&sha256_raw(b"other")), "bad".to_string()] {
        let e = c
            .put_object()
            .bucket("sums")
            .key("k2")
            .body(ByteStream::from(body.clone()))
            .checksum_sha256(&wrong)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e.into_service_error()), "BadDigest", "{wrong}");
    }
    // Nothing was stored by the refused writes.
    let e = c.head_object().bucket("sums").key("k2").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
    // A malformed Content-MD5 is InvalidDigest, a wrong one BadDigest.
    let e = c
        .put_object()
        .bucket("sums")
        .key("k3")
        .body(ByteStream::from(body.clone()))
        .content_md5("not-md5")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidDigest");
    let e = c
        .put_object()
        .bucket("sums")
        .key("k3")
        .body(ByteStream::from(body.clone()))
        .content_md5(b64(&[0u8; 16]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BadDigest");
}

async fn upload_two_parts(
    c: &aws_sdk_s3::Client,
    key: &str,
    algorithm: ChecksumAlgorithm,
    kind: Option<ChecksumType>,
) -> (String, Vec<CompletedPart>, Vec<Vec<u8>>) {
    let up = c
        .create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .checksum_algorithm(algorithm.clone())
        .set_checksum_type(kind)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let bodies = vec![data(5 << 20, 1), data(1000, 2)];
    let mut parts = Vec::new();
    for (i, b) in bodies.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(algorithm.clone())
            .body(ByteStream::from(b.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .set_checksum_sha256(r.checksum_sha256().map(str::to_string))
                .set_checksum_crc32(r.checksum_crc32().map(str::to_string))
                .build(),
        );
    }
    (id, parts, bodies)
}

#[tokio::test]
async fn complete_checks_the_object_checksum_against_its_parts() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let (id, parts, bodies) = upload_two_parts(&c, "composite", ChecksumAlgorithm::Sha256, None).await;
    let mut raw = Vec::new();
    for b in &bodies {
        raw.extend(sha256_raw(b));
    }
    let composite = format!("{}-2", b64(&sha256_raw(&raw)));
    let complete = |checksum: Option<String>, parts: Vec<CompletedPart>| {
        c.complete_multipart_upload()
            .bucket("mpu")
            .key("composite")
            .upload_id(&id)
            .set_checksum_sha256(checksum)
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
    };
    // A wrong object checksum: BadDigest, and the upload is still there to complete.
    let e = complete(Some(b64(&sha256_raw(b"wrong"))), parts.clone())
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BadDigest");
    let e = c.head_object().bucket("mpu").key("composite").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(404));
    // A part checksum that is not the part's: InvalidPart.
    let mut forged = parts.clone();
    forged[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(parts[1].e_tag().unwrap())
        .checksum_sha256(b64(&sha256_raw(b"forged")))
        .build();
    let e = complete(Some(composite.clone()), forged).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidPart");
    // The checksum the parts make, as boto3's helpers send it: accepted and answered.
    let done = complete(Some(composite.clone()), parts.clone()).await.unwrap();
    assert_eq!(done.checksum_sha256(), Some(composite.as_str()));
    let h = c
        .head_object()
        .bucket("mpu")
        .key("composite")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_sha256(), Some(composite.as_str()));
    assert_eq!(h.checksum_type(), Some(&ChecksumType::Composite));
    // One part, with its own checksum.
    let p2 = c
        .get_object()
        .bucket("mpu")
        .key("composite")
        .part_number(2)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(p2.checksum_sha256(), Some(b64(&sha256_raw(&bodies[1])).as_str()));
    assert_eq!(p2.body.collect().await.unwrap().into_bytes().as_ref(), &bodies[1][..]);

    // FULL_OBJECT with CRC32: the header is the whole object's CRC; the type must be the upload's.
    let (id, parts, bodies) =
        upload_two_parts(&c, "full", ChecksumAlgorithm::Crc32, Some(ChecksumType::FullObject)).await;
    let whole: Vec<u8> = bodies.concat();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("full")
        .upload_id(&id)
        .checksum_type(ChecksumType::Composite)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.clone()))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("full")
        .upload_id(&id)
        .checksum_crc32(crc32_b64(&whole))
        .checksum_type(ChecksumType::FullObject)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    assert_eq!(done.checksum_crc32(), Some(crc32_b64(&whole).as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
}

#[tokio::test]
async fn object_attributes_without_reading_data() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("attrs").send().await.unwrap();
    let body = vec![b'A'; 1024];
    let sum = b64(&sha256_raw(&body));
    let r = c
        .put_object()
        .bucket("attrs")
        .key("one")
        .body(ByteStream::from(body))
        .checksum_sha256(&sum)
        .send()
        .await
        .unwrap();
    let all = [
        ObjectAttributes::Etag,
        ObjectAttributes::Checksum,
        ObjectAttributes::ObjectParts,
        ObjectAttributes::StorageClass,
        ObjectAttributes::ObjectSize,
    ];
    let a = c
        .get_object_attributes()
        .bucket("attrs")
        .key("one")
        .set_object_attributes(Some(all.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(Some(a.e_tag().unwrap()), r.e_tag().map(|e| e.trim_matches('"')));
    assert_eq!(a.object_size(), Some(1024));
    assert_eq!(a.storage_class().map(|s| s.as_str()), Some("STANDARD"));
    assert_eq!(a.checksum().and_then(|c| c.checksum_sha256()), Some(sum.as_str()));
    assert!(a.object_parts().is_none(), "a simple object has no parts");

    // A multipart object of 4 parts, paged 1 at a time after part 2.
    let up = c
        .create_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for n in 1..=4 {
        let r = c
            .upload_part()
            .bucket("attrs")
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(data(if n < 4 { 5 << 20 } else { 77 }, n as u8)))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(r.e_tag().unwrap())
                .build(),
        );
    }
    c.complete_multipart_upload()
        .bucket("attrs")
        .key("multi")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let a = c
        .get_object_attributes()
        .bucket("attrs")
        .key("multi")
        .set_object_attributes(Some(all.to_vec()))
        .max_parts(1)
        .part_number_marker("2")
        .send()
        .await
        .unwrap();
    assert_eq!(a.object_size(), Some(3 * (5 << 20) + 77));
    let p = a.object_parts().unwrap();
    assert_eq!(p.total_parts_count(), Some(4));
    assert_eq!(p.is_truncated(), Some(true));
    assert_eq!(p.next_part_number_marker(), Some("3"));
    assert_eq!(p.parts().len(), 1);
    assert_eq!(p.parts()[0].part_number(), Some(3));
    assert_eq!(p.parts()[0].size(), Some(5 << 20));
    let a = c
        .get_object_attributes()
        .bucket("attrs")
        .key("multi")
        .object_attributes(ObjectAttributes::ObjectParts)
        .part_number_marker("3")
        .send()
        .await
        .unwrap();
    let p = a.object_parts().unwrap();
    assert_eq!((p.is_truncated(), p.parts().len()), (Some(false), 1));
    assert_eq!(p.parts()[0].size(), Some(77));
    assert!(a.e_tag().is_none(), "only what was asked for");
    let e = c
        .get_object_attributes()
        .bucket("attrs")
        .key("nothing")
        .object_attributes(ObjectAttributes::Etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchKey");
}

#[tokio::test]
async fn encryption_ownership_and_expected_owner() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("enc").send().await.unwrap();
    // Default encryption: AES256 (SSE-S3), whether configured or not.
    let g = c.get_bucket_encryption().bucket("enc").send().await.unwrap();
    let rule = &g.server_side_encryption_configuration().unwrap().rules()[0];
    let algorithm = |r: &ServerSideEncryptionRule| {
        r.apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().clone())
    };
    assert_eq!(algorithm(rule), Some(ServerSideEncryption::Aes256));
    let cfg = |alg: ServerSideEncryption| {
        ServerSideEncryptionConfiguration::builder()
            .rules(
                ServerSideEncryptionRule::builder()
                    .apply_server_side_encryption_by_default(
                        ServerSideEncryptionByDefault::builder()
                            .sse_algorithm(alg)
                            .build()
                            .unwrap(),
                    )
                    .bucket_key_enabled(true)
                    .build(),
            )
            .build()
            .unwrap()
    };
    c.put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(cfg(ServerSideEncryption::Aes256))
        .send()
        .await
        .unwrap();
    let g = c.get_bucket_encryption().bucket("enc").send().await.unwrap();
    assert_eq!(
        g.server_side_encryption_configuration().unwrap().rules()[0].bucket_key_enabled(),
        Some(true)
    );
    let e = c
        .put_bucket_encryption()
        .bucket("enc")
        .server_side_encryption_configuration(cfg(ServerSideEncryption::AwsKms))
        .send()
        .await
        .unwrap_err();
    // aws:kms names a key of the tenant's (tests/sse_kms.rs): there is no AWS-managed one.
    assert_eq!(code(&e.into_service_error()), "InvalidArgument");
    c.delete_bucket_encryption().bucket("enc").send().await.unwrap();

    // SSE-S3 on a PUT is accepted and echoed, on PUT, HEAD and GET.
    let r = c
        .put_object()
        .bucket("enc")
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(ByteStream::from_static(b"secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    let h = c.head_object().bucket("enc").key("k").send().await.unwrap();
    assert_eq!(h.server_side_encryption(), Some(&ServerSideEncryption::Aes256));
    // Asking for SSE on a read is an error, as in S3.
    let signed = sign(
        &s.addr,
        "GET",
        "/enc/k",
        "",
        &[("x-amz-server-side-encryption", "AES256")],
        "UNSIGNED-PAYLOAD",
        now(),
    );
    let (st, _, body) = raw_request(&s.addr, "GET", "/enc/k", &signed.headers, b"");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
    let e = c
        .put_object()
        .bucket("enc")
        .key("kms")
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    // aws:kms without a key of the tenant's and no bucket default key.
    assert_eq!(code(&e.into_service_error()), "InvalidArgument");

    // Ownership: BucketOwnerEnforced by default; set, read back, deleted (then 404).
    let g = c.get_bucket_ownership_controls().bucket("enc").send().await.unwrap();
    let rule_of = |o: Option<&OwnershipControls>| o.map(|o| o.rules()[0].object_ownership().clone());
    assert_eq!(
        rule_of(g.ownership_controls()),
        Some(ObjectOwnership::BucketOwnerEnforced)
    );
    let controls = OwnershipControls::builder()
        .rules(
            OwnershipControlsRule::builder()
                .object_ownership(ObjectOwnership::ObjectWriter)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    c.put_bucket_ownership_controls()
        .bucket("enc")
        .ownership_controls(controls)
        .send()
        .await
        .unwrap();
    let g = c.get_bucket_ownership_controls().bucket("enc").send().await.unwrap();
    assert_eq!(rule_of(g.ownership_controls()), Some(ObjectOwnership::ObjectWriter));
    c.delete_bucket_ownership_controls().bucket("enc").send().await.unwrap();
    let e = c
        .get_bucket_ownership_controls()
        .bucket("enc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "OwnershipControlsNotFoundError");
    // Set at creation.
    c.create_bucket()
        .bucket("pref")
        .object_ownership(ObjectOwnership::BucketOwnerPreferred)
        .send()
        .await
        .unwrap();
    let g = c.get_bucket_ownership_controls().bucket("pref").send().await.unwrap();
    assert_eq!(
        rule_of(g.ownership_controls()),
        Some(ObjectOwnership::BucketOwnerPreferred)
    );

    // x-amz-expected-bucket-owner: the owner (the root key's tenant, `default`) passes,
    // anyone else is refused.
    c.head_bucket()
        .bucket("enc")
        .expected_bucket_owner("default")
        .send()
        .await
        .unwrap();
    let e = c
        .get_object()
        .bucket("enc")
        .key("k")
        .expected_bucket_owner("111122223333")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    let e = c
        .copy_object()
        .bucket("enc")
        .key("copy")
        .copy_source("enc/k")
        .expected_source_bucket_owner("111122223333")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");

    // A bucket deleted and created again starts without the old configuration.
    c.delete_bucket().bucket("pref").send().await.unwrap();
    c.create_bucket().bucket("pref").send().await.unwrap();
    let g = c.get_bucket_ownership_controls().bucket("pref").send().await.unwrap();
    assert_eq!(
        rule_of(g.ownership_controls()),
        Some(ObjectOwnership::BucketOwnerEnforced)
    );
}

#[tokio::test]
async fn post_object_form_uploads() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("forms").send().await.unwrap();
    let rules = CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("https://app.example")
                .allowed_methods("POST")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    c.put_bucket_cors()
        .bucket("forms")
        .cors_configuration(rules)
        .send()
        .await
        .unwrap();
    let policy = |exp: &str, max: u64| {
        format!(
            r#"{{"expiration": "{exp}", "conditions": [{{"bucket": "forms"}}, ["starts-with", "$key", "uploads/"],
            {{"success_action_status": "201"}}, ["starts-with", "$Content-Type", "text/"], ["content-length-range", 1, {max}],
            ["starts-with", "$x-amz-meta-author", ""], {{"x-amz-algorithm": "AWS4-HMAC-SHA256"}},
            ["starts-with", "$x-amz-credential", ""], ["starts-with", "$x-amz-date", ""],
            ["starts-with", "$x-amz-checksum-sha256", ""]]}}"#
        )
    };
    let file = b"hello from a form".to_vec();
    let fields = |policy_json: &str, sum: &str| {
        let mut f: Vec<(&str, String)> = vec![
            ("key", "uploads/${filename}".to_string()),
            ("success_action_status", "201".to_string()),
            ("Content-Type", "text/plain".to_string()),
            ("x-amz-meta-author", "ana".to_string()),
            ("x-amz-checksum-sha256", sum.to_string()),
        ];
        f.extend(signed_fields(policy_json));
        f
    };
    let good_sum = b64(&sha256_raw(&file));
    let (ct, body) = form_body(&fields(&policy(&expiration(600), 1000), &good_sum), "note.txt", &file);
    let (st, head, xml) = post_form(&s, "forms", &ct, &body);
    assert_eq!(st, 201, "{head}\n{xml}");
    assert!(xml.contains("<Key>uploads/note.txt</Key>"), "{xml}");
    assert!(header_of(&head, "etag").is_some());
    assert_eq!(
        header_of(&head, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    let o = c
        .get_object()
        .bucket("forms")
        .key("uploads/note.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(o.content_type(), Some("text/plain"));
    assert_eq!(
        o.metadata().and_then(|m| m.get("author")).map(String::as_str),
        Some("ana")
    );
    assert_eq!(o.body.collect().await.unwrap().into_bytes().as_ref(), &file[..]);

    // Refusals: nothing stored by any of them.
    let refused = |fields: Vec<(&str, String)>, file: &[u8], name: &str| {
        let (ct, body) = form_body(&fields, name, file);
        post_form(&s, "forms", &ct, &body)
    };
    // Larger than the policy's content-length-range.
    let (st, _, xml) = refused(fields(&policy(&expiration(600), 5), &good_sum), &file, "big.txt");
    assert_eq!(st, 400, "{xml}");
    assert!(xml.contains("<Code>EntityTooLarge</Code>"), "{xml}");
    // A checksum that is not the file's.
    let (st, _, xml) = refused(
        fields(&policy(&expiration(600), 1000), &b64(&sha256_raw(b"x"))),
        &file,
        "sum.txt",
    );
    assert_eq!(st, 400);
    assert!(xml.contains("<Code>BadDigest</Code>"), "{xml}");
    // Expired.
    let (st, _, xml) = refused(fields(&policy(&expiration(-60), 1000), &good_sum), &file, "late.txt");
    assert_eq!(st, 403);
    assert!(xml.contains("Policy expired"), "{xml}");
    // A field the policy does not allow.
    let mut f = fields(&policy(&expiration(600), 1000), &good_sum);
    f.push(("x-amz-meta-extra", "1".to_string()));
    let (st, _, xml) = refused(f, &file, "extra.txt");
    assert_eq!(st, 403);
    assert!(xml.contains("Extra input fields: x-amz-meta-extra"), "{xml}");
    // A key outside the allowed prefix.
    let mut f = fields(&policy(&expiration(600), 1000), &good_sum);
    f[0].1 = "elsewhere/${filename}".to_string();
    let (st, _, xml) = refused(f, &file, "out.txt");
    assert_eq!(st, 403);
    assert!(xml.contains("Policy Condition failed"), "{xml}");
    // A policy changed after signing.
    let mut f = fields(&policy(&expiration(600), 1000), &good_sum);
    let forged = b64(policy(&expiration(600), 1 << 30).as_bytes());
    for (k, v) in f.iter_mut() {
        if *k == "policy" {
            *v = forged.clone();
        }
    }
    let (st, _, xml) = refused(f, &file, "forged.txt");
    assert_eq!(st, 403);
    assert!(xml.contains("<Code>SignatureDoesNotMatch</Code>"), "{xml}");
    // Unsigned: anonymous, refused.
    let (st, _, xml) = refused(vec![("key", "uploads/anon.txt".to_string())], &file, "anon.txt");
    assert_eq!(st, 403);
    assert!(xml.contains("<Code>AccessDenied</Code>"), "{xml}");
    let listed = c.list_objects_v2().bucket("forms").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1), "refused forms store nothing");

    // The older HMAC-SHA1 form signature, and a redirect on success.
    let doc = format!(
        r#"{{"expiration": "{}", "conditions": [{{"bucket": "forms"}}, {{"key": "v2.txt"}}, ["starts-with", "$success_action_redirect", "https://app.example/"]]}}"#,
        expiration(600)
    );
    let policy_b64 = b64(doc.as_bytes());
    let sig = b64(ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET.as_bytes()),
        policy_b64.as_bytes(),
    )
    .as_ref());
    let (ct, body) = form_body(
        &[
            ("key", "v2.txt".to_string()),
            ("AWSAccessKeyId", ACCESS.to_string()),
            ("policy", policy_b64),
            ("signature", sig),
            ("success_action_redirect", "https://app.example/done".to_string()),
        ],
        "v2.txt",
        b"v2",
    );
    let (st, head, _) = post_form(&s, "forms", &ct, &body);
    assert_eq!(st, 303, "{head}");
    let location = header_of(&head, "location").unwrap();
    assert!(
        location.starts_with("https://app.example/done?bucket=forms&key=v2.txt&etag="),
        "{location}"
    );
    assert_eq!(get_body(&c, "forms", "v2.txt").await, b"v2");
}

/// (key, MD5) as the SSE-C headers carry them.
fn sse_c(seed: u8) -> (String, String) {
    let key = [seed; 32];
    let md5: [u8; 16] = {
        use md5::Digest;
        md5::Md5::digest(key).into()
    };
    (b64(&key), b64(&md5))
}

/// GET of a whole SSE-C object with its key (key, MD5), its bytes.
async fn get_with_key(c: &aws_sdk_s3::Client, bucket: &str, key: &str, (k, m): (&str, &str)) -> Vec<u8> {
    let o = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(k)
        .sse_customer_key_md5(m)
        .send()
        .await
        .unwrap();
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

#[tokio::test]
async fn sse_c_objects_need_their_key() {
    // Over plain HTTP, only when the operator allows it.
    let strict = Server::start();
    let c = strict.client();
    c.create_bucket().bucket("keys").send().await.unwrap();
    let (ka, ma) = sse_c(1);
    let e = c
        .put_object()
        .bucket("keys")
        .key("k")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&ma)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    drop(strict);

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut s = Server::start_with(&data_dir, "127.0.0.1:0", &["--allow-sse-c-over-http"]);
    let c = s.client();
    c.create_bucket().bucket("keys").send().await.unwrap();
    let (kb, mb) = sse_c(2);
    let body = data(300_000, 9);
    let r = c
        .put_object()
        .bucket("keys")
        .key("doc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&ma)
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.sse_customer_key_md5(), Some(ma.as_str()));
    assert_ne!(
        r.e_tag().unwrap().trim_matches('"'),
        md5_hex(&body),
        "an SSE-C ETag is not the MD5"
    );
    // A wrong MD5 of the key, no key, another key.
    let e = c
        .get_object()
        .bucket("keys")
        .key("doc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&mb)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidArgument");
    let e = c.get_object().bucket("keys").key("doc").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    let e = c.head_object().bucket("keys").key("doc").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    let e = c
        .get_object()
        .bucket("keys")
        .key("doc")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&kb)
        .sse_customer_key_md5(&mb)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    // The right key: whole, a range, HEAD, attributes.
    let get = |range: Option<&str>| {
        c.get_object()
            .bucket("keys")
            .key("doc")
            .set_range(range.map(str::to_string))
            .sse_customer_algorithm("AES256")
            .sse_customer_key(&ka)
            .sse_customer_key_md5(&ma)
            .send()
    };
    let o = get(None).await.unwrap();
    assert_eq!(o.sse_customer_key_md5(), Some(ma.as_str()));
    assert_eq!(o.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);
    let o = get(Some("bytes=100000-100009")).await.unwrap();
    assert_eq!(
        o.body.collect().await.unwrap().into_bytes().as_ref(),
        &body[100_000..100_010]
    );
    let e = c
        .get_object_attributes()
        .bucket("keys")
        .key("doc")
        .object_attributes(ObjectAttributes::ObjectSize)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
    let a = c
        .get_object_attributes()
        .bucket("keys")
        .key("doc")
        .object_attributes(ObjectAttributes::ObjectSize)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&ma)
        .send()
        .await
        .unwrap();
    assert_eq!(a.object_size(), Some(300_000));
    // A plain object takes no key.
    put(&c, "keys", "plain", b"plain".to_vec()).await;
    let e = c
        .get_object()
        .bucket("keys")
        .key("plain")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&ma)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");

    // Copy: source key A, target key B; and to a plain copy.
    c.copy_object()
        .bucket("keys")
        .key("doc-b")
        .copy_source("keys/doc")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&ka)
        .copy_source_sse_customer_key_md5(&ma)
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&kb)
        .sse_customer_key_md5(&mb)
        .send()
        .await
        .unwrap();
    let e = c
        .copy_object()
        .bucket("keys")
        .key("stolen")
        .copy_source("keys/doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    c.copy_object()
        .bucket("keys")
        .key("doc-plain")
        .copy_source("keys/doc")
        .copy_source_sse_customer_algorithm("AES256")
        .copy_source_sse_customer_key(&ka)
        .copy_source_sse_customer_key_md5(&ma)
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "keys", "doc-plain").await, body);
    assert_eq!(get_with_key(&c, "keys", "doc-b", (&kb, &mb)).await, &body[..]);

    // Multipart: every part with the upload's key.
    let up = c
        .create_multipart_upload()
        .bucket("keys")
        .key("mp")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ka)
        .sse_customer_key_md5(&ma)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let part = |n: i32, key: Option<(&str, &str)>, bytes: Vec<u8>| {
        let mut b = c
            .upload_part()
            .bucket("keys")
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(bytes));
        if let Some((k, m)) = key {
            b = b
                .sse_customer_algorithm("AES256")
                .sse_customer_key(k)
                .sse_customer_key_md5(m);
        }
        b.send()
    };
    let e = part(1, Some((&kb, &mb)), vec![1; 10]).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "AccessDenied");
    let e = part(1, None, vec![1; 10]).await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    let (p1, p2) = (data(5 << 20, 3), data(1000, 4));
    let r1 = part(1, Some((&ka, &ma)), p1.clone()).await.unwrap();
    let r2 = part(2, Some((&ka, &ma)), p2.clone()).await.unwrap();
    let parts = vec![
        CompletedPart::builder()
            .part_number(1)
            .e_tag(r1.e_tag().unwrap())
            .build(),
        CompletedPart::builder()
            .part_number(2)
            .e_tag(r2.e_tag().unwrap())
            .build(),
    ];
    c.complete_multipart_upload()
        .bucket("keys")
        .key("mp")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    let e = c.get_object().bucket("keys").key("mp").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    assert_eq!(get_with_key(&c, "keys", "mp", (&ka, &ma)).await, &[p1, p2].concat()[..]);

    // The key is never stored: no file under the data directory holds it.
    s.kill();
    let needle = [1u8; 32];
    let mut stack = vec![data_dir.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                assert!(
                    !bytes.windows(32).any(|w| w == needle),
                    "{} holds the customer key",
                    p.display()
                );
            }
        }
    }
    // After a restart, still only with the key.
    let s = Server::start_with(&data_dir, "127.0.0.1:0", &["--allow-sse-c-over-http"]);
    let c = s.client();
    let e = c.get_object().bucket("keys").key("doc").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    assert_eq!(get_with_key(&c, "keys", "doc", (&ka, &ma)).await, &body[..]);
}
