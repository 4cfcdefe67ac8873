//! GET pipeline: shard stores → BLAKE3 check → (reconstruct) → decrypt → bytes.
//!
//! A task fetches the `k` data shards of each stripe in parallel, prefetching the next stripe
//! while the current one is decrypted and sent. A missing, unreachable or corrupt shard is
//! treated alike: parity is fetched and the stripe rebuilt. More than `m` bad shards is an
//! error, never wrong bytes.

use crate::{Codec, DataError, MemoryBudget, Reservation, ShardStore, StripeLayout};
use bytes::Bytes;
use coffre_crypto::{PackageCipher, PACKAGE_SIZE, TAG_LEN};
use coffre_types::{ShardId, VersionId};
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Clone)]
pub struct PartReader {
    pub layout: StripeLayout,
    /// One store per shard index; `None` where the node is gone.
    pub stores: Vec<Option<Arc<dyn ShardStore>>>,
    pub version: VersionId,
    pub part: u16,
    pub size: u64,
    pub shard_hashes: Arc<Vec<Vec<[u8; 32]>>>,
    pub cipher: Arc<PackageCipher>,
    /// Told of every shard found missing or corrupt, for healing.
    pub damaged: Option<mpsc::UnboundedSender<ShardId>>,
    /// Held for as long as the reader (or a repair it started) runs: the caller's lease that
    /// keeps the GC away from these shards.
    pub hold: Option<Arc<dyn std::any::Any + Send + Sync>>,
    /// Where each stripe's fetch and plaintext are reserved; none: unbounded.
    pub budget: Option<MemoryBudget>,
}

impl PartReader {
    async fn fetch(&self, stripe: u32, index: usize) -> Option<Bytes> {
        let id = ShardId {
            version: self.version,
            part: self.part,
            stripe,
            index: index as u8,
        };
        let store = self.stores.get(index)?.as_ref();
        let started = std::time::Instant::now();
        let result = match store {
            Some(s) => {
                use tracing::Instrument;
                let span = tracing::info_span!(target: "coffre::trace", "shard.read", node = s.id(), shard = %id);
                s.get(id).instrument(span).await.map_err(|e| e.to_string())
            }
            None => Err("node unknown".to_string()),
        };
        let node = store.map_or("unknown", |s| s.id());
        let m = &crate::metrics::DATA;
        m.shard_read_seconds.observe(&[node], crate::metrics::since(started));
        let expected = self.shard_hashes.get(stripe as usize)?.get(index)?;
        let bad = match result {
            Ok(b) if blake3::hash(&b).as_bytes() == expected => {
                m.shard_reads.inc(&[node, "ok"]);
                return Some(b);
            }
            Ok(_) => {
                m.shard_reads.inc(&[node, "corrupt"]);
                "BLAKE3 mismatch (bitrot)".to_string()
            }
            Err(e) => {
                m.shard_reads.inc(&[node, "error"]);
                e
            }
        };
        tracing::warn!(shard = %id, reason = %bad, "shard unreadable; using parity");
        if let Some(d) = &self.damaged {
            let _ = d.send(id);
        }
        None
    }

    /// The data shards holding the ciphertext of plaintext bytes `[from, to)` of a stripe.
    fn shards_for(&self, stripe: u32, from: usize, to: usize) -> std::ops::Range<usize> {
        let shard_len = self.layout.shard_len(self.layout.stripe_len(self.size, stripe)).max(1);
        let package = PACKAGE_SIZE + TAG_LEN;
        let c0 = from / PACKAGE_SIZE * package;
        let c1 = to.div_ceil(PACKAGE_SIZE) * package;
        let k = self.layout.scheme.data as usize;
        (c0 / shard_len).min(k)..c1.div_ceil(shard_len).min(k)
    }

    /// The stripe's ciphertext for plaintext `[from, to)`: a range read fetches only the data
    /// shards it needs (the others are left zero, never decrypted); any trouble falls back to
    /// the whole stripe, rebuilt from parity where needed.
    async fn fetch_range(&self, stripe: u32, from: usize, to: usize) -> Result<Vec<u8>, DataError> {
        let k = self.layout.scheme.data as usize;
        let want = self.shards_for(stripe, from, to);
        if want.len() == k || want.is_empty() {
            return self.fetch_stripe(stripe).await;
        }
        let got = futures_util::future::join_all(want.clone().map(|i| self.fetch(stripe, i))).await;
        if got.iter().any(Option::is_none) {
            return self.fetch_stripe(stripe).await;
        }
        let shard_len = self.layout.shard_len(self.layout.stripe_len(self.size, stripe));
        let mut out = vec![0u8; k * shard_len];
        for (i, shard) in want.zip(got) {
            let shard = shard.ok_or_else(|| DataError::Internal("shard vanished".into()))?;
            out.get_mut(i * shard_len..(i + 1) * shard_len)
                .ok_or_else(|| DataError::Internal("shard of unexpected length".into()))?
                .copy_from_slice(&shard);
        }
        Ok(out)
    }

    /// `k` good shards of `stripe` (all but `except`, if given): the data shards first, then
    /// just as many of the next as are missing, then more if some of those fail. Returns the
    /// `k+m` slots and how many leading indexes were tried.
    async fn fetch_k(&self, stripe: u32, except: Option<usize>) -> Result<(Vec<Option<Bytes>>, usize), DataError> {
        let (k, n) = (self.layout.scheme.data as usize, self.layout.scheme.total());
        let mut shards: Vec<Option<Bytes>> = vec![None; n];
        let (mut have, mut next) = (0, 0);
        while have < k && next < n {
            let want: Vec<usize> = (next..n).filter(|j| Some(*j) != except).take(k - have).collect();
            let Some(last) = want.last() else { break };
            next = last + 1;
            let got = futures_util::future::join_all(want.iter().map(|j| self.fetch(stripe, *j))).await;
            for (j, g) in want.into_iter().zip(got) {
                have += usize::from(g.is_some());
                shards[j] = g;
            }
        }
        if have < k {
            return Err(DataError::Unrecoverable {
                stripe,
                available: have,
                needed: k,
            });
        }
        Ok((shards, next))
    }

    /// The stripe's ciphertext (the `k` data shards, concatenated, padding included).
    async fn fetch_stripe(&self, stripe: u32) -> Result<Vec<u8>, DataError> {
        let k = self.layout.scheme.data as usize;
        let (mut shards, next) = self.fetch_k(stripe, None).await?;
        // Before the rebuild fills them in: the shards that were tried and found bad.
        let bad: Vec<usize> = (0..next).filter(|i| shards[*i].is_none()).collect();
        if !bad.is_empty() {
            // Rare: rebuilt in owned buffers, then back to shared ones (no copy).
            let mut rebuilt: Vec<Option<Vec<u8>>> = shards.into_iter().map(|s| s.map(|b| b.to_vec())).collect();
            let started = std::time::Instant::now();
            Codec::new(self.layout.scheme).reconstruct_data(&mut rebuilt)?;
            crate::metrics::DATA
                .decode_seconds
                .observe(&[], crate::metrics::since(started));
            shards = rebuilt.into_iter().map(|s| s.map(Bytes::from)).collect();
            self.repair(stripe, &shards[..k], bad);
        }
        let mut out = Vec::with_capacity(shards.iter().take(k).flatten().map(Bytes::len).sum());
        for s in shards.iter().take(k) {
            out.extend_from_slice(
                s.as_ref()
                    .ok_or_else(|| DataError::Internal("shard not rebuilt".into()))?,
            );
        }
        Ok(out)
    }

    /// Read repair: rebuilds the shards found bad from the (complete) data shards and writes
    /// them back to their stores, in the background. A rebuilt shard is written only if its
    /// BLAKE3 matches the layout, so a repair can never store wrong data.
    fn repair(&self, stripe: u32, data: &[Option<Bytes>], bad: Vec<usize>) {
        let mut concat = Vec::new();
        for s in data {
            match s {
                Some(s) => concat.extend_from_slice(s),
                None => return,
            }
        }
        let Some((buf, shard_len)) = self.with_parity(concat) else {
            return;
        };
        let this = self.clone();
        tokio::spawn(async move {
            for i in bad {
                let shard = buf.slice(i * shard_len..(i + 1) * shard_len);
                let hash = *blake3::hash(&shard).as_bytes();
                if this.shard_hashes.get(stripe as usize).and_then(|h| h.get(i)) != Some(&hash) {
                    continue;
                }
                let Some(Some(store)) = this.stores.get(i) else {
                    continue;
                };
                let id = ShardId {
                    version: this.version,
                    part: this.part,
                    stripe,
                    index: i as u8,
                };
                match store.put_hashed(id, shard, hash).await {
                    Ok(()) => {
                        crate::metrics::DATA.read_repairs.inc(&["ok"]);
                        tracing::info!(shard = %id, store = store.id(), "shard repaired")
                    }
                    Err(e) => {
                        crate::metrics::DATA.read_repairs.inc(&["error"]);
                        tracing::warn!(shard = %id, store = store.id(), error = %e, "shard repair failed")
                    }
                }
            }
        });
    }

    /// Every shard of a stripe from its `k` data shards (concatenated): parity recomputed.
    fn with_parity(&self, mut data: Vec<u8>) -> Option<(Bytes, usize)> {
        let (k, n) = (self.layout.scheme.data as usize, self.layout.scheme.total());
        let shard_len = data.len() / k;
        data.resize(n * shard_len, 0);
        Codec::new(self.layout.scheme).encode(&mut data, shard_len).ok()?;
        Some((Bytes::from(data), shard_len))
    }

    /// Rebuilds shard `index` of `stripe` from `k` others (a repair), with its BLAKE3. The
    /// result is checked against the layout's, so it is never wrong. Only what the shard needs
    /// is done: `k` shards fetched (data shards first, parity for those that fail), copied
    /// once into one buffer, one Reed-Solomon rebuild of the missing shards it depends on; no
    /// read repair of the others (the repair queue has them).
    pub async fn rebuild_shard(&self, stripe: u32, index: usize) -> Result<(Bytes, [u8; 32]), DataError> {
        let n = self.layout.scheme.total();
        let (shards, _) = self.fetch_k(stripe, Some(index)).await?;
        let shard_len = shards.iter().flatten().map(Bytes::len).next().unwrap_or(0);
        if shard_len == 0 || shards.iter().flatten().any(|s| s.len() != shard_len) {
            return Err(DataError::Internal("shards of one stripe differ in length".into()));
        }
        // Filled in order: only the missing shards' room is zeroed.
        let mut buf = Vec::with_capacity(n * shard_len);
        let mut present = vec![false; n];
        for (j, s) in shards.iter().enumerate() {
            match s {
                Some(s) => {
                    buf.extend_from_slice(s);
                    present[j] = true;
                }
                None => buf.resize(buf.len() + shard_len, 0),
            }
        }
        drop(shards);
        let started = std::time::Instant::now();
        Codec::new(self.layout.scheme).rebuild_one(&mut buf, shard_len, &present, index)?;
        crate::metrics::DATA
            .decode_seconds
            .observe(&[], crate::metrics::since(started));
        // Copied out (a sixth of the buffer, with 4+2): a rebuilt shard may wait for the
        // repair's pace, and should not hold its whole stripe meanwhile.
        let shard = Bytes::copy_from_slice(&buf[index * shard_len..(index + 1) * shard_len]);
        drop(buf);
        let hash = *blake3::hash(&shard).as_bytes();
        if self.shard_hashes.get(stripe as usize).and_then(|h| h.get(index)) != Some(&hash) {
            return Err(DataError::Internal(format!(
                "rebuilt shard {stripe}.{index} does not match its hash"
            )));
        }
        Ok((shard, hash))
    }

    /// Shard `index` of `stripe` as its own node still holds it, with its BLAKE3 (a move off a
    /// node that answers — a drain, a rebalance — reads one shard rather than `k`); `None` when
    /// it cannot be read there intact (the caller rebuilds it).
    pub async fn copy_shard(&self, stripe: u32, index: usize) -> Option<(Bytes, [u8; 32])> {
        let id = ShardId {
            version: self.version,
            part: self.part,
            stripe,
            index: index as u8,
        };
        let store = self.stores.get(index)?.as_ref()?;
        let expected = *self.shard_hashes.get(stripe as usize)?.get(index)?;
        let shard = store.get(id).await.ok()?;
        (blake3::hash(&shard).as_bytes() == &expected).then_some((shard, expected))
    }

    /// Decrypts the packages of `stripe` that overlap `[from, to)` (offsets within the stripe).
    fn decrypt(&self, stripe: u32, mut cipher: Vec<u8>, from: usize, to: usize) -> Result<Bytes, DataError> {
        let plain_len = self.layout.stripe_len(self.size, stripe);
        let packages = plain_len.div_ceil(PACKAGE_SIZE);
        let last_stripe = stripe + 1 == self.layout.stripe_count(self.size);
        let mut out = Vec::with_capacity(to - from);
        for j in from / PACKAGE_SIZE..to.div_ceil(PACKAGE_SIZE) {
            let plen = (plain_len - j * PACKAGE_SIZE).min(PACKAGE_SIZE);
            let c0 = j * (PACKAGE_SIZE + TAG_LEN);
            let pkg = cipher.get_mut(c0..c0 + plen + TAG_LEN).ok_or(DataError::Tampered)?;
            let last = last_stripe && j + 1 == packages;
            let plain = self
                .cipher
                .open(self.layout.package_index(self.part, stripe, j), last, pkg)
                .map_err(|_| DataError::Tampered)?;
            let p0 = j * PACKAGE_SIZE;
            let a = from.max(p0) - p0;
            let b = to.min(p0 + plen) - p0;
            out.extend_from_slice(&plain[a..b]);
        }
        Ok(Bytes::from(out))
    }
}

/// Streams bytes `[start, end)` of the part. Errors arrive in the stream; the sender stops at
/// the first one.
pub fn read_part(r: PartReader, start: u64, end: u64) -> mpsc::Receiver<Result<Bytes, DataError>> {
    let (tx, rx) = mpsc::channel(2);
    let end = end.min(r.size);
    if start >= end {
        return rx;
    }
    let sp = r.layout.stripe_plain();
    let (first, last) = ((start / sp) as u32, ((end - 1) / sp) as u32);
    tokio::spawn(async move {
        let r = Arc::new(r);
        // Plaintext bytes [from, to) of stripe s that the range covers.
        let span = move |s: u32| {
            let base = s as u64 * sp;
            ((start.max(base) - base) as usize, (end.min(base + sp) - base) as usize)
        };
        // A stripe's ciphertext and its plaintext are reserved before it is fetched and given
        // back once its bytes are handed on. The next stripe is prefetched only if it fits
        // now: a reader never waits for room while holding some.
        let bytes_of = |s: u32| 2 * r.layout.stripe_len(r.size, s);
        let spawn_fetch = |s: u32| {
            let r = r.clone();
            let (from, to) = span(s);
            tokio::spawn(async move { r.fetch_range(s, from, to).await })
        };
        let mut next = None;
        for s in first..=last {
            let (reservation, cur) = match next.take() {
                Some(prefetched) => prefetched,
                None => {
                    let reserved = match &r.budget {
                        Some(b) => b.reserve(bytes_of(s)).await,
                        None => Reservation::none(),
                    };
                    (reserved, spawn_fetch(s))
                }
            };
            if s < last {
                let room = match &r.budget {
                    Some(b) => b.try_reserve(bytes_of(s + 1)),
                    None => Some(Reservation::none()),
                };
                next = room.map(|reserved| (reserved, spawn_fetch(s + 1)));
            }
            let result = match cur.await {
                Ok(Ok(cipher)) => {
                    let (from, to) = span(s);
                    let r2 = r.clone();
                    tokio::task::spawn_blocking(move || r2.decrypt(s, cipher, from, to))
                        .await
                        .unwrap_or_else(|e| Err(DataError::Internal(e.to_string())))
                }
                Ok(Err(e)) => Err(e),
                Err(e) => Err(DataError::Internal(e.to_string())),
            };
            let failed = result.is_err();
            if tx.send(result).await.is_err() || failed {
                return;
            }
            drop(reservation);
        }
    });
    rx
}
