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
    let service: crate::mtls::Service = Arc::new(move |req: Request<hyper::body::Incoming>| {
        let handler = handler.clone();
        Box::pin(async move {
            if req.method() != Method::POST || req.uri().path() != PATH {
                return reply(StatusCode::NOT_FOUND, "unknown path");
            }
            let body = match Limited::new(req.into_body(), MAX_PEER_MESSAGE).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return reply(StatusCode::BAD_REQUEST, format!("request body: {e}")),
            };
            reply(StatusCode::OK, handler(body).await)
        })
    });
    crate::mtls::serve_gateways(
        listener,
        identity,
        "metadata replica",
        service,
        shutdown,
        Duration::from_secs(5),
    )
    .await
}
