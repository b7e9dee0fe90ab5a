//! Compaction's data side (docs/contract.md section 10): Parquet files in, the same rows in
//! the same order out, in files of about `target_file_bytes`, with the writer settings of
//! every ingest (docs/contract.md section 5). Synchronous and pure: the inputs are read through a
//! [`RangeRead`] (ingestd's is storaged's range GET), one row group at a time, and the
//! outputs go to a [`CompactSink`] (ingestd's streams them to storaged's content-addressed
//! POST), so memory holds one input row group and one output row group, never a file.
//!
//! The bytes written are a pure function of the input files' bytes, their order, the target
//! schema and `target_file_bytes`: a retry or a racing replica makes the same files, hence
//! the same keys.

use crate::MAX_ROW_GROUP_ROWS;
use crate::copy::{Output, filtered};
use crate::encode::{CountingWriter, unwrap_io};
use crate::error::{ConvertError, Result};
use crate::write::arrow_schema;
use arrow_array::{ArrayRef, RecordBatch, new_null_array};
use arrow_schema::SchemaRef;
use bytes::Bytes;
use lakehouse_api::Schema;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};
use std::io::{self, Write};
use std::sync::Arc;

/// Bytes of an input's tail read first for its footer (a larger footer costs one more read).
const FOOTER_PREFETCH_BYTES: u64 = 64 * 1024;

/// Random access to the bytes of one input file (a stored Parquet object). Called from the
/// compaction's blocking thread; an implementation may block on I/O.
pub trait RangeRead: Send + Sync + 'static {
    /// The file's size, bytes.
    fn size(&self) -> u64;
    /// Bytes `start..start + length` (`start + length <= size()`).
    ///
    /// # Errors
    /// The I/O error of the read.
    fn read_range(&self, start: u64, length: u64) -> io::Result<Bytes>;
}

/// Where the output files go: [`CompactSink::open`] gives a writer for the next file, and
/// [`CompactSink::close`] takes it back once that file is complete.
pub trait CompactSink {
    /// The writer of one output file.
    type Writer: Write + Send;
    /// A writer for the next output file.
    ///
    /// # Errors
    /// The sink's I/O error.
    fn open(&mut self) -> io::Result<Self::Writer>;
    /// The output file written to `writer` is complete (`size_bytes`, `row_count`).
    ///
    /// # Errors
    /// The sink's I/O error (the compaction stops with it).
    fn close(&mut self, writer: Self::Writer, size_bytes: u64, row_count: u64) -> io::Result<()>;
    /// The output is not wanted (a verified pass's guess was refused, docs/contract.md
    /// section 13): the writer of the file being written is dropped after this call and no
    /// more files are opened or closed, so the sink may discard what it holds now. Called at
    /// most once, from the encoding thread. The default does nothing.
    fn abandon(&mut self) {}
}

/// What [`compact`] read and wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Rows read (and written).
    pub rows: u64,
    /// Output files written.
    pub files: u64,
    /// Bytes written, all output files together.
    pub bytes_written: u64,
}

/// Rewrites `inputs` (Parquet files of a dataset, in row order) as Parquet files with
/// `schema`, the same rows in the same order, into `sink`. An output file is closed, ending
/// its last row group, as soon as its bytes written plus the encoder's estimate of the row
/// group in progress (before compression) reach `target_file_bytes`: files end at row-group
/// boundaries, hold about the target before compression (less after it), and the last one
/// is smaller.
///
/// A full row group ([`MAX_ROW_GROUP_ROWS`] rows) of an input of `schema` is copied as its
/// encoded column chunks, page index included, without decoding: it is what encoding its
/// rows again would end at the same place, and the files earlier compactions made are mostly
/// such row groups, so compacting them again costs their bytes, not their rows. The other
/// row groups are decoded and their rows encoded into row groups of up to that many rows,
/// each ended before a copied one (docs/contract.md section 10).
///
/// Inputs of an older schema of the dataset (schema evolution adds columns at the end,
/// docs/contract.md section 3) are read by position, and the columns they lack are written as
/// nulls, which is what readers of those files already see.
///
/// # Errors
/// [`ConvertError::Parquet`] for an input that is no Parquet file of `schema` or a prefix
/// of it (naming its position in `inputs`), or when encoding fails; [`ConvertError::Io`]
/// when an input's read or the sink fails.
pub fn compact<S: CompactSink>(
    schema: &Schema,
    inputs: &[Arc<dyn RangeRead>],
    target_file_bytes: u64,
    sink: &mut S,
) -> Result<CompactStats> {
    copy_rows(schema, inputs, target_file_bytes, sink)
}

fn copy_rows<S: CompactSink>(
    schema: &Schema,
    inputs: &[Arc<dyn RangeRead>],
    target_file_bytes: u64,
    sink: &mut S,
) -> Result<CompactStats> {
    let arrow = arrow_schema(schema);
    let mut stats = CompactStats::default();
    let mut output: Option<Output<S::Writer>> = None;
    for (position, input) in inputs.iter().enumerate() {
        let metadata = reader_metadata(input, position)?;
        // Its columns must be the schema's or a prefix of them, whatever is copied.
        conform(&arrow, RecordBatch::new_empty(metadata.schema().clone()))
            .map_err(|reason| ConvertError::Parquet(format!("input {position}: {reason}")))?;
        let same_schema = metadata.schema().fields().len() == arrow.fields().len();
        for row_group in 0..metadata.metadata().num_row_groups() {
            let rows = metadata.metadata().row_group(row_group).num_rows();
            let window = row_group_window(input, &metadata, row_group)
                .map_err(|e| input_error(position, e))?;
            let out = match output.as_mut() {
                Some(out) => out,
                None => output.insert(Output::open(sink, &arrow)?),
            };
            if same_schema && usize::try_from(rows).is_ok_and(|n| n >= MAX_ROW_GROUP_ROWS) {
                // A full row group is what encoding its rows again would end: copied as
                // it is, without decoding (the compacted files of earlier runs are mostly
                // such row groups).
                out.copy_row_group(&window, &metadata, row_group)?;
                if out.bytes() >= target_file_bytes
                    && let Some(full) = output.take()
                {
                    full.close(sink, &mut stats)?;
                }
                continue;
            }
            for batch in filtered(&arrow, window, &metadata, row_group, position) {
                let (batch, _) = batch?;
                let out = match output.as_mut() {
                    Some(out) => out,
                    None => output.insert(Output::open(sink, &arrow)?),
                };
                out.write_batch(&batch)?;
                if out.bytes() >= target_file_bytes
                    && let Some(full) = output.take()
                {
                    full.close(sink, &mut stats)?;
                }
            }
        }
    }
    match output {
        Some(last) => last.close(sink, &mut stats)?,
        // Inputs without rows still give one (empty) file: a version names at least one
        // object.
        None if stats.files == 0 => Output::open(sink, &arrow)?.close(sink, &mut stats)?,
        None => {}
    }
    Ok(stats)
}

/// Hands a finished output file (`counted`, `rows` rows) to `sink` and counts it.
///
/// # Errors
/// The write error `counted` kept, or the sink's.
pub(crate) fn hand_over<W: Write + Send, S: CompactSink<Writer = W>>(
    mut counted: CountingWriter<W>,
    rows: u64,
    sink: &mut S,
    stats: &mut CompactStats,
) -> Result<()> {
    if let Some(error) = counted.take_error() {
        return Err(ConvertError::Io(error));
    }
    let size = counted.bytes();
    sink.close(counted.into_inner(), size, rows)
        .map_err(ConvertError::Io)?;
    stats.files += 1;
    stats.rows += rows;
    stats.bytes_written += size;
    Ok(())
}

pub(crate) fn input_error(position: usize, error: ParquetError) -> ConvertError {
    match unwrap_io(error) {
        ConvertError::Parquet(reason) => {
            ConvertError::Parquet(format!("input {position}: {reason}"))
        }
        other => other,
    }
}

/// `batch` as a batch of `arrow`: its columns by position, then nulls for the columns it
/// lacks (an input written before columns were added).
///
/// # Errors
/// A description of the mismatch when its columns are not a prefix of `arrow`'s, by name
/// and type.
pub(crate) fn conform(
    arrow: &SchemaRef,
    batch: RecordBatch,
) -> std::result::Result<RecordBatch, String> {
    let fields = arrow.fields();
    let have = batch.schema();
    if have.fields().len() > fields.len() {
        return Err(format!(
            "{} columns, more than the {} of the dataset's schema",
            have.fields().len(),
            fields.len()
        ));
    }
    for (theirs, ours) in have.fields().iter().zip(fields.iter()) {
        if theirs.name() != ours.name() || theirs.data_type() != ours.data_type() {
            return Err(format!(
                "column {:?} ({}) where the dataset's schema has {:?} ({})",
                theirs.name(),
                theirs.data_type(),
                ours.name(),
                ours.data_type()
            ));
        }
    }
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    columns.extend(
        fields[columns.len()..]
            .iter()
            .map(|field| new_null_array(field.data_type(), rows)),
    );
    RecordBatch::try_new(arrow.clone(), columns).map_err(|e| e.to_string())
}

/// The footer of input `position` of several, decoded for the Arrow reader.
///
/// # Errors
/// [`ConvertError::Parquet`] naming the input for a file that is no Parquet file;
/// [`ConvertError::Io`] from the read.
pub(crate) fn reader_metadata(
    input: &Arc<dyn RangeRead>,
    position: usize,
) -> Result<ArrowReaderMetadata> {
    let metadata = read_footer(input).map_err(|e| input_error(position, e))?;
    ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())
        .map_err(|e| input_error(position, e))
}

/// The footer of `input`, from one read of its tail (two when the footer is larger).
pub(crate) fn read_footer(
    input: &Arc<dyn RangeRead>,
) -> std::result::Result<ParquetMetaData, ParquetError> {
    let size = input.size();
    let start = size.saturating_sub(FOOTER_PREFETCH_BYTES);
    let tail = input.read_range(start, size - start)?;
    let window = Window {
        input: Arc::clone(input),
        start,
        bytes: tail,
    };
    // The page index too, when the file has one: a row group copied as it is keeps it.
    ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .parse_and_finish(&window)
}

/// The bytes of row group `index` of `input` (its column chunks, one read).
pub(crate) fn row_group_window(
    input: &Arc<dyn RangeRead>,
    metadata: &ArrowReaderMetadata,
    index: usize,
) -> std::result::Result<Window, ParquetError> {
    let row_group = metadata.metadata().row_group(index);
    let mut start = u64::MAX;
    let mut end = 0u64;
    for column in row_group.columns() {
        let (offset, length) = column.byte_range();
        start = start.min(offset);
        end = end.max(offset.saturating_add(length));
    }
    Window::read(input, start, end)
        .map_err(|e| ParquetError::General(format!("row group {index}: {e}")))
}

/// A [`ChunkReader`] over an input that holds `bytes` (the file's bytes from `start`) in
/// memory and serves reads inside them from there; a read outside goes to the input.
pub(crate) struct Window {
    input: Arc<dyn RangeRead>,
    start: u64,
    bytes: Bytes,
}

impl Window {
    /// A window over bytes `start..end` of `input`, read now (an empty one when
    /// `start >= end`).
    ///
    /// # Errors
    /// A range past the end of the file; the read's I/O error.
    pub(crate) fn read(
        input: &Arc<dyn RangeRead>,
        start: u64,
        end: u64,
    ) -> std::result::Result<Window, ParquetError> {
        if start >= end {
            return Ok(Window {
                input: Arc::clone(input),
                start: 0,
                bytes: Bytes::new(),
            });
        }
        if end > input.size() {
            return Err(ParquetError::General(format!(
                "bytes {start}..{end} are past the file's {} bytes",
                input.size()
            )));
        }
        Ok(Window {
            input: Arc::clone(input),
            start,
            bytes: input.read_range(start, end - start)?,
        })
    }

    fn slice(&self, start: u64, length: u64) -> io::Result<Bytes> {
        let end = start.saturating_add(length);
        let held = self.start..self.start + self.bytes.len() as u64;
        if start >= held.start && end <= held.end {
            let from = usize::try_from(start - held.start).map_err(io::Error::other)?;
            let to = usize::try_from(end - held.start).map_err(io::Error::other)?;
            return Ok(self.bytes.slice(from..to));
        }
        if end > self.input.size() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("bytes {start}..{end} are past the end of the file"),
            ));
        }
        self.input.read_range(start, length)
    }
}

impl Length for Window {
    fn len(&self) -> u64 {
        self.input.size()
    }
}

impl ChunkReader for Window {
    type T = bytes::buf::Reader<Bytes>;

    /// A reader from `start` to the end of the window (or of the file's next MiB, outside
    /// it): page headers are read this way, then the page through [`Self::get_bytes`].
    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        use bytes::Buf;
        let held_end = self.start + self.bytes.len() as u64;
        let end = if start >= self.start && start < held_end {
            held_end
        } else {
            self.input.size().min(start.saturating_add(1 << 20))
        };
        Ok(self.slice(start, end.saturating_sub(start))?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        Ok(self.slice(start, length as u64)?)
    }
}
