//! Cluster identity. `init_ca` makes the cluster CA; `issue` makes a node's (or gateway's)
//! certificate whose subject carries its id (CN), country (C), site (L) and zone (OU). The
//! location the cluster believes is read from the CA-signed certificate, never from a flag
//! a node could change.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub site: String,
    pub zone: String,
}

pub fn valid_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    coffre_types::create_private_file(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

fn ca_params(name: &str) -> Result<CertificateParams, String> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn.push(DnType::OrganizationName, "Coffre");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

/// Creates the cluster CA in `out`: `ca.pem`, `ca.key` (0600), `ca.name`.
pub fn init_ca(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    if out.join("ca.key").exists() {
        return Err(format!("{} already holds a CA", out.display()));
    }
    let name = format!("Coffre cluster CA {}", hex::encode(coffre_types::random_bytes::<6>()));
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = ca_params(&name)?;
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    write_secret(&out.join("ca.key"), &key.serialize_pem())?;
    std::fs::write(out.join("ca.pem"), cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(out.join("ca.name"), &name).map_err(|e| e.to_string())?;
    Ok(())
}

/// Issues an identity signed by the CA in `ca_dir` into `out`: `cert.pem`, `key.pem` (0600),
/// `ca.pem`.
pub fn issue(ca_dir: &Path, id: &str, loc: &Location, out: &Path) -> Result<(), String> {
    if !valid_name(id) {
        return Err(format!("node id {id:?}: 1-63 letters, digits, '-' or '_'"));
    }
    if !valid_country(&loc.country) {
        return Err(format!(
            "country {:?} is not an ISO 3166-1 alpha-2 code (two capital letters)",
            loc.country
        ));
    }
    if !valid_name(&loc.site) || !valid_name(&loc.zone) {
        return Err("site and zone: 1-63 letters, digits, '-' or '_'".into());
    }
    let read =
        |f: &str| std::fs::read_to_string(ca_dir.join(f)).map_err(|e| format!("{}: {e}", ca_dir.join(f).display()));
    let ca_key = KeyPair::from_pem(&read("ca.key")?).map_err(|e| e.to_string())?;
    let issuer = Issuer::new(ca_params(read("ca.name")?.trim())?, ca_key);
    let mut params = CertificateParams::new(vec![id.to_string()]).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, id);
    dn.push(DnType::CountryName, loc.country.as_str());
    dn.push(DnType::LocalityName, loc.site.as_str());
    dn.push(DnType::OrganizationalUnitName, loc.zone.as_str());
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2040, 1, 1);
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    write_secret(&out.join("key.pem"), &key.serialize_pem())?;
    std::fs::write(out.join("cert.pem"), cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(out.join("ca.pem"), read("ca.pem")?).map_err(|e| e.to_string())?;
    Ok(())
}

/// A loaded identity: certificate, key, the cluster CA, and what the certificate says.
pub struct Identity {
    pub id: String,
    pub location: Location,
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pub ca: CertificateDer<'static>,
}

impl Identity {
    pub fn load(dir: &Path) -> Result<Identity, String> {
        Identity::load_with_ca(dir, dir)
    }

    /// Loads an identity, trusting the CA certificate found in `ca_dir` (`ca.pem`).
    pub fn load_with_ca(dir: &Path, ca_dir: &Path) -> Result<Identity, String> {
        let cert = CertificateDer::from_pem_file(dir.join("cert.pem"))
            .map_err(|e| format!("{}/cert.pem: {e}", dir.display()))?;
        let key =
            PrivateKeyDer::from_pem_file(dir.join("key.pem")).map_err(|e| format!("{}/key.pem: {e}", dir.display()))?;
        let ca = CertificateDer::from_pem_file(ca_dir.join("ca.pem"))
            .map_err(|e| format!("{}/ca.pem: {e}", ca_dir.display()))?;
        let (id, location) = subject_of(&cert).ok_or("the certificate carries no Coffre identity (CN, C, L, OU)")?;
        Ok(Identity {
            id,
            location,
            cert,
            key,
            ca,
        })
    }

    fn roots(&self) -> Result<Arc<rustls::RootCertStore>, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).map_err(|e| e.to_string())?;
        Ok(Arc::new(roots))
    }

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    /// Server side of the cluster's mutual TLS: only peers whose certificate the cluster CA
    /// signed get in.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(self.roots()?, Self::provider())
            .build()
            .map_err(|e| e.to_string())?;
        let mut c = rustls::ServerConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| e.to_string())?;
        c.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(c))
    }

    /// Client side: the peer must present a CA-signed certificate (for `expected` id when
    /// given; otherwise whatever id its certificate names), and we present ours.
    pub fn client_config(&self, expected: Option<String>) -> Result<Arc<rustls::ClientConfig>, String> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots()?, Self::provider())
            .build()
            .map_err(|e| e.to_string())?;
        let mut c = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NodeVerifier { inner, expected }))
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| e.to_string())?;
        c.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(c))
    }
}

/// Verifies a node's certificate chain against the cluster CA with the node id its own
/// certificate names (or the one expected), so a gateway can learn who a new address is.
#[derive(Debug)]
struct NodeVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    expected: Option<String>,
}

impl rustls::client::danger::ServerCertVerifier for NodeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        ocsp: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let (id, _) =
            subject_of(end_entity).ok_or(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if self.expected.as_ref().is_some_and(|e| *e != id) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ));
        }
        let name = rustls::pki_types::ServerName::try_from(id)
            .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))?;
        self.inner
            .verify_server_cert(end_entity, intermediates, &name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

// ---- A minimal DER reader: just enough to read a certificate's subject. ----

/// (tag, contents, rest)
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7F) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, b| (a << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The (id, location) a certificate's subject names: CN, C, L, OU.
pub fn subject_of(cert: &[u8]) -> Option<(String, Location)> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, mut tbs, _) = der(cert)? else { return None };
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject
    if tbs.first() == Some(&0xA0) {
        tbs = der(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = der(tbs)?.2;
    }
    let (0x30, mut name, _) = der(tbs)? else { return None };
    let (mut cn, mut c, mut l, mut ou) = (None, None, None, None);
    while !name.is_empty() {
        let (0x31, set, rest) = der(name)? else { return None };
        name = rest;
        let (0x30, atv, _) = der(set)? else { return None };
        let (0x06, oid, rest) = der(atv)? else { return None };
        let (_, value, _) = der(rest)?;
        let value = std::str::from_utf8(value).ok()?.to_string();
        match oid {
            [0x55, 0x04, 0x03] => cn = Some(value),
            [0x55, 0x04, 0x06] => c = Some(value),
            [0x55, 0x04, 0x07] => l = Some(value),
            [0x55, 0x04, 0x0B] => ou = Some(value),
            _ => {}
        }
    }
    Some((
        cn?,
        Location {
            country: c?,
            site: l?,
            zone: ou.unwrap_or_default(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_identity_carries_its_signed_location() {
        let d = tempfile::tempdir().unwrap();
        init_ca(&d.path().join("ca")).unwrap();
        assert!(init_ca(&d.path().join("ca")).is_err(), "never overwrites a CA");
        let loc = Location {
            country: "FR".into(),
            site: "paris-1".into(),
            zone: "a".into(),
        };
        issue(&d.path().join("ca"), "node-1", &loc, &d.path().join("n1")).unwrap();
        let id = Identity::load(&d.path().join("n1")).unwrap();
        assert_eq!(id.id, "node-1");
        assert_eq!(id.location, loc);
        id.server_config().unwrap();
        id.client_config(None).unwrap();
        let bad = Location {
            country: "France".into(),
            ..loc.clone()
        };
        assert!(issue(&d.path().join("ca"), "node-2", &bad, &d.path().join("n2")).is_err());
        assert!(issue(&d.path().join("ca"), "../x", &loc, &d.path().join("n3")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn der_reader_never_panics(bytes: Vec<u8>) {
            let _ = subject_of(&bytes);
        }
    }
}
