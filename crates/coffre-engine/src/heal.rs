//! Healing degraded writes: shards a write could not place or store are rebuilt from the
//! others once their node (or a compliant replacement) is up.

use crate::{layout_of, policy_of, ClusterNode, Engine, EngineResult};
use coffre_types::{ShardId, VersionId};

impl Engine {
    /// Rebuilds each missing shard of degraded objects and writes it to its node if that node
    /// is back, else to another compliant node that holds none of the part. Returns how many
    /// shards were written.
    pub async fn heal(&self) -> EngineResult<usize> {
        let mut healed = 0;
        for (bucket, key) in self.meta.to_heal(64)? {
            let rec = self.meta.get_object(&bucket, &key)?;
            let (Some(rec), Some(brec)) = (rec, self.meta.get_bucket(&bucket)?) else {
                // Deleted meanwhile: forget the entry.
                let (b, k) = (bucket.clone(), key.clone());
                self.meta_call(move |m| m.update_parts(&b, &k, &VersionId([0; 16]), vec![]))
                    .await?;
                continue;
            };
            let policy = policy_of(&brec);
            let key_str = String::from_utf8_lossy(&key).into_owned();
            let layout = layout_of(&rec);
            let mut parts = rec.parts.clone();
            let mut changed = false;
            for part in parts.iter_mut().filter(|p| !p.degraded.is_empty()) {
                let reader = self.part_reader(&bucket, &key_str, &rec, part)?;
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
                    let mut ok = true;
                    for stripe in 0..layout.stripe_count(part.size) {
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
            if changed {
                let (version, b) = (rec.version, bucket.clone());
                self.meta_call(move |m| m.update_parts(&b, &key, &version, parts))
                    .await?;
            }
        }
        Ok(healed)
    }
}
