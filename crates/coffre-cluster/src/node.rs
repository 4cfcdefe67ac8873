//! `coffre node`: a storage node serving the `ShardStore` operations over HTTP/2 with mutual
//! TLS. Only peers with a certificate from the cluster CA are accepted. Shards are fsynced
//! (group commit) before a PUT is acknowledged.
//!
//! Protocol: `PUT|GET|DELETE /shards/<hex shard id>` (a PUT with `?b3=<hex BLAKE3>` is checked
//! against it and keeps it for the scrub), `GET /shards` (23-byte ids, concatenated), `GET
//! /stat` (`shards used_bytes free_bytes total_bytes`), `POST /scrub` (a JSON `ScrubRequest`,
//! answered with the JSON `ScrubStatus`), `POST /attest` (a JSON `proof::AttestRequest`,
//! answered with the node's signed `proof::Attestation`).

use crate::identity::Identity;
use bytes::Bytes;
use coffre_data::{CompactionWorker, LocalShardStore, ScrubRequest, ScrubWorker, ShardStore, StoreError};
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

/// The largest scrub request a node reads (its acknowledgements are bounded).
const MAX_SCRUB_REQUEST: usize = 1 << 20;

/// The BLAKE3 a PUT names in its query (`b3=<hex>`): `Err` if named but malformed.
fn named_hash(query: Option<&str>) -> Result<Option<[u8; 32]>, ()> {
    let Some(v) = query.and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("b3="))) else {
        return Ok(None);
    };
    hex::decode(v).ok().and_then(|b| b.try_into().ok()).map(Some).ok_or(())
}

fn shard_id(path: &str) -> Option<ShardId> {
    ShardId::from_bytes(&hex::decode(path.strip_prefix("/shards/")?).ok()?)
}

/// The largest attestation request a node reads.
const MAX_ATTEST_REQUEST: usize = 1 << 20;

async fn handle(identity: Arc<Identity>, store: LocalShardStore, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path();
    let result: Result<Response<Full<Bytes>>, StoreError> = async {
        Ok(match (parts.method.as_str(), path) {
            ("POST", "/attest") => {
                let request: crate::proof::AttestRequest = match Limited::new(body, MAX_ATTEST_REQUEST).collect().await
                {
                    Ok(b) => match serde_json::from_slice(&b.to_bytes()) {
                        Ok(r) => r,
                        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("attest request: {e}"))),
                    },
                    Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("attest request: {e}"))),
                };
                match crate::proof::attest(&identity, &store, &request).await {
                    Ok(a) => reply(
                        StatusCode::OK,
                        serde_json::to_vec(&a).map_err(|e| StoreError::Unavailable(e.to_string()))?,
                    ),
                    Err(e) => reply(StatusCode::BAD_REQUEST, e),
                }
            }
            ("GET", "/stat") => {
                let s = store.stat().await?;
                reply(
                    StatusCode::OK,
                    format!("{} {} {} {}", s.shards, s.used_bytes, s.free_bytes, s.total_bytes),
                )
            }
            ("POST", "/scrub") => {
                let request: ScrubRequest = match Limited::new(body, MAX_SCRUB_REQUEST).collect().await {
                    Ok(b) => match serde_json::from_slice(&b.to_bytes()) {
                        Ok(r) => r,
                        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("scrub request: {e}"))),
                    },
                    Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, format!("scrub request: {e}"))),
                };
                let status = store.scrub(request).await?;
                let body = serde_json::to_vec(&status).map_err(|e| StoreError::Unavailable(e.to_string()))?;
                reply(StatusCode::OK, body)
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
                            let data = b.to_bytes();
                            match named_hash(parts.uri.query()) {
                                Err(()) => return Ok(reply(StatusCode::BAD_REQUEST, "malformed b3")),
                                Ok(Some(hash)) => {
                                    // Damaged on the way (or a gateway's bug): refused, so the
                                    // write counts this shard as failed rather than stored.
                                    if blake3::hash(&data).as_bytes() != &hash {
                                        return Ok(reply(StatusCode::BAD_REQUEST, "shard does not match its BLAKE3"));
                                    }
                                    store.put_hashed(id, data, hash).await?
                                }
                                Ok(None) => store.put(id, data).await?,
                            }
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
    // Its own background work: the scrub of its shards, the compaction of its segments.
    let workers = coffre_types::background::Workers::default();
    let always: coffre_types::background::Leads = Arc::new(|| true);
    workers.start(Box::new(CompactionWorker(vec![store.clone()])), always.clone());
    workers.start(Box::new(ScrubWorker::new(vec![store.clone()])), always);
    let signer = identity.clone();
    let service: crate::mtls::Service = Arc::new(move |req| Box::pin(handle(signer.clone(), store.clone(), req)));
    let served =
        crate::mtls::serve_gateways(listener, identity, "node", service, shutdown, Duration::from_secs(30)).await;
    workers.shutdown(Duration::from_secs(10)).await;
    served
}

/// A node's shard store directory, keeping `reserve` bytes of its disk free.
pub fn open_store(identity: &Identity, data: &std::path::Path, reserve: u64) -> Result<LocalShardStore, String> {
    let store = LocalShardStore::open(identity.id.clone(), &data.join("shards")).map_err(|e| e.to_string())?;
    store.set_reserve(reserve);
    Ok(store)
}
