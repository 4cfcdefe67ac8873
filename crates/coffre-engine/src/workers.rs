//! The engine's background work as named workers (`coffre_types::background`): each has a
//! state, counters, a knob, and stops cleanly. Which run on the metadata leader only (they
//! change what the cluster shares) and which on every gateway is each one's `leader_only`
//! (docs/architecture.md lists them).

use crate::Engine;
use coffre_types::background::{Step, StepFuture, Worker, WorkerCtl};
use std::sync::Arc;
use std::time::Duration;

/// Removes the shards of deleted and replaced versions (leader).
pub struct GcWorker(pub Arc<Engine>);

impl Worker for GcWorker {
    fn name(&self) -> &'static str {
        "gc"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_millis(500)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let n = self.0.collect_garbage().await.map_err(|e| e.to_string())?;
            ctl.count("versions", n as u64);
            Ok(if n > 0 { Step::Busy } else { Step::Idle })
        })
    }
}

/// Aborts multipart uploads left incomplete past `max_age`, and (replicated metadata) writes
/// whose gateway never committed them (leader).
pub struct ExpiryWorker {
    pub engine: Arc<Engine>,
    pub max_age: Duration,
}

impl Worker for ExpiryWorker {
    fn name(&self) -> &'static str {
        "expiry"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(60)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let uploads = self
                .engine
                .expire_uploads(self.max_age)
                .await
                .map_err(|e| e.to_string())?;
            ctl.count("uploads", uploads as u64);
            if self.engine.meta().is_replica() {
                let writes = self
                    .engine
                    .expire_intents(coffre_types::limits::INTENT_EXPIRY)
                    .await
                    .map_err(|e| e.to_string())?;
                if writes > 0 {
                    tracing::warn!(writes, "writes never committed: shards queued for GC");
                }
                ctl.count("writes", writes as u64);
            }
            Ok(Step::Idle)
        })
    }
}

/// Applies buckets' lifecycle rules, a pass every `every`, at most `rate` removals a second
/// (leader).
pub struct LifecycleWorker {
    pub engine: Arc<Engine>,
    pub every: Duration,
}

impl Worker for LifecycleWorker {
    fn name(&self) -> &'static str {
        "lifecycle"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        self.every
    }
    fn rate(&self) -> Option<(&'static str, u64)> {
        Some(("removals/s", coffre_types::limits::LIFECYCLE_RATE as u64))
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let n = self
                .engine
                .lifecycle_pass(&|| ctl.rate())
                .await
                .map_err(|e| e.to_string())?;
            ctl.count("removed", n);
            Ok(Step::Idle)
        })
    }
}

/// Rebuilds the shards degraded writes could not place, once their nodes or compliant
/// replacements can take them (leader).
pub struct RepairWorker(pub Arc<Engine>);

impl Worker for RepairWorker {
    fn name(&self) -> &'static str {
        "repair"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(2)
    }
    fn rate(&self) -> Option<(&'static str, u64)> {
        // Unlimited by default: redundancy comes back as fast as the disks allow.
        Some(("MiB/s", 0))
    }
    // The rate is read by the repair as it writes (`Engine::repair_pacer`): a step is a batch.
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let n = self.0.heal().await.map_err(|e| e.to_string())?;
            ctl.count("shards", n as u64);
            Ok(if n > 0 { Step::Busy } else { Step::Idle })
        })
    }
}

/// Writes the audit entries of changes whose process stopped before them, and forgets the
/// notes of those written (every gateway: each settles its own).
pub struct AuditNotesWorker(pub Arc<Engine>);

impl Worker for AuditNotesWorker {
    fn name(&self) -> &'static str {
        "audit-notes"
    }
    fn leader_only(&self) -> bool {
        false
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(5)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let n = self.0.settle_audit_notes().await.map_err(|e| e.to_string())?;
            if n > 0 {
                tracing::warn!(entries = n, "audit entries recovered from their notes");
            }
            ctl.count("recovered", n as u64);
            Ok(Step::Idle)
        })
    }
}

/// How a gateway learns of nodes another gateway admitted: builds a store for a recorded one.
pub type NodeConnector = Box<crate::topology::ConnectNode>;

/// Asks every node for its free space (placement, metrics, up or down), and follows the node
/// list other gateways change (every gateway).
pub struct HeartbeatWorker {
    pub engine: Arc<Engine>,
    /// In a cluster with replicated metadata: how to reach nodes admitted elsewhere.
    pub connect: Option<NodeConnector>,
}

impl Worker for HeartbeatWorker {
    fn name(&self) -> &'static str {
        "heartbeat"
    }
    fn leader_only(&self) -> bool {
        false
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(2)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            if let Some(connect) = &self.connect {
                let changed = self.engine.sync_nodes(connect).await.map_err(|e| e.to_string())?;
                if changed > 0 {
                    tracing::info!(nodes = changed, "node list changed by another gateway");
                }
                ctl.count("node-changes", changed as u64);
            }
            self.engine.heartbeat().await;
            ctl.count("rounds", 1);
            Ok(Step::Idle)
        })
    }
}

/// Hands the nodes' scrubs the cluster's settings (its rate knob, MiB/s per node, and the
/// period) and takes over their findings, queueing each for repair (leader).
pub struct ScrubWorker {
    pub engine: Arc<Engine>,
    pub period: Duration,
    /// The rate knob's default, MiB/s per node.
    pub default_rate_mib: u64,
}

impl Worker for ScrubWorker {
    fn name(&self) -> &'static str {
        "scrub"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(2)
    }
    fn rate(&self) -> Option<(&'static str, u64)> {
        Some(("MiB/s per node", self.default_rate_mib))
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let request = coffre_data::ScrubRequest {
                rate_mib: Some(ctl.rate()),
                period_secs: Some(self.period.as_secs()),
                ..Default::default()
            };
            let (nodes, queued) = self.engine.scrub_round(request, true).await;
            ctl.count("queued", queued as u64);
            let failed: Vec<String> = nodes
                .iter()
                .filter_map(|n| n.error.as_ref().map(|e| format!("{}: {e}", n.node)))
                .collect();
            if !failed.is_empty() && failed.len() == nodes.len() {
                return Err(failed.join("; "));
            }
            Ok(Step::Idle)
        })
    }
}

/// Walks the parts of nodes removed for good or draining and marks their shards there to be
/// rebuilt elsewhere, which queues them for `repair` (leader); the repairs empty the node's
/// index entries. A node is walked again a minute after its last walk while entries remain (a
/// write committed just after the removal or drain began may have added one; marking what is
/// marked already writes nothing).
/// With `dead_after`, it first declares dead the nodes down that long.
pub struct EvacuateWorker {
    pub engine: Arc<Engine>,
    dead_after: Option<Duration>,
    down_since: std::collections::HashMap<String, std::time::Instant>,
    walked: std::collections::HashMap<String, std::time::Instant>,
    cursor: std::collections::HashMap<String, coffre_types::VersionId>,
}

impl EvacuateWorker {
    pub fn new(engine: Arc<Engine>, dead_after: Option<Duration>) -> EvacuateWorker {
        EvacuateWorker {
            engine,
            dead_after,
            down_since: Default::default(),
            walked: Default::default(),
            cursor: Default::default(),
        }
    }
}

/// Parts marked per step of `EvacuateWorker`.
const EVACUATE_BATCH: usize = 256;
/// How long after a walk a lost node that still holds entries is walked again.
const EVACUATE_REWALK: Duration = Duration::from_secs(60);

impl Worker for EvacuateWorker {
    fn name(&self) -> &'static str {
        "evacuate"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(2)
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            if let Some(after) = self.dead_after {
                let declared = self
                    .engine
                    .declare_dead_nodes(after, &mut self.down_since)
                    .await
                    .map_err(|e| e.to_string())?;
                ctl.count("declared_dead", declared.len() as u64);
            }
            let lost = self.engine.evacuating_nodes().await.map_err(|e| e.to_string())?;
            let due = |n: &String| self.walked.get(n).is_none_or(|t| t.elapsed() >= EVACUATE_REWALK);
            let Some(node) = lost.into_iter().find(due) else {
                return Ok(Step::Idle);
            };
            let after = self.cursor.get(&node).copied();
            let (parts, marked) = self
                .engine
                .evacuate_batch(&node, after, EVACUATE_BATCH)
                .await
                .map_err(|e| e.to_string())?;
            ctl.count("parts", parts.len() as u64);
            ctl.count("marked", marked as u64);
            match parts.last() {
                Some(p) if parts.len() == EVACUATE_BATCH => {
                    self.cursor.insert(node, p.part);
                }
                _ => {
                    if !self.walked.contains_key(&node) {
                        tracing::info!(node, "every part of the node is queued to be rebuilt elsewhere");
                    }
                    self.cursor.remove(&node);
                    self.walked.insert(node, std::time::Instant::now());
                }
            }
            Ok(Step::Busy)
        })
    }
}

/// Moves shards from the nodes holding more than their share to the others once asked
/// (`coffre admin nodes rebalance`), at most `rate` MiB queued a second (leader).
pub struct RebalanceWorker(pub Arc<Engine>);

impl Worker for RebalanceWorker {
    fn name(&self) -> &'static str {
        "rebalance"
    }
    fn leader_only(&self) -> bool {
        true
    }
    fn idle_wait(&self) -> Duration {
        Duration::from_secs(2)
    }
    fn rate(&self) -> Option<(&'static str, u64)> {
        Some(("MiB/s", 64))
    }
    fn step<'a>(&'a mut self, ctl: &'a WorkerCtl) -> StepFuture<'a> {
        Box::pin(async move {
            let rate = match ctl.rate() {
                0 => u64::MAX,
                r => r.saturating_mul(1 << 20),
            };
            let began = tokio::time::Instant::now();
            let queued = self.0.rebalance_step(rate).await.map_err(|e| e.to_string())?;
            if queued == 0 {
                return Ok(Step::Idle);
            }
            ctl.count("bytes", queued);
            // Paced: what was queued takes at least its share of a second at the rate.
            let until = began + Duration::from_secs_f64(queued as f64 / rate as f64);
            while tokio::time::Instant::now() < until && !ctl.interrupted() {
                tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_millis(200))).await;
            }
            Ok(Step::Busy)
        })
    }
}
