//! The operator's plane for identities: tenants (with quotas, issuers, erasure), their users,
//! access keys, inline policies and roles; bucket quotas; the operator's public key.

use crate::api::{self, ErrorCode};
use crate::certificate::Certificate;
use crate::handlers::invalid;
use crate::{Admin, ApiError, ApiResult, Call};
use base64::Engine as _;
use coffre_engine::{BucketConfigKind, EngineError, OidcConfig, Quota};
use std::sync::Arc;

fn tenant_info(t: coffre_iam::TenantInfo) -> api::TenantInfo {
    api::TenantInfo {
        tenant: t.tenant,
        created_ms: t.created_ms,
        kek_id: t.kek_id,
        quota_bytes: t.quota_bytes,
        quota_objects: t.quota_objects,
        usage: usage(t.usage),
        buckets: t.buckets,
        users: t.users,
        oidc_issuer: t.oidc_issuer,
    }
}

fn usage(u: coffre_engine::Usage) -> api::Usage {
    api::Usage {
        bytes: u.bytes,
        objects: u.objects,
    }
}

fn quota_of(q: &api::QuotaQuery) -> Quota {
    Quota {
        bytes: q.quota_bytes,
        objects: q.quota_objects,
    }
}

/// A JSON document given as JSON or as its text, as text.
fn document_text(v: serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s),
        o @ serde_json::Value::Object(_) => Some(o.to_string()),
        _ => None,
    }
}

pub(crate) async fn create_tenant(admin: Arc<Admin>, call: Call<api::TenantsCreate>) -> ApiResult<api::TenantCreated> {
    let q = call.query;
    let quota = Quota {
        bytes: q.quota_bytes,
        objects: q.quota_objects,
    };
    let (key, secret) = admin.iam.create_tenant(&q.name, quota).await?;
    Ok(api::TenantCreated {
        tenant: q.name,
        user: coffre_engine::ADMIN_USER.to_string(),
        access_key: key,
        secret_key: secret,
    })
}

pub(crate) async fn list_tenants(admin: Arc<Admin>, _: Call<api::TenantsList>) -> ApiResult<api::TenantList> {
    let mut tenants = Vec::new();
    for t in admin.iam.tenant_names()? {
        tenants.push(tenant_info(admin.iam.tenant_info(&t)?));
    }
    Ok(api::TenantList { tenants })
}

pub(crate) async fn show_tenant(admin: Arc<Admin>, call: Call<api::TenantsGet>) -> ApiResult<api::TenantInfo> {
    Ok(tenant_info(admin.iam.tenant_info(&call.path)?))
}

/// Deletes a tenant; with `erase=true` its buckets go first (`force=true`: even full ones)
/// and the answer carries the signed erasure certificate.
pub(crate) async fn delete_tenant(admin: Arc<Admin>, call: Call<api::TenantsDelete>) -> ApiResult<api::TenantDeleted> {
    let t = call.path;
    let (erase, force) = (call.query.erase, call.query.force);
    if force && !erase {
        return Err(invalid("force only applies with erase"));
    }
    let erasure = match erase {
        true => admin.engine.erase_tenant(&t, force).await.map_err(|e| match e {
            EngineError::Meta(coffre_engine::MetaError::BucketNotEmpty) => ApiError::new(
                ErrorCode::Conflict,
                format!("the buckets of tenant '{t}' hold objects: empty them first, or add --force"),
            ),
            other => other.into(),
        })?,
        false => coffre_engine::Erasure {
            kek_id: admin.iam.delete_tenant(&t).await?,
            tenant: t.clone(),
            erased_ms: coffre_types::now_millis(),
            buckets: vec![],
            objects: 0,
            bytes: 0,
        },
    };
    tracing::warn!(tenant = %t, erase, objects = erasure.objects, "tenant deleted");
    Ok(api::TenantDeleted {
        certificate: erase.then(|| Certificate::sign(&erasure, &admin.operator_key)),
        deleted: t,
        kek_id: erasure.kek_id,
    })
}

pub(crate) async fn set_tenant_quota(
    admin: Arc<Admin>,
    call: Call<api::TenantsQuotaPut>,
) -> ApiResult<api::TenantQuota> {
    let t = call.path;
    let quota = quota_of(&call.query);
    admin.iam.set_tenant_quota(&t, quota).await?;
    Ok(api::TenantQuota {
        tenant: t,
        quota_bytes: quota.bytes,
        quota_objects: quota.objects,
    })
}

/// `{issuer, audience, jwks (a JWKS document, as JSON or text) | jwks_url}`; an empty body
/// removes the issuer.
pub(crate) async fn set_oidc(admin: Arc<Admin>, call: Call<api::TenantsOidcPut>) -> ApiResult<api::TenantOidc> {
    let t = call.path;
    let oidc = call.body.map(|o| OidcConfig {
        issuer: o.issuer,
        audience: o.audience,
        jwks: o.jwks.and_then(document_text),
        jwks_url: o.jwks_url,
    });
    let issuer = oidc.as_ref().map(|o| o.issuer.clone());
    admin.iam.set_oidc(&t, oidc).await?;
    Ok(api::TenantOidc { tenant: t, issuer })
}

pub(crate) async fn create_user(admin: Arc<Admin>, call: Call<api::TenantsUsersCreate>) -> ApiResult<api::UserCreated> {
    let (t, name) = (call.path, call.query.name);
    let rec = admin.iam.create_user(&t, &name).await?;
    Ok(api::UserCreated {
        arn: coffre_iam::principal::user_arn(&t, &name),
        tenant: t,
        user: name,
        id: rec.id,
    })
}

pub(crate) async fn list_users(admin: Arc<Admin>, call: Call<api::TenantsUsersGet>) -> ApiResult<api::UserList> {
    let t = call.path;
    admin.iam.tenant_info(&t)?;
    let users = admin
        .iam
        .users(&t)?
        .into_iter()
        .map(|(name, u)| api::UserInfo {
            user: name,
            id: u.id,
            admin: u.admin,
            policies: u.policies.into_iter().map(|(n, _)| n).collect(),
        })
        .collect();
    Ok(api::UserList { tenant: t, users })
}

pub(crate) async fn delete_user(admin: Arc<Admin>, call: Call<api::TenantsUsersDelete>) -> ApiResult<api::Deleted> {
    let (t, u) = call.path;
    admin.iam.delete_user(&t, &u, true).await?;
    Ok(api::Deleted { deleted: u })
}

pub(crate) async fn put_user_policy(
    admin: Arc<Admin>,
    call: Call<api::TenantsUsersPoliciesPut>,
) -> ApiResult<api::UserPolicySet> {
    let (t, u, name) = call.path;
    let doc = call.body.0.to_string();
    admin.iam.put_user_policy(&t, &u, &name, Some(&doc)).await?;
    Ok(api::UserPolicySet {
        tenant: t,
        user: u,
        policy: name,
    })
}

pub(crate) async fn delete_user_policy(
    admin: Arc<Admin>,
    call: Call<api::TenantsUsersPoliciesDelete>,
) -> ApiResult<api::Deleted> {
    let (t, u, name) = call.path;
    admin.iam.put_user_policy(&t, &u, &name, None).await?;
    Ok(api::Deleted { deleted: name })
}

pub(crate) async fn create_key(
    admin: Arc<Admin>,
    call: Call<api::TenantsUsersKeysCreate>,
) -> ApiResult<api::KeyCreated> {
    let (t, u) = call.path;
    let expires_ms = call
        .query
        .expires_in_secs
        .map(|s| coffre_types::now_millis().saturating_add(s.saturating_mul(1000)));
    admin.iam.user(&t, &u)?;
    let (key, secret) = admin.iam.create_key(&t, &u, expires_ms).await?;
    Ok(api::KeyCreated {
        tenant: t,
        user: u,
        access_key: key,
        secret_key: secret,
        expires_ms,
    })
}

pub(crate) async fn list_keys(admin: Arc<Admin>, call: Call<api::TenantsKeysGet>) -> ApiResult<api::KeyList> {
    let t = call.path;
    admin.iam.tenant_info(&t)?;
    let keys = admin
        .iam
        .keys(&t, call.query.user.as_deref())?
        .into_iter()
        .map(|k| api::KeyInfo {
            access_key: k.access_key,
            user: k.user,
            enabled: k.enabled,
            created_ms: k.created_ms,
            expires_ms: k.expires_ms,
        })
        .collect();
    Ok(api::KeyList { tenant: t, keys })
}

pub(crate) async fn set_key_enabled(
    admin: Arc<Admin>,
    (t, k): (String, String),
    enabled: bool,
) -> ApiResult<api::KeyState> {
    admin.iam.set_key_enabled(&t, &k, enabled).await?;
    Ok(api::KeyState {
        tenant: t,
        access_key: k,
        enabled,
    })
}

pub(crate) async fn delete_key(admin: Arc<Admin>, call: Call<api::TenantsKeysDelete>) -> ApiResult<api::Deleted> {
    let (t, k) = call.path;
    admin.iam.delete_key(&t, &k).await?;
    Ok(api::Deleted { deleted: k })
}

pub(crate) async fn put_role(admin: Arc<Admin>, call: Call<api::TenantsRolesPut>) -> ApiResult<api::RoleSet> {
    let (t, r) = call.path;
    let body = call.body;
    let policy = document_text(body.policy).ok_or_else(|| invalid("policy (a JSON policy document) is required"))?;
    let claims = body.claims.into_iter().collect();
    let rec = admin
        .iam
        .put_role(&t, &r, &policy, claims, body.max_session_secs)
        .await?;
    Ok(api::RoleSet {
        arn: coffre_iam::Iam::role_arn(&t, &r),
        tenant: t,
        role: r,
        id: rec.id,
        max_session_secs: rec.max_session_secs,
    })
}

pub(crate) async fn list_roles(admin: Arc<Admin>, call: Call<api::TenantsRolesGet>) -> ApiResult<api::RoleList> {
    let t = call.path;
    admin.iam.tenant_info(&t)?;
    let roles = admin
        .iam
        .roles(&t)?
        .into_iter()
        .map(|(name, r)| api::RoleInfo {
            arn: coffre_iam::Iam::role_arn(&t, &name),
            role: name,
            claims: r.claims,
            max_session_secs: r.max_session_secs,
        })
        .collect();
    Ok(api::RoleList { tenant: t, roles })
}

pub(crate) async fn delete_role(admin: Arc<Admin>, call: Call<api::TenantsRolesDelete>) -> ApiResult<api::Deleted> {
    let (t, r) = call.path;
    admin.iam.delete_role(&t, &r).await?;
    Ok(api::Deleted { deleted: r })
}

pub(crate) async fn set_bucket_quota(
    admin: Arc<Admin>,
    call: Call<api::BucketsQuotaPut>,
) -> ApiResult<api::BucketQuota> {
    let b = call.path;
    let quota = quota_of(&call.query);
    let value = (!quota.is_unlimited()).then_some(quota);
    admin
        .engine
        .put_bucket_config(&b, BucketConfigKind::Quota, value)
        .await?;
    let used = admin.engine.meta().bucket_usage(&b).map_err(EngineError::from)?;
    Ok(api::BucketQuota {
        bucket: b,
        quota_bytes: quota.bytes,
        quota_objects: quota.objects,
        usage: usage(used),
    })
}

/// The operator's public key, to check erasure certificates with.
pub(crate) async fn operator_key(admin: Arc<Admin>, _: Call<api::OperatorKeyGet>) -> ApiResult<api::OperatorKey> {
    Ok(api::OperatorKey {
        algorithm: "Ed25519".into(),
        public_key: base64::engine::general_purpose::STANDARD.encode(admin.operator_key.public_key()),
    })
}
