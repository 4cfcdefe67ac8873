//! Keys and encryption at rest.
//!
//! Envelope encryption: a 256-bit master key (operator-held) wraps one random data key per object
//! version. Object data is sealed in fixed-size AES-256-GCM packages before erasure coding, so
//! nodes only ever hold ciphertext. Metadata values holding secrets or user content are sealed
//! under a key derived from the master key.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::hkdf;
use std::path::Path;

mod package;
pub mod provider;
mod store_key;
pub use package::{ObjectIdentity, PackageCipher, PACKAGE_SIZE, TAG_LEN};
pub use provider::{FileProvider, KeyProvider};
use std::sync::Arc;
pub use store_key::STORE_KEY_FILE;

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("authentication failed: data was altered or belongs elsewhere")]
    Tampered,
    #[error("wrapped key was made by another master key (id {0})")]
    UnknownKeyId(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The key provider (an HSM, a KMIP server) cannot be reached or refuses to work now:
    /// what needs it fails (503), nothing falls back.
    #[error("the key provider is unavailable: {0}")]
    Unavailable(String),
    /// The key provider is misconfigured or refused the request for good.
    #[error("key provider: {0}")]
    Provider(String),
}

/// 32 random bytes that encrypt one object version's data. Only ever stored wrapped.
#[derive(Clone)]
pub struct DataKey(pub(crate) [u8; 32]);

impl DataKey {
    pub fn random() -> DataKey {
        DataKey(coffre_types::random_bytes())
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// A customer-provided key (SSE-C): given with each request, never stored, never logged.
/// What is stored is a salted MAC to recognise it; a part's data key is only usable bound to
/// it, so without it the data is unreadable, to the operator too.
#[derive(Clone)]
pub struct CustomerKey([u8; 32]);

impl std::fmt::Debug for CustomerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomerKey(..)")
    }
}

const CUSTOMER_CHECK_LEN: usize = 16 + 32;

impl CustomerKey {
    pub fn from_bytes(key: [u8; 32]) -> CustomerKey {
        CustomerKey(key)
    }

    fn mac(&self, salt: &[u8]) -> ring::hmac::Tag {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0);
        let mut msg = b"coffre sse-c key check v1".to_vec();
        msg.extend_from_slice(salt);
        ring::hmac::sign(&k, &msg)
    }

    /// What is stored to recognise this key: `salt ∥ HMAC-SHA256(key, label ∥ salt)`.
    pub fn new_check(&self) -> Vec<u8> {
        let salt: [u8; 16] = coffre_types::random_bytes();
        let mut out = salt.to_vec();
        out.extend_from_slice(self.mac(&salt).as_ref());
        out
    }

    /// Whether this is the key a stored check was made from (constant time).
    pub fn matches(&self, check: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        check.len() == CUSTOMER_CHECK_LEN && bool::from(self.mac(&check[..16]).as_ref().ct_eq(&check[16..]))
    }

    /// The key that actually encrypts a part: derived from the part's stored (master-wrapped)
    /// data key and this key, bound to `context` (the part's version).
    pub fn bind(&self, dk: &DataKey, context: &[u8]) -> DataKey {
        let mut ikm = dk.0.to_vec();
        ikm.extend_from_slice(&self.0);
        DataKey(hkdf32(&ikm, b"coffre sse-c data key v1", context))
    }

    /// A content digest as stored and shown for an SSE-C object (its ETag): keyed, so the
    /// stored metadata does not let anyone confirm a guess of the content.
    pub fn tag_digest(&self, md5: &[u8; 16]) -> [u8; 16] {
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hkdf32(&self.0, b"coffre sse-c etag v1", b""));
        let t = ring::hmac::sign(&k, md5);
        let mut out = [0u8; 16];
        out.copy_from_slice(&t.as_ref()[..16]);
        out
    }
}

struct Len32;
impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn hkdf32(ikm: &[u8], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let infos = [info];
    let okm = prk.expand(&infos, Len32).expect("32 bytes is a valid HKDF length");
    let mut out = [0u8; 32];
    okm.fill(&mut out).expect("32 bytes is a valid HKDF length");
    out
}

fn gcm_key(bytes: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key"))
}

/// The operator's master key.
pub struct MasterKey {
    key: [u8; 32],
    id: [u8; 8],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey(id {})", hex::encode(self.id))
    }
}

const WRAP_SALT: usize = 16;
/// key id ∥ salt ∥ AES-GCM(data key) ∥ tag
pub const WRAPPED_LEN: usize = 8 + WRAP_SALT + 32 + TAG_LEN;

impl MasterKey {
    pub fn from_bytes(key: [u8; 32]) -> MasterKey {
        let d = hkdf32(&key, b"coffre", b"coffre master key id v1");
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        MasterKey { key, id }
    }

    /// Parses 64 hex digits or the base64 of 32 bytes (as `COFFRE_MASTER_KEY` holds).
    pub fn from_text(text: &str) -> Result<MasterKey, CryptoError> {
        use base64::Engine;
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|c| c.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|e| CryptoError::MasterKey(e.to_string()))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| CryptoError::MasterKey("neither 64 hex digits nor base64".into()))?
        };
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CryptoError::MasterKey("a master key is 32 bytes".into()))?;
        Ok(MasterKey::from_bytes(key))
    }

    /// Reads the key file, or creates it (mode 0600) with a fresh random key.
    pub fn load_or_create(path: &Path) -> Result<MasterKey, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => MasterKey::from_text(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = coffre_types::random_bytes();
                coffre_types::create_private_file(path, hex::encode(key).as_bytes())?;
                Ok(MasterKey::from_bytes(key))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// Wraps a data key; `context` (the version id) is bound as associated data so a wrapped
    /// key cannot be moved to another object.
    pub fn wrap(&self, dk: &DataKey, context: &[u8]) -> Vec<u8> {
        wrap_with(&self.key, &self.id, &dk.0, context)
    }

    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, CryptoError> {
        unwrap_with(&self.key, &self.id, wrapped, context).map(DataKey)
    }

    /// The key that seals sensitive metadata values.
    pub fn metadata_sealer(&self) -> Sealer {
        Sealer {
            root: hkdf32(&self.key, b"coffre", b"coffre metadata seal v2"),
            legacy: gcm_key(&hkdf32(&self.key, b"coffre", b"coffre metadata seal v1")),
        }
    }
}

/// `id ∥ salt ∥ AES-GCM(key32)` under a key derived from `kek` and the salt; `context` is
/// bound as associated data.
fn wrap_with(kek: &[u8; 32], id: &[u8; 8], plain: &[u8; 32], context: &[u8]) -> Vec<u8> {
    let salt: [u8; WRAP_SALT] = coffre_types::random_bytes();
    // A fresh key per wrap (HKDF over a random salt) lets the zero nonce be used safely for
    // any number of wraps.
    let k = gcm_key(&hkdf32(kek, &salt, b"coffre key wrap v1"));
    let mut buf = plain.to_vec();
    k.seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf)
        .expect("AES-GCM seal of 32 bytes");
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.extend_from_slice(id);
    out.extend_from_slice(&salt);
    out.extend_from_slice(&buf);
    out
}

fn unwrap_with(kek: &[u8; 32], id: &[u8; 8], wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError> {
    if wrapped.len() != WRAPPED_LEN {
        return Err(CryptoError::Tampered);
    }
    if wrapped[..8] != *id {
        return Err(CryptoError::UnknownKeyId(hex::encode(&wrapped[..8])));
    }
    let k = gcm_key(&hkdf32(kek, &wrapped[8..8 + WRAP_SALT], b"coffre key wrap v1"));
    let mut buf = wrapped[8 + WRAP_SALT..].to_vec();
    let plain = k
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(context), &mut buf)
        .map_err(|_| CryptoError::Tampered)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(plain);
    Ok(out)
}

/// A tenant's key-encryption key: it wraps the data keys of the tenant's objects and is
/// itself stored only wrapped by the master key. Destroying it (tenant erasure) makes every
/// data key it wrapped unreadable, whoever holds the master key.
pub struct TenantKey {
    key: [u8; 32],
    id: [u8; 8],
}

impl std::fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TenantKey(id {})", hex::encode(self.id))
    }
}

/// What a tenant's key is wrapped with as associated data: it belongs to that tenant only.
fn tenant_context(tenant: &str) -> Vec<u8> {
    [b"coffre tenant kek v1:".as_slice(), tenant.as_bytes()].concat()
}

impl TenantKey {
    pub fn random() -> TenantKey {
        TenantKey::from_bytes(coffre_types::random_bytes())
    }

    fn from_bytes(key: [u8; 32]) -> TenantKey {
        let d = hkdf32(&key, b"coffre", b"coffre tenant key id v1");
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        TenantKey { key, id }
    }

    pub fn id_hex(&self) -> String {
        hex::encode(self.id)
    }

    /// Whether `wrapped` (a wrapped data key) was made by this key.
    pub fn made(&self, wrapped: &[u8]) -> bool {
        wrapped.get(..8) == Some(&self.id[..])
    }

    pub fn wrap(&self, dk: &DataKey, context: &[u8]) -> Vec<u8> {
        wrap_with(&self.key, &self.id, &dk.0, context)
    }

    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, CryptoError> {
        unwrap_with(&self.key, &self.id, wrapped, context).map(DataKey)
    }

    /// Wraps another key-encryption key under this one: a tenant's KMS key (SSE-KMS) is kept
    /// only wrapped by its tenant's key, so erasing the tenant shreds its KMS keys too.
    pub fn wrap_key(&self, inner: &TenantKey, context: &[u8]) -> Vec<u8> {
        wrap_with(&self.key, &self.id, &inner.key, context)
    }

    pub fn unwrap_key(&self, wrapped: &[u8], context: &[u8]) -> Result<TenantKey, CryptoError> {
        unwrap_with(&self.key, &self.id, wrapped, context).map(TenantKey::from_bytes)
    }

    /// The 8-byte id wrapped keys name this key by.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }
}

/// A version of a tenant's KMS key's material: a key-encryption key like the tenant's own,
/// wrapping the data keys of the objects written under it (docs/keys.md).
pub type KmsKeyMaterial = TenantKey;

/// The keys in use. The store key seals metadata secrets (and unwraps data keys written
/// before tenants had keys); the provider's master key wraps each tenant's key. With the
/// `file` provider the store key is the master key itself (and previous ones, during or after
/// an interrupted rotation, still unwrap and open what they made); with a security container
/// the store key is a key of its own, wrapped by the provider (docs/keys.md). Wrapped keys
/// name their key by id, so the right one is picked without trying them all.
pub struct Keyring {
    current: Arc<MasterKey>,
    previous: Vec<Arc<MasterKey>>,
    current_sealer: Sealer,
    previous_sealers: Vec<Sealer>,
    provider: Arc<dyn KeyProvider>,
    /// Where the provider-wrapped store key is kept (none with the `file` provider).
    store_key_file: Option<std::path::PathBuf>,
}

impl Keyring {
    /// The `file` provider: the master key is also the store key.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> Keyring {
        let current = Arc::new(current);
        let previous: Vec<Arc<MasterKey>> = previous.into_iter().map(Arc::new).collect();
        let provider = Arc::new(FileProvider::new(current.clone(), previous.clone()));
        Keyring::assemble(current, previous, provider)
    }

    /// A store key (unwrapped by `provider` from the store's wrapped copy) and the provider
    /// that wraps tenant keys.
    pub fn with_provider(store: MasterKey, previous: Vec<MasterKey>, provider: Arc<dyn KeyProvider>) -> Keyring {
        Keyring::assemble(Arc::new(store), previous.into_iter().map(Arc::new).collect(), provider)
    }

    fn assemble(current: Arc<MasterKey>, previous: Vec<Arc<MasterKey>>, provider: Arc<dyn KeyProvider>) -> Keyring {
        let current_sealer = current.metadata_sealer();
        let previous_sealers = previous.iter().map(|k| k.metadata_sealer()).collect();
        Keyring {
            current,
            previous,
            current_sealer,
            previous_sealers,
            provider,
            store_key_file: None,
        }
    }

    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// This keyring, also opening (and unwrapping) what `old`'s keys sealed and wrapped: a
    /// store moving to a security container re-seals everything under its new store key.
    pub fn also_opening(mut self, old: &Keyring) -> Keyring {
        for k in std::iter::once(&old.current).chain(&old.previous) {
            self.previous_sealers.push(k.metadata_sealer());
            self.previous.push(k.clone());
        }
        self
    }

    pub fn provider(&self) -> &Arc<dyn KeyProvider> {
        &self.provider
    }

    pub fn wrap(&self, dk: &DataKey, context: &[u8]) -> Vec<u8> {
        self.current.wrap(dk, context)
    }

    pub fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<DataKey, CryptoError> {
        let id = wrapped.get(..8).ok_or(CryptoError::Tampered)?;
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id[..] == *id)
            .ok_or_else(|| CryptoError::UnknownKeyId(hex::encode(id)))?
            .unwrap(wrapped, context)
    }

    /// Wraps a tenant's key-encryption key with the provider's current master key, bound to
    /// the tenant.
    pub fn wrap_tenant_key(&self, tk: &TenantKey, tenant: &str) -> Result<Vec<u8>, CryptoError> {
        self.provider.wrap(&tk.key, &tenant_context(tenant))
    }

    pub fn unwrap_tenant_key(&self, wrapped: &[u8], tenant: &str) -> Result<TenantKey, CryptoError> {
        self.provider
            .unwrap(wrapped, &tenant_context(tenant))
            .map(TenantKey::from_bytes)
    }

    /// Whether a tenant's wrapped key was made by the provider's current master key.
    pub fn tenant_key_is_current(&self, wrapped: &[u8]) -> bool {
        self.provider.is_current(wrapped)
    }

    /// Whether a wrapped key was made by one of these master keys (rather than a tenant's).
    pub fn knows(&self, wrapped: &[u8]) -> bool {
        let id = wrapped.get(..8);
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| id == Some(&k.id[..]))
    }

    /// Whether a wrapped key was made by the current master key.
    pub fn is_current(&self, wrapped: &[u8]) -> bool {
        wrapped.get(..8) == Some(&self.current.id[..])
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        self.current_sealer.seal(aad, plaintext)
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self.current_sealer.open(aad, sealed) {
            Ok(p) => Ok(p),
            Err(e) => self
                .previous_sealers
                .iter()
                .find_map(|s| s.open(aad, sealed).ok())
                .ok_or(e),
        }
    }
}

/// The operator's signing key (Ed25519): it signs what the operator attests, such as tenant
/// erasure certificates. Stored in a 0600 file sealed under the master key.
pub struct OperatorKey {
    pair: ring::signature::Ed25519KeyPair,
}

const OPERATOR_KEY_AAD: &[u8] = b"coffre operator signing key v1";

impl OperatorKey {
    /// Reads the key file, or creates it with a fresh key. A file sealed under a previous
    /// master key is sealed again under the current one.
    pub fn load_or_create(path: &Path, keys: &Keyring) -> Result<OperatorKey, CryptoError> {
        let pkcs8 = sealed_signing_key(path, keys, OPERATOR_KEY_AAD)?;
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(&pkcs8)
            .map_err(|e| CryptoError::MasterKey(format!("operator signing key: {e}")))?;
        Ok(OperatorKey { pair })
    }

    pub fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        self.pair.public_key().as_ref().to_vec()
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The associated data an access key's secret is sealed with: bound to the key's id.
pub fn access_key_aad(id: &str) -> Vec<u8> {
    [b"coffre access key secret v1:".as_slice(), id.as_bytes()].concat()
}

/// What the audit signing key's file is sealed with.
pub const AUDIT_KEY_AAD: &[u8] = b"coffre audit signing key v1";
/// Associated data of the audit log's tenant tag key (`DATA/audit/tag.key`).
pub const AUDIT_TAG_KEY_AAD: &[u8] = b"coffre audit tenant tag key v1";

/// An Ed25519 key (PKCS#8) kept in a 0600 file sealed under the master key with `aad`:
/// read, or created on first use. A file sealed under a previous master key is sealed again
/// under the current one.
pub fn sealed_signing_key(path: &Path, keys: &Keyring, aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    sealed_secret(path, keys, aad, || {
        let rng = ring::rand::SystemRandom::new();
        ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|k| k.as_ref().to_vec())
            .map_err(|_| CryptoError::MasterKey("no randomness for a signing key".into()))
    })
}

/// A secret kept in `path` sealed under the master key (0600), made by `generate` on first
/// use; one sealed under a previous master key is sealed again under the current one.
pub fn sealed_secret(
    path: &Path,
    keys: &Keyring,
    aad: &[u8],
    generate: impl FnOnce() -> Result<Vec<u8>, CryptoError>,
) -> Result<Vec<u8>, CryptoError> {
    match std::fs::read(path) {
        Ok(sealed) => {
            let secret = keys.open(aad, &sealed)?;
            if keys.current_sealer.open(aad, &sealed).is_err() {
                write_replacing(path, &keys.seal(aad, &secret))?;
            }
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = generate()?;
            coffre_types::create_private_file(path, &keys.seal(aad, &secret))?;
            Ok(secret)
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether `signature` is `public_key`'s Ed25519 signature of `message`.
pub fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// Replaces a file's content atomically (a new 0600 file renamed over it, then synced).
fn write_replacing(path: &Path, data: &[u8]) -> Result<(), CryptoError> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    coffre_types::create_private_file(&tmp, data)?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Seals small values (metadata) with AES-256-GCM under a key derived for each value from a
/// random 128-bit salt: `SEAL_V2 ∥ salt ∥ ciphertext ∥ tag`. A fresh key per value makes the
/// (zero) nonce safe for any number of values; random 96-bit nonces under one key would not be
/// past a few billion records. Values sealed by the first format (`nonce ∥ ciphertext ∥ tag`
/// under one key) still open.
pub struct Sealer {
    root: [u8; 32],
    legacy: LessSafeKey,
}

const SEAL_V2: u8 = 0xC2;
const SEAL_SALT: usize = 16;

impl Sealer {
    fn value_key(&self, salt: &[u8]) -> LessSafeKey {
        gcm_key(&hkdf32(&self.root, salt, b"coffre sealed value"))
    }

    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let salt: [u8; SEAL_SALT] = coffre_types::random_bytes();
        let mut out = Vec::with_capacity(1 + SEAL_SALT + plaintext.len() + TAG_LEN);
        out.push(SEAL_V2);
        out.extend_from_slice(&salt);
        let mut body = plaintext.to_vec();
        self.value_key(&salt)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key([0; 12]), Aad::from(aad), &mut body)
            .expect("AES-GCM seal");
        out.extend_from_slice(&body);
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.first() == Some(&SEAL_V2) && sealed.len() >= 1 + SEAL_SALT + TAG_LEN {
            let (salt, body) = sealed[1..].split_at(SEAL_SALT);
            let mut buf = body.to_vec();
            if let Ok(p) =
                self.value_key(salt)
                    .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::from(aad), &mut buf)
            {
                let n = p.len();
                buf.truncate(n);
                return Ok(buf);
            }
        }
        self.open_legacy(aad, sealed)
    }

    fn open_legacy(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < 12 + TAG_LEN {
            return Err(CryptoError::Tampered);
        }
        let nonce: [u8; 12] = sealed[..12].try_into().map_err(|_| CryptoError::Tampered)?;
        let mut buf = sealed[12..].to_vec();
        let n = self
            .legacy
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Tampered)?
            .len();
        buf.truncate(n);
        Ok(buf)
    }

    /// The first format, for tests of what older stores hold.
    #[cfg(test)]
    fn seal_legacy(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = coffre_types::random_bytes();
        let mut body = plaintext.to_vec();
        self.legacy
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut body)
            .expect("AES-GCM seal");
        [&nonce[..], &body].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// A customer key recognises its own checks only, and binds a data key to itself and
        /// to the context: another key or another context gives another data key.
        #[test]
        fn customer_keys(a: [u8; 32], b: [u8; 32], dk: [u8; 32], flip in 0usize..48) {
            proptest::prop_assume!(a != b);
            let (ka, kb) = (CustomerKey::from_bytes(a), CustomerKey::from_bytes(b));
            let check = ka.new_check();
            proptest::prop_assert!(ka.matches(&check));
            proptest::prop_assert!(!kb.matches(&check));
            let mut bad = check.clone();
            bad[flip] ^= 1;
            proptest::prop_assert!(!ka.matches(&bad));
            proptest::prop_assert!(!ka.matches(&check[..47]));
            let dk = DataKey(dk);
            proptest::prop_assert_eq!(ka.bind(&dk, b"v1").0, ka.bind(&dk, b"v1").0);
            proptest::prop_assert_ne!(ka.bind(&dk, b"v1").0, kb.bind(&dk, b"v1").0);
            proptest::prop_assert_ne!(ka.bind(&dk, b"v1").0, ka.bind(&dk, b"v2").0);
            proptest::prop_assert_ne!(ka.bind(&dk, b"v1").0, dk.0);
            proptest::prop_assert_ne!(ka.tag_digest(&[0; 16]), kb.tag_digest(&[0; 16]));
        }
    }

    fn mk() -> MasterKey {
        MasterKey::from_bytes([7; 32])
    }

    #[test]
    fn wrap_roundtrip_and_binding() {
        let mk = mk();
        let dk = DataKey::random();
        let w = mk.wrap(&dk, b"version-1");
        assert_eq!(w.len(), WRAPPED_LEN);
        assert_eq!(mk.unwrap(&w, b"version-1").unwrap().0, dk.0);
        assert!(matches!(mk.unwrap(&w, b"version-2"), Err(CryptoError::Tampered)));
        let other = MasterKey::from_bytes([8; 32]);
        assert!(matches!(
            other.unwrap(&w, b"version-1"),
            Err(CryptoError::UnknownKeyId(_))
        ));
        let mut bad = w.clone();
        bad[30] ^= 1;
        assert!(mk.unwrap(&bad, b"version-1").is_err());
    }

    #[test]
    fn tenant_keys_wrap_data_keys_and_are_wrapped_by_the_master_key() {
        let ring = Keyring::new(mk(), vec![]);
        let tk = TenantKey::random();
        let wrapped_tk = ring.wrap_tenant_key(&tk, "hopital").unwrap();
        assert!(ring.tenant_key_is_current(&wrapped_tk));
        // Bound to its tenant: another tenant's name does not open it.
        assert!(ring.unwrap_tenant_key(&wrapped_tk, "mairie").is_err());
        let tk2 = ring.unwrap_tenant_key(&wrapped_tk, "hopital").unwrap();
        assert_eq!(tk2.id, tk.id);
        let dk = DataKey::random();
        let w = tk.wrap(&dk, b"v1");
        assert!(tk2.made(&w) && !ring.is_current(&w));
        assert_eq!(tk2.unwrap(&w, b"v1").unwrap().0, dk.0);
        assert!(tk2.unwrap(&w, b"v2").is_err());
        // The master key alone cannot open what a tenant key wrapped.
        assert!(matches!(ring.unwrap(&w, b"v1"), Err(CryptoError::UnknownKeyId(_))));
        assert!(TenantKey::random().unwrap(&w, b"v1").is_err());
        // After a rotation the old master key still opens the tenant key.
        let rotated = Keyring::new(MasterKey::from_bytes([9; 32]), vec![mk()]);
        assert_eq!(rotated.unwrap_tenant_key(&wrapped_tk, "hopital").unwrap().id, tk.id);
        assert!(!rotated.tenant_key_is_current(&wrapped_tk));
    }

    #[test]
    fn kms_key_material_is_wrapped_by_its_tenant_key_and_wraps_data_keys() {
        let tk = TenantKey::random();
        let material = KmsKeyMaterial::random();
        let wrapped = tk.wrap_key(&material, b"kms key k1 v1");
        assert!(tk.made(&wrapped));
        let opened = tk.unwrap_key(&wrapped, b"kms key k1 v1").unwrap();
        assert_eq!(opened.id(), material.id());
        // Bound to its key and version; another tenant's key cannot open it.
        assert!(tk.unwrap_key(&wrapped, b"kms key k1 v2").is_err());
        assert!(TenantKey::random().unwrap_key(&wrapped, b"kms key k1 v1").is_err());
        let dk = DataKey::random();
        let w = material.wrap(&dk, b"part");
        assert!(opened.made(&w) && !tk.made(&w));
        assert_eq!(opened.unwrap(&w, b"part").unwrap().0, dk.0);
        assert!(tk.unwrap(&w, b"part").is_err());
    }

    #[test]
    fn operator_key_is_sealed_and_survives_a_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("operator.key");
        let ring = Keyring::new(mk(), vec![]);
        let k = OperatorKey::load_or_create(&p, &ring).unwrap();
        let sig = k.sign(b"certificate");
        assert!(verify_ed25519(&k.public_key(), b"certificate", &sig));
        assert!(!verify_ed25519(&k.public_key(), b"certificatE", &sig));
        let on_disk = std::fs::read(&p).unwrap();
        assert!(
            ring.open(OPERATOR_KEY_AAD, &on_disk).is_ok(),
            "sealed under the master key"
        );
        // A new master key with the old one as previous: same key, sealed again.
        let rotated = Keyring::new(MasterKey::from_bytes([3; 32]), vec![mk()]);
        assert_eq!(
            OperatorKey::load_or_create(&p, &rotated).unwrap().public_key(),
            k.public_key()
        );
        let only_new = Keyring::new(MasterKey::from_bytes([3; 32]), vec![]);
        assert_eq!(
            OperatorKey::load_or_create(&p, &only_new).unwrap().public_key(),
            k.public_key()
        );
        assert!(OperatorKey::load_or_create(&p, &ring).is_err());
    }

    #[test]
    fn master_key_text_forms() {
        let hex_form = "11".repeat(32);
        let a = MasterKey::from_text(&hex_form).unwrap();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
        let b = MasterKey::from_text(&b64).unwrap();
        assert_eq!(a.id, b.id);
        assert!(MasterKey::from_text("short").is_err());
    }

    #[test]
    fn key_file_created_0600_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("master.key");
        let a = MasterKey::load_or_create(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = MasterKey::load_or_create(&p).unwrap();
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn keyring_reads_what_previous_keys_made() {
        let (old, new) = (MasterKey::from_bytes([1; 32]), MasterKey::from_bytes([2; 32]));
        let dk = DataKey::random();
        let wrapped_old = old.wrap(&dk, b"v");
        let sealed_old = old.metadata_sealer().seal(b"a", b"attrs");
        let ring = Keyring::new(new, vec![old]);
        assert_eq!(ring.unwrap(&wrapped_old, b"v").unwrap().0, dk.0);
        assert!(!ring.is_current(&wrapped_old));
        assert_eq!(ring.open(b"a", &sealed_old).unwrap(), b"attrs");
        let rewrapped = ring.wrap(&dk, b"v");
        assert!(ring.is_current(&rewrapped));
        let only_new = Keyring::new(MasterKey::from_bytes([2; 32]), vec![]);
        assert!(matches!(
            only_new.unwrap(&wrapped_old, b"v"),
            Err(CryptoError::UnknownKeyId(_))
        ));
        assert!(only_new.open(b"a", &sealed_old).is_err());
        assert_eq!(only_new.unwrap(&rewrapped, b"v").unwrap().0, dk.0);
    }

    #[test]
    fn sealed_values_never_share_a_key_and_old_ones_still_open() {
        let s = mk().metadata_sealer();
        let (a, b) = (s.seal(b"aad", b"same"), s.seal(b"aad", b"same"));
        assert_ne!(a[1..17], b[1..17], "a fresh salt, so a fresh key, per value");
        assert_ne!(a, b);
        let old = s.seal_legacy(b"aad", b"from an older store");
        assert_eq!(s.open(b"aad", &old).unwrap(), b"from an older store");
        assert!(s.open(b"other", &old).is_err());
    }

    proptest::proptest! {
        #[test]
        fn sealer_roundtrip(data: Vec<u8>, aad: Vec<u8>, flip in 0usize..1000) {
            let s = mk().metadata_sealer();
            let sealed = s.seal(&aad, &data);
            proptest::prop_assert_eq!(s.open(&aad, &sealed).unwrap(), data);
            let mut bad = sealed.clone();
            let i = flip % bad.len();
            bad[i] ^= 0x80;
            proptest::prop_assert!(s.open(&aad, &bad).is_err());
        }
    }
}
