//! The identity layer's one error type; the S3, IAM and admin protocols map it to their
//! codes in one place each.

use coffre_engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum IamError {
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// No such access key, or disabled, or expired.
    #[error("invalid access key: {0}")]
    InvalidAccessKeyId(String),
    /// A session token this store did not make, or for another key.
    #[error("invalid session token: {0}")]
    InvalidToken(String),
    #[error("expired: {0}")]
    ExpiredToken(String),
    #[error("{0} not found")]
    NoSuchEntity(String),
    #[error("{0} already exists")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("malformed policy: {0}")]
    MalformedPolicy(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A web identity token that is malformed, wrongly signed or not for this tenant.
    #[error("invalid identity token: {0}")]
    InvalidIdentityToken(String),
    /// The identity provider's keys could not be fetched.
    #[error("identity provider: {0}")]
    IdpCommunication(String),
    #[error(transparent)]
    Engine(EngineError),
}

impl From<EngineError> for IamError {
    fn from(e: EngineError) -> IamError {
        match e {
            EngineError::NoSuchEntity(m) => IamError::NoSuchEntity(m),
            EngineError::EntityExists(m) => IamError::EntityAlreadyExists(m),
            EngineError::DeleteConflict(m) => IamError::DeleteConflict(m),
            other => IamError::Engine(other),
        }
    }
}

pub type IamResult<T> = Result<T, IamError>;
