//! The HTTP server: accepts connections, authenticates, dispatches, renders errors.

use crate::audit::{ErrorCode, Trail};
use crate::auth::{self, RequestParts};
use crate::context::{Ctx, Gateway, Origin};
use crate::http::{error_response, full, Res};
use crate::operations::{self, route, Op, Routed};
use crate::router;
use crate::S3Error;
use crate::{cors, iam_api, post, veeam};
use coffre_cluster::net::{self, ConnectionLimiter, Refusal, StallIo};
use coffre_iam::{Caller, Target};
use coffre_types::limits;
use http::{HeaderValue, Request, Response};
use hyper::body::Incoming;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

impl Gateway {
    /// One request, in its trace span (`s3.request`, named after its operation once known).
    async fn handle(self: Arc<Self>, req: Request<Incoming>, origin: Origin) -> Res {
        use tracing::field::Empty;
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:016X}{:08X}", coffre_types::now_millis(), n as u32);
        let span = tracing::info_span!(
            target: "coffre::trace",
            "s3.request",
            otel.name = Empty,
            otel.kind = "server",
            request_id = %request_id,
            tenant = Empty,
            status = Empty
        );
        tracing::Instrument::instrument(self.handle_traced(req, origin, request_id), span).await
    }

    async fn handle_traced(self: Arc<Self>, req: Request<Incoming>, origin: Origin, request_id: String) -> Res {
        let path = req.uri().path().to_string();
        let head = req.method() == http::Method::HEAD;
        if req.method() == http::Method::GET
            && path == "/health"
            && req.uri().query().is_none()
            && req.headers().get("authorization").is_none()
        {
            return self.health();
        }
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let mut trail = Trail::new(req.headers());
        // A browser's request: its response, error or not, carries the bucket's CORS grant.
        let cors_request = req.headers().contains_key("origin").then(|| {
            let bucket = router::target(req.headers(), &path, self.config.domain.as_deref())
                .map(|(b, _)| b)
                .unwrap_or_default();
            (bucket, req.headers().clone())
        });
        // Every change the request makes carries its audit note (coffre_engine::audit_notes).
        let scope = self.engine.audit_scope(&request_id);
        let outcome = if method == http::Method::OPTIONS {
            trail.op = "PreflightRequest".into();
            router::target(req.headers(), &path, self.config.domain.as_deref()).and_then(|(bucket, _)| {
                trail.bucket = bucket.clone();
                cors::preflight(&self.engine, &bucket, req.headers())
            })
        } else {
            let handling = self.clone().dispatch(req, origin, &mut trail);
            match &scope {
                Some(scope) => scope.run(handling).await,
                None => handling.await,
            }
        };
        let mut error_code = None;
        let mut res = match outcome {
            Ok(r) => r,
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(code = e.code, message = %e.message, %path, "request failed");
                error_code = Some(e.code);
                error_response(&e, &path, &request_id, head)
            }
        };
        if let Some((bucket, headers)) = cors_request.filter(|_| method != http::Method::OPTIONS) {
            cors::decorate(&self.engine, &bucket, method.as_str(), &headers, &mut res);
        }
        crate::audit::file_under_owner(&self.engine, &mut trail);
        if let Some(v) = res.headers().get("x-amz-version-id").and_then(|v| v.to_str().ok()) {
            trail.version_id = Some(v.to_string());
        }
        let code = error_code.or_else(|| res.extensions().get::<ErrorCode>().map(|c| c.0));
        let bytes_out = res
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .filter(|_| !head)
            .unwrap_or(0);
        // Acknowledged only once its audit entry is durable.
        if let Some(scope) = scope {
            let ms = started.elapsed().as_millis() as u64;
            let event = trail.event(&request_id, &origin, res.status().as_u16(), code, bytes_out, ms);
            let mut entries = trail.touched_entries(&self.engine, &event);
            entries.insert(0, event);
            if let Err(e) = scope.append(entries).await {
                tracing::error!(error = %e, %path, "request refused: its audit entry could not be written");
                let e =
                    S3Error::service_unavailable("The audit log cannot record this request; it was not acknowledged.");
                res = error_response(&e, &path, &request_id, head);
            }
        }
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            res.headers_mut().insert("x-amz-request-id", v);
        }
        res.headers_mut().insert("server", HeaderValue::from_static("Coffre"));
        let took = started.elapsed();
        let status = res.status().as_u16();
        let span = tracing::Span::current();
        span.record("otel.name", trail.op.as_str());
        span.record("tenant", trail.tenant.as_str());
        span.record("status", status);
        let code = (status >= 400).then(|| code.unwrap_or("Unknown"));
        self.metrics.record(&crate::metrics::Answered {
            operation: &trail.op,
            tenant: &trail.tenant,
            status,
            error: code,
            bytes_in: trail.bytes_in,
            bytes_out,
            took,
        });
        // Access log, one line per request: who did what, never a secret, object data or key.
        tracing::info!(
            target: "coffre::access",
            request_id,
            tenant = trail.tenant,
            operation = trail.op,
            bucket = trail.bucket,
            %method,
            status,
            error = code.unwrap_or(""),
            bytes_in = trail.bytes_in,
            bytes_out,
            duration_ms = took.as_secs_f64() * 1e3,
            peer = %origin.peer,
            "request"
        );
        res
    }

    fn health(&self) -> Res {
        let mut r = Response::new(full("ok\n"));
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        r
    }

    /// The S3 listener's metrics, for the admin API's `/metrics`.
    pub fn metrics_text(&self) -> String {
        let mut out = format!(
            "# HELP coffre_requests_total S3 requests received (all operations).\n# TYPE coffre_requests_total counter\ncoffre_requests_total {}\n# HELP coffre_errors_total S3 requests refused.\n# TYPE coffre_errors_total counter\ncoffre_errors_total {}\n",
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        );
        self.metrics.render(&mut out);
        if let Some(limiter) = self.connections.get() {
            coffre_types::metrics::gauge_header(&mut out, "coffre_s3_open_connections", "S3 connections open.");
            coffre_types::metrics::sample(&mut out, "coffre_s3_open_connections", &[], limiter.open());
        }
        out
    }

    async fn dispatch(
        self: Arc<Self>,
        req: Request<Incoming>,
        origin: Origin,
        trail: &mut Trail,
    ) -> Result<Res, S3Error> {
        let (parts, body) = req.into_parts();
        let raw_path = parts.uri.path().to_string();
        let raw_query = parts.uri.query().unwrap_or("").to_string();
        let (bucket, key) = router::target(&parts.headers, &raw_path, self.config.domain.as_deref())?;
        trail.bucket = bucket.clone();
        trail.key = key.clone();
        trail.access_key = crate::audit::claimed_access_key(&parts.headers, &raw_query);
        // With replicated metadata, this gateway first catches up with every write
        // acknowledged anywhere (keys, policies, objects): what follows reads linearizably.
        self.engine.barrier().await?;
        // A browser's form upload authenticates with its own fields, not with headers.
        if !parts.headers.contains_key("authorization")
            && !bucket.is_empty()
            && post::is_form_upload(&parts.method, &parts.headers, &key, &raw_query)
        {
            trail.op = "PostObject".into();
            return post::post_object(self.clone(), &parts.headers, &bucket, body, origin, trail).await;
        }
        // The tenant's IAM and STS query APIs share the listener (POST / with a form).
        if bucket.is_empty() && iam_api::is_query_api(&parts.method, &parts.headers, &raw_query) {
            return iam_api::handle(self.clone(), parts, body, origin, trail).await;
        }
        // The operation is named before the signature is checked: a refused request is
        // audited with what it attempted.
        let op = route(
            &parts.method,
            &parts.headers,
            &raw_path,
            &raw_query,
            self.config.domain.as_deref(),
        );
        if let Ok(op) = &op {
            trail.op = op.op.name().into();
            trail.version_id = op.query.iter().find(|(k, _)| k == "versionId").map(|(_, v)| v.clone());
        }
        let authenticating = tracing::info_span!(target: "coffre::trace", "authenticate").entered();
        let verified = auth::verify(
            &RequestParts {
                method: parts.method.as_str(),
                raw_path: &raw_path,
                raw_query: &raw_query,
                headers: &parts.headers,
            },
            self.iam.as_ref(),
            &self.config.region,
        );
        drop(authenticating);
        let (verified, caller) = match verified? {
            Some((v, c)) => (Some(v), c),
            None => (None, Caller::anonymous()),
        };
        trail.caller(&caller, verified.as_ref().map(|v| v.access_key.as_str()));
        crate::audit::draft(&self.engine, trail, &origin);
        let Routed { op, bucket, key, query } = op?;
        let ctx = Ctx {
            touched: trail.touched.clone(),
            ..Ctx::new(self.clone(), parts.headers, query, verified, caller, origin)
        };
        authorize(&ctx, op, &bucket, &key)?;
        if let (Some(expected), false) = (ctx.h("x-amz-expected-bucket-owner"), bucket.is_empty()) {
            if op != Op::CreateBucket && !auth::constant_time_eq(expected, &ctx.owner_of(&bucket)?) {
                return Err(S3Error::access_denied("Access Denied: the bucket has another owner"));
            }
        }
        // Veeam's SOSAPI objects are answered by the store itself.
        if veeam::is_sosapi_object(&key) {
            match op {
                Op::GetObject | Op::HeadObject => return veeam::get(&ctx, &bucket, &key, op == Op::HeadObject),
                Op::PutObject | Op::CopyObject | Op::DeleteObject | Op::CreateMultipartUpload => {
                    return Err(veeam::refuse_write())
                }
                _ => {}
            }
        }
        operations::dispatch(op, &ctx, &bucket, &key, body).await
    }
}

/// Whether the caller may do what the request asks: its operation's action on its target,
/// and every further action its headers call for (retention, legal hold, tags…).
fn authorize(ctx: &Ctx, op: Op, bucket: &str, key: &str) -> Result<(), S3Error> {
    let Some(action) = op.action(ctx.q("versionId").is_some()) else {
        return Ok(());
    };
    let target = op.target(bucket, key);
    if let Err(denied) = ctx.authorize(action, target) {
        // A read of a key that does not exist is a 404 to whoever may list it, as
        // S3 answers (its GetObject permission aside); a 403 to anyone else.
        return Err(match (op, target) {
            (Op::GetObject | Op::HeadObject, Target::Object(b, k))
                if matches!(
                    ctx.engine().head(b, k),
                    Err(coffre_engine::EngineError::Meta(coffre_engine::MetaError::NoSuchKey))
                ) && ctx.may_list(b, k) =>
            {
                S3Error::no_such_key("The specified key does not exist.")
            }
            _ => denied,
        });
    }
    for action in op.header_actions(&ctx.headers) {
        ctx.authorize(action, target)?;
    }
    Ok(())
}

/// A TLS configuration for the S3 listener: TLS 1.3 and 1.2, AEAD cipher suites only (the
/// only ones rustls has), certificate chain and key from PEM files.
pub fn tls_config(cert: &std::path::Path, key: &std::path::Path) -> Result<Arc<rustls::ServerConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// What bounds the S3 listener's connections.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// A request head must arrive within this (also how long an idle keep-alive connection
    /// is kept: hyper starts the clock when the connection waits for a request).
    pub header_read_timeout: Duration,
    /// A client that takes nothing of a response for this long is dropped.
    pub write_stall_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits {
            header_read_timeout: limits::HEADER_READ_TIMEOUT,
            write_stall_timeout: limits::WRITE_STALL_TIMEOUT,
            max_connections: limits::MAX_CONNECTIONS,
            max_connections_per_ip: limits::MAX_CONNECTIONS_PER_IP,
        }
    }
}

/// The answer to a connection over a cap, written on the socket before it is closed.
fn slow_down(refusal: &Refusal) -> Vec<u8> {
    let why = match refusal {
        Refusal::TooManyConnections => "too many connections are open",
        Refusal::TooManyFromAddress => "too many connections are open from your address",
    };
    let e = S3Error::slow_down(format!("Please reduce your request rate: {why}."));
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message></Error>",
        e.code, e.message
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves S3 on `listener` (over TLS when `tls` is given) until `shutdown` resolves, then lets
/// in-flight requests finish. Connections are capped in all and per client address (a 503
/// SlowDown beyond), request heads must arrive within a timeout, and a client that stops
/// reading its response is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    gw: Arc<Gateway>,
    limits: ServeLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let max = net::connections_that_fit(limits.max_connections, coffre_types::limits::RESERVED_DESCRIPTORS);
    let limiter = ConnectionLimiter::new(max, limits.max_connections_per_ip);
    let _ = gw.connections.set(limiter.clone());
    tracing::info!(
        connections = max,
        per_address = limits.max_connections_per_ip,
        "S3 listener limits"
    );
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(coffre_types::limits::MAX_HEADERS);
    tokio::pin!(shutdown);
    loop {
        let (mut stream, peer) = tokio::select! {
            c = net::accept(&listener) => c,
            _ = &mut shutdown => break,
        };
        let permit = match limiter.admit(peer.ip()) {
            Ok(p) => p,
            Err(refusal) => {
                tracing::warn!(%peer, ?refusal, "connection refused");
                if acceptor.is_none() {
                    tokio::spawn(async move {
                        use tokio::io::AsyncWriteExt;
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), stream.write_all(&slow_down(&refusal))).await;
                    });
                }
                continue;
            }
        };
        let gw = gw.clone();
        let origin = Origin {
            peer,
            secure: acceptor.is_some(),
        };
        let svc = hyper::service::service_fn(move |req| {
            // A request runs to its end in a task of its own, even if its client hangs up
            // (hyper then drops this future, not the task): a change it makes is then
            // finished and audited, not cut between its commit and its audit entry.
            let handling = tokio::spawn(gw.clone().handle(req, origin));
            async move {
                Ok::<_, std::convert::Infallible>(handling.await.unwrap_or_else(|e| {
                    tracing::error!(error = %e, "request handler failed");
                    error_response(
                        &S3Error::internal("We encountered an internal error. Please try again."),
                        "",
                        "",
                        false,
                    )
                }))
            }
        });
        let stall = limits.write_stall_timeout;
        let http = http.clone();
        match &acceptor {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(StallIo::new(stream, stall)), svc));
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task; the connection joins the
                // graceful shutdown once established.
                let (acceptor, watcher) = (acceptor.clone(), graceful.watcher());
                tokio::spawn(async move {
                    let _permit = permit;
                    let handshake = acceptor.accept(stream);
                    let tls = match tokio::time::timeout(coffre_types::limits::TLS_HANDSHAKE_TIMEOUT, handshake).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
                    };
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(StallIo::new(tls, stall)), svc));
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    tracing::info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(coffre_types::limits::SHUTDOWN_GRACE) => tracing::warn!("in-flight requests still running after the grace; stopping"),
    }
}
