//! Reading a large file past the page cache (`O_DIRECT`, Linux), on a thread that reads
//! ahead: for ingestd's spool file when a pass reads it again after the upload
//! (docs/contract.md section 13, "a pass that reads the spool again").
//!
//! Why: the spool is written past the page cache ([`super::DirectWriter`]), so a second read
//! finds none of it there, and a buffered read then allocates and fills a page-cache page
//! for every 4 KiB. On the reference machine (a VM) reading a GiB so took 2.4 to 2.8 s of
//! CPU, a direct read of it into a reused buffer 0.06 s (docs/performance.md, "2026-12-07,
//! night"). The read-ahead thread overlaps the disk's wait with the parse.

use super::{ALIGN, AlignedBuffer, WRITE_BYTES, open_direct};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Blocks of [`WRITE_BYTES`] read and not yet taken by the reader, at most (besides the one
/// it reads from and the one being filled): 4 MiB per reader in all.
const READ_AHEAD_BLOCKS: usize = 2;

/// What the read-ahead thread sends.
enum Message {
    /// A block and how many of its bytes hold the file (all but the last: [`WRITE_BYTES`]).
    Block(AlignedBuffer, usize),
    /// The file's end: every block was sent.
    End,
    /// The read failed (nothing follows).
    Failed(io::Error),
}

/// A file read from its start to its end, in order. Past the page cache when asked, when
/// the file is larger than one block (one of at most a block is small enough that the page
/// cache is the cheaper way; [`super::DirectWriter`] wrote a smaller one through it) and
/// when the platform and file system allow it: then a thread of
/// its own reads up to [`READ_AHEAD_BLOCKS`] blocks of [`WRITE_BYTES`] ahead, into spare
/// aligned buffers that go back to the spares, and dropping the reader stops that thread
/// after the read it is in. Else the file is read through the page cache, by the caller's
/// thread. Memory: at most four blocks (4 MiB) per reader, whatever the file's size
/// (docs/contract.md section 2, invariant 5).
#[derive(Debug)]
pub struct DirectReader {
    source: Source,
}

/// Where a [`DirectReader`]'s bytes come from.
#[derive(Debug)]
enum Source {
    /// The read-ahead thread's blocks.
    Direct(Blocks),
    /// The file, through the page cache.
    Buffered(File),
}

/// The reading end of the read-ahead thread.
#[derive(Debug)]
struct Blocks {
    rx: Receiver<Message>,
    /// The block being read from and its length, and the next byte's index.
    current: Option<(AlignedBuffer, usize)>,
    at: usize,
    /// The end was met (`End`).
    ended: bool,
    /// The read failed: every later read fails the same way, as the first did.
    failed: Option<(io::ErrorKind, String)>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Block(_, len) => write!(f, "Block({len})"),
            Message::End => f.write_str("End"),
            Message::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

impl DirectReader {
    /// Opens `path` and starts reading it (`direct`: past the page cache where allowed).
    ///
    /// # Errors
    /// When the file cannot be opened or its size read, or no thread can be started.
    pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let size = std::fs::metadata(path)?.len();
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        let direct_file = if direct && size > WRITE_BYTES as u64 {
            open_direct(&options, path)
        } else {
            None
        };
        let Some(file) = direct_file else {
            return Ok(DirectReader {
                source: Source::Buffered(options.open(path)?),
            });
        };
        let (tx, rx) = sync_channel(READ_AHEAD_BLOCKS);
        std::thread::Builder::new()
            .name("spool-read".into())
            .spawn(move || read_ahead(&file, size, &tx))?;
        Ok(DirectReader {
            source: Source::Direct(Blocks {
                rx,
                current: None,
                at: 0,
                ended: false,
                failed: None,
            }),
        })
    }
}

/// The read-ahead thread: the file's blocks in order, then `End` (or `Failed`, also when
/// the reads end before the `size` bytes the file had when opened: a spool file does not
/// shrink, so that is an error, never a shorter file), until the reader is dropped.
fn read_ahead(file: &File, size: u64, tx: &SyncSender<Message>) {
    let mut offset = 0u64;
    loop {
        let Some(mut buffer) = AlignedBuffer::take() else {
            let _ = tx.send(Message::Failed(io::Error::other(
                "no aligned buffer for a direct read",
            )));
            return;
        };
        let (len, end) = match fill(file, buffer.run(), offset) {
            Ok(filled) => filled,
            Err(e) => {
                let _ = tx.send(Message::Failed(e));
                return;
            }
        };
        offset += len as u64;
        if len > 0 && tx.send(Message::Block(buffer, len)).is_err() {
            return;
        }
        if end {
            let last = if offset < size {
                Message::Failed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ended at byte {offset} of {size}"),
                ))
            } else {
                Message::End
            };
            let _ = tx.send(last);
            return;
        }
    }
}

/// Reads the block of `run.len()` bytes at `offset` (a multiple of [`ALIGN`]) of a file
/// opened with `O_DIRECT`: how many bytes it holds, and whether the file ends in it. A read
/// that stops short of a block boundary met the end (the next read would not be aligned).
fn fill(file: &File, run: &mut [u8], offset: u64) -> io::Result<(usize, bool)> {
    let mut filled = 0;
    while filled < run.len() {
        match file.read_at(&mut run[filled..], offset + filled as u64) {
            Ok(0) => return Ok((filled, true)),
            Ok(n) => {
                filled += n;
                if !filled.is_multiple_of(ALIGN) {
                    return Ok((filled, true));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((filled, false))
}

impl Read for DirectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.source {
            Source::Direct(blocks) => blocks.read(buf),
            Source::Buffered(file) => file.read(buf),
        }
    }
}

impl Read for Blocks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some((block, len)) = self.current.as_mut()
                && self.at < *len
            {
                let n = buf.len().min(*len - self.at);
                buf[..n].copy_from_slice(&block.run()[self.at..self.at + n]);
                self.at += n;
                return Ok(n);
            }
            // The block read to its end goes back to the spare buffers.
            self.current = None;
            if let Some((kind, message)) = &self.failed {
                return Err(io::Error::new(*kind, message.clone()));
            }
            if self.ended || buf.is_empty() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Message::Block(block, len)) => {
                    self.current = Some((block, len));
                    self.at = 0;
                }
                Ok(Message::End) => self.ended = true,
                Ok(Message::Failed(e)) => self.failed = Some((e.kind(), e.to_string())),
                Err(_) => {
                    self.failed = Some((
                        io::ErrorKind::Other,
                        "the spool's read-ahead thread stopped".into(),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::DirectWriter;
    use super::*;

    /// Direct or not, a file of any size around the block boundaries reads back exactly,
    /// whatever the sizes of the reads.
    #[test]
    fn reads_back_exactly_the_bytes_written() {
        let dir = tempfile::tempdir().unwrap();
        let probe = dir.path().join("probe");
        std::fs::write(&probe, b"").unwrap();
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        let direct_allowed = open_direct(&options, &probe).is_some();
        if !direct_allowed {
            eprintln!(
                "{} refuses O_DIRECT: only the buffered reads are tested",
                dir.path().display()
            );
        }
        for direct in [true, false] {
            for len in [
                0,
                1,
                ALIGN,
                WRITE_BYTES,
                WRITE_BYTES + 1,
                3 * WRITE_BYTES,
                3 * WRITE_BYTES + ALIGN + 17,
            ] {
                let data: Vec<u8> = (0..len).map(|i| ((i * 31 + len) % 253) as u8).collect();
                let path = dir.path().join(format!("f-{direct}-{len}"));
                let mut writer = DirectWriter::open(&path, true, direct).unwrap();
                writer.write(&data).unwrap();
                writer.finish().unwrap().sync_all().unwrap();
                for read_size in [1000, 65_536, WRITE_BYTES + 3] {
                    let mut reader = DirectReader::open(&path, direct).unwrap();
                    let read_directly = matches!(reader.source, Source::Direct(_));
                    assert_eq!(
                        read_directly,
                        direct && len > WRITE_BYTES && direct_allowed,
                        "{len}"
                    );
                    let mut back = Vec::new();
                    let mut buf = vec![0u8; read_size];
                    loop {
                        let n = reader.read(&mut buf).unwrap();
                        if n == 0 {
                            break;
                        }
                        back.extend_from_slice(&buf[..n]);
                    }
                    assert!(back == data, "{direct} {len} {read_size}: {}", back.len());
                    // The end stays the end.
                    assert_eq!(reader.read(&mut buf).unwrap(), 0);
                }
            }
        }
    }

    /// A file that ends before the size it had when opened is an error on every read from
    /// there, never a shorter file.
    #[test]
    fn a_file_cut_short_is_an_error_not_an_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut writer = DirectWriter::open(&path, true, true).unwrap();
        writer.write(&vec![5u8; 16 * WRITE_BYTES]).unwrap();
        writer.finish().unwrap().sync_all().unwrap();
        let mut reader = DirectReader::open(&path, true).unwrap();
        if !matches!(reader.source, Source::Direct(_)) {
            eprintln!("skipped: {} refuses O_DIRECT", dir.path().display());
            return;
        }
        let mut first = [0u8; 10];
        reader.read_exact(&mut first).unwrap();
        // Cut past what the read-ahead thread can hold by now (the block being read, the
        // queued ones and the one it waits to queue).
        let cut = 8 * WRITE_BYTES + 100;
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut as u64)
            .unwrap();
        let mut rest = Vec::new();
        let error = reader.read_to_end(&mut rest).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{error}");
        assert_eq!(first.len() + rest.len(), cut);
        let again = reader.read(&mut first).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::UnexpectedEof);
    }
}
