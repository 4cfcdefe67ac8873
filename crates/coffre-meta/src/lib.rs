//! Metadata in RocksDB: one column family per record kind, keys from `keys`, values from
//! `records`. Every S3 mutation is one atomic, synced WriteBatch.

pub mod keys;
pub mod records;

use coffre_types::{now_millis, VersionId};
use records::*;
use rocksdb::{ColumnFamily, Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::Mutex;

pub use records::{BucketRecord, GcRecord, IntentRecord, LayoutRecord, ObjectRecord, SealedAttrs};

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
}

pub struct MetaStore {
    db: DB,
    /// Serialises read-modify-write of one object key (PUT over PUT, DELETE over PUT).
    key_locks: Vec<Mutex<()>>,
}

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
        self.db
            .cf_handle(name)
            .expect("column families are created at open")
    }

    fn get<T: serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        key: &[u8],
    ) -> Result<Option<T>, MetaError> {
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
        self.db.put_cf_opt(
            self.cf(keys::CF_BUCKETS),
            keys::bucket(name),
            encode(rec),
            &sync_opts(),
        )?;
        Ok(())
    }

    pub fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        self.get(keys::CF_BUCKETS, &keys::bucket(name))
    }

    pub fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_BUCKETS), IteratorMode::Start)
        {
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
        self.db
            .delete_cf_opt(self.cf(keys::CF_BUCKETS), keys::bucket(name), &sync_opts())?;
        Ok(())
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
        self.db.put_cf_opt(
            self.cf(keys::CF_INTENTS),
            keys::version(v),
            encode(&rec),
            &sync_opts(),
        )?;
        Ok(())
    }

    /// Makes a written version visible, atomically: the object record and its layout in, the
    /// intent out, the replaced version (if any) queued for GC. Fails if the bucket is gone.
    pub fn commit_object(
        &self,
        bucket: &str,
        key: &[u8],
        rec: &ObjectRecord,
        layout: &LayoutRecord,
    ) -> Result<(), MetaError> {
        let _g = self.lock_key(bucket, key);
        if self.get_bucket(bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        let okey = keys::object(bucket, key);
        let mut b = WriteBatch::default();
        if let Some(old) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? {
            self.queue_gc(&mut b, &old);
        }
        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, encode(rec));
        b.put_cf(
            self.cf(keys::CF_LAYOUTS),
            keys::version(&rec.version),
            encode(layout),
        );
        b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(&rec.version));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    fn queue_gc(&self, b: &mut WriteBatch, old: &ObjectRecord) {
        let sp = old.packages_per_stripe as u64 * coffre_crypto::PACKAGE_SIZE as u64;
        let gc = GcRecord {
            version: old.version,
            nodes: old.nodes.clone(),
            part_stripes: old.parts.iter().map(|p| p.div_ceil(sp) as u32).collect(),
        };
        b.put_cf(
            self.cf(keys::CF_GC),
            keys::gc(now_millis(), &old.version),
            encode(&gc),
        );
        b.delete_cf(self.cf(keys::CF_LAYOUTS), keys::version(&old.version));
    }

    /// Replaces the sealed attributes (tags) of the current version, if it is still `version`.
    /// Returns false if the object is gone or was replaced meanwhile.
    pub fn update_sealed(
        &self,
        bucket: &str,
        key: &[u8],
        version: &VersionId,
        sealed: Vec<u8>,
    ) -> Result<bool, MetaError> {
        let _g = self.lock_key(bucket, key);
        let okey = keys::object(bucket, key);
        let Some(mut rec) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? else {
            return Ok(false);
        };
        if rec.version != *version {
            return Ok(false);
        }
        rec.sealed = sealed;
        self.db
            .put_cf_opt(self.cf(keys::CF_OBJECTS), &okey, encode(&rec), &sync_opts())?;
        Ok(true)
    }

    /// Deletes an object: its record (and so its wrapped data key) goes first, atomically with
    /// queueing its shards for GC. Returns whether it existed.
    pub fn delete_object(&self, bucket: &str, key: &[u8]) -> Result<bool, MetaError> {
        let _g = self.lock_key(bucket, key);
        let okey = keys::object(bucket, key);
        let Some(old) = self.get::<ObjectRecord>(keys::CF_OBJECTS, &okey)? else {
            return Ok(false);
        };
        let mut b = WriteBatch::default();
        self.queue_gc(&mut b, &old);
        b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
        self.db.write_opt(b, &sync_opts())?;
        Ok(true)
    }

    /// Abandons a write that will not commit: its intent becomes a GC entry.
    pub fn abort_write(
        &self,
        v: &VersionId,
        nodes: &[String],
        part_stripes: Vec<u32>,
    ) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        let gc = GcRecord {
            version: *v,
            nodes: nodes.to_vec(),
            part_stripes,
        };
        b.put_cf(self.cf(keys::CF_GC), keys::gc(now_millis(), v), encode(&gc));
        b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(v));
        self.db.write_opt(b, &sync_opts())?;
        Ok(())
    }

    /// Intents left by writes that never finished (after a crash).
    pub fn intents(&self) -> Result<Vec<(VersionId, IntentRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_INTENTS), IteratorMode::Start)
        {
            let (k, v) = item?;
            let id: [u8; 16] = k[..]
                .try_into()
                .map_err(|_| MetaError::Corrupt("intent key".into()))?;
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
            let key = keys::object_key_of(bucket, raw)
                .unwrap_or_default()
                .to_vec();
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
    pub fn scan_objects(
        &self,
        bucket: &str,
    ) -> impl Iterator<Item = Result<(Vec<u8>, ObjectRecord), MetaError>> + '_ {
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
