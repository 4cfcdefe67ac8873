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
}
