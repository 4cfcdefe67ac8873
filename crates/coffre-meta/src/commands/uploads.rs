//! Commands of multipart uploads: create, commit a part, complete, abort. Parts are keyed
//! under their upload's key, so the key's lock serializes a Complete and an UploadPart.

use super::*;

impl MetaStore {
    /// Applies `MetaCommand::CreateUpload` (see there).
    pub(super) fn apply_create_upload(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        record: UploadRecord,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        self.require_bucket(&bucket)?;
        b.put_cf(
            self.cf(keys::CF_UPLOADS),
            keys::upload(&bucket, &key, &id),
            encode(&record),
        );
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::CommitPart` (see there).
    pub(super) fn apply_commit_part(&self, mut b: WriteBatch, cmd: CommitPart) -> Result<Outcome, MetaError> {
        let CommitPart {
            bucket,
            key,
            id,
            number,
            part,
            layout,
            now_ms,
        } = cmd;
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let up = self.upload_in_progress(&bucket, &key, &id)?;
        self.require_intent(&part.info.version)?;
        let pkey = keys::part(&id, number);
        if let Some(old) = self.get::<UploadPartRecord>(keys::CF_PARTS, &pkey)? {
            let gc = GcRecord {
                parts: vec![GcPart::of(&old.info, up.packages_per_stripe)],
            };
            self.queue_gc(&mut b, gc, now_ms);
        }
        b.put_cf(self.cf(keys::CF_PARTS), &pkey, encode(&part));
        self.index_part_in(&mut b, &part.info, up.scheme, up.packages_per_stripe);
        b.put_cf(
            self.cf(keys::CF_LAYOUTS),
            keys::version(&part.info.version),
            crate::records::LayoutOwner::layout_value(&layout, &bucket, &key),
        );
        b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(&part.info.version));
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::CompleteUpload` (see there).
    pub(super) fn apply_complete_upload(&self, mut b: WriteBatch, cmd: CompleteUpload) -> Result<Outcome, MetaError> {
        let CompleteUpload {
            bucket,
            key,
            id,
            numbers,
            record,
            condition,
            now_ms,
        } = cmd;
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let owner = self.require_bucket(&bucket)?.tenant;
        condition.check_owner(&owner)?;
        let mut up = self.upload_in_progress(&bucket, &key, &id)?;
        let uploaded = self.all_parts(&id)?;
        if numbers.len() != record.parts.len() {
            return Err(MetaError::PartChanged);
        }
        for (n, p) in numbers.iter().zip(&record.parts) {
            let current = uploaded.iter().find(|(m, _)| m == n);
            if current.is_none_or(|(_, c)| c.info.version != p.version) {
                return Err(MetaError::PartChanged);
            }
        }
        let current = self.get_object(&bucket, &key)?;
        condition.check(current.as_ref())?;
        let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
        let used: std::collections::HashSet<VersionId> = record.parts.iter().map(|p| p.version).collect();
        let unused: Vec<GcPart> = uploaded
            .iter()
            .filter(|(_, p)| !used.contains(&p.info.version))
            .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
            .collect();
        self.queue_gc(&mut b, GcRecord { parts: unused }, now_ms);
        self.delete_parts_in(&mut b, &id);
        up.completed = Some((record.version, record.etag.clone()));
        up.sealed.clear();
        b.put_cf(self.cf(keys::CF_UPLOADS), keys::upload(&bucket, &key, &id), encode(&up));
        self.write(b)?;
        Ok(Outcome::Object(Some(record)))
    }

    /// Applies `MetaCommand::AbortUpload` (see there).
    pub(super) fn apply_abort_upload(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        id: [u8; 16],
        now_ms: u64,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let Some(up) = self.get_upload(&bucket, &key, &id)? else {
            return Ok(Outcome::Done(false));
        };
        if up.completed.is_none() {
            let parts = self
                .all_parts(&id)?
                .iter()
                .map(|(_, p)| GcPart::of(&p.info, up.packages_per_stripe))
                .collect();
            self.queue_gc(&mut b, GcRecord { parts }, now_ms);
            self.delete_parts_in(&mut b, &id);
        }
        b.delete_cf(self.cf(keys::CF_UPLOADS), keys::upload(&bucket, &key, &id));
        self.write(b)?;
        Ok(Outcome::Done(up.completed.is_none()))
    }
}
