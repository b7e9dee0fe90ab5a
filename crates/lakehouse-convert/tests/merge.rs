//! `lakehouse_convert::plan_merge` and `rewrite_without` (docs/contract.md section 11): the
//! counts and the rows each file loses; a file whose key statistics cannot hold an upload
//! key is not read past its footer; composite and string keys compare by typed value; nulls
//! and repeated keys name their rows; the key memory cap; random merges against a model.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bytes::Bytes;
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{
    CompactSink, ConvertError, KeyedMode, RangeRead, plan_merge, rewrite_without, write_parquet,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file held in memory, counting the reads of it.
struct InMemory {
    bytes: Bytes,
    read: AtomicU64,
}

impl RangeRead for InMemory {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_range(&self, start: u64, length: u64) -> io::Result<Bytes> {
        self.read.fetch_add(1, Ordering::Relaxed);
        let start = usize::try_from(start).unwrap();
        Ok(self
            .bytes
            .slice(start..start + usize::try_from(length).unwrap()))
    }
}

#[derive(Default)]
struct Files(Vec<Vec<u8>>);

impl CompactSink for Files {
    type Writer = Vec<u8>;

    fn open(&mut self) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn close(&mut self, writer: Vec<u8>, _size: u64, _rows: u64) -> io::Result<()> {
        self.0.push(writer);
        Ok(())
    }
}

fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

fn file(rows: &[(i64, &str)], schema: &Schema) -> Arc<InMemory> {
    let mut csv = String::from("id,name\n");
    for (id, name) in rows {
        csv.push_str(&format!("{id},{name}\n"));
    }
    let mut out = Vec::new();
    write_parquet(csv.as_bytes(), &CsvOptions::default(), schema, &mut out).unwrap();
    Arc::new(InMemory {
        bytes: Bytes::from(out),
        read: AtomicU64::new(0),
    })
}

fn inputs(files: &[Arc<InMemory>]) -> Vec<Arc<dyn RangeRead>> {
    files
        .iter()
        .map(|f| Arc::clone(f) as Arc<dyn RangeRead>)
        .collect()
}

fn rows_of(bytes: &[u8]) -> Vec<(i64, String)> {
    let mut rows = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(Bytes::copy_from_slice(bytes))
        .unwrap()
        .build()
        .unwrap()
    {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let names = batch.column(1).as_string::<i32>();
        for i in 0..batch.num_rows() {
            rows.push((ids.value(i), names.value(i).to_owned()));
        }
    }
    rows
}

const MEMORY: u64 = 64 << 20;

#[test]
fn counts_and_removed_rows_and_a_file_out_of_bounds_is_not_read() {
    let schema = schema();
    let low = file(&[(1, "a"), (2, "b"), (3, "c")], &schema);
    let high = file(&[(100, "x"), (101, "y")], &schema);
    let upload = file(&[(2, "b"), (3, "changed"), (7, "new")], &schema);
    let table = [Arc::clone(&low), Arc::clone(&high)];
    let plan = plan_merge(
        &schema,
        &["id".into()],
        KeyedMode::Merge,
        &inputs(std::slice::from_ref(&upload)),
        &inputs(&table),
        MEMORY,
    )
    .unwrap();
    assert_eq!((plan.inserted, plan.updated, plan.unchanged), (1, 1, 1));
    // Row 0 of the upload (id 2) is unchanged: left out of the upload's file.
    assert_eq!(plan.upload_removed, vec![vec![0]]);
    // Only id 3 (row 2 of the first file) is replaced.
    assert_eq!(plan.table_removed, vec![(0, vec![2])]);
    // The second file's statistics (100..101) hold no upload key: only its footer is read
    // (one read of its tail).
    assert_eq!(high.read.load(Ordering::Relaxed), 1);
    assert!(low.read.load(Ordering::Relaxed) > 1);
    // A file whose bounds do hold a key is read further than its footer.
    let reread = file(&[(100, "x"), (101, "y")], &schema);
    let _ = plan_merge(
        &schema,
        &["id".into()],
        KeyedMode::Merge,
        &inputs(&[file(&[(100, "z")], &schema)]),
        &inputs(std::slice::from_ref(&reread)),
        MEMORY,
    )
    .unwrap();
    assert!(reread.read.load(Ordering::Relaxed) > 1);

    // The rewrite leaves the removed rows out, and no file when none is left.
    let mut files = Files::default();
    let low_input: Vec<Arc<dyn RangeRead>> = inputs(&[low]);
    rewrite_without(&schema, &low_input, &[vec![2]], 1 << 20, &mut files).unwrap();
    assert_eq!(
        rows_of(&files.0[0]),
        vec![(1, "a".to_owned()), (2, "b".to_owned())]
    );
    let mut none = Files::default();
    rewrite_without(&schema, &low_input, &[vec![0, 1, 2]], 1 << 20, &mut none).unwrap();
    assert!(none.0.is_empty());
}

#[test]
fn deletes_count_rows_and_keys_not_found() {
    let schema = schema();
    let key_schema = Schema {
        fields: vec![Field::new("id", ColumnType::Int64)],
    };
    let table = [
        file(&[(1, "a"), (2, "b")], &schema),
        file(&[(2, "again")], &schema),
    ];
    let mut csv = Vec::new();
    write_parquet(
        &b"id\n2\n9\n"[..],
        &CsvOptions::default(),
        &key_schema,
        &mut csv,
    )
    .unwrap();
    let keys: Arc<dyn RangeRead> = Arc::new(InMemory {
        bytes: Bytes::from(csv),
        read: AtomicU64::new(0),
    });
    let plan = plan_merge(
        &schema,
        &["id".into()],
        KeyedMode::Delete,
        &[keys],
        &inputs(&table),
        MEMORY,
    )
    .unwrap();
    // Key 2 is held twice: both rows go.
    assert_eq!((plan.deleted, plan.not_found), (2, 1));
    assert_eq!(plan.table_removed, vec![(0, vec![1]), (1, vec![0])]);
}

#[test]
fn null_and_repeated_keys_name_their_rows_and_keys_past_the_cap_are_matched_in_parts() {
    let schema = schema();
    let upload = file(&[(1, "a"), (2, "b"), (1, "c")], &schema);
    let error = plan_merge(
        &schema,
        &["id".into()],
        KeyedMode::Merge,
        &inputs(&[upload]),
        &[],
        MEMORY,
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            ConvertError::DuplicateKey {
                first: 0,
                second: 2
            }
        ),
        "{error}"
    );
    let mut out = Vec::new();
    write_parquet(
        &b"id,name\n1,a\n,b\n"[..],
        &CsvOptions::default(),
        &schema,
        &mut out,
    )
    .unwrap();
    let nulls: Arc<dyn RangeRead> = Arc::new(InMemory {
        bytes: Bytes::from(out),
        read: AtomicU64::new(0),
    });
    let error = plan_merge(
        &schema,
        &["id".into()],
        KeyedMode::Merge,
        &[nulls],
        &[],
        MEMORY,
    )
    .unwrap_err();
    assert!(
        matches!(&error, ConvertError::NullKey { row: 1, column } if column == "id"),
        "{error}"
    );
    // Past the memory cap the keys are matched in parts: the same plan. Far past it
    // (even 256 parts do not fit), a refusal.
    let many: Vec<(i64, &str)> = (0..1000).map(|i| (i * 2, "n")).collect();
    let table: Vec<(i64, &str)> = (0..1500).map(|i| (i, "n")).collect();
    let (upload, table) = (file(&many, &schema), file(&table, &schema));
    let planned = |memory| {
        plan_merge(
            &schema,
            &["id".into()],
            KeyedMode::Merge,
            &inputs(std::slice::from_ref(&upload)),
            &inputs(std::slice::from_ref(&table)),
            memory,
        )
    };
    let whole = planned(MEMORY).unwrap();
    let before = table.read.load(Ordering::Relaxed);
    let in_parts = planned(20_000).unwrap();
    assert_eq!(in_parts, whole);
    assert_eq!((whole.unchanged, whole.inserted), (750, 250));
    // The table was read once per part, more than once in all.
    assert!(table.read.load(Ordering::Relaxed) - before > 2);
    let error = planned(100).unwrap_err();
    assert!(
        matches!(error, ConvertError::MergeTooLarge { max: 100, .. }),
        "{error}"
    );
}

#[test]
fn a_composite_key_of_strings_compares_by_value() {
    let schema = Schema {
        fields: vec![
            Field::new("region", ColumnType::Utf8),
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    };
    let write = |csv: &str| {
        let mut out = Vec::new();
        write_parquet(csv.as_bytes(), &CsvOptions::default(), &schema, &mut out).unwrap();
        Arc::new(InMemory {
            bytes: Bytes::from(out),
            read: AtomicU64::new(0),
        }) as Arc<dyn RangeRead>
    };
    let table = write("region,id,name\neu,1,a\nus,1,b\neu,2,c\n");
    let upload = write("region,id,name\nus,1,B\neu,3,new\n");
    let plan = plan_merge(
        &schema,
        &["region".into(), "id".into()],
        KeyedMode::Merge,
        &[upload],
        &[table],
        MEMORY,
    )
    .unwrap();
    assert_eq!((plan.inserted, plan.updated, plan.unchanged), (1, 1, 0));
    assert_eq!(plan.table_removed, vec![(0, vec![1])]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A merge's plan applied to the table (rows removed, the upload's kept rows added)
    /// gives the model: the table's rows with the upload's replacing those of their key.
    #[test]
    fn a_planned_merge_gives_the_model(
        table in proptest::collection::vec(
            proptest::collection::btree_map(0i64..60, 0u8..3, 0..20), 1..4),
        upload in proptest::collection::btree_map(0i64..80, 0u8..3, 0..30),
    ) {
        let schema = schema();
        // Keys unique across the table's files, as merges keep them.
        let mut seen = std::collections::BTreeSet::new();
        let table: Vec<BTreeMap<i64, u8>> = table
            .into_iter()
            .map(|f| f.into_iter().filter(|(k, _)| seen.insert(*k)).collect())
            .collect();
        let name = |v: u8| ["p", "q", "r"][v as usize];
        let files: Vec<Arc<InMemory>> = table
            .iter()
            .map(|f| file(&f.iter().map(|(k, v)| (*k, name(*v))).collect::<Vec<_>>(), &schema))
            .collect();
        let delta = file(&upload.iter().map(|(k, v)| (*k, name(*v))).collect::<Vec<_>>(), &schema);
        let plan = plan_merge(
            &schema,
            &["id".into()],
            KeyedMode::Merge,
            &inputs(std::slice::from_ref(&delta)),
            &inputs(&files),
            MEMORY,
        )
        .unwrap();
        let mut model: BTreeMap<i64, String> = table
            .iter()
            .flat_map(|f| f.iter().map(|(k, v)| (*k, name(*v).to_owned())))
            .collect();
        for (k, v) in &upload {
            model.insert(*k, name(*v).to_owned());
        }
        let mut merged: Vec<(i64, String)> = Vec::new();
        let removed: BTreeMap<usize, Vec<u64>> = plan.table_removed.iter().cloned().collect();
        for (at, f) in files.iter().enumerate() {
            let mut out = Files::default();
            let gone = removed.get(&at).cloned().unwrap_or_default();
            let one: Vec<Arc<dyn RangeRead>> = inputs(std::slice::from_ref(f));
            rewrite_without(&schema, &one, &[gone], 1 << 20, &mut out).unwrap();
            for bytes in &out.0 {
                merged.extend(rows_of(bytes));
            }
        }
        let mut out = Files::default();
        rewrite_without(&schema, &inputs(&[delta]), &plan.upload_removed, 1 << 20, &mut out).unwrap();
        for bytes in &out.0 {
            merged.extend(rows_of(bytes));
        }
        let mut got = BTreeMap::new();
        for (k, v) in merged {
            prop_assert!(got.insert(k, v).is_none(), "key {} twice", k);
        }
        prop_assert_eq!(got, model);
        prop_assert_eq!(plan.inserted + plan.updated + plan.unchanged, upload.len() as u64);
    }
}

#[test]
fn row_groups_that_keep_their_rows_are_copied_as_they_are() {
    let schema = schema();
    let rows: Vec<(i64, String)> = (0..300_000).map(|i| (i, format!("n{}", i % 97))).collect();
    let borrowed: Vec<(i64, &str)> = rows.iter().map(|(i, n)| (*i, n.as_str())).collect();
    let input = file(&borrowed, &schema);
    let before = ParquetRecordBatchReaderBuilder::try_new(input.bytes.clone()).unwrap();
    assert_eq!(before.metadata().num_row_groups(), 3);
    let gone = vec![131_072 + 5, 131_072 + 6];
    let mut out = Files::default();
    rewrite_without(
        &schema,
        &inputs(&[input]),
        std::slice::from_ref(&gone),
        1 << 40,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.0.len(), 1);
    let after = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(out.0[0].clone())).unwrap();
    let (old, new) = (before.metadata(), after.metadata());
    assert_eq!(new.num_row_groups(), 3);
    // The first and last row groups are the input's column chunks, byte for byte.
    for g in [0, 2] {
        for c in 0..2 {
            let (a, b) = (old.row_group(g).column(c), new.row_group(g).column(c));
            assert_eq!(
                a.compressed_size(),
                b.compressed_size(),
                "row group {g} column {c}"
            );
            assert_eq!(a.statistics(), b.statistics());
        }
    }
    assert_eq!(new.row_group(1).num_rows(), 131_072 - 2);
    let expected: Vec<(i64, String)> = rows
        .into_iter()
        .filter(|(i, _)| !gone.contains(&(*i as u64)))
        .collect();
    assert_eq!(rows_of(&out.0[0]), expected);
}
