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

pub trait ShardStore: Send + Sync + 'static {
    /// A stable name: the node id.
    fn id(&self) -> &str;
    /// Stores a whole shard; returns once it is durable.
    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Reads a shard (whole).
    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>>;
    /// Deletes a shard; deleting a missing shard succeeds.
    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Every shard id held.
    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>>;
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>>;
    /// Whether the store answered its last heartbeat (local stores always do).
    fn is_up(&self) -> bool {
        true
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
