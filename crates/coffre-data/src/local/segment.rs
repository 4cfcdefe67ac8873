//! The segment file format: records `header ∥ data` appended one after another.
//!
//! A header carries the shard id, the data length, a CRC32C of the data and a CRC32C of itself,
//! so a torn tail is told from a record and a damaged header costs only its own record.

use coffre_types::ShardId;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: u32 = 0xC0FF_5E61;
pub(super) const KIND_PUT: u8 = 1;
pub(super) const KIND_DELETE: u8 = 2;
/// A shard with its BLAKE3: the record's data is `hash(32) ∥ shard`, so that the node's scrub
/// verifies the hash the gateway computed (records of kind `KIND_PUT`, written before, carry
/// only the CRC32C of their data, which the scrub checks instead).
pub(super) const KIND_PUT_B3: u8 = 3;
pub(super) const HASH_LEN: usize = 32;

/// Whether a record of this kind holds a shard.
pub(super) fn holds_shard(kind: u8) -> bool {
    matches!(kind, KIND_PUT | KIND_PUT_B3)
}
/// magic(4) kind(1) id(23) len(4) data_crc(4) header_crc(4)
pub(super) const HEADER_LEN: usize = 4 + 1 + ShardId::LEN + 4 + 4 + 4;

/// Bytes a record of `len` data bytes takes in its segment.
pub(super) fn record_len(len: u32) -> u64 {
    len as u64 + HEADER_LEN as u64
}

pub(super) fn header(kind: u8, id: &ShardId, len: u32, data_crc: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4] = kind;
    h[5..28].copy_from_slice(&id.to_bytes());
    h[28..32].copy_from_slice(&len.to_le_bytes());
    h[32..36].copy_from_slice(&data_crc.to_le_bytes());
    let c = crc_fast::crc32_iscsi(&h[..36]);
    h[36..40].copy_from_slice(&c.to_le_bytes());
    h
}

/// (kind, shard id, data length, data CRC) of an intact header.
pub(super) fn parse_header(h: &[u8]) -> Option<(u8, ShardId, u32, u32)> {
    if h.len() < HEADER_LEN || u32::from_le_bytes(h[..4].try_into().ok()?) != MAGIC {
        return None;
    }
    if crc_fast::crc32_iscsi(&h[..36]) != u32::from_le_bytes(h[36..40].try_into().ok()?) {
        return None;
    }
    let id = ShardId::from_bytes(&h[5..28])?;
    let len = u32::from_le_bytes(h[28..32].try_into().ok()?);
    let crc = u32::from_le_bytes(h[32..36].try_into().ok()?);
    Some((h[4], id, len, crc))
}

/// The record at `pos` if its header is intact and its data fits in the file:
/// (kind, shard id, data length, end of record).
pub(super) fn read_header(file: &File, pos: u64, file_len: u64) -> Option<(u8, ShardId, u32, u64)> {
    let mut h = [0u8; HEADER_LEN];
    file.read_exact_at(&mut h, pos).ok()?;
    let (kind, sid, len, _data_crc) = parse_header(&h)?;
    let end = pos + record_len(len);
    ((holds_shard(kind) || kind == KIND_DELETE) && end <= file_len).then_some((kind, sid, len, end))
}

/// The offset of the next intact record at or after `from`, if any.
fn resync(file: &File, from: u64, file_len: u64) -> Option<u64> {
    const CHUNK: u64 = 1 << 20;
    let magic = MAGIC.to_le_bytes();
    let mut at = from;
    while at + HEADER_LEN as u64 <= file_len {
        let len = CHUNK.min(file_len - at) as usize;
        let mut buf = vec![0u8; len];
        file.read_exact_at(&mut buf, at).ok()?;
        for i in buf.windows(4).enumerate().filter(|(_, w)| *w == magic).map(|(i, _)| i) {
            let candidate = at + i as u64;
            if read_header(file, candidate, file_len).is_some() {
                return Some(candidate);
            }
        }
        // Overlap so that a magic split across chunks is still found.
        at += (len as u64).saturating_sub(3).max(1);
    }
    None
}

/// One record found by [`scan`].
pub(super) struct Found {
    pub kind: u8,
    pub id: ShardId,
    /// Offset of the record's data (its header is just before).
    pub offset: u64,
    pub len: u32,
}

/// Calls `each` on every intact record of `file`, in order, skipping damaged records (a
/// damaged record in the middle must not cost the records after it). Returns the end of the
/// last intact record: what follows it is a torn tail.
pub(super) fn scan(file: &File, path: &Path, mut each: impl FnMut(Found)) -> std::io::Result<u64> {
    let file_len = file.metadata()?.len();
    let mut pos = 0u64;
    let mut valid_end = 0u64;
    while pos + HEADER_LEN as u64 <= file_len {
        let Some((kind, id, len, end)) = read_header(file, pos, file_len) else {
            match resync(file, pos + 1, file_len) {
                Some(next) => {
                    tracing::warn!(segment = %path.display(), from = pos, to = next, "skipping a damaged segment record");
                    pos = next;
                    continue;
                }
                None => break,
            }
        };
        each(Found {
            kind,
            id,
            offset: pos + HEADER_LEN as u64,
            len,
        });
        pos = end;
        valid_end = end;
    }
    Ok(valid_end)
}

pub(super) fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("seg-{n:08}.log"))
}

/// Segment numbers present in `dir`, in order.
pub(super) fn segment_numbers(dir: &Path) -> std::io::Result<Vec<u32>> {
    let mut numbers: Vec<u32> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}
