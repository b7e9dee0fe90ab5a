//! Writing a large file past the page cache (`O_DIRECT`, Linux), for ingestd's spool and
//! storaged's staged objects (docs/performance.md, "Direct writes").
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

/// Alignment of direct writes: their buffer's address, their length and their file offset
/// are multiples of it (the largest logical block size in common use), bytes.
const ALIGN: usize = 4096;

/// Bytes per direct write (the aligned buffer's size).
const WRITE_BYTES: usize = 1 << 20;

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
    /// The first bytes, while the file may still become direct (at most [`WRITE_BYTES`]);
    /// once direct, the buffered bytes short of a block while parked
    /// ([`DirectWriter::park`]).
    held: Vec<u8>,
    /// The aligned buffer (`raw[start..start + WRITE_BYTES]`), only when writing directly;
    /// empty while parked.
    buffer: Option<(Vec<u8>, usize)>,
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
            held: Vec::new(),
            buffer: None,
            filled: 0,
            written: 0,
        })
    }

    /// Whether the bytes go past the page cache (from the first [`WRITE_BYTES`] on).
    pub fn is_direct(&self) -> bool {
        self.buffer.is_some()
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// The file system's write error.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.written += data.len() as u64;
        if self.buffer.is_none() {
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
            let raw = vec![0u8; WRITE_BYTES + ALIGN];
            let start = raw.as_ptr().align_offset(ALIGN);
            (start < ALIGN).then_some((file, raw, start))
        });
        match direct {
            Some((file, raw, start)) => {
                self.file = file;
                self.buffer = Some((raw, start));
                self.filled = 0;
                self.write_aligned(&held)
            }
            None => self.file.write_all(&held),
        }
    }

    /// Nothing more is coming for a while (a body that waits for its verdict): writes the
    /// whole blocks buffered, keeps the bytes short of a block, and gives the aligned buffer
    /// back, so a file that waits holds a few KiB, not [`WRITE_BYTES`]. The next write takes
    /// a new buffer. Nothing to do for a file that is not direct.
    ///
    /// # Errors
    /// The file system's write error.
    pub fn park(&mut self) -> io::Result<()> {
        let Some((raw, start)) = self.buffer.as_mut() else {
            return Ok(());
        };
        if raw.is_empty() {
            return Ok(());
        }
        let whole = self.filled / ALIGN * ALIGN;
        self.file.write_all(&raw[*start..*start + whole])?;
        self.held = raw[*start + whole..*start + self.filled].to_vec();
        self.filled = 0;
        *raw = Vec::new();
        *start = 0;
        Ok(())
    }

    /// A new aligned buffer for a parked file, holding the bytes it kept.
    fn unpark(&mut self) {
        let Some((raw, start)) = self.buffer.as_mut() else {
            return;
        };
        if !raw.is_empty() {
            return;
        }
        *raw = vec![0u8; WRITE_BYTES + ALIGN];
        *start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        let kept = std::mem::take(&mut self.held);
        raw[*start..*start + kept.len()].copy_from_slice(&kept);
        self.filled = kept.len();
    }

    fn write_aligned(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.unpark();
        let Some((raw, start)) = self.buffer.as_mut() else {
            return self.file.write_all(data);
        };
        while !data.is_empty() {
            let n = data.len().min(WRITE_BYTES - self.filled);
            let at = *start + self.filled;
            raw[at..at + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == WRITE_BYTES {
                self.file.write_all(&raw[*start..*start + WRITE_BYTES])?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    /// Writes what is buffered (padded to a block, then the file cut to the bytes written)
    /// or held, and returns the file, for an fsync.
    ///
    /// # Errors
    /// The file system's write or truncate error.
    pub fn finish(mut self) -> io::Result<File> {
        self.unpark();
        if let Some((raw, start)) = self.buffer.as_mut() {
            if self.filled > 0 {
                let padded = self.filled.next_multiple_of(ALIGN);
                raw[*start + self.filled..*start + padded].fill(0);
                self.file.write_all(&raw[*start..*start + padded])?;
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

    /// Direct or not, any sizes and chunkings give the file of exactly the bytes written.
    #[test]
    fn the_file_holds_exactly_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3 * WRITE_BYTES + 12_345)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        for direct in [true, false] {
            for (n, len) in [0, 1, ALIGN, WRITE_BYTES, data.len()]
                .into_iter()
                .enumerate()
            {
                for (chunk, park) in [(1000, false), (65_536, false), (WRITE_BYTES + 3, false)]
                    .into_iter()
                    .chain([(1000, true), (65_539, true), (WRITE_BYTES + 3, true)])
                {
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
