//! Whether the scrub's rate knob is honoured: a local store of 96 MiB of shards scrubbed by the
//! real `ScrubWorker` (as a node runs it) at several caps; prints the rate each pass achieved
//! against the cap. `cargo bench --bench scrub_rate` (env: COFFRE_BENCH_DIR for the store).

use bytes::Bytes;
use coffre_data::{LocalShardStore, ScrubRequest, ScrubWorker, ShardStore};
use coffre_types::background::{Leads, Workers};
use coffre_types::{ShardId, VersionId};
use std::sync::Arc;
use std::time::Duration;

const SHARD: usize = 1 << 20;
const SHARDS: u32 = 96;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let base = std::env::var("COFFRE_BENCH_DIR").unwrap_or_else(|_| std::env::temp_dir().display().to_string());
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let store = LocalShardStore::open("bench", dir.path()).expect("store");
    let data = Bytes::from((0..SHARD).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    for i in 0..SHARDS {
        let id = ShardId {
            version: VersionId([7; 16]),
            part: 0,
            stripe: i,
            index: 0,
        };
        store.put(id, data.clone()).await.expect("put");
    }
    let workers = Workers::default();
    let always: Leads = Arc::new(|| true);
    workers.start(Box::new(ScrubWorker::new(vec![store.clone()])), always);
    println!(
        "scrub of {} MiB of shards on one store, asked passes at a rate cap:",
        (SHARDS as usize * SHARD) >> 20
    );
    for cap in [8u64, 16, 32, 0] {
        let before = store.scrub(ScrubRequest::default()).await.expect("status");
        let mut started = None;
        store
            .scrub(ScrubRequest {
                start: true,
                rate_mib: Some(cap),
                ..Default::default()
            })
            .await
            .expect("start");
        // Timed by the store, from the pass's first step (the worker may be in its idle second
        // when asked) to its last.
        loop {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let st = store.scrub(ScrubRequest::default()).await.expect("status");
            if started.is_none() {
                started = st.pass_started_ms;
            }
            if st.passes > before.passes {
                // The store's own clock: from the pass's first step to its end.
                let secs = st.last_pass_done_ms.unwrap_or(0).saturating_sub(started.unwrap_or(0)) as f64 / 1000.0;
                let mib = (st.bytes_checked - before.bytes_checked) as f64 / (1 << 20) as f64;
                let rate = mib / secs.max(0.001);
                match cap {
                    0 => println!("no cap:        {mib:.0} MiB in {secs:.2} s = {rate:.1} MiB/s"),
                    _ => println!(
                        "cap {cap:>3} MiB/s: {mib:.0} MiB in {secs:.2} s = {rate:.1} MiB/s ({:+.1} % of the cap)",
                        100.0 * (rate - cap as f64) / cap as f64
                    ),
                }
                break;
            }
        }
    }
    workers.shutdown(Duration::from_secs(5)).await;
}
