//! The identity layer's one error type; the S3, IAM and admin protocols map it to their
//! codes in one place each.

use coffre_meta::MetaError;

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
    /// A bucket that does not exist (whoever asks).
    #[error("no such bucket")]
    NoSuchBucket,
    /// A sealed secret or a wrapped key that does not open.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The key provider (an HSM, a KMIP server) cannot be reached: retry later.
    #[error("{0}")]
    KeyUnavailable(String),
    /// The metadata store failed, or refused for a reason of its own.
    #[error(transparent)]
    Meta(MetaError),
}

impl From<MetaError> for IamError {
    fn from(e: MetaError) -> IamError {
        match e {
            MetaError::NoSuchEntity(m) => IamError::NoSuchEntity(m),
            MetaError::EntityExists(m) => IamError::EntityAlreadyExists(m),
            MetaError::DeleteConflict(m) => IamError::DeleteConflict(m),
            MetaError::NoSuchBucket => IamError::NoSuchBucket,
            other => IamError::Meta(other),
        }
    }
}

pub type IamResult<T> = Result<T, IamError>;

impl IamError {
    /// A tenant's key that does not unwrap: the provider is away (retry) or the record is bad.
    pub fn key(tenant: &str, e: coffre_crypto::CryptoError) -> IamError {
        match e {
            coffre_crypto::CryptoError::Unavailable(_) => IamError::KeyUnavailable(e.to_string()),
            e => IamError::Corrupt(format!("the key of tenant '{tenant}' is unusable: {e}")),
        }
    }
}
