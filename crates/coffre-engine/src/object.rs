//! Objects: write a part's bytes, commit a version, read, delete, replace attributes.

use crate::{layout_of, policy_of, Engine, EngineError, EngineResult};
use bytes::Bytes;
use coffre_cluster::ResidencyPolicy;
use coffre_crypto::{CustomerKey, DataKey};
use coffre_data::{read_part, write_part, DataError, PartReader, StripeLayout, WriteTarget};
use coffre_meta::{
    BucketRecord, DeleteGuard, DeleteResult, DeleteTarget, LayoutRecord, MetaCommand, MetaError, ObjectRecord, Outcome,
    PartData, PartInfo, Place, ReadLease, Retention, SealedAttrs, VersionChange, VersionSel, VersionState,
    WriteCondition,
};
use coffre_types::{now_millis, VersionId};
use futures_util::{Stream, StreamExt};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Where the body reader leaves the checksum it verified, `(algorithm, base64 value)`: known
/// only once the body has been read whole.
pub type VerifiedChecksum = Arc<Mutex<Option<(String, String)>>>;

/// What the engine knows of a body before and while it streams.
#[derive(Default)]
pub struct BodyInfo {
    /// Its length, if the request declared it (what a stripe buffer needs to reserve).
    pub size_hint: Option<u64>,
    /// The client's Content-MD5: the write fails if the bytes do not match.
    pub content_md5: Option<[u8; 16]>,
    /// Where the body reader leaves the checksum it verified.
    pub checksum: Option<VerifiedChecksum>,
    /// SSE-C: the data is encrypted under a key bound to this one, and its ETag is keyed.
    pub customer_key: Option<CustomerKey>,
    /// SSE-KMS: the id of the tenant's KMS key that wraps the data key (enabled).
    pub kms_key: Option<String>,
    /// A part of a multipart upload (not an object of its own yet, for quotas).
    pub part: bool,
}

/// What a new object carries besides its bytes.
pub struct NewObject {
    pub attrs: SealedAttrs,
    pub body: BodyInfo,
    /// Checked before the data is written and again, atomically, at commit.
    pub condition: WriteCondition,
    /// Object Lock asked for by the request (the bucket's default retention applies if none).
    pub lock: ObjectLockRequest,
}

/// Object Lock headers of a write.
#[derive(Clone, Copy, Debug, Default)]
pub struct ObjectLockRequest {
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

impl ObjectLockRequest {
    pub(crate) fn version_state(&self) -> VersionState {
        VersionState {
            retention: self.retention,
            legal_hold: self.legal_hold,
            ..VersionState::default()
        }
    }
}

/// What a delete of one key (or version) did, as S3 reports it.
pub type DeleteOutcome = DeleteResult;

/// An object version opened for reading. Its lease keeps the GC away from the version's
/// shards while the handle, or a read started from it, lives.
pub struct ReadHandle {
    pub bucket: String,
    /// The bucket's tenant, whose key wrapped the data keys.
    pub tenant: String,
    pub key: String,
    pub record: ObjectRecord,
    /// SSE-C: the customer's key, once the caller has checked it against the object
    /// (`Engine::check_customer_key`). Without it an SSE-C object's data does not decrypt.
    pub customer_key: Option<CustomerKey>,
    lease: Arc<ReadLease>,
}

/// A condition that held when a write started but not at its commit: a concurrent write or
/// delete got there first.
pub(crate) fn failed_at_commit(condition: &WriteCondition, e: MetaError) -> EngineError {
    match e {
        // The object it had to match was deleted meanwhile: S3 answers 409, retry.
        MetaError::PreconditionFailed { exists: false } if condition.if_match.is_some() => {
            EngineError::Conflict("The object was deleted while it was being written; retry".into())
        }
        other => other.into(),
    }
}

impl Engine {
    /// Writes one part's bytes (encrypted, erasure-coded) under a fresh version id and data
    /// key. The caller commits the returned part, or the intent makes it an orphan for GC.
    pub async fn write_data<S>(
        &self,
        bucket: &str,
        tenant: &str,
        key: &str,
        policy: &ResidencyPolicy,
        body: S,
        info: BodyInfo,
    ) -> EngineResult<(PartInfo, LayoutRecord)>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        self.check_quota_early(tenant, bucket, (!info.part).then_some(key), info.size_hint)?;
        // Wrapped before any byte is written: a tenant without a key takes no data.
        let dk = DataKey::random();
        let version = VersionId::random();
        let wrapped_key = self.wrap_part_key(tenant, &dk, &version, info.kms_key.as_deref())?;
        let targets = self.place(&version, policy)?;
        let nodes: Vec<String> = targets.iter().map(|s| s.id().to_string()).collect();
        {
            let nodes = nodes.clone();
            self.meta_call(move |m| m.begin_write(&version, &nodes)).await?;
        }
        // SSE-C: what encrypts is bound to the customer's key; only `dk` is stored (wrapped).
        let data_key = match &info.customer_key {
            Some(ck) => ck.bind(&dk, &version.0),
            None => dk.clone(),
        };
        let target = WriteTarget {
            budget: Some(self.budget.clone()),
            size_hint: info.size_hint,
            layout: StripeLayout::new(policy.scheme),
            stores: targets,
            version,
            part: 0,
            cipher: self.cipher(&data_key, bucket, key, &version),
        };
        let written = match write_part(target, body).await {
            Ok(w) => w,
            Err(e) => {
                self.abort(&version, &nodes, None).await;
                return Err(e.into());
            }
        };
        let stripes = written.shard_hashes.len() as u32;
        let part = PartInfo {
            version,
            size: written.size,
            md5: String::new(),
            wrapped_key,
            nodes: nodes.clone(),
            degraded: written.degraded,
            checksum: None,
        };
        match self.finish_part(part, written.md5, &info) {
            Ok(part) => Ok((
                part,
                LayoutRecord {
                    hashes: written.shard_hashes.into_iter().flatten().collect(),
                },
            )),
            Err(e) => {
                self.abort(&version, &nodes, Some(stripes)).await;
                Err(e)
            }
        }
    }

    /// Completes the record of a part whose bytes had MD5 `md5`, as its body reader left them:
    /// the client's Content-MD5 must match, the checksum the reader verified is sealed, and an
    /// SSE-C part's ETag is keyed by the customer's key.
    fn finish_part(&self, mut part: PartInfo, md5: [u8; 16], body: &BodyInfo) -> EngineResult<PartInfo> {
        if body.content_md5.is_some_and(|m| m != md5) {
            return Err(EngineError::BadDigest(
                "The Content-MD5 you specified did not match what we received.".into(),
            ));
        }
        part.checksum = body
            .checksum
            .as_ref()
            .and_then(|s| s.lock().unwrap_or_else(|p| p.into_inner()).take())
            .map(|(a, v)| (a, self.seal_checksum(&part.version, &v)));
        let md5 = match &body.customer_key {
            Some(ck) => ck.tag_digest(&md5),
            None => md5,
        };
        part.md5 = hex::encode(md5);
        Ok(part)
    }

    /// A part's checksum is a digest of its content (SHA-256 can confirm a guess): it is stored
    /// sealed, bound to the part, as `~` and the base64 of the sealed value.
    pub(crate) fn seal_checksum(&self, version: &VersionId, value: &str) -> String {
        use base64::Engine as _;
        let sealed = self.keys.seal(&checksum_aad(version), value.as_bytes());
        format!("~{}", base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    /// The checksum a part was verified against, `(algorithm, value)`, opened. (Values stored
    /// before checksums were sealed are in clear: base64 never starts with `~`.)
    pub fn part_checksum(&self, p: &PartInfo) -> EngineResult<Option<(String, String)>> {
        use base64::Engine as _;
        let Some((a, v)) = &p.checksum else { return Ok(None) };
        let Some(sealed) = v.strip_prefix('~') else {
            return Ok(Some((a.clone(), v.clone())));
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| EngineError::Corrupt("a sealed checksum is not base64".into()))?;
        let plain = self
            .keys
            .open(&checksum_aad(&p.version), &bytes)
            .map_err(|e| EngineError::Corrupt(format!("a part checksum is unreadable: {e}")))?;
        let value = String::from_utf8(plain).map_err(|_| EngineError::Corrupt("a part checksum".into()))?;
        Ok(Some((a.clone(), value)))
    }

    /// Turns an uncommitted write into a GC entry.
    pub async fn abort(&self, version: &VersionId, nodes: &[String], stripes: Option<u32>) {
        let (version, nodes) = (*version, nodes.to_vec());
        if let Err(e) = self.meta_call(move |m| m.abort_write(&version, &nodes, stripes)).await {
            tracing::error!(error = %e, "could not queue an aborted write for GC");
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
    ) -> EngineResult<ObjectRecord>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let policy = policy_of(bucket_rec);
        self.check_condition(bucket, key, &new.condition)?;
        if !self.inlines(&policy, new.body.size_hint) {
            return self.put_stored(bucket, bucket_rec, key, &policy, body, new).await;
        }
        // Small enough to live in its metadata record: read it whole (within the data path's
        // memory budget, as a stripe would be), unless it turns out longer than it said, then
        // it is stored as any other object.
        let reservation = self.budget.reserve(self.config.inline_max as usize).await;
        let mut body = body;
        let (mut chunks, mut len) = (Vec::new(), 0u64);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(EngineError::Body)?;
            len = len.saturating_add(chunk.len() as u64);
            chunks.push(chunk);
            if len > self.config.inline_max {
                drop(reservation);
                let read = futures_util::stream::iter(chunks.into_iter().map(Ok));
                return self
                    .put_stored(bucket, bucket_rec, key, &policy, read.chain(body), new)
                    .await;
            }
        }
        let plain = chunks.concat();
        drop(chunks);
        let put = self.put_inline(bucket, bucket_rec, key, &policy, plain, new).await;
        drop(reservation);
        put
    }

    /// Whether an object of `size` bytes (if known) is inlined in a bucket under `policy`.
    fn inlines(&self, policy: &ResidencyPolicy, size: Option<u64>) -> bool {
        let Some(size) = size else { return false };
        size <= self.config.inline_max
            && self
                .config
                .metadata_country
                .as_ref()
                .is_some_and(|c| policy.countries.iter().any(|p| p == c))
    }

    /// Seals a small object's bytes and commits them inside its metadata record: one synced
    /// metadata write, no shard, no intent (nothing can be orphaned). The record is what
    /// makes the object readable anyway; the data now shares its durability.
    async fn put_inline(
        &self,
        bucket: &str,
        bucket_rec: &BucketRecord,
        key: &str,
        policy: &ResidencyPolicy,
        plain: Vec<u8>,
        new: NewObject,
    ) -> EngineResult<ObjectRecord> {
        let tenant = bucket_rec.tenant.as_str();
        let size = plain.len() as u64;
        self.check_quota_early(tenant, bucket, Some(key), Some(size))?;
        let md5: [u8; 16] = coffre_data::inline::md5_of(&plain);
        let dk = DataKey::random();
        let version = VersionId::random();
        let wrapped_key = self.wrap_part_key(tenant, &dk, &version, new.body.kms_key.as_deref())?;
        let data_key = match &new.body.customer_key {
            Some(ck) => ck.bind(&dk, &version.0),
            None => dk,
        };
        let layout = StripeLayout::new(policy.scheme);
        let packages = coffre_data::seal_inline(&layout, &self.cipher(&data_key, bucket, key, &version), &plain)?;
        drop(plain);
        let part = PartInfo {
            version,
            size,
            md5: String::new(),
            wrapped_key,
            nodes: Vec::new(),
            degraded: Vec::new(),
            checksum: None,
        };
        let info = self.finish_part(part, md5, &new.body)?;
        let sse_c = new.body.customer_key.as_ref().map(CustomerKey::new_check);
        let (record, condition) = self.new_record(
            bucket,
            bucket_rec,
            key,
            policy,
            info,
            sse_c,
            new.attrs,
            new.condition,
            new.lock,
        )?;
        let cmd = MetaCommand::CommitInlineObject(coffre_meta::CommitInlineObject {
            bucket: bucket.to_string(),
            key: key.as_bytes().to_vec(),
            record: record.clone(),
            packages,
            condition: condition.clone(),
            now_ms: now_millis(),
        });
        match self.meta_apply(cmd).await? {
            Ok(Outcome::Object(Some(committed))) => Ok(committed),
            Ok(_) => Ok(record),
            Err(e) => Err(failed_at_commit(&condition, e)),
        }
    }

    /// The record of a new one-part object, and the condition its commit checks.
    #[allow(clippy::too_many_arguments)]
    fn new_record(
        &self,
        bucket: &str,
        bucket_rec: &BucketRecord,
        key: &str,
        policy: &ResidencyPolicy,
        info: PartInfo,
        sse_c: Option<Vec<u8>>,
        attrs: SealedAttrs,
        condition: WriteCondition,
        lock: ObjectLockRequest,
    ) -> EngineResult<(ObjectRecord, WriteCondition)> {
        let condition = WriteCondition {
            owner: Some(bucket_rec.tenant.clone()),
            ..condition
        };
        let mut attrs = attrs;
        attrs.sse_c = sse_c;
        if let Some(c) = self.part_checksum(&info)? {
            attrs.checksums = vec![c];
        }
        let record = ObjectRecord {
            version: info.version,
            size: info.size,
            etag: info.md5.clone(),
            last_modified_ms: now_millis(),
            scheme: policy.scheme,
            packages_per_stripe: StripeLayout::DEFAULT_PACKAGES as u32,
            sealed: self.seal_attrs(bucket, key, &info.version, &attrs),
            parts: vec![info],
            version_state: lock.version_state(),
        };
        Ok((record, condition))
    }

    /// Stores an object's bytes as shards, then commits it.
    async fn put_stored<S>(
        &self,
        bucket: &str,
        bucket_rec: &BucketRecord,
        key: &str,
        policy: &ResidencyPolicy,
        body: S,
        new: NewObject,
    ) -> EngineResult<ObjectRecord>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin + Send,
    {
        let sse_c = new.body.customer_key.as_ref().map(CustomerKey::new_check);
        let (info, layout) = self
            .write_data(bucket, &bucket_rec.tenant, key, policy, body, new.body)
            .await?;
        let (record, condition) = self.new_record(
            bucket,
            bucket_rec,
            key,
            policy,
            info.clone(),
            sse_c,
            new.attrs,
            new.condition,
            new.lock,
        )?;
        let cmd = MetaCommand::CommitObject(coffre_meta::CommitObject {
            bucket: bucket.to_string(),
            key: key.as_bytes().to_vec(),
            record: record.clone(),
            layouts: vec![(info.version, layout)],
            condition: condition.clone(),
            now_ms: now_millis(),
        });
        match self.meta_apply(cmd).await? {
            Ok(Outcome::Object(Some(committed))) => Ok(committed),
            Ok(_) => Ok(record),
            Err(e) => {
                self.abort(&info.version, &info.nodes, Some(self.stripes_of(&info)))
                    .await;
                Err(failed_at_commit(&condition, e))
            }
        }
    }

    /// Fails early, before any data is written, if a write's condition does not hold now.
    pub(crate) fn check_condition(&self, bucket: &str, key: &str, condition: &WriteCondition) -> EngineResult<()> {
        if condition.is_none() {
            return Ok(());
        }
        let current = self.meta.get_object(bucket, key.as_bytes())?;
        match (condition.holds(current.as_ref()), &current) {
            (true, _) => Ok(()),
            // S3: If-Match on a key that does not exist is a 404.
            (false, None) if condition.if_match.is_some() => Err(EngineError::Meta(MetaError::NoSuchKey)),
            (false, current) => Err(MetaError::PreconditionFailed {
                exists: current.is_some(),
            }
            .into()),
        }
    }

    /// The current version of an object (no data read).
    pub fn head(&self, bucket: &str, key: &str) -> EngineResult<ObjectRecord> {
        self.meta
            .get_object(bucket, key.as_bytes())?
            .ok_or(EngineError::Meta(MetaError::NoSuchKey))
    }

    /// Opens the current version of an object for reading, under a lease.
    pub fn open(&self, bucket: &str, key: &str) -> EngineResult<ReadHandle> {
        self.open_version(bucket, key, None)
    }

    /// Opens version `sel` of an object (the current one if `None`) under a lease. A delete
    /// marker named by its id is `MethodNotAllowed`, as S3 answers.
    pub fn open_version(&self, bucket: &str, key: &str, sel: Option<VersionSel>) -> EngineResult<ReadHandle> {
        let tenant = self
            .bucket_record(bucket)?
            .ok_or(EngineError::Meta(MetaError::NoSuchBucket))?
            .tenant;
        let (record, _, lease) = match self.meta.open_version(bucket, key.as_bytes(), sel)? {
            Some(found) => found,
            None if sel.is_some() => return Err(EngineError::Meta(MetaError::NoSuchVersion)),
            None => return Err(EngineError::Meta(MetaError::NoSuchKey)),
        };
        if record.is_delete_marker() {
            return Err(EngineError::DeleteMarker {
                version_id: record.version_id(),
            });
        }
        Ok(ReadHandle {
            bucket: bucket.to_string(),
            tenant,
            key: key.to_string(),
            record,
            customer_key: None,
            lease: Arc::new(lease),
        })
    }

    /// A version without its data (the current object if `sel` is `None`), and whether it is
    /// the current object.
    pub fn head_version(&self, bucket: &str, key: &str, sel: Option<VersionSel>) -> EngineResult<(ObjectRecord, bool)> {
        let found = match sel {
            None => self
                .meta
                .get_object(bucket, key.as_bytes())?
                .map(|r| (r, Place::Current)),
            Some(sel) => self.meta.find_version(bucket, key.as_bytes(), sel)?,
        };
        match found {
            Some((r, _)) if r.is_delete_marker() => Err(EngineError::DeleteMarker {
                version_id: r.version_id(),
            }),
            Some((r, place)) => Ok((r, place == Place::Current)),
            None if sel.is_some() => Err(EngineError::Meta(MetaError::NoSuchVersion)),
            None => Err(EngineError::Meta(MetaError::NoSuchKey)),
        }
    }

    /// The versionId of the delete marker a key's newest version is, if it is one (what a 404
    /// on the key reports).
    pub fn latest_marker(&self, bucket: &str, key: &str) -> EngineResult<Option<String>> {
        Ok(self
            .meta
            .latest_version(bucket, key.as_bytes())?
            .filter(|r| r.is_delete_marker())
            .map(|r| r.version_id()))
    }

    /// Whether `given` (a request's SSE-C key) opens data whose attributes are `attrs`: an
    /// SSE-C object needs its key, another object takes none.
    pub fn check_customer_key(&self, attrs: &SealedAttrs, given: Option<&CustomerKey>) -> EngineResult<()> {
        match (&attrs.sse_c, given) {
            (None, None) => Ok(()),
            (Some(_), None) => Err(EngineError::InvalidRequest(
                "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.".into(),
            )),
            (None, Some(_)) => Err(EngineError::InvalidRequest(
                "The encryption parameters are not applicable to this object.".into(),
            )),
            (Some(check), Some(k)) if k.matches(check) => Ok(()),
            (Some(_), Some(_)) => Err(EngineError::Forbidden(
                "The provided customer key is not the one the object was stored with".into(),
            )),
        }
    }

    /// Where a part's bytes come from: its shards, or (inlined) its metadata, opened here.
    pub(crate) fn part_source(&self, h: &ReadHandle, p: &PartInfo) -> EngineResult<PartSource> {
        // The lease keeps layouts too: a missing one means metadata damage, not a race.
        let data = self
            .meta
            .get_part_data(&p.version)?
            .ok_or_else(|| EngineError::Corrupt(format!("the layout of part {} is missing", p.version.to_hex())))?;
        let layout = match data {
            PartData::Shards(layout) => layout,
            PartData::Inline(packages) => {
                let cipher = self.cipher(&self.part_data_key(h, p)?, &h.bucket, &h.key, &p.version);
                let plain = coffre_data::open_inline(&layout_of(&h.record), &cipher, packages, p.size)?;
                return Ok(PartSource::Inline(Bytes::from(plain)));
            }
        };
        Ok(PartSource::Shards(self.shard_reader(h, p, layout)?))
    }

    /// The key a part's packages were sealed with.
    fn part_data_key(&self, h: &ReadHandle, p: &PartInfo) -> EngineResult<DataKey> {
        let dk = self.unwrap_data_key(&h.tenant, &p.wrapped_key, &p.version.0)?;
        Ok(match &h.customer_key {
            Some(ck) => ck.bind(&dk, &p.version.0),
            None => dk,
        })
    }

    /// A reader of a part's shards (heal rebuilds shards through it; an inlined part has none).
    pub(crate) fn part_reader(&self, h: &ReadHandle, p: &PartInfo) -> EngineResult<PartReader> {
        match self.part_source(h, p)? {
            PartSource::Shards(r) => Ok(r),
            PartSource::Inline(_) => Err(EngineError::Internal("an inlined part has no shards".into())),
        }
    }

    fn shard_reader(&self, h: &ReadHandle, p: &PartInfo, layout: LayoutRecord) -> EngineResult<PartReader> {
        let (bucket, key, rec) = (h.bucket.as_str(), h.key.as_str(), &h.record);
        let dk = self.part_data_key(h, p)?;
        let n = rec.scheme.total();
        if !layout.hashes.len().is_multiple_of(n.max(1)) {
            return Err(EngineError::Corrupt("object layout is corrupt".into()));
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
            hold: Some(h.lease.clone()),
            budget: Some(self.budget.clone()),
        })
    }

    /// Streams bytes `[start, end)` of an opened object, part after part.
    pub fn read(&self, h: &ReadHandle, start: u64, end: u64) -> EngineResult<mpsc::Receiver<Result<Bytes, DataError>>> {
        let rec = &h.record;
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        for p in &rec.parts {
            let (ps, pe) = (offset, offset.saturating_add(p.size));
            if pe > start && ps < end {
                pieces.push((self.part_source(h, p)?, start.max(ps) - ps, end.min(pe) - ps));
            }
            offset = pe;
        }
        if pieces.len() == 1 {
            let (source, s, e) = pieces.remove(0);
            return Ok(source.read(s, e));
        }
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            for (source, s, e) in pieces {
                let mut inner = source.read(s, e);
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

    /// Deletes an object (a delete marker in a versioned bucket) or, with `version`, one
    /// version for good: its record (and so its wrapped data keys) goes, atomically with
    /// queueing its shards for GC.
    pub async fn delete(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionSel>,
        bypass_governance: bool,
    ) -> EngineResult<DeleteOutcome> {
        let mut results = self
            .delete_many(bucket, vec![(key.to_string(), version)], bypass_governance)
            .await?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Deletes several keys or versions; one result per item, in order. A key named more
    /// than once is deleted in turn (one command per round, each naming a key once).
    pub async fn delete_many(
        &self,
        bucket: &str,
        items: Vec<(String, Option<VersionSel>)>,
        bypass_governance: bool,
    ) -> EngineResult<Vec<DeleteOutcome>> {
        let mut results: Vec<Option<DeleteOutcome>> = vec![None; items.len()];
        let indexed: Vec<(usize, (String, Option<VersionSel>))> = items.into_iter().enumerate().collect();
        for round in distinct_key_rounds(indexed, |(_, (k, _))| k.as_bytes()) {
            let targets = round
                .iter()
                .map(|(_, (key, version))| DeleteTarget {
                    key: key.as_bytes().to_vec(),
                    version: *version,
                    marker_tag: VersionId::random(),
                    guard: DeleteGuard::None,
                })
                .collect();
            let cmd = MetaCommand::DeleteVersions {
                bucket: bucket.to_string(),
                targets,
                bypass_governance,
                now_ms: now_millis(),
            };
            match self.meta_call(move |m| m.apply(cmd)).await? {
                Outcome::DeleteResults(r) if r.len() == round.len() => {
                    for ((i, _), res) in round.into_iter().zip(r) {
                        results[i] = Some(res);
                    }
                }
                other => return Err(EngineError::Internal(format!("DeleteVersions answered {other:?}"))),
            }
        }
        Ok(results.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// Changes one version (the current object if `sel` is `None`): its retention or legal
    /// hold. Returns the version as changed.
    pub async fn update_version(
        &self,
        bucket: &str,
        key: &str,
        sel: Option<VersionSel>,
        change: VersionChange,
        bypass_governance: bool,
    ) -> EngineResult<ObjectRecord> {
        let cmd = MetaCommand::UpdateVersion(coffre_meta::UpdateVersion {
            bucket: bucket.to_string(),
            key: key.as_bytes().to_vec(),
            sel,
            expect: None,
            change,
            bypass_governance,
            now_ms: now_millis(),
        });
        match self.meta_call(move |m| m.apply(cmd)).await? {
            Outcome::Object(Some(rec)) => Ok(rec),
            other => Err(EngineError::Internal(format!("UpdateVersion answered {other:?}"))),
        }
    }

    /// Replaces the sealed attributes (tags) of version `sel` of a key, if it still holds the
    /// data `version`. `None` if it was replaced meanwhile.
    pub async fn update_version_attrs(
        &self,
        bucket: &str,
        key: &str,
        sel: Option<VersionSel>,
        version: &VersionId,
        attrs: &SealedAttrs,
    ) -> EngineResult<Option<ObjectRecord>> {
        let cmd = MetaCommand::UpdateVersion(coffre_meta::UpdateVersion {
            bucket: bucket.to_string(),
            key: key.as_bytes().to_vec(),
            sel,
            expect: Some(*version),
            change: VersionChange::Sealed {
                sealed: self.seal_attrs(bucket, key, version, attrs),
                touch_ms: None,
            },
            bypass_governance: false,
            now_ms: now_millis(),
        });
        match self.meta_call(move |m| m.apply(cmd)).await? {
            Outcome::Object(rec) => Ok(rec),
            other => Err(EngineError::Internal(format!("UpdateVersion answered {other:?}"))),
        }
    }

    /// Replaces the sealed attributes of version `version` (tags; everything for a copy onto
    /// itself, which also `touch`es its modification time). `None` if it is gone or replaced.
    pub async fn update_attrs(
        &self,
        bucket: &str,
        key: &str,
        version: &VersionId,
        attrs: &SealedAttrs,
        touch: bool,
    ) -> EngineResult<Option<ObjectRecord>> {
        let cmd = MetaCommand::UpdateSealed {
            bucket: bucket.to_string(),
            key: key.as_bytes().to_vec(),
            version: *version,
            sealed: self.seal_attrs(bucket, key, version, attrs),
            touch_ms: touch.then(now_millis),
        };
        match self.meta_call(move |m| m.apply(cmd)).await? {
            Outcome::Object(rec) => Ok(rec),
            other => Err(EngineError::Internal(format!("UpdateSealed answered {other:?}"))),
        }
    }
}

/// Where a part's bytes come from, once opened.
pub(crate) enum PartSource {
    Shards(PartReader),
    /// An inlined part, already opened: its plaintext.
    Inline(Bytes),
}

impl PartSource {
    /// Streams bytes `[start, end)` of the part.
    fn read(self, start: u64, end: u64) -> mpsc::Receiver<Result<Bytes, DataError>> {
        match self {
            PartSource::Shards(r) => read_part(r, start, end),
            PartSource::Inline(plain) => {
                let (tx, rx) = mpsc::channel(1);
                let end = (end as usize).min(plain.len());
                let _ = tx.try_send(Ok(plain.slice((start as usize).min(end)..end)));
                rx
            }
        }
    }
}

/// Splits items into rounds in which no key appears twice (a `DeleteVersions` names each key
/// once), a key's items in their order: its n-th item goes in round n.
pub(crate) fn distinct_key_rounds<T>(items: Vec<T>, key: impl Fn(&T) -> &[u8]) -> Vec<Vec<T>> {
    let mut rounds: Vec<(std::collections::HashSet<Vec<u8>>, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item).to_vec();
        match rounds.iter_mut().find(|(keys, _)| !keys.contains(&k)) {
            Some((keys, round)) => {
                keys.insert(k);
                round.push(item);
            }
            None => rounds.push(([k].into_iter().collect(), vec![item])),
        }
    }
    rounds.into_iter().map(|(_, r)| r).collect()
}

/// What a part's sealed checksum is bound to.
pub(crate) fn checksum_aad(version: &VersionId) -> Vec<u8> {
    [&b"coffre part checksum"[..], &version.0].concat()
}
