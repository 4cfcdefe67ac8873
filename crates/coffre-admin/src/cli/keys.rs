//! `coffre admin keys …`: the master key's provider and version, and its online rotation.

use super::api::*;
use super::*;
use crate::api::{KeysGet, KeysRotateMaster, KeysStatus};
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
