//! Pass 2: CSV -> Arrow record batches -> Snappy Parquet (docs/contract.md section 5).

use crate::classify::{
    ColumnStats, MAX_EXACT_INT, parse_bool, parse_date, parse_int, parse_time, parse_timestamp,
    pq_readings, rules_out_above,
};
use crate::encode::{CountingWriter, ParquetFiles, encode_batches, unwrap_io};
use crate::error::{ConvertError, Result};
use crate::partitioned::{PartitionSink, PartitionedConfig, Partitioner, partition_batches};
use crate::reading::Reading;
use crate::source::{Header, Nulls, ReadConfig, Records};
use crate::tokenize::Record;
use crate::{BATCH_ROWS, CREATED_BY, EncodeStats, MAX_ROW_GROUP_ROWS, ParquetOutput};
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use lakehouse_api::{
    ColumnChange, ColumnReport, ColumnType, CsvOptions, DateOrder, DecidedBy, Field, Schema,
    SchemaDriftDetails,
};
use parquet::arrow::{ArrowWriter, PARQUET_FIELD_ID_META_KEY};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) mod second_guess;

/// The Arrow type of a catalog column type.
pub(crate) fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Bool => DataType::Boolean,
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::Date32 => DataType::Date32,
        ColumnType::Time64 => DataType::Time64(TimeUnit::Microsecond),
        ColumnType::TimestampUtc => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Utf8 => DataType::Utf8,
    }
}

pub(crate) fn arrow_schema(schema: &Schema) -> SchemaRef {
    Arc::new(arrow_schema::Schema::new(
        schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                arrow_schema::Field::new(f.name.clone(), arrow_type(f.data_type), true)
                    .with_metadata(HashMap::from([(
                        PARQUET_FIELD_ID_META_KEY.to_owned(),
                        (i + 1).to_string(),
                    )]))
            })
            .collect::<Vec<_>>(),
    ))
}

/// Dictionary page size limit per column chunk, bytes. Past it a column chunk falls back to
/// plain encoding: a small limit keeps dictionaries for low-cardinality columns (categories,
/// dates, small ints) and gives up early on high-cardinality ones (ids, amounts, timestamps,
/// free text), where a dictionary only costs time and bytes (docs/performance.md).
pub(crate) const DICTIONARY_PAGE_BYTES: usize = 128 * 1024;

/// The fixed writer settings of docs/contract.md section 5.
pub(crate) fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(CREATED_BY.to_owned())
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .build()
}

/// The settings of a partitioned dataset's files (docs/contract.md section 10): those of
/// [`writer_properties`], with dictionary encoding only for the `utf8` columns whose
/// distinct values in `sample` (the pass's first chunk: up to 131,072 rows, cut at the
/// first batch that brings it to a quarter of the memory budget) fit one dictionary page:
/// under [`DICTIONARY_PAGE_BYTES`], counted as parquet counts it (each distinct value's
/// bytes plus 4), which drops a dictionary that reaches the limit. A partition's row
/// groups are small when partitions are many, and a
/// per-row-group dictionary then never reaches its page limit: every number, date and
/// timestamp, and every free-text value, would be hashed into one, which costs more time
/// and (with Snappy) more bytes than plain encoding. An unpartitioned file drops such a
/// column's dictionary within its first row group; a partitioned one decides from its
/// first rows, up front (docs/decisions.md, "Partitioned writes"). The same sample gives
/// the same settings.
pub(crate) fn partition_writer_properties(
    arrow: &SchemaRef,
    sample: &[RecordBatch],
) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_created_by(CREATED_BY.to_owned())
        .set_max_row_group_row_count(Some(MAX_ROW_GROUP_ROWS))
        .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
        .set_dictionary_enabled(false);
    for (i, field) in arrow.fields().iter().enumerate() {
        if field.data_type() == &DataType::Utf8 && fits_one_dictionary_page(sample, i) {
            builder = builder.set_column_dictionary_enabled(field.name().as_str().into(), true);
        }
    }
    builder.build()
}

/// Whether the distinct values of column `i` (`utf8`) over `sample` fit one dictionary
/// page: their bytes plus 4 each under [`DICTIONARY_PAGE_BYTES`]. Stops at the first value
/// that reaches it. A column that is not a `StringArray` (never, for a `utf8` field) keeps
/// its dictionary, as every `utf8` column did before this rule.
fn fits_one_dictionary_page(sample: &[RecordBatch], i: usize) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut bytes = 0usize;
    for batch in sample {
        let Some(column) = batch.column(i).as_any().downcast_ref::<StringArray>() else {
            return true;
        };
        for value in column.iter().flatten() {
            if seen.insert(value) {
                bytes += value.len() + 4;
                if bytes >= DICTIONARY_PAGE_BYTES {
                    return false;
                }
            }
        }
    }
    true
}

/// One Arrow builder per column, fed straight from the CSV field bytes.
enum Builder {
    Bool(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Date32(Date32Builder),
    Time64(Time64MicrosecondBuilder),
    Timestamp {
        builder: TimestampMicrosecondBuilder,
        zoned: bool,
    },
    /// Strings are collected as bytes and validated as UTF-8 once per batch, in bulk (each
    /// record was already checked by [`Records`], so this cannot fail).
    Utf8(BinaryBuilder),
}

/// A column of the batch being built, and what its values prove about the schema.
struct Column {
    builder: Builder,
    /// A non-null value was appended (since the start of the file).
    non_null: bool,
    /// Float64: a value that is not an int literal was appended.
    non_int: bool,
    /// Int64: an int beyond 2^53 in magnitude was appended (no float64 accepts it: the
    /// second guess needs it, docs/contract.md section 13).
    big_int: bool,
    /// Utf8, when verifying an inference: what docs/contract.md section 3 makes of the values so
    /// far (classified until the column is certainly utf8).
    inference: Option<ColumnStats>,
    /// The column's type, for its report.
    ty: ColumnType,
    /// Nulls in the batches finished so far.
    null_count: u64,
    /// The inference report's classification of the values so far, until they rule out
    /// every type above `ty` (`None` from then on, and for `bool`).
    report: Option<ColumnStats>,
    /// The value that did (its line is filled in by [`BatchBuilder::settle_lines`]).
    decided_by: Option<DecidedBy>,
    /// How values are classified and floats parsed (docs/contract.md section 14's options).
    reading: Reading,
    /// Date32 of `P/Q/YYYY` values: the day/month order they are read in.
    order: Option<DateOrder>,
    /// With an order, what the values prove of it (docs/contract.md section 3): the separator of
    /// the first, whether another one was seen, and whether one was not a real date in the
    /// other order (else both readings hold, and inference says utf8).
    pq_sep: u8,
    pq_mixed: bool,
    other_order_refused: bool,
    /// On a thread that parses one chunk of the file (docs/contract.md section 13): every
    /// value that changed `report`, in order, for [`Column::absorb`] to find the one that
    /// settles the type once the state before the chunk is known.
    changes: Option<Vec<Change>>,
}

/// A [`Change`]'s line before its record's offset is known.
const UNSET: u64 = u64::MAX;

/// A value that changed a column's inference report within a chunk ([`Column::changes`]).
#[derive(Debug, Clone)]
struct Change {
    /// The record's start line (its byte offset within the chunk until the chunk ends).
    line: u64,
    value: String,
    /// The chunk's report state with this value.
    stats: ColumnStats,
}

/// The first characters of a `decided_by` value kept in the report.
const DECIDED_BY_CHARS: usize = 200;

/// A value as an inference report shows it: its first [`DECIDED_BY_CHARS`] characters.
fn decided_by_value(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    match text.char_indices().nth(DECIDED_BY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

impl Column {
    fn new(ty: ColumnType, infer_utf8: bool, order: Option<DateOrder>, reading: Reading) -> Self {
        let order = order.filter(|_| ty == ColumnType::Date32);
        let builder = match ty {
            ColumnType::Bool => Builder::Bool(BooleanBuilder::with_capacity(BATCH_ROWS)),
            ColumnType::Int64 => Builder::Int64(Int64Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Float64 => Builder::Float64(Float64Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Date32 => Builder::Date32(Date32Builder::with_capacity(BATCH_ROWS)),
            ColumnType::Time64 => {
                Builder::Time64(Time64MicrosecondBuilder::with_capacity(BATCH_ROWS))
            }
            ColumnType::TimestampUtc => Builder::Timestamp {
                builder: TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS)
                    .with_timezone("UTC"),
                zoned: true,
            },
            ColumnType::Timestamp => Builder::Timestamp {
                builder: TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS),
                zoned: false,
            },
            ColumnType::Utf8 => Builder::Utf8(BinaryBuilder::with_capacity(BATCH_ROWS, 0)),
        };
        Column {
            inference: (infer_utf8 && ty == ColumnType::Utf8).then(ColumnStats::new),
            builder,
            non_null: false,
            non_int: false,
            big_int: false,
            ty,
            null_count: 0,
            report: (ty != ColumnType::Bool).then(ColumnStats::new),
            decided_by: None,
            reading,
            order,
            pq_sep: 0,
            pq_mixed: false,
            other_order_refused: false,
            changes: None,
        }
    }

    /// A value of a date32 column with a day/month order.
    fn append_ordered_date(&mut self, value: &[u8], order: DateOrder) -> bool {
        let Builder::Date32(b) = &mut self.builder else {
            return false;
        };
        let Some((sep, mdy, dmy)) = pq_readings(value) else {
            return false;
        };
        let (days, other) = match order {
            DateOrder::Mdy => (mdy, dmy),
            DateOrder::Dmy => (dmy, mdy),
        };
        let Some(days) = days else {
            return false;
        };
        b.append_value(days);
        self.other_order_refused |= other.is_none();
        if self.pq_sep == 0 {
            self.pq_sep = sep;
        } else {
            self.pq_mixed |= self.pq_sep != sep;
        }
        true
    }

    /// Folds a non-null value into the report; `true` when it is the one that settles the
    /// column's type (its line is then due).
    #[inline]
    fn observe(&mut self, value: &[u8]) -> bool {
        let Some(stats) = self.report.as_mut() else {
            return false;
        };
        let before = *stats;
        stats.observe(self.reading.classify(value));
        let settled = rules_out_above(stats, self.ty);
        if let Some(changes) = self.changes.as_mut() {
            if *stats == before {
                return false;
            }
            changes.push(Change {
                line: UNSET,
                value: decided_by_value(value),
                stats: *stats,
            });
        } else if settled {
            self.decided_by = Some(DecidedBy {
                line: 0,
                value: decided_by_value(value),
            });
        } else {
            return false;
        }
        if settled {
            self.report = None;
        }
        true
    }

    /// Folds in what `later`, the same column over the records right after this one's
    /// (another chunk's, its change lines set), proved: the state is then that of one
    /// column over both, and the value that settles the type is the first of `later`'s
    /// changes that does given this column's state.
    fn absorb(&mut self, later: &Column) {
        self.non_null |= later.non_null;
        self.non_int |= later.non_int;
        self.big_int |= later.big_int;
        self.null_count += later.null_count;
        if let (Some(stats), Some(next)) = (self.inference.as_mut(), later.inference) {
            *stats = stats.then(next);
        }
        if self.pq_sep == 0 {
            self.pq_sep = later.pq_sep;
        } else if later.pq_sep != 0 && later.pq_sep != self.pq_sep {
            self.pq_mixed = true;
        }
        self.pq_mixed |= later.pq_mixed;
        self.other_order_refused |= later.other_order_refused;
        let Some(stats) = self.report else {
            return;
        };
        let changes = later.changes.as_deref().unwrap_or_default();
        for change in changes {
            if rules_out_above(&stats.then(change.stats), self.ty) {
                self.report = None;
                self.decided_by = Some(DecidedBy {
                    line: change.line,
                    value: change.value.clone(),
                });
                return;
            }
        }
        if let Some(last) = changes.last() {
            self.report = Some(stats.then(last.stats));
        }
    }

    fn append_null(&mut self) {
        match &mut self.builder {
            Builder::Bool(b) => b.append_null(),
            Builder::Int64(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Date32(b) => b.append_null(),
            Builder::Time64(b) => b.append_null(),
            Builder::Timestamp { builder, .. } => builder.append_null(),
            Builder::Utf8(b) => b.append_null(),
        }
    }

    /// Appends a non-null value; `false` (and nothing appended) if the type refuses it.
    #[inline]
    fn append(&mut self, value: &[u8]) -> bool {
        // A refused value is not counted: the second guess reads `non_null` after it.
        let accepted = match &mut self.builder {
            Builder::Bool(b) => parse_bool(value).map(|v| b.append_value(v)).is_some(),
            Builder::Int64(b) => parse_int(value)
                .map(|v| {
                    self.big_int |= v.unsigned_abs() > MAX_EXACT_INT;
                    b.append_value(v);
                })
                .is_some(),
            Builder::Float64(b) => match self.reading.parse_float_literal(value) {
                Some((v, int)) => {
                    self.non_int |= !int;
                    b.append_value(v);
                    true
                }
                None => false,
            },
            Builder::Date32(b) => match self.order {
                None => parse_date(value).map(|v| b.append_value(v)).is_some(),
                Some(order) => self.append_ordered_date(value, order),
            },
            Builder::Time64(b) => parse_time(value).map(|v| b.append_value(v)).is_some(),
            Builder::Timestamp { builder, zoned } => match parse_timestamp(value) {
                Some((micros, z)) if z == *zoned => {
                    builder.append_value(micros);
                    true
                }
                _ => false,
            },
            Builder::Utf8(b) => {
                if let Some(stats) = self.inference.as_mut().filter(|s| s.undecided()) {
                    stats.observe(self.reading.classify(value));
                }
                b.append_value(value);
                true
            }
        };
        self.non_null |= accepted;
        accepted
    }

    /// Whether the whole-file inference of docs/contract.md section 3 gives this column exactly
    /// `ty`, the type its values were parsed as, given that every non-null value was
    /// accepted: a typed column needs a non-null value (else it is utf8), a float64 one also
    /// a value that is not an int (else int64 fits); nothing narrower accepts a bool, int,
    /// date or timestamp value. A utf8 column needs the inference's own verdict.
    fn infers(&self, ty: ColumnType) -> bool {
        match ty {
            ColumnType::Utf8 => self
                .inference
                .is_some_and(|stats| stats.resolve() == ColumnType::Utf8),
            ColumnType::Float64 => self.non_null && self.non_int,
            // Under a `date_order`, only that order is the inference's.
            ColumnType::Date32 if self.order.is_some() => {
                self.non_null
                    && !self.pq_mixed
                    && match self.reading.forced_order() {
                        Some(forced) => self.order == Some(forced),
                        None => self.other_order_refused,
                    }
            }
            _ => self.non_null,
        }
    }

    /// The column's values as an array; the builder starts over with buffers sized for a
    /// whole batch (arrow's own `finish` leaves empty ones, which would then grow by
    /// doubling, reallocating and copying, in every batch).
    fn finish(&mut self) -> Result<ArrayRef> {
        let array = self.finish_array()?;
        self.null_count += array.null_count() as u64;
        Ok(array)
    }

    fn finish_array(&mut self) -> Result<ArrayRef> {
        Ok(match &mut self.builder {
            Builder::Bool(b) => {
                Arc::new(std::mem::replace(b, BooleanBuilder::with_capacity(BATCH_ROWS)).finish())
            }
            Builder::Int64(b) => {
                Arc::new(std::mem::replace(b, Int64Builder::with_capacity(BATCH_ROWS)).finish())
            }
            Builder::Float64(b) => {
                Arc::new(std::mem::replace(b, Float64Builder::with_capacity(BATCH_ROWS)).finish())
            }
            Builder::Date32(b) => {
                Arc::new(std::mem::replace(b, Date32Builder::with_capacity(BATCH_ROWS)).finish())
            }
            Builder::Time64(b) => Arc::new(
                std::mem::replace(b, Time64MicrosecondBuilder::with_capacity(BATCH_ROWS)).finish(),
            ),
            Builder::Timestamp { builder, zoned } => {
                let fresh = TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS);
                let fresh = if *zoned {
                    fresh.with_timezone("UTC")
                } else {
                    fresh
                };
                Arc::new(std::mem::replace(builder, fresh).finish())
            }
            Builder::Utf8(b) => {
                // The next batch likely holds about as many bytes as this one.
                let bytes = b.values_slice().len();
                let fresh = BinaryBuilder::with_capacity(BATCH_ROWS, bytes + bytes / 8);
                Arc::new(
                    StringArray::try_from_binary(std::mem::replace(b, fresh).finish())
                        .map_err(|e| ConvertError::Parquet(e.to_string()))?,
                )
            }
        })
    }
}

/// Turns validated CSV records into record batches of [`BATCH_ROWS`] rows.
pub(crate) struct BatchBuilder<'a> {
    schema: &'a Schema,
    arrow: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    /// Rows in the batch being built when it is due: [`BATCH_ROWS`], but fewer for a
    /// chunk's first batch ([`BatchBuilder::chunk`]).
    due: usize,
}

impl<'a> BatchBuilder<'a> {
    /// `verify_inference`: also collect what [`BatchBuilder::infers_schema`] needs.
    /// `csv.date_orders`: the day/month order of `date32` columns of `P/Q/YYYY` values, by
    /// name (docs/contract.md section 3); `csv.decimal_separator` and `csv.date_order` how values
    /// are read (section 14).
    pub(crate) fn new(schema: &'a Schema, verify_inference: bool, csv: &CsvOptions) -> Self {
        let reading = Reading::new(csv);
        BatchBuilder {
            schema,
            arrow: arrow_schema(schema),
            columns: schema
                .fields
                .iter()
                .map(|f| {
                    Column::new(
                        f.data_type,
                        verify_inference,
                        csv.date_orders.get(&f.name).copied(),
                        reading,
                    )
                })
                .collect(),
            rows: 0,
            due: BATCH_ROWS,
        }
    }

    /// A builder for one chunk of a file parsed on several threads (docs/contract.md
    /// section 13): its first batch holds `first_batch_rows` rows, so that the file's batches
    /// are cut where one thread cuts them, and [`BatchBuilder::settle_lines`] takes the
    /// record's byte offset within the chunk, turned into lines by
    /// [`BatchBuilder::offsets_to_lines`] once the chunk is read.
    pub(crate) fn chunk(
        schema: &'a Schema,
        verify_inference: bool,
        csv: &CsvOptions,
        first_batch_rows: usize,
    ) -> Self {
        let mut builder = BatchBuilder::new(schema, verify_inference, csv);
        for column in &mut builder.columns {
            column.changes = Some(Vec::new());
        }
        builder.due = first_batch_rows.clamp(1, BATCH_ROWS);
        builder
    }

    /// A chunk's builder: the values that changed a report, their offsets within `bytes`
    /// (the chunk, read after `newlines_before` LF bytes of the file) turned into 1-based
    /// lines.
    pub(crate) fn offsets_to_lines(&mut self, bytes: &[u8], newlines_before: u64) {
        let mut offsets: Vec<u64> = self
            .columns
            .iter()
            .flat_map(|c| c.changes.iter().flatten().map(|change| change.line))
            .collect();
        offsets.sort_unstable();
        offsets.dedup();
        let mut lines = Vec::with_capacity(offsets.len());
        let (mut at, mut line) = (0usize, 1 + newlines_before);
        for &offset in &offsets {
            let to = (offset as usize).min(bytes.len());
            line += crate::tokenize::count_newlines(&bytes[at..to]);
            at = to;
            lines.push(line);
        }
        for change in self
            .columns
            .iter_mut()
            .flat_map(|c| c.changes.iter_mut().flatten())
        {
            if let Ok(k) = offsets.binary_search(&change.line) {
                change.line = lines[k];
            }
        }
    }

    /// Folds in a chunk's builder (its batches finished, its lines set), the chunk right
    /// after the records this one proved things about: see [`Column::absorb`].
    pub(crate) fn absorb(&mut self, later: &BatchBuilder<'_>) {
        for (column, next) in self.columns.iter_mut().zip(&later.columns) {
            column.absorb(next);
        }
    }

    /// Adds one record (of the schema's width); a full batch is due every [`BATCH_ROWS`]
    /// rows ([`BatchBuilder::is_full`]).
    ///
    /// `true` when a value of the record settled a column's type for the inference report:
    /// the caller then gives the record's line ([`BatchBuilder::settle_lines`]).
    ///
    /// # Errors
    /// The 0-based column whose type refuses its value (the record is then half added).
    pub(crate) fn push(
        &mut self,
        record: Record<'_>,
        nulls: &Nulls<'_>,
    ) -> std::result::Result<bool, usize> {
        let mut settled = false;
        for (i, (column, value)) in self.columns.iter_mut().zip(record).enumerate() {
            if nulls.is_null(value) {
                column.append_null();
            } else if !column.append(value) {
                return Err(i);
            } else {
                settled |= column.observe(value);
            }
        }
        self.rows += 1;
        Ok(settled)
    }

    /// Gives the values that [`BatchBuilder::push`] just found settling their column the
    /// 1-based line of their record.
    /// In a chunk's builder the "line" is the record's byte offset within the chunk.
    #[cold]
    pub(crate) fn settle_lines(&mut self, line: u64) {
        for column in &mut self.columns {
            if let Some(changes) = column.changes.as_mut() {
                if let Some(change) = changes.last_mut().filter(|c| c.line == UNSET) {
                    change.line = line;
                }
            } else if let Some(decided) = column.decided_by.as_mut().filter(|d| d.line == 0) {
                decided.line = line;
            }
        }
    }

    /// The inference report of docs/contract.md section 3, once every batch is finished.
    pub(crate) fn report(&self) -> Vec<ColumnReport> {
        self.columns
            .iter()
            .zip(&self.schema.fields)
            .map(|(column, field)| ColumnReport {
                name: field.name.clone(),
                data_type: column.ty,
                null_count: column.null_count,
                decided_by: column.decided_by.clone(),
                order: column.order,
            })
            .collect()
    }

    /// A whole batch is buffered.
    pub(crate) fn is_full(&self) -> bool {
        self.rows == self.due
    }

    /// Rows buffered and not yet returned in a batch.
    pub(crate) fn pending(&self) -> usize {
        self.rows
    }

    /// The buffered rows as a batch.
    ///
    /// # Errors
    /// `Parquet` if Arrow refuses the arrays (an internal error).
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        self.rows = 0;
        self.due = BATCH_ROWS;
        let arrays = self
            .columns
            .iter_mut()
            .map(Column::finish)
            .collect::<Result<Vec<_>>>()?;
        RecordBatch::try_new(self.arrow.clone(), arrays)
            .map_err(|e| ConvertError::Parquet(e.to_string()))
    }

    /// After every record was pushed without a refusal (and built with `verify_inference`):
    /// whether [`infer_schema`](crate::infer_schema) over the same records returns exactly
    /// this builder's schema.
    pub(crate) fn infers_schema(&self) -> bool {
        self.columns
            .iter()
            .zip(&self.schema.fields)
            .all(|(column, field)| column.infers(field.data_type))
    }
}

/// Pass 2 only runs after pass 1 accepted the file, so a refused value means the caller gave
/// a schema the file does not conform to: reported as drift of that column. The upload's own
/// types are unknown here, so `attempted_fingerprint` is the schema's own.
pub(crate) fn value_refused(
    schema: &Schema,
    column: usize,
    line: u64,
    value: &[u8],
) -> ConvertError {
    let mut details = SchemaDriftDetails::between(schema, schema);
    if let Some(field) = schema.fields.get(column) {
        details.changed.push(ColumnChange {
            column: field.name.clone(),
            registered_type: field.data_type.name().to_owned(),
            attempted_type: None,
            line: Some(line),
            value: Some(String::from_utf8_lossy(value).into_owned()),
        });
    }
    ConvertError::SchemaDrift(Box::new(details))
}

/// The Parquet side of the single-threaded pass 2: an `ArrowWriter` over a counting sink
/// (the pipelined pass encodes with [`encode_batches`], which writes the same bytes).
struct Encoder<W: Write + Send> {
    writer: ArrowWriter<CountingWriter<W>>,
}

impl<W: Write + Send> Encoder<W> {
    fn new(arrow: SchemaRef, properties: WriterProperties, out: W) -> Result<Self> {
        let writer = ArrowWriter::try_new(CountingWriter::new(out), arrow, Some(properties))
            .map_err(unwrap_io)?;
        Ok(Encoder { writer })
    }

    /// The sink's own I/O error, when it failed, is the better explanation of `e`.
    fn error(&mut self, e: ParquetError) -> ConvertError {
        match self.writer.inner_mut().take_error() {
            Some(io) => ConvertError::Io(io),
            None => unwrap_io(e),
        }
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| self.error(e))
    }

    /// Writes the footer and flushes; the size of everything written.
    fn finish(mut self) -> Result<u64> {
        // `finish` writes the footer and flushes through to `out`; `into_inner` would write
        // the footer a second time.
        self.writer.finish().map_err(|e| self.error(e))?;
        let sink = self.writer.inner_mut();
        match sink.take_error() {
            Some(io) => Err(ConvertError::Io(io)),
            None => Ok(sink.bytes()),
        }
    }
}

/// Record batches in flight between the parsing and the encoding thread of the pipelined
/// pass 2: bounds its memory to this many batches besides the row group being encoded.
const PIPELINE_BATCHES: usize = 4;

/// What [`write_parquet`] wrote, and what it proved.
pub(crate) struct Pass2 {
    pub output: ParquetOutput,
    pub stats: EncodeStats,
    /// The header renames, as pass 1 reports them.
    pub warnings: Vec<String>,
    /// With `verify_inference`: every value was accepted and the values prove that
    /// [`infer_schema`](crate::infer_schema) gives exactly the schema written.
    pub infers_schema: bool,
    /// With `verify_inference`, when not proven: what the values read point to instead
    /// (`BatchBuilder::second_guess`). After a refused value the Parquet output is
    /// abandoned (`CompactSink::abandon`) and the pass reads on to the end of the input,
    /// inferring only.
    pub second_guess: Option<crate::SecondGuess>,
}

/// Where pass 2's record batches go.
pub(crate) enum Output<'s, W> {
    /// One Parquet file, encoded on the calling thread.
    Serial(W),
    /// Parquet, encoded on a second (scoped) thread: one file, or files cut at a size.
    Pipelined(ParquetFiles<'s, W>),
    /// A partitioned dataset's files ([`partition_batches`]), on a second thread.
    Partitioned {
        partitioner: &'s mut dyn Partitioner,
        sink: &'s mut dyn PartitionSink,
        config: PartitionedConfig,
    },
}

/// Pass 2 writes the header's columns with the schema's types, so the header must name
/// exactly the schema's columns; else the upload's columns drifted.
pub(crate) fn check_header(schema: &Schema, header: &Header) -> Result<()> {
    if header.names.iter().map(String::as_str).eq(schema.names()) {
        return Ok(());
    }

    // The header's own columns, typed as the schema types them where it has them.
    let attempted = Schema {
        fields: header
            .names
            .iter()
            .map(|name| {
                let ty = schema
                    .fields
                    .iter()
                    .find(|f| f.name == *name)
                    .map_or(ColumnType::Utf8, |f| f.data_type);
                Field::new(name.clone(), ty)
            })
            .collect(),
    };
    Err(ConvertError::SchemaDrift(Box::new(
        SchemaDriftDetails::between(schema, &attempted),
    )))
}

/// Pass 2. Pipelined and partitioned ([`Output`]): the CSV is parsed into record batches on
/// the calling thread and encoded on a second (scoped) thread, through a bounded channel;
/// the batches and their order are the same as on one thread, hence so are the bytes.
pub(crate) fn write_parquet<R: Read, W: Write + Send>(
    reader: R,
    options: ReadConfig<'_>,
    schema: &Schema,
    output: Output<'_, W>,
    verify_inference: bool,
) -> Result<Pass2> {
    let output = match output {
        Output::Pipelined(out) if options.threads > 1 => {
            return crate::parallel::write_parquet(reader, options, schema, out, verify_inference);
        }
        output => output,
    };
    let (mut records, header) = Records::open(reader, options)?;
    check_header(schema, &header)?;
    let nulls = Nulls::new(options);
    let mut batches = BatchBuilder::new(schema, verify_inference, options.csv);
    let reading = Reading::new(options.csv);
    let mut parse_time = Duration::ZERO;
    let mut encode_time = Duration::ZERO;
    // Verifying an inference into Parquet files: at a refused value the output is
    // abandoned (the encoder drops it) and the refused record's inference state kept.
    let guess_again = verify_inference && matches!(output, Output::Pipelined(_));
    let (mut refused, abandoned) = (None, AtomicBool::new(false));
    // The next record batch, `None` after the last; times itself into `parse_time`.
    let arrow = batches.arrow.clone();
    let mut next_batch = || -> Result<Option<RecordBatch>> {
        let started = Instant::now();
        let batch = loop {
            if !records.next_record()? {
                break (batches.pending() > 0)
                    .then(|| batches.finish())
                    .transpose()?;
            }
            let record = records.record();
            match batches.push(record, &nulls) {
                Ok(false) => {}
                Ok(true) => batches.settle_lines(records.line()),
                Err(_) if guess_again => {
                    refused = Some(second_guess::refused_record(record, &nulls, reading));
                    abandoned.store(true, Ordering::Release);
                    break None;
                }
                Err(column) => {
                    let value = record.iter().nth(column).unwrap_or_default();
                    return Err(value_refused(schema, column, records.line(), value));
                }
            }
            if batches.is_full() {
                break Some(batches.finish()?);
            }
        };
        parse_time += started.elapsed();
        Ok(batch)
    };
    let written = if let Output::Serial(out) = output {
        let mut encoder = Encoder::new(arrow, writer_properties(), out)?;
        while let Some(batch) = next_batch()? {
            let started = Instant::now();
            encoder.write(&batch)?;
            encode_time += started.elapsed();
        }
        let started = Instant::now();
        let written = encoder.finish()?;
        encode_time += started.elapsed();
        Ok(written)
    } else {
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(PIPELINE_BATCHES);
            let arrow = &arrow;
            let abandoned = &abandoned;
            let encoding = crate::spawn_named(scope, "pass2-encode", move || match output {
                Output::Serial(out) => {
                    let out = ParquetFiles::One(out);
                    encode_batches(arrow, writer_properties(), out, rx, 2, abandoned)
                }
                Output::Pipelined(files) => {
                    encode_batches(arrow, writer_properties(), files, rx, 2, abandoned)
                }
                Output::Partitioned {
                    partitioner,
                    sink,
                    config,
                } => partition_batches(arrow, partitioner, sink, config, rx),
            });
            // A send fails only when the encoder stopped on an error, which `join` returns.
            let parsed = (|| -> Result<()> {
                while let Some(batch) = next_batch()? {
                    if tx.send(batch).is_err() {
                        break;
                    }
                }
                Ok(())
            })();
            drop(tx);
            let encoded = encoding
                .join()
                .unwrap_or_else(|_| Err(ConvertError::Parquet("encoder thread panicked".into())));
            // A CSV error stops the input, so it comes first; else the encoder's outcome.
            parsed.and(encoded).map(|(written, busy)| {
                encode_time = busy;
                written
            })
        })
    };
    let infers_schema = verify_inference && refused.is_none() && batches.infers_schema();
    // After a refused value the output was abandoned: the rest of the input (its CSV
    // errors are pass 1's) matters, not the encoder's outcome.
    let (size_bytes, second_guess) = match refused {
        Some(refused) => {
            let started = Instant::now();
            let after = second_guess::infer_rest(&mut records, &nulls, reading, refused)?;
            parse_time += started.elapsed();
            (0, batches.second_guess(Some(&after)))
        }
        None if verify_inference && !infers_schema => (written?, batches.second_guess(None)),
        None => (written?, None),
    };
    let output = ParquetOutput {
        row_count: records.rows(),
        size_bytes,
        columns: batches.report(),
    };
    let stats = EncodeStats {
        parse: parse_time,
        encode: encode_time,
    };
    Ok(Pass2 {
        output,
        stats,
        warnings: header.warnings,
        infers_schema,
        second_guess,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Record batches are cut every `BATCH_ROWS` rows, the rest in a final one.
    #[test]
    fn batches_hold_8192_rows() {
        let schema = Schema {
            fields: vec![Field::new("n", ColumnType::Int64)],
        };
        let options = lakehouse_api::CsvOptions::default();
        let nulls = Nulls::new(ReadConfig::from(&options));
        let mut builder = BatchBuilder::new(&schema, false, &CsvOptions::default());
        let mut sizes = Vec::new();
        let total = 2 * BATCH_ROWS + 100;
        let csv: String = (0..total).map(|i| format!("{i}\n")).collect();
        let mut tokens = crate::tokenize::Tokenizer::new(csv.as_bytes(), b',', u64::MAX);
        while tokens.next_record().unwrap() {
            builder.push(tokens.record(), &nulls).unwrap();
            if builder.is_full() {
                sizes.push(builder.finish().unwrap().num_rows());
            }
        }
        assert_eq!(builder.pending(), 100);
        sizes.push(builder.finish().unwrap().num_rows());
        assert_eq!(sizes, [BATCH_ROWS, BATCH_ROWS, 100]);
    }
}
