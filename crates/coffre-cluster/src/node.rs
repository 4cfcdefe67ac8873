//! `coffre node`: a storage node serving the `ShardStore` operations over HTTP/2 with mutual
//! TLS. Only peers with a certificate from the cluster CA are accepted. Shards are fsynced
//! (group commit) before a PUT is acknowledged.
//!
//! Protocol: `PUT|GET|DELETE /shards/<hex shard id>`, `GET /shards` (23-byte ids, concatenated),
//! `GET /stat` (`shards used_bytes free_bytes total_bytes`).

use crate::identity::{Identity, Role};
use bytes::Bytes;
use coffre_data::{LocalShardStore, ShardStore, StoreError};
use coffre_types::ShardId;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use std::sync::Arc;
use std::time::Duration;

/// Largest shard a node accepts (a 64 MiB stripe over one data shard).
pub const MAX_SHARD: usize = coffre_types::limits::MAX_SHARD;

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

fn shard_id(path: &str) -> Option<ShardId> {
    ShardId::from_bytes(&hex::decode(path.strip_prefix("/shards/")?).ok()?)
}

async fn handle(store: LocalShardStore, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let result: Result<Response<Full<Bytes>>, StoreError> = async {
        Ok(match (parts.method.as_str(), path) {
            ("GET", "/stat") => {
                let s = store.stat().await?;
                reply(
                    StatusCode::OK,
                    format!("{} {} {} {}", s.shards, s.used_bytes, s.free_bytes, s.total_bytes),
                )
            }
            ("GET", "/shards") => {
                let ids = store.list().await?;
                let mut out = Vec::with_capacity(ids.len() * ShardId::LEN);
                for id in ids {
                    out.extend_from_slice(&id.to_bytes());
                }
                reply(StatusCode::OK, out)
            }
            (m, p) => {
                let Some(id) = shard_id(p) else {
                    return Ok(reply(StatusCode::NOT_FOUND, "unknown path"));
                };
                match m {
                    "PUT" => match Limited::new(body, MAX_SHARD).collect().await {
                        Ok(b) => {
                            store.put(id, b.to_bytes()).await?;
                            reply(StatusCode::NO_CONTENT, Bytes::new())
                        }
                        Err(e) => reply(StatusCode::BAD_REQUEST, format!("shard body: {e}")),
                    },
                    "GET" => match store.get(id).await {
                        Ok(b) => reply(StatusCode::OK, b),
                        Err(StoreError::NotFound(_)) => reply(StatusCode::NOT_FOUND, "no such shard"),
                        Err(e) => return Err(e),
                    },
                    "DELETE" => {
                        store.delete(id).await?;
                        reply(StatusCode::NO_CONTENT, Bytes::new())
                    }
                    _ => reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
                }
            }
        })
    }
    .await;
    result.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "node request failed");
        reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })
}

/// Serves a node until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    identity: Arc<Identity>,
    store: LocalShardStore,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), String> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let acceptor = tokio_rustls::TlsAcceptor::from(identity.server_config()?);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Space of deleted shards is reclaimed by compacting the segments, once a minute.
    let compactor = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(60)).await;
            let s = compactor.clone();
            match tokio::task::spawn_blocking(move || s.compact()).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(bytes = n, "compacted shard segments"),
                Ok(Err(e)) => tracing::warn!(error = %e, "compaction failed"),
                _ => {}
            }
        }
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            c = crate::net::accept(&listener) => c,
            _ = &mut shutdown => break,
        };
        let (acceptor, store, watcher, identity) =
            (acceptor.clone(), store.clone(), graceful.watcher(), identity.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(coffre_types::limits::TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return tracing::warn!(%peer, error = %e, "peer refused: TLS handshake failed"),
                Err(_) => return tracing::warn!(%peer, "TLS handshake timed out"),
            };
            // The CA signed the peer's certificate; it must also be a gateway's, not revoked:
            // another node (or a stolen node key) may not read or delete shards here.
            let admitted = match tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
                Some(cert) => identity.admits(cert, Role::Gateway),
                None => Err("no client certificate".to_string()),
            };
            match admitted {
                Ok(who) => tracing::debug!(%peer, gateway = who.id, "gateway connected"),
                Err(why) => return tracing::warn!(%peer, reason = %why, "peer refused"),
            }
            let svc = hyper::service::service_fn(move |req| {
                let store = store.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(store, req).await) }
            });
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .max_frame_size(1 << 20)
                .initial_stream_window_size(8 << 20)
                .initial_connection_window_size(32 << 20)
                .serve_connection(TokioIo::new(tls), svc);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "node connection ended with an error");
            }
        });
    }
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
    Ok(())
}

/// A node's shard store directory, keeping `reserve` bytes of its disk free.
pub fn open_store(identity: &Identity, data: &std::path::Path, reserve: u64) -> Result<LocalShardStore, String> {
    let store = LocalShardStore::open(identity.id.clone(), &data.join("shards")).map_err(|e| e.to_string())?;
    store.set_reserve(reserve);
    Ok(store)
}
