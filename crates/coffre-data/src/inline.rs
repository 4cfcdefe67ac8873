//! Small objects inlined in their metadata record: the same AEAD packages a one-stripe part
//! would hold (same package indexes, same associated data), but neither erasure-coded nor cut
//! into shards. Integrity is the AEAD tag's (a changed, truncated or moved byte fails to open).

use crate::{DataError, StripeLayout};
use coffre_crypto::{PackageCipher, PACKAGE_SIZE};

/// The MD5 of an inlined part's bytes (its ETag, as for a stored part).
pub fn md5_of(plain: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(plain).into()
}

/// Seals `plain` (one part, at most one stripe) into its packages, concatenated.
pub fn seal_inline(layout: &StripeLayout, cipher: &PackageCipher, plain: &[u8]) -> Result<Vec<u8>, DataError> {
    if plain.len() as u64 > layout.stripe_plain() {
        return Err(DataError::Internal("an inlined part holds at most one stripe".into()));
    }
    crate::metrics::DATA.parts_written.inc(&["inline"]);
    let mut out = Vec::with_capacity(StripeLayout::cipher_len(plain.len()));
    let packages = plain.len().div_ceil(PACKAGE_SIZE);
    for (j, chunk) in plain.chunks(PACKAGE_SIZE).enumerate() {
        let start = out.len();
        out.extend_from_slice(chunk);
        cipher.seal(layout.package_index(0, 0, j), j + 1 == packages, &mut out, start);
    }
    Ok(out)
}

/// Opens the packages of an inlined part of `size` bytes: its plaintext, whole.
pub fn open_inline(
    layout: &StripeLayout,
    cipher: &PackageCipher,
    mut sealed: Vec<u8>,
    size: u64,
) -> Result<Vec<u8>, DataError> {
    let size = usize::try_from(size).map_err(|_| DataError::Tampered)?;
    if size as u64 > layout.stripe_plain() || sealed.len() != StripeLayout::cipher_len(size) {
        return Err(DataError::Tampered);
    }
    let packages = size.div_ceil(PACKAGE_SIZE);
    let mut plain = Vec::with_capacity(size);
    let sealed_package = PACKAGE_SIZE + coffre_crypto::TAG_LEN;
    for (j, package) in sealed.chunks_mut(sealed_package).enumerate() {
        let opened = cipher
            .open(layout.package_index(0, 0, j), j + 1 == packages, package)
            .map_err(|_| DataError::Tampered)?;
        plain.extend_from_slice(opened);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffre_crypto::{DataKey, ObjectIdentity};
    use coffre_types::Scheme;
    use proptest::prelude::*;

    fn cipher(key: &str) -> PackageCipher {
        PackageCipher::new(
            &DataKey::random(),
            &ObjectIdentity {
                bucket: "b",
                key,
                version: &[1; 16],
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the size (up to a few packages), the packages open to the bytes sealed;
        /// one flipped bit, a cut, or another object's identity fails to open.
        #[test]
        fn inlined_packages_open_to_what_was_sealed_and_only_that(
            len in 0usize..(3 * PACKAGE_SIZE + 100),
            flip in any::<prop::sample::Index>(),
            seed in any::<u8>(),
        ) {
            let layout = StripeLayout::new(Scheme::DEFAULT);
            let plain: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let c = cipher("k");
            let sealed = seal_inline(&layout, &c, &plain).unwrap();
            prop_assert_eq!(sealed.len(), StripeLayout::cipher_len(len));
            prop_assert_eq!(open_inline(&layout, &c, sealed.clone(), len as u64).unwrap(), plain);
            if !sealed.is_empty() {
                let mut bad = sealed.clone();
                let i = flip.index(bad.len());
                bad[i] ^= 1;
                prop_assert!(open_inline(&layout, &c, bad, len as u64).is_err());
                prop_assert!(open_inline(&layout, &c, sealed[..sealed.len() - 1].to_vec(), len as u64).is_err());
                prop_assert!(open_inline(&layout, &cipher("other"), sealed.clone(), len as u64).is_err());
            }
            prop_assert!(open_inline(&layout, &c, sealed, len as u64 + 1).is_err());
        }
    }

    #[test]
    fn more_than_a_stripe_is_not_inlined() {
        let layout = StripeLayout {
            scheme: Scheme::DEFAULT,
            packages_per_stripe: 1,
        };
        assert!(seal_inline(&layout, &cipher("k"), &vec![0; PACKAGE_SIZE + 1]).is_err());
        assert!(open_inline(&layout, &cipher("k"), vec![], u64::MAX).is_err());
    }
}
