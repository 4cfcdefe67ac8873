//! The ready-made observability of docker/observability/ against a running cluster (a gateway
//! with replicated metadata, six nodes over three sites), with Debian's real Prometheus: every
//! alert rule loads and evaluates, every query of the Grafana dashboard returns series, and
//! the node-down alert fires when a node is killed.

mod common;

use common::cluster::*;
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A Prometheus process of this test's, ended with it.
struct Prometheus {
    child: Child,
    addr: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A chunked HTTP/1.1 body, joined.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].strip_prefix("\r\n").unwrap_or(&rest[n..]);
    }
    out
}

impl Prometheus {
    /// Prometheus scraping `admin` (host:port) every second with the token in `token_file`,
    /// with the rules of docker/observability/alerts.yml, their `for:` shortened to 2 s.
    fn start(dir: &Path, admin: &str, token_file: &Path) -> Prometheus {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/observability");
        let rules = std::fs::read_to_string(root.join("alerts.yml")).unwrap();
        let rules: String = rules
            .lines()
            .map(|l| match l.trim_start().strip_prefix("for: ") {
                Some(_) => format!("{}for: 2s", &l[..l.len() - l.trim_start().len()]),
                None => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.join("alerts.yml"), rules).unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [alerts.yml]\nscrape_configs:\n  - job_name: coffre\n    authorization:\n      type: Bearer\n      credentials_file: {}\n    static_configs:\n      - targets: [\"{admin}\"]\n",
            token_file.display()
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (scripts/test.sh installs Debian's prometheus)");
        let mut p = Prometheus { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&p.addr).is_err() {
            assert!(p.child.try_wait().unwrap().is_none(), "prometheus exited");
            assert!(Instant::now() < deadline, "prometheus never listened");
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// `GET /api/v1/{path}`'s `data`.
    fn api(&self, path: &str) -> serde_json::Value {
        let (status, head, body) = raw_request(
            &self.addr,
            "GET",
            &format!("/api/v1/{path}"),
            &[("host".into(), self.addr.clone())],
            b"",
        );
        assert_eq!(status, 200, "{path}: {body}");
        let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            dechunk(&body)
        } else {
            body
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {body}");
        v["data"].clone()
    }

    fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        self.api(&format!("query?query={}", encode(expr)))["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Polls until `done` holds (up to `secs`), or fails saying `what`.
    fn wait(&self, secs: u64, what: &str, done: impl Fn(&Prometheus) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done(self) {
            assert!(Instant::now() < deadline, "Prometheus never saw: {what}");
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_loads_the_rules_answers_the_dashboard_and_fires_node_down() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The cluster: six nodes over three sites, a gateway whose metadata is a replica set (of
    // one) so that the replication panels have something to show.
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let mut nodes: Vec<Node> = (1..=6)
        .map(|i| new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("site{}", i % 3)))
        .collect();
    let gw_id = issue_identity(root, &ca, "gw-1", "FR", "site0");
    let raft = format!("127.0.0.1:{}", free_port());
    let meta = format!("[meta]\nlisten = \"{raft}\"\nreplicas = [\"https://{raft}\"]\n");
    let cfg = gateway_config(root, &ca, &gw_id, &nodes, &meta);
    let s = Server::start_with(&root.join("gw"), "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);

    // Traffic of every kind the dashboard shows: small and large objects, reads, refusals.
    let c = s.client();
    c.create_bucket().bucket("watched").send().await.unwrap();
    let load = || async {
        for i in 0..5 {
            put(&c, "watched", &format!("small-{i}"), data(1000, i as u8)).await;
        }
        put(&c, "watched", "large", data(2 << 20, 9)).await;
        get_body(&c, "watched", "large").await;
        let _ = c.get_object().bucket("watched").key("missing").send().await;
    };
    load().await;
    s.admin(&["scrub", "start", "--wait"]);

    let prom_dir = root.join("prometheus");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let admin = s.admin_endpoint.trim_start_matches("http://").to_string();
    let p = Prometheus::start(&prom_dir, &admin, &s.data.join("admin.token"));
    p.wait(60, "the gateway's target up", |p| {
        p.query("up{job=\"coffre\"} == 1").len() == 1
    });
    // Rates need samples a few scrapes apart: more traffic meanwhile.
    for _ in 0..4 {
        load().await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // Every rule of the file is loaded and evaluates without error.
    let wanted = std::fs::read_to_string(prom_dir.join("alerts.yml"))
        .unwrap()
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert:"))
        .count();
    p.wait(30, "every rule evaluated", |p| {
        let groups = p.api("rules")["groups"].as_array().cloned().unwrap_or_default();
        let rules: Vec<serde_json::Value> = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .collect();
        rules.len() == wanted && rules.iter().all(|r| r["health"] == "ok")
    });

    // Every query of the dashboard returns series.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/observability/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let title = panel["title"].as_str().unwrap();
            p.wait(30, &format!("series for the panel {title:?}: {expr}"), |p| {
                !p.query(expr).is_empty()
            });
            queries += 1;
        }
    }
    assert!(queries >= 25, "{queries} queries");
    // The certificates' expiry covers the nodes too, as each presented its own to the gateway.
    let node_certs = p.query("coffre_certificate_not_after_seconds{kind=\"node\"} > time()");
    assert_eq!(node_certs.len(), nodes.len(), "{node_certs:?}");
    // Nothing fires on a healthy cluster (bar the node-down alert to come).
    assert!(
        p.query("ALERTS{alertstate=\"firing\"}").is_empty(),
        "{:?}",
        p.query("ALERTS")
    );

    // A node killed: the gateway's heartbeats see it gone, the alert fires for that node.
    let victim = nodes[2].id.clone();
    nodes[2].kill();
    p.wait(60, "CoffreNodeDown firing", |p| {
        p.api("alerts")["alerts"].as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "CoffreNodeDown"
                && a["labels"]["store"] == victim.as_str()
                && a["state"] == "firing"
        })
    });
}
