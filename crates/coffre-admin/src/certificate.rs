//! Signed erasure certificates: what a tenant erasure destroyed, signed with the operator's
//! Ed25519 key, checkable by anyone holding the operator's public key.
//!
//! The signature covers the compact JSON of `Erasure` as serialized here (fields in their
//! declared order); a verifier parses the certificate (refusing unknown fields), serializes
//! it again and checks the signature over those bytes, so any changed, added or removed
//! field fails. The types are the admin API's (`crate::api`).

use base64::Engine as _;

pub const KIND: &str = "coffre-tenant-erasure/v1";

pub use crate::api::{Certificate, Erasure};

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Certificate {
    /// Signs what an erasure destroyed.
    pub fn sign(e: &coffre_engine::Erasure, key: &coffre_engine::OperatorKey) -> Certificate {
        let certificate = Erasure {
            kind: KIND.into(),
            tenant: e.tenant.clone(),
            erased_at: coffre_types::time::iso8601(e.erased_ms),
            kek_id: e.kek_id.clone(),
            buckets: e.buckets.clone(),
            objects: e.objects,
            bytes: e.bytes,
            statement: format!(
                "The key-encryption key {} of tenant '{}' was destroyed: no data key it wrapped, and so none of the tenant's objects, can be decrypted any more, with or without the master key.",
                e.kek_id, e.tenant
            ),
            operator_key: b64().encode(key.public_key()),
        };
        let signature = b64().encode(key.sign(&serde_json::to_vec(&certificate).expect("a certificate serializes")));
        Certificate { certificate, signature }
    }

    /// Checks a certificate's text against the operator's public key: `Ok` with what it
    /// certifies, or why it must not be trusted.
    pub fn verify(text: &str, trusted_key: &[u8]) -> Result<Erasure, String> {
        let c: Certificate = serde_json::from_str(text).map_err(|e| format!("not an erasure certificate: {e}"))?;
        if c.certificate.kind != KIND {
            return Err(format!("unknown certificate kind '{}'", c.certificate.kind));
        }
        let claimed = b64()
            .decode(&c.certificate.operator_key)
            .map_err(|_| "the operator key is not base64".to_string())?;
        if claimed != trusted_key {
            return Err("signed by another key than the operator's".into());
        }
        let sig = b64()
            .decode(&c.signature)
            .map_err(|_| "the signature is not base64".to_string())?;
        let signed = serde_json::to_vec(&c.certificate).map_err(|e| e.to_string())?;
        if !coffre_engine::verify_ed25519(trusted_key, &signed, &sig) {
            return Err("the signature does not match the certificate: it was altered".into());
        }
        Ok(c.certificate)
    }
}
