//! Commands on objects and their versions: commits (shards written, or inlined), deletions,
//! changes of one version, healed parts. Each takes its keys' locks (and its bucket's,
//! shared) and re-checks, inside them, the bucket, the key's current version and the
//! write's conditions.

use super::*;
use crate::repair_queue::margin_of;

impl MetaStore {
    /// Applies `MetaCommand::CommitObject` (see there).
    pub(super) fn apply_commit_object(&self, mut b: WriteBatch, cmd: CommitObject) -> Result<Outcome, MetaError> {
        let CommitObject {
            bucket,
            key,
            record,
            layouts,
            condition,
            now_ms,
        } = cmd;
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let (owner, current) = self.check_write(&bucket, &key, &condition)?;
        for (v, _) in &layouts {
            self.require_intent(v)?;
        }
        let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
        for p in &record.parts {
            self.index_part_in(&mut b, p, record.scheme, record.packages_per_stripe);
        }
        for (v, l) in &layouts {
            b.put_cf(
                self.cf(keys::CF_LAYOUTS),
                keys::version(v),
                crate::records::LayoutOwner::layout_value(l, &bucket, &key),
            );
            b.delete_cf(self.cf(keys::CF_INTENTS), keys::version(v));
        }
        self.write(b)?;
        Ok(Outcome::Object(Some(record)))
    }

    /// Applies `MetaCommand::CommitInlineObject` (see there).
    pub(super) fn apply_commit_inline_object(
        &self,
        mut b: WriteBatch,
        cmd: CommitInlineObject,
    ) -> Result<Outcome, MetaError> {
        let CommitInlineObject {
            bucket,
            key,
            record,
            packages,
            condition,
            now_ms,
        } = cmd;
        let [part] = record.parts.as_slice() else {
            return Err(MetaError::Corrupt("an inlined object has exactly one part".into()));
        };
        let part_key = keys::version(&part.version);
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let (owner, current) = self.check_write(&bucket, &key, &condition)?;
        let (record, _q) = self.commit_version_in(&mut b, &owner, &bucket, &key, record, current, now_ms)?;
        b.put_cf(self.cf(keys::CF_LAYOUTS), part_key, PartData::Inline(packages).encode());
        self.write(b)?;
        Ok(Outcome::Object(Some(record)))
    }

    /// Applies `MetaCommand::DeleteObjects` (see there).
    pub(super) fn apply_delete_objects(
        &self,
        mut b: WriteBatch,
        bucket: String,
        names: Vec<Vec<u8>>,
        now_ms: u64,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_keys(&bucket, &names);
        let owner = self.get_bucket(&bucket)?.map(|r| r.tenant).unwrap_or_default();
        let (mut freed_bytes, mut freed_objects) = (0i64, 0i64);
        let mut existed = Vec::with_capacity(names.len());
        // A key named twice is deleted once: the second sees the batch's view.
        let mut gone = std::collections::HashSet::new();
        for key in &names {
            let okey = keys::object(&bucket, key);
            let old = match gone.contains(&okey) {
                true => None,
                false => self.get_object_at(keys::CF_OBJECTS, &okey)?,
            };
            existed.push(old.is_some());
            if let Some(old) = old {
                freed_bytes = freed_bytes.saturating_add(old.size as i64);
                freed_objects += 1;
                self.queue_gc(&mut b, old.gc_record(), now_ms);
                b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                self.unqueue_repair_in(&mut b, &okey)?;
                gone.insert(okey);
            }
        }
        self.account(&mut b, &owner, &bucket, -freed_bytes, -freed_objects)?;
        self.write(b)?;
        Ok(Outcome::Deleted(existed))
    }

    /// Applies `MetaCommand::UpdateSealed` (see there).
    pub(super) fn apply_update_sealed(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        version: VersionId,
        sealed: Vec<u8>,
        touch_ms: Option<u64>,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let okey = keys::object(&bucket, &key);
        Ok(match self.get_object_at(keys::CF_OBJECTS, &okey)? {
            Some(mut rec) if rec.version == version => {
                rec.sealed = sealed;
                if let Some(t) = touch_ms {
                    rec.last_modified_ms = t;
                }
                b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
                self.write(b)?;
                Outcome::Object(Some(rec))
            }
            _ => Outcome::Object(None),
        })
    }

    /// Applies `MetaCommand::UpdateParts` (see there).
    pub(super) fn apply_update_parts(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        version: VersionId,
        parts: Vec<PartInfo>,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let okey = keys::object(&bucket, &key);
        // The heal entry stays: `DropHeal` removes it once nothing under the key is
        // degraded.
        let current = self.get_object_at(keys::CF_OBJECTS, &okey)?;
        let updated = match current {
            Some(mut rec) if rec.version == version => {
                self.forget_heal_intents_in(&mut b, &parts);
                self.reindex_parts_in(&mut b, &rec, &parts);
                rec.parts = parts;
                b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
                true
            }
            _ => false,
        };
        self.write(b)?;
        Ok(Outcome::Done(updated))
    }

    /// Applies `MetaCommand::DeleteVersions` (see there).
    pub(super) fn apply_delete_versions(
        &self,
        mut b: WriteBatch,
        bucket: String,
        targets: Vec<DeleteTarget>,
        bypass_governance: bool,
        now_ms: u64,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let names: Vec<Vec<u8>> = targets.iter().map(|t| t.key.clone()).collect();
        let _k = self.lock_keys(&bucket, &names);
        let mut distinct = std::collections::HashSet::new();
        if !names.iter().all(|k| distinct.insert(k)) {
            return Err(MetaError::InvalidRequest("a key is named twice in one delete".into()));
        }
        let owner = self.require_bucket(&bucket)?.tenant;
        let versioning = self.versioning(&bucket)?;
        let mut tally = (0i64, 0i64);
        let mut results = Vec::with_capacity(targets.len());
        for t in &targets {
            results.push(self.delete_target_in(
                &mut b,
                &bucket,
                versioning.as_ref(),
                t,
                bypass_governance,
                now_ms,
                &mut tally,
            )?);
        }
        self.add_usage(&mut b, &owner, &bucket, tally.0, tally.1);
        self.write(b)?;
        Ok(Outcome::DeleteResults(results))
    }

    /// Applies `MetaCommand::UpdateVersion` (see there).
    pub(super) fn apply_update_version(&self, mut b: WriteBatch, cmd: UpdateVersion) -> Result<Outcome, MetaError> {
        let UpdateVersion {
            bucket,
            key,
            sel,
            expect,
            change,
            bypass_governance,
            now_ms,
        } = cmd;
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        self.require_bucket(&bucket)?;
        let found = match sel {
            None => self.get_object(&bucket, &key)?.map(|r| (r, Place::Current)),
            Some(sel) => self.find_version(&bucket, &key, sel)?,
        };
        let (mut rec, place) = match (found, sel) {
            (Some(f), _) => f,
            (None, Some(_)) => return Err(MetaError::NoSuchVersion),
            (None, None) => return Err(MetaError::NoSuchKey),
        };
        if expect.is_some_and(|v| v != rec.version) {
            return Ok(Outcome::Object(None));
        }
        if rec.is_delete_marker() {
            return Err(MetaError::MethodNotAllowed(
                "The specified method is not allowed against a delete marker".into(),
            ));
        }
        let lock_enabled = self.versioning(&bucket)?.is_some_and(|v| v.object_lock);
        match change {
            VersionChange::Sealed { sealed, touch_ms } => {
                rec.sealed = sealed;
                if let Some(t) = touch_ms {
                    rec.last_modified_ms = t;
                }
            }
            VersionChange::Retention(new) => {
                if !lock_enabled {
                    return Err(no_lock_configuration());
                }
                check_retention_change(rec.version_state.retention, new, now_ms, bypass_governance)?;
                rec.version_state.retention = new;
            }
            VersionChange::LegalHold(on) => {
                if !lock_enabled {
                    return Err(no_lock_configuration());
                }
                rec.version_state.legal_hold = on;
            }
        }
        let raw = match place {
            Place::Current => (keys::CF_OBJECTS, keys::object(&bucket, &key)),
            Place::Noncurrent => (
                keys::CF_VERSIONS,
                keys::object_version(&bucket, &key, rec.version_state.seq),
            ),
        };
        b.put_cf(self.cf(raw.0), raw.1, rec.encode());
        self.write(b)?;
        Ok(Outcome::Object(Some(rec)))
    }

    /// Applies `MetaCommand::UpdateVersionParts` (see there).
    pub(super) fn apply_update_version_parts(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        seq: u64,
        version: VersionId,
        parts: Vec<PartInfo>,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let raw = keys::object_version(&bucket, &key, seq);
        let updated = match self.get_object_at(keys::CF_VERSIONS, &raw)? {
            Some(mut rec) if rec.version == version => {
                self.forget_heal_intents_in(&mut b, &parts);
                self.reindex_parts_in(&mut b, &rec, &parts);
                rec.parts = parts;
                b.put_cf(self.cf(keys::CF_VERSIONS), &raw, rec.encode());
                true
            }
            _ => false,
        };
        self.write(b)?;
        Ok(Outcome::Done(updated))
    }

    /// Applies `MetaCommand::HealShards` (see there).
    pub(super) fn apply_heal_shards(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        seq: Option<u64>,
        version: VersionId,
        healed: Vec<crate::HealedShard>,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let (cf, raw) = match seq {
            None => (keys::CF_OBJECTS, keys::object(&bucket, &key)),
            Some(seq) => (keys::CF_VERSIONS, keys::object_version(&bucket, &key, seq)),
        };
        let updated = match self.get_object_at(cf, &raw)? {
            Some(mut rec) if rec.version == version => {
                let mut parts = rec.parts.clone();
                for h in &healed {
                    let Some(p) = parts.iter_mut().find(|p| p.version == h.part) else {
                        continue;
                    };
                    if let Some(node) = p.nodes.get_mut(h.index as usize) {
                        *node = h.node.clone();
                        p.degraded.retain(|i| *i != h.index);
                    }
                }
                self.forget_heal_intents_in(&mut b, &parts);
                self.reindex_parts_in(&mut b, &rec, &parts);
                rec.parts = parts;
                b.put_cf(self.cf(cf), &raw, rec.encode());
                true
            }
            _ => false,
        };
        self.write(b)?;
        Ok(Outcome::Done(updated))
    }

    /// Makes `rec` the key's newest version, as the bucket's versioning says: replacing the
    /// current object (unversioned), keeping it as noncurrent (enabled), or replacing only the
    /// `null` version (suspended). Sets the version's seq, id kind and default retention;
    /// accounts for the growth (quota checked: the guard is held until the batch is written).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn commit_version_in(
        &self,
        b: &mut WriteBatch,
        owner: &str,
        bucket: &str,
        key: &[u8],
        mut rec: ObjectRecord,
        current: Option<ObjectRecord>,
        now_ms: u64,
    ) -> Result<(ObjectRecord, Option<std::sync::MutexGuard<'_, ()>>), MetaError> {
        let versioning = self.versioning(bucket)?;
        let lock_enabled = versioning.is_some_and(|v| v.object_lock);
        let vs = &mut rec.version_state;
        if (vs.retention.is_some() || vs.legal_hold) && !lock_enabled {
            return Err(no_lock_configuration());
        }
        if let (None, Some(d)) = (vs.retention, versioning.and_then(|v| v.default_retention)) {
            vs.retention = Some(Retention {
                mode: d.mode,
                until_ms: d.until(now_ms),
            });
        }
        let latest = match (&current, &versioning) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => self.newest_noncurrent(bucket, key)?,
            (None, None) => None,
        };
        vs.seq = next_seq(now_ms, latest.as_ref());
        vs.delete_marker = false;
        let status = versioning.map(|v| v.status);
        vs.versioned = status == Some(VersioningStatus::Enabled);
        // The version this write removes for good, if any.
        let mut removed = None;
        match (status, current) {
            (None, current) => removed = current,
            (Some(VersioningStatus::Enabled), Some(c)) => self.demote_in(b, bucket, key, &c),
            (Some(VersioningStatus::Enabled), None) => {}
            (Some(VersioningStatus::Suspended), current) => {
                match current {
                    Some(c) if !c.version_state.versioned => removed = Some(c),
                    Some(c) => self.demote_in(b, bucket, key, &c),
                    None => {}
                }
                if removed.is_none() {
                    if let Some(null) = self.noncurrent_null(bucket, key)? {
                        self.remove_noncurrent_in(b, bucket, key, &null);
                        removed = Some(null);
                    }
                }
            }
        }
        let (mut bytes, mut objects) = (rec.size as i64, 1i64);
        if let Some(old) = &removed {
            if let Some(why) = old.version_state.protection(now_ms, false) {
                return Err(MetaError::Locked(why.into()));
            }
            bytes = bytes.saturating_sub(old.size as i64);
            objects -= 1;
        }
        let guard = self.account(b, owner, bucket, bytes, objects)?;
        if let Some(old) = removed.filter(|o| !o.is_delete_marker()) {
            self.queue_gc(b, old.gc_record(), now_ms);
        }
        self.put_object_in(b, bucket, key, &rec, versioning.is_some())?;
        Ok((rec, guard))
    }

    /// One target of a `DeleteVersions`; `tally` sums what it adds to the bucket's usage.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn delete_target_in(
        &self,
        b: &mut WriteBatch,
        bucket: &str,
        versioning: Option<&VersioningConfig>,
        t: &DeleteTarget,
        bypass_governance: bool,
        now_ms: u64,
        tally: &mut (i64, i64),
    ) -> Result<DeleteResult, MetaError> {
        let key = &t.key[..];
        let okey = keys::object(bucket, key);
        let current = self.get_object(bucket, key)?;
        let mut result = DeleteResult::default();
        let Some(sel) = t.version else {
            // Deleting the key: gone for good (unversioned), or hidden under a marker.
            let latest = match &current {
                Some(c) => Some(c.clone()),
                None if versioning.is_some() => self.newest_noncurrent(bucket, key)?,
                None => None,
            };
            if let DeleteGuard::LatestIs(seq) = t.guard {
                if latest.as_ref().map(|l| l.version_state.seq) != Some(seq) {
                    return Ok(result);
                }
            }
            let Some(status) = versioning.map(|v| v.status) else {
                if let Some(c) = current {
                    if let Some(why) = c.version_state.protection(now_ms, bypass_governance) {
                        result.refused = Some(why.into());
                        return Ok(result);
                    }
                    b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                    self.unqueue_repair_in(b, &okey)?;
                    self.queue_gc(b, c.gc_record(), now_ms);
                    tally.0 = tally.0.saturating_sub(c.size as i64);
                    tally.1 -= 1;
                    result.removed = Some((c.version_id(), false));
                }
                return Ok(result);
            };
            let mut marker = ObjectRecord::delete_marker(t.marker_tag, now_ms);
            marker.version_state.seq = next_seq(now_ms, latest.as_ref());
            marker.version_state.versioned = status == VersioningStatus::Enabled;
            let mut removed = None;
            if let Some(c) = current {
                b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                match status == VersioningStatus::Suspended && !c.version_state.versioned {
                    true => removed = Some(c),
                    false => self.demote_in(b, bucket, key, &c),
                }
            }
            if status == VersioningStatus::Suspended && removed.is_none() {
                if let Some(null) = self.noncurrent_null(bucket, key)? {
                    self.remove_noncurrent_in(b, bucket, key, &null);
                    removed = Some(null);
                }
            }
            if let Some(old) = removed {
                if let Some(why) = old.version_state.protection(now_ms, bypass_governance) {
                    return Err(MetaError::Locked(why.into()));
                }
                tally.0 = tally.0.saturating_sub(old.size as i64);
                tally.1 -= 1;
                if !old.is_delete_marker() {
                    self.queue_gc(b, old.gc_record(), now_ms);
                }
            }
            self.put_marker_in(b, bucket, key, &marker);
            tally.1 += 1;
            result.marker = Some(marker.version_id());
            return Ok(result);
        };
        // Removing one version for good.
        let Some((found, place)) = self.find_version(bucket, key, sel)? else {
            return Ok(result);
        };
        let allowed = match t.guard {
            DeleteGuard::None | DeleteGuard::LatestIs(_) => true,
            DeleteGuard::Noncurrent => place == Place::Noncurrent,
            DeleteGuard::LoneMarker => {
                found.is_delete_marker()
                    && current.is_none()
                    && self.newest_noncurrent(bucket, key)?.as_ref() == Some(&found)
                    && self.versions_of_key_count(bucket, key, 2)? == 1
            }
        };
        if !allowed {
            return Ok(result);
        }
        if let Some(why) = found.version_state.protection(now_ms, bypass_governance) {
            result.refused = Some(why.into());
            return Ok(result);
        }
        match place {
            Place::Current => {
                b.delete_cf(self.cf(keys::CF_OBJECTS), &okey);
                if versioning.is_none() {
                    self.unqueue_repair_in(b, &okey)?;
                }
            }
            Place::Noncurrent => self.remove_noncurrent_in(b, bucket, key, &found),
        }
        // With no current object left, the newest remaining version becomes current if it is
        // an object (a marker stays where it is: the key then reads as deleted). If the
        // version removed was not the newest, the newest is a marker and nothing moves.
        if place == Place::Current || current.is_none() {
            let removed_seq = (place == Place::Noncurrent).then_some(found.version_state.seq);
            if let Some(next) = self.newest_noncurrent_except(bucket, key, removed_seq)? {
                if !next.is_delete_marker() {
                    self.remove_noncurrent_in(b, bucket, key, &next);
                    self.put_object_in(b, bucket, key, &next, true)?;
                }
            }
        }
        tally.0 = tally.0.saturating_sub(found.size as i64);
        tally.1 -= 1;
        if !found.is_delete_marker() {
            self.queue_gc(b, found.gc_record(), now_ms);
        }
        result.removed = Some((found.version_id(), found.is_delete_marker()));
        Ok(result)
    }

    /// How many entries a key has in `versions`, counting up to `max`.
    pub(super) fn versions_of_key_count(&self, bucket: &str, key: &[u8], max: usize) -> Result<usize, MetaError> {
        let prefix = keys::versions_of_key(bucket, key);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        let mut n = 0;
        while n < max && it.key().is_some_and(|k| k.starts_with(&prefix)) {
            n += 1;
            it.next();
        }
        it.status()?;
        Ok(n)
    }

    /// The parts of `rec` about to become `parts` (healed): their node entries follow.
    fn reindex_parts_in(&self, b: &mut WriteBatch, rec: &ObjectRecord, parts: &[PartInfo]) {
        for new in parts {
            if let Some(old) = rec.parts.iter().find(|p| p.version == new.version) {
                self.reindex_part_in(b, old, new, rec.scheme, rec.packages_per_stripe);
            }
        }
    }

    /// Applies `MetaCommand::MarkDegraded` (see there).
    pub(super) fn apply_mark_degraded(
        &self,
        mut b: WriteBatch,
        bucket: String,
        key: Vec<u8>,
        part: VersionId,
        index: u8,
    ) -> Result<Outcome, MetaError> {
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let found = self.mark_degraded_in(&mut b, &bucket, &key, &part, &|_| vec![index])?;
        self.write(b)?;
        Ok(Outcome::Done(found))
    }

    /// Applies `MetaCommand::EvacuatePart` (see there).
    pub(super) fn apply_evacuate_part(
        &self,
        mut b: WriteBatch,
        node: String,
        part: VersionId,
    ) -> Result<Outcome, MetaError> {
        let owner = self.layout_owner(&part)?;
        // Held until the batch is written: a record read under the key's lock and written
        // after it would undo a commit made in between (the replaced version current again,
        // its shards collected, the new one's orphaned).
        let _locks = owner
            .as_ref()
            .map(|o| (self.bucket_content(&o.bucket), self.lock_key(&o.bucket, &o.key)));
        let found = match &owner {
            Some(owner) => {
                let on_node = |p: &PartInfo| -> Vec<u8> {
                    (0..p.nodes.len())
                        .filter(|i| p.nodes[*i] == node)
                        .map(|i| i as u8)
                        .collect()
                };
                self.mark_degraded_in(&mut b, &owner.bucket, &owner.key, &part, &on_node)?
            }
            None => false,
        };
        if !found {
            // No version or upload holds the part on that node any more: nothing to repair.
            self.unindex_part_in(&mut b, &part, std::slice::from_ref(&node));
        }
        self.write(b)?;
        Ok(Outcome::Done(found))
    }

    /// Marks the shard indexes `which` picks of part `part` degraded, in the version of the
    /// key that holds it (current or noncurrent: the key gets a heal entry) or in the upload
    /// part that is it (its object will be degraded, and healed, once completed). Whether a
    /// holder was found with something to mark. Caller holds the key lock.
    fn mark_degraded_in(
        &self,
        b: &mut WriteBatch,
        bucket: &str,
        key: &[u8],
        part: &VersionId,
        which: &dyn Fn(&PartInfo) -> Vec<u8>,
    ) -> Result<bool, MetaError> {
        // Marks `p` if it is the part: `None` if it is not, else (anything picked, anything
        // newly marked: a record to write).
        let mark = |p: &mut PartInfo| -> Option<(bool, bool)> {
            if p.version != *part {
                return None;
            }
            let picked: Vec<u8> = which(p).into_iter().filter(|i| (*i as usize) < p.nodes.len()).collect();
            let mut changed = false;
            for i in &picked {
                if !p.degraded.contains(i) {
                    p.degraded.push(*i);
                    changed = true;
                }
            }
            p.degraded.sort_unstable();
            Some((!picked.is_empty(), changed))
        };
        let okey = keys::object(bucket, key);
        if let Some(mut rec) = self.get_object_at(keys::CF_OBJECTS, &okey)? {
            if let Some((found, changed)) = rec.parts.iter_mut().find_map(&mark) {
                if changed {
                    b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
                    self.queue_repair_in(b, &okey, margin_of(&rec))?;
                }
                return Ok(found);
            }
        }
        let prefix = keys::versions_of_key(bucket, key);
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_VERSIONS));
        it.seek(&prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            let mut rec = ObjectRecord::decode(v)?;
            if let Some((found, changed)) = rec.parts.iter_mut().find_map(&mark) {
                if changed {
                    b.put_cf(self.cf(keys::CF_VERSIONS), k, rec.encode());
                    self.queue_repair_in(b, &okey, margin_of(&rec))?;
                }
                return Ok(found);
            }
            it.next();
        }
        it.status()?;
        // The uploads in progress under the key, and their parts.
        let mut uploads = okey.clone();
        uploads.push(0);
        let mut ups = self.db.raw_iterator_cf(self.cf(keys::CF_UPLOADS));
        ups.seek(&uploads);
        let mut ids = Vec::new();
        while let Some(k) = ups.key() {
            if !k.starts_with(&uploads) {
                break;
            }
            if let Ok(id) = <[u8; 16]>::try_from(&k[uploads.len()..]) {
                ids.push(id);
            }
            ups.next();
        }
        ups.status()?;
        for id in ids {
            let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_PARTS));
            it.seek(keys::part(&id, 0));
            while let (Some(k), Some(v)) = (it.key(), it.value()) {
                if !k.starts_with(&id) {
                    break;
                }
                let mut up: UploadPartRecord = decode(v)?;
                if let Some((found, changed)) = mark(&mut up.info) {
                    if changed {
                        b.put_cf(self.cf(keys::CF_PARTS), k, encode(&up));
                    }
                    return Ok(found);
                }
                it.next();
            }
            it.status()?;
        }
        Ok(false)
    }

    /// Adds "object := rec" to a batch, with a heal entry if it is degraded. In a bucket
    /// without versions, a healthy object also clears the key's entry (nothing else under the
    /// key can be degraded); in a versioned one the entry may stand for a noncurrent version,
    /// and `DropHeal` clears it. Caller holds the key lock.
    pub(super) fn put_object_in(
        &self,
        b: &mut WriteBatch,
        bucket: &str,
        key: &[u8],
        rec: &ObjectRecord,
        versioned: bool,
    ) -> Result<(), MetaError> {
        let okey = keys::object(bucket, key);
        b.put_cf(self.cf(keys::CF_OBJECTS), &okey, rec.encode());
        if rec.is_degraded() {
            self.queue_repair_in(b, &okey, margin_of(rec))?;
        } else if !versioned {
            self.unqueue_repair_in(b, &okey)?;
        }
        Ok(())
    }
}

fn no_lock_configuration() -> MetaError {
    MetaError::InvalidRequest("Bucket is missing Object Lock Configuration".into())
}

/// A retention may be set, extended, or made COMPLIANCE; shortened, removed or made
/// GOVERNANCE only while it is not in force, or (GOVERNANCE) with the bypass.
fn check_retention_change(
    old: Option<Retention>,
    new: Option<Retention>,
    now_ms: u64,
    bypass_governance: bool,
) -> Result<(), MetaError> {
    let Some(old) = old.filter(|o| o.until_ms > now_ms) else {
        return Ok(());
    };
    // Any change of mode needs the bypass (GOVERNANCE to COMPLIANCE, as S3) or is refused.
    let weaker = match new {
        None => true,
        Some(n) => n.until_ms < old.until_ms || n.mode != old.mode,
    };
    match (weaker, old.mode) {
        (false, _) => Ok(()),
        (true, crate::records::LockMode::Governance) if bypass_governance => Ok(()),
        (true, crate::records::LockMode::Governance) => Err(MetaError::Locked(
            "The retention of a version in GOVERNANCE mode can be shortened or removed only with x-amz-bypass-governance-retention".into(),
        )),
        (true, crate::records::LockMode::Compliance) => Err(MetaError::Locked(
            "The retention of a version in COMPLIANCE mode can only be extended".into(),
        )),
    }
}
