//! One function per admin call (the cluster plane): each takes what its entry of the call
//! table (`crate::api`) declares and answers its type.

use crate::api::{self, ErrorCode};
use crate::{Admin, ApiError, ApiResult, Call};
use coffre_engine::{layout_of, policy_of, ClusterNode};
use std::sync::Arc;

pub(crate) fn invalid(m: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidArgument, m)
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, e.to_string())
}

fn no_such_node() -> ApiError {
    ApiError::new(ErrorCode::NoSuchNode, "no such node")
}

fn location_of(admin: &Admin, node: &str) -> (String, String, String) {
    match admin.engine.node(node) {
        Some(n) => (n.location.country, n.location.site, n.location.zone),
        None => (String::new(), String::new(), String::new()),
    }
}

pub(crate) fn holdings(h: coffre_engine::NodeHoldings) -> api::Holdings {
    api::Holdings {
        parts: h.parts,
        stripes: h.stripes,
        bytes: h.bytes,
    }
}

pub(crate) fn scrub_state(s: coffre_engine::scrub::ScrubStatus) -> api::ScrubState {
    api::ScrubState {
        node: s.node,
        running: s.running,
        requested: s.requested,
        pass_started_ms: s.pass_started_ms,
        last_pass_done_ms: s.last_pass_done_ms,
        passes: s.passes,
        pass_shards: s.pass_shards,
        shards: s.shards,
        shards_checked: s.shards_checked,
        bytes_checked: s.bytes_checked,
        corrupt_found: s.corrupt_found,
        findings: s.findings,
        findings_pending: s.findings_pending,
        rate_mib: s.rate_mib,
        period_secs: s.period_secs,
    }
}

pub(crate) async fn status(admin: Arc<Admin>) -> ApiResult<api::ClusterStatus> {
    let nodes = admin.engine.nodes();
    let stats = futures_util::future::join_all(nodes.iter().map(|n| n.store.stat())).await;
    let mut list: Vec<api::NodeStatus> = nodes
        .iter()
        .zip(stats)
        .map(|(n, s)| {
            let s = s.ok();
            api::NodeStatus {
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
                scrub: admin.engine.scrub_seen(n.id()).map(scrub_state),
                left: None,
            }
        })
        .collect();
    for n in list.iter_mut().filter(|n| n.draining) {
        n.left = Some(holdings(admin.engine.node_holdings(&n.id).await?));
    }
    let up = list.iter().filter(|n| n.up).count();
    // Nodes removed for good whose shards are not all rebuilt yet.
    let mut lost = Vec::new();
    for node in admin.engine.lost_nodes().await? {
        let left = admin.engine.node_holdings(&node).await?;
        lost.push(api::LostNode {
            node,
            parts_left: left.parts,
            stripes_left: left.stripes,
            bytes_left: left.bytes,
        });
    }
    Ok(api::ClusterStatus {
        nodes: list,
        nodes_up: up as u64,
        nodes_total: nodes.len() as u64,
        lost,
    })
}

/// `GET /v1/placement/proof`: the nodes' signed statements about an object's shards.
pub(crate) async fn placement_proof(
    admin: Arc<Admin>,
    call: Call<api::PlacementProofGet>,
) -> ApiResult<serde_json::Value> {
    let q = call.query;
    let sel = match q.version_id.as_deref() {
        None => None,
        Some(v) => Some(coffre_engine::VersionSel::parse(v).ok_or_else(|| invalid("invalid version id"))?),
    };
    let proof = admin.engine.placement_proof(&q.bucket, &q.key, sel, &q.nonce).await?;
    serde_json::to_value(&proof).map_err(internal)
}

/// `GET /v1/audit/residency/proof`: the nodes' signed statements about a bucket's shards.
pub(crate) async fn bucket_proof(
    admin: Arc<Admin>,
    call: Call<api::AuditResidencyProofGet>,
) -> ApiResult<serde_json::Value> {
    let q = call.query;
    let sample = q.sample.map(|n| usize::try_from(n).unwrap_or(usize::MAX).max(1));
    let proof = admin.engine.bucket_proof(&q.bucket, sample, &q.nonce).await?;
    serde_json::to_value(&proof).map_err(internal)
}

pub(crate) async fn placement(admin: Arc<Admin>, call: Call<api::PlacementGet>) -> ApiResult<api::Placement> {
    let q = call.query;
    let (bucket, key) = (q.bucket.as_str(), q.key.as_str());
    let meta = admin.engine.meta();
    // One version (`version_id`), else the current object.
    let found = match q.version_id.as_deref() {
        None => meta.get_object(bucket, key.as_bytes()).map_err(internal)?,
        Some(v) => {
            let sel = coffre_engine::VersionSel::parse(v).ok_or_else(|| invalid("invalid version id"))?;
            meta.find_version(bucket, key.as_bytes(), sel)
                .map_err(internal)?
                .map(|(r, _)| r)
        }
    };
    let rec = found.ok_or_else(|| ApiError::new(ErrorCode::NoSuchObject, "no such object"))?;
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
            shards.push(api::ShardPlacement {
                part: pi as u64 + 1,
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
    Ok(api::Placement {
        bucket: bucket.to_string(),
        key: key.to_string(),
        size: rec.size,
        inline,
        scheme: rec.scheme.to_string(),
        policy: policy.map(|p| api::ResidencyPolicy {
            countries: p.countries,
            failure_domain: p.failure_domain.to_string(),
            scheme: p.scheme.to_string(),
        }),
        shards,
    })
}

fn no_such_bucket() -> ApiError {
    ApiError::new(ErrorCode::NoSuchBucket, "no such bucket")
}

pub(crate) async fn audit(admin: Arc<Admin>, call: Call<api::AuditResidencyGet>) -> ApiResult<api::ResidencyAudit> {
    let bucket = call.query.bucket.as_str();
    let meta = admin.engine.meta();
    let b = meta.get_bucket(bucket).map_err(internal)?.ok_or_else(no_such_bucket)?;
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
                    violations.push(api::Violation {
                        key: String::from_utf8_lossy(&key).into_owned(),
                        part: pi as u64 + 1,
                        index: index as u8,
                        node: node.clone(),
                        country,
                    });
                }
            }
        }
    }
    Ok(api::ResidencyAudit {
        bucket: bucket.to_string(),
        countries: b.countries,
        objects,
        shards,
        compliant_shards: compliant,
        non_compliant: violations,
        degraded_shards: degraded,
    })
}

pub(crate) async fn set_policy(admin: Arc<Admin>, call: Call<api::BucketsPolicyPut>) -> ApiResult<api::BucketPolicy> {
    let (bucket, q) = (call.path, call.query);
    let mut b = admin
        .engine
        .meta()
        .get_bucket(&bucket)
        .map_err(internal)?
        .ok_or_else(no_such_bucket)?;
    if let Some(c) = q.countries {
        let countries: Vec<String> = c
            .split(',')
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        if countries.is_empty() || !countries.iter().all(|c| coffre_cluster::identity::valid_country(c)) {
            return Err(invalid("countries: ISO 3166-1 alpha-2 codes, comma-separated"));
        }
        b.countries = countries;
    }
    if let Some(fd) = q.failure_domain {
        b.failure_domain = fd
            .parse::<coffre_cluster::FailureDomain>()
            .map_err(invalid)?
            .to_string();
    }
    if let Some(s) = q.scheme {
        b.scheme = s.parse().map_err(invalid)?;
    }
    admin.engine.update_bucket(&bucket, b.clone()).await?;
    Ok(api::BucketPolicy {
        bucket,
        countries: b.countries,
        failure_domain: b.failure_domain,
        scheme: b.scheme.to_string(),
    })
}

fn node_info(n: &ClusterNode) -> api::NodeInfo {
    let r = n.record();
    api::NodeInfo {
        id: r.id,
        country: r.country,
        site: r.site,
        zone: r.zone,
        draining: r.draining,
    }
}

/// Admits a node by address: its id and location come from its CA-signed certificate.
pub(crate) async fn add_node(admin: Arc<Admin>, call: Call<api::NodesCreate>) -> ApiResult<api::NodeInfo> {
    let identity = admin
        .identity
        .as_ref()
        .ok_or_else(|| ApiError::new(ErrorCode::NotAClusterGateway, "not a cluster gateway"))?;
    let address = call.query.address;
    if address.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidRequest, "address is required"));
    }
    let node = ClusterNode::connect(identity, &address, false)
        .await
        .map_err(|e| ApiError::new(ErrorCode::NodeUnreachable, e))?;
    if admin.engine.node(node.id()).is_some_and(|n| n.address != address) {
        return Err(ApiError::new(
            ErrorCode::AlreadyExists,
            format!("another node already has the id {}", node.id()),
        ));
    }
    let answer = node_info(&node);
    admin.engine.admit_node(node).await?;
    Ok(answer)
}

pub(crate) async fn drain_node(admin: Arc<Admin>, call: Call<api::NodeDrain>) -> ApiResult<api::NodeInfo> {
    let id = call.path;
    if admin.engine.node(&id).is_none() {
        return Err(no_such_node());
    }
    let node = admin.engine.drain_node(&id).await?;
    Ok(node_info(&node))
}

/// `DELETE /v1/nodes/{id}`: forgets a node that holds nothing any more (drained), or with
/// `?dead=true` one gone for good: every shard it held is then rebuilt elsewhere.
pub(crate) async fn remove_node(admin: Arc<Admin>, call: Call<api::NodesDelete>) -> ApiResult<api::NodeRemoved> {
    let (id, dead) = (call.path, call.query.dead);
    if admin.engine.node(&id).is_none() {
        return Err(no_such_node());
    }
    let held = admin.engine.node_holdings(&id).await?;
    if held.parts > 0 && !dead {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "node {id} still holds shards of {} parts ({} bytes): drain it first (coffre admin nodes drain), or give them up with --dead (they are rebuilt from the others)",
                held.parts, held.bytes
            ),
        ));
    }
    match admin.engine.remove_node(&id).await? {
        Some(_) => {
            let _ = admin.engine.workers().wake("evacuate");
            Ok(api::NodeRemoved {
                removed: id,
                dead,
                left: holdings(held),
            })
        }
        None => Err(no_such_node()),
    }
}

fn replica_of(admin: &Admin) -> Result<&Arc<coffre_engine::replica::Replica>, ApiError> {
    admin.replica.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotReplicated,
            "the metadata of this gateway is not replicated (no [meta] section)",
        )
    })
}

/// The replica set: leader, term, and each replica's state, commit index and lag.
pub(crate) async fn meta_status(admin: Arc<Admin>, _: Call<api::MetaGet>) -> ApiResult<api::MetaStatus> {
    let s = replica_of(&admin)?.status();
    Ok(api::MetaStatus {
        id: s.id,
        leader: s.leader,
        term: s.term,
        state: s.state,
        last_log_index: s.last_log_index,
        last_applied: s.last_applied,
        replicas: s
            .replicas
            .into_iter()
            .map(|r| api::ReplicaState {
                id: r.id,
                address: r.address,
                state: r.state,
                commit_index: r.commit_index,
                lag: r.lag,
            })
            .collect(),
    })
}

/// Adds a replica by its Raft address (learner, caught up, then voter).
pub(crate) async fn add_replica(
    admin: Arc<Admin>,
    call: Call<api::MetaReplicasCreate>,
) -> ApiResult<api::ReplicaAdded> {
    let replica = replica_of(&admin)?;
    let address = call.query.address;
    if !address.starts_with("https://") {
        return Err(invalid("a replica address is https://HOST:PORT"));
    }
    let id = replica
        .add_replica(&address)
        .await
        .map_err(coffre_engine::EngineError::from)?;
    Ok(api::ReplicaAdded { id, address })
}

pub(crate) async fn remove_replica(
    admin: Arc<Admin>,
    call: Call<api::MetaReplicasDelete>,
) -> ApiResult<api::ReplicaRemoved> {
    let replica = replica_of(&admin)?;
    let id: u64 = call
        .path
        .parse()
        .map_err(|_| invalid("a replica id is a number (see `coffre admin meta status`)"))?;
    replica
        .remove_replica(id)
        .await
        .map_err(coffre_engine::EngineError::from)?;
    Ok(api::ReplicaRemoved { removed: id })
}

/// A sealed backup of the metadata (`application/octet-stream`), made while serving. Works
/// with or without replication. The file is made next to the metadata, unlinked at once, and
/// streamed from its open handle.
pub(crate) async fn meta_backup(
    axum::extract::State(admin): axum::extract::State<Arc<Admin>>,
) -> Result<axum::response::Response, ApiError> {
    let dir = admin
        .engine
        .meta()
        .dir()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ".".into());
    let path = dir.join(format!(".backup-{}.tmp", coffre_engine::new_id("")));
    let id = admin.engine.backup_metadata(path.clone()).await?;
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
