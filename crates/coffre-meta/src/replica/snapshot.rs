//! Snapshots of the state machine: one file holding every record of the state column
//! families, read from one RocksDB snapshot (a consistent point: the records and the log
//! position they include agree), with a BLAKE3 trailer. Streamed to a replica that lags
//! behind the log, and the base of metadata backups.
//!
//! Format: `MAGIC`, `u32` length and the postcard of the `SnapshotMeta`, then records
//! `cf index u8 ∥ u32 key length ∥ key ∥ u32 value length ∥ value`, an `END` byte, and the
//! BLAKE3 of everything before it. Lengths are little-endian.
//!
//! Installing is redone after a crash: the file is synced, its path recorded (synced), the
//! state column families emptied and refilled, and the record removed in the last batch;
//! `MetaStore::open` finishes an install it finds recorded.

use super::codec::{decode, encode, Membership};
use super::ReplicaNode;
use crate::{keys, MetaError, MetaStore};
use openraft::{LogId, SnapshotMeta};
use rocksdb::WriteBatch;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CFMETA01";
const END: u8 = 0xFF;
/// Bounds what a corrupt or hostile file can make us allocate for one key or value.
const MAX_FIELD: u32 = 64 << 20;
/// Records per batch when loading (memory stays bounded whatever the snapshot size).
const LOAD_BATCH_BYTES: usize = 4 << 20;

pub(crate) type Meta = SnapshotMeta<u64, ReplicaNode>;

fn corrupt(m: impl std::fmt::Display) -> MetaError {
    MetaError::Corrupt(format!("snapshot: {m}"))
}

fn io(e: std::io::Error) -> MetaError {
    MetaError::Corrupt(format!("snapshot file: {e}"))
}

pub(crate) fn incoming_path(dir: &Path) -> PathBuf {
    dir.join(format!("incoming-{}.snap", coffre_types::VersionId::random().to_hex()))
}

fn final_path(dir: &Path, meta: &Meta) -> PathBuf {
    let (index, term) = meta.last_log_id.map_or((0, 0), |l| (l.index, l.leader_id.term));
    dir.join(format!("snap-{index:020}-{term:020}.snap"))
}

pub(crate) fn create(path: &Path) -> std::io::Result<File> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Writes a snapshot of `store` into `out`; returns its meta.
pub(crate) fn write_to(store: &MetaStore, out: impl Write) -> Result<Meta, MetaError> {
    let snap = store.db.snapshot();
    let state = store.cf(keys::CF_RAFT_STATE);
    let applied: Option<LogId<u64>> = match snap.get_cf(state, keys::RAFT_APPLIED)? {
        Some(v) => Some(decode(&v)?),
        None => None,
    };
    let membership: Membership = match snap.get_cf(state, keys::RAFT_MEMBERSHIP)? {
        Some(v) => decode(&v)?,
        None => Membership::default(),
    };
    let meta = Meta {
        last_log_id: applied,
        last_membership: membership,
        snapshot_id: format!(
            "{}-{}",
            applied.map_or(0, |l| l.index),
            coffre_types::VersionId::random().to_hex()
        ),
    };
    let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, out));
    w.write_all(MAGIC).map_err(io)?;
    let header = encode(&meta);
    w.write_all(&(header.len() as u32).to_le_bytes()).map_err(io)?;
    w.write_all(&header).map_err(io)?;
    for (i, name) in keys::STATE_CFS.iter().enumerate() {
        for item in snap.iterator_cf(store.cf(name), rocksdb::IteratorMode::Start) {
            let (k, v) = item?;
            w.write_all(&[i as u8]).map_err(io)?;
            w.write_all(&(k.len() as u32).to_le_bytes()).map_err(io)?;
            w.write_all(&k).map_err(io)?;
            w.write_all(&(v.len() as u32).to_le_bytes()).map_err(io)?;
            w.write_all(&v).map_err(io)?;
        }
    }
    w.write_all(&[END]).map_err(io)?;
    let hash = w.hasher.finalize();
    let mut inner = w.inner;
    inner.write_all(hash.as_bytes()).map_err(io)?;
    inner.flush().map_err(io)?;
    Ok(meta)
}

/// Builds a snapshot file in `dir`; returns its meta and the file, positioned at its start.
pub(crate) fn build(store: &MetaStore, dir: &Path) -> Result<(Meta, SnapshotFile), MetaError> {
    let tmp = incoming_path(dir);
    let mut file = create(&tmp).map_err(io)?;
    let meta = write_to(store, &mut file)?;
    file.sync_all().map_err(io)?;
    let path = final_path(dir, &meta);
    std::fs::rename(&tmp, &path).map_err(io)?;
    sync_dir(dir)?;
    remove_older(dir, &path);
    file.rewind().map_err(io)?;
    Ok((meta, SnapshotFile::new(file, path)))
}

/// The newest snapshot in `dir`, if any.
pub(crate) fn latest(dir: &Path) -> Result<Option<(Meta, SnapshotFile)>, MetaError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(None);
    };
    let newest = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snap-") && n.ends_with(".snap"))
        })
        .max();
    let Some(path) = newest else {
        return Ok(None);
    };
    let mut file = File::open(&path).map_err(io)?;
    let meta = read_header(&mut BufReader::new(&mut file))?;
    file.rewind().map_err(io)?;
    Ok(Some((meta, SnapshotFile::new(file, path))))
}

/// Installs a snapshot received from the leader into the file at `incoming`.
pub(crate) fn install_received(store: &MetaStore, dir: &Path, incoming: &Path, meta: &Meta) -> Result<(), MetaError> {
    File::open(incoming).and_then(|f| f.sync_all()).map_err(io)?;
    let found = verify(incoming)?;
    if found.last_log_id != meta.last_log_id || found.snapshot_id != meta.snapshot_id {
        return Err(corrupt("the received file is not the snapshot announced"));
    }
    let path = final_path(dir, meta);
    std::fs::rename(incoming, &path).map_err(io)?;
    sync_dir(dir)?;
    install(store, &path)?;
    remove_older(dir, &path);
    Ok(())
}

/// Replaces every record of `store`'s state machine by those of the snapshot at `path`.
pub(crate) fn install(store: &MetaStore, path: &Path) -> Result<Meta, MetaError> {
    let meta = verify(path)?;
    let raw_path = path.to_string_lossy().into_owned();
    store.put_raft_state_synced(keys::RAFT_INSTALLING, raw_path.as_bytes())?;
    let mut b = WriteBatch::default();
    for name in keys::STATE_CFS {
        let cf = store.cf(name);
        let mut it = store.db.raw_iterator_cf(cf);
        it.seek_to_last();
        if let Some(last) = it.key().map(<[u8]>::to_vec) {
            b.delete_range_cf(cf, Vec::new(), last.clone());
            b.delete_cf(cf, &last);
        }
        it.status()?;
    }
    store.db.write(std::mem::take(&mut b))?;
    let mut r = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    read_header(&mut r)?;
    let mut pending = 0usize;
    loop {
        let mut tag = [0u8; 1];
        r.read_exact(&mut tag).map_err(io)?;
        if tag[0] == END {
            break;
        }
        let name = keys::STATE_CFS
            .get(tag[0] as usize)
            .ok_or_else(|| corrupt(format!("unknown column family {}", tag[0])))?;
        let k = read_field(&mut r)?;
        let v = read_field(&mut r)?;
        pending += k.len() + v.len();
        b.put_cf(store.cf(name), k, v);
        if pending >= LOAD_BATCH_BYTES {
            store.db.write(std::mem::take(&mut b))?;
            pending = 0;
        }
    }
    let state = store.cf(keys::CF_RAFT_STATE);
    match &meta.last_log_id {
        Some(l) => b.put_cf(state, keys::RAFT_APPLIED, encode(l)),
        None => b.delete_cf(state, keys::RAFT_APPLIED),
    }
    b.put_cf(state, keys::RAFT_MEMBERSHIP, encode(&meta.last_membership));
    b.delete_cf(state, keys::RAFT_INSTALLING);
    store.db.write_opt(b, &crate::commands::sync_opts())?;
    // A snapshot from a version before the index holds none of it: built now.
    store.ensure_node_parts()?;
    store.ensure_repair_queue()?;
    store.bump_generation();
    Ok(meta)
}

/// Reads a whole snapshot file and checks its trailer; returns its meta.
pub(crate) fn verify(path: &Path) -> Result<Meta, MetaError> {
    let mut f = File::open(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    if len < (MAGIC.len() + 4 + 1 + 32) as u64 {
        return Err(corrupt("too short"));
    }
    let mut hasher = blake3::Hasher::new();
    let mut r = BufReader::with_capacity(1 << 20, (&mut f).take(len - 32));
    std::io::copy(&mut r, &mut HashSink(&mut hasher)).map_err(io)?;
    let mut trailer = [0u8; 32];
    f.read_exact(&mut trailer).map_err(io)?;
    if hasher.finalize() != blake3::Hash::from_bytes(trailer) {
        return Err(corrupt("checksum mismatch (a damaged or truncated file)"));
    }
    f.rewind().map_err(io)?;
    read_header(&mut BufReader::new(f))
}

fn read_header(r: &mut impl Read) -> Result<Meta, MetaError> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io)?;
    if &magic != MAGIC {
        return Err(corrupt("not a Coffre metadata snapshot"));
    }
    decode(&read_field(r)?)
}

fn read_field(r: &mut impl Read) -> Result<Vec<u8>, MetaError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(io)?;
    let len = u32::from_le_bytes(len);
    if len > MAX_FIELD {
        return Err(corrupt(format!("a field of {len} bytes")));
    }
    let mut v = vec![0u8; len as usize];
    r.read_exact(&mut v).map_err(io)?;
    Ok(v)
}

/// Removes snapshots older than `keep`, and incoming files left by interrupted transfers.
fn remove_older(dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let older = name.starts_with("snap-") && p.as_path() < keep;
        if older || name.starts_with("incoming-") {
            let _ = std::fs::remove_file(&p);
        }
    }
}

fn sync_dir(dir: &Path) -> Result<(), MetaError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)
}

/// A snapshot file and where it is: the Raft core reads and writes it as a stream, and
/// installing needs its path.
pub struct SnapshotFile {
    file: tokio::fs::File,
    pub(crate) path: PathBuf,
}

impl SnapshotFile {
    pub(crate) fn new(file: File, path: PathBuf) -> SnapshotFile {
        SnapshotFile {
            file: tokio::fs::File::from_std(file),
            path,
        }
    }
}

impl tokio::io::AsyncRead for SnapshotFile {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for SnapshotFile {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

impl tokio::io::AsyncSeek for SnapshotFile {
    fn start_seek(mut self: std::pin::Pin<&mut Self>, position: std::io::SeekFrom) -> std::io::Result<()> {
        std::pin::Pin::new(&mut self.file).start_seek(position)
    }

    fn poll_complete(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<u64>> {
        std::pin::Pin::new(&mut self.file).poll_complete(cx)
    }
}

struct HashingWriter<W: Write> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: blake3::Hasher::new(),
        }
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

struct HashSink<'a>(&'a mut blake3::Hasher);

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl MetaStore {
    pub(crate) fn put_raft_state_synced(&self, key: &[u8], value: &[u8]) -> Result<(), MetaError> {
        self.db
            .put_cf_opt(self.cf(keys::CF_RAFT_STATE), key, value, &crate::commands::sync_opts())?;
        Ok(())
    }

    /// Finishes a snapshot install that a crash interrupted (see the module's comment).
    pub(crate) fn recover_interrupted_install(&self) -> Result<(), MetaError> {
        let Some(path) = self.db.get_cf(self.cf(keys::CF_RAFT_STATE), keys::RAFT_INSTALLING)? else {
            return Ok(());
        };
        let path = PathBuf::from(String::from_utf8_lossy(&path).into_owned());
        install(self, &path).map(drop)
    }
}

/// What a restore made of a store.
#[derive(Debug)]
pub struct Restored {
    /// The snapshot the backup held (its id).
    pub snapshot_id: String,
    /// The replica set the store now is alone in, if it was restored as a replica.
    pub replica: Option<u64>,
}

impl MetaStore {
    /// Writes a consistent snapshot of every record to `out` (the store keeps serving); its
    /// id. The base of a metadata backup.
    pub fn write_snapshot(&self, out: impl Write) -> Result<String, MetaError> {
        write_to(self, out).map(|m| m.snapshot_id)
    }

    /// Fills an empty store from a snapshot file (checked first). Without `replica`, the store
    /// is a plain one (a gateway without `[meta]`). With `(address, snapshot_dir)`, it is the
    /// only replica of a new set, at log position 1, its snapshot the restored state: replicas
    /// added later receive that snapshot, never a log replayed on an empty store.
    pub fn restore_snapshot(&self, path: &Path, replica: Option<(&str, &Path)>) -> Result<Restored, MetaError> {
        if self.holds_anything()? {
            return Err(MetaError::DeleteConflict(format!(
                "the metadata store in {} is not empty: restore into a new data directory",
                self.dir.display()
            )));
        }
        let meta = install(self, path)?;
        let state = self.cf(keys::CF_RAFT_STATE);
        let mut b = WriteBatch::default();
        let id = match replica {
            None => {
                b.delete_cf(state, keys::RAFT_APPLIED);
                b.delete_cf(state, keys::RAFT_MEMBERSHIP);
                None
            }
            Some((address, _)) => {
                let address = address.trim_end_matches('/');
                let id = super::replica_id(address);
                let at = LogId::new(openraft::CommittedLeaderId::new(1, id), 1);
                let node = ReplicaNode {
                    address: address.to_string(),
                };
                let members = openraft::Membership::new(
                    vec![std::collections::BTreeSet::from([id])],
                    std::collections::BTreeMap::from([(id, node)]),
                );
                b.put_cf(state, keys::RAFT_APPLIED, encode(&at));
                b.put_cf(state, keys::RAFT_PURGED, encode(&at));
                b.put_cf(
                    state,
                    keys::RAFT_MEMBERSHIP,
                    encode(&Membership::new(Some(at), members)),
                );
                Some(id)
            }
        };
        self.db.write_opt(b, &crate::commands::sync_opts())?;
        if let Some((_, dir)) = replica {
            std::fs::create_dir_all(dir).map_err(io)?;
            build(self, dir)?;
        }
        Ok(Restored {
            snapshot_id: meta.snapshot_id,
            replica: id,
        })
    }

    fn holds_anything(&self) -> Result<bool, MetaError> {
        // (`node_parts` is derived from the others: empty with them, but for its marker.)
        for name in keys::ALL_CFS.into_iter().filter(|n| *n != keys::CF_NODE_PARTS) {
            let mut it = self.db.raw_iterator_cf(self.cf(name));
            it.seek_to_first();
            if it.valid() {
                return Ok(true);
            }
            it.status()?;
        }
        Ok(false)
    }
}
