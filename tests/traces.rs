//! OpenTelemetry traces through the real binary: a gateway started with `--otlp-endpoint`
//! exports, over OTLP/HTTP (JSON), to a collector of this test's, the spans of one PUT: the
//! request (named after its operation, with its request id), its authentication, its metadata
//! commands and one shard write on each of the six stores, all in one trace.

mod common;

use aws_sdk_s3::operation::RequestId;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A minimal OTLP/HTTP collector: every body posted to `/v1/traces`, parsed.
fn collector() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut line, mut length, mut path) = (String::new(), 0usize, String::new());
            reader.read_line(&mut line).unwrap();
            if let Some(p) = line.split_whitespace().nth(1) {
                path = p.to_string();
            }
            loop {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            assert_eq!(path, "/v1/traces");
            kept.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        }
    });
    (addr, bodies)
}

/// Every span the collector received.
fn spans(bodies: &Mutex<Vec<serde_json::Value>>) -> Vec<serde_json::Value> {
    bodies
        .lock()
        .unwrap()
        .iter()
        .flat_map(|b| b["resourceSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["scopeSpans"].as_array().cloned().unwrap_or_default())
        .flat_map(|s| s["spans"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn attribute<'a>(span: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["key"] == key)
        .map(|a| &a["value"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_put_is_one_trace_with_its_authentication_metadata_and_shard_writes() {
    let (addr, bodies) = collector();
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{addr}");
    let s = Server::start_with(&dir.path().join("data"), "127.0.0.1:0", &["--otlp-endpoint", &endpoint]);
    let c = s.client();
    c.create_bucket().bucket("traced").send().await.unwrap();
    let put = c
        .put_object()
        .bucket("traced")
        .key("big")
        .body(data(3 << 20, 4).into())
        .send()
        .await
        .unwrap();
    let request_id = put.request_id().unwrap().to_string();

    // The PUT's span, found by its request id, once exported (batches leave every second).
    let deadline = Instant::now() + Duration::from_secs(20);
    let (root, all) = loop {
        let all = spans(&bodies);
        let root = all
            .iter()
            .find(|s| attribute(s, "request_id").and_then(|v| v["stringValue"].as_str()) == Some(request_id.as_str()));
        if let Some(root) = root.cloned() {
            // Its children close before it: they are in the same or an earlier batch.
            break (root, all);
        }
        assert!(
            Instant::now() < deadline,
            "no span of request {request_id} exported: {all:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(root["name"], "PutObject");
    assert_eq!(root["kind"], 2, "a server span");
    assert!(root.get("parentSpanId").is_none());
    assert_eq!(attribute(&root, "status").unwrap()["intValue"], "200");
    assert_eq!(attribute(&root, "tenant").unwrap()["stringValue"], "default");
    let start: u64 = root["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = root["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(end > start);

    let trace = root["traceId"].as_str().unwrap();
    let in_trace: Vec<&serde_json::Value> = all.iter().filter(|s| s["traceId"] == trace).collect();
    let named = |n: &str| in_trace.iter().filter(|s| s["name"] == n).copied().collect::<Vec<_>>();
    // Its authentication, a child of the request.
    let auth = named("authenticate");
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0]["parentSpanId"], root["spanId"]);
    // Its metadata commands (the commit among them), on the metadata's blocking threads.
    let commands: Vec<&str> = named("meta.command")
        .iter()
        .filter_map(|s| attribute(s, "command").and_then(|v| v["stringValue"].as_str()))
        .collect();
    assert!(commands.contains(&"CommitObject"), "{commands:?}");
    // A shard write per stripe on each of the six stores, each naming its node, each timed:
    // the slow node of a slow request is the longest of these.
    let writes = named("shard.write");
    let mut nodes: Vec<&str> = writes
        .iter()
        .filter_map(|s| attribute(s, "node").and_then(|v| v["stringValue"].as_str()))
        .collect();
    nodes.sort();
    nodes.dedup();
    assert!(!writes.is_empty() && writes.len() % 6 == 0, "{writes:?}");
    assert_eq!(nodes.len(), 6, "{nodes:?}");
    for w in &writes {
        let (s, e): (u64, u64) = (
            w["startTimeUnixNano"].as_str().unwrap().parse().unwrap(),
            w["endTimeUnixNano"].as_str().unwrap().parse().unwrap(),
        );
        assert!(start <= s && s <= e && e <= end, "a shard write outside its request");
    }
    // The exporter counts what it sent (once the collector has answered the batch).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let exported = s
            .metrics()
            .lines()
            .find_map(|l| l.strip_prefix("coffre_trace_spans_exported_total "))
            .and_then(|v| v.parse::<u64>().ok());
        if exported.is_some_and(|n| n >= in_trace.len() as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "spans exported: {exported:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every span of the trace hangs from a span of the trace.
    let ids: Vec<&str> = in_trace.iter().filter_map(|s| s["spanId"].as_str()).collect();
    for s in &in_trace {
        if let Some(p) = s["parentSpanId"].as_str() {
            assert!(ids.contains(&p), "a parent outside the trace: {s}");
        }
    }
}
