//! Audit notes: a change's audit entry, carried in the change's own batch.
//!
//! A gateway answers a change once its audit entry is durable in its audit log, a file apart
//! from the metadata. Between the commit and that append, a crash (or a client hanging up on
//! a process that then stops) would leave a change without an entry. So a command applied on
//! behalf of a request carries the request's note — its audit entry as far as it is known
//! before the answer — and the state machine writes the note in the command's own batch, on
//! every replica: the change and its note are one unit. The gateway forgets the notes whose
//! entries are in its log, and writes the entries of the notes left over (at start-up and
//! every few seconds: `coffre-engine`'s `audit_notes`).

use crate::records::{decode, encode};
use crate::{keys, MetaError, MetaStore};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::sync::Arc;

/// The audit entry of a change in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditNote {
    /// The gateway whose audit log gets the entry.
    pub origin: String,
    /// The request's id (unique on its gateway).
    pub id: String,
    /// The entry as known before the answer (the audit event's JSON).
    pub event: Vec<u8>,
    /// The number of the last entry of the gateway's log when the request began: the
    /// request's own entry, if it was written, comes after it.
    pub after_entry: u64,
}

/// Where the audit note of the request a task serves comes from (the gateway's audit scope):
/// the note its changes carry, once it has a draft.
pub trait NoteSource: Send + Sync {
    /// The note a change about to be applied carries (`None`: no draft yet).
    fn note(&self) -> Option<AuditNote>;
    /// The entry as known now (the audit event's JSON).
    fn set_draft(&self, draft: Vec<u8>);
}

tokio::task_local! {
    /// The request the current task serves.
    static SOURCE: Arc<dyn NoteSource>;
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<AuditNote>>> = const { RefCell::new(None) };
}

/// Runs `fut` (a request's handling) with `source` giving its changes their notes.
pub async fn noting<F: std::future::Future>(source: Arc<dyn NoteSource>, fut: F) -> F::Output {
    SOURCE.scope(source, fut).await
}

/// Gives the current task's request its draft entry (no-op outside a request).
pub fn set_draft(draft: Vec<u8>) {
    let _ = SOURCE.try_with(|s| s.set_draft(draft));
}

/// The note of the request the current task serves, if it has one.
pub fn task_note() -> Option<Arc<AuditNote>> {
    SOURCE.try_with(|s| s.note()).ok().flatten().map(Arc::new)
}

/// Runs `f` with `note` attached to every change it applies on this thread.
pub fn with_audit_note<T>(note: Option<Arc<AuditNote>>, f: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<AuditNote>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(note)));
    f()
}

/// The note attached on this thread, if any.
pub(crate) fn current() -> Option<Arc<AuditNote>> {
    CURRENT.with(|c| c.borrow().clone())
}

impl MetaStore {
    /// Runs a metadata call on a blocking thread (RocksDB writes wait for an fsync, which must
    /// not stall the async workers serving other requests); the changes it applies carry the
    /// current task's audit note.
    pub async fn call<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&MetaStore) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        // The blocking thread carries the request's note and its trace span.
        let (meta, note, span) = (self.clone(), task_note(), tracing::Span::current());
        tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            with_audit_note(note, || f(&meta))
        })
        .await
        .map_err(|e| MetaError::Unavailable(format!("metadata task: {e}")))?
    }

    /// Up to `limit` notes of `origin`'s requests, in id order.
    pub fn audit_notes(&self, origin: &str, limit: usize) -> Result<Vec<AuditNote>, MetaError> {
        let prefix = keys::audit_note_prefix(origin);
        let mut out = Vec::new();
        let mode = rocksdb::IteratorMode::From(&prefix, rocksdb::Direction::Forward);
        for item in self.db.iterator_cf(self.cf(keys::CF_AUDIT_NOTES), mode) {
            let (k, v) = item?;
            if !k.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push(decode(&v)?);
        }
        Ok(out)
    }

    /// Writes `note` into a command's batch.
    pub(crate) fn note_in(&self, b: &mut rocksdb::WriteBatch, note: &AuditNote) {
        b.put_cf(
            self.cf(keys::CF_AUDIT_NOTES),
            keys::audit_note(&note.origin, &note.id),
            encode(note),
        );
    }

    /// Removes the notes `ids` of `origin` (their entries are in its log).
    pub(crate) fn forget_audit_notes_in(&self, b: &mut rocksdb::WriteBatch, origin: &str, ids: &[String]) {
        for id in ids {
            b.delete_cf(self.cf(keys::CF_AUDIT_NOTES), keys::audit_note(origin, id));
        }
    }
}
