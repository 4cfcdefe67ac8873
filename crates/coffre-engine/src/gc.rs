//! Garbage collection: removes the shards of deleted and replaced versions and of writes that
//! never committed; expires abandoned multipart uploads.

use crate::{Engine, EngineResult};
use coffre_data::ShardStore;
use coffre_types::{now_millis, ShardId};
use std::sync::Arc;

/// A store and every shard id it holds.
type StoreListing = (Arc<dyn ShardStore>, Vec<ShardId>);

impl Engine {
    /// Removes the shards of deleted and replaced versions whose grace has passed and that no
    /// reader holds a lease on. Returns how many GC entries were completed.
    pub async fn collect_garbage(&self) -> EngineResult<usize> {
        let mut cleaned = 0;
        let mut listed: Option<Vec<StoreListing>> = None;
        let cutoff = now_millis().saturating_sub(self.config.gc_grace.as_millis() as u64);
        for (raw, gc) in self.meta.gc_batch(cutoff, 256)? {
            let versions: Vec<_> = gc.parts.iter().map(|p| p.version).collect();
            // No lease can start on these versions any more (they are not current), so once
            // none is held the shards can go; a reader still streaming keeps them.
            if self.meta.leased(&versions) {
                continue;
            }
            let mut ok = true;
            for part in &gc.parts {
                match part.stripes {
                    Some(stripes) => {
                        for stripe in 0..stripes {
                            for (index, node) in part.nodes.iter().enumerate() {
                                let id = ShardId {
                                    version: part.version,
                                    part: 0,
                                    stripe,
                                    index: index as u8,
                                };
                                match self.store_of(node) {
                                    Some(s) => ok &= s.delete(id).await.is_ok(),
                                    // A slot a degraded write left empty holds nothing.
                                    None if node.is_empty() => {}
                                    None => tracing::warn!(node, "GC: node unknown, shard left"),
                                }
                            }
                        }
                    }
                    None => {
                        // An interrupted write: how far it got is unknown, so look — listing
                        // every store is costly, so at most once a minute while some fail.
                        if listed.is_none() {
                            let due = {
                                let mut last = self.last_listing.lock().unwrap_or_else(|p| p.into_inner());
                                let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60));
                                if due {
                                    *last = Some(std::time::Instant::now());
                                }
                                due
                            };
                            if !due {
                                ok = false;
                                continue;
                            }
                            let mut all = Vec::new();
                            for s in self.stores() {
                                match s.list().await {
                                    Ok(ids) => all.push((s.clone(), ids)),
                                    Err(e) => tracing::warn!(store = s.id(), error = %e, "cannot list store for GC"),
                                }
                            }
                            listed = Some(all);
                        }
                        let all = listed.as_deref().unwrap_or_default();
                        let complete = all.len() == self.nodes().len();
                        if complete {
                            // Every store answered: no need to wait for the next listing.
                            *self.last_listing.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        }
                        ok &= complete;
                        for (store, ids) in all {
                            for id in ids.iter().filter(|i| i.version == part.version) {
                                ok &= store.delete(*id).await.is_ok();
                            }
                        }
                    }
                }
            }
            if ok {
                // The shards are gone: the entry is written (and waited for) with the command
                // that ends the GC entry. A stop before it leaves the GC entry, whose next
                // pass deletes nothing more and writes this again.
                let versions: Vec<String> = gc.parts.iter().map(|p| p.version.to_hex()).collect();
                let mut entry = coffre_audit::Event::system("GcVersion", "", "", "");
                entry.detail = Some(format!("shards of {} removed", versions.join(",")));
                self.system_change(entry.clone(), self.meta_call(move |m| m.gc_done(&raw, &gc)), |_| {
                    vec![entry]
                })
                .await?;
                cleaned += 1;
            }
        }
        Ok(cleaned)
    }

    /// After a restart no write is in flight: every intent left behind is an orphan write.
    pub fn recover_intents(&self) -> EngineResult<usize> {
        let intents = self.meta.intents()?;
        for (v, rec) in &intents {
            self.meta.abort_write(v, &rec.nodes, None)?;
        }
        Ok(intents.len())
    }

    /// Aborts writes begun more than `max_age` ago that never committed (with several
    /// gateways, one restarting cannot tell its own orphans from the others' writes in
    /// flight; an intent that old is an orphan whoever began it).
    pub async fn expire_intents(&self, max_age: std::time::Duration) -> EngineResult<usize> {
        let cutoff = now_millis().saturating_sub(max_age.as_millis() as u64);
        self.meta_call(move |m| {
            let mut n = 0;
            for (v, rec) in m.intents()? {
                if rec.started_ms < cutoff {
                    m.abort_write(&v, &rec.nodes, None)?;
                    n += 1;
                }
            }
            Ok(n)
        })
        .await
    }

    /// Aborts multipart uploads older than `max_age` and forgets old completion markers.
    pub async fn expire_uploads(&self, max_age: std::time::Duration) -> EngineResult<usize> {
        let cutoff = now_millis().saturating_sub(max_age.as_millis() as u64);
        self.meta_call(move |m| {
            let stale = m.stale_uploads(cutoff)?;
            for (bucket, key, id) in &stale {
                m.abort_upload(bucket, key, id)?;
            }
            Ok(stale.len())
        })
        .await
    }
}
