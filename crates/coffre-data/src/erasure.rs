//! Reed-Solomon over GF(2^8) (`reed-solomon-erasure` with its SIMD kernels).

use crate::DataError;
use coffre_types::Scheme;
use reed_solomon_erasure::galois_8::ReedSolomon;

pub struct Codec {
    scheme: Scheme,
    rs: Option<ReedSolomon>,
}

impl Codec {
    pub fn new(scheme: Scheme) -> Codec {
        // With no parity there is nothing to compute: shards are plain slices.
        let rs = (scheme.parity > 0).then(|| {
            ReedSolomon::new(scheme.data as usize, scheme.parity as usize)
                .expect("Scheme::new admits only valid shard counts")
        });
        Codec { scheme, rs }
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// `buf` holds `k` data shards of `shard_len` bytes followed by room for `m` parity shards;
    /// fills the parity.
    pub fn encode(&self, buf: &mut [u8], shard_len: usize) -> Result<(), DataError> {
        let Some(rs) = &self.rs else { return Ok(()) };
        let k = self.scheme.data as usize;
        let (data, parity) = buf.split_at_mut(k * shard_len);
        let data: Vec<&[u8]> = data.chunks(shard_len).collect();
        let mut parity: Vec<&mut [u8]> = parity.chunks_mut(shard_len).collect();
        rs.encode_sep(&data, &mut parity)
            .map_err(|e| DataError::Erasure(format!("{e:?}")))
    }

    /// Rebuilds shard `index` in place in `buf` (`k+m` shards of `shard_len` bytes, those
    /// marked in `present` filled in, at least `k` of them): only the data shards missing
    /// when `index` is a data shard (no parity is computed), every missing shard otherwise.
    pub fn rebuild_one(
        &self,
        buf: &mut [u8],
        shard_len: usize,
        present: &[bool],
        index: usize,
    ) -> Result<(), DataError> {
        let n = self.scheme.total();
        if shard_len == 0 || buf.len() != n * shard_len || present.len() != n || index >= n {
            return Err(DataError::Erasure("a rebuild's buffer does not fit its scheme".into()));
        }
        if present[index] {
            return Ok(());
        }
        let Some(rs) = &self.rs else {
            return Err(DataError::Erasure("a shard is missing and there is no parity".into()));
        };
        let mut slices: Vec<(&mut [u8], bool)> = buf.chunks_mut(shard_len).zip(present.iter().copied()).collect();
        let done = if index < self.scheme.data as usize {
            rs.reconstruct_data(&mut slices)
        } else {
            rs.reconstruct(&mut slices)
        };
        done.map_err(|e| DataError::Erasure(format!("{e:?}")))
    }

    /// Rebuilds the missing data shards in place. `shards` has `k+m` entries; `None` is missing.
    pub fn reconstruct_data(&self, shards: &mut [Option<Vec<u8>>]) -> Result<(), DataError> {
        match &self.rs {
            Some(rs) => rs
                .reconstruct_data(shards)
                .map_err(|e| DataError::Erasure(format!("{e:?}"))),
            None if shards.iter().all(Option::is_some) => Ok(()),
            None => Err(DataError::Erasure("a shard is missing and there is no parity".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any one shard rebuilt from any `k` others is the shard that was encoded.
        #[test]
        fn one_shard_rebuilt_from_any_k_others(
            scheme in prop::sample::select(vec![(2u8,1u8),(4,2),(8,3),(16,4)]),
            shard_len in 1usize..300,
            seed: u64,
            target in any::<prop::sample::Index>(),
            dropped in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let scheme = Scheme::new(scheme.0, scheme.1).unwrap();
            let (k, n) = (scheme.data as usize, scheme.total());
            let c = Codec::new(scheme);
            let mut whole: Vec<u8> = (0..n * shard_len)
                .map(|i| (i as u64).wrapping_mul(seed | 1).rotate_left(13) as u8)
                .collect();
            c.encode(&mut whole, shard_len).unwrap();
            let index = target.index(n);
            // The target is gone, and up to m-1 others (never fewer than k left).
            let mut present = vec![true; n];
            present[index] = false;
            for d in dropped {
                let j = d.index(n);
                if present.iter().filter(|p| **p).count() > k {
                    present[j] = false;
                }
            }
            let mut buf = whole.clone();
            for (j, p) in present.iter().enumerate() {
                if !p {
                    buf[j * shard_len..(j + 1) * shard_len].fill(0xA5);
                }
            }
            c.rebuild_one(&mut buf, shard_len, &present, index).unwrap();
            prop_assert_eq!(
                &buf[index * shard_len..(index + 1) * shard_len],
                &whole[index * shard_len..(index + 1) * shard_len]
            );
        }

        #[test]
        fn any_m_losses_recover(
            scheme in prop::sample::select(vec![(2u8,1u8),(4,2),(8,4),(3,0),(16,4)]),
            shard_len in 1usize..300,
            seed: u64,
            lose in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        ) {
            let scheme = Scheme::new(scheme.0, scheme.1).unwrap();
            let c = Codec::new(scheme);
            let n = scheme.total();
            let mut buf: Vec<u8> = (0..n * shard_len).map(|i| (seed.wrapping_mul(i as u64 + 1) >> 7) as u8).collect();
            c.encode(&mut buf, shard_len).unwrap();
            let orig = buf.clone();
            let mut shards: Vec<Option<Vec<u8>>> = buf.chunks(shard_len).map(|s| Some(s.to_vec())).collect();
            let mut lost = std::collections::BTreeSet::new();
            for i in lose.iter().take(scheme.parity as usize) { lost.insert(i.index(n)); }
            for &i in &lost { shards[i] = None; }
            c.reconstruct_data(&mut shards).unwrap();
            for i in 0..scheme.data as usize {
                prop_assert_eq!(shards[i].as_deref().unwrap(), &orig[i*shard_len..(i+1)*shard_len]);
            }
        }
    }

    #[test]
    fn too_many_losses_is_an_error() {
        let c = Codec::new(Scheme::DEFAULT);
        let mut buf = vec![1u8; 6 * 10];
        c.encode(&mut buf, 10).unwrap();
        let mut shards: Vec<Option<Vec<u8>>> = buf.chunks(10).map(|s| Some(s.to_vec())).collect();
        shards[0] = None;
        shards[1] = None;
        shards[5] = None;
        assert!(c.reconstruct_data(&mut shards).is_err());
    }
}
