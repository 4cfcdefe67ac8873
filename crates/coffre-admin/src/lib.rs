//! The operator's admin API (HTTP, bearer token) on axum: cluster status and membership,
//! bucket residency policies and quotas, proof of placement, residency audits, tenants and
//! their users, keys, policies, roles and erasure; the background workers. Every call is declared
//! once in `api` (its types are the contract, with an OpenAPI document generated from them;
//! docs/admin-api.md). `client` and `cli` are its command-line client. Tenants' access keys
//! never work here: only the operator's bearer token does.

pub mod api;
pub mod audit_log;
pub mod certificate;
pub mod cli;
pub mod client;
mod handlers;
mod keys;
mod metrics;
mod scrub;
mod tenants;
mod workers;

use api::{Endpoint, ErrorCode, PathArgs};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use coffre_engine::Engine;
pub(crate) use handlers::internal;
use std::sync::Arc;

pub struct Admin {
    pub engine: Arc<Engine>,
    pub iam: Arc<coffre_iam::Iam>,
    /// Signs erasure certificates.
    pub operator_key: Arc<coffre_engine::OperatorKey>,
    pub token: String,
    /// The gateway's cluster identity (to admit new nodes); none in embedded mode.
    pub identity: Option<Arc<coffre_cluster::Identity>>,
    /// More Prometheus text for `/metrics` (the S3 listener's counters).
    pub metrics: Vec<MetricsSource>,
    /// This gateway's metadata replica, when the metadata is replicated.
    pub replica: Option<Arc<coffre_engine::replica::Replica>>,
    /// The admin API's own request metrics.
    pub calls: metrics::AdminMetrics,
}

/// Renders some metrics in Prometheus text format.
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

/// A refused admin call: its code (which says its status) and a message.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = api::ErrorBody {
            code: self.code,
            error: self.message,
        };
        (status, Json(body)).into_response()
    }
}

/// What the IAM refused, as the admin API says it.
impl From<coffre_iam::IamError> for ApiError {
    fn from(e: coffre_iam::IamError) -> ApiError {
        use coffre_iam::IamError as I;
        let code = match e {
            I::NoSuchEntity(_) => ErrorCode::NoSuchEntity,
            I::NoSuchBucket => ErrorCode::NoSuchBucket,
            I::EntityAlreadyExists(_) => ErrorCode::AlreadyExists,
            I::DeleteConflict(_) => ErrorCode::Conflict,
            I::MalformedPolicy(_) | I::InvalidInput(_) => ErrorCode::InvalidArgument,
            I::Meta(m) => return coffre_engine::EngineError::from(m).into(),
            I::KeyUnavailable(_) => ErrorCode::Unavailable,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

/// What the engine refused, as the admin API says it: the one place engine errors become
/// admin error codes (a client's mistake is never a 500).
impl From<coffre_engine::EngineError> for ApiError {
    fn from(e: coffre_engine::EngineError) -> ApiError {
        use coffre_engine::{EngineError as E, MetaError as M};
        let code = match &e {
            E::Meta(M::NoSuchEntity(_)) => ErrorCode::NoSuchEntity,
            E::Meta(M::NoSuchBucket) => ErrorCode::NoSuchBucket,
            E::Meta(M::NoSuchKey | M::NoSuchVersion) => ErrorCode::NoSuchObject,
            E::Meta(M::EntityExists(_) | M::BucketExists | M::BucketTaken) => ErrorCode::AlreadyExists,
            // Object Lock binds the operator too: an erasure waits for the retention.
            E::Meta(M::DeleteConflict(_) | M::BucketNotEmpty | M::Locked(_) | M::InvalidBucketState(_))
            | E::Conflict(_) => ErrorCode::Conflict,
            E::Meta(M::InvalidRequest(_)) | E::InvalidRequest(_) => ErrorCode::InvalidArgument,
            E::Unavailable(_) | E::Meta(M::Unavailable(_)) => ErrorCode::Unavailable,
            E::Kms(coffre_engine::KmsError::NotFound(_)) => ErrorCode::NoSuchEntity,
            E::Kms(_) => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        };
        ApiError::new(code, e.to_string())
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// What a typed call was given: its path segments, query and body, parsed.
pub(crate) struct Call<E: Endpoint> {
    pub path: E::Path,
    pub query: E::Query,
    pub body: E::Body,
}

impl<E: Endpoint> Call<E> {
    fn parse(segments: Vec<String>, query: Option<&str>, body: &[u8]) -> ApiResult<Call<E>> {
        let path = E::Path::from_segments(segments)
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "the path does not name what this call needs"))?;
        let query = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("the query: {e}")))?;
        let body = if std::any::TypeId::of::<E::Body>() == std::any::TypeId::of::<()>()
            || body.iter().all(u8::is_ascii_whitespace)
        {
            serde_json::from_slice(b"null")
        } else {
            serde_json::from_slice(body)
        }
        .map_err(|e| {
            let code = match e.classify() {
                serde_json::error::Category::Data => ErrorCode::InvalidArgument,
                _ => ErrorCode::InvalidRequest,
            };
            ApiError::new(code, format!("the body: {e}"))
        })?;
        Ok(Call { path, query, body })
    }
}

/// Adds the route of `E`, answered by `handler` with what `E` declares.
fn route<E, F, Fut>(router: Router<Arc<Admin>>, handler: F) -> Router<Arc<Admin>>
where
    E: Endpoint,
    F: Fn(Arc<Admin>, Call<E>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = ApiResult<E::Answer>> + Send + 'static,
{
    use axum::extract::{RawPathParams, RawQuery};
    let serve = move |State(admin): State<Arc<Admin>>,
                      params: Result<RawPathParams, axum::extract::rejection::RawPathParamsRejection>,
                      RawQuery(query): RawQuery,
                      body: axum::body::Bytes| {
        let handler = handler.clone();
        async move {
            let segments = match params {
                Ok(p) => p.iter().map(|(_, v)| v.to_string()).collect(),
                Err(e) => return ApiError::new(ErrorCode::InvalidRequest, e.body_text()).into_response(),
            };
            let call = match Call::<E>::parse(segments, query.as_deref(), &body) {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
            match handler(admin, call).await {
                Ok(answer) => Json(answer).into_response(),
                Err(e) => e.into_response(),
            }
        }
    };
    let filter = axum::routing::MethodFilter::try_from(E::METHOD).expect("the call table names standard methods");
    router.route(E::PATH, axum::routing::on(filter, serve))
}

/// Adds the route of `E`, whose answer is not JSON (a stream, text).
fn route_raw<E, H, T>(router: Router<Arc<Admin>>, handler: H) -> Router<Arc<Admin>>
where
    E: Endpoint<Answer = api::Raw>,
    H: axum::handler::Handler<T, Arc<Admin>>,
    T: 'static,
{
    let filter = axum::routing::MethodFilter::try_from(E::METHOD).expect("the call table names standard methods");
    router.route(E::PATH, axum::routing::on(filter, handler))
}

/// The bearer-token check, as a layer in front of every route.
async fn require_token(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), admin.token.as_bytes()) {
        return ApiError::new(ErrorCode::Unauthorized, "a valid bearer token is required").into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The admin API's routes (one per entry of the call table), behind the token check.
pub fn router(admin: Arc<Admin>) -> Router {
    use api::*;
    let r = Router::new();
    let r = route_raw::<MetricsGet, _, _>(r, metrics::metrics);
    let r = route_raw::<OpenApiGet, _, _>(r, openapi_document);
    let r = route::<StatusGet, _, _>(r, |a, _| handlers::status(a));
    let r = route::<NodesGet, _, _>(r, |a, _| handlers::status(a));
    let r = route::<NodesCreate, _, _>(r, handlers::add_node);
    let r = route::<NodeDrain, _, _>(r, handlers::drain_node);
    let r = route::<NodesDelete, _, _>(r, handlers::remove_node);
    let r = route::<PlacementGet, _, _>(r, handlers::placement);
    let r = route::<MetaGet, _, _>(r, handlers::meta_status);
    let r = route::<MetaReplicasCreate, _, _>(r, handlers::add_replica);
    let r = route::<MetaReplicasDelete, _, _>(r, handlers::remove_replica);
    let r = route_raw::<MetaBackupGet, _, _>(r, handlers::meta_backup);
    let r = route::<PlacementProofGet, _, _>(r, handlers::placement_proof);
    let r = route::<AuditResidencyGet, _, _>(r, handlers::audit);
    let r = route::<AuditResidencyProofGet, _, _>(r, handlers::bucket_proof);
    let r = route::<AuditVerifyGet, _, _>(r, audit_log::verify);
    let r = route_raw::<AuditExportGet, _, _>(r, audit_log::export);
    let r = route::<AuditSearchGet, _, _>(r, audit_log::search);
    let r = route::<BucketsPolicyPut, _, _>(r, handlers::set_policy);
    let r = route::<BucketsQuotaPut, _, _>(r, tenants::set_bucket_quota);
    let r = route::<RebalanceGet, _, _>(r, |a, _| scrub::rebalance_status(a));
    let r = route::<RebalanceCreate, _, _>(r, scrub::rebalance);
    let r = route::<ScrubGet, _, _>(r, scrub::status);
    let r = route::<ScrubStart, _, _>(r, scrub::start);
    let r = route::<WorkersGet, _, _>(r, workers::list);
    let r = route::<WorkerPut, _, _>(r, workers::set);
    let r = route::<WorkerPause, _, _>(r, workers::pause);
    let r = route::<WorkerResume, _, _>(r, workers::resume);
    let r = route::<KeysGet, _, _>(r, keys::get);
    let r = route::<KeysRotateMaster, _, _>(r, keys::rotate_master);
    let r = route::<TenantsKmsKeysGet, _, _>(r, keys::list_kms_keys);
    let r = route::<TenantsKmsKeysCreate, _, _>(r, keys::create_kms_key);
    let r = route::<KmsKeyEnable, _, _>(r, |a, c| {
        keys::change_kms_key(a, c.path, coffre_engine::KmsAction::Enable)
    });
    let r = route::<KmsKeyDisable, _, _>(r, |a, c| {
        keys::change_kms_key(a, c.path, coffre_engine::KmsAction::Disable)
    });
    let r = route::<KmsKeyRotate, _, _>(r, |a, c| {
        keys::change_kms_key(a, c.path, coffre_engine::KmsAction::Rotate)
    });
    let r = route::<KmsKeyScheduleDeletion, _, _>(r, |a, c: Call<KmsKeyScheduleDeletion>| {
        let days = c.query.days.unwrap_or(coffre_engine::kms::MAX_PENDING_DAYS);
        keys::change_kms_key(a, c.path, coffre_engine::KmsAction::ScheduleDeletion { days })
    });
    let r = route::<KmsKeyCancelDeletion, _, _>(r, |a, c| {
        keys::change_kms_key(a, c.path, coffre_engine::KmsAction::CancelDeletion)
    });
    let r = route::<OperatorKeyGet, _, _>(r, tenants::operator_key);
    let r = route::<TenantsList, _, _>(r, tenants::list_tenants);
    let r = route::<TenantsCreate, _, _>(r, tenants::create_tenant);
    let r = route::<TenantsGet, _, _>(r, tenants::show_tenant);
    let r = route::<TenantsDelete, _, _>(r, tenants::delete_tenant);
    let r = route::<TenantsQuotaPut, _, _>(r, tenants::set_tenant_quota);
    let r = route::<TenantsOidcPut, _, _>(r, tenants::set_oidc);
    let r = route::<TenantsUsersGet, _, _>(r, tenants::list_users);
    let r = route::<TenantsUsersCreate, _, _>(r, tenants::create_user);
    let r = route::<TenantsUsersDelete, _, _>(r, tenants::delete_user);
    let r = route::<TenantsUsersPoliciesPut, _, _>(r, tenants::put_user_policy);
    let r = route::<TenantsUsersPoliciesDelete, _, _>(r, tenants::delete_user_policy);
    let r = route::<TenantsUsersKeysCreate, _, _>(r, tenants::create_key);
    let r = route::<TenantsKeysGet, _, _>(r, tenants::list_keys);
    let r = route::<TenantsKeysDelete, _, _>(r, tenants::delete_key);
    let r = route::<KeyEnable, _, _>(r, |a, c| tenants::set_key_enabled(a, c.path, true));
    let r = route::<KeyDisable, _, _>(r, |a, c| tenants::set_key_enabled(a, c.path, false));
    let r = route::<TenantsRolesGet, _, _>(r, tenants::list_roles);
    let r = route::<TenantsRolesPut, _, _>(r, tenants::put_role);
    let r = route::<TenantsRolesDelete, _, _>(r, tenants::delete_role);
    r.fallback(|| async { ApiError::new(ErrorCode::UnknownEndpoint, "unknown admin endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this method is not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn_with_state(admin.clone(), require_token))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            audit_log::record_call,
        ))
        .with_state(admin)
}

/// `GET /v1/openapi.json`: the document of this API.
async fn openapi_document() -> Response {
    Json(api::openapi::document()).into_response()
}

/// Connections the admin API takes at once (operators and scrapers, not clients).
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Serves the admin API until `shutdown` resolves, with the S3 listener's protections:
/// capped connections, a deadline for request heads, no client that stops reading.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use coffre_cluster::net::{accept, ConnectionLimiter, StallIo};
    use coffre_types::limits;
    use hyper_util::rt::{TokioIo, TokioTimer};
    metrics::spawn_refresher(&admin);
    let app = router(admin);
    let limiter = ConnectionLimiter::new(MAX_ADMIN_CONNECTIONS, MAX_ADMIN_CONNECTIONS);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits::HEADER_READ_TIMEOUT)
        .max_headers(limits::MAX_HEADERS);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            c = accept(&listener) => c,
            _ = &mut shutdown => return,
        };
        let Ok(permit) = limiter.admit(peer.ip()) else {
            tracing::warn!(%peer, "admin connection refused: too many open");
            continue;
        };
        // The caller's address, for the audit of admin calls.
        let app = app.clone().layer(axum::Extension(axum::extract::ConnectInfo(peer)));
        let svc = hyper_util::service::TowerToHyperService::new(app);
        let conn = http.serve_connection(TokioIo::new(StallIo::new(stream, limits::WRITE_STALL_TIMEOUT)), svc);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "admin connection ended with an error");
            }
        });
    }
}
