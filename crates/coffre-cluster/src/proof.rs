//! Proofs of possession that do not trust the gateway (docs/residency.md). A node asked about
//! shards reads each from its own disk and signs, with the key its CA-signed certificate
//! certifies (the TLS key, ECDSA P-256), a statement of what it read: the shard's id, length
//! and BLAKE3, and a BLAKE3 keyed by the auditor's nonce over its bytes, at a time. A proof file
//! gathers the statements, each node's certificate, the object's layout as the gateway recorded
//! it and the bucket's policy; `verify` checks it with nothing but the CA certificate.

use crate::identity::{cert_info, not_after, CertInfo, Identity, Role};
use coffre_data::{LocalShardStore, ShardStore, StoreError};
use coffre_types::{ShardId, VersionId};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a statement's signature covers before its text: no other signature of the key (a TLS
/// handshake's) can be taken for a statement.
const STATEMENT_CONTEXT: &[u8] = b"coffre possession statement v1\n";
/// The proof file's format.
pub const FORMAT: &str = "coffre-placement-proof/1";
/// A bucket's proof file's format.
pub const BUCKET_FORMAT: &str = "coffre-bucket-proof/1";
/// Objects a bucket proof covers without sampling.
pub const MAX_PROOF_OBJECTS: usize = 10_000;
/// Shards a node attests in one request.
pub const MAX_ATTEST_SHARDS: usize = 4096;
/// The longest nonce (bytes).
pub const MAX_NONCE: usize = 64;

/// A gateway's question to a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AttestRequest {
    /// Hex, 1 to `MAX_NONCE` bytes.
    pub nonce: String,
    /// Hex shard ids.
    pub shards: Vec<String>,
}

/// What a node says of one shard, as it read it from its disk for this request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    pub node: String,
    /// Hex shard id (part version, part, stripe, index).
    pub shard: String,
    pub present: bool,
    pub len: u64,
    /// Hex BLAKE3 of the shard's bytes ("" when absent).
    pub blake3: String,
    /// Hex BLAKE3 of the bytes keyed by `nonce_key(nonce)`: only a reader of the bytes, after
    /// the nonce was chosen, can make it.
    pub keyed: String,
    pub nonce: String,
    pub time_ms: u64,
}

/// A statement's text (what was signed) and its signature (hex, ASN.1 DER ECDSA P-256).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SignedStatement {
    pub statement: String,
    pub signature: String,
}

/// A node's answer: its certificate (PEM) and its statements.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Attestation {
    pub certificate: String,
    pub statements: Vec<SignedStatement>,
}

/// The key of the keyed hash, from the auditor's nonce.
pub fn nonce_key(nonce: &[u8]) -> [u8; 32] {
    blake3::derive_key("coffre possession nonce v1", nonce)
}

/// A nonce as given (hex, 1 to `MAX_NONCE` bytes).
pub fn parse_nonce(hex_nonce: &str) -> Result<Vec<u8>, String> {
    match hex::decode(hex_nonce.trim()) {
        Ok(n) if !n.is_empty() && n.len() <= MAX_NONCE => Ok(n),
        _ => Err(format!("a nonce is 1 to {MAX_NONCE} bytes in hex")),
    }
}

fn signed_bytes(text: &str) -> Vec<u8> {
    [STATEMENT_CONTEXT, text.as_bytes()].concat()
}

/// The node's side: reads every shard asked from `store` and signs what it read.
pub async fn attest(identity: &Identity, store: &LocalShardStore, req: &AttestRequest) -> Result<Attestation, String> {
    let nonce = parse_nonce(&req.nonce)?;
    if req.shards.len() > MAX_ATTEST_SHARDS {
        return Err(format!("at most {MAX_ATTEST_SHARDS} shards per request"));
    }
    let key = nonce_key(&nonce);
    let mut statements = Vec::with_capacity(req.shards.len());
    for hex_id in &req.shards {
        let id = hex::decode(hex_id)
            .ok()
            .and_then(|b| ShardId::from_bytes(&b))
            .ok_or_else(|| format!("shard id {hex_id:?}"))?;
        let read = store.get(id).await;
        let (present, len, blake3, keyed) = match &read {
            Ok(bytes) => (
                true,
                bytes.len() as u64,
                blake3::hash(bytes).to_hex().to_string(),
                blake3::keyed_hash(&key, bytes).to_hex().to_string(),
            ),
            Err(StoreError::NotFound(_)) => (false, 0, String::new(), String::new()),
            Err(e) => return Err(format!("shard {hex_id}: {e}")),
        };
        let statement = Statement {
            node: identity.id.clone(),
            shard: hex_id.clone(),
            present,
            len,
            blake3,
            keyed,
            nonce: req.nonce.trim().to_ascii_lowercase(),
            time_ms: coffre_types::now_millis(),
        };
        let text = serde_json::to_string(&statement).map_err(|e| e.to_string())?;
        let signature = hex::encode(identity.sign(&signed_bytes(&text))?);
        statements.push(SignedStatement {
            statement: text,
            signature,
        });
    }
    let certificate = pem_of(identity.cert.as_ref());
    Ok(Attestation {
        certificate,
        statements,
    })
}

fn pem_of(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The bucket's residency policy, as the gateway recorded it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProofPolicy {
    pub countries: Vec<String>,
    pub failure_domain: String,
}

/// One shard of the layout: where the gateway says it is, and its BLAKE3.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProofShard {
    pub stripe: u32,
    pub index: u8,
    pub node: String,
    pub blake3: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProofPart {
    /// Hex part version (the shard ids' first 16 bytes).
    pub version: String,
    pub size: u64,
    pub shards: Vec<ProofShard>,
}

/// A proof of possession of one object version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlacementProof {
    pub format: String,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub size: u64,
    pub nonce: String,
    pub made_ms: u64,
    pub policy: ProofPolicy,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub parts: Vec<ProofPart>,
    pub attestations: Vec<Attestation>,
    /// Nodes that did not answer, and why (their shards are then unattested).
    pub unanswered: Vec<String>,
}

/// One object version of a bucket proof: its layout as the gateway recorded it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectLayout {
    pub key: String,
    pub version_id: String,
    pub size: u64,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub parts: Vec<ProofPart>,
}

/// A proof of possession of a bucket's object versions (all of them, or a random sample):
/// one set of statements, gathered per node in batches, for all their shards.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketProof {
    pub format: String,
    pub bucket: String,
    pub nonce: String,
    pub made_ms: u64,
    pub policy: ProofPolicy,
    /// Object versions (not delete markers) in the bucket when the proof was made.
    pub total_objects: u64,
    /// Whether `objects` is a random sample of them rather than all.
    pub sampled: bool,
    pub objects: Vec<ObjectLayout>,
    pub attestations: Vec<Attestation>,
    pub unanswered: Vec<String>,
}

impl ProofShard {
    /// The shard's id, as nodes name it.
    pub fn id(&self, part_version: &str) -> Option<String> {
        let version = VersionId::from_hex(part_version)?;
        Some(hex::encode(
            ShardId {
                version,
                part: 0,
                stripe: self.stripe,
                index: self.index,
            }
            .to_bytes(),
        ))
    }
}

/// The verdict on one shard of the layout.
#[derive(Clone, Debug, Serialize)]
pub struct ShardVerdict {
    /// The object's key (in a bucket proof) and version.
    pub key: String,
    pub version_id: String,
    pub part: usize,
    pub stripe: u32,
    pub index: u8,
    /// The node whose valid statement attests the shard, and its signed country.
    pub node: Option<String>,
    pub country: Option<String>,
    pub ok: bool,
    pub reason: String,
}

/// What `verify` concluded.
#[derive(Clone, Debug, Serialize)]
pub struct Verification {
    pub ok: bool,
    /// Faults of the file as a whole (format, nonce, certificates, signatures).
    pub problems: Vec<String>,
    pub shards: Vec<ShardVerdict>,
}

/// A certificate the CA signed, of a node, not revoked: who it names and its key.
struct Signer {
    info: CertInfo,
    key: Vec<u8>,
    not_after_ms: u64,
}

fn check_signer(ca: &CertificateDer<'_>, pem: &str, revoked: &HashSet<String>) -> Result<Signer, String> {
    let cert = CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("a certificate: {e}"))?;
    let key = crate::audit_cert::ca_signed_ec_key(ca, &cert)?;
    let info = cert_info(&cert).ok_or("a certificate carries no Coffre identity")?;
    if info.role != Role::Node {
        return Err(format!("{} holds a {} certificate, not a node's", info.id, info.role));
    }
    if revoked.contains(&info.serial) {
        return Err(format!(
            "the certificate of {} (serial {}) is revoked",
            info.id, info.serial
        ));
    }
    let not_after_ms = not_after(&cert).ok_or("a certificate's validity is unreadable")? * 1000;
    Ok(Signer {
        info,
        key,
        not_after_ms,
    })
}

/// Valid statements by shard id: (statement, signer's id, signer's signed country).
type Attested = HashMap<String, Vec<(Statement, String, String)>>;

/// Checks every certificate and statement of `attestations`; what fails is in `problems`.
fn check_statements(
    attestations: &[Attestation],
    ca_pem: &str,
    expected_nonce: &str,
    revoked: &[String],
    problems: &mut Vec<String>,
) -> Attested {
    let mut attested: Attested = HashMap::new();
    let ca = match CertificateDer::from_pem_slice(ca_pem.as_bytes()) {
        Ok(c) => c,
        Err(e) => {
            problems.push(format!("the CA certificate: {e}"));
            return attested;
        }
    };
    let revoked: HashSet<String> = revoked.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
    for a in attestations {
        let signer = match check_signer(&ca, &a.certificate, &revoked) {
            Ok(s) => s,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &signer.key);
        for s in &a.statements {
            let sig = hex::decode(&s.signature).unwrap_or_default();
            if public.verify(&signed_bytes(&s.statement), &sig).is_err() {
                problems.push(format!(
                    "a statement of {} does not match its signature",
                    signer.info.id
                ));
                continue;
            }
            let st: Statement = match serde_json::from_str(&s.statement) {
                Ok(st) => st,
                Err(e) => {
                    problems.push(format!("a statement of {}: {e}", signer.info.id));
                    continue;
                }
            };
            if st.node != signer.info.id {
                problems.push(format!(
                    "{} signed a statement in the name of {}",
                    signer.info.id, st.node
                ));
                continue;
            }
            if st.nonce != expected_nonce {
                problems.push(format!("a statement of {} answers another nonce", st.node));
                continue;
            }
            if st.time_ms > signer.not_after_ms {
                problems.push(format!("{} signed after its certificate expired", st.node));
                continue;
            }
            attested.entry(st.shard.clone()).or_default().push((
                st,
                signer.info.id.clone(),
                signer.info.location.country.clone(),
            ));
        }
    }
    attested
}

/// The verdict on every shard index of every stripe of one object version's layout.
fn check_layout(object: &ObjectLayout, countries: &[String], attested: &Attested) -> Vec<ShardVerdict> {
    let n = object.data_shards as usize + object.parity_shards as usize;
    let mut shards = Vec::new();
    for (pi, part) in object.parts.iter().enumerate() {
        let mut by_stripe: BTreeMap<u32, Vec<&ProofShard>> = BTreeMap::new();
        for s in &part.shards {
            by_stripe.entry(s.stripe).or_default().push(s);
        }
        for (stripe, layout) in by_stripe {
            let mut seen_nodes: HashSet<String> = HashSet::new();
            for index in 0..n as u8 {
                let mut v = ShardVerdict {
                    key: object.key.clone(),
                    version_id: object.version_id.clone(),
                    part: pi + 1,
                    stripe,
                    index,
                    node: None,
                    country: None,
                    ok: false,
                    reason: String::new(),
                };
                let Some(shard) = layout.iter().find(|s| s.index == index) else {
                    v.reason = "not in the layout".into();
                    shards.push(v);
                    continue;
                };
                let id = shard.id(&part.version).unwrap_or_default();
                let statements = attested.get(&id).map(Vec::as_slice).unwrap_or(&[]);
                let present: Vec<&(Statement, String, String)> =
                    statements.iter().filter(|(s, ..)| s.present).collect();
                v.reason = match (statements.is_empty(), present.first()) {
                    (true, _) => "no valid statement attests it".into(),
                    (false, None) => format!("{} says it does not hold it", statements[0].1),
                    (false, Some((st, node, country))) => {
                        v.node = Some(node.clone());
                        v.country = Some(country.clone());
                        if st.blake3 != shard.blake3 {
                            "the BLAKE3 the node read is not the layout's".into()
                        } else if !countries.iter().any(|c| c == country) {
                            format!("held in {country}, outside the policy ({})", countries.join(","))
                        } else if !seen_nodes.insert(node.clone()) {
                            format!("{node} attests two shards of this stripe")
                        } else {
                            v.ok = true;
                            "attested".into()
                        }
                    }
                };
                shards.push(v);
            }
        }
    }
    shards
}

fn nonce_of(file_nonce: &str, given: Option<&str>, problems: &mut Vec<String>) -> String {
    let file_nonce = file_nonce.trim().to_ascii_lowercase();
    let expected = given.map_or_else(|| file_nonce.clone(), |n| n.trim().to_ascii_lowercase());
    if expected != file_nonce {
        problems.push("the proof answers another nonce than the one given".into());
    }
    expected
}

/// Checks a proof with nothing but the CA certificate (PEM), the nonce the auditor chose (if
/// given: the file's must be it) and the serials the CA revoked: every signature and
/// certificate, every shard index of every stripe attested present by a distinct node with the
/// BLAKE3 the layout records, and every attesting node's signed country in the policy.
pub fn verify(proof: &PlacementProof, ca_pem: &str, nonce: Option<&str>, revoked: &[String]) -> Verification {
    let mut problems = Vec::new();
    if proof.format != FORMAT {
        problems.push(format!("format {:?}, not {FORMAT}", proof.format));
    }
    let expected = nonce_of(&proof.nonce, nonce, &mut problems);
    let attested = check_statements(&proof.attestations, ca_pem, &expected, revoked, &mut problems);
    let object = ObjectLayout {
        key: proof.key.clone(),
        version_id: proof.version_id.clone(),
        size: proof.size,
        data_shards: proof.data_shards,
        parity_shards: proof.parity_shards,
        parts: proof.parts.clone(),
    };
    let shards = check_layout(&object, &proof.policy.countries, &attested);
    let ok = problems.is_empty() && !shards.is_empty() && shards.iter().all(|s| s.ok);
    Verification { ok, problems, shards }
}

/// Checks a bucket proof as `verify` checks one object's, every object of it.
pub fn verify_bucket(proof: &BucketProof, ca_pem: &str, nonce: Option<&str>, revoked: &[String]) -> Verification {
    let mut problems = Vec::new();
    if proof.format != BUCKET_FORMAT {
        problems.push(format!("format {:?}, not {BUCKET_FORMAT}", proof.format));
    }
    let expected = nonce_of(&proof.nonce, nonce, &mut problems);
    let attested = check_statements(&proof.attestations, ca_pem, &expected, revoked, &mut problems);
    let shards: Vec<ShardVerdict> = proof
        .objects
        .iter()
        .flat_map(|o| check_layout(o, &proof.policy.countries, &attested))
        .collect();
    let ok = problems.is_empty() && shards.iter().all(|s| s.ok);
    Verification { ok, problems, shards }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Whatever a file says, verifying it never panics.
        #[test]
        fn garbage_never_panics(text in ".{0,200}", sig in "[0-9a-f]{0,140}", cert in ".{0,300}") {
            let proof = PlacementProof {
                format: FORMAT.into(),
                bucket: "b".into(),
                key: "k".into(),
                version_id: "v".into(),
                size: 1,
                nonce: "00".into(),
                made_ms: 0,
                policy: ProofPolicy { countries: vec!["FR".into()], failure_domain: "node".into() },
                data_shards: 1,
                parity_shards: 1,
                parts: vec![ProofPart { version: "00".repeat(16), size: 1, shards: vec![] }],
                attestations: vec![Attestation {
                    certificate: cert,
                    statements: vec![SignedStatement { statement: text, signature: sig }],
                }],
                unanswered: vec![],
            };
            let v = verify(&proof, "not a certificate", None, &[]);
            proptest::prop_assert!(!v.ok);
        }
    }

    /// Two nodes (FR, DE) of one CA, a node of another CA, shards on their disks: a proof
    /// built from their real statements, then changed the ways a lying gateway, a replay or
    /// an edit would change it.
    #[tokio::test]
    async fn proofs_hold_only_for_what_the_nodes_signed() {
        use crate::identity::{init_ca, issue, Location};
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        init_ca(&root.join("ca")).unwrap();
        init_ca(&root.join("other-ca")).unwrap();
        let loc = |c: &str| Location {
            country: c.into(),
            site: "s".into(),
            zone: "z".into(),
        };
        let node = |ca: &str, id: &str, c: &str| {
            let serial = issue(&root.join(ca), id, &loc(c), Role::Node, &root.join(id)).unwrap();
            let ident = Identity::load_with_ca(&root.join(id), &root.join(ca)).unwrap();
            let store = LocalShardStore::open(id, &root.join(format!("{id}-shards"))).unwrap();
            (ident, store, serial)
        };
        let (fr, fr_store, fr_serial) = node("ca", "fr-1", "FR");
        let (de, de_store, _) = node("ca", "de-1", "DE");
        let (stranger, stranger_store, _) = node("other-ca", "fr-9", "FR");
        let version = VersionId([7; 16]);
        let shard = |index: u8| ShardId {
            version,
            part: 0,
            stripe: 0,
            index,
        };
        let bytes = [
            bytes::Bytes::from_static(b"shard zero"),
            bytes::Bytes::from_static(b"shard one"),
        ];
        for (i, b) in bytes.iter().enumerate() {
            for store in [&fr_store, &de_store, &stranger_store] {
                store.put(shard(i as u8), b.clone()).await.unwrap();
            }
        }
        let nonce = "c0ffee";
        let ask = |ids: Vec<u8>| AttestRequest {
            nonce: nonce.into(),
            shards: ids.into_iter().map(|i| hex::encode(shard(i).to_bytes())).collect(),
        };
        let layout: Vec<ProofShard> = (0..2u8)
            .map(|i| ProofShard {
                stripe: 0,
                index: i,
                node: String::new(),
                blake3: blake3::hash(&bytes[i as usize]).to_hex().to_string(),
            })
            .collect();
        let proof_of = |attestations: Vec<Attestation>, countries: &[&str]| PlacementProof {
            format: FORMAT.into(),
            bucket: "b".into(),
            key: "k".into(),
            version_id: "null".into(),
            size: 19,
            nonce: nonce.into(),
            made_ms: 0,
            policy: ProofPolicy {
                countries: countries.iter().map(|c| c.to_string()).collect(),
                failure_domain: "node".into(),
            },
            data_shards: 1,
            parity_shards: 1,
            parts: vec![ProofPart {
                version: version.to_hex(),
                size: 19,
                shards: layout.clone(),
            }],
            attestations,
            unanswered: vec![],
        };
        let ca = std::fs::read_to_string(root.join("ca/ca.pem")).unwrap();
        // Shard 0 on fr-1, shard 1 on de-1.
        let a_fr = attest(&fr, &fr_store, &ask(vec![0])).await.unwrap();
        let a_de = attest(&de, &de_store, &ask(vec![1])).await.unwrap();
        let eu = proof_of(vec![a_fr.clone(), a_de.clone()], &["FR", "DE"]);
        let v = verify(&eu, &ca, Some(nonce), &[]);
        assert!(v.ok, "{v:?}");
        // The same statements under an FR-only policy: the DE shard fails, and only it.
        let v = verify(&proof_of(vec![a_fr.clone(), a_de.clone()], &["FR"]), &ca, None, &[]);
        assert!(!v.ok);
        assert!(v.shards[0].ok && !v.shards[1].ok, "{v:?}");
        assert!(v.shards[1].reason.contains("outside the policy"), "{v:?}");
        // One node attesting both shards of a stripe is not two copies.
        let both = attest(&fr, &fr_store, &ask(vec![0, 1])).await.unwrap();
        let v = verify(&proof_of(vec![both], &["FR"]), &ca, None, &[]);
        assert!(!v.shards[1].ok && v.shards[1].reason.contains("two shards"), "{v:?}");
        // A node that lost a shard says so; the gateway cannot say otherwise.
        fr_store.delete(shard(0)).await.unwrap();
        let lost = attest(&fr, &fr_store, &ask(vec![0])).await.unwrap();
        let v = verify(&proof_of(vec![lost, a_de.clone()], &["FR", "DE"]), &ca, None, &[]);
        assert!(!v.shards[0].ok && v.shards[0].reason.contains("does not hold"), "{v:?}");
        // A layout whose BLAKE3 is not what the node read.
        let mut changed = eu.clone();
        changed.parts[0].shards[1].blake3 = blake3::hash(b"other").to_hex().to_string();
        assert!(!verify(&changed, &ca, None, &[]).shards[1].ok);
        // A replay: the auditor's nonce is not the one the statements answer.
        let v = verify(&eu, &ca, Some("0badc0de"), &[]);
        assert!(!v.ok && v.problems.iter().any(|p| p.contains("nonce")), "{v:?}");
        // Edited statements no longer match their signatures.
        let mut edited = eu.clone();
        edited.attestations[1].statements[0].statement = edited.attestations[1].statements[0]
            .statement
            .replace("\"present\":true", "\"present\":true ");
        let v = verify(&edited, &ca, None, &[]);
        assert!(!v.ok && v.problems.iter().any(|p| p.contains("signature")), "{v:?}");
        // A revoked certificate, another CA's node: their statements count for nothing.
        let v = verify(&eu, &ca, None, std::slice::from_ref(&fr_serial));
        assert!(!v.ok && v.problems.iter().any(|p| p.contains("revoked")), "{v:?}");
        let foreign = attest(&stranger, &stranger_store, &ask(vec![0])).await.unwrap();
        let v = verify(&proof_of(vec![foreign, a_de], &["FR", "DE"]), &ca, None, &[]);
        assert!(
            !v.ok && v.problems.iter().any(|p| p.contains("not signed by this CA")),
            "{v:?}"
        );
    }

    #[test]
    fn nonces_are_bounded_hex() {
        assert!(parse_nonce("00ff").is_ok());
        assert!(parse_nonce("").is_err());
        assert!(parse_nonce("zz").is_err());
        assert!(parse_nonce(&"ab".repeat(MAX_NONCE + 1)).is_err());
    }
}
