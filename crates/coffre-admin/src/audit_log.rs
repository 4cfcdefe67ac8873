//! The audit log through the admin API (verify, export, search), the audit of the admin API's
//! own calls, and the offline verifier (`coffre audit verify --dir --trust`).

use crate::{internal, Admin, ApiError};
use axum::extract::{Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use coffre_engine::audit::{self, AuditLog, Event, Expectations, Report};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;

/// Every call of the admin API but metrics scrapes is audited, refused ones too, and answered
/// only once its entry is durable. A call runs to its end in a task of its own even if its
/// client hangs up, and every change it makes carries its audit note
/// (`coffre_engine::audit_notes`): no change is left without its entry.
pub(crate) async fn record_call(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    if method == axum::http::Method::GET && path == "/metrics" {
        return next.run(req).await;
    }
    let request_id = hex::encode_upper(coffre_types::random_bytes::<12>());
    let Some(scope) = admin.engine.audit_scope(&request_id) else {
        return next.run(req).await;
    };
    let query = req.uri().query().map(str::to_string);
    let mut e = Event::admin(&admin_op(&method, &path), "", 0);
    e.request_id = request_id;
    e.detail = Some(match &query {
        Some(q) => format!("{method} {path}?{q}"),
        None => format!("{method} {path}"),
    });
    e.source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.to_string());
    if let Some(t) = tenant_of(&path, query.as_deref()) {
        e.tenant = t;
    }
    let started = std::time::Instant::now();
    let call = tokio::spawn(async move {
        let draft = e.clone();
        let res = scope
            .run(async move {
                coffre_engine::audit_notes::draft(&draft);
                next.run(req).await
            })
            .await;
        e.status = res.status().as_u16();
        e.ms = started.elapsed().as_millis() as u64;
        if e.status == 401 {
            e.principal = "unauthenticated".into();
            e.error = Some("Unauthorized".into());
        }
        match scope.append(vec![e]).await {
            Ok(_) => res,
            Err(err) => ApiError(StatusCode::SERVICE_UNAVAILABLE, err.to_string()).into_response(),
        }
    });
    call.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "admin call failed");
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()).into_response()
    })
}

/// `admin:NodeDrain`, `admin:TenantDelete`…: the action a method and path stand for.
fn admin_op(method: &axum::http::Method, path: &str) -> String {
    let segs: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let verb = match method.as_str() {
        "GET" => "Get",
        "POST" => "Create",
        "PUT" => "Put",
        "DELETE" => "Delete",
        other => other,
    };
    let name = match segs.as_slice() {
        ["nodes", _, "drain"] => return "NodeDrain".into(),
        ["workers", _, action] => return format!("Worker{}", capitalize(action)),
        ["workers", _] => return "WorkerPut".into(),
        ["scrub", "start"] => return "ScrubStart".into(),
        ["tenants", _, "keys", _, action] => return format!("Key{}", capitalize(action)),
        // Resource names, without the identifiers between them.
        s => s
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, w)| capitalize(w))
            .collect::<String>(),
    };
    format!("{name}{verb}")
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| {
            f.to_uppercase()
                .chain(c.filter(|ch| ch.is_ascii_alphanumeric()))
                .collect()
        })
        .unwrap_or_default()
}

/// The tenant a `/v1/tenants/T/…` call (or the creation `/v1/tenants?name=T`) concerns.
fn tenant_of(path: &str, query: Option<&str>) -> Option<String> {
    let decode = |t: &str| percent_encoding::percent_decode_str(t).decode_utf8_lossy().into_owned();
    if path == "/v1/tenants" {
        let name = query?.split('&').find_map(|p| p.strip_prefix("name="))?;
        return (!name.is_empty()).then(|| decode(name));
    }
    let rest = path.strip_prefix("/v1/tenants/")?;
    let t = rest.split('/').next()?;
    (!t.is_empty()).then(|| decode(t))
}

fn log_of(admin: &Admin) -> Result<Arc<AuditLog>, ApiError> {
    admin.engine.audit().cloned().ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "this gateway keeps no audit log (audit = off)".into(),
        )
    })
}

/// `2026-12-01`, `2026-12-01T10:00:00Z`, or an age (`7d`, `12h`) before now → milliseconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    if let Some(age) = audit::parse_age(s) {
        return Ok(coffre_types::now_millis().saturating_sub(age));
    }
    coffre_types::time::parse_iso8601(s)
        .and_then(|t| u64::try_from(t).ok())
        .ok_or_else(|| format!("{s:?}: a date (2026-12-01, 2026-12-01T10:00:00Z) or an age (7d, 12h, 30m)"))
}

fn times(from: &Option<String>, to: &Option<String>) -> Result<(Option<u64>, Option<u64>), ApiError> {
    let p = |s: &Option<String>| {
        s.as_deref()
            .map(parse_time)
            .transpose()
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e))
    };
    Ok((p(from)?, p(to)?))
}

#[derive(Deserialize)]
pub(crate) struct Range {
    from: Option<String>,
    to: Option<String>,
}

/// Verifies this gateway's chain (from its segments and the head in the metadata), after
/// signing what is not signed yet.
pub(crate) async fn verify(State(admin): State<Arc<Admin>>, Query(q): Query<Range>) -> Result<Json<Report>, ApiError> {
    let log = log_of(&admin)?;
    let (from, to) = times(&q.from, &q.to)?;
    log.checkpoint().await.map_err(internal)?;
    let head = admin.engine.meta().audit_head().map_err(internal)?;
    let expect = Expectations {
        public_key: log.public_key,
        gateway: Some(log.gateway.clone()),
        tenant: None,
        tenant_tag: None,
        head,
    };
    let dir = log.dir.clone();
    let report = tokio::task::spawn_blocking(move || audit::verify_dir(&dir, from, to, expect))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(report))
}

#[derive(Deserialize)]
pub(crate) struct ExportQuery {
    tenant: String,
    from: Option<String>,
    to: Option<String>,
}

/// Streams a tenant's events with what proves them (see `audit::export`).
pub(crate) async fn export(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let log = log_of(&admin)?;
    let (from, to) = times(&q.from, &q.to)?;
    log.checkpoint().await.map_err(internal)?;
    // Written to a file first (the chain is read once, the answer's memory stays small),
    // unlinked once open.
    let path = log.dir.join(format!(".export-{}.tmp", coffre_engine::new_id("")));
    let (p, l) = (path.clone(), log.clone());
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)?;
        let mut out = std::io::BufWriter::new(file);
        audit::export(&l, &q.tenant, from, to, &mut out)?;
        Ok(())
    })
    .await
    .map_err(internal)?
    .map_err(internal)?;
    crate::handlers::stream_file(&path, "application/x-ndjson").await
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    tenant: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    op: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

pub(crate) async fn search(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<SearchQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let log = log_of(&admin)?;
    let (since, until) = times(&q.since, &q.until)?;
    let query = audit::Query {
        tenant: q.tenant,
        bucket: q.bucket,
        key: q.key,
        op: q.op,
        since,
        until,
        limit: q.limit,
    };
    let dir = log.dir.clone();
    let found = tokio::task::spawn_blocking(move || audit::search(&dir, &query))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(Json(serde_json::json!({ "count": found.len(), "events": found })))
}

/// What an offline verifier trusts, from `--trust FILE`: a CA certificate (then the audit
/// certificate comes with the segments, `audit.pem`, or in the export's header) or the audit
/// public key itself (`audit.pub` of an embedded server).
fn trusted_key(trust: &Path, certificate: Option<String>) -> Result<(Option<String>, [u8; 32]), String> {
    let text = std::fs::read_to_string(trust).map_err(|e| format!("{}: {e}", trust.display()))?;
    if text.contains("BEGIN CERTIFICATE") {
        let cert =
            certificate.ok_or("the segments or the export carry no audit certificate to check against the CA")?;
        let (gateway, key) = coffre_cluster::audit_cert::verify_audit_certificate(&text, &cert)?;
        return Ok((Some(gateway), key));
    }
    let key = audit::parse_public_key(&text)
        .ok_or_else(|| format!("{}: neither a CA certificate nor an audit public key", trust.display()))?;
    Ok((None, key))
}

/// `coffre audit verify --dir DIR --trust FILE`: verifies copied segments (a directory) or
/// an export (a file) without the server.
pub fn verify_offline(path: &Path, trust: &Path, from: Option<u64>, to: Option<u64>) -> Result<Report, String> {
    let at = |e: std::io::Error| format!("{}: {e}", path.display());
    // The audit certificate, if any: beside the segments, or in the export's header.
    let certificate = if path.is_dir() {
        std::fs::read_to_string(path.join("audit.pem")).ok()
    } else {
        audit::export_header(path)
            .map_err(at)?
            .as_ref()
            .and_then(|h| h.get("certificate"))
            .and_then(|c| c.as_str())
            .map(str::to_string)
    };
    let (gateway, public_key) = trusted_key(trust, certificate)?;
    let expect = Expectations {
        public_key,
        gateway,
        tenant: None,
        tenant_tag: None,
        head: None,
    };
    if path.is_dir() {
        audit::verify_dir(path, from, to, expect).map_err(at)
    } else {
        audit::verify_export(path, expect).map_err(at)
    }
}

/// Prints a report; whether it holds.
pub fn print_report(r: &Report, json: bool) -> bool {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
    } else if let Some(p) = &r.problem {
        println!("audit chain BROKEN at {p}");
    } else {
        println!(
            "audit chain OK: {} segments, entries {}..{} ({} entries, {} redacted), {} checkpoints, last signed entry {}{}",
            r.segments,
            r.first_entry.map_or("-".into(), |n| n.to_string()),
            r.last_entry.map_or("-".into(), |n| n.to_string()),
            r.entries,
            r.redacted,
            r.checkpoints,
            r.last_signed.map_or("-".into(), |n| n.to_string()),
            if r.unsigned_tail > 0 {
                format!(" ({} entries after it not yet signed)", r.unsigned_tail)
            } else {
                String::new()
            }
        );
    }
    r.ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_calls_are_named() {
        use axum::http::Method;
        assert_eq!(admin_op(&Method::POST, "/v1/nodes/n1/drain"), "NodeDrain");
        assert_eq!(admin_op(&Method::DELETE, "/v1/nodes/n1"), "NodesDelete");
        assert_eq!(admin_op(&Method::POST, "/v1/workers/scrub/pause"), "WorkerPause");
        assert_eq!(admin_op(&Method::PUT, "/v1/workers/scrub"), "WorkerPut");
        assert_eq!(admin_op(&Method::GET, "/v1/workers"), "WorkersGet");
        assert_eq!(admin_op(&Method::POST, "/v1/scrub/start"), "ScrubStart");
        assert_eq!(admin_op(&Method::GET, "/v1/scrub"), "ScrubGet");
        assert_eq!(admin_op(&Method::POST, "/v1/rebalance"), "RebalanceCreate");
        assert_eq!(admin_op(&Method::DELETE, "/v1/tenants/acme"), "TenantsDelete");
        assert_eq!(admin_op(&Method::PUT, "/v1/buckets/b/policy"), "BucketsPolicyPut");
        assert_eq!(admin_op(&Method::POST, "/v1/tenants/t/keys/AK/rotate"), "KeyRotate");
        assert_eq!(tenant_of("/v1/tenants/acme/users", None), Some("acme".into()));
        assert_eq!(
            tenant_of("/v1/tenants", Some("name=acme&quota_bytes=1")),
            Some("acme".into())
        );
        assert_eq!(tenant_of("/v1/nodes", None), None);
    }
}
