//! `RemoteShardStore`: the `ShardStore` of a `coffre node`, over one reused HTTP/2 connection
//! with mutual TLS. Timeouts on every call, one retry on a fresh connection, and a health flag
//! kept by heartbeats.

use crate::identity::{subject_of, Identity, Location};
use bytes::Bytes;
use coffre_data::{BoxFuture, ShardStore, StoreError, StoreStat};
use coffre_types::ShardId;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const CALL_TIMEOUT: Duration = coffre_types::limits::NODE_CALL_TIMEOUT;
const CONNECT_TIMEOUT: Duration = coffre_types::limits::NODE_CONNECT_TIMEOUT;
/// The largest answer to a call that returns no shard data (a status, an error message).
const SMALL_ANSWER: usize = 64 << 10;

type Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

pub struct RemoteShardStore {
    id: String,
    pub address: String,
    /// From the node's CA-signed certificate.
    pub location: Location,
    tls: Arc<rustls::ClientConfig>,
    conn: Mutex<Option<Sender>>,
    up: AtomicBool,
}

fn host_port(address: &str) -> Result<String, String> {
    let rest = address
        .strip_prefix("https://")
        .ok_or_else(|| format!("address {address:?} must be https://HOST:PORT"))?;
    Ok(rest.trim_end_matches('/').to_string())
}

/// One HTTP/2 connection over mutual TLS to a cluster peer (a node, or another gateway's
/// metadata replica), and who its certificate says it is.
pub(crate) async fn connect(
    address: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(Sender, Option<(String, Location)>), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let hp = host_port(address)?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&hp))
        .await
        .map_err(|_| format!("{address}: connection timed out"))?
        .map_err(|e| format!("{address}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    // The name is checked against the certificate's own id by our verifier.
    let name = rustls::pki_types::ServerName::try_from("coffre-node").map_err(|e| e.to_string())?;
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("{address}: TLS handshake timed out"))?
    .map_err(|e| format!("{address}: TLS: {e}"))?;
    let who = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| subject_of(c));
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(8 << 20)
        .initial_connection_window_size(32 << 20)
        .max_frame_size(1 << 20)
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("{address}: HTTP/2: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok((send, who))
}

impl RemoteShardStore {
    /// Connects to a node and learns its id and location from its certificate.
    /// Connects to a node and learns its id and location from its certificate; the node must
    /// also answer a call, so a node that refuses this gateway (its role, a revocation) is
    /// found now rather than at the first write.
    pub async fn connect(identity: &Identity, address: &str) -> Result<RemoteShardStore, String> {
        let (send, who) = connect(address, identity.client_config(None)?).await?;
        let (id, location) = who.ok_or_else(|| format!("{address}: no Coffre identity in the node's certificate"))?;
        let store = RemoteShardStore {
            tls: identity.client_config(Some(id.clone()))?,
            id,
            address: address.to_string(),
            location,
            conn: Mutex::new(Some(send)),
            up: AtomicBool::new(true),
        };
        match store
            .call(Method::GET, "/stat".into(), Bytes::new(), SMALL_ANSWER)
            .await
        {
            Ok((StatusCode::OK, _)) => Ok(store),
            Ok((status, body)) => Err(format!(
                "node {} ({address}) answered {status}: {}",
                store.id,
                String::from_utf8_lossy(&body)
            )),
            Err(e) => Err(format!(
                "node {} ({address}) does not serve this gateway: {e}",
                store.id
            )),
        }
    }

    async fn sender(&self, fresh: bool) -> Result<Sender, StoreError> {
        let mut guard = self.conn.lock().await;
        if !fresh {
            if let Some(s) = guard.as_ref().filter(|s| s.is_ready()) {
                return Ok(s.clone());
            }
        }
        let (send, _) = connect(&self.address, self.tls.clone())
            .await
            .map_err(StoreError::Unavailable)?;
        *guard = Some(send.clone());
        Ok(send)
    }

    /// One call, reading at most `limit` bytes of answer: a node cannot make the gateway
    /// buffer more than the call can legitimately return.
    async fn call(
        &self,
        method: Method,
        path: String,
        body: Bytes,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        let mut last = String::new();
        for attempt in 0..2 {
            let mut send = match self.sender(attempt > 0).await {
                Ok(s) => s,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let req = Request::builder()
                .method(method.clone())
                .uri(format!("https://{}{path}", self.id))
                .body(Full::new(body.clone()))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            let result = tokio::time::timeout(CALL_TIMEOUT, async {
                let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                let body = http_body_util::Limited::new(resp.into_body(), limit)
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                Ok::<_, String>((status, body))
            })
            .await;
            match result {
                Ok(Ok(r)) => {
                    self.up.store(true, Ordering::Relaxed);
                    return Ok(r);
                }
                Ok(Err(e)) => last = e,
                Err(_) => last = "timed out".into(),
            }
        }
        self.up.store(false, Ordering::Relaxed);
        Err(StoreError::Unavailable(format!(
            "node {} ({}): {last}",
            self.id, self.address
        )))
    }

    fn unexpected(&self, status: StatusCode, body: &Bytes) -> StoreError {
        StoreError::Unavailable(format!("node {}: {status}: {}", self.id, String::from_utf8_lossy(body)))
    }

    /// A node known from an earlier start that does not answer now: it is marked down and
    /// reconnected (its certificate checked for the same id) when it comes back.
    pub fn known(identity: &Identity, address: &str, id: &str, location: Location) -> Result<RemoteShardStore, String> {
        host_port(address)?;
        Ok(RemoteShardStore {
            tls: identity.client_config(Some(id.to_string()))?,
            id: id.to_string(),
            address: address.to_string(),
            location,
            conn: Mutex::new(None),
            up: AtomicBool::new(false),
        })
    }

    /// Heartbeat: one `/stat` call; marks the node up or down.
    pub async fn ping(&self) -> bool {
        matches!(
            self.call(Method::GET, "/stat".into(), Bytes::new(), SMALL_ANSWER).await,
            Ok((StatusCode::OK, _))
        )
    }
}

fn shard_path(id: &ShardId) -> String {
    format!("/shards/{}", hex::encode(id.to_bytes()))
}

impl ShardStore for RemoteShardStore {
    fn id(&self) -> &str {
        &self.id
    }

    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match self.call(Method::PUT, shard_path(&id), data, SMALL_ANSWER).await? {
                (StatusCode::NO_CONTENT, _) => Ok(()),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        Box::pin(async move {
            let limit = coffre_types::limits::MAX_SHARD + SMALL_ANSWER;
            match self.call(Method::GET, shard_path(&id), Bytes::new(), limit).await? {
                (StatusCode::OK, b) => Ok(b),
                (StatusCode::NOT_FOUND, _) => Err(StoreError::NotFound(id)),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match self
                .call(Method::DELETE, shard_path(&id), Bytes::new(), SMALL_ANSWER)
                .await?
            {
                (StatusCode::NO_CONTENT, _) => Ok(()),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        Box::pin(async move {
            let limit = coffre_types::limits::MAX_NODE_LISTING;
            match self.call(Method::GET, "/shards".into(), Bytes::new(), limit).await? {
                (StatusCode::OK, b) => Ok(b.chunks(ShardId::LEN).filter_map(ShardId::from_bytes).collect()),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        Box::pin(async move {
            match self
                .call(Method::GET, "/stat".into(), Bytes::new(), SMALL_ANSWER)
                .await?
            {
                (StatusCode::OK, b) => {
                    let v: Vec<u64> = String::from_utf8_lossy(&b)
                        .split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect();
                    match v[..] {
                        [shards, used_bytes, free_bytes, total_bytes] => Ok(StoreStat {
                            shards,
                            used_bytes,
                            free_bytes,
                            total_bytes,
                        }),
                        _ => Err(self.unexpected(StatusCode::OK, &b)),
                    }
                }
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }
}
