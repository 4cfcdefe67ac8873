//! The server side of the cluster's mutual TLS, shared by storage nodes and metadata
//! replicas: HTTP/2 over TLS 1.3, and only gateways get in — peers whose certificate the
//! cluster CA signed, naming the gateway role, not revoked.

use crate::identity::{Identity, Role};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// What answers an admitted gateway's requests.
pub type Service =
    Arc<dyn Fn(Request<Incoming>) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> + Send + Sync>;

/// Serves `service` on `listener` to gateways of the cluster until `shutdown` resolves, then
/// lets open connections finish for up to `grace`. `what` names the server in the logs.
pub async fn serve_gateways(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    what: &'static str,
    service: Service,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<(), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config()?);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            c = crate::net::accept(&listener) => c,
            _ = &mut shutdown => break,
        };
        let (acceptor, service, watcher, identity) =
            (acceptor.clone(), service.clone(), graceful.watcher(), identity.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(coffre_types::limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    return tracing::warn!(%peer, error = %e, server = what, "peer refused: TLS handshake failed")
                }
                Err(_) => return tracing::warn!(%peer, server = what, "TLS handshake timed out"),
            };
            // The CA signed the peer's certificate; it must also be a gateway's, not revoked:
            // another node (or a stolen node key) may not read or delete shards, nor speak for
            // a metadata replica.
            let admitted = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(cert) => identity.admits(cert, Role::Gateway),
                None => Err("no client certificate".to_string()),
            };
            match admitted {
                Ok(who) => tracing::debug!(%peer, gateway = who.id, server = what, "gateway connected"),
                Err(why) => return tracing::warn!(%peer, reason = %why, server = what, "peer refused"),
            }
            let svc = hyper::service::service_fn(move |req| {
                let answer = service(req);
                async move { Ok::<_, std::convert::Infallible>(answer.await) }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_frame_size(1 << 20)
                .initial_stream_window_size(8 << 20)
                .initial_connection_window_size(32 << 20)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, server = what, "connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {}
    }
    Ok(())
}
