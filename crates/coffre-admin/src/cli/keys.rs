//! `coffre admin keys …`: the master key's provider and version, and its online rotation;
//! `coffre admin kms-key …`: the tenants' KMS keys.

use super::api::*;
use super::*;
use crate::api::{
    KeysGet, KeysRotateMaster, KeysStatus, KmsKey, KmsKeyCancelDeletion, KmsKeyDisable, KmsKeyEnable, KmsKeyRotate,
    KmsKeyScheduleDeletion, NameQuery, PendingDaysQuery, TenantsKmsKeysCreate, TenantsKmsKeysGet,
};
use std::time::{Duration, Instant};

/// How long `--wait` waits while no key moves under the new version.
const NO_PROGRESS: Duration = Duration::from_secs(600);

pub(super) fn run(cmd: KeysCommand) -> Result<(), String> {
    match cmd {
        KeysCommand::Status { api, json } => {
            let v = ask_at::<KeysGet>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        // It opens the store's files and the provider: the `coffre` binary runs it.
        KeysCommand::Migrate(_) => Err("keys migrate is run by the coffre binary".into()),
        KeysCommand::RotateMaster { api, wait } => {
            let v = ask_at::<KeysRotateMaster>(&api, ())?;
            println!(
                "rotating to master key version {}: {} of {} tenant keys under it",
                v.current_version, v.tenants_current, v.tenants
            );
            if wait {
                wait_done(&api)?;
            }
            Ok(())
        }
    }
}

/// Polls until every key is under the current version and the rotation has stopped.
fn wait_done(api: &Api) -> Result<(), String> {
    let (mut last, mut moved_at) = (None, Instant::now());
    loop {
        let v = ask_at::<KeysGet>(api, ())?;
        let done = v.tenants_current == v.tenants && v.store_key_current;
        if !v.rotating {
            if let Some(e) = &v.last_error {
                return Err(format!("the rotation stopped: {e} (run it again to resume)"));
            }
            if done {
                println!(
                    "rotation done: every key is under {}; older versions can be disabled in the provider",
                    v.current_version
                );
                return Ok(());
            }
            // Stopped short without an error: a tenant made meanwhile by a gateway that had
            // not seen the new version yet. Another pass takes it.
            ask_at::<KeysRotateMaster>(api, ())?;
        }
        if last != Some(v.tenants_current) {
            println!(
                "{} of {} tenant keys under {}",
                v.tenants_current, v.tenants, v.current_version
            );
            last = Some(v.tenants_current);
            moved_at = Instant::now();
        } else if moved_at.elapsed() > NO_PROGRESS {
            return Err(format!("no progress for {} s", NO_PROGRESS.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn print_status(v: &KeysStatus) {
    println!("provider:        {}", v.provider);
    println!("master key:      {}", v.current_version);
    println!("tenant keys:     {} of {} under it", v.tenants_current, v.tenants);
    println!(
        "store key:       {}",
        if v.store_key_current { "under it" } else { "not yet" }
    );
    println!(
        "rotation:        {}",
        if v.rotating { "running" } else { "none running" }
    );
    if let Some(e) = &v.last_error {
        println!("last rotation:   stopped: {e}");
    }
}

pub(super) fn kms_key(cmd: KmsKeyCommand) -> Result<(), String> {
    let path = |k: &KmsKeyArgs| (k.tenant.clone(), k.name.clone());
    let (k, v) = match cmd {
        KmsKeyCommand::List { api, tenant, json } => {
            let v = ask_at::<TenantsKmsKeysGet>(&api, tenant)?;
            if json {
                print_json(&v);
            } else {
                for k in &v.keys {
                    print_kms_key(k);
                }
            }
            return Ok(());
        }
        KmsKeyCommand::Create(k) => {
            let v = ask::<TenantsKmsKeysCreate>(&k.api, k.tenant.clone(), NameQuery { name: k.name.clone() }, ())?;
            if k.json {
                print_json(&serde_json::json!({"key_id": v.key_id, "arn": v.arn}));
                return Ok(());
            }
            (k, v)
        }
        KmsKeyCommand::Disable(k) => {
            let v = ask_at::<KmsKeyDisable>(&k.api, path(&k))?;
            (k, v)
        }
        KmsKeyCommand::Enable(k) => {
            let v = ask_at::<KmsKeyEnable>(&k.api, path(&k))?;
            (k, v)
        }
        KmsKeyCommand::Rotate(k) => {
            let v = ask_at::<KmsKeyRotate>(&k.api, path(&k))?;
            (k, v)
        }
        KmsKeyCommand::CancelDeletion(k) => {
            let v = ask_at::<KmsKeyCancelDeletion>(&k.api, path(&k))?;
            (k, v)
        }
        KmsKeyCommand::ScheduleDeletion { key, days } => {
            let q = PendingDaysQuery { days: Some(days) };
            let v = ask::<KmsKeyScheduleDeletion>(&key.api, path(&key), q, ())?;
            (key, v)
        }
    };
    if k.json {
        print_json(&v);
    } else {
        print_kms_key(&v);
    }
    Ok(())
}

fn print_kms_key(k: &KmsKey) {
    let when = k
        .deletion_ms
        .map(|ms| format!(" (shredded at {})", coffre_types::time::iso8601(ms)))
        .unwrap_or_default();
    println!(
        "{}  {}  {}  v{}  {}{when}",
        k.name, k.key_id, k.state, k.versions, k.arn
    );
}
