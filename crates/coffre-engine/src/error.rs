//! The engine's one error type. It names what went wrong in storage terms; the protocol
//! crates map it to their own codes (S3 XML, admin JSON) in one place each.

use coffre_data::DataError;
use coffre_meta::MetaError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// What the metadata refused or could not do: no such bucket, key, version or upload, a
    /// bucket that exists or is not empty, a condition or a quota, Object Lock, identities…
    /// (`MetaError` says which; protocols map it in one place each).
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// The condition held when the request started but a concurrent write changed the key
    /// before the commit.
    #[error("conflicting concurrent write: {0}")]
    Conflict(String),
    /// The content does not match the digest the client gave.
    #[error("digest mismatch: {0}")]
    BadDigest(String),
    /// A part of a multipart upload is missing or is not the one named.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// The request contradicts what it acts on (a checksum type other than the upload's…).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("part too small: {0}")]
    PartTooSmall(String),
    /// Refused for a reason of policy (residency of this gateway, a role).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not enough nodes, or not enough shards readable: retry later.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The compliant nodes that are up have no room for the shards of a write: it would not
    /// succeed on a retry until space is freed or added (hence not `Unavailable`).
    #[error("insufficient storage: {0}")]
    InsufficientStorage(String),
    /// The client's body stream failed; the error inside is the protocol's own.
    #[error("request body: {0}")]
    Body(std::io::Error),
    /// Stored data is damaged beyond what the engine can repair.
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("internal: {0}")]
    Internal(String),
    /// What the request names is a delete marker (a GET of the key when it is the newest
    /// version: 404; a request naming it by id: 405).
    #[error("delete marker {version_id}")]
    DeleteMarker { version_id: String },
    /// SSE-KMS: the KMS key named cannot be used (not found, disabled, being deleted).
    #[error("KMS key: {0}")]
    Kms(crate::kms::KmsError),
}

pub type EngineResult<T> = Result<T, EngineError>;

impl EngineError {
    /// The metadata's refusal, if this is one.
    pub fn meta(&self) -> Option<&MetaError> {
        match self {
            EngineError::Meta(m) => Some(m),
            _ => None,
        }
    }
}

impl From<DataError> for EngineError {
    fn from(e: DataError) -> EngineError {
        match e {
            DataError::Body(io) => EngineError::Body(io),
            DataError::QuorumLost { .. } | DataError::Unrecoverable { .. } => EngineError::Unavailable(e.to_string()),
            DataError::Tampered => EngineError::Corrupt(e.to_string()),
            other => EngineError::Internal(other.to_string()),
        }
    }
}
