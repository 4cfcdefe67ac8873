//! PUT pipeline: body → stripes → (MD5 ∥ encrypt → Reed-Solomon → BLAKE3) → shard stores.
//!
//! Three stages run concurrently with bounded channels between them, so memory stays a few
//! stripes whatever the object size: the caller's task reads the body and cuts stripes; one
//! blocking thread computes the MD5 (the slowest hash, on its own core); another encrypts,
//! erasure-codes and hashes; a task sends each stripe's shards to their stores in parallel.

use crate::{Codec, DataError, ShardStore, StripeLayout};
use bytes::{Bytes, BytesMut};
use coffre_crypto::{PackageCipher, PACKAGE_SIZE};
use coffre_types::{ShardId, VersionId};
use futures_util::{Stream, StreamExt};
use md5::Digest;
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct WriteTarget {
    pub layout: StripeLayout,
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
}

struct EncodedStripe {
    number: u32,
    shards: Vec<Bytes>,
    hashes: Vec<[u8; 32]>,
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
            let shards = encode_stripe(&layout, &codec, &cipher, part, s.number, &s.data, s.last)?;
            let hashes = shards.iter().map(|b| *blake3::hash(b).as_bytes()).collect();
            if out_tx
                .blocking_send(EncodedStripe {
                    number: s.number,
                    shards,
                    hashes,
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
    let writer = tokio::spawn(async move {
        let mut failed = vec![false; stores.len()];
        let mut hashes = Vec::new();
        while let Some(s) = out_rx.recv().await {
            let puts = s.shards.into_iter().enumerate().map(|(i, data)| {
                let store = stores[i].clone();
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
                    match store.put(id, data).await {
                        Ok(()) => (i, true),
                        Err(e) => {
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
        }
        let degraded = (0..failed.len()).filter(|i| failed[*i]).map(|i| i as u8).collect();
        Ok::<_, DataError>((hashes, degraded))
    });

    // Stage one, here: cut the body into stripes, holding a full stripe back until we know
    // whether more follows (its last package is sealed differently).
    let mut size = 0u64;
    let mut number = 0u32;
    let mut buf = BytesMut::with_capacity(stripe_plain);
    let mut held: Option<Bytes> = None;
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
        size += chunk.len() as u64;
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            if let Some(h) = held.take() {
                if !send(&md5_tx, &enc_tx, number, h, false).await {
                    send_failed = true;
                    break 'read;
                }
                number += 1;
            }
            let take = rest.len().min(stripe_plain - buf.len());
            buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if buf.len() == stripe_plain {
                held = Some(std::mem::replace(&mut buf, BytesMut::with_capacity(stripe_plain)).freeze());
            }
        }
    }
    if body_err.is_none() && !send_failed {
        if let Some(h) = held.take() {
            send(&md5_tx, &enc_tx, number, h, buf.is_empty()).await;
            number += 1;
        }
        if !buf.is_empty() {
            send(&md5_tx, &enc_tx, number, buf.freeze(), true).await;
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
) -> bool {
    md5_tx.send(data.clone()).await.is_ok() && enc_tx.send(PlainStripe { number, data, last }).await.is_ok()
}
