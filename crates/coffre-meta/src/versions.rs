//! Versioning: where a key's versions live, how the state machine makes a version current or
//! removes one, and ListObjectVersions.
//!
//! A key's current object (never a delete marker) is in `objects`, as in an unversioned
//! bucket, so GET and ListObjects read one place whatever the bucket's versioning. Every other
//! version — noncurrent objects and delete markers, the newest included — is in `versions`,
//! newest first, and a noncurrent `null` version is also pointed at from `null_versions`.
//! Invariant: a key's newest version is in `objects` if and only if it is an object.
//! Every function here that writes runs inside a command holding the key's lock.

use crate::records::{ObjectRecord, VersionSel, VersioningConfig};
use crate::{keys, BucketConfigKind, MetaError, MetaStore, ReadLease};
use rocksdb::WriteBatch;

/// One entry of a ListObjectVersions page.
#[derive(Debug)]
pub enum VersionEntry {
    Version {
        key: Vec<u8>,
        record: ObjectRecord,
        is_latest: bool,
    },
    CommonPrefix(Vec<u8>),
}

/// Where a version was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The key's current object (`objects`).
    Current,
    /// A noncurrent version or a delete marker (`versions`).
    Noncurrent,
}

/// The `seq` of a version newer than `latest` committed at `now_ms`: about the time in
/// microseconds, strictly above the newest (clocks of successive leaders may differ).
pub(crate) fn next_seq(now_ms: u64, latest: Option<&ObjectRecord>) -> u64 {
    let after = latest.map_or(0, |r| r.version_state.seq.saturating_add(1));
    now_ms.saturating_mul(1000).max(after)
}

impl MetaStore {
    /// A bucket's versioning and Object Lock; `None`: versioning was never turned on.
    pub fn versioning(&self, bucket: &str) -> Result<Option<VersioningConfig>, MetaError> {
        self.get_bucket_config(bucket, BucketConfigKind::Versioning)
    }

    pub(crate) fn get_object_at(&self, cf: &str, raw: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        match self.db.get_pinned_cf(self.cf(cf), raw)? {
            Some(v) => Ok(Some(ObjectRecord::decode(&v)?)),
            None => Ok(None),
        }
    }

    /// The newest entry of a key in `versions`.
    pub(crate) fn newest_noncurrent(&self, bucket: &str, key: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        self.newest_noncurrent_except(bucket, key, None)
    }

    /// The newest entry of a key in `versions` but the one with seq `except` (being removed
    /// in the same batch).
    pub(crate) fn newest_noncurrent_except(
        &self,
        bucket: &str,
        key: &[u8],
        except: Option<u64>,
    ) -> Result<Option<ObjectRecord>, MetaError> {
        let prefix = keys::versions_of_key(bucket, key);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            let rec = ObjectRecord::decode(v)?;
            if Some(rec.version_state.seq) != except {
                return Ok(Some(rec));
            }
            it.next();
        }
        it.status()?;
        Ok(None)
    }

    /// The newest version of a key: its current object, else its newest delete marker.
    pub fn latest_version(&self, bucket: &str, key: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        match self.get_object(bucket, key)? {
            Some(r) => Ok(Some(r)),
            None => self.newest_noncurrent(bucket, key),
        }
    }

    /// The version `sel` of a key, and where it is.
    pub fn find_version(
        &self,
        bucket: &str,
        key: &[u8],
        sel: VersionSel,
    ) -> Result<Option<(ObjectRecord, Place)>, MetaError> {
        if let Some(cur) = self.get_object(bucket, key)? {
            if sel.matches(&cur) {
                return Ok(Some((cur, Place::Current)));
            }
        }
        let seq = match sel {
            VersionSel::Id { seq, .. } => seq,
            VersionSel::Null => match self
                .db
                .get_pinned_cf(self.cf(keys::CF_NULL_VERSIONS), keys::object(bucket, key))?
            {
                Some(v) => u64::from_be_bytes(
                    v[..]
                        .try_into()
                        .map_err(|_| MetaError::Corrupt("null version pointer".into()))?,
                ),
                None => return Ok(None),
            },
        };
        let raw = keys::object_version(bucket, key, seq);
        Ok(self
            .get_object_at(keys::CF_VERSIONS, &raw)?
            .filter(|r| sel.matches(r))
            .map(|r| (r, Place::Noncurrent)))
    }

    /// Version `sel` (the current object if `None`) with a lease on its parts, taken under
    /// the key lock like `open_object`.
    pub fn open_version(
        &self,
        bucket: &str,
        key: &[u8],
        sel: Option<VersionSel>,
    ) -> Result<Option<(ObjectRecord, Place, ReadLease)>, MetaError> {
        let _g = self.lock_key(bucket, key);
        let found = match sel {
            None => self.get_object(bucket, key)?.map(|r| (r, Place::Current)),
            Some(sel) => self.find_version(bucket, key, sel)?,
        };
        Ok(found.map(|(rec, place)| {
            let lease = self.leases.take(rec.parts.iter().map(|p| p.version).collect());
            (rec, place, lease)
        }))
    }

    /// Moves a key's current object to `versions` (it stays readable by its id).
    pub(crate) fn demote_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], rec: &ObjectRecord) {
        b.put_cf(
            self.cf(keys::CF_VERSIONS),
            keys::object_version(bucket, key, rec.version_state.seq),
            rec.encode(),
        );
        if !rec.version_state.versioned {
            self.point_null_in(b, bucket, key, rec.version_state.seq);
        }
    }

    fn point_null_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], seq: u64) {
        b.put_cf(
            self.cf(keys::CF_NULL_VERSIONS),
            keys::object(bucket, key),
            seq.to_be_bytes(),
        );
    }

    /// Removes an entry of `versions` (and the null pointer if it is the null version).
    pub(crate) fn remove_noncurrent_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], rec: &ObjectRecord) {
        b.delete_cf(
            self.cf(keys::CF_VERSIONS),
            keys::object_version(bucket, key, rec.version_state.seq),
        );
        if !rec.version_state.versioned {
            b.delete_cf(self.cf(keys::CF_NULL_VERSIONS), keys::object(bucket, key));
        }
    }

    /// Puts a delete marker as the key's newest version.
    pub(crate) fn put_marker_in(&self, b: &mut WriteBatch, bucket: &str, key: &[u8], marker: &ObjectRecord) {
        b.put_cf(
            self.cf(keys::CF_VERSIONS),
            keys::object_version(bucket, key, marker.version_state.seq),
            marker.encode(),
        );
        if !marker.version_state.versioned {
            self.point_null_in(b, bucket, key, marker.version_state.seq);
        }
    }

    /// The key's `null` version when it is in `versions`.
    pub(crate) fn noncurrent_null(&self, bucket: &str, key: &[u8]) -> Result<Option<ObjectRecord>, MetaError> {
        Ok(self
            .find_version(bucket, key, VersionSel::Null)?
            .filter(|(_, p)| *p == Place::Noncurrent)
            .map(|(r, _)| r))
    }

    /// A key's noncurrent versions and delete markers, newest first.
    pub fn noncurrent_versions(&self, bucket: &str, key: &[u8]) -> Result<Vec<ObjectRecord>, MetaError> {
        let prefix = keys::versions_of_key(bucket, key);
        let mut out = Vec::new();
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            out.push(ObjectRecord::decode(v)?);
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    /// Whether the bucket holds any noncurrent version or delete marker.
    pub(crate) fn has_versions(&self, bucket: &str) -> Result<bool, MetaError> {
        let prefix = keys::versions_under(bucket, b"");
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        let found = it.key().is_some_and(|k| k.starts_with(&prefix));
        it.status()?;
        Ok(found)
    }

    /// One page of ListObjectVersions: the versions of keys under `prefix` in key order, each
    /// key's newest first, after (`key_marker`, `version_marker`), rolling keys into common
    /// prefixes at `delimiter`. Two iterators (current objects, other versions) merged; each
    /// common prefix costs one seek in each, so a page costs O(page).
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &[u8],
        delimiter: Option<&[u8]>,
        key_marker: Option<&[u8]>,
        version_marker: Option<VersionSel>,
        limit: usize,
    ) -> Result<(Vec<VersionEntry>, bool), MetaError> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let key_marker = key_marker.filter(|m| !m.is_empty() && *m >= prefix);
        // Versions of the marker key at or above this seq were on earlier pages.
        let marker_seq = match (key_marker, version_marker) {
            (Some(k), Some(sel)) => match sel {
                VersionSel::Id { seq, .. } => Some(seq),
                VersionSel::Null => self
                    .find_version(bucket, k, VersionSel::Null)?
                    .map(|(r, _)| r.version_state.seq),
            },
            _ => None,
        };
        let base_o = keys::object_prefix(bucket, prefix);
        let base_v = keys::versions_under(bucket, prefix);
        let mut io = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        let mut iv = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        match key_marker {
            Some(k) => {
                io.seek(keys::object(bucket, k));
                match marker_seq {
                    Some(s) => iv.seek(keys::object_version(bucket, k, s)),
                    None => match keys::prefix_successor(&keys::versions_of_key(bucket, k)) {
                        Some(next) => iv.seek(next),
                        None => iv.seek_to_last(),
                    },
                }
            }
            None => {
                io.seek(&base_o);
                iv.seek(&base_v);
            }
        }
        let mut out = Vec::new();
        // The key of the last version listed or skipped: a later entry of it is not latest.
        let mut newer_seen: Option<Vec<u8>> = key_marker.filter(|_| marker_seq.is_some()).map(<[u8]>::to_vec);
        loop {
            let cur = match io.key() {
                Some(raw) if raw.starts_with(&base_o) => keys::object_key_of(bucket, raw).map(<[u8]>::to_vec),
                _ => None,
            };
            let ver = match iv.key() {
                Some(raw) if raw.starts_with(&base_v) => keys::object_version_of(bucket, raw),
                _ => None,
            };
            // Skip what earlier pages listed.
            if let (Some(k), Some(m)) = (&cur, key_marker) {
                if k.as_slice() <= m {
                    io.next();
                    continue;
                }
            }
            if let (Some((k, s)), Some(m)) = (&ver, key_marker) {
                let listed = k.as_slice() < m || (k.as_slice() == m && marker_seq.is_none_or(|ms| *s >= ms));
                if listed {
                    iv.next();
                    continue;
                }
            }
            let key = match (&cur, &ver) {
                (None, None) => {
                    io.status()?;
                    iv.status()?;
                    return Ok((out, false));
                }
                (Some(c), None) => c.clone(),
                (None, Some((v, _))) => v.clone(),
                (Some(c), Some((v, _))) => c.min(v).clone(),
            };
            let rolled = crate::list::common_prefix(&key, prefix, delimiter);
            if let Some(cp) = rolled {
                if key_marker.is_none_or(|m| cp.as_slice() > m) {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(VersionEntry::CommonPrefix(cp.clone()));
                }
                let next_o = keys::prefix_successor(&keys::object(bucket, &cp));
                let next_v = keys::prefix_successor(&keys::versions_under(bucket, &cp));
                match (next_o, next_v) {
                    (Some(o), Some(v)) => {
                        io.seek(o);
                        iv.seek(v);
                    }
                    _ => return Ok((out, false)),
                }
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            if cur.as_ref() == Some(&key) {
                let record = ObjectRecord::decode(io.value().unwrap_or_default())?;
                out.push(VersionEntry::Version {
                    key: key.clone(),
                    record,
                    is_latest: true,
                });
                io.next();
            } else {
                let record = ObjectRecord::decode(iv.value().unwrap_or_default())?;
                let is_latest = newer_seen.as_ref() != Some(&key);
                out.push(VersionEntry::Version {
                    key: key.clone(),
                    record,
                    is_latest,
                });
                iv.next();
            }
            newer_seen = Some(key);
        }
    }

    /// Every version of a bucket (current objects, then the others), for audits.
    pub fn scan_versions(&self, bucket: &str) -> impl Iterator<Item = Result<(Vec<u8>, ObjectRecord), MetaError>> + '_ {
        let start = keys::versions_under(bucket, b"");
        let b = bucket.to_string();
        self.scan_objects(bucket).chain(
            self.db
                .iterator_cf(
                    self.cf(keys::CF_VERSIONS),
                    rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward),
                )
                .map_while(move |item| match item {
                    Ok((k, v)) => {
                        let (key, _) = keys::object_version_of(&b, &k)?;
                        Some(ObjectRecord::decode(&v).map(|r| (key, r)))
                    }
                    Err(e) => Some(Err(e.into())),
                }),
        )
    }
}

#[cfg(test)]
#[path = "versions_tests.rs"]
mod tests;
