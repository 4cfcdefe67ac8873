//! Calls between gateways (the metadata replicas' Raft messages): opaque request bytes
//! POSTed over HTTP/2 with mutual TLS, both ends holding a gateway certificate from the
//! cluster CA. One reused connection per peer; every call has a deadline.

use crate::identity::{Identity, Role};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The largest request or answer between peers (a snapshot chunk, a batch of at most 64 log
/// entries, each at most a few MiB: a 5 GiB object's layout is 245 KiB). Peers are gateways
/// of the cluster CA, authenticated before any byte is read.
pub const MAX_PEER_MESSAGE: usize = 256 << 20;
const PATH: &str = "/meta/raft";

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;
pub type Handler = Arc<dyn Fn(Bytes) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> + Send + Sync>;

/// The client side: one connection per peer address, made again when it breaks.
pub struct PeerClient {
    tls: Arc<rustls::ClientConfig>,
    conns: Mutex<HashMap<String, Sender>>,
}

impl PeerClient {
    pub fn new(identity: &Identity) -> Result<PeerClient, String> {
        Ok(PeerClient {
            tls: identity.client_config_for(Role::Gateway, None)?,
            conns: Mutex::new(HashMap::new()),
        })
    }

    async fn sender(&self, address: &str) -> Result<Sender, String> {
        if let Some(s) = self.conns.lock().await.get(address).filter(|s| s.is_ready()) {
            return Ok(s.clone());
        }
        let (send, _) = crate::remote::connect(address, self.tls.clone()).await?;
        self.conns.lock().await.insert(address.to_string(), send.clone());
        Ok(send)
    }

    /// Sends `body` to the peer at `address` (`https://HOST:PORT`); its answer, or why not
    /// and whether the request may have reached the peer.
    pub async fn call(&self, address: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, PeerError> {
        let not_sent = |message| PeerError {
            maybe_sent: false,
            message,
        };
        let mut send = match tokio::time::timeout(timeout, self.sender(address)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.forget(address).await;
                return Err(not_sent(e));
            }
            Err(_) => return Err(not_sent(format!("{address}: no connection within {timeout:?}"))),
        };
        let work = async {
            let req = Request::builder()
                .method(Method::POST)
                .uri(PATH)
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            let res = send.send_request(req).await.map_err(|e| format!("{address}: {e}"))?;
            let status = res.status();
            let bytes = Limited::new(res.into_body(), MAX_PEER_MESSAGE)
                .collect()
                .await
                .map_err(|e| format!("{address}: answer: {e}"))?
                .to_bytes();
            match status {
                StatusCode::OK => Ok(bytes.to_vec()),
                s => Err(format!("{address} answered {s}: {}", String::from_utf8_lossy(&bytes))),
            }
        };
        let result = match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("{address}: no answer within {timeout:?}")),
        };
        if result.is_err() {
            self.forget(address).await;
        }
        result.map_err(|message| PeerError {
            maybe_sent: true,
            message,
        })
    }

    /// Forgets the connection to `address` (the next call makes a new one).
    async fn forget(&self, address: &str) {
        self.conns.lock().await.remove(address);
    }
}

/// A call that brought no answer.
#[derive(Debug)]
pub struct PeerError {
    /// Whether the request may have reached the peer.
    pub maybe_sent: bool,
    pub message: String,
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// Serves peers until `shutdown` resolves: only gateways of the cluster CA get in.
pub async fn serve(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    handler: Handler,
    shutdown: impl Future<Output = ()>,
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
        let (acceptor, handler, watcher, identity) =
            (acceptor.clone(), handler.clone(), graceful.watcher(), identity.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(coffre_types::limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::warn!(%peer, error = %e, "replica peer refused: TLS handshake failed"),
                Err(_) => return tracing::warn!(%peer, "TLS handshake timed out"),
            };
            // A node's certificate (or a stolen one, revoked) may not speak for a replica.
            let admitted = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(cert) => identity.admits(cert, Role::Gateway),
                None => Err("no client certificate".to_string()),
            };
            if let Err(why) = admitted {
                return tracing::warn!(%peer, reason = %why, "replica peer refused");
            }
            let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let handler = handler.clone();
                async move {
                    if req.method() != Method::POST || req.uri().path() != PATH {
                        return Ok::<_, std::convert::Infallible>(reply(StatusCode::NOT_FOUND, "unknown path"));
                    }
                    let body = match Limited::new(req.into_body(), MAX_PEER_MESSAGE).collect().await {
                        Ok(b) => b.to_bytes(),
                        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("request body: {e}"))),
                    };
                    Ok(reply(StatusCode::OK, handler(body).await))
                }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_frame_size(1 << 20)
                .initial_stream_window_size(8 << 20)
                .initial_connection_window_size(32 << 20)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "replica connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}
