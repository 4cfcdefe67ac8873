//! What the binary does with the server stopped, or without one: the master key (load,
//! rotate), restoring metadata from a backup, verifying audit segments, and running a
//! storage node.

use crate::config::FileConfig;
use crate::{shutdown_signal, tighten_permissions};
use coffre_crypto::{Keyring, MasterKey};
use coffre_meta::MetaStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub(crate) fn restore_metadata(from: &Path, data: &Path, config: Option<&Path>) -> Result<(), String> {
    if std::env::var("COFFRE_MASTER_KEY").is_err() && !data.join("master.key").exists() {
        return Err(format!(
            "no master key: set COFFRE_MASTER_KEY or copy the store's master.key into {} (a backup opens only with the key that sealed it)",
            data.display()
        ));
    }
    let meta_section = match config {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            let file: FileConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            file.meta
        }
        None => None,
    };
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(data, 3);
    let keys = crate::keys::load_keyring(data)?;
    let address = meta_section.map(|m| {
        m.address
            .unwrap_or_else(|| format!("https://{}", m.listen))
            .trim_end_matches('/')
            .to_string()
    });
    let snapshots = data.join("meta-snapshots");
    let replica = address.as_deref().map(|a| (a, snapshots.as_path()));
    let restored = coffre_engine::backup::restore_backup(&keys, from, &data.join("meta"), replica)
        .map_err(|e| format!("restoring {}: {e}", from.display()))?;
    match restored.replica {
        Some(id) => println!(
            "metadata restored from {} (snapshot {}): this store is replica {id}, alone in its set; add the others with `coffre admin meta add`",
            from.display(),
            restored.snapshot_id
        ),
        None => println!(
            "metadata restored from {} (snapshot {}) into {}",
            from.display(),
            restored.snapshot_id,
            data.display()
        ),
    }
    Ok(())
}

pub(crate) fn rotate_master_key(data: &Path) -> Result<(), String> {
    let from_env = std::env::var("COFFRE_MASTER_KEY").is_ok();
    let (current, new) = if from_env {
        let cur = MasterKey::from_text(&std::env::var("COFFRE_MASTER_KEY").unwrap_or_default())
            .map_err(|e| format!("COFFRE_MASTER_KEY: {e}"))?;
        let new = std::env::var("COFFRE_MASTER_KEY_NEW")
            .map_err(|_| "with COFFRE_MASTER_KEY, give the new key in COFFRE_MASTER_KEY_NEW".to_string())
            .and_then(|k| MasterKey::from_text(&k).map_err(|e| format!("COFFRE_MASTER_KEY_NEW: {e}")))?;
        (cur, new)
    } else {
        let path = data.join("master.key");
        if !path.exists() && data.join("store.key").exists() {
            return Err("this store's master key is in a security container: rotate it online with `coffre admin keys rotate-master`".into());
        }
        if !path.exists() {
            return Err(format!("{} not found: nothing to rotate", path.display()));
        }
        let cur = MasterKey::load_or_create(&path).map_err(|e| e.to_string())?;
        // Written (0600, synced) before any record changes, so a crash never loses it.
        let new = MasterKey::load_or_create(&data.join("master.key.next")).map_err(|e| e.to_string())?;
        (cur, new)
    };
    let meta =
        MetaStore::open(&data.join("meta")).map_err(|e| format!("metadata (is the server still running?): {e}"))?;
    let keys = Keyring::new(new, vec![current]);
    let done = coffre_engine::rotate_master_key(&meta, &keys).map_err(|e| e.to_string())?;
    drop(meta);
    crate::keys::reseal_key_files(data, &keys)?;
    if !from_env {
        std::fs::rename(data.join("master.key.next"), data.join("master.key")).map_err(|e| e.to_string())?;
        std::fs::File::open(data)
            .and_then(|d| d.sync_all())
            .map_err(|e| e.to_string())?;
    }
    println!(
        "master key rotated to {}: {} tenant keys, {} access keys, {} objects, {} parts, {} uploads re-wrapped",
        keys.current().id_hex(),
        done.tenants,
        done.access_keys,
        done.objects,
        done.parts,
        done.uploads
    );
    if from_env {
        println!("now start the server with COFFRE_MASTER_KEY set to the new key");
    }
    Ok(())
}

pub(crate) fn verify_audit(
    path: &Path,
    trust: &Path,
    from: Option<String>,
    to: Option<String>,
    json: bool,
) -> Result<(), String> {
    let time = |t: Option<String>| t.as_deref().map(coffre_admin::audit_log::parse_time).transpose();
    let report = coffre_admin::audit_log::verify_offline(path, trust, time(from)?, time(to)?)?;
    if !coffre_admin::audit_log::print_report(&report, json) {
        return Err("the audit log does not verify".into());
    }
    Ok(())
}

pub(crate) fn run_node(
    data: &Path,
    listen: &str,
    identity: &Path,
    revoked: Option<PathBuf>,
    reserve: u64,
) -> Result<(), String> {
    let identity = Arc::new(
        coffre_cluster::Identity::load(identity)?.with_revocations(coffre_cluster::Revocations::new(&[], revoked)),
    );
    if identity.role != coffre_cluster::Role::Node {
        return Err(format!(
            "{} holds a {} certificate: a storage node needs one issued with --role node",
            identity.id, identity.role
        ));
    }
    std::fs::create_dir_all(data).map_err(|e| format!("creating {}: {e}", data.display()))?;
    tighten_permissions(data, 2);
    let store = coffre_cluster::node::open_store(&identity, data, reserve)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("listening on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!(
            "Coffre node {} ({}/{}/{}) listening on https://{addr}",
            identity.id, identity.location.country, identity.location.site, identity.location.zone
        );
        use std::io::Write;
        let _ = std::io::stdout().flush();
        coffre_cluster::node::serve(listener, identity, store, shutdown_signal()).await
    })
}

/// `coffre verify-placement`: a proof of possession checked with the CA certificate alone.
pub(crate) fn verify_placement(
    file: &Path,
    ca: &Path,
    nonce: Option<&str>,
    revoked: Option<&Path>,
    json: bool,
) -> Result<(), String> {
    use coffre_cluster::proof::{BucketProof, PlacementProof, BUCKET_FORMAT};
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let text = read(file)?;
    let not_a_proof = |e: serde_json::Error| format!("{}: not a proof: {e}", file.display());
    let value: serde_json::Value = serde_json::from_str(&text).map_err(not_a_proof)?;
    let revoked: Vec<String> = match revoked {
        Some(p) => read(p)?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let ca = read(ca)?;
    let (v, heading) = if value["format"] == BUCKET_FORMAT {
        let proof: BucketProof = serde_json::from_value(value).map_err(not_a_proof)?;
        let heading = format!(
            "bucket {}: {} of {} object versions{}: policy {} ({})",
            proof.bucket,
            proof.objects.len(),
            proof.total_objects,
            if proof.sampled { " (a random sample)" } else { "" },
            proof.policy.countries.join(","),
            proof.policy.failure_domain
        );
        (
            coffre_cluster::proof::verify_bucket(&proof, &ca, nonce, &revoked),
            heading,
        )
    } else {
        let proof: PlacementProof = serde_json::from_value(value).map_err(not_a_proof)?;
        let heading = format!(
            "{}/{} version {}: policy {} ({})",
            proof.bucket,
            proof.key,
            proof.version_id,
            proof.policy.countries.join(","),
            proof.policy.failure_domain
        );
        (coffre_cluster::proof::verify(&proof, &ca, nonce, &revoked), heading)
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?);
    } else {
        println!("{heading}");
        for p in &v.problems {
            println!("PROBLEM {p}");
        }
        for s in &v.shards {
            println!(
                "{} {} {} part {} stripe {} index {} {} {}: {}",
                if s.ok { "OK  " } else { "FAIL" },
                s.key,
                s.version_id,
                s.part,
                s.stripe,
                s.index,
                s.node.as_deref().unwrap_or("-"),
                s.country.as_deref().unwrap_or("-"),
                s.reason
            );
        }
    }
    if v.ok {
        Ok(())
    } else {
        Err("the proof does not hold".into())
    }
}
