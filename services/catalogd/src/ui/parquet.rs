//! What the catalog page reads from the Parquet objects themselves, through storaged with
//! Range reads: each object's footer (column statistics: null counts, min and max) and the
//! first rows of one row group (the preview). Memory is bounded: a footer of at most
//! [`MAX_FOOTER_BYTES`], a row group of at most [`MAX_PREVIEW_ROW_GROUP_BYTES`].

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, RecordBatchReader};
use arrow_schema::{DataType, TimeUnit};
use bytes::{Buf, Bytes};
use lakehouse_api::{Manifest, ObjectRef};
use lakehouse_client::{ClientError, StoragedClient};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};
use std::cmp::Ordering;
use std::sync::Arc;

/// First read of an object's tail, bytes: enough for the footer of most objects.
const FOOTER_GUESS_BYTES: u64 = 64 * 1024;
/// Largest footer the page reads, bytes.
pub const MAX_FOOTER_BYTES: u64 = 16 * 1024 * 1024;
/// Largest row group the preview reads, bytes (compressed, as stored).
pub const MAX_PREVIEW_ROW_GROUP_BYTES: u64 = 64 * 1024 * 1024;
/// Rows in the preview.
pub const PREVIEW_ROWS: usize = 20;

/// Why the statistics or the preview could not be read (the page says so instead).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// storaged failed or does not hold the object.
    #[error("storaged: {0}")]
    Storaged(#[from] ClientError),
    /// The object is not Parquet the reader understands.
    #[error("parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// The object's footer or first row group is larger than this page reads.
    #[error("{what} of {bytes} bytes is over the page's limit of {limit} bytes")]
    TooLarge {
        /// `footer` or `row group`.
        what: &'static str,
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

/// Reads the footer of `object` with one Range read of its tail (two when the footer is
/// larger than [`FOOTER_GUESS_BYTES`]).
///
/// # Errors
/// [`ReadError`].
pub async fn footer(
    storaged: &StoragedClient,
    object: &ObjectRef,
) -> Result<ParquetMetaData, ReadError> {
    let size = object.size;
    let mut tail = FOOTER_GUESS_BYTES.min(size);
    loop {
        let bytes = storaged.get_range(&object.key, size - tail, size).await?;
        let mut reader = ParquetMetaDataReader::new();
        match reader.try_parse_sized(&bytes, size) {
            Ok(()) => return Ok(reader.finish()?),
            Err(ParquetError::NeedMoreData(needed)) if (needed as u64) > tail => {
                let needed = needed as u64;
                if needed > MAX_FOOTER_BYTES || needed > size {
                    return Err(ReadError::TooLarge {
                        what: "footer",
                        bytes: needed,
                        limit: MAX_FOOTER_BYTES,
                    });
                }
                tail = needed;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// What the page shows of one column, from the footers of a version's objects.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ColumnStats {
    /// Nulls over every row group of every object.
    pub nulls: u64,
    /// Smallest value, formatted; `None` when no row group has one.
    pub min: Option<String>,
    /// Largest value, formatted.
    pub max: Option<String>,
}

/// Per column of `manifest.schema` (in order), its statistics over `footers` (one per object).
/// An object written before a column was added (schema evolution, docs/contract.md section 3) does
/// not hold it: its rows count as nulls of that column, as readers see them.
///
/// # Errors
/// [`ReadError::Parquet`] for a footer whose schema does not convert.
pub fn column_stats(
    manifest: &Manifest,
    footers: &[ParquetMetaData],
) -> Result<Vec<ColumnStats>, ReadError> {
    let mut stats = vec![ColumnStats::default(); manifest.schema.fields.len()];
    let mut mins: Vec<Vec<ArrayRef>> = vec![Vec::new(); stats.len()];
    let mut maxes: Vec<Vec<ArrayRef>> = vec![Vec::new(); stats.len()];
    for metadata in footers {
        let descr = metadata.file_metadata().schema_descr();
        let arrow = parquet::arrow::parquet_to_arrow_schema(
            descr,
            metadata.file_metadata().key_value_metadata(),
        )?;
        for (i, field) in manifest.schema.fields.iter().enumerate() {
            if arrow.field_with_name(&field.name).is_err() {
                stats[i].nulls += u64::try_from(metadata.file_metadata().num_rows()).unwrap_or(0);
                continue;
            }
            let converter = StatisticsConverter::try_new(&field.name, &arrow, descr)?;
            let groups = metadata.row_groups();
            let nulls = converter.row_group_null_counts(groups.iter())?;
            stats[i].nulls += nulls.iter().flatten().sum::<u64>();
            mins[i].push(converter.row_group_mins(groups.iter())?);
            maxes[i].push(converter.row_group_maxes(groups.iter())?);
        }
    }
    for (i, column) in stats.iter_mut().enumerate() {
        column.min = extreme(&mins[i], Ordering::Less);
        column.max = extreme(&maxes[i], Ordering::Greater);
    }
    Ok(stats)
}

/// The value of `arrays` that compares `wanted` against every other, formatted.
fn extreme(arrays: &[ArrayRef], wanted: Ordering) -> Option<String> {
    let mut best: Option<(&dyn Array, usize)> = None;
    for array in arrays {
        for i in 0..array.len() {
            if array.is_null(i) {
                continue;
            }
            let better = match best {
                None => true,
                Some((held, j)) => compare(array.as_ref(), i, held, j) == Some(wanted),
            };
            if better {
                best = Some((array.as_ref(), i));
            }
        }
    }
    best.map(|(array, i)| cell(array, i))
}

/// `a[i]` against `b[j]`, for the column types of docs/contract.md section 3 (`None` otherwise).
fn compare(a: &dyn Array, i: usize, b: &dyn Array, j: usize) -> Option<Ordering> {
    if a.data_type() != b.data_type() {
        return None;
    }
    Some(match a.data_type() {
        DataType::Int64 => a
            .as_primitive::<Int64Type>()
            .value(i)
            .cmp(&b.as_primitive::<Int64Type>().value(j)),
        DataType::Float64 => a
            .as_primitive::<Float64Type>()
            .value(i)
            .total_cmp(&b.as_primitive::<Float64Type>().value(j)),
        DataType::Date32 => a
            .as_primitive::<Date32Type>()
            .value(i)
            .cmp(&b.as_primitive::<Date32Type>().value(j)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => a
            .as_primitive::<TimestampMicrosecondType>()
            .value(i)
            .cmp(&b.as_primitive::<TimestampMicrosecondType>().value(j)),
        DataType::Boolean => a.as_boolean().value(i).cmp(&b.as_boolean().value(j)),
        DataType::Utf8 => a
            .as_string::<i32>()
            .value(i)
            .cmp(b.as_string::<i32>().value(j)),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .value(i)
            .cmp(b.as_string::<i64>().value(j)),
        DataType::Utf8View => a.as_string_view().value(i).cmp(b.as_string_view().value(j)),
        _ => return None,
    })
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
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(i);
            match arrow_array::temporal_conversions::timestamp_us_to_datetime(micros) {
                Some(at) if zone.is_some() => format!("{}Z", at.format("%Y-%m-%dT%H:%M:%S%.f")),
                Some(at) => at.format("%Y-%m-%dT%H:%M:%S%.f").to_string(),
                None => micros.to_string(),
            }
        }
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

/// The first [`PREVIEW_ROWS`] rows of `object`'s first row group, in the columns `columns`
/// (the version's schema): the column names and the rows as text, `null` for a column the
/// object does not hold (it predates the column). One Range read of that row group's column
/// chunks.
///
/// # Errors
/// [`ReadError`]; [`ReadError::TooLarge`] for a row group over
/// [`MAX_PREVIEW_ROW_GROUP_BYTES`].
pub async fn preview(
    storaged: &StoragedClient,
    object: &ObjectRef,
    metadata: ParquetMetaData,
    columns: &[String],
) -> Result<(Vec<String>, Vec<Vec<String>>), ReadError> {
    let Some(group) = metadata.row_groups().first() else {
        return Ok((columns.to_vec(), Vec::new()));
    };
    let ranges = group.columns().iter().map(|c| c.byte_range());
    let start = ranges.clone().map(|(s, _)| s).min().unwrap_or(0);
    let end = ranges.map(|(s, l)| s.saturating_add(l)).max().unwrap_or(0);
    if end - start > MAX_PREVIEW_ROW_GROUP_BYTES {
        return Err(ReadError::TooLarge {
            what: "row group",
            bytes: end - start,
            limit: MAX_PREVIEW_ROW_GROUP_BYTES,
        });
    }
    let bytes = storaged.get_range(&object.key, start, end).await?;
    let window = Window {
        offset: start,
        bytes,
        len: object.size,
    };
    let metadata = ArrowReaderMetadata::try_new(Arc::new(metadata), ArrowReaderOptions::new())?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(window, metadata)
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
