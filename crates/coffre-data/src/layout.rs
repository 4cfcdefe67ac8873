//! Where bytes go: the arithmetic that maps plaintext offsets to packages, stripes and shards.
//! Every stripe holds `packages_per_stripe` packages of plaintext (the last may be short); its
//! ciphertext (packages with tags) is cut into `k` equal data shards, zero-padded.

use coffre_crypto::{PACKAGE_SIZE, TAG_LEN};
use coffre_types::Scheme;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StripeLayout {
    pub scheme: Scheme,
    pub packages_per_stripe: usize,
}

impl StripeLayout {
    /// 4 MiB of plaintext per stripe: big enough for sequential disk I/O, small enough that a
    /// request holds only a few in memory.
    pub const DEFAULT_PACKAGES: usize = 64;

    pub fn new(scheme: Scheme) -> StripeLayout {
        StripeLayout {
            scheme,
            packages_per_stripe: Self::DEFAULT_PACKAGES,
        }
    }

    pub fn stripe_plain(&self) -> u64 {
        (self.packages_per_stripe * PACKAGE_SIZE) as u64
    }

    pub fn stripe_count(&self, part_len: u64) -> u32 {
        part_len.div_ceil(self.stripe_plain()) as u32
    }

    /// Plaintext length of stripe `i` of a part of `part_len` bytes.
    pub fn stripe_len(&self, part_len: u64, i: u32) -> usize {
        let start = i as u64 * self.stripe_plain();
        (part_len.saturating_sub(start)).min(self.stripe_plain()) as usize
    }

    pub fn cipher_len(plain: usize) -> usize {
        plain + plain.div_ceil(PACKAGE_SIZE) * TAG_LEN
    }

    pub fn shard_len(&self, plain: usize) -> usize {
        Self::cipher_len(plain).div_ceil(self.scheme.data as usize)
    }

    /// Index of package `j` of stripe `i` of part `part`: unique within an object version, as
    /// the AEAD nonce requires (parts share the version's data key).
    pub fn package_index(&self, part: u16, stripe: u32, j: usize) -> u64 {
        ((part as u64) << 40) | (stripe as u64 * self.packages_per_stripe as u64 + j as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        let l = StripeLayout::new(Scheme::DEFAULT);
        let s = l.stripe_plain();
        assert_eq!(l.stripe_count(0), 0);
        assert_eq!(l.stripe_count(1), 1);
        assert_eq!(l.stripe_count(s), 1);
        assert_eq!(l.stripe_count(s + 1), 2);
        assert_eq!(l.stripe_len(s + 1, 1), 1);
        assert_eq!(StripeLayout::cipher_len(1), 17);
        assert_eq!(StripeLayout::cipher_len(PACKAGE_SIZE + 1), PACKAGE_SIZE + 1 + 32);
        assert_eq!(l.shard_len(1), 5);
    }
}
