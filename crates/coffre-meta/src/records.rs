//! Record values. Each is encoded as `format version (1 byte) ∥ postcard`, so the format can
//! evolve: a reader matches on the leading byte.

use coffre_types::{Scheme, VersionId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

mod config;
pub use config::{
    BucketConfigKind, CorsConfig, CorsRule, DefaultRetention, EncryptionConfig, LifecycleConfig, LifecycleExpiration,
    LifecycleFilter, LifecycleRule, NoncurrentExpiration, OwnershipConfig, VersioningConfig, VersioningStatus,
};

const FORMAT_V1: u8 = 1;

pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_V1];
    out.extend_from_slice(&postcard::to_stdvec(v).expect("records always serialize"));
    out
}

pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, crate::MetaError> {
    match b.split_first() {
        Some((&FORMAT_V1, rest)) => postcard::from_bytes(rest).map_err(|e| crate::MetaError::Corrupt(e.to_string())),
        Some((v, _)) => Err(crate::MetaError::Corrupt(format!("unknown record format {v}"))),
        None => Err(crate::MetaError::Corrupt("empty record".into())),
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BucketRecord {
    pub created_ms: u64,
    pub region: String,
    /// Residency policy: where the bucket's shards may be (ISO 3166-1 alpha-2 codes)…
    pub countries: Vec<String>,
    /// …spread over which failure domain (node, zone or site)…
    pub failure_domain: String,
    /// …with which erasure scheme.
    pub scheme: Scheme,
    /// The tenant that owns the bucket (its data keys are wrapped by the tenant's key).
    pub tenant: String,
}

/// The tenant of buckets written before tenants existed.
pub const DEFAULT_TENANT: &str = "default";
/// The name of a tenant's admin user.
pub const ADMIN_USER: &str = "admin";

/// A bucket record as the first format wrote it, before tenants.
#[derive(Deserialize)]
struct BucketRecordV1 {
    created_ms: u64,
    region: String,
    countries: Vec<String>,
    failure_domain: String,
    scheme: Scheme,
}

const FORMAT_V2: u8 = 2;

impl BucketRecord {
    /// `FORMAT_V2 ∥ postcard`: the record gained its tenant.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V2];
        out.extend_from_slice(&postcard::to_stdvec(self).expect("records always serialize"));
        out
    }

    /// Reads either format; a first-format bucket belongs to the `default` tenant.
    pub fn decode(b: &[u8]) -> Result<BucketRecord, crate::MetaError> {
        let bad = |e: postcard::Error| crate::MetaError::Corrupt(format!("bucket record: {e}"));
        match b.split_first() {
            Some((&FORMAT_V2, rest)) => postcard::from_bytes(rest).map_err(bad),
            Some((&FORMAT_V1, rest)) => {
                let v1: BucketRecordV1 = postcard::from_bytes(rest).map_err(bad)?;
                Ok(BucketRecord {
                    created_ms: v1.created_ms,
                    region: v1.region,
                    countries: v1.countries,
                    failure_domain: v1.failure_domain,
                    scheme: v1.scheme,
                    tenant: DEFAULT_TENANT.to_string(),
                })
            }
            Some((v, _)) => Err(crate::MetaError::Corrupt(format!("unknown bucket record format {v}"))),
            None => Err(crate::MetaError::Corrupt("empty bucket record".into())),
        }
    }
}

/// A tenant (an account): it owns buckets, users and a key-encryption key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TenantRecord {
    pub created_ms: u64,
    /// The tenant's key-encryption key, wrapped by the master key. Removing it (erasure)
    /// makes every data key it wrapped, and so the tenant's data, unreadable.
    pub kek: Vec<u8>,
    pub quota: Quota,
    /// The OpenID Connect issuer whose tokens `AssumeRoleWithWebIdentity` accepts.
    pub oidc: Option<OidcConfig>,
}

/// Limits on what a tenant or a bucket holds; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Quota {
    pub bytes: Option<u64>,
    pub objects: Option<u64>,
}

impl Quota {
    pub fn is_unlimited(&self) -> bool {
        self.bytes.is_none() && self.objects.is_none()
    }
}

/// A tenant's identity provider for web identity federation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OidcConfig {
    /// `iss` of accepted tokens, exactly.
    pub issuer: String,
    /// What `aud` must contain (the client id registered at the issuer).
    pub audience: String,
    /// The issuer's public keys (a JWKS document), when configured inline.
    pub jwks: Option<String>,
    /// Where to fetch the JWKS from, when not inline (the only outbound call Coffre makes,
    /// and only when the operator configures it).
    pub jwks_url: Option<String>,
}

/// A user of a tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserRecord {
    /// Stable id (`AIDA…`), what `aws:userid` is.
    pub id: String,
    pub created_ms: u64,
    /// The tenant's admin user: full rights on the tenant's buckets and users.
    pub admin: bool,
    /// Inline identity policies: (name, JSON document), validated when put.
    pub policies: Vec<(String, String)>,
}

/// An access key: the secret sealed under the master key, never in clear.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessKeyRecord {
    pub tenant: String,
    pub user: String,
    pub secret: Vec<u8>,
    pub created_ms: u64,
    pub enabled: bool,
    pub expires_ms: Option<u64>,
}

/// A role that web identities of the tenant's issuer may assume.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoleRecord {
    /// Stable id (`AROA…`).
    pub id: String,
    pub created_ms: u64,
    /// The permissions of its sessions (JSON identity policy).
    pub policy: String,
    /// Claims the token must carry: (claim name, value pattern with `*`); all must match.
    pub claims: Vec<(String, String)>,
    pub max_session_secs: u32,
}

/// One stored part: a plain PUT is one part, a multipart upload one per part. Each part has its
/// own version id (its shards are named after it) and its own data key.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PartInfo {
    pub version: VersionId,
    pub size: u64,
    /// MD5 of the part's bytes, hex.
    pub md5: String,
    /// The data key, wrapped by the master key. Deleting it makes the data unreadable.
    pub wrapped_key: Vec<u8>,
    /// Node id holding shard index `i` of every stripe.
    pub nodes: Vec<String>,
    /// Shard indexes whose store failed during the write: to heal.
    pub degraded: Vec<u8>,
    /// Verified checksum of the part: (algorithm, base64 value).
    pub checksum: Option<(String, String)>,
}

/// What an object version is, as listings and HEAD need it. `sealed` holds the user-supplied
/// headers, metadata, tags and checksums (a `SealedAttrs`), AEAD-encrypted under the metadata key.
/// A delete marker is a record too (no parts, `version_state.delete_marker`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ObjectRecord {
    pub version: VersionId,
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub scheme: Scheme,
    pub packages_per_stripe: u32,
    pub parts: Vec<PartInfo>,
    pub sealed: Vec<u8>,
    /// Where the record stands among its key's versions, and what protects it.
    pub version_state: VersionState,
}

/// An object record as formats before versioning wrote it.
#[derive(Deserialize)]
struct ObjectRecordV1 {
    version: VersionId,
    size: u64,
    etag: String,
    last_modified_ms: u64,
    scheme: Scheme,
    packages_per_stripe: u32,
    parts: Vec<PartInfo>,
    sealed: Vec<u8>,
}

/// An Object Lock retention mode.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum LockMode {
    /// Removable before its date only with `s3:BypassGovernanceRetention` and the bypass header.
    Governance,
    /// Removable by no one before its date; the date can only move later.
    Compliance,
}

impl LockMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LockMode::Governance => "GOVERNANCE",
            LockMode::Compliance => "COMPLIANCE",
        }
    }

    pub fn parse(s: &str) -> Option<LockMode> {
        match s {
            "GOVERNANCE" => Some(LockMode::Governance),
            "COMPLIANCE" => Some(LockMode::Compliance),
            _ => None,
        }
    }
}

/// A version's Object Lock retention: it cannot be deleted or overwritten before `until_ms`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Retention {
    pub mode: LockMode,
    pub until_ms: u64,
}

/// A record's place among its key's versions, and its Object Lock protection.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VersionState {
    /// Order among the key's versions (higher is newer), assigned by the state machine at
    /// commit: strictly above the key's newest, about the commit time in microseconds.
    pub seq: u64,
    /// Whether it has a version id of its own; if not, it is the key's `null` version
    /// (written while versioning was off or suspended, or before it existed).
    pub versioned: bool,
    pub delete_marker: bool,
    pub retention: Option<Retention>,
    pub legal_hold: bool,
}

impl VersionState {
    /// Why the version cannot be deleted now, if it cannot: a legal hold, a COMPLIANCE
    /// retention, or a GOVERNANCE one not bypassed.
    pub fn protection(&self, now_ms: u64, bypass_governance: bool) -> Option<&'static str> {
        if self.legal_hold {
            return Some("The object version is under a legal hold");
        }
        match self.retention {
            Some(r) if r.until_ms > now_ms => match r.mode {
                LockMode::Compliance => {
                    Some("The object version is locked in COMPLIANCE mode until its retain-until date")
                }
                LockMode::Governance if !bypass_governance => {
                    Some("The object version is locked in GOVERNANCE mode until its retain-until date")
                }
                LockMode::Governance => None,
            },
            _ => None,
        }
    }
}

/// A version named by a request's `versionId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionSel {
    /// `null`: the key's version without an id of its own.
    Null,
    /// An id this store gave: the version's `seq` and a tag from its record.
    Id { seq: u64, tag: [u8; 8] },
}

impl VersionSel {
    /// Parses a `versionId`; `None` if it is not one this store could have given.
    pub fn parse(s: &str) -> Option<VersionSel> {
        if s == "null" {
            return Some(VersionSel::Null);
        }
        if s.len() != 32 {
            return None;
        }
        let raw = hex::decode(s).ok()?;
        Some(VersionSel::Id {
            seq: u64::from_be_bytes(raw[..8].try_into().ok()?),
            tag: raw[8..].try_into().ok()?,
        })
    }

    /// Whether `rec` is the version named.
    pub fn matches(&self, rec: &ObjectRecord) -> bool {
        match self {
            VersionSel::Null => !rec.version_state.versioned,
            VersionSel::Id { seq, tag } => {
                rec.version_state.versioned && rec.version_state.seq == *seq && rec.version.0[..8] == tag[..]
            }
        }
    }
}

impl ObjectRecord {
    /// `FORMAT_V2 ∥ postcard`: the record gained its version state.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FORMAT_V2];
        out.extend_from_slice(&postcard::to_stdvec(self).expect("records always serialize"));
        out
    }

    /// Reads either format; a first-format record is a `null` version.
    pub fn decode(b: &[u8]) -> Result<ObjectRecord, crate::MetaError> {
        let bad = |e: postcard::Error| crate::MetaError::Corrupt(format!("object record: {e}"));
        match b.split_first() {
            Some((&FORMAT_V2, rest)) => postcard::from_bytes(rest).map_err(bad),
            Some((&FORMAT_V1, rest)) => {
                let v1: ObjectRecordV1 = postcard::from_bytes(rest).map_err(bad)?;
                Ok(ObjectRecord {
                    version: v1.version,
                    size: v1.size,
                    etag: v1.etag,
                    last_modified_ms: v1.last_modified_ms,
                    scheme: v1.scheme,
                    packages_per_stripe: v1.packages_per_stripe,
                    parts: v1.parts,
                    sealed: v1.sealed,
                    version_state: VersionState::default(),
                })
            }
            Some((v, _)) => Err(crate::MetaError::Corrupt(format!("unknown object record format {v}"))),
            None => Err(crate::MetaError::Corrupt("empty object record".into())),
        }
    }

    /// A delete marker, `seq` and null-ness set by the state machine.
    pub fn delete_marker(tag: VersionId, now_ms: u64) -> ObjectRecord {
        ObjectRecord {
            version: tag,
            size: 0,
            etag: String::new(),
            last_modified_ms: now_ms,
            scheme: coffre_types::Scheme::DEFAULT,
            packages_per_stripe: 0,
            parts: Vec::new(),
            sealed: Vec::new(),
            version_state: VersionState {
                delete_marker: true,
                ..VersionState::default()
            },
        }
    }

    /// The S3 `versionId` of this version: `null`, or 32 hex digits (`seq` and a tag).
    pub fn version_id(&self) -> String {
        if !self.version_state.versioned {
            return "null".to_string();
        }
        let mut raw = self.version_state.seq.to_be_bytes().to_vec();
        raw.extend_from_slice(&self.version.0[..8]);
        hex::encode(raw)
    }

    pub fn is_delete_marker(&self) -> bool {
        self.version_state.delete_marker
    }

    /// Whether some part has shards a write could not store (to heal).
    pub fn is_degraded(&self) -> bool {
        self.parts.iter().any(|p| !p.degraded.is_empty())
    }

    /// Shards to collect once this version is gone.
    pub fn gc_record(&self) -> GcRecord {
        GcRecord {
            parts: self
                .parts
                .iter()
                .map(|p| GcPart::of(p, self.packages_per_stripe))
                .collect(),
        }
    }
}

/// User-supplied attributes of an object, stored only sealed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SealedAttrs {
    /// Content-Type, Content-Encoding, Cache-Control… as (lower-case name, value).
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` (name without the prefix, value).
    pub user_meta: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// `x-amz-checksum-*` (algorithm, base64 value, type FULL_OBJECT or COMPOSITE).
    pub checksums: Vec<(String, String)>,
    /// SSE-C: the salted MAC that recognises the customer's key (never the key). Encoded
    /// after the fields above (`SealedExt`), so attributes sealed before it still open.
    #[serde(skip)]
    pub sse_c: Option<Vec<u8>>,
    /// Object Lock asked for by a CreateMultipartUpload, given to the object its Complete
    /// makes: (retention, legal hold). Encoded after `SealedExt` (`SealedExt2`).
    #[serde(skip)]
    pub lock: Option<(Option<Retention>, bool)>,
    /// SSE-KMS: the tenant's KMS key whose material wraps the data keys (`SealedExt3`).
    #[serde(skip)]
    pub kms: Option<KmsAttrs>,
}

/// An SSE-KMS object's key, as its responses name it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct KmsAttrs {
    pub key_id: String,
    /// The name the writer gave instead of an id or ARN (responses echo it, as Ceph RGW does;
    /// otherwise they give the key's ARN, as AWS does).
    pub named: Option<String>,
    /// `x-amz-server-side-encryption-context` as given (base64 of a JSON object).
    pub context: Option<String>,
    pub bucket_key: bool,
}

/// Fields of `SealedAttrs` added since its first format, encoded after it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SealedExt {
    pub sse_c: Option<Vec<u8>>,
}

/// Fields added after `SealedExt`, encoded after it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SealedExt2 {
    pub lock: Option<(Option<Retention>, bool)>,
}

/// Fields added after `SealedExt2`, encoded after it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SealedExt3 {
    pub kms: Option<KmsAttrs>,
}

impl SealedAttrs {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = postcard::to_stdvec(self).expect("attributes always serialize");
        let ext = SealedExt {
            sse_c: self.sse_c.clone(),
        };
        let ext2 = SealedExt2 { lock: self.lock };
        let ext3 = SealedExt3 { kms: self.kms.clone() };
        let (has2, has3) = (ext2 != SealedExt2::default(), ext3 != SealedExt3::default());
        if ext != SealedExt::default() || has2 || has3 {
            out.extend(postcard::to_stdvec(&ext).expect("attributes always serialize"));
        }
        if has2 || has3 {
            out.extend(postcard::to_stdvec(&ext2).expect("attributes always serialize"));
        }
        if has3 {
            out.extend(postcard::to_stdvec(&ext3).expect("attributes always serialize"));
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<SealedAttrs, crate::MetaError> {
        let bad = |e: postcard::Error| crate::MetaError::Corrupt(format!("object attributes: {e}"));
        let (mut a, rest): (SealedAttrs, _) = postcard::take_from_bytes(b).map_err(bad)?;
        if !rest.is_empty() {
            let (ext, rest): (SealedExt, _) = postcard::take_from_bytes(rest).map_err(bad)?;
            a.sse_c = ext.sse_c;
            if !rest.is_empty() {
                let (ext2, rest): (SealedExt2, _) = postcard::take_from_bytes(rest).map_err(bad)?;
                a.lock = ext2.lock;
                if !rest.is_empty() {
                    let ext3: SealedExt3 = postcard::from_bytes(rest).map_err(bad)?;
                    a.kms = ext3.kms;
                }
            }
        }
        Ok(a)
    }
}

/// BLAKE3 of every shard of one part, stripe after stripe, shard index after shard index.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LayoutRecord {
    pub hashes: Vec<[u8; 32]>,
}

/// The object a part's layout belongs to, kept after the layout in its value (a trailing
/// extension: layouts written before have none, and read unchanged), so that a shard found
/// corrupt on a node (the scrub knows only its id) leads to the object to repair.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayoutOwner {
    pub bucket: String,
    pub key: Vec<u8>,
}

impl LayoutOwner {
    /// A shards layout's value: `encode(layout) ∥ postcard(owner)`.
    pub fn layout_value(layout: &LayoutRecord, bucket: &str, key: &[u8]) -> Vec<u8> {
        let mut out = encode(layout);
        let owner = LayoutOwner {
            bucket: bucket.to_string(),
            key: key.to_vec(),
        };
        out.extend_from_slice(&postcard::to_stdvec(&owner).expect("records always serialize"));
        out
    }

    /// The owner a layout's value names, if it names one (not an inlined part's).
    pub fn of_value(b: &[u8]) -> Option<LayoutOwner> {
        match b.split_first() {
            Some((&FORMAT_V1, rest)) => {
                let (_, after) = postcard::take_from_bytes::<LayoutRecord>(rest).ok()?;
                postcard::from_bytes(after).ok()
            }
            _ => None,
        }
    }
}

/// What the `layouts` column family holds for a part: where its shards are, or — for a small
/// object inlined in its metadata — its sealed AEAD packages themselves (no shard written).
#[derive(Clone, Debug, PartialEq)]
pub enum PartData {
    Shards(LayoutRecord),
    Inline(Vec<u8>),
}

/// The format byte of an inlined part: `FORMAT_INLINE ∥ packages`, the bytes as sealed.
const FORMAT_INLINE: u8 = 0x49;

impl PartData {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            PartData::Shards(l) => encode(l),
            PartData::Inline(packages) => {
                let mut out = Vec::with_capacity(1 + packages.len());
                out.push(FORMAT_INLINE);
                out.extend_from_slice(packages);
                out
            }
        }
    }

    pub fn decode(b: &[u8]) -> Result<PartData, crate::MetaError> {
        match b.split_first() {
            Some((&FORMAT_INLINE, packages)) => Ok(PartData::Inline(packages.to_vec())),
            _ => decode(b).map(PartData::Shards),
        }
    }
}

/// A write in progress: if it never commits, its shards are orphans for the GC.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct IntentRecord {
    pub started_ms: u64,
    pub nodes: Vec<String>,
}

/// Shards of one part to remove. `stripes == None`: unknown extent (an interrupted write),
/// found by listing the stores.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GcPart {
    pub version: VersionId,
    pub nodes: Vec<String>,
    pub stripes: Option<u32>,
}

impl GcPart {
    pub fn of(p: &PartInfo, packages_per_stripe: u32) -> GcPart {
        let sp = packages_per_stripe as u64 * coffre_crypto::PACKAGE_SIZE as u64;
        GcPart {
            version: p.version,
            nodes: p.nodes.clone(),
            stripes: Some(p.size.div_ceil(sp.max(1)) as u32),
        }
    }
}

/// Shards of deleted or replaced data, queued for removal.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GcRecord {
    pub parts: Vec<GcPart>,
}

/// A multipart upload in progress.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UploadRecord {
    pub created_ms: u64,
    pub scheme: Scheme,
    pub packages_per_stripe: u32,
    /// Attributes given at creation (sealed like an object's).
    pub sealed: Vec<u8>,
    pub checksum_algorithm: Option<String>,
    /// COMPOSITE or FULL_OBJECT.
    pub checksum_type: Option<String>,
    /// Set once completed: (object version, ETag), so that a retried Complete succeeds.
    pub completed: Option<(VersionId, String)>,
}

/// A cluster member as last seen: its id and location come from its CA-signed certificate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    pub id: String,
    pub country: String,
    pub site: String,
    pub zone: String,
    /// A draining node takes no new shards.
    pub draining: bool,
}

/// One uploaded part of a multipart upload.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UploadPartRecord {
    pub info: PartInfo,
    pub last_modified_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_attrs_old_and_new() {
        let mut a = SealedAttrs {
            headers: vec![("content-type".into(), "text/plain".into())],
            ..SealedAttrs::default()
        };
        // Written before the extension existed: plain postcard of the first fields.
        let old = postcard::to_stdvec(&a).unwrap();
        assert_eq!(SealedAttrs::decode(&old).unwrap(), a);
        assert_eq!(a.encode(), old, "no extension, same bytes");
        a.sse_c = Some(vec![7; 48]);
        let with_sse_c = a.encode();
        assert_eq!(SealedAttrs::decode(&with_sse_c).unwrap(), a);
        assert!(SealedAttrs::decode(&a.encode()[..5]).is_err());
        // The second extension follows the first, which is written even when empty.
        a.lock = Some((
            Some(Retention {
                mode: LockMode::Compliance,
                until_ms: 9,
            }),
            true,
        ));
        assert!(a.encode().starts_with(&with_sse_c));
        assert_eq!(SealedAttrs::decode(&a.encode()).unwrap(), a);
        a.sse_c = None;
        assert_eq!(SealedAttrs::decode(&a.encode()).unwrap(), a);
        // The third follows the second; an SSE-KMS object without a lock writes both before it.
        let with_lock = a.encode();
        a.kms = Some(KmsAttrs {
            key_id: "1234".into(),
            named: None,
            context: Some("e30=".into()),
            bucket_key: true,
        });
        assert!(a.encode().starts_with(&with_lock));
        assert_eq!(SealedAttrs::decode(&a.encode()).unwrap(), a);
        a.lock = None;
        assert_eq!(SealedAttrs::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn encryption_configs_written_before_kms_keys_still_read() {
        #[derive(Serialize)]
        struct Before {
            algorithm: String,
            bucket_key_enabled: bool,
        }
        let old = encode(&Before {
            algorithm: "AES256".into(),
            bucket_key_enabled: true,
        });
        let read: EncryptionConfig = decode(&old).unwrap();
        assert_eq!(read.algorithm, "AES256");
        assert!(read.bucket_key_enabled && read.kms_key_id.is_none());
        let new = EncryptionConfig {
            algorithm: "aws:kms".into(),
            bucket_key_enabled: false,
            kms_key_id: Some("alias/dossiers".into()),
        };
        assert_eq!(decode::<EncryptionConfig>(&encode(&new)).unwrap(), new);
        assert!(decode::<EncryptionConfig>(&old[..2]).is_err());
    }

    #[test]
    fn versioned_roundtrip() {
        let u = UserRecord {
            id: "AIDA1".into(),
            created_ms: 5,
            admin: true,
            policies: vec![("p".into(), "{}".into())],
        };
        let e = encode(&u);
        assert_eq!(e[0], FORMAT_V1);
        assert_eq!(decode::<UserRecord>(&e).unwrap(), u);
        let mut bad = e.clone();
        bad[0] = 9;
        assert!(decode::<UserRecord>(&bad).is_err());
        assert!(decode::<UserRecord>(&[]).is_err());
    }

    #[test]
    fn part_data_of_both_kinds() {
        let shards = PartData::Shards(LayoutRecord {
            hashes: vec![[7; 32], [8; 32]],
        });
        // A shard layout is stored as it always was.
        assert_eq!(
            shards.encode(),
            encode(&LayoutRecord {
                hashes: vec![[7; 32], [8; 32]]
            })
        );
        assert_eq!(PartData::decode(&shards.encode()).unwrap(), shards);
        for packages in [vec![], vec![FORMAT_V1, 1, 2], vec![0x49; 100]] {
            let inline = PartData::Inline(packages);
            assert_eq!(PartData::decode(&inline.encode()).unwrap(), inline);
        }
        assert!(PartData::decode(&[]).is_err());
        assert!(PartData::decode(&[9, 0]).is_err());
    }

    proptest::proptest! {
        /// A layout's value with its owner reads as the layout (for readers that know
        /// nothing of owners) and names its owner; one written before names none.
        #[test]
        fn layout_values_name_their_owner(
            hashes in proptest::collection::vec(proptest::array::uniform32(proptest::num::u8::ANY), 0..20),
            bucket in "[a-z0-9.-]{3,63}",
            key in proptest::collection::vec(proptest::num::u8::ANY, 1..300),
        ) {
            let layout = LayoutRecord { hashes };
            let value = LayoutOwner::layout_value(&layout, &bucket, &key);
            proptest::prop_assert_eq!(PartData::decode(&value).unwrap(), PartData::Shards(layout.clone()));
            let owner = LayoutOwner::of_value(&value).unwrap();
            proptest::prop_assert_eq!((owner.bucket.as_str(), owner.key.as_slice()), (bucket.as_str(), key.as_slice()));
            proptest::prop_assert_eq!(LayoutOwner::of_value(&encode(&layout)), None);
            proptest::prop_assert_eq!(LayoutOwner::of_value(&PartData::Inline(value.clone()).encode()), None);
        }
    }

    #[test]
    fn bucket_records_of_both_formats() {
        #[derive(Serialize)]
        struct V1 {
            created_ms: u64,
            region: String,
            countries: Vec<String>,
            failure_domain: String,
            scheme: Scheme,
        }
        let v1 = V1 {
            created_ms: 5,
            region: "fr-par".into(),
            countries: vec!["FR".into()],
            failure_domain: "node".into(),
            scheme: Scheme::DEFAULT,
        };
        // Written by the version before tenants: the default tenant's.
        let old = encode(&v1);
        let b = BucketRecord::decode(&old).unwrap();
        assert_eq!(b.tenant, DEFAULT_TENANT);
        assert_eq!((b.created_ms, b.region.as_str()), (5, "fr-par"));
        let mut b2 = b.clone();
        b2.tenant = "hopital".into();
        let e = b2.encode();
        assert_eq!(e[0], FORMAT_V2);
        assert_eq!(BucketRecord::decode(&e).unwrap(), b2);
        assert!(BucketRecord::decode(&e[..3]).is_err());
        assert!(BucketRecord::decode(&[7, 1]).is_err());
        assert!(BucketRecord::decode(&[]).is_err());
    }
}
