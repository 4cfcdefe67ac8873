//! Metadata in RocksDB: one column family per record kind, keys from `keys`, values from
//! `records`. Every S3 mutation is one atomic, synced WriteBatch.

pub mod keys;
pub mod records;

use coffre_types::{now_millis, VersionId};
use records::*;
use rocksdb::{ColumnFamily, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::Mutex;

pub use records::{
    BucketRecord, GcPart, GcRecord, IntentRecord, LayoutRecord, NodeRecord, ObjectRecord, PartInfo, SealedAttrs,
    UploadPartRecord, UploadRecord,
};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("metadata store: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt metadata record: {0}")]
    Corrupt(String),
    #[error("no such bucket")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such upload")]
    NoSuchUpload,
}

pub struct MetaStore {
    db: DB,
    /// Serialises read-modify-write of one object key (PUT over PUT, DELETE over PUT).
    key_locks: Vec<Mutex<()>>,
}

/// An upload in a listing: (object key, upload id, record).
pub type UploadEntry = (Vec<u8>, [u8; 16], UploadRecord);
/// Where an upload is: (bucket, object key, upload id).
pub type UploadRef = (String, Vec<u8>, [u8; 16]);

/// One entry of a listing page.
#[derive(Debug)]
pub enum ListEntry {
    Object(Vec<u8>, ObjectRecord),
    CommonPrefix(Vec<u8>),
}

fn sync_opts() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl MetaStore {
    pub fn open(dir: &Path) -> Result<MetaStore, MetaError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        opts.increase_parallelism(2);
        let db = DB::open_cf(&opts, dir, keys::ALL_CFS)?;
        Ok(MetaStore {
            db,
            key_locks: (0..64).map(|_| Mutex::new(())).collect(),
        })
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("column families are created at open")
    }

    fn get<T: serde::de::DeserializeOwned>(&self, cf: &str, key: &[u8]) -> Result<Option<T>, MetaError> {
        match self.db.get_pinned_cf(self.cf(cf), key)? {
            Some(v) => Ok(Some(decode(&v)?)),
            None => Ok(None),
        }
    }

    fn lock_key(&self, bucket: &str, key: &[u8]) -> std::sync::MutexGuard<'_, ()> {
        let h = fnv1a(bucket.as_bytes(), key);
        let m = &self.key_locks[(h % self.key_locks.len() as u64) as usize];
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- buckets ----

    pub fn create_bucket(&self, name: &str, rec: &BucketRecord) -> Result<(), MetaError> {
        let _g = self.lock_key(name, b"");
        if self.get_bucket(name)?.is_some() {
            return Err(MetaError::BucketExists);
        }
        self.db
            .put_cf_opt(self.cf(keys::CF_BUCKETS), keys::bucket(name), encode(rec), &sync_opts())?;
        Ok(())
    }

    pub fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        self.get(keys::CF_BUCKETS, &keys::bucket(name))
    }

    pub fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_BUCKETS), IteratorMode::Start) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        let _g = self.lock_key(name, b"");
        if self.get_bucket(name)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        let start = keys::object_prefix(name, b"");
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        it.seek(&start);
        if it.valid() && it.key().is_some_and(|k| k.starts_with(&start)) {
            return Err(MetaError::BucketNotEmpty);
        }
        it.status()?;
        // Uploads in progress keep the bucket; markers of completed ones go with it.
        let mut b = WriteBatch::default();
        let iter = self.db.iterator_cf(
            self.cf(keys::CF_UPLOADS),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&start) {
                break;
            }
            if decode::<UploadRecord>(&v)?.completed.is_none() {
                return Err(MetaError::BucketNotEmpty);
            }
            b.delete_cf(self.cf(keys::CF_UPLOADS), k);
        }
        b.delete_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    /// Replaces a bucket's record (its residency policy); new writes follow it.
    pub fn update_bucket(&self, name: &str, rec: &BucketRecord) -> Result<(), MetaError> {
        let _g = self.lock_key(name, b"");
        if self.get_bucket(name)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        self.db
            .put_cf_opt(self.cf(keys::CF_BUCKETS), keys::bucket(name), encode(rec), &sync_opts())?;
        Ok(())
    }

    // ---- cluster nodes ----

    pub fn put_node(&self, address: &str, rec: &NodeRecord) -> Result<(), MetaError> {
        self.db
            .put_cf_opt(self.cf(keys::CF_NODES), address.as_bytes(), encode(rec), &sync_opts())?;
        Ok(())
    }

    pub fn delete_node(&self, address: &str) -> Result<(), MetaError> {
        self.db
            .delete_cf_opt(self.cf(keys::CF_NODES), address.as_bytes(), &sync_opts())?;
        Ok(())
    }

    /// Known nodes: (address, record).
    pub fn nodes(&self) -> Result<Vec<(String, NodeRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_NODES), IteratorMode::Start) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    // ---- objects ----

    pub fn get_object(&self, bucket: &str, key: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        self.get(keys::CF_OBJECTS, &keys::object(bucket, key))
    }

    pub fn get_layout(&self, v: &VersionId) -> Result<Option<LayoutRecord>, MetaError> {
        self.get(keys::CF_LAYOUTS, &keys::version(v))
    }

    /// Records, durably, that shards of `v` are about to be written.
    pub fn begin_write(&self, v: &VersionId, nodes: &[String]) -> Result<(), MetaError> {
        let rec = IntentRecord {
            started_ms: now_millis(),
            nodes: nodes.to_vec(),
        };
        self.db
            .put_cf_opt(self.cf(keys::CF_INTENTS), keys::version(v), encode(&rec), &sync_opts())?;
        Ok(())
    }

    /// Makes a written version visible, atomically: the object record and the layouts of its
    /// new parts in, their intents out, the replaced version (if any) queued for GC. Fails if
    /// the bucket is gone.
    pub fn commit_object(
        &self,
        bucket: &str,
        key: &[u8],
        rec: &ObjectRecord,
        layouts: &[(VersionId, LayoutRecord)],
    ) -> Result<(), MetaError> {
        let _g = self.lock_key(bucket, key);
        let mut b = WriteBatch::default();
        self.put_object_in(&mut b, bucket, key, rec)?;
        for (v, l) in layouts {
            b.put_cf(self.cf(keys::CF_LAYOUTS), keys::version(v), encode(l));
            b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(v));
        }
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    /// Adds "object := rec" to a batch, queueing the replaced version for GC. Caller holds the key lock.
    fn put_object_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], rec: &ObjectRecord) -> Result<(), MetaError> {
        if self.get_bucket(bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        let okey = keys::object(bucket, key);
        if let Some(old) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? {
            self.queue_gc(b, old.gc_record());
        }
        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, encode(rec));
        if rec.parts.iter().any(|p| !p.degraded.is_empty()) {
            b.put_cf(self.cf(keys::CF_HEAL), &okey, []);
        }
        Ok(())
    }

    /// Objects with degraded parts: (bucket, key), at most `limit`.
    pub fn to_heal(&self, limit: usize) -> Result<Vec<(String, Vec<u8>)>, MetaError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_HEAL), IteratorMode::Start)
            .take(limit)
        {
            let (k, _) = item?;
            let zero = k
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("heal key".into()))?;
            out.push((String::from_utf8_lossy(&k[..zero]).into_owned(), k[zero + 1..].to_vec()));
        }
        Ok(out)
    }

    /// Records a healed part (new node list, no more degraded slots) if the object is still
    /// `version`; drops the heal entry once nothing is degraded. Returns false if it changed.
    pub fn update_parts(
        &self,
        bucket: &str,
        key: &[u8],
        version: &VersionId,
        parts: Vec<PartInfo>,
    ) -> Result<bool, MetaError> {
        let _g = self.lock_key(bucket, key);
        let okey = keys::object(bucket, key);
        let mut b = WriteBatch::default();
        let current = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)?;
        let updated = match current {
            Some(mut rec) if rec.version == *version => {
                rec.parts = parts;
                if rec.parts.iter().all(|p| p.degraded.is_empty()) {
                    b.delete_cf(self.cf(keys::CF_HEAL), &okey);
                }
                b.put_cf(self.cf(keys::CF_OBJECTS), &okey, encode(&rec));
                true
            }
            // Gone or replaced: nothing left to heal under this key's old version.
            _ => {
                if current
                    .as_ref()
                    .is_none_or(|r| r.parts.iter().all(|p| p.degraded.is_empty()))
                {
                    b.delete_cf(self.cf(keys::CF_HEAL), &okey);
                }
                false
            }
        };
        self.db.write_opt(b, &sync_opts())?;
        Ok(updated)
    }

    /// Queues shards for removal and forgets their layouts.
    fn queue_gc(&self, b: &mut WriteBatch, gc: GcRecord) {
        if gc.parts.is_empty() {
            return;
        }
        for p in &gc.parts {
            b.delete_cf(self.cf(keys::CF_LAYOUTS), keys::version(&p.version));
        }
        let first = gc.parts[0].version;
        b.put_cf(self.cf(keys::CF_GC), keys::gc(now_millis(), &first), encode(&gc));
    }

    /// Rewrites records in place (offline maintenance such as a master key rotation): `f` gets
    /// each object's bucket, key and record and says whether it changed it.
    pub fn rewrite_objects(
        &self,
        mut f: impl FnMut(&str, &[u8], &mut ObjectRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf(keys::CF_OBJECTS, |raw, rec: &mut ObjectRecord| {
            let zero = raw
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("object key".into()))?;
            let bucket = std::str::from_utf8(&raw[..zero]).map_err(|_| MetaError::Corrupt("bucket name".into()))?;
            f(bucket, &raw[zero + 1..], rec)
        })
    }

    /// As `rewrite_objects`, for the uploads in progress: (bucket, key, upload id, record).
    pub fn rewrite_uploads(
        &self,
        mut f: impl FnMut(&str, &[u8], &[u8; 16], &mut UploadRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf(keys::CF_UPLOADS, |raw, rec: &mut UploadRecord| {
            let zero = raw
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("upload key".into()))?;
            let bucket = std::str::from_utf8(&raw[..zero]).map_err(|_| MetaError::Corrupt("bucket name".into()))?;
            let (key, id) =
                keys::upload_parts_of(bucket, raw).ok_or_else(|| MetaError::Corrupt("upload key".into()))?;
            f(bucket, key, &id, rec)
        })
    }

    /// As `rewrite_objects`, for uploaded parts.
    pub fn rewrite_parts(
        &self,
        mut f: impl FnMut(&mut UploadPartRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf(keys::CF_PARTS, |_, rec: &mut UploadPartRecord| f(rec))
    }

    fn rewrite_cf<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        mut f: impl FnMut(&[u8], &mut T) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        let mut changed = 0;
        let mut b = WriteBatch::default();
        for item in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
            let (k, v) = item?;
            let mut rec: T = decode(&v)?;
            if f(&k, &mut rec)? {
                b.put_cf(self.cf(cf), &k, encode(&rec));
                changed += 1;
                if b.len() >= 1000 {
                    self.db.write_opt(std::mem::take(&mut b), &sync_opts())?;
                }
            }
        }
        self.db.write_opt(b, &sync_opts())?;
        Ok(changed)
    }

    /// Writes many object records in one unsynced batch, with no GC of replaced versions: for
    /// bulk imports into an empty bucket and for benchmarks.
    pub fn import_objects(&self, bucket: &str, items: &[(Vec<u8>, ObjectRecord)]) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        for (k, rec) in items {
            b.put_cf(self.cf(keys::CF_OBJECTS), keys::object(bucket, k), encode(rec));
        }
        self.db.write(b)?;
        Ok(())
    }

    /// Replaces the sealed attributes (tags, or all of them for a copy onto itself) of the
    /// current version, if it is still `version`; `touch` also sets its modification time.
    /// Returns the updated record, or None if the object is gone or was replaced meanwhile.
    pub fn update_sealed(
        &self,
        bucket: &str,
        key: &[u8],
        version: &VersionId,
        sealed: Vec<u8>,
        touch: bool,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let _g = self.lock_key(bucket, key);
        let okey = keys::object(bucket, key);
        let Some(mut rec) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? else {
            return Ok(None);
        };
        if rec.version != *version {
            return Ok(None);
        }
        rec.sealed = sealed;
        if touch {
            rec.last_modified_ms = now_millis();
        }
        self.db
            .put_cf_opt(self.cf(keys::CF_OBJECTS), &okey, encode(&rec), &sync_opts())?;
        Ok(Some(rec))
    }

    /// Deletes an object: its record (and so its wrapped data keys) goes first, atomically
    /// with queueing its shards for GC. Returns whether it existed.
    pub fn delete_object(&self, bucket: &str, key: &[u8]) -> Result<bool, MetaError> {
        let _g = self.lock_key(bucket, key);
        let okey = keys::object(bucket, key);
        let Some(old) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? else {
            return Ok(false);
        };
        let mut b = WriteBatch::default();
        self.queue_gc(&mut b, old.gc_record());
        b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
        self.db.write_opt(b, &sync_opts())?;
        Ok(true)
    }

    /// Abandons a write that will not commit: its intent becomes a GC entry. `stripes`: how
    /// many were written, if known.
    pub fn abort_write(&self, v: &VersionId, nodes: &[String], stripes: Option<u32>) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        self.queue_gc(
            &mut b,
            GcRecord {
                parts: vec![GcPart {
                    version: *v,
                    nodes: nodes.to_vec(),
                    stripes,
                }],
            },
        );
        b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(v));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    // ---- multipart uploads ----

    pub fn create_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16], rec: &UploadRecord) -> Result<(), MetaError> {
        if self.get_bucket(bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        self.db.put_cf_opt(
            self.cf(keys::CF_UPLOADS),
            keys::upload(bucket, key, id),
            encode(rec),
            &sync_opts(),
        )?;
        Ok(())
    }

    pub fn get_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16]) -> Result<Option<UploadRecord>, MetaError> {
        self.get(keys::CF_UPLOADS, &keys::upload(bucket, key, id))
    }

    /// Records an uploaded part (replacing one with the same number, whose shards go to GC).
    pub fn commit_part(
        &self,
        bucket: &str,
        key: &[u8],
        id: &[u8; 16],
        number: u32,
        part: &UploadPartRecord,
        layout: &LayoutRecord,
    ) -> Result<(), MetaError> {
        let _g = self.lock_key(bucket, key);
        let up = match self.get_upload(bucket, key, id)? {
            Some(u) if u.completed.is_none() => u,
            _ => return Err(MetaError::NoSuchUpload),
        };
        let pkey = keys::part(id, number);
        let mut b = WriteBatch::default();
        if let Some(old) = self.get::<UploadPartRecord>(keys::CF_PARTS, &pkey)? {
            self.queue_gc(
                &mut b,
                GcRecord {
                    parts: vec![GcPart::of(&old.info, up.packages_per_stripe)],
                },
            );
        }
        b.put_cf(self.cf(keys::CF_PARTS), &pkey, encode(part));
        b.put_cf(
            self.cf(keys::CF_LAYOUTS),
            keys::version(&part.info.version),
            encode(layout),
        );
        b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(&part.info.version));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    /// Parts with numbers greater than `after`, at most `limit`; and whether more follow.
    pub fn list_parts(
        &self,
        id: &[u8; 16],
        after: u32,
        limit: usize,
    ) -> Result<(Vec<(u32, UploadPartRecord)>, bool), MetaError> {
        let mut out = Vec::new();
        if after == u32::MAX {
            return Ok((out, false));
        }
        let start = keys::part(id, after + 1);
        let iter = self
            .db
            .iterator_cf(self.cf(keys::CF_PARTS), IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(id) {
                break;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let n = u32::from_be_bytes(
                k[16..20]
                    .try_into()
                    .map_err(|_| MetaError::Corrupt("part key".into()))?,
            );
            out.push((n, decode(&v)?));
        }
        Ok((out, false))
    }

    fn all_parts(&self, id: &[u8; 16]) -> Result<Vec<(u32, UploadPartRecord)>, MetaError> {
        Ok(self.list_parts(id, 0, usize::MAX)?.0)
    }

    /// Completes an upload atomically: the object (made of the chosen parts) becomes visible,
    /// the parts not chosen go to GC, the upload is marked completed (for retries).
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &[u8],
        id: &[u8; 16],
        rec: &ObjectRecord,
    ) -> Result<(), MetaError> {
        let _g = self.lock_key(bucket, key);
        let mut up = match self.get_upload(bucket, key, id)? {
            Some(u) if u.completed.is_none() => u,
            _ => return Err(MetaError::NoSuchUpload),
        };
        let mut b = WriteBatch::default();
        self.put_object_in(&mut b, bucket, key, rec)?;
        let used: std::collections::HashSet<VersionId> = rec.parts.iter().map(|p| p.version).collect();
        let unused: Vec<GcPart> = self
            .all_parts(id)?
            .iter()
            .filter(|(_, p)| !used.contains(&p.info.version))
            .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
            .collect();
        self.queue_gc(&mut b, GcRecord { parts: unused });
        self.delete_parts_in(&mut b, id);
        up.completed = Some((rec.version, rec.etag.clone()));
        up.sealed.clear();
        b.put_cf(self.cf(keys::CF_UPLOADS), keys::upload(bucket, key, id), encode(&up));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    fn delete_parts_in(&self, b: &mut WriteBatch, id: &[u8; 16]) {
        match keys::prefix_successor(id) {
            Some(end) => b.delete_range_cf(self.cf(keys::CF_PARTS), keys::part(id, 0), end),
            None => b.delete_range_cf(self.cf(keys::CF_PARTS), keys::part(id, 0), vec![0xFF; 21]),
        }
    }

    /// Aborts an upload: its parts go to GC. Returns false if there was none in progress.
    pub fn abort_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16]) -> Result<bool, MetaError> {
        let _g = self.lock_key(bucket, key);
        let Some(up) = self.get_upload(bucket, key, id)? else {
            return Ok(false);
        };
        let mut b = WriteBatch::default();
        if up.completed.is_none() {
            let parts = self
                .all_parts(id)?
                .iter()
                .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
                .collect();
            self.queue_gc(&mut b, GcRecord { parts });
            self.delete_parts_in(&mut b, id);
        }
        b.delete_cf(self.cf(keys::CF_UPLOADS), keys::upload(bucket, key, id));
        self.db.write_opt(b, &sync_opts())?;
        Ok(up.completed.is_none())
    }

    /// Uploads of a bucket in (key, upload id) order, strictly after the marker.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        after: Option<(&[u8], Option<[u8; 16]>)>,
        limit: usize,
    ) -> Result<(Vec<UploadEntry>, bool), MetaError> {
        let base = keys::object_prefix(bucket, prefix);
        let start = match after {
            Some((k, Some(id))) => keys::upload(bucket, k, &id),
            Some((k, None)) => keys::upload(bucket, k, &[0xFF; 16]),
            None => base.clone(),
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(keys::CF_UPLOADS),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(&base) {
                break;
            }
            if k[..] == start[..] {
                continue;
            }
            let Some((key, id)) = keys::upload_parts_of(bucket, &k) else {
                continue;
            };
            let rec: UploadRecord = decode(&v)?;
            if rec.completed.is_some() {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((key.to_vec(), id, rec));
        }
        Ok((out, false))
    }

    /// Uploads created before `cutoff_ms` (to expire), and completed markers older than it.
    pub fn stale_uploads(&self, cutoff_ms: u64) -> Result<Vec<UploadRef>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_UPLOADS), IteratorMode::Start) {
            let (k, v) = item?;
            let rec: UploadRecord = decode(&v)?;
            if rec.created_ms >= cutoff_ms {
                continue;
            }
            let Some(zero) = k.iter().position(|b| *b == 0) else {
                continue;
            };
            let bucket = String::from_utf8_lossy(&k[..zero]).into_owned();
            if let Some((key, id)) = keys::upload_parts_of(&bucket, &k) {
                out.push((bucket.clone(), key.to_vec(), id));
            }
        }
        Ok(out)
    }

    /// Intents left by writes that never finished (after a crash).
    pub fn intents(&self) -> Result<Vec<(VersionId, IntentRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_INTENTS), IteratorMode::Start) {
            let (k, v) = item?;
            let id: [u8; 16] = k[..].try_into().map_err(|_| MetaError::Corrupt("intent key".into()))?;
            out.push((VersionId(id), decode(&v)?));
        }
        Ok(out)
    }

    pub fn drop_intent(&self, v: &VersionId) -> Result<(), MetaError> {
        self.db
            .delete_cf_opt(self.cf(keys::CF_INTENTS), keys::version(v), &sync_opts())?;
        Ok(())
    }

    /// The oldest GC entries: (raw key, record).
    pub fn gc_batch(&self, limit: usize) -> Result<Vec<(Vec<u8>, GcRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_GC), IteratorMode::Start)
            .take(limit)
        {
            let (k, v) = item?;
            out.push((k.to_vec(), decode(&v)?));
        }
        Ok(out)
    }

    pub fn gc_done(&self, raw_key: &[u8]) -> Result<(), MetaError> {
        self.db.delete_cf(self.cf(keys::CF_GC), raw_key)?;
        Ok(())
    }

    /// One page of a listing: keys under `prefix`, strictly after `after`, rolling keys that
    /// share `prefix ∥ … ∥ delimiter` into one common prefix. Each common prefix costs one seek
    /// past all its keys, so a page costs O(page), not O(bucket).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &[u8],
        delimiter: Option<&[u8]>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ListEntry>, bool), MetaError> {
        let base = keys::object_prefix(bucket, prefix);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        match after {
            Some(a) if a >= prefix => it.seek(keys::object(bucket, a)),
            _ => it.seek(&base),
        }
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut out = Vec::new();
        loop {
            if !it.valid() {
                it.status()?;
                return Ok((out, false));
            }
            let Some(raw) = it.key() else {
                return Ok((out, false));
            };
            if !raw.starts_with(&base) {
                return Ok((out, false));
            }
            let key = keys::object_key_of(bucket, raw).unwrap_or_default().to_vec();
            if after.is_some_and(|a| key.as_slice() <= a) {
                it.next();
                continue;
            }
            let rolled = delimiter.and_then(|d| {
                let rest = &key[prefix.len()..];
                rest.windows(d.len())
                    .position(|w| w == d)
                    .map(|i| key[..prefix.len() + i + d.len()].to_vec())
            });
            if let Some(cp) = rolled {
                let already = after.is_some_and(|a| cp.as_slice() <= a);
                if !already {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(ListEntry::CommonPrefix(cp.clone()));
                }
                match keys::prefix_successor(&keys::object(bucket, &cp)) {
                    Some(next) => it.seek(next),
                    None => return Ok((out, false)),
                }
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let rec = decode(it.value().unwrap_or_default())?;
            out.push(ListEntry::Object(key, rec));
            it.next();
        }
    }

    /// Iterates every object of a bucket (for audits), in key order.
    pub fn scan_objects(&self, bucket: &str) -> impl Iterator<Item = Result<(Vec<u8>, ObjectRecord), MetaError>> + '_ {
        let start = keys::object_prefix(bucket, b"");
        let b = bucket.to_string();
        self.db
            .iterator_cf(
                self.cf(keys::CF_OBJECTS),
                IteratorMode::From(&start, Direction::Forward),
            )
            .map_while(move |item| match item {
                Ok((k, v)) => {
                    let key = keys::object_key_of(&b, &k)?.to_vec();
                    Some(decode(&v).map(|r| (key, r)))
                }
                Err(e) => Some(Err(e.into())),
            })
    }
}

/// FNV-1a: only spreads keys over the lock stripes.
fn fnv1a(a: &[u8], b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in a.iter().chain([0u8].iter()).chain(b) {
        h ^= x as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests;
