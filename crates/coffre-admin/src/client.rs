//! The client of the admin API: a typed call of an entry of the call table (`request`), or one
//! raw request.

use crate::api::{Endpoint, ErrorBody, PathArgs};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// The largest answer the client reads (a placement of a very large object is a few MiB).
const MAX_ANSWER: usize = 256 << 20;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// One HTTP/1.1 connection to the admin API: its `host:port` and the sender.
async fn connect(endpoint: &str) -> Result<(&str, Sender), String> {
    let hp = endpoint
        .strip_prefix("http://")
        .ok_or("the admin endpoint is http://HOST:PORT")?
        .trim_end_matches('/');
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(hp))
        .await
        .map_err(|_| format!("{endpoint}: connection timed out"))?
        .map_err(|e| format!("{endpoint}: {e}"))?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok((hp, send))
}

/// Sends `method path_and_query` (with a JSON `body`, if any) and the bearer token; returns
/// the status and the answer.
pub async fn call(
    endpoint: &str,
    token: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Vec<u8>>,
) -> Result<(u16, String), String> {
    let (hp, mut send) = connect(endpoint).await?;
    let req = http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", hp)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// GETs `path` into a new file at `out` (mode 0600), streaming; the status and, on an
/// error, the answer.
pub async fn download(endpoint: &str, token: &str, path: &str, out: &std::path::Path) -> Result<(u16, String), String> {
    use tokio::io::AsyncWriteExt;
    let (hp, mut send) = connect(endpoint).await?;
    let req = http::Request::builder()
        .method("GET")
        .uri(path)
        .header("host", hp)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    if status != 200 {
        let b = Limited::new(body, 1 << 20)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        return Ok((status, String::from_utf8_lossy(&b).into_owned()));
    }
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .await
        .map_err(|e| format!("{}: {e}", out.display()))?;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("download cut: {e}"))?;
        if let Some(data) = frame.data_ref() {
            file.write_all(data).await.map_err(|e| e.to_string())?;
        }
    }
    file.sync_all().await.map_err(|e| e.to_string())?;
    Ok((status, String::new()))
}

/// The path and query of a call of `E`.
pub fn target<E: Endpoint>(path: &E::Path, query: &E::Query) -> Result<String, String> {
    let mut given = path.segments().into_iter();
    let mut out = String::new();
    for part in E::PATH.split('/').skip(1) {
        out.push('/');
        if part.starts_with('{') {
            out.push_str(&encode(given.next().ok_or("a path segment is missing")?));
        } else {
            out.push_str(part);
        }
    }
    let query = serde_urlencoded::to_string(query).map_err(|e| e.to_string())?;
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    Ok(out)
}

/// Calls `E` with its path segments, query and body: its answer, or why it was refused
/// (`admin API: STATUS: message [Code]`).
pub async fn request<E: Endpoint>(
    endpoint: &str,
    token: &str,
    path: &E::Path,
    query: &E::Query,
    body: &E::Body,
) -> Result<E::Answer, String> {
    let target = target::<E>(path, query)?;
    let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let body = (body != b"null").then_some(body);
    let (status, text) = call(endpoint, token, E::METHOD.as_str(), &target, body).await?;
    if status != 200 {
        return Err(refusal(status, &text));
    }
    serde_json::from_str(&text).map_err(|e| format!("the admin API's answer to {} does not parse: {e}", E::NAME))
}

/// What a refused call says, from its error body.
pub fn refusal(status: u16, text: &str) -> String {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(b) => format!("admin API: {status}: {} [{:?}]", b.error, b.code),
        Err(_) => format!("admin API: {status}: {}", text.trim()),
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, KEEP).to_string()
}

/// `GET /health` of an S3 listener at `host:port` (plain HTTP, what a container's health check
/// asks from inside): Ok when it answers 200 within 3 seconds.
pub fn health(address: &str) -> Result<(), String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let timeout = Duration::from_secs(3);
    let addr = address
        .to_socket_addrs()
        .map_err(|e| format!("{address}: {e}"))?
        .next()
        .ok_or_else(|| format!("{address}: no address"))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{address}: {e}"))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    s.write_all(b"GET /health HTTP/1.1\r\nHost: coffre\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("{address}: {e}"))?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| format!("{address}: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    match line.split_whitespace().nth(1) {
        Some("200") => Ok(()),
        other => Err(format!("{address} answered {}", other.unwrap_or("nothing"))),
    }
}
