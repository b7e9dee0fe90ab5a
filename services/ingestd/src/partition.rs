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
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The partition of every row: the dataset's `partition_by` bound to its schema, and the
/// distinct tuples seen so far, numbered in order of first appearance.
pub struct RowPartitioner {
    /// Per spec field: the source column's index and the transform.
    fields: Vec<(usize, ColumnType, Transform)>,
    /// A tuple's key bytes ([`RowPartitioner::key`]) to its index.
    index: HashMap<Vec<u8>, u32>,
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
            tuples: Vec::new(),
            max,
        })
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
    Some(match value {
        PartitionValue::Int(v) | PartitionValue::Date(v) => Scalar::Int(i64::from(v)),
        PartitionValue::Long(v) => Scalar::Int(v),
        PartitionValue::Str(s) => Scalar::Str(s),
    })
}

/// [`value_of`] of one resolved source column.
fn field_value<'a>(
    (column, source, transform): &(&dyn Array, Source<'a>, Transform),
    row: usize,
) -> Option<Scalar<'a>> {
    value_of(source, column.is_valid(row), *transform, row)
}

/// A partition value borrowed from a batch.
#[derive(Clone, Copy, PartialEq)]
enum Scalar<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar<'_> {
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
        let columns: Vec<(&dyn Array, Source<'_>, Transform)> = self
            .fields
            .iter()
            .map(|(i, ty, transform)| {
                let column = batch.column(*i).as_ref();
                (column, Source::of(column, *ty), *transform)
            })
            .collect();
        let mut key = Vec::new();
        let mut previous: Option<(Vec<u8>, u32)> = None;
        for row in 0..batch.num_rows() {
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
                    if self.tuples.len() as u64 >= self.max {
                        return Err(ConvertError::TooManyPartitions { max: self.max });
                    }
                    let p = self.tuples.len() as u32;
                    let tuple = columns
                        .iter()
                        .map(|column| Scalar::owned(field_value(column, row)))
                        .collect();
                    self.tuples.push(tuple);
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
        Ok(())
    }
}

/// A partition file waiting in the spool directory, its footer not yet stamped with the
/// upload ([`SpooledFile::stamp`]).
#[derive(Debug, Clone)]
pub struct SpooledFile {
    /// Partition index ([`RowPartitioner`]'s numbering).
    pub partition: u32,
    /// Its number among the partition's files.
    pub file: u32,
    /// Where it is.
    pub path: PathBuf,
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
    /// Where its footer starts (the bytes `PartitionSink::finish` was given), bytes.
    footer_at: u64,
    /// SHA-256 state over the bytes before the footer.
    pages: Sha256,
}

impl SpooledFile {
    /// Names the upload whose SHA-256 is `upload` in the file's footer, in place
    /// (`lakehouse_convert::stamp_upload`), and returns the SHA-256 of the file's bytes then.
    /// Reads and rewrites the footer only. Blocking.
    ///
    /// # Errors
    /// I/O, or `InvalidData` when the footer is not one the pass wrote.
    pub fn stamp(&self, upload: &Sha256Digest) -> io::Result<Sha256Digest> {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)?;
        let length = self.size.saturating_sub(self.footer_at);
        let mut footer = vec![0; usize::try_from(length).map_err(io::Error::other)?];
        file.read_exact_at(&mut footer, self.footer_at)?;
        lakehouse_convert::stamp_upload(&mut footer, upload.as_str())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        file.write_all_at(&footer, self.footer_at)?;
        let mut hash = self.pages.clone();
        hash.update(&footer);
        Ok(Sha256Digest::from_bytes(hash.finalize().into()))
    }
}

/// The partition files of one upload, written into a spool directory of their own (removed
/// with the [`tempfile::TempDir`] that holds it), each hashed as it is written, up to its
/// footer.
pub struct SpoolSink {
    dir: PathBuf,
    /// The file being written per (partition, file): its running hash.
    open: HashMap<(u32, u32), Sha256>,
    /// Files complete, in the order they were closed.
    pub done: Vec<SpooledFile>,
}

impl SpoolSink {
    /// A sink writing into `dir` (which exists and is empty).
    pub fn new(dir: &Path) -> Self {
        SpoolSink {
            dir: dir.to_owned(),
            open: HashMap::new(),
            done: Vec::new(),
        }
    }

    fn path(&self, partition: u32, file: u32) -> PathBuf {
        self.dir.join(format!("p{partition}-{file}.parquet"))
    }

    /// Appends `bytes` to the file (opened for the call only: no descriptor is held between
    /// row groups, whatever the number of partitions).
    fn write(&self, partition: u32, file: u32, bytes: &[u8]) -> io::Result<()> {
        let mut out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(partition, file))?;
        out.write_all(bytes)
    }
}

impl PartitionSink for SpoolSink {
    fn append(&mut self, partition: u32, file: u32, bytes: &[u8]) -> io::Result<()> {
        self.write(partition, file, bytes)?;
        self.open
            .entry((partition, file))
            .or_default()
            .update(bytes);
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
        self.write(partition, file, footer)?;
        let pages = self.open.remove(&(partition, file)).unwrap_or_default();
        self.done.push(SpooledFile {
            partition,
            file,
            path: self.path(partition, file),
            size,
            rows,
            footer_at: size - footer.len() as u64,
            pages,
        });
        Ok(())
    }
}
