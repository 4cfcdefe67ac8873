//! The object engine: joins the data path (shards) and the metadata (RocksDB) into the
//! operations S3 handlers call — put, read, delete — plus placement and garbage collection.

use crate::body::ChecksumSlot;
use crate::S3Error;
use bytes::Bytes;
use coffre_cluster::{FailureDomain, Location, NodeView, ResidencyPolicy};
use coffre_crypto::{DataKey, Keyring, ObjectIdentity, PackageCipher};
use coffre_data::{read_part, write_part, DataError, MissingStore, PartReader, ShardStore, StripeLayout, WriteTarget};
use coffre_meta::{BucketRecord, LayoutRecord, MetaStore, ObjectRecord, PartInfo, SealedAttrs};
use coffre_types::{now_millis, ShardId, VersionId};
use futures_util::Stream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// A store and every shard id it holds.
type StoreListing = (Arc<dyn ShardStore>, Vec<ShardId>);

/// A node of the topology: where its shards go and where it is (for a remote node, what
/// its CA-signed certificate says).
#[derive(Clone)]
pub struct ClusterNode {
    pub store: Arc<dyn ShardStore>,
    pub location: Location,
    /// `https://host:port` of a remote node; empty for an embedded store.
    pub address: String,
    /// A draining node takes no new shards; what it holds is still read.
    pub draining: Arc<AtomicBool>,
    /// Free bytes, refreshed by `heartbeat` (placement weights).
    pub free: Arc<AtomicU64>,
}

impl ClusterNode {
    pub fn new(store: Arc<dyn ShardStore>, location: Location, address: String, draining: bool) -> ClusterNode {
        ClusterNode {
            store,
            location,
            address,
            draining: Arc::new(AtomicBool::new(draining)),
            free: Arc::new(AtomicU64::new(1 << 40)),
        }
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}

pub struct Engine {
    pub meta: Arc<MetaStore>,
    /// The topology; changed at run time by the admin API (add, drain, remove).
    nodes: RwLock<Vec<ClusterNode>>,
    /// Where this gateway is (cluster mode, from its certificate): it sees plaintext, so it
    /// only serves buckets whose policy allows its country.
    pub gateway: Option<Location>,
    keys: Arc<Keyring>,
    damaged: mpsc::UnboundedSender<ShardId>,
    /// When the GC last listed every store (for interrupted writes) without all answering.
    last_listing: std::sync::Mutex<Option<std::time::Instant>>,
}

/// What a new object carries besides its bytes.
pub struct NewObject {
    pub attrs: SealedAttrs,
    pub content_md5: Option<[u8; 16]>,
    /// Where the body reader leaves the checksum it verified (known only at the end).
    pub checksum: Option<ChecksumSlot>,
}

/// The stripe layout an object was written with.
pub fn layout_of(rec: &ObjectRecord) -> StripeLayout {
    StripeLayout {
        scheme: rec.scheme,
        packages_per_stripe: rec.packages_per_stripe as usize,
    }
}

/// A bucket's residency policy, from its record.
pub fn policy_of(b: &BucketRecord) -> ResidencyPolicy {
    ResidencyPolicy {
        countries: b.countries.clone(),
        failure_domain: b.failure_domain.parse().unwrap_or(FailureDomain::Node),
        scheme: b.scheme,
    }
}

impl Engine {
    pub fn new(
        meta: Arc<MetaStore>,
        nodes: Vec<ClusterNode>,
        gateway: Option<Location>,
        keys: Arc<Keyring>,
    ) -> (Arc<Engine>, mpsc::UnboundedReceiver<ShardId>) {
        let (damaged, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Engine {
                meta,
                nodes: RwLock::new(nodes),
                gateway,
                keys,
                damaged,
                last_listing: std::sync::Mutex::new(None),
            }),
            rx,
        )
    }

    /// Refuses to handle a bucket's data here if this gateway is outside its policy.
    pub fn check_gateway(&self, countries: &[String]) -> Result<(), S3Error> {
        match &self.gateway {
            Some(g) if !countries.contains(&g.country) => Err(S3Error::access_denied(format!(
                "this gateway is in {}, outside the bucket's residency policy (countries {}): use a gateway located there",
                g.country,
                countries.join(",")
            ))),
            _ => Ok(()),
        }
    }

    /// A snapshot of the topology.
    pub fn nodes(&self) -> Vec<ClusterNode> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stores(&self) -> Vec<Arc<dyn ShardStore>> {
        self.nodes().into_iter().map(|n| n.store).collect()
    }

    pub fn node(&self, id: &str) -> Option<ClusterNode> {
        self.nodes().into_iter().find(|n| n.store.id() == id)
    }

    fn store_of(&self, id: &str) -> Option<Arc<dyn ShardStore>> {
        self.node(id).map(|n| n.store)
    }

    /// Adds a node (or replaces the one with the same id).
    pub fn add_node(&self, node: ClusterNode) {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|n| n.store.id() != node.store.id());
        nodes.push(node);
    }

    /// Forgets a node: its shards count as missing (read from parity) from now on.
    pub fn remove_node(&self, id: &str) -> Option<ClusterNode> {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        let i = nodes.iter().position(|n| n.store.id() == id)?;
        Some(nodes.remove(i))
    }

    /// Asks every node for its capacity (remote nodes thereby refresh their up/down flag).
    pub async fn heartbeat(&self) {
        let nodes = self.nodes();
        let stats = futures_util::future::join_all(nodes.iter().map(|n| n.store.stat())).await;
        for (n, s) in nodes.iter().zip(stats) {
            if let Ok(s) = s {
                n.free.store(s.free_bytes, Ordering::Relaxed);
            }
        }
    }

    /// Chooses the store of each shard index for a new version under a residency policy.
    /// A slot no compliant node can take gets a `MissingStore` (recorded as degraded).
    fn place(&self, version: &VersionId, policy: &ResidencyPolicy) -> Result<Vec<Arc<dyn ShardStore>>, S3Error> {
        let nodes = self.nodes();
        let views: Vec<NodeView> = nodes
            .iter()
            .map(|n| NodeView {
                id: n.store.id().to_string(),
                country: n.location.country.clone(),
                site: n.location.site.clone(),
                zone: n.location.zone.clone(),
                up: n.store.is_up() && !n.is_draining(),
                free_bytes: n.free.load(Ordering::Relaxed),
            })
            .collect();
        let picked =
            coffre_cluster::place(version, &views, policy).map_err(|e| S3Error::service_unavailable(e.to_string()))?;
        Ok(picked
            .into_iter()
            .map(|p| match p {
                Some(i) => nodes[i].store.clone(),
                None => Arc::new(MissingStore) as Arc<dyn ShardStore>,
            })
            .collect())
    }

    fn cipher(&self, dk: &DataKey, bucket: &str, key: &str, version: &VersionId) -> Arc<PackageCipher> {
        Arc::new(PackageCipher::new(
            dk,
            &ObjectIdentity {
                bucket,
                key,
                version: &version.0,
            },
        ))
    }

    pub fn seal_attrs(&self, bucket: &str, key: &str, version: &VersionId, a: &SealedAttrs) -> Vec<u8> {
        let plain = postcard::to_stdvec(a).unwrap_or_default();
        self.keys.seal(&attrs_aad(bucket, key, version), &plain)
    }

    pub fn open_attrs(&self, bucket: &str, key: &str, rec: &ObjectRecord) -> Result<SealedAttrs, S3Error> {
        self.open_attrs_for(bucket, key, &rec.version, &rec.sealed)
    }

    /// Opens attributes sealed for `version` (an object version or an upload id).
    pub fn open_attrs_for(
        &self,
        bucket: &str,
        key: &str,
        version: &VersionId,
        sealed: &[u8],
    ) -> Result<SealedAttrs, S3Error> {
        let plain = self
            .keys
            .open(&attrs_aad(bucket, key, version), sealed)
            .map_err(|e| S3Error::internal(format!("object attributes unreadable: {e}")))?;
        postcard::from_bytes(&plain).map_err(|e| S3Error::internal(format!("object attributes corrupt: {e}")))
    }

    /// Writes one part's bytes (encrypted, erasure-coded) under a fresh version id and data
    /// key. The caller commits the returned part, or the intent makes it an orphan for GC.
    pub async fn write_data<S>(
        &self,
        bucket: &str,
        key: &str,
        policy: &ResidencyPolicy,
        body: S,
        content_md5: Option<[u8; 16]>,
        checksum: Option<ChecksumSlot>,
    ) -> Result<(PartInfo, LayoutRecord), S3Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let version = VersionId::random();
        let targets = self.place(&version, policy)?;
        let nodes: Vec<String> = targets.iter().map(|s| s.id().to_string()).collect();
        self.meta.begin_write(&version, &nodes)?;
        let dk = DataKey::random();
        let target = WriteTarget {
            layout: StripeLayout::new(policy.scheme),
            stores: targets,
            version,
            part: 0,
            cipher: self.cipher(&dk, bucket, key, &version),
        };
        let written = match write_part(target, body).await {
            Ok(w) => w,
            Err(e) => {
                self.abort(&version, &nodes, None);
                return Err(S3Error::from(e));
            }
        };
        if content_md5.is_some_and(|m| m != written.md5) {
            self.abort(&version, &nodes, Some(written.shard_hashes.len() as u32));
            return Err(S3Error::bad_digest(
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
        let checksum = checksum.and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take());
        let info = PartInfo {
            version,
            size: written.size,
            md5: hex::encode(written.md5),
            wrapped_key: self.keys.wrap(&dk, &version.0),
            nodes,
            degraded: written.degraded,
            checksum: checksum.map(|(a, v)| (a.name().to_string(), v)),
        };
        Ok((
            info,
            LayoutRecord {
                hashes: written.shard_hashes.into_iter().flatten().collect(),
            },
        ))
    }

    /// Turns an uncommitted write into a GC entry.
    pub fn abort(&self, version: &VersionId, nodes: &[String], stripes: Option<u32>) {
        if let Err(m) = self.meta.abort_write(version, nodes, stripes) {
            tracing::error!(error = %m, "could not queue an aborted write for GC");
        }
    }

    /// Stripes of a part, from its size.
    pub fn stripes_of(&self, p: &PartInfo) -> u32 {
        coffre_meta::GcPart::of(p, StripeLayout::DEFAULT_PACKAGES as u32)
            .stripes
            .unwrap_or(0)
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
    ) -> Result<ObjectRecord, S3Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let policy = policy_of(bucket_rec);
        let scheme = policy.scheme;
        let (info, layout) = self
            .write_data(bucket, key, &policy, body, new.content_md5, new.checksum)
            .await?;
        let mut attrs = new.attrs;
        if let Some((a, v)) = &info.checksum {
            attrs.checksums = vec![(a.clone(), v.clone())];
        }
        let record = ObjectRecord {
            version: info.version,
            size: info.size,
            etag: info.md5.clone(),
            last_modified_ms: now_millis(),
            scheme,
            packages_per_stripe: StripeLayout::DEFAULT_PACKAGES as u32,
            parts: vec![info.clone()],
            sealed: self.seal_attrs(bucket, key, &info.version, &attrs),
        };
        if let Err(e) = self
            .meta
            .commit_object(bucket, key.as_bytes(), &record, &[(info.version, layout)])
        {
            self.abort(&info.version, &info.nodes, Some(self.stripes_of(&info)));
            return Err(e.into());
        }
        Ok(record)
    }

    fn part_reader(&self, bucket: &str, key: &str, rec: &ObjectRecord, p: &PartInfo) -> Result<PartReader, S3Error> {
        let layout = self
            .meta
            .get_layout(&p.version)?
            .ok_or_else(|| S3Error::no_such_key("The object was replaced or deleted while being read"))?;
        let dk = self
            .keys
            .unwrap(&p.wrapped_key, &p.version.0)
            .map_err(|e| S3Error::internal(format!("data key unusable: {e}")))?;
        let n = rec.scheme.total();
        if layout.hashes.len() % n.max(1) != 0 {
            return Err(S3Error::internal("object layout is corrupt"));
        }
        Ok(PartReader {
            layout: layout_of(rec),
            stores: p.nodes.iter().map(|id| self.store_of(id)).collect(),
            version: p.version,
            part: 0,
            size: p.size,
            shard_hashes: Arc::new(layout.hashes.chunks(n).map(|c| c.to_vec()).collect()),
            cipher: self.cipher(&dk, bucket, key, &p.version),
            damaged: Some(self.damaged.clone()),
        })
    }

    /// Streams bytes `[start, end)` of an object, part after part.
    pub fn read(
        &self,
        bucket: &str,
        key: &str,
        rec: &ObjectRecord,
        start: u64,
        end: u64,
    ) -> Result<mpsc::Receiver<Result<Bytes, DataError>>, S3Error> {
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for p in &rec.parts {
            let (ps, pe) = (offset, offset + p.size);
            if pe > start && ps < end {
                pieces.push((
                    self.part_reader(bucket, key, rec, p)?,
                    start.max(ps) - ps,
                    end.min(pe) - ps,
                ));
            }
            offset = pe;
        }
        if pieces.len() == 1 {
            let (r, s, e) = pieces.remove(0);
            return Ok(read_part(r, s, e));
        }
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            for (r, s, e) in pieces {
                let mut inner = read_part(r, s, e);
                while let Some(item) = inner.recv().await {
                    let failed = item.is_err();
                    if tx.send(item).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }

    /// Removes the shards of deleted and replaced versions. Returns how many GC entries were
    /// completed.
    pub async fn collect_garbage(&self) -> Result<usize, S3Error> {
        let mut cleaned = 0;
        let mut listed: Option<Vec<StoreListing>> = None;
        for (raw, gc) in self.meta.gc_batch(256)? {
            let mut ok = true;
            for part in &gc.parts {
                match part.stripes {
                    Some(stripes) => {
                        for stripe in 0..stripes {
                            for (index, node) in part.nodes.iter().enumerate() {
                                let id = ShardId {
                                    version: part.version,
                                    part: 0,
                                    stripe,
                                    index: index as u8,
                                };
                                match self.store_of(node) {
                                    Some(s) => ok &= s.delete(id).await.is_ok(),
                                    None => tracing::warn!(node, "GC: node unknown, shard left"),
                                }
                            }
                        }
                    }
                    None => {
                        // An interrupted write: how far it got is unknown, so look — listing
                        // every store is costly, so at most once a minute while some fail.
                        if listed.is_none() {
                            let due = {
                                let mut last = self.last_listing.lock().unwrap_or_else(|p| p.into_inner());
                                let due = last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(60));
                                if due {
                                    *last = Some(std::time::Instant::now());
                                }
                                due
                            };
                            if !due {
                                ok = false;
                                continue;
                            }
                            let mut all = Vec::new();
                            for s in self.stores() {
                                match s.list().await {
                                    Ok(ids) => all.push((s.clone(), ids)),
                                    Err(e) => tracing::warn!(store = s.id(), error = %e, "cannot list store for GC"),
                                }
                            }
                            listed = Some(all);
                        }
                        let all = listed.as_deref().unwrap_or_default();
                        let complete = all.len() == self.nodes().len();
                        if complete {
                            // Every store answered: no need to wait for the next listing.
                            *self.last_listing.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        }
                        ok &= complete;
                        for (store, ids) in all {
                            for id in ids.iter().filter(|i| i.version == part.version) {
                                ok &= store.delete(*id).await.is_ok();
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

    /// Heals degraded writes: rebuilds each missing shard from the others and writes it to
    /// its node if that node is back, else to another compliant node that holds none of the
    /// part. Returns how many shards were written.
    pub async fn heal(&self) -> Result<usize, S3Error> {
        let mut healed = 0;
        for (bucket, key) in self.meta.to_heal(64)? {
            let rec = self.meta.get_object(&bucket, &key)?;
            let (Some(rec), Some(brec)) = (rec, self.meta.get_bucket(&bucket)?) else {
                // Deleted meanwhile: forget the entry.
                self.meta.update_parts(&bucket, &key, &VersionId([0; 16]), vec![])?;
                continue;
            };
            let policy = policy_of(&brec);
            let key_str = String::from_utf8_lossy(&key).into_owned();
            let layout = layout_of(&rec);
            let mut parts = rec.parts.clone();
            let mut changed = false;
            for part in parts.iter_mut().filter(|p| !p.degraded.is_empty()) {
                let reader = self.part_reader(&bucket, &key_str, &rec, part)?;
                let mut still = Vec::new();
                for &i in &part.degraded.clone() {
                    let i = i as usize;
                    let usable = |n: &ClusterNode| {
                        n.store.is_up() && !n.is_draining() && policy.countries.contains(&n.location.country)
                    };
                    let target = match self.node(&part.nodes[i]) {
                        Some(n) if usable(&n) => Some(n),
                        _ => self
                            .nodes()
                            .into_iter()
                            .find(|n| usable(n) && !part.nodes.iter().any(|id| id == n.store.id())),
                    };
                    let Some(target) = target else {
                        still.push(i as u8);
                        continue;
                    };
                    let mut ok = true;
                    for stripe in 0..layout.stripe_count(part.size) {
                        let id = ShardId {
                            version: part.version,
                            part: 0,
                            stripe,
                            index: i as u8,
                        };
                        let written = match reader.rebuild_shard(stripe, i).await {
                            Ok(shard) => target.store.put(id, shard).await.is_ok(),
                            Err(_) => false,
                        };
                        if !written {
                            ok = false;
                            break;
                        }
                        healed += 1;
                    }
                    if ok {
                        tracing::info!(
                            bucket,
                            key = key_str,
                            index = i,
                            node = target.store.id(),
                            "degraded shards healed"
                        );
                        part.nodes[i] = target.store.id().to_string();
                        changed = true;
                    } else {
                        still.push(i as u8);
                    }
                }
                part.degraded = still;
            }
            if changed {
                self.meta.update_parts(&bucket, &key, &rec.version, parts)?;
            }
        }
        Ok(healed)
    }

    /// After a restart no write is in flight: every intent left behind is an orphan write.
    pub fn recover_intents(&self) -> Result<usize, S3Error> {
        let intents = self.meta.intents()?;
        for (v, rec) in &intents {
            self.meta.abort_write(v, &rec.nodes, None)?;
        }
        Ok(intents.len())
    }

    /// Aborts multipart uploads older than `max_age` and forgets old completion markers.
    pub fn expire_uploads(&self, max_age: std::time::Duration) -> Result<usize, S3Error> {
        let cutoff = now_millis().saturating_sub(max_age.as_millis() as u64);
        let stale = self.meta.stale_uploads(cutoff)?;
        for (bucket, key, id) in &stale {
            self.meta.abort_upload(bucket, key, id)?;
        }
        Ok(stale.len())
    }
}

/// How many records a key rotation rewrote.
#[derive(Debug, Default)]
pub struct Rotation {
    pub objects: usize,
    pub parts: usize,
    pub uploads: usize,
}

/// Re-wraps every data key and re-seals every sealed attribute under the keyring's current
/// master key; data is not rewritten. Records already under the current key are left alone,
/// so an interrupted rotation is resumed by running it again.
pub fn rotate_master_key(meta: &MetaStore, keys: &Keyring) -> Result<Rotation, S3Error> {
    use coffre_meta::MetaError;
    let fail = |e: coffre_crypto::CryptoError| {
        MetaError::Corrupt(format!("cannot open a record with any known master key: {e}"))
    };
    let rewrap = |p: &mut PartInfo| -> Result<bool, MetaError> {
        if keys.is_current(&p.wrapped_key) {
            return Ok(false);
        }
        let dk = keys.unwrap(&p.wrapped_key, &p.version.0).map_err(fail)?;
        p.wrapped_key = keys.wrap(&dk, &p.version.0);
        Ok(true)
    };
    let reseal = |aad: Vec<u8>, sealed: &mut Vec<u8>| -> Result<(), MetaError> {
        if !sealed.is_empty() {
            let plain = keys.open(&aad, sealed).map_err(fail)?;
            *sealed = keys.seal(&aad, &plain);
        }
        Ok(())
    };
    let objects = meta.rewrite_objects(|bucket, key, rec| {
        let mut changed = false;
        for p in &mut rec.parts {
            changed |= rewrap(p)?;
        }
        let key = String::from_utf8_lossy(key);
        reseal(attrs_aad(bucket, &key, &rec.version), &mut rec.sealed)?;
        Ok(changed || !rec.sealed.is_empty())
    })?;
    let parts = meta.rewrite_parts(|p| rewrap(&mut p.info))?;
    let uploads = meta.rewrite_uploads(|bucket, key, id, up| {
        reseal(
            attrs_aad(bucket, &String::from_utf8_lossy(key), &VersionId(*id)),
            &mut up.sealed,
        )?;
        Ok(!up.sealed.is_empty())
    })?;
    Ok(Rotation {
        objects,
        parts,
        uploads,
    })
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
