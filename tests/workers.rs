//! Background workers through the real binary and `coffre admin workers`: listed with their
//! state and counters, paused and resumed (a paused GC collects nothing, a resumed one
//! catches up), tuned (a rate set mid-pass is the rate the pass keeps), refused when asked
//! nonsense, and shown in /metrics.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn worker<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no worker {name} in {list}"))
}

fn counter(list: &serde_json::Value, name: &str, c: &str) -> u64 {
    worker(list, name)["counters"][c].as_u64().unwrap_or(0)
}

/// Polls `coffre admin workers list` (up to 20 s) until `done` holds of it.
fn wait_for_workers(s: &Server, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    for _ in 0..200 {
        let list = s.admin_json(&["workers", "list"]);
        if done(&list) {
            return list;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("workers never reached: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_worker_does_nothing_until_resumed_and_knobs_are_checked() {
    let s = Server::start();
    let c = s.client();
    let list = s.admin_json(&["workers", "list"]);
    for name in [
        "gc",
        "expiry",
        "lifecycle",
        "repair",
        "heartbeat",
        "compaction",
        "audit-notes",
    ] {
        let w = worker(&list, name);
        assert_ne!(w["state"], "error", "{name}: {w}");
        assert_ne!(w["state"], "standby", "a lone server leads: {w}");
    }
    assert_eq!(worker(&list, "gc")["leader_only"], true);
    assert_eq!(worker(&list, "heartbeat")["leader_only"], false);
    assert_eq!(worker(&list, "lifecycle")["rate_unit"], "removals/s");
    let (ok, table, _) = s.admin(&["workers", "list"]);
    assert!(ok && table.starts_with("NAME") && table.contains("\ngc "), "{table}");

    // Paused, the GC leaves a deleted object's shards where they are.
    let (ok, out, err) = s.admin(&["workers", "pause", "gc"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("gc "), "{out}");
    wait_for_workers(&s, "gc paused", |l| worker(l, "gc")["state"] == "paused");
    assert!(s
        .metrics()
        .contains("coffre_worker_state{worker=\"gc\",state=\"paused\"} 1"));
    c.create_bucket().bucket("wk-gc").send().await.unwrap();
    put(&c, "wk-gc", "gone", data(300_000, 1)).await;
    let shards = total_shards(&s).await;
    assert!(shards >= 6, "{shards}");
    c.delete_object().bucket("wk-gc").key("gone").send().await.unwrap();
    // Time passes, measured by the heartbeat's rounds (every 2 s) rather than a clock.
    let rounds = counter(&s.admin_json(&["workers", "list"]), "heartbeat", "rounds");
    let list = wait_for_workers(&s, "three heartbeats", |l| {
        counter(l, "heartbeat", "rounds") >= rounds + 3
    });
    assert_eq!(worker(&list, "gc")["state"], "paused");
    assert_eq!(counter(&list, "gc", "versions"), 0, "a paused GC collected");
    assert_eq!(total_shards(&s).await, shards, "a paused GC removed shards");

    // Resumed, it collects them.
    let (ok, _, err) = s.admin(&["workers", "resume", "gc"]);
    assert!(ok, "{err}");
    assert_eq!(wait_for_shards(&s, 0).await, 0, "a resumed GC collects");
    wait_for_workers(&s, "gc counted", |l| counter(l, "gc", "versions") >= 1);

    // Knobs: tranquility on any worker, bounded; a rate only on workers that have one.
    let (ok, out, err) = s.admin(&["workers", "set", "gc", "tranquility", "4"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("gc "), "{out}");
    assert_eq!(worker(&s.admin_json(&["workers", "list"]), "gc")["tranquility"], 4);
    let (ok, _, err) = s.admin(&["workers", "set", "gc", "tranquility", "1000000"]);
    assert!(!ok && err.contains("at most"), "{err}");
    let (ok, _, err) = s.admin(&["workers", "set", "gc", "rate", "5"]);
    assert!(!ok && err.contains("no rate"), "{err}");
    let (ok, _, err) = s.admin(&["workers", "pause", "no-such-worker"]);
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, _) = s.admin(&["workers", "set", "gc", "speed", "5"]);
    assert!(!ok, "an unknown knob is refused");
    // Every control is an audited admin call.
    let (ok, entries, err) = s.admin(&["audit", "search", "--json"]);
    assert!(ok, "{err}");
    for action in ["admin:WorkerPause", "admin:WorkerResume", "admin:WorkerPut"] {
        assert!(entries.contains(action), "no {action} entry");
    }
}

/// The lifecycle worker's rate (removals a second) holds during a pass, and a change applies
/// to the pass under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_set_mid_pass_is_the_rate_the_pass_keeps() {
    use aws_sdk_s3::types::{
        BucketLifecycleConfiguration, ExpirationStatus, LifecycleExpiration, LifecycleRule, LifecycleRuleFilter,
    };
    let dir = tempfile::tempdir().unwrap();
    // A lifecycle day of 1 second (a test-only setting).
    let s = Server::start_with_env(
        &dir.path().join("data"),
        "127.0.0.1:0",
        &[],
        &[("COFFRE_LIFECYCLE_DAY_SECONDS", "1")],
    );
    let c = s.client();
    c.create_bucket().bucket("lc-rate").send().await.unwrap();
    const OBJECTS: usize = 60;
    const RATE: u64 = 2;
    for i in 0..OBJECTS {
        put(&c, "lc-rate", &format!("exp/{i:03}"), data(100, i as u8)).await;
    }
    let (ok, _, err) = s.admin(&["workers", "set", "lifecycle", "rate", &RATE.to_string()]);
    assert!(ok, "{err}");
    // Nothing can expire before the rule exists.
    let start = Instant::now();
    let rule = LifecycleRule::builder()
        .id("expire")
        .status(ExpirationStatus::Enabled)
        .filter(LifecycleRuleFilter::builder().prefix("exp/").build())
        .expiration(LifecycleExpiration::builder().days(1).build())
        .build()
        .unwrap();
    c.put_bucket_lifecycle_configuration()
        .bucket("lc-rate")
        .lifecycle_configuration(BucketLifecycleConfiguration::builder().rules(rule).build().unwrap())
        .send()
        .await
        .unwrap();
    let left = || async {
        c.list_objects_v2()
            .bucket("lc-rate")
            .send()
            .await
            .unwrap()
            .key_count()
            .unwrap_or(0) as usize
    };
    // At RATE a second, whatever the machine's speed: never more than RATE in each second
    // since the rule appeared (plus the second under way).
    let mut removed = 0;
    for _ in 0..600 {
        removed = OBJECTS - left().await;
        let bound = RATE as usize * (start.elapsed().as_secs() as usize + 2);
        assert!(
            removed <= bound,
            "{removed} removed in {:?} at {RATE}/s",
            start.elapsed()
        );
        if removed >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(removed >= 4, "the lifecycle pass never started");
    // Unlimited from now on: the pass under way takes the rest at once, not at RATE a second
    // (which would take more than 25 s).
    let (ok, _, err) = s.admin(&["workers", "set", "lifecycle", "rate", "0"]);
    assert!(ok, "{err}");
    let mut remaining = OBJECTS;
    for _ in 0..100 {
        remaining = left().await;
        if remaining == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining, 0, "the new rate did not apply to the pass under way");
    let list = s.admin_json(&["workers", "list"]);
    assert_eq!(worker(&list, "lifecycle")["rate"], 0);
    assert!(s.metrics().contains("coffre_worker_rate{worker=\"lifecycle\"} 0"));
}
