//! `coffre admin scrub …`: an immediate pass on every node, and where each stands.

use super::api::*;
use super::*;
use crate::api::{ScrubGet, ScrubStart, ScrubStatus};
use std::time::{Duration, Instant};

/// How long `--wait` waits for a node that stopped answering.
const SILENT_NODE: Duration = Duration::from_secs(60);
/// How long `--wait` waits while nothing moves (no shard verified, no repair done).
const NO_PROGRESS: Duration = Duration::from_secs(600);

pub(super) fn run(cmd: ScrubCommand) -> Result<(), String> {
    match cmd {
        ScrubCommand::Status { api, json } => {
            let v = ask_at::<ScrubGet>(&api, ())?;
            if json {
                print_json(&v);
            } else {
                print_table(&v);
            }
            Ok(())
        }
        ScrubCommand::Start { api, wait } => {
            let v = ask_at::<ScrubStart>(&api, ())?;
            let mut failed = Vec::new();
            for n in &v.nodes {
                match &n.error {
                    Some(e) => failed.push(format!("{}: {e}", n.node)),
                    None => println!("{}: full pass started", n.node),
                }
            }
            if !failed.is_empty() {
                return Err(format!(
                    "the scrub could not start on every node: {}",
                    failed.join("; ")
                ));
            }
            if wait {
                wait_done(&api)?;
            }
            Ok(())
        }
    }
}

/// Polls until no node has an asked pass under way or findings not yet queued, and the
/// repair queue is empty.
fn wait_done(api: &Api) -> Result<(), String> {
    let mut last_answer = Instant::now();
    let (mut last_progress, mut progress_at) = (None, Instant::now());
    loop {
        let v = ask_at::<ScrubGet>(api, ())?;
        let silent: Vec<String> = v
            .nodes
            .iter()
            .filter(|n| n.status.is_none())
            .map(|n| format!("{}: {}", n.node, n.error.as_deref().unwrap_or("no answer")))
            .collect();
        let answered = || v.nodes.iter().filter_map(|n| n.status.as_ref());
        if silent.is_empty() {
            last_answer = Instant::now();
        } else if last_answer.elapsed() > SILENT_NODE {
            return Err(format!("nodes stopped answering: {}", silent.join("; ")));
        }
        let pending = v.repair_pending;
        let busy = answered().filter(|s| s.requested || s.findings_pending > 0).count();
        if silent.is_empty() && busy == 0 && pending == 0 {
            let corrupt: u64 = answered().map(|s| s.corrupt_found).sum();
            println!("scrub done: every node verified every shard; {corrupt} found corrupt or unreadable in all, every one repaired");
            return Ok(());
        }
        let checked: u64 = answered().map(|s| s.shards_checked).sum();
        let now = (checked, pending);
        if last_progress != Some(now) {
            last_progress = Some(now);
            progress_at = Instant::now();
        } else if progress_at.elapsed() > NO_PROGRESS {
            return Err(format!(
                "no progress for {} s: {busy} nodes still scrubbing, {pending} keys waiting for repair",
                NO_PROGRESS.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn print_table(v: &ScrubStatus) {
    println!(
        "{:<16} {:<9} {:>8} {:>10} {:>7} {:>12} {:>8} {:>8} {:>8}  LAST FULL PASS",
        "NODE", "STATE", "PROGRESS", "SHARDS", "PASSES", "CHECKED", "CORRUPT", "PENDING", "MiB/s"
    );
    for n in &v.nodes {
        let node = &n.node;
        let Some(s) = &n.status else {
            println!("{node:<16} down      {}", n.error.as_deref().unwrap_or(""));
            continue;
        };
        let state = match (s.requested, s.running) {
            (true, _) => "asked",
            (_, true) => "running",
            _ => "idle",
        };
        let (done, held) = (s.pass_shards, s.shards);
        let progress = match s.running {
            true if held > 0 => format!("{:.1}%", (done.min(held) as f64) * 100.0 / held as f64),
            _ => "-".into(),
        };
        let last = s
            .last_pass_done_ms
            .map(|ms| format!("{} s ago", now_ms().saturating_sub(ms) / 1000))
            .unwrap_or_else(|| "never".into());
        let rate = match s.rate_mib {
            0 => "none".to_string(),
            r => r.to_string(),
        };
        println!(
            "{node:<16} {state:<9} {progress:>8} {held:>10} {:>7} {:>12} {:>8} {:>8} {rate:>8}  {last}",
            s.passes, s.shards_checked, s.corrupt_found, s.findings_pending
        );
    }
    println!("repair queue: {} keys", v.repair_pending);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
