//! Cluster identity. `init_ca` makes the cluster CA; `issue` makes a node's (or gateway's)
//! certificate whose subject carries its id (CN), country (C), site (L), zone (OU) and role
//! (title: `node` or `gateway`). The location and role the cluster believes are read from the
//! CA-signed certificate, never from a flag a peer could change; a revocation list (serial
//! numbers) is checked on every handshake.

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

/// What a cluster certificate allows its holder to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A storage node: serves shards, calls nobody.
    Node,
    /// A gateway: reads and writes shards on nodes.
    Gateway,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Gateway => "gateway",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "node" => Ok(Role::Node),
            "gateway" => Ok(Role::Gateway),
            other => Err(format!("role {other:?}: node or gateway")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a cluster certificate says of its holder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub id: String,
    pub location: Location,
    /// A certificate without a role (issued before roles existed) counts as a node's.
    pub role: Role,
    /// The serial number, lower-case hex: what a revocation names.
    pub serial: String,
}

/// Serial numbers of revoked certificates, from the configuration and, for a node, a file
/// re-read whenever it changes, so a revocation applies to the next handshake.
#[derive(Default)]
pub struct Revocations {
    fixed: std::collections::HashSet<String>,
    file: Option<std::path::PathBuf>,
    loaded: std::sync::Mutex<(Option<std::time::SystemTime>, std::collections::HashSet<String>)>,
}

impl Revocations {
    /// `serials`: hex, any case, `:` separators allowed; `file`: one serial a line, `#` comments.
    pub fn new(serials: &[String], file: Option<std::path::PathBuf>) -> Revocations {
        Revocations {
            fixed: serials.iter().map(|s| normalize_serial(s)).collect(),
            file,
            loaded: Default::default(),
        }
    }

    pub fn is_revoked(&self, serial: &str) -> bool {
        if self.fixed.contains(serial) {
            return true;
        }
        let Some(path) = &self.file else { return false };
        let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if loaded.0 != mtime || mtime.is_none() {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            loaded.1 = text
                .lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(normalize_serial)
                .collect();
            loaded.0 = mtime;
        }
        loaded.1.contains(serial)
    }
}

fn normalize_serial(s: &str) -> String {
    s.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase()
}

pub fn valid_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn write_secret(path: &Path, text: &str) -> Result<(), String> {
    coffre_types::create_private_file(path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

pub(crate) fn ca_params(name: &str) -> Result<CertificateParams, String> {
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
/// `ca.pem`. Returns the certificate's serial number (hex), what a revocation names.
pub fn issue(ca_dir: &Path, id: &str, loc: &Location, role: Role, out: &Path) -> Result<String, String> {
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
    dn.push(DnType::CustomDnType(TITLE_OID.to_vec()), role.name());
    params.distinguished_name = dn;
    // A random positive serial: what revocations name.
    let mut serial: [u8; 16] = coffre_types::random_bytes();
    serial[0] &= 0x7F;
    serial[0] |= 0x01;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
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
    Ok(hex::encode(serial))
}

/// Checks that the identity in `out` is the one `issue` would write: the same CA (its
/// certificate, byte for byte), id, location and role; a gateway's also has its audit key.
/// What makes provisioning idempotent without ever keeping a mismatched identity.
pub fn check_issued(ca_dir: &Path, id: &str, loc: &Location, role: Role, out: &Path) -> Result<(), String> {
    let existing = Identity::load(out)?;
    let ca = CertificateDer::from_pem_file(ca_dir.join("ca.pem"))
        .map_err(|e| format!("{}/ca.pem: {e}", ca_dir.display()))?;
    if existing.ca != ca {
        return Err(format!("{} holds an identity of another CA", out.display()));
    }
    if existing.id != id || existing.location != *loc || existing.role != role {
        return Err(format!(
            "{} holds the identity of {} {} ({}/{}/{}), not the one asked for",
            out.display(),
            existing.role.name(),
            existing.id,
            existing.location.country,
            existing.location.site,
            existing.location.zone
        ));
    }
    if role == Role::Gateway && !out.join("audit-key.pem").exists() {
        return Err(format!("{} lacks the gateway's audit key", out.display()));
    }
    Ok(())
}

/// The `title` attribute (2.5.4.12), which carries the role.
const TITLE_OID: [u64; 4] = [2, 5, 4, 12];

/// A loaded identity: certificate, key, the cluster CA, and what the certificate says.
pub struct Identity {
    pub id: String,
    pub location: Location,
    pub role: Role,
    pub cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    pub ca: CertificateDer<'static>,
    /// Certificates refused even though the CA signed them.
    pub revoked: Arc<Revocations>,
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
        let info = cert_info(&cert).ok_or("the certificate carries no Coffre identity (CN, C, L, OU)")?;
        Ok(Identity {
            id: info.id,
            location: info.location,
            role: info.role,
            cert,
            key,
            ca,
            revoked: Arc::new(Revocations::default()),
        })
    }

    /// Signs `message` with this identity's key (ECDSA P-256, what `issue` makes): a node's
    /// statements about the shards it holds (`proof`), checked with its certificate.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        let PrivateKeyDer::Pkcs8(k) = &self.key else {
            return Err("the identity's key is not PKCS#8".into());
        };
        let rng = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            k.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| format!("the identity's key: {e}"))?;
        pair.sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|e| format!("signing: {e}"))
    }

    /// The same identity, refusing the certificates `revoked` names.
    pub fn with_revocations(mut self, revoked: Revocations) -> Identity {
        self.revoked = Arc::new(revoked);
        self
    }

    /// Whether a peer's certificate (already verified against the CA) may act as `role`:
    /// it names that role and is not revoked.
    pub fn admits(&self, peer: &CertificateDer<'_>, role: Role) -> Result<CertInfo, String> {
        let info = cert_info(peer).ok_or("the peer's certificate carries no Coffre identity")?;
        if self.revoked.is_revoked(&info.serial) {
            return Err(format!(
                "the certificate of {} (serial {}) is revoked",
                info.id, info.serial
            ));
        }
        if info.role != role {
            return Err(format!("{} holds a {} certificate, not a {role}'s", info.id, info.role));
        }
        Ok(info)
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
        self.client_config_for(Role::Node, expected)
    }

    /// Client side towards a peer of `role` (a node's shard store, another gateway's
    /// metadata replica).
    pub fn client_config_for(&self, role: Role, expected: Option<String>) -> Result<Arc<rustls::ClientConfig>, String> {
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(self.roots()?, Self::provider())
            .build()
            .map_err(|e| e.to_string())?;
        let mut c = rustls::ClientConfig::builder_with_provider(Self::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NodeVerifier {
                inner,
                role,
                expected,
                revoked: self.revoked.clone(),
            }))
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())
            .map_err(|e| e.to_string())?;
        c.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(c))
    }
}

/// Verifies a node's certificate chain against the cluster CA with the node id its own
/// certificate names (or the one expected), so a gateway can learn who a new address is; the
/// certificate must be a node's and not revoked.
struct NodeVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    role: Role,
    expected: Option<String>,
    revoked: Arc<Revocations>,
}

impl std::fmt::Debug for NodeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeVerifier")
            .field("expected", &self.expected)
            .finish()
    }
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
        let info =
            cert_info(end_entity).ok_or(rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        if self.revoked.is_revoked(&info.serial) {
            return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Revoked));
        }
        if info.role != self.role {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose,
            ));
        }
        let id = info.id;
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
pub(crate) fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
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

/// The attributes of a certificate's subject this cluster uses.
#[derive(Default)]
pub(crate) struct Subject {
    pub cn: Option<String>,
    pub c: Option<String>,
    pub l: Option<String>,
    pub ou: Option<String>,
    /// `title` (2.5.4.12): the role.
    pub title: Option<String>,
}

/// Reads a DER Name (the content of its SEQUENCE).
pub(crate) fn subject(mut name: &[u8]) -> Option<Subject> {
    let mut s = Subject::default();
    while !name.is_empty() {
        let (0x31, set, rest) = der(name)? else { return None };
        name = rest;
        let (0x30, atv, _) = der(set)? else { return None };
        let (0x06, oid, rest) = der(atv)? else { return None };
        let (_, value, _) = der(rest)?;
        let value = std::str::from_utf8(value).ok()?.to_string();
        match oid {
            [0x55, 0x04, 0x03] => s.cn = Some(value),
            [0x55, 0x04, 0x06] => s.c = Some(value),
            [0x55, 0x04, 0x07] => s.l = Some(value),
            [0x55, 0x04, 0x0B] => s.ou = Some(value),
            [0x55, 0x04, 0x0C] => s.title = Some(value),
            _ => {}
        }
    }
    Some(s)
}

/// The (id, location) a certificate's subject names: CN, C, L, OU.
pub fn subject_of(cert: &[u8]) -> Option<(String, Location)> {
    cert_info(cert).map(|i| (i.id, i.location))
}

/// What a certificate says: its subject's CN, C, L, OU and title (role), and its serial.
pub fn cert_info(cert: &[u8]) -> Option<CertInfo> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, mut tbs, _) = der(cert)? else { return None };
    // [0] version (optional), serial, signature algorithm, issuer, validity, subject
    if tbs.first() == Some(&0xA0) {
        tbs = der(tbs)?.2;
    }
    let (0x02, serial, rest) = der(tbs)? else { return None };
    tbs = rest;
    for _ in 0..3 {
        tbs = der(tbs)?.2;
    }
    let (0x30, name, _) = der(tbs)? else { return None };
    let Subject { cn, c, l, ou, title } = subject(name)?;
    // DER integers carry a leading zero when the top bit is set: not part of the serial.
    let serial = match serial {
        [0, rest @ ..] if !rest.is_empty() => rest,
        s => s,
    };
    Some(CertInfo {
        id: cn?,
        location: Location {
            country: c?,
            site: l?,
            zone: ou.unwrap_or_default(),
        },
        role: match title.as_deref() {
            None => Role::Node,
            Some(t) => t.parse().ok()?,
        },
        serial: hex::encode(serial),
    })
}

/// When a certificate stops being valid (its `notAfter`), in seconds since the epoch.
pub fn not_after(cert: &[u8]) -> Option<u64> {
    let (0x30, cert, _) = der(cert)? else { return None };
    let (0x30, mut tbs, _) = der(cert)? else { return None };
    if tbs.first() == Some(&0xA0) {
        tbs = der(tbs)?.2;
    }
    // serial, signature algorithm, issuer; then the validity.
    for _ in 0..3 {
        tbs = der(tbs)?.2;
    }
    let (0x30, validity, _) = der(tbs)? else { return None };
    let not_after = der(validity)?.2;
    let (tag, time, _) = der(not_after)?;
    let time = std::str::from_utf8(time).ok()?.strip_suffix('Z')?;
    // UTCTime (YYMMDDHHMMSS: years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSS).
    let full = match tag {
        0x17 if time.len() == 12 => {
            let yy: u32 = time[..2].parse().ok()?;
            format!("{}{time}", if yy >= 50 { 19 } else { 20 })
        }
        0x18 if time.len() == 14 => time.to_string(),
        _ => return None,
    };
    let iso = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &full[..4],
        &full[4..6],
        &full[6..8],
        &full[8..10],
        &full[10..12],
        &full[12..14]
    );
    let ms = coffre_types::time::parse_iso8601(&iso)?;
    u64::try_from(ms / 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_says_when_it_expires() {
        let d = tempfile::tempdir().unwrap();
        init_ca(&d.path().join("ca")).unwrap();
        let loc = Location {
            country: "FR".into(),
            site: "s".into(),
            zone: "z".into(),
        };
        issue(&d.path().join("ca"), "n", &loc, Role::Node, &d.path().join("n")).unwrap();
        let id = Identity::load(&d.path().join("n")).unwrap();
        // Issued until 2040-01-01 (the CA until 2045-01-01), as this module signs them.
        assert_eq!(not_after(&id.cert), Some(2_208_988_800));
        assert_eq!(not_after(&id.ca), Some(2_366_841_600));
        assert_eq!(not_after(b"not a certificate"), None);
    }

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
        let serial = issue(&d.path().join("ca"), "node-1", &loc, Role::Node, &d.path().join("n1")).unwrap();
        let id = Identity::load(&d.path().join("n1")).unwrap();
        assert_eq!(id.id, "node-1");
        assert_eq!(id.location, loc);
        assert_eq!(id.role, Role::Node);
        assert_eq!(cert_info(&id.cert).unwrap().serial, serial);
        issue(&d.path().join("ca"), "gw", &loc, Role::Gateway, &d.path().join("gw")).unwrap();
        let gw = Identity::load(&d.path().join("gw")).unwrap();
        assert_eq!(gw.role, Role::Gateway);
        // A node admits the gateway, not another node, and not a revoked gateway.
        assert!(id.admits(&gw.cert, Role::Gateway).is_ok());
        assert!(id
            .admits(&id.cert, Role::Gateway)
            .unwrap_err()
            .contains("not a gateway"));
        let gw_serial = cert_info(&gw.cert).unwrap().serial;
        let list = d.path().join("revoked");
        std::fs::write(&list, format!("# revoked\n{}\n", gw_serial.to_uppercase())).unwrap();
        let id = id.with_revocations(Revocations::new(&[], Some(list)));
        assert!(id.admits(&gw.cert, Role::Gateway).unwrap_err().contains("revoked"));
        id.server_config().unwrap();
        id.client_config(None).unwrap();
        let bad = Location {
            country: "France".into(),
            ..loc.clone()
        };
        assert!(issue(&d.path().join("ca"), "node-2", &bad, Role::Node, &d.path().join("n2")).is_err());
        assert!(issue(&d.path().join("ca"), "../x", &loc, Role::Node, &d.path().join("n3")).is_err());
    }

    proptest::proptest! {
        #[test]
        fn der_reader_never_panics(bytes: Vec<u8>) {
            let _ = cert_info(&bytes);
        }
    }
}
