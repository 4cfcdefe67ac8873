//! End-to-end multipart uploads with the AWS SDK.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};
use common::*;

const MIB: usize = 1 << 20;

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_string()
}

fn multipart_etag(parts: &[&[u8]]) -> String {
    use md5::Digest;
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&md5::Md5::digest(p));
    }
    format!("\"{}-{}\"", hex::encode(md5::Md5::digest(&cat)), parts.len())
}

async fn upload(c: &aws_sdk_s3::Client, key: &str, id: &str, n: i32, d: &[u8]) -> CompletedPart {
    let r = c
        .upload_part()
        .bucket("mpu")
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(d.to_vec()))
        .send()
        .await
        .unwrap();
    CompletedPart::builder()
        .part_number(n)
        .e_tag(r.e_tag().unwrap())
        .set_checksum_crc32(r.checksum_crc32().map(String::from))
        .build()
}

async fn create(c: &aws_sdk_s3::Client, key: &str) -> String {
    c.create_multipart_upload()
        .bucket("mpu")
        .key(key)
        .send()
        .await
        .unwrap()
        .upload_id()
        .unwrap()
        .to_string()
}

async fn read(c: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    get_body(c, "mpu", key).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multipart_rules_and_results() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let p1 = data(5 * MIB, 1);
    let p2 = data(5 * MIB + 17, 2);
    let p3 = data(1234, 3);

    // Three parts uploaded out of order; part 2 uploaded twice (the second replaces the first).
    let id = create(&c, "three").await;
    let c3 = upload(&c, "three", &id, 3, &p3).await;
    let _old2 = upload(&c, "three", &id, 2, &data(5 * MIB, 9)).await;
    let c1 = upload(&c, "three", &id, 1, &p1).await;
    let c2 = upload(&c, "three", &id, 2, &p2).await;
    let parts = c
        .list_parts()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(parts.parts().len(), 3);
    assert_eq!(parts.parts()[1].size(), Some(p2.len() as i64));
    let paged = c
        .list_parts()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .max_parts(2)
        .send()
        .await
        .unwrap();
    assert_eq!((paged.parts().len(), paged.is_truncated()), (2, Some(true)));
    let rest = c
        .list_parts()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .part_number_marker(paged.next_part_number_marker().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(rest.parts().len(), 1);
    let ups = c.list_multipart_uploads().bucket("mpu").send().await.unwrap();
    assert_eq!(ups.uploads().len(), 1);
    assert_eq!(ups.uploads()[0].upload_id(), Some(id.as_str()));

    // Wrong order, wrong ETag.
    let bad = CompletedMultipartUpload::builder()
        .parts(c2.clone())
        .parts(c1.clone())
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .multipart_upload(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidPartOrder");
    let wrong = CompletedPart::builder()
        .part_number(1)
        .e_tag("\"00000000000000000000000000000000\"")
        .build();
    let bad = CompletedMultipartUpload::builder()
        .parts(wrong)
        .parts(c2.clone())
        .build();
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .multipart_upload(bad)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidPart");

    let all = CompletedMultipartUpload::builder()
        .parts(c1.clone())
        .parts(c2.clone())
        .parts(c3.clone())
        .build();
    let done = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .multipart_upload(all.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&p1, &p2, &p3]).as_str()));
    // A retried Complete answers the same.
    let again = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("three")
        .upload_id(&id)
        .multipart_upload(all)
        .send()
        .await
        .unwrap();
    assert_eq!(again.e_tag(), done.e_tag());
    let whole = [p1.clone(), p2.clone(), p3.clone()].concat();
    assert!(read(&c, "three").await == whole);
    let h = c.head_object().bucket("mpu").key("three").send().await.unwrap();
    assert_eq!(h.content_length(), Some(whole.len() as i64));
    // A range across the part boundary, and GET by part number.
    let r = c
        .get_object()
        .bucket("mpu")
        .key("three")
        .range(format!("bytes={}-{}", 5 * MIB - 10, 5 * MIB + 9))
        .send()
        .await
        .unwrap();
    assert!(r.body.collect().await.unwrap().into_bytes()[..] == whole[5 * MIB - 10..5 * MIB + 10]);
    let r = c
        .get_object()
        .bucket("mpu")
        .key("three")
        .part_number(2)
        .send()
        .await
        .unwrap();
    assert_eq!(r.parts_count(), Some(3));
    assert!(r.body.collect().await.unwrap().into_bytes()[..] == p2[..]);
    let e = c
        .get_object()
        .bucket("mpu")
        .key("three")
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidPartNumber");
    assert!(c
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap()
        .uploads()
        .is_empty());

    // Complete with a subset: part 2 is dropped.
    let id = create(&c, "subset").await;
    let s1 = upload(&c, "subset", &id, 1, &p1).await;
    let _s2 = upload(&c, "subset", &id, 2, &p2).await;
    let s3 = upload(&c, "subset", &id, 3, &p3).await;
    let some = CompletedMultipartUpload::builder().parts(s1).parts(s3).build();
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("subset")
        .upload_id(&id)
        .multipart_upload(some)
        .send()
        .await
        .unwrap();
    assert!(read(&c, "subset").await == [p1.clone(), p3.clone()].concat());

    // A small part that is not the last.
    let id = create(&c, "small").await;
    let t1 = upload(&c, "small", &id, 1, &p3).await;
    let t2 = upload(&c, "small", &id, 2, &p3).await;
    let e = c
        .complete_multipart_upload()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(t1).parts(t2).build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "EntityTooSmall");

    // Abort, then the upload is gone.
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    let e = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .part_number(3)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchUpload");
    let e = c
        .abort_multipart_upload()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchUpload");
    let e = c
        .upload_part()
        .bucket("mpu")
        .key("small")
        .upload_id(&id)
        .part_number(10_001)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidArgument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn part_copy_and_checksums() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let src = data(12 * MIB, 5);
    c.put_object()
        .bucket("mpu")
        .key("src")
        .body(ByteStream::from(src.clone()))
        .send()
        .await
        .unwrap();

    // UploadPartCopy of two ranges.
    let id = create(&c, "copied").await;
    let mut parts = Vec::new();
    for (n, (a, b)) in [(1, (0usize, 6 * MIB - 1)), (2, (6 * MIB, 12 * MIB - 1))] {
        let r = c
            .upload_part_copy()
            .bucket("mpu")
            .key("copied")
            .upload_id(&id)
            .part_number(n)
            .copy_source("mpu/src")
            .copy_source_range(format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        let etag = r.copy_part_result().and_then(|x| x.e_tag()).unwrap().to_string();
        parts.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let e = c
        .upload_part_copy()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id)
        .part_number(3)
        .copy_source("mpu/src")
        .copy_source_range("bytes=0-99999999")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidRange");
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("copied")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
        .send()
        .await
        .unwrap();
    assert!(read(&c, "copied").await == src);

    // Flexible checksums: a CRC32 declared at creation is verified per part and combined.
    for full in [false, true] {
        let key = if full { "crc-full" } else { "crc-composite" };
        let mut req = c
            .create_multipart_upload()
            .bucket("mpu")
            .key(key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32);
        if full {
            req = req.checksum_type(aws_sdk_s3::types::ChecksumType::FullObject);
        }
        let id = req.send().await.unwrap().upload_id().unwrap().to_string();
        let a = upload(&c, key, &id, 1, &src[..6 * MIB]).await;
        let b = upload(&c, key, &id, 2, &src[6 * MIB..]).await;
        assert!(a.checksum_crc32().is_some());
        let done = c
            .complete_multipart_upload()
            .bucket("mpu")
            .key(key)
            .upload_id(&id)
            .multipart_upload(CompletedMultipartUpload::builder().parts(a).parts(b).build())
            .send()
            .await
            .unwrap();
        let h = c
            .head_object()
            .bucket("mpu")
            .key(key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        let sum = h.checksum_crc32().expect("checksum stored").to_string();
        assert_eq!(done.checksum_crc32(), Some(sum.as_str()));
        if full {
            let whole = c
                .put_object()
                .bucket("mpu")
                .key("crc-whole")
                .body(ByteStream::from(src.clone()))
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .unwrap();
            assert_eq!(
                whole.checksum_crc32(),
                Some(sum.as_str()),
                "full-object CRC equals the CRC of the bytes"
            );
        } else {
            assert!(sum.ends_with("-2"), "{sum}");
        }
        assert!(read(&c, key).await == src);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_and_superseded_parts_are_collected() {
    let s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let p = data(5 * MIB, 1);
    // Aborted upload: nothing of it remains.
    let id = create(&c, "gone").await;
    upload(&c, "gone", &id, 1, &p).await;
    upload(&c, "gone", &id, 2, &p).await;
    assert_eq!(
        total_shards(&s).await,
        2 * 2 * 6,
        "two parts of two stripes on six stores"
    );
    c.abort_multipart_upload()
        .bucket("mpu")
        .key("gone")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(wait_for_shards(&s, 0).await, 0, "aborted upload's shards collected");
    // Superseded part and unlisted part: only the object's shards remain.
    let id = create(&c, "kept").await;
    upload(&c, "kept", &id, 1, &data(5 * MIB, 2)).await;
    let a = upload(&c, "kept", &id, 1, &p).await;
    let b = upload(&c, "kept", &id, 2, &data(1000, 3)).await;
    upload(&c, "kept", &id, 3, &p).await;
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("kept")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().parts(a).parts(b).build())
        .send()
        .await
        .unwrap();
    assert_eq!(wait_for_shards(&s, 2 * 6 + 6).await, 18);
    c.delete_object().bucket("mpu").key("kept").send().await.unwrap();
    assert_eq!(wait_for_shards(&s, 0).await, 0, "deleted object's shards collected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incomplete_uploads_expire() {
    let mut s = Server::start();
    let c = s.client();
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&c, "stale").await;
    upload(&c, "stale", &id, 1, &data(5 * MIB, 1)).await;
    s.kill();
    // An expiry of zero hours: every upload started before this start is stale.
    let s2 = Server::start_with(&s.data, "127.0.0.1:0", &["--upload-expiry-hours", "0"]);
    assert_eq!(wait_for_shards(&s2, 0).await, 0, "expired upload's shards collected");
    let c2 = s2.client();
    assert!(c2
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap()
        .uploads()
        .is_empty());
    let e = c2
        .list_parts()
        .bucket("mpu")
        .key("stale")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "NoSuchUpload");
}
