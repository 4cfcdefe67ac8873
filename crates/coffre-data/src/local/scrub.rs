//! The scrub of a local store: a walk over every shard it holds, in id order, reading each
//! whole and checking it against the BLAKE3 stored with it (the CRC32C for records written
//! before hashes were stored), so that a shard that rots on a disk nobody reads is found
//! and rebuilt before a second loss makes it matter.
//!
//! One full pass every `period` (30 days by default), paced evenly over it (the store's
//! live bytes over the period), never faster than `rate_mib`; an immediate pass asked by an
//! operator runs at `rate_mib`. Where the pass is, its counters and the findings not yet
//! taken over by a gateway are persisted in `DIR/scrub.json` after every step, so a restart
//! resumes the pass where it stopped and loses no finding. The walk is over the index, so
//! shards written during a pass are covered if their ids come after its position, and by the
//! next pass otherwise.

use super::{guard, LocalShardStore, HASH_LEN, KIND_PUT, KIND_PUT_B3};
use crate::store::{ScrubRequest, ScrubStatus, StoreError};
use coffre_types::ShardId;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Default pace: one full pass every 30 days.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(30 * 86_400);
/// Default read rate cap per store, MiB/s.
pub const DEFAULT_RATE_MIB: u64 = 64;
/// Findings a store keeps for a gateway to take over (beyond, they are counted and found
/// again by the next pass).
const MAX_FINDINGS: usize = 100_000;
/// Findings returned in one answer.
pub const FINDINGS_PER_ANSWER: usize = 1_000;
/// Shards looked up in the index per batch of a step.
const BATCH: usize = 256;
/// The slowest pace of a periodic pass (a store holding little still finishes on time).
const MIN_PACE: u64 = 64 << 10;
#[cfg(test)]
pub(super) const MIN_PACE_FOR_TESTS: u64 = MIN_PACE;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct ScrubState {
    /// The last shard verified by the pass under way (hex), `None` at its start.
    position: Option<String>,
    /// When the pass under way started (`None`: no pass under way).
    pass_started_ms: Option<u64>,
    /// When the last pass started, and ended: what schedules the next.
    last_pass_started_ms: Option<u64>,
    last_pass_done_ms: Option<u64>,
    passes: u64,
    pass_shards: u64,
    shards_checked: u64,
    bytes_checked: u64,
    corrupt_found: u64,
    findings: BTreeSet<String>,
    requested: bool,
    rate_mib: u64,
    period_secs: u64,
}

impl Default for ScrubState {
    fn default() -> Self {
        ScrubState {
            position: None,
            pass_started_ms: None,
            last_pass_started_ms: None,
            last_pass_done_ms: None,
            passes: 0,
            pass_shards: 0,
            shards_checked: 0,
            bytes_checked: 0,
            corrupt_found: 0,
            findings: BTreeSet::new(),
            requested: false,
            rate_mib: DEFAULT_RATE_MIB,
            period_secs: DEFAULT_PERIOD.as_secs(),
        }
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("scrub.json")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ScrubState {
    /// The persisted state, or a fresh one (a damaged file restarts the pass, nothing worse).
    pub(super) fn load(dir: &Path) -> ScrubState {
        match std::fs::read(state_path(dir)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_else(|e| {
                tracing::warn!(dir = %dir.display(), error = %e, "scrub state unreadable: the pass starts over");
                ScrubState::default()
            }),
            Err(_) => ScrubState::default(),
        }
    }

    fn save(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("scrub.json.tmp");
        let body = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_data()?;
        }
        std::fs::rename(&tmp, state_path(dir))?;
        super::sync_dir(dir)
    }

    /// Whether a pass should start now.
    fn due(&self, now: u64) -> bool {
        self.requested
            || self
                .last_pass_started_ms
                .is_none_or(|t| now >= t.saturating_add(self.period_secs.saturating_mul(1000)))
    }
}

/// What one scrub step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrubStep {
    /// Bytes read and verified.
    pub bytes: u64,
    pub shards: u64,
    pub corrupt: u64,
    /// No pass is under way or due: nothing was done.
    pub idle: bool,
}

impl LocalShardStore {
    /// Whether shard `id` reads back intact: its record's BLAKE3 (or CRC32C) matches its
    /// bytes. `None`: the shard is gone (deleted since it was listed). Returns the bytes read.
    fn verify(&self, id: ShardId) -> (Option<bool>, u64) {
        match self.read_record(id) {
            Ok((KIND_PUT_B3, data, _)) => {
                let ok = data.len() >= HASH_LEN && blake3::hash(&data[HASH_LEN..]).as_bytes() == &data[..HASH_LEN];
                (Some(ok), data.len() as u64)
            }
            Ok((KIND_PUT, data, crc)) => (Some(crc_fast::crc32_iscsi(&data) == crc), data.len() as u64),
            Ok(_) => (Some(false), 0),
            // The index points at a record that is not this shard's, or its bytes cannot be
            // read (a lost or cut segment): gone from this disk, to rebuild — unless it was
            // deleted meanwhile.
            Err(_) => match self.inner.index.lookup(&id) {
                Ok(Some(_)) => (Some(false), 0),
                _ => (None, 0),
            },
        }
    }

    /// Verifies shards of the pass under way (starting one if due) until about `max_bytes`
    /// were read (at least one shard), then persists where it stands.
    pub fn scrub_step(&self, max_bytes: u64) -> std::io::Result<ScrubStep> {
        let now = now_ms();
        let mut position = {
            let mut st = guard(&self.inner.scrub);
            if st.pass_started_ms.is_none() {
                if !st.due(now) {
                    return Ok(ScrubStep {
                        idle: true,
                        ..Default::default()
                    });
                }
                st.pass_started_ms = Some(now);
                st.last_pass_started_ms = Some(now);
                st.position = None;
                st.pass_shards = 0;
            }
            st.position
                .as_deref()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| ShardId::from_bytes(&b))
        };
        let mut step = ScrubStep::default();
        let mut found = Vec::new();
        let mut finished = false;
        'walk: while step.bytes < max_bytes.max(1) {
            let batch = self.inner.index.list_after(position.as_ref(), BATCH)?;
            if batch.is_empty() {
                finished = true;
                break;
            }
            for id in batch {
                let (ok, bytes) = self.verify(id);
                position = Some(id);
                step.bytes += bytes;
                if let Some(ok) = ok {
                    step.shards += 1;
                    if !ok {
                        step.corrupt += 1;
                        tracing::error!(store = self.id, shard = %id, "scrub: shard corrupt or unreadable; queued for repair");
                        found.push(id.to_bytes());
                    }
                }
                if step.bytes >= max_bytes.max(1) {
                    break 'walk;
                }
            }
        }
        let dir = self.inner.dir.clone();
        let mut st = guard(&self.inner.scrub);
        st.position = position.map(|id| hex::encode(id.to_bytes()));
        st.pass_shards += step.shards;
        st.shards_checked += step.shards;
        st.bytes_checked += step.bytes;
        st.corrupt_found += step.corrupt;
        for id in found {
            if st.findings.len() < MAX_FINDINGS {
                st.findings.insert(hex::encode(id));
            }
        }
        if finished {
            st.pass_started_ms = None;
            st.position = None;
            st.last_pass_done_ms = Some(now_ms());
            st.passes += 1;
            st.requested = false;
            tracing::info!(store = self.id, shards = st.pass_shards, "scrub: full pass done");
        }
        st.save(&dir)?;
        Ok(step)
    }

    /// The pace of the scrub now, bytes/s: the rate cap for an asked pass, else the store's
    /// live bytes over the period (at least `MIN_PACE`), under the cap (a cap of 0: none).
    pub fn scrub_pace(&self) -> u64 {
        let (cap, period, requested) = {
            let st = guard(&self.inner.scrub);
            let cap = match st.rate_mib {
                0 => u64::MAX,
                r => r.saturating_mul(1 << 20),
            };
            (cap, st.period_secs.max(1), st.requested)
        };
        if requested {
            return cap;
        }
        let live: u64 = self.inner.index.stats().iter().map(|(_, s)| s.live).sum();
        (live / period).max(MIN_PACE).min(cap)
    }

    /// Whether an operator asked for a pass that has not finished.
    pub fn scrub_requested(&self) -> bool {
        guard(&self.inner.scrub).requested
    }

    /// Applies a gateway's request and answers where the scrub stands.
    pub(super) fn scrub_request(&self, req: ScrubRequest) -> Result<ScrubStatus, StoreError> {
        let dir = self.inner.dir.clone();
        let mut st = guard(&self.inner.scrub);
        let mut changed = false;
        if let Some(r) = req.rate_mib {
            changed |= st.rate_mib != r;
            st.rate_mib = r;
        }
        if let Some(p) = req.period_secs {
            let p = p.max(1);
            changed |= st.period_secs != p;
            st.period_secs = p;
        }
        if req.start && !st.requested {
            st.requested = true;
            // A periodic pass under way becomes the asked one, at the cap: it covers every
            // shard from where it is to the end, and goes on from the start.
            if st.pass_started_ms.is_some() {
                st.pass_started_ms = None;
                st.position = None;
            }
            changed = true;
        }
        for id in &req.ack {
            changed |= st.findings.remove(id);
        }
        if changed {
            st.save(&dir)?;
        }
        Ok(ScrubStatus {
            node: self.id.clone(),
            running: st.pass_started_ms.is_some(),
            requested: st.requested,
            pass_started_ms: st.pass_started_ms,
            last_pass_done_ms: st.last_pass_done_ms,
            passes: st.passes,
            pass_shards: st.pass_shards,
            shards: self.inner.index.shards(),
            shards_checked: st.shards_checked,
            bytes_checked: st.bytes_checked,
            corrupt_found: st.corrupt_found,
            findings: st.findings.iter().take(FINDINGS_PER_ANSWER).cloned().collect(),
            findings_pending: st.findings.len() as u64,
            rate_mib: st.rate_mib,
            period_secs: st.period_secs,
        })
    }
}
