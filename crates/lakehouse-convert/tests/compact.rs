//! `lakehouse_convert::compact` (docs/contract.md section 10): the rows of the inputs in
//! order, output bytes a pure function of the inputs, files cut at the target size at
//! row-group boundaries, inputs of an older schema padded with nulls.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use bytes::Bytes;
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{CompactSink, RangeRead, compact, infer_schema, write_parquet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// An input held in memory, counting the bytes read from it.
struct InMemory {
    bytes: Bytes,
    read: AtomicU64,
}

impl RangeRead for InMemory {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_range(&self, start: u64, length: u64) -> io::Result<Bytes> {
        self.read.fetch_add(length, Ordering::Relaxed);
        let start = usize::try_from(start).unwrap();
        Ok(self
            .bytes
            .slice(start..start + usize::try_from(length).unwrap()))
    }
}

/// Output files in memory, with the sizes and row counts [`compact`] reported.
#[derive(Default)]
struct Files(Vec<(Vec<u8>, u64, u64)>);

impl CompactSink for Files {
    type Writer = Vec<u8>;

    fn open(&mut self) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn close(&mut self, writer: Vec<u8>, size: u64, rows: u64) -> io::Result<()> {
        self.0.push((writer, size, rows));
        Ok(())
    }
}

fn csv(first: i64, count: i64, extra: bool) -> String {
    let mut out = String::from(if extra {
        "id,name,extra\n"
    } else {
        "id,name\n"
    });
    for id in first..first + count {
        out.push_str(&format!("{id},name-{id}"));
        if extra {
            out.push_str(&format!(",{}", id * 2));
        }
        out.push('\n');
    }
    out
}

fn parquet(csv: &str, schema: &Schema) -> Arc<dyn RangeRead> {
    let mut out = Vec::new();
    write_parquet(csv.as_bytes(), &CsvOptions::default(), schema, &mut out).unwrap();
    Arc::new(InMemory {
        bytes: Bytes::from(out),
        read: AtomicU64::new(0),
    })
}

fn batches(file: &[u8]) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(file))
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `(id, name, extra)` of every row of `files`, in order.
fn rows(files: &Files) -> Vec<(i64, String, Option<i64>)> {
    let mut out = Vec::new();
    for (file, _, _) in &files.0 {
        for batch in batches(file) {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            let extra = (batch.num_columns() > 2)
                .then(|| batch.column(2).as_primitive::<Int64Type>().clone());
            for i in 0..batch.num_rows() {
                let e = extra
                    .as_ref()
                    .and_then(|e| (!e.is_null(i)).then(|| e.value(i)));
                out.push((ids.value(i), names.value(i).to_owned(), e));
            }
        }
    }
    out
}

fn two_columns() -> Schema {
    infer_schema(csv(0, 1, false).as_bytes(), &CsvOptions::default())
        .unwrap()
        .schema
}

#[test]
fn rows_and_order_are_kept_and_the_bytes_are_a_function_of_the_inputs() {
    let schema = two_columns();
    let inputs = vec![
        parquet(&csv(0, 3000, false), &schema),
        parquet(&csv(3000, 5, false), &schema),
        parquet(&csv(3005, 200_000, false), &schema),
    ];
    let mut first = Files::default();
    let stats = compact(&schema, &inputs, u64::MAX, &mut first).unwrap();
    assert_eq!(stats.rows, 203_005);
    assert_eq!(stats.files, 1);
    assert_eq!(first.0[0].1, first.0[0].0.len() as u64, "the size reported");
    assert_eq!(first.0[0].2, 203_005);
    let want: Vec<_> = (0..203_005)
        .map(|id| (id, format!("name-{id}"), None))
        .collect();
    assert_eq!(rows(&first), want);
    let mut second = Files::default();
    compact(&schema, &inputs, u64::MAX, &mut second).unwrap();
    assert_eq!(first.0, second.0, "the same inputs give the same bytes");
}

#[test]
fn files_are_cut_at_the_target_at_row_group_boundaries() {
    let schema = two_columns();
    let inputs: Vec<_> = (0..8)
        .map(|i| parquet(&csv(i * 50_000, 50_000, false), &schema))
        .collect();
    let target = 600_000;
    let mut files = Files::default();
    let stats = compact(&schema, &inputs, target, &mut files).unwrap();
    // About the target each (before compression: somewhat less after it).
    assert!(
        stats.files >= stats.bytes_written.div_ceil(target)
            && stats.files <= 2 * stats.bytes_written.div_ceil(target),
        "{stats:?}"
    );
    for (file, size, rows) in &files.0 {
        assert!(*size <= 2 * target, "about the target: {size}");
        assert_eq!(file.len() as u64, *size);
        assert_eq!(
            batches(file)
                .iter()
                .map(|b| b.num_rows() as u64)
                .sum::<u64>(),
            *rows
        );
    }
    let want: Vec<_> = (0..400_000)
        .map(|id| (id, format!("name-{id}"), None))
        .collect();
    assert_eq!(rows(&files), want);
}

#[test]
fn inputs_of_an_older_schema_get_nulls_in_the_added_columns() {
    let old = two_columns();
    let mut new = old.clone();
    new.fields.push(Field::new("extra", ColumnType::Int64));
    let inputs = vec![
        parquet(&csv(0, 3, false), &old),
        parquet(&csv(3, 2, true), &new),
    ];
    let mut files = Files::default();
    compact(&new, &inputs, u64::MAX, &mut files).unwrap();
    assert_eq!(
        rows(&files),
        vec![
            (0, "name-0".into(), None),
            (1, "name-1".into(), None),
            (2, "name-2".into(), None),
            (3, "name-3".into(), Some(6)),
            (4, "name-4".into(), Some(8)),
        ]
    );
    // A file whose columns are not a prefix of the schema is refused, naming its position.
    let other = Schema {
        fields: vec![Field::new("other", ColumnType::Utf8)],
    };
    let error = compact(&other, &inputs, u64::MAX, &mut Files::default()).unwrap_err();
    assert!(error.to_string().contains("input 0"), "{error}");
}

#[test]
fn each_input_byte_is_read_once() {
    let schema = two_columns();
    let mut out = Vec::new();
    write_parquet(
        csv(0, 600_000, false).as_bytes(),
        &CsvOptions::default(),
        &schema,
        &mut out,
    )
    .unwrap();
    let size = out.len() as u64;
    let input = Arc::new(InMemory {
        bytes: Bytes::from(out),
        read: AtomicU64::new(0),
    });
    let inputs: Vec<Arc<dyn RangeRead>> = vec![input.clone()];
    let stats = compact(&schema, &inputs, u64::MAX, &mut Files::default()).unwrap();
    assert_eq!(stats.rows, 600_000);
    // Row group by row group, each once; the footer's 64 KiB tail may overlap the last.
    let read = input.read.load(Ordering::Relaxed);
    assert!(
        read <= size + 64 * 1024,
        "read {read} bytes of a {size}-byte file"
    );
}
