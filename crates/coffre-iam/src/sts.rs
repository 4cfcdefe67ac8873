//! Temporary credentials. A session token is the session itself (tenant, role, secret,
//! expiry) sealed under the master key: any gateway with the key checks it on every
//! request without looking anything up, and nobody can make or alter one without the key.

use base64::Engine as _;
use coffre_crypto::Keyring;
use serde::{Deserialize, Serialize};

/// Shortest and longest session a caller may ask for (as AWS), in seconds.
pub const MIN_SESSION_SECS: u32 = 900;
pub const MAX_SESSION_SECS: u32 = 12 * 3600;
/// What a role allows when it does not say.
pub const DEFAULT_MAX_SESSION_SECS: u32 = 3600;

const TOKEN_PREFIX: &str = "CF1.";
const SESSION_AAD: &[u8] = b"coffre sts session v1";
/// Longest session token taken.
const MAX_SESSION_TOKEN: usize = 4096;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub access_key: String,
    pub secret: String,
    pub tenant: String,
    pub role: String,
    pub role_id: String,
    pub session: String,
    /// The web identity's `sub`.
    pub subject: String,
    pub expires_ms: u64,
}

impl Session {
    /// The session token that carries this session.
    pub fn token(&self, keys: &Keyring) -> String {
        let plain = serde_json::to_vec(self).expect("a session serializes");
        format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keys.seal(SESSION_AAD, &plain))
        )
    }

    /// The session a token carries, if this store made it (whatever its expiry).
    pub fn open(keys: &Keyring, token: &str) -> Option<Session> {
        if token.len() > MAX_SESSION_TOKEN {
            return None;
        }
        let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.strip_prefix(TOKEN_PREFIX)?)
            .ok()?;
        serde_json::from_slice(&keys.open(SESSION_AAD, &sealed).ok()?).ok()
    }
}
