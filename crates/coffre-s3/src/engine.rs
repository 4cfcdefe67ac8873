//! The object engine: joins the data path (shards) and the metadata (RocksDB) into the
//! operations S3 handlers call — put, read, delete — plus placement and garbage collection.

use crate::body::ChecksumSlot;
use crate::checksum::Algorithm;
use crate::S3Error;
use bytes::Bytes;
use coffre_crypto::{DataKey, MasterKey, ObjectIdentity, PackageCipher, Sealer};
use coffre_data::{
    read_part, write_part, DataError, PartReader, ShardStore, StripeLayout, WriteTarget,
};
use coffre_meta::{BucketRecord, LayoutRecord, MetaStore, ObjectRecord, SealedAttrs};
use coffre_types::{now_millis, Scheme, ShardId, VersionId};
use futures_util::Stream;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A store and every shard id it holds.
type StoreListing = (Arc<dyn ShardStore>, Vec<ShardId>);

pub struct Engine {
    pub meta: Arc<MetaStore>,
    stores: Vec<Arc<dyn ShardStore>>,
    by_id: HashMap<String, Arc<dyn ShardStore>>,
    master: Arc<MasterKey>,
    sealer: Sealer,
    damaged: mpsc::UnboundedSender<ShardId>,
}

/// What a new object carries besides its bytes.
pub struct NewObject {
    pub attrs: SealedAttrs,
    pub content_md5: Option<[u8; 16]>,
    /// Where the body reader leaves the checksum it verified (known only at the end).
    pub checksum: Option<ChecksumSlot>,
}

pub struct PutOutcome {
    pub record: ObjectRecord,
    pub checksum: Option<(Algorithm, String)>,
}

impl Engine {
    pub fn new(
        meta: Arc<MetaStore>,
        stores: Vec<Arc<dyn ShardStore>>,
        master: Arc<MasterKey>,
    ) -> (Arc<Engine>, mpsc::UnboundedReceiver<ShardId>) {
        let by_id = stores
            .iter()
            .map(|s| (s.id().to_string(), s.clone()))
            .collect();
        let sealer = master.metadata_sealer();
        let (damaged, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Engine {
                meta,
                stores,
                by_id,
                master,
                sealer,
                damaged,
            }),
            rx,
        )
    }

    pub fn stores(&self) -> &[Arc<dyn ShardStore>] {
        &self.stores
    }

    /// Chooses `k + m` distinct stores for a version: rendezvous hashing on the version id, so
    /// placement spreads evenly and needs no table.
    fn place(
        &self,
        version: &VersionId,
        scheme: Scheme,
    ) -> Result<Vec<Arc<dyn ShardStore>>, S3Error> {
        let n = scheme.total();
        if self.stores.len() < n {
            return Err(S3Error::service_unavailable(format!(
                "residency policy needs {n} distinct nodes for scheme {scheme}, only {} are available",
                self.stores.len()
            )));
        }
        let mut ranked: Vec<(u64, &Arc<dyn ShardStore>)> = self
            .stores
            .iter()
            .map(|s| {
                let mut h = blake3::Hasher::new();
                h.update(&version.0);
                h.update(s.id().as_bytes());
                let d = h.finalize();
                (
                    u64::from_le_bytes(d.as_bytes()[..8].try_into().unwrap_or_default()),
                    s,
                )
            })
            .collect();
        ranked.sort_by_key(|(w, _)| std::cmp::Reverse(*w));
        Ok(ranked.into_iter().take(n).map(|(_, s)| s.clone()).collect())
    }

    fn cipher(
        &self,
        dk: &DataKey,
        bucket: &str,
        key: &str,
        version: &VersionId,
    ) -> Arc<PackageCipher> {
        Arc::new(PackageCipher::new(
            dk,
            &ObjectIdentity {
                bucket,
                key,
                version: &version.0,
            },
        ))
    }

    pub fn seal_attrs(
        &self,
        bucket: &str,
        key: &str,
        version: &VersionId,
        a: &SealedAttrs,
    ) -> Vec<u8> {
        let plain = postcard::to_stdvec(a).unwrap_or_default();
        self.sealer.seal(&attrs_aad(bucket, key, version), &plain)
    }

    pub fn open_attrs(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
    ) -> Result<SealedAttrs, S3Error> {
        let plain = self
            .sealer
            .open(&attrs_aad(bucket, key, &rec.version), &rec.sealed)
            .map_err(|e| S3Error::internal(format!("object attributes unreadable: {e}")))?;
        postcard::from_bytes(&plain)
            .map_err(|e| S3Error::internal(format!("object attributes corrupt: {e}")))
    }

    /// Stores an object from a verified body stream and commits it. Nothing is visible
    /// unless every check passed and the shards are durable.
    pub async fn put<S>(
        &self,
        bucket: &str,
        bucket_rec: &BucketRecord,
        key: &str,
        body: S,
        new: NewObject,
    ) -> Result<PutOutcome, S3Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let scheme = bucket_rec.scheme;
        let version = VersionId::random();
        let targets = self.place(&version, scheme)?;
        let nodes: Vec<String> = targets.iter().map(|s| s.id().to_string()).collect();
        self.meta.begin_write(&version, &nodes)?;
        let dk = DataKey::random();
        let layout = StripeLayout::new(scheme);
        let target = WriteTarget {
            layout,
            stores: targets,
            version,
            part: 0,
            cipher: self.cipher(&dk, bucket, key, &version),
        };
        let abort = |e: S3Error, stripes: u32| {
            if let Err(m) = self.meta.abort_write(&version, &nodes, vec![stripes]) {
                tracing::error!(error = %m, "could not queue an aborted write for GC");
            }
            e
        };
        let written = match write_part(target, body).await {
            Ok(w) => w,
            // The stripe count is unknown after a failure: the GC deletes shards by listing.
            Err(e) => return Err(abort(S3Error::from(e), u32::MAX)),
        };
        let stripes = written.shard_hashes.len() as u32;
        if let Some(md5) = new.content_md5 {
            if md5 != written.md5 {
                return Err(abort(
                    S3Error::bad_digest(
                        "The Content-MD5 you specified did not match what we received.",
                    ),
                    stripes,
                ));
            }
        }
        let checksum = new
            .checksum
            .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take());
        let mut attrs = new.attrs;
        if let Some((a, v)) = &checksum {
            attrs.checksums = vec![(a.name().to_string(), v.clone())];
        }
        let record = ObjectRecord {
            version,
            size: written.size,
            etag: hex::encode(written.md5),
            last_modified_ms: now_millis(),
            scheme,
            packages_per_stripe: layout.packages_per_stripe as u32,
            nodes: nodes.clone(),
            parts: vec![written.size],
            wrapped_key: self.master.wrap(&dk, &version.0),
            degraded: written.degraded,
            sealed: self.seal_attrs(bucket, key, &version, &attrs),
        };
        let layout_rec = LayoutRecord {
            parts: vec![written.shard_hashes.into_iter().flatten().collect()],
        };
        if let Err(e) = self
            .meta
            .commit_object(bucket, key.as_bytes(), &record, &layout_rec)
        {
            return Err(abort(S3Error::from(e), stripes));
        }
        Ok(PutOutcome { record, checksum })
    }

    /// Streams bytes `[start, end)` of an object.
    pub fn read(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        start: u64,
        end: u64,
    ) -> Result<mpsc::Receiver<Result<Bytes, DataError>>, S3Error> {
        let layout = self.meta.get_layout(&rec.version)?.ok_or_else(|| {
            S3Error::no_such_key("The object was replaced or deleted while being read")
        })?;
        let dk = self
            .master
            .unwrap(&rec.wrapped_key, &rec.version.0)
            .map_err(|e| S3Error::internal(format!("data key unusable: {e}")))?;
        let n = rec.scheme.total();
        let hashes = layout.parts.first().cloned().unwrap_or_default();
        if hashes.len() % n.max(1) != 0 {
            return Err(S3Error::internal("object layout is corrupt"));
        }
        let shard_hashes: Vec<Vec<[u8; 32]>> = hashes.chunks(n).map(|c| c.to_vec()).collect();
        let reader = PartReader {
            layout: StripeLayout {
                scheme: rec.scheme,
                packages_per_stripe: rec.packages_per_stripe as usize,
            },
            stores: rec
                .nodes
                .iter()
                .map(|id| self.by_id.get(id).cloned())
                .collect(),
            version: rec.version,
            part: 0,
            size: rec.size,
            shard_hashes: Arc::new(shard_hashes),
            cipher: self.cipher(&dk, bucket, key, &rec.version),
            damaged: Some(self.damaged.clone()),
        };
        Ok(read_part(reader, start, end))
    }

    /// Removes the shards of deleted and replaced versions. Returns how many versions were
    /// cleaned.
    pub async fn collect_garbage(&self) -> Result<usize, S3Error> {
        let mut cleaned = 0;
        let mut listed: Option<Vec<StoreListing>> = None;
        for (raw, gc) in self.meta.gc_batch(256)? {
            let mut ok = true;
            let unknown_extent = gc.part_stripes.contains(&u32::MAX);
            if unknown_extent && listed.is_none() {
                let mut all = Vec::new();
                for s in &self.stores {
                    match s.list().await {
                        Ok(ids) => all.push((s.clone(), ids)),
                        Err(e) => {
                            tracing::warn!(store = s.id(), error = %e, "cannot list store for GC")
                        }
                    }
                }
                listed = Some(all);
            }
            if unknown_extent {
                for (store, ids) in listed.iter().flatten() {
                    for id in ids.iter().filter(|i| i.version == gc.version) {
                        ok &= store.delete(*id).await.is_ok();
                    }
                }
                ok &= listed
                    .as_ref()
                    .is_some_and(|l| l.len() == self.stores.len());
            } else {
                for (part, &stripes) in gc.part_stripes.iter().enumerate() {
                    for stripe in 0..stripes {
                        for (index, node) in gc.nodes.iter().enumerate() {
                            let id = ShardId {
                                version: gc.version,
                                part: part as u16,
                                stripe,
                                index: index as u8,
                            };
                            match self.by_id.get(node) {
                                Some(s) => ok &= s.delete(id).await.is_ok(),
                                None => tracing::warn!(node, "GC: node unknown, shard left"),
                            }
                        }
                    }
                }
            }
            if ok {
                self.meta.gc_done(&raw)?;
                cleaned += 1;
            }
        }
        Ok(cleaned)
    }

    /// After a restart no write is in flight: every intent left behind is an orphan write.
    pub fn recover_intents(&self) -> Result<usize, S3Error> {
        let intents = self.meta.intents()?;
        for (v, rec) in &intents {
            self.meta.abort_write(v, &rec.nodes, vec![u32::MAX])?;
        }
        Ok(intents.len())
    }
}

fn attrs_aad(bucket: &str, key: &str, version: &VersionId) -> Vec<u8> {
    let mut a = Vec::with_capacity(bucket.len() + key.len() + 32);
    a.extend_from_slice(&(bucket.len() as u32).to_be_bytes());
    a.extend_from_slice(bucket.as_bytes());
    a.extend_from_slice(&(key.len() as u32).to_be_bytes());
    a.extend_from_slice(key.as_bytes());
    a.extend_from_slice(&version.0);
    a
}
