//! `GET /metrics` (docs/metrics.md): what the sources given render (S3 listener, data path,
//! workers, audit, replicas), the admin API's own calls, the process, the tenants' usage and
//! quotas, and each node's location and capacity with their sums per site.

use crate::Admin;
use coffre_types::metrics::{gauge_header, sample};
use std::sync::Arc;

/// The admin API's calls by operation (the call table's names) and status class, and their
/// latency.
pub struct AdminMetrics {
    requests: coffre_types::metrics::CounterFamily,
    duration: coffre_types::metrics::HistogramFamily,
    /// Keys in the repair queue, counted in the background (`refresh`): a scan of the queue
    /// is no scrape's work. `u64::MAX` until first counted.
    repair_pending: std::sync::atomic::AtomicU64,
}

/// How often the queue lengths are counted again (at most `scrub::REPAIR_COUNT_LIMIT` keys).
const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Counts the queues for the metrics every `REFRESH_EVERY`, while the admin API lives.
pub(crate) fn spawn_refresher(admin: &Arc<Admin>) {
    let admin = Arc::downgrade(admin);
    tokio::spawn(async move {
        loop {
            let Some(a) = admin.upgrade() else { return };
            if let Ok(n) = a.engine.repair_pending(crate::scrub::REPAIR_COUNT_LIMIT).await {
                a.calls
                    .repair_pending
                    .store(n as u64, std::sync::atomic::Ordering::Relaxed);
            }
            drop(a);
            tokio::time::sleep(REFRESH_EVERY).await;
        }
    });
}

impl Default for AdminMetrics {
    fn default() -> AdminMetrics {
        use coffre_types::metrics::{CounterFamily, HistogramFamily, LATENCY_BUCKETS};
        AdminMetrics {
            requests: CounterFamily::new(
                "coffre_admin_requests_total",
                "Admin API calls answered, by operation and status class.",
                &["operation", "status"],
            ),
            duration: HistogramFamily::new(
                "coffre_admin_request_duration_seconds",
                "Admin API calls' time to answer, by operation.",
                &["operation"],
                LATENCY_BUCKETS,
            ),
            repair_pending: std::sync::atomic::AtomicU64::new(u64::MAX),
        }
    }
}

impl AdminMetrics {
    pub(crate) fn record(&self, operation: &str, status: u16, took: std::time::Duration) {
        let class = coffre_types::metrics::status_class(status);
        self.requests.inc(&[operation, class]);
        self.duration.observe(&[operation], took.as_secs_f64());
    }

    pub(crate) fn render(&self, out: &mut String) {
        self.requests.render(out);
        self.duration.render(out);
        let pending = self.repair_pending.load(std::sync::atomic::Ordering::Relaxed);
        if pending != u64::MAX {
            gauge_header(
                out,
                "coffre_repair_queue_keys",
                "Keys waiting in the repair queue (counted every 10 s, up to 100 000).",
            );
            sample(out, "coffre_repair_queue_keys", &[], pending);
        }
    }
}

/// Prometheus metrics (docs/metrics.md): the sources given (S3 listener, workers, audit…),
/// the admin API's calls, and each node's location and capacity with their sums per site.
/// Embedded stores answer from memory; remote nodes from their last heartbeat, so a scrape
/// never calls a node.
pub(crate) async fn metrics(
    axum::extract::State(admin): axum::extract::State<Arc<Admin>>,
) -> impl axum::response::IntoResponse {
    let mut body = String::new();
    for source in &admin.metrics {
        body.push_str(&source());
    }
    admin.calls.render(&mut body);
    coffre_types::metrics::process_metrics(&mut body);
    tenants(&admin, &mut body);
    certificates(&admin, &mut body);
    let mut stats = Vec::new();
    for n in admin.engine.nodes() {
        let stat = if n.address.is_empty() {
            n.store.stat().await.ok()
        } else {
            n.stat()
        };
        stats.push((n.clone(), stat.filter(|_| n.store.is_up())));
    }
    gauge_header(
        &mut body,
        "coffre_store_info",
        "A storage node's signed location (always 1).",
    );
    for (n, _) in &stats {
        let l = &n.location;
        let draining = if n.is_draining() { "true" } else { "false" };
        let labels = [
            ("store", n.id()),
            ("country", l.country.as_str()),
            ("site", l.site.as_str()),
            ("zone", l.zone.as_str()),
            ("draining", draining),
        ];
        sample(&mut body, "coffre_store_info", &labels, 1);
    }
    type Field = fn(&coffre_engine::StoreStat) -> u64;
    let per_node: [(&str, &str, Field); 4] = [
        ("coffre_store_shards", "Shards a node holds.", |s| s.shards),
        ("coffre_store_used_bytes", "Bytes its shards take.", |s| s.used_bytes),
        (
            "coffre_store_free_bytes",
            "Bytes free for shards (its reserve excluded).",
            |s| s.free_bytes,
        ),
        ("coffre_store_total_bytes", "Its data disk's size.", |s| s.total_bytes),
    ];
    gauge_header(
        &mut body,
        "coffre_store_up",
        "1 when the node answers (as of its last heartbeat).",
    );
    for (n, st) in &stats {
        sample(
            &mut body,
            "coffre_store_up",
            &[("store", n.id())],
            u8::from(st.is_some()),
        );
    }
    for (name, help, value) in per_node {
        gauge_header(&mut body, name, help);
        for (n, st) in &stats {
            if let Some(st) = st {
                sample(&mut body, name, &[("store", n.id())], value(st));
            }
        }
    }
    // Per site: what its nodes that answer hold and have free.
    let mut sites: std::collections::BTreeMap<(String, String), (u64, u64, u64)> = Default::default();
    for (n, st) in &stats {
        let e = sites
            .entry((n.location.country.clone(), n.location.site.clone()))
            .or_default();
        if let Some(st) = st {
            e.0 = e.0.saturating_add(st.used_bytes);
            e.1 = e.1.saturating_add(st.free_bytes);
            e.2 += 1;
        }
    }
    for (name, help, pick) in [
        ("coffre_site_used_bytes", "Bytes the shards of a site's nodes take.", 0),
        ("coffre_site_free_bytes", "Bytes free on a site's nodes.", 1),
        ("coffre_site_nodes_up", "A site's nodes that answer.", 2),
    ] {
        gauge_header(&mut body, name, help);
        for ((country, site), v) in &sites {
            let value = [v.0, v.1, v.2][pick];
            sample(&mut body, name, &[("country", country), ("site", site)], value);
        }
    }
    // What is left to rebuild of nodes removed for good (from the metadata: no node called).
    if let Ok(lost) = admin.engine.lost_nodes().await {
        let mut lines = Vec::new();
        for node in lost {
            if let Ok(left) = admin.engine.node_holdings(&node).await {
                lines.push((node, left));
            }
        }
        for (name, help, pick) in [
            (
                "coffre_lost_node_parts",
                "Parts a node removed for good still has shards of to rebuild.",
                0,
            ),
            ("coffre_lost_node_stripes", "Stripes of those parts.", 1),
            ("coffre_lost_node_bytes", "Bytes of those shards.", 2),
        ] {
            gauge_header(&mut body, name, help);
            for (node, left) in &lines {
                let value = [left.parts, left.stripes, left.bytes][pick];
                sample(&mut body, name, &[("node", node)], value);
            }
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Every tenant's usage (from the usage counters the writes keep, not a scan) and quota.
fn tenants(admin: &Admin, out: &mut String) {
    let meta = admin.engine.meta();
    let Ok(tenants) = meta.list_tenants() else { return };
    let mut rows = Vec::new();
    for (name, rec) in tenants {
        if let Ok(usage) = meta.tenant_usage(&name) {
            rows.push((name, usage, rec.quota));
        }
    }
    gauge_header(
        out,
        "coffre_tenant_used_bytes",
        "Bytes a tenant's objects hold (every version).",
    );
    for (t, u, _) in &rows {
        sample(out, "coffre_tenant_used_bytes", &[("tenant", t)], u.bytes);
    }
    gauge_header(out, "coffre_tenant_objects", "Objects (versions) a tenant holds.");
    for (t, u, _) in &rows {
        sample(out, "coffre_tenant_objects", &[("tenant", t)], u.objects);
    }
    gauge_header(
        out,
        "coffre_tenant_quota_bytes",
        "A tenant's quota in bytes (absent: none).",
    );
    for (t, _, q) in &rows {
        if let Some(b) = q.bytes {
            sample(out, "coffre_tenant_quota_bytes", &[("tenant", t)], b);
        }
    }
    gauge_header(
        out,
        "coffre_tenant_quota_objects",
        "A tenant's quota in objects (absent: none).",
    );
    for (t, _, q) in &rows {
        if let Some(o) = q.objects {
            sample(out, "coffre_tenant_quota_objects", &[("tenant", t)], o);
        }
    }
}

/// When this gateway's certificate, its cluster CA's and the nodes' expire (an alert fires 30
/// days before).
fn certificates(admin: &Admin, out: &mut String) {
    gauge_header(
        out,
        "coffre_certificate_not_after_seconds",
        "When a certificate of the cluster expires (seconds since the epoch): this gateway's, \
         its CA's, and each node's as presented to this gateway.",
    );
    for n in admin.engine.nodes() {
        // As presented at the gateway's last connection to the node (no node is called here).
        if let Some(t) = n.store.certificate_not_after() {
            let labels = [("kind", "node"), ("id", n.id())];
            sample(out, "coffre_certificate_not_after_seconds", &labels, t);
        }
    }
    let Some(identity) = &admin.identity else { return };
    use coffre_cluster::identity::not_after;
    if let Some(t) = not_after(&identity.cert) {
        sample(
            out,
            "coffre_certificate_not_after_seconds",
            &[("kind", "gateway"), ("id", &identity.id)],
            t,
        );
    }
    if let Some(t) = not_after(&identity.ca) {
        sample(
            out,
            "coffre_certificate_not_after_seconds",
            &[("kind", "ca"), ("id", "cluster")],
            t,
        );
    }
}
