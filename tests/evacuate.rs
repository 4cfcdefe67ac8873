//! Emptying a storage node on a real cluster (eight `coffre node` processes, a gateway), under
//! a verified read/write load: one lost for good (killed, then `coffre admin nodes remove
//! --dead --wait`) and one retired (`coffre admin nodes drain --wait`). Every stripe it had a
//! shard of comes back to k+m healthy shards on the others (current and noncurrent versions,
//! multipart objects, the load's own writes), no request of the load fails (once the gateway
//! has seen a killed node go), and no object changes; a drained node ends with no shard. A
//! node that still holds shards is not removed without `--dead`. Nodes added later get their
//! share from `coffre admin nodes rebalance --wait`.

mod common;

use common::cluster::*;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn placement(gw: &Server, bucket: &str, key: &str, version: Option<&str>) -> serde_json::Value {
    let mut args = vec!["placement", bucket, key];
    if let Some(v) = version {
        args.extend(["--version-id", v]);
    }
    gw.admin_json(&args)
}

/// Every part of the object: six shards on six distinct live nodes, none on `lost`, none
/// degraded.
fn assert_whole(p: &serde_json::Value, lost: &str, what: &str) {
    let shards = p["shards"].as_array().unwrap();
    assert!(!shards.is_empty(), "{what}: {p}");
    let mut by_stripe: std::collections::BTreeMap<(u64, u64), Vec<&str>> = Default::default();
    for s in shards {
        assert_ne!(s["node"], lost, "{what}: a shard still on the lost node: {p}");
        assert_eq!(s["degraded"], false, "{what}: {p}");
        by_stripe
            .entry((s["part"].as_u64().unwrap(), s["stripe"].as_u64().unwrap()))
            .or_default()
            .push(s["node"].as_str().unwrap());
    }
    for (stripe, mut nodes) in by_stripe {
        assert_eq!(nodes.len(), 6, "{what} {stripe:?}: {p}");
        nodes.sort_unstable();
        nodes.dedup();
        assert_eq!(nodes.len(), 6, "{what} {stripe:?}: two shards on one node: {p}");
    }
}

type LoadLog = Arc<Mutex<Vec<(Instant, String, Result<(), String>)>>>;

/// A versioned bucket `evac` on eight nodes in four sites, with current objects, noncurrent
/// versions under them and a multipart object: (key, version, bytes) of each.
struct Setup {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    gw: Server,
    c: aws_sdk_s3::Client,
    token: String,
    objects: Vec<(String, Option<String>, Vec<u8>)>,
}

async fn setup(gw_args: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_ca, nodes, gw) = fr_cluster(root, 8, 4, gw_args);
    let c = gw.client();
    c.create_bucket().bucket("evac").send().await.unwrap();
    enable_versioning(&c, "evac").await;
    let mut objects: Vec<(String, Option<String>, Vec<u8>)> = Vec::new();
    for i in 0..10u8 {
        let key = format!("doc-{i}");
        let old = data(200_000, i);
        let v = c
            .put_object()
            .bucket("evac")
            .key(&key)
            .body(old.clone().into())
            .send()
            .await
            .unwrap()
            .version_id()
            .map(str::to_string);
        objects.push((key.clone(), v, old));
        let new = data(300_000 + i as usize, 100 + i);
        put(&c, "evac", &key, new.clone()).await;
        objects.push((key, None, new));
    }
    let (p1, p2) = (data(5 << 20, 50), data(700_000, 51));
    multipart_put(&c, "evac", "big", &[&p1, &p2]).await;
    objects.push(("big".into(), None, [p1, p2].concat()));
    let token = std::fs::read_to_string(gw.data.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    Setup {
        _dir: dir,
        nodes,
        gw,
        c,
        token,
        objects,
    }
}

/// No load request failed once the gateway could know the node killed at `killed` was gone
/// (two heartbeats).
fn assert_none_failed_once_seen(log: &[(Instant, String, Result<(), String>)], killed: Instant) {
    let late_failures: Vec<_> = log
        .iter()
        .filter(|(began, _, r)| r.is_err() && *began > killed + Duration::from_millis(4200))
        .collect();
    assert!(late_failures.is_empty(), "{late_failures:?}");
}

/// The bytes the load writes under `load-i`.
fn load_body(i: usize) -> Vec<u8> {
    data(64_000 + (i % 7) * 1000, (i % 251) as u8)
}

/// New objects written and read back, verified, until `stop`: each request's start and result.
fn start_load(c: &aws_sdk_s3::Client, stop: Arc<AtomicBool>) -> (tokio::task::JoinHandle<()>, LoadLog) {
    let log: LoadLog = Arc::default();
    let (c, l) = (c.clone(), log.clone());
    let handle = tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let key = format!("load-{i}");
            let body = load_body(i);
            let began = Instant::now();
            let put = c
                .put_object()
                .bucket("evac")
                .key(&key)
                .body(body.clone().into())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("put: {e:?}"));
            let result = match put {
                Err(e) => Err(e),
                Ok(()) => match c.get_object().bucket("evac").key(&key).send().await {
                    Ok(o) => match o.body.collect().await.map(|b| b.into_bytes()) {
                        Ok(b) if b[..] == body[..] => Ok(()),
                        Ok(_) => Err("read back different bytes".into()),
                        Err(e) => Err(format!("get body: {e}")),
                    },
                    Err(e) => Err(format!("get: {e:?}")),
                },
            };
            l.lock().unwrap().push((began, key, result));
            i += 1;
        }
    });
    (handle, log)
}

/// Runs `coffre admin nodes <args…>` against the gateway, off the async threads.
async fn nodes_cmd(s: &Setup, args: &[&str]) -> std::process::Output {
    let mut cmd: Vec<String> = vec!["admin".into(), "nodes".into(), args[0].into()];
    cmd.extend([
        "--endpoint".into(),
        s.gw.admin_endpoint.clone(),
        "--token".into(),
        s.token.clone(),
    ]);
    cmd.extend(args[1..].iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = cmd.iter().map(String::as_str).collect();
        coffre(&refs)
    })
    .await
    .unwrap()
}

/// After the node `gone` was emptied: every stripe whole on the others, every object (and a
/// sample of the load's) identical.
async fn check_whole(s: &Setup, gone: &str, log: &[(Instant, String, Result<(), String>)]) {
    for (key, version, body) in &s.objects {
        let what = format!("{key} {version:?}");
        assert_whole(&placement(&s.gw, "evac", key, version.as_deref()), gone, &what);
        let mut get = s.c.get_object().bucket("evac").key(key);
        if let Some(v) = version {
            get = get.version_id(v);
        }
        let got = get.send().await.unwrap().body.collect().await.unwrap().into_bytes();
        assert!(got[..] == body[..], "{what} changed");
    }
    // (A sample of the load's objects: forty placements at most.)
    let written: Vec<&String> = log.iter().filter(|(_, _, r)| r.is_ok()).map(|(_, k, _)| k).collect();
    assert!(written.len() > 5, "the load ran: {} objects", written.len());
    for key in written.iter().step_by((written.len() / 40).max(1)) {
        assert_whole(&placement(&s.gw, "evac", key, None), gone, key);
        let i: usize = key.trim_start_matches("load-").parse().unwrap();
        assert!(
            get_body(&s.c, "evac", key).await[..] == load_body(i)[..],
            "{key} changed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_lost_for_good_has_every_stripe_rebuilt_under_load() {
    let mut s = setup(&[]).await;
    // The victim: a node the multipart object has shards on.
    let victim = placement(&s.gw, "evac", "big", None)["shards"][0]["node"]
        .as_str()
        .unwrap()
        .to_string();
    // Holding shards, it is not removed without --dead.
    let refused = nodes_cmd(&s, &["remove", &victim]).await;
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("drain it first"), "{why}");

    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(&s.c, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let index = s.nodes.iter().position(|n| n.id == victim).unwrap();
    s.nodes[index].kill();
    let killed = Instant::now();
    let removal = nodes_cmd(&s, &["remove", "--dead", "--wait", &victim]).await;
    let out = String::from_utf8_lossy(&removal.stdout);
    assert!(
        removal.status.success(),
        "remove --dead --wait: {out} {}",
        String::from_utf8_lossy(&removal.stderr)
    );
    assert!(out.contains("back at full redundancy"), "{out}");
    // A few more rounds of load on the rebuilt cluster, then stop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let log = log.lock().unwrap().clone();
    assert_none_failed_once_seen(&log, killed);
    let status = s.gw.admin_json(&["status"]);
    assert_eq!(status["lost"].as_array().map(Vec::len), Some(0), "{status}");
    check_whole(&s, &victim, &log).await;
}

/// With `--dead-after`, a node down that long is declared dead by the gateway itself (with its
/// audit entry), and its stripes rebuilt as if an operator had removed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_down_for_dead_after_is_declared_dead_and_rebuilt() {
    let mut s = setup(&["--dead-after", "3s"]).await;
    let victim = placement(&s.gw, "evac", "big", None)["shards"][2]["node"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(&s.c, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let index = s.nodes.iter().position(|n| n.id == victim).unwrap();
    s.nodes[index].kill();
    let killed = Instant::now();
    // Nobody asks: the node goes from the list, and every stripe comes back at k+m.
    let mut status = serde_json::Value::Null;
    for _ in 0..600 {
        status = s.gw.admin_json(&["status"]);
        let listed = status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == victim.as_str());
        let repairing = status["lost"].as_array().is_some_and(|l| !l.is_empty());
        if !listed && !repairing {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let listed = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["id"] == victim.as_str());
    assert!(!listed, "{victim} was never declared dead: {status}");
    assert_eq!(status["lost"].as_array().map(Vec::len), Some(0), "{status}");
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_none_failed_once_seen(&log, killed);
    check_whole(&s, &victim, &log).await;
    // The store's own decision is in the audit log, with the node and why.
    let (ok, found, err) =
        s.gw.admin(&["audit", "search", "--op", "system:DeclareNodeDead", "--json"]);
    assert!(ok, "{err}");
    let found: serde_json::Value = serde_json::from_str(&found).unwrap();
    let declared = found["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["op"] == "system:DeclareNodeDead")
        .unwrap_or_else(|| panic!("no audit entry: {found}"));
    assert!(declared["detail"].as_str().unwrap().contains(&victim), "{declared}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_ends_empty_while_every_request_is_served() {
    let s = setup(&[]).await;
    let retired = placement(&s.gw, "evac", "big", None)["shards"][1]["node"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let (load, log) = start_load(&s.c, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let drain = nodes_cmd(&s, &["drain", "--wait", &retired]).await;
    let out = String::from_utf8_lossy(&drain.stdout);
    assert!(
        drain.status.success(),
        "drain --wait: {out} {}",
        String::from_utf8_lossy(&drain.stderr)
    );
    assert!(out.contains("drained"), "{out}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let log = log.lock().unwrap().clone();
    let failures: Vec<_> = log.iter().filter(|(_, _, r)| r.is_err()).collect();
    assert!(failures.is_empty(), "no request fails during a drain: {failures:?}");
    check_whole(&s, &retired, &log).await;
    // Nothing left on it (the GC's queue aside, none here: nothing was deleted), so it goes
    // without --dead.
    let status = s.gw.admin_json(&["status"]);
    let node = status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == retired.as_str())
        .unwrap();
    assert_eq!(node["shards"], 0, "{node}");
    assert_eq!(node["left"]["parts"], 0, "{node}");
    let removed = nodes_cmd(&s, &["remove", &retired]).await;
    assert!(removed.status.success(), "{}", String::from_utf8_lossy(&removed.stderr));
}

/// Nodes added to a cluster get their share: `coffre admin nodes rebalance --wait` moves shards
/// from the nodes over the mean to them, every object stays whole and identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_gives_added_nodes_their_share() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (ca, mut nodes, gw) = fr_cluster(root, 6, 3, &[]);
    let c = gw.client();
    c.create_bucket().bucket("grow").send().await.unwrap();
    let objects: Vec<(String, Vec<u8>)> = (0..12u8).map(|i| (format!("o{i}"), data(300_000, i))).collect();
    for (k, d) in &objects {
        put(&c, "grow", k, d.clone()).await;
    }
    // Two nodes join; new writes would use them, the old data stays where it is until asked.
    for i in 7..=8 {
        nodes.push(new_node(root, &ca, &format!("fr-{i}"), "FR", &format!("site{}", i % 3)));
        let addr = format!("https://{}", nodes.last().unwrap().addr);
        let (ok, out, err) = gw.admin(&["nodes", "add", &addr]);
        assert!(ok, "{out} {err}");
    }
    let shards = |status: &serde_json::Value, id: &str| {
        status["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()["shards"]
            .as_u64()
            .unwrap()
    };
    let before = gw.admin_json(&["status"]);
    assert_eq!(shards(&before, "fr-7"), 0);
    let (ok, out, err) = tokio::task::block_in_place(|| gw.admin(&["nodes", "rebalance", "--wait"]));
    assert!(ok, "{out} {err}");
    assert!(out.contains("balanced"), "{out}");
    // 12 parts × 6 shards over 8 nodes: 9 each; the new ones took theirs, the old gave.
    let after = gw.admin_json(&["status"]);
    for i in 1..=8 {
        let n = shards(&after, &format!("fr-{i}"));
        assert!((7..=10).contains(&n), "fr-{i} holds {n} shards: {after}");
    }
    for (k, d) in &objects {
        let p = gw.admin_json(&["placement", "grow", k]);
        let mut on: Vec<&str> = p["shards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["node"].as_str().unwrap())
            .collect();
        assert!(
            p["shards"].as_array().unwrap().iter().all(|s| s["degraded"] == false),
            "{p}"
        );
        on.sort_unstable();
        on.dedup();
        assert_eq!(on.len(), 6, "{k}: {p}");
        assert_eq!(get_body(&c, "grow", k).await, d[..], "{k}");
    }
}
