//! The background work of local stores, as named workers: their scrub and the compaction of
//! their segments. On a storage node they are its one store's; in the embedded server, its
//! local directories'.

use super::LocalShardStore;
use coffre_types::background::{Step, StepFuture, Worker, WorkerCtl};
use std::time::Duration;

/// The most a scrub step reads of one store (without a rate cap, the slice is not half a
/// second's worth but this), so that pause and stop take effect soon.
const MAX_SLICE: u64 = 256 << 20;

/// Drives the scrub of the process's own stores (on a storage node, its one store; in the
/// embedded server, its local directories): each store at its own pace, findings kept in the
/// store until a gateway takes them over.
pub struct ScrubWorker {
    stores: Vec<LocalShardStore>,
}

impl ScrubWorker {
    pub fn new(stores: Vec<LocalShardStore>) -> ScrubWorker {
        ScrubWorker { stores }
    }
}

impl Worker for ScrubWorker {
    fn name(&self) -> &'static str {
        "scrub-disks"
    }
    fn leader_only(&self) -> bool {
        false
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            // A slice of at most half a second of reading per store, then the pause that
            // keeps each at its pace (the stores of one process are read one after another).
            let began = tokio::time::Instant::now();
            let mut pause = Duration::ZERO;
            let mut busy = false;
            let asked = |stores: &[LocalShardStore]| stores.iter().filter(|s| s.scrub_requested()).count();
            let asked_before = asked(&self.stores);
            for store in &self.stores {
                let pace = store.scrub_pace();
                if pace == 0 {
                    continue;
                }
                let s = store.clone();
                let step = tokio::task::spawn_blocking(move || s.scrub_step((pace / 2).min(MAX_SLICE)))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{}: {e}", store.id))?;
                if !step.idle {
                    busy = true;
                    ctl.count("shards", step.shards);
                    ctl.count("bytes", step.bytes);
                    ctl.count("corrupt", step.corrupt);
                    pause = pause.max(Duration::from_secs_f64(step.bytes as f64 / pace as f64));
                }
            }
            if !busy {
                return Ok(Step::Idle);
            }
            // Waited out here rather than as tranquility: the pace is the store's, not the
            // worker's; a pause or stop cuts it short. From the step's start: the reading
            // itself counts in the time its bytes may take.
            let until = began + pause;
            // An operator's pass asked meanwhile runs at once, not after a slow pace's pause.
            while tokio::time::Instant::now() < until && !ctl.interrupted() && asked(&self.stores) <= asked_before {
                tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_millis(200))).await;
            }
            Ok(Step::Busy)
        })
    }
}

/// Reclaims the space of deleted shards by compacting the stores' segments.
pub struct CompactionWorker(pub Vec<LocalShardStore>);

impl Worker for CompactionWorker {
    fn name(&self) -> &'static str {
        "compaction"
    }
    fn leader_only(&self) -> bool {
        false
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            for s in &self.0 {
                let s = s.clone();
                let reclaimed = tokio::task::spawn_blocking(move || s.compact())
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
                if reclaimed > 0 {
                    tracing::info!(bytes = reclaimed, "compacted shard segments");
                }
                ctl.count("bytes", reclaimed);
            }
            Ok(Step::Idle)
        })
    }
}
