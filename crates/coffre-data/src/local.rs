//! A shard store on a local directory: append-only segment files.
//!
//! Creating a file costs about a millisecond of CPU here while appending to an open one costs
//! microseconds, so every shard is a record appended to the active segment
//! (`seg-<n>.log`), and concurrent writers share one `fdatasync` (group commit). A record is
//! `header ∥ data`; the header carries the shard id, the data length, a CRC32C of the data and
//! a CRC32C of itself, so a torn tail is detected at start-up and cut off. Deletions append a
//! tombstone record. The index (shard id → segment, offset, length) lives in memory and is
//! rebuilt by scanning record headers at start-up. Segments whose live bytes fall under half
//! are compacted: live records are copied forward, then the old file is removed.

use crate::store::{BoxFuture, ShardStore, StoreError, StoreStat};
use bytes::Bytes;
use coffre_types::ShardId;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

const MAGIC: u32 = 0xC0FF_5E61;
const KIND_PUT: u8 = 1;
const KIND_DELETE: u8 = 2;
/// magic(4) kind(1) id(23) len(4) data_crc(4) header_crc(4)
const HEADER_LEN: usize = 4 + 1 + ShardId::LEN + 4 + 4 + 4;
const SEGMENT_TARGET: u64 = 256 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    segment: u32,
    offset: u64,
    len: u32,
}

struct Active {
    segment: u32,
    file: Arc<File>,
    len: u64,
    /// Records appended so far, across segments; compared with `Synced` for group commit.
    seq: u64,
}

#[derive(Default)]
struct Segment {
    file: Option<Arc<File>>,
    size: u64,
    live: u64,
}

struct Inner {
    dir: PathBuf,
    index: Mutex<HashMap<ShardId, Loc>>,
    segments: Mutex<HashMap<u32, Segment>>,
    active: Mutex<Active>,
    synced: Mutex<u64>,
    /// Puts and deletes share it; compaction takes it alone while it moves one record, so a
    /// record it copies forward cannot be deleted or replaced under it (which would let the
    /// stale copy win at the next start).
    mutation: RwLock<()>,
}

#[derive(Clone)]
pub struct LocalShardStore {
    id: String,
    inner: Arc<Inner>,
}

fn header(kind: u8, id: &ShardId, len: u32, data_crc: u32) -> [u8; HEADER_LEN] {
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

fn parse_header(h: &[u8]) -> Option<(u8, ShardId, u32, u32)> {
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
fn read_header(file: &File, pos: u64, file_len: u64) -> Option<(u8, ShardId, u32, u64)> {
    let mut h = [0u8; HEADER_LEN];
    file.read_exact_at(&mut h, pos).ok()?;
    let (kind, sid, len, _data_crc) = parse_header(&h)?;
    let end = pos + HEADER_LEN as u64 + len as u64;
    (matches!(kind, KIND_PUT | KIND_DELETE) && end <= file_len).then_some((kind, sid, len, end))
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

/// A lock whose holder panicked still guards consistent data here (every update is a whole
/// insert or remove), so poisoning is ignored.
fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn segment_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("seg-{n:08}.log"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl LocalShardStore {
    /// Opens (creating if needed) the store in `dir`, rebuilding the index from the segments.
    pub fn open(id: impl Into<String>, dir: &Path) -> std::io::Result<LocalShardStore> {
        std::fs::create_dir_all(dir)?;
        let mut numbers: Vec<u32> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        numbers.sort_unstable();
        let mut index: HashMap<ShardId, Loc> = HashMap::new();
        let mut segments: HashMap<u32, Segment> = HashMap::new();
        for &n in &numbers {
            let path = segment_path(dir, n);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let file_len = file.metadata()?.len();
            let mut pos = 0u64;
            // End of the last whole record: what follows it is a torn tail.
            let mut valid_end = 0u64;
            while pos + HEADER_LEN as u64 <= file_len {
                let Some((kind, sid, len, end)) = read_header(&file, pos, file_len) else {
                    // A damaged record in the middle of a segment must not cost the records
                    // after it: look for the next valid header. None: a torn tail.
                    match resync(&file, pos + 1, file_len) {
                        Some(next) => {
                            tracing::warn!(segment = %path.display(), from = pos, to = next, "skipping a damaged segment record");
                            pos = next;
                            continue;
                        }
                        None => break,
                    }
                };
                match kind {
                    KIND_PUT => {
                        let loc = Loc {
                            segment: n,
                            offset: pos + HEADER_LEN as u64,
                            len,
                        };
                        if let Some(old) = index.insert(sid, loc) {
                            if let Some(s) = segments.get_mut(&old.segment) {
                                s.live = s.live.saturating_sub(old.len as u64 + HEADER_LEN as u64);
                            }
                        }
                        segments.entry(n).or_default().live += len as u64 + HEADER_LEN as u64;
                    }
                    _ => {
                        if let Some(old) = index.remove(&sid) {
                            if let Some(s) = segments.get_mut(&old.segment) {
                                s.live = s.live.saturating_sub(old.len as u64 + HEADER_LEN as u64);
                            }
                        }
                    }
                }
                pos = end;
                valid_end = end;
            }
            if valid_end < file_len {
                // A torn tail from a crash: never acknowledged, so cut it off.
                tracing::warn!(segment = %path.display(), at = valid_end, "truncating torn segment tail");
                file.set_len(valid_end)?;
                file.sync_all()?;
            }
            let pos = valid_end;
            let seg = segments.entry(n).or_default();
            seg.size = pos;
            seg.file = Some(Arc::new(file));
        }
        let active_n = numbers.last().copied().unwrap_or(0) + 1;
        let file = Arc::new(Self::create_segment(dir, active_n)?);
        segments.insert(
            active_n,
            Segment {
                file: Some(file.clone()),
                size: 0,
                live: 0,
            },
        );
        let inner = Inner {
            dir: dir.to_path_buf(),
            index: Mutex::new(index),
            segments: Mutex::new(segments),
            active: Mutex::new(Active {
                segment: active_n,
                file,
                len: 0,
                seq: 0,
            }),
            synced: Mutex::new(0),
            mutation: RwLock::new(()),
        };
        Ok(LocalShardStore {
            id: id.into(),
            inner: Arc::new(inner),
        })
    }

    fn create_segment(dir: &Path, n: u32) -> std::io::Result<File> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(segment_path(dir, n))?;
        sync_dir(dir)?;
        Ok(f)
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Appends a record and returns (segment, offset of data, sequence number).
    fn append(&self, kind: u8, id: &ShardId, data: &[u8]) -> std::io::Result<(u32, u64, u64)> {
        let inner = &self.inner;
        let len = u32::try_from(data.len()).map_err(|_| std::io::Error::other("a shard is at most 4 GiB"))?;
        let h = header(kind, id, len, crc_fast::crc32_iscsi(data));
        let mut active = guard(&inner.active);
        if active.len >= SEGMENT_TARGET {
            // Roll: the old segment is made durable before anything lands in the new one, so a
            // group commit only ever needs to sync the active file.
            active.file.sync_data()?;
            let n = active.segment + 1;
            let file = Arc::new(Self::create_segment(&inner.dir, n)?);
            let mut segs = guard(&inner.segments);
            if let Some(s) = segs.get_mut(&active.segment) {
                s.size = active.len;
            }
            segs.insert(
                n,
                Segment {
                    file: Some(file.clone()),
                    size: 0,
                    live: 0,
                },
            );
            active.segment = n;
            active.file = file;
            active.len = 0;
        }
        let offset = active.len;
        let mut rec = Vec::with_capacity(HEADER_LEN + data.len());
        rec.extend_from_slice(&h);
        rec.extend_from_slice(data);
        // Positional: a failed partial write is overwritten by the next record.
        active.file.write_all_at(&rec, offset)?;
        active.len += rec.len() as u64;
        active.seq += 1;
        Ok((active.segment, offset + HEADER_LEN as u64, active.seq))
    }

    /// Group commit: whoever takes the lock first syncs for everyone appended so far.
    fn sync_to(&self, seq: u64) -> std::io::Result<()> {
        let inner = &self.inner;
        let mut synced = guard(&inner.synced);
        if *synced >= seq {
            return Ok(());
        }
        let (file, target) = {
            let a = guard(&inner.active);
            (a.file.clone(), a.seq)
        };
        file.sync_data()?;
        *synced = target;
        Ok(())
    }

    fn put_blocking(&self, id: ShardId, data: &[u8]) -> std::io::Result<()> {
        let _shared = self.inner.mutation.read().unwrap_or_else(|p| p.into_inner());
        self.put_unlocked(id, data)
    }

    fn put_unlocked(&self, id: ShardId, data: &[u8]) -> std::io::Result<()> {
        let (segment, offset, seq) = self.append(KIND_PUT, &id, data)?;
        self.sync_to(seq)?;
        let rec = data.len() as u64 + HEADER_LEN as u64;
        let old = guard(&self.inner.index).insert(
            id,
            Loc {
                segment,
                offset,
                len: data.len() as u32,
            },
        );
        let mut segs = guard(&self.inner.segments);
        segs.entry(segment).or_default().live += rec;
        if let Some(old) = old {
            if let Some(s) = segs.get_mut(&old.segment) {
                s.live = s.live.saturating_sub(old.len as u64 + HEADER_LEN as u64);
            }
        }
        Ok(())
    }

    fn get_blocking(&self, id: ShardId) -> Result<Bytes, StoreError> {
        let loc = guard(&self.inner.index)
            .get(&id)
            .copied()
            .ok_or(StoreError::NotFound(id))?;
        let file = guard(&self.inner.segments)
            .get(&loc.segment)
            .and_then(|s| s.file.clone())
            .ok_or(StoreError::NotFound(id))?;
        let mut buf = vec![0u8; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)?;
        Ok(Bytes::from(buf))
    }

    fn delete_blocking(&self, id: ShardId) -> std::io::Result<()> {
        let _shared = self.inner.mutation.read().unwrap_or_else(|p| p.into_inner());
        let present = guard(&self.inner.index).contains_key(&id);
        if !present {
            return Ok(());
        }
        let (_, _, seq) = self.append(KIND_DELETE, &id, &[])?;
        self.sync_to(seq)?;
        let old = guard(&self.inner.index).remove(&id);
        if let Some(old) = old {
            let mut segs = guard(&self.inner.segments);
            if let Some(s) = segs.get_mut(&old.segment) {
                s.live = s.live.saturating_sub(old.len as u64 + HEADER_LEN as u64);
            }
        }
        Ok(())
    }

    /// Shard ids of the tombstones in segment `n`.
    fn tombstones_in(&self, n: u32) -> std::io::Result<Vec<ShardId>> {
        let Some(file) = guard(&self.inner.segments).get(&n).and_then(|s| s.file.clone()) else {
            return Ok(Vec::new());
        };
        let len = file.metadata()?.len();
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((kind, id, _, end)) = read_header(&file, pos, len) {
            if kind == KIND_DELETE {
                out.push(id);
            }
            pos = end;
        }
        Ok(out)
    }

    /// Rewrites sealed segments that are less than half live (and removes empty ones left by
    /// restarts); returns the bytes reclaimed.
    pub fn compact(&self) -> std::io::Result<u64> {
        let active_seg = guard(&self.inner.active).segment;
        let victims: Vec<(u32, u64)> = {
            let segs = guard(&self.inner.segments);
            segs.iter()
                .filter(|(n, s)| **n != active_seg && (s.size == 0 || s.live * 2 < s.size))
                .map(|(n, s)| (*n, s.size))
                .collect()
        };
        let mut reclaimed = 0;
        for (n, size) in victims {
            let live: Vec<(ShardId, Loc)> = guard(&self.inner.index)
                .iter()
                .filter(|(_, l)| l.segment == n)
                .map(|(i, l)| (*i, *l))
                .collect();
            for (id, loc) in &live {
                let _alone = self.inner.mutation.write().unwrap_or_else(|p| p.into_inner());
                if guard(&self.inner.index).get(id) != Some(loc) {
                    continue; // deleted or replaced since the list was taken
                }
                // Copy forward through the normal write path (durable before the old file goes).
                let data = match self.get_blocking(*id) {
                    Ok(d) => d,
                    Err(StoreError::NotFound(_)) => continue,
                    Err(StoreError::Io(e)) => return Err(e),
                    Err(e) => return Err(std::io::Error::other(e.to_string())),
                };
                self.put_unlocked(*id, &data)?;
            }
            // Tombstones in this segment may be all that hides a deleted shard in an older one:
            // carry them forward while older segments remain.
            let older_exists = guard(&self.inner.segments).keys().any(|k| *k < n);
            if older_exists {
                for id in self.tombstones_in(n)? {
                    let _alone = self.inner.mutation.write().unwrap_or_else(|p| p.into_inner());
                    if !guard(&self.inner.index).contains_key(&id) {
                        let (_, _, seq) = self.append(KIND_DELETE, &id, &[])?;
                        self.sync_to(seq)?;
                    }
                }
            }
            guard(&self.inner.segments).remove(&n);
            std::fs::remove_file(segment_path(&self.inner.dir, n))?;
            sync_dir(&self.inner.dir)?;
            reclaimed += size;
        }
        Ok(reclaimed)
    }

    fn stat_blocking(&self) -> std::io::Result<StoreStat> {
        let shards = guard(&self.inner.index).len() as u64;
        let used_bytes = guard(&self.inner.segments).values().map(|s| s.live).sum();
        let (free_bytes, total_bytes) = disk_space(&self.inner.dir)?;
        Ok(StoreStat {
            shards,
            used_bytes,
            free_bytes,
            total_bytes,
        })
    }
}

fn disk_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let f = st.f_frsize as u64;
    Ok((st.f_bavail as u64 * f, st.f_blocks as u64 * f))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Unavailable(format!("store task failed: {e}")))?
}

impl ShardStore for LocalShardStore {
    fn id(&self) -> &str {
        &self.id
    }

    fn put(&self, id: ShardId, data: Bytes) -> BoxFuture<'_, Result<(), StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(s.put_blocking(id, &data)?)))
    }

    fn get(&self, id: ShardId) -> BoxFuture<'_, Result<Bytes, StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || s.get_blocking(id)))
    }

    fn delete(&self, id: ShardId) -> BoxFuture<'_, Result<(), StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(s.delete_blocking(id)?)))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<ShardId>, StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(guard(&s.inner.index).keys().copied().collect())))
    }

    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(s.stat_blocking()?)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffre_types::VersionId;
    use std::io::Write;

    fn sid(i: u32) -> ShardId {
        ShardId {
            version: VersionId([1; 16]),
            part: 0,
            stripe: i,
            index: 0,
        }
    }

    #[test]
    fn put_get_delete_reopen() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        s.put_blocking(sid(1), b"one").unwrap();
        s.put_blocking(sid(2), b"two").unwrap();
        s.put_blocking(sid(3), b"").unwrap();
        s.delete_blocking(sid(2)).unwrap();
        assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"one");
        assert!(matches!(s.get_blocking(sid(2)), Err(StoreError::NotFound(_))));
        drop(s);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"one");
        assert_eq!(&s.get_blocking(sid(3)).unwrap()[..], b"");
        assert!(matches!(s.get_blocking(sid(2)), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn torn_tail_is_cut_and_later_writes_survive() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        s.put_blocking(sid(1), b"kept").unwrap();
        let seg = segment_path(d.path(), s.inner.active.lock().unwrap().segment);
        drop(s);
        // A crash in the middle of the next record.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&header(KIND_PUT, &sid(2), 100, 0)).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert_eq!(&s.get_blocking(sid(1)).unwrap()[..], b"kept");
        assert!(s.get_blocking(sid(2)).is_err());
        s.put_blocking(sid(3), b"after").unwrap();
        drop(s);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert_eq!(&s.get_blocking(sid(3)).unwrap()[..], b"after");
    }

    #[test]
    fn a_damaged_header_costs_only_its_own_record() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        for i in 0..3 {
            s.put_blocking(sid(i), &[i as u8; 5000]).unwrap();
        }
        let seg = segment_path(d.path(), s.inner.active.lock().unwrap().segment);
        drop(s);
        // Bit rot in the second record's header.
        let mut b = std::fs::read(&seg).unwrap();
        b[HEADER_LEN + 5000 + 10] ^= 0xFF;
        std::fs::write(&seg, &b).unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert_eq!(&s.get_blocking(sid(0)).unwrap()[..], &[0u8; 5000][..]);
        assert!(s.get_blocking(sid(1)).is_err());
        assert_eq!(
            &s.get_blocking(sid(2)).unwrap()[..],
            &[2u8; 5000][..],
            "the record after survives"
        );
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len(),
            b.len() as u64,
            "nothing truncated"
        );
    }

    #[test]
    fn compaction_keeps_deleted_shards_deleted() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        s.put_blocking(sid(1), &[1; 1000]).unwrap();
        s.put_blocking(sid(2), &[2; 100_000]).unwrap(); // keeps segment 1 over half live
        drop(s);
        // Segment 2 holds only the tombstone of shard 1 (whose data is in segment 1).
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        s.delete_blocking(sid(1)).unwrap();
        drop(s);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert!(s.compact().unwrap() > 0, "the tombstone-only segment is compacted");
        drop(s);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert!(
            s.get_blocking(sid(1)).is_err(),
            "a compacted tombstone must not revive shard 1"
        );
        assert_eq!(&s.get_blocking(sid(2)).unwrap()[..], &[2u8; 100_000][..]);
    }

    #[test]
    fn compaction_reclaims_dead_segments() {
        let d = tempfile::tempdir().unwrap();
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        for i in 0..10 {
            s.put_blocking(sid(i), &[i as u8; 1000]).unwrap();
        }
        for i in 0..8 {
            s.delete_blocking(sid(i)).unwrap();
        }
        drop(s);
        // Reopening seals the old segment.
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert!(s.compact().unwrap() > 0);
        for i in 8..10 {
            assert_eq!(&s.get_blocking(sid(i)).unwrap()[..], &[i as u8; 1000][..]);
        }
        drop(s);
        let s = LocalShardStore::open("n1", d.path()).unwrap();
        assert_eq!(s.stat_blocking().unwrap().shards, 2);
        assert!(s.get_blocking(sid(0)).is_err());
        assert_eq!(&s.get_blocking(sid(9)).unwrap()[..], &[9u8; 1000][..]);
    }
}
