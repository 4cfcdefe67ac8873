//! A tenant's KMS keys (SSE-KMS): named keys whose material (versions of it, wrapped by the
//! tenant's key) wraps the data keys of the objects written under them. The records live in
//! `iam` (`keys::kms_key`); changes are `IamCommand`s applied under the IAM lock, each
//! checking here the state it relies on.

use crate::records::{decode, encode};
use crate::{keys, MetaError, MetaStore};
use rocksdb::{Direction, IteratorMode, WriteBatch};
use serde::{Deserialize, Serialize};

/// A KMS key's state, as AWS KMS names them. Only an `Enabled` key encrypts or decrypts.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum KmsKeyState {
    Enabled,
    Disabled,
    /// Unusable; its material is destroyed at `at_ms` unless the deletion is cancelled.
    PendingDeletion {
        at_ms: u64,
    },
    /// Its material is gone: what it encrypted is unreadable for good.
    Deleted {
        at_ms: u64,
    },
}

impl KmsKeyState {
    /// The name AWS KMS gives the state.
    pub fn name(&self) -> &'static str {
        match self {
            KmsKeyState::Enabled => "Enabled",
            KmsKeyState::Disabled => "Disabled",
            KmsKeyState::PendingDeletion { .. } => "PendingDeletion",
            KmsKeyState::Deleted { .. } => "Deleted",
        }
    }
}

/// One version of a key's material, wrapped by the tenant's key (bound to the key's id and
/// the version's number).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KmsKeyVersion {
    pub created_ms: u64,
    pub wrapped: Vec<u8>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KmsKeyRecord {
    pub name: String,
    pub created_ms: u64,
    pub state: KmsKeyState,
    /// Oldest first: the last one encrypts; every one decrypts what it encrypted.
    pub versions: Vec<KmsKeyVersion>,
}

/// What a `ChangeKmsKey` does.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum KmsChange {
    Enable,
    Disable,
    ScheduleDeletion {
        at_ms: u64,
    },
    /// Back to `Disabled`, as AWS KMS does: enabling is a decision of its own.
    CancelDeletion,
    /// A new version of the material (a rotation): new writes use it.
    AddVersion(KmsKeyVersion),
    /// Destroys the material of a key whose deletion date has come.
    Shred {
        now_ms: u64,
    },
}

impl MetaStore {
    pub fn get_kms_key(&self, tenant: &str, id: &str) -> Result<Option<KmsKeyRecord>, MetaError> {
        self.get(keys::CF_IAM, &keys::kms_key(tenant, id))
    }

    /// A tenant's KMS keys, by id.
    pub fn list_kms_keys(&self, tenant: &str) -> Result<Vec<(String, KmsKeyRecord)>, MetaError> {
        let prefix = keys::kms_keys_of(tenant);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_IAM), IteratorMode::From(&prefix, Direction::Forward))
        {
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            out.push((String::from_utf8_lossy(keys::last_field(&k)).into_owned(), decode(&v)?));
        }
        Ok(out)
    }

    /// The id of the tenant's key named `name` (deleted keys give up their names).
    pub fn kms_key_named(&self, tenant: &str, name: &str) -> Result<Option<String>, MetaError> {
        Ok(self
            .list_kms_keys(tenant)?
            .into_iter()
            .find(|(_, k)| k.name == name && !matches!(k.state, KmsKeyState::Deleted { .. }))
            .map(|(id, _)| id))
    }

    pub(crate) fn create_kms_key(
        &self,
        b: &mut WriteBatch,
        tenant: &str,
        id: &str,
        record: &KmsKeyRecord,
    ) -> Result<(), MetaError> {
        if self.get_kms_key(tenant, id)?.is_some() || self.kms_key_named(tenant, &record.name)?.is_some() {
            return Err(MetaError::EntityExists(format!("KMS key '{}'", record.name)));
        }
        b.put_cf(self.cf(keys::CF_IAM), keys::kms_key(tenant, id), encode(record));
        Ok(())
    }

    pub(crate) fn change_kms_key(
        &self,
        b: &mut WriteBatch,
        tenant: &str,
        id: &str,
        change: KmsChange,
    ) -> Result<(), MetaError> {
        let mut rec = self
            .get_kms_key(tenant, id)?
            .ok_or_else(|| MetaError::NoSuchEntity(format!("KMS key '{id}'")))?;
        rec.state = next_state(&rec, &change)?;
        match change {
            KmsChange::AddVersion(v) => rec.versions.push(v),
            KmsChange::Shred { .. } => rec.versions.clear(),
            _ => {}
        }
        b.put_cf(self.cf(keys::CF_IAM), keys::kms_key(tenant, id), encode(&rec));
        Ok(())
    }
}

/// The state a change leaves a key in, or why the change is refused in its current state.
fn next_state(rec: &KmsKeyRecord, change: &KmsChange) -> Result<KmsKeyState, MetaError> {
    use KmsChange as C;
    use KmsKeyState as S;
    let refused = || {
        MetaError::InvalidRequest(format!(
            "KMS key '{}' is {}: it cannot be changed that way",
            rec.name,
            rec.state.name()
        ))
    };
    match (rec.state, change) {
        (S::Enabled | S::Disabled, C::Enable) => Ok(S::Enabled),
        (S::Enabled | S::Disabled, C::Disable) => Ok(S::Disabled),
        (S::Enabled | S::Disabled, C::ScheduleDeletion { at_ms }) => Ok(S::PendingDeletion { at_ms: *at_ms }),
        (S::PendingDeletion { .. }, C::CancelDeletion) => Ok(S::Disabled),
        (s @ (S::Enabled | S::Disabled), C::AddVersion(_)) => Ok(s),
        (S::PendingDeletion { at_ms }, C::Shred { now_ms }) if at_ms <= *now_ms => Ok(S::Deleted { at_ms: *now_ms }),
        _ => Err(refused()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(state: KmsKeyState) -> KmsKeyRecord {
        KmsKeyRecord {
            name: "k".into(),
            created_ms: 1,
            state,
            versions: vec![],
        }
    }

    #[test]
    fn states_move_as_aws_kms_allows() {
        use KmsChange as C;
        use KmsKeyState as S;
        let v = KmsKeyVersion {
            created_ms: 2,
            wrapped: vec![1],
        };
        assert_eq!(next_state(&key(S::Enabled), &C::Disable).unwrap(), S::Disabled);
        assert_eq!(next_state(&key(S::Disabled), &C::Enable).unwrap(), S::Enabled);
        assert_eq!(
            next_state(&key(S::Enabled), &C::ScheduleDeletion { at_ms: 9 }).unwrap(),
            S::PendingDeletion { at_ms: 9 }
        );
        let pending = key(S::PendingDeletion { at_ms: 9 });
        // A key pending deletion is neither enabled nor rotated: cancel first.
        assert!(next_state(&pending, &C::Enable).is_err());
        assert!(next_state(&pending, &C::AddVersion(v.clone())).is_err());
        assert_eq!(next_state(&pending, &C::CancelDeletion).unwrap(), S::Disabled);
        // Shredding waits for its date.
        assert!(next_state(&pending, &C::Shred { now_ms: 8 }).is_err());
        assert_eq!(
            next_state(&pending, &C::Shred { now_ms: 10 }).unwrap(),
            S::Deleted { at_ms: 10 }
        );
        assert!(next_state(&key(S::Enabled), &C::Shred { now_ms: 10 }).is_err());
        // Deleted is for good.
        let deleted = key(S::Deleted { at_ms: 10 });
        for c in [C::Enable, C::Disable, C::CancelDeletion, C::AddVersion(v)] {
            assert!(next_state(&deleted, &c).is_err());
        }
    }
}
