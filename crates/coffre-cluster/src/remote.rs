//! `RemoteShardStore`: the `ShardStore` of a `coffre node`, over one reused HTTP/2 connection
//! with mutual TLS. Timeouts on every call, one retry on a fresh connection, and a health flag
//! kept by heartbeats.
//!
//! A node that stops answering without closing its connections (frozen, or cut off by a
//! network that drops packets) must not hold requests for a whole call timeout: a heartbeat
//! that gets no answer within `HEARTBEAT_TIMEOUT` marks it down, which ends the calls waiting
//! on it (reads then rebuild from parity, writes record the shard as degraded), and calls to a
//! node marked down fail at once until a heartbeat finds it back.

use crate::identity::{not_after, subject_of, Identity, Location};
use bytes::Bytes;
use coffre_data::{BoxFuture, ScrubRequest, ScrubStatus, ShardStore, StoreError, StoreStat};
use coffre_types::ShardId;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

const CALL_TIMEOUT: Duration = coffre_types::limits::NODE_CALL_TIMEOUT;
const CONNECT_TIMEOUT: Duration = coffre_types::limits::NODE_CONNECT_TIMEOUT;
/// How long a heartbeat waits for a node's `/stat` (connecting included).
pub const HEARTBEAT_TIMEOUT: Duration = coffre_types::limits::NODE_HEARTBEAT_TIMEOUT;
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
    /// Woken when a heartbeat marks the node down: the calls waiting on it give up.
    went_down: tokio::sync::Notify,
    /// When the certificate the node presented at its last connection expires (0: unknown).
    cert_not_after: AtomicU64,
}

fn host_port(address: &str) -> Result<String, String> {
    let rest = address
        .strip_prefix("https://")
        .ok_or_else(|| format!("address {address:?} must be https://HOST:PORT"))?;
    Ok(rest.trim_end_matches('/').to_string())
}

/// Who a peer's certificate says it is, and when that certificate expires.
pub(crate) struct PeerCertificate {
    pub subject: Option<(String, Location)>,
    pub not_after: Option<u64>,
}

/// One HTTP/2 connection over mutual TLS to a cluster peer (a node, or another gateway's
/// metadata replica), and what its certificate says.
pub(crate) async fn connect(
    address: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(Sender, PeerCertificate), String> {
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
    let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
    let who = PeerCertificate {
        subject: leaf.and_then(|c| subject_of(c)),
        not_after: leaf.and_then(|c| not_after(c)),
    };
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
        let (id, location) = who
            .subject
            .ok_or_else(|| format!("{address}: no Coffre identity in the node's certificate"))?;
        let store = RemoteShardStore {
            tls: identity.client_config(Some(id.clone()))?,
            id,
            address: address.to_string(),
            location,
            conn: Mutex::new(Some(send)),
            up: AtomicBool::new(true),
            went_down: tokio::sync::Notify::new(),
            cert_not_after: AtomicU64::new(who.not_after.unwrap_or(0)),
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
        let (send, who) = connect(&self.address, self.tls.clone())
            .await
            .map_err(StoreError::Unavailable)?;
        // A node renews its certificate by restarting with a new one: the next connection sees it.
        if let Some(t) = who.not_after {
            self.cert_not_after.store(t, Ordering::Relaxed);
        }
        *guard = Some(send.clone());
        Ok(send)
    }

    /// One call, reading at most `limit` bytes of answer: a node cannot make the gateway
    /// buffer more than the call can legitimately return. Fails at once on a node marked down,
    /// and gives up when a heartbeat marks it down meanwhile.
    async fn call(
        &self,
        method: Method,
        path: String,
        body: Bytes,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        if !self.is_up() {
            return Err(StoreError::Unavailable(format!(
                "node {} ({}) is down",
                self.id, self.address
            )));
        }
        let went_down = self.went_down.notified();
        tokio::pin!(went_down);
        went_down.as_mut().enable();
        if !self.is_up() {
            return Err(StoreError::Unavailable(format!("node {} went down", self.id)));
        }
        tokio::select! {
            r = self.call_with_retry(method, path, body, limit) => r,
            _ = went_down => Err(StoreError::Unavailable(format!(
                "node {} ({}) stopped answering heartbeats",
                self.id, self.address
            ))),
        }
    }

    /// The call on the current connection, and once more on a fresh one if that failed.
    async fn call_with_retry(
        &self,
        method: Method,
        path: String,
        body: Bytes,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), StoreError> {
        let mut last = String::new();
        for attempt in 0..2 {
            match self
                .call_once(attempt > 0, &method, &path, &body, limit, CALL_TIMEOUT)
                .await
            {
                Ok(r) => {
                    self.up.store(true, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(e) => last = e,
            }
        }
        self.mark_down();
        Err(StoreError::Unavailable(format!(
            "node {} ({}): {last}",
            self.id, self.address
        )))
    }

    async fn call_once(
        &self,
        fresh: bool,
        method: &Method,
        path: &str,
        body: &Bytes,
        limit: usize,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut send = self.sender(fresh).await.map_err(|e| e.to_string())?;
        let req = Request::builder()
            .method(method.clone())
            .uri(format!("https://{}{path}", self.id))
            .body(Full::new(body.clone()))
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(timeout, async {
            let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        })
        .await
        .map_err(|_| "timed out".to_string())?
    }

    /// Marks the node down and ends the calls waiting on it.
    fn mark_down(&self) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(node = %self.id, address = %self.address, "node marked down");
            self.went_down.notify_waiters();
        }
    }

    /// One `/stat`, bounded by `HEARTBEAT_TIMEOUT` whatever the node does (connecting
    /// included; a fresh connection when the last heartbeat failed): an answer marks the
    /// node up, anything else down.
    async fn heartbeat_stat(&self) -> Result<Bytes, StoreError> {
        let fresh = !self.is_up();
        let result = tokio::time::timeout(
            HEARTBEAT_TIMEOUT,
            self.call_once(
                fresh,
                &Method::GET,
                "/stat",
                &Bytes::new(),
                SMALL_ANSWER,
                HEARTBEAT_TIMEOUT,
            ),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        match result {
            Ok((StatusCode::OK, b)) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(node = %self.id, address = %self.address, "node up");
                }
                Ok(b)
            }
            Ok((status, b)) => {
                self.mark_down();
                Err(self.unexpected(status, &b))
            }
            Err(e) => {
                self.mark_down();
                Err(StoreError::Unavailable(format!(
                    "node {} ({}): heartbeat: {e}",
                    self.id, self.address
                )))
            }
        }
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
            went_down: tokio::sync::Notify::new(),
            cert_not_after: AtomicU64::new(0),
        })
    }

    /// Heartbeat: one `/stat` call; marks the node up or down.
    pub async fn ping(&self) -> bool {
        self.heartbeat_stat().await.is_ok()
    }
}

/// The largest scrub answer read (its findings are capped per answer).
const SCRUB_ANSWER: usize = 1 << 20;
/// The largest attestation a node answers (`proof::MAX_ATTEST_SHARDS` statements and its
/// certificate).
const ATTEST_ANSWER: usize = 8 << 20;

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

    /// The hash goes with the shard: the node checks the bytes it received against it (a
    /// shard damaged on the way is refused, so the write counts as failed) and keeps it for
    /// its scrub.
    fn put_hashed(&self, id: ShardId, data: Bytes, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let path = format!("{}?b3={}", shard_path(&id), hex::encode(hash));
            match self.call(Method::PUT, path, data, SMALL_ANSWER).await? {
                (StatusCode::NO_CONTENT, _) => Ok(()),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn scrub(&self, request: ScrubRequest) -> BoxFuture<'_, Result<ScrubStatus, StoreError>> {
        Box::pin(async move {
            let body = Bytes::from(serde_json::to_vec(&request).map_err(|e| StoreError::Unavailable(e.to_string()))?);
            match self.call(Method::POST, "/scrub".into(), body, SCRUB_ANSWER).await? {
                (StatusCode::OK, b) => serde_json::from_slice(&b)
                    .map_err(|e| StoreError::Unavailable(format!("node {}: scrub answer: {e}", self.id))),
                (s, b) => Err(self.unexpected(s, &b)),
            }
        })
    }

    fn attest(&self, request: Bytes) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        Box::pin(async move {
            match self
                .call(Method::POST, "/attest".into(), request, ATTEST_ANSWER)
                .await?
            {
                (StatusCode::OK, b) => Ok(b),
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

    fn certificate_not_after(&self) -> Option<u64> {
        Some(self.cert_not_after.load(Ordering::Relaxed)).filter(|&t| t > 0)
    }

    /// The heartbeat's call (`HEARTBEAT_TIMEOUT`): it also marks the node up or down.
    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        Box::pin(async move {
            let b = self.heartbeat_stat().await?;
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
        })
    }
}
