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
use std::path::Path;

/// Alignment of direct writes: their buffer's address, their length and their file offset
/// are multiples of it (the largest logical block size in common use), bytes.
const ALIGN: usize = 4096;

/// Bytes per direct write (the aligned buffer's size).
const WRITE_BYTES: usize = 1 << 20;

/// A file being written from its start, in order: directly from an aligned buffer of
/// [`WRITE_BYTES`] when `O_DIRECT` is on, else straight through `write_all`. The tail of a
/// direct file is padded to a block, then the file is cut to its true size
/// ([`DirectWriter::finish`]).
#[derive(Debug)]
pub struct DirectWriter {
    file: File,
    /// The aligned buffer (`raw[start..start + WRITE_BYTES]`), only when writing directly.
    buffer: Option<(Vec<u8>, usize)>,
    filled: usize,
    written: u64,
}

impl DirectWriter {
    /// Opens `path` for writing from its start (`create_new`: it must not exist yet; else it
    /// must exist), directly when `direct` and the platform and file system allow it.
    ///
    /// # Errors
    /// When the file cannot be opened at all.
    pub fn open(path: &Path, create_new: bool, direct: bool) -> io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(create_new);
        if direct && let Some(file) = open_direct(&options, path) {
            let raw = vec![0u8; WRITE_BYTES + ALIGN];
            let start = raw.as_ptr().align_offset(ALIGN);
            if start < ALIGN {
                return Ok(DirectWriter {
                    file,
                    buffer: Some((raw, start)),
                    filled: 0,
                    written: 0,
                });
            }
        }
        Ok(DirectWriter {
            file: options.open(path)?,
            buffer: None,
            filled: 0,
            written: 0,
        })
    }

    /// Whether the bytes go past the page cache.
    pub fn is_direct(&self) -> bool {
        self.buffer.is_some()
    }

    /// Appends `data`.
    ///
    /// # Errors
    /// The file system's write error.
    pub fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        self.written += data.len() as u64;
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
    /// and returns the file, for an fsync.
    ///
    /// # Errors
    /// The file system's write or truncate error.
    pub fn finish(mut self) -> io::Result<File> {
        if let Some((raw, start)) = self.buffer.as_mut() {
            if self.filled > 0 {
                let padded = self.filled.next_multiple_of(ALIGN);
                raw[*start + self.filled..*start + padded].fill(0);
                self.file.write_all(&raw[*start..*start + padded])?;
            }
            self.file.set_len(self.written)?;
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
                for chunk in [1000, 65_536, WRITE_BYTES + 3] {
                    let path = dir.path().join(format!("f-{direct}-{n}-{chunk}"));
                    let mut writer = DirectWriter::open(&path, true, direct).unwrap();
                    if !direct {
                        assert!(!writer.is_direct());
                    }
                    for part in data[..len].chunks(chunk) {
                        writer.write(part).unwrap();
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
