//! Metadata in RocksDB: one column family per record kind, keys from `keys`, values from
//! `records`.
//!
//! Every mutation is a `MetaCommand` applied by `MetaStore::apply` (`commands.rs`): it takes
//! the locks its keys need, re-reads and re-checks inside them everything it relies on (the
//! bucket exists, the key's current version, the parts of an upload, conditions), and writes
//! one atomic, synced WriteBatch. Reads are plain RocksDB reads; a reader of object data takes
//! a `ReadLease` (`leases.rs`) so that the GC leaves the versions it reads alone.

mod audit_notes;
pub mod commands;
mod iam;
pub mod keys;
mod kms;
mod leases;
mod list;
mod maintenance;
mod node_parts;
mod repair_queue;
pub use repair_queue::repair_margin;
pub mod records;
pub mod replica;
mod versions;

pub use audit_notes::{noting, set_draft, task_note, with_audit_note, AuditNote, NoteSource};
pub use commands::{
    CommitInlineObject, CommitObject, CommitPart, CompleteUpload, DeleteGuard, DeleteResult, DeleteTarget, HealedShard,
    MetaCommand, Outcome, UpdateVersion, VersionChange, VersioningChange, WriteCondition,
};
pub use iam::{IamCommand, NewTenant, Usage};
pub use kms::{KmsChange, KmsKeyRecord, KmsKeyState, KmsKeyVersion};
pub use leases::ReadLease;
pub use list::{ListEntry, UploadEntry, UploadRef};
pub use node_parts::{NodeHoldings, NodePart};
pub use records::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, CorsConfig, CorsRule, DefaultRetention, EncryptionConfig, GcPart,
    GcRecord, IntentRecord, KmsAttrs, LayoutRecord, LifecycleConfig, LifecycleExpiration, LifecycleFilter,
    LifecycleRule, LockMode, NodeRecord, NoncurrentExpiration, ObjectRecord, OidcConfig, OwnershipConfig, PartData,
    PartInfo, Quota, Retention, RoleRecord, SealedAttrs, TenantRecord, UploadPartRecord, UploadRecord, UserRecord,
    VersionSel, VersionState, VersioningConfig, VersioningStatus, ADMIN_USER, DEFAULT_TENANT,
};
pub use versions::{Place, VersionEntry};

use coffre_types::VersionId;
use records::decode;
use rocksdb::{ColumnFamily, IteratorMode, Options, DB};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Serializable (a replica answers a forwarded command with its outcome or refusal), except
/// `Db`: a storage failure is the replica's own, never an outcome of the command.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MetaError {
    #[error("corrupt metadata record: {0}")]
    Corrupt(String),
    #[error("no such bucket")]
    NoSuchBucket,
    /// The bucket exists and the caller's tenant owns it.
    #[error("bucket already exists")]
    BucketExists,
    /// The bucket name is another tenant's (bucket names are one global namespace).
    #[error("bucket name taken")]
    BucketTaken,
    #[error("bucket not empty")]
    BucketNotEmpty,
    #[error("no such upload")]
    NoSuchUpload,
    #[error("no such key")]
    NoSuchKey,
    /// A write's condition does not hold at commit: `exists` says whether the key has a
    /// current version now.
    #[error("precondition failed")]
    PreconditionFailed { exists: bool },
    /// A part named by a Complete was replaced (or removed) since it was read.
    #[error("a part changed while the upload was being completed")]
    PartChanged,
    /// The write would take its bucket or tenant over quota; the message says which.
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// An identity record (tenant, user, key, role) named does not exist.
    #[error("{0} not found")]
    NoSuchEntity(String),
    /// An identity record to create exists already.
    #[error("{0} already exists")]
    EntityExists(String),
    /// Removing it would leave records that depend on it (a tenant's buckets, a user's keys).
    #[error("{0}")]
    DeleteConflict(String),
    /// The metadata replica set cannot commit or serve now (no quorum, no leader); the
    /// message says which replicas answer. Nothing was applied.
    #[error("metadata unavailable: {0}")]
    Unavailable(String),
    /// A `versionId` names no version of the key.
    #[error("no such version")]
    NoSuchVersion,
    /// The version is protected by Object Lock (retention or legal hold): the message says how.
    #[error("{0}")]
    Locked(String),
    /// The bucket's state forbids the change (versioning with Object Lock…).
    #[error("{0}")]
    InvalidBucketState(String),
    #[error("{0}")]
    InvalidRequest(String),
    /// The method does not apply to what the request names (a delete marker).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Last: a skipped variant must not shift the encoded index of those before it.
    #[error("metadata store: {0}")]
    #[serde(skip)]
    Db(#[from] rocksdb::Error),
}

/// Where commands go when the store is a replica of a replicated set: `propose` returns once
/// the command is committed and applied here (or refused); `barrier` returns once this
/// replica has applied every command committed anywhere before the call (what makes a read
/// after it linearizable).
pub trait Replicator: Send + Sync {
    fn propose(&self, cmd: MetaCommand) -> Result<Outcome, MetaError>;
    fn barrier(&self) -> Result<(), MetaError>;
    /// `MetaStore::forget_history` on every replica of the set.
    fn forget_history(&self) -> Result<(), MetaError>;
}

/// An object to heal: (bucket, key, raw key of its `repair` entry).
pub type HealEntry = (String, Vec<u8>, Vec<u8>);

/// How many lock stripes: writers of keys that hash apart never wait for each other.
const LOCK_STRIPES: usize = 64;

pub struct MetaStore {
    db: DB,
    /// Serialize writers of one bucket's existence (create, delete, policy) against writers
    /// of its content: content writers hold the read side, bucket writers the write side.
    bucket_locks: Vec<RwLock<()>>,
    /// Serialize read-modify-write of one object key (PUT over PUT, DELETE over PUT, Complete
    /// over an upload's parts), and a reader's lease against the GC entry its version gets.
    key_locks: Vec<Mutex<()>>,
    /// Serialize commits that check a quota of one tenant (only tenants or buckets with a
    /// quota take it): usage read, checked and added to in one critical section.
    quota_locks: Vec<Mutex<()>>,
    /// Serializes identity mutations (tenants, users, keys, roles): rare, and each re-checks
    /// what it relies on (the tenant exists, the name is free…).
    iam_lock: Mutex<()>,
    /// Bumped after every change to what authorization reads (identities, bucket owners and
    /// policies): caches of it are valid while it has not moved.
    generation: std::sync::atomic::AtomicU64,
    leases: leases::Leases,
    /// Set while the store is a replica (`replica::Replica::start`); `None`: commands are
    /// applied here directly.
    replicator: RwLock<Option<std::sync::Arc<dyn Replicator>>>,
    /// Whether a command's batch is synced (a replica's is not: its log entry is).
    sync_applies: std::sync::atomic::AtomicBool,
    dir: std::path::PathBuf,
}

impl MetaStore {
    pub fn open(dir: &Path) -> Result<MetaStore, MetaError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        opts.increase_parallelism(2);
        // RocksDB keeps every table file open by default: bound it, so descriptors stay for
        // connections.
        opts.set_max_open_files(256);
        // A store written before usage was counted gets its counters once, from its objects.
        let existing = DB::list_cf(&opts, dir).unwrap_or_default();
        let count_usage = !existing.is_empty() && !existing.iter().any(|c| c == keys::CF_USAGE);
        let cfs = keys::ALL_CFS.iter().map(|name| {
            let mut o = Options::default();
            o.set_compression_type(rocksdb::DBCompressionType::None);
            if *name == keys::CF_USAGE {
                o.set_merge_operator_associative("coffre-usage-sum", iam::sum_usage);
                // A counter is one key merged on every write: without this, a read (a quota
                // check, a scrape) applies every operand since the last flush, 10⁵ of them
                // after 10⁵ writes (3 ms). The memtable folds them past this many.
                o.set_max_successive_merges(64);
            }
            rocksdb::ColumnFamilyDescriptor::new(*name, o)
        });
        let db = DB::open_cf_descriptors(&opts, dir, cfs)?;
        let store = MetaStore {
            db,
            bucket_locks: (0..LOCK_STRIPES).map(|_| RwLock::new(())).collect(),
            key_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            quota_locks: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            iam_lock: Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(1),
            leases: leases::Leases::default(),
            replicator: RwLock::new(None),
            sync_applies: std::sync::atomic::AtomicBool::new(true),
            dir: dir.to_path_buf(),
        };
        store.recover_interrupted_install()?;
        if count_usage {
            store.count_usage()?;
        }
        store.ensure_node_parts()?;
        store.ensure_repair_queue()?;
        Ok(store)
    }

    pub(crate) fn replicator(&self) -> Option<std::sync::Arc<dyn Replicator>> {
        self.replicator.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_replicator(&self, r: Option<std::sync::Arc<dyn Replicator>>) {
        *self.replicator.write().unwrap_or_else(|p| p.into_inner()) = r;
    }

    pub(crate) fn set_sync_applies(&self, sync: bool) {
        self.sync_applies.store(sync, std::sync::atomic::Ordering::Release);
    }

    /// Returns once this store has applied every command committed before the call, in
    /// the replica set it belongs to (at once when it is not a replica). Reads made after it
    /// see every write acknowledged before it, on any gateway.
    pub fn barrier(&self) -> Result<(), MetaError> {
        match self.replicator() {
            Some(r) => r.barrier(),
            None => Ok(()),
        }
    }

    /// Makes deleted records physically gone: on every replica, a snapshot of the state now
    /// replaces the log and the snapshots before it, and RocksDB rewrites its files without
    /// them. What an erasure needs (a tenant's key must not survive in an old log entry, a
    /// snapshot, or a table file waiting for compaction).
    pub fn forget_history(&self) -> Result<(), MetaError> {
        match self.replicator() {
            Some(r) => r.forget_history(),
            None => self.compact_files(),
        }
    }

    /// Flushes and compacts every column family down to the last level, so that deleted
    /// records are gone from the files (and the write-ahead logs holding them are retired).
    pub(crate) fn compact_files(&self) -> Result<(), MetaError> {
        let mut flush = rocksdb::FlushOptions::default();
        flush.set_wait(true);
        let mut compact = rocksdb::CompactOptions::default();
        compact.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        for name in keys::ALL_CFS {
            self.db.flush_cf_opt(self.cf(name), &flush)?;
            self.db
                .compact_range_cf_opt(self.cf(name), None::<&[u8]>, None::<&[u8]>, &compact);
        }
        Ok(())
    }

    /// Whether commands go through a replicated log.
    pub fn is_replica(&self) -> bool {
        self.replicator().is_some()
    }

    /// This gateway's audit chain head (entry number, chain value), as last recorded.
    pub fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, MetaError> {
        let Some(v) = self.db.get_pinned_cf(self.cf(keys::CF_LOCAL), keys::LOCAL_AUDIT_HEAD)? else {
            return Ok(None);
        };
        let (n, h) = v
            .split_at_checked(8)
            .ok_or_else(|| MetaError::Corrupt("audit head".into()))?;
        let n = u64::from_be_bytes(n.try_into().map_err(|_| MetaError::Corrupt("audit head".into()))?);
        let h: [u8; 32] = h.try_into().map_err(|_| MetaError::Corrupt("audit head".into()))?;
        Ok(Some((n, h)))
    }

    /// Records the audit chain head. Not synced: the next synced write carries it, and a
    /// head older than the segments is harmless (only one ahead of them is an alarm).
    pub fn set_audit_head(&self, n: u64, h: &[u8; 32]) -> Result<(), MetaError> {
        let mut v = n.to_be_bytes().to_vec();
        v.extend_from_slice(h);
        self.db.put_cf(self.cf(keys::CF_LOCAL), keys::LOCAL_AUDIT_HEAD, v)?;
        Ok(())
    }

    /// The directory of the RocksDB files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where caches of identities, bucket owners and policies stand (see `generation`).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn bump_generation(&self) {
        self.generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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

    fn key_stripe(&self, bucket: &str, key: &[u8]) -> usize {
        (fnv1a(bucket.as_bytes(), key) % LOCK_STRIPES as u64) as usize
    }

    fn lock_key(&self, bucket: &str, key: &[u8]) -> MutexGuard<'_, ()> {
        self.key_locks[self.key_stripe(bucket, key)]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Locks several keys at once, stripes in ascending order (so two such callers never wait
    /// for each other in a circle).
    fn lock_keys(&self, bucket: &str, keys: &[Vec<u8>]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys.iter().map(|k| self.key_stripe(bucket, k)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        stripes
            .into_iter()
            .map(|s| self.key_locks[s].lock().unwrap_or_else(|p| p.into_inner()))
            .collect()
    }

    fn bucket_stripe(&self, bucket: &str) -> &RwLock<()> {
        &self.bucket_locks[(fnv1a(bucket.as_bytes(), b"") % LOCK_STRIPES as u64) as usize]
    }

    /// Held while writing a bucket's content: the bucket cannot be deleted meanwhile.
    fn bucket_content(&self, bucket: &str) -> RwLockReadGuard<'_, ()> {
        self.bucket_stripe(bucket).read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held while creating, deleting or changing a bucket: no content write is in progress.
    fn bucket_itself(&self, bucket: &str) -> RwLockWriteGuard<'_, ()> {
        self.bucket_stripe(bucket).write().unwrap_or_else(|p| p.into_inner())
    }

    // ---- reads ----

    pub fn get_bucket(&self, name: &str) -> Result<Option<BucketRecord>, MetaError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name))? {
            Some(v) => Ok(Some(BucketRecord::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// A bucket sub-resource, if set.
    pub fn get_bucket_config<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        kind: BucketConfigKind,
    ) -> Result<Option<T>, MetaError> {
        self.get(keys::CF_BUCKET_CONFIG, &keys::bucket_config(bucket, kind.key()))
    }

    /// Sets or (`None`) removes a bucket sub-resource; fails if the bucket does not exist.
    pub fn put_bucket_config<T: serde::Serialize>(
        &self,
        bucket: &str,
        kind: BucketConfigKind,
        value: Option<&T>,
    ) -> Result<(), MetaError> {
        self.apply(MetaCommand::PutBucketConfig {
            bucket: bucket.into(),
            kind,
            value: value.map(records::encode),
        })
        .map(drop)
    }

    pub fn list_buckets(&self) -> Result<Vec<(String, BucketRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_BUCKETS), IteratorMode::Start) {
            let (k, v) = item?;
            out.push((String::from_utf8_lossy(&k).into_owned(), BucketRecord::decode(&v)?));
        }
        Ok(out)
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

    pub fn get_object(&self, bucket: &str, key: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        self.get_object_at(keys::CF_OBJECTS, &keys::object(bucket, key))
    }

    /// The current version of an object with a lease on its parts: until the lease is
    /// dropped, the GC does not remove their shards even if the object is replaced or deleted.
    /// Taken under the key lock, so a version is leased before it can be queued for GC.
    pub fn open_object(&self, bucket: &str, key: &[u8]) -> Result<Option<(ObjectRecord, ReadLease)>, MetaError> {
        let _g = self.lock_key(bucket, key);
        let Some(rec) = self.get_object(bucket, key)? else {
            return Ok(None);
        };
        let lease = self.leases.take(rec.parts.iter().map(|p| p.version).collect());
        Ok(Some((rec, lease)))
    }

    /// Whether a reader holds a lease on any of these versions.
    pub fn leased(&self, versions: &[VersionId]) -> bool {
        self.leases.any(versions)
    }

    /// Where a part's shards are (`None` also for a part inlined in its metadata).
    pub fn get_layout(&self, v: &VersionId) -> Result<Option<LayoutRecord>, MetaError> {
        Ok(match self.get_part_data(v)? {
            Some(PartData::Shards(l)) => Some(l),
            _ => None,
        })
    }

    /// The object whose part `v` is (written with its layout; `None` for a part written
    /// before layouts named their owner, or gone).
    pub fn layout_owner(&self, v: &VersionId) -> Result<Option<crate::records::LayoutOwner>, MetaError> {
        Ok(self
            .db
            .get_pinned_cf(self.cf(keys::CF_LAYOUTS), keys::version(v))?
            .and_then(|b| crate::records::LayoutOwner::of_value(&b)))
    }

    /// A part's layout, or its inlined data.
    pub fn get_part_data(&self, v: &VersionId) -> Result<Option<PartData>, MetaError> {
        match self.db.get_pinned_cf(self.cf(keys::CF_LAYOUTS), keys::version(v))? {
            Some(b) => Ok(Some(PartData::decode(&b)?)),
            None => Ok(None),
        }
    }

    pub fn get_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16]) -> Result<Option<UploadRecord>, MetaError> {
        self.get(keys::CF_UPLOADS, &keys::upload(bucket, key, id))
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

    /// GC entries queued at or before `cutoff_ms`, oldest first: (raw key, record).
    pub fn gc_batch(&self, cutoff_ms: u64, limit: usize) -> Result<Vec<(Vec<u8>, GcRecord)>, MetaError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(keys::CF_GC), IteratorMode::Start) {
            let (k, v) = item?;
            if out.len() == limit || keys::gc_time(&k).is_none_or(|t| t > cutoff_ms) {
                break;
            }
            out.push((k.to_vec(), decode(&v)?));
        }
        Ok(out)
    }

    /// Objects with degraded parts, the closest to loss first (`repair_queue`), after `after`
    /// (a key of this listing) if given, at most `limit`.
    pub fn to_heal(&self, after: Option<&[u8]>, limit: usize) -> Result<Vec<HealEntry>, MetaError> {
        let mut out = Vec::new();
        let mode = match after {
            Some(a) => IteratorMode::From(a, rocksdb::Direction::Forward),
            None => IteratorMode::Start,
        };
        // In risk order: `margin ∥ objects key`, the keys closest to loss first.
        for item in self.db.iterator_cf(self.cf(keys::CF_REPAIR), mode) {
            let (k, _) = item?;
            if after.is_some_and(|a| *a == *k) {
                continue;
            }
            if out.len() == limit {
                break;
            }
            let okey = k.get(1..).unwrap_or_default();
            let zero = okey
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("repair key".into()))?;
            out.push((
                String::from_utf8_lossy(&okey[..zero]).into_owned(),
                okey[zero + 1..].to_vec(),
                k.to_vec(),
            ));
        }
        Ok(out)
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

    // ---- mutations: thin wrappers that build a command and apply it ----

    pub fn create_bucket(&self, name: &str, rec: &BucketRecord) -> Result<(), MetaError> {
        self.apply(MetaCommand::CreateBucket {
            name: name.into(),
            record: rec.clone(),
        })
        .map(drop)
    }

    pub fn delete_bucket(&self, name: &str) -> Result<(), MetaError> {
        self.apply(MetaCommand::DeleteBucket { name: name.into() }).map(drop)
    }

    /// Replaces a bucket's record (its residency policy); new writes follow it.
    pub fn update_bucket(&self, name: &str, rec: &BucketRecord) -> Result<(), MetaError> {
        self.apply(MetaCommand::UpdateBucket {
            name: name.into(),
            record: rec.clone(),
        })
        .map(drop)
    }

    pub fn put_node(&self, address: &str, rec: &NodeRecord) -> Result<(), MetaError> {
        self.apply(MetaCommand::PutNode {
            address: address.into(),
            record: rec.clone(),
        })
        .map(drop)
    }

    pub fn delete_node(&self, address: &str) -> Result<(), MetaError> {
        self.apply(MetaCommand::DeleteNode {
            address: address.into(),
        })
        .map(drop)
    }

    /// Records, durably, that shards of `v` are about to be written.
    pub fn begin_write(&self, v: &VersionId, nodes: &[String]) -> Result<(), MetaError> {
        self.apply(MetaCommand::BeginWrite {
            version: *v,
            nodes: nodes.to_vec(),
            now_ms: coffre_types::now_millis(),
        })
        .map(drop)
    }

    /// Abandons a write that will not commit: its intent becomes a GC entry. `stripes`: how
    /// many were written, if known.
    pub fn abort_write(&self, v: &VersionId, nodes: &[String], stripes: Option<u32>) -> Result<(), MetaError> {
        self.apply(MetaCommand::AbortWrite {
            version: *v,
            nodes: nodes.to_vec(),
            stripes,
            now_ms: coffre_types::now_millis(),
        })
        .map(drop)
    }

    /// Makes a written version visible (see `MetaCommand::CommitObject`).
    pub fn commit_object(
        &self,
        bucket: &str,
        key: &[u8],
        rec: &ObjectRecord,
        layouts: &[(VersionId, LayoutRecord)],
    ) -> Result<(), MetaError> {
        self.apply(MetaCommand::CommitObject(crate::CommitObject {
            bucket: bucket.into(),
            key: key.to_vec(),
            record: rec.clone(),
            layouts: layouts.to_vec(),
            condition: WriteCondition::default(),
            now_ms: coffre_types::now_millis(),
        }))
        .map(drop)
    }

    /// Deletes an object; returns whether it existed.
    pub fn delete_object(&self, bucket: &str, key: &[u8]) -> Result<bool, MetaError> {
        match self.apply(MetaCommand::DeleteObjects {
            bucket: bucket.into(),
            keys: vec![key.to_vec()],
            now_ms: coffre_types::now_millis(),
        })? {
            Outcome::Deleted(d) => Ok(d.first().copied().unwrap_or(false)),
            _ => Ok(false),
        }
    }

    pub fn create_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16], rec: &UploadRecord) -> Result<(), MetaError> {
        self.apply(MetaCommand::CreateUpload {
            bucket: bucket.into(),
            key: key.to_vec(),
            id: *id,
            record: rec.clone(),
        })
        .map(drop)
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
        self.apply(MetaCommand::CommitPart(crate::CommitPart {
            bucket: bucket.into(),
            key: key.to_vec(),
            id: *id,
            number,
            part: part.clone(),
            layout: layout.clone(),
            now_ms: coffre_types::now_millis(),
        }))
        .map(drop)
    }

    /// Completes an upload whose parts `numbers` are `rec.parts` (see
    /// `MetaCommand::CompleteUpload`).
    pub fn complete_upload(
        &self,
        bucket: &str,
        key: &[u8],
        id: &[u8; 16],
        numbers: &[u32],
        rec: &ObjectRecord,
    ) -> Result<(), MetaError> {
        self.apply(MetaCommand::CompleteUpload(crate::CompleteUpload {
            bucket: bucket.into(),
            key: key.to_vec(),
            id: *id,
            numbers: numbers.to_vec(),
            record: rec.clone(),
            condition: WriteCondition::default(),
            now_ms: coffre_types::now_millis(),
        }))
        .map(drop)
    }

    /// Aborts an upload: its parts go to GC. Returns false if there was none in progress.
    pub fn abort_upload(&self, bucket: &str, key: &[u8], id: &[u8; 16]) -> Result<bool, MetaError> {
        match self.apply(MetaCommand::AbortUpload {
            bucket: bucket.into(),
            key: key.to_vec(),
            id: *id,
            now_ms: coffre_types::now_millis(),
        })? {
            Outcome::Done(b) => Ok(b),
            _ => Ok(false),
        }
    }

    /// Records that a GC entry's shards are gone: the entry and its parts' layouts go.
    pub fn gc_done(&self, raw_key: &[u8], gc: &GcRecord) -> Result<(), MetaError> {
        self.apply(MetaCommand::GcDone {
            raw_key: raw_key.to_vec(),
            versions: gc.parts.iter().map(|p| p.version).collect(),
        })
        .map(drop)
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
mod node_parts_tests;
#[cfg(test)]
mod tests;
