//! Healing degraded writes: shards a write could not place or store are rebuilt from the
//! others once their node (or a compliant replacement) is up.

use crate::{layout_of, policy_of, ClusterNode, Engine, EngineResult, ReadHandle};
use coffre_meta::{BucketRecord, MetaCommand, Outcome, VersionSel};
use coffre_types::ShardId;

/// Heal entries looked at per pass.
const HEAL_BATCH: usize = 64;
/// Keys healed at once, and stripes of one shard index rebuilt at once: a rebuild waits on
/// `k` reads and a write over the network, so one at a time leaves the disks and cores idle
/// (time to redundancy: docs/performance.md). Memory: a stripe's shards each, at most
/// `HEAL_KEYS × HEAL_STRIPES` stripes (96 MiB for 4+2 stripes of 4 MiB).
const HEAL_KEYS: usize = 4;
const HEAL_STRIPES: usize = 4;

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
        // One entry that keeps failing (a node that refuses, a damaged record) must not keep
        // the rest of the batch from healing: it is retried on a later pass.
        use futures_util::StreamExt;
        let healed = futures_util::stream::iter(batch)
            .map(|(bucket, key, raw)| async move {
                let name = String::from_utf8_lossy(&key).into_owned();
                match self.heal_one(bucket.clone(), key, raw).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(bucket, key = name, error = %e, "healing an object failed; retried later");
                        0
                    }
                }
            })
            .buffer_unordered(HEAL_KEYS)
            .fold(0, |sum, n| async move { sum + n })
            .await;
        Ok(healed)
    }

    /// Heals what is degraded under one key: its current object and its noncurrent versions
    /// (a backup's old versions deserve their redundancy back too), then drops the heal entry
    /// if nothing is left degraded (checked inside the command).
    async fn heal_one(&self, bucket: String, key: Vec<u8>, raw: Vec<u8>) -> EngineResult<usize> {
        let key_str = String::from_utf8_lossy(&key).into_owned();
        let mut healed = 0;
        if let Some(brec) = self.meta.get_bucket(&bucket)? {
            // Opened under a lease: the GC leaves the version alone while it is rebuilt, even
            // if it is replaced meanwhile.
            if let Ok(h) = self.open(&bucket, &key_str) {
                if h.record.is_degraded() {
                    healed += self.heal_version(&brec, h, None).await?;
                }
            }
            for rec in self.meta.noncurrent_versions(&bucket, &key)? {
                if !rec.is_degraded() {
                    continue;
                }
                let sel = VersionSel::parse(&rec.version_id());
                if let Ok(h) = self.open_version(&bucket, &key_str, sel) {
                    healed += self.heal_version(&brec, h, Some(rec.version_state.seq)).await?;
                }
            }
        }
        self.meta_call(move |m| m.apply(MetaCommand::DropHeal { raw_key: raw }))
            .await?;
        Ok(healed)
    }

    /// Rebuilds the missing shards of one opened version (`seq`: a noncurrent one) and records
    /// where they now are.
    async fn heal_version(&self, brec: &BucketRecord, handle: ReadHandle, seq: Option<u64>) -> EngineResult<usize> {
        let (bucket, key_str) = (handle.bucket.clone(), handle.key.clone());
        let policy = policy_of(brec);
        let layout = layout_of(&handle.record);
        let mut parts = handle.record.parts.clone();
        let mut healed_shards = Vec::new();
        let mut healed = 0;
        let mut moves = Vec::new();
        // Shards written to nodes that were not in the part's list are covered by an intent
        // until recorded: if the version is replaced first, or the process stops, the intent
        // makes them garbage rather than orphans.
        let mut placed_elsewhere = Vec::new();
        // Shards moved off a node that still answers (draining, or back after a failed write):
        // its copy is deleted once the move is recorded. (part version, index, stripes, node)
        let mut moved_off = Vec::new();
        for part in parts.iter_mut().filter(|p| !p.degraded.is_empty()) {
            let reader = self.part_reader(&handle, part)?;
            let stripes = layout.stripe_count(part.size);
            // What one shard index of the part takes on its node.
            let shard_bytes: u64 = (0..stripes)
                .map(|s| layout.shard_len(layout.stripe_len(part.size, s)) as u64)
                .sum();
            let usable =
                |n: &ClusterNode| n.store.is_up() && !n.is_draining() && policy.countries.contains(&n.location.country);
            // A node whose disk is full (of real data: it will not free itself) is passed over
            // like a down one; unknown capacity counts as room.
            let has_room = |n: &ClusterNode| {
                n.stat()
                    .is_none_or(|s| s.free_bytes >= shard_bytes.saturating_add(coffre_types::limits::NODE_FREE_MARGIN))
            };
            // Where each missing shard goes: its node if back and not full, else the compliant
            // node with the most room that holds none of the part.
            let mut targets = Vec::new();
            let mut elsewhere = vec![String::new(); part.nodes.len()];
            for &i in &part.degraded {
                let i = i as usize;
                let own = self.node(&part.nodes[i]).filter(|n| usable(n) && has_room(n));
                // A shard a rebalance moves goes elsewhere if it can, else stays.
                let moving = own.as_ref().is_some_and(|n| self.is_moving_off(n.id(), part.version));
                let target = match own {
                    Some(n) if !moving => Some(n),
                    own => {
                        // Where the part's other shards are (those chosen here included): a
                        // replacement keeps the spread, in another site if one is free of
                        // the part, else in another zone, then on the node with most room
                        // (the least used among equals: what a rebalance fills).
                        let mut others: Vec<coffre_cluster::Location> = part
                            .nodes
                            .iter()
                            .enumerate()
                            .filter(|(j, _)| *j != i && !part.degraded.contains(&(*j as u8)))
                            .filter_map(|(_, id)| self.node(id).map(|n| n.location))
                            .collect();
                        others.extend(targets.iter().map(|(_, t): &(usize, ClusterNode)| t.location.clone()));
                        self.nodes()
                            .into_iter()
                            .filter(|n| {
                                usable(n)
                                    && has_room(n)
                                    && !part.nodes.iter().any(|id| id == n.id())
                                    && !targets.iter().any(|(_, t): &(usize, ClusterNode)| t.id() == n.id())
                            })
                            .max_by_key(|n| {
                                let l = &n.location;
                                (
                                    !others.iter().any(|o| o.country == l.country && o.site == l.site),
                                    !others.iter().any(|o| o.site == l.site && o.zone == l.zone),
                                    n.stat().map_or(u64::MAX, |s| s.free_bytes),
                                    // Nodes sharing a disk (or equally free): the emptier.
                                    std::cmp::Reverse(n.stat().map_or(0, |s| s.used_bytes)),
                                )
                            })
                            .or(own)
                    }
                };
                if let Some(t) = target {
                    if t.id() != part.nodes[i] {
                        elsewhere[i] = t.id().to_string();
                    }
                    targets.push((i, t));
                }
            }
            if elsewhere.iter().any(|n| !n.is_empty()) {
                let (version, nodes) = (part.version, elsewhere.clone());
                self.meta_call(move |m| m.begin_write(&version, &nodes)).await?;
                placed_elsewhere.push((part.version, elsewhere, stripes));
            }
            let mut still: Vec<u8> = part
                .degraded
                .iter()
                .copied()
                .filter(|i| !targets.iter().any(|(t, _)| *t == *i as usize))
                .collect();
            for (i, target) in targets {
                use futures_util::StreamExt;
                let (reader, store, version) = (&reader, &target.store, part.version);
                // A shard moving off a node that still answers (draining, rebalanced) is
                // copied from it, checked against its BLAKE3; rebuilt from the others if not.
                let copy = target.id() != part.nodes[i] && self.node(&part.nodes[i]).is_some_and(|n| n.store.is_up());
                let written: Vec<bool> = futures_util::stream::iter(0..stripes)
                    .map(|stripe| async move {
                        let id = ShardId {
                            version,
                            part: 0,
                            stripe,
                            index: i as u8,
                        };
                        let copied = match copy {
                            true => reader.copy_shard(stripe, i).await,
                            false => None,
                        };
                        let shard = match copied {
                            Some(c) => Ok(c),
                            None => reader.rebuild_shard(stripe, i).await,
                        };
                        match shard {
                            // The node checks the bytes against the hash before it keeps them.
                            Ok((shard, hash)) => {
                                let rate = self.workers.rate_of("repair").unwrap_or(0);
                                self.repair_pacer.set_rate(rate.saturating_mul(1 << 20));
                                self.repair_pacer.take(shard.len() as u64).await;
                                store.put_hashed(id, shard, hash).await.is_ok()
                            }
                            Err(_) => false,
                        }
                    })
                    .buffer_unordered(HEAL_STRIPES)
                    .collect()
                    .await;
                healed += written.iter().filter(|w| **w).count();
                let ok = written.iter().all(|w| *w);
                if ok {
                    tracing::info!(
                        bucket,
                        key = key_str,
                        index = i,
                        node = target.id(),
                        "degraded shards healed"
                    );
                    moves.push(format!("shard {i} of {} to {}", part.version.to_hex(), target.id()));
                    if target.id() != part.nodes[i] {
                        moved_off.push((part.version, i as u8, stripes, part.nodes[i].clone()));
                    }
                    self.moving_off(&part.nodes[i], part.version, false);
                    part.nodes[i] = target.id().to_string();
                    healed_shards.push(coffre_meta::HealedShard {
                        part: part.version,
                        index: i as u8,
                        node: target.id().to_string(),
                    });
                } else {
                    still.push(i as u8);
                }
            }
            still.sort_unstable();
            part.degraded = still;
        }
        let mut recorded = false;
        if !healed_shards.is_empty() {
            let tenant = brec.tenant.clone();
            // What was rebuilt, applied to the version as it is then (marks made meanwhile
            // stay), not the parts as read here.
            let cmd = MetaCommand::HealShards {
                bucket: bucket.clone(),
                key: key_str.as_bytes().to_vec(),
                seq,
                version: handle.record.version,
                healed: healed_shards,
            };
            // Recorded with its audit entry (the shards' new places), or not at all.
            let mut entry = coffre_audit::Event::system("HealShards", &tenant, &bucket, &key_str);
            entry.version_id = Some(handle.record.version_id());
            entry.detail = Some(moves.join("; "));
            let outcome = self
                .system_change(entry.clone(), self.meta_call(move |m| m.apply(cmd)), |o| match o {
                    Outcome::Done(true) => vec![entry],
                    _ => vec![],
                })
                .await?;
            recorded = outcome == Outcome::Done(true);
        }
        // Not recorded (a rebuild that failed halfway, a version replaced meanwhile): what
        // went elsewhere is garbage. Recorded: the commit ended the intent, this does nothing.
        for (version, nodes, stripes) in placed_elsewhere {
            if !recorded {
                self.abort(&version, &nodes, Some(stripes)).await;
            }
        }
        // Recorded: the old copies are nobody's. A node gone keeps nothing to delete; one that
        // does not answer now keeps a stray copy that nothing reads.
        if recorded {
            for (version, index, stripes, node) in moved_off {
                let Some(n) = self.node(&node) else { continue };
                for stripe in 0..stripes {
                    let id = ShardId {
                        version,
                        part: 0,
                        stripe,
                        index,
                    };
                    if let Err(e) = n.store.delete(id).await {
                        tracing::debug!(shard = %id, node, error = %e, "old copy of a moved shard not deleted");
                        break;
                    }
                }
            }
        }
        Ok(healed)
    }
}
