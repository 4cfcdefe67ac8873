//! Offline maintenance (server stopped): rewriting records in place for a master key
//! rotation, and bulk imports for benchmarks. Not commands: they run alone.

use crate::records::{decode, encode, ObjectRecord, UploadPartRecord, UploadRecord};
use crate::{keys, MetaError, MetaStore};
use rocksdb::{IteratorMode, WriteBatch};

impl MetaStore {
    /// Rewrites records in place (offline maintenance such as a master key rotation): `f` gets
    /// each object version's bucket, key and record (current objects, then noncurrent versions
    /// and delete markers) and says whether it changed it.
    pub fn rewrite_objects(
        &self,
        mut f: impl FnMut(&str, &[u8], &mut ObjectRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        let bucket_of = |raw: &[u8]| -> Result<(String, usize), MetaError> {
            let zero = raw
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("object key".into()))?;
            let bucket = std::str::from_utf8(&raw[..zero]).map_err(|_| MetaError::Corrupt("bucket name".into()))?;
            Ok((bucket.to_string(), zero))
        };
        let objects = self.rewrite_cf_with(
            keys::CF_OBJECTS,
            ObjectRecord::decode,
            ObjectRecord::encode,
            |raw, rec| {
                let (bucket, zero) = bucket_of(raw)?;
                f(&bucket, &raw[zero + 1..], rec)
            },
        )?;
        let versions = self.rewrite_cf_with(
            keys::CF_VERSIONS,
            ObjectRecord::decode,
            ObjectRecord::encode,
            |raw, rec| {
                let (bucket, _) = bucket_of(raw)?;
                let (key, _) =
                    keys::object_version_of(&bucket, raw).ok_or_else(|| MetaError::Corrupt("version key".into()))?;
                f(&bucket, &key, rec)
            },
        )?;
        Ok(objects + versions)
    }

    /// As `rewrite_objects`, for the uploads in progress: (bucket, key, upload id, record).
    pub fn rewrite_uploads(
        &self,
        mut f: impl FnMut(&str, &[u8], &[u8; 16], &mut UploadRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf(keys::CF_UPLOADS, |raw, rec: &mut UploadRecord| {
            let zero = raw
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| MetaError::Corrupt("upload key".into()))?;
            let bucket = std::str::from_utf8(&raw[..zero]).map_err(|_| MetaError::Corrupt("bucket name".into()))?;
            let (key, id) =
                keys::upload_parts_of(bucket, raw).ok_or_else(|| MetaError::Corrupt("upload key".into()))?;
            f(bucket, key, &id, rec)
        })
    }

    /// As `rewrite_objects`, for uploaded parts.
    pub fn rewrite_parts(
        &self,
        mut f: impl FnMut(&mut UploadPartRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf(keys::CF_PARTS, |_, rec: &mut UploadPartRecord| f(rec))
    }

    /// As `rewrite_objects`, for tenants: (name, record). Access keys' sealed secrets are
    /// rewritten through `rewrite_access_keys`.
    pub fn rewrite_tenants(
        &self,
        mut f: impl FnMut(&str, &mut crate::TenantRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        let mut changed = 0;
        let mut b = WriteBatch::default();
        for (name, mut rec) in self.list_tenants()? {
            if f(&name, &mut rec)? {
                b.put_cf(self.cf(keys::CF_IAM), keys::tenant(&name), encode(&rec));
                changed += 1;
            }
        }
        self.write(b)?;
        Ok(changed)
    }

    /// As `rewrite_objects`, for access keys: (id, record).
    pub fn rewrite_access_keys(
        &self,
        mut f: impl FnMut(&str, &mut crate::AccessKeyRecord) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        let mut changed = 0;
        let mut b = WriteBatch::default();
        for (name, _) in self.list_tenants()? {
            for (id, mut rec) in self.list_access_keys(&name, None)? {
                if f(&id, &mut rec)? {
                    b.put_cf(self.cf(keys::CF_IAM), keys::access_key(&id), encode(&rec));
                    changed += 1;
                }
            }
        }
        self.write(b)?;
        Ok(changed)
    }

    fn rewrite_cf<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        cf: &str,
        f: impl FnMut(&[u8], &mut T) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        self.rewrite_cf_with(cf, |v| decode(v), |r| encode(r), f)
    }

    /// As `rewrite_cf`, for records with a codec of their own (`ObjectRecord`).
    fn rewrite_cf_with<T>(
        &self,
        cf: &str,
        decode: impl Fn(&[u8]) -> Result<T, MetaError>,
        encode: impl Fn(&T) -> Vec<u8>,
        mut f: impl FnMut(&[u8], &mut T) -> Result<bool, MetaError>,
    ) -> Result<usize, MetaError> {
        let mut changed = 0;
        let mut b = WriteBatch::default();
        for item in self.db.iterator_cf(self.cf(cf), IteratorMode::Start) {
            let (k, v) = item?;
            let mut rec = decode(&v)?;
            if f(&k, &mut rec)? {
                b.put_cf(self.cf(cf), &k, encode(&rec));
                changed += 1;
                if b.len() >= 1000 {
                    self.db
                        .write_opt(std::mem::take(&mut b), &crate::commands::sync_opts())?;
                }
            }
        }
        self.db.write_opt(b, &crate::commands::sync_opts())?;
        Ok(changed)
    }

    /// Writes noncurrent versions (records with their `seq` set) in one unsynced batch: for
    /// benchmarks of version listings.
    pub fn import_versions(&self, bucket: &str, items: &[(Vec<u8>, ObjectRecord)]) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        for (k, rec) in items {
            b.put_cf(
                self.cf(keys::CF_VERSIONS),
                keys::object_version(bucket, k, rec.version_state.seq),
                rec.encode(),
            );
        }
        self.db.write(b)?;
        Ok(())
    }

    /// Writes many object records in one unsynced batch, with no GC of replaced versions: for
    /// bulk imports into an empty bucket and for benchmarks.
    pub fn import_objects(&self, bucket: &str, items: &[(Vec<u8>, ObjectRecord)]) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        for (k, rec) in items {
            b.put_cf(self.cf(keys::CF_OBJECTS), keys::object(bucket, k), rec.encode());
        }
        self.db.write(b)?;
        Ok(())
    }
}
