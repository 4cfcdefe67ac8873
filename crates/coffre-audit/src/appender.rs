//! The open segment's file, appended to durably.
//!
//! Where the filesystem allows it, the file is opened `O_DIRECT | O_DSYNC`: an append is one
//! `pwrite` of whole 4 KiB blocks (the last partial block's bytes, kept here, then the new
//! records) that returns once the device holds it. Against a buffered write and `fdatasync`
//! this skips the page cache's writeback: measured alone on the development VM, 120 µs and
//! 30 µs of kernel CPU per durable append against 150 µs and 50 µs. Elsewhere (tmpfs, some
//! overlay filesystems refuse `O_DIRECT`) the buffered write and `fdatasync` serve.
//!
//! Either way the file is kept zero-filled a megabyte ahead of the records, so that an append
//! overwrites allocated blocks and its sync flushes no metadata (a sync that grows the file
//! costs about three times more).

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The unit of direct I/O: offsets, lengths and buffer addresses are multiples of it (4 KiB
/// covers every logical block size in use).
const BLOCK: u64 = 4096;
/// How far ahead of the records the file is zero-filled.
const PREALLOCATE: u64 = 1 << 20;

fn round_down(x: u64) -> u64 {
    x & !(BLOCK - 1)
}

fn round_up(x: u64) -> u64 {
    x.saturating_add(BLOCK - 1) & !(BLOCK - 1)
}

pub(crate) struct SegmentFile {
    path: std::path::PathBuf,
    file: File,
    /// Opened `O_DIRECT | O_DSYNC`.
    direct: bool,
    /// Where the records end.
    size: u64,
    /// The file's length: zeros from `size` to here.
    zeroed: u64,
    /// Direct mode: the records' bytes in the block where they end (rewritten with the next
    /// append, identical, so a torn write cannot damage them).
    tail: Vec<u8>,
}

fn open(path: &Path, create: bool, direct: bool) -> io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).mode(0o600);
    if create {
        o.create(true).truncate(true);
    }
    if direct {
        o.custom_flags(libc::O_DIRECT | libc::O_DSYNC);
    }
    o.open(path)
}

/// Opens `path` for direct, synchronous writes, or buffered ones where the filesystem refuses
/// (or `try_direct` is false).
fn open_best(path: &Path, create: bool, try_direct: bool) -> io::Result<(File, bool)> {
    if !try_direct {
        return Ok((open(path, create, false)?, false));
    }
    match open(path, create, true) {
        Ok(f) => Ok((f, true)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((open(path, create, false)?, false)),
        Err(e) => Err(e),
    }
}

/// A zeroed buffer of `len` bytes starting at a `BLOCK`-aligned address (what `O_DIRECT`
/// wants), without unsafe code: an aligned window into a slightly larger vector.
struct Aligned {
    vec: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn zeroed(len: usize) -> Aligned {
        let vec = vec![0u8; len + BLOCK as usize];
        let start = vec.as_ptr().align_offset(BLOCK as usize);
        Aligned { vec, start, len }
    }

    fn bytes(&self) -> &[u8] {
        &self.vec[self.start..self.start + self.len]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..self.start + self.len]
    }
}

impl SegmentFile {
    /// A new, empty segment (replacing any file of that name).
    pub(crate) fn create(path: &Path) -> io::Result<SegmentFile> {
        Self::create_as(path, true)
    }

    fn create_as(path: &Path, try_direct: bool) -> io::Result<SegmentFile> {
        let (file, direct) = open_best(path, true, try_direct)?;
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file,
            direct,
            size: 0,
            zeroed: 0,
            tail: Vec::new(),
        })
    }

    /// An existing segment whose records end at `size` (the file is no longer than that).
    pub(crate) fn reopen(path: &Path, size: u64) -> io::Result<SegmentFile> {
        Self::reopen_as(path, size, true)
    }

    fn reopen_as(path: &Path, size: u64, try_direct: bool) -> io::Result<SegmentFile> {
        let (file, direct) = open_best(path, false, try_direct)?;
        let mut tail = vec![0u8; (size - round_down(size)) as usize];
        if direct {
            // Read through a buffered handle: direct reads want aligned buffers too.
            std::fs::File::open(path)?.read_exact_at(&mut tail, round_down(size))?;
        }
        Ok(SegmentFile {
            path: path.to_path_buf(),
            file,
            direct,
            size,
            zeroed: size,
            tail,
        })
    }

    /// Where the records end.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends `bytes` after the records; returns once they are on stable storage. On an
    /// error nothing of them stays in the file (zeros are written over them).
    pub(crate) fn append_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.size.saturating_add(bytes.len() as u64);
        let result = if self.direct {
            self.write_direct(bytes, end)
        } else {
            self.write_buffered(bytes, end)
        };
        match result {
            Ok(()) => {
                self.size = end;
                Ok(())
            }
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                // The device wants another alignment after all: carry on buffered, through
                // a descriptor opened without O_DIRECT (what is on disk is unchanged: the
                // refused write wrote nothing).
                tracing::warn!(target: "coffre::audit", error = %e, "direct writes refused: the audit segment is written through the page cache");
                self.file = open(&self.path, false, false)?;
                self.direct = false;
                self.append_durably(bytes)
            }
            Err(e) => {
                let _ = self.erase(bytes.len());
                Err(e)
            }
        }
    }

    fn write_buffered(&mut self, bytes: &[u8], end: u64) -> io::Result<()> {
        if end > self.zeroed {
            let target = end + PREALLOCATE;
            let zeros = vec![0u8; (target - self.zeroed) as usize];
            self.file.write_all_at(&zeros, self.zeroed)?;
            self.zeroed = target;
        }
        self.file.write_all_at(bytes, self.size)?;
        self.file.sync_data()
    }

    /// One aligned write from the block where the records end: their bytes in it, the new
    /// ones, then zeros to the block's end (or, when the zero-filled reserve runs out, a
    /// megabyte further).
    fn write_direct(&mut self, bytes: &[u8], end: u64) -> io::Result<()> {
        let until = if end > self.zeroed {
            round_up(end + PREALLOCATE)
        } else {
            round_up(end)
        };
        let start = round_down(self.size);
        let buf = self.write_blocks(bytes, until)?;
        let from = (round_down(end) - start) as usize;
        self.tail = buf.bytes()[from..(end - start) as usize].to_vec();
        Ok(())
    }

    /// Writes the blocks from the one where the records end up to `until`: the records' bytes
    /// in that block, then `bytes`, then zeros. Returns what it wrote.
    fn write_blocks(&mut self, bytes: &[u8], until: u64) -> io::Result<Aligned> {
        let start = round_down(self.size);
        let mut buf = Aligned::zeroed((until - start) as usize);
        let b = buf.bytes_mut();
        b[..self.tail.len()].copy_from_slice(&self.tail);
        b[self.tail.len()..self.tail.len() + bytes.len()].copy_from_slice(bytes);
        self.file.write_all_at(buf.bytes(), start)?;
        self.zeroed = self.zeroed.max(until);
        Ok(buf)
    }

    /// Zeros over `len` bytes after the records (what a failed append may have left).
    fn erase(&mut self, len: usize) -> io::Result<()> {
        if self.direct {
            self.write_blocks(&[], round_up(self.size.saturating_add(len as u64)))
                .map(drop)
        } else {
            self.file.write_all_at(&vec![0u8; len], self.size)?;
            self.file.sync_data()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    /// Appends of every size around the block and reserve boundaries read back exactly, with
    /// zeros after them, after reopening too; direct (where the filesystem allows it) and
    /// buffered.
    #[test]
    fn appends_read_back_with_zeros_after_them() {
        for try_direct in [true, false] {
            appends_read_back(try_direct);
        }
    }

    fn appends_read_back(try_direct: bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut f = SegmentFile::create_as(&path, try_direct).unwrap();
        assert!(try_direct || !f.direct);
        let mut expected = Vec::new();
        let sizes = [1usize, 4095, 1, 4096, 5000, 300, (1 << 20) - 7, 9000, 12, 8191];
        for (i, &n) in sizes.iter().enumerate() {
            let bytes: Vec<u8> = (0..n).map(|j| (i * 31 + j) as u8 | 1).collect();
            f.append_durably(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
            let on_disk = read(&path);
            assert_eq!(&on_disk[..expected.len()], &expected[..], "after append {i}");
            assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
            assert_eq!(f.size(), expected.len() as u64);
        }
        drop(f);
        // Reopened where the records end (as the start-up check leaves it), then appended to.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(expected.len() as u64).unwrap();
        drop(file);
        let mut f = SegmentFile::reopen_as(&path, expected.len() as u64, try_direct).unwrap();
        for n in [10usize, 4100, 3] {
            let bytes = vec![b'x'; n];
            f.append_durably(&bytes).unwrap();
            expected.extend_from_slice(&bytes);
        }
        let on_disk = read(&path);
        assert_eq!(&on_disk[..expected.len()], &expected[..]);
        assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
    }
}
