//! The gateway's admin API (HTTP, bearer token): cluster status, bucket residency policies,
//! proof of placement and residency audits. JSON field names are stable (docs/admin-api.md).

use crate::engine::{policy_of, Engine};
use crate::server::{full, ResBody};
use bytes::Bytes;
use coffre_data::ShardStore;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use std::sync::Arc;

pub struct Admin {
    pub engine: Arc<Engine>,
    pub token: String,
    /// The gateway's cluster identity (to admit new nodes); none in embedded mode.
    pub identity: Option<Arc<coffre_cluster::Identity>>,
}

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
}

#[derive(Serialize)]
pub struct Violation {
    pub key: String,
    pub part: usize,
    pub index: u8,
    pub node: String,
    pub country: String,
}

fn json(status: StatusCode, v: &impl Serialize) -> Response<ResBody> {
    let mut r = Response::new(full(serde_json::to_vec_pretty(v).unwrap_or_default()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", http::HeaderValue::from_static("application/json"));
    r
}

fn error(status: StatusCode, message: impl Into<String>) -> Response<ResBody> {
    json(status, &serde_json::json!({ "error": message.into() }))
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    crate::router::parse_query(req.uri().query().unwrap_or("")).unwrap_or_default()
}

fn q<'a>(qs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    qs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Admin {
    fn location_of(&self, node: &str) -> (String, String, String) {
        match self.engine.node(node) {
            Some(n) => (
                n.location.country.clone(),
                n.location.site.clone(),
                n.location.zone.clone(),
            ),
            None => (String::new(), String::new(), String::new()),
        }
    }

    async fn status(&self) -> Response<ResBody> {
        let nodes = self.engine.nodes();
        let stats = futures_util::future::join_all(nodes.iter().map(|n| n.store.stat())).await;
        let list: Vec<NodeStatus> = nodes
            .iter()
            .zip(stats)
            .map(|(n, s)| {
                let s = s.ok();
                NodeStatus {
                    draining: n.is_draining(),
                    address: n.address.clone(),
                    id: n.store.id().to_string(),
                    country: n.location.country.clone(),
                    site: n.location.site.clone(),
                    zone: n.location.zone.clone(),
                    up: s.is_some() && n.store.is_up(),
                    shards: s.map_or(0, |s| s.shards),
                    used_bytes: s.map_or(0, |s| s.used_bytes),
                    free_bytes: s.map_or(0, |s| s.free_bytes),
                    total_bytes: s.map_or(0, |s| s.total_bytes),
                }
            })
            .collect();
        let up = list.iter().filter(|n| n.up).count();
        json(
            StatusCode::OK,
            &serde_json::json!({ "nodes": list, "nodes_up": up, "nodes_total": nodes.len() }),
        )
    }

    fn placement(&self, qs: &[(String, String)]) -> Response<ResBody> {
        let (Some(bucket), Some(key)) = (q(qs, "bucket"), q(qs, "key")) else {
            return error(StatusCode::BAD_REQUEST, "bucket and key are required");
        };
        let meta = &self.engine.meta;
        let rec = match meta.get_object(bucket, key.as_bytes()) {
            Ok(Some(r)) => r,
            Ok(None) => return error(StatusCode::NOT_FOUND, "no such object"),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        let policy = meta.get_bucket(bucket).ok().flatten().map(|b| policy_of(&b));
        let n = rec.scheme.total();
        let layout = crate::engine::layout_of(&rec);
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
                let (country, site, zone) = self.location_of(&node);
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
                });
            }
        }
        json(
            StatusCode::OK,
            &serde_json::json!({
                "bucket": bucket,
                "key": key,
                "size": rec.size,
                "scheme": rec.scheme.to_string(),
                "policy": policy.map(|p| serde_json::json!({"countries": p.countries, "failure_domain": p.failure_domain.to_string(), "scheme": p.scheme.to_string()})),
                "shards": shards,
            }),
        )
    }

    fn audit(&self, qs: &[(String, String)]) -> Response<ResBody> {
        let Some(bucket) = q(qs, "bucket") else {
            return error(StatusCode::BAD_REQUEST, "bucket is required");
        };
        let meta = &self.engine.meta;
        let Some(b) = meta.get_bucket(bucket).ok().flatten() else {
            return error(StatusCode::NOT_FOUND, "no such bucket");
        };
        let (mut objects, mut shards, mut compliant) = (0u64, 0u64, 0u64);
        let mut violations = Vec::new();
        for item in meta.scan_objects(bucket) {
            let (key, rec) = match item {
                Ok(x) => x,
                Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
            objects += 1;
            let layout = crate::engine::layout_of(&rec);
            for (pi, part) in rec.parts.iter().enumerate() {
                let stripes = layout.stripe_count(part.size) as u64;
                for (index, node) in part.nodes.iter().enumerate() {
                    if node.is_empty() {
                        continue; // a slot left empty (degraded write): no shard anywhere
                    }
                    let (country, _, _) = self.location_of(node);
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
        json(
            StatusCode::OK,
            &serde_json::json!({
                "bucket": bucket,
                "countries": b.countries,
                "objects": objects,
                "shards": shards,
                "compliant_shards": compliant,
                "non_compliant": violations,
            }),
        )
    }

    fn set_policy(&self, bucket: &str, qs: &[(String, String)]) -> Response<ResBody> {
        let meta = &self.engine.meta;
        let Some(mut b) = meta.get_bucket(bucket).ok().flatten() else {
            return error(StatusCode::NOT_FOUND, "no such bucket");
        };
        if let Some(c) = q(qs, "countries") {
            let countries: Vec<String> = c
                .split(',')
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| !c.is_empty())
                .collect();
            if countries.is_empty() || !countries.iter().all(|c| coffre_cluster::identity::valid_country(c)) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "countries: ISO 3166-1 alpha-2 codes, comma-separated",
                );
            }
            b.countries = countries;
        }
        if let Some(fd) = q(qs, "failure_domain") {
            match fd.parse::<coffre_cluster::FailureDomain>() {
                Ok(d) => b.failure_domain = d.to_string(),
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            }
        }
        if let Some(s) = q(qs, "scheme") {
            match s.parse() {
                Ok(s) => b.scheme = s,
                Err(e) => return error(StatusCode::BAD_REQUEST, e),
            }
        }
        match meta.update_bucket(bucket, &b) {
            Ok(()) => json(
                StatusCode::OK,
                &serde_json::json!({"bucket": bucket, "countries": b.countries, "failure_domain": b.failure_domain, "scheme": b.scheme.to_string()}),
            ),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }

    fn node_record(n: &crate::engine::ClusterNode) -> coffre_meta::NodeRecord {
        coffre_meta::NodeRecord {
            id: n.store.id().to_string(),
            country: n.location.country.clone(),
            site: n.location.site.clone(),
            zone: n.location.zone.clone(),
            draining: n.is_draining(),
        }
    }

    /// Admits a node by address: its id and location come from its CA-signed certificate.
    async fn add_node(&self, qs: &[(String, String)]) -> Response<ResBody> {
        let Some(identity) = &self.identity else {
            return error(StatusCode::BAD_REQUEST, "not a cluster gateway");
        };
        let Some(address) = q(qs, "address") else {
            return error(StatusCode::BAD_REQUEST, "address is required");
        };
        let store = match coffre_cluster::RemoteShardStore::connect(identity, address).await {
            Ok(s) => s,
            Err(e) => return error(StatusCode::BAD_GATEWAY, e),
        };
        if self.engine.node(store.id()).is_some_and(|n| n.address != address) {
            return error(
                StatusCode::CONFLICT,
                format!("another node already has the id {}", store.id()),
            );
        }
        let location = store.location.clone();
        let node = crate::engine::ClusterNode::new(Arc::new(store), location, address.to_string(), false);
        if let Err(e) = self.engine.meta.put_node(address, &Self::node_record(&node)) {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
        }
        let rec = Self::node_record(&node);
        self.engine.add_node(node);
        json(StatusCode::OK, &rec)
    }

    fn drain_node(&self, id: &str) -> Response<ResBody> {
        let Some(node) = self.engine.node(id) else {
            return error(StatusCode::NOT_FOUND, "no such node");
        };
        node.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        if !node.address.is_empty() {
            if let Err(e) = self.engine.meta.put_node(&node.address, &Self::node_record(&node)) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
        json(StatusCode::OK, &Self::node_record(&node))
    }

    fn remove_node(&self, id: &str) -> Response<ResBody> {
        let Some(node) = self.engine.remove_node(id) else {
            return error(StatusCode::NOT_FOUND, "no such node");
        };
        if !node.address.is_empty() {
            if let Err(e) = self.engine.meta.delete_node(&node.address) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
            }
        }
        json(StatusCode::OK, &serde_json::json!({ "removed": id }))
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<ResBody> {
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::auth::constant_time_eq(given, &self.token) {
            return error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        }
        let qs = query(&req);
        let path = req.uri().path().to_string();
        match (req.method().as_str(), path.as_str()) {
            ("GET", "/v1/status") | ("GET", "/v1/nodes") => self.status().await,
            ("POST", "/v1/nodes") => self.add_node(&qs).await,
            ("POST", p) if p.starts_with("/v1/nodes/") && p.ends_with("/drain") => {
                self.drain_node(&p["/v1/nodes/".len()..p.len() - "/drain".len()])
            }
            ("DELETE", p) if p.starts_with("/v1/nodes/") => self.remove_node(&p["/v1/nodes/".len()..]),
            ("GET", "/v1/placement") => self.placement(&qs),
            ("GET", "/v1/audit/residency") => self.audit(&qs),
            ("PUT", p) if p.starts_with("/v1/buckets/") && p.ends_with("/policy") => {
                let bucket = &p["/v1/buckets/".len()..p.len() - "/policy".len()];
                self.set_policy(bucket, &qs)
            }
            _ => error(StatusCode::NOT_FOUND, "unknown admin endpoint"),
        }
    }
}

/// Serves the admin API until `shutdown` resolves.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    admin: Arc<Admin>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::TokioIo;
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            c = coffre_cluster::net::accept(&listener) => c,
            _ = &mut shutdown => return,
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, std::convert::Infallible>(admin.handle(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A minimal admin client: one request, the JSON answer.
pub async fn admin_call(
    endpoint: &str,
    token: &str,
    method: &str,
    path_and_query: &str,
) -> Result<(u16, String), String> {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;
    let hp = endpoint
        .strip_prefix("http://")
        .ok_or("the admin endpoint is http://HOST:PORT")?
        .trim_end_matches('/');
    let tcp = tokio::net::TcpStream::connect(hp)
        .await
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", hp)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
