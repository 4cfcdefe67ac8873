//! Optional forwarding to a SIEM: every durable entry, as an RFC 5424 syslog message over TCP
//! or TLS (RFC 5425), framed by octet counting (RFC 6587). Best effort by design: the segments
//! are the record; a SIEM that is down or slow never holds requests back. Messages wait in a
//! bounded queue while the connection is re-established (with backoff); beyond it they are
//! dropped and counted (`coffre_audit_forward_dropped_total`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

/// Messages waiting for the SIEM.
const QUEUE: usize = 65_536;

/// Where to send: `tcp://HOST:PORT` or `tls://HOST:PORT` (with the CA that signed the
/// collector's certificate).
#[derive(Clone)]
pub struct SyslogTarget {
    pub address: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The name the collector's certificate must carry (the host of the address).
    pub server_name: String,
    /// The HOSTNAME field of the messages (the gateway's id).
    pub hostname: String,
}

impl std::fmt::Debug for SyslogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}",
            if self.tls.is_some() { "tls" } else { "tcp" },
            self.address
        )
    }
}

impl SyslogTarget {
    /// Parses `tcp://HOST:PORT` or `tls://HOST:PORT`; TLS trusts the PEM certificates of
    /// `ca_pem` only.
    pub fn parse(url: &str, ca_pem: Option<&[u8]>, hostname: &str) -> Result<SyslogTarget, String> {
        let (tls, address) = match url.split_once("://") {
            Some(("tcp", a)) => (false, a),
            Some(("tls", a)) => (true, a),
            _ => return Err(format!("syslog target {url:?}: tcp://HOST:PORT or tls://HOST:PORT")),
        };
        let host = address
            .rsplit_once(':')
            .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
            .ok_or_else(|| format!("syslog target {url:?}: no port"))?;
        let tls = match (tls, ca_pem) {
            (false, _) => None,
            (true, None) => return Err("a tls:// syslog target needs the CA of its certificate".into()),
            (true, Some(pem)) => Some(client_config(pem)?),
        };
        Ok(SyslogTarget {
            address: address.to_string(),
            tls,
            server_name: host.to_string(),
            hostname: hostname.to_string(),
        })
    }
}

fn client_config(ca_pem: &[u8]) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots
            .add(cert.map_err(|e| format!("syslog CA: {e}"))?)
            .map_err(|e| format!("syslog CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("syslog CA: no certificate".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The queue to the SIEM.
pub struct Forwarder {
    tx: mpsc::Sender<Vec<u8>>,
    hostname: String,
    pub sent: Arc<AtomicU64>,
    pub dropped: AtomicU64,
}

impl Forwarder {
    /// Starts the connection task (inside a tokio runtime).
    pub fn start(target: SyslogTarget) -> Forwarder {
        let (tx, rx) = mpsc::channel(QUEUE);
        let sent = Arc::new(AtomicU64::new(0));
        let hostname = target.hostname.clone();
        tokio::spawn(run(target, rx, sent.clone()));
        Forwarder {
            tx,
            hostname,
            sent,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues one durable entry (its event's JSON and time).
    pub fn forward(&self, time: &str, event_json: &[u8]) {
        let msg = message(&self.hostname, time, event_json);
        if self.tx.try_send(msg).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `LEN <110>1 TIME HOST coffre - audit - JSON`: facility 13 (log audit), severity 6.
pub fn message(hostname: &str, time: &str, event_json: &[u8]) -> Vec<u8> {
    let host = if hostname.is_empty() { "-" } else { hostname };
    let mut msg = format!("<110>1 {time} {host} coffre - audit - ").into_bytes();
    msg.extend_from_slice(event_json);
    let mut framed = format!("{} ", msg.len()).into_bytes();
    framed.extend_from_slice(&msg);
    framed
}

trait Stream: tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(t: &SyslogTarget) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(Duration::from_secs(10), tokio::net::TcpStream::connect(&t.address))
        .await
        .map_err(|_| "connection timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    match &t.tls {
        None => Ok(Box::new(tcp)),
        Some(cfg) => {
            let name = rustls::pki_types::ServerName::try_from(t.server_name.clone()).map_err(|e| e.to_string())?;
            let tls = tokio::time::timeout(
                Duration::from_secs(10),
                tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| e.to_string())?;
            Ok(Box::new(tls))
        }
    }
}

async fn run(target: SyslogTarget, mut rx: mpsc::Receiver<Vec<u8>>, sent: Arc<AtomicU64>) {
    let mut pending: Option<Vec<u8>> = None;
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut conn = match connect(&target).await {
            Ok(c) => {
                backoff = Duration::from_millis(500);
                c
            }
            Err(e) => {
                tracing::warn!(target: "coffre::audit", syslog = ?target, error = %e, "audit forwarding: cannot connect; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        loop {
            let msg = match pending.take() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => m,
                    None => return,
                },
            };
            let write = async {
                conn.write_all(&msg).await?;
                // Flush when nothing else waits (TLS buffers otherwise).
                if rx.is_empty() {
                    conn.flush().await?;
                }
                Ok::<(), std::io::Error>(())
            };
            match tokio::time::timeout(Duration::from_secs(30), write).await {
                Ok(Ok(())) => {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    tracing::warn!(target: "coffre::audit", syslog = ?target, "audit forwarding: connection lost; reconnecting");
                    pending = Some(msg);
                    break;
                }
            }
        }
    }
}
