//! The copy-on-write of a merge or delete by key (docs/contract.md section 11): files
//! rewritten without some rows, at the cost of the row groups that lose rows. A row group
//! that keeps all its rows (and is already of the target schema) is copied as its encoded
//! column chunks, byte for byte, without decoding; only a row group that loses rows is
//! decoded, filtered and encoded again, with the writer settings of every ingest
//! (docs/contract.md section 5). Outputs are cut at `target_file_bytes` like a compaction's.

use crate::compact::{
    CompactSink, CompactStats, RangeRead, Window, conform, hand_over, input_error, reader_metadata,
    row_group_window,
};
use crate::encode::{CountingWriter, unwrap_io};
use crate::error::{ConvertError, Result};
use crate::write::{arrow_schema, writer_properties};
use crate::{BATCH_ROWS, MAX_ROW_GROUP_ROWS};
use arrow_array::{BooleanArray, RecordBatch};
use arrow_schema::SchemaRef;
use lakehouse_api::Schema;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::writer::SerializedFileWriter;
use std::sync::Arc;

/// Rewrites `inputs` (files of a dataset) with `schema` without the rows `removed[i]` lists
/// for input `i` (0-based row numbers within that file, ascending), into `sink`: rows keep
/// their order, row groups their boundaries (a row group left without rows is dropped), and
/// files are cut at the first row-group boundary at or past `target_file_bytes`. When no
/// row is left, no file is written.
///
/// # Errors
/// [`ConvertError::Parquet`] for an input that is no Parquet file of `schema` or a prefix
/// of it, or when encoding fails; [`ConvertError::Io`] when a read or the sink fails.
pub fn rewrite_without<S: CompactSink>(
    schema: &Schema,
    inputs: &[Arc<dyn RangeRead>],
    removed: &[Vec<u64>],
    target_file_bytes: u64,
    sink: &mut S,
) -> Result<CompactStats> {
    let arrow = arrow_schema(schema);
    let mut stats = CompactStats::default();
    let mut output: Option<Output<S::Writer>> = None;
    for (position, input) in inputs.iter().enumerate() {
        let metadata = reader_metadata(input, position)?;
        // Chunks of an older schema (fewer columns) are decoded and padded, never copied.
        let same_schema = metadata.schema().fields().len() == arrow.fields().len();
        let gone: &[u64] = removed.get(position).map_or(&[], Vec::as_slice);
        let mut first_row = 0u64;
        for row_group in 0..metadata.metadata().num_row_groups() {
            let rows = metadata.metadata().row_group(row_group).num_rows() as u64;
            let from = gone.partition_point(|&row| row < first_row);
            let to = gone.partition_point(|&row| row < first_row + rows);
            if to - from == rows as usize {
                first_row += rows;
                continue;
            }
            let window = row_group_window(input, &metadata, row_group)
                .map_err(|e| input_error(position, e))?;
            let out = match output.as_mut() {
                Some(out) => out,
                None => output.insert(Output::open(sink, &arrow)?),
            };
            if from == to && same_schema {
                out.copy_row_group(&window, &metadata, row_group)?;
            } else {
                let batches = filtered(&arrow, window, &metadata, row_group, position)
                    .map(|batch| batch.and_then(|b| without(b, first_row, &gone[from..to])));
                out.encode_row_group(batches)?;
            }
            first_row += rows;
            if out.bytes() >= target_file_bytes
                && let Some(full) = output.take()
            {
                full.close(sink, &mut stats)?;
            }
        }
    }
    if let Some(last) = output {
        last.close(sink, &mut stats)?;
    }
    Ok(stats)
}

/// The batches of one row group, conformed to `arrow`, each with its first row's number
/// within the row group.
pub(crate) fn filtered(
    arrow: &SchemaRef,
    window: Window,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    position: usize,
) -> impl Iterator<Item = Result<(RecordBatch, u64)>> {
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(window, metadata.clone())
        .with_row_groups(vec![row_group])
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| input_error(position, e));
    let arrow = arrow.clone();
    let mut offset = 0u64;
    let batches: Box<dyn Iterator<Item = Result<(RecordBatch, u64)>>> = match reader {
        Err(error) => Box::new(std::iter::once(Err(error))),
        Ok(reader) => Box::new(reader.map(move |batch| {
            let batch =
                batch.map_err(|e| ConvertError::Parquet(format!("input {position}: {e}")))?;
            let batch = conform(&arrow, batch)
                .map_err(|r| ConvertError::Parquet(format!("input {position}: {r}")))?;
            let at = offset;
            offset += batch.num_rows() as u64;
            Ok((batch, at))
        })),
    };
    batches
}

/// `batch` (rows `first_row + at..` of its file) without the rows of `gone` (ascending,
/// within the row group's rows).
fn without((batch, at): (RecordBatch, u64), first_row: u64, gone: &[u64]) -> Result<RecordBatch> {
    let start = first_row + at;
    let end = start + batch.num_rows() as u64;
    let from = gone.partition_point(|&row| row < start);
    let to = gone.partition_point(|&row| row < end);
    if from == to {
        return Ok(batch);
    }
    let mut keep = vec![true; batch.num_rows()];
    for &row in &gone[from..to] {
        keep[(row - start) as usize] = false;
    }
    arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(keep))
        .map_err(|e| ConvertError::Parquet(e.to_string()))
}

/// One output file: the writer of every ingest's settings, fed row group by row group,
/// each either copied as it is ([`Output::copy_row_group`]) or encoded from batches
/// ([`Output::write_batch`], cut at [`MAX_ROW_GROUP_ROWS`] rows like every ingest's).
pub(crate) struct Output<W: std::io::Write + Send> {
    writer: SerializedFileWriter<CountingWriter<W>>,
    factory: ArrowRowGroupWriterFactory,
    arrow: SchemaRef,
    row_groups: usize,
    rows: u64,
    /// The row group being encoded: one writer per leaf column, and its rows so far.
    pending: Option<(Vec<ArrowColumnWriter>, usize)>,
}

impl<W: std::io::Write + Send> Output<W> {
    /// A new output file from `sink`, with `arrow` as its schema.
    ///
    /// # Errors
    /// The sink's I/O error; [`ConvertError::Parquet`] from the writer.
    pub(crate) fn open<S: CompactSink<Writer = W>>(
        sink: &mut S,
        arrow: &SchemaRef,
    ) -> Result<Self> {
        let out = CountingWriter::new(sink.open().map_err(ConvertError::Io)?);
        // An ArrowWriter's file writer: the same properties and Arrow schema in the footer.
        let (writer, factory) = ArrowWriter::try_new(out, arrow.clone(), Some(writer_properties()))
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(unwrap_io)?;
        Ok(Output {
            writer,
            factory,
            arrow: arrow.clone(),
            row_groups: 0,
            rows: 0,
            pending: None,
        })
    }

    /// Bytes written so far, plus the encoder's estimate of the row group in progress
    /// (before compression).
    pub(crate) fn bytes(&self) -> u64 {
        let pending: usize = self.pending.as_ref().map_or(0, |(writers, _)| {
            writers
                .iter()
                .map(ArrowColumnWriter::get_estimated_total_bytes)
                .sum()
        });
        self.writer.bytes_written() as u64 + pending as u64
    }

    /// Row group `index` of the input held by `window`, its column chunks copied as they are.
    /// Its page index goes with it when the input has one. The row group in progress, if
    /// any, is ended first: rows keep their order.
    ///
    /// # Errors
    /// [`ConvertError::Parquet`] / [`ConvertError::Io`] from the writer or the read.
    pub(crate) fn copy_row_group(
        &mut self,
        window: &Window,
        metadata: &ArrowReaderMetadata,
        index: usize,
    ) -> Result<()> {
        self.flush()?;
        let group = metadata.metadata().row_group(index);
        let page_index = metadata.metadata().page_index_for_row_group(index);
        let mut row_group = self.writer.next_row_group().map_err(unwrap_io)?;
        for (i, column) in group.columns().iter().enumerate() {
            let close = ColumnCloseResult {
                bytes_written: column.compressed_size() as u64,
                rows_written: group.num_rows() as u64,
                metadata: column.clone(),
                bloom_filter: None,
                column_index: page_index.column_index(i).cloned(),
                offset_index: page_index.offset_index(i).cloned(),
            };
            row_group.append_column(window, close).map_err(unwrap_io)?;
        }
        row_group.close().map_err(unwrap_io)?;
        self.row_groups += 1;
        self.rows += group.num_rows() as u64;
        Ok(())
    }

    /// The rows of `batches` encoded as row groups of their own (none when they hold no
    /// row): the row group in progress, if any, is ended first and these rows' last.
    ///
    /// # Errors
    /// The first error of `batches`; [`ConvertError::Parquet`] from the encoder.
    fn encode_row_group(
        &mut self,
        batches: impl Iterator<Item = Result<RecordBatch>>,
    ) -> Result<()> {
        self.flush()?;
        for batch in batches {
            self.write_batch(&batch?)?;
        }
        self.flush()
    }

    /// `batch` added to the row group in progress (one is started when none is), which
    /// ends each time it reaches [`MAX_ROW_GROUP_ROWS`] rows.
    ///
    /// # Errors
    /// [`ConvertError::Parquet`] from the encoder.
    pub(crate) fn write_batch(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let (writers, rows) = match self.pending.as_mut() {
                Some(pending) => pending,
                None => self.pending.insert((
                    self.factory
                        .create_column_writers(self.row_groups)
                        .map_err(unwrap_io)?,
                    0,
                )),
            };
            let take = (MAX_ROW_GROUP_ROWS - *rows).min(batch.num_rows() - offset);
            let slice = batch.slice(offset, take);
            let mut writer = writers.iter_mut();
            for (field, column) in self.arrow.fields().iter().zip(slice.columns()) {
                for leaf in compute_leaves(field, column).map_err(unwrap_io)? {
                    let Some(writer) = writer.next() else {
                        return Err(ConvertError::Parquet("more leaves than columns".into()));
                    };
                    writer.write(&leaf).map_err(unwrap_io)?;
                }
            }
            *rows += take;
            offset += take;
            if *rows >= MAX_ROW_GROUP_ROWS {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Ends the row group in progress, if any.
    ///
    /// # Errors
    /// [`ConvertError::Parquet`] / [`ConvertError::Io`] from the writer.
    pub(crate) fn flush(&mut self) -> Result<()> {
        let Some((writers, rows)) = self.pending.take() else {
            return Ok(());
        };
        if rows == 0 {
            return Ok(());
        }
        let mut row_group = self.writer.next_row_group().map_err(unwrap_io)?;
        for writer in writers {
            writer
                .close()
                .and_then(|chunk| chunk.append_to_row_group(&mut row_group))
                .map_err(unwrap_io)?;
        }
        row_group.close().map_err(unwrap_io)?;
        self.row_groups += 1;
        self.rows += rows as u64;
        Ok(())
    }

    /// Ends the file (its row group in progress first) and hands it to `sink`.
    ///
    /// # Errors
    /// The writer's error, or the sink's.
    pub(crate) fn close<S: CompactSink<Writer = W>>(
        mut self,
        sink: &mut S,
        stats: &mut CompactStats,
    ) -> Result<()> {
        self.flush()?;
        let counted = self.writer.into_inner().map_err(unwrap_io)?;
        hand_over(counted, self.rows, sink, stats)
    }
}
