//! The one outbound call Coffre can make, and only when an operator configures a tenant's
//! issuer by URL: fetching its public keys (JWKS). HTTPS only, checked against the system's
//! trusted roots (`SSL_CERT_FILE`); answers are bounded in size and time.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The system's trusted roots (`SSL_CERT_FILE`, else Debian's bundle).
fn roots() -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let path = std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&path).map_err(|e| format!("{path}: {e}"))? {
        let _ = store.add(c.map_err(|e| format!("{path}: {e}"))?);
    }
    Ok(store)
}

/// GETs `url` over HTTPS and returns its body as text, at most `jwt::MAX_JWKS` bytes. Plain
/// HTTP is refused: the keys fetched decide who gets credentials.
pub async fn get(url: &str) -> Result<String, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("{url}: an issuer's keys are fetched over https only"));
    }
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?.to_string();
    let port = uri.port_u16().unwrap_or(443);
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let work = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let req = http::Request::get(&path)
            .header("host", &host)
            .header("accept", "application/json")
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots()?)
            .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        send(TokioIo::new(tls), req).await
    };
    let (status, body) = tokio::time::timeout(TIMEOUT, work)
        .await
        .map_err(|_| format!("{url}: no answer within {TIMEOUT:?}"))??;
    if status != 200 {
        return Err(format!("{url} answered {status}"));
    }
    String::from_utf8(body).map_err(|_| format!("{url}: the answer is not UTF-8"))
}

async fn send<T>(io: TokioIo<T>, req: http::Request<Empty<Bytes>>) -> Result<(u16, Vec<u8>), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = Limited::new(resp.into_body(), crate::jwt::MAX_JWKS)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body.to_vec()))
}
