//! The disk spool: uploads are streamed to files here, never held in memory (docs/contract.md
//! section 2, invariant 5).

use crate::IngestError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use lakehouse_api::{Sha256Digest, TextEncoding};
use lakehouse_convert::Decoded;
use lakehouse_server::direct::{DirectReader, DirectWriter};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};
use tempfile::NamedTempFile;
use tokio::sync::mpsc;

/// Prefix of every spool file, so a restart can find and remove crash leftovers.
const SPOOL_PREFIX: &str = "lakehouse-spool-";

/// Creates `dir` and removes spool files a crashed ingestd left there.
///
/// # Errors
/// When the directory cannot be created or listed.
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(SPOOL_PREFIX)
        {
            // A partitioned upload's directory of files, or a spool file.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::remove_dir_all(entry.path());
            } else {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// A new spool file in `dir`, removed when the returned handle is dropped (whatever the
/// outcome of the request).
///
/// # Errors
/// When the file cannot be created.
pub fn new_file(dir: &Path, suffix: &str) -> Result<NamedTempFile, IngestError> {
    tempfile::Builder::new()
        .prefix(SPOOL_PREFIX)
        .suffix(suffix)
        .tempfile_in(dir)
        .map_err(IngestError::Spool)
}

/// A new spool directory in `dir` (a partitioned upload's files, docs/contract.md section
/// 10), removed with everything in it when the returned handle is dropped.
///
/// # Errors
/// When the directory cannot be created.
pub fn new_dir(dir: &Path) -> Result<tempfile::TempDir, IngestError> {
    tempfile::Builder::new()
        .prefix(SPOOL_PREFIX)
        .tempdir_in(dir)
        .map_err(IngestError::Spool)
}

/// A spool file, removed when dropped, wherever that happens: its name at once, and its
/// pages freed on a blocking thread (closing the last handle of a GiB file makes the kernel
/// free its page cache, 0.1 to 0.3 s), never on an async thread; its blocks only once a
/// second handle ([`SpoolFile::hold`]) is closed too.
#[derive(Debug)]
pub struct SpoolFile {
    path: std::path::PathBuf,
    file: Option<NamedTempFile>,
}

impl SpoolFile {
    /// Takes `file` over: removed when the returned handle is dropped.
    pub fn new(file: NamedTempFile) -> Self {
        SpoolFile {
            path: file.path().to_owned(),
            file: Some(file),
        }
    }

    /// Where the file is, for reading it again.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second handle on the file: its blocks stay allocated, however this spool file
    /// goes, until that handle is closed (an ingest closes it once it is answered: freeing
    /// a GiB of blocks slows the disk writes of the objects being stored meanwhile).
    ///
    /// # Errors
    /// When the handle cannot be duplicated.
    pub fn hold(&self) -> std::io::Result<std::fs::File> {
        match &self.file {
            Some(file) => file.as_file().try_clone(),
            None => Err(std::io::Error::other("the spool file is already removed")),
        }
    }
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        let (handle, name) = file.into_parts();
        drop(name);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(handle))),
            Err(_) => drop(handle),
        }
    }
}

/// An upload on disk: the spool file, its size and SHA-256.
#[derive(Debug)]
pub struct Spooled {
    /// The spool file (removed on drop).
    pub file: SpoolFile,
    /// Bytes written.
    pub size_bytes: u64,
    /// SHA-256 of those bytes.
    pub sha256: Sha256Digest,
    /// Time spent hashing them.
    pub hash_time: Duration,
    /// Whether the spool writer wrote it past the page cache ([`DirectWriter`]): then a
    /// pass that reads it again reads it so too ([`open_read`]).
    pub direct: bool,
}

/// Opens a spool file written by [`receive`] to read its CSV again: past the page cache
/// when it was written so (`direct`: [`Spooled::direct`]), on a read-ahead thread
/// ([`DirectReader`]; docs/contract.md section 13), decompressed and transcoded to UTF-8 as
/// `encoding` says (`lakehouse_convert::decode`, at most `max_csv_bytes` once decoded). A
/// buffered read of a file the page cache does not hold costs a page-cache page per 4 KiB
/// (2.4 to 2.8 s of CPU per GiB on the reference VM, against 0.06 s; docs/performance.md).
///
/// # Errors
/// [`IngestError::Spool`] when it cannot be opened, [`IngestError::Convert`] when the
/// decoder refuses its start (an encoding it cannot read).
pub fn open_read(
    path: &Path,
    direct: bool,
    encoding: TextEncoding,
    max_csv_bytes: u64,
) -> Result<Decoded<'static>, IngestError> {
    let file = DirectReader::open(path, direct).map_err(IngestError::Spool)?;
    Ok(lakehouse_convert::decode(file, encoding, max_csv_bytes)?)
}

/// Chunks of the upload in flight to the verified pass 2 ([`ChannelReader`]), at most: what
/// is queued when the upload ends is the pass's tail, so a short queue keeps that wait short
/// (8 chunks: about 20 ms at the end of a 1 GiB ingest, 64 chunks took about 85 ms) and the
/// memory of the tap small, while still smoothing the two sides' pace.
pub const TAP_CHUNKS: usize = 8;

/// The blocking side of the tap of [`receive`]: a `Read` over the upload's chunks as they
/// arrive, for a pass over the CSV that runs while the upload is still streaming in (on a
/// blocking thread: `read` blocks until a chunk arrives). End of file when the sender is
/// dropped, so a pass that sees the whole file has read every byte `receive` spooled only if
/// `receive` succeeded; the caller checks that.
pub struct ChannelReader {
    rx: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    /// A reader over the chunks sent on the other end of `rx`.
    pub fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        let chunk = self.current.split_to(n);
        if let Some(dest) = buf.get_mut(..n) {
            dest.copy_from_slice(&chunk);
        }
        Ok(n)
    }
}

/// Chunks queued for the spool writer and for the hasher ([`receive`]), at most, each.
const WRITER_CHUNKS: usize = 8;

/// The spool writer: a blocking thread that writes the chunks of `rx` to `file`
/// (`O_DIRECT` when it could be opened so: [`DirectWriter`]): their bytes, and whether they
/// went past the page cache.
fn write_spool(
    mut file: DirectWriter,
    mut rx: mpsc::Receiver<Bytes>,
) -> std::io::Result<(u64, bool)> {
    let mut size_bytes = 0u64;
    while let Some(chunk) = rx.blocking_recv() {
        size_bytes += chunk.len() as u64;
        file.write(&chunk)?;
    }
    let direct = file.is_direct();
    file.finish()?;
    Ok((size_bytes, direct))
}

/// The hasher: a blocking thread that hashes the chunks of `rx`, and the time it spent
/// hashing. It is its own thread, apart from the spool writer, because the SHA-256 of the
/// upload is the one part of an ingest that cannot be split over threads: alone on its
/// thread, it is the whole of that thread's CPU (docs/contract.md section 13).
fn hash_spool(mut rx: mpsc::Receiver<Bytes>) -> (Sha256Digest, Duration) {
    let mut hasher = Sha256::new();
    let mut hash_time = Duration::ZERO;
    while let Some(chunk) = rx.blocking_recv() {
        let started = Instant::now();
        hasher.update(&chunk);
        hash_time += started.elapsed();
    }
    (
        Sha256Digest::from_bytes(hasher.finalize().into()),
        hash_time,
    )
}

/// Streams `chunks` into a new spool file in `dir`, hashing on the way (each on its own
/// blocking thread, fed through a bounded queue), and sends each chunk to every one of `taps` too,
/// so that the verified pass 2 can read the upload while it arrives. A full queue or tap
/// holds the upload back (backpressure); a closed tap (its reader stopped early, on bad
/// CSV) is no longer fed, while the rest of the upload is still spooled, so that upload
/// errors (413, a broken body) come before CSV errors, as without taps.
///
/// # Errors
/// [`IngestError::TooLarge`] as soon as more than `max_bytes` arrive (the file is removed),
/// the stream's own error when it fails (client gone, malformed multipart, idle timeout),
/// [`IngestError::Spool`] on disk errors. The spool writer has stopped when it returns.
/// `direct_io`: write the spool with `O_DIRECT` where the file system allows it.
pub async fn receive<S>(
    dir: &Path,
    mut chunks: S,
    max_bytes: u64,
    mut taps: Vec<mpsc::Sender<Bytes>>,
    direct_io: bool,
) -> Result<Spooled, IngestError>
where
    S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
{
    let named = new_file(dir, ".csv")?;
    let writer_file =
        DirectWriter::open(named.path(), false, direct_io).map_err(IngestError::Spool)?;
    // The writer's handle is never the last one: closing that (freeing the pages) is left
    // to `SpoolFile`.
    let file = SpoolFile::new(named);
    let (writer_tx, writer_rx) = mpsc::channel(WRITER_CHUNKS);
    let writer = tokio::task::spawn_blocking(lakehouse_client::trace::bind(move || {
        write_spool(writer_file, writer_rx)
    }));
    let (hasher_tx, hasher_rx) = mpsc::channel(WRITER_CHUNKS);
    let hasher =
        tokio::task::spawn_blocking(lakehouse_client::trace::bind(move || hash_spool(hasher_rx)));
    let mut size_bytes = 0u64;
    let received = async {
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                continue;
            }
            size_bytes += chunk.len() as u64;
            if size_bytes > max_bytes {
                return Err(IngestError::TooLarge {
                    limit_bytes: max_bytes,
                });
            }
            if writer_tx.send(chunk.clone()).await.is_err() {
                // The writer stopped on an I/O error, which joining it returns.
                break;
            }
            // The hasher only stops when its queue closes.
            let _ = hasher_tx.send(chunk.clone()).await;
            let mut closed = false;
            for sender in &taps {
                closed |= sender.send(chunk.clone()).await.is_err();
            }
            if closed {
                taps.retain(|sender| !sender.is_closed());
            }
        }
        Ok(())
    }
    .await;
    drop(writer_tx);
    drop(hasher_tx);
    // Both threads have stopped before the answer, whatever it is: the upload's own error
    // (too large, a broken body) first, then the writer's, then the hasher's.
    let written = writer.await;
    let hashed = hasher.await;
    received?;
    let (size_bytes, direct) = written
        .map_err(IngestError::Task)?
        .map_err(IngestError::Spool)?;
    let (sha256, hash_time) = hashed.map_err(IngestError::Task)?;
    Ok(Spooled {
        file,
        size_bytes,
        sha256,
        hash_time,
        direct,
    })
}

/// Refuses to start an ingest when the spool's file system has less than `floor_bytes` free.
///
/// # Errors
/// [`IngestError::InsufficientStorage`] below the floor; [`IngestError::Spool`] when the free
/// space cannot be read.
pub fn check_free_space(
    dir: &Path,
    floor_bytes: u64,
    retry_after_secs: u64,
) -> Result<(), IngestError> {
    if floor_bytes == 0 {
        return Ok(());
    }
    let available_bytes = fs4::available_space(dir).map_err(IngestError::Spool)?;
    if available_bytes < floor_bytes {
        return Err(IngestError::InsufficientStorage {
            available_bytes,
            floor_bytes,
            retry_after_secs,
        });
    }
    Ok(())
}
