//! Healing degraded writes: shards a write could not place or store are rebuilt from the
//! others once their node (or a compliant replacement) is up.

use crate::{layout_of, policy_of, ClusterNode, Engine, EngineResult};
use coffre_meta::{MetaCommand, Outcome};
use coffre_types::ShardId;

/// Heal entries looked at per pass.
const HEAL_BATCH: usize = 64;

impl Engine {
    /// Rebuilds each missing shard of degraded objects and writes it to its node if that node
    /// is back, else to another compliant node that holds none of the part. Returns how many
    /// shards were written. Each pass resumes where the last stopped, so entries that cannot
    /// heal yet do not keep the others waiting.
    pub async fn heal(&self) -> EngineResult<usize> {
        let after = self.heal_cursor.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let batch = self.meta.to_heal(after.as_deref(), HEAL_BATCH)?;
        *self.heal_cursor.lock().unwrap_or_else(|p| p.into_inner()) = if batch.len() < HEAL_BATCH {
            None
        } else {
            batch.last().map(|(_, _, raw)| raw.clone())
        };
        let mut healed = 0;
        for (bucket, key, raw) in batch {
            healed += self.heal_one(bucket, key, raw).await?;
        }
        Ok(healed)
    }

    async fn heal_one(&self, bucket: String, key: Vec<u8>, raw: Vec<u8>) -> EngineResult<usize> {
        let key_str = String::from_utf8_lossy(&key).into_owned();
        // Opened under a lease: the GC leaves the version alone while it is rebuilt, even if
        // it is replaced meanwhile.
        let handle = match (self.open(&bucket, &key_str), self.meta.get_bucket(&bucket)?) {
            (Ok(h), Some(b)) if h.record.is_degraded() => (h, b),
            // Deleted, replaced by a whole version, or healed: nothing to do.
            _ => {
                self.meta_call(move |m| m.apply(MetaCommand::DropHeal { raw_key: raw }))
                    .await?;
                return Ok(0);
            }
        };
        let (handle, brec) = handle;
        let policy = policy_of(&brec);
        let layout = layout_of(&handle.record);
        let mut parts = handle.record.parts.clone();
        let mut changed = false;
        let mut healed = 0;
        // Shards written to nodes that were not in the part's list: if the version is replaced
        // before it records them, its GC entry would not know them.
        let mut placed_elsewhere = Vec::new();
        for part in parts.iter_mut().filter(|p| !p.degraded.is_empty()) {
            let reader = self.part_reader(&handle, part)?;
            let mut still = Vec::new();
            for &i in &part.degraded.clone() {
                let i = i as usize;
                let usable = |n: &ClusterNode| {
                    n.store.is_up() && !n.is_draining() && policy.countries.contains(&n.location.country)
                };
                let target = match self.node(&part.nodes[i]) {
                    Some(n) if usable(&n) => Some(n),
                    _ => self
                        .nodes()
                        .into_iter()
                        .find(|n| usable(n) && !part.nodes.iter().any(|id| id == n.id())),
                };
                let Some(target) = target else {
                    still.push(i as u8);
                    continue;
                };
                let stripes = layout.stripe_count(part.size);
                let mut ok = true;
                for stripe in 0..stripes {
                    let id = ShardId {
                        version: part.version,
                        part: 0,
                        stripe,
                        index: i as u8,
                    };
                    let written = match reader.rebuild_shard(stripe, i).await {
                        Ok(shard) => target.store.put(id, shard).await.is_ok(),
                        Err(_) => false,
                    };
                    if !written {
                        ok = false;
                        break;
                    }
                    healed += 1;
                }
                if target.id() != part.nodes[i] {
                    let mut nodes = vec![String::new(); part.nodes.len()];
                    nodes[i] = target.id().to_string();
                    placed_elsewhere.push((part.version, nodes, stripes, ok));
                }
                if ok {
                    tracing::info!(
                        bucket,
                        key = key_str,
                        index = i,
                        node = target.id(),
                        "degraded shards healed"
                    );
                    part.nodes[i] = target.id().to_string();
                    changed = true;
                } else {
                    still.push(i as u8);
                }
            }
            part.degraded = still;
        }
        let mut recorded = false;
        if changed {
            let cmd = MetaCommand::UpdateParts {
                bucket: bucket.clone(),
                key,
                version: handle.record.version,
                parts,
            };
            recorded = self.meta_call(move |m| m.apply(cmd)).await? == Outcome::Done(true);
        }
        // What went to other nodes and is not recorded (a rebuild that failed halfway, or a
        // version replaced meanwhile) is orphaned: queue it like an aborted write.
        for (version, nodes, stripes, ok) in placed_elsewhere {
            if !(recorded && ok) {
                self.abort(&version, &nodes, Some(stripes)).await;
            }
        }
        Ok(healed)
    }
}
