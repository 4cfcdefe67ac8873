//! The node's shard index at scale: writes COFFRE_INDEX_SHARDS shards (default 10⁷, of
//! COFFRE_INDEX_SHARD_BYTES bytes each, default 128) straight to a `LocalShardStore` with
//! COFFRE_INDEX_WRITERS concurrent writers (default 64: the store's group commit syncs once for
//! many), then measures, each in a fresh process so that its memory is its own:
//! - the start of the store (open), and the resident memory it adds, after 100 000 random reads;
//! - with COFFRE_INDEX_REBUILD=1, the start without the index (as a store from before it, or
//!   one whose index was lost): every segment scanned.
//!
//! `cargo bench --bench node_index` (COFFRE_INDEX_DIR to keep the store somewhere else than a
//! temporary directory, which is removed at the end; a directory given is kept).

use bytes::Bytes;
use coffre_data::{LocalShardStore, ShardStore};
use coffre_types::{ShardId, VersionId};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The i-th shard: spread over versions as an object's shards are.
fn shard(i: u64) -> ShardId {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&blake3::hash(&(i / 6).to_le_bytes()).as_bytes()[..8]);
    ShardId {
        version: VersionId(v),
        part: 0,
        stripe: 0,
        index: (i % 6) as u8,
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(128)
        .build()
        .expect("runtime")
}

fn write(dir: &Path, shards: u64, size: usize, writers: u64) {
    let rt = runtime();
    let store = Arc::new(LocalShardStore::open("bench", dir).expect("open"));
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (store, next) = (store.clone(), next.clone());
                tokio::spawn(async move {
                    let data = Bytes::from(vec![0x5A; size]);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= shards {
                            break;
                        }
                        store.put(shard(i), data.clone()).await.expect("put");
                        if i > 0 && i % 1_000_000 == 0 {
                            eprintln!("  {i} shards written, {:.0} s", started.elapsed().as_secs_f64());
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
    });
    let secs = started.elapsed().as_secs_f64();
    store.flush_index().expect("index");
    println!(
        "write     {shards} shards of {size} B with {writers} writers: {secs:.1} s, {:.0} shards/s",
        shards as f64 / secs
    );
}

/// Runs in a fresh process: the start, then random reads, with the memory each adds.
fn open_and_read(dir: &Path, shards: u64, label: &str) {
    let rt = runtime();
    let before = resident_bytes();
    let started = Instant::now();
    let store = LocalShardStore::open("bench", dir).expect("open");
    let open_secs = started.elapsed().as_secs_f64();
    let after_open = resident_bytes();
    let reads = 100_000u64;
    let started = Instant::now();
    rt.block_on(async {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..reads {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            store.get(shard(x % shards)).await.expect("get");
        }
    });
    let read_secs = started.elapsed().as_secs_f64();
    let after_reads = resident_bytes();
    println!(
        "{label:<9} open {open_secs:.2} s, +{:.1} MiB resident ({:.2} B/shard); {reads} random reads {:.1} µs each, then +{:.1} MiB ({:.2} B/shard)",
        (after_open.saturating_sub(before)) as f64 / 1048576.0,
        (after_open.saturating_sub(before)) as f64 / shards as f64,
        read_secs * 1e6 / reads as f64,
        (after_reads.saturating_sub(before)) as f64 / 1048576.0,
        (after_reads.saturating_sub(before)) as f64 / shards as f64,
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks benches to list themselves
    }
    let shards = env_u64("COFFRE_INDEX_SHARDS", 10_000_000).max(1);
    let size = env_u64("COFFRE_INDEX_SHARD_BYTES", 128) as usize;
    let writers = env_u64("COFFRE_INDEX_WRITERS", 64).max(1);
    if let Ok(phase) = std::env::var("COFFRE_INDEX_PHASE") {
        let dir = std::env::var("COFFRE_INDEX_STORE").expect("store dir");
        return open_and_read(Path::new(&dir), shards, &phase);
    }
    let temp;
    let dir = match std::env::var("COFFRE_INDEX_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_path_buf()
        }
    };
    let store_dir = dir.join("store");
    println!("node index bench: {}", store_dir.display());
    write(&store_dir, shards, size, writers);
    let phase = |label: &str| {
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .env("COFFRE_INDEX_PHASE", label)
            .env("COFFRE_INDEX_STORE", &store_dir)
            .env("COFFRE_INDEX_SHARDS", shards.to_string())
            .status()
            .expect("phase");
        assert!(status.success(), "{label} failed");
    };
    phase("start");
    if std::env::var("COFFRE_INDEX_REBUILD").is_ok_and(|v| v == "1") {
        std::fs::remove_dir_all(store_dir.join("index")).expect("remove index");
        phase("rebuild");
        phase("restart");
    }
    let segments = std::fs::read_dir(&store_dir).map(|d| d.count()).unwrap_or(0);
    let index_bytes: u64 = std::fs::read_dir(store_dir.join("index"))
        .map(|d| d.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0);
    println!(
        "on disk   {segments} files; the index takes {:.1} MiB ({:.1} B/shard)",
        index_bytes as f64 / 1048576.0,
        index_bytes as f64 / shards as f64
    );
}
