//! The identity service: resolves access keys and session tokens to callers, authorizes
//! requests, and manages tenants, users, keys, policies and roles.
//!
//! What authorization reads (keys, users' policies, bucket owners and policies, roles) is
//! cached, parsed, and dropped whenever the metadata generation moves (any identity, bucket
//! or bucket-configuration change), so a revoked key or a new policy applies to the next
//! request.

use crate::error::{IamError, IamResult};
use crate::jwt::{self, Jwks, TokenError};
use crate::pattern::Pattern;
use crate::policy::{Decision, Policy, PolicyKind, Request};
use crate::principal::{role_arn, valid_tenant_name, valid_user_name, Principal};
use crate::sts::{self, Session};
use crate::Context;
use coffre_engine::{
    AccessKeyRecord, BucketConfigKind, Engine, EngineError, IamCommand, OidcConfig, Quota, RoleRecord, Usage,
    UserRecord,
};
use coffre_types::now_millis;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A caller and the identity policies that apply to it, parsed.
#[derive(Debug)]
pub struct Caller {
    pub principal: Principal,
    policies: Vec<Policy>,
}

impl Caller {
    pub fn anonymous() -> Arc<Caller> {
        Arc::new(Caller {
            principal: Principal::Anonymous,
            policies: vec![],
        })
    }

    /// The request context's keys that describe the caller, and the time: those `wants`
    /// (lower-case names).
    pub fn context(&self, wants: &dyn Fn(&str) -> bool) -> Context {
        let mut ctx = Context::default();
        let p = &self.principal;
        if let Some(u) = p.username().filter(|_| wants("aws:username")) {
            ctx.set("aws:username", u);
        }
        if let Some(id) = p.userid().filter(|_| wants("aws:userid")) {
            ctx.set("aws:userid", id);
        }
        if let Some(t) = p.tenant() {
            if wants("aws:principalaccount") {
                ctx.set("aws:PrincipalAccount", t);
            }
            if wants("aws:principalarn") {
                ctx.set("aws:PrincipalArn", p.arn());
            }
        }
        if wants("aws:principaltype") {
            ctx.set("aws:PrincipalType", p.kind());
        }
        let now = now_millis();
        if wants("aws:currenttime") {
            ctx.set("aws:CurrentTime", coffre_types::time::iso8601(now));
        }
        if wants("aws:epochtime") {
            ctx.set("aws:EpochTime", (now / 1000).to_string());
        }
        ctx
    }
}

/// Where a request's context comes from: the protocol knows the request, the policies know
/// which keys (lower-case names) they read; only those are built.
pub trait ContextSource {
    fn context(&self, wants: &dyn Fn(&str) -> bool) -> Context;
}

/// What a request acts on, for authorization.
#[derive(Clone, Copy, Debug)]
pub enum Target<'a> {
    /// The service itself (ListBuckets): the caller's own tenant.
    Service,
    /// A bucket to create: the caller's identity decides.
    NewBucket(&'a str),
    Bucket(&'a str),
    Object(&'a str, &'a str),
    /// An identity resource of the caller's tenant (`arn:aws:iam::T:user/U`).
    Iam(&'a str),
}

struct KeyEntry {
    secret: String,
    caller: Arc<Caller>,
    expires_ms: Option<u64>,
}

struct BucketEntry {
    owner: String,
    policy: Option<Policy>,
    /// The bucket's canned ACL, as the policy it amounts to.
    acl: Option<Policy>,
}

struct RoleEntry {
    record: RoleRecord,
    policy: Option<Policy>,
}

#[derive(Default)]
struct Cache {
    generation: u64,
    keys: HashMap<String, Arc<KeyEntry>>,
    buckets: HashMap<String, Arc<BucketEntry>>,
    roles: HashMap<(String, String), Arc<RoleEntry>>,
}

/// Entries a cache keeps before it starts over (it only ever holds what exists).
const MAX_CACHED: usize = 100_000;
/// How long fetched JWKS documents are kept.
const JWKS_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// What `ensure_root` found or did with the root key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RootKey {
    Unchanged,
    /// Created (with its tenant on the first start).
    Created,
    /// Its secret was replaced by the one given at start-up.
    SecretChanged,
    /// An operator disabled it: it stays so (its secret is kept up to date).
    Disabled,
}

/// A tenant as the admin API shows it.
#[derive(Debug, serde::Serialize)]
pub struct TenantInfo {
    pub tenant: String,
    pub created_ms: u64,
    pub kek_id: String,
    pub quota_bytes: Option<u64>,
    pub quota_objects: Option<u64>,
    pub usage: Usage,
    pub buckets: Vec<String>,
    pub users: Vec<String>,
    pub oidc_issuer: Option<String>,
}

/// An access key as listed (never its secret).
#[derive(Debug, serde::Serialize)]
pub struct KeyInfo {
    pub access_key: String,
    pub user: String,
    pub enabled: bool,
    pub created_ms: u64,
    pub expires_ms: Option<u64>,
}

pub struct Iam {
    engine: Arc<Engine>,
    cache: Mutex<Cache>,
    jwks: tokio::sync::Mutex<HashMap<String, (std::time::Instant, Arc<Jwks>)>>,
}

/// A fresh access key id (`CF` + 18 hex digits) or secret (40 hex digits).
fn new_access_key(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode_upper(coffre_types::random_bytes::<9>()))
}

fn new_secret() -> String {
    hex::encode(coffre_types::random_bytes::<20>())
}

fn denied() -> IamError {
    IamError::AccessDenied("Access Denied".into())
}

fn check_user_name(n: &str) -> IamResult<()> {
    if valid_user_name(n) {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "'{n}' is not a valid name: 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"
        )))
    }
}

impl Iam {
    pub fn new(engine: Arc<Engine>) -> Arc<Iam> {
        Arc::new(Iam {
            engine,
            cache: Mutex::new(Cache::default()),
            jwks: Default::default(),
        })
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The cache, emptied first if the metadata moved since it was filled. `generation` must
    /// be read before the records the caller is about to cache.
    fn cache_at(&self, generation: u64) -> std::sync::MutexGuard<'_, Cache> {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if c.generation != generation {
            *c = Cache {
                generation,
                ..Cache::default()
            };
        }
        c
    }

    // ---- authentication ----

    /// The secret of an access key and who it is, for a signed request; with a session
    /// token, the session it carries (which must be this key's and unexpired).
    pub fn resolve(&self, access_key: &str, token: Option<&str>) -> IamResult<(String, Arc<Caller>)> {
        match token {
            Some(t) => self.resolve_session(access_key, t),
            None => {
                let e = self.key_entry(access_key)?;
                if e.expires_ms.is_some_and(|x| x <= now_millis()) {
                    return Err(IamError::InvalidAccessKeyId(format!(
                        "The access key {access_key} has expired"
                    )));
                }
                Ok((e.secret.clone(), e.caller.clone()))
            }
        }
    }

    fn key_entry(&self, access_key: &str) -> IamResult<Arc<KeyEntry>> {
        let generation = self.engine.meta().generation();
        if let Some(e) = self.cache_at(generation).keys.get(access_key) {
            return Ok(e.clone());
        }
        let unknown =
            || IamError::InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.".into());
        let meta = self.engine.meta();
        let rec = meta
            .get_access_key(access_key)
            .map_err(EngineError::from)?
            .ok_or_else(unknown)?;
        if !rec.enabled {
            return Err(unknown());
        }
        let user = meta
            .get_user(&rec.tenant, &rec.user)
            .map_err(EngineError::from)?
            .ok_or_else(unknown)?;
        let policies = user
            .policies
            .iter()
            .filter_map(|(name, doc)| match Policy::parse(doc, &PolicyKind::Identity) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::error!(user = %rec.user, policy = %name, error = %e, "a stored policy no longer parses; ignored");
                    None
                }
            })
            .collect();
        let entry = Arc::new(KeyEntry {
            secret: self.engine.open_secret(access_key, &rec.secret)?,
            caller: Arc::new(Caller {
                principal: Principal::User {
                    tenant: rec.tenant.clone(),
                    name: rec.user.clone(),
                    id: user.id.clone(),
                    admin: user.admin,
                },
                policies,
            }),
            expires_ms: rec.expires_ms,
        });
        let mut c = self.cache_at(generation);
        if c.keys.len() >= MAX_CACHED {
            c.keys.clear();
        }
        c.keys.insert(access_key.to_string(), entry.clone());
        Ok(entry)
    }

    fn resolve_session(&self, access_key: &str, token: &str) -> IamResult<(String, Arc<Caller>)> {
        let s = Session::open(&self.engine, token)
            .ok_or_else(|| IamError::InvalidToken("The provided token is malformed or otherwise invalid.".into()))?;
        if s.access_key != access_key {
            return Err(IamError::InvalidToken(
                "The provided token does not belong to this access key.".into(),
            ));
        }
        if s.expires_ms <= now_millis() {
            return Err(IamError::ExpiredToken("The provided token has expired.".into()));
        }
        // A role deleted (or its tenant erased) ends its sessions, even if a role (or a
        // tenant) of the same name is created again: the session names the role's unique id.
        let role = self
            .role_entry(&s.tenant, &s.role)?
            .filter(|r| subtle::ConstantTimeEq::ct_eq(r.record.id.as_bytes(), s.role_id.as_bytes()).into())
            .ok_or_else(|| IamError::InvalidToken("The role of this session no longer exists.".into()))?;
        let caller = Arc::new(Caller {
            principal: Principal::Session {
                tenant: s.tenant,
                role: s.role,
                role_id: s.role_id,
                session: s.session,
            },
            policies: role.policy.iter().cloned().collect(),
        });
        Ok((s.secret, caller))
    }

    fn role_entry(&self, tenant: &str, role: &str) -> IamResult<Option<Arc<RoleEntry>>> {
        let generation = self.engine.meta().generation();
        let k = (tenant.to_string(), role.to_string());
        if let Some(e) = self.cache_at(generation).roles.get(&k) {
            return Ok(Some(e.clone()));
        }
        let Some(record) = self.engine.meta().get_role(tenant, role).map_err(EngineError::from)? else {
            return Ok(None);
        };
        if self
            .engine
            .meta()
            .get_tenant(tenant)
            .map_err(EngineError::from)?
            .is_none()
        {
            return Ok(None);
        }
        let policy = Policy::parse(&record.policy, &PolicyKind::Identity).ok();
        let e = Arc::new(RoleEntry { record, policy });
        let mut c = self.cache_at(generation);
        if c.roles.len() >= MAX_CACHED {
            c.roles.clear();
        }
        c.roles.insert(k, e.clone());
        Ok(Some(e))
    }

    // ---- authorization ----

    fn bucket_entry(&self, bucket: &str) -> IamResult<Option<Arc<BucketEntry>>> {
        let generation = self.engine.meta().generation();
        if let Some(e) = self.cache_at(generation).buckets.get(bucket) {
            return Ok(Some(e.clone()));
        }
        let meta = self.engine.meta();
        let Some(rec) = meta.get_bucket(bucket).map_err(EngineError::from)? else {
            return Ok(None);
        };
        let doc: Option<String> = meta
            .get_bucket_config(bucket, BucketConfigKind::Policy)
            .map_err(EngineError::from)?;
        let policy = doc.and_then(|d| match Policy::parse(&d, &PolicyKind::Bucket(bucket.to_string())) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(%bucket, error = %e, "a stored bucket policy no longer parses; ignored");
                None
            }
        });
        let canned: Option<String> = meta
            .get_bucket_config(bucket, BucketConfigKind::Acl)
            .map_err(EngineError::from)?;
        let acl = canned
            .and_then(|c| crate::policy::canned_acl_policy(bucket, &c))
            .and_then(|d| Policy::parse(&d, &PolicyKind::Bucket(bucket.to_string())).ok());
        let e = Arc::new(BucketEntry {
            owner: rec.tenant,
            policy,
            acl,
        });
        let mut c = self.cache_at(generation);
        if c.buckets.len() >= MAX_CACHED {
            c.buckets.clear();
        }
        c.buckets.insert(bucket.to_string(), e.clone());
        Ok(Some(e))
    }

    /// The tenant that owns a bucket.
    pub fn bucket_owner(&self, bucket: &str) -> IamResult<Option<String>> {
        Ok(self.bucket_entry(bucket)?.map(|e| e.owner.clone()))
    }

    /// Whether `caller` may do `action` on `target`, as AWS decides: an explicit Deny in any
    /// policy refuses; otherwise an Allow is needed — the tenant's admin has it on its own
    /// tenant's resources; another tenant needs the bucket policy's Allow *and* its own
    /// (its admin has it); anonymous callers only get what a bucket policy grants to `*`.
    /// A bucket that does not exist is `NoSuchBucket`, whoever asks.
    ///
    /// `ctx` builds the request context with the keys its argument wants: only those the
    /// policies at hand read, and only when some policy has to be read (a tenant's admin
    /// working on its own buckets, none with a policy, needs none).
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        target: Target<'_>,
        ctx: &dyn ContextSource,
    ) -> IamResult<()> {
        let p = &caller.principal;
        let bucket = match target {
            Target::Bucket(b) | Target::Object(b, _) => Some(
                self.bucket_entry(b)?
                    .ok_or(IamError::Engine(EngineError::NoSuchBucket))?,
            ),
            _ => None,
        };
        let owner = bucket.as_ref().map(|b| b.owner.as_str());
        let own_tenant = p.tenant().is_some() && (owner.is_none() || owner == p.tenant());
        let no_policy =
            caller.policies.is_empty() && bucket.as_ref().is_none_or(|b| b.policy.is_none() && b.acl.is_none());
        if no_policy {
            // Without any policy, only a tenant's admin on its own tenant is allowed.
            return match own_tenant && p.is_tenant_admin() {
                true => Ok(()),
                false => Err(denied()),
            };
        }
        let resource = match target {
            Target::Service => "arn:aws:s3:::*".to_string(),
            Target::NewBucket(b) | Target::Bucket(b) => format!("arn:aws:s3:::{b}"),
            Target::Object(b, k) => format!("arn:aws:s3:::{b}/{k}"),
            Target::Iam(arn) => arn.to_string(),
        };
        let policies: Vec<&Policy> = caller
            .policies
            .iter()
            .chain(bucket.iter().flat_map(|b| b.policy.iter().chain(&b.acl)))
            .collect();
        let context = ctx.context(&|key| policies.iter().any(|p| p.reads(key)));
        let req = Request {
            action,
            resource: &resource,
            principal: p,
            context: &context,
        };
        let identity = caller
            .policies
            .iter()
            .fold(Decision::default(), |d, pol| d.merge(pol.evaluate(&req)));
        let from_bucket = bucket
            .iter()
            .flat_map(|b| b.policy.iter().chain(&b.acl))
            .fold(Decision::default(), |d, pol| d.merge(pol.evaluate(&req)));
        if matches!(
            action,
            "s3:GetBucketPolicy" | "s3:PutBucketPolicy" | "s3:DeleteBucketPolicy"
        ) {
            // Only the owner's identities manage a bucket's policy, whatever a policy grants
            // to others (as S3); the owner's admin always can (no lock-out by a Deny).
            if !own_tenant {
                return Err(denied());
            }
            if p.is_tenant_admin() {
                return Ok(());
            }
        }
        if identity.denied || from_bucket.denied {
            return Err(denied());
        }
        // Within the owner's tenant, a bucket policy naming the caller (or everyone) is
        // enough; one naming only the tenant is delegated by the caller's own policies. From
        // another tenant, the bucket policy's grant and the caller's own are both needed.
        let allowed = match p {
            Principal::Anonymous => from_bucket.allowed,
            _ if own_tenant => p.is_tenant_admin() || identity.allowed || from_bucket.allowed,
            _ => (from_bucket.allowed || from_bucket.account_allowed) && (p.is_tenant_admin() || identity.allowed),
        };
        if allowed {
            Ok(())
        } else {
            Err(denied())
        }
    }

    // ---- tenants (the operator's admin plane) ----

    /// Creates a tenant and its admin user; returns the admin's access key and secret.
    pub async fn create_tenant(&self, name: &str, quota: Quota) -> IamResult<(String, String)> {
        if !valid_tenant_name(name) {
            return Err(IamError::InvalidInput(format!(
                "'{name}' is not a valid tenant name: 1 to 63 of a-z 0-9 -, not starting with -"
            )));
        }
        let (key, secret) = (new_access_key("CF"), new_secret());
        self.engine.create_tenant(name, quota, &key, &secret).await?;
        Ok((key, secret))
    }

    /// Makes sure the tenant exists with `access_key` as its admin's key (the root key given
    /// at start-up: created with its tenant on the first start, its secret updated if the
    /// operator changed it). A root key an operator disabled stays disabled: a restart never
    /// re-enables it. Says what it did.
    pub async fn ensure_root(&self, tenant: &str, access_key: &str, secret: &str) -> IamResult<RootKey> {
        let meta = self.engine.meta();
        if meta.get_tenant(tenant).map_err(EngineError::from)?.is_none() {
            match self
                .engine
                .create_tenant(tenant, Quota::default(), access_key, secret)
                .await
            {
                Ok(_) => return Ok(RootKey::Created),
                // Another gateway of the cluster created it meanwhile: check its key below.
                Err(EngineError::EntityExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match meta.get_access_key(access_key).map_err(EngineError::from)? {
            Some(k) if k.tenant == tenant => {
                let same = self.engine.open_secret(access_key, &k.secret)? == secret;
                if !same {
                    self.engine
                        .iam_apply(IamCommand::SetAccessKeySecret {
                            tenant: tenant.into(),
                            id: access_key.into(),
                            secret: self.engine.seal_secret(access_key, secret),
                        })
                        .await?;
                }
                Ok(match (k.enabled, same) {
                    (false, _) => RootKey::Disabled,
                    (true, true) => RootKey::Unchanged,
                    (true, false) => RootKey::SecretChanged,
                })
            }
            Some(k) => Err(IamError::EntityAlreadyExists(format!(
                "access key {access_key} (it belongs to tenant '{}')",
                k.tenant
            ))),
            None => {
                self.engine
                    .iam_apply(IamCommand::CreateAccessKey {
                        id: access_key.into(),
                        record: AccessKeyRecord {
                            tenant: tenant.into(),
                            user: coffre_engine::ADMIN_USER.into(),
                            secret: self.engine.seal_secret(access_key, secret),
                            created_ms: now_millis(),
                            enabled: true,
                            expires_ms: None,
                        },
                    })
                    .await?;
                Ok(RootKey::Created)
            }
        }
    }

    pub fn tenant_names(&self) -> IamResult<Vec<String>> {
        Ok(self
            .engine
            .meta()
            .list_tenants()
            .map_err(EngineError::from)?
            .into_iter()
            .map(|(n, _)| n)
            .collect())
    }

    pub fn tenant_info(&self, name: &str) -> IamResult<TenantInfo> {
        let meta = self.engine.meta();
        let rec = meta
            .get_tenant(name)
            .map_err(EngineError::from)?
            .ok_or_else(|| IamError::NoSuchEntity(format!("tenant '{name}'")))?;
        Ok(TenantInfo {
            tenant: name.to_string(),
            created_ms: rec.created_ms,
            kek_id: self.engine.tenant_key_id(name)?,
            quota_bytes: rec.quota.bytes,
            quota_objects: rec.quota.objects,
            usage: meta.tenant_usage(name).map_err(EngineError::from)?,
            buckets: meta
                .buckets_of(name)
                .map_err(EngineError::from)?
                .into_iter()
                .map(|(b, _)| b)
                .collect(),
            users: meta
                .list_users(name)
                .map_err(EngineError::from)?
                .into_iter()
                .map(|(u, _)| u)
                .collect(),
            oidc_issuer: rec.oidc.map(|o| o.issuer),
        })
    }

    pub async fn set_tenant_quota(&self, tenant: &str, quota: Quota) -> IamResult<()> {
        Ok(self
            .engine
            .iam_apply(IamCommand::SetTenantQuota {
                name: tenant.into(),
                quota,
            })
            .await?)
    }

    /// Deletes a tenant that owns no bucket; with `erase`, empties and deletes its buckets
    /// first (`force`: even if they hold objects) and reports what its key made unreadable.
    pub async fn delete_tenant(&self, name: &str, erase: bool, force: bool) -> IamResult<coffre_engine::Erasure> {
        if !erase {
            let kek_id = self.engine.tenant_key_id(name)?;
            self.engine
                .iam_apply(IamCommand::DeleteTenant { name: name.into() })
                .await
                .map_err(|e| match e {
                    EngineError::DeleteConflict(m) => {
                        IamError::DeleteConflict(format!("{m}: delete them first, or use --erase"))
                    }
                    other => other.into(),
                })?;
            return Ok(coffre_engine::Erasure {
                tenant: name.into(),
                kek_id,
                erased_ms: now_millis(),
                buckets: vec![],
                objects: 0,
                bytes: 0,
            });
        }
        match self.engine.erase_tenant(name, force).await {
            Err(EngineError::BucketNotEmpty) => Err(IamError::DeleteConflict(format!(
                "the buckets of tenant '{name}' hold objects: empty them first, or add --force"
            ))),
            other => Ok(other?),
        }
    }

    /// Sets (or removes) a tenant's OpenID Connect issuer, after checking it.
    pub async fn set_oidc(&self, tenant: &str, oidc: Option<OidcConfig>) -> IamResult<()> {
        if let Some(o) = &oidc {
            if o.issuer.is_empty() || o.audience.is_empty() {
                return Err(IamError::InvalidInput("an issuer and an audience are needed".into()));
            }
            match (&o.jwks, &o.jwks_url) {
                (Some(doc), None) => {
                    Jwks::parse(doc).map_err(IamError::InvalidInput)?;
                }
                (None, Some(url)) if url.starts_with("https://") => {}
                _ => {
                    return Err(IamError::InvalidInput(
                        "give the issuer's keys inline (jwks) or where to fetch them over HTTPS (jwks_url, https://)"
                            .into(),
                    ))
                }
            }
        }
        Ok(self
            .engine
            .iam_apply(IamCommand::SetTenantOidc {
                name: tenant.into(),
                oidc,
            })
            .await?)
    }

    // ---- users, keys, policies (the operator's plane and the tenant's IAM API) ----

    pub async fn create_user(&self, tenant: &str, name: &str) -> IamResult<UserRecord> {
        check_user_name(name)?;
        let record = UserRecord {
            id: coffre_engine::new_id("AIDA"),
            created_ms: now_millis(),
            admin: false,
            policies: vec![],
        };
        self.engine
            .iam_apply(IamCommand::CreateUser {
                tenant: tenant.into(),
                name: name.into(),
                record: record.clone(),
            })
            .await?;
        Ok(record)
    }

    pub fn user(&self, tenant: &str, name: &str) -> IamResult<UserRecord> {
        self.engine
            .meta()
            .get_user(tenant, name)
            .map_err(EngineError::from)?
            .ok_or_else(|| IamError::NoSuchEntity(format!("user '{name}'")))
    }

    pub fn users(&self, tenant: &str) -> IamResult<Vec<(String, UserRecord)>> {
        Ok(self.engine.meta().list_users(tenant).map_err(EngineError::from)?)
    }

    /// Deletes a user; `with_keys`: its access keys too (else it must have none).
    pub async fn delete_user(&self, tenant: &str, name: &str, with_keys: bool) -> IamResult<()> {
        Ok(self
            .engine
            .iam_apply(IamCommand::DeleteUser {
                tenant: tenant.into(),
                name: name.into(),
                with_keys,
            })
            .await?)
    }

    /// A new access key for a user: (id, secret). The secret is shown once, stored sealed.
    pub async fn create_key(&self, tenant: &str, user: &str, expires_ms: Option<u64>) -> IamResult<(String, String)> {
        let (id, secret) = (new_access_key("CF"), new_secret());
        self.engine
            .iam_apply(IamCommand::CreateAccessKey {
                id: id.clone(),
                record: AccessKeyRecord {
                    tenant: tenant.into(),
                    user: user.into(),
                    secret: self.engine.seal_secret(&id, &secret),
                    created_ms: now_millis(),
                    enabled: true,
                    expires_ms,
                },
            })
            .await?;
        Ok((id, secret))
    }

    pub async fn set_key_enabled(&self, tenant: &str, id: &str, enabled: bool) -> IamResult<()> {
        Ok(self
            .engine
            .iam_apply(IamCommand::SetAccessKeyEnabled {
                tenant: tenant.into(),
                id: id.into(),
                enabled,
            })
            .await?)
    }

    pub async fn delete_key(&self, tenant: &str, id: &str) -> IamResult<()> {
        Ok(self
            .engine
            .iam_apply(IamCommand::DeleteAccessKey {
                tenant: tenant.into(),
                id: id.into(),
            })
            .await?)
    }

    /// A user's keys (`user == None`: every user's of the tenant).
    pub fn keys(&self, tenant: &str, user: Option<&str>) -> IamResult<Vec<KeyInfo>> {
        if let Some(u) = user {
            self.user(tenant, u)?;
        }
        Ok(self
            .engine
            .meta()
            .list_access_keys(tenant, user)
            .map_err(EngineError::from)?
            .into_iter()
            .map(|(id, k)| KeyInfo {
                access_key: id,
                user: k.user,
                enabled: k.enabled,
                created_ms: k.created_ms,
                expires_ms: k.expires_ms,
            })
            .collect())
    }

    /// Sets an inline policy of a user, once it parses; `None` removes it.
    pub async fn put_user_policy(&self, tenant: &str, user: &str, name: &str, doc: Option<&str>) -> IamResult<()> {
        check_user_name(name)?;
        if let Some(d) = doc {
            Policy::parse(d, &PolicyKind::Identity).map_err(IamError::MalformedPolicy)?;
        }
        Ok(self
            .engine
            .iam_apply(IamCommand::PutUserPolicy {
                tenant: tenant.into(),
                user: user.into(),
                name: name.into(),
                document: doc.map(str::to_string),
            })
            .await?)
    }

    // ---- roles and web identity federation ----

    /// Creates or replaces a role whose sessions get `policy`, for web identities whose
    /// token carries every claim of `claims` (`(name, pattern)`).
    pub async fn put_role(
        &self,
        tenant: &str,
        name: &str,
        policy: &str,
        claims: Vec<(String, String)>,
        max_session_secs: Option<u32>,
    ) -> IamResult<RoleRecord> {
        check_user_name(name)?;
        Policy::parse(policy, &PolicyKind::Identity).map_err(IamError::MalformedPolicy)?;
        let max = max_session_secs.unwrap_or(sts::DEFAULT_MAX_SESSION_SECS);
        if !(sts::MIN_SESSION_SECS..=sts::MAX_SESSION_SECS).contains(&max) {
            return Err(IamError::InvalidInput(format!(
                "a role's longest session is between {} and {} seconds",
                sts::MIN_SESSION_SECS,
                sts::MAX_SESSION_SECS
            )));
        }
        let id = match self.engine.meta().get_role(tenant, name).map_err(EngineError::from)? {
            Some(r) => r.id,
            None => coffre_engine::new_id("AROA"),
        };
        let record = RoleRecord {
            id,
            created_ms: now_millis(),
            policy: policy.to_string(),
            claims,
            max_session_secs: max,
        };
        self.engine
            .iam_apply(IamCommand::PutRole {
                tenant: tenant.into(),
                name: name.into(),
                record: record.clone(),
            })
            .await?;
        Ok(record)
    }

    pub async fn delete_role(&self, tenant: &str, name: &str) -> IamResult<()> {
        Ok(self
            .engine
            .iam_apply(IamCommand::DeleteRole {
                tenant: tenant.into(),
                name: name.into(),
            })
            .await?)
    }

    pub fn roles(&self, tenant: &str) -> IamResult<Vec<(String, RoleRecord)>> {
        Ok(self.engine.meta().list_roles(tenant).map_err(EngineError::from)?)
    }

    /// `AssumeRoleWithWebIdentity`: checks the token against the role's tenant's issuer and
    /// the role's claims, and opens a session of `duration_secs` (default one hour).
    pub async fn assume_role_with_web_identity(
        &self,
        role: &str,
        token: &str,
        session_name: &str,
        duration_secs: Option<u32>,
    ) -> IamResult<(Session, String)> {
        let (tenant, role_name) = role
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.split_once(":role/"))
            .filter(|(t, r)| valid_tenant_name(t) && valid_user_name(r))
            .ok_or_else(|| {
                IamError::InvalidInput(format!("'{role}' is not a role ARN (arn:aws:iam::TENANT:role/NAME)"))
            })?;
        if !(2..=64).contains(&session_name.len()) || !valid_user_name(session_name) {
            return Err(IamError::InvalidInput(
                "RoleSessionName is 2 to 64 of A-Z a-z 0-9 + = , . @ _ -".into(),
            ));
        }
        let not_authorized =
            || IamError::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into());
        // The token is checked before the role is looked up, so that an unauthenticated
        // caller learns nothing of which roles exist: without a token of the tenant's
        // issuer, every role (and a tenant without an issuer, or none) answers alike.
        let no_issuer = || IamError::InvalidIdentityToken("No OpenID Connect issuer trusts this token".into());
        let oidc = self
            .engine
            .meta()
            .get_tenant(tenant)
            .map_err(EngineError::from)?
            .and_then(|t| t.oidc)
            .ok_or_else(no_issuer)?;
        let jwks = self.jwks_of(&oidc).await?;
        let now = (now_millis() / 1000) as i64;
        let claims = jwt::verify(token, &jwks, &oidc.issuer, &oidc.audience, now).map_err(|e| match e {
            TokenError::Expired => IamError::ExpiredToken("Token is expired".into()),
            TokenError::Invalid(m) => IamError::InvalidIdentityToken(m),
        })?;
        let entry = self.role_entry(tenant, role_name)?.ok_or_else(not_authorized)?;
        let ctx = Context::default();
        for (claim, pattern) in &entry.record.claims {
            let p = Pattern::parse(pattern, false).map_err(IamError::InvalidInput)?;
            if !claims.values(claim).iter().any(|v| p.matches(v, &ctx, false)) {
                return Err(not_authorized());
            }
        }
        let duration = duration_secs.unwrap_or(sts::DEFAULT_MAX_SESSION_SECS.min(entry.record.max_session_secs));
        if duration < sts::MIN_SESSION_SECS || duration > entry.record.max_session_secs {
            return Err(IamError::InvalidInput(format!(
                "DurationSeconds must be between {} and {} for this role",
                sts::MIN_SESSION_SECS,
                entry.record.max_session_secs
            )));
        }
        let session = Session {
            access_key: new_access_key("ASIA"),
            secret: new_secret(),
            tenant: tenant.into(),
            role: role_name.into(),
            role_id: entry.record.id.clone(),
            session: session_name.into(),
            subject: claims.subject().unwrap_or_default().to_string(),
            expires_ms: now_millis().saturating_add(duration as u64 * 1000),
        };
        let token = session.token(&self.engine);
        Ok((session, token))
    }

    /// The issuer's keys: inline, or fetched (and kept for a while).
    async fn jwks_of(&self, oidc: &OidcConfig) -> IamResult<Arc<Jwks>> {
        if let Some(doc) = &oidc.jwks {
            return Ok(Arc::new(Jwks::parse(doc).map_err(IamError::IdpCommunication)?));
        }
        let url = oidc
            .jwks_url
            .as_deref()
            .ok_or_else(|| IamError::IdpCommunication("the tenant's issuer has no keys configured".into()))?;
        let mut cache = self.jwks.lock().await;
        if let Some((at, k)) = cache.get(url) {
            if at.elapsed() < JWKS_TTL {
                return Ok(k.clone());
            }
        }
        let doc = crate::fetch::get(url).await.map_err(IamError::IdpCommunication)?;
        let k = Arc::new(Jwks::parse(&doc).map_err(IamError::IdpCommunication)?);
        if cache.len() >= 1000 {
            cache.clear();
        }
        cache.insert(url.to_string(), (std::time::Instant::now(), k.clone()));
        Ok(k)
    }

    /// The ARN of a role of a tenant.
    pub fn role_arn(tenant: &str, role: &str) -> String {
        role_arn(tenant, role)
    }
}
