//! The identity service: resolves access keys and session tokens to callers, authorizes
//! requests, and manages tenants, users, keys, policies and roles.
//!
//! What authorization reads (keys, users' policies, bucket owners and policies, roles) is
//! cached, parsed, and dropped whenever the metadata generation moves (any identity, bucket
//! or bucket-configuration change), so a revoked key or a new policy applies to the next
//! request.

use crate::error::{IamError, IamResult};
use crate::jwt::Jwks;
use crate::policy::{Decision, Policy, PolicyKind, Request};
use crate::principal::{valid_user_name, Principal};
use crate::sts::Session;
use crate::Context;
use coffre_crypto::Keyring;
use coffre_meta::{BucketConfigKind, IamCommand, MetaCommand, MetaStore, RoleRecord, Usage};
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

pub(crate) struct RoleEntry {
    pub(crate) record: RoleRecord,
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
pub(crate) const JWKS_TTL: std::time::Duration = std::time::Duration::from_secs(600);

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
    pub(crate) meta: Arc<MetaStore>,
    pub(crate) keys: Arc<Keyring>,
    cache: Mutex<Cache>,
    /// Issuers' keys fetched, by URL, with when.
    pub(crate) jwks: tokio::sync::Mutex<HashMap<String, (std::time::Instant, Arc<Jwks>)>>,
}

/// A fresh access key id (`CF` + 18 hex digits) or secret (40 hex digits).
pub(crate) fn new_access_key(prefix: &str) -> String {
    format!("{prefix}{}", hex::encode_upper(coffre_types::random_bytes::<9>()))
}

pub(crate) fn new_secret() -> String {
    hex::encode(coffre_types::random_bytes::<20>())
}

fn denied() -> IamError {
    IamError::AccessDenied("Access Denied".into())
}

pub(crate) fn check_user_name(n: &str) -> IamResult<()> {
    if valid_user_name(n) {
        Ok(())
    } else {
        Err(IamError::InvalidInput(format!(
            "'{n}' is not a valid name: 1 to 64 of A-Z a-z 0-9 + = , . @ _ -"
        )))
    }
}

impl Iam {
    /// The identity service over the metadata store (its records) and the keyring (which
    /// seals secrets and session tokens, and wraps tenants' keys).
    pub fn new(meta: Arc<MetaStore>, keys: Arc<Keyring>) -> Arc<Iam> {
        Arc::new(Iam {
            meta,
            keys,
            cache: Mutex::new(Cache::default()),
            jwks: Default::default(),
        })
    }

    /// Applies an identity command (on a blocking thread, with the request's audit note).
    pub(crate) async fn apply(&self, cmd: IamCommand) -> IamResult<()> {
        Ok(self
            .meta
            .call(move |m| m.apply(MetaCommand::Iam(cmd)).map(drop))
            .await?)
    }

    /// An access key's secret sealed under the master key, bound to the key's id.
    pub(crate) fn seal_secret(&self, id: &str, secret: &str) -> Vec<u8> {
        self.keys.seal(&coffre_crypto::access_key_aad(id), secret.as_bytes())
    }

    pub(crate) fn open_secret(&self, id: &str, sealed: &[u8]) -> IamResult<String> {
        let corrupt = || IamError::Corrupt(format!("the secret of access key {id} is unreadable"));
        let plain = self
            .keys
            .open(&coffre_crypto::access_key_aad(id), sealed)
            .map_err(|_| corrupt())?;
        String::from_utf8(plain).map_err(|_| corrupt())
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
        let generation = self.meta.generation();
        if let Some(e) = self.cache_at(generation).keys.get(access_key) {
            return Ok(e.clone());
        }
        let unknown =
            || IamError::InvalidAccessKeyId("The AWS Access Key Id you provided does not exist in our records.".into());
        let meta = &self.meta;
        let rec = meta.get_access_key(access_key)?.ok_or_else(unknown)?;
        if !rec.enabled {
            return Err(unknown());
        }
        let user = meta.get_user(&rec.tenant, &rec.user)?.ok_or_else(unknown)?;
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
            secret: self.open_secret(access_key, &rec.secret)?,
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
        let s = Session::open(&self.keys, token)
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

    pub(crate) fn role_entry(&self, tenant: &str, role: &str) -> IamResult<Option<Arc<RoleEntry>>> {
        let generation = self.meta.generation();
        let k = (tenant.to_string(), role.to_string());
        if let Some(e) = self.cache_at(generation).roles.get(&k) {
            return Ok(Some(e.clone()));
        }
        let Some(record) = self.meta.get_role(tenant, role)? else {
            return Ok(None);
        };
        if self.meta.get_tenant(tenant)?.is_none() {
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
        let generation = self.meta.generation();
        if let Some(e) = self.cache_at(generation).buckets.get(bucket) {
            return Ok(Some(e.clone()));
        }
        let meta = &self.meta;
        let Some(rec) = meta.get_bucket(bucket)? else {
            return Ok(None);
        };
        let doc: Option<String> = meta.get_bucket_config(bucket, BucketConfigKind::Policy)?;
        let policy = doc.and_then(|d| match Policy::parse(&d, &PolicyKind::Bucket(bucket.to_string())) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(%bucket, error = %e, "a stored bucket policy no longer parses; ignored");
                None
            }
        });
        let canned: Option<String> = meta.get_bucket_config(bucket, BucketConfigKind::Acl)?;
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
            Target::Bucket(b) | Target::Object(b, _) => Some(self.bucket_entry(b)?.ok_or(IamError::NoSuchBucket)?),
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
}

#[cfg(test)]
mod tests;
