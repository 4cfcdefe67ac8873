//! The repair queue, in risk order: every key with degraded shards has a `heal` entry (its
//! margin as value) and a `repair` entry `margin ∥ key`, so the repair works on the stripes
//! closest to loss first — a key whose most degraded part can lose no more shard before one
//! that can lose two. A key's margin only goes down while it waits (a new finding can only
//! make it worse); `DropHeal` removes both entries once nothing under the key is degraded.
//! `repair` entries whose `heal` entry is gone (the key deleted meanwhile) are met by the
//! repair like the others, find nothing to do, and are dropped then.

use crate::records::ObjectRecord;
use crate::{keys, MetaError, MetaStore};
use coffre_types::Scheme;
use rocksdb::WriteBatch;

/// How many more shards a stripe of `scheme` with `degraded` shards lost can lose: its
/// place in the repair order (`keys::repair`).
pub fn repair_margin(scheme: Scheme, degraded: usize) -> u8 {
    scheme
        .total()
        .saturating_sub(degraded)
        .saturating_sub(scheme.data as usize)
        .min(u8::MAX as usize) as u8
}

/// The margin of the most degraded part of `rec`.
pub(crate) fn margin_of(rec: &ObjectRecord) -> u8 {
    rec.parts
        .iter()
        .map(|p| repair_margin(rec.scheme, p.degraded.len()))
        .min()
        .unwrap_or(0)
}

impl MetaStore {
    /// Queues the key `okey` for repair with `margin` (or its current one, if lower).
    pub(crate) fn queue_repair_in(&self, b: &mut WriteBatch, okey: &[u8], margin: u8) -> Result<(), MetaError> {
        let old = self
            .db
            .get_pinned_cf(self.cf(keys::CF_HEAL), okey)?
            .and_then(|v| v.first().copied());
        let m = old.map_or(margin, |o| o.min(margin));
        if let Some(o) = old.filter(|o| *o != m) {
            b.delete_cf(self.cf(keys::CF_REPAIR), keys::repair(o, okey));
        }
        b.put_cf(self.cf(keys::CF_HEAL), okey, [m]);
        b.put_cf(self.cf(keys::CF_REPAIR), keys::repair(m, okey), []);
        Ok(())
    }

    /// Takes `okey` out of the queue (its `heal` entry, and the `repair` entry it names).
    pub(crate) fn unqueue_repair_in(&self, b: &mut WriteBatch, okey: &[u8]) -> Result<(), MetaError> {
        if let Some(m) = self
            .db
            .get_pinned_cf(self.cf(keys::CF_HEAL), okey)?
            .and_then(|v| v.first().copied())
        {
            b.delete_cf(self.cf(keys::CF_REPAIR), keys::repair(m, okey));
        }
        b.delete_cf(self.cf(keys::CF_HEAL), okey);
        Ok(())
    }

    /// Gives `heal` entries written before the risk order (no margin) their `repair` entry:
    /// once, at start-up (and after installing a snapshot from that version).
    pub(crate) fn ensure_repair_queue(&self) -> Result<(), MetaError> {
        let mut b = WriteBatch::default();
        let mut n = 0;
        for item in self
            .db
            .iterator_cf(self.cf(keys::CF_HEAL), rocksdb::IteratorMode::Start)
        {
            let (okey, v) = item?;
            if !v.is_empty() {
                continue;
            }
            let margin = match self.get_object_at(keys::CF_OBJECTS, &okey)? {
                Some(rec) if rec.is_degraded() => margin_of(&rec),
                _ => 0,
            };
            b.put_cf(self.cf(keys::CF_HEAL), &okey, [margin]);
            b.put_cf(self.cf(keys::CF_REPAIR), keys::repair(margin, &okey), []);
            n += 1;
        }
        if n > 0 {
            self.write(b)?;
            tracing::info!(keys = n, "repair queue ordered by risk");
        }
        Ok(())
    }
}
