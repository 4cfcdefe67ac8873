//! Identities (tenants, users, access keys, roles) and usage counters.
//!
//! Identity mutations are `IamCommand`s, applied by the state machine under one lock (they
//! are rare); each re-reads and re-checks what it relies on inside it. Bucket creation takes
//! the same lock, so a tenant cannot be deleted while a bucket is being created for it.
//!
//! Usage (bytes and objects, per bucket and per tenant) is summed by a RocksDB merge
//! operator: commits add their deltas in their own batch without reading, and only commits
//! under a quota read the counters, inside the tenant's quota lock.

use crate::commands::Outcome;
use crate::records::{decode, encode};
use crate::{keys, AccessKeyRecord, MetaError, MetaStore, OidcConfig, Quota, RoleRecord, TenantRecord, UserRecord};
use rocksdb::{Direction, IteratorMode, MergeOperands, WriteBatch};
use serde::{Deserialize, Serialize};

/// A tenant with its admin user and the admin's first access key, created all or nothing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewTenant {
    pub name: String,
    pub record: TenantRecord,
    pub admin_user: String,
    pub admin: UserRecord,
    pub access_key: String,
    pub key: AccessKeyRecord,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum IamCommand {
    CreateTenant(Box<NewTenant>),
    SetTenantQuota {
        name: String,
        quota: Quota,
    },
    SetTenantOidc {
        name: String,
        oidc: Option<OidcConfig>,
    },
    /// Replaces a tenant's wrapped key with the same key wrapped by another master key version
    /// (an online rotation), only if it is still `from`: a tenant whose key changed meanwhile
    /// is left alone (`PreconditionFailed`).
    RewrapTenantKey {
        name: String,
        from: Vec<u8>,
        to: Vec<u8>,
    },
    /// Removes a tenant: its key-encryption key (so everything it wrapped is unreadable), its
    /// users, keys and roles. Fails while it owns a bucket.
    DeleteTenant {
        name: String,
    },
    CreateUser {
        tenant: String,
        name: String,
        record: UserRecord,
    },
    /// Fails while the user has access keys, unless `with_keys`; the admin user stays.
    DeleteUser {
        tenant: String,
        name: String,
        with_keys: bool,
    },
    /// Sets (or, with `None`, removes) an inline policy of a user.
    PutUserPolicy {
        tenant: String,
        user: String,
        name: String,
        document: Option<String>,
    },
    CreateAccessKey {
        id: String,
        record: AccessKeyRecord,
    },
    /// Enables or disables a key of the tenant's.
    SetAccessKeyEnabled {
        tenant: String,
        id: String,
        enabled: bool,
    },
    /// Replaces a key's sealed secret (the root key given again at start-up).
    SetAccessKeySecret {
        tenant: String,
        id: String,
        secret: Vec<u8>,
    },
    DeleteAccessKey {
        tenant: String,
        id: String,
    },
    /// Creates or replaces a role.
    PutRole {
        tenant: String,
        name: String,
        record: RoleRecord,
    },
    DeleteRole {
        tenant: String,
        name: String,
    },
    /// Creates a tenant's KMS key (SSE-KMS); its name is unique among the tenant's keys
    /// that are not deleted.
    CreateKmsKey {
        tenant: String,
        id: String,
        record: crate::KmsKeyRecord,
    },
    /// Changes a tenant's KMS key: its state, a new version of its material, its shredding
    /// (`kms.rs` says which changes each state allows; checked here, under the lock).
    ChangeKmsKey {
        tenant: String,
        id: String,
        change: crate::KmsChange,
    },
}

/// What a bucket or a tenant holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub bytes: u64,
    pub objects: u64,
}

impl Usage {
    fn of(raw: Option<&[u8]>) -> Usage {
        let (b, o) = raw.map(keys::usage_of).unwrap_or((0, 0));
        Usage {
            bytes: b.max(0) as u64,
            objects: o.max(0) as u64,
        }
    }
}

/// The merge operator of `usage`: sums (bytes, objects) deltas. Associative, so RocksDB may
/// combine operands in any grouping.
pub(crate) fn sum_usage(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let (mut b, mut o) = existing.map(keys::usage_of).unwrap_or((0, 0));
    for op in operands {
        let (db, dob) = keys::usage_of(op);
        b = b.saturating_add(db);
        o = o.saturating_add(dob);
    }
    Some(keys::usage_value(b, o).to_vec())
}

fn entity(kind: &str, name: &str) -> String {
    format!("{kind} '{name}'")
}

impl MetaStore {
    // ---- reads ----

    pub fn get_tenant(&self, name: &str) -> Result<Option<TenantRecord>, MetaError> {
        self.get(keys::CF_IAM, &keys::tenant(name))
    }

    pub fn list_tenants(&self) -> Result<Vec<(String, TenantRecord)>, MetaError> {
        let (lo, hi) = keys::tenants_range();
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_IAM), IteratorMode::From(&lo, Direction::Forward))
        {
            let (k, v) = item?;
            if *k >= *hi {
                break;
            }
            let name = keys::tenant_name_of(&k).unwrap_or_default();
            out.push((String::from_utf8_lossy(name).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    pub fn get_user(&self, tenant: &str, name: &str) -> Result<Option<UserRecord>, MetaError> {
        self.get(keys::CF_IAM, &keys::user(tenant, name))
    }

    /// A tenant's users, by name.
    pub fn list_users(&self, tenant: &str) -> Result<Vec<(String, UserRecord)>, MetaError> {
        self.scan_iam(&keys::users_of(tenant))
    }

    pub fn get_role(&self, tenant: &str, name: &str) -> Result<Option<RoleRecord>, MetaError> {
        self.get(keys::CF_IAM, &keys::role(tenant, name))
    }

    pub fn list_roles(&self, tenant: &str) -> Result<Vec<(String, RoleRecord)>, MetaError> {
        self.scan_iam(&keys::roles_of(tenant))
    }

    pub fn get_access_key(&self, id: &str) -> Result<Option<AccessKeyRecord>, MetaError> {
        self.get(keys::CF_IAM, &keys::access_key(id))
    }

    /// The access keys of a user (or of every user of the tenant): (id, record).
    pub fn list_access_keys(
        &self,
        tenant: &str,
        user: Option<&str>,
    ) -> Result<Vec<(String, AccessKeyRecord)>, MetaError> {
        let prefix = keys::user_keys_of(tenant, user);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_IAM), IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, _) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            let id = String::from_utf8_lossy(keys::last_field(&k)).into_owned();
            if let Some(rec) = self.get_access_key(&id)? {
                out.push((id, rec));
            }
        }
        Ok(out)
    }

    /// Records under an `iam` prefix, named by their key's last field.
    fn scan_iam<T: serde::de::DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<(String, T)>, MetaError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_IAM), IteratorMode::From(prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((String::from_utf8_lossy(keys::last_field(&k)).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    /// The buckets a tenant owns, by name.
    pub fn buckets_of(&self, tenant: &str) -> Result<Vec<(String, crate::BucketRecord)>, MetaError> {
        Ok(self
            .list_buckets()?
            .into_iter()
            .filter(|(_, b)| b.tenant == tenant)
            .collect())
    }

    pub fn bucket_usage(&self, bucket: &str) -> Result<Usage, MetaError> {
        Ok(Usage::of(
            self.db
                .get_pinned_cf(self.cf(keys::CF_USAGE), keys::usage_bucket(bucket))?
                .as_deref(),
        ))
    }

    pub fn tenant_usage(&self, tenant: &str) -> Result<Usage, MetaError> {
        Ok(Usage::of(
            self.db
                .get_pinned_cf(self.cf(keys::CF_USAGE), keys::usage_tenant(tenant))?
                .as_deref(),
        ))
    }

    // ---- usage and quotas, inside content commits ----

    /// Adds a content change of `bucket` (owned by `tenant`) to a batch. When the bucket or the
    /// tenant has a quota and the change grows what they hold, checks it first and returns the
    /// quota lock to hold until the batch is written.
    /// Adds to a bucket's and its tenant's usage, with no quota check (what removes data, or
    /// a delete marker, is never refused for a quota).
    pub(crate) fn add_usage(&self, b: &mut WriteBatch, tenant: &str, bucket: &str, bytes: i64, objects: i64) {
        if bytes != 0 || objects != 0 {
            let delta = keys::usage_value(bytes, objects);
            b.merge_cf(self.cf(keys::CF_USAGE), keys::usage_bucket(bucket), delta);
            b.merge_cf(self.cf(keys::CF_USAGE), keys::usage_tenant(tenant), delta);
        }
    }

    pub(crate) fn account(
        &self,
        b: &mut WriteBatch,
        tenant: &str,
        bucket: &str,
        bytes: i64,
        objects: i64,
    ) -> Result<Option<std::sync::MutexGuard<'_, ()>>, MetaError> {
        let mut guard = None;
        if bytes > 0 || objects > 0 {
            let tenant_quota = self.get_tenant(tenant)?.map(|t| t.quota).unwrap_or_default();
            let bucket_quota: Quota = self
                .get_bucket_config(bucket, crate::BucketConfigKind::Quota)?
                .unwrap_or_default();
            if !tenant_quota.is_unlimited() || !bucket_quota.is_unlimited() {
                let stripe = (crate::fnv1a(tenant.as_bytes(), b"") % self.quota_locks.len() as u64) as usize;
                guard = Some(self.quota_locks[stripe].lock().unwrap_or_else(|p| p.into_inner()));
                check_quota(
                    "bucket",
                    bucket,
                    &bucket_quota,
                    self.bucket_usage(bucket)?,
                    bytes,
                    objects,
                )?;
                check_quota(
                    "tenant",
                    tenant,
                    &tenant_quota,
                    self.tenant_usage(tenant)?,
                    bytes,
                    objects,
                )?;
            }
        }
        self.add_usage(b, tenant, bucket, bytes, objects);
        Ok(guard)
    }

    /// Counts every object once, for a store written before usage was counted.
    pub(crate) fn count_usage(&self) -> Result<(), MetaError> {
        let mut per_bucket: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
        for item in self.db.iterator_cf(self.cf(keys::CF_OBJECTS), IteratorMode::Start) {
            let (k, v) = item?;
            let Some(zero) = k.iter().position(|c| *c == 0) else {
                continue;
            };
            let rec = crate::ObjectRecord::decode(&v)?;
            let e = per_bucket
                .entry(String::from_utf8_lossy(&k[..zero]).into_owned())
                .or_default();
            e.0 = e.0.saturating_add(rec.size as i64);
            e.1 += 1;
        }
        let mut b = WriteBatch::default();
        for (bucket, (bytes, objects)) in per_bucket {
            let tenant = self.get_bucket(&bucket)?.map(|r| r.tenant).unwrap_or_default();
            let v = keys::usage_value(bytes, objects);
            b.merge_cf(self.cf(keys::CF_USAGE), keys::usage_bucket(&bucket), v);
            b.merge_cf(self.cf(keys::CF_USAGE), keys::usage_tenant(&tenant), v);
        }
        self.write(b)
    }

    // ---- mutations ----

    pub(crate) fn apply_iam(&self, cmd: IamCommand, stamp: crate::commands::Stamp<'_>) -> Result<Outcome, MetaError> {
        use IamCommand as C;
        let _g = self.iam_lock.lock().unwrap_or_else(|p| p.into_inner());
        let iam = self.cf(keys::CF_IAM);
        let mut b = self.batch(stamp);
        let outcome = match cmd {
            C::CreateTenant(t) => {
                let NewTenant {
                    name,
                    record,
                    admin_user,
                    admin,
                    access_key,
                    key,
                } = *t;
                if self.get_tenant(&name)?.is_some() {
                    return Err(MetaError::EntityExists(entity("tenant", &name)));
                }
                if self.get_access_key(&access_key)?.is_some() {
                    return Err(MetaError::EntityExists(entity("access key", &access_key)));
                }
                b.put_cf(iam, keys::tenant(&name), encode(&record));
                b.put_cf(iam, keys::user(&name, &admin_user), encode(&admin));
                b.put_cf(iam, keys::access_key(&access_key), encode(&key));
                b.put_cf(iam, keys::user_key(&name, &admin_user, &access_key), []);
                Outcome::Unit
            }
            C::SetTenantQuota { name, quota } => {
                let mut t = self.require_tenant(&name)?;
                t.quota = quota;
                b.put_cf(iam, keys::tenant(&name), encode(&t));
                Outcome::Unit
            }
            C::SetTenantOidc { name, oidc } => {
                let mut t = self.require_tenant(&name)?;
                t.oidc = oidc;
                b.put_cf(iam, keys::tenant(&name), encode(&t));
                Outcome::Unit
            }
            C::RewrapTenantKey { name, from, to } => {
                let mut t = self.require_tenant(&name)?;
                if t.kek != from {
                    return Err(MetaError::PreconditionFailed { exists: true });
                }
                t.kek = to;
                b.put_cf(iam, keys::tenant(&name), encode(&t));
                Outcome::Unit
            }
            C::DeleteTenant { name } => {
                self.require_tenant(&name)?;
                let owned = self.buckets_of(&name)?;
                if !owned.is_empty() {
                    let names: Vec<&str> = owned.iter().map(|(n, _)| n.as_str()).take(5).collect();
                    return Err(MetaError::DeleteConflict(format!(
                        "tenant '{name}' still owns {} bucket(s): {}",
                        owned.len(),
                        names.join(", ")
                    )));
                }
                for (id, _) in self.list_access_keys(&name, None)? {
                    b.delete_cf(iam, keys::access_key(&id));
                }
                for prefix in [
                    keys::user_keys_of(&name, None),
                    keys::users_of(&name),
                    keys::roles_of(&name),
                    keys::kms_keys_of(&name),
                ] {
                    if let Some(end) = keys::prefix_successor(&prefix) {
                        b.delete_range_cf(iam, prefix, end);
                    }
                }
                b.delete_cf(iam, keys::tenant(&name));
                b.delete_cf(self.cf(keys::CF_USAGE), keys::usage_tenant(&name));
                Outcome::Unit
            }
            C::CreateUser { tenant, name, record } => {
                self.require_tenant(&tenant)?;
                if self.get_user(&tenant, &name)?.is_some() {
                    return Err(MetaError::EntityExists(entity("user", &name)));
                }
                b.put_cf(iam, keys::user(&tenant, &name), encode(&record));
                Outcome::Unit
            }
            C::DeleteUser {
                tenant,
                name,
                with_keys,
            } => {
                let user = self.require_user(&tenant, &name)?;
                if user.admin {
                    return Err(MetaError::DeleteConflict(format!(
                        "user '{name}' is the tenant's admin: it goes with the tenant"
                    )));
                }
                let user_keys = self.list_access_keys(&tenant, Some(&name))?;
                if !with_keys && !user_keys.is_empty() {
                    return Err(MetaError::DeleteConflict(format!(
                        "user '{name}' still has {} access key(s): delete them first",
                        user_keys.len()
                    )));
                }
                for (id, _) in user_keys {
                    b.delete_cf(iam, keys::access_key(&id));
                    b.delete_cf(iam, keys::user_key(&tenant, &name, &id));
                }
                b.delete_cf(iam, keys::user(&tenant, &name));
                Outcome::Unit
            }
            C::PutUserPolicy {
                tenant,
                user,
                name,
                document,
            } => {
                let mut rec = self.require_user(&tenant, &user)?;
                let had = rec.policies.iter().any(|(n, _)| *n == name);
                rec.policies.retain(|(n, _)| *n != name);
                match document {
                    Some(d) => rec.policies.push((name, d)),
                    None if !had => return Err(MetaError::NoSuchEntity(entity("policy", &name))),
                    None => {}
                }
                b.put_cf(iam, keys::user(&tenant, &user), encode(&rec));
                Outcome::Unit
            }
            C::CreateAccessKey { id, record } => {
                self.require_user(&record.tenant, &record.user)?;
                if self.get_access_key(&id)?.is_some() {
                    return Err(MetaError::EntityExists(entity("access key", &id)));
                }
                b.put_cf(iam, keys::access_key(&id), encode(&record));
                b.put_cf(iam, keys::user_key(&record.tenant, &record.user, &id), []);
                Outcome::Unit
            }
            C::SetAccessKeyEnabled { tenant, id, enabled } => {
                let mut rec = self.require_key(&tenant, &id)?;
                rec.enabled = enabled;
                b.put_cf(iam, keys::access_key(&id), encode(&rec));
                Outcome::Unit
            }
            C::SetAccessKeySecret { tenant, id, secret } => {
                let mut rec = self.require_key(&tenant, &id)?;
                rec.secret = secret;
                b.put_cf(iam, keys::access_key(&id), encode(&rec));
                Outcome::Unit
            }
            C::DeleteAccessKey { tenant, id } => {
                let rec = self.require_key(&tenant, &id)?;
                b.delete_cf(iam, keys::access_key(&id));
                b.delete_cf(iam, keys::user_key(&tenant, &rec.user, &id));
                Outcome::Unit
            }
            C::PutRole { tenant, name, record } => {
                self.require_tenant(&tenant)?;
                b.put_cf(iam, keys::role(&tenant, &name), encode(&record));
                Outcome::Unit
            }
            C::DeleteRole { tenant, name } => {
                if self.get_role(&tenant, &name)?.is_none() {
                    return Err(MetaError::NoSuchEntity(entity("role", &name)));
                }
                b.delete_cf(iam, keys::role(&tenant, &name));
                Outcome::Unit
            }
            C::CreateKmsKey { tenant, id, record } => {
                self.require_tenant(&tenant)?;
                self.create_kms_key(&mut b, &tenant, &id, &record)?;
                Outcome::Unit
            }
            C::ChangeKmsKey { tenant, id, change } => {
                self.change_kms_key(&mut b, &tenant, &id, change)?;
                Outcome::Unit
            }
        };
        self.write(b)?;
        self.bump_generation();
        Ok(outcome)
    }

    /// Held by bucket creation as well as identity mutations (see the module's comment).
    pub(crate) fn iam_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.iam_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn require_tenant(&self, name: &str) -> Result<TenantRecord, MetaError> {
        self.get_tenant(name)?
            .ok_or_else(|| MetaError::NoSuchEntity(entity("tenant", name)))
    }

    fn require_user(&self, tenant: &str, name: &str) -> Result<UserRecord, MetaError> {
        self.get_user(tenant, name)?
            .ok_or_else(|| MetaError::NoSuchEntity(entity("user", name)))
    }

    /// A key of `tenant`'s: another tenant's key is as absent as a key that does not exist.
    fn require_key(&self, tenant: &str, id: &str) -> Result<AccessKeyRecord, MetaError> {
        match self.get_access_key(id)? {
            Some(k) if k.tenant == tenant => Ok(k),
            _ => Err(MetaError::NoSuchEntity(entity("access key", id))),
        }
    }
}

fn check_quota(kind: &str, name: &str, q: &Quota, now: Usage, bytes: i64, objects: i64) -> Result<(), MetaError> {
    let after = |held: u64, delta: i64| (held as i64).saturating_add(delta).max(0) as u64;
    if let Some(limit) = q.bytes {
        if bytes > 0 && after(now.bytes, bytes) > limit {
            return Err(MetaError::QuotaExceeded(format!(
                "the {kind} '{name}' holds {} bytes; its quota is {limit} bytes",
                now.bytes
            )));
        }
    }
    if let Some(limit) = q.objects {
        if objects > 0 && after(now.objects, objects) > limit {
            return Err(MetaError::QuotaExceeded(format!(
                "the {kind} '{name}' holds {} objects; its quota is {limit} objects",
                now.objects
            )));
        }
    }
    Ok(())
}
