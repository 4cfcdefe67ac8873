//! SSE-KMS: each tenant's named KMS keys. A key's material (one version per rotation) is
//! kept only wrapped by the tenant's key; a part written under a KMS key has its data key
//! wrapped by the key's current material, and the wrapped form names the key and version.
//! Every use checks the key's state in the metadata first: disabling a key makes what it
//! encrypted unreadable at once, on every gateway; shredding it destroys its material.
//!
//! The hierarchy: provider's master key → tenant key → KMS key material → part data key
//! (docs/keys.md).

use crate::{Engine, EngineError, EngineResult};
use coffre_crypto::{DataKey, KmsKeyMaterial};
use coffre_meta::{IamCommand, KmsChange, KmsKeyRecord, KmsKeyState, KmsKeyVersion, MetaCommand, MetaError};
use coffre_types::now_millis;

/// Why a KMS key cannot be used (S3 answers each with AWS's `KMS.*` code).
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// No key by that id or name in the caller's tenant.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    /// Pending deletion, or deleted.
    #[error("{0}")]
    InvalidState(String),
    /// The key named is another tenant's.
    #[error("{0}")]
    AccessDenied(String),
}

/// A key as an operator or a response sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KmsKeyInfo {
    pub key_id: String,
    pub arn: String,
    pub name: String,
    /// `Enabled`, `Disabled`, `PendingDeletion` or `Deleted`.
    pub state: String,
    pub created_ms: u64,
    /// Versions of its material (1 + rotations); 0 once deleted.
    pub versions: u32,
    /// When a key pending deletion is (or a deleted key was) shredded.
    pub deletion_ms: Option<u64>,
}

/// What an operator does to a key.
#[derive(Clone, Copy, Debug)]
pub enum KmsAction {
    Enable,
    Disable,
    Rotate,
    /// Shredded after this many days (0: at once).
    ScheduleDeletion {
        days: u32,
    },
    CancelDeletion,
}

/// How long a deletion may be scheduled ahead, in days (AWS KMS allows 7 to 30; an operator
/// shredding on demand may say 0).
pub const MAX_PENDING_DAYS: u32 = 30;

/// A key a request named, resolved in the caller's tenant.
#[derive(Clone, Debug)]
pub struct KmsKeyRef {
    pub key_id: String,
    pub arn: String,
    /// The bare name the request used, if it used one (responses echo it).
    pub named: Option<String>,
}

/// The wrapped form of a data key under a KMS key:
/// `MAGIC ∥ id length (1) ∥ key id ∥ version (u32 BE) ∥ material-wrapped data key`.
/// Longer than any master- or tenant-wrapped key, which is how it is told apart.
const MAGIC: &[u8; 4] = b"\xffKMS";

fn kms_wrapped(key_id: &str, version: u32, inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 1 + key_id.len() + 4 + inner.len());
    out.extend_from_slice(MAGIC);
    out.push(key_id.len() as u8);
    out.extend_from_slice(key_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(inner);
    out
}

/// `(key id, version, material-wrapped data key)` of a KMS-wrapped data key.
pub(crate) fn parse_kms_wrapped(w: &[u8]) -> Option<(&str, u32, &[u8])> {
    let rest = w.strip_prefix(MAGIC)?;
    let (&len, rest) = rest.split_first()?;
    let id = std::str::from_utf8(rest.get(..len as usize)?).ok()?;
    let rest = &rest[len as usize..];
    let version = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
    let inner = &rest[4..];
    (inner.len() == coffre_crypto::WRAPPED_LEN && is_key_id(id)).then_some((id, version, inner))
}

/// What a version of a key's material is wrapped with: its tenant, key and version.
fn material_context(tenant: &str, key_id: &str, version: u32) -> Vec<u8> {
    let mut c = b"coffre kms key v1:".to_vec();
    c.extend_from_slice(tenant.as_bytes());
    c.push(0);
    c.extend_from_slice(key_id.as_bytes());
    c.push(0);
    c.extend_from_slice(&version.to_be_bytes());
    c
}

/// A new key id, in AWS KMS's form (a random UUID).
fn new_key_id() -> String {
    let mut b: [u8; 16] = coffre_types::random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn is_key_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit() && !c.is_ascii_uppercase(),
        })
}

/// How a request names a key: by id, by ARN (of a key or an alias), by `alias/NAME`, or (as
/// Ceph RGW's test suite does) by its bare name.
#[derive(Debug, PartialEq)]
enum Named<'a> {
    Id(&'a str),
    Name(&'a str),
    Bare(&'a str),
}

fn parse_reference<'a>(tenant: &str, s: &'a str) -> Result<Named<'a>, KmsError> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("arn:aws:kms:") {
        // arn:aws:kms:REGION:ACCOUNT:key/ID or …:alias/NAME
        let mut f = rest.splitn(3, ':');
        let (_region, account, resource) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if account != tenant {
            return Err(KmsError::AccessDenied(format!(
                "the KMS key {s} is not one of your account's keys"
            )));
        }
        return match (resource.strip_prefix("key/"), resource.strip_prefix("alias/")) {
            (Some(id), _) if is_key_id(id) => Ok(Named::Id(id)),
            (_, Some(name)) if !name.is_empty() => Ok(Named::Name(name)),
            _ => Err(KmsError::NotFound(format!("Invalid keyId {s}"))),
        };
    }
    if let Some(name) = s.strip_prefix("alias/").filter(|n| !n.is_empty()) {
        return Ok(Named::Name(name));
    }
    if is_key_id(s) {
        return Ok(Named::Id(s));
    }
    if s.is_empty() || s.len() > 256 {
        return Err(KmsError::NotFound(format!("Invalid keyId {s}")));
    }
    Ok(Named::Bare(s))
}

/// A key's name: what `alias/NAME` and bare names find.
pub fn check_key_name(name: &str) -> EngineResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !is_key_id(name)
        && !name.starts_with("alias/")
        && !name.starts_with("arn:")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/' | '.'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidRequest(format!(
            "a KMS key name is 1 to 256 of A-Z a-z 0-9 - _ / . and is not a key id, an ARN or alias/…: {name:?}"
        )))
    }
}

fn state_error(rec: &KmsKeyRecord, arn: &str) -> Option<KmsError> {
    match rec.state {
        KmsKeyState::Enabled => None,
        KmsKeyState::Disabled => Some(KmsError::Disabled(format!("{arn} is disabled."))),
        s => Some(KmsError::InvalidState(format!(
            "{arn} is {}: it can no longer be used.",
            match s {
                KmsKeyState::PendingDeletion { .. } => "pending deletion",
                _ => "deleted",
            }
        ))),
    }
}

impl Engine {
    /// A key's ARN: `arn:aws:kms:REGION:TENANT:key/ID` (a tenant is an account).
    pub fn kms_key_arn(&self, tenant: &str, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{tenant}:key/{key_id}", self.config.region)
    }

    fn kms_info(&self, tenant: &str, id: &str, rec: &KmsKeyRecord) -> KmsKeyInfo {
        KmsKeyInfo {
            key_id: id.to_string(),
            arn: self.kms_key_arn(tenant, id),
            name: rec.name.clone(),
            state: rec.state.name().to_string(),
            created_ms: rec.created_ms,
            versions: rec.versions.len() as u32,
            deletion_ms: match rec.state {
                KmsKeyState::PendingDeletion { at_ms } | KmsKeyState::Deleted { at_ms } => Some(at_ms),
                _ => None,
            },
        }
    }

    /// The key a request or an operator names, in `tenant` (whatever its state).
    pub fn resolve_kms_key(&self, tenant: &str, reference: &str) -> EngineResult<(KmsKeyRef, KmsKeyRecord)> {
        let not_found = || {
            EngineError::Kms(KmsError::NotFound(format!(
                "Invalid keyId {reference}: no such key in your account"
            )))
        };
        let named = parse_reference(tenant, reference).map_err(EngineError::Kms)?;
        let (id, bare) = match named {
            Named::Id(id) => (id.to_string(), None),
            Named::Name(n) => (self.meta.kms_key_named(tenant, n)?.ok_or_else(not_found)?, None),
            Named::Bare(n) => (
                self.meta.kms_key_named(tenant, n)?.ok_or_else(not_found)?,
                Some(n.to_string()),
            ),
        };
        let rec = self.meta.get_kms_key(tenant, &id)?.ok_or_else(not_found)?;
        let key = KmsKeyRef {
            arn: self.kms_key_arn(tenant, &id),
            key_id: id,
            named: bare,
        };
        Ok((key, rec))
    }

    /// The key a write names, which must be enabled.
    pub fn kms_key_for_write(&self, tenant: &str, reference: &str) -> EngineResult<KmsKeyRef> {
        let (key, rec) = self.resolve_kms_key(tenant, reference)?;
        match state_error(&rec, &key.arn) {
            Some(e) => Err(EngineError::Kms(e)),
            None => Ok(key),
        }
    }

    /// Whether what `key_id` encrypted can be read now (before a response starts).
    pub fn check_kms_readable(&self, tenant: &str, key_id: &str) -> EngineResult<()> {
        self.usable_kms_key(tenant, key_id).map(drop)
    }

    fn usable_kms_key(&self, tenant: &str, key_id: &str) -> EngineResult<KmsKeyRecord> {
        let arn = self.kms_key_arn(tenant, key_id);
        let rec = self
            .meta
            .get_kms_key(tenant, key_id)?
            .ok_or_else(|| EngineError::Kms(KmsError::NotFound(format!("{arn} does not exist."))))?;
        match state_error(&rec, &arn) {
            Some(e) => Err(EngineError::Kms(e)),
            None => Ok(rec),
        }
    }

    fn kms_material(
        &self,
        tenant: &str,
        key_id: &str,
        rec: &KmsKeyRecord,
        version: u32,
    ) -> EngineResult<KmsKeyMaterial> {
        let v = rec
            .versions
            .get(version as usize)
            .ok_or_else(|| EngineError::Corrupt(format!("KMS key {key_id} has no version {version}")))?;
        self.tenant_key(tenant)?
            .unwrap_key(&v.wrapped, &material_context(tenant, key_id, version))
            .map_err(|e| EngineError::Corrupt(format!("KMS key {key_id} version {version} is unusable: {e}")))
    }

    /// Wraps a new part's data key under the current version of a KMS key (enabled).
    pub(crate) fn kms_wrap(&self, tenant: &str, key_id: &str, dk: &DataKey, context: &[u8]) -> EngineResult<Vec<u8>> {
        let rec = self.usable_kms_key(tenant, key_id)?;
        let version =
            rec.versions
                .len()
                .checked_sub(1)
                .ok_or_else(|| EngineError::Corrupt(format!("KMS key {key_id} has no material")))? as u32;
        let material = self.kms_material(tenant, key_id, &rec, version)?;
        Ok(kms_wrapped(key_id, version, &material.wrap(dk, context)))
    }

    /// Unwraps a data key a KMS key wrapped, if the key is enabled.
    pub(crate) fn kms_unwrap(
        &self,
        tenant: &str,
        wrapped: (&str, u32, &[u8]),
        context: &[u8],
    ) -> EngineResult<DataKey> {
        let (key_id, version, inner) = wrapped;
        let rec = self.usable_kms_key(tenant, key_id)?;
        self.kms_material(tenant, key_id, &rec, version)?
            .unwrap(inner, context)
            .map_err(|e| EngineError::Corrupt(format!("data key unusable: {e}")))
    }

    // ---- management (the admin API) ----

    /// Creates a key in a tenant, enabled, with one version of material.
    pub async fn create_kms_key(&self, tenant: &str, name: &str) -> EngineResult<KmsKeyInfo> {
        check_key_name(name)?;
        let id = new_key_id();
        let material = KmsKeyMaterial::random();
        let wrapped = self
            .tenant_key(tenant)?
            .wrap_key(&material, &material_context(tenant, &id, 0));
        let now = now_millis();
        let record = KmsKeyRecord {
            name: name.to_string(),
            created_ms: now,
            state: KmsKeyState::Enabled,
            versions: vec![KmsKeyVersion {
                created_ms: now,
                wrapped,
            }],
        };
        let info = self.kms_info(tenant, &id, &record);
        self.apply_kms(IamCommand::CreateKmsKey {
            tenant: tenant.to_string(),
            id,
            record,
        })
        .await?;
        Ok(info)
    }

    /// A tenant's keys (deletions whose date has come are carried out first).
    pub async fn list_kms_keys(&self, tenant: &str) -> EngineResult<Vec<KmsKeyInfo>> {
        if self.meta.get_tenant(tenant)?.is_none() {
            return Err(EngineError::Meta(MetaError::NoSuchEntity(format!("tenant '{tenant}'"))));
        }
        self.shred_due_kms_keys(tenant).await?;
        let mut keys: Vec<KmsKeyInfo> = self
            .meta
            .list_kms_keys(tenant)?
            .iter()
            .map(|(id, rec)| self.kms_info(tenant, id, rec))
            .collect();
        keys.sort_by(|a, b| a.name.cmp(&b.name).then(a.created_ms.cmp(&b.created_ms)));
        Ok(keys)
    }

    /// Enables, disables, rotates a key or schedules (or cancels) its deletion.
    pub async fn change_kms_key(&self, tenant: &str, reference: &str, action: KmsAction) -> EngineResult<KmsKeyInfo> {
        let (key, rec) = self.resolve_kms_key(tenant, reference)?;
        let now = now_millis();
        let change = match action {
            KmsAction::Enable => KmsChange::Enable,
            KmsAction::Disable => KmsChange::Disable,
            KmsAction::CancelDeletion => KmsChange::CancelDeletion,
            KmsAction::ScheduleDeletion { days } if days > MAX_PENDING_DAYS => {
                return Err(EngineError::InvalidRequest(format!(
                    "a deletion is scheduled 0 to {MAX_PENDING_DAYS} days ahead"
                )))
            }
            KmsAction::ScheduleDeletion { days } => KmsChange::ScheduleDeletion {
                at_ms: now.saturating_add(u64::from(days) * 86_400_000),
            },
            KmsAction::Rotate => {
                let version = rec.versions.len() as u32;
                let wrapped = self.tenant_key(tenant)?.wrap_key(
                    &KmsKeyMaterial::random(),
                    &material_context(tenant, &key.key_id, version),
                );
                KmsChange::AddVersion(KmsKeyVersion {
                    created_ms: now,
                    wrapped,
                })
            }
        };
        self.apply_kms(IamCommand::ChangeKmsKey {
            tenant: tenant.to_string(),
            id: key.key_id.clone(),
            change,
        })
        .await?;
        if matches!(action, KmsAction::ScheduleDeletion { days: 0 }) {
            self.shred_due_kms_keys(tenant).await?;
        }
        let rec = self
            .meta
            .get_kms_key(tenant, &key.key_id)?
            .ok_or_else(|| EngineError::Kms(KmsError::NotFound(format!("{} does not exist.", key.arn))))?;
        Ok(self.kms_info(tenant, &key.key_id, &rec))
    }

    /// Destroys the material of the tenant's keys whose deletion date has come: what they
    /// encrypted is unreadable for good (crypto-shredding). Called by listings, by a
    /// deletion scheduled for now, and by the lifecycle worker's pass.
    pub async fn shred_due_kms_keys(&self, tenant: &str) -> EngineResult<u32> {
        let now = now_millis();
        let mut shredded = 0;
        for (id, rec) in self.meta.list_kms_keys(tenant)? {
            if matches!(rec.state, KmsKeyState::PendingDeletion { at_ms } if at_ms <= now) {
                let cmd = IamCommand::ChangeKmsKey {
                    tenant: tenant.to_string(),
                    id: id.clone(),
                    change: KmsChange::Shred { now_ms: now },
                };
                // Cancelled meanwhile: the command refuses, and the key stays.
                match self.apply_kms(cmd).await {
                    Ok(()) => {
                        tracing::info!(tenant, key = %id, "KMS key shredded");
                        shredded += 1;
                    }
                    Err(EngineError::Meta(MetaError::InvalidRequest(_))) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(shredded)
    }

    /// Shreds the due keys of every tenant (the lifecycle worker's pass).
    pub async fn shred_due_kms_keys_everywhere(&self) -> EngineResult<u32> {
        let mut n = 0;
        for (tenant, _) in self.meta.list_tenants()? {
            n += self.shred_due_kms_keys(&tenant).await?;
        }
        Ok(n)
    }

    async fn apply_kms(&self, cmd: IamCommand) -> EngineResult<()> {
        match self.meta_apply(MetaCommand::Iam(cmd)).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn references_name_keys_as_aws_and_rgw_do() {
        let id = new_key_id();
        assert!(is_key_id(&id), "{id}");
        assert_eq!(parse_reference("t", &id).unwrap(), Named::Id(&id));
        let arn = format!("arn:aws:kms:fr-par:t:key/{id}");
        assert_eq!(parse_reference("t", &arn).unwrap(), Named::Id(&id));
        assert!(matches!(parse_reference("other", &arn), Err(KmsError::AccessDenied(_))));
        assert_eq!(
            parse_reference("t", "arn:aws:kms:fr-par:t:alias/dossiers").unwrap(),
            Named::Name("dossiers")
        );
        assert_eq!(parse_reference("t", "alias/dossiers").unwrap(), Named::Name("dossiers"));
        assert_eq!(parse_reference("t", "testkey-1").unwrap(), Named::Bare("testkey-1"));
        assert!(parse_reference("t", "").is_err());
        assert!(parse_reference("t", "arn:aws:kms:fr-par:t:key/nope").is_err());
        assert!(check_key_name("testkey-1").is_ok());
        for bad in ["", "alias/x", &id, "arn:aws:kms:x", "a b", "é"] {
            assert!(check_key_name(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        /// The wrapped form is read back exactly, and nothing of a master- or tenant-wrapped
        /// key's length reads as one.
        #[test]
        fn kms_wrapped_roundtrip(version in any::<u32>(), inner in proptest::collection::vec(any::<u8>(), coffre_crypto::WRAPPED_LEN), noise in proptest::collection::vec(any::<u8>(), 0..200)) {
            let id = new_key_id();
            let w = kms_wrapped(&id, version, &inner);
            prop_assert_eq!(parse_kms_wrapped(&w), Some((id.as_str(), version, inner.as_slice())));
            let mut plain = MAGIC.to_vec();
            plain.extend_from_slice(&noise);
            plain.truncate(coffre_crypto::WRAPPED_LEN);
            prop_assert_eq!(parse_kms_wrapped(&plain), None);
            prop_assert_eq!(parse_kms_wrapped(&w[..w.len() - 1]), None);
        }
    }
}
