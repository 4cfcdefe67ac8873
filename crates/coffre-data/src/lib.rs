//! The data path: object bytes ⇄ encrypted stripes ⇄ erasure-coded, BLAKE3-hashed shards on
//! shard stores.

pub mod budget;
pub mod erasure;
pub mod inline;
pub mod layout;
pub mod local;
pub mod metrics;
pub mod read;
pub mod store;
pub mod write;

pub use budget::{MemoryBudget, Reservation};
pub use erasure::Codec;
pub use inline::{open_inline, seal_inline};
pub use layout::StripeLayout;
pub use local::{CompactionWorker, LocalShardStore, ScrubWorker, SegmentLimits, SCRUB_PERIOD, SCRUB_RATE_MIB};
pub use read::{read_part, PartReader};
pub use store::{BoxFuture, MissingStore, ScrubRequest, ScrubStatus, ShardStore, StoreError, StoreStat};
pub use write::{write_part, PartWriteResult, WriteTarget};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("reading the request body: {0}")]
    Body(std::io::Error),
    #[error("only {ok} of {total} shard stores accepted the write; {quorum} are needed")]
    QuorumLost { ok: usize, total: usize, quorum: usize },
    #[error("stripe {stripe}: only {available} of {needed} shards could be read intact")]
    Unrecoverable {
        stripe: u32,
        available: usize,
        needed: usize,
    },
    #[error("decryption failed: the data was altered")]
    Tampered,
    #[error("erasure coding: {0}")]
    Erasure(String),
    #[error("internal: {0}")]
    Internal(String),
}
