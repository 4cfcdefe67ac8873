//! Lifecycle: rules that expire current versions, noncurrent versions and lone delete markers,
//! and abort stale multipart uploads. A background pass (on the metadata leader) walks the
//! buckets that have rules, in key order, resuming where it stopped (also after a restart:
//! the cursor is saved beside the metadata). Every removal is a `DeleteVersions` command whose
//! guard re-checks, inside the commit, what the pass decided on (the key's newest version is
//! still the one that expired, a version is still noncurrent, a marker still alone), and
//! locked versions are never removed: the command refuses them whatever the rule says.

use crate::{Engine, EngineError, EngineResult};
use coffre_meta::{
    BucketConfigKind, DeleteGuard, DeleteTarget, LifecycleConfig, LifecycleRule, MetaCommand, ObjectRecord, Outcome,
    VersionEntry, VersionSel,
};
use coffre_types::{now_millis, VersionId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Versions looked at per metadata page.
const PAGE: usize = 500;
/// Removals per command.
const BATCH: usize = 100;

/// What lifecycle has done since the process started (for `/metrics`).
#[derive(Default)]
pub struct LifecycleCounters {
    pub passes: AtomicU64,
    pub scanned: AtomicU64,
    pub expired_current: AtomicU64,
    pub expired_noncurrent: AtomicU64,
    pub removed_markers: AtomicU64,
    pub aborted_uploads: AtomicU64,
    pub skipped_locked: AtomicU64,
}

impl LifecycleCounters {
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        for (name, v) in [
            ("coffre_lifecycle_passes_total", &self.passes),
            ("coffre_lifecycle_scanned_total", &self.scanned),
            ("coffre_lifecycle_expired_current_total", &self.expired_current),
            ("coffre_lifecycle_expired_noncurrent_total", &self.expired_noncurrent),
            ("coffre_lifecycle_removed_delete_markers_total", &self.removed_markers),
            ("coffre_lifecycle_aborted_uploads_total", &self.aborted_uploads),
            ("coffre_lifecycle_skipped_locked_total", &self.skipped_locked),
        ] {
            out.push_str(&format!(
                "# HELP {name} The lifecycle worker's work since the process started.\n# TYPE {name} counter\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// Whether a rule's filter holds for a version (tags read only when the filter has some).
fn filter_holds(
    engine: &Engine,
    bucket: &str,
    rule: &LifecycleRule,
    key: &[u8],
    rec: &ObjectRecord,
) -> EngineResult<bool> {
    let f = &rule.filter;
    if !key.starts_with(f.prefix.as_bytes())
        || f.size_greater_than.is_some_and(|s| rec.size <= s)
        || f.size_less_than.is_some_and(|s| rec.size >= s)
    {
        return Ok(false);
    }
    if f.tags.is_empty() {
        return Ok(true);
    }
    if rec.is_delete_marker() {
        return Ok(false);
    }
    let attrs = engine.open_attrs(bucket, &String::from_utf8_lossy(key), rec)?;
    Ok(f.tags.iter().all(|t| attrs.tags.contains(t)))
}

impl Engine {
    /// The length of a lifecycle day (86 400 s; shorter only in tests).
    pub fn lifecycle_day_ms(&self) -> u64 {
        self.config.lifecycle_day.as_millis().max(1) as u64
    }

    /// When a current object written at `modified_ms` expires after `days`: S3 rounds up to
    /// the next midnight UTC (the next multiple of the lifecycle day).
    fn expiry_after(&self, modified_ms: u64, days: u32) -> u64 {
        let day = self.lifecycle_day_ms();
        let t = modified_ms.saturating_add(u64::from(days).saturating_mul(day));
        t.div_ceil(day).saturating_mul(day)
    }

    /// When the current object `rec` expires and by which rule (the earliest), if a rule
    /// expires it: what `x-amz-expiration` says.
    pub fn expiration_of(&self, bucket: &str, key: &str, rec: &ObjectRecord) -> EngineResult<Option<(u64, String)>> {
        let Some(cfg) = self.bucket_config::<LifecycleConfig>(bucket, BucketConfigKind::Lifecycle)? else {
            return Ok(None);
        };
        let mut best: Option<(u64, String)> = None;
        for rule in cfg.rules.iter().filter(|r| r.enabled) {
            let Some(exp) = &rule.expiration else { continue };
            let at = match (exp.days, exp.date_ms) {
                (Some(d), _) => self.expiry_after(rec.last_modified_ms, d),
                (None, Some(date)) => date,
                (None, None) => continue,
            };
            if best.as_ref().is_some_and(|(b, _)| *b <= at) {
                continue;
            }
            if filter_holds(self, bucket, rule, key.as_bytes(), rec)? {
                best = Some((at, rule.id.clone()));
            }
        }
        Ok(best)
    }

    pub fn lifecycle_counters(&self) -> &LifecycleCounters {
        &self.lifecycle
    }

    fn cursor_path(&self) -> std::path::PathBuf {
        let dir = self.meta.dir();
        dir.parent().unwrap_or(dir).join("lifecycle.cursor")
    }

    /// Where the last pass stopped: (bucket, key after which to resume).
    fn load_cursor(&self) -> Option<(String, Vec<u8>)> {
        let raw = std::fs::read(self.cursor_path()).ok()?;
        let zero = raw.iter().position(|b| *b == 0)?;
        Some((String::from_utf8(raw[..zero].to_vec()).ok()?, raw[zero + 1..].to_vec()))
    }

    fn save_cursor(&self, cursor: Option<(&str, &[u8])>) {
        let path = self.cursor_path();
        let result = match cursor {
            None => std::fs::remove_file(&path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            }),
            Some((b, k)) => {
                let tmp = path.with_extension("tmp");
                let raw = [b.as_bytes(), &[0], k].concat();
                std::fs::write(&tmp, raw).and_then(|_| std::fs::rename(&tmp, &path))
            }
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not save the lifecycle cursor");
        }
    }

    /// One lifecycle pass over every bucket with rules, at most `rate()` removals per second
    /// (0: unlimited; read as the pass goes, so a change applies at once). Returns how many
    /// versions, markers and uploads it removed.
    pub async fn lifecycle_pass(&self, rate: &(dyn Fn() -> u64 + Sync)) -> EngineResult<u64> {
        // KMS keys whose scheduled deletion has come are shredded on the same schedule.
        self.shred_due_kms_keys_everywhere().await?;
        let resume = self.load_cursor();
        let mut buckets: Vec<(String, LifecycleConfig)> = Vec::new();
        for (name, _) in self.list_buckets()? {
            if let Some(cfg) = self.bucket_config::<LifecycleConfig>(&name, BucketConfigKind::Lifecycle)? {
                if cfg.rules.iter().any(|r| r.enabled) {
                    buckets.push((name, cfg));
                }
            }
        }
        let mut removed = 0;
        let mut limiter = RateLimiter::new(rate);
        for (bucket, cfg) in buckets {
            let after = match &resume {
                Some((b, _)) if *b > bucket => continue,
                Some((b, k)) if *b == bucket => Some(k.clone()),
                _ => None,
            };
            removed += self.lifecycle_bucket(&bucket, &cfg, after, &mut limiter).await?;
        }
        self.save_cursor(None);
        self.lifecycle.passes.fetch_add(1, Ordering::Relaxed);
        Ok(removed)
    }

    async fn lifecycle_bucket(
        &self,
        bucket: &str,
        cfg: &LifecycleConfig,
        after: Option<Vec<u8>>,
        limiter: &mut RateLimiter<'_>,
    ) -> EngineResult<u64> {
        let now = now_millis();
        let day = self.lifecycle_day_ms();
        let rules: Vec<&LifecycleRule> = cfg.rules.iter().filter(|r| r.enabled).collect();
        let mut removed = 0u64;
        // Uploads first: they are few.
        for rule in rules.iter().filter(|r| r.abort_incomplete_days.is_some()) {
            let days = u64::from(rule.abort_incomplete_days.unwrap_or(0));
            let (uploads, _) = self
                .meta
                .list_uploads(bucket, rule.filter.prefix.as_bytes(), None, usize::MAX)?;
            for (key, id, up) in uploads {
                if up.created_ms.saturating_add(days.saturating_mul(day)) <= now {
                    limiter.grant(1).await;
                    let name = String::from_utf8_lossy(&key).into_owned();
                    let entry = self.system_event("LifecycleAbortUpload", bucket, &key, None, String::new());
                    let aborted = self
                        .system_change(entry.clone(), self.abort_upload(bucket, &name, &id), |aborted| {
                            if *aborted {
                                vec![entry]
                            } else {
                                vec![]
                            }
                        })
                        .await?;
                    if aborted {
                        self.lifecycle.aborted_uploads.fetch_add(1, Ordering::Relaxed);
                        removed += 1;
                    }
                }
            }
        }
        if !rules
            .iter()
            .any(|r| r.expiration.is_some() || r.noncurrent_expiration.is_some())
        {
            return Ok(removed);
        }
        // Versions, key by key, in pages: a key whose versions go on in the next page is
        // carried over (its place among its versions, and the time of the version before).
        let mut cursor: Option<(Vec<u8>, Option<VersionSel>)> = after.map(|k| (k, None));
        let mut carry: Option<(Vec<u8>, usize, u64)> = None;
        loop {
            let (page, truncated) = self.meta.list_versions(
                bucket,
                b"",
                None,
                cursor.as_ref().map(|(k, _)| k.as_slice()),
                cursor.as_ref().and_then(|(_, v)| *v),
                PAGE,
            )?;
            let mut groups: Vec<(Vec<u8>, Vec<ObjectRecord>)> = Vec::new();
            for e in page {
                if let VersionEntry::Version { key, record, .. } = e {
                    match groups.last_mut() {
                        Some((k, v)) if *k == key => v.push(record),
                        _ => groups.push((key, vec![record])),
                    }
                }
            }
            let Some((last_key, last)) = groups
                .last()
                .and_then(|(k, v)| v.last().map(|r| (k.clone(), r.clone())))
            else {
                return Ok(removed);
            };
            let mut targets = Vec::new();
            for (key, versions) in &groups {
                let (offset, before) = match &carry {
                    Some((k, offset, before)) if k == key => (*offset, Some(*before)),
                    _ => (0, None),
                };
                self.lifecycle
                    .scanned
                    .fetch_add(versions.len() as u64, Ordering::Relaxed);
                let place = KeyPlace { offset, before };
                self.expirations_of(bucket, &rules, key, versions, place, now, &mut targets)?;
            }
            let offset = match &carry {
                Some((k, offset, _)) if *k == last_key => *offset,
                _ => 0,
            };
            let last_len = groups.last().map_or(0, |(_, v)| v.len());
            carry = Some((last_key.clone(), offset + last_len, last.last_modified_ms));
            for round in crate::object::distinct_key_rounds(targets, |(t, _)| &t.key) {
                let mut rest = &round[..];
                while !rest.is_empty() {
                    let n = limiter.grant(rest.len().min(BATCH)).await;
                    let (batch, tail) = rest.split_at(n);
                    removed += self.apply_expirations(bucket, batch.to_vec()).await?;
                    rest = tail;
                }
            }
            self.save_cursor(Some((bucket, &last_key)));
            if !truncated {
                return Ok(removed);
            }
            cursor = Some((last_key, VersionSel::parse(&last.version_id())));
        }
    }

    /// What the rules remove among some of one key's versions (newest first; `place` says
    /// where they are among all of the key's).
    #[allow(clippy::too_many_arguments)]
    fn expirations_of(
        &self,
        bucket: &str,
        rules: &[&LifecycleRule],
        key: &[u8],
        versions: &[ObjectRecord],
        place: KeyPlace,
        now: u64,
        out: &mut Vec<(DeleteTarget, Kind)>,
    ) -> EngineResult<()> {
        let day = self.lifecycle_day_ms();
        let target = |version: Option<VersionSel>, guard| DeleteTarget {
            key: key.to_vec(),
            version,
            marker_tag: VersionId::random(),
            guard,
        };
        let Some(newest) = versions.first() else { return Ok(()) };
        let first = place.offset == 0;
        // The current object: expired by Days or Date.
        if first && !newest.is_delete_marker() {
            let expired = rules.iter().any(|rule| {
                let at = match &rule.expiration {
                    Some(e) => match (e.days, e.date_ms) {
                        (Some(d), _) => Some(self.expiry_after(newest.last_modified_ms, d)),
                        (None, date) => date,
                    },
                    None => None,
                };
                at.is_some_and(|at| at <= now) && filter_holds(self, bucket, rule, key, newest).unwrap_or(false)
            });
            // In a versioned bucket this places a delete marker, allowed over a locked
            // version; in an unversioned one (no locks there) it deletes.
            if expired {
                out.push((
                    target(None, DeleteGuard::LatestIs(newest.version_state.seq)),
                    Kind::Current,
                ));
            }
        }
        // A delete marker with nothing behind it.
        if first && newest.is_delete_marker() && versions.len() == 1 {
            let lone = rules.iter().any(|rule| {
                rule.expiration.as_ref().is_some_and(|e| e.expired_object_delete_marker)
                    && key.starts_with(rule.filter.prefix.as_bytes())
            });
            if lone {
                out.push((
                    target(VersionSel::parse(&newest.version_id()), DeleteGuard::LoneMarker),
                    Kind::Marker,
                ));
            }
        }
        // Noncurrent versions: noncurrent since the next newer one was written.
        for (i, rec) in versions.iter().enumerate() {
            let since = match (i, place.before) {
                (0, None) => continue, // the key's newest: not noncurrent
                (0, Some(before)) => before,
                (i, _) => versions[i - 1].last_modified_ms,
            };
            // How many noncurrent versions are newer than this one.
            let newer = place.offset + i - 1;
            let expired = rules.iter().any(|rule| {
                let Some(n) = &rule.noncurrent_expiration else {
                    return false;
                };
                let old_enough = n
                    .days
                    .is_none_or(|d| since.saturating_add(u64::from(d).saturating_mul(day)) <= now);
                let beyond_kept = n.newer_versions.is_none_or(|k| newer >= k as usize);
                old_enough
                    && beyond_kept
                    && (n.days.is_some() || n.newer_versions.is_some())
                    && filter_holds(self, bucket, rule, key, rec).unwrap_or(false)
            });
            if !expired {
                continue;
            }
            if rec.version_state.protection(now, false).is_some() {
                self.lifecycle.skipped_locked.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            out.push((
                target(VersionSel::parse(&rec.version_id()), DeleteGuard::Noncurrent),
                Kind::Noncurrent,
            ));
        }
        Ok(())
    }

    async fn apply_expirations(&self, bucket: &str, batch: Vec<(DeleteTarget, Kind)>) -> EngineResult<u64> {
        let kinds: Vec<Kind> = batch.iter().map(|(_, k)| *k).collect();
        let keys: Vec<Vec<u8>> = batch.iter().map(|(t, _)| t.key.clone()).collect();
        let cmd = MetaCommand::DeleteVersions {
            bucket: bucket.to_string(),
            targets: batch.into_iter().map(|(t, _)| t).collect(),
            bypass_governance: false,
            now_ms: now_millis(),
        };
        // The removals and their entries (one per key removed) are one unit.
        let draft = self.system_event("LifecycleExpire", bucket, b"", None, format!("{} keys", keys.len()));
        let entries = |o: &Outcome| -> Vec<coffre_audit::Event> {
            let Outcome::DeleteResults(results) = o else {
                return vec![];
            };
            results
                .iter()
                .zip(&kinds)
                .zip(&keys)
                .filter(|((r, _), _)| r.refused.is_none())
                .filter_map(|((r, kind), key)| {
                    let (op, version) = match (&r.removed, &r.marker) {
                        (Some((v, _)), _) => ("LifecycleExpire", Some(v.clone())),
                        (None, Some(m)) => ("LifecycleDeleteMarker", Some(m.clone())),
                        (None, None) => return None,
                    };
                    Some(self.system_event(op, bucket, key, version, format!("{kind:?}")))
                })
                .collect()
        };
        let results = match self
            .system_change(draft, self.meta_call(move |m| m.apply(cmd)), entries)
            .await?
        {
            Outcome::DeleteResults(r) => r,
            other => return Err(EngineError::Internal(format!("DeleteVersions answered {other:?}"))),
        };
        let mut done = 0;
        for (kind, r) in kinds.into_iter().zip(results) {
            if r.refused.is_some() {
                self.lifecycle.skipped_locked.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if r.removed.is_none() && r.marker.is_none() {
                continue; // the guard no longer held: someone wrote meanwhile
            }
            done += 1;
            let counter = match kind {
                Kind::Current => &self.lifecycle.expired_current,
                Kind::Noncurrent => &self.lifecycle.expired_noncurrent,
                Kind::Marker => &self.lifecycle.removed_markers,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(done)
    }
}

/// Where a run of a key's versions starts among all of them.
#[derive(Clone, Copy, Debug)]
struct KeyPlace {
    /// Index of the run's first version (0: the key's newest).
    offset: usize,
    /// When the version before the run was written.
    before: Option<u64>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Current,
    Noncurrent,
    Marker,
}

/// At most `rate()` removals per second (0: unlimited), in bursts of at most one second's
/// worth.
struct RateLimiter<'a> {
    rate: &'a (dyn Fn() -> u64 + Sync),
    window_start: tokio::time::Instant,
    used: u64,
}

impl<'a> RateLimiter<'a> {
    fn new(rate: &'a (dyn Fn() -> u64 + Sync)) -> RateLimiter<'a> {
        RateLimiter {
            rate,
            window_start: tokio::time::Instant::now(),
            used: 0,
        }
    }

    /// Waits until some of `want` (≥ 1) removals may go, and says how many: never more
    /// than a second's worth.
    async fn grant(&mut self, want: usize) -> usize {
        if self.window_start.elapsed() >= Duration::from_secs(1) {
            self.window_start = tokio::time::Instant::now();
            self.used = 0;
        }
        let rate = (self.rate)();
        if rate == 0 {
            return want.max(1);
        }
        if self.used >= rate {
            tokio::time::sleep_until(self.window_start + Duration::from_secs(1)).await;
            self.window_start = tokio::time::Instant::now();
            self.used = 0;
        }
        let n = (want as u64).min(rate - self.used).max(1);
        self.used = self.used.saturating_add(n);
        usize::try_from(n).unwrap_or(1)
    }
}
