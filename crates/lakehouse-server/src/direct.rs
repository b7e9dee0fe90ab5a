//! Writing a large file past the page cache (`O_DIRECT`, Linux), for ingestd's spool and
//! storaged's staged objects (docs/performance.md, "Direct writes"), and reading ingestd's
//! spool again the same way ([`DirectReader`]).
//!
//! Why: both files are written once, in order, and are either deleted soon (the spool) or
//! fsynced at once (an object); the page cache only adds a copy into freshly allocated
//! pages. On the reference machine (a VM) that copy cost 1.7 s of CPU per GiB (`dd`), an
//! `O_DIRECT` write of the same GiB 0.14 s. Where the platform or the file system refuses
//! `O_DIRECT` (tmpfs, macOS), or when asked not to, the file is written through the page
//! cache as usual.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

mod read;
pub use read::DirectReader;

/// Alignment of direct writes: their buffer's address, their length and their file offset
/// are multiples of it (the largest logical block size in common use), bytes.
const ALIGN: usize = 4096;

/// Bytes per direct write (the aligned buffer's size).
const WRITE_BYTES: usize = 1 << 20;

/// Aligned buffers kept for the next writers once theirs are done, at most: a fresh buffer
/// costs a page fault per 4 KiB page on its first fill, which for storaged's many files
/// just past [`WRITE_BYTES`] (a partitioned upload's, about 1.2 MB each) was a fifth of
/// its CPU time (docs/performance.md). With concurrent writers past this number, the rest
/// are freed.
const SPARE_BUFFERS: usize = 8;

/// The process's spare aligned buffers ([`SPARE_BUFFERS`]).
static SPARE: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());

/// A buffer of [`WRITE_BYTES`] plus [`ALIGN`] bytes (so that an aligned run of
/// [`WRITE_BYTES`] fits in it), taken from the spare ones when there is one, given back to
/// them when dropped.
struct AlignedBuffer {
    raw: Vec<u8>,
    /// Where the aligned run starts in `raw`.
    start: usize,
}

impl AlignedBuffer {
    /// A spare buffer, or a new one; `None` when the allocator gives no aligned run (never
    /// seen: a run of `ALIGN` bytes always holds an aligned address).
    fn take() -> Option<Self> {
        let spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let raw = spare.unwrap_or_else(|| vec![0u8; WRITE_BYTES + ALIGN]);
        let start = raw.as_ptr().align_offset(ALIGN);
        (start < ALIGN).then(|| AlignedBuffer { raw, start })
    }

    /// The aligned run.
    fn run(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + WRITE_BYTES]
    }
}

impl std::fmt::Debug for AlignedBuffer {
    /// The size and where the run starts, not the MiB of bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuffer")
            .field("bytes", &self.raw.len())
            .field("start", &self.start)
            .finish()
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        let mut spare = SPARE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if spare.len() < SPARE_BUFFERS {
            spare.push(std::mem::take(&mut self.raw));
        }
    }
}

/// A file being written from its start, in order: directly from an aligned buffer of
/// [`WRITE_BYTES`] when `O_DIRECT` is on, else straight through `write_all`. The tail of a
/// direct file is padded to a block, then the file is cut to its true size
/// ([`DirectWriter::finish`]).
///
/// A file asked to be direct is held in memory up to its first [`WRITE_BYTES`]; only a file
/// that grows past them is then written directly. A smaller one (a manifest, a metadata
/// JSON, a small upload) goes through the page cache in one write at
/// [`DirectWriter::finish`]: for it the aligned buffer, the padded write and the cut would
/// cost more than the copy they save.
#[derive(Debug)]
pub struct DirectWriter {
    file: File,
    /// Where the file is, to open it again directly once it outgrows `held`; `None` when
    /// it is not to be direct.
    direct_path: Option<PathBuf>,
    /// Whether the file is written directly (from the first [`WRITE_BYTES`] on).
    direct: bool,
    /// The first bytes, while the file may still become direct (at most [`WRITE_BYTES`]);
    /// once direct, the buffered bytes short of a block while parked
    /// ([`DirectWriter::park`]).
    held: Vec<u8>,
    /// The aligned buffer, only when writing directly; `None` while parked.
    buffer: Option<AlignedBuffer>,
    filled: usize,
    written: u64,
}

impl DirectWriter {
    /// Opens `path` for writing from its start (`create_new`: it must not exist yet; else it
    /// must exist), to be written directly once it outgrows [`WRITE_BYTES`] when `direct`
    /// and the platform and file system allow it.
    ///
    /// # Errors
    /// When the file cannot be opened at all.
    pub fn open(path: &Path, create_new: bool, direct: bool) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(create_new)
            .open(path)?;
        Ok(DirectWriter {
            file,
            direct_path: direct.then(|| path.to_owned()),
            direct: false,
            held: Vec::new(),
            buffer: None,
            filled: 0,
            written: 0,
        })
    }

    /// Whether the bytes go past the page cache (from the first [`WRITE_BYTES`] on).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// The file system's write error.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.written += data.len() as u64;
        if !self.direct {
            if self.direct_path.is_none() {
                return self.file.write_all(data);
            }
            let n = data.len().min(WRITE_BYTES - self.held.len());
            self.held.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.held.len() < WRITE_BYTES {
                return Ok(());
            }
            self.go_direct()?;
            if !self.direct {
                return self.file.write_all(data);
            }
        }
        self.write_aligned(data)
    }

    /// The held first [`WRITE_BYTES`] are complete: from here on the file is written
    /// directly (opened again with `O_DIRECT`; nothing was written to it yet, so every
    /// offset stays aligned), or through the page cache where that is refused.
    fn go_direct(&mut self) -> io::Result<()> {
        let held = std::mem::take(&mut self.held);
        let path = self.direct_path.take();
        let direct = path.as_deref().and_then(|path| {
            let options = std::fs::OpenOptions::new().write(true).clone();
            let file = open_direct(&options, path)?;
            Some((file, AlignedBuffer::take()?))
        });
        match direct {
            Some((file, buffer)) => {
                self.file = file;
                self.direct = true;
                self.buffer = Some(buffer);
                self.filled = 0;
                self.write_aligned(&held)
            }
            None => self.file.write_all(&held),
        }
    }

    /// Nothing more is coming for a while (a body that waits for its verdict): writes the
    /// whole blocks buffered, keeps the bytes short of a block, and gives the aligned buffer
    /// back, so a file that waits holds a few KiB, not [`WRITE_BYTES`]. The next write takes
    /// a buffer again. Nothing to do for a file that is not direct.
    ///
    /// # Errors
    /// The file system's write error.
    pub fn park(&mut self) -> io::Result<()> {
        let Some(buffer) = self.buffer.as_mut() else {
            return Ok(());
        };
        let whole = self.filled / ALIGN * ALIGN;
        let run = buffer.run();
        // The buffer is given back only once its blocks are written: on an error it still
        // holds every byte.
        self.file.write_all(&run[..whole])?;
        self.held = run[whole..self.filled].to_vec();
        self.filled = 0;
        self.buffer = None;
        Ok(())
    }

    /// A buffer again for a parked file, holding the bytes it kept.
    fn unpark(&mut self) -> io::Result<()> {
        if !self.direct || self.buffer.is_some() {
            return Ok(());
        }
        let mut buffer = AlignedBuffer::take()
            .ok_or_else(|| io::Error::other("no aligned buffer for a direct write"))?;
        let kept = std::mem::take(&mut self.held);
        buffer.run()[..kept.len()].copy_from_slice(&kept);
        self.filled = kept.len();
        self.buffer = Some(buffer);
        Ok(())
    }

    fn write_aligned(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.unpark()?;
        let Some(buffer) = self.buffer.as_mut() else {
            return self.file.write_all(data);
        };
        let run = buffer.run();
        while !data.is_empty() {
            let n = data.len().min(WRITE_BYTES - self.filled);
            run[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == WRITE_BYTES {
                self.file.write_all(run)?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is buffered (padded to a block, then the file cut to the bytes written)
    /// or held, and returns the file, for an fsync. The aligned buffer goes back to the
    /// spare ones.
    ///
    /// # Errors
    /// The file system's write or truncate error.
    pub fn finish(mut self) -> io::Result<File> {
        if self.direct {
            self.unpark()?;
            if let (Some(mut buffer), true) = (self.buffer.take(), self.filled > 0) {
                let padded = self.filled.next_multiple_of(ALIGN);
                let run = buffer.run();
                run[self.filled..padded].fill(0);
                self.file.write_all(&run[..padded])?;
            }
            self.file.set_len(self.written)?;
        } else if !self.held.is_empty() {
            self.file.write_all(&self.held)?;
        }
        Ok(self.file)
    }
}

#[cfg(target_os = "linux")]
fn open_direct(options: &std::fs::OpenOptions, path: &Path) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = options.clone();
    options.custom_flags(libc::O_DIRECT).open(path).ok()
}

#[cfg(not(target_os = "linux"))]
fn open_direct(_options: &std::fs::OpenOptions, _path: &Path) -> Option<File> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes a spare buffer full of other bytes, and parks with a part of a
    /// block buffered, still writes exactly its own bytes.
    #[test]
    fn a_spare_buffer_full_of_other_bytes_leaks_none_of_them() {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        let mut writer = DirectWriter::open(&probe, true, true).unwrap();
        writer.write(&vec![1u8; WRITE_BYTES + 1]).unwrap();
        if !writer.is_direct() {
            eprintln!("skipped: {} refuses O_DIRECT", dir.path().display());
            return;
        }
        // Other writers leave the spare buffers full of 0xFF.
        let dirty_the_spares = || {
            let dirty: Vec<AlignedBuffer> = (0..SPARE_BUFFERS)
                .filter_map(|_| AlignedBuffer::take())
                .map(|mut buffer| {
                    buffer.raw.fill(0xFF);
                    buffer
                })
                .collect();
            drop(dirty);
        };
        dirty_the_spares();
        let data: Vec<u8> = (0..WRITE_BYTES + 5 + 2 * ALIGN + 77)
            .map(|i| (i % 7) as u8)
            .collect();
        let path = dir.path().join("f");
        let mut writer = DirectWriter::open(&path, true, true).unwrap();
        let (head, tail) = data.split_at(WRITE_BYTES + 5 + ALIGN / 2);
        writer.write(head).unwrap();
        assert!(writer.is_direct());
        writer.park().unwrap();
        // While it is parked, its buffer goes to another writer.
        dirty_the_spares();
        writer.write(tail).unwrap();
        writer.finish().unwrap().sync_all().unwrap();
        assert!(std::fs::read(&path).unwrap() == data);
    }

    /// Many writers at once give back at most [`SPARE_BUFFERS`] buffers: what the process
    /// keeps between uploads is bounded whatever their number.
    #[test]
    fn the_spare_buffers_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; WRITE_BYTES + 1];
        let writers: Vec<DirectWriter> = (0..3 * SPARE_BUFFERS)
            .map(|n| {
                let path = dir.path().join(format!("w{n}"));
                let mut writer = DirectWriter::open(&path, true, true).unwrap();
                writer.write(&data).unwrap();
                writer
            })
            .collect();
        if !writers.iter().all(DirectWriter::is_direct) {
            eprintln!("skipped: {} refuses O_DIRECT", dir.path().display());
            return;
        }
        for writer in writers {
            writer.finish().unwrap();
        }
        let spare = SPARE.lock().unwrap();
        assert!(
            spare.len() <= SPARE_BUFFERS,
            "{} spare buffers",
            spare.len()
        );
        assert!(spare.iter().all(|raw| raw.len() == WRITE_BYTES + ALIGN));
    }

    /// Direct or not, any sizes and chunkings give the file of exactly the bytes written.
    #[test]
    fn the_file_holds_exactly_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let pattern = |seed: usize| -> Vec<u8> {
            (0..3 * WRITE_BYTES + 12_345)
                .map(|i| ((i * 7 + seed * 13) % 251) as u8)
                .collect()
        };
        let mut seed = 0;
        for direct in [true, false] {
            for (n, len) in [0, 1, ALIGN, WRITE_BYTES, 3 * WRITE_BYTES + 12_345]
                .into_iter()
                .enumerate()
            {
                for (chunk, park) in [(1000, false), (65_536, false), (WRITE_BYTES + 3, false)]
                    .into_iter()
                    .chain([(1000, true), (65_539, true), (WRITE_BYTES + 3, true)])
                {
                    // Each file its own bytes: a spare buffer left from the previous
                    // file never holds what this one expects.
                    seed += 1;
                    let data = pattern(seed);
                    let path = dir.path().join(format!("f-{direct}-{n}-{chunk}-{park}"));
                    let mut writer = DirectWriter::open(&path, true, direct).unwrap();
                    if !direct {
                        assert!(!writer.is_direct());
                    }
                    for part in data[..len].chunks(chunk) {
                        writer.write(part).unwrap();
                        if park {
                            // A body that pauses: parked after every chunk, some cut
                            // short of a block.
                            writer.park().unwrap();
                        }
                    }
                    writer.finish().unwrap().sync_all().unwrap();
                    assert!(
                        std::fs::read(&path).unwrap() == data[..len],
                        "{direct} {len}"
                    );
                }
            }
        }
    }
}
