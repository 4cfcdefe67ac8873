//! Range scans: listing pages (O(page), seeking past whole common prefixes), parts and
//! uploads in order, a bucket's objects for audits.

use crate::records::{decode, ObjectRecord, UploadPartRecord, UploadRecord};
use crate::{keys, MetaError, MetaStore};
use rocksdb::{Direction, IteratorMode};

/// An upload in a listing: (object key, upload id, record).
pub type UploadEntry = (Vec<u8>, [u8; 16], UploadRecord);
/// Where an upload is: (bucket, object key, upload id).
pub type UploadRef = (String, Vec<u8>, [u8; 16]);

/// One entry of a listing page.
#[derive(Debug)]
pub enum ListEntry {
    Object(Vec<u8>, ObjectRecord),
    CommonPrefix(Vec<u8>),
}

/// The common prefix `key` rolls into: `prefix ∥ … ∥ delimiter` up to the first delimiter
/// after `prefix`, if there is one.
pub(crate) fn common_prefix(key: &[u8], prefix: &[u8], delimiter: Option<&[u8]>) -> Option<Vec<u8>> {
    let d = delimiter?;
    key.get(prefix.len()..)?
        .windows(d.len())
        .position(|w| w == d)
        .map(|i| key[..prefix.len() + i + d.len()].to_vec())
}

impl MetaStore {
    /// Parts with numbers greater than `after`, at most `limit`; and whether more follow.
    pub fn list_parts(
        &self,
        id: &[u8; 16],
        after: u32,
        limit: usize,
    ) -> Result<(Vec<(u32, UploadPartRecord)>, bool), MetaError> {
        let mut out = Vec::new();
        if after == u32::MAX {
            return Ok((out, false));
        }
        let start = keys::part(id, after + 1);
        let iter = self
            .db
            .iterator_cf(self.cf(keys::CF_PARTS), IteratorMode::From(&start, Direction::Forward));
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(id) {
                break;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let n = u32::from_be_bytes(
                k[16..20]
                    .try_into()
                    .map_err(|_| MetaError::Corrupt("part key".into()))?,
            );
            out.push((n, decode(&v)?));
        }
        Ok((out, false))
    }

    pub(crate) fn all_parts(&self, id: &[u8; 16]) -> Result<Vec<(u32, UploadPartRecord)>, MetaError> {
        Ok(self.list_parts(id, 0, usize::MAX)?.0)
    }

    /// Uploads of a bucket in (key, upload id) order, strictly after the marker.
    pub fn list_uploads(
        &self,
        bucket: &str,
        prefix: &[u8],
        after: Option<(&[u8], Option<[u8; 16]>)>,
        limit: usize,
    ) -> Result<(Vec<UploadEntry>, bool), MetaError> {
        let base = keys::object_prefix(bucket, prefix);
        let start = match after {
            Some((k, Some(id))) => keys::upload(bucket, k, &id),
            Some((k, None)) => keys::upload(bucket, k, &[0xFF; 16]),
            None => base.clone(),
        };
        let mut out = Vec::new();
        for item in self.db.iterator_cf(
            self.cf(keys::CF_UPLOADS),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (k, v) = item?;
            if !k.starts_with(&base) {
                break;
            }
            if k[..] == start[..] {
                continue;
            }
            let Some((key, id)) = keys::upload_parts_of(bucket, &k) else {
                continue;
            };
            let rec: UploadRecord = decode(&v)?;
            if rec.completed.is_some() {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((key.to_vec(), id, rec));
        }
        Ok((out, false))
    }

    /// One page of a listing: keys under `prefix`, strictly after `after`, rolling keys that
    /// share `prefix ∥ … ∥ delimiter` into one common prefix. Each common prefix costs one seek
    /// past all its keys, so a page costs O(page), not O(bucket).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &[u8],
        delimiter: Option<&[u8]>,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ListEntry>, bool), MetaError> {
        let base = keys::object_prefix(bucket, prefix);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        match after {
            Some(a) if a >= prefix => it.seek(keys::object(bucket, a)),
            _ => it.seek(&base),
        }
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut out = Vec::new();
        loop {
            if !it.valid() {
                it.status()?;
                return Ok((out, false));
            }
            let Some(raw) = it.key() else {
                return Ok((out, false));
            };
            if !raw.starts_with(&base) {
                return Ok((out, false));
            }
            let key = keys::object_key_of(bucket, raw).unwrap_or_default().to_vec();
            if after.is_some_and(|a| key.as_slice() <= a) {
                it.next();
                continue;
            }
            let rolled = common_prefix(&key, prefix, delimiter);
            if let Some(cp) = rolled {
                let already = after.is_some_and(|a| cp.as_slice() <= a);
                if !already {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(ListEntry::CommonPrefix(cp.clone()));
                }
                match keys::prefix_successor(&keys::object(bucket, &cp)) {
                    Some(next) => it.seek(next),
                    None => return Ok((out, false)),
                }
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            let rec = ObjectRecord::decode(it.value().unwrap_or_default())?;
            out.push(ListEntry::Object(key, rec));
            it.next();
        }
    }

    /// Iterates every object of a bucket (for audits), in key order.
    pub fn scan_objects(&self, bucket: &str) -> impl Iterator<Item = Result<(Vec<u8>, ObjectRecord), MetaError>> + '_ {
        let start = keys::object_prefix(bucket, b"");
        let b = bucket.to_string();
        self.db
            .iterator_cf(
                self.cf(keys::CF_OBJECTS),
                IteratorMode::From(&start, Direction::Forward),
            )
            .map_while(move |item| match item {
                Ok((k, v)) => {
                    let key = keys::object_key_of(&b, &k)?.to_vec();
                    Some(ObjectRecord::decode(&v).map(|r| (key, r)))
                }
                Err(e) => Some(Err(e.into())),
            })
    }
}
