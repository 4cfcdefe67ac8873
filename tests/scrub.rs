//! The scrub through the real binary: bytes flipped in, and records erased from, the shard
//! files of objects nobody reads (current, noncurrent, multipart, SSE-C) are all found by
//! `coffre admin scrub start --wait`, repaired (checked on disk and by `coffre admin
//! placement`) and read back identical; a pass cut by a kill resumes where it was.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u32 = 0xC0FF_5E61;
const HEADER_LEN: usize = 40;
const KIND_PUT_B3: u8 = 3;

/// A shard record found in a segment file.
#[derive(Clone, Debug)]
struct Record {
    file: PathBuf,
    /// Offset of the record's header.
    at: u64,
    kind: u8,
    id: [u8; 23],
    len: u32,
}

/// Every intact record of every segment under `dir` (one store), in write order.
fn records(dir: &Path) -> Vec<Record> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let mut at = 0usize;
        while at + HEADER_LEN <= bytes.len() {
            let h = &bytes[at..at + HEADER_LEN];
            // An erased record (or a torn tail): skip to the next intact header.
            if u32::from_le_bytes(h[..4].try_into().unwrap()) != MAGIC
                || crc_fast::crc32_iscsi(&h[..36]) != u32::from_le_bytes(h[36..40].try_into().unwrap())
            {
                at += 1;
                continue;
            }
            let len = u32::from_le_bytes(h[28..32].try_into().unwrap());
            out.push(Record {
                file: path.clone(),
                at: at as u64,
                kind: h[4],
                id: h[5..28].try_into().unwrap(),
                len,
            });
            at += HEADER_LEN + len as usize;
        }
    }
    out
}

/// The shard's id as placement names it: part version, stripe, index.
fn shard_id(version_hex: &str, stripe: u32, index: u8) -> [u8; 23] {
    let mut id = [0u8; 23];
    id[..16].copy_from_slice(&hex::decode(version_hex).unwrap());
    id[18..22].copy_from_slice(&stripe.to_be_bytes());
    id[22] = index;
    id
}

fn placement(s: &Server, bucket: &str, key: &str, version: Option<&str>) -> serde_json::Value {
    let mut args = vec!["placement", bucket, key];
    if let Some(v) = version {
        args.extend(["--version-id", v]);
    }
    s.admin_json(&args)
}

fn shards_of(p: &serde_json::Value) -> Vec<serde_json::Value> {
    p["shards"].as_array().cloned().unwrap_or_default()
}

/// The last record of shard `id` on store `node` (what the index points at).
fn latest(data: &Path, node: &str, id: &[u8; 23]) -> Record {
    records(&data.join("nodes").join(node))
        .into_iter()
        .rfind(|r| &r.id == id)
        .unwrap_or_else(|| panic!("no record of {} on {node}", hex::encode(id)))
}

/// Whether a record's stored BLAKE3 matches its bytes, and that it is `expected`.
fn intact(r: &Record, expected: &str) -> bool {
    let f = std::fs::File::open(&r.file).unwrap();
    let mut data = vec![0u8; r.len as usize];
    f.read_exact_at(&mut data, r.at + HEADER_LEN as u64).unwrap();
    r.kind == KIND_PUT_B3
        && data.len() >= 32
        && blake3::hash(&data[32..]).as_bytes()[..] == data[..32]
        && hex::encode(&data[..32]) == expected
}

fn scrub_status(s: &Server) -> serde_json::Value {
    s.admin_json(&["scrub", "status"])
}

fn total(status: &serde_json::Value, field: &str) -> u64 {
    status["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["status"][field].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scrub_finds_every_damaged_shard_nobody_reads_and_the_repair_restores_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with(&data, "127.0.0.1:0", &["--inline-max", "0", "--allow-sse-c-over-http"]);
    let c = s.client();
    c.create_bucket().bucket("scrub").send().await.unwrap();
    enable_versioning(&c, "scrub").await;
    // Current, noncurrent, multipart and SSE-C objects.
    let current = data_of(300_000, 1);
    put(&c, "scrub", "current", current.clone()).await;
    let old = data_of(200_000, 2);
    let old_version = c
        .put_object()
        .bucket("scrub")
        .key("versioned")
        .body(old.clone().into())
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string();
    put(&c, "scrub", "versioned", data_of(1000, 3)).await;
    let (p1, p2) = (data_of(5 << 20, 4), data_of(1 << 20, 5));
    multipart_put(&c, "scrub", "multipart", &[&p1, &p2]).await;
    let (ssec_key, ssec_md5) = {
        use base64::Engine as _;
        use md5::Digest;
        let key = [7u8; 32];
        let b64 = base64::engine::general_purpose::STANDARD;
        (b64.encode(key), b64.encode(md5::Md5::digest(key)))
    };
    let secret = data_of(150_000, 6);
    c.put_object()
        .bucket("scrub")
        .key("ssec")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ssec_key)
        .sse_customer_key_md5(&ssec_md5)
        .body(secret.clone().into())
        .send()
        .await
        .unwrap();

    // Damage: in each object, one shard's bytes flipped and (another index) one record's
    // header erased, as a disk would lose it.
    let targets = [
        ("current", None),
        ("versioned", Some(old_version.as_str())),
        ("multipart", None),
        ("ssec", None),
    ];
    let mut damaged = Vec::new();
    for (key, version) in targets {
        let shards = shards_of(&placement(&s, "scrub", key, version));
        let last_part = shards.iter().map(|x| x["part"].as_u64().unwrap()).max().unwrap();
        for (index, how) in [(0u8, "flip"), (4u8, "erase")] {
            // The first stripe of the last part (the multipart's second).
            let sh = shards
                .iter()
                .find(|x| x["part"].as_u64() == Some(last_part) && x["stripe"] == 0 && x["index"] == index)
                .unwrap();
            let node = sh["node"].as_str().unwrap().to_string();
            let id = shard_id(sh["version"].as_str().unwrap(), 0, index);
            let r = latest(&data, &node, &id);
            let f = std::fs::OpenOptions::new().write(true).open(&r.file).unwrap();
            if how == "flip" {
                let at = r.at + HEADER_LEN as u64 + 32 + (r.len as u64 - 32) / 2;
                let mut b = [0u8; 1];
                std::fs::File::open(&r.file).unwrap().read_exact_at(&mut b, at).unwrap();
                f.write_all_at(&[b[0] ^ 0x5a], at).unwrap();
            } else {
                f.write_all_at(&[0u8; HEADER_LEN], r.at).unwrap();
            }
            f.sync_all().unwrap();
            damaged.push((key, version, node, id, sh["blake3"].as_str().unwrap().to_string()));
        }
    }

    // (A store's first periodic pass starts with the server: over an empty store, done at
    // once.)
    let passes_before = total(&scrub_status(&s), "passes");
    let (ok, out, err) = s.admin(&["scrub", "start", "--wait"]);
    assert!(ok, "scrub start --wait failed: {out} {err}");
    assert!(out.contains("scrub done"), "{out}");
    let status = scrub_status(&s);
    // Each found once by the asked pass (the periodic pass the server began at its start
    // may have met some first: found twice then, but never missed).
    let found = total(&status, "corrupt_found");
    assert!(
        found >= damaged.len() as u64 && found <= 2 * damaged.len() as u64,
        "{status}"
    );
    assert_eq!(total(&status, "findings_pending"), 0, "{status}");
    assert_eq!(status["repair_pending"], 0, "{status}");
    let nodes = status["nodes"].as_array().unwrap().len() as u64;
    assert_eq!(
        total(&status, "passes"),
        passes_before + nodes,
        "one full pass per node: {status}"
    );
    for n in status["nodes"].as_array().unwrap() {
        assert_eq!(n["status"]["requested"], false, "{n}");
    }

    // Repaired: on disk (the shard's last record holds the right bytes and hash), in the
    // placement (nothing degraded), and the objects read back identical.
    for (key, version, node, id, blake3) in &damaged {
        let p = placement(&s, "scrub", key, *version);
        assert!(
            shards_of(&p).iter().all(|x| x["degraded"] == false),
            "{key}: still degraded after the repair: {p}"
        );
        let sh = shards_of(&p)
            .into_iter()
            .find(|x| {
                shard_id(
                    x["version"].as_str().unwrap(),
                    x["stripe"].as_u64().unwrap() as u32,
                    x["index"].as_u64().unwrap() as u8,
                ) == *id
            })
            .unwrap();
        let now_on = sh["node"].as_str().unwrap();
        let r = latest(&data, now_on, id);
        assert!(
            intact(&r, blake3),
            "{key}: shard {} on {now_on} (was on {node}) not intact",
            hex::encode(id)
        );
    }
    assert_eq!(get_body(&c, "scrub", "current").await, current);
    assert_eq!(get_body(&c, "scrub", "multipart").await, [p1, p2].concat());
    let o = c
        .get_object()
        .bucket("scrub")
        .key("versioned")
        .version_id(&old_version)
        .send()
        .await
        .unwrap();
    assert_eq!(o.body.collect().await.unwrap().into_bytes().to_vec(), old);
    let o = c
        .get_object()
        .bucket("scrub")
        .key("ssec")
        .sse_customer_algorithm("AES256")
        .sse_customer_key(&ssec_key)
        .sse_customer_key_md5(&ssec_md5)
        .send()
        .await
        .unwrap();
    assert_eq!(o.body.collect().await.unwrap().into_bytes().to_vec(), secret);

    // A second pass finds nothing new; the status, the table and the metrics say so.
    let (ok, out, err) = s.admin(&["scrub", "start", "--wait"]);
    assert!(ok, "{out} {err}");
    let status = scrub_status(&s);
    assert_eq!(total(&status, "corrupt_found"), found, "nothing new: {status}");
    assert_eq!(total(&status, "passes"), passes_before + 2 * nodes);
    let (ok, table, _) = s.admin(&["scrub", "status"]);
    assert!(
        ok && table.starts_with("NODE") && table.contains("repair queue: 0 keys"),
        "{table}"
    );
    let (ok, nodes, _) = s.admin(&["status"]);
    assert!(ok && nodes.contains("last pass"), "{nodes}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_cut_by_a_kill_resumes_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 1 MiB/s per store: a pass over ~10 MiB a store takes 10 s.
    let args = ["--inline-max", "0", "--scrub-rate", "1"];
    let mut s = Server::start_with(&data, "127.0.0.1:0", &args);
    let c = s.client();
    c.create_bucket().bucket("resume").send().await.unwrap();
    for i in 0..40u8 {
        put(&c, "resume", &format!("o{i}"), data_of(1 << 20, i)).await;
    }
    // The first periodic pass, spread over 30 days, has barely begun; an asked one runs at
    // the cap.
    let (ok, out, err) = s.admin(&["scrub", "start"]);
    assert!(ok, "{out} {err}");
    let mut before = BTreeMap::new();
    for _ in 0..300 {
        let st = scrub_status(&s);
        before = st["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["node"].as_str().unwrap().to_string(),
                    n["status"]["pass_shards"].as_u64().unwrap(),
                )
            })
            .collect();
        if before.values().all(|v| *v >= 10) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        before.values().all(|v| *v >= 10),
        "the pass never got going: {before:?}"
    );
    s.kill();
    let restarted_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let s = Server::start_with(&data, "127.0.0.1:0", &args);
    let st = scrub_status(&s);
    for n in st["nodes"].as_array().unwrap() {
        let node = n["node"].as_str().unwrap();
        assert_eq!(
            n["status"]["requested"], true,
            "the asked pass survives the restart: {n}"
        );
        // Resumed, not restarted: what was verified before the kill (persisted with each
        // step) still counts.
        assert!(
            n["status"]["pass_shards"].as_u64().unwrap() >= before[node],
            "{node} started over: {n} (before: {})",
            before[node]
        );
    }
    let (ok, out, err) = s.admin(&["scrub", "start", "--wait"]);
    assert!(ok, "{out} {err}");
    let st = scrub_status(&s);
    for n in st["nodes"].as_array().unwrap() {
        let (checked, held) = (
            n["status"]["shards_checked"].as_u64().unwrap(),
            n["status"]["shards"].as_u64().unwrap(),
        );
        // The asked pass ended after the restart. (The empty store's first periodic pass
        // may or may not have ended before the first PUT: when it had not, the asked pass
        // is that one, sped up, so one or two passes.)
        let passes = n["status"]["passes"].as_u64().unwrap();
        assert!((1..=2).contains(&passes), "{n}");
        assert!(
            n["status"]["last_pass_done_ms"].as_u64().unwrap() >= restarted_ms,
            "{n}"
        );
        assert_eq!(n["status"]["requested"], false, "{n}");
        // Every shard once, a cut step's at most twice: not a second pass from the start.
        assert!(checked >= held && checked < held + held / 2, "{n}");
    }
}

fn data_of(len: usize, seed: u8) -> Vec<u8> {
    data(len, seed)
}
