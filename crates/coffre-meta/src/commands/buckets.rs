//! Commands on buckets (their existence, policy, configuration, versioning) and on the
//! node list: each takes the bucket's lock exclusively and re-checks what it relies on.

use super::*;

impl MetaStore {
    /// Applies `MetaCommand::ConfigureVersioning` (see there).
    pub(super) fn apply_configure_versioning(
        &self,
        mut b: WriteBatch,
        bucket: String,
        change: VersioningChange,
    ) -> Result<Outcome, MetaError> {
        let _g = self.bucket_itself(&bucket);
        self.require_bucket(&bucket)?;
        let current = self.versioning(&bucket)?;
        let next = match (change, current) {
            (VersioningChange::Status(VersioningStatus::Suspended), Some(c)) if c.object_lock => {
                return Err(MetaError::InvalidBucketState(
                    "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                ))
            }
            (VersioningChange::Status(status), Some(c)) => VersioningConfig { status, ..c },
            (VersioningChange::Status(status), None) => VersioningConfig {
                status,
                object_lock: false,
                default_retention: None,
            },
            (VersioningChange::ObjectLock(default_retention), Some(c))
                if c.status == VersioningStatus::Enabled =>
            {
                VersioningConfig {
                    object_lock: true,
                    default_retention,
                    ..c
                }
            }
            (VersioningChange::ObjectLock(_), _) => {
                return Err(MetaError::InvalidBucketState(
                    "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration".into(),
                ))
            }
        };
        b.put_cf(
            self.cf(keys::CF_BUCKET_CONFIG),
            keys::bucket_config(&bucket, crate::BucketConfigKind::Versioning.key()),
            encode(&next),
        );
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::DeleteBucket` (see there).
    pub(super) fn apply_delete_bucket(&self, mut b: WriteBatch, name: String) -> Result<Outcome, MetaError> {
        let _g = self.bucket_itself(&name);
        self.delete_bucket_in(&mut b, &name)?;
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::UpdateBucket` (see there).
    pub(super) fn apply_update_bucket(
        &self,
        mut b: WriteBatch,
        name: String,
        record: BucketRecord,
    ) -> Result<Outcome, MetaError> {
        let _g = self.bucket_itself(&name);
        match self.get_bucket(&name)? {
            None => return Err(MetaError::NoSuchBucket),
            // The owner is not a residency setting: it never changes here.
            Some(old) if old.tenant != record.tenant => {
                return Err(MetaError::DeleteConflict("a bucket's owner cannot change".into()))
            }
            Some(_) => {}
        }
        b.put_cf(self.cf(keys::CF_BUCKETS), keys::bucket(&name), record.encode());
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::PutBucketConfig` (see there).
    pub(super) fn apply_put_bucket_config(
        &self,
        mut b: WriteBatch,
        bucket: String,
        kind: crate::BucketConfigKind,
        value: Option<Vec<u8>>,
    ) -> Result<Outcome, MetaError> {
        if kind == crate::BucketConfigKind::Versioning {
            return Err(MetaError::InvalidRequest(
                "versioning changes through ConfigureVersioning".into(),
            ));
        }
        let _g = self.bucket_itself(&bucket);
        self.require_bucket(&bucket)?;
        let k = keys::bucket_config(&bucket, kind.key());
        match value {
            Some(v) => b.put_cf(self.cf(keys::CF_BUCKET_CONFIG), k, v),
            None => b.delete_cf(self.cf(keys::CF_BUCKET_CONFIG), k),
        }
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::PutNode` (see there).
    pub(super) fn apply_put_node(
        &self,
        mut b: WriteBatch,
        address: String,
        record: NodeRecord,
    ) -> Result<Outcome, MetaError> {
        b.put_cf(self.cf(keys::CF_NODES), address.as_bytes(), encode(&record));
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::DeleteNode` (see there).
    pub(super) fn apply_delete_node(&self, mut b: WriteBatch, address: String) -> Result<Outcome, MetaError> {
        b.delete_cf(self.cf(keys::CF_NODES), address.as_bytes());
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    pub(super) fn create_bucket_in(
        &self,
        mut b: WriteBatch,
        name: &str,
        record: &BucketRecord,
        versioning: Option<VersioningConfig>,
    ) -> Result<Outcome, MetaError> {
        // The tenant cannot be deleted meanwhile (its deletion takes the same lock).
        let _t = self.iam_guard();
        let _g = self.bucket_itself(name);
        if let Some(existing) = self.get_bucket(name)? {
            return Err(match existing.tenant == record.tenant {
                true => MetaError::BucketExists,
                false => MetaError::BucketTaken,
            });
        }
        if self.get_tenant(&record.tenant)?.is_none() {
            return Err(MetaError::NoSuchEntity(format!("tenant '{}'", record.tenant)));
        }
        b.put_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name), record.encode());
        if let Some(v) = versioning {
            b.put_cf(
                self.cf(keys::CF_BUCKET_CONFIG),
                keys::bucket_config(name, crate::BucketConfigKind::Versioning.key()),
                encode(&v),
            );
        }
        self.write(b)?;
        self.bump_generation();
        Ok(Outcome::Unit)
    }

    pub(super) fn delete_bucket_in(&self, b: &mut WriteBatch, name: &str) -> Result<(), MetaError> {
        if self.get_bucket(name)?.is_none() {
            return Err(MetaError::NoSuchBucket);
        }
        let start = keys::object_prefix(name, b"");
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_OBJECTS));
        it.seek(&start);
        if it.valid() && it.key().is_some_and(|k| k.starts_with(&start)) {
            return Err(MetaError::BucketNotEmpty);
        }
        it.status()?;
        // Noncurrent versions and delete markers keep it too (as in S3).
        if self.has_versions(name)? {
            return Err(MetaError::BucketNotEmpty);
        }
        // Uploads in progress keep the bucket; markers of completed ones go with it.
        let iter = self.db.iterator_cf(
            self.cf(keys::CF_UPLOADS),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (k, v) = item?;
            if !k.starts_with(&start) {
                break;
            }
            if decode::<UploadRecord>(&v)?.completed.is_none() {
                return Err(MetaError::BucketNotEmpty);
            }
            b.delete_cf(self.cf(keys::CF_UPLOADS), k);
        }
        // Its sub-resources go with it: a bucket created again under the name starts bare.
        let configs = keys::bucket_config(name, "");
        if let Some(end) = keys::prefix_successor(&configs) {
            b.delete_range_cf(self.cf(keys::CF_BUCKET_CONFIG), configs, end);
        }
        b.delete_cf(self.cf(keys::CF_BUCKETS), keys::bucket(name));
        b.delete_cf(self.cf(keys::CF_USAGE), keys::usage_bucket(name));
        Ok(())
    }
}
