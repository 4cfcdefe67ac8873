//! The master key in a PKCS#11 token (an HSM; SoftHSM2 in the tests).
//!
//! Each master key version is an AES-256 secret key object of the token, labelled
//! `coffre-master-N`, generated there as sensitive and non-extractable: its value never
//! leaves the token. Wrapping is an AES-GCM encryption by the token (CKM_AES_GCM, a random
//! 96-bit IV per wrap, the context as associated data); unwrapping a decryption by it. What
//! comes out of the token is the wrapped key's plaintext (a tenant's key, the store key),
//! never the master key.
//!
//! One session, logged in as the user, serves every call (calls are rare: unwrapped keys are
//! cached above); it is opened again once when the token says it was lost.

use super::KeyProvider;
use crate::CryptoError;
use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

/// Labels of master key versions: `coffre-master-1`, `coffre-master-2`, …
pub const LABEL_PREFIX: &str = "coffre-master-";
const MAGIC: &[u8; 4] = b"CP11";
const IV_LEN: usize = 12;
/// MAGIC ∥ version (u32, big-endian) ∥ IV ∥ AES-GCM of 32 bytes ∥ its 16-byte tag.
pub const WRAPPED_LEN: usize = 4 + 4 + IV_LEN + 32 + 16;

/// Where the token is and how to log in.
pub struct Pkcs11Config {
    /// The vendor's PKCS#11 library (`/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// The user PIN.
    pub pin: String,
}

pub struct Pkcs11Provider {
    ctx: Pkcs11,
    slot: Slot,
    token: String,
    pin: String,
    inner: Mutex<Inner>,
}

struct Inner {
    session: Session,
    /// Master key versions found in the token, by number.
    versions: BTreeMap<u32, ObjectHandle>,
}

fn label(version: u32) -> String {
    format!("{LABEL_PREFIX}{version}")
}

/// Errors that say the token or the session is gone (retry on a new session, else 503).
fn is_lost(e: &Error) -> bool {
    matches!(
        e,
        Error::Pkcs11(
            RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::SessionClosed
                | RvError::SessionHandleInvalid
                | RvError::TokenNotPresent
                | RvError::UserNotLoggedIn
                | RvError::GeneralError
                | RvError::CryptokiNotInitialized,
            _
        )
    )
}

fn lost(token: &str, e: Error) -> CryptoError {
    CryptoError::Unavailable(format!("PKCS#11 token '{token}': {e}"))
}

impl Pkcs11Provider {
    /// Loads the module, finds the token by label, logs in, and finds the master key versions
    /// (generating the first one in a token that has none). A wrong PIN is an error that says
    /// so: the server does not start.
    pub fn open(config: &Pkcs11Config) -> Result<Pkcs11Provider, CryptoError> {
        let ctx = Pkcs11::new(&config.module)
            .map_err(|e| CryptoError::Provider(format!("PKCS#11 module {}: {e}", config.module.display())))?;
        match ctx.initialize(CInitializeArgs::OsThreads) {
            Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => return Err(CryptoError::Provider(format!("PKCS#11 initialization: {e}"))),
        }
        let slots = ctx
            .get_slots_with_token()
            .map_err(|e| CryptoError::Provider(format!("PKCS#11 slots: {e}")))?;
        let slot = slots
            .into_iter()
            .find(|s| ctx.get_token_info(*s).is_ok_and(|i| i.label().trim() == config.token))
            .ok_or_else(|| {
                CryptoError::Provider(format!(
                    "no PKCS#11 token labelled '{}' in {}",
                    config.token,
                    config.module.display()
                ))
            })?;
        let session = login(&ctx, slot, &config.token, &config.pin)?;
        let mut versions = find_versions(&session).map_err(|e| lost(&config.token, e))?;
        if versions.is_empty() {
            let handle = generate(&session, 1).map_err(|e| {
                CryptoError::Provider(format!("generating {} in token '{}': {e}", label(1), config.token))
            })?;
            versions.insert(1, handle);
        }
        Ok(Pkcs11Provider {
            ctx,
            slot,
            token: config.token.clone(),
            pin: config.pin.clone(),
            inner: Mutex::new(Inner { session, versions }),
        })
    }

    /// Runs `f` on the session; when the token says the session is lost, logs in on a new
    /// one and runs it once more.
    fn with_session<T>(&self, f: impl Fn(&mut Inner) -> Result<T, Error>) -> Result<T, CryptoError> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match f(&mut inner) {
            Err(e) if is_lost(&e) => {
                inner.session = login(&self.ctx, self.slot, &self.token, &self.pin)?;
                f(&mut inner).map_err(|e| self.error(e))
            }
            other => other.map_err(|e| self.error(e)),
        }
    }

    fn error(&self, e: Error) -> CryptoError {
        match e {
            Error::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange | RvError::DataInvalid, _) => {
                CryptoError::Tampered
            }
            Error::Pkcs11(RvError::KeyFunctionNotPermitted, _) => {
                CryptoError::Provider(format!("token '{}': this master key version is disabled", self.token))
            }
            e if is_lost(&e) => lost(&self.token, e),
            e => CryptoError::Provider(format!("PKCS#11 token '{}': {e}", self.token)),
        }
    }

    /// Adds a master key version (a rotation): the new key wraps from now on.
    pub fn add_numbered_version(&self) -> Result<u32, CryptoError> {
        self.with_session(|inner| {
            inner.versions = find_versions(&inner.session)?;
            let next = inner.versions.keys().next_back().map_or(1, |v| v + 1);
            let handle = generate(&inner.session, next)?;
            inner.versions.insert(next, handle);
            Ok(next)
        })
    }
}

fn login(ctx: &Pkcs11, slot: Slot, token: &str, pin: &str) -> Result<Session, CryptoError> {
    let session = ctx.open_rw_session(slot).map_err(|e| lost(token, e))?;
    match session.login(UserType::User, Some(&AuthPin::new(pin.to_string()))) {
        Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(Error::Pkcs11(RvError::PinIncorrect, _)) => Err(CryptoError::Provider(format!(
            "the PKCS#11 PIN is incorrect for token '{token}' (COFFRE_PKCS11_PIN or --pkcs11-pin-file)"
        ))),
        Err(Error::Pkcs11(RvError::PinLocked, _)) => Err(CryptoError::Provider(format!(
            "the PKCS#11 PIN of token '{token}' is locked (too many wrong PINs)"
        ))),
        Err(e) => Err(lost(token, e)),
    }
}

/// The token's secret keys labelled `coffre-master-N`.
fn find_versions(session: &Session) -> Result<BTreeMap<u32, ObjectHandle>, Error> {
    let mut out = BTreeMap::new();
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::KeyType(KeyType::AES),
    ];
    for handle in session.find_objects(&template)? {
        for attribute in session.get_attributes(handle, &[AttributeType::Label])? {
            if let Attribute::Label(l) = attribute {
                let version = std::str::from_utf8(&l)
                    .ok()
                    .and_then(|l| l.strip_prefix(LABEL_PREFIX))
                    .and_then(|n| n.parse::<u32>().ok());
                if let Some(v) = version {
                    out.insert(v, handle);
                }
            }
        }
    }
    Ok(out)
}

/// A new AES-256 key in the token, there to stay: sensitive, never extractable, usable only
/// to encrypt and decrypt.
fn generate(session: &Session, version: u32) -> Result<ObjectHandle, Error> {
    session.generate_key(
        &Mechanism::AesKeyGen,
        &[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Wrap(false),
            Attribute::Unwrap(false),
            Attribute::Label(label(version).into_bytes()),
        ],
    )
}

fn parse(wrapped: &[u8]) -> Option<(u32, &[u8], &[u8])> {
    if wrapped.len() != WRAPPED_LEN || wrapped[..4] != *MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(wrapped[4..8].try_into().ok()?);
    Some((version, &wrapped[8..8 + IV_LEN], &wrapped[8 + IV_LEN..]))
}

impl KeyProvider for Pkcs11Provider {
    fn kind(&self) -> &'static str {
        "pkcs11"
    }

    fn current_version(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .versions
            .keys()
            .next_back()
            .map_or_else(String::new, |v| label(*v))
    }

    fn wrap(&self, plain: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let iv: [u8; IV_LEN] = coffre_types::random_bytes();
        let (version, sealed) = self
            .with_session(|inner| {
                // `open` made sure there is a version.
                let Some((&version, &handle)) = inner.versions.iter().next_back() else {
                    return Ok(None);
                };
                let mut iv = iv;
                let params = GcmParams::new(&mut iv, context, 128.into())?;
                Ok(Some((
                    version,
                    inner.session.encrypt(&Mechanism::AesGcm(params), handle, plain)?,
                )))
            })?
            .ok_or_else(|| CryptoError::Provider(format!("token '{}' holds no master key", self.token)))?;
        if sealed.len() != 32 + 16 {
            return Err(CryptoError::Provider(format!(
                "token '{}' answered {} bytes to an AES-GCM encryption of 32",
                self.token,
                sealed.len()
            )));
        }
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError> {
        let (version, iv, sealed) = parse(wrapped).ok_or(CryptoError::Tampered)?;
        let plain = self.with_session(|inner| {
            if !inner.versions.contains_key(&version) {
                // Made by a version another gateway added since this one looked.
                inner.versions = find_versions(&inner.session)?;
            }
            let Some(&handle) = inner.versions.get(&version) else {
                return Ok(None);
            };
            let mut iv: [u8; IV_LEN] = iv.try_into().unwrap_or([0; IV_LEN]);
            let params = GcmParams::new(&mut iv, context, 128.into())?;
            inner
                .session
                .decrypt(&Mechanism::AesGcm(params), handle, sealed)
                .map(Some)
        })?;
        let plain = plain
            .ok_or_else(|| CryptoError::UnknownKeyId(format!("{} (not in token '{}')", label(version), self.token)))?;
        plain.try_into().map_err(|_| CryptoError::Tampered)
    }

    fn made(&self, wrapped: &[u8]) -> bool {
        parse(wrapped).is_some()
    }

    fn add_version(&self) -> Result<String, CryptoError> {
        self.add_numbered_version().map(label)
    }

    fn is_current(&self, wrapped: &[u8]) -> bool {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        parse(wrapped).is_some_and(|(v, _, _)| inner.versions.keys().next_back() == Some(&v))
    }
}
