//! Proofs of possession through a real cluster: French and German `coffre node`s, a gateway,
//! `coffre admin placement … --proof` and `coffre verify-placement`, which trusts only the CA
//! certificate (docs/residency.md).

mod common;

use common::cluster::*;
use common::*;
use std::path::Path;

fn verify(root: &Path, proof: &str, ca: &Path, extra: &[&str]) -> (bool, String) {
    let file = root.join(format!("proof-{}.json", coffre_types_free_name()));
    std::fs::write(&file, proof).unwrap();
    let out = coffre(
        &[
            &["verify-placement", file.to_str().unwrap(), "--ca", ca.to_str().unwrap()][..],
            extra,
        ]
        .concat(),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A file name of its own for each proof written.
fn coffre_types_free_name() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_attest_what_they_hold_and_the_proof_verifies_with_the_ca_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ca = root.join("ca");
    ok(coffre(&["admin", "ca", "init", "--out", ca.to_str().unwrap()]));
    let mut nodes: Vec<Node> = [
        ("fr-1", "FR", "par1"),
        ("fr-2", "FR", "par1"),
        ("fr-3", "FR", "par2"),
        ("fr-4", "FR", "par2"),
        ("fr-5", "FR", "lyo1"),
        ("fr-6", "FR", "lyo1"),
        ("de-1", "DE", "fra1"),
    ]
    .iter()
    .map(|(id, cc, site)| new_node(root, &ca, id, cc, site))
    .collect();
    let gw_id = issue_identity(root, &ca, "gw-1", "FR", "par1");
    let cfg = gateway_config(
        root,
        &ca,
        &gw_id,
        &nodes,
        "[regions.fr-par]\ncountries = [\"FR\"]\nfailure_domain = \"site\"\n",
    );
    let gw_data = root.join("gw");
    let gw = Server::start_with(&gw_data, "127.0.0.1:0", &["--config", cfg.to_str().unwrap()]);
    let c = gw.client();
    c.create_bucket().bucket("dossiers").send().await.unwrap();
    let body = data(9 << 20, 3);
    put(&c, "dossiers", "scan.pdf", body.clone()).await;
    let token = std::fs::read_to_string(gw_data.join("admin.token")).unwrap();
    let admin = |args: &[&str]| admin_cmd(&gw.admin_endpoint, &token, &["placement"], args);
    let ca_pem = ca.join("ca.pem");

    // Fresh statements for the auditor's nonce: every shard of every stripe, on French nodes.
    let nonce = "5eed0f0a11ce";
    let proof = admin(&["dossiers", "scan.pdf", "--proof", "--nonce", nonce]);
    let doc: serde_json::Value = serde_json::from_str(&proof).unwrap();
    assert_eq!(doc["nonce"], nonce);
    assert_eq!(doc["policy"]["countries"], serde_json::json!(["FR"]));
    let (ok_, out) = verify(root, &proof, &ca_pem, &["--nonce", nonce]);
    assert!(ok_, "{out}");
    let shards = doc["parts"][0]["shards"].as_array().unwrap().len();
    let stripes = shards / 6;
    assert!(stripes >= 2, "a 9 MiB object has several stripes: {shards} shards");
    assert_eq!(out.lines().filter(|l| l.starts_with("OK")).count(), shards, "{out}");
    assert!(!out.contains("de-1"), "{out}");
    // Without --nonce a random one is chosen and recorded.
    let other: serde_json::Value = serde_json::from_str(&admin(&["dossiers", "scan.pdf", "--proof"])).unwrap();
    assert_ne!(other["nonce"], nonce);

    // A replay: the auditor's new nonce is not the one the old proof answers.
    let (ok_, out) = verify(root, &proof, &ca_pem, &["--nonce", "0123456789"]);
    assert!(!ok_ && out.contains("nonce"), "{out}");
    // An edited proof: a statement's text no longer matches its signature.
    let edited = proof.replacen("\\\"present\\\":true", "\\\"present\\\": true", 1);
    assert_ne!(edited, proof);
    let (ok_, out) = verify(root, &edited, &ca_pem, &[]);
    assert!(!ok_ && out.contains("signature"), "{out}");
    // A layout the gateway changed: a shard's BLAKE3 is not what its node read.
    let mut lied = doc.clone();
    lied["parts"][0]["shards"][3]["blake3"] = serde_json::json!("00".repeat(32));
    let (ok_, out) = verify(root, &lied.to_string(), &ca_pem, &[]);
    assert!(!ok_ && out.contains("not the layout's"), "{out}");
    // Another CA's certificate as the trust anchor.
    let other_ca = root.join("other-ca");
    ok(coffre(&["admin", "ca", "init", "--out", other_ca.to_str().unwrap()]));
    let (ok_, out) = verify(root, &proof, &other_ca.join("ca.pem"), &[]);
    assert!(!ok_ && out.contains("not signed by this CA"), "{out}");
    // The whole bucket, its nodes asked in batches; then a random sample of it.
    for i in 0..4 {
        put(&c, "dossiers", &format!("note-{i}.txt"), data(200_000, i)).await;
    }
    let audit = |args: &[&str]| admin_cmd(&gw.admin_endpoint, &token, &["audit", "residency"], args);
    let bucket_proof = audit(&["dossiers", "--proof", "--nonce", nonce]);
    let b: serde_json::Value = serde_json::from_str(&bucket_proof).unwrap();
    assert_eq!(b["format"], "coffre-bucket-proof/1");
    assert_eq!(b["total_objects"], 5);
    assert_eq!(b["sampled"], false);
    assert_eq!(b["objects"].as_array().unwrap().len(), 5);
    // One answer per node (7 nodes hold shards here at most), not one per shard.
    assert!(
        b["attestations"].as_array().unwrap().len() <= 7,
        "{}",
        b["attestations"]
    );
    let all_shards: usize = b["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["parts"][0]["shards"].as_array().unwrap().len())
        .sum();
    let (ok_, out) = verify(root, &bucket_proof, &ca_pem, &["--nonce", nonce]);
    assert!(ok_, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("OK")).count(), all_shards, "{out}");
    let sample: serde_json::Value = serde_json::from_str(&audit(&["dossiers", "--proof", "--sample", "2"])).unwrap();
    assert_eq!(sample["objects"].as_array().unwrap().len(), 2);
    assert_eq!(sample["sampled"], true);
    let (ok_, out) = verify(root, &sample.to_string(), &ca_pem, &[]);
    assert!(ok_, "{out}");
    let (ok_, out) = verify(root, &bucket_proof, &ca_pem, &["--nonce", "0123456789"]);
    assert!(!ok_ && out.contains("nonce"), "{out}");

    // (A revoked node's statements, with `--revoked`: crates/coffre-cluster/src/proof.rs.)
    let holder = doc["parts"][0]["shards"][0]["node"].as_str().unwrap().to_string();

    // A node that cannot answer (stopped): its shards are unattested, and the proof fails there.
    let gone = nodes.iter_mut().find(|n| n.id == holder).unwrap();
    gone.kill();
    let partial = admin(&["dossiers", "scan.pdf", "--proof", "--nonce", nonce]);
    let (ok_, out) = verify(root, &partial, &ca_pem, &["--nonce", nonce]);
    assert!(!ok_, "{out}");
    let failed: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert_eq!(failed.len(), stripes, "one shard per stripe: {out}");
    assert!(failed.iter().all(|l| l.contains("no valid statement")), "{out}");
}
