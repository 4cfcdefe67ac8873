//! Forgetting history on every replica: what an erasure needs, so that a deleted key survives
//! in no log entry, snapshot or table file anywhere.

use super::{unavailable, LeaderAnswer, Replica, ReplicaNode, Request};
use crate::MetaError;
use std::time::Duration;

impl Replica {
    /// `MetaStore::forget_history` on every replica: each one snapshots what it has applied,
    /// drops the log and older snapshots, and compacts its files. Fails naming the replicas
    /// that could not (they must be asked again, or wiped).
    pub async fn forget_history(&self) -> Result<(), MetaError> {
        let members: Vec<(u64, ReplicaNode)> = {
            let m = self.raft.metrics().borrow().clone();
            m.membership_config
                .membership()
                .nodes()
                .map(|(id, n)| (*id, n.clone()))
                .collect()
        };
        let mut failed = Vec::new();
        for (id, node) in members {
            let r = match id == self.id {
                true => self.forget_history_here().await,
                // As long as the replica may take itself: a barrier, then a snapshot and a
                // purge, each waited for up to the compaction's patience.
                false => match self
                    .forward(
                        &node,
                        Request::ForgetHistory,
                        self.config.request_timeout + 2 * self.compaction_patience(),
                    )
                    .await
                {
                    LeaderAnswer::Done(r, _) => r.map(drop),
                    other => Err(unavailable(format!("{other:?}"))),
                },
            };
            if let Err(e) = r {
                failed.push(format!("{} ({e})", node.address));
            }
        }
        match failed.is_empty() {
            true => Ok(()),
            false => Err(unavailable(format!(
                "the history of these replicas is not compacted: {}",
                failed.join(", ")
            ))),
        }
    }

    /// A snapshot and a purge take their time on a loaded replica (the leader purges only
    /// what every follower has received): more than a request's wait.
    fn compaction_patience(&self) -> Duration {
        self.config.request_timeout.max(Duration::from_secs(30))
    }

    pub(super) async fn forget_history_here(&self) -> Result<(), MetaError> {
        // First apply everything committed (the deletion that asked for this, at least), so
        // that the snapshot replacing the history is taken after it.
        self.barrier().await?;
        let Some(applied) = self.raft.metrics().borrow().last_applied.map(|l| l.index) else {
            return Ok(());
        };
        let failed = |what: &str| unavailable(format!("compacting this replica's history: {what}"));
        let patience = self.compaction_patience();
        // A trigger is ignored while a snapshot is being built (one taken before `applied`,
        // say): asked again until one covers `applied`.
        let deadline = tokio::time::Instant::now() + patience;
        let m = loop {
            self.raft
                .trigger()
                .snapshot()
                .await
                .map_err(|_| failed("the replica stopped"))?;
            let waited = self
                .raft
                .wait(Some(Duration::from_secs(1)))
                .metrics(
                    |m| m.snapshot.is_some_and(|s| s.index >= applied),
                    "snapshot for compaction",
                )
                .await;
            match waited {
                Ok(m) => break m,
                Err(_) if tokio::time::Instant::now() < deadline => continue,
                Err(_) => return Err(failed("no snapshot in time")),
            }
        };
        let upto = m.snapshot.map_or(applied, |s| s.index);
        self.raft
            .trigger()
            .purge_log(upto)
            .await
            .map_err(|_| failed("the replica stopped"))?;
        self.raft
            .wait(Some(patience))
            .metrics(|m| m.purged.is_some_and(|p| p.index >= upto), "purge for compaction")
            .await
            .map_err(|_| failed("the log was not purged in time"))?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.compact_files())
            .await
            .map_err(|_| failed("the compaction task failed"))?
    }
}
