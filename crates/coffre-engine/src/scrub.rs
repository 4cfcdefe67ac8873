//! The gateway's side of the scrub: the nodes walk and verify their own shards (no data
//! comes through a gateway); the metadata leader's `scrub` worker hands them the cluster's
//! settings, takes over what they found, and queues each corrupt or unreadable shard for
//! repair (its part marked degraded, a heal entry for its key), then lets the node forget it.

use crate::{Engine, EngineResult};
pub use coffre_data::{ScrubRequest, ScrubStatus};
use coffre_meta::{MetaCommand, Outcome};
use coffre_types::ShardId;

/// A metric of a node's scrub: name, Prometheus type, value.
type ScrubGauge = (&'static str, &'static str, fn(&ScrubStatus) -> u64);

/// A node's scrub as the gateway last saw it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NodeScrub {
    pub node: String,
    /// `None`: the node did not answer (`error` says why).
    pub status: Option<ScrubStatus>,
    pub error: Option<String>,
}

impl Engine {
    /// Asks every node's scrub where it stands, passing `request` (settings, an immediate
    /// pass); with `collect`, takes over their findings: each is queued for repair, then
    /// acknowledged. Returns every node's answer and how many shards were queued.
    pub async fn scrub_round(&self, request: ScrubRequest, collect: bool) -> (Vec<NodeScrub>, usize) {
        let mut out = Vec::new();
        let mut queued = 0;
        for node in self.nodes() {
            let answer = match node.store.scrub(request.clone()).await {
                Ok(status) if collect && !status.findings.is_empty() => {
                    let (n, acked) = self.queue_findings(&status.findings).await;
                    queued += n;
                    let ack = ScrubRequest {
                        ack: acked,
                        ..Default::default()
                    };
                    node.store.scrub(ack).await
                }
                other => other,
            };
            out.push(match answer {
                Ok(status) => NodeScrub {
                    node: node.id().to_string(),
                    status: Some(status),
                    error: None,
                },
                Err(e) => NodeScrub {
                    node: node.id().to_string(),
                    status: None,
                    error: Some(e.to_string()),
                },
            });
        }
        let mut seen = self.scrub_seen.lock().unwrap_or_else(|p| p.into_inner());
        for n in &out {
            if let Some(st) = &n.status {
                seen.insert(n.node.clone(), st.clone());
            }
        }
        drop(seen);
        (out, queued)
    }

    /// Node `node`'s scrub as last seen by this gateway's `scrub` worker.
    pub fn scrub_seen(&self, node: &str) -> Option<ScrubStatus> {
        self.scrub_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }

    /// Each node's scrub as last seen, in Prometheus' text format (a scrape calls no node).
    pub fn scrub_metrics_text(&self) -> String {
        use std::fmt::Write;
        let seen = self.scrub_seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_empty() {
            return String::new();
        }
        let mut out = String::new();
        let gauges: [ScrubGauge; 8] = [
            ("coffre_scrub_running", "gauge", |s| u64::from(s.running)),
            ("coffre_scrub_pass_shards", "gauge", |s| s.pass_shards),
            ("coffre_scrub_passes_total", "counter", |s| s.passes),
            ("coffre_scrub_shards_checked_total", "counter", |s| s.shards_checked),
            ("coffre_scrub_bytes_checked_total", "counter", |s| s.bytes_checked),
            ("coffre_scrub_corrupt_found_total", "counter", |s| s.corrupt_found),
            ("coffre_scrub_findings_pending", "gauge", |s| s.findings_pending),
            ("coffre_scrub_last_pass_done_seconds", "gauge", |s| {
                s.last_pass_done_ms.unwrap_or(0) / 1000
            }),
        ];
        for (name, kind, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} A node's scrub as the metadata leader last saw it.\n# TYPE {name} {kind}"
            );
            for (node, st) in seen.iter() {
                let _ = writeln!(out, "{name}{{node=\"{node}\"}} {}", value(st));
            }
        }
        out
    }

    /// Queues findings (hex shard ids) for repair. Returns how many shards were queued and
    /// the findings dealt with (to acknowledge): all but those the metadata could not be
    /// asked about now (retried on the next round).
    async fn queue_findings(&self, findings: &[String]) -> (usize, Vec<String>) {
        let (mut queued, mut done) = (0, Vec::new());
        for hex_id in findings {
            let Some(id) = hex::decode(hex_id).ok().and_then(|b| ShardId::from_bytes(&b)) else {
                done.push(hex_id.clone()); // not an id: nothing to repair
                continue;
            };
            match self.queue_repair(id).await {
                Ok(q) => {
                    queued += usize::from(q);
                    done.push(hex_id.clone());
                }
                Err(e) => tracing::warn!(shard = %id, error = %e, "queueing a scrub finding failed; retried"),
            }
        }
        (queued, done)
    }

    /// Marks shard `id` degraded in the version that holds it, which queues it for repair.
    /// `false`: no version holds it (deleted or replaced since: its shards are garbage).
    pub async fn queue_repair(&self, id: ShardId) -> EngineResult<bool> {
        let version = id.version;
        let Some(owner) = self.meta_call(move |m| m.layout_owner(&version)).await? else {
            tracing::warn!(shard = %id, "scrub finding of a part with no recorded object (gone, or written before layouts named it)");
            return Ok(false);
        };
        let cmd = MetaCommand::MarkDegraded {
            bucket: owner.bucket.clone(),
            key: owner.key.clone(),
            part: id.version,
            index: id.index,
        };
        let found = self.meta_call(move |m| m.apply(cmd)).await? == Outcome::Done(true);
        if found {
            tracing::warn!(shard = %id, bucket = owner.bucket, key = %String::from_utf8_lossy(&owner.key), "scrub finding queued for repair");
            let _ = self.workers.wake("repair");
        }
        Ok(found)
    }

    /// Keys waiting in the repair queue (at most `limit` counted).
    pub async fn repair_pending(&self, limit: usize) -> EngineResult<usize> {
        Ok(self.meta_call(move |m| m.to_heal(None, limit)).await?.len())
    }
}
