//! The HTTP server: accepts connections, authenticates, dispatches, renders errors.

use crate::audit::{ErrorCode, Trail};
use crate::auth::{self, RequestParts};
use crate::context::{Ctx, Gateway, Origin};
use crate::http::{error_response, full, Res};
use crate::router::{self, route, Op};
use crate::S3Error;
use crate::{bucket, cors, iam_api, lifecycle, list, multipart, object, post, veeam, versioning};
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
    async fn handle(self: Arc<Self>, req: Request<Incoming>, origin: Origin) -> Res {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let request_id = format!("{:016X}{:08X}", coffre_types::now_millis(), n as u32);
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
        let outcome = if method == http::Method::OPTIONS {
            trail.op = "PreflightRequest".into();
            router::target(req.headers(), &path, self.config.domain.as_deref()).and_then(|(bucket, _)| {
                trail.bucket = bucket.clone();
                cors::preflight(&self.engine, &bucket, req.headers())
            })
        } else {
            self.clone().dispatch(req, origin, &mut trail).await
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
        // Acknowledged only once its audit entry is durable.
        if let Some(log) = self.engine.audit() {
            if !trail.bucket.is_empty() {
                // The bucket owner's: what concerns a tenant's data is in its export.
                if let Ok(b) = self.engine.bucket(&trail.bucket) {
                    trail.tenant = b.tenant;
                }
            }
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
            let ms = started.elapsed().as_millis() as u64;
            let event = trail.event(&request_id, &origin, res.status().as_u16(), code, bytes_out, ms);
            if let Err(e) = log.append(event).await {
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
        // Access log: who did what, never secrets or object data.
        tracing::info!(target: "coffre::access", %method, %path, peer = %origin.peer, status = res.status().as_u16(), ms = started.elapsed().as_millis() as u64, request_id, "request");
        res
    }

    fn health(&self) -> Res {
        let mut r = Response::new(full("ok\n"));
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        r
    }

    /// The S3 listener's counters, for the admin API's `/metrics`.
    pub fn metrics_text(&self) -> String {
        format!(
            "# TYPE coffre_requests_total counter\ncoffre_requests_total {}\n# TYPE coffre_errors_total counter\ncoffre_errors_total {}\n",
            self.requests.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
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
            return post::post_object(self.clone(), &parts.headers, &bucket, body, origin).await;
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
        let (verified, caller) = match auth::verify(
            &RequestParts {
                method: parts.method.as_str(),
                raw_path: &raw_path,
                raw_query: &raw_query,
                headers: &parts.headers,
            },
            self.iam.as_ref(),
            &self.config.region,
        )? {
            Some((v, c)) => (Some(v), c),
            None => (None, Caller::anonymous()),
        };
        trail.caller(&caller, verified.as_ref().map(|v| v.access_key.as_str()));
        let op = op?;
        let action = op.action();
        let router::Routed { op, query } = op;
        let ctx = Ctx::new(self.clone(), parts.headers, query, verified, caller, origin);
        if let Some(action) = action {
            let target = match (&op, op.bucket(), op.key()) {
                (Op::CreateBucket(b), _, _) => Target::NewBucket(b),
                (_, Some(b), Some(k)) => Target::Object(b, k),
                (_, Some(b), None) => Target::Bucket(b),
                (_, None, _) => Target::Service,
            };
            if let Err(denied) = ctx.authorize(action, target) {
                // A read of a key that does not exist is a 404 to whoever may list it, as
                // S3 answers (its GetObject permission aside); a 403 to anyone else.
                return Err(match (&op, target) {
                    (Op::GetObject(..) | Op::HeadObject(..), Target::Object(b, k))
                        if matches!(ctx.engine().head(b, k), Err(coffre_engine::EngineError::NoSuchKey))
                            && ctx.may_list(b, k) =>
                    {
                        S3Error::no_such_key("The specified key does not exist.")
                    }
                    _ => denied,
                });
            }
        }
        if let (Some(expected), Some(b)) = (ctx.h("x-amz-expected-bucket-owner"), op.bucket()) {
            if !matches!(op, Op::CreateBucket(_)) && !auth::constant_time_eq(expected, &ctx.owner_of(b)?) {
                return Err(S3Error::access_denied("Access Denied: the bucket has another owner"));
            }
        }
        // Veeam's SOSAPI objects are answered by the store itself.
        match &op {
            Op::GetObject(b, k) | Op::HeadObject(b, k) if veeam::is_sosapi_object(k) => {
                return veeam::get(&ctx, b, k, matches!(op, Op::HeadObject(..)))
            }
            Op::PutObject(_, k) | Op::CopyObject(_, k) | Op::DeleteObject(_, k) | Op::CreateMultipartUpload(_, k)
                if veeam::is_sosapi_object(k) =>
            {
                return Err(veeam::refuse_write())
            }
            _ => {}
        }
        match op {
            Op::ListBuckets => bucket::list_buckets(&ctx).await,
            Op::CreateBucket(b) => bucket::create(&ctx, &b, body).await,
            Op::HeadBucket(b) => bucket::head(&ctx, &b).await,
            Op::DeleteBucket(b) => bucket::delete(&ctx, &b).await,
            Op::GetBucketLocation(b) => bucket::location(&ctx, &b).await,
            Op::GetBucketVersioning(b) => versioning::get_versioning(&ctx, &b).await,
            Op::PutBucketVersioning(b) => versioning::put_versioning(&ctx, &b, body).await,
            Op::ListObjectVersions(b) => versioning::list_versions(&ctx, &b).await,
            Op::GetObjectLockConfiguration(b) => versioning::get_lock_configuration(&ctx, &b).await,
            Op::PutObjectLockConfiguration(b) => versioning::put_lock_configuration(&ctx, &b, body).await,
            Op::GetObjectRetention(b, k) => versioning::get_retention(&ctx, &b, &k).await,
            Op::PutObjectRetention(b, k) => versioning::put_retention(&ctx, &b, &k, body).await,
            Op::GetObjectLegalHold(b, k) => versioning::get_legal_hold(&ctx, &b, &k).await,
            Op::PutObjectLegalHold(b, k) => versioning::put_legal_hold(&ctx, &b, &k, body).await,
            Op::PutBucketLifecycle(b) => lifecycle::put(&ctx, &b, body).await,
            Op::GetBucketLifecycle(b) => lifecycle::get(&ctx, &b).await,
            Op::DeleteBucketLifecycle(b) => lifecycle::delete(&ctx, &b).await,
            Op::ListObjects { bucket, v2 } => list::list_objects(&ctx, &bucket, v2).await,
            Op::DeleteObjects(b) => object::delete_objects(&ctx, &b, body).await,
            Op::PutObject(b, k) => object::put(&ctx, &b, &k, body).await,
            Op::CopyObject(b, k) => object::copy(&ctx, &b, &k).await,
            Op::GetObject(b, k) => object::get(&ctx, &b, &k, false).await,
            Op::HeadObject(b, k) => object::get(&ctx, &b, &k, true).await,
            Op::DeleteObject(b, k) => object::delete(&ctx, &b, &k).await,
            Op::GetObjectTagging(b, k) => object::get_tagging(&ctx, &b, &k).await,
            Op::PutObjectTagging(b, k) => object::put_tagging(&ctx, &b, &k, body).await,
            Op::DeleteObjectTagging(b, k) => object::delete_tagging(&ctx, &b, &k).await,
            Op::CreateMultipartUpload(b, k) => multipart::create(&ctx, &b, &k).await,
            Op::UploadPart(b, k) => multipart::upload_part(&ctx, &b, &k, body).await,
            Op::UploadPartCopy(b, k) => multipart::upload_part_copy(&ctx, &b, &k).await,
            Op::CompleteMultipartUpload(b, k) => multipart::complete(&ctx, &b, &k, body).await,
            Op::AbortMultipartUpload(b, k) => multipart::abort(&ctx, &b, &k).await,
            Op::ListParts(b, k) => multipart::list_parts(&ctx, &b, &k).await,
            Op::ListMultipartUploads(b) => multipart::list_uploads(&ctx, &b).await,
            Op::PutBucketCors(b) => cors::put(&ctx, &b, body).await,
            Op::GetBucketCors(b) => cors::get(&ctx, &b).await,
            Op::DeleteBucketCors(b) => cors::delete(&ctx, &b).await,
            Op::PutBucketEncryption(b) => bucket::put_encryption(&ctx, &b, body).await,
            Op::GetBucketEncryption(b) => bucket::get_encryption(&ctx, &b).await,
            Op::DeleteBucketEncryption(b) => bucket::delete_encryption(&ctx, &b).await,
            Op::PutBucketOwnershipControls(b) => bucket::put_ownership(&ctx, &b, body).await,
            Op::GetBucketOwnershipControls(b) => bucket::get_ownership(&ctx, &b).await,
            Op::DeleteBucketOwnershipControls(b) => bucket::delete_ownership(&ctx, &b).await,
            Op::GetObjectAttributes(b, k) => object::attributes(&ctx, &b, &k).await,
            Op::PutBucketPolicy(b) => bucket::put_policy(&ctx, &b, body).await,
            Op::GetBucketPolicy(b) => bucket::get_policy(&ctx, &b).await,
            Op::DeleteBucketPolicy(b) => bucket::delete_policy(&ctx, &b).await,
            Op::GetBucketPolicyStatus(b) => bucket::policy_status(&ctx, &b).await,
            Op::GetBucketAcl(b) => bucket::get_acl(&ctx, &b).await,
            Op::PutBucketAcl(b) => bucket::put_acl(&ctx, &b, body).await,
            Op::GetObjectAcl(b, k) => object::get_acl(&ctx, &b, &k).await,
            Op::PutObjectAcl(b, k) => object::put_acl(&ctx, &b, &k, body).await,
        }
    }
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
            let gw = gw.clone();
            async move { Ok::<_, std::convert::Infallible>(gw.handle(req, origin).await) }
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
