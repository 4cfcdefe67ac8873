//! The audit log at a million events: searching by bucket and key over the last 7 days, and
//! verifying the whole chain. `cargo bench --bench audit`; results in docs/performance.md.

use coffre_engine::audit::{self, AuditConfig, AuditLog, Event, Expectations, HeadStore};
use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVENTS: usize = 1_000_000;
const WRITERS: usize = 512;

#[derive(Default)]
struct Head(Mutex<Option<(u64, audit::Hash)>>);

impl HeadStore for Head {
    fn load(&self) -> Result<Option<(u64, audit::Hash)>, String> {
        Ok(*self.0.lock().unwrap())
    }
    fn record(&self, n: u64, h: &audit::Hash) -> Result<(), String> {
        *self.0.lock().unwrap() = Some((n, *h));
        Ok(())
    }
}

fn event(i: usize) -> Event {
    Event {
        request_id: format!("{i:024X}"),
        tenant: format!("tenant-{}", i % 50),
        principal: format!("arn:aws:iam::tenant-{}:user/u{}", i % 50, i % 7),
        access_key: Some(format!("AKIA{:016}", i % 500)),
        source: Some(format!("10.0.{}.{}:{}", i % 256, i % 200, 40000 + i % 20000)),
        bucket: format!("bucket-{}", i % 1000),
        key: format!("dir-{}/object-{i}", i % 100),
        bytes_in: 4096,
        ms: 3,
        ..Event::now(if i.is_multiple_of(3) { "PutObject" } else { "GetObject" }, "")
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let head = Arc::new(Head::default());
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    let log = rt.block_on(async {
        let log = AuditLog::open(AuditConfig::new(dir.path().to_path_buf(), "bench"), pkcs8.as_ref(), None, head.clone())
            .unwrap();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in (w..EVENTS).step_by(WRITERS) {
                    log.append(event(i)).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "wrote {EVENTS} events with {WRITERS} concurrent writers in {secs:.1} s ({:.0} events/s, each durable before its answer)",
            EVENTS as f64 / secs
        );
        log.checkpoint().await.unwrap();
        log
    });
    let bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "log size: {:.0} MiB ({} bytes per event)",
        bytes as f64 / 1048576.0,
        bytes / EVENTS as u64
    );
    let mut g = c.benchmark_group("audit 1M events");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let since = coffre_types::now_millis() - 7 * 86_400_000;
    g.bench_function("search bucket+key, since 7d", |b| {
        b.iter(|| {
            let q = audit::Query {
                bucket: Some("bucket-777".into()),
                key: Some("dir-77/object-123777".into()),
                since: Some(since),
                ..audit::Query::default()
            };
            let found = audit::search(dir.path(), &q).unwrap();
            assert_eq!(found.len(), 1);
        })
    });
    g.bench_function("search one bucket (1000 events)", |b| {
        b.iter(|| {
            let q = audit::Query {
                bucket: Some("bucket-5".into()),
                limit: Some(10_000),
                ..audit::Query::default()
            };
            assert_eq!(audit::search(dir.path(), &q).unwrap().len(), EVENTS / 1000);
        })
    });
    g.bench_function("verify the whole chain", |b| {
        b.iter(|| {
            let expect = Expectations {
                public_key: log.public_key,
                gateway: Some("bench".into()),
                tenant: None,
                tenant_tag: None,
                head: *head.0.lock().unwrap(),
            };
            let r = audit::verify_dir(dir.path(), None, None, expect).unwrap();
            assert!(r.ok && r.entries == EVENTS as u64, "{:?}", r.problem);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
