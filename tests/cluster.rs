//! A real cluster on 127.0.0.1: eight `coffre node` processes (six in France over three sites,
//! two in Germany) behind a `coffre server` gateway, driven with the AWS SDK and `coffre admin`.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CreateBucketConfiguration;
use common::cluster::*;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Shard ids (hex) → BLAKE3 of their data, read straight from a node's segment files.
fn shards_on_disk(dir: &Path) -> std::collections::HashMap<String, String> {
    let mut found = std::collections::HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir.join("shards")) else {
        return found;
    };
    let mut segs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| e.path())
        .collect();
    segs.sort();
    for seg in segs {
        let b = std::fs::read(&seg).unwrap();
        let mut pos = 0;
        while pos + 40 <= b.len() {
            let kind = b[pos + 4];
            let id = hex::encode(&b[pos + 5..pos + 28]);
            let len = u32::from_le_bytes(b[pos + 28..pos + 32].try_into().unwrap()) as usize;
            let data = &b[pos + 40..pos + 40 + len];
            if kind == 1 {
                found.insert(id, blake3::hash(data).to_hex().to_string());
            } else if kind == 3 {
                // `hash ∥ shard`: the node keeps the BLAKE3 the gateway sent, checked.
                let hash = blake3::hash(&data[32..]);
                assert_eq!(&data[..32], hash.as_bytes(), "stored hash of {id}");
                found.insert(id, hash.to_hex().to_string());
            } else {
                found.remove(&id);
            }
            pos += 40 + len;
        }
    }
    found
}

async fn wait_heartbeats() {
    // Two heartbeat periods (2 s each), so that up/down flags have caught up.
    tokio::time::sleep(Duration::from_millis(4200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn residency_placement_failures_and_identity() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let layout = [
        ("fr-1", "FR", "par1"),
        ("fr-2", "FR", "par1"),
        ("fr-3", "FR", "par2"),
        ("fr-4", "FR", "par2"),
        ("fr-5", "FR", "lyo1"),
        ("fr-6", "FR", "lyo1"),
        ("de-1", "DE", "fra1"),
        ("de-2", "DE", "fra1"),
    ];
    let mut nodes: Vec<Node> = layout
        .iter()
        .map(|(id, cc, site)| new_node(root, &ca, id, cc, site))
        .collect();
    let gw_id = issue_identity(root, &ca, "gw-1", "FR", "par1");
    let cfg = gateway_config(
        root,
        &ca,
        &gw_id,
        &nodes,
        "[regions.fr-par]\ncountries = [\"FR\"]\nfailure_domain = \"site\"\n[regions.eu]\ncountries = [\"FR\", \"DE\"]\n",
    );
    let gw_data = root.join("gw");
    let gw = Server::start_with(&gw_data, "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);
    let c = gw.client();

    c.create_bucket().bucket("fr-only").send().await.unwrap();
    let eu = CreateBucketConfiguration::builder()
        .location_constraint("eu".into())
        .build();
    c.create_bucket()
        .bucket("fr-de")
        .create_bucket_configuration(eu)
        .send()
        .await
        .unwrap();
    let objects: Vec<(String, Vec<u8>)> = [0usize, 100_000, 9 << 20]
        .iter()
        .enumerate()
        .map(|(i, n)| (format!("doc-{i}"), data(*n, i as u8)))
        .collect();
    for (k, d) in &objects {
        c.put_object()
            .bucket("fr-only")
            .key(k)
            .body(ByteStream::from(d.clone()))
            .send()
            .await
            .unwrap();
    }

    // Nothing of the FR bucket on the German nodes.
    for n in nodes.iter().filter(|n| n.country == "DE") {
        assert!(shards_on_disk(&n.data).is_empty(), "{} holds no shard", n.id);
    }
    // Placement, as the admin command reports it, is what is on disk.
    let token = std::fs::read_to_string(gw_data.join("admin.token")).unwrap();
    // `coffre admin <command…> --endpoint … --token … <args…>`; the words before the first
    // argument that is not a subcommand name are the command.
    let admin = |command: &[&str], args: &[&str]| admin_cmd(&gw.admin_endpoint, &token, command, args);
    let p: serde_json::Value = serde_json::from_str(&admin(&["placement"], &["fr-only", "doc-2", "--json"])).unwrap();
    let shards = p["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 3 * 6, "three stripes of six shards");
    let mut sites = std::collections::HashMap::new();
    for s in shards {
        assert_eq!(s["country"], "FR");
        let node = nodes.iter().find(|n| n.id == s["node"].as_str().unwrap()).unwrap();
        let id = format!(
            "{}0000{:08x}{:02x}",
            s["version"].as_str().unwrap(),
            s["stripe"].as_u64().unwrap(),
            s["index"].as_u64().unwrap()
        );
        let on_disk = shards_on_disk(&node.data);
        assert_eq!(
            on_disk.get(&id).map(String::as_str),
            s["blake3"].as_str(),
            "shard {id} on {}",
            node.id
        );
        *sites.entry(s["site"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    assert_eq!(sites.len(), 3, "spread over the three French sites: {sites:?}");
    let audit: serde_json::Value =
        serde_json::from_str(&admin(&["audit", "residency"], &["fr-only", "--json"])).unwrap();
    assert_eq!(audit["objects"], 3);
    assert_eq!(audit["shards"], audit["compliant_shards"]);
    assert!(audit["non_compliant"].as_array().unwrap().is_empty());
    let status = admin(&["status"], &[]);
    assert!(status.contains("8 of 8 nodes up"), "{status}");

    // Two French nodes killed (kill -9): every object reads back identical.
    nodes[0].kill();
    nodes[2].kill();
    for (k, d) in &objects {
        let got = get_body(&c, "fr-only", k).await;
        assert!(got[..] == d[..], "{k} with two nodes down");
    }
    // A third: clear errors, never wrong bytes.
    nodes[4].kill();
    wait_heartbeats().await;
    let e = c.get_object().bucket("fr-only").key("doc-2").send().await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(503));
    // Writes: 3 FR up refuses FR-only; FR+DE (5 up) accepts.
    let e = c
        .put_object()
        .bucket("fr-only")
        .key("new")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    let e = e.into_service_error();
    assert_eq!(e.meta().code(), Some("ServiceUnavailable"));
    assert!(e.meta().message().unwrap_or("").contains("countries FR"), "{e:?}");
    // Four FR up: still refused for FR-only; FR+DE accepted.
    nodes[0].start();
    wait_heartbeats().await;
    let e = c
        .put_object()
        .bucket("fr-only")
        .key("new")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert!(e
        .into_service_error()
        .meta()
        .message()
        .unwrap_or("")
        .contains("4 compliant node(s) up, 5 needed"));
    c.put_object()
        .bucket("fr-de")
        .key("new")
        .body(ByteStream::from(data(200_000, 3)))
        .send()
        .await
        .unwrap();
    // Five FR up: accepted, degraded, still in France only. The bucket keeps versions: a
    // degraded version that an overwrite makes noncurrent is healed too.
    nodes[2].start();
    wait_heartbeats().await;
    enable_versioning(&c, "fr-only").await;
    let old_version = c
        .put_object()
        .bucket("fr-only")
        .key("degraded")
        .body(ByteStream::from(data(100_000, 9)))
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    let d = data(300_000, 4);
    c.put_object()
        .bucket("fr-only")
        .key("degraded")
        .body(ByteStream::from(d.clone()))
        .send()
        .await
        .unwrap();
    let got = get_body(&c, "fr-only", "degraded").await;
    assert!(got[..] == d[..]);
    for n in nodes.iter().filter(|n| n.country == "DE") {
        let on = shards_on_disk(&n.data);
        let p: serde_json::Value =
            serde_json::from_str(&admin(&["placement"], &["fr-only", "degraded", "--json"])).unwrap();
        for s in p["shards"].as_array().unwrap() {
            assert_ne!(s["country"], "DE");
            assert!(!on.keys().any(|k| k.starts_with(s["version"].as_str().unwrap())));
        }
    }
    let audit: serde_json::Value =
        serde_json::from_str(&admin(&["audit", "residency"], &["fr-only", "--json"])).unwrap();
    assert!(audit["non_compliant"].as_array().unwrap().is_empty());
    let degraded: serde_json::Value =
        serde_json::from_str(&admin(&["placement"], &["fr-only", "degraded", "--json"])).unwrap();
    assert!(
        degraded["shards"].as_array().unwrap().iter().any(|s| s["node"] == ""),
        "one slot had no compliant node"
    );
    // A restarted node is used again: the objects read back, and the degraded writes are
    // healed, the noncurrent version as the current one.
    nodes[4].start();
    wait_heartbeats().await;
    for version in [None, Some(old_version.as_str())] {
        let mut args = vec!["fr-only", "degraded", "--json"];
        if let Some(v) = version {
            args.extend(["--version-id", v]);
        }
        let mut healed = false;
        let mut last = String::new();
        for _ in 0..40 {
            last = admin(&["placement"], &args);
            let p: serde_json::Value = serde_json::from_str(&last).unwrap();
            let shards = p["shards"].as_array().unwrap();
            if shards.iter().all(|s| s["node"] != "") {
                for s in shards {
                    assert_eq!(s["country"], "FR");
                    let node = nodes.iter().find(|n| n.id == s["node"].as_str().unwrap()).unwrap();
                    let id = format!(
                        "{}0000{:08x}{:02x}",
                        s["version"].as_str().unwrap(),
                        s["stripe"].as_u64().unwrap(),
                        s["index"].as_u64().unwrap()
                    );
                    assert_eq!(
                        shards_on_disk(&node.data).get(&id).map(String::as_str),
                        s["blake3"].as_str(),
                        "healed shard {id} on disk"
                    );
                }
                healed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(
            healed,
            "the missing shards of the degraded write ({version:?}) were rebuilt: {last}"
        );
    }
    let got = get_body(&c, "fr-only", "doc-2").await;
    assert!(got[..] == objects[2].1[..]);

    // The gateway's audit log is signed with the key its CA certified: a copy verifies offline
    // against the CA certificate alone (not against another CA), and it records the healing.
    let audit_dir = gw_data.join("audit");
    let verify = |trust: &Path| {
        coffre(&[
            "audit",
            "verify",
            "--dir",
            audit_dir.to_str().unwrap(),
            "--trust",
            trust.to_str().unwrap(),
            "--json",
        ])
    };
    let report: serde_json::Value = serde_json::from_str(&ok(verify(&ca.join("ca.pem")))).unwrap();
    assert_eq!(report["gateway"], "gw-1", "{report}");
    let other_ca = root.join("other-ca");
    ok(coffre(&["admin", "ca", "init", "--out", other_ca.to_str().unwrap()]));
    assert!(!verify(&other_ca.join("ca.pem")).status.success());
    // An export carries the audit certificate: it too verifies with the CA certificate alone.
    let export = root.join("default.jsonl");
    admin(
        &["audit", "export"],
        &["--tenant", "default", "--out", export.to_str().unwrap()],
    );
    let report: serde_json::Value = serde_json::from_str(&ok(coffre(&[
        "audit",
        "verify",
        "--dir",
        export.to_str().unwrap(),
        "--trust",
        ca.join("ca.pem").to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    assert!(report["entries"].as_u64().unwrap() > 0, "{report}");
    let found: serde_json::Value =
        serde_json::from_str(&admin(&["audit", "search"], &["--bucket", "fr-only", "--json"])).unwrap();
    let ops: Vec<&str> = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["op"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"system:HealShards") && ops.contains(&"PutObject"),
        "{ops:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_and_forged_location_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (ca, other_ca) = (root.join("ca"), root.join("other-ca"));
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    ok(coffre(&["admin", "ca", "init", "--out", other_ca.to_str().unwrap()]));
    let issue = |ca: &Path, id: &str, cc: &str| issue_identity(root, ca, id, cc, "s1");
    let gw = issue(&ca, "gw", "FR");
    let rogue = issue(&other_ca, "rogue", "FR");
    // A DE node whose certificate is edited to say FR: the CA's signature no longer matches.
    let forged = issue(&ca, "forged", "DE");
    let pem = std::fs::read_to_string(forged.join("cert.pem")).unwrap();
    use base64::Engine;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let mut der = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    // countryName OID, then a string of length 2 (its tag depends on the encoder)
    let at = der
        .windows(5)
        .position(|w| w == [0x06, 0x03, 0x55, 0x04, 0x06])
        .expect("country attribute")
        + 7;
    assert_eq!(&der[at..at + 2], b"DE");
    der[at..at + 2].copy_from_slice(b"FR");
    let forged_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    std::fs::write(forged.join("cert.pem"), forged_pem).unwrap();

    for (name, identity) in [("rogue", &rogue), ("forged", &forged)] {
        let mut node = Node {
            id: name.into(),
            country: "FR",
            data: root.join(format!("data-{name}")),
            identity: identity.clone(),
            addr: String::new(),
            child: None,
        };
        node.start();
        let cfg = root.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[cluster]\nca = \"{}\"\nidentity = \"{}\"\n[[nodes]]\naddress = \"https://{}\"\n",
                ca.display(),
                gw.display(),
                node.addr
            ),
        )
        .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_coffre"))
            .args([
                "server",
                "--data",
                root.join(format!("gw-{name}")).to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ])
            .args(["--admin-listen", "127.0.0.1:0", "--config", cfg.to_str().unwrap()])
            .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
            .env("COFFRE_ROOT_SECRET_KEY", SECRET)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{name}: the gateway refuses the node");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("TLS"), "{name}: {err}");
    }
}

/// `coffre admin node-identity`: an identity for `id` at `cc`/`site`, signed by `ca`; ids
/// starting with `gw` are gateways, the others nodes.
/// A gateway configuration naming the CA, the gateway's identity, `nodes` and `regions`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_changes_at_run_time_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let nodes: Vec<Node> = (1..=7)
        .map(|i| new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("site{}", i % 3)))
        .collect();
    let gw_id = issue_identity(root, &ca, "gw", "FR", "s");
    let cfg = gateway_config(root, &ca, &gw_id, &nodes[..6], "");
    let gw_data = root.join("gw");
    let mut gw = Server::start_with(&gw_data, "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);
    let token = std::fs::read_to_string(gw_data.join("admin.token")).unwrap();
    let admin = |endpoint: &str, command: &[&str], args: &[&str]| admin_cmd(endpoint, &token, command, args);
    let c = gw.client();
    c.create_bucket().bucket("members").send().await.unwrap();
    c.put_object()
        .bucket("members")
        .key("before")
        .body(ByteStream::from(data(1 << 20, 1)))
        .send()
        .await
        .unwrap();

    let seventh = format!("https://{}", nodes[6].addr);
    assert!(admin(&gw.admin_endpoint, &["nodes", "add"], &[&seventh]).contains("fr-7 admitted"));
    admin(&gw.admin_endpoint, &["nodes", "drain"], &["fr-1"]);
    let status = admin(&gw.admin_endpoint, &["nodes", "list"], &[]);
    assert!(status.contains("7 of 7 nodes up"), "{status}");
    assert!(
        status.lines().any(|l| l.starts_with("fr-1") && l.contains("drain")),
        "{status}"
    );
    // New writes avoid the draining node and use the new one.
    let mut used_seventh = false;
    for i in 0..6 {
        let key = format!("after-{i}");
        c.put_object()
            .bucket("members")
            .key(&key)
            .body(ByteStream::from(data(10_000, i)))
            .send()
            .await
            .unwrap();
        let p: serde_json::Value =
            serde_json::from_str(&admin(&gw.admin_endpoint, &["placement"], &["members", &key, "--json"])).unwrap();
        let placed: Vec<&str> = p["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["node"].as_str().unwrap())
            .collect();
        assert!(!placed.contains(&"fr-1"), "{placed:?}");
        used_seventh |= placed.contains(&"fr-7");
    }
    assert!(used_seventh, "the admitted node takes shards");
    // Removing a node: what it held is rebuilt from parity.
    admin(&gw.admin_endpoint, &["nodes", "remove"], &["fr-2", "--dead"]);
    let got = get_body(&c, "members", "before").await;
    assert!(got[..] == data(1 << 20, 1)[..]);

    // Membership survives a restart of the gateway: fr-7 (not in the file) and fr-1's drain.
    gw.kill();
    let gw2 = Server::start_with(&gw_data, "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);
    let status = admin(&gw2.admin_endpoint, &["status"], &["--json"]);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let ids: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"fr-7"), "{ids:?}");
    let fr1 = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "fr-1")
        .unwrap();
    assert_eq!(fr1["draining"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_outside_the_policy_does_not_serve_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let nodes: Vec<Node> = (1..=6)
        .map(|i| new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("s{i}")))
        .collect();
    // The gateway sees plaintext: it is located too, here in Germany.
    let gw_id = issue_identity(root, &ca, "gw-de", "DE", "fra");
    let cfg = gateway_config(
        root,
        &ca,
        &gw_id,
        &nodes,
        "[regions.fr-par]\ncountries = [\"FR\"]\n[regions.eu]\ncountries = [\"FR\", \"DE\"]\n",
    );
    let gw = Server::start_with(&root.join("gw"), "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);
    let c = gw.client();
    let e = c
        .create_bucket()
        .bucket("fr-only")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.meta().code(), Some("AccessDenied"));
    assert!(
        e.meta().message().unwrap_or("").contains("this gateway is in DE"),
        "{e:?}"
    );
    let eu = CreateBucketConfiguration::builder()
        .location_constraint("eu".into())
        .build();
    c.create_bucket()
        .bucket("fr-de")
        .create_bucket_configuration(eu)
        .send()
        .await
        .unwrap();
    c.put_object()
        .bucket("fr-de")
        .key("k")
        .body(ByteStream::from_static(b"ok"))
        .send()
        .await
        .unwrap();
    // The operator narrows the bucket's policy to France: this German gateway must stop serving it.
    let token = std::fs::read_to_string(root.join("gw").join("admin.token")).unwrap();
    let policy = |args: &[&str]| {
        let mut cmd = vec![
            "admin",
            "bucket",
            "policy",
            "--endpoint",
            &gw.admin_endpoint,
            "--token",
            token.trim(),
        ];
        cmd.extend_from_slice(args);
        coffre(&cmd)
    };
    let bad = policy(&["fr-de", "--countries", "France"]);
    assert!(!bad.status.success(), "a country is an ISO 3166-1 alpha-2 code");
    let bad = policy(&["fr-de", "--scheme", "4+9"]);
    assert!(!bad.status.success());
    let said = ok(policy(&[
        "fr-de",
        "--countries",
        "FR",
        "--failure-domain",
        "node",
        "--scheme",
        "3+2",
    ]));
    assert!(
        said.contains("countries [\"FR\"]") && said.contains("scheme 3+2"),
        "{said}"
    );
    let e = c
        .get_object()
        .bucket("fr-de")
        .key("k")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert_eq!(e.meta().code(), Some("AccessDenied"));
}

/// Starts a gateway on `cfg` and says whether it came up (its S3 banner) or, if it exited,
/// what it wrote on stderr.
fn gateway_comes_up(root: &Path, name: &str, cfg: &Path) -> Result<(), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(["server", "--data", root.join(format!("gw-{name}")).to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(["--config", cfg.to_str().unwrap()])
        .env("COFFRE_ROOT_ACCESS_KEY", ACCESS)
        .env("COFFRE_ROOT_SECRET_KEY", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let up = loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break false;
        }
        if line.starts_with("Coffre S3 endpoint") {
            break true;
        }
    };
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    if up {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_revocations_are_enforced_on_every_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let (node_identity, node_serial) = issue_with_serial(root, &ca, "node-1", "FR", "s1");
    let mut node = Node {
        id: "node-1".into(),
        country: "FR",
        data: root.join("data-node-1"),
        identity: node_identity.clone(),
        addr: String::new(),
        child: None,
    };
    node.start();
    let (gw, gw_serial) = issue_with_serial(root, &ca, "gw-1", "FR", "s1");
    let config = |name: &str, identity: &Path, cluster_extra: &str| {
        let cfg = root.join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[cluster]\nca = \"{}\"\nidentity = \"{}\"\n{cluster_extra}[[nodes]]\naddress = \"https://{}\"\n",
                ca.display(),
                identity.display(),
                node.addr
            ),
        )
        .unwrap();
        cfg
    };
    // A node's certificate cannot run a gateway: it would read and delete shards everywhere.
    let e = gateway_comes_up(root, "as-node", &config("as-node", &node_identity, "")).unwrap_err();
    assert!(e.contains("--role gateway"), "{e}");
    // The gateway's certificate works…
    gateway_comes_up(root, "ok", &config("ok", &gw, "")).unwrap();
    // …but not with a node whose certificate the cluster config revokes…
    let revoked = format!("revoked = [\"{}\"]\n", node_serial.to_uppercase());
    let e = gateway_comes_up(root, "no-node", &config("no-node", &gw, &revoked)).unwrap_err();
    assert!(e.contains("node-1") || e.contains("127.0.0.1"), "{e}");
    // …and a node refuses a gateway whose certificate it is told is revoked, from the next
    // handshake on, without a restart.
    std::fs::write(
        node.data.with_extension("revoked"),
        format!("# stolen laptop\n{gw_serial}\n"),
    )
    .unwrap();
    let e = gateway_comes_up(root, "revoked", &config("revoked", &gw, "")).unwrap_err();
    assert!(e.contains("does not serve this gateway"), "{e}");
    std::fs::write(node.data.with_extension("revoked"), "").unwrap();
    gateway_comes_up(root, "again", &config("again", &gw, "")).unwrap();
    node.kill();
}

/// `--if-missing` (what docker/compose.yaml's init services run on every `up`): a CA or an
/// identity already there is kept, byte for byte, when it is the one asked for, and refused
/// when it is not (another id, place or role, or another CA's).
#[test]
fn provisioning_with_if_missing_keeps_what_matches_and_refuses_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    let ca_s = ca.to_str().unwrap();
    ok(coffre(&["admin", "ca", "init", "--out", ca_s, "--if-missing"]));
    let ca_key = std::fs::read(ca.join("ca.key")).unwrap();
    let again = ok(coffre(&["admin", "ca", "init", "--out", ca_s, "--if-missing"]));
    assert!(again.contains("kept"), "{again}");
    assert_eq!(std::fs::read(ca.join("ca.key")).unwrap(), ca_key, "the CA is unchanged");
    assert!(
        !coffre(&["admin", "ca", "init", "--out", ca_s]).status.success(),
        "without --if-missing: refused"
    );

    let out = root.join("gw");
    let out_s = out.to_str().unwrap();
    let issue = |ca: &str, id: &str, site: &str, role: &str| {
        coffre(&[
            "admin",
            "node-identity",
            "--ca",
            ca,
            "--id",
            id,
            "--country",
            "FR",
            "--site",
            site,
            "--zone",
            "gw",
            "--role",
            role,
            "--out",
            out_s,
            "--if-missing",
        ])
    };
    ok(issue(ca_s, "gw-paris", "paris", "gateway"));
    let cert = std::fs::read(out.join("cert.pem")).unwrap();
    let audit = std::fs::read(out.join("audit.pem")).unwrap();
    let kept = ok(issue(ca_s, "gw-paris", "paris", "gateway"));
    assert!(kept.contains("kept"), "{kept}");
    assert_eq!(std::fs::read(out.join("cert.pem")).unwrap(), cert);
    assert_eq!(std::fs::read(out.join("audit.pem")).unwrap(), audit);
    for (name, out) in [
        ("another id", issue(ca_s, "gw-lille", "paris", "gateway")),
        ("another site", issue(ca_s, "gw-paris", "lille", "gateway")),
        ("another role", issue(ca_s, "gw-paris", "paris", "node")),
    ] {
        assert!(!out.status.success(), "{name}: refused");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not the one asked for"),
            "{name}"
        );
    }
    let other_ca = root.join("other-ca");
    ok(coffre(&["admin", "ca", "init", "--out", other_ca.to_str().unwrap()]));
    let out2 = issue(other_ca.to_str().unwrap(), "gw-paris", "paris", "gateway");
    assert!(!out2.status.success());
    assert!(String::from_utf8_lossy(&out2.stderr).contains("another CA"));
    assert_eq!(
        std::fs::read(out.join("cert.pem")).unwrap(),
        cert,
        "nothing was overwritten"
    );
}

/// Waits up to a minute for `nodes_up` nodes up and no degraded shard in `bucket`; whether it
/// came, and the last residency audit seen.
async fn wait_fully_healed(gw: &Server, bucket: &str, nodes_up: u64) -> (bool, serde_json::Value) {
    let mut last = serde_json::Value::Null;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let status = gw.admin_json(&["status"]);
        last = gw.admin_json(&["audit", "residency", bucket]);
        if status["nodes_up"] == nodes_up && last["degraded_shards"] == 0 {
            return (true, last);
        }
    }
    (false, last)
}

/// A node that stops answering without closing its connections (SIGSTOP: what a frozen
/// machine or a network dropping packets looks like) holds no request for the 30 s node call
/// timeout: its heartbeat goes unanswered, it is marked down, reads rebuild from parity and
/// writes go on degraded (the client here gives up after 20 s, well under the call timeout).
/// Once it answers again it is marked up and the degraded writes are healed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_node_holds_no_request_and_is_healed_when_it_thaws() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_ca, nodes, gw) = fr_cluster(root, 6, 3, &[]);
    let c = aws_sdk_s3::Client::from_conf(
        client_builder(&gw.endpoint, ACCESS, SECRET)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(20))
                    .build(),
            )
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    c.create_bucket().bucket("frozen").send().await.unwrap();
    let before: Vec<(String, Vec<u8>)> = (0..6).map(|i| (format!("before-{i}"), data(300_000, i))).collect();
    for (k, d) in &before {
        put(&c, "frozen", k, d.clone()).await;
    }

    let frozen = nodes[0].child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-STOP", &frozen])
        .status()
        .unwrap()
        .success());
    // Every object still reads back (the frozen node held a shard of each: 4+2 on 6 nodes),
    // and writes go on, before the client's 20 s are up.
    for (k, d) in &before {
        assert_eq!(get_body(&c, "frozen", k).await, d[..], "{k}");
    }
    let during: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("during-{i}"), data(200_000, 50 + i))).collect();
    for (k, d) in &during {
        put(&c, "frozen", k, d.clone()).await;
    }
    let status = gw.admin_json(&["status"]);
    assert_eq!(status["nodes_up"], 5, "{status}");
    let audit = gw.admin_json(&["audit", "residency", "frozen"]);
    assert!(
        audit["degraded_shards"].as_u64().unwrap() > 0,
        "the writes went degraded: {audit}"
    );

    assert!(Command::new("kill")
        .args(["-CONT", &frozen])
        .status()
        .unwrap()
        .success());
    let (healed, _) = wait_fully_healed(&gw, "frozen", 6).await;
    assert!(healed, "the node is back up and every degraded shard rebuilt");
    for (k, d) in before.iter().chain(&during) {
        assert_eq!(get_body(&c, "frozen", k).await, d[..], "{k}");
    }
    // The rebuilt shards are on the thawed node itself.
    assert!(!shards_on_disk(&nodes[0].data).is_empty());
}

/// A node whose disk is full (here: `--reserve` larger than the disk, as a disk full of real
/// data looks from the gateway) gets no new shards and none of the healed ones: the shards a
/// write could not place while two nodes were down are rebuilt on the other node that came
/// back, not retried on the full one for ever; new writes pass it over; what it held before
/// still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healing_passes_over_a_full_node() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_ca, mut nodes, gw) = fr_cluster(root, 7, 3, &[]);
    let c = gw.client();
    c.create_bucket().bucket("full").send().await.unwrap();
    // Written while every node has room: objects until one has a shard on fr-1.
    let mut early: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..20u8 {
        let (k, d) = (format!("early-{i}"), data(250_000, 150 + i));
        put(&c, "full", &k, d.clone()).await;
        early.push((k.clone(), d));
        let p = gw.admin_json(&["placement", "full", &k]);
        if p["shards"].as_array().unwrap().iter().any(|s| s["node"] == "fr-1") {
            break;
        }
    }

    // Two nodes down: each write places five shards and records the sixth as degraded.
    nodes[0].kill();
    nodes[1].kill();
    let mut down = false;
    for _ in 0..60 {
        if gw.admin_json(&["status"])["nodes_up"] == 5 {
            down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(down, "the gateway sees the two nodes down");
    let objects: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("obj-{i}"), data(250_000, 70 + i))).collect();
    for (k, d) in &objects {
        put(&c, "full", k, d.clone()).await;
    }
    let audit = gw.admin_json(&["audit", "residency", "full"]);
    assert!(audit["degraded_shards"].as_u64().unwrap() > 0, "{audit}");

    // fr-1 comes back with a disk full for the store (first in the gateway's node list: the
    // one a healer that ignores free space picks), fr-2 comes back with room.
    let held_before = shards_on_disk(&nodes[0].data);
    let other_before = shards_on_disk(&nodes[1].data).len();
    assert!(!held_before.is_empty(), "fr-1 holds a shard of an early object");
    nodes[0].start_with(&["--reserve", "15E"]);
    nodes[1].start();
    let (healed, last) = wait_fully_healed(&gw, "full", 7).await;
    assert!(healed, "every degraded shard rebuilt on a node with room: {last}");
    let status = gw.admin_json(&["status"]);
    let full = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "fr-1")
        .unwrap();
    assert_eq!(full["free_bytes"], 0, "the reserve is taken off the free space: {full}");
    assert!(
        shards_on_disk(&nodes[1].data).len() > other_before,
        "the shards went to the node with room"
    );
    // New writes, with every node up, pass the full one over.
    let late: Vec<(String, Vec<u8>)> = (0..4).map(|i| (format!("late-{i}"), data(250_000, 90 + i))).collect();
    for (k, d) in &late {
        put(&c, "full", k, d.clone()).await;
        let p = gw.admin_json(&["placement", "full", k]);
        let on: Vec<&str> = p["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["node"].as_str().unwrap())
            .collect();
        assert!(!on.contains(&"fr-1") && on.len() == 6, "{k}: {p}");
    }
    assert_eq!(
        shards_on_disk(&nodes[0].data),
        held_before,
        "nothing was put on the full node, by writes or by repairs"
    );
    // What it held still reads (every shard of the early objects, checked by the read path).
    for (k, d) in early.iter().chain(&objects).chain(&late) {
        assert_eq!(get_body(&c, "full", k).await, d[..], "{k}");
    }
    let audit = gw.admin_json(&["audit", "residency", "full"]);
    assert_eq!(audit["degraded_shards"], 0, "{audit}");
}

/// Nodes whose disks are full of real data (a reserve larger than the disk) take no new
/// shards: a PUT that has no compliant node with room gets 507 InsufficientStorage and leaves
/// nothing behind, while reads and deletes of what they hold go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_room_refuses_writes_clearly_and_still_serves_reads() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_ca, mut nodes, gw) = fr_cluster(root, 6, 3, &[]);
    let c = gw.client();
    c.create_bucket().bucket("full").send().await.unwrap();
    let kept = data(300_000, 9);
    put(&c, "full", "kept", kept.clone()).await;
    put(&c, "full", "doomed", data(100_000, 10)).await;

    // Every disk fills up (with data that is not the store's: the reserve says so).
    for n in nodes.iter_mut() {
        n.kill();
        n.start_with(&["--reserve", "15E"]);
    }
    wait_heartbeats().await;
    let before: usize = nodes.iter().map(|n| shards_on_disk(&n.data).len()).sum();
    let err = c
        .put_object()
        .bucket("full")
        .key("new")
        .body(ByteStream::from(data(200_000, 11)))
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 507, "{err:?}");
    assert_eq!(err.into_service_error().meta().code(), Some("InsufficientStorage"));
    // Nothing half-written: no shard, no object.
    let after: usize = nodes.iter().map(|n| shards_on_disk(&n.data).len()).sum();
    assert_eq!(after, before);
    assert!(c.head_object().bucket("full").key("new").send().await.is_err());
    // Reads and deletes go on.
    assert_eq!(get_body(&c, "full", "kept").await, kept);
    c.delete_object().bucket("full").key("doomed").send().await.unwrap();
    assert!(c.head_object().bucket("full").key("doomed").send().await.is_err());
}
