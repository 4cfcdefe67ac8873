//! Where the master key lives: the `KeyProvider` seam.
//!
//! The master key wraps the keys below it (each tenant's key-encryption key, and the store's
//! own key that seals metadata secrets) and nothing else: a provider is asked only to wrap
//! and unwrap 32-byte keys, bound to a context. `file` keeps the master key in the gateway's
//! memory (the embedded default); `pkcs11` keeps it in a token, which wraps and unwraps inside
//! itself, so the master key never enters Coffre's memory (docs/keys.md).
//!
//! Each provider's wrapped form names the master key version that made it, so a rotation can
//! add a version while every earlier one still unwraps what it made.

use crate::{unwrap_with, wrap_with, CryptoError, MasterKey};

pub mod kmip;
pub mod pkcs11;
use std::sync::Arc;

pub trait KeyProvider: Send + Sync {
    /// `file`, `pkcs11` or `kmip` (configuration and status).
    fn kind(&self) -> &'static str;
    /// The master key version that wraps now.
    fn current_version(&self) -> String;
    /// Wraps a 32-byte key under the current version, `context` bound as associated data.
    fn wrap(&self, plain: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError>;
    /// Unwraps with the version the wrapped form names. `CryptoError::Unavailable` when the
    /// provider cannot be reached (never a fallback to anything else).
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError>;
    /// Whether this provider made `wrapped` (with any of its versions).
    fn made(&self, wrapped: &[u8]) -> bool;
    /// Whether the current version made `wrapped` (a rotation skips those).
    fn is_current(&self, wrapped: &[u8]) -> bool;
    /// Adds a master key version, which wraps from now on (an online rotation); its name.
    fn add_version(&self) -> Result<String, CryptoError> {
        Err(CryptoError::Provider(format!(
            "the {} provider does not rotate online (the file provider: `coffre rotate-master-key`, server stopped)",
            self.kind()
        )))
    }
}

/// The master key in memory: the current key wraps, earlier ones (an interrupted offline
/// rotation) still unwrap. Wrapped form: key id ∥ salt ∥ AES-GCM (`WRAPPED_LEN` bytes).
pub struct FileProvider {
    keys: Vec<Arc<MasterKey>>,
}

impl FileProvider {
    pub fn new(current: Arc<MasterKey>, previous: Vec<Arc<MasterKey>>) -> FileProvider {
        FileProvider {
            keys: std::iter::once(current).chain(previous).collect(),
        }
    }

    fn by_id(&self, wrapped: &[u8]) -> Option<&MasterKey> {
        let id = wrapped.get(..8)?;
        self.keys.iter().map(|k| &**k).find(|k| k.id[..] == *id)
    }
}

impl KeyProvider for FileProvider {
    fn kind(&self) -> &'static str {
        "file"
    }

    fn current_version(&self) -> String {
        self.keys[0].id_hex()
    }

    fn wrap(&self, plain: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        Ok(wrap_with(&self.keys[0].key, &self.keys[0].id, plain, context))
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError> {
        let id = wrapped.get(..8).ok_or(CryptoError::Tampered)?;
        let mk = self
            .by_id(wrapped)
            .ok_or_else(|| CryptoError::UnknownKeyId(hex::encode(id)))?;
        unwrap_with(&mk.key, &mk.id, wrapped, context)
    }

    fn made(&self, wrapped: &[u8]) -> bool {
        wrapped.len() == crate::WRAPPED_LEN && self.by_id(wrapped).is_some()
    }

    fn is_current(&self, wrapped: &[u8]) -> bool {
        wrapped.len() == crate::WRAPPED_LEN && wrapped.get(..8) == Some(&self.keys[0].id[..])
    }
}
