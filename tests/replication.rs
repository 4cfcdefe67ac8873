//! Replicated metadata across real processes: three gateways, each a metadata replica, in
//! front of six `coffre node`s on 127.0.0.1. Gateways are killed with SIGKILL, stopped two
//! at a time, wiped; every acknowledged write must read back identical from every gateway.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::cluster::*;
use common::*;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Shared by every gateway of the cluster (each one seals and opens the same records).
const MASTER_KEY: &str = "4f1c2a9d8e7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";

struct Gateway {
    data: PathBuf,
    config: PathBuf,
    raft: String,
    child: Option<Child>,
    endpoint: String,
    admin: String,
}

impl Gateway {
    /// Starts the process; `wait_up` reads its banner (a gateway prints it only once a
    /// quorum of replicas answers, so all three are spawned before any is waited for).
    fn spawn(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args(["server", "--data", self.data.to_str().unwrap()])
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--config", self.config.to_str().unwrap()])
            .args(["--gc-grace-secs", "600"])
            .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
            .env("COFFRE_ROOT_SECRET_KEY", SECRET)
            .env("COFFRE_MASTER_KEY", MASTER_KEY)
            .env("COFFRE_ADMIN_TOKEN", "replication-test-admin-token-0123456789")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn wait_up(&mut self) {
        let child = self.child.as_mut().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                lines.read_line(&mut line).unwrap() > 0,
                "gateway exited before it was up"
            );
            if let Some(rest) = line.trim().strip_prefix("Coffre admin endpoint: ") {
                self.admin = rest.split_whitespace().next().unwrap().to_string();
            }
            if let Some(rest) = line.trim().strip_prefix("Coffre S3 endpoint: ") {
                self.endpoint = rest.split_whitespace().next().unwrap().to_string();
                break;
            }
        }
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn client(&self) -> aws_sdk_s3::Client {
        // The SDK's own retries are off: the test counts every answer it gets.
        let conf = client_builder(&self.endpoint, ACCESS, SECRET)
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    fn meta_status(&self) -> serde_json::Value {
        let out = admin_cmd(
            &self.admin,
            "replication-test-admin-token-0123456789",
            &["meta", "status"],
            &["--json"],
        );
        serde_json::from_str(&out).unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Cluster {
    _nodes: Vec<Node>,
    gateways: Vec<Gateway>,
}

fn cluster(root: &Path) -> Cluster {
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let nodes: Vec<Node> = (1..=6)
        .map(|i| new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("s{i}")))
        .collect();
    let rafts: Vec<String> = (0..3).map(|_| format!("127.0.0.1:{}", free_port())).collect();
    let replicas: Vec<String> = rafts.iter().map(|r| format!("\"https://{r}\"")).collect();
    let mut gateways = Vec::new();
    for (i, raft) in rafts.iter().enumerate() {
        let identity = issue_identity(root, &ca, &format!("gw-{i}"), "FR", &format!("s{}", i + 1));
        let mut toml = format!(
            "[cluster]\nca = \"{}\"\nidentity = \"{}\"\n",
            ca.display(),
            identity.display()
        );
        for n in &nodes {
            toml.push_str(&format!("[[nodes]]\naddress = \"https://{}\"\n", n.addr));
        }
        toml.push_str(&format!(
            "[meta]\nlisten = \"{raft}\"\nreplicas = [{}]\n",
            replicas.join(", ")
        ));
        let config = root.join(format!("gw-{i}.toml"));
        std::fs::write(&config, toml).unwrap();
        gateways.push(Gateway {
            data: root.join(format!("gw-{i}")),
            config,
            raft: format!("https://{raft}"),
            child: None,
            endpoint: String::new(),
            admin: String::new(),
        });
    }
    for g in &mut gateways {
        g.spawn();
    }
    for g in &mut gateways {
        g.wait_up();
    }
    Cluster {
        _nodes: nodes,
        gateways,
    }
}

/// Which gateway leads the metadata, asked of gateway `via`.
fn leader(c: &Cluster, via: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.gateways[via].meta_status();
        if let Some(id) = s["leader"].as_u64() {
            let address = s["replicas"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["id"].as_u64() == Some(id))
                .map(|r| r["address"].as_str().unwrap().to_string());
            if let Some(i) = c.gateways.iter().position(|g| Some(&g.raft) == address.as_ref()) {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader: {s}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

async fn get(c: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<Vec<u8>> {
    match c.get_object().bucket(bucket).key(key).send().await {
        Ok(o) => Some(o.body.collect().await.unwrap().into_bytes().to_vec()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_write_survives_leader_kills_and_reads_the_same_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path());
    c.gateways[0]
        .client()
        .create_bucket()
        .bucket("rep")
        .send()
        .await
        .unwrap();
    // A bucket created through one gateway is there for the others at once.
    c.gateways[2].client().head_bucket().bucket("rep").send().await.unwrap();

    let mut acknowledged: Vec<(String, u8)> = Vec::new();
    let mut refused_keys: Vec<(String, u8)> = Vec::new();
    let mut refused = 0;
    for round in 0..3u8 {
        // Writes through every gateway still up, then the leader dies.
        for i in 0..12u8 {
            let via = (i % 3) as usize;
            if c.gateways[via].child.is_none() {
                continue;
            }
            let key = format!("r{round}-k{i}");
            let seed = round.wrapping_mul(31).wrapping_add(i);
            let put = c.gateways[via]
                .client()
                .put_object()
                .bucket("rep")
                .key(&key)
                .body(ByteStream::from(data(20_000 + i as usize * 997, seed)))
                .send()
                .await;
            match put {
                Ok(_) => acknowledged.push((key, seed)),
                Err(_) => {
                    refused_keys.push((key, seed));
                    refused += 1
                }
            }
            if i == 6 {
                let l = leader(&c, (via + 1) % 3);
                c.gateways[l].kill();
            }
        }
        // The killed gateway comes back on its data and catches up.
        for g in &mut c.gateways {
            if g.child.is_none() {
                g.spawn();
                g.wait_up();
            }
        }
    }
    assert!(
        acknowledged.len() >= 24,
        "too few writes got through: {refused} refused"
    );
    for g in &c.gateways {
        let client = g.client();
        for (key, seed) in &acknowledged {
            let i: usize = key.rsplit('k').next().unwrap().parse().unwrap();
            let got = get(&client, "rep", key).await;
            assert!(
                got.as_deref() == Some(&data(20_000 + i * 997, *seed)[..]),
                "{key} through {}",
                g.endpoint
            );
        }
        // A refused write may have committed (its answer lost) or not: whole, or absent.
        for (key, seed) in &refused_keys {
            let i: usize = key.rsplit('k').next().unwrap().parse().unwrap();
            let got = get(&client, "rep", key).await;
            assert!(
                got.is_none() || got.as_deref() == Some(&data(20_000 + i * 997, *seed)[..]),
                "{key} half-visible through {}",
                g.endpoint
            );
        }
        // Listing shows the same keys everywhere.
        let listed = client.list_objects_v2().bucket("rep").send().await.unwrap();
        let n = listed.contents().len();
        assert!(n >= acknowledged.len(), "{n} listed through {}", g.endpoint);
    }
    let s = c.gateways[leader(&c, 0)].meta_status();
    assert_eq!(s["replicas"].as_array().unwrap().len(), 3, "{s}");
    assert!(
        s["replicas"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["commit_index"].as_u64().is_some()),
        "{s}"
    );

    // A node drained through one gateway is drained on the others (they follow the
    // metadata's node list).
    let token = "replication-test-admin-token-0123456789";
    admin_cmd(&c.gateways[0].admin, token, &["nodes", "drain"], &["fr-6"]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let v: serde_json::Value =
            serde_json::from_str(&admin_cmd(&c.gateways[2].admin, token, &["status"], &["--json"])).unwrap();
        let fr6 = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == "fr-6")
            .cloned();
        if fr6.is_some_and(|n| n["draining"] == true) {
            break;
        }
        assert!(Instant::now() < deadline, "gateway 2 never saw the drain: {v}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_replica_refuses_writes_and_a_wiped_one_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path());
    let client0 = c.gateways[0].client();
    client0.create_bucket().bucket("quorum").send().await.unwrap();
    client0
        .put_object()
        .bucket("quorum")
        .key("before")
        .body(ByteStream::from_static(b"before"))
        .send()
        .await
        .unwrap();

    // Two of three stopped: the last one refuses writes with 503, promptly, and stores
    // nothing.
    c.gateways[1].kill();
    c.gateways[2].kill();
    let started = Instant::now();
    let e = client0
        .put_object()
        .bucket("quorum")
        .key("lost")
        .body(ByteStream::from_static(b"lost"))
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.meta().code(), Some("ServiceUnavailable"), "{e:?}");
    assert!(e.meta().message().unwrap_or("").contains("replica"), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Reads too (this replica may be behind), and again: a replica that found no leader gives
    // the next requests a short patience, and a leader's first answer ends that.
    for _ in 0..2 {
        let e = client0
            .get_object()
            .bucket("quorum")
            .key("before")
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert_eq!(e.meta().code(), Some("ServiceUnavailable"), "{e:?}");
    }

    // One back: a quorum again, writes resume; the refused write never appears.
    c.gateways[1].spawn();
    c.gateways[1].wait_up();
    client0
        .put_object()
        .bucket("quorum")
        .key("after")
        .body(ByteStream::from_static(b"after"))
        .send()
        .await
        .unwrap();
    assert!(get(&c.gateways[1].client(), "quorum", "lost").await.is_none());

    // The third comes back wiped: it catches up from the others and serves reads.
    std::fs::remove_dir_all(&c.gateways[2].data).unwrap();
    c.gateways[2].spawn();
    c.gateways[2].wait_up();
    let client2 = c.gateways[2].client();
    assert_eq!(get(&client2, "quorum", "before").await.as_deref(), Some(&b"before"[..]));
    assert_eq!(get(&client2, "quorum", "after").await.as_deref(), Some(&b"after"[..]));
    let s = c.gateways[2].meta_status();
    assert!(s["leader"].as_u64().is_some(), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_backup_made_while_serving_restores_every_object() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start_with(&data, "127.0.0.1:0", &["--gc-grace-secs", "600"]);
    let c = server.client();
    c.create_bucket().bucket("keep").send().await.unwrap();
    for i in 0..20u8 {
        c.put_object()
            .bucket("keep")
            .key(format!("k{i}"))
            .body(ByteStream::from(data_of(i)))
            .send()
            .await
            .unwrap();
    }
    let backup = dir.path().join("meta.backup");
    let (ok, out, err) = server.admin(&["meta", "backup", "--out", backup.to_str().unwrap()]);
    assert!(ok, "{out} {err}");
    // Sealed: no key or bucket name in clear.
    let sealed = std::fs::read(&backup).unwrap();
    assert!(!sealed.windows(4).any(|w| w == b"keep"));
    // Written after the backup: gone with the metadata, as expected of a restore.
    c.put_object()
        .bucket("keep")
        .key("later")
        .body(ByteStream::from_static(b"later"))
        .send()
        .await
        .unwrap();
    server.kill();

    // The metadata is lost; the shard stores and the master key are not.
    std::fs::remove_dir_all(data.join("meta")).unwrap();
    let restore = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffre"));
        cmd.args(["meta", "restore", "--from", backup.to_str().unwrap()])
            .args(["--data", data.to_str().unwrap()]);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // Another master key cannot open it, and leaves nothing behind.
    let wrong = restore(&[("COFFRE_MASTER_KEY", MASTER_KEY)]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("master key"),
        "{wrong:?}"
    );
    std::fs::remove_dir_all(data.join("meta")).ok();
    let done = restore(&[]);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    // A second restore over it is refused: the store is not empty.
    assert!(!restore(&[]).status.success());

    let server = Server::start_with(&data, "127.0.0.1:0", &["--gc-grace-secs", "600"]);
    let c = server.client();
    for i in 0..20u8 {
        let got = get(&c, "keep", &format!("k{i}")).await;
        assert!(got.as_deref() == Some(&data_of(i)[..]), "k{i}");
    }
    assert!(get(&c, "keep", "later").await.is_none());
}

fn data_of(i: u8) -> Vec<u8> {
    data(10_000 + i as usize * 1_000, i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_set_is_rebuilt_from_a_backup_after_every_gateway_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cluster(dir.path());
    let client = c.gateways[1].client();
    client.create_bucket().bucket("restored").send().await.unwrap();
    for i in 0..10u8 {
        client
            .put_object()
            .bucket("restored")
            .key(format!("k{i}"))
            .body(ByteStream::from(data_of(i)))
            .send()
            .await
            .unwrap();
    }
    let backup = dir.path().join("dr.backup");
    admin_cmd(
        &c.gateways[2].admin,
        "replication-test-admin-token-0123456789",
        &["meta", "backup"],
        &["--out", backup.to_str().unwrap()],
    );
    // Every gateway lost, disks included; the nodes keep the shards.
    for g in &mut c.gateways {
        g.kill();
        std::fs::remove_dir_all(&g.data).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["meta", "restore", "--from", backup.to_str().unwrap()])
        .args(["--data", c.gateways[0].data.to_str().unwrap()])
        .args(["--config", c.gateways[0].config.to_str().unwrap()])
        .env("COFFRE_MASTER_KEY", MASTER_KEY)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The restored gateway leads a set of one and serves at once.
    c.gateways[0].spawn();
    c.gateways[0].wait_up();
    assert_eq!(
        get(&c.gateways[0].client(), "restored", "k3").await.as_deref(),
        Some(&data_of(3)[..])
    );
    // An empty gateway waits to be added, then catches up from the restored snapshot.
    c.gateways[1].spawn();
    admin_cmd(
        &c.gateways[0].admin,
        "replication-test-admin-token-0123456789",
        &["meta", "add"],
        &[&c.gateways[1].raft],
    );
    c.gateways[1].wait_up();
    let client1 = c.gateways[1].client();
    for i in 0..10u8 {
        let got = get(&client1, "restored", &format!("k{i}")).await;
        assert!(
            got.as_deref() == Some(&data_of(i)[..]),
            "k{i} through the added replica"
        );
    }
    let s = c.gateways[1].meta_status();
    assert_eq!(s["replicas"].as_array().unwrap().len(), 2, "{s}");
}
