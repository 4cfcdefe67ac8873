//! The operator's plane for identities: tenants (with quotas, issuers, erasure), their users,
//! access keys, inline policies and roles; bucket quotas; the operator's public key.

use crate::certificate::Certificate;
use crate::{Admin, ApiError, ApiResult};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use base64::Engine as _;
use coffre_engine::{BucketConfigKind, EngineError, OidcConfig, Quota};
use coffre_iam::IamError;
use serde_json::json;
use std::sync::Arc;

impl From<IamError> for ApiError {
    fn from(e: IamError) -> ApiError {
        let status = match e {
            IamError::NoSuchEntity(_) | IamError::NoSuchBucket => StatusCode::NOT_FOUND,
            IamError::EntityAlreadyExists(_) | IamError::DeleteConflict(_) => StatusCode::CONFLICT,
            IamError::MalformedPolicy(_) | IamError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            IamError::Meta(m) => return EngineError::from(m).into(),
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        use coffre_engine::MetaError as M;
        let status = match &e {
            EngineError::Meta(M::NoSuchEntity(_) | M::NoSuchBucket | M::NoSuchKey) => StatusCode::NOT_FOUND,
            // Object Lock binds the operator too: the erasure waits for the retention.
            EngineError::Meta(M::EntityExists(_) | M::DeleteConflict(_) | M::BucketNotEmpty | M::Locked(_)) => {
                StatusCode::CONFLICT
            }
            EngineError::Unavailable(_) | EngineError::Meta(M::Unavailable(_)) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn bad_request(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m.into())
}

fn arg(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))
}

fn args(p: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))
}

/// A numeric query parameter, if given.
fn number(q: &crate::handlers::Query, name: &str) -> Result<Option<u64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| bad_request(format!("{name} must be a number")))
        })
        .transpose()
}

fn quota_of(q: &crate::handlers::Query) -> Result<Quota, ApiError> {
    Ok(Quota {
        bytes: number(q, "quota_bytes")?,
        objects: number(q, "quota_objects")?,
    })
}

fn body_json(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("the body is not JSON: {e}")))
}

pub async fn create_tenant(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = crate::handlers::Query::parse(raw)?;
    let name = q.require("name")?;
    let (key, secret) = admin.iam.create_tenant(name, quota_of(&q)?).await?;
    Ok(Json(json!({
        "tenant": name,
        "user": coffre_engine::ADMIN_USER,
        "access_key": key,
        "secret_key": secret,
    })))
}

pub async fn list_tenants(State(admin): State<Arc<Admin>>) -> ApiResult {
    let mut out = Vec::new();
    for t in admin.iam.tenant_names()? {
        out.push(admin.iam.tenant_info(&t)?);
    }
    Ok(Json(json!({ "tenants": out })))
}

pub async fn show_tenant(State(admin): State<Arc<Admin>>, t: Result<Path<String>, PathRejection>) -> ApiResult {
    let t = arg(t)?;
    Ok(Json(
        serde_json::to_value(admin.iam.tenant_info(&t)?).unwrap_or_default(),
    ))
}

/// Deletes a tenant; with `erase=true` its buckets go first (`force=true`: even full ones)
/// and the answer carries the signed erasure certificate.
pub async fn delete_tenant(
    State(admin): State<Arc<Admin>>,
    t: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let t = arg(t)?;
    let q = crate::handlers::Query::parse(raw)?;
    let (erase, force) = (q.get("erase") == Some("true"), q.get("force") == Some("true"));
    if force && !erase {
        return Err(bad_request("force only applies with erase"));
    }
    let erasure = match erase {
        true => admin.engine.erase_tenant(&t, force).await.map_err(|e| match e {
            EngineError::Meta(coffre_engine::MetaError::BucketNotEmpty) => ApiError(
                StatusCode::CONFLICT,
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
    let mut answer = json!({ "deleted": t, "kek_id": erasure.kek_id });
    if erase {
        answer["certificate"] =
            serde_json::to_value(Certificate::sign(&erasure, &admin.operator_key)).unwrap_or_default();
    }
    Ok(Json(answer))
}

pub async fn set_tenant_quota(
    State(admin): State<Arc<Admin>>,
    t: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let t = arg(t)?;
    let quota = quota_of(&crate::handlers::Query::parse(raw)?)?;
    admin.iam.set_tenant_quota(&t, quota).await?;
    Ok(Json(
        json!({ "tenant": t, "quota_bytes": quota.bytes, "quota_objects": quota.objects }),
    ))
}

/// `{issuer, audience, jwks (a JWKS document, as JSON or text) | jwks_url}`; an empty body
/// removes the issuer.
pub async fn set_oidc(
    State(admin): State<Arc<Admin>>,
    t: Result<Path<String>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult {
    let t = arg(t)?;
    let oidc = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v = body_json(&body)?;
        let s = |n: &str| v.get(n).and_then(|x| x.as_str()).map(str::to_string);
        let jwks = match v.get("jwks") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(o @ serde_json::Value::Object(_)) => Some(o.to_string()),
            _ => None,
        };
        Some(OidcConfig {
            issuer: s("issuer").ok_or_else(|| bad_request("issuer is required"))?,
            audience: s("audience").ok_or_else(|| bad_request("audience is required"))?,
            jwks,
            jwks_url: s("jwks_url"),
        })
    };
    let issuer = oidc.as_ref().map(|o| o.issuer.clone());
    admin.iam.set_oidc(&t, oidc).await?;
    Ok(Json(json!({ "tenant": t, "issuer": issuer })))
}

pub async fn create_user(
    State(admin): State<Arc<Admin>>,
    t: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let t = arg(t)?;
    let q = crate::handlers::Query::parse(raw)?;
    let name = q.require("name")?;
    let rec = admin.iam.create_user(&t, name).await?;
    Ok(Json(json!({
        "tenant": t,
        "user": name,
        "id": rec.id,
        "arn": coffre_iam::principal::user_arn(&t, name),
    })))
}

pub async fn list_users(State(admin): State<Arc<Admin>>, t: Result<Path<String>, PathRejection>) -> ApiResult {
    let t = arg(t)?;
    admin.iam.tenant_info(&t)?;
    let users: Vec<_> = admin
        .iam
        .users(&t)?
        .into_iter()
        .map(|(name, u)| {
            json!({"user": name, "id": u.id, "admin": u.admin, "policies": u.policies.iter().map(|(n, _)| n).collect::<Vec<_>>()})
        })
        .collect();
    Ok(Json(json!({ "tenant": t, "users": users })))
}

pub async fn delete_user(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (t, u) = args(p)?;
    admin.iam.delete_user(&t, &u, true).await?;
    Ok(Json(json!({ "deleted": u })))
}

pub async fn put_user_policy(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String, String)>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult {
    let (t, u, name) = p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))?;
    let doc = std::str::from_utf8(&body).map_err(|_| bad_request("the policy is not UTF-8"))?;
    admin.iam.put_user_policy(&t, &u, &name, Some(doc)).await?;
    Ok(Json(json!({ "tenant": t, "user": u, "policy": name })))
}

pub async fn delete_user_policy(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult {
    let (t, u, name) = p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))?;
    admin.iam.put_user_policy(&t, &u, &name, None).await?;
    Ok(Json(json!({ "deleted": name })))
}

pub async fn create_key(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String)>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let (t, u) = args(p)?;
    let q = crate::handlers::Query::parse(raw)?;
    let expires_ms =
        number(&q, "expires_in_secs")?.map(|s| coffre_types::now_millis().saturating_add(s.saturating_mul(1000)));
    admin.iam.user(&t, &u)?;
    let (key, secret) = admin.iam.create_key(&t, &u, expires_ms).await?;
    Ok(Json(
        json!({ "tenant": t, "user": u, "access_key": key, "secret_key": secret, "expires_ms": expires_ms }),
    ))
}

pub async fn list_keys(
    State(admin): State<Arc<Admin>>,
    t: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let t = arg(t)?;
    let q = crate::handlers::Query::parse(raw)?;
    admin.iam.tenant_info(&t)?;
    Ok(Json(json!({ "tenant": t, "keys": admin.iam.keys(&t, q.get("user"))? })))
}

pub async fn key_action(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String, String)>, PathRejection>,
) -> ApiResult {
    let (t, k, what) = p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))?;
    let enabled = match what.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(ApiError(StatusCode::NOT_FOUND, "unknown admin endpoint".into())),
    };
    admin.iam.set_key_enabled(&t, &k, enabled).await?;
    Ok(Json(json!({ "tenant": t, "access_key": k, "enabled": enabled })))
}

pub async fn delete_key(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (t, k) = args(p)?;
    admin.iam.delete_key(&t, &k).await?;
    Ok(Json(json!({ "deleted": k })))
}

/// `{policy (a JSON policy, as JSON or text), claims: {name: pattern}, max_session_secs}`.
pub async fn put_role(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String)>, PathRejection>,
    body: axum::body::Bytes,
) -> ApiResult {
    let (t, r) = args(p)?;
    let v = body_json(&body)?;
    let policy = match v.get("policy") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(o @ serde_json::Value::Object(_)) => o.to_string(),
        _ => return Err(bad_request("policy (a JSON policy document) is required")),
    };
    let claims = v
        .get("claims")
        .and_then(|c| c.as_object())
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect()
        })
        .unwrap_or_default();
    let max = v
        .get("max_session_secs")
        .and_then(|m| m.as_u64())
        .map(|m| m.min(u32::MAX as u64) as u32);
    let rec = admin.iam.put_role(&t, &r, &policy, claims, max).await?;
    Ok(Json(json!({
        "tenant": t,
        "role": r,
        "arn": coffre_iam::Iam::role_arn(&t, &r),
        "id": rec.id,
        "max_session_secs": rec.max_session_secs,
    })))
}

pub async fn list_roles(State(admin): State<Arc<Admin>>, t: Result<Path<String>, PathRejection>) -> ApiResult {
    let t = arg(t)?;
    admin.iam.tenant_info(&t)?;
    let roles: Vec<_> = admin
        .iam
        .roles(&t)?
        .into_iter()
        .map(|(name, r)| json!({"role": name, "arn": coffre_iam::Iam::role_arn(&t, &name), "claims": r.claims, "max_session_secs": r.max_session_secs}))
        .collect();
    Ok(Json(json!({ "tenant": t, "roles": roles })))
}

pub async fn delete_role(
    State(admin): State<Arc<Admin>>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> ApiResult {
    let (t, r) = args(p)?;
    admin.iam.delete_role(&t, &r).await?;
    Ok(Json(json!({ "deleted": r })))
}

pub async fn set_bucket_quota(
    State(admin): State<Arc<Admin>>,
    b: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let b = arg(b)?;
    let quota = quota_of(&crate::handlers::Query::parse(raw)?)?;
    let value = (!quota.is_unlimited()).then_some(quota);
    admin
        .engine
        .put_bucket_config(&b, BucketConfigKind::Quota, value)
        .await?;
    let usage = admin.engine.meta().bucket_usage(&b).map_err(EngineError::from)?;
    Ok(Json(json!({
        "bucket": b,
        "quota_bytes": quota.bytes,
        "quota_objects": quota.objects,
        "usage": usage,
    })))
}

/// The operator's public key, to check erasure certificates with.
pub async fn operator_key(State(admin): State<Arc<Admin>>) -> ApiResult {
    Ok(Json(json!({
        "algorithm": "Ed25519",
        "public_key": base64::engine::general_purpose::STANDARD.encode(admin.operator_key.public_key()),
    })))
}
