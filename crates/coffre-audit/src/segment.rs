//! Segment files: `DATA/audit/<first entry number, 20 digits>.log`, each beginning with a
//! signed checkpoint of the chain before its first entry, so that any suffix of the segments
//! verifies on its own (older ones may have expired).

use crate::chain::Record;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

pub const SEGMENT_SUFFIX: &str = ".log";

/// The file name of the segment whose first entry is `first`.
pub fn segment_name(first: u64) -> String {
    format!("{first:020}{SEGMENT_SUFFIX}")
}

/// The segments in `dir`, in chain order.
pub fn list_segments(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(SEGMENT_SUFFIX)) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(first) = stem.parse() {
                found.push((first, e.path()));
            }
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// The name to report a segment by.
pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// One line of a file as read: its number (from 1), its byte offset, and what it held.
pub struct Line {
    pub number: u64,
    pub offset: u64,
    /// Its length in bytes, newline included.
    pub len: u64,
    /// Whether the line ended with a newline (a torn last line does not).
    pub complete: bool,
    pub record: Result<Record, String>,
}

/// Reads a segment or an export line by line (lines of any length: a reader gets the whole
/// file's lines without holding the file).
pub struct Lines<R> {
    reader: BufReader<R>,
    number: u64,
    offset: u64,
    buf: Vec<u8>,
}

impl Lines<std::fs::File> {
    pub fn open(path: &Path) -> std::io::Result<Lines<std::fs::File>> {
        Ok(Lines::new(std::fs::File::open(path)?))
    }
}

impl<R: Read> Lines<R> {
    pub fn new(r: R) -> Lines<R> {
        Lines {
            reader: BufReader::with_capacity(256 * 1024, r),
            number: 0,
            offset: 0,
            buf: Vec::new(),
        }
    }

    /// The next line, `None` at the end.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        self.buf.clear();
        // The writer keeps zeros ahead of its records (see `Writer::append_and_sync`): the
        // records end where they begin.
        if self.reader.fill_buf()?.first() == Some(&0) {
            return Ok(None);
        }
        let read = self.reader.read_until(b'\n', &mut self.buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.number += 1;
        let offset = self.offset;
        self.offset += read as u64;
        let complete = self.buf.last() == Some(&b'\n');
        let text = if complete {
            &self.buf[..self.buf.len() - 1]
        } else {
            &self.buf[..]
        };
        Ok(Some(Line {
            number: self.number,
            offset,
            len: read as u64,
            complete,
            record: Record::parse(text),
        }))
    }

    /// The next complete line's bytes, without its newline and unparsed (what a scan that
    /// parses only matching lines wants); `None` at the end or at a torn last line.
    pub fn next_raw(&mut self) -> std::io::Result<Option<&[u8]>> {
        self.buf.clear();
        if self.reader.fill_buf()?.first() == Some(&0) {
            return Ok(None);
        }
        let read = self.reader.read_until(b'\n', &mut self.buf)?;
        self.number += 1;
        self.offset += read as u64;
        match self.buf.last() {
            Some(b'\n') => Ok(Some(&self.buf[..self.buf.len() - 1])),
            _ => Ok(None),
        }
    }

    /// The raw bytes of the last line read (without its newline).
    pub fn raw(&self) -> &[u8] {
        self.buf.strip_suffix(b"\n").unwrap_or(&self.buf)
    }
}

/// The first checkpoint of a segment (its start): what tells its place and time.
pub fn first_checkpoint(path: &Path) -> Option<crate::chain::Checkpoint> {
    let mut lines = Lines::open(path).ok()?;
    match lines.next_line().ok()??.record {
        Ok(Record::Checkpoint { checkpoint, .. }) => Some(checkpoint),
        _ => None,
    }
}

/// The segments holding entries of `[from, to]` (milliseconds): a segment covers the time
/// from its start to the next one's.
pub fn segments_in(dir: &Path, from: Option<u64>, to: Option<u64>) -> std::io::Result<Vec<PathBuf>> {
    let all = list_segments(dir)?;
    let starts: Vec<u64> = all
        .iter()
        .map(|p| first_checkpoint(p).map(|c| c.time).unwrap_or(0))
        .collect();
    Ok(all
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            let ends_before_from = match (from, starts.get(i + 1)) {
                (Some(f), Some(next)) => *next < f,
                _ => false,
            };
            let starts_after_to = matches!(to, Some(t) if starts[*i] > t);
            !ends_before_from && !starts_after_to
        })
        .map(|(_, p)| p.clone())
        .collect())
}
