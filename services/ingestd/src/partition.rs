//! Partitioned datasets on the ingest side (docs/contract.md section 10, "Partitioned
//! datasets"): which partition each row goes to ([`RowPartitioner`], the Iceberg transforms
//! of `lakehouse_iceberg::transform` applied to Arrow columns), and where the partition
//! files wait before they go to storaged ([`SpoolSink`], a spool directory).

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use lakehouse_api::{
    ColumnType, PartitionScalar, PartitionSpec, PartitionTuple, Schema, Sha256Digest,
};
use lakehouse_convert::{ConvertError, PartitionSink, Partitioner};
use lakehouse_iceberg::{PartitionBy, PartitionValue, Transform};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The partition of every row: the dataset's `partition_by` bound to its schema, and the
/// distinct tuples seen so far, numbered in order of first appearance.
pub struct RowPartitioner {
    /// Per spec field: the source column's index and the transform.
    fields: Vec<(usize, ColumnType, Transform)>,
    /// A tuple's key bytes ([`Scalar::key`]) to its index.
    index: HashMap<Vec<u8>, u32>,
    /// A spec of one field with a whole-number value (every date and time transform,
    /// `bucket`, an `int64` column): that value to its tuple's index, hashed with the Fx
    /// hash (no key bytes built, no SipHash: a third of the partitioner's time per row).
    ints: HashMap<i64, u32, rustc_hash::FxBuildHasher>,
    /// A batch's values of such a field ([`whole_numbers`]), kept for the next batch.
    numbers: Vec<Option<i64>>,
    /// The tuples, by index.
    tuples: Vec<PartitionTuple>,
    /// `max_partitions_per_upload`.
    max: u64,
}

impl RowPartitioner {
    /// The partitioner of `spec` (a dataset's recorded or requested spec) over `schema`.
    ///
    /// # Errors
    /// A reason when `spec` does not bind to `schema` (`PartitionBy::bind`'s message).
    pub fn new(spec: &PartitionSpec, schema: &Schema, max: u64) -> Result<Self, String> {
        let by = PartitionBy::parse(&spec.partition_by).map_err(|e| e.to_string())?;
        // `bind` found each source column: its field id is its position + 1.
        let fields = by
            .bind(schema)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|bound| {
                let position = usize::try_from(bound.source_id - 1).unwrap_or_default();
                (position, schema.fields[position].data_type, bound.transform)
            })
            .collect();
        Ok(RowPartitioner {
            fields,
            index: HashMap::new(),
            ints: HashMap::default(),
            numbers: Vec::new(),
            tuples: Vec::new(),
            max,
        })
    }

    /// Numbers a tuple not seen before: `row`'s values of `columns`.
    ///
    /// # Errors
    /// [`ConvertError::TooManyPartitions`] past `max_partitions_per_upload`.
    fn number(&mut self, columns: &[Column<'_>], row: usize) -> lakehouse_convert::Result<u32> {
        if self.tuples.len() as u64 >= self.max {
            return Err(ConvertError::TooManyPartitions { max: self.max });
        }
        let p = self.tuples.len() as u32;
        let tuple = columns
            .iter()
            .map(|column| Scalar::owned(field_value(column, row)))
            .collect();
        self.tuples.push(tuple);
        Ok(p)
    }

    /// The distinct tuples, by index (what [`Partitioner::assign`] numbered).
    pub fn into_tuples(self) -> Vec<PartitionTuple> {
        self.tuples
    }
}

/// A source column of a batch, downcast once per batch.
enum Source<'a> {
    /// `int64`, `time64[us]` and the timestamps: microseconds or the value.
    Micros(&'a [i64]),
    Date(&'a [i32]),
    Utf8(&'a arrow_array::StringArray),
    Bool(&'a arrow_array::BooleanArray),
    Float(&'a [f64]),
}

impl<'a> Source<'a> {
    fn of(column: &'a dyn Array, ty: ColumnType) -> Source<'a> {
        match ty {
            ColumnType::Int64 => Source::Micros(column.as_primitive::<Int64Type>().values()),
            ColumnType::Time64 => {
                Source::Micros(column.as_primitive::<Time64MicrosecondType>().values())
            }
            ColumnType::Timestamp | ColumnType::TimestampUtc => {
                Source::Micros(column.as_primitive::<TimestampMicrosecondType>().values())
            }
            ColumnType::Date32 => Source::Date(column.as_primitive::<Date32Type>().values()),
            ColumnType::Utf8 => Source::Utf8(column.as_string::<i32>()),
            ColumnType::Bool => Source::Bool(column.as_boolean()),
            ColumnType::Float64 => Source::Float(column.as_primitive::<Float64Type>().values()),
        }
    }
}

/// One field's value of one row, borrowed from the batch (`valid`: not null).
fn value_of<'a>(
    source: &Source<'a>,
    valid: bool,
    transform: Transform,
    row: usize,
) -> Option<Scalar<'a>> {
    if !valid {
        return None;
    }
    let value = match source {
        Source::Micros(values) => transform.apply_i64(values[row]),
        Source::Date(values) => transform.apply_date(values[row])?,
        Source::Utf8(array) => transform.apply_str(array.value(row))?,
        Source::Bool(array) => return Some(Scalar::Bool(array.value(row))),
        Source::Float(values) => return Some(Scalar::Float(values[row])),
    };
    Some(Scalar::of(value))
}

/// A spec field bound to a batch: its column, downcast, and its transform.
type Column<'a> = (&'a dyn Array, Source<'a>, Transform);

/// [`value_of`] of one resolved source column.
fn field_value<'a>((column, source, transform): &Column<'a>, row: usize) -> Option<Scalar<'a>> {
    value_of(source, column.is_valid(row), *transform, row)
}

/// The values of one source column under its transform for a whole batch, when they are
/// whole numbers (a `date32`, `time64`, timestamp or `int64` column under any transform that
/// takes it): what [`field_value`] gives row by row as [`Scalar::Int`], in `out` (reused
/// across batches). A row gets `None` when it is null or its transform gives no whole
/// number; the caller then finds its partition by [`field_value`] as for any other spec,
/// which keeps the two paths exact. `None` for the other columns. One pass over the values,
/// without the row-by-row dispatch (docs/performance.md).
fn whole_numbers<'o>(
    (column, source, transform): &Column<'_>,
    out: &'o mut Vec<Option<i64>>,
) -> Option<&'o [Option<i64>]> {
    out.clear();
    let nulls = column.logical_nulls();
    let valid = |row: usize| nulls.as_ref().is_none_or(|nulls| nulls.is_valid(row));
    let whole = |value: PartitionValue<'_>| match Scalar::of(value) {
        Scalar::Int(v) => Some(v),
        Scalar::Bool(_) | Scalar::Float(_) | Scalar::Str(_) => None,
    };
    match source {
        Source::Micros(values) => out.extend(values.iter().enumerate().map(|(row, value)| {
            valid(row)
                .then(|| whole(transform.apply_i64(*value)))
                .flatten()
        })),
        Source::Date(values) => out.extend(values.iter().enumerate().map(|(row, days)| {
            valid(row)
                .then(|| transform.apply_date(*days).and_then(whole))
                .flatten()
        })),
        Source::Utf8(_) | Source::Bool(_) | Source::Float(_) => return None,
    }
    Some(out)
}

/// A partition value borrowed from a batch.
#[derive(Clone, Copy, PartialEq)]
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl<'a> Scalar<'a> {
    /// A transform's result as a partition value: dates, ints and longs as whole numbers.
    fn of(value: PartitionValue<'a>) -> Self {
        match value {
            PartitionValue::Int(v) | PartitionValue::Date(v) => Scalar::Int(i64::from(v)),
            PartitionValue::Long(v) => Scalar::Int(v),
            PartitionValue::Str(s) => Scalar::Str(s),
        }
    }

    /// Appends the value's key bytes: a tag, then the value (strings with their length, so
    /// no two tuples share a key).
    fn key(value: Option<Scalar<'_>>, out: &mut Vec<u8>) {
        match value {
            None => out.push(0),
            Some(Scalar::Bool(b)) => out.extend_from_slice(&[1, u8::from(b)]),
            Some(Scalar::Int(i)) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Some(Scalar::Float(f)) => {
                out.push(3);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Some(Scalar::Str(s)) => {
                out.push(4);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn owned(value: Option<Scalar<'_>>) -> Option<PartitionScalar> {
        value.map(|value| match value {
            Scalar::Bool(b) => PartitionScalar::Bool(b),
            Scalar::Int(i) => PartitionScalar::Int(i),
            Scalar::Float(f) => PartitionScalar::Float(f),
            Scalar::Str(s) => PartitionScalar::Str(s.to_owned()),
        })
    }
}

impl Partitioner for RowPartitioner {
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> lakehouse_convert::Result<()> {
        out.clear();
        let columns: Vec<Column<'_>> = self
            .fields
            .iter()
            .map(|(i, ty, transform)| {
                let column = batch.column(*i).as_ref();
                (column, Source::of(column, *ty), *transform)
            })
            .collect();
        let mut key = Vec::new();
        let mut previous: Option<(Vec<u8>, u32)> = None;
        let mut previous_int: Option<(i64, u32)> = None;
        let mut buffer = std::mem::take(&mut self.numbers);
        let numbers = match columns.as_slice() {
            [column] => whole_numbers(column, &mut buffer),
            _ => None,
        };
        for row in 0..batch.num_rows() {
            let whole = match (numbers, columns.as_slice()) {
                (Some(numbers), _) => numbers[row],
                (None, [column]) => match field_value(column, row) {
                    Some(Scalar::Int(value)) => Some(value),
                    _ => None,
                },
                (None, _) => None,
            };
            if let Some(value) = whole {
                let p = match previous_int {
                    // Rows of one partition often come in runs: no lookup for a repeat.
                    Some((last, p)) if last == value => p,
                    _ => match self.ints.get(&value) {
                        Some(p) => *p,
                        None => {
                            let p = self.number(&columns, row)?;
                            self.ints.insert(value, p);
                            p
                        }
                    },
                };
                previous_int = Some((value, p));
                out.push(p);
                continue;
            }
            key.clear();
            for column in &columns {
                Scalar::key(field_value(column, row), &mut key);
            }
            // Rows of one partition often come in runs: no lookup for a repeat.
            if let Some((last, p)) = &previous
                && *last == key
            {
                out.push(*p);
                continue;
            }
            let p = match self.index.get(key.as_slice()) {
                Some(p) => *p,
                None => {
                    let p = self.number(&columns, row)?;
                    self.index.insert(key.clone(), p);
                    p
                }
            };
            out.push(p);
            match &mut previous {
                Some((last, last_p)) => {
                    last.clone_from(&key);
                    *last_p = p;
                }
                None => previous = Some((key.clone(), p)),
            }
        }
        self.numbers = buffer;
        Ok(())
    }
}

/// A partition file waiting in the spool, its footer not yet stamped with the upload
/// ([`SpooledFile::send_stamped`]): the segments of the sink's one spool file that hold
/// its bytes, in order.
#[derive(Debug, Clone)]
pub struct SpooledFile {
    /// Partition index ([`RowPartitioner`]'s numbering).
    pub partition: u32,
    /// Its number among the partition's files.
    pub file: u32,
    /// The spool file holding its bytes (and every other partition file's).
    pub path: PathBuf,
    /// Its bytes in that file, in order: (offset, length) each, bytes. The last one is its
    /// footer (the bytes `PartitionSink::finish` was given).
    pub segments: Vec<(u64, u64)>,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

/// The read size while a partition file is sent, bytes: a row group is sent in one or a
/// few reads.
const SEND_READ_BYTES: u64 = 1 << 20;

impl SpooledFile {
    /// Writes the file's bytes to `out`, its footer naming the upload whose SHA-256 is
    /// `upload` (`lakehouse_convert::stamp_upload`, on a copy: the spool is only read).
    /// Blocking.
    ///
    /// # Errors
    /// I/O, `out`'s error, or `InvalidData` when the footer is not one the pass wrote.
    pub fn send_stamped(&self, upload: &Sha256Digest, out: &mut impl Write) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let spool = std::fs::File::open(&self.path)?;
        let Some((&(at, length), pages)) = self.segments.split_last() else {
            return Err(io::Error::other("a partition file without a footer"));
        };
        let mut footer = vec![0; usize::try_from(length).map_err(io::Error::other)?];
        spool.read_exact_at(&mut footer, at)?;
        lakehouse_convert::stamp_upload(&mut footer, upload.as_str())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut buffer = Vec::new();
        for &(start, length) in pages {
            let mut done = 0;
            while done < length {
                let n = (length - done).min(SEND_READ_BYTES);
                buffer.resize(usize::try_from(n).map_err(io::Error::other)?, 0);
                spool.read_exact_at(&mut buffer, start + done)?;
                out.write_all(&buffer)?;
                done += n;
            }
        }
        out.write_all(&footer)?;
        out.flush()
    }
}

/// Where the partition files of one upload wait: one spool file in a spool directory of
/// their own (removed with the [`tempfile::TempDir`] that holds it), each file's bytes
/// appended as the encoders hand them over, so a row group costs one write and no file is
/// created, opened or removed per partition. Not hashed here: storaged answers each file's
/// SHA-256 when it is stored, and ingestd checks that answer's key and size as it does for
/// an unpartitioned upload's objects.
pub struct SpoolSink {
    path: PathBuf,
    /// The spool file, opened at the first append.
    out: Option<std::fs::File>,
    /// Bytes written to it so far.
    end: u64,
    /// The segments so far of each file being written, per (partition, file).
    open: HashMap<(u32, u32), Vec<(u64, u64)>>,
    /// Files complete, in the order they were closed.
    pub done: Vec<SpooledFile>,
}

impl SpoolSink {
    /// A sink writing into `dir` (which exists and is empty).
    pub fn new(dir: &Path) -> Self {
        SpoolSink {
            path: dir.join("partitions.parquet-segments"),
            out: None,
            end: 0,
            open: HashMap::new(),
            done: Vec::new(),
        }
    }

    /// Appends `bytes` to the spool file; returns their segment.
    fn write(&mut self, bytes: &[u8]) -> io::Result<(u64, u64)> {
        let out = match &mut self.out {
            Some(out) => out,
            slot => slot.insert(
                std::fs::OpenOptions::new()
                    .create_new(true)
                    .write(true)
                    .open(&self.path)?,
            ),
        };
        out.write_all(bytes)?;
        let segment = (self.end, bytes.len() as u64);
        self.end += bytes.len() as u64;
        Ok(segment)
    }
}

impl PartitionSink for SpoolSink {
    fn append(&mut self, partition: u32, file: u32, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let segment = self.write(bytes)?;
        self.open
            .entry((partition, file))
            .or_default()
            .push(segment);
        Ok(())
    }

    fn finish(
        &mut self,
        partition: u32,
        file: u32,
        footer: &[u8],
        size: u64,
        rows: u64,
    ) -> io::Result<()> {
        let footer = self.write(footer)?;
        let mut segments = self.open.remove(&(partition, file)).unwrap_or_default();
        segments.push(footer);
        let written: u64 = segments.iter().map(|(_, length)| length).sum();
        if written != size {
            return Err(io::Error::other(format!(
                "partition {partition} file {file}: {written} bytes spooled, the writer made {size}"
            )));
        }
        self.done.push(SpooledFile {
            partition,
            file,
            path: self.path.clone(),
            segments,
            size,
            rows,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use lakehouse_api::{Field, PartitionScalar};
    use std::sync::Arc;

    fn partitioner(by: &str, schema: &Schema) -> RowPartitioner {
        let spec = PartitionBy::parse(by).unwrap().spec(schema).unwrap();
        RowPartitioner::new(&spec, schema, 100).unwrap()
    }

    fn schema() -> Schema {
        let field = |name: &str, data_type| Field {
            name: name.into(),
            data_type,
            nullable: true,
        };
        Schema {
            fields: vec![
                field("id", ColumnType::Int64),
                field("city", ColumnType::Utf8),
            ],
        }
    }

    fn batch(ids: Vec<Option<i64>>, cities: Vec<Option<&str>>) -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids)) as Arc<dyn Array>),
            (
                "city",
                Arc::new(StringArray::from(cities)) as Arc<dyn Array>,
            ),
        ])
        .unwrap()
    }

    #[test]
    fn whole_numbers_and_nulls_share_one_numbering_by_first_appearance() {
        let mut rows = partitioner("id", &schema());
        let mut out = Vec::new();
        // A null row and the value 0 stay apart (an Int64Array stores 0 under a null).
        let ids = vec![
            Some(7),
            None,
            Some(7),
            Some(-3),
            None,
            Some(9),
            Some(-3),
            Some(0),
        ];
        rows.assign(&batch(ids, vec![None; 8]), &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 2, 1, 3, 2, 4]);
        // A later batch keeps the numbering and adds to it.
        rows.assign(
            &batch(vec![Some(9), Some(8), None, Some(0)], vec![None; 4]),
            &mut out,
        )
        .unwrap();
        assert_eq!(out, [3, 5, 1, 4]);
        let int = |v| Some(PartitionScalar::Int(v));
        assert_eq!(
            rows.into_tuples(),
            [
                vec![int(7)],
                vec![None],
                vec![int(-3)],
                vec![int(9)],
                vec![int(0)],
                vec![int(8)]
            ]
        );
    }

    /// Dates and timestamps take the one-pass path: each row's partition is what the
    /// transform gives its value, across the epoch, and a null row is the null partition.
    #[test]
    fn dates_and_timestamps_get_their_transforms_value() {
        let field = |name: &str, data_type| Field {
            name: name.into(),
            data_type,
            nullable: true,
        };
        let schema = Schema {
            fields: vec![
                field("d", ColumnType::Date32),
                field("ts", ColumnType::TimestampUtc),
            ],
        };
        // 1969-12-31, 1970-01-01, 1970-02-01, null, 1970-01-31.
        let days = vec![Some(-1), Some(0), Some(31), None, Some(30)];
        let micros = |day: i32| i64::from(day) * 86_400_000_000 + 3_600_000_000;
        let batch = RecordBatch::try_from_iter([
            (
                "d",
                Arc::new(arrow_array::Date32Array::from(days.clone())) as Arc<dyn Array>,
            ),
            (
                "ts",
                Arc::new(
                    arrow_array::TimestampMicrosecondArray::from(
                        days.iter().map(|d| d.map(micros)).collect::<Vec<_>>(),
                    )
                    .with_timezone("UTC"),
                ) as Arc<dyn Array>,
            ),
        ])
        .unwrap();
        let int = |v| Some(PartitionScalar::Int(v));
        for (by, tuples) in [
            ("month(d)", vec![int(-1), int(0), int(1), None]),
            ("month(ts)", vec![int(-1), int(0), int(1), None]),
            ("year(ts)", vec![int(-1), int(0), None]),
        ] {
            let mut rows = partitioner(by, &schema);
            let mut out = Vec::new();
            rows.assign(&batch, &mut out).unwrap();
            let expected_rows: &[u32] = if by.starts_with("year") {
                &[0, 1, 1, 2, 1]
            } else {
                &[0, 1, 2, 3, 1]
            };
            assert_eq!(out, expected_rows, "{by}");
            let tuples: Vec<PartitionTuple> = tuples.into_iter().map(|t| vec![t]).collect();
            assert_eq!(rows.into_tuples(), tuples, "{by}");
        }
    }

    #[test]
    fn tuples_of_several_fields_are_numbered_like_one() {
        let mut rows = partitioner("bucket(2,id),city", &schema());
        let mut out = Vec::new();
        let ids = vec![Some(1), Some(1), Some(1), None, Some(1)];
        let cities = vec![Some("Oslo"), Some("Lima"), Some("Oslo"), Some("Oslo"), None];
        rows.assign(&batch(ids, cities), &mut out).unwrap();
        assert_eq!(out, [0, 1, 0, 2, 3]);
        assert_eq!(rows.into_tuples().len(), 4);
    }

    #[test]
    fn past_the_limit_is_too_many_partitions_on_either_path() {
        for by in ["id", "bucket(8,id),city"] {
            let spec = PartitionBy::parse(by).unwrap().spec(&schema()).unwrap();
            let mut rows = RowPartitioner::new(&spec, &schema(), 2).unwrap();
            let ids = vec![Some(1), Some(2), Some(3)];
            let cities = vec![Some("a"), Some("b"), Some("c")];
            let error = rows.assign(&batch(ids, cities), &mut Vec::new());
            assert!(
                matches!(error, Err(ConvertError::TooManyPartitions { max: 2 })),
                "{by}: {error:?}"
            );
        }
    }

    #[test]
    fn files_sent_from_the_one_spool_file_are_whole_and_name_the_upload() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::RowAccessor;
        // Two partitions (one per city), rows interleaved, and a budget small enough
        // that each file gets several row groups, so their segments alternate in the spool.
        let mut csv = String::from("id,city\n");
        for id in 0..100_000 {
            let city = ["Oslo", "Lima"][id % 2];
            csv.push_str(&format!("{id},{city}\n"));
        }
        let schema = schema();
        let mut rows = partitioner("city", &schema);
        let dir = tempfile::tempdir().unwrap();
        let mut sink = SpoolSink::new(dir.path());
        let config = lakehouse_convert::PartitionedConfig {
            buffer_bytes: 256 << 10,
            target_file_bytes: u64::MAX,
            spill_dir: None,
        };
        lakehouse_convert::write_parquet_partitioned(
            csv.as_bytes(),
            &lakehouse_api::CsvOptions::default(),
            lakehouse_convert::Expected::Registered(&schema),
            &mut rows,
            &mut sink,
            config,
        )
        .unwrap()
        .unwrap();
        // Small files are closed early too (the budget bounds their metadata); some file
        // must have several row groups for the test to say anything.
        assert!(sink.done.iter().any(|file| file.segments.len() > 3));
        let upload = Sha256Digest::from_bytes([7; 32]);
        let mut total = 0;
        for file in &sink.done {
            let mut sent = Vec::new();
            file.send_stamped(&upload, &mut sent).unwrap();
            assert_eq!(sent.len() as u64, file.size);
            let reader = SerializedFileReader::new(bytes::Bytes::from(sent)).unwrap();
            let metadata = reader.metadata();
            // A row group per segment but the footer's, which may end with the last one.
            assert!(metadata.num_row_groups() + 1 >= file.segments.len());
            assert_eq!(metadata.file_metadata().num_rows() as u64, file.rows);
            let entries = metadata.file_metadata().key_value_metadata().unwrap();
            let named = entries
                .iter()
                .find(|e| e.key == lakehouse_convert::UPLOAD_KEY)
                .and_then(|e| e.value.clone());
            assert_eq!(named.as_deref(), Some(upload.as_str()));
            // Every row of the file is in its partition.
            let cities: std::collections::BTreeSet<String> = reader
                .get_row_iter(None)
                .unwrap()
                .map(|row| row.unwrap().get_string(1).unwrap().clone())
                .collect();
            assert_eq!(cities.len(), 1, "{cities:?}");
            total += file.rows;
        }
        assert_eq!(total, 100_000);
    }
}
