//! End-to-end: the real `coffre server` driven by the official AWS SDK for Rust (default
//! settings: CRC32 checksums in aws-chunked trailers) and by hand-signed requests.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, CreateBucketConfiguration, Delete, ObjectIdentifier, Tag, Tagging};
use common::*;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

#[tokio::test]
async fn buckets_lifecycle() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("alpha").send().await.unwrap();
    let cfg = CreateBucketConfiguration::builder()
        .location_constraint("fr-par".into())
        .build();
    c.create_bucket()
        .bucket("beta")
        .create_bucket_configuration(cfg)
        .send()
        .await
        .unwrap();
    let e = c.create_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BucketAlreadyOwnedByYou");
    let e = c.create_bucket().bucket("Bad_Name").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidBucketName");
    let cfg = CreateBucketConfiguration::builder()
        .location_constraint("us-west-2".into())
        .build();
    let e = c
        .create_bucket()
        .bucket("gamma")
        .create_bucket_configuration(cfg)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidLocationConstraint");

    let names: Vec<String> = c
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(String::from))
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    c.head_bucket().bucket("alpha").send().await.unwrap();
    assert!(c.head_bucket().bucket("nope").send().await.is_err());
    let loc = c.get_bucket_location().bucket("alpha").send().await.unwrap();
    assert_eq!(loc.location_constraint().map(|l| l.as_str()), Some("fr-par"));

    c.put_object()
        .bucket("alpha")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    let e = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BucketNotEmpty");
    c.delete_object().bucket("alpha").key("k").send().await.unwrap();
    c.delete_bucket().bucket("alpha").send().await.unwrap();
    let e = c.delete_bucket().bucket("alpha").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchBucket");
    let e = c.get_object().bucket("alpha").key("k").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchBucket");
}

#[tokio::test]
async fn objects_roundtrip_many_sizes() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let stripe = 4 << 20;
    for (i, len) in [
        0usize,
        1,
        65_535,
        65_536,
        65_537,
        stripe - 1,
        stripe,
        stripe + 1,
        3 * stripe + 12_345,
    ]
    .into_iter()
    .enumerate()
    {
        let d = data(len, i as u8);
        let key = format!("obj/{len}");
        let put = c
            .put_object()
            .bucket("bkt")
            .key(&key)
            .body(ByteStream::from(d.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            put.e_tag(),
            Some(format!("\"{}\"", md5_hex(&d)).as_str()),
            "etag of {len}"
        );
        let got = c.get_object().bucket("bkt").key(&key).send().await.unwrap();
        assert_eq!(got.content_length(), Some(len as i64));
        assert_eq!(got.e_tag(), Some(format!("\"{}\"", md5_hex(&d)).as_str()));
        let bytes = got.body.collect().await.unwrap().into_bytes();
        assert!(bytes[..] == d[..], "content of {len}");
    }
    // Overwrite replaces.
    c.put_object()
        .bucket("bkt")
        .key("obj/1")
        .body(ByteStream::from_static(b"new"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "bkt", "obj/1").await, b"new");
    // Missing key.
    let e = c.get_object().bucket("bkt").key("missing").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchKey");
    let e = c.head_object().bucket("bkt").key("missing").send().await.unwrap_err();
    assert!(e.into_service_error().is_not_found());
    // Unicode and odd keys are opaque.
    for key in ["été/ñ 空 +%&=?#", "a//b", "../../etc/passwd", " lead"] {
        c.put_object()
            .bucket("bkt")
            .key(key)
            .body(ByteStream::from_static(b"k"))
            .send()
            .await
            .unwrap();
        assert_eq!(get_body(&c, "bkt", key).await, b"k", "{key}");
    }
    // Delete is idempotent.
    c.delete_object().bucket("bkt").key("obj/1").send().await.unwrap();
    c.delete_object().bucket("bkt").key("obj/1").send().await.unwrap();
    assert!(c.get_object().bucket("bkt").key("obj/1").send().await.is_err());
}

#[tokio::test]
async fn ranges_and_conditions() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let d = data(9 << 20, 7);
    c.put_object()
        .bucket("bkt")
        .key("big")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    for (range, lo, hi) in [
        ("bytes=0-9", 0, 10),
        ("bytes=4194300-4194400", 4_194_300, 4_194_401),
        ("bytes=9000000-", 9_000_000, d.len()),
        ("bytes=-100", d.len() - 100, d.len()),
        ("bytes=65530-65545", 65_530, 65_546),
    ] {
        let r = c
            .get_object()
            .bucket("bkt")
            .key("big")
            .range(range)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.content_range(),
            Some(format!("bytes {}-{}/{}", lo, hi - 1, d.len()).as_str())
        );
        let got = r.body.collect().await.unwrap().into_bytes();
        assert!(got[..] == d[lo..hi], "{range}");
    }
    let e = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .range("bytes=99999999-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRange");

    let etag = format!("\"{}\"", md5_hex(&d));
    c.get_object()
        .bucket("bkt")
        .key("big")
        .if_match(&etag)
        .range("bytes=0-0")
        .send()
        .await
        .unwrap();
    let e = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .if_match("\"nope\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    let e = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(304));
    // A 304 names the version it stands for.
    assert_eq!(
        e.raw_response().and_then(|r| r.headers().get("etag")),
        Some(etag.as_str())
    );
    let future = aws_sdk_s3::primitives::DateTime::from_secs(now() as i64 + 3600);
    let e = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .if_modified_since(future)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(304));
    let past = aws_sdk_s3::primitives::DateTime::from_secs(1_000_000);
    let e = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .if_unmodified_since(past)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    // partNumber=1 of a simple object is the object.
    let r = c
        .head_object()
        .bucket("bkt")
        .key("big")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_length(), Some(d.len() as i64));
    // Response overrides.
    let r = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .range("bytes=0-0")
        .response_content_type("text/x-test")
        .response_content_disposition("attachment")
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_type(), Some("text/x-test"));
    assert_eq!(r.content_disposition(), Some("attachment"));
}

#[tokio::test]
async fn metadata_checksums_and_tags() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let d = data(100_000, 3);
    let put = c
        .put_object()
        .bucket("bkt")
        .key("doc")
        .body(ByteStream::from(d.clone()))
        .content_type("application/x-coffre")
        .cache_control("no-cache")
        .content_disposition("inline")
        .metadata("owner", "hôpital")
        .tagging("project=alpha&level=secret")
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let sha = put
        .checksum_sha256()
        .expect("server returns the verified checksum")
        .to_string();
    let h = c
        .head_object()
        .bucket("bkt")
        .key("doc")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("application/x-coffre"));
    assert_eq!(h.cache_control(), Some("no-cache"));
    assert_eq!(h.content_disposition(), Some("inline"));
    assert_eq!(
        h.metadata().and_then(|m| m.get("owner")).map(String::as_str),
        Some("hôpital")
    );
    assert_eq!(h.checksum_sha256(), Some(sha.as_str()));
    let tags = c.get_object_tagging().bucket("bkt").key("doc").send().await.unwrap();
    let mut t: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    t.sort();
    assert_eq!(
        t,
        [
            ("level".to_string(), "secret".to_string()),
            ("project".to_string(), "alpha".to_string())
        ]
    );
    let tagging = Tagging::builder()
        .tag_set(Tag::builder().key("k").value("v").build().unwrap())
        .build()
        .unwrap();
    c.put_object_tagging()
        .bucket("bkt")
        .key("doc")
        .tagging(tagging)
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.get_object_tagging()
            .bucket("bkt")
            .key("doc")
            .send()
            .await
            .unwrap()
            .tag_set()
            .len(),
        1
    );
    c.delete_object_tagging().bucket("bkt").key("doc").send().await.unwrap();
    assert!(c
        .get_object_tagging()
        .bucket("bkt")
        .key("doc")
        .send()
        .await
        .unwrap()
        .tag_set()
        .is_empty());
    // CRC64NVME too.
    let put = c
        .put_object()
        .bucket("bkt")
        .key("crc64")
        .body(ByteStream::from(d.clone()))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc64Nvme)
        .send()
        .await
        .unwrap();
    let h = c
        .head_object()
        .bucket("bkt")
        .key("crc64")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc64_nvme(), put.checksum_crc64_nvme());
    assert!(h.checksum_crc64_nvme().is_some());
    // CRC32 (the SDK's default, in an aws-chunked trailer) is verified and returned.
    let put = c
        .put_object()
        .bucket("bkt")
        .key("crc")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    assert!(put.checksum_crc32().is_some());
    // A wrong checksum is refused and nothing is stored.
    let e = c
        .put_object()
        .bucket("bkt")
        .key("bad")
        .body(ByteStream::from(d.clone()))
        .checksum_crc32("AAAAAA==")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BadDigest");
    assert!(c.head_object().bucket("bkt").key("bad").send().await.is_err());
    // Wrong Content-MD5.
    let e = c
        .put_object()
        .bucket("bkt")
        .key("bad")
        .body(ByteStream::from_static(b"abc"))
        .content_md5("1B2M2Y8AsgTpgAmY7PhCfg==")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BadDigest");
    let e = c
        .put_object()
        .bucket("bkt")
        .key("k".repeat(1025))
        .body(ByteStream::from_static(b"abc"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "KeyTooLongError");
}

#[tokio::test]
async fn listing_v2_v1_and_batch_delete() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let keys = ["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"];
    for k in keys {
        c.put_object()
            .bucket("bkt")
            .key(k)
            .body(ByteStream::from_static(b"z"))
            .send()
            .await
            .unwrap();
    }
    let r = c.list_objects_v2().bucket("bkt").delimiter("/").send().await.unwrap();
    let objs: Vec<&str> = r.contents().iter().filter_map(|o| o.key()).collect();
    let pfx: Vec<&str> = r.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(objs, ["b", "d"]);
    assert_eq!(pfx, ["a/", "c/"]);
    assert_eq!(r.key_count(), Some(4));
    assert_eq!(r.contents()[0].size(), Some(1));
    // Pages of 2 via continuation tokens visit every key exactly once.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let r = c
            .list_objects_v2()
            .bucket("bkt")
            .max_keys(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(r.contents().iter().filter_map(|o| o.key().map(String::from)));
        if r.is_truncated() != Some(true) {
            break;
        }
        token = r.next_continuation_token().map(String::from);
    }
    assert_eq!(seen, keys);
    let r = c
        .list_objects_v2()
        .bucket("bkt")
        .prefix("a/")
        .start_after("a/1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(),
        ["a/2", "a/b/3"]
    );
    let r = c
        .list_objects()
        .bucket("bkt")
        .marker("b")
        .max_keys(2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(),
        ["c/x", "c/y"]
    );
    assert_eq!(r.is_truncated(), Some(true));
    let r = c
        .list_objects_v2()
        .bucket("bkt")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.contents().len(), keys.len());

    let del = Delete::builder()
        .set_objects(Some(
            ["a/1", "a/2", "nope"]
                .iter()
                .map(|k| ObjectIdentifier::builder().key(*k).build().unwrap())
                .collect(),
        ))
        .build()
        .unwrap();
    let r = c.delete_objects().bucket("bkt").delete(del).send().await.unwrap();
    assert_eq!(r.deleted().len(), 3);
    let r = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(r.contents().len(), keys.len() - 2);
}

#[tokio::test]
async fn copy_object() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    c.create_bucket().bucket("other").send().await.unwrap();
    let d = data(5 << 20, 9);
    c.put_object()
        .bucket("bkt")
        .key("src")
        .body(ByteStream::from(d.clone()))
        .metadata("m", "1")
        .send()
        .await
        .unwrap();
    let r = c
        .copy_object()
        .bucket("other")
        .key("dst")
        .copy_source("bkt/src")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.copy_object_result().and_then(|x| x.e_tag()),
        Some(format!("\"{}\"", md5_hex(&d)).as_str())
    );
    assert!(get_body(&c, "other", "dst").await == d);
    let h = c.head_object().bucket("other").key("dst").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("m")).map(String::as_str), Some("1"));
    // Copy onto itself needs REPLACE.
    let e = c
        .copy_object()
        .bucket("bkt")
        .key("src")
        .copy_source("bkt/src")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRequest");
    c.copy_object()
        .bucket("bkt")
        .key("src")
        .copy_source("bkt/src")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("m", "2")
        .send()
        .await
        .unwrap();
    let h = c.head_object().bucket("bkt").key("src").send().await.unwrap();
    assert_eq!(h.metadata().and_then(|m| m.get("m")).map(String::as_str), Some("2"));
    // …and it is metadata-only: no shard written or collected, the bytes unchanged.
    let shards = total_shards(&s).await;
    c.copy_object()
        .bucket("bkt")
        .key("src")
        .copy_source("bkt/src")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata("m", "3")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(total_shards(&s).await, shards);
    assert!(get_body(&c, "bkt", "src").await == d);
    let e = c
        .copy_object()
        .bucket("bkt")
        .key("x")
        .copy_source("bkt/src")
        .copy_source_if_match("\"zzz\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(412));
    // Deleting the source leaves the copy intact.
    c.delete_object().bucket("bkt").key("src").send().await.unwrap();
    assert!(get_body(&c, "other", "dst").await == d);
}

#[tokio::test]
async fn authentication_errors() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let bad = client_with(&s.endpoint, ACCESS, "wrong-secret");
    let e = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "SignatureDoesNotMatch");
    let unknown = client_with(&s.endpoint, "NOSUCHKEY", SECRET);
    let e = unknown.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidAccessKeyId");
    // A clock 20 minutes off. (The SDK would retry with a corrected clock: sign by hand.)
    let sg = sign(&s.addr, "GET", "/", "", &[], &sha256_of(b""), now() - 1200);
    let (status, _, body) = raw_request(&s.addr, "GET", "/", &sg.headers, b"");
    assert_eq!(status, 403);
    assert!(body.contains("<Code>RequestTimeTooSkewed</Code>"), "{body}");
    // Anonymous.
    let (status, _, body) = raw_request(&s.addr, "GET", "/bkt", &[("host".into(), s.addr.clone())], b"");
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");

    // Presigned URLs: valid, then tampered.
    c.put_object()
        .bucket("bkt")
        .key("p")
        .body(ByteStream::from_static(b"presigned!"))
        .send()
        .await
        .unwrap();
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(300)).unwrap();
    let p = c.get_object().bucket("bkt").key("p").presigned(cfg).await.unwrap();
    let target = p.uri().strip_prefix(&s.endpoint).unwrap().to_string();
    let (status, _, body) = raw_request(&s.addr, "GET", &target, &[("host".into(), s.addr.clone())], b"");
    assert_eq!((status, body.as_str()), (200, "presigned!"));
    let tampered = target.replace("/bkt/p?", "/bkt/q?");
    let (status, _, body) = raw_request(&s.addr, "GET", &tampered, &[("host".into(), s.addr.clone())], b"");
    assert_eq!(status, 403);
    assert!(body.contains("SignatureDoesNotMatch"), "{body}");
    let cfg = aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(8 * 24 * 3600));
    assert!(cfg.is_err(), "the SDK itself refuses > 7 days");
}

#[tokio::test]
async fn hand_signed_error_cases() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("bkt").send().await.unwrap();
    let t = now();

    // Payload SHA-256 that does not match the body.
    let wrong = sha256_of(b"something else");
    let sg = sign(&s.addr, "PUT", "/bkt/x", "", &[], &wrong, t);
    let (status, _, body) = raw_request(&s.addr, "PUT", "/bkt/x", &sg.headers, b"hello");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("XAmzContentSHA256Mismatch"), "{body}");

    // Signed chunks: a valid upload, then one with a tampered chunk.
    for tamper in [false, true] {
        let payload = b"chunk-one-data".to_vec();
        let sg = sign(
            &s.addr,
            "PUT",
            "/bkt/chunked",
            "",
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &payload.len().to_string()),
            ],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            t,
        );
        let sig1 = chunk_signature(&sg, &sg.signature, &payload);
        let sig2 = chunk_signature(&sg, &sig1, b"");
        let mut sent = payload.clone();
        if tamper {
            sent[0] ^= 1;
        }
        let mut b = format!("{:x};chunk-signature={sig1}\r\n", payload.len()).into_bytes();
        b.extend_from_slice(&sent);
        b.extend_from_slice(format!("\r\n0;chunk-signature={sig2}\r\n\r\n").as_bytes());
        let (status, _, body) = raw_request(&s.addr, "PUT", "/bkt/chunked", &sg.headers, &b);
        if tamper {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("SignatureDoesNotMatch"), "{body}");
        } else {
            assert_eq!(status, 200, "{body}");
            assert_eq!(self::get_body(&c, "bkt", "chunked").await, payload);
        }
    }
    // After the tampered upload the object is still the valid one.
    assert_eq!(get_body(&c, "bkt", "chunked").await, b"chunk-one-data");

    // Signed chunks with a signed trailing checksum (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER):
    // right checksum, wrong checksum, tampered trailer signature.
    for case in ["ok", "bad-checksum", "bad-trailer-signature"] {
        let payload = data(100_000, 9);
        let len = payload.len().to_string();
        let sg = sign(
            &s.addr,
            "PUT",
            "/bkt/trailer",
            "",
            &[
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", &len),
                ("x-amz-trailer", "x-amz-checksum-crc32"),
            ],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            t,
        );
        let (c1, c2) = payload.split_at(65_536);
        let sig1 = chunk_signature(&sg, &sg.signature, c1);
        let sig2 = chunk_signature(&sg, &sig1, c2);
        let sig3 = chunk_signature(&sg, &sig2, b"");
        let crc = if case == "bad-checksum" {
            crc32_b64(b"other")
        } else {
            crc32_b64(&payload)
        };
        let trailer = format!("x-amz-checksum-crc32:{crc}\n");
        let mut tsig = trailer_signature(&sg, &sig3, &trailer);
        if case == "bad-trailer-signature" {
            tsig = trailer_signature(&sg, &sig2, &trailer);
        }
        let mut b = Vec::new();
        for (chunk, sig) in [(c1, &sig1), (c2, &sig2)] {
            b.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", chunk.len()).as_bytes());
            b.extend_from_slice(chunk);
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(
            format!("0;chunk-signature={sig3}\r\nx-amz-checksum-crc32:{crc}\r\nx-amz-trailer-signature:{tsig}\r\n\r\n")
                .as_bytes(),
        );
        let (status, _, body) = raw_request(&s.addr, "PUT", "/bkt/trailer", &sg.headers, &b);
        match case {
            "ok" => {
                assert_eq!(status, 200, "{body}");
                assert!(get_body(&c, "bkt", "trailer").await == payload);
            }
            "bad-checksum" => assert!(status == 400 && body.contains("BadDigest"), "{status} {body}"),
            _ => assert!(
                status == 403 && body.contains("SignatureDoesNotMatch"),
                "{status} {body}"
            ),
        }
    }

    // Malformed XML.
    let junk = b"<Delete><Object><Key>a</Key></Delete>";
    let sg = sign(&s.addr, "POST", "/bkt", "delete=", &[], &sha256_of(junk), t);
    let (status, _, body) = raw_request(&s.addr, "POST", "/bkt?delete", &sg.headers, junk);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("MalformedXML"), "{body}");

    // Unknown operation: NotImplemented, not 404.
    let sg = sign(&s.addr, "GET", "/bkt", "website=", &[], &sha256_of(b""), t);
    let (status, head, body) = raw_request(&s.addr, "GET", "/bkt?website", &sg.headers, b"");
    assert_eq!(status, 501, "{body}");
    assert!(body.contains("NotImplemented"));
    assert!(head.to_ascii_lowercase().contains("x-amz-request-id"));

    // Health needs no auth.
    let (status, _, body) = raw_request(&s.addr, "GET", "/health", &[("host".into(), s.addr.clone())], b"");
    assert_eq!((status, body.trim()), (200, "ok"));
}

/// Whether the admin API says the object is inlined in its metadata record, and its shards.
fn placement_of(s: &Server, bucket: &str, key: &str) -> (bool, usize) {
    let v = s.admin_json(&["placement", bucket, key]);
    (
        v["inline"].as_bool().expect("inline flag"),
        v["shards"].as_array().expect("shards").len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_live_in_their_metadata_record() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let s = Server::start_at(&data_dir, "127.0.0.1:0");
    let c = s.client();
    c.create_bucket().bucket("small").send().await.unwrap();
    let limit = coffre_types::limits::INLINE_DEFAULT as usize;
    let sizes = [0, 1, 4096, limit, limit + 1];
    for (i, n) in sizes.into_iter().enumerate() {
        let body = data(n, i as u8);
        let put = c
            .put_object()
            .bucket("small")
            .key(format!("k{n}"))
            .body(ByteStream::from(body.clone()))
            .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Crc32)
            .send()
            .await
            .unwrap();
        assert_eq!(put.e_tag().unwrap().trim_matches('"'), md5_hex(&body));
        assert_eq!(
            get_body(&c, "small", &format!("k{n}")).await,
            body,
            "{n} bytes read back"
        );
        let head = c
            .head_object()
            .bucket("small")
            .key(format!("k{n}"))
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(n as i64));
        assert_eq!(head.checksum_crc32(), Some(crc32_b64(&body).as_str()));
        let (inline, shards) = placement_of(&s, "small", &format!("k{n}"));
        assert_eq!(inline, n <= limit, "{n} bytes inlined up to the limit");
        assert_eq!(shards, if n <= limit { 0 } else { 6 });
    }
    assert_eq!(total_shards(&s).await, 6, "only the object over the limit has shards");

    // Ranges of an inlined object, a suffix and an open end included.
    let body = data(4096, 2);
    for (range, want) in [
        ("bytes=10-99", &body[10..100]),
        ("bytes=-5", &body[4091..]),
        ("bytes=4000-", &body[4000..]),
    ] {
        let r = c
            .get_object()
            .bucket("small")
            .key("k4096")
            .range(range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.body.collect().await.unwrap().into_bytes().as_ref(), want, "{range}");
    }

    // A wrong Content-MD5 stores nothing.
    let e = c
        .put_object()
        .bucket("small")
        .key("bad")
        .body(ByteStream::from(b"hello".to_vec()))
        .content_md5(base64::engine::general_purpose::STANDARD.encode([0u8; 16]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "BadDigest");
    assert!(c.head_object().bucket("small").key("bad").send().await.is_err());

    // A copy of an inlined object is inlined too; overwriting with a large object stores shards.
    c.copy_object()
        .bucket("small")
        .key("copy")
        .copy_source("small/k4096")
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "small", "copy").await, body);
    assert_eq!(placement_of(&s, "small", "copy"), (true, 0));
    let large = data(100_000, 3);
    c.put_object()
        .bucket("small")
        .key("copy")
        .body(ByteStream::from(large.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "small", "copy").await, large);
    assert_eq!(placement_of(&s, "small", "copy"), (false, 6));

    // After a restart with inlining off, inlined objects still read back and new small ones
    // are stored as shards.
    drop(s);
    let s = Server::start_with(&data_dir, "127.0.0.1:0", &["--inline-max", "0"]);
    let c = s.client();
    assert_eq!(get_body(&c, "small", "k4096").await, body);
    c.put_object()
        .bucket("small")
        .key("later")
        .body(ByteStream::from(b"tiny".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(placement_of(&s, "small", "later"), (false, 6));
    drop(s);

    // The limit is bounded: a record holds at most one AEAD package.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["server", "--data", data_dir.to_str().unwrap(), "--inline-max", "1M"])
        .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
        .env("COFFRE_ROOT_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--inline-max"));
}
