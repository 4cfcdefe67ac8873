//! Where each shard is: a persisted index, so that a node's start-up does not depend on how many
//! shards it holds and its memory does not grow with them.
//!
//! Two levels, like an LSM tree's memtable and tables:
//! - `mem`: the effect of every record of the segments not yet indexed (the active segment and,
//!   briefly, the one before it), bounded by what a segment holds;
//! - a RocksDB (`DIR/index/`): the effect of every record of the segments up to `through`,
//!   written once per segment, in one synced batch, after the segment is sealed and every write
//!   to it has finished. Its data blocks are cached in a block cache shared by every store of
//!   the process; its filters and block indexes stay in memory (about 1.6 bytes a shard).
//!
//! A lookup reads `mem`, then the database. The database is never written on the write path
//! and never holds a record that was not durable in its segment: a crash loses at most the
//! effect of the segments after `through`, which start-up rebuilds by scanning those segments
//! only. The live byte count of every segment (for compaction) and the shard count are kept
//! for the database's state in the same batches, and in memory for the current state.

use super::segment::record_len;
use coffre_types::ShardId;
use rocksdb::{BlockBasedOptions, Cache, Options, WriteBatch, WriteOptions, DB};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

/// Where a shard's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Loc {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
}

impl Loc {
    fn encode(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.segment.to_le_bytes());
        b[4..12].copy_from_slice(&self.offset.to_le_bytes());
        b[12..].copy_from_slice(&self.len.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Loc> {
        Some(Loc {
            segment: u32::from_le_bytes(b.get(..4)?.try_into().ok()?),
            offset: u64::from_le_bytes(b.get(4..12)?.try_into().ok()?),
            len: u32::from_le_bytes(b.get(12..16)?.try_into().ok()?),
        })
    }
}

/// The latest record of a shard in the segments not yet indexed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Entry {
    Put(Loc),
    /// A tombstone, at this position.
    Deleted {
        segment: u32,
        offset: u64,
    },
}

impl Entry {
    fn position(&self) -> (u32, u64) {
        match *self {
            Entry::Put(l) => (l.segment, l.offset),
            Entry::Deleted { segment, offset } => (segment, offset),
        }
    }
}

/// Size and live bytes of a segment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct SegmentStat {
    pub size: u64,
    pub live: u64,
}

/// Keys of the index database: one byte of kind, then the subject.
mod keys {
    pub const SHARD: u8 = b'i';
    pub const STAT: u8 = b's';
    pub const THROUGH: &[u8] = b"m/through";
    pub const SHARDS: &[u8] = b"m/shards";

    pub fn shard(id: &coffre_types::ShardId) -> [u8; 1 + coffre_types::ShardId::LEN] {
        let mut k = [0u8; 1 + coffre_types::ShardId::LEN];
        k[0] = SHARD;
        k[1..].copy_from_slice(&id.to_bytes());
        k
    }

    pub fn stat(segment: u32) -> [u8; 5] {
        let mut k = [STAT; 5];
        k[1..].copy_from_slice(&segment.to_be_bytes());
        k
    }
}

/// The current state, as the segments' records say once every durable record is applied.
struct Current {
    mem: HashMap<ShardId, Entry>,
    stats: HashMap<u32, SegmentStat>,
    shards: u64,
}

/// The database's state, as written by the last flush; only flushes touch it, one at a time.
struct Flushed {
    through: u32,
    stats: HashMap<u32, SegmentStat>,
    shards: u64,
}

pub(super) struct ShardIndex {
    db: DB,
    current: Mutex<Current>,
    flushed: Mutex<Flushed>,
}

/// A lock whose holder panicked still guards consistent data here (every update is whole),
/// so poisoning is ignored.
fn guard<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io(e: rocksdb::Error) -> std::io::Error {
    std::io::Error::other(format!("shard index: {e}"))
}

/// A fixed-size value of the database (`through`, the shard count), if written.
fn read_mark<const N: usize>(db: &DB, key: &[u8]) -> std::io::Result<Option<[u8; N]>> {
    match db.get(key).map_err(io)? {
        Some(v) => v
            .as_slice()
            .try_into()
            .map(Some)
            .map_err(|_| std::io::Error::other(format!("shard index: bad {}", String::from_utf8_lossy(key)))),
        None => Ok(None),
    }
}

/// One block cache for the indexes of every store of the process: what bounds their memory.
fn block_cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(|| Cache::new_lru_cache(coffre_types::limits::SHARD_INDEX_CACHE))
}

impl ShardIndex {
    /// Opens the index in `dir` (created empty if missing: every segment is then scanned once).
    pub fn open(dir: &Path) -> std::io::Result<ShardIndex> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::None);
        opts.set_write_buffer_size(8 << 20);
        // RocksDB's own log of what it did: a few, not one per start for ever.
        opts.set_keep_log_file_num(3);
        // Every table stays open: its bloom filter and block index stay in memory (about 1.6
        // bytes a shard), so that a lookup of a shard that is not there (every new shard's
        // write asks) costs no read. Kept in the block cache instead, a filter evicted by data
        // blocks was read and checksummed again on every lookup (a megabyte each).
        opts.set_max_open_files(-1);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(block_cache());
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        let db = DB::open(&opts, dir).map_err(io)?;
        let through = read_mark(&db, keys::THROUGH)?.map_or(0, u32::from_le_bytes);
        let shards = read_mark(&db, keys::SHARDS)?.map_or(0, u64::from_le_bytes);
        let mut stats = HashMap::new();
        for item in db.iterator(rocksdb::IteratorMode::From(&[keys::STAT], rocksdb::Direction::Forward)) {
            let (k, v) = item.map_err(io)?;
            if k.first() != Some(&keys::STAT) {
                break;
            }
            let (Some(n), Some(size), Some(live)) = (
                k.get(1..5).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes),
                v.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes),
                v.get(8..16).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes),
            ) else {
                return Err(std::io::Error::other("shard index: bad segment stat"));
            };
            stats.insert(n, SegmentStat { size, live });
        }
        Ok(ShardIndex {
            db,
            current: Mutex::new(Current {
                mem: HashMap::new(),
                stats: stats.clone(),
                shards,
            }),
            flushed: Mutex::new(Flushed { through, stats, shards }),
        })
    }

    /// Every segment up to this one is in the database.
    pub fn through(&self) -> u32 {
        guard(&self.flushed).through
    }

    fn db_get(&self, id: &ShardId) -> std::io::Result<Option<Loc>> {
        Ok(self
            .db
            .get_pinned(keys::shard(id))
            .map_err(io)?
            .and_then(|v| Loc::decode(v.as_ref())))
    }

    pub fn lookup(&self, id: &ShardId) -> std::io::Result<Option<Loc>> {
        if let Some(e) = guard(&self.current).mem.get(id) {
            return Ok(match e {
                Entry::Put(l) => Some(*l),
                Entry::Deleted { .. } => None,
            });
        }
        // Not in `mem`: a flush removes an entry only after the database has it.
        self.db_get(id)
    }

    /// Applies a durable record. Records of one shard may be applied out of their order in
    /// the segments (their writers race); the later position wins.
    pub fn apply(&self, id: ShardId, entry: Entry) -> std::io::Result<()> {
        let mut cur = guard(&self.current);
        let old = match cur.mem.get(&id) {
            Some(e) if e.position() > entry.position() => {
                return Ok(()); // a later record is already applied: this one is dead
            }
            Some(Entry::Put(l)) => Some(*l),
            Some(Entry::Deleted { .. }) => None,
            // The flush cannot change this shard's row meanwhile: it is not in `mem`.
            None => self.db_get(&id)?,
        };
        if let Some(old) = old {
            if let Some(s) = cur.stats.get_mut(&old.segment) {
                s.live = s.live.saturating_sub(record_len(old.len));
            }
        }
        match entry {
            Entry::Put(l) => {
                cur.stats.entry(l.segment).or_default().live += record_len(l.len);
                if old.is_none() {
                    cur.shards += 1;
                }
            }
            Entry::Deleted { .. } => {
                if old.is_some() {
                    cur.shards = cur.shards.saturating_sub(1);
                }
            }
        }
        cur.mem.insert(id, entry);
        Ok(())
    }

    /// Records a segment's final (or current) size.
    pub fn set_size(&self, segment: u32, size: u64) {
        guard(&self.current).stats.entry(segment).or_default().size = size;
    }

    /// Writes the effect of every record of the segments up to `segment` to the database, in
    /// one synced batch, and advances `through`. The caller guarantees those segments are
    /// sealed, every write to them finished, and the segments before already flushed.
    pub fn flush_through(&self, segment: u32) -> std::io::Result<()> {
        let mut flushed = guard(&self.flushed);
        if segment <= flushed.through {
            return Ok(()); // already done by another caller
        }
        let (entries, size): (Vec<(ShardId, Entry)>, u64) = {
            let cur = guard(&self.current);
            (
                cur.mem
                    .iter()
                    .filter(|(_, e)| e.position().0 <= segment)
                    .map(|(i, e)| (*i, *e))
                    .collect(),
                cur.stats.get(&segment).map(|s| s.size).unwrap_or(0),
            )
        };
        let mut stats = flushed.stats.clone();
        let mut shards = flushed.shards;
        let mut batch = WriteBatch::default();
        for (id, e) in &entries {
            let old = self.db_get(id)?;
            if let Some(old) = old {
                if let Some(s) = stats.get_mut(&old.segment) {
                    s.live = s.live.saturating_sub(record_len(old.len));
                }
            }
            match e {
                Entry::Put(l) => {
                    batch.put(keys::shard(id), l.encode());
                    stats.entry(l.segment).or_default().live += record_len(l.len);
                    if old.is_none() {
                        shards += 1;
                    }
                }
                Entry::Deleted { .. } => {
                    batch.delete(keys::shard(id));
                    if old.is_some() {
                        shards = shards.saturating_sub(1);
                    }
                }
            }
        }
        stats.entry(segment).or_default().size = size;
        for (n, s) in &stats {
            if flushed.stats.get(n) != Some(s) {
                let mut v = [0u8; 16];
                v[..8].copy_from_slice(&s.size.to_le_bytes());
                v[8..].copy_from_slice(&s.live.to_le_bytes());
                batch.put(keys::stat(*n), v);
            }
        }
        batch.put(keys::THROUGH, segment.to_le_bytes());
        batch.put(keys::SHARDS, shards.to_le_bytes());
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.write_opt(batch, &sync).map_err(io)?;
        *flushed = Flushed {
            through: segment,
            stats,
            shards,
        };
        // Only now may lookups miss `mem` for these shards; an entry replaced meanwhile stays.
        let mut cur = guard(&self.current);
        for (id, e) in entries {
            if cur.mem.get(&id) == Some(&e) {
                cur.mem.remove(&id);
            }
        }
        Ok(())
    }

    /// Forgets a segment removed by compaction (its rows in the database are all dead).
    pub fn forget_segment(&self, segment: u32) -> std::io::Result<()> {
        guard(&self.current).stats.remove(&segment);
        let mut flushed = guard(&self.flushed);
        if flushed.stats.remove(&segment).is_some() {
            // Not synced: a stat left for a missing segment is dropped at the next start.
            self.db.delete(keys::stat(segment)).map_err(io)?;
        }
        Ok(())
    }

    /// Drops the stats of segments that are not on disk (removed before a crash).
    pub fn keep_only(&self, segments: &[u32]) -> std::io::Result<()> {
        let gone: Vec<u32> = guard(&self.current)
            .stats
            .keys()
            .filter(|n| !segments.contains(n))
            .copied()
            .collect();
        for n in gone {
            self.forget_segment(n)?;
        }
        Ok(())
    }

    /// Size and live bytes of every segment.
    pub fn stats(&self) -> Vec<(u32, SegmentStat)> {
        guard(&self.current).stats.iter().map(|(n, s)| (*n, *s)).collect()
    }

    pub fn shards(&self) -> u64 {
        guard(&self.current).shards
    }

    /// Every shard held.
    pub fn list(&self) -> std::io::Result<Vec<ShardId>> {
        // `mem` first: an entry leaves it only once the database has it, so reading the
        // database after `mem` misses nothing.
        let mem: HashMap<ShardId, Entry> = guard(&self.current).mem.clone();
        let mut out: Vec<ShardId> = mem
            .iter()
            .filter(|(_, e)| matches!(e, Entry::Put(_)))
            .map(|(i, _)| *i)
            .collect();
        for item in self
            .db
            .iterator(rocksdb::IteratorMode::From(&[keys::SHARD], rocksdb::Direction::Forward))
        {
            let (k, _) = item.map_err(io)?;
            if k.first() != Some(&keys::SHARD) {
                break;
            }
            if let Some(id) = ShardId::from_bytes(&k[1..]) {
                if !mem.contains_key(&id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Up to `limit` shards held, in id order, after `after` (from the first if `None`): a
    /// walk over every shard in steps (the scrub), whatever is written meanwhile.
    pub fn list_after(&self, after: Option<&ShardId>, limit: usize) -> std::io::Result<Vec<ShardId>> {
        let mem: HashMap<ShardId, Entry> = guard(&self.current).mem.clone();
        let past = |id: &ShardId| after.is_none_or(|a| id.to_bytes() > a.to_bytes());
        let mut out: Vec<ShardId> = mem
            .iter()
            .filter(|(i, e)| matches!(e, Entry::Put(_)) && past(i))
            .map(|(i, _)| *i)
            .collect();
        let from = match after {
            Some(a) => keys::shard(a).to_vec(),
            None => vec![keys::SHARD],
        };
        let mut from_db = 0;
        for item in self
            .db
            .iterator(rocksdb::IteratorMode::From(&from, rocksdb::Direction::Forward))
        {
            let (k, _) = item.map_err(io)?;
            if k.first() != Some(&keys::SHARD) || from_db >= limit {
                break;
            }
            if let Some(id) = ShardId::from_bytes(&k[1..]) {
                if past(&id) && !mem.contains_key(&id) {
                    out.push(id);
                    from_db += 1;
                }
            }
        }
        // Both sources are complete up to their `limit` smallest: so is their merge.
        out.sort_unstable_by_key(|id| id.to_bytes());
        out.truncate(limit);
        Ok(out)
    }

    /// Entries not yet in the database (for tests and the memory bound).
    #[cfg(test)]
    pub fn unflushed(&self) -> usize {
        guard(&self.current).mem.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loc_encoding_round_trips() {
        let l = Loc {
            segment: 7,
            offset: u64::MAX - 3,
            len: 123_456,
        };
        assert_eq!(Loc::decode(&l.encode()), Some(l));
        assert_eq!(Loc::decode(&[0u8; 15]), None);
    }

    #[test]
    fn stat_keys_sort_by_segment_and_stay_apart_from_shard_keys() {
        assert!(keys::stat(1) < keys::stat(2));
        assert!(keys::stat(255) < keys::stat(256));
        assert!(keys::stat(0).as_slice() > keys::THROUGH);
        assert!(keys::stat(0).as_slice() > keys::SHARDS);
        let id = ShardId {
            version: coffre_types::VersionId([0xFF; 16]),
            part: u16::MAX,
            stripe: u32::MAX,
            index: u8::MAX,
        };
        // Every shard key sorts before the marks and the stats: a scan of one kind ends at
        // the first key of another.
        assert!(keys::shard(&id).as_slice() < keys::THROUGH);
        assert!(keys::shard(&id).as_slice() < keys::SHARDS);
    }
}
