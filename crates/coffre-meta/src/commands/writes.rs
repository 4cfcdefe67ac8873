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
        // `raw_key` is the `repair` entry the pass took (`margin ∥ objects key`). The key
        // leaves the queue only if nothing under it is degraded now: a degraded write or an
        // overwrite may have come since the heal pass looked.
        let okey = raw_key.get(1..).unwrap_or_default().to_vec();
        let zero = okey.iter().position(|c| *c == 0).unwrap_or(okey.len());
        let bucket = String::from_utf8_lossy(&okey[..zero]).into_owned();
        let key = okey.get(zero + 1..).unwrap_or_default().to_vec();
        let _b = self.bucket_content(&bucket);
        let _k = self.lock_key(&bucket, &key);
        let degraded = self.get_object(&bucket, &key)?.is_some_and(|r| r.is_degraded())
            || self
                .noncurrent_versions(&bucket, &key)?
                .iter()
                .any(ObjectRecord::is_degraded);
        let margin = self
            .db
            .get_pinned_cf(self.cf(keys::CF_HEAL), &okey)?
            .and_then(|v| v.first().copied());
        if degraded {
            // Still queued; an entry left behind at another margin goes.
            if margin != raw_key.first().copied() {
                b.delete_cf(self.cf(keys::CF_REPAIR), &raw_key);
                self.db.write(b)?;
            }
            return Ok(Outcome::Done(false));
        }
        self.unqueue_repair_in(&mut b, &okey)?;
        b.delete_cf(self.cf(keys::CF_REPAIR), &raw_key);
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
