//! Load benchmark against the running server: starts the real `coffre server` and drives it
//! with concurrent AWS SDK clients. `cargo bench --bench load` (env: COFFRE_BENCH_DIR for the
//! data directory, COFFRE_BENCH_SECS for the seconds per phase, default 10; COFFRE_BENCH_BIN
//! for another `coffre` binary to measure, e.g. an older build, with the same load;
//! COFFRE_BENCH_SIZES, e.g. `4096`, for some object sizes only; COFFRE_BENCH_POLICY=1 to give
//! the bucket a policy, so that every request evaluates it; COFFRE_BENCH_ENDPOINT,
//! COFFRE_BENCH_ACCESS_KEY, COFFRE_BENCH_SECRET_KEY, COFFRE_BENCH_REGION for a server already
//! running, Coffre or another: scripts/bench-compare.sh; COFFRE_BENCH_CLIENTS to run every
//! phase with that many clients; COFFRE_BENCH_MARKS=FILE to append each phase's name, start and
//! end (Unix seconds) and operation count to FILE: scripts/fsync-count.sh; COFFRE_BENCH_MAX_OPS
//! for the most operations of a PUT phase (keys `SIZE/0` to `SIZE/N-1`; a GET phase does 4×);
//! COFFRE_BENCH_ONLY=PUT or GET for one kind of phase (GET reads what a PUT phase wrote, from
//! `written` = 1 object when run alone); COFFRE_BENCH_TLS=1
//! to serve and drive HTTPS, with a certificate made for the run: how a deployment is used,
//! and how the SDK then sends a body, unsigned with a CRC32 trailer, where over plain HTTP it
//! signs every chunk with SHA-256).
//! Prints, per object size: PUT and GET throughput, ops/s, p50 and p99 latency.

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One benchmark operation: the i-th PUT or GET.
type Op = Arc<dyn Fn(usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send + Sync>;

/// COFFRE_BENCH_TLS=1: a self-signed certificate for 127.0.0.1 and its key, written into
/// `dir`; returns their paths and the certificate's PEM (what the client trusts).
fn tls_files(dir: &std::path::Path) -> Option<(std::path::PathBuf, std::path::PathBuf, String)> {
    if std::env::var("COFFRE_BENCH_TLS").ok().as_deref() != Some("1") {
        return None;
    }
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("bench-cert.pem"), dir.join("bench-key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Some((cert, key, made.cert.pem()))
}

fn start_server(
    dir: &std::path::Path,
    tls: Option<&(std::path::PathBuf, std::path::PathBuf, String)>,
) -> (std::process::Child, String) {
    let bin = std::env::var("COFFRE_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_coffre").to_string());
    let data = dir.join("data");
    let mut args = vec![
        "server".to_string(),
        "--data".into(),
        data.to_str().unwrap().into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--admin-listen".into(),
        "127.0.0.1:0".into(),
    ];
    if let Some((cert, key, _)) = tls {
        args.extend([
            "--tls-cert".into(),
            cert.to_str().unwrap().into(),
            "--tls-key".into(),
            key.to_str().unwrap().into(),
        ]);
    }
    let mut child = Command::new(bin)
        .args(args)
        .env("COFFRE_ROOT_ACCESS_KEY", "BENCHKEY")
        .env("COFFRE_ROOT_SECRET_KEY", "bench-secret")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn coffre");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "server exited");
        if let Some(r) = line.trim().strip_prefix("Coffre S3 endpoint: ") {
            break r.split_whitespace().next().unwrap().to_string();
        }
    };
    std::thread::spawn(move || {
        let _ = out.read_to_end(&mut Vec::new());
    });
    (child, addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn phase(name: &str, size: usize, clients: usize, secs: u64, max_ops: usize, op: Op) {
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_ops || Instant::now() > deadline {
                    break;
                }
                let t = Instant::now();
                op(i).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    if let Ok(path) = std::env::var("COFFRE_BENCH_MARKS") {
        use std::io::Write;
        let unix = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64()
        };
        let end = std::time::SystemTime::now();
        let begin = end - start.elapsed();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(
            f,
            "{name} {size} {clients} {:.6} {:.6} {}",
            unix(begin),
            unix(end),
            lat.len()
        )
        .unwrap();
    }
    lat.sort();
    let ops = lat.len() as f64 / elapsed;
    println!(
        "{name:<4} {:>9} x{clients:<2} {:>8.1} MiB/s {:>8.1} ops/s  p50 {:>7.1} ms  p99 {:>7.1} ms  ({} ops)",
        human(size),
        ops * size as f64 / (1 << 20) as f64,
        ops,
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.len()
    );
}

fn human(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes benches with --list
    }
    let base = std::env::var("COFFRE_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).unwrap();
    let secs: u64 = std::env::var("COFFRE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // COFFRE_BENCH_ENDPOINT: measure a server that is already running (a cluster gateway, say),
    // with the root keys in COFFRE_BENCH_ACCESS_KEY / COFFRE_BENCH_SECRET_KEY.
    let tls = tls_files(dir.path());
    let (mut child, endpoint) = match std::env::var("COFFRE_BENCH_ENDPOINT") {
        Ok(e) => (None, e),
        Err(_) => {
            let (c, e) = start_server(dir.path(), tls.as_ref());
            (Some(c), e)
        }
    };
    let access = std::env::var("COFFRE_BENCH_ACCESS_KEY").unwrap_or_else(|_| "BENCHKEY".into());
    let secret = std::env::var("COFFRE_BENCH_SECRET_KEY").unwrap_or_else(|_| "bench-secret".into());
    // Another server's region (Garage's is `garage` unless configured): what SigV4 signs.
    let region = std::env::var("COFFRE_BENCH_REGION").unwrap_or_else(|_| "fr-par".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let conf = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .endpoint_url(&endpoint)
            .credentials_provider(Credentials::new(access.as_str(), secret.as_str(), None, None, "bench"))
            .force_path_style(true);
        let conf = match &tls {
            Some((_, _, pem)) => {
                use aws_smithy_http_client::tls;
                let trust = tls::TrustStore::empty().with_pem_certificate(pem.as_bytes());
                let http = aws_smithy_http_client::Builder::new()
                    .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                    .tls_context(tls::TlsContext::builder().with_trust_store(trust).build().unwrap())
                    .build_https();
                conf.http_client(http)
            }
            None => conf,
        };
        let c = aws_sdk_s3::Client::from_conf(conf.build());
        // A peer measured twice already has it.
        if let Err(e) = c.create_bucket().bucket("bench").send().await {
            let e = e.into_service_error();
            assert!(
                e.is_bucket_already_owned_by_you(),
                "creating the bench bucket: {e:?}"
            );
        }
        if std::env::var("COFFRE_BENCH_POLICY").is_ok_and(|v| v == "1") {
            // What a real bucket carries: a grant with a condition, a Deny that never matches.
            let policy = r#"{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::partner:root"}, "Action": ["s3:GetObject", "s3:ListBucket"],
                 "Resource": ["arn:aws:s3:::bench", "arn:aws:s3:::bench/*"], "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::bench/*",
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}, "StringLike": {"aws:UserAgent": "forbidden-*"}}}]}"#;
            c.put_bucket_policy().bucket("bench").policy(policy).send().await.unwrap();
        }
        println!(
            "coffre load benchmark: {endpoint}, {secs} s per phase, data in {}",
            dir.path().display()
        );
        let sizes: Option<Vec<usize>> = std::env::var("COFFRE_BENCH_SIZES")
            .ok()
            .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
        let clients_override: Option<usize> = std::env::var("COFFRE_BENCH_CLIENTS").ok().and_then(|s| s.parse().ok());
        let max_ops_override: Option<usize> = std::env::var("COFFRE_BENCH_MAX_OPS").ok().and_then(|s| s.parse().ok());
        let only = std::env::var("COFFRE_BENCH_ONLY").unwrap_or_default();
        for (size, clients, max_ops) in [(4 << 10, 16, 100_000), (1 << 20, 8, 4_000), (64 << 20, 4, 64)] {
            let max_ops = max_ops_override.unwrap_or(max_ops);
            if sizes.as_ref().is_some_and(|s| !s.contains(&size)) {
                continue;
            }
            let clients = clients_override.unwrap_or(clients);
            let body = Bytes::from((0..size).map(|i| (i * 31 + 7) as u8).collect::<Vec<u8>>());
            let written = Arc::new(AtomicUsize::new(0));
            let (c1, b1, w1) = (c.clone(), body.clone(), written.clone());
            let streamed = tls.is_some();
            let put: Op = Arc::new(move |i| {
                let (c, b, w) = (c1.clone(), b1.clone(), w1.clone());
                Box::pin(async move {
                    // Over HTTPS the body streams, as from a file: the SDK then sends it
                    // unsigned with a CRC32 trailer (aws-chunked). A body it holds in memory
                    // it would sign whole with SHA-256 even over HTTPS.
                    let body = if streamed {
                        ByteStream::from_body_1_x(http_body_util::Full::new(b))
                    } else {
                        ByteStream::from(b)
                    };
                    c.put_object()
                        .bucket("bench")
                        .key(format!("{size}/{i}"))
                        .body(body)
                        .send()
                        .await
                        .unwrap();
                    w.fetch_max(i + 1, Ordering::Relaxed);
                })
            });
            if only != "GET" {
                phase("PUT", size, clients, secs, max_ops, put).await;
            }
            if only == "PUT" {
                continue;
            }
            let n = written.load(Ordering::Relaxed).max(1);
            let c2 = c.clone();
            let get: Op = Arc::new(move |i| {
                let c = c2.clone();
                Box::pin(async move {
                    let r = c
                        .get_object()
                        .bucket("bench")
                        .key(format!("{size}/{}", i % n))
                        .send()
                        .await;
                    if let Ok(mut r) = r {
                        // Counted as it streams: a load generator that gathered every body
                        // into one buffer would spend its CPU (on this machine's two cores)
                        // faulting in fresh pages for it.
                        let mut got = 0;
                        while let Some(chunk) = r.body.try_next().await.unwrap() {
                            got += chunk.len();
                        }
                        assert_eq!(got, size);
                    }
                })
            });
            phase("GET", size, clients, secs, max_ops * 4, get).await;
        }
    });
    if let Some(child) = child.as_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
