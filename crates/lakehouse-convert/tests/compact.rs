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
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::serialized_reader::ReadOptionsBuilder;
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

/// The bytes of each column chunk of row group `index` of `file`.
fn chunks(file: &[u8], index: usize) -> Vec<Vec<u8>> {
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(file)).unwrap();
    let group = reader.metadata().row_group(index).clone();
    group
        .columns()
        .iter()
        .map(|column| {
            let (start, length) = column.byte_range();
            file[start as usize..(start + length) as usize].to_vec()
        })
        .collect()
}

#[test]
fn full_row_groups_are_copied_as_they_are_with_their_page_index() {
    let schema = two_columns();
    let big = |first, count| {
        let mut out = Vec::new();
        let csv = csv(first, count, false);
        write_parquet(csv.as_bytes(), &CsvOptions::default(), &schema, &mut out).unwrap();
        out
    };
    // Row groups of 131,072, 131,072 and 37,856 rows; then 5; then 131,072 and 8,928.
    let (first, third) = (big(0, 300_000), big(300_005, 140_000));
    let inputs: Vec<Arc<dyn RangeRead>> = vec![
        Arc::new(InMemory {
            bytes: Bytes::from(first.clone()),
            read: AtomicU64::new(0),
        }),
        parquet(&csv(300_000, 5, false), &schema),
        Arc::new(InMemory {
            bytes: Bytes::from(third.clone()),
            read: AtomicU64::new(0),
        }),
    ];
    let mut files = Files::default();
    compact(&schema, &inputs, u64::MAX, &mut files).unwrap();
    let out = &files.0[0].0;
    let reader = SerializedFileReader::new_with_options(
        Bytes::copy_from_slice(out),
        ReadOptionsBuilder::new().with_page_index().build(),
    )
    .unwrap();
    let metadata = reader.metadata();
    let sizes: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, [131_072, 131_072, 37_861, 131_072, 8_928]);
    // The full row groups are the inputs' column chunks, byte for byte.
    assert_eq!(chunks(out, 0), chunks(&first, 0));
    assert_eq!(chunks(out, 1), chunks(&first, 1));
    assert_eq!(chunks(out, 3), chunks(&third, 0));
    // Every row group, copied or encoded, has its page index, pointing at its own pages.
    for index in 0..sizes.len() {
        let page_index = metadata.page_index_for_row_group(index);
        for column in 0..2 {
            let pages = page_index.offset_index(column).expect("an offset index");
            let (start, length) = metadata.row_group(index).column(column).byte_range();
            assert!(pages.page_locations().iter().all(|page| {
                page.offset as u64 >= start
                    && (page.offset as u64 + page.compressed_page_size as u64) <= start + length
            }));
            assert!(page_index.column_index(column).is_some());
        }
    }
    let want: Vec<_> = (0..440_005)
        .map(|id| (id, format!("name-{id}"), None))
        .collect();
    assert_eq!(rows(&files), want);
}
