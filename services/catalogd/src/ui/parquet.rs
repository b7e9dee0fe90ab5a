//! What the catalog page reads from the Parquet objects themselves, through the catalog's
//! store with Range reads: each object's footer (read by lakehouse-catalog's one footer
//! reader, [`lakehouse_catalog::footer::read_footer`]), its column statistics (folded by
//! lakehouse-iceberg's one aggregation over row groups,
//! [`lakehouse_iceberg::stats::column_summaries`], which the Iceberg metrics use too) and
//! the first rows of one row group (the preview). Memory is bounded: a footer of at most
//! [`MAX_FOOTER_BYTES`], a row group of at most [`MAX_PREVIEW_ROW_GROUP_BYTES`].
//!
//! The reads are async ([`preview_bytes`]; the footer reader decodes on the blocking pool);
//! everything else here ([`column_stats`], [`preview_rows`]) is synchronous CPU work that the
//! page runs on tokio's blocking pool (`super::dataset_page`).

use arrow_array::Array;
use arrow_array::RecordBatchReader;
use arrow_array::cast::AsArray;
use arrow_array::temporal_conversions::{date32_to_datetime, time64us_to_time};
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_schema::{DataType, TimeUnit};
use bytes::{Buf, Bytes};
use lakehouse_api::{ColumnType, ObjectRef, Schema};
pub use lakehouse_catalog::footer::MAX_FOOTER_BYTES;
use lakehouse_catalog::{ManifestStore, StoreError};
use lakehouse_iceberg::stats::{Bound, column_summaries};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{ChunkReader, Length};
use std::sync::Arc;

/// Largest row group the preview reads, bytes (compressed, as stored).
pub const MAX_PREVIEW_ROW_GROUP_BYTES: u64 = 64 * 1024 * 1024;
/// Rows in the preview.
pub const PREVIEW_ROWS: usize = 20;

/// Why the preview could not be read (the page says so instead).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store failed reading the row group.
    #[error("reading the row group")]
    Store(#[from] StoreError),
    /// The store no longer holds the object.
    #[error("the object is not in storage")]
    Missing,
    /// The row group is not Parquet the reader understands.
    #[error("decoding the row group")]
    Parquet(#[from] ParquetError),
    /// The object's first row group is larger than this page reads.
    #[error("row group of {bytes} bytes is over the page's limit of {limit} bytes")]
    TooLarge {
        /// Its compressed size, bytes.
        bytes: u64,
        /// [`MAX_PREVIEW_ROW_GROUP_BYTES`].
        limit: u64,
    },
}

/// What the page shows of one column, from the footers of a version's objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnStats {
    /// Nulls over every row group of every object (a row group that records no null count
    /// adds none); an object written before the column was added counts all its rows.
    pub nulls: u64,
    /// Smallest value, formatted ([`format_bound`]); `None` when no object knows one.
    pub min: Option<String>,
    /// Largest value, formatted.
    pub max: Option<String>,
}

/// Per column of `schema` (in order), its statistics over `footers` (one per object): each
/// object's row groups folded by [`column_summaries`], then the objects by the same order.
/// An object written before a column was added (schema evolution, docs/contract.md section
/// 3) does not hold it: its rows count as nulls of that column, as readers see them.
/// Synchronous and proportional to row groups times columns: call it on a blocking thread.
pub fn column_stats(schema: &Schema, footers: &[ParquetMetaData]) -> Vec<ColumnStats> {
    let width = schema.fields.len();
    let mut nulls = vec![0u64; width];
    let mut lower: Vec<Option<Bound>> = vec![None; width];
    let mut upper: Vec<Option<Bound>> = vec![None; width];
    for footer in footers {
        let rows = u64::try_from(footer.file_metadata().num_rows()).unwrap_or(0);
        for (i, summary) in column_summaries(footer, schema).into_iter().enumerate() {
            let Some(summary) = summary else {
                nulls[i] += rows;
                continue;
            };
            nulls[i] += summary.null_count.unwrap_or(0);
            if let Some(low) = summary.lower
                && lower[i].as_ref().is_none_or(|held| low < *held)
            {
                lower[i] = Some(low);
            }
            if let Some(high) = summary.upper
                && upper[i].as_ref().is_none_or(|held| high > *held)
            {
                upper[i] = Some(high);
            }
        }
    }
    schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| ColumnStats {
            nulls: nulls[i],
            min: lower[i].as_ref().map(|b| format_bound(field.data_type, b)),
            max: upper[i].as_ref().map(|b| format_bound(field.data_type, b)),
        })
        .collect()
}

/// A bound of a column of `data_type` as the preview prints its values ([`cell`]): numbers
/// as Rust prints them, dates `YYYY-MM-DD`, times `HH:MM:SS[.f]`, timestamps
/// `YYYY-MM-DDTHH:MM:SS[.f]` (with `Z` when the column has a zone), strings as they are.
pub fn format_bound(data_type: ColumnType, bound: &Bound) -> String {
    match (data_type, bound) {
        (ColumnType::Bool, Bound::Bool(b)) => b.to_string(),
        (ColumnType::Int64, Bound::Long(v)) => v.to_string(),
        (ColumnType::Float64, Bound::Double(v)) => v.to_string(),
        (ColumnType::Date32, Bound::Int(days)) => date32_to_datetime(*days)
            .map(|at| at.date().to_string())
            .unwrap_or_else(|| days.to_string()),
        (ColumnType::Time64, Bound::Long(micros)) => time(*micros),
        (ColumnType::Timestamp, Bound::Long(micros)) => timestamp(*micros, false),
        (ColumnType::TimestampUtc, Bound::Long(micros)) => timestamp(*micros, true),
        (ColumnType::Utf8, Bound::Bytes(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        (_, other) => format!("{other:?}"),
    }
}

/// Microseconds since midnight as `HH:MM:SS[.f]`.
fn time(micros: i64) -> String {
    time64us_to_time(micros)
        .map(|at| at.format("%H:%M:%S%.f").to_string())
        .unwrap_or_else(|| micros.to_string())
}

/// Microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS[.f]`, `Z` appended when `zoned`.
fn timestamp(micros: i64, zoned: bool) -> String {
    match arrow_array::temporal_conversions::timestamp_us_to_datetime(micros) {
        Some(at) => {
            let text = at.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
            if zoned { text + "Z" } else { text }
        }
        None => micros.to_string(),
    }
}

/// `array[i]` as text: `null`, numbers as Rust prints them, dates `YYYY-MM-DD`, timestamps
/// RFC 3339 (with `Z` when the column has a zone), strings as they are.
pub fn cell(array: &dyn Array, i: usize) -> String {
    if array.is_null(i) {
        return "null".to_owned();
    }
    match array.data_type() {
        DataType::Int64 => array.as_primitive::<Int64Type>().value(i).to_string(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(i).to_string(),
        DataType::Boolean => array.as_boolean().value(i).to_string(),
        DataType::Date32 => array
            .as_primitive::<Date32Type>()
            .value_as_date(i)
            .map(|d| d.to_string())
            .unwrap_or_default(),
        DataType::Time64(TimeUnit::Microsecond) => {
            time(array.as_primitive::<Time64MicrosecondType>().value(i))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) => timestamp(
            array.as_primitive::<TimestampMicrosecondType>().value(i),
            zone.is_some(),
        ),
        DataType::Utf8 => array.as_string::<i32>().value(i).to_owned(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(i).to_owned(),
        DataType::Utf8View => array.as_string_view().value(i).to_owned(),
        other => format!("({other})"),
    }
}

/// The bytes `offset..offset + bytes.len()` of a file of `len` bytes: what the preview
/// fetched (one row group), served to the Parquet reader as if it were the file.
struct Window {
    offset: u64,
    bytes: Bytes,
    len: u64,
}

impl Length for Window {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Window {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let end = self.offset + self.bytes.len() as u64;
        let length = end.checked_sub(start).ok_or_else(|| outside(start))?;
        Ok(self.get_bytes(start, length as usize)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let from = start
            .checked_sub(self.offset)
            .ok_or_else(|| outside(start))? as usize;
        let to = from.saturating_add(length);
        if to > self.bytes.len() {
            return Err(outside(start));
        }
        Ok(self.bytes.slice(from..to))
    }
}

fn outside(start: u64) -> ParquetError {
    ParquetError::General(format!("read at {start} outside the fetched row group"))
}

/// The bytes of `object`'s first row group (one Range read of its column chunks), for
/// [`preview_rows`]; `None` when the object has no row group.
///
/// # Errors
/// [`ReadError::TooLarge`] for a row group over [`MAX_PREVIEW_ROW_GROUP_BYTES`] (nothing is
/// read then); [`ReadError::Store`] or [`ReadError::Missing`] when the read fails.
pub async fn preview_bytes<S: ManifestStore>(
    store: &S,
    object: &ObjectRef,
    metadata: &ParquetMetaData,
) -> Result<Option<PreviewWindow>, ReadError> {
    let Some(group) = metadata.row_groups().first() else {
        return Ok(None);
    };
    let ranges = group.columns().iter().map(|c| c.byte_range());
    let start = ranges.clone().map(|(s, _)| s).min().unwrap_or(0);
    let end = ranges.map(|(s, l)| s.saturating_add(l)).max().unwrap_or(0);
    if end.saturating_sub(start) > MAX_PREVIEW_ROW_GROUP_BYTES {
        return Err(ReadError::TooLarge {
            bytes: end - start,
            limit: MAX_PREVIEW_ROW_GROUP_BYTES,
        });
    }
    let bytes = store
        .get_range(&object.key, start..end)
        .await?
        .ok_or(ReadError::Missing)?;
    Ok(Some(PreviewWindow(Window {
        offset: start,
        bytes,
        len: object.size,
    })))
}

/// The first row group of an object as [`preview_bytes`] fetched it.
pub struct PreviewWindow(Window);

/// The first [`PREVIEW_ROWS`] rows of the row group in `window` (of the object whose footer
/// is `metadata`), in the columns `columns` (the version's schema): the column names and the
/// rows as text ([`cell`]), `null` for a column the object does not hold (it predates the
/// column). Synchronous (Parquet decoding of up to [`MAX_PREVIEW_ROW_GROUP_BYTES`]): call
/// it on a blocking thread.
///
/// # Errors
/// [`ReadError::Parquet`] when the row group does not decode.
pub fn preview_rows(
    window: PreviewWindow,
    metadata: Arc<ParquetMetaData>,
    columns: &[String],
) -> Result<(Vec<String>, Vec<Vec<String>>), ReadError> {
    let metadata = ArrowReaderMetadata::try_new(metadata, ArrowReaderOptions::new())?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(window.0, metadata)
        .with_row_groups(vec![0])
        .with_batch_size(PREVIEW_ROWS)
        .with_limit(PREVIEW_ROWS)
        .build()?;
    // Each column of the version's schema: its position in the object, if it has it.
    let positions: Vec<Option<usize>> = columns
        .iter()
        .map(|name| reader.schema().index_of(name).ok())
        .collect();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| ParquetError::ArrowError(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                positions
                    .iter()
                    .map(|at| match at {
                        Some(at) => cell(batch.column(*at).as_ref(), row),
                        None => "null".to_owned(),
                    })
                    .collect(),
            );
        }
    }
    rows.truncate(PREVIEW_ROWS);
    Ok((columns.to_vec(), rows))
}
