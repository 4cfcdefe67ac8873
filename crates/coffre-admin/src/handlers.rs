//! One function per admin endpoint.

use crate::{Admin, ApiError, ApiResult};
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use coffre_engine::{layout_of, policy_of, ClusterNode};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Serialize)]
pub struct NodeStatus {
    pub id: String,
    pub address: String,
    pub draining: bool,
    pub country: String,
    pub site: String,
    pub zone: String,
    pub up: bool,
    pub shards: u64,
    pub used_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
    /// Its scrub as last seen (the metadata leader's `scrub` worker asks every node).
    pub scrub: Option<coffre_engine::scrub::ScrubStatus>,
    /// A draining node: what it still holds, to move (parts, stripes, bytes).
    pub left: Option<coffre_engine::NodeHoldings>,
}

#[derive(Serialize)]
pub struct ShardPlacement {
    pub part: usize,
    /// The part's version id (hex): with stripe and index, the shard's id on its node.
    pub version: String,
    pub stripe: u32,
    pub index: u8,
    pub node: String,
    pub country: String,
    pub site: String,
    pub zone: String,
    pub size: u64,
    pub blake3: String,
    /// Missing or corrupt where it should be: queued for repair.
    pub degraded: bool,
}

#[derive(Serialize)]
pub struct Violation {
    pub key: String,
    pub part: usize,
    pub index: u8,
    pub node: String,
    pub country: String,
}

/// The decoded `name=value` pairs of a query string.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(raw: Option<String>) -> Result<Query, ApiError> {
        let mut out = Vec::new();
        for pair in raw.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| bad_request("the query string is not UTF-8"))
            };
            out.push((decode(k)?, decode(v)?));
        }
        Ok(Query(out))
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn require(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| bad_request(format!("{name} is required")))
    }
}

fn bad_request(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m.into())
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn path_arg(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s).map_err(|e| bad_request(e.body_text()))
}

fn location_of(admin: &Admin, node: &str) -> (String, String, String) {
    match admin.engine.node(node) {
        Some(n) => (n.location.country, n.location.site, n.location.zone),
        None => (String::new(), String::new(), String::new()),
    }
}

pub async fn status(State(admin): State<Arc<Admin>>) -> ApiResult {
    let nodes = admin.engine.nodes();
    let stats = futures_util::future::join_all(nodes.iter().map(|n| n.store.stat())).await;
    let mut list: Vec<NodeStatus> = nodes
        .iter()
        .zip(stats)
        .map(|(n, s)| {
            let s = s.ok();
            NodeStatus {
                draining: n.is_draining(),
                address: n.address.clone(),
                id: n.id().to_string(),
                country: n.location.country.clone(),
                site: n.location.site.clone(),
                zone: n.location.zone.clone(),
                up: s.is_some() && n.store.is_up(),
                shards: s.map_or(0, |s| s.shards),
                used_bytes: s.map_or(0, |s| s.used_bytes),
                free_bytes: s.map_or(0, |s| s.free_bytes),
                total_bytes: s.map_or(0, |s| s.total_bytes),
                scrub: admin.engine.scrub_seen(n.id()),
                left: None,
            }
        })
        .collect();
    for n in list.iter_mut().filter(|n| n.draining) {
        n.left = Some(admin.engine.node_holdings(&n.id).await?);
    }
    let up = list.iter().filter(|n| n.up).count();
    // Nodes removed for good whose shards are not all rebuilt yet.
    let mut lost = Vec::new();
    for node in admin.engine.lost_nodes().await? {
        let left = admin.engine.node_holdings(&node).await?;
        lost.push(
            json!({ "node": node, "parts_left": left.parts, "stripes_left": left.stripes, "bytes_left": left.bytes }),
        );
    }
    Ok(Json(
        json!({ "nodes": list, "nodes_up": up, "nodes_total": nodes.len(), "lost": lost }),
    ))
}

/// Prometheus metrics: the S3 counters and each node's capacity. Embedded stores answer
/// from memory; remote nodes from their last heartbeat, so a scrape never calls a node.
pub async fn metrics(State(admin): State<Arc<Admin>>) -> impl axum::response::IntoResponse {
    use std::fmt::Write;
    let mut body = String::new();
    for source in &admin.metrics {
        body.push_str(&source());
    }
    let _ = writeln!(
        body,
        "# TYPE coffre_store_up gauge\n# TYPE coffre_store_shards gauge\n# TYPE coffre_store_used_bytes gauge\n# TYPE coffre_store_free_bytes gauge"
    );
    for n in admin.engine.nodes() {
        let id = n.id();
        let stat = if n.address.is_empty() {
            n.store.stat().await.ok()
        } else {
            n.stat()
        };
        match stat.filter(|_| n.store.is_up()) {
            Some(st) => {
                let _ = writeln!(body, "coffre_store_up{{store=\"{id}\"}} 1");
                let _ = writeln!(body, "coffre_store_shards{{store=\"{id}\"}} {}", st.shards);
                let _ = writeln!(body, "coffre_store_used_bytes{{store=\"{id}\"}} {}", st.used_bytes);
                let _ = writeln!(body, "coffre_store_free_bytes{{store=\"{id}\"}} {}", st.free_bytes);
            }
            None => {
                let _ = writeln!(body, "coffre_store_up{{store=\"{id}\"}} 0");
            }
        }
    }
    // What is left to rebuild of nodes removed for good (from the metadata: no node called).
    if let Ok(lost) = admin.engine.lost_nodes().await {
        let _ = writeln!(
            body,
            "# TYPE coffre_lost_node_parts gauge\n# TYPE coffre_lost_node_stripes gauge\n# TYPE coffre_lost_node_bytes gauge"
        );
        for node in lost {
            if let Ok(left) = admin.engine.node_holdings(&node).await {
                let _ = writeln!(body, "coffre_lost_node_parts{{node=\"{node}\"}} {}", left.parts);
                let _ = writeln!(body, "coffre_lost_node_stripes{{node=\"{node}\"}} {}", left.stripes);
                let _ = writeln!(body, "coffre_lost_node_bytes{{node=\"{node}\"}} {}", left.bytes);
            }
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

pub async fn placement(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw)?;
    let (bucket, key) = (q.require("bucket")?, q.require("key")?);
    let meta = admin.engine.meta();
    // One version (`version_id`), else the current object.
    let found = match q.get("version_id") {
        None => meta.get_object(bucket, key.as_bytes()).map_err(internal)?,
        Some(v) => {
            let sel = coffre_engine::VersionSel::parse(v)
                .ok_or_else(|| ApiError(StatusCode::BAD_REQUEST, "invalid version id".into()))?;
            meta.find_version(bucket, key.as_bytes(), sel)
                .map_err(internal)?
                .map(|(r, _)| r)
        }
    };
    let rec = found.ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such object".into()))?;
    let policy = meta.get_bucket(bucket).ok().flatten().map(|b| policy_of(&b));
    let n = rec.scheme.total();
    let layout = layout_of(&rec);
    let mut shards = Vec::new();
    for (pi, part) in rec.parts.iter().enumerate() {
        let hashes = meta
            .get_layout(&part.version)
            .ok()
            .flatten()
            .map(|l| l.hashes)
            .unwrap_or_default();
        for (h, hash) in hashes.iter().enumerate() {
            let (stripe, index) = ((h / n) as u32, (h % n) as u8);
            let node = part.nodes.get(index as usize).cloned().unwrap_or_default();
            let (country, site, zone) = location_of(&admin, &node);
            let size = layout.shard_len(layout.stripe_len(part.size, stripe)) as u64;
            shards.push(ShardPlacement {
                part: pi + 1,
                version: part.version.to_hex(),
                stripe,
                index,
                node,
                country,
                site,
                zone,
                size,
                blake3: hex::encode(hash),
                degraded: part.degraded.contains(&index),
            });
        }
    }
    // A small object of the embedded server may be inlined in its metadata: no shard.
    let inline = rec.parts.iter().any(|p| {
        matches!(
            meta.get_part_data(&p.version),
            Ok(Some(coffre_engine::PartData::Inline(_)))
        )
    });
    Ok(Json(json!({
        "bucket": bucket,
        "key": key,
        "size": rec.size,
        "inline": inline,
        "scheme": rec.scheme.to_string(),
        "policy": policy.map(|p| json!({"countries": p.countries, "failure_domain": p.failure_domain.to_string(), "scheme": p.scheme.to_string()})),
        "shards": shards,
    })))
}

pub async fn audit(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> ApiResult {
    let q = Query::parse(raw)?;
    let bucket = q.require("bucket")?;
    let meta = admin.engine.meta();
    let b = meta
        .get_bucket(bucket)
        .map_err(internal)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such bucket".into()))?;
    let (mut objects, mut shards, mut compliant, mut degraded) = (0u64, 0u64, 0u64, 0u64);
    let mut violations = Vec::new();
    // Every version holds shards, noncurrent ones too.
    for item in meta.scan_versions(bucket) {
        let (key, rec) = item.map_err(internal)?;
        if rec.is_delete_marker() {
            continue;
        }
        objects += 1;
        let layout = layout_of(&rec);
        for (pi, part) in rec.parts.iter().enumerate() {
            let stripes = layout.stripe_count(part.size) as u64;
            for (index, node) in part.nodes.iter().enumerate() {
                if node.is_empty() || part.degraded.contains(&(index as u8)) {
                    // A slot a degraded write left empty (or its shard not stored): the heal
                    // task rebuilds it.
                    degraded = degraded.saturating_add(stripes);
                    continue;
                }
                let (country, _, _) = location_of(&admin, node);
                shards += stripes;
                if b.countries.contains(&country) {
                    compliant += stripes;
                } else {
                    violations.push(Violation {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        part: pi + 1,
                        index: index as u8,
                        node: node.clone(),
                        country,
                    });
                }
            }
        }
    }
    Ok(Json(json!({
        "bucket": bucket,
        "countries": b.countries,
        "objects": objects,
        "shards": shards,
        "compliant_shards": compliant,
        "non_compliant": violations,
        "degraded_shards": degraded,
    })))
}

pub async fn set_policy(
    State(admin): State<Arc<Admin>>,
    bucket: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let bucket = path_arg(bucket)?;
    let q = Query::parse(raw)?;
    let mut b = admin
        .engine
        .meta()
        .get_bucket(&bucket)
        .map_err(internal)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no such bucket".into()))?;
    if let Some(c) = q.get("countries") {
        let countries: Vec<String> = c
            .split(',')
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        if countries.is_empty() || !countries.iter().all(|c| coffre_cluster::identity::valid_country(c)) {
            return Err(bad_request("countries: ISO 3166-1 alpha-2 codes, comma-separated"));
        }
        b.countries = countries;
    }
    if let Some(fd) = q.get("failure_domain") {
        b.failure_domain = fd
            .parse::<coffre_cluster::FailureDomain>()
            .map_err(bad_request)?
            .to_string();
    }
    if let Some(s) = q.get("scheme") {
        b.scheme = s.parse().map_err(bad_request)?;
    }
    admin.engine.update_bucket(&bucket, b.clone()).await.map_err(internal)?;
    Ok(Json(
        json!({"bucket": bucket, "countries": b.countries, "failure_domain": b.failure_domain, "scheme": b.scheme.to_string()}),
    ))
}

fn node_json(n: &ClusterNode) -> serde_json::Value {
    serde_json::to_value(n.record()).unwrap_or_default()
}

/// Admits a node by address: its id and location come from its CA-signed certificate.
pub async fn add_node(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> ApiResult {
    let identity = admin
        .identity
        .as_ref()
        .ok_or_else(|| bad_request("not a cluster gateway"))?;
    let q = Query::parse(raw)?;
    let address = q.require("address")?;
    let node = ClusterNode::connect(identity, address, false)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_GATEWAY, e))?;
    if admin.engine.node(node.id()).is_some_and(|n| n.address != address) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("another node already has the id {}", node.id()),
        ));
    }
    let answer = node_json(&node);
    admin.engine.admit_node(node).await.map_err(internal)?;
    Ok(Json(answer))
}

pub async fn drain_node(State(admin): State<Arc<Admin>>, id: Result<Path<String>, PathRejection>) -> ApiResult {
    let id = path_arg(id)?;
    if admin.engine.node(&id).is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such node".into()));
    }
    let node = admin.engine.drain_node(&id).await.map_err(internal)?;
    Ok(Json(node_json(&node)))
}

/// `DELETE /v1/nodes/{id}`: forgets a node that holds nothing any more (drained), or with
/// `?dead=true` one gone for good: every shard it held is then rebuilt elsewhere.
pub async fn remove_node(
    State(admin): State<Arc<Admin>>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> ApiResult {
    let id = path_arg(id)?;
    let dead = matches!(Query::parse(raw)?.get("dead"), Some("true" | "1" | ""));
    if admin.engine.node(&id).is_none() {
        return Err(ApiError(StatusCode::NOT_FOUND, "no such node".into()));
    }
    let held = admin.engine.node_holdings(&id).await?;
    if held.parts > 0 && !dead {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "node {id} still holds shards of {} parts ({} bytes): drain it first (coffre admin nodes drain), or give them up with --dead (they are rebuilt from the others)",
                held.parts, held.bytes
            ),
        ));
    }
    match admin.engine.remove_node(&id).await.map_err(internal)? {
        Some(_) => {
            let _ = admin.engine.workers().wake("evacuate");
            Ok(Json(json!({ "removed": id, "dead": dead, "left": held })))
        }
        None => Err(ApiError(StatusCode::NOT_FOUND, "no such node".into())),
    }
}

fn replica_of(admin: &Admin) -> Result<&Arc<coffre_engine::replica::Replica>, ApiError> {
    admin
        .replica
        .as_ref()
        .ok_or_else(|| bad_request("the metadata of this gateway is not replicated (no [meta] section)"))
}

fn meta_error(e: coffre_engine::MetaError) -> ApiError {
    match e {
        coffre_engine::MetaError::Unavailable(m) => ApiError(StatusCode::SERVICE_UNAVAILABLE, m),
        coffre_engine::MetaError::DeleteConflict(m) => ApiError(StatusCode::CONFLICT, m),
        other => ApiError(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// The replica set: leader, term, and each replica's state, commit index and lag.
pub async fn meta_status(State(admin): State<Arc<Admin>>) -> ApiResult {
    let s = replica_of(&admin)?.status();
    Ok(Json(serde_json::to_value(s).map_err(|e| internal(e.to_string()))?))
}

/// Adds a replica by its Raft address (learner, caught up, then voter).
pub async fn add_replica(State(admin): State<Arc<Admin>>, RawQuery(raw): RawQuery) -> ApiResult {
    let replica = replica_of(&admin)?;
    let q = Query::parse(raw)?;
    let address = q.require("address")?;
    if !address.starts_with("https://") {
        return Err(bad_request("a replica address is https://HOST:PORT"));
    }
    let id = replica.add_replica(address).await.map_err(meta_error)?;
    Ok(Json(json!({ "id": id, "address": address })))
}

pub async fn remove_replica(State(admin): State<Arc<Admin>>, id: Result<Path<String>, PathRejection>) -> ApiResult {
    let replica = replica_of(&admin)?;
    let id: u64 = path_arg(id)?
        .parse()
        .map_err(|_| bad_request("a replica id is a number (see `coffre admin meta status`)"))?;
    replica.remove_replica(id).await.map_err(meta_error)?;
    Ok(Json(json!({ "removed": id })))
}

/// A sealed backup of the metadata (`application/octet-stream`), made while serving. Works
/// with or without replication. The file is made next to the metadata, unlinked at once, and
/// streamed from its open handle.
pub async fn meta_backup(State(admin): State<Arc<Admin>>) -> Result<axum::response::Response, ApiError> {
    let dir = admin
        .engine
        .meta()
        .dir()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    let path = dir.join(format!(".backup-{}.tmp", coffre_engine::new_id("")));
    let id = admin.engine.backup_metadata(path.clone()).await.map_err(internal)?;
    let mut res = stream_file(&path, "application/octet-stream").await?;
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-coffre-snapshot", v);
    }
    Ok(res)
}

/// Answers with a file written for this answer: opened, unlinked, then streamed.
pub(crate) async fn stream_file(
    path: &std::path::Path,
    content_type: &'static str,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.map_err(internal)?;
    let _ = tokio::fs::remove_file(path).await;
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        let mut buf = vec![0u8; 1 << 20];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let headers = [(axum::http::header::CONTENT_TYPE, content_type)];
    Ok((headers, axum::body::Body::from_stream(stream)).into_response())
}
