//! The master key in a KMIP server (KMIP 1.4 over TLS with a client certificate; PyKMIP's
//! server in the tests, any KMIP 1.4 key manager in production).
//!
//! Each master key version is an AES-256 symmetric key the server creates and keeps, named
//! `coffre-master-N`; it never leaves the server. Wrapping is a KMIP `Encrypt` with AES-GCM (a
//! random 96-bit IV chosen here, the context as authenticated additional data, a 16-byte tag),
//! unwrapping a `Decrypt`, which the server refuses when the tag does not match. One
//! connection per call: calls are rare (unwrapped keys are cached above), and a server that
//! restarted is reached again without any state to repair. Every call has a deadline; a
//! server away is `CryptoError::Unavailable`.

pub mod ttlv;

use super::KeyProvider;
use crate::CryptoError;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ttlv::{Item, Value};

/// Names of master key versions: `coffre-master-1`, `coffre-master-2`, …
pub const NAME_PREFIX: &str = "coffre-master-";
const MAGIC: &[u8; 4] = b"CKM1";
const IV_LEN: usize = 12;
/// MAGIC ∥ version (u32, big-endian) ∥ IV ∥ AES-GCM of 32 bytes ∥ its 16-byte tag.
pub const WRAPPED_LEN: usize = 4 + 4 + IV_LEN + 32 + 16;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Versions looked for at start (by name, one `Locate` each, until one is missing).
const MAX_VERSIONS: u32 = 1000;

/// KMIP tags, operations and enumerations used here (KMIP 1.4 §9.1.3).
mod tag {
    pub const ATTRIBUTE: u32 = 0x420008;
    pub const ATTRIBUTE_NAME: u32 = 0x42000A;
    pub const ATTRIBUTE_VALUE: u32 = 0x42000B;
    pub const BATCH_COUNT: u32 = 0x42000D;
    pub const BATCH_ITEM: u32 = 0x42000F;
    pub const BLOCK_CIPHER_MODE: u32 = 0x420011;
    pub const CRYPTOGRAPHIC_ALGORITHM: u32 = 0x420028;
    pub const CRYPTOGRAPHIC_PARAMETERS: u32 = 0x42002B;
    pub const IV_COUNTER_NONCE: u32 = 0x42003D;
    pub const NAME_TYPE: u32 = 0x420054;
    pub const NAME_VALUE: u32 = 0x420055;
    pub const OBJECT_TYPE: u32 = 0x420057;
    pub const OPERATION: u32 = 0x42005C;
    pub const PROTOCOL_VERSION: u32 = 0x420069;
    pub const PROTOCOL_VERSION_MAJOR: u32 = 0x42006A;
    pub const PROTOCOL_VERSION_MINOR: u32 = 0x42006B;
    pub const REQUEST_HEADER: u32 = 0x420077;
    pub const REQUEST_MESSAGE: u32 = 0x420078;
    pub const REQUEST_PAYLOAD: u32 = 0x420079;
    pub const RESPONSE_PAYLOAD: u32 = 0x42007C;
    pub const RESULT_MESSAGE: u32 = 0x42007D;
    pub const RESULT_REASON: u32 = 0x42007E;
    pub const RESULT_STATUS: u32 = 0x42007F;
    pub const TEMPLATE_ATTRIBUTE: u32 = 0x420091;
    pub const UNIQUE_IDENTIFIER: u32 = 0x420094;
    pub const DATA: u32 = 0x4200C2;
    pub const TAG_LENGTH: u32 = 0x4200CE;
    pub const AE_ADDITIONAL_DATA: u32 = 0x4200FE;
    pub const AE_TAG: u32 = 0x4200FF;
}
mod op {
    pub const CREATE: u32 = 0x01;
    pub const LOCATE: u32 = 0x08;
    pub const ACTIVATE: u32 = 0x12;
    pub const ENCRYPT: u32 = 0x1F;
    pub const DECRYPT: u32 = 0x20;
}
const OBJECT_SYMMETRIC_KEY: u32 = 0x02;
const ALGORITHM_AES: u32 = 0x03;
const MODE_GCM: u32 = 0x09;
const NAME_TEXT: u32 = 0x01;
const USAGE_ENCRYPT_DECRYPT: i32 = 0x04 | 0x08;
/// Result reasons that say the request was refused for good, not that the server is away.
const REASON_CRYPTOGRAPHIC_FAILURE: u32 = 0x0A;

/// Where the KMIP server is and how to authenticate to it.
pub struct KmipConfig {
    /// `HOST:PORT` (5696 is KMIP's port).
    pub endpoint: String,
    /// The client certificate (PEM, with its chain) and its private key (PEM).
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
}

pub struct KmipProvider {
    endpoint: String,
    host: String,
    tls: Arc<rustls::ClientConfig>,
    /// Master key versions: number → the server's unique identifier.
    versions: Mutex<BTreeMap<u32, String>>,
}

fn name(version: u32) -> String {
    format!("{NAME_PREFIX}{version}")
}

fn text(tag: u32, v: &str) -> Item {
    Item::new(tag, Value::TextString(v.into()))
}

fn enumeration(tag: u32, v: u32) -> Item {
    Item::new(tag, Value::Enumeration(v))
}

fn attribute(name: &str, value: Value) -> Item {
    Item::structure(
        tag::ATTRIBUTE,
        vec![text(tag::ATTRIBUTE_NAME, name), Item::new(tag::ATTRIBUTE_VALUE, value)],
    )
}

fn name_attribute(version: u32) -> Item {
    attribute(
        "Name",
        Value::Structure(vec![
            text(tag::NAME_VALUE, &name(version)),
            enumeration(tag::NAME_TYPE, NAME_TEXT),
        ]),
    )
}

fn gcm_parameters() -> Item {
    Item::structure(
        tag::CRYPTOGRAPHIC_PARAMETERS,
        vec![
            // In the specification's order, which servers may insist on.
            enumeration(tag::BLOCK_CIPHER_MODE, MODE_GCM),
            enumeration(tag::CRYPTOGRAPHIC_ALGORITHM, ALGORITHM_AES),
            Item::new(tag::TAG_LENGTH, Value::Integer(16)),
        ],
    )
}

/// What a failed call means: the server refused (for good), or could not be reached.
enum CallError {
    Refused { reason: Option<u32>, message: String },
    Unreachable(String),
}

impl KmipProvider {
    /// Reads the certificates, reaches the server, finds the master key versions (creating
    /// and activating the first one on a server that has none). The server must answer: a
    /// store whose master key it holds cannot start without it.
    pub fn open(config: &KmipConfig) -> Result<KmipProvider, CryptoError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, p: &PathBuf, e: &dyn std::fmt::Display| {
            CryptoError::Provider(format!("KMIP {what} {}: {e}", p.display()))
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&config.cert)
            .map_err(|e| bad("client certificate", &config.cert, &e))?
            .collect::<Result<_, _>>()
            .map_err(|e| bad("client certificate", &config.cert, &e))?;
        let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| bad("client key", &config.key, &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&config.ca).map_err(|e| bad("CA", &config.ca, &e))? {
            roots
                .add(ca.map_err(|e| bad("CA", &config.ca, &e))?)
                .map_err(|e| bad("CA", &config.ca, &e))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| CryptoError::Provider(e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| bad("client certificate", &config.cert, &e))?;
        let host = config
            .endpoint
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .ok_or_else(|| CryptoError::Provider(format!("--kmip-endpoint {}: HOST:PORT", config.endpoint)))?;
        let provider = KmipProvider {
            endpoint: config.endpoint.clone(),
            host,
            tls: Arc::new(tls),
            versions: Mutex::new(BTreeMap::new()),
        };
        let versions = provider.find_versions()?;
        let versions = if versions.is_empty() {
            let uid = provider.create_version(1)?;
            BTreeMap::from([(1, uid)])
        } else {
            versions
        };
        *provider.versions.lock().unwrap_or_else(|p| p.into_inner()) = versions;
        Ok(provider)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> CryptoError {
        CryptoError::Unavailable(format!("KMIP server {}: {e}", self.endpoint))
    }

    /// One request (one batch item) on a connection of its own; the response payload.
    fn call(&self, operation: u32, payload: Vec<Item>) -> Result<Item, CallError> {
        let request = Item::structure(
            tag::REQUEST_MESSAGE,
            vec![
                Item::structure(
                    tag::REQUEST_HEADER,
                    vec![
                        Item::structure(
                            tag::PROTOCOL_VERSION,
                            vec![
                                Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(1)),
                                Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(4)),
                            ],
                        ),
                        Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                    ],
                ),
                Item::structure(
                    tag::BATCH_ITEM,
                    vec![
                        enumeration(tag::OPERATION, operation),
                        Item::structure(tag::REQUEST_PAYLOAD, payload),
                    ],
                ),
            ],
        )
        .encode();
        let response = self.exchange(&request).map_err(CallError::Unreachable)?;
        let (message, _) = Item::decode(&response).map_err(|e| CallError::Unreachable(e.to_string()))?;
        let item = message
            .child(tag::BATCH_ITEM)
            .ok_or_else(|| CallError::Unreachable("a response without a batch item".into()))?;
        match item.child(tag::RESULT_STATUS).and_then(Item::enumeration) {
            Some(0) => Ok(item
                .child(tag::RESPONSE_PAYLOAD)
                .cloned()
                .unwrap_or(Item::structure(tag::RESPONSE_PAYLOAD, vec![]))),
            _ => Err(CallError::Refused {
                reason: item.child(tag::RESULT_REASON).and_then(Item::enumeration),
                message: item
                    .child(tag::RESULT_MESSAGE)
                    .and_then(Item::text)
                    .unwrap_or("no message")
                    .to_string(),
            }),
        }
    }

    /// Sends a request and reads the whole response, within the call's deadline.
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, String> {
        let addr = self
            .endpoint
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .next()
            .ok_or("no address")?;
        let tcp = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT).map_err(|e| e.to_string())?;
        tcp.set_read_timeout(Some(CALL_TIMEOUT)).map_err(|e| e.to_string())?;
        tcp.set_write_timeout(Some(CALL_TIMEOUT)).map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|e| e.to_string())?;
        let conn = rustls::ClientConnection::new(self.tls.clone(), name).map_err(|e| e.to_string())?;
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        tls.write_all(request).map_err(|e| e.to_string())?;
        tls.flush().map_err(|e| e.to_string())?;
        let mut head = [0u8; 8];
        tls.read_exact(&mut head).map_err(|e| e.to_string())?;
        let len = ttlv::message_len(&head).map_err(|e| e.to_string())?;
        let mut response = head.to_vec();
        response.resize(len, 0);
        tls.read_exact(&mut response[8..]).map_err(|e| e.to_string())?;
        tls.conn.send_close_notify();
        let _ = tls.flush();
        Ok(response)
    }

    fn checked(&self, r: Result<Item, CallError>) -> Result<Item, CryptoError> {
        r.map_err(|e| match e {
            CallError::Unreachable(m) => self.unavailable(m),
            CallError::Refused {
                reason: Some(REASON_CRYPTOGRAPHIC_FAILURE),
                ..
            } => CryptoError::Tampered,
            CallError::Refused { reason, message } => CryptoError::Provider(format!(
                "KMIP server {} refused: {message} (reason {})",
                self.endpoint,
                reason.map_or("none".into(), |r| format!("{r:#x}"))
            )),
        })
    }

    /// The unique identifier of the key named for `version`, if the server has one.
    fn locate(&self, version: u32) -> Result<Option<String>, CryptoError> {
        let payload = self.checked(self.call(op::LOCATE, vec![name_attribute(version)]))?;
        Ok(payload
            .child(tag::UNIQUE_IDENTIFIER)
            .and_then(Item::text)
            .map(str::to_string))
    }

    fn find_versions(&self) -> Result<BTreeMap<u32, String>, CryptoError> {
        let mut out = BTreeMap::new();
        for v in 1..=MAX_VERSIONS {
            match self.locate(v)? {
                Some(uid) => out.insert(v, uid),
                None => break,
            };
        }
        Ok(out)
    }

    /// Creates and activates the key of `version` in the server.
    fn create_version(&self, version: u32) -> Result<String, CryptoError> {
        let template = Item::structure(
            tag::TEMPLATE_ATTRIBUTE,
            vec![
                attribute("Cryptographic Algorithm", Value::Enumeration(ALGORITHM_AES)),
                attribute("Cryptographic Length", Value::Integer(256)),
                attribute("Cryptographic Usage Mask", Value::Integer(USAGE_ENCRYPT_DECRYPT)),
                name_attribute(version),
            ],
        );
        let payload = self.checked(self.call(
            op::CREATE,
            vec![enumeration(tag::OBJECT_TYPE, OBJECT_SYMMETRIC_KEY), template],
        ))?;
        let uid = payload
            .child(tag::UNIQUE_IDENTIFIER)
            .and_then(Item::text)
            .ok_or_else(|| CryptoError::Provider("KMIP Create answered no unique identifier".into()))?
            .to_string();
        self.checked(self.call(op::ACTIVATE, vec![text(tag::UNIQUE_IDENTIFIER, &uid)]))?;
        Ok(uid)
    }

    fn uid_of(&self, version: u32) -> Result<String, CryptoError> {
        if let Some(uid) = self.versions.lock().unwrap_or_else(|p| p.into_inner()).get(&version) {
            return Ok(uid.clone());
        }
        // Made by a version another gateway added since this one looked.
        let uid = self
            .locate(version)?
            .ok_or_else(|| CryptoError::UnknownKeyId(format!("{} (not on the KMIP server)", name(version))))?;
        self.versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(version, uid.clone());
        Ok(uid)
    }
}

/// A wrapped key's parts.
struct Wrapped<'a> {
    version: u32,
    iv: &'a [u8],
    ciphertext: &'a [u8],
    tag: &'a [u8],
}

fn parse(wrapped: &[u8]) -> Option<Wrapped<'_>> {
    if wrapped.len() != WRAPPED_LEN || wrapped[..4] != *MAGIC {
        return None;
    }
    let version = u32::from_be_bytes(wrapped[4..8].try_into().ok()?);
    let (ciphertext, tag) = wrapped[8 + IV_LEN..].split_at(32);
    Some(Wrapped {
        version,
        iv: &wrapped[8..8 + IV_LEN],
        ciphertext,
        tag,
    })
}

impl KeyProvider for KmipProvider {
    fn kind(&self) -> &'static str {
        "kmip"
    }

    fn current_version(&self) -> String {
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.keys().next_back().map_or_else(String::new, |v| name(*v))
    }

    fn wrap(&self, plain: &[u8; 32], context: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (version, uid) = {
            let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            let (v, uid) = versions
                .iter()
                .next_back()
                .ok_or_else(|| CryptoError::Provider("the KMIP server holds no master key".into()))?;
            (*v, uid.clone())
        };
        let iv: [u8; IV_LEN] = coffre_types::random_bytes();
        let payload = self.checked(self.call(
            op::ENCRYPT,
            vec![
                text(tag::UNIQUE_IDENTIFIER, &uid),
                gcm_parameters(),
                Item::new(tag::DATA, Value::ByteString(plain.to_vec())),
                Item::new(tag::IV_COUNTER_NONCE, Value::ByteString(iv.to_vec())),
                Item::new(tag::AE_ADDITIONAL_DATA, Value::ByteString(context.to_vec())),
            ],
        ))?;
        let ct = payload.child(tag::DATA).and_then(Item::bytes).unwrap_or_default();
        let gcm_tag = payload.child(tag::AE_TAG).and_then(Item::bytes).unwrap_or_default();
        if ct.len() != 32 || gcm_tag.len() != 16 {
            return Err(CryptoError::Provider(format!(
                "KMIP server {} answered an AES-GCM encryption without its ciphertext or tag ({} and {} bytes): it must speak KMIP 1.4 authenticated encryption",
                self.endpoint,
                ct.len(),
                gcm_tag.len()
            )));
        }
        let mut out = Vec::with_capacity(WRAPPED_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&iv);
        out.extend_from_slice(ct);
        out.extend_from_slice(gcm_tag);
        Ok(out)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<[u8; 32], CryptoError> {
        let Wrapped {
            version,
            iv,
            ciphertext: ct,
            tag: gcm_tag,
        } = parse(wrapped).ok_or(CryptoError::Tampered)?;
        let uid = self.uid_of(version)?;
        let payload = self.checked(self.call(
            op::DECRYPT,
            vec![
                text(tag::UNIQUE_IDENTIFIER, &uid),
                gcm_parameters(),
                Item::new(tag::DATA, Value::ByteString(ct.to_vec())),
                Item::new(tag::IV_COUNTER_NONCE, Value::ByteString(iv.to_vec())),
                Item::new(tag::AE_ADDITIONAL_DATA, Value::ByteString(context.to_vec())),
                Item::new(tag::AE_TAG, Value::ByteString(gcm_tag.to_vec())),
            ],
        ))?;
        payload
            .child(tag::DATA)
            .and_then(Item::bytes)
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or(CryptoError::Tampered)
    }

    fn made(&self, wrapped: &[u8]) -> bool {
        parse(wrapped).is_some()
    }

    fn is_current(&self, wrapped: &[u8]) -> bool {
        let versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        parse(wrapped).is_some_and(|w| versions.keys().next_back() == Some(&w.version))
    }

    fn add_version(&self) -> Result<String, CryptoError> {
        let found = self.find_versions()?;
        let next = found.keys().next_back().map_or(1, |v| v + 1);
        let uid = self.create_version(next)?;
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        *versions = found;
        versions.insert(next, uid);
        Ok(name(next))
    }
}
