//! `coffre node`: a storage node serving the `ShardStore` operations over HTTP/2 with mutual
//! TLS. Only peers with a certificate from the cluster CA are accepted. Shards are fsynced
//! (group commit) before a PUT is acknowledged.
//!
//! Protocol: `PUT|GET|DELETE /shards/<hex shard id>`, `GET /shards` (23-byte ids, concatenated),
//! `GET /stat` (`shards used_bytes free_bytes total_bytes`).

use crate::identity::Identity;
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
    let service: crate::mtls::Service = Arc::new(move |req| Box::pin(handle(store.clone(), req)));
    crate::mtls::serve_gateways(listener, identity, "node", service, shutdown, Duration::from_secs(30)).await
}

/// A node's shard store directory, keeping `reserve` bytes of its disk free.
pub fn open_store(identity: &Identity, data: &std::path::Path, reserve: u64) -> Result<LocalShardStore, String> {
    let store = LocalShardStore::open(identity.id.clone(), &data.join("shards")).map_err(|e| e.to_string())?;
    store.set_reserve(reserve);
    Ok(store)
}
