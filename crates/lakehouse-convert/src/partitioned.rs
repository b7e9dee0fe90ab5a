//! Pass 2 for a partitioned dataset (docs/contract.md section 10, "Partitioned datasets"): the
//! record batches are split by partition, and each partition's rows go to Parquet files of
//! their own, in file order, with memory bounded by [`PartitionedConfig::buffer_bytes`]
//! whatever the number of partitions.
//!
//! How: each partition's rows wait in memory as compact record batches (a `take` of its
//! rows of each batch). A partition is flushed, as one row group of its current file, when
//! it holds [`MAX_ROW_GROUP_ROWS`] rows, and the partitions holding the most bytes are
//! flushed when all of them together hold more than the budget. A flushed row group goes to
//! the [`PartitionSink`] at once, so only one partition's encoder is ever alive. A file is
//! closed (its footer written) once it reaches [`PartitionedConfig::target_file_bytes`], and
//! the partition's next rows start a new one; every file is closed at the end.
//!
//! Every decision depends only on the rows, their order and the configuration, never on
//! timing: the same input and configuration give the same files, byte for byte.

use crate::MAX_ROW_GROUP_ROWS;
use crate::encode::unwrap_io;
use crate::error::{ConvertError, Result};
use arrow_array::{RecordBatch, UInt32Array};
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use std::io;
use std::sync::mpsc::Receiver;
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

    /// File `file` of `partition` is complete: `size` bytes, `rows` rows.
    ///
    /// # Errors
    /// The sink's I/O error; the pass stops with it.
    fn finish(&mut self, partition: u32, file: u32, size: u64, rows: u64) -> io::Result<()>;
}

/// How a partitioned pass 2 bounds its memory and its files.
#[derive(Debug, Clone, Copy)]
pub struct PartitionedConfig {
    /// Bytes of rows waiting in memory, over all partitions, before the largest are
    /// flushed (the encoder's own row group and the batches in flight come on top).
    pub buffer_bytes: usize,
    /// A file is closed once it holds this many bytes; the partition's next rows go to a
    /// new one (docs/contract.md section 10: `target_file_bytes`).
    pub target_file_bytes: u64,
}

/// One partition's state.
#[derive(Default)]
struct Part {
    /// Rows waiting, as compact batches.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// The file being written, after its first row group.
    writer: Option<ArrowWriter<Vec<u8>>>,
    /// Its number among the partition's files.
    file: u32,
    /// Bytes and rows given to the sink for it so far.
    file_bytes: u64,
    file_rows: u64,
}

/// Every partition's state and the budget.
struct Parts<'a> {
    arrow: SchemaRef,
    properties: WriterProperties,
    config: PartitionedConfig,
    sink: &'a mut dyn PartitionSink,
    parts: Vec<Part>,
    pending_bytes: usize,
    written: u64,
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
        if part.pending_rows >= MAX_ROW_GROUP_ROWS {
            self.flush(p)?;
        }
        while self.pending_bytes > self.config.buffer_bytes {
            // The partition holding the most bytes, the first such on a tie.
            let largest = (0..self.parts.len())
                .max_by_key(|&i| (self.parts[i].pending_bytes, std::cmp::Reverse(i)))
                .unwrap_or(p);
            if self.parts[largest].pending_bytes == 0 {
                break;
            }
            self.flush(largest)?;
        }
        Ok(())
    }

    /// Writes partition `p`'s waiting rows as row groups of its current file and gives
    /// them to the sink; closes the file once it reaches the target size.
    fn flush(&mut self, p: usize) -> Result<()> {
        let part = &mut self.parts[p];
        if part.pending.is_empty() {
            return Ok(());
        }
        let writer = match &mut part.writer {
            Some(writer) => writer,
            None => part.writer.insert(
                ArrowWriter::try_new(
                    Vec::new(),
                    self.arrow.clone(),
                    Some(self.properties.clone()),
                )
                .map_err(unwrap_io)?,
            ),
        };
        for batch in part.pending.drain(..) {
            part.file_rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(unwrap_io)?;
        }
        writer.flush().map_err(unwrap_io)?;
        self.pending_bytes -= part.pending_bytes;
        part.pending_bytes = 0;
        part.pending_rows = 0;
        let bytes = std::mem::take(writer.inner_mut());
        part.file_bytes += bytes.len() as u64;
        self.sink
            .append(p as u32, part.file, &bytes)
            .map_err(ConvertError::Io)?;
        if part.file_bytes >= self.config.target_file_bytes {
            self.close(p)?;
        }
        Ok(())
    }

    /// Writes the footer of partition `p`'s current file and tells the sink it is complete.
    fn close(&mut self, p: usize) -> Result<()> {
        let part = &mut self.parts[p];
        let Some(mut writer) = part.writer.take() else {
            return Ok(());
        };
        // `finish` writes the footer into the buffer; `into_inner` would write it again.
        writer.finish().map_err(unwrap_io)?;
        let footer = std::mem::take(writer.inner_mut());
        part.file_bytes += footer.len() as u64;
        self.sink
            .append(p as u32, part.file, &footer)
            .map_err(ConvertError::Io)?;
        self.sink
            .finish(p as u32, part.file, part.file_bytes, part.file_rows)
            .map_err(ConvertError::Io)?;
        self.written += part.file_bytes;
        part.file += 1;
        part.file_bytes = 0;
        part.file_rows = 0;
        Ok(())
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
    properties: WriterProperties,
    partitioner: &mut dyn Partitioner,
    sink: &mut dyn PartitionSink,
    config: PartitionedConfig,
    batches: Receiver<RecordBatch>,
) -> Result<(u64, Duration)> {
    let mut parts = Parts {
        arrow: arrow.clone(),
        properties,
        config,
        sink,
        parts: Vec::new(),
        pending_bytes: 0,
        written: 0,
    };
    let mut busy = Duration::ZERO;
    let mut assigned: Vec<u32> = Vec::new();
    for batch in batches {
        let started = Instant::now();
        partitioner.assign(&batch, &mut assigned)?;
        split(&mut parts, batch, &assigned)?;
        busy += started.elapsed();
    }
    let started = Instant::now();
    for p in 0..parts.parts.len() {
        parts.flush(p)?;
        parts.close(p)?;
    }
    if parts.parts.is_empty() {
        // No row: one empty file, as partition 0, so the upload still makes a version.
        parts.parts.push(Part {
            writer: Some(
                ArrowWriter::try_new(Vec::new(), arrow.clone(), Some(parts.properties.clone()))
                    .map_err(unwrap_io)?,
            ),
            ..Part::default()
        });
        parts.close(0)?;
    }
    busy += started.elapsed();
    Ok((parts.written, busy))
}

/// Queues each partition's rows of `batch` (`assigned`: the partition of each row).
fn split(parts: &mut Parts<'_>, batch: RecordBatch, assigned: &[u32]) -> Result<()> {
    let Some(&first) = assigned.first() else {
        return Ok(());
    };
    if assigned.iter().all(|&p| p == first) {
        return parts.push(first as usize, batch);
    }
    // A stable counting sort of the row indexes by partition, then one `take` per
    // partition present, in order of first appearance in the batch.
    let mut order: Vec<u32> = Vec::new();
    let mut count: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    for &p in assigned {
        let n = count.entry(p).or_insert(0);
        if *n == 0 {
            order.push(p);
        }
        *n += 1;
    }
    let mut rows: std::collections::HashMap<u32, Vec<u32>> = order
        .iter()
        .map(|p| (*p, Vec::with_capacity(count[p])))
        .collect();
    for (row, p) in assigned.iter().enumerate() {
        if let Some(indexes) = rows.get_mut(p) {
            indexes.push(row as u32);
        }
    }
    for p in order {
        let indexes = UInt32Array::from(rows.remove(&p).unwrap_or_default());
        let taken = arrow_select::take::take_record_batch(&batch, &indexes)
            .map_err(|e| ConvertError::Parquet(e.to_string()))?;
        parts.push(p as usize, taken)?;
    }
    Ok(())
}
