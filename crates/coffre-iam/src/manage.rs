//! The operator's plane and the tenants' IAM APIs: tenants (their keys and quotas, their
//! issuers), users, access keys, inline policies and roles. Every change is an
//! `IamCommand`, applied with the request's audit note.

use crate::error::{IamError, IamResult};
use crate::jwt::Jwks;
use crate::policy::{Policy, PolicyKind};
use crate::principal::valid_tenant_name;
use crate::service::{check_user_name, new_access_key, new_secret, Iam, KeyInfo, RootKey, TenantInfo};
use crate::sts;
use coffre_crypto::TenantKey;
use coffre_meta::{
    AccessKeyRecord, IamCommand, NewTenant, OidcConfig, Quota, RoleRecord, TenantRecord, UserRecord, ADMIN_USER,
};
use coffre_types::now_millis;

impl Iam {
    // ---- tenants (the operator's admin plane) ----

    /// Creates a tenant and its admin user; returns the admin's access key and secret.
    pub async fn create_tenant(&self, name: &str, quota: Quota) -> IamResult<(String, String)> {
        if !valid_tenant_name(name) {
            return Err(IamError::InvalidInput(format!(
                "'{name}' is not a valid tenant name: 1 to 63 of a-z 0-9 -, not starting with -"
            )));
        }
        let (key, secret) = (new_access_key("CF"), new_secret());
        self.make_tenant(name, quota, &key, &secret).await?;
        Ok((key, secret))
    }

    /// Makes sure the tenant exists with `access_key` as its admin's key (the root key given
    /// at start-up: created with its tenant on the first start, its secret updated if the
    /// operator changed it). A root key an operator disabled stays disabled: a restart never
    /// re-enables it. Says what it did.
    pub async fn ensure_root(&self, tenant: &str, access_key: &str, secret: &str) -> IamResult<RootKey> {
        let meta = &self.meta;
        if meta.get_tenant(tenant)?.is_none() {
            match self.make_tenant(tenant, Quota::default(), access_key, secret).await {
                Ok(_) => return Ok(RootKey::Created),
                // Another gateway of the cluster created it meanwhile: check its key below.
                Err(IamError::EntityAlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match meta.get_access_key(access_key)? {
            Some(k) if k.tenant == tenant => {
                let same = self.open_secret(access_key, &k.secret)? == secret;
                if !same {
                    self.apply(IamCommand::SetAccessKeySecret {
                        tenant: tenant.into(),
                        id: access_key.into(),
                        secret: self.seal_secret(access_key, secret),
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
                self.apply(IamCommand::CreateAccessKey {
                    id: access_key.into(),
                    record: AccessKeyRecord {
                        tenant: tenant.into(),
                        user: ADMIN_USER.into(),
                        secret: self.seal_secret(access_key, secret),
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
        Ok(self.meta.list_tenants()?.into_iter().map(|(n, _)| n).collect())
    }

    pub fn tenant_info(&self, name: &str) -> IamResult<TenantInfo> {
        let meta = &self.meta;
        let rec = meta
            .get_tenant(name)?
            .ok_or_else(|| IamError::NoSuchEntity(format!("tenant '{name}'")))?;
        Ok(TenantInfo {
            tenant: name.to_string(),
            created_ms: rec.created_ms,
            kek_id: self.tenant_key_id(name)?,
            quota_bytes: rec.quota.bytes,
            quota_objects: rec.quota.objects,
            usage: meta.tenant_usage(name)?,
            buckets: meta.buckets_of(name)?.into_iter().map(|(b, _)| b).collect(),
            users: meta.list_users(name)?.into_iter().map(|(u, _)| u).collect(),
            oidc_issuer: rec.oidc.map(|o| o.issuer),
        })
    }

    pub async fn set_tenant_quota(&self, tenant: &str, quota: Quota) -> IamResult<()> {
        self.apply(IamCommand::SetTenantQuota {
            name: tenant.into(),
            quota,
        })
        .await
    }

    /// Deletes a tenant that owns no bucket (an erasure empties them first: the engine's
    /// `erase_tenant`); returns the id of the key-encryption key deleted with it.
    pub async fn delete_tenant(&self, name: &str) -> IamResult<String> {
        let kek_id = self.tenant_key_id(name)?;
        self.apply(IamCommand::DeleteTenant { name: name.into() })
            .await
            .map_err(|e| match e {
                IamError::DeleteConflict(m) => {
                    IamError::DeleteConflict(format!("{m}: delete them first, or use --erase"))
                }
                other => other,
            })?;
        Ok(kek_id)
    }

    /// The id of a tenant's key-encryption key (hex).
    pub fn tenant_key_id(&self, tenant: &str) -> IamResult<String> {
        let rec = self
            .meta
            .get_tenant(tenant)?
            .ok_or_else(|| IamError::NoSuchEntity(format!("tenant '{tenant}'")))?;
        let key = self
            .keys
            .unwrap_tenant_key(&rec.kek, tenant)
            .map_err(|e| IamError::key(tenant, e))?;
        Ok(key.id_hex())
    }

    /// Creates a tenant with a fresh key-encryption key, its admin user and the admin's
    /// first access key.
    async fn make_tenant(&self, name: &str, quota: Quota, access_key: &str, secret: &str) -> IamResult<()> {
        let now = now_millis();
        let cmd = IamCommand::CreateTenant(Box::new(NewTenant {
            name: name.to_string(),
            record: TenantRecord {
                created_ms: now,
                kek: self
                    .keys
                    .wrap_tenant_key(&TenantKey::random(), name)
                    .map_err(|e| IamError::key(name, e))?,
                quota,
                oidc: None,
            },
            admin_user: ADMIN_USER.to_string(),
            admin: UserRecord {
                id: coffre_types::new_id("AIDA"),
                created_ms: now,
                admin: true,
                policies: vec![],
            },
            access_key: access_key.to_string(),
            key: AccessKeyRecord {
                tenant: name.to_string(),
                user: ADMIN_USER.to_string(),
                secret: self.seal_secret(access_key, secret),
                created_ms: now,
                enabled: true,
                expires_ms: None,
            },
        }));
        self.apply(cmd).await
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
        self.apply(IamCommand::SetTenantOidc {
            name: tenant.into(),
            oidc,
        })
        .await
    }

    // ---- users, keys, policies (the operator's plane and the tenant's IAM API) ----

    pub async fn create_user(&self, tenant: &str, name: &str) -> IamResult<UserRecord> {
        check_user_name(name)?;
        let record = UserRecord {
            id: coffre_types::new_id("AIDA"),
            created_ms: now_millis(),
            admin: false,
            policies: vec![],
        };
        self.apply(IamCommand::CreateUser {
            tenant: tenant.into(),
            name: name.into(),
            record: record.clone(),
        })
        .await?;
        Ok(record)
    }

    pub fn user(&self, tenant: &str, name: &str) -> IamResult<UserRecord> {
        self.meta
            .get_user(tenant, name)?
            .ok_or_else(|| IamError::NoSuchEntity(format!("user '{name}'")))
    }

    pub fn users(&self, tenant: &str) -> IamResult<Vec<(String, UserRecord)>> {
        Ok(self.meta.list_users(tenant)?)
    }

    /// Deletes a user; `with_keys`: its access keys too (else it must have none).
    pub async fn delete_user(&self, tenant: &str, name: &str, with_keys: bool) -> IamResult<()> {
        self.apply(IamCommand::DeleteUser {
            tenant: tenant.into(),
            name: name.into(),
            with_keys,
        })
        .await
    }

    /// A new access key for a user: (id, secret). The secret is shown once, stored sealed.
    pub async fn create_key(&self, tenant: &str, user: &str, expires_ms: Option<u64>) -> IamResult<(String, String)> {
        let (id, secret) = (new_access_key("CF"), new_secret());
        self.apply(IamCommand::CreateAccessKey {
            id: id.clone(),
            record: AccessKeyRecord {
                tenant: tenant.into(),
                user: user.into(),
                secret: self.seal_secret(&id, &secret),
                created_ms: now_millis(),
                enabled: true,
                expires_ms,
            },
        })
        .await?;
        Ok((id, secret))
    }

    pub async fn set_key_enabled(&self, tenant: &str, id: &str, enabled: bool) -> IamResult<()> {
        self.apply(IamCommand::SetAccessKeyEnabled {
            tenant: tenant.into(),
            id: id.into(),
            enabled,
        })
        .await
    }

    pub async fn delete_key(&self, tenant: &str, id: &str) -> IamResult<()> {
        self.apply(IamCommand::DeleteAccessKey {
            tenant: tenant.into(),
            id: id.into(),
        })
        .await
    }

    /// A user's keys (`user == None`: every user's of the tenant).
    pub fn keys(&self, tenant: &str, user: Option<&str>) -> IamResult<Vec<KeyInfo>> {
        if let Some(u) = user {
            self.user(tenant, u)?;
        }
        Ok(self
            .meta
            .list_access_keys(tenant, user)?
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
        self.apply(IamCommand::PutUserPolicy {
            tenant: tenant.into(),
            user: user.into(),
            name: name.into(),
            document: doc.map(str::to_string),
        })
        .await
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
        let id = match self.meta.get_role(tenant, name)? {
            Some(r) => r.id,
            None => coffre_types::new_id("AROA"),
        };
        let record = RoleRecord {
            id,
            created_ms: now_millis(),
            policy: policy.to_string(),
            claims,
            max_session_secs: max,
        };
        self.apply(IamCommand::PutRole {
            tenant: tenant.into(),
            name: name.into(),
            record: record.clone(),
        })
        .await?;
        Ok(record)
    }

    pub async fn delete_role(&self, tenant: &str, name: &str) -> IamResult<()> {
        self.apply(IamCommand::DeleteRole {
            tenant: tenant.into(),
            name: name.into(),
        })
        .await
    }

    pub fn roles(&self, tenant: &str) -> IamResult<Vec<(String, RoleRecord)>> {
        Ok(self.meta.list_roles(tenant)?)
    }
}
