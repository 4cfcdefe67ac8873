//! The writer: the open segment and the chain's state, used by one leader at a time. It
//! appends batches with one durable write, signs checkpoints, starts segments (and expires
//! old ones), and at start-up checks the tail of the chain against the recorded head.

use super::*;

/// What writing a batch did.
pub(super) struct Written {
    /// The number of the batch's first entry.
    pub(super) first: u64,
    /// The chain after the batch.
    pub(super) state: (u64, Hash),
    /// Something was written: the entries to forward to the SIEM (the head is recorded then).
    pub(super) forward: Option<Vec<(String, Vec<u8>)>>,
}

/// The open segment and the chain's state (used by one leader at a time).
pub(super) struct Writer {
    pub(super) config: AuditConfig,
    pub(super) key: Ed25519KeyPair,
    pub(super) head: Arc<dyn HeadStore>,
    pub(super) seg: SegmentFile,
    pub(super) path: PathBuf,
    pub(super) day: u64,
    pub(super) n: u64,
    pub(super) h: Hash,
    pub(super) signed_n: u64,
    /// When the oldest unsigned entry was written.
    pub(super) unsigned_since: Option<Instant>,
    /// Events the writer itself produced (expired segments), written with the next batch.
    pub(super) own_events: Vec<Event>,
    pub(super) forwarder: Option<Arc<Forwarder>>,
}

fn today() -> u64 {
    coffre_types::now_millis() / 86_400_000
}

fn io(e: std::io::Error) -> String {
    e.to_string()
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Writer {
    pub(super) fn open(
        config: AuditConfig,
        key: Ed25519KeyPair,
        certificate: Option<&str>,
        head: Arc<dyn HeadStore>,
        forwarder: Option<Arc<Forwarder>>,
    ) -> Result<(Writer, Vec<String>), String> {
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let mut notes = Vec::new();
        let mut own_events = Vec::new();
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(key.public_key().as_ref());
        // The public key (and its certificate) beside the segments: what a verifier trusts.
        let pub_path = dir.join("audit.pub");
        let previous_key = std::fs::read_to_string(&pub_path)
            .ok()
            .and_then(|t| parse_public_key(&t));
        if previous_key != Some(public_key) {
            if let Some(old) = previous_key {
                let what = format!(
                    "the audit key changed (was {}); segments before this point verify with the old key",
                    hex::encode(&old[..8])
                );
                notes.push(what.clone());
                let mut e = Event::system("AuditKeyChanged", "", "", "");
                e.detail = Some(what);
                own_events.push(e);
            }
            write_file(&pub_path, public_key_pem(&public_key).as_bytes())?;
        }
        if let Some(cert) = certificate {
            write_file(&dir.join("audit.pem"), cert.as_bytes())?;
        }
        let recorded = head.load()?;
        let segments = segment::list_segments(&dir).map_err(io)?;
        let mut start_fresh_segment = previous_key.is_some_and(|k| k != public_key);
        let (n, h, path, size) = match segments.last() {
            None => {
                if let Some((hn, _)) = recorded.filter(|(hn, _)| *hn > 0) {
                    let what = format!(
                        "the audit log is gone: no segment in {}, entry {hn} was acknowledged",
                        dir.display()
                    );
                    accept_or_refuse(&config, &what, &mut notes, &mut own_events)?;
                }
                let (n, h) = recorded.unwrap_or((0, GENESIS));
                start_fresh_segment = true;
                (n, h, PathBuf::new(), 0)
            }
            Some(last) => {
                let tail = read_tail(last, &previous_key.unwrap_or(public_key), &config.gateway, recorded)?;
                if let Some(torn_at) = tail.torn_at {
                    notes.push(format!(
                        "{}: removed a torn record at byte {torn_at} (a crash during a write; never acknowledged)",
                        display_name(last)
                    ));
                }
                if let Some(problem) = &tail.problem {
                    accept_or_refuse(&config, problem, &mut notes, &mut own_events)?;
                }
                if tail.good_len == 0 {
                    // Not even its first checkpoint holds: the segment goes aside whole, and
                    // the chain continues from the end of the one before (if any).
                    let aside = last.with_extension("log.broken");
                    std::fs::rename(last, &aside).map_err(io)?;
                    notes.push(format!("{} moved to {}", display_name(last), display_name(&aside)));
                    let before = segments.len().checked_sub(2).map(|i| &segments[i]);
                    let (n, h) = match before {
                        Some(prev) => {
                            let t = read_tail(prev, &previous_key.unwrap_or(public_key), &config.gateway, None)?;
                            (t.n, t.h)
                        }
                        None => (0, GENESIS),
                    };
                    start_fresh_segment = true;
                    (n, h, PathBuf::new(), 0)
                } else {
                    // Whatever follows the records that verified goes: the zeros kept ahead of
                    // them, a torn record, and (accepted above) records from the first bad one
                    // on — those are kept aside for investigation first. The chain continues in
                    // this segment from its last valid entry, so it stays one chain.
                    let mut f = std::fs::OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(last)
                        .map_err(io)?;
                    if f.metadata().map_err(io)?.len() > tail.good_len {
                        use std::io::{Read, Seek};
                        let mut rest = Vec::new();
                        f.seek(std::io::SeekFrom::Start(tail.good_len)).map_err(io)?;
                        f.read_to_end(&mut rest).map_err(io)?;
                        if tail.problem.is_some() && rest.iter().any(|&b| b != 0) {
                            let aside = last.with_extension("log.broken");
                            std::fs::write(&aside, &rest).map_err(io)?;
                            notes.push(format!(
                                "{}: the records after byte {} moved to {}",
                                display_name(last),
                                tail.good_len,
                                display_name(&aside)
                            ));
                        }
                        f.set_len(tail.good_len).map_err(io)?;
                        f.sync_all().map_err(io)?;
                    }
                    (tail.n, tail.h, last.clone(), tail.good_len)
                }
            }
        };
        let (seg, path) = if start_fresh_segment {
            let path = config.dir.join(segment_name(n + 1));
            (SegmentFile::create(&path).map_err(io)?, path)
        } else {
            (SegmentFile::reopen(&path, size).map_err(io)?, path)
        };
        let mut w = Writer {
            seg,
            config,
            key,
            head,
            path,
            day: today(),
            n,
            h,
            signed_n: n,
            unsigned_since: None,
            own_events,
            forwarder,
        };
        if start_fresh_segment {
            w.start_segment().map_err(io)?;
        } else {
            w.day = segment::first_checkpoint(&w.path)
                .map(|c| c.time / 86_400_000)
                .unwrap_or_else(today);
            // The state the server starts from, signed.
            let line = w.checkpoint_line();
            w.seg.append_durably(line.as_bytes()).map_err(io)?;
        }
        w.head.record(w.n, &w.h)?;
        Ok((w, notes))
    }

    pub(super) fn checkpoint_line(&mut self) -> String {
        let checkpoint = Checkpoint {
            gateway: self.config.gateway.clone(),
            n: self.n,
            h: self.h,
            time: coffre_types::now_millis(),
        };
        let sig = self.key.sign(&checkpoint.signed_bytes()).as_ref().to_vec();
        self.signed_n = self.n;
        self.unsigned_since = None;
        let mut line = Record::Checkpoint { checkpoint, sig }.render();
        line.push('\n');
        line
    }

    /// Starts a segment whose first line signs the current state.
    pub(super) fn new_segment(&mut self) -> std::io::Result<()> {
        let path = self.config.dir.join(segment_name(self.n + 1));
        self.seg = SegmentFile::create(&path)?;
        self.path = path;
        self.start_segment()
    }

    /// Signs the current state as the first line of the segment just created.
    pub(super) fn start_segment(&mut self) -> std::io::Result<()> {
        self.day = today();
        let line = self.checkpoint_line();
        self.seg.append_durably(line.as_bytes())?;
        sync_dir(&self.config.dir)?;
        self.expire();
        Ok(())
    }

    /// Removes the segments whose every entry is older than the retention (never the last).
    pub(super) fn expire(&mut self) {
        let Ok(segments) = segment::list_segments(&self.config.dir) else {
            return;
        };
        let cutoff = coffre_types::now_millis().saturating_sub(self.config.retention.as_millis() as u64);
        for pair in segments.windows(2) {
            let next_start = segment::first_checkpoint(&pair[1]).map(|c| c.time).unwrap_or(u64::MAX);
            if next_start >= cutoff {
                break;
            }
            match std::fs::remove_file(&pair[0]) {
                Ok(()) => {
                    let mut e = Event::system("AuditSegmentExpired", "", "", "");
                    e.detail = Some(display_name(&pair[0]));
                    self.own_events.push(e);
                }
                Err(e) => tracing::warn!(target: "coffre::audit", error = %e, "could not remove an expired segment"),
            }
        }
    }

    /// Writes a batch: its events, then a checkpoint when one is due; one sync for all.
    pub(super) fn process(&mut self, batch: &[Msg], closing: bool) -> Result<Written, String> {
        if self.seg.size() >= self.config.segment_bytes || today() != self.day {
            // A segment without entries yet would be replaced by one of the same name.
            if self.path.file_name().and_then(|n| n.to_str()) == Some(segment_name(self.n + 1).as_str()) {
                self.day = today();
            } else {
                self.new_segment().map_err(io)?;
            }
        }
        let first = self.n + 1;
        let own = std::mem::take(&mut self.own_events);
        let events = batch
            .iter()
            .filter_map(|m| match m {
                Msg::Append(events, _) => Some(events.iter()),
                _ => None,
            })
            .flatten()
            .chain(own.iter());
        let (mut n, mut h) = (self.n, self.h);
        let mut buf = String::new();
        let mut forward = Vec::new();
        for e in events {
            let json = serde_json::to_vec(e).map_err(|e| e.to_string())?;
            n += 1;
            let tag = self.config.tag_of(&e.tenant);
            h = link(
                &h,
                n,
                &tag.unwrap_or_else(|| tenant_tag(&e.tenant)),
                &content_hash(&json),
            );
            if self.forwarder.is_some() {
                forward.push((e.time.clone(), json.clone()));
            }
            buf.push_str(&Record::Entry { n, h, tag, event: json }.render());
            buf.push('\n');
        }
        let (saved_n, saved_h) = (self.n, self.h);
        self.n = n;
        self.h = h;
        if n > self.signed_n && self.unsigned_since.is_none() {
            self.unsigned_since = Some(Instant::now());
        }
        let wants_checkpoint = batch.iter().any(|m| matches!(m, Msg::Checkpoint(_)));
        let due = n > self.signed_n
            && (n - self.signed_n >= self.config.checkpoint_every
                || self
                    .unsigned_since
                    .is_some_and(|t| t.elapsed() >= self.config.checkpoint_interval)
                || closing);
        let saved_signed = (self.signed_n, self.unsigned_since);
        if (wants_checkpoint && n > self.signed_n) || due {
            buf.push_str(&self.checkpoint_line());
        }
        if buf.is_empty() {
            return Ok(Written {
                first,
                state: (n, h),
                forward: None,
            });
        }
        if let Err(e) = self.seg.append_durably(buf.as_bytes()) {
            (self.n, self.h) = (saved_n, saved_h);
            (self.signed_n, self.unsigned_since) = saved_signed;
            self.own_events = own;
            return Err(e.to_string());
        }
        Ok(Written {
            first,
            state: (n, h),
            forward: Some(forward),
        })
    }

    /// After a batch's waiters are answered: records the chain head in the metadata (a RocksDB
    /// write, which may wait for another writer's WAL sync: the waiters need not) and forwards
    /// the batch's entries to the SIEM.
    pub(super) fn publish(&self, forward: Vec<(String, Vec<u8>)>) {
        if let Err(e) = self.head.record(self.n, &self.h) {
            // The entries are durable; the head only detects a shortened tail.
            tracing::warn!(target: "coffre::audit", error = %e, "could not record the audit chain head");
        }
        if let Some(f) = &self.forwarder {
            for (time, json) in forward {
                f.forward(&time, &json);
            }
        }
    }
}

/// Writes a small public file (0644) atomically.
fn write_file(path: &Path, data: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

fn accept_or_refuse(
    config: &AuditConfig,
    problem: &str,
    notes: &mut Vec<String>,
    own_events: &mut Vec<Event>,
) -> Result<(), String> {
    if !config.accept_truncation {
        return Err(format!(
            "the audit chain is broken: {problem}. Investigate (coffre audit verify), then start with --audit-accept-truncation to continue the chain from its last valid entry"
        ));
    }
    notes.push(format!(
        "starting on a broken audit chain (--audit-accept-truncation): {problem}"
    ));
    let mut e = Event::system("AuditTruncationAccepted", "", "", "");
    e.principal = "operator".into();
    e.detail = Some(problem.to_string());
    own_events.push(e);
    Ok(())
}

/// What the start-up check found in the last segment.
struct Tail {
    n: u64,
    h: Hash,
    /// The length of the records that verified.
    good_len: u64,
    /// A last record cut by a crash: where to cut the file.
    torn_at: Option<u64>,
    problem: Option<String>,
}

/// Verifies the last segment from its first checkpoint, and that it reaches the recorded
/// head.
fn read_tail(path: &Path, public_key: &[u8; 32], gateway: &str, recorded: Option<(u64, Hash)>) -> Result<Tail, String> {
    let start = segment::first_checkpoint(path);
    // Only a head inside (or after) this segment can be checked here.
    let head = recorded.filter(|(hn, _)| start.as_ref().is_some_and(|c| *hn >= c.n));
    let mut v = Verifier::new(Expectations {
        public_key: *public_key,
        gateway: Some(gateway.to_string()),
        tenant: None,
        tenant_tag: None,
        head,
    });
    let name = display_name(path);
    let mut lines = Lines::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tail = Tail {
        n: 0,
        h: GENESIS,
        good_len: 0,
        torn_at: None,
        problem: None,
    };
    let mut pending: Option<(u64, String)> = None;
    let mut last_line = 0;
    let mut state: Option<(u64, Hash)> = None;
    while let Some(line) = lines.next_line().map_err(io)? {
        last_line = line.number;
        if let Some((offset, why)) = pending.take() {
            // An unreadable record followed by more: not a crash, a damage.
            tail.problem = Some(format!("{name}, line {}: {why}", line.number - 1));
            tail.good_len = offset;
            break;
        }
        let record = match line.record {
            Ok(r) if line.complete => r,
            Ok(_) => {
                pending = Some((line.offset, "a torn record".into()));
                continue;
            }
            Err(e) => {
                pending = Some((line.offset, e));
                continue;
            }
        };
        if let Err(p) = v.feed(&record, &name, line.number) {
            tail.problem = Some(p.to_string());
            break;
        }
        state = match &record {
            Record::Entry { n, h, .. } => Some((*n, *h)),
            Record::Checkpoint { checkpoint, .. } => Some((checkpoint.n, checkpoint.h)),
            _ => state,
        };
        tail.good_len = line.offset + line.len;
    }
    if tail.problem.is_none() {
        if let Some((offset, _)) = pending {
            tail.torn_at = Some(offset);
            tail.good_len = offset;
        }
        let report = v.finish(&name, last_line);
        if let Some(p) = report.problem {
            tail.problem = Some(p.to_string());
        }
    }
    match state {
        Some((n, h)) => {
            tail.n = n;
            tail.h = h;
        }
        None if tail.problem.is_none() => tail.problem = Some(format!("{name}: no valid first checkpoint")),
        None => {}
    }
    Ok(tail)
}
