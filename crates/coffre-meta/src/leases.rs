//! Read leases: a reader of object data holds a lease on the versions it reads; the GC skips
//! an entry while any of its versions is leased. Leases are taken under the key lock (see
//! `MetaStore::open_object`), so every lease on a version predates the GC entry the version
//! gets when it is replaced or deleted: a GC pass that finds no lease can never be raced by a
//! new one.

use coffre_types::VersionId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default, Clone)]
pub(crate) struct Leases(Arc<Mutex<HashMap<VersionId, usize>>>);

impl Leases {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<VersionId, usize>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn take(&self, versions: Vec<VersionId>) -> ReadLease {
        let mut m = self.map();
        for v in &versions {
            *m.entry(*v).or_insert(0) += 1;
        }
        ReadLease {
            leases: self.clone(),
            versions,
        }
    }

    pub(crate) fn any(&self, versions: &[VersionId]) -> bool {
        let m = self.map();
        versions.iter().any(|v| m.contains_key(v))
    }
}

/// Keeps the versions it names from the GC until dropped.
pub struct ReadLease {
    leases: Leases,
    versions: Vec<VersionId>,
}

impl Drop for ReadLease {
    fn drop(&mut self) {
        let mut m = self.leases.map();
        for v in &self.versions {
            if let Some(n) = m.get_mut(v) {
                *n -= 1;
                if *n == 0 {
                    m.remove(v);
                }
            }
        }
    }
}
