//! Streaming the Parquet object to storaged while it is encoded (docs/performance.md): the
//! encoder writes into a [`ChunkSender`], whose chunks are the body of a content-addressed
//! `POST /objects/datasets/<name>/<fp_hex>?suffix=.parquet`, so the object is on its way to
//! storaged while pass 2 runs and its key (the SHA-256 of the bytes) is settled by storaged
//! at the end. The body ends cleanly only on [`ParquetUpload::commit`]; an upload that is
//! withdrawn (a speculation not proven, a CSV error, drift) or dropped ends it with an error,
//! and storaged keeps nothing (docs/contract.md section 2: no orphan for a refused upload).
//!
//! A storaged that stops taking the body (or never answers after its end) for
//! `storaged_idle_timeout_ms` gets the request dropped, and the ingest fails with
//! [`IngestError::StoragedStalled`] instead of holding its slot and spool forever.

use crate::IngestError;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use lakehouse_api::{ObjectKey, ObjectPutResponse, Sha256Digest};
use lakehouse_client::{ClientError, StoragedClient};
use sha2::{Digest, Sha256};
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Bytes gathered by [`ChunkSender`] before a chunk goes to storaged.
const CHUNK_BYTES: usize = 1 << 20;

/// Chunks in flight to storaged, at most: with [`CHUNK_BYTES`] this bounds the memory of an
/// upload to a few MiB, and holds the encoder back when storaged is slower.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Suffix of every Parquet object key (docs/contract.md section 5).
pub const PARQUET_SUFFIX: &str = ".parquet";

/// Suffix of every rejects object key (docs/contract.md section 3, "Rejects").
pub const REJECTS_SUFFIX: &str = ".csv";

/// The blocking side of an upload: a `Write` for the Parquet encoder, sending
/// [`CHUNK_BYTES`] chunks to the POST (blocking while [`CHUNKS_IN_FLIGHT`] are queued).
/// Dropping it ends the data; whether the body then ends cleanly is [`ParquetUpload`]'s
/// call.
pub struct ChunkSender {
    chunks: mpsc::Sender<Bytes>,
    buffer: Vec<u8>,
    progress: Arc<Progress>,
}

/// What the stall watchdog of an upload sees: chunks handed to the body's queue, chunks the
/// POST took from it, and whether the body has ended cleanly.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    taken: AtomicU64,
    ended: AtomicBool,
}

impl Progress {
    /// storaged owes us something: a queued chunk it has not taken, or the answer to a
    /// body that has ended.
    fn waiting_for_storaged(&self) -> bool {
        self.sent.load(Ordering::Acquire) > self.taken.load(Ordering::Acquire)
            || self.ended.load(Ordering::Acquire)
    }
}

impl ChunkSender {
    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES));
        self.progress.sent.fetch_add(1, Ordering::AcqRel);
        self.chunks.blocking_send(Bytes::from(chunk)).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the upload to storaged stopped")
        })
    }
}

impl Write for ChunkSender {
    /// Takes at most what fills the chunk being gathered, so the chunk never outgrows its
    /// [`CHUNK_BYTES`] allocation (a column chunk of several MiB, appended whole, would
    /// otherwise reallocate and copy it); `write_all` comes back for the rest.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(CHUNK_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&buf[..taken]);
        if self.buffer.len() == CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

/// The async side of an upload: the POST in flight.
pub struct ParquetUpload {
    /// Sent once: `true` lets the body end cleanly, `false` (or dropping it) ends it with an
    /// error.
    verdict: Option<oneshot::Sender<bool>>,
    /// The request had already ended, so by storaged's failure, when the upload was
    /// withdrawn (the body cannot end before the verdict, so nothing else ends it early).
    failed_before_withdrawal: bool,
    request: tokio::task::JoinHandle<Result<(ObjectPutResponse, bool), IngestError>>,
}

/// Where an ingest's Parquet goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A content-addressed POST to storaged.
    Storaged(StoragedClient),
    /// Nowhere (`dry_run=true`, docs/contract.md section 6): the bytes are only hashed, so that the
    /// answer names the key the object would have, and dropped; nothing is sent.
    Nowhere,
    /// A directory of the spool (a dry run of a merge or delete, which reads its rows back,
    /// docs/contract.md section 11): the object is written there as `<sha256><suffix>` and
    /// hashed like [`Destination::Nowhere`]; nothing is sent.
    Spool(std::path::PathBuf),
}

/// Starts a content-addressed POST of a Parquet object under `dir`
/// (`datasets/<name>/<fp_hex>`) on `runtime`, fed by the returned [`ChunkSender`]. Callable
/// from a blocking thread. `idle` (`storaged_idle_timeout_ms`) bounds how long storaged may
/// leave a queued chunk untaken, or the end of the body unanswered, before the request is
/// dropped. With [`Destination::Nowhere`] the same body is hashed instead of sent, and
/// [`ParquetUpload::commit`] answers the key and size storaged would have answered.
pub fn start(
    destination: &Destination,
    dir: ObjectKey,
    suffix: &'static str,
    runtime: &tokio::runtime::Handle,
    idle: Duration,
) -> (ChunkSender, ParquetUpload) {
    let (chunks, queue) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let (verdict, decided) = oneshot::channel();
    let progress = Arc::new(Progress::default());
    let body = body(queue, decided, Arc::clone(&progress));
    let request = match destination {
        Destination::Storaged(storaged) => {
            let body = reqwest::Body::wrap_stream(body);
            let storaged = storaged.clone();
            let watched = Arc::clone(&progress);
            // The POST carries the ingest's request id and trace context (docs/contract.md section 9).
            runtime.spawn(lakehouse_client::trace::bind_future(async move {
                let put = storaged.put_content_addressed(&dir, suffix, body);
                watch(put, &watched, idle).await
            }))
        }
        Destination::Nowhere => runtime.spawn(digest_only(dir, suffix, body, None)),
        Destination::Spool(path) => {
            runtime.spawn(digest_only(dir, suffix, body, Some(path.clone())))
        }
    };
    let sender = ChunkSender {
        chunks,
        buffer: Vec::with_capacity(CHUNK_BYTES),
        progress,
    };
    let upload = ParquetUpload {
        verdict: Some(verdict),
        failed_before_withdrawal: false,
        request,
    };
    (sender, upload)
}

impl ParquetUpload {
    /// Lets the body end cleanly once its [`ChunkSender`] is dropped (call after the encoder
    /// finished), and waits for storaged's answer: what is stored, and whether this upload
    /// created it.
    ///
    /// # Errors
    /// [`IngestError::Upstream`] with what the POST failed with (also after a
    /// [`ParquetUpload::withdraw`]), [`IngestError::StoragedStalled`] if storaged stopped
    /// taking the body or answering, [`IngestError::Task`] if its task was lost.
    pub async fn commit(mut self) -> Result<(ObjectPutResponse, bool), IngestError> {
        if let Some(verdict) = self.verdict.take() {
            let _ = verdict.send(true);
        }
        self.request.await.map_err(IngestError::Task)?
    }

    /// Ends the body with an error now, so storaged discards what it staged and the
    /// connection is released, without waiting for the request to end (callable from a
    /// blocking thread, as soon as the output is known to be unwanted).
    pub fn withdraw(&mut self) {
        if let Some(verdict) = self.verdict.take() {
            self.failed_before_withdrawal = self.request.is_finished();
            let _ = verdict.send(false);
        }
    }

    /// [`ParquetUpload::withdraw`], then waits for the request to end. Returns storaged's own
    /// failure when the request had failed before it was withdrawn (storaged down or
    /// refusing) or storaged stalled, `None` otherwise.
    pub async fn abort(mut self) -> Option<IngestError> {
        self.withdraw();
        match self.request.await {
            // The watchdog's verdict stands whenever the withdrawal came.
            Ok(Err(stalled @ IngestError::StoragedStalled { .. })) => Some(stalled),
            _ if !self.failed_before_withdrawal => None,
            Ok(Err(error)) => Some(error),
            Ok(Ok(_)) => None,
            Err(join) => Some(IngestError::Task(join)),
        }
    }
}

/// Complete files of one [`Uploads`] that wait, bodies open, for the upload's verdict: when
/// the encoder opens a file while more wait, the oldest are committed first. Each waiting
/// body holds a connection and a little memory in storaged, so this bounds both whatever the
/// upload's size (docs/contract.md section 2, invariant 5).
pub const WAITING_FILES: usize = 2;

/// The Parquet files of one unpartitioned upload, each streamed to storaged while it is
/// encoded ([`start`]): one, or several when the encoder cuts the output at
/// `target_file_bytes` (docs/contract.md section 5). The encoder opens and hands back the
/// files through [`CompactSink`]. A complete file's body stays open until the upload is
/// committed ([`Uploads::commit`]) or withdrawn, so an upload of up to [`WAITING_FILES`] + 1
/// files that is not used leaves nothing stored; in a larger one the first files are
/// committed as later ones open, and are orphans for GC if the upload is then refused.
///
/// [`CompactSink`]: lakehouse_convert::CompactSink
pub struct Uploads {
    destination: Destination,
    dir: ObjectKey,
    runtime: tokio::runtime::Handle,
    idle: Duration,
    /// The request's trace context and span when made: the encoder opens the files from a
    /// thread of its own, and each POST carries the request's id (docs/contract.md section 9).
    context: Option<lakehouse_client::trace::TraceContext>,
    span: tracing::Span,
    /// The files committed already, in order.
    committed: Vec<StoredFile>,
    /// The files after them, in order, each with its size and rows once the encoder handed
    /// it back.
    files: Vec<(ParquetUpload, Option<(u64, u64)>)>,
    /// storaged's failure to commit a file early, answered instead of the I/O error it
    /// caused the encoder.
    failure: Option<IngestError>,
}

/// One file of [`Uploads`] as storaged stored it, with the rows the encoder wrote into it.
pub struct StoredFile {
    /// storaged's answer.
    pub stored: ObjectPutResponse,
    /// Bytes the encoder wrote.
    pub size: u64,
    /// Rows in the file.
    pub rows: u64,
}

impl Uploads {
    /// No file yet; each goes to `destination` under `dir` (`datasets/<name>/<fp_hex>`) with
    /// the `.parquet` suffix, its POST run on `runtime` and watched with `idle`
    /// (`storaged_idle_timeout_ms`), with the calling request's trace context and span.
    pub fn new(
        destination: &Destination,
        dir: ObjectKey,
        runtime: &tokio::runtime::Handle,
        idle: Duration,
    ) -> Uploads {
        Uploads {
            destination: destination.clone(),
            dir,
            runtime: runtime.clone(),
            idle,
            context: lakehouse_client::trace::current(),
            span: tracing::Span::current(),
            committed: Vec::new(),
            files: Vec::new(),
            failure: None,
        }
    }

    /// Withdraws every file not committed yet (see [`ParquetUpload::withdraw`]).
    pub fn withdraw(&mut self) {
        for (upload, _) in &mut self.files {
            upload.withdraw();
        }
    }

    /// Withdraws every file not committed yet and waits for their requests: the failure of
    /// an early commit, else the first storaged failure that came before the withdrawal, if
    /// any (see [`ParquetUpload::abort`]).
    pub async fn abort(self) -> Option<IngestError> {
        let mut first = self.failure;
        for (upload, _) in self.files {
            let failed = upload.abort().await;
            first = first.or(failed);
        }
        first
    }

    /// Lets every file's body end cleanly and waits for storaged's answers: every file, in
    /// order.
    ///
    /// # Errors
    /// The first error as [`ParquetUpload::commit`] gives it (the files after it are
    /// withdrawn); [`IngestError::Spool`] for a file the encoder never handed back.
    pub async fn commit(mut self) -> Result<Vec<StoredFile>, IngestError> {
        if let Some(failure) = self.failure.take() {
            return Err(failure);
        }
        let mut stored = std::mem::take(&mut self.committed);
        let mut files = std::mem::take(&mut self.files).into_iter();
        while let Some((upload, done)) = files.next() {
            match commit_file(upload, done).await {
                Ok(file) => stored.push(file),
                Err(error) => {
                    for (rest, _) in files {
                        let _ = rest.abort().await;
                    }
                    return Err(error);
                }
            }
        }
        Ok(stored)
    }
}

/// Commits one file of [`Uploads`] that the encoder handed back (`done`: its size and rows).
///
/// # Errors
/// As [`ParquetUpload::commit`]; [`IngestError::Spool`] when it was not handed back.
async fn commit_file(
    upload: ParquetUpload,
    done: Option<(u64, u64)>,
) -> Result<StoredFile, IngestError> {
    let Some((size, rows)) = done else {
        let _ = upload.abort().await;
        return Err(IngestError::Spool(io::Error::other(
            "a Parquet file was not complete",
        )));
    };
    let (stored, _) = upload.commit().await?;
    Ok(StoredFile { stored, size, rows })
}

impl lakehouse_convert::CompactSink for Uploads {
    type Writer = ChunkSender;

    /// Opens the next file; first commits the oldest waiting ones while more than
    /// [`WAITING_FILES`] wait (blocking: called from the encoder's thread).
    fn open(&mut self) -> io::Result<ChunkSender> {
        while self.files.iter().filter(|(_, done)| done.is_some()).count() > WAITING_FILES {
            let (upload, done) = self.files.remove(0);
            match self.runtime.block_on(commit_file(upload, done)) {
                Ok(file) => self.committed.push(file),
                Err(error) => {
                    let text = error.to_string();
                    self.failure = Some(error);
                    return Err(io::Error::other(text));
                }
            }
        }
        let (sender, upload) =
            lakehouse_client::trace::within(self.context.clone(), &self.span, || {
                start(
                    &self.destination,
                    self.dir.clone(),
                    PARQUET_SUFFIX,
                    &self.runtime,
                    self.idle,
                )
            });
        self.files.push((upload, None));
        Ok(sender)
    }

    /// Withdraws every file not committed yet, at once ([`Uploads::withdraw`]): the
    /// speculative pass's guess was refused, and it reads on to the end of the upload.
    fn abandon(&mut self) {
        self.withdraw();
    }

    fn close(&mut self, mut writer: ChunkSender, size: u64, rows: u64) -> io::Result<()> {
        writer.flush()?;
        drop(writer);
        if let Some((_, done)) = self.files.last_mut() {
            *done = Some((size, rows));
        }
        Ok(())
    }
}

/// Runs the POST `put` while storaged makes progress: it is dropped (closing the
/// connection, so the encoder's next send fails) when storaged has owed us something
/// ([`Progress::waiting_for_storaged`]) for `idle` without taking a chunk.
///
/// # Errors
/// [`IngestError::Upstream`] with the POST's own failure, [`IngestError::StoragedStalled`].
async fn watch<F, T>(put: F, progress: &Progress, idle: Duration) -> Result<T, IngestError>
where
    F: Future<Output = Result<T, ClientError>>,
{
    tokio::pin!(put);
    let mut ticks = tokio::time::interval((idle / 4).max(Duration::from_millis(10)));
    let mut taken = progress.taken.load(Ordering::Acquire);
    let mut since = Instant::now();
    loop {
        tokio::select! {
            answer = &mut put => {
                return answer.map_err(|source| IngestError::Upstream { service: "storaged", source });
            }
            _ = ticks.tick() => {
                let now_taken = progress.taken.load(Ordering::Acquire);
                if now_taken != taken || !progress.waiting_for_storaged() {
                    taken = now_taken;
                    since = Instant::now();
                } else if since.elapsed() >= idle {
                    return Err(IngestError::StoragedStalled {
                        idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
                    });
                }
            }
        }
    }
}

/// What storaged would answer for `body` POSTed content-addressed under `dir` (the key
/// `<dir>/<sha256><suffix>`, the size and digest; never `created`), for a dry run: the
/// chunks are hashed on the blocking pool and dropped.
///
/// # Errors
/// [`IngestError::Spool`] when the body ends with an error (the output was withdrawn; the
/// caller does not use this answer then), [`IngestError::Task`].
async fn digest_only(
    dir: ObjectKey,
    suffix: &'static str,
    body: impl Stream<Item = io::Result<Bytes>>,
    keep_in: Option<std::path::PathBuf>,
) -> Result<(ObjectPutResponse, bool), IngestError> {
    use std::io::Write;
    let mut body = std::pin::pin!(body);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut file = match &keep_in {
        Some(path) => Some(tempfile::NamedTempFile::new_in(path).map_err(IngestError::Spool)?),
        None => None,
    };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(IngestError::Spool)?;
        size += chunk.len() as u64;
        let mut taken = file.take();
        let (back, written) = tokio::task::spawn_blocking(move || {
            hasher.update(&chunk);
            let written = taken.as_mut().map_or(Ok(()), |f| f.write_all(&chunk));
            ((hasher, taken), written)
        })
        .await
        .map_err(IngestError::Task)?;
        written.map_err(IngestError::Spool)?;
        (hasher, file) = back;
    }
    let sha256 = Sha256Digest::from_bytes(hasher.finalize().into());
    let key = ObjectKey::try_from(format!("{dir}/{}{suffix}", sha256.as_str()))
        .map_err(|e| IngestError::Spool(io::Error::other(e)))?;
    if let (Some(file), Some(path)) = (file, &keep_in) {
        file.persist(path.join(format!("{}{suffix}", sha256.as_str())))
            .map_err(|e| IngestError::Spool(e.error))?;
    }
    Ok((ObjectPutResponse { key, size, sha256 }, false))
}

/// The POST body: the chunks until the sender is dropped, then a clean end if the upload
/// was committed, else an error (which makes reqwest abort the request).
fn body(
    queue: mpsc::Receiver<Bytes>,
    decided: oneshot::Receiver<bool>,
    progress: Arc<Progress>,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold((Some(queue), Some(decided)), move |(queue, decided)| {
        let progress = Arc::clone(&progress);
        async move {
            if let Some(mut queue) = queue
                && let Some(chunk) = queue.recv().await
            {
                progress.taken.fetch_add(1, Ordering::AcqRel);
                return Some((Ok(chunk), (Some(queue), decided)));
            }
            match decided?.await {
                Ok(true) => {
                    progress.ended.store(true, Ordering::Release);
                    None
                }
                _ => Some((
                    Err(io::Error::other("parquet output withdrawn")),
                    (None, None),
                )),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_millis(100);

    fn progress(sent: u64, taken: u64, ended: bool) -> Arc<Progress> {
        let progress = Progress::default();
        progress.sent.store(sent, Ordering::Release);
        progress.taken.store(taken, Ordering::Release);
        progress.ended.store(ended, Ordering::Release);
        Arc::new(progress)
    }

    fn never() -> impl Future<Output = Result<(), ClientError>> {
        std::future::pending()
    }

    /// `watch`, failing the test instead of hanging it when the watchdog never fires.
    async fn watched<F>(put: F, progress: &Progress) -> Result<(), IngestError>
    where
        F: Future<Output = Result<(), ClientError>>,
    {
        tokio::time::timeout(IDLE * 20, watch(put, progress, IDLE))
            .await
            .expect("the watch ends within 20 idle periods")
    }

    async fn answer_after(wait: Duration) -> Result<(), ClientError> {
        tokio::time::sleep(wait).await;
        Ok(())
    }

    #[tokio::test]
    async fn a_queued_chunk_left_untaken_is_a_stall() {
        let started = Instant::now();
        let result = watched(never(), &progress(3, 2, false)).await;
        assert!(
            matches!(result, Err(IngestError::StoragedStalled { idle_ms: 100 })),
            "{result:?}"
        );
        assert!(started.elapsed() >= IDLE, "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn an_unanswered_end_of_body_is_a_stall() {
        let result = watched(never(), &progress(2, 2, true)).await;
        assert!(
            matches!(result, Err(IngestError::StoragedStalled { .. })),
            "{result:?}"
        );
    }

    /// A storaged that takes a chunk now and then, slower than one per `idle` in total time
    /// but never idle for `idle`, is not cut off.
    #[tokio::test]
    async fn slow_but_steady_progress_is_not_a_stall() {
        let progress = progress(1_000, 0, false);
        let taker = Arc::clone(&progress);
        let taking = tokio::spawn(async move {
            loop {
                tokio::time::sleep(IDLE / 3).await;
                taker.taken.fetch_add(1, Ordering::AcqRel);
            }
        });
        let result = watched(answer_after(IDLE * 6), &progress).await;
        taking.abort();
        assert!(result.is_ok(), "{result:?}");
    }

    /// Nothing queued and the body not ended (the encoder is waiting for the client's
    /// upload): storaged owes nothing, however long that lasts.
    #[tokio::test]
    async fn a_slow_client_is_not_storaged_stalling() {
        let result = watched(answer_after(IDLE * 5), &progress(4, 4, false)).await;
        assert!(result.is_ok(), "{result:?}");
    }
}
