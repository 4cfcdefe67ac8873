//! Emptying a node: one lost for good (`coffre admin nodes remove --dead`: its shards are gone
//! with it) or one draining (`coffre admin nodes drain`: it is to be retired). Every part it
//! holds (the `node_parts` index, not a scan of every object) has its shards there marked
//! degraded where the part is, which queues its key for the `repair` worker; the repair
//! rebuilds each elsewhere (and deletes the copy a draining node still has), and the index
//! entries go as it does, so what is left of a node is the sum of its entries.

use crate::{Engine, EngineResult};
use coffre_meta::{MetaCommand, NodeHoldings, NodePart, Outcome};
use coffre_types::VersionId;
use std::sync::atomic::Ordering;

impl Engine {
    /// Nodes that hold parts in the index but are in neither this gateway's topology nor the
    /// metadata's node records: removed, their shards lost. (The records are what every
    /// gateway shares: a node admitted elsewhere and not yet known here is not lost.)
    pub async fn lost_nodes(&self) -> EngineResult<Vec<String>> {
        let (indexed, recorded) = self.meta_call(|m| Ok((m.indexed_nodes()?, m.nodes()?))).await?;
        let known = self.nodes();
        Ok(indexed
            .into_iter()
            .filter(|n| !known.iter().any(|k| k.id() == n) && !recorded.iter().any(|(_, r)| r.id == *n))
            .collect())
    }

    /// Nodes to empty: the lost ones and the draining ones.
    pub async fn evacuating_nodes(&self) -> EngineResult<Vec<String>> {
        let mut out = self.lost_nodes().await?;
        out.extend(
            self.nodes()
                .into_iter()
                .filter(|n| n.is_draining())
                .map(|n| n.id().to_string()),
        );
        Ok(out)
    }

    /// What `node` still holds, as the index says (for a lost node: what is left to repair).
    pub async fn node_holdings(&self, node: &str) -> EngineResult<NodeHoldings> {
        let node = node.to_string();
        self.meta_call(move |m| m.node_holdings(&node)).await
    }

    /// Marks the shards of up to `batch` parts of node `node` (after `after`) to be rebuilt
    /// elsewhere, which queues them for repair. Returns the parts looked at and how many were marked.
    pub async fn evacuate_batch(
        &self,
        node: &str,
        after: Option<VersionId>,
        batch: usize,
    ) -> EngineResult<(Vec<NodePart>, usize)> {
        let n = node.to_string();
        let parts = self
            .meta_call(move |m| m.parts_on_node(&n, after.as_ref(), batch))
            .await?;
        let mut marked = 0;
        for p in &parts {
            let cmd = MetaCommand::EvacuatePart {
                node: node.to_string(),
                part: p.part,
            };
            if self.meta_call(move |m| m.apply(cmd)).await? == Outcome::Done(true) {
                marked += 1;
            }
        }
        if marked > 0 {
            // Queued: the repair starts now rather than at its next idle round.
            let _ = self.workers.wake("repair");
        }
        Ok((parts, marked))
    }
}

/// The most of a cluster's nodes that may be down for one of them to be declared dead on its
/// own (`dead_after`): beyond a quarter, the gateway is more likely cut off than the nodes
/// gone (Ceph's `mon_osd_min_in_ratio` makes the same call).
const DEAD_AFTER_MAX_DOWN: f64 = 0.25;

impl Engine {
    /// Declares dead the nodes down for `dead_after` or more (`down_since`: when each down
    /// node was first seen down, kept by the caller): each is removed as by `coffre admin
    /// nodes remove --dead`, with its audit entry; its shards are then rebuilt elsewhere.
    /// Nothing is declared while more than a quarter of the nodes are down. Returns the nodes
    /// declared.
    pub async fn declare_dead_nodes(
        &self,
        dead_after: std::time::Duration,
        down_since: &mut std::collections::HashMap<String, std::time::Instant>,
    ) -> EngineResult<Vec<String>> {
        let nodes = self.nodes();
        let down: Vec<String> = nodes
            .iter()
            .filter(|n| !n.store.is_up())
            .map(|n| n.id().to_string())
            .collect();
        down_since.retain(|id, _| down.contains(id));
        let now = std::time::Instant::now();
        for id in &down {
            down_since.entry(id.clone()).or_insert(now);
        }
        if down.len() as f64 > nodes.len() as f64 * DEAD_AFTER_MAX_DOWN {
            return Ok(Vec::new());
        }
        let mut declared = Vec::new();
        for id in down {
            if down_since.get(&id).is_none_or(|t| t.elapsed() < dead_after) {
                continue;
            }
            let mut entry = coffre_audit::Event::system("DeclareNodeDead", "", "", "");
            entry.detail = Some(format!(
                "node {id} down for {} s (dead_after {} s): its shards are rebuilt elsewhere",
                down_since[&id].elapsed().as_secs(),
                dead_after.as_secs()
            ));
            let removed = self
                .system_change(entry.clone(), self.remove_node(&id), |r| match r {
                    Some(_) => vec![entry],
                    None => vec![],
                })
                .await?;
            if removed.is_some() {
                tracing::warn!(
                    node = id,
                    "node down for dead_after: declared dead, its shards are rebuilt elsewhere"
                );
                down_since.remove(&id);
                declared.push(id);
            }
        }
        Ok(declared)
    }
}

/// Where a rebalance stands (`coffre admin nodes rebalance`).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RebalanceStatus {
    /// Asked and not finished.
    pub running: bool,
    /// Bytes the nodes over their share hold beyond it (about: what is left to move).
    pub bytes_to_move: u64,
    /// Parts queued to move so far.
    pub parts_queued: u64,
    /// Rounds in a row that left as much to move as the one before.
    #[serde(skip)]
    pub stalled_rounds: u32,
}

/// A node holding less than this over the mean (a share of it) is balanced enough.
const REBALANCE_TOLERANCE: f64 = 0.05;

impl Engine {
    /// Starts a rebalance: the nodes holding more than their share move shards to the others.
    pub fn ask_rebalance(&self) {
        let mut st = self.rebalance.lock().unwrap_or_else(|p| p.into_inner());
        *st = RebalanceStatus {
            running: true,
            ..Default::default()
        };
        self.rebalance_asked.store(true, Ordering::Relaxed);
    }

    /// Marks (or unmarks) the shards of `part` on `node` as moving off it (a rebalance): the
    /// repair rebuilds them elsewhere, not in place.
    pub(crate) fn moving_off(&self, node: &str, part: VersionId, on: bool) {
        let mut set = self.moving_off.lock().unwrap_or_else(|p| p.into_inner());
        if on {
            set.insert((node.to_string(), part));
        } else {
            set.remove(&(node.to_string(), part));
        }
    }

    pub(crate) fn is_moving_off(&self, node: &str, part: VersionId) -> bool {
        self.moving_off
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(node.to_string(), part))
    }

    pub fn rebalance_status(&self) -> RebalanceStatus {
        self.rebalance.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One step of a rebalance: waits for the moves it queued before to be done (what each
    /// node holds is then true), then queues parts of the node most over the mean to move, up
    /// to its excess and `max_bytes`, choosing parts some node under the mean does not hold
    /// (one it can go to). Returns the bytes queued (0: nothing to do now, or done).
    pub async fn rebalance_step(&self, max_bytes: u64) -> EngineResult<u64> {
        if !self.rebalance_asked.load(Ordering::Relaxed) {
            return Ok(0);
        }
        let moving = !self.moving_off.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        if moving {
            if self.repair_pending(1).await? > 0 {
                return Ok(0);
            }
            // The repair queue is empty: what is left in the set will not be repaired (its
            // object was replaced or deleted meanwhile).
            self.moving_off.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        // The nodes that take shards: up, not draining.
        let nodes: Vec<String> = self
            .nodes()
            .into_iter()
            .filter(|n| n.store.is_up() && !n.is_draining())
            .map(|n| n.id().to_string())
            .collect();
        let mut held = Vec::with_capacity(nodes.len());
        for n in &nodes {
            held.push((n.clone(), self.node_holdings(n).await?.bytes));
        }
        let mean = held.iter().map(|(_, b)| *b).sum::<u64>() / held.len().max(1) as u64;
        let slack = (mean as f64 * REBALANCE_TOLERANCE) as u64;
        let to_move: u64 = held
            .iter()
            .filter(|(_, b)| *b > mean + slack)
            .map(|(_, b)| b - mean)
            .sum();
        let under: Vec<String> = held.iter().filter(|(_, b)| *b < mean).map(|(n, _)| n.clone()).collect();
        let over = held
            .iter()
            .filter(|(_, b)| *b > mean + slack)
            .max_by_key(|(_, b)| *b)
            .cloned();
        let finish = |engine: &Engine| {
            let mut st = engine.rebalance.lock().unwrap_or_else(|p| p.into_inner());
            st.bytes_to_move = 0;
            st.running = false;
            engine.rebalance_asked.store(false, Ordering::Relaxed);
        };
        let Some((node, bytes)) = over else {
            finish(self);
            return Ok(0);
        };
        {
            // A round that left as much to move as the one before (writes fill the nodes as
            // fast as it empties them, parts too big to move) counts as stalled; three end it.
            let mut st = self.rebalance.lock().unwrap_or_else(|p| p.into_inner());
            if st.parts_queued > 0 && to_move >= st.bytes_to_move {
                st.stalled_rounds += 1;
            } else {
                st.stalled_rounds = 0;
            }
            st.bytes_to_move = to_move;
            if st.stalled_rounds >= 3 {
                drop(st);
                tracing::info!(left = to_move, "rebalance: no progress over three rounds, ended");
                finish(self);
                return Ok(0);
            }
        }
        let mut excess = (bytes - mean).min(max_bytes.max(1));
        let (mut queued, mut parts, mut after) = (0u64, 0u64, None);
        'walk: while excess > 0 {
            let n = node.clone();
            let batch = self
                .meta_call(move |m| m.parts_on_node(&n, after.as_ref(), 256))
                .await?;
            if batch.is_empty() {
                break;
            }
            for p in &batch {
                after = Some(p.part);
                // Only parts that fit what is left (moving more would tip another node over)
                // and that a node under the mean can take.
                if p.bytes > excess {
                    continue;
                }
                let (under, part) = (under.clone(), p.part);
                let takers = self
                    .meta_call(move |m| {
                        for u in &under {
                            if !m.holds_part(u, &part)? {
                                return Ok(true);
                            }
                        }
                        Ok(false)
                    })
                    .await?;
                if !takers {
                    continue;
                }
                let cmd = MetaCommand::EvacuatePart {
                    node: node.clone(),
                    part: p.part,
                };
                self.moving_off(&node, p.part, true);
                if self.meta_call(move |m| m.apply(cmd)).await? == Outcome::Done(true) {
                    let _ = self.workers.wake("repair");
                    excess -= p.bytes;
                    queued += p.bytes;
                    parts += 1;
                } else {
                    self.moving_off(&node, p.part, false);
                }
                if excess == 0 {
                    break 'walk;
                }
            }
        }
        if queued == 0 {
            // Nothing there moves without overshooting: as balanced as its parts allow.
            finish(self);
            return Ok(0);
        }
        self.rebalance.lock().unwrap_or_else(|p| p.into_inner()).parts_queued += parts;
        tracing::info!(node, parts, bytes = queued, "rebalance: shards queued to move");
        Ok(queued)
    }
}
