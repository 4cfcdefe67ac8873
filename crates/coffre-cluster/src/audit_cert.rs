//! A gateway's audit signing key, certified by the cluster CA: an Ed25519 key in
//! `audit-key.pem` (0600) and its certificate `audit.pem`, whose subject names the gateway
//! (CN) with the title `audit` — a title no TLS handshake of the cluster accepts. Anyone
//! holding the CA certificate checks a gateway's audit checkpoints with it, offline.

use crate::identity::{valid_name, Location};
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;

/// The subject title of audit certificates.
pub const AUDIT_TITLE: &str = "audit";
/// Document signing (1.3.6.1.4.1.311.10.3.12): what the key is for, and not TLS.
const DOCUMENT_SIGNING: [u64; 10] = [1, 3, 6, 1, 4, 1, 311, 10, 3, 12];

/// Issues gateway `id`'s audit key and certificate into `out` (`audit-key.pem`, `audit.pem`).
pub fn issue_audit_key(ca_dir: &Path, id: &str, loc: &Location, out: &Path) -> Result<(), String> {
    if !valid_name(id) {
        return Err(format!("gateway id {id:?}: 1-63 letters, digits, '-' or '_'"));
    }
    let read =
        |f: &str| std::fs::read_to_string(ca_dir.join(f)).map_err(|e| format!("{}: {e}", ca_dir.join(f).display()));
    let ca_key = KeyPair::from_pem(&read("ca.key")?).map_err(|e| e.to_string())?;
    let issuer = Issuer::new(crate::identity::ca_params(read("ca.name")?.trim())?, ca_key);
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, id);
    dn.push(DnType::CountryName, loc.country.as_str());
    dn.push(DnType::LocalityName, loc.site.as_str());
    dn.push(DnType::OrganizationalUnitName, loc.zone.as_str());
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 12]), AUDIT_TITLE);
    params.distinguished_name = dn;
    let mut serial: [u8; 16] = coffre_types::random_bytes();
    serial[0] = (serial[0] & 0x7F) | 0x01;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(DOCUMENT_SIGNING.to_vec())];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(|e| e.to_string())?;
    let cert = params.signed_by(&key, &issuer).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    coffre_types::create_private_file(&out.join("audit-key.pem"), key.serialize_pem().as_bytes())
        .map_err(|e| format!("{}: {e}", out.join("audit-key.pem").display()))?;
    std::fs::write(out.join("audit.pem"), cert.pem()).map_err(|e| e.to_string())
}

/// The PKCS#8 bytes of an `audit-key.pem`.
pub fn load_audit_key(path: &Path) -> Result<Vec<u8>, String> {
    match PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: {e}", path.display()))? {
        PrivateKeyDer::Pkcs8(k) => Ok(k.secret_pkcs8_der().to_vec()),
        _ => Err(format!("{}: not a PKCS#8 key", path.display())),
    }
}

/// Checks that `cert_pem` is an audit certificate the CA of `ca_pem` signed; returns the
/// gateway it names and its Ed25519 public key.
pub fn verify_audit_certificate(ca_pem: &str, cert_pem: &str) -> Result<(String, [u8; 32]), String> {
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| format!("CA certificate: {e}"))?;
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| format!("audit certificate: {e}"))?;
    let ca_parts = parse(&ca).ok_or("the CA certificate is unreadable")?;
    let parts = parse(&cert).ok_or("the audit certificate is unreadable")?;
    // The CA's key is ECDSA P-256 (how `ca init` makes it); its signature covers the TBS.
    let ca_point = spki_key(ca_parts.spki, &EC_PUBLIC_KEY).ok_or("the CA key is not an ECDSA P-256 key")?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, ca_point)
        .verify(parts.tbs_raw, parts.signature)
        .map_err(|_| "the audit certificate is not signed by this CA".to_string())?;
    if parts.title.as_deref() != Some(AUDIT_TITLE) {
        return Err("not an audit certificate (its title is not `audit`)".into());
    }
    let key = spki_key(parts.spki, &ED25519).ok_or("the audit key is not an Ed25519 key")?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| "the audit key is not 32 bytes".to_string())?;
    Ok((parts.cn.ok_or("the audit certificate names no gateway")?, key))
}

/// Checks that the CA of `ca` (DER) signed `cert` (DER, a node's or gateway's TLS
/// certificate); returns its ECDSA P-256 public key (the uncompressed point), which signs
/// the node's statements (`proof`).
pub(crate) fn ca_signed_ec_key(ca: &[u8], cert: &[u8]) -> Result<Vec<u8>, String> {
    let ca_parts = parse(ca).ok_or("the CA certificate is unreadable")?;
    let parts = parse(cert).ok_or("the certificate is unreadable")?;
    let ca_point = spki_key(ca_parts.spki, &EC_PUBLIC_KEY).ok_or("the CA key is not an ECDSA P-256 key")?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, ca_point)
        .verify(parts.tbs_raw, parts.signature)
        .map_err(|_| "the certificate is not signed by this CA".to_string())?;
    Ok(spki_key(parts.spki, &EC_PUBLIC_KEY)
        .ok_or("the certificate's key is not an ECDSA P-256 key")?
        .to_vec())
}

/// id-ecPublicKey
const EC_PUBLIC_KEY: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// id-Ed25519
const ED25519: [u8; 3] = [0x2b, 0x65, 0x70];

struct Parts<'a> {
    tbs_raw: &'a [u8],
    signature: &'a [u8],
    spki: &'a [u8],
    cn: Option<String>,
    title: Option<String>,
}

fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    crate::identity::der(input)
}

fn parse(cert: &[u8]) -> Option<Parts<'_>> {
    let (0x30, body, _) = der(cert)? else { return None };
    let (0x30, mut tbs, after_tbs) = der(body)? else {
        return None;
    };
    let tbs_raw = &body[..body.len() - after_tbs.len()];
    let (0x30, _alg, rest) = der(after_tbs)? else {
        return None;
    };
    let (0x03, sig, _) = der(rest)? else { return None };
    let (&0, signature) = sig.split_first()? else {
        return None;
    };
    // [0] version, serial, signature algorithm, issuer, validity, subject, SPKI
    if tbs.first() == Some(&0xA0) {
        tbs = der(tbs)?.2;
    }
    for _ in 0..4 {
        tbs = der(tbs)?.2;
    }
    let (0x30, name, rest) = der(tbs)? else { return None };
    let (0x30, spki, _) = der(rest)? else { return None };
    let crate::identity::Subject { cn, title, .. } = crate::identity::subject(name)?;
    Some(Parts {
        tbs_raw,
        signature,
        spki,
        cn,
        title,
    })
}

/// The key bits of a SubjectPublicKeyInfo whose algorithm is `alg`.
fn spki_key<'a>(spki: &'a [u8], alg: &[u8]) -> Option<&'a [u8]> {
    let (0x30, algorithm, rest) = der(spki)? else {
        return None;
    };
    let (0x06, oid, _) = der(algorithm)? else { return None };
    if oid != alg {
        return None;
    }
    let (0x03, bits, _) = der(rest)? else { return None };
    let (&0, key) = bits.split_first()? else { return None };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_audit_key_is_certified_by_its_ca_only() {
        let d = tempfile::tempdir().unwrap();
        crate::identity::init_ca(&d.path().join("ca")).unwrap();
        crate::identity::init_ca(&d.path().join("other")).unwrap();
        let loc = Location {
            country: "FR".into(),
            site: "paris".into(),
            zone: "a".into(),
        };
        issue_audit_key(&d.path().join("ca"), "gw1", &loc, &d.path().join("gw1")).unwrap();
        let ca = std::fs::read_to_string(d.path().join("ca/ca.pem")).unwrap();
        let other = std::fs::read_to_string(d.path().join("other/ca.pem")).unwrap();
        let cert = std::fs::read_to_string(d.path().join("gw1/audit.pem")).unwrap();
        let (id, public) = verify_audit_certificate(&ca, &cert).unwrap();
        assert_eq!(id, "gw1");
        let pkcs8 = load_audit_key(&d.path().join("gw1/audit-key.pem")).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8).unwrap();
        use ring::signature::KeyPair;
        assert_eq!(pair.public_key().as_ref(), public);
        assert!(verify_audit_certificate(&other, &cert)
            .unwrap_err()
            .contains("not signed"));
        // A gateway's TLS certificate is not an audit certificate, and no TLS peer accepts this one.
        crate::identity::issue(
            &d.path().join("ca"),
            "gw1",
            &loc,
            crate::Role::Gateway,
            &d.path().join("tls"),
        )
        .unwrap();
        let tls = std::fs::read_to_string(d.path().join("tls/cert.pem")).unwrap();
        assert!(verify_audit_certificate(&ca, &tls).is_err());
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert!(crate::identity::cert_info(&der).is_none());
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(bytes: Vec<u8>) {
            let _ = parse(&bytes);
            let _ = spki_key(&bytes, &ED25519);
        }
    }
}
