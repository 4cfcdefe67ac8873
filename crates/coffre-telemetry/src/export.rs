//! The exporter: batches finished spans and posts them as OTLP/HTTP JSON (plain HTTP/1.1,
//! a collector on the operator's network: an `http://` endpoint), on a thread of its own.

use crate::{FinishedSpan, Stats};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Spans per request at most, and the longest a span waits for its batch.
const BATCH: usize = 512;
const LINGER: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) struct Target {
    host_port: String,
    path: String,
}

impl Target {
    /// `http://host:port[/prefix]` → where `/v1/traces` is posted.
    pub(crate) fn parse(endpoint: &str) -> Result<Target, String> {
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or("the OTLP endpoint is http://HOST:PORT (OTLP over HTTP, JSON)")?;
        let (host_port, prefix) = match rest.split_once('/') {
            Some((h, p)) => (h, format!("/{}", p.trim_end_matches('/'))),
            None => (rest, String::new()),
        };
        if host_port.is_empty() {
            return Err("the OTLP endpoint names no host".into());
        }
        let prefix = if prefix == "/" { String::new() } else { prefix };
        Ok(Target {
            host_port: host_port.to_string(),
            path: format!("{prefix}/v1/traces"),
        })
    }
}

pub(crate) fn spawn(
    target: Target,
    service: String,
    rx: Receiver<FinishedSpan>,
    stats: Arc<Stats>,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || run(target, service, rx, stats))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn run(target: Target, service: String, rx: Receiver<FinishedSpan>, stats: Arc<Stats>) {
    let mut batch = Vec::new();
    let mut since = Instant::now();
    loop {
        let wait = LINGER.saturating_sub(since.elapsed());
        let closed = match rx.recv_timeout(wait) {
            Ok(span) => {
                if batch.is_empty() {
                    since = Instant::now();
                }
                batch.push(span);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !batch.is_empty() && (batch.len() >= BATCH || since.elapsed() >= LINGER || closed) {
            let n = batch.len() as u64;
            let body = encode(&service, &std::mem::take(&mut batch));
            match post(&target, &body) {
                Ok(()) => stats.exported.fetch_add(n, Ordering::Relaxed),
                Err(_) => stats.dropped.fetch_add(n, Ordering::Relaxed),
            };
        }
        if closed {
            return;
        }
        if batch.is_empty() {
            since = Instant::now();
        }
    }
}

fn attribute(key: &str, value: &Value) -> Value {
    let v = match value {
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_u64() || n.is_i64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
        Value::String(s) => json!({ "stringValue": s }),
        other => json!({ "stringValue": other.to_string() }),
    };
    json!({ "key": key, "value": v })
}

/// The OTLP/JSON request body (ids in hex, times as strings of nanoseconds, per the spec).
pub(crate) fn encode(service: &str, spans: &[FinishedSpan]) -> Vec<u8> {
    let spans: Vec<Value> = spans
        .iter()
        .map(|s| {
            let mut o = json!({
                "traceId": hex::encode(s.trace_id),
                "spanId": hex::encode(s.span_id),
                "name": s.name,
                "kind": s.kind,
                "startTimeUnixNano": s.start_ns.to_string(),
                "endTimeUnixNano": s.end_ns.to_string(),
                "attributes": s.attributes.iter().map(|(k, v)| attribute(k, v)).collect::<Vec<_>>(),
            });
            if let Some(p) = s.parent {
                o["parentSpanId"] = json!(hex::encode(p));
            }
            o
        })
        .collect();
    let body = json!({
        "resourceSpans": [{
            "resource": { "attributes": [attribute("service.name", &json!(service))] },
            "scopeSpans": [{ "scope": { "name": "coffre" }, "spans": spans }],
        }],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

fn post(target: &Target, body: &[u8]) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let addr = target
        .host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        target.path,
        target.host_port,
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
    s.write_all(body).map_err(|e| e.to_string())?;
    let mut status = [0u8; 12];
    s.read_exact(&mut status).map_err(|e| e.to_string())?;
    match &status[9..12] {
        [b'2', _, _] => Ok(()),
        other => Err(format!("the collector answered {}", String::from_utf8_lossy(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_the_body_follow_otlp_http_json() {
        assert_eq!(Target::parse("http://127.0.0.1:4318").unwrap().path, "/v1/traces");
        assert_eq!(Target::parse("http://c:4318/otlp/").unwrap().path, "/otlp/v1/traces");
        assert!(Target::parse("https://c:4318").is_err());
        assert!(Target::parse("http://").is_err());
        let span = FinishedSpan {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: Some([3; 8]),
            name: "PutObject".into(),
            kind: 2,
            start_ns: 10,
            end_ns: 20,
            attributes: vec![("node".into(), json!("fr-1")), ("status".into(), json!(200))],
        };
        let v: Value = serde_json::from_slice(&encode("coffre", &[span])).unwrap();
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "01010101010101010101010101010101");
        assert_eq!(s["parentSpanId"], "0303030303030303");
        assert_eq!(s["startTimeUnixNano"], "10");
        assert_eq!(s["attributes"][1]["value"]["intValue"], "200");
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "coffre"
        );
    }
}
