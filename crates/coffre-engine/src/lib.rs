//! The object engine: the one place that joins the data path (shards on nodes) and the
//! metadata (RocksDB). Protocol crates call it to create buckets, put, read and delete
//! objects, run multipart uploads; background tasks call it to collect garbage and heal.
//! It knows nothing of HTTP or S3 XML: its errors are `EngineError`.

mod audit_log;
pub mod audit_notes;
pub mod backup;
pub mod checksum;
mod error;
pub mod evacuate;
mod gc;
mod heal;
mod keys;
pub use keys::KeyStatus;
pub mod kms;
pub use kms::{KmsAction, KmsError, KmsKeyInfo, KmsKeyRef};
pub mod lifecycle;
mod multipart;
mod object;
mod proofs;
pub mod replication;
mod rotate;
pub mod scrub;
mod tenants;
mod topology;
pub mod workers;

pub use audit_log::{reseal_audit_keys, AuditOptions};
pub use audit_notes::AuditScope;
pub use coffre_meta::ADMIN_USER;
pub use coffre_types::new_id;
pub use error::{EngineError, EngineResult};
pub use multipart::{CompleteRequest, CompletedUpload, PartRequest, UploadListing};
pub use object::{BodyInfo, DeleteOutcome, NewObject, ObjectLockRequest, ReadHandle, VerifiedChecksum};
pub use rotate::{migrate_master_key, rotate_master_key, Rotation};
pub use tenants::Erasure;
pub use topology::ClusterNode;

// The record types protocol crates read, so that they depend on the engine only.
pub use coffre_audit as audit;
pub use coffre_crypto::{verify_ed25519, CustomerKey, OperatorKey};
pub use coffre_data::{DataError, ShardStore, StoreStat};
pub use coffre_meta::{replica, MetaError, NodeHoldings};
pub use coffre_meta::{
    AccessKeyRecord, BucketConfigKind, BucketRecord, CorsConfig, CorsRule, EncryptionConfig, IamCommand, KmsAttrs,
    ListEntry, NodeRecord, ObjectRecord, OidcConfig, OwnershipConfig, PartData, PartInfo, Quota, RoleRecord,
    SealedAttrs, TenantRecord, UploadEntry, UploadPartRecord, UploadRecord, Usage, UserRecord, WriteCondition,
    DEFAULT_TENANT,
};
pub use coffre_meta::{
    DefaultRetention, DeleteResult, LifecycleConfig, LifecycleExpiration, LifecycleFilter, LifecycleRule, LockMode,
    NoncurrentExpiration, Retention, VersionChange, VersionEntry, VersionSel, VersionState, VersioningChange,
    VersioningConfig, VersioningStatus,
};

use coffre_cluster::{FailureDomain, Location, ResidencyPolicy};
use coffre_crypto::{DataKey, Keyring, ObjectIdentity, PackageCipher};
use coffre_data::StripeLayout;
use coffre_meta::MetaStore;
use coffre_types::{ShardId, VersionId};
use std::sync::{Arc, RwLock};
use tokio::sync::mpsc;

/// How the engine behaves, beyond its topology.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long a deleted or replaced version's shards stay before the GC removes them.
    /// Readers on this gateway hold leases and are safe whatever this is; the grace is for
    /// readers that resolved the old version elsewhere (another gateway, a retried request).
    pub gc_grace: std::time::Duration,
    /// Request data buffered in the data path, all requests together.
    pub request_buffer_budget: usize,
    /// How long a lifecycle "day" is: 24 h, except in tests (`COFFRE_LIFECYCLE_DAY_SECONDS`).
    pub lifecycle_day: std::time::Duration,
    /// Objects up to this size are inlined in their metadata record instead of being cut
    /// into shards (0: never). Only where the metadata is kept: see `metadata_country`.
    pub inline_max: u64,
    /// The country of the machine that keeps this engine's metadata, when it is one machine
    /// that also holds the shards (the embedded server): an inlined object lives there, so it
    /// is inlined only for buckets whose residency policy allows that country. `None`: never
    /// inline (a cluster's metadata lives on gateways, whose loss the `k+m` promise over
    /// storage nodes does not cover).
    pub metadata_country: Option<String>,
    /// How long an unwrapped tenant key stays in memory before the key provider is asked
    /// again (`[keys] cache_seconds`).
    pub key_cache_ttl: std::time::Duration,
    /// The region ARNs name (a tenant's KMS keys: `arn:aws:kms:REGION:TENANT:key/ID`).
    pub region: String,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            gc_grace: coffre_types::limits::GC_GRACE,
            request_buffer_budget: coffre_types::limits::REQUEST_BUFFER_BUDGET,
            lifecycle_day: std::time::Duration::from_secs(86_400),
            inline_max: 0,
            metadata_country: None,
            key_cache_ttl: coffre_types::limits::KEY_CACHE_TTL,
            region: "fr-par".into(),
        }
    }
}

pub struct Engine {
    meta: Arc<MetaStore>,
    config: EngineConfig,
    budget: coffre_data::MemoryBudget,
    /// The topology; changed at run time by the admin API (add, drain, remove).
    nodes: RwLock<Vec<ClusterNode>>,
    /// Where this gateway is (cluster mode, from its certificate): it sees plaintext, so it
    /// only serves buckets whose policy allows its country.
    pub gateway: Option<Location>,
    keys: Arc<Keyring>,
    damaged: mpsc::UnboundedSender<ShardId>,
    /// When the GC last listed every store (for interrupted writes) without all answering.
    last_listing: std::sync::Mutex<Option<std::time::Instant>>,
    /// Where the last healing pass stopped in the heal queue (entries that cannot heal yet
    /// must not keep the others waiting).
    heal_cursor: std::sync::Mutex<Option<Vec<u8>>>,
    /// Tenants' key-encryption keys, unwrapped.
    tenant_keys: std::sync::Mutex<tenants::TenantKeys>,
    key_rotation: keys::KeyRotation,
    /// Bucket records as requests read them, valid while the metadata generation holds
    /// (every bucket change moves it). Commits never use it: they re-read inside `apply`.
    buckets: std::sync::Mutex<(u64, std::collections::HashMap<String, BucketRecord>)>,
    lifecycle: lifecycle::LifecycleCounters,
    /// This gateway's audit log (set once at start; none in tools and unit tests).
    audit: std::sync::OnceLock<Arc<coffre_audit::AuditLog>>,
    /// Requests whose audit notes may be in the metadata (`audit_notes`).
    notes: Arc<std::sync::Mutex<audit_notes::NoteBook>>,
    /// The background workers of this process (`workers`).
    workers: coffre_types::background::Workers,
    /// Each node's scrub as last seen (`scrub`), for the metrics.
    scrub_seen: std::sync::Mutex<std::collections::BTreeMap<String, coffre_data::ScrubStatus>>,
    /// A rebalance asked (`evacuate`), and where it stands.
    rebalance_asked: std::sync::atomic::AtomicBool,
    rebalance: std::sync::Mutex<evacuate::RebalanceStatus>,
    /// Shards a rebalance moves: (node, part) whose repair must not rebuild them where they
    /// are (a node that is up and has room is otherwise where a degraded shard is rebuilt).
    moving_off: std::sync::Mutex<std::collections::HashSet<(String, coffre_types::VersionId)>>,
    /// The repair's rate (the `repair` worker's knob): bytes of shards rebuilt a second.
    repair_pacer: coffre_types::background::Pacer,
}

/// The audit chain head kept in the metadata store (its local, unreplicated part).
pub struct MetaAuditHead(pub Arc<MetaStore>);

impl coffre_audit::HeadStore for MetaAuditHead {
    fn load(&self) -> Result<Option<(u64, coffre_audit::Hash)>, String> {
        self.0.audit_head().map_err(|e| e.to_string())
    }
    fn record(&self, n: u64, h: &coffre_audit::Hash) -> Result<(), String> {
        self.0.set_audit_head(n, h).map_err(|e| e.to_string())
    }
}

/// What a bucket holds and may hold, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketCapacity {
    pub capacity: u64,
    pub available: u64,
    pub used: u64,
}

impl BucketCapacity {
    /// Under a quota of `quota` bytes of which `counted` are used (the bucket's, or its
    /// tenant's for a tenant quota).
    fn of_quota(quota: u64, used: u64, counted: u64) -> BucketCapacity {
        BucketCapacity {
            capacity: quota,
            available: quota.saturating_sub(counted),
            used,
        }
    }
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
        config: EngineConfig,
    ) -> (Arc<Engine>, mpsc::UnboundedReceiver<ShardId>) {
        let (damaged, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Engine {
                meta,
                budget: coffre_data::MemoryBudget::new(config.request_buffer_budget),
                config,
                nodes: RwLock::new(nodes),
                gateway,
                keys,
                damaged,
                last_listing: std::sync::Mutex::new(None),
                heal_cursor: std::sync::Mutex::new(None),
                tenant_keys: Default::default(),
                key_rotation: Default::default(),
                buckets: Default::default(),
                lifecycle: Default::default(),
                audit: Default::default(),
                notes: Default::default(),
                workers: Default::default(),
                scrub_seen: Default::default(),
                rebalance_asked: Default::default(),
                rebalance: Default::default(),
                moving_off: Default::default(),
                repair_pacer: Default::default(),
            }),
            rx,
        )
    }

    /// Gives the engine its audit log (once, at start).
    pub fn set_audit(&self, log: Arc<coffre_audit::AuditLog>) {
        let _ = self.audit.set(log);
    }

    /// The background workers of this process.
    pub fn workers(&self) -> &coffre_types::background::Workers {
        &self.workers
    }

    /// The audit log, if this process keeps one.
    pub fn audit(&self) -> Option<&Arc<coffre_audit::AuditLog>> {
        self.audit.get()
    }

    /// The entry of an action of the store itself on a bucket's data, filed under the
    /// bucket owner's tenant.
    pub(crate) fn system_event(
        &self,
        op: &str,
        bucket: &str,
        key: &[u8],
        version: Option<String>,
        detail: String,
    ) -> coffre_audit::Event {
        let tenant = self
            .bucket_record(bucket)
            .ok()
            .flatten()
            .map(|b| b.tenant)
            .unwrap_or_default();
        let mut e = coffre_audit::Event::system(op, &tenant, bucket, &String::from_utf8_lossy(key));
        e.version_id = version;
        e.detail = Some(detail).filter(|d| !d.is_empty());
        e
    }

    /// The metadata store, for read-only views (admin placement and audits).
    pub fn meta(&self) -> &MetaStore {
        &self.meta
    }

    /// Writes a sealed backup of the metadata into `path` (0600) while serving; returns the
    /// snapshot's id. See `backup`.
    pub async fn backup_metadata(&self, path: std::path::PathBuf) -> EngineResult<String> {
        let (meta, keys) = (self.meta.clone(), self.keys.clone());
        tokio::task::spawn_blocking(move || {
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| EngineError::Internal(format!("backup file {}: {e}", path.display())))?;
            let mut out = std::io::BufWriter::new(file);
            let id = backup::write_backup(&meta, &keys, &mut out)?;
            let file = out
                .into_inner()
                .map_err(|e| EngineError::Internal(format!("backup: {e}")))?;
            file.sync_all()
                .map_err(|e| EngineError::Internal(format!("backup: {e}")))?;
            Ok(id)
        })
        .await
        .map_err(|e| EngineError::Internal(format!("backup task: {e}")))?
    }

    /// Returns once the metadata seen here includes every write acknowledged anywhere before
    /// the call (at once on a store that is not replicated): a request that starts with it
    /// reads linearizably on any gateway.
    pub async fn barrier(&self) -> EngineResult<()> {
        if !self.meta.is_replica() {
            return Ok(());
        }
        self.meta_call(|m| m.barrier()).await
    }

    /// Runs a metadata call on a blocking thread (RocksDB writes wait for an fsync, which must
    /// not stall the async workers serving other requests); the changes it applies carry the
    /// current request's audit note.
    async fn meta_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MetaStore) -> Result<T, coffre_meta::MetaError> + Send + 'static,
    ) -> EngineResult<T> {
        Ok(self.meta.call(f).await?)
    }

    /// Applies a metadata command on a blocking thread, with the current request's audit note;
    /// the inner result is the command's.
    async fn meta_apply(
        &self,
        cmd: coffre_meta::MetaCommand,
    ) -> EngineResult<Result<coffre_meta::Outcome, coffre_meta::MetaError>> {
        Ok(self.meta.call(move |m| Ok(m.apply(cmd))).await?)
    }

    /// Refuses to handle a bucket's data here if this gateway is outside its policy.
    pub fn check_gateway(&self, countries: &[String]) -> EngineResult<()> {
        match &self.gateway {
            Some(g) if !countries.contains(&g.country) => Err(EngineError::Forbidden(format!(
                "this gateway is in {}, outside the bucket's residency policy (countries {}): use a gateway located there",
                g.country,
                countries.join(",")
            ))),
            _ => Ok(()),
        }
    }

    // ---- buckets ----

    /// A bucket's record, for an operation on its content: also where this gateway's location
    /// is checked against the bucket's residency policy.
    pub fn bucket(&self, name: &str) -> EngineResult<BucketRecord> {
        let rec = self
            .bucket_record(name)?
            .ok_or(EngineError::Meta(MetaError::NoSuchBucket))?;
        self.check_gateway(&rec.countries)?;
        Ok(rec)
    }

    /// A bucket's record, from the cache of them (see `buckets`).
    pub(crate) fn bucket_record(&self, name: &str) -> EngineResult<Option<BucketRecord>> {
        // The generation is read before the record: a record cached under it is never older.
        let generation = self.meta.generation();
        {
            let cache = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
            if cache.0 == generation {
                if let Some(r) = cache.1.get(name) {
                    return Ok(Some(r.clone()));
                }
            }
        }
        let Some(rec) = self.meta.get_bucket(name)? else {
            return Ok(None);
        };
        let mut cache = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != generation {
            *cache = (generation, Default::default());
        }
        if cache.1.len() < 100_000 {
            cache.1.insert(name.to_string(), rec.clone());
        }
        Ok(Some(rec))
    }

    pub async fn create_bucket(&self, name: &str, rec: BucketRecord) -> EngineResult<()> {
        self.check_gateway(&rec.countries)?;
        let name = name.to_string();
        self.meta_call(move |m| m.create_bucket(&name, &rec)).await
    }

    /// Creates a bucket with versioning on from the start (and Object Lock if `object_lock`).
    pub async fn create_versioned_bucket(&self, name: &str, rec: BucketRecord, object_lock: bool) -> EngineResult<()> {
        self.check_gateway(&rec.countries)?;
        let cmd = coffre_meta::MetaCommand::CreateVersionedBucket {
            name: name.to_string(),
            record: rec,
            versioning: coffre_meta::VersioningConfig {
                status: coffre_meta::VersioningStatus::Enabled,
                object_lock,
                default_retention: None,
            },
        };
        self.meta_call(move |m| m.apply(cmd)).await.map(drop)
    }

    /// How much a bucket holds and may still hold (Veeam's SOSAPI `capacity.xml`): its
    /// quota (else its tenant's) when it has one, else the usable space (free space net of
    /// erasure-coding overhead) of the nodes its residency policy allows.
    pub fn bucket_capacity(&self, bucket: &str) -> EngineResult<BucketCapacity> {
        let rec = self.bucket(bucket)?;
        let used = self.meta.bucket_usage(bucket)?.bytes;
        let bucket_quota: Option<coffre_meta::Quota> =
            self.bucket_config(bucket, coffre_meta::BucketConfigKind::Quota)?;
        if let Some(q) = bucket_quota.and_then(|q| q.bytes) {
            return Ok(BucketCapacity::of_quota(q, used, used));
        }
        if let Some(q) = self.meta.get_tenant(&rec.tenant)?.and_then(|t| t.quota.bytes) {
            let tenant_used = self.meta.tenant_usage(&rec.tenant)?.bytes;
            return Ok(BucketCapacity::of_quota(q, used, tenant_used));
        }
        let (k, n) = (rec.scheme.data as u64, rec.scheme.total() as u64);
        let (mut total, mut free) = (0u64, 0u64);
        for node in self.nodes() {
            if node.is_draining() || !rec.countries.contains(&node.location.country) {
                continue;
            }
            if let Some(s) = node.stat() {
                total = total.saturating_add(s.total_bytes);
                free = free.saturating_add(s.free_bytes);
            }
        }
        let usable = |raw: u64| (raw as u128 * k as u128 / n.max(1) as u128) as u64;
        Ok(BucketCapacity {
            capacity: usable(total),
            available: usable(free),
            used,
        })
    }

    /// A bucket's versioning and Object Lock; `None`: never versioned.
    pub fn versioning(&self, bucket: &str) -> EngineResult<Option<coffre_meta::VersioningConfig>> {
        Ok(self.meta.versioning(bucket)?)
    }

    /// Turns versioning on or suspends it, or sets Object Lock.
    pub async fn configure_versioning(&self, bucket: &str, change: coffre_meta::VersioningChange) -> EngineResult<()> {
        let cmd = coffre_meta::MetaCommand::ConfigureVersioning {
            bucket: bucket.to_string(),
            change,
        };
        self.meta_call(move |m| m.apply(cmd)).await.map(drop)
    }

    /// One page of ListObjectVersions (see `MetaStore::list_versions`).
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        key_marker: Option<&str>,
        version_marker: Option<coffre_meta::VersionSel>,
        limit: usize,
    ) -> EngineResult<(Vec<coffre_meta::VersionEntry>, bool)> {
        Ok(self.meta.list_versions(
            bucket,
            prefix.as_bytes(),
            delimiter.map(str::as_bytes),
            key_marker.map(str::as_bytes),
            version_marker,
            limit,
        )?)
    }

    pub async fn delete_bucket(&self, name: &str) -> EngineResult<()> {
        let name = name.to_string();
        self.meta_call(move |m| m.delete_bucket(&name)).await
    }

    /// A bucket sub-resource (CORS rules, default encryption, ownership), if set.
    pub fn bucket_config<T: serde::de::DeserializeOwned>(
        &self,
        bucket: &str,
        kind: coffre_meta::BucketConfigKind,
    ) -> EngineResult<Option<T>> {
        Ok(self.meta.get_bucket_config(bucket, kind)?)
    }

    /// Sets or (`None`) removes a bucket sub-resource.
    pub async fn put_bucket_config<T: serde::Serialize + Send + 'static>(
        &self,
        bucket: &str,
        kind: coffre_meta::BucketConfigKind,
        value: Option<T>,
    ) -> EngineResult<()> {
        let bucket = bucket.to_string();
        self.meta_call(move |m| m.put_bucket_config(&bucket, kind, value.as_ref()))
            .await
    }

    pub fn list_buckets(&self) -> EngineResult<Vec<(String, BucketRecord)>> {
        Ok(self.meta.list_buckets()?)
    }

    /// Replaces a bucket's residency policy (new writes follow it).
    pub async fn update_bucket(&self, name: &str, rec: BucketRecord) -> EngineResult<()> {
        let name = name.to_string();
        self.meta_call(move |m| m.update_bucket(&name, &rec)).await
    }

    /// One page of a listing (see `MetaStore::list`).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &[u8],
        delimiter: Option<&[u8]>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> EngineResult<(Vec<ListEntry>, bool)> {
        Ok(self.meta.list(bucket, prefix, delimiter, after, limit)?)
    }

    // ---- sealed attributes ----

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
        self.keys.seal(&attrs_aad(bucket, key, version), &a.encode())
    }

    pub fn open_attrs(&self, bucket: &str, key: &str, rec: &ObjectRecord) -> EngineResult<SealedAttrs> {
        self.open_attrs_for(bucket, key, &rec.version, &rec.sealed)
    }

    /// Opens attributes sealed for `version` (an object version or an upload id).
    pub fn open_attrs_for(
        &self,
        bucket: &str,
        key: &str,
        version: &VersionId,
        sealed: &[u8],
    ) -> EngineResult<SealedAttrs> {
        let plain = self
            .keys
            .open(&attrs_aad(bucket, key, version), sealed)
            .map_err(|e| EngineError::Corrupt(format!("object attributes unreadable: {e}")))?;
        Ok(SealedAttrs::decode(&plain)?)
    }
}

pub(crate) fn attrs_aad(bucket: &str, key: &str, version: &VersionId) -> Vec<u8> {
    let mut a = Vec::with_capacity(bucket.len() + key.len() + 32);
    a.extend_from_slice(&(bucket.len() as u32).to_be_bytes());
    a.extend_from_slice(bucket.as_bytes());
    a.extend_from_slice(&(key.len() as u32).to_be_bytes());
    a.extend_from_slice(key.as_bytes());
    a.extend_from_slice(&version.0);
    a
}
