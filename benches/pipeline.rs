//! Throughput of each stage of the data path and of the whole PUT/GET pipeline on local shard
//! stores, in the same run, so that the pipeline can be compared with its slowest stage.
//! `cargo bench --bench pipeline`; results in docs/performance.md.

use bytes::Bytes;
use coffre_crypto::{DataKey, ObjectIdentity, PackageCipher, PACKAGE_SIZE};
use coffre_data::{read_part, write_part, Codec, LocalShardStore, PartReader, ShardStore, StripeLayout, WriteTarget};
use coffre_types::{Scheme, VersionId};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;

const STRIPE: usize = 4 << 20;

fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn stages(c: &mut Criterion) {
    let plain = input(STRIPE);
    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Bytes(STRIPE as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));

    g.bench_function("md5", |b| {
        b.iter(|| {
            use md5::Digest;
            md5::Md5::digest(&plain)
        })
    });
    g.bench_function("sha256", |b| {
        b.iter(|| ring::digest::digest(&ring::digest::SHA256, &plain))
    });
    g.bench_function("blake3", |b| b.iter(|| blake3::hash(&plain)));
    g.bench_function("crc32c", |b| {
        b.iter(|| crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &plain))
    });

    let dk = DataKey::random();
    let cipher = PackageCipher::new(
        &dk,
        &ObjectIdentity {
            bucket: "b",
            key: "k",
            version: &[1; 16],
        },
    );
    g.bench_function("aes256gcm_packages", |b| {
        let mut buf = Vec::with_capacity(STRIPE + 1024);
        b.iter(|| {
            buf.clear();
            for (j, chunk) in plain.chunks(PACKAGE_SIZE).enumerate() {
                let start = buf.len();
                buf.extend_from_slice(chunk);
                cipher.seal(j as u64, false, &mut buf, start);
            }
        })
    });

    let scheme = Scheme::DEFAULT;
    let codec = Codec::new(scheme);
    let shard_len = STRIPE / 4;
    let mut encoded = vec![0u8; 6 * shard_len];
    encoded[..STRIPE].copy_from_slice(&plain);
    g.bench_function("rs_encode_4+2", |b| {
        b.iter(|| codec.encode(&mut encoded, shard_len).unwrap())
    });
    g.bench_function("rs_reconstruct_4+2_two_lost", |b| {
        b.iter(|| {
            let mut shards: Vec<Option<Vec<u8>>> = encoded.chunks(shard_len).map(|s| Some(s.to_vec())).collect();
            shards[0] = None;
            shards[2] = None;
            codec.reconstruct_data(&mut shards).unwrap();
        })
    });
    g.finish();
}

fn disk(c: &mut Criterion) {
    // Sequential append + fdatasync to the store's disk: the floor a PUT writes 1.5× against.
    let dir = tempfile::tempdir_in(std::env::var("COFFRE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let shard = Bytes::from(input(1 << 20));
    let store = LocalShardStore::open("bench", dir.path()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("disk");
    g.throughput(Throughput::Bytes(8 << 20))
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    let mut n = 0u32;
    g.bench_function("segment_append_fsync_8x1MiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                let puts = (0..8).map(|i| {
                    let id = coffre_types::ShardId {
                        version: VersionId([0; 16]),
                        part: 0,
                        stripe: n * 8 + i,
                        index: 0,
                    };
                    store.put(id, shard.clone())
                });
                futures_util::future::join_all(puts).await;
            });
            n += 1;
        })
    });
    g.bench_function("file_per_shard_8x1MiB", |b| {
        let dir2 = tempfile::tempdir_in(dir.path()).unwrap();
        let mut m = 0u64;
        b.iter(|| {
            use std::io::Write;
            let ths: Vec<_> = (0..8)
                .map(|_| {
                    m += 1;
                    let (p, d) = (dir2.path().join(format!("{m}.tmp")), dir2.path().join(format!("{m}")));
                    let shard = shard.clone();
                    std::thread::spawn(move || {
                        let mut f = std::fs::File::create(&p).unwrap();
                        f.write_all(&shard).unwrap();
                        f.sync_data().unwrap();
                        std::fs::rename(&p, &d).unwrap();
                    })
                })
                .collect();
            for t in ths {
                t.join().unwrap();
            }
            std::fs::File::open(dir2.path()).unwrap().sync_all().unwrap();
        })
    });
    // Small shards (a 4+2 PUT of a 16 KiB object makes six of ~4 KiB): where file creation hurts.
    let small = Bytes::from(input(4096));
    g.throughput(Throughput::Elements(64));
    g.bench_function("segment_append_fsync_64x4KiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                let puts = (0..64).map(|i| {
                    let id = coffre_types::ShardId {
                        version: VersionId([1; 16]),
                        part: 0,
                        stripe: n * 64 + i,
                        index: 0,
                    };
                    store.put(id, small.clone())
                });
                futures_util::future::join_all(puts).await;
            });
            n += 1;
        })
    });
    g.bench_function("file_per_shard_64x4KiB", |b| {
        let dir2 = tempfile::tempdir_in(dir.path()).unwrap();
        let mut m = 0u64;
        b.iter(|| {
            use std::io::Write;
            let ths: Vec<_> = (0..8)
                .map(|_| {
                    let paths: Vec<_> = (0..8)
                        .map(|_| {
                            m += 1;
                            (dir2.path().join(format!("{m}.tmp")), dir2.path().join(format!("{m}")))
                        })
                        .collect();
                    let small = small.clone();
                    std::thread::spawn(move || {
                        for (p, d) in paths {
                            let mut f = std::fs::File::create(&p).unwrap();
                            f.write_all(&small).unwrap();
                            f.sync_data().unwrap();
                            std::fs::rename(&p, &d).unwrap();
                        }
                    })
                })
                .collect();
            for t in ths {
                t.join().unwrap();
            }
            std::fs::File::open(dir2.path()).unwrap().sync_all().unwrap();
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir_in(std::env::var("COFFRE_BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let stores: Vec<Arc<dyn ShardStore>> = (0..6)
        .map(|i| {
            Arc::new(LocalShardStore::open(format!("n{i}"), &dir.path().join(format!("n{i}"))).unwrap())
                as Arc<dyn ShardStore>
        })
        .collect();
    let size = 64 << 20;
    let body = Bytes::from(input(size));
    let dk = DataKey::random();
    let layout = StripeLayout::new(Scheme::DEFAULT);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(size as u64))
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    let mut last = None;
    g.bench_function("put_64MiB_4+2", |b| {
        b.iter(|| {
            let version = VersionId::random();
            let cipher = Arc::new(PackageCipher::new(
                &dk,
                &ObjectIdentity {
                    bucket: "b",
                    key: "k",
                    version: &version.0,
                },
            ));
            // 1 MiB body chunks, as a client connection would deliver them.
            let chunks: Vec<Result<Bytes, std::io::Error>> = (0..size)
                .step_by(1 << 20)
                .map(|o| Ok(body.slice(o..o + (1 << 20))))
                .collect();
            let target = WriteTarget {
                budget: None,
                size_hint: None,
                layout,
                stores: stores.clone(),
                version,
                part: 0,
                cipher: cipher.clone(),
            };
            let w = rt
                .block_on(write_part(target, futures_util::stream::iter(chunks)))
                .unwrap();
            last = Some((version, cipher, w.shard_hashes));
        })
    });
    let (version, cipher, hashes) = last.unwrap();
    let reader = PartReader {
        layout,
        stores: stores.iter().cloned().map(Some).collect(),
        version,
        part: 0,
        size: size as u64,
        shard_hashes: Arc::new(hashes),
        cipher,
        damaged: None,
        hold: None,
        budget: None,
    };
    g.bench_function("get_64MiB_4+2", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut rx = read_part(reader.clone(), 0, size as u64);
                let mut n = 0;
                while let Some(x) = rx.recv().await {
                    n += x.unwrap().len();
                }
                assert_eq!(n, size);
            })
        })
    });
    let mut degraded = reader.clone();
    degraded.stores[0] = None;
    degraded.stores[3] = None;
    g.bench_function("get_64MiB_4+2_two_nodes_lost", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut rx = read_part(degraded.clone(), 0, size as u64);
                while let Some(x) = rx.recv().await {
                    x.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, stages, disk, pipeline);
criterion_main!(benches);
