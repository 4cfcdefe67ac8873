//! The operator's admin API (HTTP, bearer token) on axum: cluster status and membership,
//! bucket residency policies and quotas, proof of placement, residency audits, tenants and
//! their users, keys, policies, roles and erasure; the background workers. JSON field names are stable
//! (docs/admin-api.md). `client` and `cli` are its command-line client. Tenants' access keys
//! never work here: only the operator's bearer token does.

pub mod audit_log;
pub mod certificate;
pub mod cli;
pub mod client;
mod handlers;
mod scrub;
mod tenants;
mod workers;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
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
}

/// Renders some metrics in Prometheus text format.
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

/// An admin API answer that is an error: `{"error": "..."}` with a status.
pub(crate) struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

pub(crate) type ApiResult = Result<Json<serde_json::Value>, ApiError>;

/// The bearer-token check, as a layer in front of every route.
async fn require_token(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(given.as_bytes(), admin.token.as_bytes()) {
        return ApiError(StatusCode::UNAUTHORIZED, "a valid bearer token is required".into()).into_response();
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The admin API's routes, behind the token check.
pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .route("/v1/status", get(handlers::status))
        .route("/v1/nodes", get(handlers::status).post(handlers::add_node))
        .route("/v1/nodes/{id}/drain", post(handlers::drain_node))
        .route("/v1/nodes/{id}", delete(handlers::remove_node))
        .route("/v1/placement", get(handlers::placement))
        .route("/v1/meta", get(handlers::meta_status))
        .route("/v1/meta/replicas", post(handlers::add_replica))
        .route("/v1/meta/backup", get(handlers::meta_backup))
        .route("/v1/meta/replicas/{id}", delete(handlers::remove_replica))
        .route("/v1/audit/residency", get(handlers::audit))
        .route("/v1/audit/verify", get(audit_log::verify))
        .route("/v1/audit/export", get(audit_log::export))
        .route("/v1/audit/search", get(audit_log::search))
        .route("/v1/buckets/{bucket}/policy", put(handlers::set_policy))
        .route("/v1/buckets/{bucket}/quota", put(tenants::set_bucket_quota))
        .route("/v1/rebalance", get(scrub::rebalance_status).post(scrub::rebalance))
        .route("/v1/scrub", get(scrub::status))
        .route("/v1/scrub/start", post(scrub::start))
        .route("/v1/workers", get(workers::list))
        .route("/v1/workers/{name}", put(workers::set))
        .route("/v1/workers/{name}/{action}", post(workers::control))
        .route("/v1/operator-key", get(tenants::operator_key))
        .route("/v1/tenants", get(tenants::list_tenants).post(tenants::create_tenant))
        .route(
            "/v1/tenants/{t}",
            get(tenants::show_tenant).delete(tenants::delete_tenant),
        )
        .route("/v1/tenants/{t}/quota", put(tenants::set_tenant_quota))
        .route("/v1/tenants/{t}/oidc", put(tenants::set_oidc))
        .route(
            "/v1/tenants/{t}/users",
            get(tenants::list_users).post(tenants::create_user),
        )
        .route("/v1/tenants/{t}/users/{u}", delete(tenants::delete_user))
        .route(
            "/v1/tenants/{t}/users/{u}/policies/{p}",
            put(tenants::put_user_policy).delete(tenants::delete_user_policy),
        )
        .route("/v1/tenants/{t}/users/{u}/keys", post(tenants::create_key))
        .route("/v1/tenants/{t}/keys", get(tenants::list_keys))
        .route("/v1/tenants/{t}/keys/{k}", delete(tenants::delete_key))
        .route("/v1/tenants/{t}/keys/{k}/{action}", post(tenants::key_action))
        .route("/v1/tenants/{t}/roles", get(tenants::list_roles))
        .route(
            "/v1/tenants/{t}/roles/{r}",
            put(tenants::put_role).delete(tenants::delete_role),
        )
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "unknown admin endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError(
                StatusCode::METHOD_NOT_ALLOWED,
                "this method is not allowed on this endpoint".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(admin.clone(), require_token))
        .layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            audit_log::record_call,
        ))
        .with_state(admin)
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
