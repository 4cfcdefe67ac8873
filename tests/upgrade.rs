//! A data directory written by the version before tenants (tests/fixtures/v0-store.tar.gz,
//! made by tests/fixtures/make-v0-store.sh) opens with this one: its root user, buckets and
//! objects are the `default` tenant's, everything reads back, and no shard is rewritten.

mod common;

use common::*;
use std::path::Path;

fn fixture(into: &Path) {
    let tar = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0-store.tar.gz");
    let ok = std::process::Command::new("tar")
        .args(["-xzf", tar.to_str().unwrap(), "-C", into.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "extracting {}", tar.display());
}

/// Every segment file of the shard stores, with its bytes (a store from before the shard
/// index has none: it is built at the first start).
fn segments(data: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for node in std::fs::read_dir(data.join("nodes")).unwrap().flatten() {
        for f in std::fs::read_dir(node.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().starts_with("seg-") {
                out.push((f.path().display().to_string(), std::fs::read(f.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_previous_version_opens_as_the_default_tenant() {
    let dir = tempfile::tempdir().unwrap();
    fixture(dir.path());
    let data = dir.path().join("data");
    let before = segments(&data);
    // Deleted data is kept: nothing this test does may touch the old shards.
    let mut s = Server::start_with(&data, "127.0.0.1:0", &["--gc-grace-secs", "3600"]);
    let c = s.client();

    let buckets = c.list_buckets().send().await.unwrap();
    let names: Vec<_> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, vec!["empty-bucket", "legacy"]);
    assert_eq!(buckets.owner().and_then(|o| o.id()), Some("default"));

    let hello = c.get_object().bucket("legacy").key("hello.txt").send().await.unwrap();
    assert_eq!(hello.content_type(), Some("text/plain"));
    assert_eq!(
        hello.metadata().and_then(|m| m.get("author")).map(String::as_str),
        Some("v0")
    );
    assert_eq!(
        hello.body.collect().await.unwrap().into_bytes().as_ref(),
        b"written before tenants\n"
    );
    let tags = c
        .get_object_tagging()
        .bucket("legacy")
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_set()[0].value(), "v0");
    assert_eq!(get_body(&c, "legacy", "data/big.bin").await, data_of(200_000, 7));
    let mp = c.head_object().bucket("legacy").key("mp.bin").send().await.unwrap();
    assert!(
        mp.e_tag().unwrap().ends_with("-1\""),
        "a multipart ETag: {:?}",
        mp.e_tag()
    );
    assert_eq!(get_body(&c, "legacy", "mp.bin").await, data_of(100_000, 8));
    let cors = c.get_bucket_cors().bucket("empty-bucket").send().await.unwrap();
    assert_eq!(cors.cors_rules()[0].allowed_origins(), ["https://app.example"]);

    // The upload left in progress completes, with its part of the old version.
    let uploads = c.list_multipart_uploads().bucket("legacy").send().await.unwrap();
    let up = &uploads.uploads()[0];
    assert_eq!(up.key(), Some("pending.bin"));
    let id = up.upload_id().unwrap();
    let parts = c
        .list_parts()
        .bucket("legacy")
        .key("pending.bin")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    let p = &parts.parts()[0];
    c.complete_multipart_upload()
        .bucket("legacy")
        .key("pending.bin")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(p.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(get_body(&c, "legacy", "pending.bin").await, data_of(50_000, 10));

    // The default tenant counts what it held before.
    let t = s.admin_json(&["tenant", "show", "default"]);
    assert_eq!(t["buckets"], serde_json::json!(["empty-bucket", "legacy"]));
    assert_eq!(t["usage"]["objects"], 4);
    assert_eq!(
        t["usage"]["bytes"],
        "written before tenants\n".len() + 200_000 + 100_000 + 50_000
    );
    // New writes work beside the old ones, under the tenant's key.
    put(&c, "legacy", "new.txt", b"after".to_vec()).await;
    assert_eq!(get_body(&c, "legacy", "new.txt").await, b"after");
    s.kill();

    // Every shard written by the old version is still there, byte for byte: nothing of it
    // was rewritten (new shards went to new records).
    let after = segments(&data);
    for (path, bytes) in &before {
        let now = after.iter().find(|(p, _)| p == path).map(|(_, b)| b);
        let now = now.unwrap_or_else(|| panic!("{path} is gone"));
        assert_eq!(&now[..bytes.len()], &bytes[..], "{path} was rewritten");
    }

    // A master-key rotation moves the old data keys under the tenant's key; all still reads.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["rotate-master-key", "--data", data.to_str().unwrap()])
        .env_remove("COFFRE_MASTER_KEY")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("1 tenant keys") && said.contains("5 objects"), "{said}");
    let s = Server::start_with(&data, "127.0.0.1:0", &["--gc-grace-secs", "3600"]);
    let c = s.client();
    assert_eq!(get_body(&c, "legacy", "data/big.bin").await, data_of(200_000, 7));
    assert_eq!(get_body(&c, "legacy", "mp.bin").await, data_of(100_000, 8));
    assert_eq!(get_body(&c, "legacy", "pending.bin").await, data_of(50_000, 10));
    assert_eq!(get_body(&c, "legacy", "new.txt").await, b"after");
    drop(s);
    let meta = coffre_meta::MetaStore::open(&data.join("meta")).unwrap();
    let keys = coffre_crypto::Keyring::new(
        coffre_crypto::MasterKey::load_or_create(&data.join("master.key")).unwrap(),
        vec![],
    );
    for key in ["hello.txt", "data/big.bin", "mp.bin", "pending.bin", "new.txt"] {
        let rec = meta.get_object("legacy", key.as_bytes()).unwrap().unwrap();
        for p in &rec.parts {
            assert!(!keys.knows(&p.wrapped_key), "{key}: still wrapped by a master key");
        }
    }
}

fn data_of(len: usize, seed: u8) -> Vec<u8> {
    common::data(len, seed)
}
