//! Verification: recompute the chain, check every checkpoint's signature, and say where the
//! first break is (segment, line, entry number).

use crate::chain::{content_hash, link, tenant_tag, Checkpoint, Hash, Record};
use crate::segment::{display_name, Lines};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::PathBuf;

/// Where a record is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The segment's (or export's) file name.
    pub segment: String,
    /// The line, from 1.
    pub line: u64,
    /// The entry number the line holds or should hold.
    pub entry: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "segment {}, line {}, entry {}", self.segment, self.line, self.entry)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub position: Position,
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.position, self.what)
    }
}

/// What a verification found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    pub ok: bool,
    pub segments: u64,
    pub entries: u64,
    pub redacted: u64,
    pub checkpoints: u64,
    pub first_entry: Option<u64>,
    pub last_entry: Option<u64>,
    /// The last entry a valid checkpoint signs.
    pub last_signed: Option<u64>,
    /// Entries after the last checkpoint (not yet signed: the writer signs every few seconds).
    pub unsigned_tail: u64,
    /// The last file ended in the middle of a record: a write in progress (a live log) or cut
    /// by a crash (the server removes it at start). Not an entry anyone was answered for.
    #[serde(default)]
    pub torn_tail: bool,
    pub gateway: Option<String>,
    pub problem: Option<Problem>,
}

/// What the verifier trusts and expects.
#[derive(Clone, Debug, Default)]
pub struct Expectations {
    /// The audit key's Ed25519 public key.
    pub public_key: [u8; 32],
    /// The gateway the checkpoints must name (from its certificate), if known.
    pub gateway: Option<String>,
    /// An export's tenant: none of its entries may be redacted.
    pub tenant: Option<String>,
    /// That tenant's keyed tag, as the export's header signed it.
    pub tenant_tag: Option<Hash>,
    /// The chain head the metadata recorded (entry number and chain value): the log must
    /// reach it (removing acknowledged entries from the tail is detected).
    pub head: Option<(u64, Hash)>,
}

/// Recomputes a chain record by record.
pub struct Verifier {
    expect: Expectations,
    /// The exported tenant's tags: unkeyed (lines written before tags were keyed) and keyed.
    tenant_tags: Vec<Hash>,
    state: Option<(u64, Hash)>,
    head_seen: bool,
    pub report: Report,
}

impl Verifier {
    pub fn new(expect: Expectations) -> Verifier {
        Verifier {
            tenant_tags: expect
                .tenant
                .as_deref()
                .map(tenant_tag)
                .into_iter()
                .chain(expect.tenant_tag)
                .collect(),
            head_seen: false,
            state: None,
            report: Report::default(),
            expect,
        }
    }

    pub(crate) fn fail(&mut self, position: Position, what: impl Into<String>) -> Problem {
        let p = Problem {
            position,
            what: what.into(),
        };
        self.report.problem = Some(p.clone());
        p
    }

    /// Takes the next record; the first problem ends verification.
    pub fn feed(&mut self, record: &Record, segment: &str, line: u64) -> Result<(), Problem> {
        let at = |entry: u64| Position {
            segment: segment.to_string(),
            line,
            entry,
        };
        match record {
            Record::Header(_) => Ok(()),
            Record::Checkpoint { checkpoint, sig } => {
                let pos = at(checkpoint.n);
                if !verify_signature(&self.expect.public_key, checkpoint, sig) {
                    return Err(self.fail(pos, "checkpoint signature is not the audit key's"));
                }
                match (&self.report.gateway, &self.expect.gateway) {
                    (_, Some(g)) | (Some(g), None) if *g != checkpoint.gateway => {
                        let what = format!("checkpoint of gateway {:?}, expected {g:?}", checkpoint.gateway);
                        return Err(self.fail(pos, what));
                    }
                    _ => self.report.gateway = Some(checkpoint.gateway.clone()),
                }
                if let Some((n, h)) = self.state {
                    if checkpoint.n != n {
                        let what = if checkpoint.n > n {
                            format!(
                                "entries {}..={} are missing before this checkpoint",
                                n + 1,
                                checkpoint.n
                            )
                        } else {
                            format!(
                                "checkpoint of entry {} after entry {n}: entries out of order",
                                checkpoint.n
                            )
                        };
                        return Err(self.fail(at(n.saturating_add(1)), what));
                    }
                    if checkpoint.h != h {
                        return Err(self.fail(
                            pos,
                            "the chain differs from the signed checkpoint: an entry before it was altered",
                        ));
                    }
                }
                self.state = Some((checkpoint.n, checkpoint.h));
                self.report.checkpoints += 1;
                self.report.last_signed = Some(checkpoint.n);
                self.report.unsigned_tail = 0;
                self.check_head(checkpoint.n, &checkpoint.h, pos)
            }
            Record::Entry { n, h, tag, event } => {
                let tenant = match serde_json::from_slice::<TenantOnly>(event) {
                    Ok(t) => t.tenant,
                    Err(_) => return Err(self.fail(at(*n), "the entry's event is unreadable")),
                };
                // An export's own entries carry the tag its header signed.
                if let (Some(stored), Some(signed)) = (tag, self.expect.tenant_tag) {
                    if self.expect.tenant.as_deref() == Some(tenant.as_str()) && *stored != signed {
                        return Err(self.fail(at(*n), "an entry of the exported tenant carries another tag"));
                    }
                }
                let tag = tag.unwrap_or_else(|| tenant_tag(&tenant));
                self.entry(*n, h, &tag, &content_hash(event), at(*n), false)
            }
            Record::Redacted { n, h, tenant, content } => {
                if self.tenant_tags.contains(tenant) {
                    return Err(self.fail(at(*n), "an entry of the exported tenant is redacted"));
                }
                self.entry(*n, h, tenant, content, at(*n), true)
            }
        }
    }

    fn entry(
        &mut self,
        n: u64,
        h: &Hash,
        tag: &Hash,
        content: &Hash,
        pos: Position,
        redacted: bool,
    ) -> Result<(), Problem> {
        let Some((prev_n, prev_h)) = self.state else {
            return Err(self.fail(pos, "an entry before any checkpoint: nothing to verify it from"));
        };
        let expected = prev_n.saturating_add(1);
        if n != expected {
            let what = if n > expected {
                format!("entry {expected} is missing (found entry {n})")
            } else {
                format!("entry {n} after entry {prev_n}: entries out of order or repeated")
            };
            let pos = Position { entry: expected, ..pos };
            return Err(self.fail(pos, what));
        }
        let computed = link(&prev_h, n, tag, content);
        if computed != *h {
            return Err(self.fail(pos, "the entry was altered: its chain value does not match its content"));
        }
        self.state = Some((n, computed));
        self.report.entries += 1;
        if redacted {
            self.report.redacted += 1;
        }
        self.report.first_entry.get_or_insert(n);
        self.report.last_entry = Some(n);
        self.report.unsigned_tail += 1;
        self.check_head(n, &computed, pos)
    }

    fn check_head(&mut self, n: u64, h: &Hash, pos: Position) -> Result<(), Problem> {
        match self.expect.head {
            Some((hn, hh)) if hn == n => {
                self.head_seen = true;
                if hh != *h {
                    return Err(self.fail(pos, "the chain differs from the head recorded in the metadata"));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Ends verification: the log must reach the recorded head.
    pub fn finish(mut self, segment: &str, line: u64) -> Report {
        if self.report.problem.is_none() {
            if let (Some((hn, _)), Some((n, _))) = (self.expect.head, self.state) {
                if hn > n && !self.head_seen {
                    let pos = Position {
                        segment: segment.to_string(),
                        line: line.saturating_add(1),
                        entry: n.saturating_add(1),
                    };
                    self.fail(
                        pos,
                        format!("truncated: the log ends at entry {n}, entry {hn} was acknowledged"),
                    );
                }
            }
        }
        self.report.ok = self.report.problem.is_none();
        self.report
    }
}

#[derive(serde::Deserialize)]
struct TenantOnly {
    #[serde(default)]
    tenant: String,
}

pub fn verify_signature(public_key: &[u8; 32], cp: &Checkpoint, sig: &[u8]) -> bool {
    verify_ed25519(public_key, &cp.signed_bytes(), sig)
}

/// Whether `sig` is the Ed25519 signature of `message` by `public_key`.
pub fn verify_ed25519(public_key: &[u8; 32], message: &[u8], sig: &[u8]) -> bool {
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public_key)
        .verify(message, sig)
        .is_ok()
}

/// Feeds every line of `r` (a segment or an export) to the verifier.
pub fn feed_file<R: Read>(v: &mut Verifier, name: &str, r: R) -> Result<u64, Problem> {
    let mut lines = Lines::new(r);
    let mut last = 0;
    loop {
        let line = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(last),
            Err(e) => {
                let pos = Position {
                    segment: name.to_string(),
                    line: last + 1,
                    entry: 0,
                };
                return Err(v.fail(pos, format!("unreadable: {e}")));
            }
        };
        last = line.number;
        if !line.complete {
            // A line without its newline ends the file: the write in progress, or cut.
            v.report.torn_tail = true;
            return Ok(last);
        }
        let record = match line.record {
            Ok(r) if line.complete => r,
            Ok(_) | Err(_) => {
                let entry = v.state.map(|(n, _)| n.saturating_add(1)).unwrap_or(0);
                let pos = Position {
                    segment: name.to_string(),
                    line: line.number,
                    entry,
                };
                let what = match line.record {
                    Err(e) if line.complete => format!("not an audit record ({e})"),
                    _ => "a torn record at the end of the file".to_string(),
                };
                return Err(v.fail(pos, what));
            }
        };
        v.feed(&record, name, line.number)?;
    }
}

/// Verifies segment files in order.
pub fn verify_segments(segments: &[PathBuf], expect: Expectations) -> Report {
    let mut v = Verifier::new(expect);
    let (mut name, mut last) = (String::new(), 0);
    for path in segments {
        name = display_name(path);
        v.report.segments += 1;
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) => {
                let pos = Position {
                    segment: name.clone(),
                    line: 0,
                    entry: 0,
                };
                v.fail(pos, format!("cannot open: {e}"));
                return v.finish(&name, 0);
            }
        };
        match feed_file(&mut v, &name, file) {
            Ok(l) => last = l,
            Err(_) => return v.finish(&name, last),
        }
    }
    v.finish(&name, last)
}
