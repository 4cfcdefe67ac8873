//! `coffre admin nodes remove --dead NODE --wait`, `coffre admin nodes drain NODE --wait` and
//! `coffre admin nodes rebalance --wait`: following the rebuild of a lost node's shards, the
//! move of a draining node's, or a rebalance, to the end.

use super::api::*;
use crate::api::{RebalanceGet, StatusGet};
use std::time::{Duration, Instant};

/// How long the wait goes on while nothing is rebuilt.
const NO_PROGRESS: Duration = Duration::from_secs(600);

/// Polls the status until `node` has nothing left to rebuild, printing progress and an
/// estimate of the time left (from the bytes rebuilt since the wait began).
pub(super) fn wait_rebuilt(api: &Api, node: &str) -> Result<(), String> {
    let who = format!("node {node}");
    let took = follow(&who, "rebuild", "rebuilt", || {
        let v = ask_at::<StatusGet>(api, ())?;
        let left = v.lost.iter().find(|n| n.node == node);
        Ok(left.map(|n| (n.parts_left, n.bytes_left)))
    })?;
    println!("node {node}: every stripe it held a shard of is back at full redundancy ({took} s)");
    Ok(())
}

/// Polls the status until draining `node` holds no part any more, printing progress.
pub(super) fn wait_drained(api: &Api, node: &str) -> Result<(), String> {
    let who = format!("node {node}");
    let took = follow(&who, "move", "moved", || {
        let v = ask_at::<StatusGet>(api, ())?;
        let Some(n) = v.nodes.iter().find(|n| n.id == node) else {
            return Err(format!("node {node} is not in the cluster any more"));
        };
        if !n.draining {
            return Err(format!("node {node} is not draining any more"));
        }
        let left = n.left.unwrap_or_default();
        Ok((left.parts > 0).then_some((left.parts, left.bytes)))
    })?;
    println!("node {node}: drained, every shard it held is on the others ({took} s); it can be removed");
    Ok(())
}

/// Polls the rebalance until it is over and every move it queued is done.
pub(super) fn wait_balanced(api: &Api) -> Result<(), String> {
    let took = follow("rebalance", "move", "moved", || {
        let v = ask_at::<RebalanceGet>(api, ())?;
        let (running, pending) = (v.rebalance.running, v.repair_pending);
        Ok((running || pending > 0).then_some((pending, v.rebalance.bytes_to_move)))
    })?;
    println!("balanced: every node holds about its share ({took} s)");
    Ok(())
}

/// Polls `left` until it says nothing is left (`None`), printing what is left (parts, bytes)
/// and an estimate of the time every 5 s; returns the seconds it took. Fails when nothing
/// moves for `NO_PROGRESS`, or when `left` fails.
fn follow(
    who: &str,
    verb: &str,
    past: &str,
    left: impl Fn() -> Result<Option<(u64, u64)>, String>,
) -> Result<u64, String> {
    let started = Instant::now();
    let mut first_bytes = None;
    let (mut last, mut moved_at) = (None, Instant::now());
    let mut printed = Instant::now() - Duration::from_secs(10);
    loop {
        let Some((parts, bytes)) = left()? else {
            return Ok(started.elapsed().as_secs());
        };
        let first = *first_bytes.get_or_insert(bytes);
        if last != Some((parts, bytes)) {
            last = Some((parts, bytes));
            moved_at = Instant::now();
        } else if moved_at.elapsed() > NO_PROGRESS {
            return Err(format!(
                "{who}: nothing {past} for {} s, {parts} parts ({bytes} bytes) left: is there a compliant node with room for them? (coffre admin status)",
                NO_PROGRESS.as_secs()
            ));
        }
        if printed.elapsed() >= Duration::from_secs(5) {
            printed = Instant::now();
            let eta = match first.saturating_sub(bytes) {
                0 => "-".to_string(),
                d => format!(
                    "{} s",
                    (started.elapsed().as_secs_f64() * bytes as f64 / d as f64).ceil()
                ),
            };
            println!("{who}: {parts} parts, {bytes} bytes left to {verb}; about {eta} to go");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
