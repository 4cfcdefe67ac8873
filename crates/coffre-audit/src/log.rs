//! The writer: requests queue their events and wait for their entry to be durable. Whoever
//! queues while nobody writes becomes the leader: it writes the queue with one sync on its own
//! thread, then hands the writer to a request that queued meanwhile (leader-follower group
//! commit), so one sync serves every request that arrived during the previous one. After each
//! sync the chain head is recorded in the metadata (`HeadStore`), which is how a shortened tail
//! is noticed.

use crate::appender::SegmentFile;
use crate::chain::{content_hash, keyed_tenant_tag, link, tenant_tag, Checkpoint, Hash, Record, GENESIS};
use crate::event::Event;
use crate::forward::Forwarder;
use crate::segment::{self, display_name, segment_name, Lines};
use crate::verify::{Expectations, Verifier};
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use writer::{Writer, Written};

mod writer;

/// Where the chain head is recorded besides the segments (the metadata store).
pub trait HeadStore: Send + Sync {
    fn load(&self) -> Result<Option<(u64, Hash)>, String>;
    fn record(&self, n: u64, h: &Hash) -> Result<(), String>;
}

/// How the log is kept.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// The name checkpoints carry (the gateway's id; `server` for the embedded one).
    pub gateway: String,
    /// A checkpoint after this many entries…
    pub checkpoint_every: u64,
    /// …or this long after the first entry it would sign.
    pub checkpoint_interval: Duration,
    /// A new segment past this size (and at each UTC day).
    pub segment_bytes: u64,
    /// Segments whose every entry is older than this are removed.
    pub retention: Duration,
    /// Start on a broken or shortened chain, saying so in the log itself.
    pub accept_truncation: bool,
    /// Where durable entries are also sent (a SIEM), if anywhere.
    pub syslog: Option<crate::forward::SyslogTarget>,
    /// The secret key of tenant tags (`chain::keyed_tenant_tag`); `None`: unkeyed tags, as
    /// lines were written before (tests only).
    pub tag_key: Option<Hash>,
}

impl AuditConfig {
    pub fn new(dir: PathBuf, gateway: &str) -> AuditConfig {
        AuditConfig {
            dir,
            gateway: gateway.to_string(),
            checkpoint_every: 1024,
            checkpoint_interval: Duration::from_secs(5),
            segment_bytes: 64 << 20,
            retention: Duration::from_secs(190 * 86_400),
            accept_truncation: false,
            syslog: None,
            tag_key: None,
        }
    }

    /// The tag an entry of `tenant` carries (`None`: lines without tags).
    pub fn tag_of(&self, tenant: &str) -> Option<Hash> {
        self.tag_key.as_ref().map(|k| keyed_tenant_tag(k, tenant))
    }
}

/// The audit log could not make an entry durable: the request must not be acknowledged.
#[derive(Clone, Debug, thiserror::Error)]
#[error("audit log: {0}")]
pub struct AuditError(pub String);

/// The most events one batch carries (one write, one sync).
const MAX_BATCH: usize = 4096;
/// Batches a leader writes for events nobody waits for before handing them to a blocking
/// thread (so that a flood of internal events does not hold a request back).
const MAX_UNWAITED_BATCHES: usize = 4;

/// What a waiting request is told.
enum Answer {
    /// Its entry's number.
    Entry(Result<u64, String>),
    /// The chain's state after a checkpoint.
    State(Result<(u64, Hash), String>),
    /// The writer is now the request's to run: its own answer comes on the receiver given.
    Lead(Leadership, oneshot::Receiver<Answer>),
}

type Reply = oneshot::Sender<Answer>;

enum Msg {
    /// Events written together, in one batch (a request's entry and the entries it carries).
    Append(Vec<Event>, Option<Reply>),
    Checkpoint(Reply),
    /// Time passes: sign what has waited long enough.
    Tick,
    /// Sign the final state and stop.
    Close(Reply),
}

impl Msg {
    /// How many events it appends.
    fn events(&self) -> usize {
        match self {
            Msg::Append(events, _) => events.len(),
            _ => 0,
        }
    }

    fn reply_mut(&mut self) -> Option<&mut Reply> {
        match self {
            Msg::Append(_, Some(r)) | Msg::Checkpoint(r) | Msg::Close(r) => Some(r),
            _ => None,
        }
    }
}

/// What waits to be written, and whether someone is writing.
struct Queue {
    msgs: Vec<Msg>,
    /// A leader is writing (or has been handed the writer): whoever queues now waits.
    leading: bool,
    closed: bool,
}

/// The writer and its queue, shared by the requests (leader-follower group commit).
///
/// A request queues its event; if nobody is writing it becomes the leader and writes the
/// queue with one sync, on its own thread, then hands the writer to a request that queued
/// meanwhile, if any (which writes what queued during that sync, and so on). An uncontended
/// request thus wakes no other thread, and a batch is whatever arrived during one sync. The
/// write blocks the leader's runtime worker for one sync (about 0.1-0.2 ms here): measured
/// cheaper than a writer thread of its own, whose wake-ups and hand-backs cost each request
/// two context switches (docs/performance.md, "The audit log").
struct Shared {
    queue: std::sync::Mutex<Queue>,
    writer: std::sync::Mutex<Writer>,
    written: AtomicU64,
    failed: AtomicU64,
    /// The number of the last entry written.
    last: AtomicU64,
    /// When the last batch was written (ms since the epoch), and how many events each
    /// carried (the group commit's size).
    last_write_ms: AtomicU64,
    batch_sizes: coffre_types::metrics::HistogramFamily,
}

/// Group commit sizes (events per write and sync).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// The right to run the writer, handed from one leader to the next. If the request it was
/// handed to is gone (its connection closed), a blocking thread takes it on.
struct Leadership {
    shared: Option<Arc<Shared>>,
}

impl Leadership {
    fn take(mut self) -> Arc<Shared> {
        self.shared.take().expect("a leadership is taken once")
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.lead_elsewhere();
        }
    }
}

fn stopped() -> AuditError {
    AuditError("the writer has stopped".into())
}

impl Shared {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `msg`; true when the caller is to lead (nobody is writing).
    fn enqueue(&self, msg: Msg) -> Result<bool, AuditError> {
        let mut q = self.lock_queue();
        if q.closed {
            return Err(stopped());
        }
        q.msgs.push(msg);
        Ok(!std::mem::replace(&mut q.leading, true))
    }

    /// Queues `msg` and waits for its answer, writing if nobody else is.
    async fn submit(self: &Arc<Self>, msg: Msg, mut rx: oneshot::Receiver<Answer>) -> Result<Answer, AuditError> {
        if self.enqueue(msg)? {
            self.lead();
        }
        loop {
            match rx.await.map_err(|_| stopped())? {
                Answer::Lead(leadership, next) => {
                    leadership.take().lead();
                    rx = next;
                }
                answer => return Ok(answer),
            }
        }
    }

    /// Writes what is queued, batch after batch, until the queue is empty or a waiting
    /// request takes the writer over. Blocking: one write and one sync per batch.
    fn lead(self: &Arc<Self>) {
        let mut unwaited = 0;
        loop {
            let batch: Vec<Msg> = {
                let mut q = self.lock_queue();
                if q.msgs.is_empty() {
                    q.leading = false;
                    return;
                }
                // Whole messages, up to MAX_BATCH events (at least one message).
                let (mut n, mut events) = (0, 0);
                for m in &q.msgs {
                    if n > 0 && events >= MAX_BATCH {
                        break;
                    }
                    events += m.events();
                    n += 1;
                }
                q.msgs.drain(..n).collect()
            };
            self.write(batch);
            let mut q = self.lock_queue();
            if q.closed {
                // What queued after the close is refused (its waiters see the writer gone).
                q.msgs.clear();
                q.leading = false;
                return;
            }
            if q.msgs.is_empty() {
                q.leading = false;
                return;
            }
            if self.hand_over(&mut q) {
                return;
            }
            unwaited += 1;
            if unwaited >= MAX_UNWAITED_BATCHES {
                drop(q);
                self.clone().lead_elsewhere();
                return;
            }
        }
    }

    /// Gives the writer to the first queued request still waiting; false if there is none.
    fn hand_over(self: &Arc<Self>, q: &mut Queue) -> bool {
        for msg in q.msgs.iter_mut() {
            let Some(reply) = msg.reply_mut() else { continue };
            let (tx, rx) = oneshot::channel();
            let old = std::mem::replace(reply, tx);
            let leadership = Leadership {
                shared: Some(self.clone()),
            };
            match old.send(Answer::Lead(leadership, rx)) {
                Ok(()) => return true,
                Err(Answer::Lead(leadership, _)) => {
                    // That request is gone: the next one, not a thread.
                    let _ = leadership.take();
                }
                Err(_) => {}
            }
        }
        false
    }

    /// Has a blocking thread lead (still `leading`: the writer changes hands, it is not
    /// released).
    fn lead_elsewhere(self: Arc<Self>) {
        let run = move || self.lead();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn_blocking(run);
            }
            Err(_) => {
                if let Err(e) = std::thread::Builder::new().name("coffre-audit".into()).spawn(run) {
                    tracing::error!(target: "coffre::audit", error = %e, "no thread for the audit writer");
                }
            }
        }
    }

    /// Writes one batch with one sync and answers its waiters.
    fn write(&self, batch: Vec<Msg>) {
        let closing = batch.iter().any(|m| matches!(m, Msg::Close(_)));
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let result = writer.process(&batch, closing);
        let appended = batch.iter().map(|m| m.events() as u64).sum::<u64>();
        match &result {
            Ok(w) => {
                self.last.fetch_max(w.state.0, Ordering::Release);
                self.last_write_ms.store(coffre_types::now_millis(), Ordering::Relaxed);
                if appended > 0 {
                    self.batch_sizes.observe(&[], appended as f64);
                }
                self.written.fetch_add(appended, Ordering::Relaxed)
            }
            Err(e) => {
                tracing::error!(target: "coffre::audit", error = %e, "audit write failed: requests refused until it succeeds");
                self.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
        if closing {
            self.lock_queue().closed = true;
        }
        let mut next = match &result {
            Ok(w) => w.first,
            Err(_) => 0,
        };
        let state = || result.as_ref().map(|w| w.state).map_err(|e| e.to_string());
        for m in batch {
            match m {
                Msg::Append(events, reply) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Answer::Entry(result.as_ref().map(|_| next).map_err(|e| e.to_string())));
                    }
                    next += events.len() as u64;
                }
                Msg::Checkpoint(reply) | Msg::Close(reply) => {
                    let _ = reply.send(Answer::State(state()));
                }
                Msg::Tick => {}
            }
        }
        if let Ok(Written { forward: Some(f), .. }) = result {
            writer.publish(f);
        }
    }
}

/// The handle requests use.
pub struct AuditLog {
    shared: Arc<Shared>,
    config: AuditConfig,
    pub public_key: [u8; 32],
    pub gateway: String,
    pub dir: PathBuf,
    /// The audit key's certificate (cluster mode), for exports.
    pub certificate: Option<String>,
    forwarder: Option<Arc<Forwarder>>,
}

impl AuditLog {
    /// Opens the log in `config.dir`: checks the tail of the chain against the head the
    /// metadata recorded (refusing a broken or shortened chain unless told to accept it),
    /// removes a torn last record (never acknowledged), signs the state it starts from, and
    /// starts the clock of time-based checkpoints. Must run inside a tokio runtime.
    pub fn open(
        config: AuditConfig,
        key_pkcs8: &[u8],
        certificate: Option<String>,
        head: Arc<dyn HeadStore>,
    ) -> Result<Arc<AuditLog>, String> {
        let key =
            Ed25519KeyPair::from_pkcs8_maybe_unchecked(key_pkcs8).map_err(|e| format!("audit signing key: {e}"))?;
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(key.public_key().as_ref());
        let forwarder = config.syslog.clone().map(|t| Arc::new(Forwarder::start(t)));
        let (writer, notes) = Writer::open(config.clone(), key, certificate.as_deref(), head, forwarder.clone())?;
        let last = AtomicU64::new(writer.n);
        for note in &notes {
            tracing::warn!(target: "coffre::audit", "{note}");
        }
        let shared = Arc::new(Shared {
            queue: std::sync::Mutex::new(Queue {
                msgs: Vec::new(),
                leading: false,
                closed: false,
            }),
            writer: std::sync::Mutex::new(writer),
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last,
            last_write_ms: AtomicU64::new(0),
            batch_sizes: coffre_types::metrics::HistogramFamily::new(
                "coffre_audit_group_commit_events",
                "Events per audit write and sync (the group commit's size).",
                &[],
                BATCH_BUCKETS,
            ),
        });
        // The clock of time-based checkpoints (and of events the writer produced itself);
        // ends with the log.
        let (ticks, every) = (Arc::downgrade(&shared), config.checkpoint_interval / 2);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = ticks.upgrade() else { return };
                match shared.enqueue(Msg::Tick) {
                    Ok(true) => shared.lead_elsewhere(),
                    Ok(false) => {}
                    Err(_) => return,
                }
            }
        });
        Ok(Arc::new(AuditLog {
            shared,
            config: config.clone(),
            public_key,
            gateway: config.gateway.clone(),
            dir: config.dir.clone(),
            certificate,
            forwarder,
        }))
    }

    /// Appends `event` and returns once it is durable (its entry number).
    pub async fn append(&self, event: Event) -> Result<u64, AuditError> {
        self.append_all(vec![event]).await
    }

    /// Appends `events` in one batch and returns once they are durable (the first one's
    /// entry number): all of them are written, or none.
    pub async fn append_all(&self, events: Vec<Event>) -> Result<u64, AuditError> {
        let (tx, rx) = oneshot::channel();
        match self.shared.submit(Msg::Append(events, Some(tx)), rx).await? {
            Answer::Entry(r) => r.map_err(AuditError),
            _ => Err(stopped()),
        }
    }

    /// `tenant`'s tag in this log, and the audit key's signature of the statement (what an
    /// export's header carries); `None` for a log without keyed tags.
    pub fn signed_tenant_tag(&self, tenant: &str) -> Option<(Hash, Vec<u8>)> {
        let tag = self.config.tag_of(tenant)?;
        let statement = crate::chain::tenant_tag_statement(&self.gateway, tenant, &tag);
        let writer = self.shared.writer.lock().unwrap_or_else(|p| p.into_inner());
        Some((tag, writer.key.sign(&statement).as_ref().to_vec()))
    }

    /// The number of the last entry written: an entry appended after this call has a higher
    /// one.
    pub fn last_entry(&self) -> u64 {
        self.shared.last.load(Ordering::Acquire)
    }

    /// Appends `event` without waiting (internal actions: the entry is written with the next
    /// batch, or now by a blocking thread if nobody is writing).
    pub fn record(&self, event: Event) {
        match self.shared.enqueue(Msg::Append(vec![event], None)) {
            Ok(true) => self.shared.clone().lead_elsewhere(),
            Ok(false) => {}
            Err(_) => tracing::error!(target: "coffre::audit", "audit event lost: the writer has stopped"),
        }
    }

    /// Signs the chain as it is now (what a verification or an export wants at its end).
    pub async fn checkpoint(&self) -> Result<(u64, Hash), AuditError> {
        let (tx, rx) = oneshot::channel();
        match self.shared.submit(Msg::Checkpoint(tx), rx).await? {
            Answer::State(r) => r.map_err(AuditError),
            _ => Err(stopped()),
        }
    }

    /// Signs the final state and stops the writer (at shutdown); appends after it fail.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        let _ = self.shared.submit(Msg::Close(tx), rx).await;
    }

    /// For `/metrics`.
    pub fn metrics_text(&self) -> String {
        let mut text = format!(
            "# HELP coffre_audit_entries_total Entries written to the audit chain.\n# TYPE coffre_audit_entries_total counter\ncoffre_audit_entries_total {}\n# HELP coffre_audit_write_failures_total Audit writes that failed (their requests were refused).\n# TYPE coffre_audit_write_failures_total counter\ncoffre_audit_write_failures_total {}\n",
            self.shared.written.load(Ordering::Relaxed),
            self.shared.failed.load(Ordering::Relaxed)
        );
        self.shared.batch_sizes.render(&mut text);
        let last = self.shared.last_write_ms.load(Ordering::Relaxed);
        if last > 0 {
            let age = coffre_types::now_millis().saturating_sub(last) as f64 / 1000.0;
            coffre_types::metrics::gauge_header(
                &mut text,
                "coffre_audit_head_age_seconds",
                "Seconds since the chain's last write (entries or a checkpoint).",
            );
            coffre_types::metrics::sample(&mut text, "coffre_audit_head_age_seconds", &[], age);
            coffre_types::metrics::gauge_header(
                &mut text,
                "coffre_audit_head_entry",
                "The number of the chain's last entry.",
            );
            coffre_types::metrics::sample(
                &mut text,
                "coffre_audit_head_entry",
                &[],
                self.shared.last.load(Ordering::Relaxed),
            );
        }
        if let Some(f) = &self.forwarder {
            text.push_str(&format!(
                "# HELP coffre_audit_forwarded_total Audit entries sent to the syslog collector.\n# TYPE coffre_audit_forwarded_total counter\ncoffre_audit_forwarded_total {}\n# HELP coffre_audit_forward_dropped_total Audit entries not forwarded (queue full, collector unreachable).\n# TYPE coffre_audit_forward_dropped_total counter\ncoffre_audit_forward_dropped_total {}\n",
                f.sent.load(Ordering::Relaxed),
                f.dropped.load(Ordering::Relaxed)
            ));
        }
        text
    }
}

/// `-----BEGIN PUBLIC KEY-----` of an Ed25519 key (SubjectPublicKeyInfo).
pub fn public_key_pem(key: &[u8; 32]) -> String {
    const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// The key of a `public_key_pem` file (or of 64 hex digits).
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let mut key = [0u8; 32];
    if hex::decode_to_slice(t, &mut key).is_ok() {
        return Some(key);
    }
    let body: String = t
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()?;
    if der.len() != 44 || der[..12] != [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00] {
        return None;
    }
    key.copy_from_slice(&der[12..]);
    Some(key)
}
