//! The tamper-evident audit log of a gateway.
//!
//! Every S3, IAM and STS request, every operator action and every internal action that
//! destroys data becomes an [`Event`], appended to segment files under `DATA/audit/` as a
//! BLAKE3 hash chain with checkpoints signed by the gateway's Ed25519 audit key. A request is
//! acknowledged once its entry is durable (group commit). The chain head is also recorded in
//! the metadata, so a shortened tail is noticed online and at start-up. Verification works on
//! the segments alone or on a tenant's export, given only the audit public key.

mod appender;
pub mod chain;
mod event;
pub mod forward;
mod log;
pub mod segment;
pub mod verify;

pub use chain::{Checkpoint, Hash, Record};
pub use event::Event;
pub use forward::SyslogTarget;
pub use log::{parse_public_key, public_key_pem, AuditConfig, AuditError, AuditLog, HeadStore};
pub use verify::{Expectations, Position, Problem, Report};

use chain::{content_hash, tenant_tag};
use segment::{display_name, Lines};
use std::io::Write;
use std::path::Path;

/// Verifies the segments of `dir` covering `[from, to]` (milliseconds; all when `None`).
pub fn verify_dir(dir: &Path, from: Option<u64>, to: Option<u64>, expect: Expectations) -> std::io::Result<Report> {
    let segments = segment::segments_in(dir, from, to)?;
    // A head beyond the last segment verified is only checked when verifying to the end.
    let expect = Expectations {
        head: if to.is_none() { expect.head } else { None },
        ..expect
    };
    Ok(verify::verify_segments(&segments, expect))
}

/// Verifies an export file (its header names the tenant none of whose entries may be
/// redacted).
pub fn verify_export(path: &Path, expect: Expectations) -> std::io::Result<Report> {
    let file = std::fs::File::open(path)?;
    let name = display_name(path);
    let header = export_header(path)?;
    let field = |k: &str| header.as_ref().and_then(|h| h.get(k)).and_then(|t| t.as_str());
    let tenant = field("tenant").map(str::to_string);
    // The exported tenant's keyed tag, as the audit key signed it.
    let hash_of = |k: &str| {
        field(k).and_then(|t| {
            let mut h = [0u8; 32];
            hex::decode_to_slice(t, &mut h).ok().map(|_| h)
        })
    };
    let tag = match (&tenant, hash_of("tenant_tag"), field("tenant_tag_sig")) {
        (Some(t), Some(tag), Some(sig)) => {
            let gateway = field("gateway").unwrap_or_default();
            let statement = chain::tenant_tag_statement(gateway, t, &tag);
            let signed = hex::decode(sig)
                .ok()
                .is_some_and(|sig| verify::verify_ed25519(&expect.public_key, &statement, &sig));
            if !signed {
                let mut v = verify::Verifier::new(expect);
                let at = Position {
                    segment: name.clone(),
                    line: 1,
                    entry: 0,
                };
                let _ = v.fail(at, "the export's tenant tag is not signed by the audit key");
                return Ok(v.finish(&name, 1));
            }
            Some(tag)
        }
        _ => None,
    };
    let mut v = verify::Verifier::new(Expectations {
        tenant,
        tenant_tag: tag,
        ..expect
    });
    v.report.segments = 1;
    let last = verify::feed_file(&mut v, &name, file).unwrap_or(0);
    Ok(v.finish(&name, last))
}

/// The header of an export file, if it is one.
pub fn export_header(path: &Path) -> std::io::Result<Option<serde_json::Value>> {
    let mut lines = Lines::open(path)?;
    Ok(match lines.next_line()? {
        Some(segment::Line {
            record: Ok(Record::Header(h)),
            ..
        }) => Some(h),
        _ => None,
    })
}

/// What an export holds.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ExportSummary {
    pub entries: u64,
    pub redacted: u64,
    pub checkpoints: u64,
}

/// Writes `tenant`'s events of `[from, to]` from the segments of `dir` to `out`: a header
/// (gateway, tenant, public key, certificate), then the covering segments' records, other
/// tenants' entries reduced to their tenant tag and content hash. The result verifies with
/// the audit key alone, and proves no entry of `tenant` was left out of the range.
pub fn export(
    log: &AuditLog,
    tenant: &str,
    from: Option<u64>,
    to: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<ExportSummary> {
    let signed_tag = log.signed_tenant_tag(tenant);
    let header = serde_json::json!({
        "gateway": log.gateway,
        "tenant": tenant,
        "tenant_tag": signed_tag.as_ref().map(|(t, _)| hex::encode(t)),
        "tenant_tag_sig": signed_tag.as_ref().map(|(_, s)| hex::encode(s)),
        "from": from.map(coffre_types::time::iso8601),
        "to": to.map(coffre_types::time::iso8601),
        "created": coffre_types::time::iso8601(coffre_types::now_millis()),
        "public_key": hex::encode(log.public_key),
        "certificate": log.certificate,
    });
    writeln!(out, "{}", Record::Header(header).render())?;
    let mut summary = ExportSummary::default();
    for path in segment::segments_in(&log.dir, from, to)? {
        let mut lines = Lines::open(&path)?;
        while let Some(line) = lines.next_line()? {
            if !line.complete {
                break; // being written: the next export has it
            }
            match &line.record {
                Ok(Record::Entry { n, h, tag, event }) => {
                    let t = serde_json::from_slice::<Event>(event)
                        .map(|e| e.tenant)
                        .unwrap_or_default();
                    let tag = tag.unwrap_or_else(|| tenant_tag(&t));
                    if t == tenant {
                        summary.entries += 1;
                        out.write_all(lines.raw())?;
                    } else {
                        summary.redacted += 1;
                        let r = Record::Redacted {
                            n: *n,
                            h: *h,
                            tenant: tag,
                            content: content_hash(event),
                        };
                        out.write_all(r.render().as_bytes())?;
                    }
                }
                Ok(Record::Checkpoint { .. }) => {
                    summary.checkpoints += 1;
                    out.write_all(lines.raw())?;
                }
                _ => out.write_all(lines.raw())?,
            }
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(summary)
}

/// What a search looks for (every given field must match exactly).
#[derive(Clone, Debug, Default, serde::Deserialize, serde::Serialize)]
pub struct Query {
    pub tenant: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The operation, as written in the entry (`PutObject`, `admin:NodesDelete`,
    /// `system:DeclareNodeDead`).
    pub op: Option<String>,
    /// Milliseconds since the epoch.
    pub since: Option<u64>,
    pub until: Option<u64>,
    /// The most events returned (the newest are kept).
    pub limit: Option<usize>,
}

/// An event found, with its entry number.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    pub n: u64,
    #[serde(flatten)]
    pub event: Event,
}

/// The events matching `q`, oldest first. Segments outside the time range are skipped; in
/// the others a line is parsed only when the text of every field asked for is in it.
pub fn search(dir: &Path, q: &Query) -> std::io::Result<Vec<Found>> {
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    let needle = |field: &str, v: &Option<String>| {
        v.as_ref()
            .map(|v| format!("\"{field}\":{}", serde_json::Value::String(v.clone())))
    };
    let needles: Vec<String> = [
        needle("tenant", &q.tenant),
        needle("bucket", &q.bucket),
        needle("key", &q.key),
        needle("op", &q.op),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut found = std::collections::VecDeque::new();
    for path in segment::segments_in(dir, q.since, q.until)? {
        let mut lines = Lines::open(&path)?;
        while let Some(raw) = lines.next_raw()? {
            // The text test first: most lines are never parsed.
            let Ok(text) = std::str::from_utf8(raw) else {
                continue;
            };
            if !needles.iter().all(|nd| text.contains(nd.as_str())) {
                continue;
            }
            let Ok(Record::Entry { n, event, .. }) = Record::parse(raw) else {
                continue;
            };
            let Ok(e) = serde_json::from_slice::<Event>(&event) else {
                continue;
            };
            let t = e.time_ms();
            let matches = q.tenant.as_ref().is_none_or(|v| *v == e.tenant)
                && q.bucket.as_ref().is_none_or(|v| *v == e.bucket)
                && q.key.as_ref().is_none_or(|v| *v == e.key)
                && q.since.is_none_or(|s| t >= s)
                && q.until.is_none_or(|u| t <= u);
            if matches {
                if found.len() == limit {
                    found.pop_front();
                }
                found.push_back(Found { n, event: e });
            }
        }
    }
    Ok(found.into())
}

/// Which of the requests `ids` have an entry numbered after `after` in the segments of `dir`
/// (what tells whether a change's entry reached the log before a crash).
pub fn requests_with_entries(
    dir: &Path,
    after: u64,
    ids: &std::collections::HashSet<String>,
) -> std::io::Result<std::collections::HashSet<String>> {
    const NEEDLE: &str = "\"request_id\":\"";
    let segments = segment::list_segments(dir)?;
    // The segment holding entry `after + 1` is the last one starting at or before it.
    let first_of = |p: &std::path::PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(segment::SEGMENT_SUFFIX))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let start = segments
        .iter()
        .rposition(|p| first_of(p) <= after.saturating_add(1))
        .unwrap_or(0);
    let mut found = std::collections::HashSet::new();
    for path in &segments[start..] {
        let mut lines = Lines::open(path)?;
        while let Some(raw) = lines.next_raw()? {
            let Ok(text) = std::str::from_utf8(raw) else { continue };
            let Some(at) = text.find(NEEDLE) else { continue };
            let rest = &text[at + NEEDLE.len()..];
            let id = &rest[..rest.find('"').unwrap_or(0)];
            if !ids.contains(id) {
                continue;
            }
            if let Ok(Record::Entry { n, .. }) = Record::parse(raw) {
                if n > after {
                    found.insert(id.to_string());
                }
            }
        }
    }
    Ok(found)
}

/// `7d`, `12h`, `30m`, `45s` → milliseconds.
pub fn parse_age(s: &str) -> Option<u64> {
    let s = s.trim();
    let unit = match s.chars().last()? {
        'd' => 86_400_000,
        'h' => 3_600_000,
        'm' => 60_000,
        's' => 1000,
        _ => return None,
    };
    let n: u64 = s[..s.len() - 1].parse().ok()?;
    n.checked_mul(unit)
}

#[cfg(test)]
mod tests;
