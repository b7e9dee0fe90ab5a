//! Parquet encoding on two threads, column by column (docs/performance.md), or on more,
//! row group by row group (docs/contract.md section 13). On two: the columns of
//! each row group are split between the encoding thread and a helper thread, each encoding
//! its own columns of every record batch with parquet's `ArrowColumnWriter`; at the end of
//! the row group the column chunks are appended in schema order. This is parquet's own
//! parallel-writing recipe (the writers come from the `ArrowWriter`'s own factory, so every
//! column chunk holds exactly the bytes `ArrowWriter::write` would give it), hence the file
//! is byte-identical to one written by `ArrowWriter` on one thread; a property test checks
//! it (`tests/properties.rs`).

use crate::MAX_ROW_GROUP_ROWS;
use crate::compact::CompactSink;
use crate::error::{ConvertError, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::{Duration, Instant};

/// Record batches queued for the helper thread, at most.
const HELPER_BATCHES: usize = 2;

/// Counts the bytes as they go to `inner`, and keeps the first I/O error so it can be
/// returned as such rather than as an encoder error.
pub(crate) struct CountingWriter<W> {
    inner: W,
    bytes: u64,
    error: Option<io::Error>,
}

impl<W: Write> CountingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        CountingWriter {
            inner,
            bytes: 0,
            error: None,
        }
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The writer written to.
    pub(crate) fn into_inner(self) -> W {
        self.inner
    }

    /// The writer written to, borrowed.
    pub(crate) fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// The first I/O error `inner` returned, if any (taken).
    pub(crate) fn take_error(&mut self) -> Option<io::Error> {
        self.error.take()
    }

    fn keep(&mut self, e: io::Error) -> io::Error {
        let copy = io::Error::new(e.kind(), "writing the parquet output failed");
        if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
            self.error = Some(e);
        }
        copy
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => Err(self.keep(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().map_err(|e| self.keep(e))
    }
}

/// parquet's error as ours: an I/O error inside it as `Io`.
pub(crate) fn unwrap_io(e: ParquetError) -> ConvertError {
    match e {
        ParquetError::External(inner) => match inner.downcast::<io::Error>() {
            Ok(io) => ConvertError::Io(*io),
            Err(other) => ConvertError::Parquet(other.to_string()),
        },
        other => ConvertError::Parquet(other.to_string()),
    }
}

/// A column writer of the row group in progress, with its column's index.
type Writers = Vec<(usize, ArrowColumnWriter)>;

/// What the encoding thread asks of the helper.
enum Job {
    /// A new row group: the writers of the helper's columns.
    Start(Writers),
    /// A batch of the row group (the helper encodes its columns of it).
    Batch(RecordBatch),
    /// The end of the row group: the helper answers with its column chunks.
    Close,
}

/// The helper thread: encodes its columns of each batch until told to close the row group,
/// then hands the chunks back. After an error it drains its jobs and reports the error at
/// the next close, so the encoding thread never blocks on it.
fn helper(arrow: &SchemaRef, jobs: &Receiver<Job>, chunks: &SyncSender<Result<Chunks>>) {
    let mut writers: Writers = Vec::new();
    let mut failed: Option<ConvertError> = None;
    for job in jobs {
        match job {
            Job::Start(new) => writers = new,
            Job::Batch(batch) => {
                if failed.is_none()
                    && let Err(e) = write_columns(arrow, &mut writers, &batch)
                {
                    failed = Some(e);
                }
            }
            Job::Close => {
                let closed = match failed.take() {
                    Some(e) => Err(e),
                    None => close_columns(std::mem::take(&mut writers)),
                };
                if chunks.send(closed).is_err() {
                    return;
                }
            }
        }
    }
}

/// Column chunks of a row group, with their columns' indexes.
type Chunks = Vec<(usize, ArrowColumnChunk)>;

fn write_columns(arrow: &SchemaRef, writers: &mut Writers, batch: &RecordBatch) -> Result<()> {
    for (i, writer) in writers {
        let (Some(field), Some(column)) = (arrow.fields().get(*i), batch.columns().get(*i)) else {
            return Err(ConvertError::Parquet(format!("no column {i} in the batch")));
        };
        for leaf in compute_leaves(field, column).map_err(unwrap_io)? {
            writer.write(&leaf).map_err(unwrap_io)?;
        }
    }
    Ok(())
}

fn close_columns(writers: Writers) -> Result<Chunks> {
    writers
        .into_iter()
        .map(|(i, writer)| writer.close().map(|chunk| (i, chunk)).map_err(unwrap_io))
        .collect()
}

/// Which columns the helper encodes: about half of the bytes of `batch`, heaviest columns
/// first, each to the lighter side. Only the split of the work depends on it, never the
/// bytes written.
fn helper_columns(batch: &RecordBatch) -> Vec<bool> {
    let mut sizes: Vec<(usize, usize)> = batch
        .columns()
        .iter()
        .map(|c| c.get_buffer_memory_size())
        .enumerate()
        .collect();
    sizes.sort_by_key(|&(i, size)| (std::cmp::Reverse(size), i));
    let mut on_helper = vec![false; sizes.len()];
    let (mut mine, mut theirs) = (0usize, 0usize);
    for (i, size) in sizes {
        if theirs < mine {
            on_helper[i] = true;
            theirs += size;
        } else {
            mine += size;
        }
    }
    on_helper
}

/// Where an unpartitioned pass 2 writes its Parquet: one file, or files cut between row
/// groups once one reaches a size (docs/contract.md section 5: an ingest writing more than
/// `target_file_bytes` of Parquet writes several files).
pub enum ParquetFiles<'s, W> {
    /// One file, whatever its size.
    One(W),
    /// Files opened from `sink` one after the other: a new one is started before a row group
    /// once the current one holds `target_bytes` or more (so each holds at least one row
    /// group, and none is empty), and each is handed back through [`CompactSink::close`]
    /// with its size and rows once its footer is written.
    Split {
        /// Opens and takes back the files.
        sink: &'s mut (dyn CompactSink<Writer = W> + Send),
        /// Bytes after which the next row group starts a new file.
        target_bytes: u64,
    },
}

/// What the pipelined writers take as their output: a writer (one file) or
/// [`ParquetFiles`].
pub trait IntoParquetFiles<'s, W> {
    /// The output as [`ParquetFiles`].
    fn into_files(self) -> ParquetFiles<'s, W>;
}

impl<'s, W: Write + Send> IntoParquetFiles<'s, W> for W {
    fn into_files(self) -> ParquetFiles<'s, W> {
        ParquetFiles::One(self)
    }
}

impl<'s, W> IntoParquetFiles<'s, W> for ParquetFiles<'s, W> {
    fn into_files(self) -> ParquetFiles<'s, W> {
        self
    }
}

/// A writer that can be taken back once the file writer over it is finished (parquet's
/// writer gives its inner writer back only by writing the footer itself).
struct Slot<W>(Option<W>);

impl<W: Write> Write for Slot<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.0 {
            Some(out) => out.write(buf),
            None => Err(io::Error::other("the file was handed back")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.as_mut().map_or(Ok(()), Write::flush)
    }
}

/// The file writer of [`FileOut`].
type FileWriter<W> = SerializedFileWriter<CountingWriter<Slot<W>>>;

/// The file being written of a [`ParquetFiles`], and what came before it.
struct FileOut<'s, W: Write + Send> {
    file: FileWriter<W>,
    /// Rows appended to `file`.
    rows: u64,
    arrow: SchemaRef,
    properties: WriterProperties,
    /// The sink and size of a split output.
    split: Option<(&'s mut (dyn CompactSink<Writer = W> + Send), u64)>,
    /// Bytes of the files already handed back.
    bytes_before: u64,
}

impl<'s, W: Write + Send> FileOut<'s, W> {
    /// The first file of `files`, and the column writers' factory for every row group.
    fn open(
        arrow: &SchemaRef,
        properties: WriterProperties,
        files: ParquetFiles<'s, W>,
    ) -> Result<(Self, ArrowRowGroupWriterFactory)> {
        let (out, split) = match files {
            ParquetFiles::One(out) => (out, None),
            ParquetFiles::Split { sink, target_bytes } => (
                sink.open().map_err(ConvertError::Io)?,
                Some((sink, target_bytes)),
            ),
        };
        let (file, factory) = new_file(arrow, properties.clone(), out)?;
        let out = FileOut {
            file,
            rows: 0,
            arrow: arrow.clone(),
            properties,
            split,
            bytes_before: 0,
        };
        Ok((out, factory))
    }

    /// Appends a row group's column chunks, in column order, first starting a new file when
    /// the output is split and the current file has reached its size.
    fn append(&mut self, closed: Chunks) -> Result<()> {
        if let Some((_, target)) = &self.split
            && self.rows > 0
            && self.file.bytes_written() as u64 >= *target
        {
            self.next_file()?;
        }
        self.rows += append_row_group(&mut self.file, closed)?;
        Ok(())
    }

    /// Ends the current file (handing it back) and starts the next from the sink.
    fn next_file(&mut self) -> Result<()> {
        let Some((sink, _)) = self.split.as_mut() else {
            return Ok(());
        };
        let rows = std::mem::take(&mut self.rows);
        self.bytes_before += finish_file(&mut self.file, rows, Some(&mut **sink))?;
        let out = sink.open().map_err(ConvertError::Io)?;
        self.file = new_file(&self.arrow, self.properties.clone(), out)?.0;
        Ok(())
    }

    /// Drops the output: the sink of a split output is told first
    /// ([`CompactSink::abandon`]), then the file being written is dropped unfinished.
    fn abandon(self) {
        if let Some((sink, _)) = self.split {
            sink.abandon();
        }
    }

    /// Ends the last file: its bytes and those of the files before it.
    fn finish(mut self) -> Result<u64> {
        let sink = self.split.as_mut().map(|(sink, _)| &mut **sink);
        Ok(self.bytes_before + finish_file(&mut self.file, self.rows, sink)?)
    }
}

/// A new file writer over `out` with the column writers' factory, exactly as `ArrowWriter`
/// makes them (the Arrow schema is embedded in the footer's metadata on the way).
fn new_file<W: Write + Send>(
    arrow: &SchemaRef,
    properties: WriterProperties,
    out: W,
) -> Result<(FileWriter<W>, ArrowRowGroupWriterFactory)> {
    ArrowWriter::try_new(
        CountingWriter::new(Slot(Some(out))),
        arrow.clone(),
        Some(properties),
    )
    .and_then(ArrowWriter::into_serialized_writer)
    .map_err(unwrap_io)
}

/// Writes `file`'s footer and, for a split output, hands it to `sink` with its `rows`: its
/// size in bytes.
///
/// # Errors
/// The write error the file's writer kept (as `Io`), the encoder's, or the sink's.
fn finish_file<W: Write + Send>(
    file: &mut FileWriter<W>,
    rows: u64,
    sink: Option<&mut (dyn CompactSink<Writer = W> + Send + '_)>,
) -> Result<u64> {
    if let Err(e) = file.finish() {
        return Err(sink_error(file, unwrap_io(e)));
    }
    let counted = file.inner_mut();
    if let Some(io) = counted.take_error() {
        return Err(ConvertError::Io(io));
    }
    let bytes = counted.bytes();
    if let Some(sink) = sink
        && let Some(out) = counted.inner_mut().0.take()
    {
        sink.close(out, bytes, rows).map_err(ConvertError::Io)?;
    }
    Ok(bytes)
}

/// The I/O error the file's writer kept, if any, else `e`.
fn sink_error<W: Write + Send>(file: &mut FileWriter<W>, e: ConvertError) -> ConvertError {
    match file.inner_mut().take_error() {
        Some(io) => ConvertError::Io(io),
        None => e,
    }
}

/// Writes the record batches of `batches` as Parquet into `out` with `properties`, in row
/// groups of [`MAX_ROW_GROUP_ROWS`] rows. With `threads` up to 2, the columns of each row
/// group are split between this thread and a scoped helper thread; with more, whole row
/// groups go to `threads` scoped encoding threads in turn, and this thread appends their
/// column chunks in row-group order (docs/contract.md section 13). The bytes are the same
/// either way. Returns the bytes written and this thread's busy time (not waiting for
/// batches). When `abandoned` is set by the time the batches end, the output is dropped
/// unfinished instead ([`CompactSink::abandon`]) and 0 bytes are returned, whatever went
/// wrong before.
///
/// # Errors
/// `Io` when `out` fails, `Parquet` when the encoder does.
pub(crate) fn encode_batches<W: Write + Send>(
    arrow: &SchemaRef,
    properties: WriterProperties,
    files: ParquetFiles<'_, W>,
    batches: Receiver<RecordBatch>,
    threads: usize,
    abandoned: &AtomicBool,
) -> Result<(u64, Duration)> {
    let started = Instant::now();
    let mut batches = Timed {
        batches,
        waited: Duration::ZERO,
    };
    let (mut out, factory) = FileOut::open(arrow, properties, files)?;
    let written = std::thread::scope(|scope| {
        if threads > 2 {
            return spread_row_groups(scope, arrow, &mut out, &factory, &mut batches, threads);
        }
        let (jobs, helper_jobs) = sync_channel::<Job>(HELPER_BATCHES);
        let (helper_chunks, chunks) = sync_channel::<Result<Chunks>>(1);
        crate::spawn_named(scope, "pass2-helper", move || {
            helper(arrow, &helper_jobs, &helper_chunks)
        });
        let result = row_groups(arrow, &mut out, &factory, &mut batches, &jobs, &chunks);
        drop(jobs);
        result
    });
    if abandoned.load(Ordering::Acquire) {
        out.abandon();
        return Ok((0, started.elapsed().saturating_sub(batches.waited)));
    }
    if let Err(e) = written {
        return Err(sink_error(&mut out.file, e));
    }
    let bytes = out.finish()?;
    Ok((bytes, started.elapsed().saturating_sub(batches.waited)))
}

/// The batches, timing the waits for them.
struct Timed {
    batches: Receiver<RecordBatch>,
    waited: Duration,
}

impl Iterator for Timed {
    type Item = RecordBatch;

    fn next(&mut self) -> Option<RecordBatch> {
        let started = Instant::now();
        let batch = self.batches.recv().ok();
        self.waited += started.elapsed();
        batch
    }
}

/// The row groups: per row group, new column writers, split with the helper; every batch
/// encoded by both sides; then the chunks appended in column order.
fn row_groups<W: Write + Send>(
    arrow: &SchemaRef,
    out: &mut FileOut<'_, W>,
    factory: &ArrowRowGroupWriterFactory,
    batches: &mut Timed,
    jobs: &SyncSender<Job>,
    chunks: &Receiver<Result<Chunks>>,
) -> Result<()> {
    let helper_gone = || ConvertError::Parquet("the encoder's helper thread stopped".into());
    let mut batches = batches.peekable();
    let mut on_helper: Option<Vec<bool>> = None;
    let mut index = 0;
    while let Some(first) = batches.peek() {
        let on_helper = on_helper.get_or_insert_with(|| helper_columns(first));
        let (theirs, mut mine): (Writers, Writers) = factory
            .create_column_writers(index)
            .map_err(unwrap_io)?
            .into_iter()
            .enumerate()
            .partition(|(i, _)| on_helper.get(*i).copied().unwrap_or(false));
        jobs.send(Job::Start(theirs)).map_err(|_| helper_gone())?;
        let mut rows = 0;
        while rows < MAX_ROW_GROUP_ROWS {
            let Some(batch) = batches.next() else {
                break;
            };
            rows += batch.num_rows();
            jobs.send(Job::Batch(batch.clone()))
                .map_err(|_| helper_gone())?;
            write_columns(arrow, &mut mine, &batch)?;
        }
        jobs.send(Job::Close).map_err(|_| helper_gone())?;
        let mut closed = close_columns(mine)?;
        closed.extend(chunks.recv().map_err(|_| helper_gone())??);
        out.append(closed)?;
        index += 1;
    }
    Ok(())
}

/// Appends a row group's column chunks to `file`, in column order: its rows.
fn append_row_group<W: Write + Send>(
    file: &mut SerializedFileWriter<W>,
    mut closed: Chunks,
) -> Result<u64> {
    closed.sort_by_key(|(i, _)| *i);
    let mut row_group = file.next_row_group().map_err(unwrap_io)?;
    for (_, chunk) in closed {
        chunk
            .append_to_row_group(&mut row_group)
            .map_err(unwrap_io)?;
    }
    let closed = row_group.close().map_err(unwrap_io)?;
    Ok(u64::try_from(closed.num_rows()).unwrap_or(0))
}

/// The row groups on `workers` encoding threads: row group `i` goes whole (all its columns)
/// to thread `i % workers`, at most `workers` are in flight, and their column chunks are
/// appended here in row-group order. Each thread queues up to a row group's batches, so the
/// threads encode side by side while the batches arrive.
fn spread_row_groups<'scope, W: Write + Send>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    arrow: &'scope SchemaRef,
    out: &mut FileOut<'_, W>,
    factory: &ArrowRowGroupWriterFactory,
    batches: &mut Timed,
    workers: usize,
) -> Result<()> {
    let gone = || ConvertError::Parquet("an encoding thread stopped".into());
    let queued = MAX_ROW_GROUP_ROWS / crate::BATCH_ROWS + 2;
    let lanes: Vec<(SyncSender<Job>, Receiver<Result<Chunks>>)> = (0..workers)
        .map(|_| {
            let (jobs, their_jobs) = sync_channel::<Job>(queued);
            let (their_chunks, chunks) = sync_channel::<Result<Chunks>>(1);
            crate::spawn_named(scope, "pass2-encode", move || {
                helper(arrow, &their_jobs, &their_chunks);
            });
            (jobs, chunks)
        })
        .collect();
    let append = |out: &mut FileOut<'_, W>, index: usize| -> Result<()> {
        out.append(lanes[index % workers].1.recv().map_err(|_| gone())??)
    };
    let mut batches = batches.peekable();
    let (mut sent, mut appended) = (0usize, 0usize);
    while batches.peek().is_some() {
        let jobs = &lanes[sent % workers].0;
        let writers: Writers = factory
            .create_column_writers(sent)
            .map_err(unwrap_io)?
            .into_iter()
            .enumerate()
            .collect();
        jobs.send(Job::Start(writers)).map_err(|_| gone())?;
        let mut rows = 0;
        while rows < MAX_ROW_GROUP_ROWS {
            let Some(batch) = batches.next() else {
                break;
            };
            rows += batch.num_rows();
            jobs.send(Job::Batch(batch)).map_err(|_| gone())?;
        }
        jobs.send(Job::Close).map_err(|_| gone())?;
        sent += 1;
        if sent - appended == workers {
            append(out, appended)?;
            appended += 1;
        }
    }
    while appended < sent {
        append(out, appended)?;
        appended += 1;
    }
    Ok(())
}

// ArrowWriter cuts a row group after MAX_ROW_GROUP_ROWS rows; so does `row_groups`, which
// never splits a batch: whole batches must fill a row group exactly.
const _: () = assert!(MAX_ROW_GROUP_ROWS.is_multiple_of(crate::BATCH_ROWS));
