//! Metadata backups: a consistent snapshot of every metadata record, sealed with the master
//! key as it streams out (no clear copy on disk), and restored into an empty store.
//!
//! Format: `MAGIC ∥ backup id (16 bytes)`, then chunks `u32 length ∥ sealed chunk`, each
//! at most `CHUNK` bytes of snapshot before sealing. A chunk's associated data binds the
//! backup id, its index and whether it is the last: a chunk changed, removed, reordered,
//! moved from another backup or a backup cut short is refused. The snapshot inside carries
//! its own BLAKE3 trailer, checked again before anything is installed.

use crate::{EngineError, EngineResult};
use coffre_crypto::Keyring;
use coffre_meta::MetaStore;
use std::io::{Read, Write};
use std::path::Path;

const MAGIC: &[u8; 8] = b"CFMBAK01";
const CHUNK: usize = 1 << 20;
/// A sealed chunk is its plaintext plus a nonce and a tag: far below this.
const MAX_SEALED: u32 = (CHUNK as u32) + 4096;

fn aad(id: &[u8; 16], index: u64, last: bool) -> Vec<u8> {
    let mut a = b"coffre-meta-backup/v1".to_vec();
    a.extend_from_slice(id);
    a.extend_from_slice(&index.to_be_bytes());
    a.push(u8::from(last));
    a
}

fn io(e: std::io::Error) -> EngineError {
    EngineError::Internal(format!("backup: {e}"))
}

/// Seals what is written through it, a chunk at a time.
struct SealingWriter<'a, W: Write> {
    keys: &'a Keyring,
    out: W,
    id: [u8; 16],
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> SealingWriter<'_, W> {
    fn emit(&mut self, last: bool) -> std::io::Result<()> {
        let sealed = self.keys.seal(&aad(&self.id, self.index, last), &self.buf);
        self.out.write_all(&(sealed.len() as u32).to_le_bytes())?;
        self.out.write_all(&sealed)?;
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.emit(true)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for SealingWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == CHUNK {
            self.emit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes a sealed backup of `meta` into `out`; returns the snapshot's id.
pub fn write_backup(meta: &MetaStore, keys: &Keyring, mut out: impl Write) -> EngineResult<String> {
    let id: [u8; 16] = coffre_types::random_bytes();
    out.write_all(MAGIC).map_err(io)?;
    out.write_all(&id).map_err(io)?;
    let mut w = SealingWriter {
        keys,
        out,
        id,
        buf: Vec::with_capacity(CHUNK),
        index: 0,
    };
    let snapshot = meta.write_snapshot(&mut w)?;
    w.finish().map_err(io)?;
    Ok(snapshot)
}

/// Opens a sealed backup from `input` into `out` (the plain snapshot), checking every chunk.
pub fn open_backup(keys: &Keyring, mut input: impl Read, mut out: impl Write) -> EngineResult<()> {
    let refuse = |m: &str| EngineError::Corrupt(format!("metadata backup: {m}"));
    let mut head = [0u8; 24];
    input
        .read_exact(&mut head)
        .map_err(|_| refuse("too short to be a backup"))?;
    if &head[..8] != MAGIC {
        return Err(refuse("not a Coffre metadata backup"));
    }
    let id: [u8; 16] = head[8..].try_into().map_err(|_| refuse("header"))?;
    let mut index = 0u64;
    loop {
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .map_err(|_| refuse("cut short (its last chunk is missing)"))?;
        let len = u32::from_le_bytes(len);
        if len > MAX_SEALED {
            return Err(refuse("a chunk longer than any this format writes"));
        }
        let mut sealed = vec![0u8; len as usize];
        input.read_exact(&mut sealed).map_err(|_| refuse("cut short"))?;
        // Its associated data says whether it is the last chunk: it opens as one or the other.
        let (plain, last) = match keys.open(&aad(&id, index, false), &sealed) {
            Ok(p) => (p, false),
            Err(_) => match keys.open(&aad(&id, index, true), &sealed) {
                Ok(p) => (p, true),
                Err(_) => {
                    return Err(refuse(
                        "a chunk does not open: damaged, reordered, or sealed with another master key",
                    ))
                }
            },
        };
        out.write_all(&plain).map_err(io)?;
        index += 1;
        if last {
            let mut extra = [0u8; 1];
            return match input.read(&mut extra) {
                Ok(0) => Ok(()),
                _ => Err(refuse("data after its last chunk")),
            };
        }
    }
}

/// Restores a sealed backup into the metadata store at `meta_dir` (which must be empty):
/// as a plain store, or, given this replica's address and snapshot directory, as the only
/// replica of a new set (others join it with `coffre admin meta add`).
pub fn restore_backup(
    keys: &Keyring,
    backup: &Path,
    meta_dir: &Path,
    replica: Option<(&str, &Path)>,
) -> EngineResult<coffre_meta::replica::Restored> {
    let parent = meta_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    // The clear snapshot exists only while it is installed, readable by the owner alone.
    let plain = parent.join(format!(".restore-{}.snap", coffre_types::VersionId::random().to_hex()));
    let result = (|| {
        let input = std::io::BufReader::new(std::fs::File::open(backup).map_err(io)?);
        let out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode_0600()
            .open(&plain)
            .map_err(io)?;
        let mut out = std::io::BufWriter::new(out);
        open_backup(keys, input, &mut out)?;
        out.flush().map_err(io)?;
        let store = MetaStore::open(meta_dir)?;
        Ok(store.restore_snapshot(&plain, replica)?)
    })();
    let _ = std::fs::remove_file(&plain);
    result
}

trait Private {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Private for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> Keyring {
        Keyring::new(coffre_crypto::MasterKey::from_bytes([7; 32]), vec![])
    }

    fn seal(plain: &[u8]) -> Vec<u8> {
        let keys = keys();
        let id = [3u8; 16];
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&id);
        let mut w = SealingWriter {
            keys: &keys,
            out,
            id,
            buf: Vec::new(),
            index: 0,
        };
        w.write_all(plain).unwrap();
        w.finish().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// What is sealed opens to the same bytes; any byte changed or any cut is refused.
        #[test]
        fn sealed_backups_open_whole_or_not_at_all(len in 0usize..(3 * CHUNK), flip in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&plain);
            let mut back = Vec::new();
            open_backup(&keys(), &sealed[..], &mut back).unwrap();
            prop_assert!(back == plain);

            let mut damaged = sealed.clone();
            let at = flip.index(damaged.len());
            damaged[at] ^= 0x40;
            prop_assert!(open_backup(&keys(), &damaged[..], &mut Vec::new()).is_err());

            let short = cut.index(sealed.len());
            prop_assert!(open_backup(&keys(), &sealed[..short], &mut Vec::new()).is_err());
        }
    }

    #[test]
    fn another_master_key_cannot_open_a_backup() {
        let sealed = seal(b"records");
        let other = Keyring::new(coffre_crypto::MasterKey::from_bytes([8; 32]), vec![]);
        assert!(open_backup(&other, &sealed[..], &mut Vec::new()).is_err());
    }
}
