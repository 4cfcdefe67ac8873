//! Commands of the data path's bookkeeping: a write's intent and its abort, the GC's and
//! the healer's queues, the audit notes settled.

use super::*;

impl MetaStore {
    /// Applies `MetaCommand::BeginWrite` (see there).
    pub(super) fn apply_begin_write(
        &self,
        mut b: WriteBatch,
        version: VersionId,
        nodes: Vec<String>,
        now_ms: u64,
    ) -> Result<Outcome, MetaError> {
        let rec = IntentRecord {
            started_ms: now_ms,
            nodes,
        };
        b.put_cf(self.cf(keys::CF_INTENTS), keys::version(&version), encode(&rec));
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::AbortWrite` (see there).
    pub(super) fn apply_abort_write(
        &self,
        mut b: WriteBatch,
        version: VersionId,
        nodes: Vec<String>,
        stripes: Option<u32>,
        now_ms: u64,
    ) -> Result<Outcome, MetaError> {
        // Without its intent, the write was committed (a commit whose answer was
        // lost, then applied) or aborted already: its shards are not garbage.
        let intent = keys::version(&version);
        if self.db.get_pinned_cf(self.cf(keys::CF_INTENTS), &intent)?.is_some() {
            let part = GcPart {
                version,
                nodes,
                stripes,
            };
            self.queue_gc(&mut b, GcRecord { parts: vec![part] }, now_ms);
            b.delete_cf(self.cf(keys::CF_INTENTS), intent);
        }
        self.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::GcDone` (see there).
    pub(super) fn apply_gc_done(
        &self,
        mut b: WriteBatch,
        raw_key: Vec<u8>,
        versions: Vec<VersionId>,
    ) -> Result<Outcome, MetaError> {
        // The collected parts leave every node's index their GC entry names.
        if let Some(gc) = self.get::<GcRecord>(keys::CF_GC, &raw_key)? {
            for p in &gc.parts {
                self.unindex_part_in(&mut b, &p.version, &p.nodes);
            }
        }
        b.delete_cf(self.cf(keys::CF_GC), raw_key);
        for v in &versions {
            b.delete_cf(self.cf(keys::CF_LAYOUTS), keys::version(v));
        }
        // Not synced: losing it only makes the GC delete the (missing) shards again.
        self.db.write(b)?;
        Ok(Outcome::Unit)
    }

    /// Applies `MetaCommand::DropHeal` (see there).
    pub(super) fn apply_drop_heal(&self, mut b: WriteBatch, raw_key: Vec<u8>) -> Result<Outcome, MetaError> {
        // Only if nothing under the key is degraded now: a degraded write or an
        // overwrite may have come since the heal pass looked.
        let zero = raw_key.iter().position(|c| *c == 0).unwrap_or(raw_key.len());
        let bucket = String::from_utf8_lossy(&raw_key[..zero]).into_owned();
        let key = raw_key.get(zero + 1..).unwrap_or_default().to_vec();
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let degraded = self.get_object(&bucket, &key)?.is_some_and(|r| r.is_degraded())
            || self
                .noncurrent_versions(&bucket, &key)?
                .iter()
                .any(ObjectRecord::is_degraded);
        if degraded {
            return Ok(Outcome::Done(false));
        }
        b.delete_cf(self.cf(keys::CF_HEAL), raw_key);
        self.db.write(b)?;
        Ok(Outcome::Done(true))
    }

    /// Applies `MetaCommand::ForgetAuditNotes` (see there).
    pub(super) fn apply_forget_audit_notes(
        &self,
        mut b: WriteBatch,
        origin: String,
        ids: Vec<String>,
    ) -> Result<Outcome, MetaError> {
        self.forget_audit_notes_in(&mut b, &origin, &ids);
        self.write(b)?;
        Ok(Outcome::Unit)
    }
}
