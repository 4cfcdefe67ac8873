//! The audit log through the admin API (verify, export, search), the audit of the admin API's
//! own calls, and the offline verifier (`coffre audit verify --dir --trust`).

use crate::api::{self, Endpoint, ErrorCode};
use crate::{internal, Admin, ApiError, ApiResult, Call};
use axum::extract::{Query, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use coffre_engine::audit::{self, AuditLog, Event, Expectations, Report};
use std::path::Path;
use std::sync::Arc;

/// Every call of the admin API but metrics scrapes is audited, refused ones too, and answered
/// only once its entry is durable. A call runs to its end in a task of its own even if its
/// client hangs up, and every change it makes carries its audit note
/// (`coffre_engine::audit_notes`): no change is left without its entry.
pub(crate) async fn record_call(State(admin): State<Arc<Admin>>, req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    // The call's name from the table; a path it does not know is `Unknown`.
    let op = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .and_then(|m| api::operation_name(&method, m.as_str()))
        .unwrap_or("Unknown");
    let started = std::time::Instant::now();
    if op == api::MetricsGet::NAME {
        let res = next.run(req).await;
        admin.calls.record(op, res.status().as_u16(), started.elapsed());
        return res;
    }
    let request_id = hex::encode_upper(coffre_types::random_bytes::<12>());
    let Some(scope) = admin.engine.audit_scope(&request_id) else {
        let res = next.run(req).await;
        admin.calls.record(op, res.status().as_u16(), started.elapsed());
        return res;
    };
    let query = req.uri().query().map(str::to_string);
    let mut e = Event::admin(op, "", 0);
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
        let res = match scope.append(vec![e]).await {
            Ok(_) => res,
            Err(err) => ApiError::new(ErrorCode::Unavailable, err.to_string()).into_response(),
        };
        admin.calls.record(op, res.status().as_u16(), started.elapsed());
        res
    });
    call.await.unwrap_or_else(|e| {
        tracing::error!(error = %e, "admin call failed");
        ApiError::new(ErrorCode::Internal, "internal error").into_response()
    })
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
    admin
        .engine
        .audit()
        .cloned()
        .ok_or_else(|| ApiError::new(ErrorCode::NoAuditLog, "this gateway keeps no audit log (audit = off)"))
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
            .map_err(|e| ApiError::new(ErrorCode::InvalidArgument, e))
    };
    Ok((p(from)?, p(to)?))
}

/// Verifies this gateway's chain (from its segments and the head in the metadata), after
/// signing what is not signed yet.
pub(crate) async fn verify(admin: Arc<Admin>, call: Call<api::AuditVerifyGet>) -> ApiResult<api::AuditReport> {
    let q = call.query;
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
    Ok(report_of(report))
}

/// A verification's report as the admin API (and `--json`) gives it.
pub fn report_of(r: Report) -> api::AuditReport {
    api::AuditReport {
        ok: r.ok,
        segments: r.segments,
        entries: r.entries,
        redacted: r.redacted,
        checkpoints: r.checkpoints,
        first_entry: r.first_entry,
        last_entry: r.last_entry,
        last_signed: r.last_signed,
        unsigned_tail: r.unsigned_tail,
        torn_tail: r.torn_tail,
        gateway: r.gateway,
        problem: r.problem.map(|p| api::AuditProblem {
            position: api::AuditPosition {
                segment: p.position.segment,
                line: p.position.line,
                entry: p.position.entry,
            },
            what: p.what,
        }),
    }
}

fn event_of(found: audit::Found) -> api::AuditEvent {
    let e = found.event;
    api::AuditEvent {
        n: found.n,
        time: e.time,
        request_id: e.request_id,
        tenant: e.tenant,
        principal: e.principal,
        access_key: e.access_key,
        source: e.source,
        tls: e.tls,
        op: e.op,
        bucket: e.bucket,
        key: e.key,
        version_id: e.version_id,
        status: e.status,
        error: e.error,
        bytes_in: e.bytes_in,
        bytes_out: e.bytes_out,
        ms: e.ms,
        detail: e.detail,
    }
}

/// Streams a tenant's events with what proves them (see `audit::export`).
pub(crate) async fn export(
    State(admin): State<Arc<Admin>>,
    Query(q): Query<api::ExportQuery>,
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

pub(crate) async fn search(admin: Arc<Admin>, call: Call<api::AuditSearchGet>) -> ApiResult<api::AuditSearch> {
    let q = call.query;
    let log = log_of(&admin)?;
    let (since, until) = times(&q.since, &q.until)?;
    let query = audit::Query {
        tenant: q.tenant,
        bucket: q.bucket,
        key: q.key,
        op: q.op,
        since,
        until,
        limit: q.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
    };
    let dir = log.dir.clone();
    let found = tokio::task::spawn_blocking(move || audit::search(&dir, &query))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    Ok(api::AuditSearch {
        count: found.len() as u64,
        events: found.into_iter().map(event_of).collect(),
    })
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
pub fn verify_offline(
    path: &Path,
    trust: &Path,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<api::AuditReport, String> {
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
        audit::verify_dir(path, from, to, expect).map(report_of).map_err(at)
    } else {
        audit::verify_export(path, expect).map(report_of).map_err(at)
    }
}

/// Prints a report; whether it holds.
pub fn print_report(r: &api::AuditReport, json: bool) -> bool {
    if json {
        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default());
    } else if let Some(p) = &r.problem {
        let at = &p.position;
        println!(
            "audit chain BROKEN at segment {}, line {}, entry {}: {}",
            at.segment, at.line, at.entry, p.what
        );
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
        // The names scripts search the audit for.
        let name = |m: &Method, p: &str| api::operation_name(m, p);
        assert_eq!(name(&Method::POST, "/v1/nodes/{id}/drain"), Some("NodeDrain"));
        assert_eq!(name(&Method::DELETE, "/v1/nodes/{id}"), Some("NodesDelete"));
        assert_eq!(name(&Method::POST, "/v1/workers/{name}/pause"), Some("WorkerPause"));
        assert_eq!(name(&Method::PUT, "/v1/workers/{name}"), Some("WorkerPut"));
        assert_eq!(name(&Method::GET, "/v1/workers"), Some("WorkersGet"));
        assert_eq!(name(&Method::POST, "/v1/scrub/start"), Some("ScrubStart"));
        assert_eq!(name(&Method::DELETE, "/v1/tenants/{t}"), Some("TenantsDelete"));
        assert_eq!(name(&Method::POST, "/v1/tenants"), Some("TenantsCreate"));
        assert_eq!(
            name(&Method::DELETE, "/v1/tenants/{t}/users/{u}"),
            Some("TenantsUsersDelete")
        );
        assert_eq!(
            name(&Method::PUT, "/v1/buckets/{bucket}/policy"),
            Some("BucketsPolicyPut")
        );
        assert_eq!(tenant_of("/v1/tenants/acme/users", None), Some("acme".into()));
        assert_eq!(
            tenant_of("/v1/tenants", Some("name=acme&quota_bytes=1")),
            Some("acme".into())
        );
        assert_eq!(tenant_of("/v1/nodes", None), None);
    }
}
