//! Pass 2 for a partitioned dataset (docs/contract.md section 10, "Partitioned datasets"): the
//! record batches are split by partition, and each partition's rows go to Parquet files of
//! their own, in file order. The rows waiting are bounded by
//! [`PartitionedConfig::buffer_bytes`] whatever the number of partitions, and so is the
//! metadata the open files keep (every written row group's, until the footer): past that
//! budget again, the files holding the most are closed (docs/decisions.md, "Partitioned
//! writes").
//!
//! How: each partition's rows wait in memory as compact record batches (a `take` of its
//! rows of each batch). A partition is flushed, as one row group of its current file, when
//! it holds [`MAX_ROW_GROUP_ROWS`] rows, and the partitions holding the most bytes are
//! flushed, down to half the budget, when all of them together hold more than it; with a
//! spill directory, those holding fewer than [`SPILL_BELOW_ROWS`] rows are spilled to it
//! instead and read back when the partition is next flushed. A flushed row group goes to
//! the [`PartitionSink`] at once; a row group's column encoders live only while it is
//! written, one per encoder thread. A file is
//! closed (its footer written) once it reaches [`PartitionedConfig::target_file_bytes`], and
//! the partition's next rows start a new one; every file is closed at the end.
//!
//! Each file's footer holds the key [`UPLOAD_KEY`] with a placeholder value, which the
//! caller replaces with the SHA-256 of the upload ([`stamp_upload`]) once the upload is
//! whole: two uploads whose rows of one partition are the same then still write two
//! objects, while the same upload again writes the same ones (docs/contract.md section 10).
//!
//! Every decision depends only on the rows, their order and the configuration, never on
//! timing: the same input and configuration give the same files, byte for byte.

use crate::MAX_ROW_GROUP_ROWS;
use crate::encode::unwrap_io;
use crate::error::{ConvertError, Result};
use crate::spill::{Spill, Spilled};
use crate::write::partition_writer_properties;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{KeyValue, ParquetMetaDataReader, RowGroupMetaData};
use parquet::file::properties::WriterProperties;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::io;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Assigns the rows of each record batch to partitions (the caller's transforms of docs/contract.md
/// section 10).
pub trait Partitioner: Send {
    /// Sets `out` to the partition of each row of `batch`, in row order: dense 0-based
    /// indexes, a new value getting the next one, so indexes follow first appearance in the
    /// file.
    ///
    /// # Errors
    /// What the caller makes of a value it cannot place, typically
    /// [`ConvertError::TooManyPartitions`] past its limit; the pass stops with it.
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> Result<()>;
}

/// Where the partition files go: bytes appended to a file as they are made, then the file
/// closed. Files are named by (partition index, 0-based file number of that partition).
pub trait PartitionSink: Send {
    /// Appends `bytes` to file `file` of partition `partition` (creating it on first use).
    ///
    /// # Errors
    /// The sink's I/O error; the pass stops with it.
    fn append(&mut self, partition: u32, file: u32, bytes: &[u8]) -> io::Result<()>;

    /// File `file` of `partition` is complete once `footer` is appended to it: its last
    /// bytes, those the writer had not handed over when it finished (the footer proper:
    /// page indexes, metadata, length and magic, after whatever tail of the last row group
    /// parquet still buffered), not given to [`Self::append`], so that the sink can tell
    /// them apart for [`stamp_upload`], which needs only the end. `size` bytes in all,
    /// footer included, `rows` rows.
    ///
    /// # Errors
    /// The sink's I/O error; the pass stops with it.
    fn finish(
        &mut self,
        partition: u32,
        file: u32,
        footer: &[u8],
        size: u64,
        rows: u64,
    ) -> io::Result<()>;
}

/// The key of the footer entry naming the upload a partition file was written from
/// (docs/contract.md section 10).
pub const UPLOAD_KEY: &str = "lakehouse.upload_sha256";

/// The key of the footer entry naming the file within its upload: `<partition index>/<file
/// number>`, so two files of one upload never have the same bytes.
pub const FILE_KEY: &str = "lakehouse.file";

/// Memory an open file takes besides its row groups' metadata: parquet's 8 KiB output
/// buffer and the writer's own state, bytes (counted with the metadata).
const OPEN_FILE_BYTES: usize = 16 << 10;

/// The value [`UPLOAD_KEY`] holds until [`stamp_upload`]: as long as a SHA-256 in hex.
const UPLOAD_PLACEHOLDER: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Names the upload in a partition file's footer (the `footer` bytes a [`PartitionSink`]
/// was given): replaces the placeholder value of [`UPLOAD_KEY`] with `upload_sha256` (64
/// lowercase hex digits), in place, and checks that the footer then decodes with that
/// value. Same length, so nothing else in the file moves.
///
/// # Errors
/// [`ConvertError::Parquet`] when `footer` is not such a footer or `upload_sha256` is not
/// 64 hex digits.
pub fn stamp_upload(footer: &mut [u8], upload_sha256: &str) -> Result<()> {
    let bad = |what: &str| ConvertError::Parquet(format!("stamping a partition file: {what}"));
    if upload_sha256.len() != UPLOAD_PLACEHOLDER.len()
        || !upload_sha256.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad("the upload's digest is not 64 hex digits"));
    }
    let n = footer.len();
    let tail: [u8; 8] = footer
        .get(n.saturating_sub(8)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| bad("too short"))?;
    let len = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let start = (n - 8)
        .checked_sub(len)
        .ok_or_else(|| bad("the metadata length overruns the footer"))?;
    let metadata = &mut footer[start..n - 8];
    // The key-value entries follow the row groups in the metadata (whose statistics could
    // hold the same digits) and this entry is the last of them: the last match is it.
    let at = metadata
        .windows(UPLOAD_PLACEHOLDER.len())
        .rposition(|w| w == UPLOAD_PLACEHOLDER.as_bytes())
        .ok_or_else(|| bad("no placeholder"))?;
    metadata[at..at + UPLOAD_PLACEHOLDER.len()].copy_from_slice(upload_sha256.as_bytes());
    let decoded = ParquetMetaDataReader::decode_metadata(metadata)
        .map_err(|e| bad(&format!("the metadata does not decode: {e}")))?;
    let stamped = decoded
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().rfind(|e| e.key == UPLOAD_KEY))
        .and_then(|e| e.value.as_deref());
    if stamped != Some(upload_sha256) {
        return Err(bad("the placeholder was not the upload entry"));
    }
    Ok(())
}

/// How a partitioned pass 2 bounds its memory and its files.
#[derive(Debug, Clone)]
pub struct PartitionedConfig {
    /// Bytes of rows waiting in memory, over all partitions, before the largest are
    /// flushed (docs/contract.md section 10: `partition_buffer_bytes`). On top come the
    /// chunk being split (cut at the batch that brings it to a quarter of it), the flushes
    /// handed to the encoder threads (two each of any size, one more held by the splitting
    /// thread while it waits, and more while all of them come to a quarter of it at most)
    /// and the row groups being encoded. A second budget of the same size, split between
    /// the two encoder threads, bounds the open files' estimated row-group metadata: past
    /// a thread's share, its files holding the most are closed until it is back under half.
    /// The first chunk, cut the same way, decides the files' dictionaries. In all, peak
    /// memory is a small multiple of it (about 2.5 times, plus the row groups being
    /// encoded), whatever the number of partitions.
    pub buffer_bytes: usize,
    /// A file is closed once it holds this many bytes; the partition's next rows go to a
    /// new one (docs/contract.md section 10: `target_file_bytes`).
    pub target_file_bytes: u64,
    /// Where the rows of partitions holding fewer than [`SPILL_BELOW_ROWS`] rows go when
    /// the budget is reached, instead of becoming tiny row groups (an existing directory
    /// the caller removes); `None`: they become row groups.
    pub spill_dir: Option<std::path::PathBuf>,
}

/// A partition holding fewer rows than this (waiting and spilled together) when the budget
/// is reached has its waiting rows spilled rather than written as a row group, when there
/// is a spill directory: so very many partitions do not make row groups of a few rows,
/// whose metadata would outweigh them (docs/decisions.md, "Partitioned writes").
pub const SPILL_BELOW_ROWS: usize = 1024;

/// Memory the metadata of one written column chunk takes until its file's footer: its
/// `ColumnChunkMetaData` and page index entries, measured at about 1,000 bytes with
/// parquet 60 (statistics values come on top, counted apart).
const CHUNK_METADATA_BYTES: usize = 1024;

/// The estimated memory of `groups`' metadata, bytes: [`CHUNK_METADATA_BYTES`] per column
/// chunk, plus its statistics values twice (in the chunk and in the column index).
fn metadata_bytes(groups: &[RowGroupMetaData]) -> usize {
    groups
        .iter()
        .flat_map(|g| g.columns())
        .map(|c| {
            let values = c.statistics().map_or(0, |s| {
                s.min_bytes_opt().map_or(0, <[u8]>::len) + s.max_bytes_opt().map_or(0, <[u8]>::len)
            });
            CHUNK_METADATA_BYTES + 2 * values
        })
        .sum()
}

/// Encoder threads: each writes the files of the partitions whose index is its own modulo
/// this, so a partition's row groups are always written by one thread, in order.
const WORKERS: usize = 2;

/// Jobs an encoder thread always may have, queued or being written, whatever their size:
/// one being written and one waiting, so neither thread waits for the splitting one.
const WORKER_JOBS: usize = 2;

/// The rows handed to the encoder threads and not yet written, bytes, past which a job
/// beyond an encoder's [`WORKER_JOBS`] waits: this share of
/// [`PartitionedConfig::buffer_bytes`]. When partitions are many, a flush is a few rows of
/// one partition, and the threads keep busy only with many flushes queued; when they are
/// few, a flush can be a whole row group, and this keeps the queue to about one each.
const IN_FLIGHT_SHARE: usize = 4;

/// The jobs handed to each encoder thread and the bytes of their rows, until written:
/// the splitting thread waits here when both are past their bounds ([`WORKER_JOBS`],
/// [`IN_FLIGHT_SHARE`]).
struct InFlight {
    state: Mutex<InFlightState>,
    done: Condvar,
    limit: usize,
}

#[derive(Default)]
struct InFlightState {
    jobs: [usize; WORKERS],
    bytes: usize,
    /// The encoder threads that stopped taking jobs (ended or panicked): a job for one is
    /// never waited for (its send then fails).
    gone: [bool; WORKERS],
    /// An encoder thread failed (its sink or its encoder erred): the splitting thread
    /// stops at its next job instead of reading the rest of the upload for nothing.
    failed: bool,
    /// The splitting thread stopped because an encoder thread failed or was gone: the
    /// pass then reports that thread's error, not its own.
    split_stopped: bool,
}

impl InFlight {
    /// Waits until encoder `worker` may take a job holding `bytes`, then counts it.
    ///
    /// # Errors
    /// The [`ENCODER_GONE`] error, without counting the job, once an encoder thread failed.
    fn acquire(&self, worker: usize, bytes: usize) -> Result<()> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while !state.gone[worker]
            && !state.failed
            && state.jobs[worker] >= WORKER_JOBS
            && state.bytes + bytes > self.limit
        {
            state = self
                .done
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if state.failed {
            return Err(stop_split(&mut state));
        }
        state.jobs[worker] += 1;
        state.bytes += bytes;
        Ok(())
    }

    /// An encoder thread failed: the splitting thread stops at its next job.
    fn fail(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.failed = true;
        self.done.notify_all();
    }

    /// Whether the splitting thread stopped because of an encoder thread.
    fn split_stopped(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.split_stopped
    }

    /// Encoder `worker` is done with a job of `bytes`.
    fn release(&self, worker: usize, bytes: usize) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.jobs[worker] -= 1;
        state.bytes -= bytes;
        self.done.notify_all();
    }

    /// The splitting thread's error when a job could not be sent (its encoder thread is
    /// gone); marks it stopped by that thread.
    fn gone(&self) -> ConvertError {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        stop_split(&mut state)
    }
}

/// Marks the splitting thread stopped by an encoder thread; its error.
fn stop_split(state: &mut InFlightState) -> ConvertError {
    state.split_stopped = true;
    ConvertError::Parquet(ENCODER_GONE.into())
}

/// Marks an encoder thread gone when it leaves its job loop, however it leaves it.
struct Leaving<'a>(&'a InFlight, usize);

impl Drop for Leaving<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.gone[self.1] = true;
        self.0.done.notify_all();
    }
}

/// The splitting thread's error when an encoder thread is gone.
const ENCODER_GONE: &str = "an encoder thread stopped";

/// What the splitting thread asks of an encoder thread.
enum Job {
    /// Write these rows of partition `p` as row groups of its current file; the bytes they
    /// hold, as counted in [`InFlight`].
    Write(u32, Vec<RecordBatch>, usize),
    /// Close partition `p`'s current file.
    Close(u32),
    /// The input had no row: write one empty file as partition 0.
    Empty,
}

/// One partition's rows waiting in the splitting thread.
#[derive(Default)]
struct Part {
    /// Rows waiting, as compact batches.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// Rows spilled, in order, to be read back before `pending` when it is written.
    spilled: Vec<Spilled>,
    spilled_rows: usize,
}

/// Every partition's waiting rows and the budget, in the splitting thread; flushes go to
/// the encoder threads.
struct Parts<'a> {
    config: PartitionedConfig,
    parts: Vec<Part>,
    pending_bytes: usize,
    workers: Vec<Sender<Job>>,
    in_flight: &'a InFlight,
    /// The spill directory's runs, when there is one.
    spill: Option<Spill>,
}

impl Parts<'_> {
    /// Queues the rows of partition `p` (a compact batch).
    fn push(&mut self, p: usize, rows: RecordBatch) -> Result<()> {
        if self.parts.len() <= p {
            self.parts.resize_with(p + 1, Part::default);
        }
        let bytes = rows.get_array_memory_size();
        let part = &mut self.parts[p];
        part.pending_rows += rows.num_rows();
        part.pending_bytes += bytes;
        part.pending.push(rows);
        self.pending_bytes += bytes;
        if part.pending_rows + part.spilled_rows >= MAX_ROW_GROUP_ROWS {
            self.flush(p)?;
        }
        if self.pending_bytes > self.config.buffer_bytes {
            self.make_room()?;
        }
        Ok(())
    }

    /// Brings the waiting rows down to half the budget: the partitions holding the most
    /// bytes first (the first such on a tie), so that the partitions are sorted once per
    /// half budget of input, not once per row group, however many they are. Each is
    /// written out as a row group, or, holding fewer than [`SPILL_BELOW_ROWS`] rows, spilled
    /// (all of one spill in one run).
    fn make_room(&mut self) -> Result<()> {
        let mut order: Vec<usize> = (0..self.parts.len())
            .filter(|&i| self.parts[i].pending_bytes > 0)
            .collect();
        order.sort_by_key(|&i| (std::cmp::Reverse(self.parts[i].pending_bytes), i));
        let mut spilling: Vec<(usize, RecordBatch)> = Vec::new();
        for i in order {
            if self.pending_bytes <= self.config.buffer_bytes / 2 {
                break;
            }
            let part = &mut self.parts[i];
            if self.spill.is_none() || part.pending_rows + part.spilled_rows >= SPILL_BELOW_ROWS {
                self.flush(i)?;
                continue;
            }
            let rows = std::mem::take(&mut part.pending);
            let batch = arrow_select::concat::concat_batches(&rows[0].schema(), &rows)
                .map_err(|e| ConvertError::Parquet(e.to_string()))?;
            self.pending_bytes -= part.pending_bytes;
            part.spilled_rows += part.pending_rows;
            part.pending_bytes = 0;
            part.pending_rows = 0;
            spilling.push((i, batch));
        }
        if let (Some(spill), false) = (&mut self.spill, spilling.is_empty()) {
            let placed = spill.write(&spilling)?;
            for ((i, _), at) in spilling.into_iter().zip(placed) {
                self.parts[i].spilled.push(at);
            }
        }
        // Too many runs: the oldest one's partitions are written out, small or not, which
        // reads it back whole and removes it.
        while let Some(partitions) = self.spill.as_ref().and_then(Spill::over_limit) {
            for p in partitions {
                if !self.parts[p].spilled.is_empty() {
                    self.flush(p)?;
                }
            }
        }
        Ok(())
    }

    /// Hands partition `p`'s rows to its encoder thread: its spilled rows read back, then
    /// its waiting rows.
    fn flush(&mut self, p: usize) -> Result<()> {
        let part = &mut self.parts[p];
        if part.pending.is_empty() && part.spilled.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(part.spilled.len() + part.pending.len());
        for at in std::mem::take(&mut part.spilled) {
            let spill = self.spill.as_mut().ok_or_else(|| {
                ConvertError::Parquet("spilled rows without a spill directory".into())
            })?;
            rows.push(spill.read(at)?);
        }
        self.pending_bytes -= part.pending_bytes;
        part.pending_bytes = 0;
        part.pending_rows = 0;
        part.spilled_rows = 0;
        rows.append(&mut part.pending);
        let bytes = rows.iter().map(RecordBatch::get_array_memory_size).sum();
        self.send(p, Job::Write(p as u32, rows, bytes))
    }

    fn send(&self, p: usize, job: Job) -> Result<()> {
        let worker = p % WORKERS;
        let bytes = match &job {
            Job::Write(_, _, bytes) => *bytes,
            Job::Close(_) | Job::Empty => 0,
        };
        self.in_flight.acquire(worker, bytes)?;
        // A send fails only when the encoder thread is gone (it panicked: after an error
        // it still takes every job), which its join reports.
        self.workers[worker].send(job).map_err(|_| {
            self.in_flight.release(worker, bytes);
            self.in_flight.gone()
        })
    }
}

/// A file being written by an encoder thread.
struct OpenFile {
    writer: ArrowWriter<Vec<u8>>,
    bytes: u64,
    rows: u64,
    /// Estimated memory of its written row groups' metadata ([`metadata_bytes`]).
    metadata: usize,
}

/// The sink, shared by the encoder threads.
type SharedSink<'a> = Mutex<&'a mut dyn PartitionSink>;

/// An encoder thread's own partitions: the open file of each, the number of the next.
struct Encoder<'s, 'a> {
    arrow: SchemaRef,
    /// Set by the splitting thread before its first job ([`split_all`]).
    properties: &'s OnceLock<WriterProperties>,
    in_flight: &'s InFlight,
    /// This thread's index among the encoder threads.
    worker: usize,
    target_file_bytes: u64,
    sink: &'s SharedSink<'a>,
    open: HashMap<u32, OpenFile>,
    next_file: HashMap<u32, u32>,
    written: u64,
    /// Estimated metadata of the open files, bytes, and its ceiling (this thread's share of
    /// [`PartitionedConfig::buffer_bytes`]).
    metadata: usize,
    metadata_budget: usize,
}

impl Encoder<'_, '_> {
    fn append(&self, p: u32, bytes: &[u8]) -> Result<()> {
        let file = self.next_file.get(&p).copied().unwrap_or(0);
        let mut sink = self.sink.lock().unwrap_or_else(PoisonError::into_inner);
        sink.append(p, file, bytes).map_err(ConvertError::Io)
    }

    /// Writes `rows` as row groups of `p`'s current file, given to the sink at once;
    /// closes the file once it reaches the target size.
    fn write(&mut self, p: u32, rows: Vec<RecordBatch>) -> Result<()> {
        let file = match self.open.entry(p) {
            Entry::Occupied(file) => file.into_mut(),
            Entry::Vacant(slot) => {
                let properties = self.properties.get().cloned().ok_or_else(|| {
                    ConvertError::Parquet("a partition file before its settings".into())
                })?;
                let mut writer =
                    ArrowWriter::try_new(Vec::new(), self.arrow.clone(), Some(properties))
                        .map_err(unwrap_io)?;
                // Which file of which partition: two files of one upload never share a key,
                // even when they hold the same rows.
                let number = self.next_file.get(&p).copied().unwrap_or(0);
                writer.append_key_value_metadata(KeyValue::new(
                    FILE_KEY.to_owned(),
                    format!("{p}/{number}"),
                ));
                writer.append_key_value_metadata(KeyValue::new(
                    UPLOAD_KEY.to_owned(),
                    UPLOAD_PLACEHOLDER.to_owned(),
                ));
                self.metadata += OPEN_FILE_BYTES;
                slot.insert(OpenFile {
                    writer,
                    bytes: 0,
                    rows: 0,
                    metadata: OPEN_FILE_BYTES,
                })
            }
        };
        let groups_before = file.writer.flushed_row_groups().len();
        for batch in &rows {
            file.rows += batch.num_rows() as u64;
            file.writer.write(batch).map_err(unwrap_io)?;
        }
        file.writer.flush().map_err(unwrap_io)?;
        let added = metadata_bytes(&file.writer.flushed_row_groups()[groups_before..]);
        file.metadata += added;
        self.metadata += added;
        let bytes = std::mem::take(file.writer.inner_mut());
        file.bytes += bytes.len() as u64;
        let full = file.bytes >= self.target_file_bytes;
        self.append(p, &bytes)?;
        if full {
            self.close(p)?;
        }
        if self.metadata > self.metadata_budget {
            self.close_largest()?;
        }
        Ok(())
    }

    /// Closes the open files holding the most metadata (the lowest partition first on a
    /// tie) until what the rest hold is at most half the budget: the files are then closed
    /// once per half budget of row groups, not at every write.
    fn close_largest(&mut self) -> Result<()> {
        let mut order: Vec<(usize, u32)> =
            self.open.iter().map(|(p, f)| (f.metadata, *p)).collect();
        order.sort_by_key(|&(metadata, p)| (std::cmp::Reverse(metadata), p));
        for (_, p) in order {
            if self.metadata <= self.metadata_budget / 2 {
                break;
            }
            self.close(p)?;
        }
        Ok(())
    }

    /// Writes the footer of `p`'s current file and tells the sink it is complete.
    fn close(&mut self, p: u32) -> Result<()> {
        let Some(mut file) = self.open.remove(&p) else {
            return Ok(());
        };
        self.metadata -= file.metadata;
        // `finish` writes the footer into the buffer; `into_inner` would write it again.
        file.writer.finish().map_err(unwrap_io)?;
        let footer = std::mem::take(file.writer.inner_mut());
        file.bytes += footer.len() as u64;
        let number = self.next_file.get(&p).copied().unwrap_or(0);
        self.sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finish(p, number, &footer, file.bytes, file.rows)
            .map_err(ConvertError::Io)?;
        self.next_file.insert(p, number + 1);
        self.written += file.bytes;
        Ok(())
    }

    /// Runs the jobs until the splitting thread is done; the bytes written and the busy
    /// time. After an error the remaining jobs are drained unread, so the splitting thread
    /// never blocks on this one.
    fn run(mut self, jobs: Receiver<Job>) -> Result<(u64, Duration)> {
        let _leaving = Leaving(self.in_flight, self.worker);
        let mut busy = Duration::ZERO;
        let mut failed = None;
        for job in jobs {
            let bytes = match &job {
                Job::Write(_, _, bytes) => *bytes,
                Job::Close(_) | Job::Empty => 0,
            };
            if failed.is_none() {
                let started = Instant::now();
                let done = match job {
                    Job::Write(p, rows, _) => self.write(p, rows),
                    Job::Close(p) => self.close(p),
                    Job::Empty => self.write(0, Vec::new()).and_then(|()| self.close(0)),
                };
                busy += started.elapsed();
                failed = done.err();
                if failed.is_some() {
                    self.in_flight.fail();
                }
            }
            self.in_flight.release(self.worker, bytes);
        }
        match failed {
            Some(e) => Err(e),
            None => Ok((self.written, busy)),
        }
    }
}

/// The encoding stage of a partitioned pass 2: splits each batch of `batches` by partition
/// and writes every partition's files (module docs). A batch whose rows all fall in one
/// partition is kept as it is; otherwise each partition's rows are taken out of it, in
/// order. A file with no row is never written, except for an input with no row at all:
/// it gives one empty file, as partition 0 (which the partitioner never numbered).
/// Returns the bytes written over all files and the busy time (not waiting for batches).
///
/// # Errors
/// The partitioner's error, `Io` when the sink fails, `Parquet` when the encoder does.
pub(crate) fn partition_batches(
    arrow: &SchemaRef,
    partitioner: &mut dyn Partitioner,
    sink: &mut dyn PartitionSink,
    config: PartitionedConfig,
    batches: Receiver<RecordBatch>,
) -> Result<(u64, Duration)> {
    let sink: SharedSink<'_> = Mutex::new(sink);
    let properties = OnceLock::new();
    let in_flight = InFlight {
        state: Mutex::new(InFlightState::default()),
        done: Condvar::new(),
        limit: config.buffer_bytes / IN_FLIGHT_SHARE,
    };
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(WORKERS);
        let mut handles = Vec::with_capacity(WORKERS);
        for worker in 0..WORKERS {
            let (tx, rx) = channel::<Job>();
            let encoder = Encoder {
                arrow: arrow.clone(),
                properties: &properties,
                in_flight: &in_flight,
                worker,
                target_file_bytes: config.target_file_bytes,
                sink: &sink,
                open: HashMap::new(),
                next_file: HashMap::new(),
                written: 0,
                metadata: 0,
                metadata_budget: config.buffer_bytes / WORKERS,
            };
            handles.push(scope.spawn(move || encoder.run(rx)));
            senders.push(tx);
        }
        let spill = config
            .spill_dir
            .clone()
            .map(|dir| Spill::new(dir, arrow.clone()));
        let mut parts = Parts {
            config,
            parts: Vec::new(),
            pending_bytes: 0,
            workers: senders,
            in_flight: &in_flight,
            spill,
        };
        let split = split_all(arrow, partitioner, &mut parts, &properties, batches);
        drop(parts);
        let mut written = 0;
        let mut busy = Duration::ZERO;
        let mut failed = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok((bytes, time))) => {
                    written += bytes;
                    busy += time;
                }
                Ok(Err(e)) => failed = failed.or(Some(e)),
                Err(_) => {
                    failed = failed.or(Some(ConvertError::Parquet(
                        "an encoder thread panicked".into(),
                    )));
                }
            }
        }
        // The splitting thread's own error (the partitioner's) comes first, unless it
        // stopped because an encoder thread failed or was gone: then what that thread's
        // join said.
        match (split, failed) {
            (Ok(split_busy), None) => Ok((written, busy + split_busy)),
            (Err(_), Some(e)) if in_flight.split_stopped() => Err(e),
            (Err(e), _) | (Ok(_), Some(e)) => Err(e),
        }
    })
}

/// The splitting thread's part of [`partition_batches`]: gathers, assigns and splits the
/// batches, hands flushes to the encoder threads, then flushes and closes every partition.
/// Returns its busy time.
fn split_all(
    arrow: &SchemaRef,
    partitioner: &mut dyn Partitioner,
    parts: &mut Parts,
    properties: &OnceLock<WriterProperties>,
    batches: Receiver<RecordBatch>,
) -> Result<Duration> {
    let mut busy = Duration::ZERO;
    let mut chunk = Chunk::default();
    // The files' settings come from the first chunk, before any job needs them.
    let settle = |chunk: &Chunk| {
        properties.get_or_init(|| partition_writer_properties(arrow, &chunk.batches));
    };
    for batch in batches {
        let started = Instant::now();
        chunk.add(partitioner, batch)?;
        // A quarter of the budget at most, so wide rows do not make a large chunk.
        if chunk.rows >= CHUNK_ROWS || chunk.bytes >= parts.config.buffer_bytes / 4 {
            settle(&chunk);
            chunk.split(parts)?;
        }
        busy += started.elapsed();
    }
    let started = Instant::now();
    settle(&chunk);
    chunk.split(parts)?;
    for p in 0..parts.parts.len() {
        parts.flush(p)?;
        parts.send(p, Job::Close(p as u32))?;
    }
    if parts.parts.is_empty() {
        parts.send(0, Job::Empty)?;
    }
    busy += started.elapsed();
    Ok(busy)
}

/// Rows gathered before they are split by partition: a partition's rows of many batches are
/// taken out together, so that the waiting batches and the writes are few and large even
/// when partitions are many (a take per partition per 8,192-row batch costs more than the
/// rows it moves). A chunk is also split once it holds a quarter of the memory budget.
const CHUNK_ROWS: usize = 131_072;

/// The batches of the chunk being gathered, and the partition of each of their rows.
#[derive(Default)]
struct Chunk {
    batches: Vec<RecordBatch>,
    /// The first `order.len()` lists, one per entry of `order`: that partition's rows as
    /// (batch, row) pairs, in file order. Any further lists are spares kept from earlier
    /// chunks; a list is cleared when a partition takes it, so that a chunk's lists grow
    /// into memory already allocated.
    rows_of: Vec<Vec<(usize, usize)>>,
    /// The partitions present, in order of first appearance in the chunk.
    order: Vec<u32>,
    /// Partition index to its place in `rows_of`, `u32::MAX` when absent.
    slot: Vec<u32>,
    rows: usize,
    /// Memory of `batches`, bytes.
    bytes: usize,
    assigned: Vec<u32>,
    /// Partitions numbered so far, over the whole input: the next new index.
    partitions: u32,
}

impl Chunk {
    /// Assigns `batch`'s rows and adds it to the chunk.
    ///
    /// # Errors
    /// The partitioner's; [`ConvertError::Parquet`] when it broke its contract (not one
    /// partition per row, or an index past the next new one).
    fn add(&mut self, partitioner: &mut dyn Partitioner, batch: RecordBatch) -> Result<()> {
        partitioner.assign(&batch, &mut self.assigned)?;
        if self.assigned.len() != batch.num_rows() {
            return Err(ConvertError::Parquet(format!(
                "the partitioner placed {} rows of a batch of {}",
                self.assigned.len(),
                batch.num_rows()
            )));
        }
        let b = self.batches.len();
        for (row, &p) in self.assigned.iter().enumerate() {
            if p > self.partitions {
                return Err(ConvertError::Parquet(format!(
                    "the partitioner skipped from {} partitions to index {p}",
                    self.partitions
                )));
            }
            self.partitions = self.partitions.max(p.saturating_add(1));
            let p_index = p as usize;
            if self.slot.len() <= p_index {
                self.slot.resize(p_index + 1, u32::MAX);
            }
            if self.slot[p_index] == u32::MAX {
                self.slot[p_index] = self.order.len() as u32;
                self.order.push(p);
                match self.rows_of.get_mut(self.order.len() - 1) {
                    Some(rows) => rows.clear(),
                    None => self.rows_of.push(Vec::new()),
                }
            }
            self.rows_of[self.slot[p_index] as usize].push((b, row));
        }
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        self.batches.push(batch);
        Ok(())
    }

    /// Queues each partition's rows of the chunk (a whole batch as it is when the chunk is
    /// one batch of one partition), and starts the next chunk.
    fn split(&mut self, parts: &mut Parts) -> Result<()> {
        let batches = std::mem::take(&mut self.batches);
        let order = std::mem::take(&mut self.order);
        for p in &order {
            self.slot[*p as usize] = u32::MAX;
        }
        self.rows = 0;
        self.bytes = 0;
        if let ([batch], [p]) = (batches.as_slice(), order.as_slice()) {
            return parts.push(*p as usize, batch.clone());
        }
        let sources: Vec<&RecordBatch> = batches.iter().collect();
        for (p, rows) in order.into_iter().zip(&self.rows_of) {
            let taken = arrow_select::interleave::interleave_record_batch(&sources, rows)
                .map_err(|e| ConvertError::Parquet(e.to_string()))?;
            parts.push(p as usize, taken)?;
        }
        // What the lists keep for the next chunk stays under two chunks of rows (4 MiB),
        // however the rows fell in this one.
        let mut kept = 0;
        for rows in &mut self.rows_of {
            if kept + rows.capacity() > 2 * CHUNK_ROWS {
                *rows = Vec::new();
            } else {
                kept += rows.capacity();
            }
        }
        Ok(())
    }
}
