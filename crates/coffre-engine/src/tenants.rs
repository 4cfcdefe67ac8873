//! Tenants as the engine sees them: each owns buckets and a key-encryption key (KEK) that
//! wraps the data keys of its objects; erasure empties their buckets and destroys the KEK.
//! (Identities — users, keys, roles — are `coffre-iam`'s.)

use crate::{Engine, EngineError, EngineResult, MetaError};
use coffre_crypto::{DataKey, TenantKey};
use coffre_meta::{IamCommand, MetaCommand, Outcome, Quota, Usage, VersionSel};
use coffre_types::now_millis;
use std::collections::HashMap;
use std::sync::Arc;

/// Unwrapped tenant keys, valid while the metadata generation they were read at holds and
/// for `EngineConfig::key_cache_ttl` at most: a key the provider no longer gives (disabled in
/// the HSM, the HSM away) stops being usable within that time.
#[derive(Default)]
pub(crate) struct TenantKeys {
    generation: u64,
    keys: HashMap<String, (Arc<TenantKey>, std::time::Instant)>,
}

/// What erasing a tenant destroyed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Erasure {
    pub tenant: String,
    /// Id of the destroyed key-encryption key (hex).
    pub kek_id: String,
    pub erased_ms: u64,
    pub buckets: Vec<String>,
    /// Objects (and their bytes) deleted by the erasure, whose data keys the KEK wrapped.
    pub objects: u64,
    pub bytes: u64,
}

/// Objects deleted per batch when a tenant is erased by force.
const ERASE_BATCH: usize = 500;

impl Engine {
    /// Applies an identity command on a blocking thread (what an erasure does to identities).
    async fn iam_apply(&self, cmd: IamCommand) -> EngineResult<()> {
        self.meta_call(move |m| m.apply(MetaCommand::Iam(cmd)).map(drop)).await
    }

    /// A tenant's key-encryption key, unwrapped (cached while the metadata generation holds).
    pub(crate) fn tenant_key(&self, tenant: &str) -> EngineResult<Arc<TenantKey>> {
        let generation = self.meta.generation();
        {
            let cache = self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner());
            if cache.generation == generation {
                if let Some((k, at)) = cache.keys.get(tenant) {
                    if at.elapsed() < self.config.key_cache_ttl {
                        return Ok(k.clone());
                    }
                }
            }
        }
        let rec = self.meta.get_tenant(tenant)?.ok_or_else(|| {
            EngineError::Forbidden(format!(
                "the tenant '{tenant}' and its key no longer exist: its data is unreadable"
            ))
        })?;
        // The provider may be a network call (KMIP, a network HSM) bounded by its deadlines:
        // on a multi-threaded runtime's worker, tokio moves the other tasks off this thread
        // while it waits.
        let unwrap = || self.keys.unwrap_tenant_key(&rec.kek, tenant);
        let unwrapped = match tokio::runtime::Handle::try_current() {
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(unwrap)
            }
            _ => unwrap(),
        };
        let key = Arc::new(unwrapped.map_err(|e| match e {
            coffre_crypto::CryptoError::Unavailable(_) => {
                EngineError::Unavailable(format!("the key of tenant '{tenant}': {e}"))
            }
            e => EngineError::Corrupt(format!("the key of tenant '{tenant}' is unusable: {e}")),
        })?);
        let mut cache = self.tenant_keys.lock().unwrap_or_else(|p| p.into_inner());
        if cache.generation != generation {
            cache.keys.clear();
            cache.generation = generation;
        }
        cache
            .keys
            .insert(tenant.to_string(), (key.clone(), std::time::Instant::now()));
        Ok(key)
    }

    /// The id of a tenant's key-encryption key (hex).
    pub fn tenant_key_id(&self, tenant: &str) -> EngineResult<String> {
        if self.meta.get_tenant(tenant)?.is_none() {
            return Err(EngineError::Meta(MetaError::NoSuchEntity(format!("tenant '{tenant}'"))));
        }
        Ok(self.tenant_key(tenant)?.id_hex())
    }

    /// Wraps a new part's data key with its tenant's key.
    pub(crate) fn wrap_data_key(&self, tenant: &str, dk: &DataKey, context: &[u8]) -> EngineResult<Vec<u8>> {
        Ok(self.tenant_key(tenant)?.wrap(dk, context))
    }

    /// Wraps a new part's data key: under a KMS key (SSE-KMS) or its tenant's key.
    pub(crate) fn wrap_part_key(
        &self,
        tenant: &str,
        dk: &DataKey,
        version: &coffre_types::VersionId,
        kms_key: Option<&str>,
    ) -> EngineResult<Vec<u8>> {
        match kms_key {
            Some(id) => self.kms_wrap(tenant, id, dk, &version.0),
            None => self.wrap_data_key(tenant, dk, &version.0),
        }
    }

    /// Unwraps a part's data key: with the KMS key that wrapped it (SSE-KMS), its tenant's
    /// key, or the master key for parts written before tenants had keys.
    pub(crate) fn unwrap_data_key(&self, tenant: &str, wrapped: &[u8], context: &[u8]) -> EngineResult<DataKey> {
        let unusable = |e: coffre_crypto::CryptoError| EngineError::Corrupt(format!("data key unusable: {e}"));
        if let Some(kms) = crate::kms::parse_kms_wrapped(wrapped) {
            return self.kms_unwrap(tenant, kms, context);
        }
        if self.keys.knows(wrapped) {
            return self.keys.unwrap(wrapped, context).map_err(unusable);
        }
        self.tenant_key(tenant)?.unwrap(wrapped, context).map_err(unusable)
    }

    /// Fails early, before any data is written, if a write of `size` bytes under `key` would
    /// take the bucket or its tenant over quota: what it adds is its size less the object it
    /// replaces, and one object if the key has none. A multipart part (`key == None`) is not
    /// an object yet: only its bytes count. The commit checks again, atomically.
    pub(crate) fn check_quota_early(
        &self,
        tenant: &str,
        bucket: &str,
        key: Option<&str>,
        size: Option<u64>,
    ) -> EngineResult<()> {
        let tq = self.meta.get_tenant(tenant)?.map(|t| t.quota).unwrap_or_default();
        let bq: Quota = self
            .meta
            .get_bucket_config(bucket, coffre_meta::BucketConfigKind::Quota)?
            .unwrap_or_default();
        if tq.is_unlimited() && bq.is_unlimited() {
            return Ok(());
        }
        let (mut grows, mut new_object) = (size.unwrap_or(0), key.is_some());
        if let Some(k) = key {
            if let Some(current) = self.meta.get_object(bucket, k.as_bytes())? {
                grows = grows.saturating_sub(current.size);
                new_object = false;
            }
        }
        let over = |kind: &str, name: &str, q: &Quota, u: Usage| -> EngineResult<()> {
            let bytes = u.bytes.saturating_add(grows);
            if (grows > 0 && q.bytes.is_some_and(|l| bytes > l))
                || (new_object && q.objects.is_some_and(|l| u.objects >= l))
            {
                return Err(EngineError::Meta(MetaError::QuotaExceeded(format!(
                    "the {kind} '{name}' is at its quota ({} bytes, {} objects held; quota {} bytes, {} objects)",
                    u.bytes,
                    u.objects,
                    q.bytes.map_or("unlimited".into(), |b| b.to_string()),
                    q.objects.map_or("unlimited".into(), |o| o.to_string()),
                ))));
            }
            Ok(())
        };
        if !bq.is_unlimited() {
            over("bucket", bucket, &bq, self.meta.bucket_usage(bucket)?)?;
        }
        if !tq.is_unlimited() {
            over("tenant", tenant, &tq, self.meta.tenant_usage(tenant)?)?;
        }
        Ok(())
    }

    /// Erases a tenant: its access keys are disabled first (no new writes), its buckets
    /// emptied (`force`: objects and uploads deleted; otherwise they must be empty) and
    /// deleted, then its key-encryption key destroyed with the tenant. Every data key the
    /// KEK wrapped is then unreadable, by anyone, with any master key.
    pub async fn erase_tenant(&self, tenant: &str, force: bool) -> EngineResult<Erasure> {
        let kek_id = self.tenant_key_id(tenant)?;
        let buckets = self.meta.buckets_of(tenant)?;
        for (b, _) in &buckets {
            if !force {
                let (versions, _) = self.meta.list_versions(b, b"", None, None, None, 1)?;
                let (uploads, _) = self.meta.list_uploads(b, b"", None, 1)?;
                if !versions.is_empty() || !uploads.is_empty() {
                    return Err(EngineError::Meta(MetaError::BucketNotEmpty));
                }
            }
            self.check_no_locked_versions(b)?;
        }
        for (id, _) in self.meta.list_access_keys(tenant, None)? {
            self.iam_apply(IamCommand::SetAccessKeyEnabled {
                tenant: tenant.to_string(),
                id,
                enabled: false,
            })
            .await?;
        }
        let mut erasure = Erasure {
            tenant: tenant.to_string(),
            kek_id,
            erased_ms: 0,
            buckets: vec![],
            objects: 0,
            bytes: 0,
        };
        for (b, _) in buckets {
            // Writers other tenants' grants let in may still be at work: empty it again until
            // the deletion finds it empty (DeleteBucket checks that inside its lock).
            let mut attempts = 0;
            loop {
                self.empty_bucket(&b, &mut erasure).await?;
                match self.delete_bucket(&b).await {
                    Err(EngineError::Meta(MetaError::BucketNotEmpty)) if force && attempts < 5 => attempts += 1,
                    other => break other?,
                }
            }
            erasure.buckets.push(b);
        }
        self.iam_apply(IamCommand::DeleteTenant {
            name: tenant.to_string(),
        })
        .await?;
        self.tenant_keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .remove(tenant);
        // The wrapped key must not outlive the record in a log entry, a snapshot or a
        // table file waiting for compaction, on any replica.
        self.meta_call(|m| m.forget_history())
            .await
            .map_err(|e| EngineError::Unavailable(format!("the tenant and its key are deleted, but {e}")))?;
        erasure.erased_ms = now_millis();
        Ok(erasure)
    }

    /// Deletes every object and upload of a bucket (its tenant is being erased).
    async fn empty_bucket(&self, bucket: &str, erasure: &mut Erasure) -> EngineResult<()> {
        loop {
            let (uploads, _) = self.meta.list_uploads(bucket, b"", None, ERASE_BATCH)?;
            if uploads.is_empty() {
                break;
            }
            for (key, id, _) in uploads {
                self.abort_upload(bucket, &String::from_utf8_lossy(&key), &id).await?;
            }
        }
        // Every version and delete marker, current or not, is removed for good. GOVERNANCE
        // retention gives way to the operator; COMPLIANCE and legal holds do not (checked
        // before anything was deleted, and again here, inside each command).
        loop {
            let (page, _) = self.meta.list_versions(bucket, b"", None, None, None, ERASE_BATCH)?;
            let mut targets = Vec::new();
            for e in &page {
                if let coffre_meta::VersionEntry::Version { key, record, .. } = e {
                    erasure.objects += u64::from(!record.is_delete_marker());
                    erasure.bytes = erasure.bytes.saturating_add(record.size);
                    targets.push(coffre_meta::DeleteTarget {
                        key: key.clone(),
                        version: VersionSel::parse(&record.version_id()),
                        marker_tag: coffre_types::VersionId::random(),
                        guard: coffre_meta::DeleteGuard::None,
                    });
                }
            }
            if targets.is_empty() {
                return Ok(());
            }
            // A key appears once per command: its versions go one round each.
            for targets in crate::object::distinct_key_rounds(targets, |t| &t.key) {
                let cmd = MetaCommand::DeleteVersions {
                    bucket: bucket.to_string(),
                    targets,
                    bypass_governance: true,
                    now_ms: now_millis(),
                };
                match self.meta_call(move |m| m.apply(cmd)).await? {
                    Outcome::DeleteResults(results) => {
                        if let Some(why) = results.into_iter().find_map(|r| r.refused) {
                            return Err(EngineError::Meta(MetaError::Locked(format!(
                                "bucket '{bucket}' holds a protected version: {why}"
                            ))));
                        }
                    }
                    other => return Err(EngineError::Internal(format!("DeleteVersions answered {other:?}"))),
                }
            }
        }
    }

    /// Refuses an erasure that would destroy versions under COMPLIANCE retention or a legal
    /// hold: Object Lock binds the operator too.
    fn check_no_locked_versions(&self, bucket: &str) -> EngineResult<()> {
        let now = now_millis();
        for item in self.meta.scan_versions(bucket) {
            let (key, rec) = item?;
            if let Some(why) = rec.version_state.protection(now, true) {
                return Err(EngineError::Meta(MetaError::Locked(format!(
                    "'{bucket}/{}' version {}: {why}",
                    String::from_utf8_lossy(&key),
                    rec.version_id()
                ))));
            }
        }
        Ok(())
    }
}
