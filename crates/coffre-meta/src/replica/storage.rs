//! The Raft log and the state machine of a replica, both in the store's RocksDB: the log in
//! `raft_log`, the vote and positions in `raft_state`, the state machine's records in the
//! column families it always had. A command's effects and the log position it was applied
//! at are written in one batch (`MetaStore::apply_at`).

use super::codec::{decode, encode, Membership};
use super::snapshot::{self, SnapshotFile};
use super::{Reply, TypeConfig};
use crate::{keys, MetaError, MetaStore};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    Entry, EntryPayload, LogId, LogState, RaftLogReader, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError,
    StorageIOError, Vote,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions};
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::Arc;

fn io_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write(&std::io::Error::other(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::read(&std::io::Error::other(e.to_string())).into()
}

/// Runs RocksDB work (synced writes, scans) on a blocking thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError<u64>> + Send + 'static,
) -> Result<T, StorageError<u64>> {
    tokio::task::spawn_blocking(f).await.map_err(io_err)?
}

impl MetaStore {
    fn raft_state<T: serde::de::DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, MetaError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_RAFT_STATE), key)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn put_raft_state(&self, key: &[u8], value: &[u8], sync: bool) -> Result<(), MetaError> {
        let mut w = WriteOptions::default();
        w.set_sync(sync);
        self.db.put_cf_opt(self.cf(keys::CF_RAFT_STATE), key, value, &w)?;
        Ok(())
    }

    /// The last log position applied, and the membership it carried.
    pub(crate) fn applied_state(&self) -> Result<(Option<LogId<u64>>, Membership), MetaError> {
        let applied = self.raft_state(keys::RAFT_APPLIED)?;
        let membership = self.raft_state(keys::RAFT_MEMBERSHIP)?.unwrap_or_default();
        Ok((applied, membership))
    }

    /// Whether this store has ever been a replica (a vote or a log entry).
    pub(crate) fn has_raft_state(&self) -> Result<bool, MetaError> {
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_RAFT_STATE));
        it.seek_to_first();
        let any = it.valid();
        it.status()?;
        Ok(any)
    }
}

/// The replica's log.
#[derive(Clone)]
pub(crate) struct LogStore {
    pub(crate) store: Arc<MetaStore>,
}

impl LogStore {
    fn entries(&self, start: u64, end: Option<u64>) -> Result<Vec<Entry<TypeConfig>>, MetaError> {
        let s = &self.store;
        let from = keys::raft_log_index(start);
        let mut out = Vec::new();
        for item in
            s.db.iterator_cf(s.cf(keys::CF_RAFT_LOG), IteratorMode::From(&from, Direction::Forward))
        {
            let (k, v) = item?;
            let index = u64::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| MetaError::Corrupt("log key".into()))?,
            );
            if end.is_some_and(|e| index >= e) {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    fn last_entry_id(&self) -> Result<Option<LogId<u64>>, MetaError> {
        let s = &self.store;
        let mut it = s.db.raw_iterator_cf(s.cf(keys::CF_RAFT_LOG));
        it.seek_to_last();
        if let Some(v) = it.value() {
            let e: Entry<TypeConfig> = decode(v)?;
            return Ok(Some(e.log_id));
        }
        it.status()?;
        Ok(None)
    }

    /// Deletes the log from `start` (inclusive) to `end` (exclusive; `None`: to the end).
    fn delete_range(&self, b: &mut WriteBatch, start: u64, end: Option<u64>) {
        let cf = self.store.cf(keys::CF_RAFT_LOG);
        match end {
            Some(e) => b.delete_range_cf(cf, keys::raft_log_index(start), keys::raft_log_index(e)),
            None => {
                b.delete_range_cf(cf, keys::raft_log_index(start), keys::raft_log_index(u64::MAX));
                b.delete_cf(cf, keys::raft_log_index(u64::MAX));
            }
        }
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => Some(e.saturating_add(1)),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<u64>> {
        let (start, end) = bounds(&range);
        let this = self.clone();
        blocking(move || this.entries(start, end).map_err(read_err)).await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let this = self.clone();
        blocking(move || {
            let purged: Option<LogId<u64>> = this.store.raft_state(keys::RAFT_PURGED).map_err(read_err)?;
            let last = this.last_entry_id().map_err(read_err)?.or(purged);
            Ok(LogState {
                last_purged_log_id: purged,
                last_log_id: last,
            })
        })
        .await
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        let (this, v) = (self.clone(), encode(vote));
        blocking(move || this.store.put_raft_state(keys::RAFT_VOTE, &v, true).map_err(io_err)).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        let this = self.clone();
        blocking(move || this.store.raft_state(keys::RAFT_VOTE).map_err(read_err)).await
    }

    async fn save_committed(&mut self, committed: Option<LogId<u64>>) -> Result<(), StorageError<u64>> {
        // Not synced: it only spares re-applying after a restart what was committed.
        let (this, v) = (self.clone(), encode(&committed));
        blocking(move || {
            this.store
                .put_raft_state(keys::RAFT_COMMITTED, &v, false)
                .map_err(io_err)
        })
        .await
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<u64>>, StorageError<u64>> {
        let this = self.clone();
        blocking(move || {
            Ok(this
                .store
                .raft_state::<Option<LogId<u64>>>(keys::RAFT_COMMITTED)
                .map_err(read_err)?
                .flatten())
        })
        .await
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let this = self.clone();
        let mut b = WriteBatch::default();
        let cf = this.store.cf(keys::CF_RAFT_LOG);
        for e in entries {
            b.put_cf(cf, keys::raft_log_index(e.log_id.index), encode(&e));
        }
        // Synced: an entry counts towards a quorum only once it is on disk here.
        let result = blocking(move || {
            this.store
                .db
                .write_opt(b, &crate::commands::sync_opts())
                .map_err(io_err)
        })
        .await;
        match result {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let this = self.clone();
        blocking(move || {
            let mut b = WriteBatch::default();
            this.delete_range(&mut b, log_id.index, None);
            this.store
                .db
                .write_opt(b, &crate::commands::sync_opts())
                .map_err(io_err)
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId<u64>) -> Result<(), StorageError<u64>> {
        let this = self.clone();
        blocking(move || {
            let mut b = WriteBatch::default();
            b.put_cf(this.store.cf(keys::CF_RAFT_STATE), keys::RAFT_PURGED, encode(&log_id));
            this.delete_range(&mut b, 0, Some(log_id.index.saturating_add(1)));
            // Synced: this also makes durable every unsynced state machine write before it
            // (one write-ahead log), which the purged entries can no longer redo.
            this.store
                .db
                .write_opt(b, &crate::commands::sync_opts())
                .map_err(io_err)
        })
        .await
    }
}

/// The replica's state machine: `MetaStore::apply_at`, plus snapshots.
pub(crate) struct StateMachine {
    pub(crate) store: Arc<MetaStore>,
    pub(crate) snapshot_dir: PathBuf,
}

impl StateMachine {
    fn apply_entries(store: &MetaStore, entries: Vec<Entry<TypeConfig>>) -> Result<Vec<Reply>, StorageError<u64>> {
        let mut replies = Vec::with_capacity(entries.len());
        for e in entries {
            let at = encode(&e.log_id);
            let reply = match e.payload {
                EntryPayload::Blank => Ok(crate::Outcome::Unit),
                EntryPayload::Normal(cmd) => match store.apply_at(cmd, Some(&at)) {
                    // A storage failure is this replica's, not the command's: stop here
                    // rather than diverge from the others.
                    Err(MetaError::Db(err)) => return Err(StorageIOError::apply(e.log_id, &err).into()),
                    Err(MetaError::Corrupt(m)) => {
                        return Err(io_err(format!("applying {}: corrupt record: {m}", e.log_id)))
                    }
                    other => other,
                },
                EntryPayload::Membership(m) => {
                    let stored = Membership::new(Some(e.log_id), m);
                    store
                        .put_raft_state(keys::RAFT_MEMBERSHIP, &encode(&stored), false)
                        .map_err(io_err)?;
                    Ok(crate::Outcome::Unit)
                }
            };
            // A refused command (or a membership) wrote no batch with the position: record
            // it (unsynced; after a crash, the entry is applied again, to the same refusal
            // on the same state).
            store.put_raft_state(keys::RAFT_APPLIED, &at, false).map_err(io_err)?;
            replies.push(reply);
        }
        Ok(replies)
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        let store = self.store.clone();
        blocking(move || store.applied_state().map_err(read_err)).await
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Reply>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let store = self.store.clone();
        blocking(move || StateMachine::apply_entries(&store, entries)).await
    }

    async fn get_snapshot_builder(&mut self) -> SnapshotBuilder {
        SnapshotBuilder {
            store: self.store.clone(),
            dir: self.snapshot_dir.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError<u64>> {
        let path = snapshot::incoming_path(&self.snapshot_dir);
        blocking(move || {
            let file = snapshot::create(&path).map_err(io_err)?;
            Ok(Box::new(SnapshotFile::new(file, path)))
        })
        .await
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, super::ReplicaNode>,
        mut snapshot: Box<SnapshotFile>,
    ) -> Result<(), StorageError<u64>> {
        use tokio::io::AsyncWriteExt;
        snapshot.flush().await.map_err(io_err)?;
        let (store, dir, meta, path) = (
            self.store.clone(),
            self.snapshot_dir.clone(),
            meta.clone(),
            snapshot.path.clone(),
        );
        drop(snapshot);
        blocking(move || snapshot::install_received(&store, &dir, &path, &meta).map_err(io_err)).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let dir = self.snapshot_dir.clone();
        let found = blocking(move || snapshot::latest(&dir).map_err(read_err)).await?;
        Ok(found.map(|(meta, file)| Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

pub(crate) struct SnapshotBuilder {
    store: Arc<MetaStore>,
    dir: PathBuf,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let (store, dir) = (self.store.clone(), self.dir.clone());
        let (meta, file) = blocking(move || snapshot::build(&store, &dir).map_err(io_err)).await?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(file),
        })
    }
}
