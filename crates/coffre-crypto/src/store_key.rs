//! The store key of a store whose master key is in a security container: a random key of the
//! store's own (it seals metadata secrets, as the master key does with the `file` provider),
//! kept only wrapped by the provider in `DATA/store.key` (hex, 0600; useless without the
//! provider), unwrapped at start, and wrapped again under a new master key version by an
//! online rotation.

use crate::{CryptoError, KeyProvider, Keyring, MasterKey};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file's name in the data directory.
pub const STORE_KEY_FILE: &str = "store.key";
/// What the store key's wrapping is bound to.
const CONTEXT: &[u8] = b"coffre store key v1";

fn read_wrapped(path: &Path) -> Result<Vec<u8>, CryptoError> {
    let text = std::fs::read_to_string(path)?;
    hex::decode(text.trim()).map_err(|_| CryptoError::Provider(format!("{}: not hex", path.display())))
}

impl Keyring {
    /// The keyring of a store whose master key `provider` holds: the store key in `path` is
    /// unwrapped by the provider, or made and wrapped by it when the file does not exist yet.
    pub fn open_with_provider(path: &Path, provider: Arc<dyn KeyProvider>) -> Result<Keyring, CryptoError> {
        let key = match read_wrapped(path) {
            Ok(wrapped) => provider.unwrap(&wrapped, CONTEXT)?,
            Err(CryptoError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = coffre_types::random_bytes();
                let wrapped = provider.wrap(&key, CONTEXT)?;
                coffre_types::create_private_file(path, hex::encode(wrapped).as_bytes())?;
                key
            }
            Err(e) => return Err(e),
        };
        let mut ring = Keyring::with_provider(MasterKey::from_bytes(key), vec![], provider);
        ring.store_key_file = Some(path.to_path_buf());
        Ok(ring)
    }

    /// Whether the store key is wrapped by the provider's current master key (always, with
    /// the `file` provider, where there is no store key of its own).
    pub fn store_key_is_current(&self) -> Result<bool, CryptoError> {
        match &self.store_key_file {
            None => Ok(true),
            Some(path) => Ok(self.provider.is_current(&read_wrapped(path)?)),
        }
    }

    /// Wraps the store key again under the provider's current master key, replacing the file
    /// atomically (a crash leaves the old or the new wrapping, both valid until the old
    /// version is disabled). Whether it had to.
    pub fn rewrap_store_key(&self) -> Result<bool, CryptoError> {
        let Some(path) = &self.store_key_file else {
            return Ok(false);
        };
        let wrapped = read_wrapped(path)?;
        if self.provider.is_current(&wrapped) {
            return Ok(false);
        }
        let key = self.provider.unwrap(&wrapped, CONTEXT)?;
        let again = self.provider.wrap(&key, CONTEXT)?;
        let tmp: PathBuf = path.with_extension("key.new");
        let _ = std::fs::remove_file(&tmp);
        coffre_types::create_private_file(&tmp, hex::encode(again).as_bytes())?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(true)
    }
}
