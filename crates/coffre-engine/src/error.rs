//! The engine's one error type. It names what went wrong in storage terms; the protocol
//! crates map it to their own codes (S3 XML, admin JSON) in one place each.

use coffre_data::DataError;
use coffre_meta::MetaError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such upload")]
    NoSuchUpload,
    /// The bucket exists and is the caller's tenant's.
    #[error("bucket already exists")]
    BucketExists,
    /// The bucket name is another tenant's.
    #[error("bucket name taken")]
    BucketTaken,
    /// The write would take a bucket or a tenant over its quota.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// A tenant, user, access key, role or policy that does not exist.
    #[error("{0} not found")]
    NoSuchEntity(String),
    #[error("{0} already exists")]
    EntityExists(String),
    /// Deleting it would orphan what depends on it.
    #[error("{0}")]
    DeleteConflict(String),
    #[error("bucket not empty")]
    BucketNotEmpty,
    /// A condition the request set (If-Match, If-None-Match…) does not hold.
    #[error("precondition failed: {0}")]
    PreconditionFailed(String),
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
    /// The client's body stream failed; the error inside is the protocol's own.
    #[error("request body: {0}")]
    Body(std::io::Error),
    /// Stored data or metadata is damaged beyond what the engine can repair.
    #[error("corrupt: {0}")]
    Corrupt(String),
    #[error("internal: {0}")]
    Internal(String),
    /// A `versionId` names no version of the key.
    #[error("no such version")]
    NoSuchVersion,
    /// What the request names is a delete marker (a GET of the key when it is the newest
    /// version: 404; a request naming it by id: 405).
    #[error("delete marker {version_id}")]
    DeleteMarker { version_id: String },
    /// Object Lock protects the version.
    #[error("locked: {0}")]
    Locked(String),
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
}

pub type EngineResult<T> = Result<T, EngineError>;

impl From<MetaError> for EngineError {
    fn from(e: MetaError) -> EngineError {
        match e {
            MetaError::NoSuchBucket => EngineError::NoSuchBucket,
            MetaError::BucketExists => EngineError::BucketExists,
            MetaError::BucketTaken => EngineError::BucketTaken,
            MetaError::QuotaExceeded(m) => EngineError::QuotaExceeded(m),
            MetaError::NoSuchEntity(m) => EngineError::NoSuchEntity(m),
            MetaError::EntityExists(m) => EngineError::EntityExists(m),
            MetaError::DeleteConflict(m) => EngineError::DeleteConflict(m),
            MetaError::BucketNotEmpty => EngineError::BucketNotEmpty,
            MetaError::NoSuchUpload => EngineError::NoSuchUpload,
            MetaError::NoSuchKey => EngineError::NoSuchKey,
            MetaError::PreconditionFailed { .. } => {
                EngineError::PreconditionFailed("At least one of the pre-conditions you specified did not hold".into())
            }
            MetaError::PartChanged => EngineError::Conflict(
                "A part of this upload was uploaded again while it was being completed; retry".into(),
            ),
            MetaError::Corrupt(m) => EngineError::Corrupt(m),
            MetaError::Db(e) => EngineError::Internal(format!("metadata store: {e}")),
            MetaError::Unavailable(m) => EngineError::Unavailable(m),
            MetaError::NoSuchVersion => EngineError::NoSuchVersion,
            MetaError::Locked(m) => EngineError::Locked(m),
            MetaError::InvalidBucketState(m) => EngineError::InvalidBucketState(m),
            MetaError::InvalidRequest(m) => EngineError::InvalidRequest(m),
            MetaError::MethodNotAllowed(m) => EngineError::MethodNotAllowed(m),
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
