//! `ShardStore`: where shards live. Local directories in embedded mode, remote nodes in a
//! cluster; everything above this trait is the same in both.

use bytes::Bytes;
use coffre_types::ShardId;
use std::future::Future;
use std::pin::Pin;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("shard {0} not found")]
    NotFound(ShardId),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct StoreStat {
    pub shards: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// What a gateway asks of a store's scrub (`ShardStore::scrub`): its settings, an immediate
/// pass, and the findings it has taken over (to forget).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ScrubRequest {
    /// Start a full pass now (at the rate cap), unless one is under way.
    #[serde(default)]
    pub start: bool,
    /// The read rate cap, MiB/s (0: none).
    #[serde(default)]
    pub rate_mib: Option<u64>,
    /// One full pass every this many seconds, spread evenly.
    #[serde(default)]
    pub period_secs: Option<u64>,
    /// Findings (hex shard ids) the gateway has queued for repair.
    #[serde(default)]
    pub ack: Vec<String>,
}

/// Where a store's scrub stands.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ScrubStatus {
    pub node: String,
    /// A pass is under way.
    pub running: bool,
    /// An immediate pass was asked and has not finished.
    pub requested: bool,
    pub pass_started_ms: Option<u64>,
    pub last_pass_done_ms: Option<u64>,
    /// Full passes completed.
    pub passes: u64,
    /// Shards verified by the current pass, and held now (its progress).
    pub pass_shards: u64,
    pub shards: u64,
    /// Since the store was created.
    pub shards_checked: u64,
    pub bytes_checked: u64,
    pub corrupt_found: u64,
    /// Shards found corrupt or unreadable, not yet taken over by a gateway (hex ids; at most
    /// `SCRUB_FINDINGS_PER_ANSWER` per answer, `findings_pending` in all).
    pub findings: Vec<String>,
    pub findings_pending: u64,
    pub rate_mib: u64,
    pub period_secs: u64,
}

pub trait ShardStore: Send + Sync + 'static {
    /// A stable name: the node id.
    fn id(&self) -> &str;
    /// Stores a whole shard; returns once it is durable.
    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Stores a shard whose BLAKE3 the writer computed: the store keeps it for its scrub (and
    /// a remote node checks the bytes it received against it).
    fn put_hashed(&self, id: ShardId, data: Bytes, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = hash;
        self.put(id, data)
    }
    /// Reads a shard (whole).
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>>;
    /// Deletes a shard; deleting a missing shard succeeds.
    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Every shard id held.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>>;
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>>;
    /// The store's scrub: its settings, an immediate pass, findings taken over; answers where
    /// it stands. A store without one says so.
    fn scrub(&self, request: ScrubRequest) -> BoxFuture<'_, Result<ScrubStatus, StoreError>> {
        let _ = request;
        Box::pin(async { Err(StoreError::Unavailable("this store has no scrub".into())) })
    }
    /// Asks the store to sign what it holds of some shards (a JSON attestation request, the
    /// JSON answer: `coffre_cluster::proof`). Only a node with a certified identity can.
    fn attest(&self, request: Bytes) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let _ = request;
        Box::pin(async {
            Err(StoreError::Unavailable(
                "this store has no certified identity to sign statements with".into(),
            ))
        })
    }
    /// Whether the store answered its last heartbeat (local stores always do).
    fn is_up(&self) -> bool {
        true
    }
    /// When the certificate a remote store presented expires (seconds since the epoch); none
    /// for local stores.
    fn certificate_not_after(&self) -> Option<u64> {
        None
    }
}

/// Stands for a shard slot no compliant node could take: every write fails, so the slot is
/// recorded as degraded, to heal.
pub struct MissingStore;

impl ShardStore for MissingStore {
    fn id(&self) -> &str {
        ""
    }
    fn put(&self, _: ShardId, _: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Err(StoreError::Unavailable("no compliant node for this shard".into())) })
    }
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        Box::pin(async move { Err(StoreError::NotFound(id)) })
    }
    fn delete(&self, _: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async { Ok(()) })
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        Box::pin(async { Ok(StoreStat::default()) })
    }
    fn is_up(&self) -> bool {
        false
    }
}
