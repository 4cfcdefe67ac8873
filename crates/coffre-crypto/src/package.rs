//! Object data in fixed-size AEAD packages.
//!
//! Each `PACKAGE_SIZE` bytes of plaintext become one AES-256-GCM package (plaintext ∥ 16-byte
//! tag). The nonce is derived from the package index (the data key is unique per version), and
//! the associated data binds the object's identity, the package index and whether it is the last
//! package: swapping packages between objects, reordering or truncating them fails to open.

use crate::{gcm_key, CryptoError, DataKey};
use ring::aead::{Aad, LessSafeKey, Nonce};

pub const PACKAGE_SIZE: usize = 64 * 1024;
pub const TAG_LEN: usize = 16;

/// Whose data this is: bound into every package.
pub struct ObjectIdentity<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version: &'a [u8],
}

pub struct PackageCipher {
    key: LessSafeKey,
    identity: [u8; 32],
    nonce_prefix: [u8; 4],
}

impl PackageCipher {
    pub fn new(dk: &DataKey, id: &ObjectIdentity<'_>) -> PackageCipher {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [id.bucket.as_bytes(), id.key.as_bytes(), id.version] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut identity = [0u8; 32];
        identity.copy_from_slice(ctx.finish().as_ref());
        let mut nonce_prefix = [0u8; 4];
        nonce_prefix.copy_from_slice(&id.version[..4.min(id.version.len())]);
        PackageCipher {
            key: gcm_key(&dk.0),
            identity,
            nonce_prefix,
        }
    }

    fn nonce_aad(&self, index: u64, last: bool) -> (Nonce, [u8; 41]) {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.nonce_prefix);
        n[4..].copy_from_slice(&index.to_be_bytes());
        let mut aad = [0u8; 41];
        aad[..32].copy_from_slice(&self.identity);
        aad[32..40].copy_from_slice(&index.to_be_bytes());
        aad[40] = u8::from(last);
        (Nonce::assume_unique_for_key(n), aad)
    }

    /// Encrypts `buf[start..]` (one package of plaintext) in place and appends its tag.
    pub fn seal(&self, index: u64, last: bool, buf: &mut Vec<u8>, start: usize) {
        let (nonce, aad) = self.nonce_aad(index, last);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut buf[start..])
            .expect("AES-GCM seal of one package");
        buf.extend_from_slice(tag.as_ref());
    }

    /// Decrypts one package (ciphertext ∥ tag) in place; returns the plaintext.
    pub fn open<'a>(&self, index: u64, last: bool, package: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        let (nonce, aad) = self.nonce_aad(index, last);
        self.key
            .open_in_place(nonce, Aad::from(aad), package)
            .map_err(|_| CryptoError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packages_bound_to_identity_index_and_end() {
        let dk = DataKey::random();
        let id = ObjectIdentity {
            bucket: "b",
            key: "k",
            version: &[1; 16],
        };
        let c = PackageCipher::new(&dk, &id);
        let mut buf = b"hello world".to_vec();
        c.seal(3, true, &mut buf, 0);
        assert_eq!(buf.len(), 11 + TAG_LEN);
        assert_eq!(c.open(3, true, &mut buf.clone()).unwrap(), b"hello world");
        assert!(c.open(4, true, &mut buf.clone()).is_err());
        assert!(c.open(3, false, &mut buf.clone()).is_err());
        let other = PackageCipher::new(
            &dk,
            &ObjectIdentity {
                bucket: "b",
                key: "k2",
                version: &[1; 16],
            },
        );
        assert!(other.open(3, true, &mut buf.clone()).is_err());
        // ambiguous concatenations differ
        let shifted = PackageCipher::new(
            &dk,
            &ObjectIdentity {
                bucket: "bk",
                key: "",
                version: &[1; 16],
            },
        );
        assert!(shifted.open(3, true, &mut buf.clone()).is_err());
    }
}
