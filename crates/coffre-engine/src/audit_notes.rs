//! Every change has its audit entry, whether or not its client is still there.
//!
//! A request runs inside an [`AuditScope`]: every metadata command it applies carries its
//! *audit note* (the entry as known before the answer: who, what, where), written by the state
//! machine in the command's own batch (`coffre_meta::AuditNote`). The gateway then appends
//! the real entry (with the answer's status) and marks the request written. A note therefore
//! exists exactly for committed changes; [`Engine::settle_audit_notes`] — at start-up and
//! every few seconds — forgets the notes whose entries are in the log and, for any other note
//! (the process stopped between the commit and the append), appends the entry from the note,
//! marked as recovered. So a change is never without its entry, and never has two.

use crate::{Engine, EngineError, EngineResult};
use coffre_audit::Event;
use coffre_meta::AuditNote;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the engine keeps of a request while it runs.
struct RequestAudit {
    origin: String,
    id: String,
    after_entry: u64,
    /// The entry as known so far (JSON), set by the protocol layer once it knows the caller
    /// and the operation.
    draft: Mutex<Option<Vec<u8>>>,
    /// Whether a change carried its note (the request is then in the book's `running`, from
    /// before that change's commit): a request that changes nothing never touches the book.
    noted: std::sync::atomic::AtomicBool,
    book: Arc<Mutex<NoteBook>>,
}

/// Requests whose notes may be in the metadata: running, or whose entry is written.
#[derive(Default)]
pub(crate) struct NoteBook {
    running: HashSet<String>,
    written: HashMap<String, Instant>,
}

fn lock(book: &Mutex<NoteBook>) -> std::sync::MutexGuard<'_, NoteBook> {
    book.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long a written request is remembered (its note is forgotten well before).
const REMEMBER_WRITTEN: Duration = Duration::from_secs(600);
/// Notes settled in one pass.
const SETTLE_BATCH: usize = 10_000;

/// One request's audit: create it before the request runs, run the request in it, and
/// append its entry through it.
pub struct AuditScope {
    request: Arc<RequestAudit>,
    log: Arc<coffre_audit::AuditLog>,
    written: bool,
}

impl Engine {
    /// The audit scope of request `id`, if this process keeps an audit log.
    pub fn audit_scope(&self, id: &str) -> Option<AuditScope> {
        let log = self.audit()?.clone();
        Some(AuditScope {
            request: Arc::new(RequestAudit {
                origin: log.gateway.clone(),
                id: id.to_string(),
                after_entry: log.last_entry(),
                draft: Mutex::new(None),
                noted: Default::default(),
                book: self.notes.clone(),
            }),
            log,
            written: false,
        })
    }

    fn notes(&self) -> std::sync::MutexGuard<'_, NoteBook> {
        lock(&self.notes)
    }

    /// Appends the entry of every note left without one and forgets the notes whose entries
    /// are in the log. Returns how many entries it recovered.
    pub async fn settle_audit_notes(&self) -> EngineResult<usize> {
        let Some(log) = self.audit().cloned() else {
            return Ok(0);
        };
        let origin = log.gateway.clone();
        let o = origin.clone();
        let notes = self.meta_call(move |m| m.audit_notes(&o, SETTLE_BATCH)).await?;
        if notes.is_empty() {
            self.notes().written.retain(|_, at| at.elapsed() < REMEMBER_WRITTEN);
            return Ok(0);
        }
        // Read after the notes: a request whose note was read is running, written, or gone.
        let (mut done, mut unknown) = (Vec::new(), Vec::new());
        {
            let book = self.notes();
            for note in notes {
                if book.written.contains_key(&note.id) {
                    done.push(note.id);
                } else if !book.running.contains(&note.id) {
                    unknown.push(note);
                }
            }
        }
        let mut recovered = 0;
        if !unknown.is_empty() {
            let after = unknown.iter().map(|n| n.after_entry).min().unwrap_or(0);
            let ids: HashSet<String> = unknown.iter().map(|n| n.id.clone()).collect();
            let dir = log.dir.clone();
            let in_log = tokio::task::spawn_blocking(move || coffre_audit::requests_with_entries(&dir, after, &ids))
                .await
                .map_err(|e| EngineError::Internal(format!("audit scan: {e}")))?
                .map_err(|e| EngineError::Internal(format!("audit scan: {e}")))?;
            for note in unknown {
                if !in_log.contains(&note.id) {
                    log.append(recovered_entry(&note))
                        .await
                        .map_err(|e| EngineError::Unavailable(e.to_string()))?;
                    recovered += 1;
                    tracing::warn!(target: "coffre::audit", request_id = %note.id, "audit entry recovered from its note");
                }
                done.push(note.id);
            }
        }
        let forgotten = done.clone();
        self.meta_call(move |m| {
            m.apply(coffre_meta::MetaCommand::ForgetAuditNotes { origin, ids: forgotten })
                .map(drop)
        })
        .await?;
        let mut book = self.notes();
        for id in &done {
            book.written.remove(id);
        }
        book.written.retain(|_, at| at.elapsed() < REMEMBER_WRITTEN);
        Ok(recovered)
    }
}

impl coffre_meta::NoteSource for RequestAudit {
    /// The note of this request, if it has a draft: what the metadata calls made now carry.
    fn note(&self) -> Option<AuditNote> {
        let draft = self.draft.lock().unwrap_or_else(|p| p.into_inner()).clone()?;
        // In the book before the change that carries the note commits: settling never takes
        // a running request's note for a lost one.
        if !self.noted.swap(true, std::sync::atomic::Ordering::AcqRel) {
            lock(&self.book).running.insert(self.id.clone());
        }
        Some(AuditNote {
            origin: self.origin.clone(),
            id: self.id.clone(),
            event: draft,
            after_entry: self.after_entry,
        })
    }

    fn set_draft(&self, draft: Vec<u8>) {
        *self.draft.lock().unwrap_or_else(|p| p.into_inner()) = Some(draft);
    }
}

impl Engine {
    /// Runs `change`, an action of the store itself, so that its audit entries are written
    /// even if the process stops: it carries a note of `draft`, and the entries `entries`
    /// makes of its outcome are appended (and waited for) before this returns — none if it
    /// changed nothing after all.
    pub(crate) async fn system_change<T>(
        &self,
        mut draft: Event,
        change: impl std::future::Future<Output = EngineResult<T>>,
        entries: impl FnOnce(&T) -> Vec<Event>,
    ) -> EngineResult<T> {
        let id = format!("system-{}", hex::encode(coffre_types::random_bytes::<12>()));
        let Some(scope) = self.audit_scope(&id) else {
            return change.await;
        };
        draft.request_id = id.clone();
        let outcome = scope
            .run(async {
                self::draft(&draft);
                change.await
            })
            .await?;
        let mut made = entries(&outcome);
        for e in &mut made {
            e.request_id = id.clone();
        }
        match made.is_empty() {
            true => scope.dismiss(),
            false => {
                scope
                    .append(made)
                    .await
                    .map_err(|e| EngineError::Unavailable(format!("audit log: {e}")))?;
            }
        }
        Ok(outcome)
    }
}

/// What the note says, as an entry: the answer is unknown (status 0), the change was made.
fn recovered_entry(note: &AuditNote) -> Event {
    let mut e: Event = serde_json::from_slice(&note.event).unwrap_or_else(|_| Event::now("Unknown", "unknown"));
    e.request_id = note.id.clone();
    e.status = 0;
    e.error = None;
    e.detail = Some(match e.detail.take() {
        Some(d) => format!("{d}; recovered: the change was committed, the process stopped before its entry"),
        None => "recovered: the change was committed, the process stopped before its entry".into(),
    });
    e
}

/// Sets the entry as known so far for the request the current task serves (no-op outside
/// a scope): what a change it commits from now on carries as its note.
pub fn draft(event: &Event) {
    if let Ok(json) = serde_json::to_vec(event) {
        coffre_meta::set_draft(json);
    }
}

impl AuditScope {
    /// Runs `fut` (the request's handling) in the scope.
    pub async fn run<F: std::future::Future>(&self, fut: F) -> F::Output {
        coffre_meta::noting(self.request.clone(), fut).await
    }

    /// Appends the request's entries (its own first) and returns once they are durable.
    pub async fn append(mut self, entries: Vec<Event>) -> Result<u64, coffre_audit::AuditError> {
        let n = self.log.append_all(entries).await?;
        self.written = true;
        Ok(n)
    }
}

impl AuditScope {
    /// Ends the scope without an entry: what it did needs none (it changed nothing).
    pub fn dismiss(mut self) {
        self.written = true;
    }
}

impl Drop for AuditScope {
    fn drop(&mut self) {
        if !self.request.noted.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut book = lock(&self.request.book);
        book.running.remove(&self.request.id);
        if self.written {
            book.written.insert(self.request.id.clone(), Instant::now());
        }
    }
}
