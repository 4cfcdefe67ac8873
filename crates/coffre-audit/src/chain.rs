//! The records of an audit segment (one JSON object per line) and the hash chain that links them.
//!
//! ```text
//! {"checkpoint":{"gateway":"gw1","n":0,"h":"00…","time":1764730000000},"sig":"…"}
//! {"n":1,"h":"<chain value after entry 1>","t":"<tenant tag>","e":{…the event…}}
//! {"n":2,"h":"…","t":"<tenant tag>","c":"<content hash>"}      (a redacted entry, exports only)
//! ```
//!
//! The chain value after entry `n` is `BLAKE3(h[n-1] ∥ n ∥ tenant tag ∥ BLAKE3(event bytes))`,
//! keyed by a context string. The tenant tag stands for the entry's tenant, so that an export
//! for one tenant can replace the other tenants' entries by their tags and content hashes and
//! still be verified, and the verifier can check that no entry of the exported tenant was
//! redacted. It is a BLAKE3 keyed by the gateway's secret *tag key*
//! (`keyed_tenant_tag`), written in the entry's line: whoever holds an export cannot test a
//! guessed tenant name against another tenant's tags. (Lines written before tags were keyed
//! carry no `t`: their tag is the unkeyed `tenant_tag` of the event's tenant.) A checkpoint
//! signs `(gateway, n, h, time)` with the gateway's Ed25519 audit key; an export's header
//! carries its tenant's tag, signed by the same key.

use serde::{Deserialize, Serialize};

pub type Hash = [u8; 32];

/// The chain value before the first entry.
pub const GENESIS: Hash = [0; 32];

const CHAIN_CONTEXT: &str = "coffre audit chain v1";
const TENANT_CONTEXT: &str = "coffre audit tenant v1";
const CONTENT_CONTEXT: &str = "coffre audit content v1";
const CHECKPOINT_DOMAIN: &[u8] = b"coffre audit checkpoint v1\0";
const TENANT_TAG_DOMAIN: &[u8] = b"coffre audit tenant tag v2\0";

/// The unkeyed tag of a tenant ("" for the operator, the system and the unauthenticated):
/// what lines written before tags were keyed stand for.
pub fn tenant_tag(tenant: &str) -> Hash {
    blake3::derive_key(TENANT_CONTEXT, tenant.as_bytes())
}

/// The tag of a tenant under a gateway's tag key.
pub fn keyed_tenant_tag(key: &Hash, tenant: &str) -> Hash {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(TENANT_TAG_DOMAIN);
    h.update(tenant.as_bytes());
    *h.finalize().as_bytes()
}

/// The bytes of an export header's signed statement: on `gateway`, `tenant`'s tag is `tag`.
pub fn tenant_tag_statement(gateway: &str, tenant: &str, tag: &Hash) -> Vec<u8> {
    let mut m = Vec::with_capacity(TENANT_TAG_DOMAIN.len() + gateway.len() + tenant.len() + 34);
    m.extend_from_slice(TENANT_TAG_DOMAIN);
    m.extend_from_slice(gateway.as_bytes());
    m.push(0);
    m.extend_from_slice(tenant.as_bytes());
    m.push(0);
    m.extend_from_slice(tag);
    m
}

/// The hash of an event's bytes, as written in the line.
pub fn content_hash(event_json: &[u8]) -> Hash {
    blake3::derive_key(CONTENT_CONTEXT, event_json)
}

/// The chain value after entry `n`.
pub fn link(prev: &Hash, n: u64, tenant_tag: &Hash, content: &Hash) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(CHAIN_CONTEXT);
    h.update(prev);
    h.update(&n.to_le_bytes());
    h.update(tenant_tag);
    h.update(content);
    *h.finalize().as_bytes()
}

/// A signed statement of the chain: after entry `n`, the chain value is `h`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub gateway: String,
    pub n: u64,
    #[serde(with = "hex_hash")]
    pub h: Hash,
    /// Milliseconds since the epoch.
    pub time: u64,
}

impl Checkpoint {
    /// The bytes the signature covers (not the JSON: no canonical form to agree on).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(CHECKPOINT_DOMAIN.len() + self.gateway.len() + 1 + 8 + 32 + 8);
        m.extend_from_slice(CHECKPOINT_DOMAIN);
        m.extend_from_slice(self.gateway.as_bytes());
        m.push(0);
        m.extend_from_slice(&self.n.to_le_bytes());
        m.extend_from_slice(&self.h);
        m.extend_from_slice(&self.time.to_le_bytes());
        m
    }
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    checkpoint: Checkpoint,
    sig: String,
}

#[derive(Serialize, Deserialize)]
struct RedactedLine {
    n: u64,
    #[serde(with = "hex_hash")]
    h: Hash,
    #[serde(with = "hex_hash")]
    t: Hash,
    #[serde(with = "hex_hash")]
    c: Hash,
}

/// One line of a segment or of an export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An entry in full: its number, its chain value, its tenant tag (none in lines written
    /// before tags were keyed) and its event's JSON bytes.
    Entry {
        n: u64,
        h: Hash,
        tag: Option<Hash>,
        event: Vec<u8>,
    },
    /// An entry of another tenant in an export: its tenant tag and content hash only.
    Redacted {
        n: u64,
        h: Hash,
        tenant: Hash,
        content: Hash,
    },
    Checkpoint {
        checkpoint: Checkpoint,
        sig: Vec<u8>,
    },
    /// An export's first line: who exported what (not covered by the chain).
    Header(serde_json::Value),
}

impl Record {
    /// The line, without its newline.
    pub fn render(&self) -> String {
        match self {
            // A fixed prefix, so that the event's bytes are found again exactly.
            Record::Entry { n, h, tag, event } => {
                let tag = tag
                    .map(|t| format!("\"t\":\"{}\",", hex::encode(t)))
                    .unwrap_or_default();
                format!(
                    "{{\"n\":{n},\"h\":\"{}\",{tag}\"e\":{}}}",
                    hex::encode(h),
                    String::from_utf8_lossy(event)
                )
            }
            Record::Redacted { n, h, tenant, content } => serde_json::to_string(&RedactedLine {
                n: *n,
                h: *h,
                t: *tenant,
                c: *content,
            })
            .unwrap_or_default(),
            Record::Checkpoint { checkpoint, sig } => serde_json::to_string(&CheckpointLine {
                checkpoint: checkpoint.clone(),
                sig: hex::encode(sig),
            })
            .unwrap_or_default(),
            Record::Header(v) => serde_json::to_string(&serde_json::json!({ "export": v })).unwrap_or_default(),
        }
    }

    /// Parses a line (without its newline).
    pub fn parse(line: &[u8]) -> Result<Record, String> {
        if let Some(rest) = line.strip_prefix(b"{\"n\":") {
            if let Some((n, h, tag, event)) = split_entry(rest) {
                // The event must be a JSON object of its own.
                serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(event)
                    .map_err(|e| format!("the event is not a JSON object: {e}"))?;
                return Ok(Record::Entry {
                    n,
                    h,
                    tag,
                    event: event.to_vec(),
                });
            }
            let r: RedactedLine = serde_json::from_slice(line).map_err(|e| format!("not an audit entry: {e}"))?;
            return Ok(Record::Redacted {
                n: r.n,
                h: r.h,
                tenant: r.t,
                content: r.c,
            });
        }
        if line.starts_with(b"{\"checkpoint\":") {
            let c: CheckpointLine = serde_json::from_slice(line).map_err(|e| format!("not a checkpoint: {e}"))?;
            let sig = hex::decode(&c.sig).map_err(|_| "a checkpoint's signature is not hex".to_string())?;
            return Ok(Record::Checkpoint {
                checkpoint: c.checkpoint,
                sig,
            });
        }
        if line.starts_with(b"{\"export\":") {
            let mut v: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(line).map_err(|e| format!("not an export header: {e}"))?;
            return Ok(Record::Header(v.remove("export").unwrap_or_default()));
        }
        Err("not an audit record".into())
    }

    /// The entry number of an entry (full or redacted).
    pub fn entry_number(&self) -> Option<u64> {
        match self {
            Record::Entry { n, .. } | Record::Redacted { n, .. } => Some(*n),
            _ => None,
        }
    }
}

/// `<digits>,"h":"<64 hex>",["t":"<64 hex>",]"e":<event>}` → (n, h, tag, event).
fn split_entry(rest: &[u8]) -> Option<(u64, Hash, Option<Hash>, &[u8])> {
    let comma = rest.iter().position(|&b| b == b',')?;
    let digits = &rest[..comma];
    if digits.is_empty() || digits.len() > 20 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    let rest = rest[comma..].strip_prefix(b",\"h\":\"")?;
    let (hex_h, rest) = (rest.get(..64)?, rest.get(64..)?);
    let mut h = [0u8; 32];
    hex::decode_to_slice(hex_h, &mut h).ok()?;
    let (tag, rest) = match rest.strip_prefix(b"\",\"t\":\"") {
        Some(rest) => {
            let (hex_t, rest) = (rest.get(..64)?, rest.get(64..)?);
            let mut t = [0u8; 32];
            hex::decode_to_slice(hex_t, &mut t).ok()?;
            (Some(t), rest)
        }
        None => (None, rest),
    };
    let event = rest.strip_prefix(b"\",\"e\":")?.strip_suffix(b"}")?;
    Some((n, h, tag, event))
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(s.as_bytes(), &mut h).map_err(serde::de::Error::custom)?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_parse_back(n in any::<u64>(), h in any::<[u8; 32]>(), t in any::<[u8; 32]>(),
                              text in ".{0,40}", time in any::<u64>(), sig in proptest::collection::vec(any::<u8>(), 0..70)) {
            let event = serde_json::to_vec(&serde_json::json!({ "key": text })).unwrap();
            for r in [
                Record::Entry { n, h, tag: None, event: event.clone() },
                Record::Entry { n, h, tag: Some(t), event: event.clone() },
                Record::Redacted { n, h, tenant: t, content: h },
                Record::Checkpoint { checkpoint: Checkpoint { gateway: text.clone(), n, h, time }, sig: sig.clone() },
            ] {
                prop_assert_eq!(Record::parse(r.render().as_bytes()).unwrap(), r);
            }
        }

        #[test]
        fn garbage_never_panics(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Record::parse(&line);
            let mut l = b"{\"n\":".to_vec();
            l.extend_from_slice(&line);
            let _ = Record::parse(&l);
        }
    }

    #[test]
    fn keyed_tags_depend_on_the_key_and_the_tenant() {
        let (k1, k2) = ([1; 32], [2; 32]);
        assert_ne!(keyed_tenant_tag(&k1, "a"), keyed_tenant_tag(&k2, "a"));
        assert_ne!(keyed_tenant_tag(&k1, "a"), keyed_tenant_tag(&k1, "b"));
        assert_ne!(keyed_tenant_tag(&k1, "a"), tenant_tag("a"));
        assert_eq!(keyed_tenant_tag(&k1, "a"), keyed_tenant_tag(&k1, "a"));
    }

    #[test]
    fn link_depends_on_every_input() {
        let base = link(&GENESIS, 1, &tenant_tag("a"), &content_hash(b"{}"));
        assert_ne!(base, link(&[1; 32], 1, &tenant_tag("a"), &content_hash(b"{}")));
        assert_ne!(base, link(&GENESIS, 2, &tenant_tag("a"), &content_hash(b"{}")));
        assert_ne!(base, link(&GENESIS, 1, &tenant_tag("b"), &content_hash(b"{}")));
        assert_ne!(base, link(&GENESIS, 1, &tenant_tag("a"), &content_hash(b"{ }")));
    }
}
