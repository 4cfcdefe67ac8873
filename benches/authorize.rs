//! What authentication and authorization cost a request, per call: the cached lookup of an
//! access key, then `Iam::authorize` for a tenant's admin on its own bucket (no policy to
//! read), and for a bucket with a policy (the request context built and the policy
//! evaluated). `cargo bench --bench authorize`; results in docs/performance.md.

use coffre_iam::{Iam, Target};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;

fn setup() -> (tempfile::TempDir, tokio::runtime::Runtime, Arc<Iam>) {
    let dir = tempfile::tempdir().unwrap();
    let meta = Arc::new(coffre_meta::MetaStore::open(&dir.path().join("meta")).unwrap());
    let keys = Arc::new(coffre_crypto::Keyring::new(
        coffre_crypto::MasterKey::from_bytes([7; 32]),
        vec![],
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let iam = rt.block_on(async {
        let (engine, _damaged) =
            coffre_engine::Engine::new(meta.clone(), vec![], None, keys.clone(), Default::default());
        let iam = Iam::new(meta, keys);
        iam.ensure_root("default", "BENCHKEY", "bench-secret-secret")
            .await
            .unwrap();
        for (bucket, policy) in [("plain", None), ("with-policy", Some(POLICY))] {
            let rec = coffre_meta::BucketRecord {
                created_ms: 0,
                region: "fr-par".into(),
                countries: vec!["FR".into()],
                failure_domain: "node".into(),
                scheme: coffre_types::Scheme::DEFAULT,
                tenant: "default".into(),
            };
            engine.create_bucket(bucket, rec).await.unwrap();
            if let Some(p) = policy {
                engine
                    .put_bucket_config(bucket, coffre_engine::BucketConfigKind::Policy, Some(p.to_string()))
                    .await
                    .unwrap();
            }
        }
        iam
    });
    (dir, rt, iam)
}

const POLICY: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::partner:root"}, "Action": ["s3:GetObject", "s3:ListBucket"],
     "Resource": ["arn:aws:s3:::with-policy", "arn:aws:s3:::with-policy/*"], "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::with-policy/*",
     "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringLike": {"aws:UserAgent": "forbidden-*"}}}]}"#;

fn authorize(c: &mut Criterion) {
    let (_dir, _rt, iam) = setup();
    let mut headers = http::HeaderMap::new();
    headers.insert("user-agent", "aws-sdk-rust/1.3 os/linux lang/rust".parse().unwrap());
    headers.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
    let origin = coffre_s3::context::Origin {
        peer: "127.0.0.1:50000".parse().unwrap(),
        secure: false,
    };
    let mut g = c.benchmark_group("authorize");
    g.bench_function("resolve_access_key", |b| {
        b.iter(|| iam.resolve("BENCHKEY", None).unwrap())
    });
    let (_, caller) = iam.resolve("BENCHKEY", None).unwrap();
    for bucket in ["plain", "with-policy"] {
        g.bench_function(format!("GetObject_{bucket}"), |b| {
            b.iter(|| {
                // As a request does: the context is built only if a policy asks for it.
                let facts = coffre_s3::context::RequestFacts {
                    caller: &caller,
                    headers: &headers,
                    query: &[],
                    origin,
                    auth_type: "REST-HEADER",
                    object: None,
                };
                iam.authorize(
                    &caller,
                    "s3:GetObject",
                    Target::Object(bucket, "dir/object-1234"),
                    &facts,
                )
                .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, authorize);
criterion_main!(benches);
