//! PUT pipeline: body → stripes → (MD5 ∥ encrypt → Reed-Solomon → BLAKE3) → shard stores.
//!
//! Three stages run concurrently with bounded channels between them, so memory stays a few
//! stripes whatever the object size: the caller's task reads the body and cuts stripes; one
//! blocking thread computes the MD5 (the slowest hash, on its own core); another encrypts,
//! erasure-codes and hashes; a task sends each stripe's shards to their stores in parallel.

use crate::{Codec, DataError, MemoryBudget, Reservation, ShardStore, StripeLayout};
use bytes::{Bytes, BytesMut};
use coffre_crypto::{PackageCipher, PACKAGE_SIZE};
use coffre_types::{ShardId, VersionId};
use futures_util::{Stream, StreamExt};
use md5::Digest;
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct WriteTarget {
    pub layout: StripeLayout,
    /// Where stripe buffers are reserved; none: unbounded (tests, benches).
    pub budget: Option<MemoryBudget>,
    /// The body's length, when the request declared it: a small object reserves and
    /// allocates what it needs, not a whole stripe.
    pub size_hint: Option<u64>,
    /// One store per shard index (`k + m`).
    pub stores: Vec<Arc<dyn ShardStore>>,
    pub version: VersionId,
    pub part: u16,
    pub cipher: Arc<PackageCipher>,
}

#[derive(Debug)]
pub struct PartWriteResult {
    pub size: u64,
    pub md5: [u8; 16],
    /// BLAKE3 of every shard: `[stripe][shard index]`.
    pub shard_hashes: Vec<Vec<[u8; 32]>>,
    /// Shard indexes whose store failed during the write: those shards are missing from
    /// the failure on and must be healed.
    pub degraded: Vec<u8>,
}

struct PlainStripe {
    number: u32,
    data: Bytes,
    last: bool,
    /// The budget this stripe holds until its shards are written.
    reservation: Reservation,
}

struct EncodedStripe {
    number: u32,
    shards: Vec<Bytes>,
    hashes: Vec<[u8; 32]>,
    reservation: Reservation,
}

/// What a stripe of `plain` bytes holds at most: its plaintext and its encoded shards (1.5×
/// for 4+2, plus tags).
fn stripe_footprint(plain: usize, layout: &StripeLayout) -> usize {
    let n = layout.scheme.total();
    let k = layout.scheme.data as usize;
    let sealed = plain + (plain / PACKAGE_SIZE + 1) * coffre_crypto::TAG_LEN;
    plain + sealed.div_ceil(k.max(1)) * n
}

/// Encrypts one stripe in packages and erasure-codes it: returns `k + m` shards.
pub fn encode_stripe(
    layout: &StripeLayout,
    codec: &Codec,
    cipher: &PackageCipher,
    part: u16,
    stripe: u32,
    plain: &[u8],
    last: bool,
) -> Result<Vec<Bytes>, DataError> {
    let shard_len = layout.shard_len(plain.len());
    let n = layout.scheme.total();
    let mut buf = Vec::with_capacity(n * shard_len);
    let packages = plain.len().div_ceil(PACKAGE_SIZE);
    for (j, chunk) in plain.chunks(PACKAGE_SIZE).enumerate() {
        let start = buf.len();
        buf.extend_from_slice(chunk);
        cipher.seal(
            layout.package_index(part, stripe, j),
            last && j + 1 == packages,
            &mut buf,
            start,
        );
    }
    buf.resize(n * shard_len, 0);
    codec.encode(&mut buf, shard_len)?;
    let buf = Bytes::from(buf);
    Ok((0..n).map(|i| buf.slice(i * shard_len..(i + 1) * shard_len)).collect())
}

pub async fn write_part<S>(target: WriteTarget, mut body: S) -> Result<PartWriteResult, DataError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
{
    let stripe_plain = target.layout.stripe_plain() as usize;
    let (md5_tx, mut md5_rx) = mpsc::channel::<Bytes>(2);
    let (enc_tx, mut enc_rx) = mpsc::channel::<PlainStripe>(1);
    let (out_tx, mut out_rx) = mpsc::channel::<EncodedStripe>(1);

    let md5_task = tokio::task::spawn_blocking(move || {
        let mut h = md5::Md5::new();
        while let Some(b) = md5_rx.blocking_recv() {
            h.update(&b);
        }
        <[u8; 16]>::from(h.finalize())
    });

    let (layout, part, cipher) = (target.layout, target.part, target.cipher.clone());
    let encoder = tokio::task::spawn_blocking(move || -> Result<(), DataError> {
        let codec = Codec::new(layout.scheme);
        while let Some(s) = enc_rx.blocking_recv() {
            let started = std::time::Instant::now();
            let shards = encode_stripe(&layout, &codec, &cipher, part, s.number, &s.data, s.last)?;
            crate::metrics::DATA
                .encode_seconds
                .observe(&[], crate::metrics::since(started));
            let hashes = shards.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
            if out_tx
                .blocking_send(EncodedStripe {
                    number: s.number,
                    shards,
                    hashes,
                    reservation: s.reservation,
                })
                .is_err()
            {
                break; // the writer stopped: it reports why
            }
        }
        Ok(())
    });

    let stores = target.stores.clone();
    let (version, quorum) = (target.version, target.layout.scheme.write_quorum());
    let writer = tokio::spawn(tracing::Instrument::in_current_span(async move {
        let mut failed = vec![false; stores.len()];
        let mut hashes = Vec::new();
        while let Some(s) = out_rx.recv().await {
            let puts = s.shards.into_iter().enumerate().map(|(i, data)| {
                let store = stores[i].clone();
                let hash = s.hashes[i];
                let skip = failed[i];
                let id = ShardId {
                    version,
                    part,
                    stripe: s.number,
                    index: i as u8,
                };
                async move {
                    if skip {
                        return (i, false);
                    }
                    let started = std::time::Instant::now();
                    let span =
                        tracing::info_span!(target: "coffre::trace", "shard.write", node = store.id(), shard = %id);
                    let result = tracing::Instrument::instrument(store.put_hashed(id, data, hash), span).await;
                    let m = &crate::metrics::DATA;
                    m.shard_write_seconds
                        .observe(&[store.id()], crate::metrics::since(started));
                    match result {
                        Ok(()) => {
                            m.shard_writes.inc(&[store.id(), "ok"]);
                            (i, true)
                        }
                        Err(e) => {
                            m.shard_writes.inc(&[store.id(), "error"]);
                            tracing::warn!(store = store.id(), shard = %id, error = %e, "shard write failed");
                            (i, false)
                        }
                    }
                }
            });
            for (i, ok) in futures_util::future::join_all(puts).await {
                failed[i] |= !ok;
            }
            let ok = failed.iter().filter(|f| !**f).count();
            if ok < quorum {
                return Err(DataError::QuorumLost {
                    ok,
                    total: stores.len(),
                    quorum,
                });
            }
            hashes.push(s.hashes);
            // The stripe is on its stores: its memory is free for the next one.
            drop(s.reservation);
        }
        let degraded: Vec<u8> = (0..failed.len()).filter(|i| failed[*i]).map(|i| i as u8).collect();
        if !degraded.is_empty() {
            crate::metrics::DATA.degraded_writes.inc(&[]);
        }
        crate::metrics::DATA.parts_written.inc(&["sharded"]);
        Ok::<_, DataError>((hashes, degraded))
    }));

    // Stage one, here: cut the body into stripes, holding a full stripe back until we know
    // whether more follows (its last package is sealed differently). Each stripe's memory is
    // reserved before it is filled.
    let (budget, hint, layout) = (target.budget.clone(), target.size_hint, target.layout);
    let reserve = |size: u64| {
        let budget = budget.clone();
        // What this stripe will hold: the rest of a declared body, at most a stripe.
        let plain = hint.map_or(stripe_plain, |h| {
            (h.saturating_sub(size) as usize).clamp(1, stripe_plain)
        });
        async move {
            let r = match &budget {
                Some(b) => b.reserve(stripe_footprint(plain, &layout)).await,
                None => Reservation::none(),
            };
            (BytesMut::with_capacity(plain), r)
        }
    };
    let mut size = 0u64;
    let mut number = 0u32;
    let mut current: Option<(BytesMut, Reservation)> = None;
    let mut held: Option<(Bytes, Reservation)> = None;
    let mut body_err = None;
    let mut send_failed = false;
    'read: loop {
        let chunk = match body.next().await {
            Some(Ok(c)) => c,
            Some(Err(e)) => {
                body_err = Some(e);
                break;
            }
            None => break,
        };
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if let Some((h, r)) = held.take() {
                if !send(&md5_tx, &enc_tx, number, h, false, r).await {
                    send_failed = true;
                    break 'read;
                }
                number += 1;
            }
            let (buf, _) = match &mut current {
                Some(c) => c,
                None => current.insert(reserve(size).await),
            };
            let take = rest.len().min(stripe_plain - buf.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            size += take as u64;
            if buf.len() == stripe_plain {
                if let Some((buf, r)) = current.take() {
                    held = Some((buf.freeze(), r));
                }
            }
        }
    }
    if body_err.is_none() && !send_failed {
        let partial = current.take().filter(|(b, _)| !b.is_empty());
        if let Some((h, r)) = held.take() {
            send(&md5_tx, &enc_tx, number, h, partial.is_none(), r).await;
            number += 1;
        }
        if let Some((b, r)) = partial {
            send(&md5_tx, &enc_tx, number, b.freeze(), true, r).await;
        }
    }
    drop(md5_tx);
    drop(enc_tx);
    let enc_result = encoder.await.map_err(|e| DataError::Internal(e.to_string()));
    let write_result = writer.await.map_err(|e| DataError::Internal(e.to_string()))?;
    let md5 = md5_task.await.map_err(|e| DataError::Internal(e.to_string()))?;
    if let Some(e) = body_err {
        return Err(DataError::Body(e));
    }
    enc_result??;
    let (shard_hashes, degraded) = write_result?;
    Ok(PartWriteResult {
        size,
        md5,
        shard_hashes,
        degraded,
    })
}

async fn send(
    md5_tx: &mpsc::Sender<Bytes>,
    enc_tx: &mpsc::Sender<PlainStripe>,
    number: u32,
    data: Bytes,
    last: bool,
    reservation: Reservation,
) -> bool {
    let stripe = PlainStripe {
        number,
        data: data.clone(),
        last,
        reservation,
    };
    md5_tx.send(data).await.is_ok() && enc_tx.send(stripe).await.is_ok()
}
