//! A shard store on a local directory: append-only segment files and a persisted index.
//!
//! Creating a file costs about a millisecond of CPU here while appending to an open one costs
//! microseconds, so every shard is a record appended to the active segment
//! (`seg-<n>.log`, format in [`segment`]), and concurrent writers share one `fdatasync` (group
//! commit). Deletions append a tombstone record. Where each shard is (shard id → segment,
//! offset, length) is kept by [`index::ShardIndex`]: in memory for the records of the segments
//! not yet indexed, in a RocksDB under `DIR/index/` for the others, written once a segment is
//! sealed and every write to it has finished, by a thread of the store. A start scans only the
//! segments the index does not cover yet (normally the one active at the stop), so it takes
//! the same time whatever the number of shards. Segments whose live bytes fall under half are
//! compacted: live records are copied forward, then the old file is removed.

mod index;
mod scrub;
mod segment;
mod workers;

use crate::store::{BoxFuture, ShardStore, StoreError, StoreStat};
use crate::store::{ScrubRequest, ScrubStatus};
use bytes::Bytes;
use coffre_types::limits::{SEGMENT_MAX_RECORDS, SEGMENT_TARGET_BYTES};
use coffre_types::ShardId;
use index::{Entry, Loc, ShardIndex};
pub use scrub::{DEFAULT_PERIOD as SCRUB_PERIOD, DEFAULT_RATE_MIB as SCRUB_RATE_MIB};
use segment::{
    header, holds_shard, parse_header, record_len, segment_path, HASH_LEN, HEADER_LEN, KIND_DELETE, KIND_PUT,
    KIND_PUT_B3,
};
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
pub use workers::{CompactionWorker, ScrubWorker};

struct Active {
    segment: u32,
    file: Arc<File>,
    len: u64,
    records: u32,
    /// Records appended so far, across segments; compared with `synced` for group commit.
    seq: u64,
}

/// When the active segment is sealed: at this size or this many records, whichever first.
#[derive(Clone, Copy, Debug)]
pub struct SegmentLimits {
    pub bytes: u64,
    pub records: u32,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        SegmentLimits {
            bytes: SEGMENT_TARGET_BYTES,
            records: SEGMENT_MAX_RECORDS,
        }
    }
}

struct Inner {
    dir: PathBuf,
    limits: SegmentLimits,
    index: ShardIndex,
    files: RwLock<HashMap<u32, Arc<File>>>,
    active: Mutex<Active>,
    commit: Mutex<Commit>,
    committed: std::sync::Condvar,
    /// Appended records of each segment not yet applied to the index (or failed): a segment
    /// is indexed only once it is sealed and its count is zero.
    in_flight: Mutex<BTreeMap<u32, u32>>,
    /// Free space kept on the disk: shard writes that would go below it are refused, and the
    /// store reports its free space less this.
    reserve: std::sync::atomic::AtomicU64,
    /// Wakes the indexing thread (a segment was sealed or its last write finished).
    wake: mpsc::Sender<Wake>,
    /// Puts and deletes share it; compaction takes it alone while it moves one record, so a
    /// record it copies forward cannot be deleted or replaced under it (which would let the
    /// stale copy win at the next start).
    mutation: RwLock<()>,
    /// Where the scrub stands (persisted in `DIR/scrub.json`).
    scrub: Mutex<scrub::ScrubState>,
}

/// Group commit's state: records up to `synced` (in append order) are durable; `leader` says a
/// sync is under way.
#[derive(Default)]
struct Commit {
    synced: u64,
    leader: bool,
}

enum Wake {
    Check,
    Stop,
}

/// Ends the indexing thread when the last handle on the store goes, so that the index is
/// closed (and the directory can be opened again) once the store is dropped.
struct Indexer {
    wake: mpsc::Sender<Wake>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Indexer {
    fn drop(&mut self) {
        let _ = self.wake.send(Wake::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
pub struct LocalShardStore {
    id: String,
    inner: Arc<Inner>,
    _indexer: Arc<Indexer>,
}

/// Shards this large (a full stripe's, objects of 4 MiB and more in 4+2) stream past the page
/// cache: once synced, and once read, their pages are dropped. Keeping them would evict the
/// small and hot records the cache is good for, and growing the cache by a large write's
/// bytes costs fresh pages (a fault and a zeroed page per 4 KiB; far more in a VM whose freed
/// pages go back to the host): a 64 MiB PUT went from 182-189 to 316-325 MiB/s on the
/// development machine, its GET unchanged (docs/performance.md).
const DROP_CACHE_FROM: usize = 1 << 20;

/// Drops the clean cached pages of `[offset, offset + len)` (advice only: pages still dirty,
/// or shared with a record next to it, stay).
fn drop_cached(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: advice on an open descriptor; it reads or writes no memory of ours.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED);
    }
}

/// A lock whose holder panicked still guards consistent data here (every update is a whole
/// insert or remove), so poisoning is ignored.
fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// An appended record not yet applied to the index: counted in `in_flight` until dropped.
struct InFlight<'a> {
    inner: &'a Inner,
    segment: u32,
    offset: u64,
    seq: u64,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut f = guard(&self.inner.in_flight);
        let done = match f.get_mut(&self.segment) {
            Some(n) => {
                *n = n.saturating_sub(1);
                *n == 0
            }
            None => false,
        };
        drop(f);
        if done && guard(&self.inner.active).segment != self.segment {
            let _ = self.inner.wake.send(Wake::Check);
        }
    }
}

impl LocalShardStore {
    /// Opens (creating if needed) the store in `dir`: the index, then a scan of the segments it
    /// does not cover yet.
    pub fn open(id: impl Into<String>, dir: &Path) -> std::io::Result<LocalShardStore> {
        Self::open_with_limits(id, dir, SegmentLimits::default())
    }

    /// [`open`](Self::open) with other segment limits (tests and benches seal segments sooner).
    pub fn open_with_limits(
        id: impl Into<String>,
        dir: &Path,
        limits: SegmentLimits,
    ) -> std::io::Result<LocalShardStore> {
        std::fs::create_dir_all(dir)?;
        let numbers = segment::segment_numbers(dir)?;
        let index = ShardIndex::open(&dir.join("index"))?;
        index.keep_only(&numbers)?;
        let through = index.through();
        let mut files = HashMap::new();
        for &n in &numbers {
            let path = segment_path(dir, n);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            if n <= through {
                index.set_size(n, file.metadata()?.len());
            } else {
                let mut applied = Ok(());
                let valid_end = segment::scan(&file, &path, |r| {
                    let entry = match r.kind {
                        k if holds_shard(k) => Entry::Put(Loc {
                            segment: n,
                            offset: r.offset,
                            len: r.len,
                        }),
                        _ => Entry::Deleted {
                            segment: n,
                            offset: r.offset,
                        },
                    };
                    if applied.is_ok() {
                        applied = index.apply(r.id, entry);
                    }
                })?;
                applied?;
                if valid_end < file.metadata()?.len() {
                    // A torn tail from a crash: never acknowledged, so cut it off.
                    tracing::warn!(segment = %path.display(), at = valid_end, "truncating torn segment tail");
                    file.set_len(valid_end)?;
                    file.sync_all()?;
                }
                index.set_size(n, valid_end);
                // Sealed now (a new segment is made active): indexed at once, so that a
                // rebuild holds one segment's records in memory at a time.
                index.flush_through(n)?;
            }
            files.insert(n, Arc::new(file));
        }
        let active_n = numbers.last().copied().unwrap_or(0) + 1;
        let file = Arc::new(Self::create_segment(dir, active_n)?);
        index.set_size(active_n, 0);
        files.insert(active_n, file.clone());
        let (wake, woken) = mpsc::channel();
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            limits,
            index,
            files: RwLock::new(files),
            active: Mutex::new(Active {
                segment: active_n,
                file,
                len: 0,
                records: 0,
                seq: 0,
            }),
            commit: Mutex::new(Commit::default()),
            committed: std::sync::Condvar::new(),
            in_flight: Mutex::new(BTreeMap::new()),
            reserve: std::sync::atomic::AtomicU64::new(0),
            wake: wake.clone(),
            mutation: RwLock::new(()),
            scrub: Mutex::new(scrub::ScrubState::load(dir)),
        });
        let thread = {
            let inner = inner.clone();
            std::thread::Builder::new()
                .name("coffre-shard-index".into())
                .spawn(move || index_sealed_segments(&inner, woken))?
        };
        Ok(LocalShardStore {
            id: id.into(),
            inner,
            _indexer: Arc::new(Indexer {
                wake,
                thread: Some(thread),
            }),
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

    /// Keeps `bytes` free on the store's disk (for the system, compaction and the index):
    /// writes that would go below are refused as "storage full", and the free space reported
    /// (what placement and healing weigh) is less this.
    pub fn set_reserve(&self, bytes: u64) {
        self.inner.reserve.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Indexes now the sealed segments whose writes have finished (the store's thread does
    /// it within a second anyway).
    pub fn flush_index(&self) -> std::io::Result<()> {
        index_sealed(&self.inner)
    }

    fn file(&self, segment: u32) -> Option<Arc<File>> {
        self.inner
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&segment)
            .cloned()
    }

    /// Appends a record whose data is `pieces`, concatenated; it counts as in flight until
    /// the returned guard is dropped.
    fn append(&self, kind: u8, id: &ShardId, pieces: &[&[u8]]) -> std::io::Result<InFlight<'_>> {
        let inner = &*self.inner;
        let data_len: usize = pieces.iter().map(|p| p.len()).sum();
        let len = u32::try_from(data_len).map_err(|_| std::io::Error::other("a shard is at most 4 GiB"))?;
        let mut rec = Vec::with_capacity(HEADER_LEN + data_len);
        rec.resize(HEADER_LEN, 0);
        for p in pieces {
            rec.extend_from_slice(p);
        }
        let h = header(kind, id, len, crc_fast::crc32_iscsi(&rec[HEADER_LEN..]));
        rec[..HEADER_LEN].copy_from_slice(&h);
        let mut active = guard(&inner.active);
        if active.len >= inner.limits.bytes || active.records >= inner.limits.records {
            // Roll: the old segment is made durable before anything lands in the new one, so a
            // group commit only ever needs to sync the active file.
            active.file.sync_data()?;
            let n = active.segment + 1;
            let file = Arc::new(Self::create_segment(&inner.dir, n)?);
            inner.index.set_size(active.segment, active.len);
            inner.index.set_size(n, 0);
            inner
                .files
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(n, file.clone());
            active.segment = n;
            active.file = file;
            active.len = 0;
            active.records = 0;
            let _ = inner.wake.send(Wake::Check);
        }
        let offset = active.len;
        // Positional: a failed partial write is overwritten by the next record.
        active.file.write_all_at(&rec, offset)?;
        active.len += rec.len() as u64;
        active.records += 1;
        active.seq += 1;
        *guard(&inner.in_flight).entry(active.segment).or_default() += 1;
        Ok(InFlight {
            inner,
            segment: active.segment,
            offset: offset + HEADER_LEN as u64,
            seq: active.seq,
        })
    }

    /// Group commit: a writer whose record is not yet durable either becomes the leader, which
    /// syncs for everything appended so far, or waits for the leader's sync; the lock is not
    /// held during the sync, so the records appended meanwhile join the next one.
    fn sync_to(&self, seq: u64) -> std::io::Result<()> {
        let inner = &self.inner;
        let mut commit = guard(&inner.commit);
        loop {
            if commit.synced >= seq {
                return Ok(());
            }
            if !commit.leader {
                break;
            }
            commit = inner.committed.wait(commit).unwrap_or_else(|p| p.into_inner());
        }
        commit.leader = true;
        drop(commit);
        let (file, target) = {
            let a = guard(&inner.active);
            (a.file.clone(), a.seq)
        };
        let synced = file.sync_data();
        let mut commit = guard(&inner.commit);
        commit.leader = false;
        if synced.is_ok() {
            commit.synced = commit.synced.max(target);
        }
        drop(commit);
        // The others: durable now, or one of them leads the next sync (after a failure, too:
        // each writer learns the outcome of a sync that covered its record).
        inner.committed.notify_all();
        synced
    }

    fn put_blocking(&self, id: ShardId, data: &[u8]) -> std::io::Result<()> {
        self.put_with_hash(id, data, None)
    }

    /// Stores a shard with its BLAKE3 (computed here when not given).
    fn put_with_hash(&self, id: ShardId, data: &[u8], hash: Option<[u8; 32]>) -> std::io::Result<()> {
        let reserve = self.inner.reserve.load(std::sync::atomic::Ordering::Relaxed);
        if reserve > 0 {
            let (free, _) = disk_space(&self.inner.dir)?;
            if free < reserve.saturating_add(record_len((data.len() + HASH_LEN) as u32)) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    "the disk is full down to the store's reserve",
                ));
            }
        }
        let hash = hash.unwrap_or_else(|| *blake3::hash(data).as_bytes());
        let _shared = self.inner.mutation.read().unwrap_or_else(|p| p.into_inner());
        self.put_unlocked(KIND_PUT_B3, id, &[&hash, data])
    }

    /// Appends a shard's record (`pieces`: its data) and makes it durable and indexed.
    fn put_unlocked(&self, kind: u8, id: ShardId, pieces: &[&[u8]]) -> std::io::Result<()> {
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let rec = self.append(kind, &id, pieces)?;
        self.sync_to(rec.seq)?;
        if len >= DROP_CACHE_FROM {
            if let Some(f) = self.file(rec.segment) {
                drop_cached(&f, rec.offset - HEADER_LEN as u64, record_len(len as u32));
            }
        }
        self.inner.index.apply(
            id,
            Entry::Put(Loc {
                segment: rec.segment,
                offset: rec.offset,
                len: len as u32,
            }),
        )
    }

    fn get_blocking(&self, id: ShardId) -> Result<Bytes, StoreError> {
        let (kind, data, _) = self.read_record(id)?;
        Ok(match kind {
            KIND_PUT_B3 => data.slice(HASH_LEN.min(data.len())..),
            _ => data,
        })
    }

    /// A shard's record: its kind, its data (with the hash of a `KIND_PUT_B3`) and the CRC32C
    /// its header holds.
    fn read_record(&self, id: ShardId) -> Result<(u8, Bytes, u32), StoreError> {
        let mut loc = self.inner.index.lookup(&id)?.ok_or(StoreError::NotFound(id))?;
        let file = match self.file(loc.segment) {
            Some(f) => f,
            None => {
                // Compacted between the lookup and now: the record was copied forward first.
                loc = self.inner.index.lookup(&id)?.ok_or(StoreError::NotFound(id))?;
                self.file(loc.segment).ok_or(StoreError::NotFound(id))?
            }
        };
        // The header too: the record must say it is this shard's (an index that pointed
        // elsewhere would otherwise return another shard's bytes).
        let mut buf = vec![0u8; HEADER_LEN + loc.len as usize];
        let start = loc
            .offset
            .checked_sub(HEADER_LEN as u64)
            .ok_or(StoreError::NotFound(id))?;
        file.read_exact_at(&mut buf, start)?;
        if loc.len as usize >= DROP_CACHE_FROM {
            drop_cached(&file, start, buf.len() as u64);
        }
        match parse_header(&buf) {
            Some((kind, found, len, crc)) if holds_shard(kind) && found == id && len == loc.len => {
                Ok((kind, Bytes::from(buf).slice(HEADER_LEN..), crc))
            }
            _ => {
                tracing::error!(shard = %id, segment = loc.segment, offset = loc.offset, "the shard index points at another record");
                Err(StoreError::NotFound(id))
            }
        }
    }

    fn delete_blocking(&self, id: ShardId) -> std::io::Result<()> {
        let _shared = self.inner.mutation.read().unwrap_or_else(|p| p.into_inner());
        if self.inner.index.lookup(&id)?.is_none() {
            return Ok(());
        }
        let rec = self.append(KIND_DELETE, &id, &[])?;
        self.sync_to(rec.seq)?;
        self.inner.index.apply(
            id,
            Entry::Deleted {
                segment: rec.segment,
                offset: rec.offset,
            },
        )
    }

    /// Rewrites indexed segments that are less than half live (and removes empty ones left
    /// by restarts); returns the bytes reclaimed.
    pub fn compact(&self) -> std::io::Result<u64> {
        let through = self.inner.index.through();
        let mut victims: Vec<(u32, u64)> = self
            .inner
            .index
            .stats()
            .into_iter()
            .filter(|(n, s)| *n <= through && (s.size == 0 || s.live * 2 < s.size))
            .map(|(n, s)| (n, s.size))
            .collect();
        victims.sort_unstable();
        let mut reclaimed = 0;
        for (n, size) in victims {
            let Some(file) = self.file(n) else { continue };
            let path = segment_path(&self.inner.dir, n);
            let mut records = Vec::new();
            segment::scan(&file, &path, |r| records.push(r))?;
            for r in records.iter().filter(|r| holds_shard(r.kind)) {
                let here = Loc {
                    segment: n,
                    offset: r.offset,
                    len: r.len,
                };
                let _alone = self.inner.mutation.write().unwrap_or_else(|p| p.into_inner());
                if self.inner.index.lookup(&r.id)? != Some(here) {
                    continue; // dead: deleted or replaced
                }
                // Copy forward through the normal write path (durable before the old file
                // goes), as it is: its hash with it.
                let (kind, data) = match self.read_record(r.id) {
                    Ok((kind, d, _)) => (kind, d),
                    Err(StoreError::NotFound(_)) => continue,
                    Err(StoreError::Io(e)) => return Err(e),
                    Err(e) => return Err(std::io::Error::other(e.to_string())),
                };
                self.put_unlocked(kind, r.id, &[&data])?;
            }
            // Tombstones in this segment may be all that hides a deleted shard in an older one
            // from a rebuild of the index: carry them forward while older segments remain.
            let older_exists = self
                .inner
                .files
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .keys()
                .any(|k| *k < n);
            if older_exists {
                for r in records.iter().filter(|r| r.kind == KIND_DELETE) {
                    let _alone = self.inner.mutation.write().unwrap_or_else(|p| p.into_inner());
                    if self.inner.index.lookup(&r.id)?.is_none() {
                        let rec = self.append(KIND_DELETE, &r.id, &[])?;
                        self.sync_to(rec.seq)?;
                    }
                }
            }
            self.inner.files.write().unwrap_or_else(|p| p.into_inner()).remove(&n);
            self.inner.index.forget_segment(n)?;
            std::fs::remove_file(&path)?;
            sync_dir(&self.inner.dir)?;
            reclaimed += size;
        }
        Ok(reclaimed)
    }

    fn stat_blocking(&self) -> std::io::Result<StoreStat> {
        let shards = self.inner.index.shards();
        let used_bytes = self.inner.index.stats().iter().map(|(_, s)| s.live).sum();
        let (free, total_bytes) = disk_space(&self.inner.dir)?;
        let free_bytes = free.saturating_sub(self.inner.reserve.load(std::sync::atomic::Ordering::Relaxed));
        Ok(StoreStat {
            shards,
            used_bytes,
            free_bytes,
            total_bytes,
        })
    }
}

/// The indexing thread: writes each sealed segment's records to the index once every write
/// to it has finished, in segment order; retries on the next wake or after a second.
fn index_sealed_segments(inner: &Inner, woken: mpsc::Receiver<Wake>) {
    loop {
        match woken.recv_timeout(Duration::from_secs(1)) {
            Ok(Wake::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
            Ok(Wake::Check) | Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Err(e) = index_sealed(inner) {
            tracing::warn!(dir = %inner.dir.display(), error = %e, "indexing a sealed segment failed; will retry");
        }
    }
}

/// Indexes the sealed segments whose writes have all finished, in order.
fn index_sealed(inner: &Inner) -> std::io::Result<()> {
    loop {
        let through = inner.index.through();
        let next = inner
            .files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .filter(|n| **n > through)
            .min()
            .copied();
        let Some(next) = next else { return Ok(()) };
        if next >= guard(&inner.active).segment {
            return Ok(()); // the active segment: not sealed yet
        }
        if guard(&inner.in_flight).get(&next).is_some_and(|n| *n > 0) {
            return Ok(()); // writes still finishing: woken again when the last one does
        }
        inner.index.flush_through(next)?;
        guard(&inner.in_flight).remove(&next);
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

    fn put_hashed(&self, id: ShardId, data: Bytes, hash: [u8; 32]) -> BoxFuture<'_, Result<(), StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(s.put_with_hash(id, &data, Some(hash))?)))
    }

    fn scrub(&self, request: ScrubRequest) -> BoxFuture<'_, Result<ScrubStatus, StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || s.scrub_request(request)))
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
        Box::pin(blocking(move || Ok(s.inner.index.list()?)))
    }

    fn stat(&self) -> BoxFuture<'_, Result<StoreStat, StoreError>> {
        let s = self.clone();
        Box::pin(blocking(move || Ok(s.stat_blocking()?)))
    }
}

#[cfg(test)]
mod scrub_tests;
#[cfg(test)]
mod tests;
