//! The Parquet the converter writes, as a reader sees it (docs/contract.md section 5): every type
//! round-trips, the metadata and the bytes are fixed, row groups and field ids.

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use lakehouse_api::ColumnType;
use lakehouse_convert::{
    BATCH_ROWS, CREATED_BY, CompactSink, ConvertError, MAX_ROW_GROUP_ROWS, ParquetFiles,
    ReadConfig, arrow_schema, infer_schema, write_parquet, write_parquet_pipelined,
};
mod common;

use common::{every_type_csv, opts, round_trip, schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

// ---------------------------------------------------------------- parquet (section 5)

#[test]
fn parquet_round_trip_of_every_type() {
    let csv = "b,i,f,d,tz,ts,s\n\
        true,-9223372036854775808,.5,2024-02-29,2024-01-01T00:30:00+01:00,2024-01-01 12:00:00.000001,caf\u{e9}\n\
        FALSE,9223372036854775807,-Infinity,1969-12-31,2024-06-30 23:59:59.5Z,1900-01-01T00:00:00,\"\"\"q\"\"\"\n\
        ,,nan,,,,\n";
    let (_, batches) = round_trip(csv.as_bytes(), &opts());
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    let fields: Vec<_> = b
        .schema()
        .fields()
        .iter()
        .map(|f| (f.data_type().clone(), f.is_nullable()))
        .collect();
    assert_eq!(
        fields,
        [
            (DataType::Boolean, true),
            (DataType::Int64, true),
            (DataType::Float64, true),
            (DataType::Date32, true),
            (
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true
            ),
            (DataType::Timestamp(TimeUnit::Microsecond, None), true),
            (DataType::Utf8, true),
        ]
    );
    let bools = b.column(0).as_boolean();
    assert!(bools.value(0) && !bools.value(1) && bools.is_null(2));
    let ints = b.column(1).as_primitive::<Int64Type>();
    assert_eq!((ints.value(0), ints.value(1)), (i64::MIN, i64::MAX));
    let floats = b.column(2).as_primitive::<Float64Type>();
    assert_eq!(floats.value(0), 0.5);
    assert_eq!(floats.value(1), f64::NEG_INFINITY);
    assert!(floats.value(2).is_nan());
    let dates = b.column(3).as_primitive::<Date32Type>();
    assert_eq!((dates.value(0), dates.value(1)), (19_782, -1));
    let zoned = b.column(4).as_primitive::<TimestampMicrosecondType>();
    // 2024-01-01T00:30:00+01:00 == 2023-12-31T23:30:00Z.
    let expected = chrono::DateTime::parse_from_rfc3339("2023-12-31T23:30:00Z").unwrap();
    assert_eq!(zoned.value(0), expected.timestamp_micros());
    let expected = chrono::DateTime::parse_from_rfc3339("2024-06-30T23:59:59.5Z").unwrap();
    assert_eq!(zoned.value(1), expected.timestamp_micros());
    let local = b.column(5).as_primitive::<TimestampMicrosecondType>();
    let expected = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_micro_opt(12, 0, 0, 1)
        .unwrap()
        .and_utc();
    assert_eq!(local.value(0), expected.timestamp_micros());
    assert_eq!(local.value(1), -2_208_988_800_000_000);
    let strings = b.column(6).as_string::<i32>();
    assert_eq!(strings.value(0), "caf\u{e9}");
    assert_eq!(strings.value(1), "\"q\"");
    assert!(strings.is_null(2));
}

#[test]
fn parquet_metadata_is_fixed() {
    let csv = b"id,name\n1,a\n2,b\n";
    let (out, _) = round_trip(csv, &opts());
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out.clone())).unwrap();
    let meta = builder.metadata();
    assert_eq!(meta.file_metadata().created_by(), Some(CREATED_BY));
    assert!(CREATED_BY.starts_with("lakehouse-convert "));
    let kv = meta.file_metadata().key_value_metadata().unwrap();
    let keys: Vec<_> = kv.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["ARROW:schema"], "only the embedded Arrow schema");
    for column in meta.row_group(0).columns() {
        assert_eq!(column.compression(), Compression::SNAPPY);
        assert!(column.statistics().is_some(), "statistics are on");
        assert!(
            column.column_index_offset().is_some(),
            "page-level statistics"
        );
    }
    let inferred = infer_schema(&csv[..], &opts()).unwrap();
    assert_eq!(builder.schema(), &arrow_schema(&inferred.schema));
    // Same input, same bytes.
    let (again, _) = round_trip(csv, &opts());
    assert_eq!(out, again);
}

/// SHA-256 of the Parquet that [`parquet_bytes_are_pinned`] writes. docs/contract.md section 5
/// makes the bytes a pure function of (CSV bytes, options, schema, program version), and
/// invariant 4 (section 2) rests on it: every build of one version (generic x86-64 or
/// x86-64-v3, debug or release, any machine or allocator) must write exactly these bytes,
/// or two replicas sharing a bucket would store the same upload twice. Change it only with
/// a deliberate change of the output (writer settings, the parquet crate, the version in
/// `CREATED_BY`), and say so in the commit.
const PINNED_PARQUET_SHA256: &str =
    "3e717d4a5960702ed7dc37c9272dc94df6019170639fc3d5b53e281c59b555f3";

/// docs/contract.md section 8: column i (1-based) of a new Parquet file carries Iceberg field id i,
/// in the Parquet schema (what Iceberg readers resolve columns by) and in the embedded Arrow
/// schema's `PARQUET:field_id` metadata.
#[test]
fn parquet_columns_carry_field_ids() {
    let csv = "id,name,price\n1,a,2.5\n2,,3\n";
    let (parquet, _) = round_trip(csv.as_bytes(), &opts());
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet)).unwrap();
    let columns = builder.parquet_schema().root_schema().get_fields();
    let ids: Vec<(String, i32)> = columns
        .iter()
        .map(|c| (c.name().to_owned(), c.get_basic_info().id()))
        .collect();
    assert_eq!(
        ids,
        [("id".into(), 1), ("name".into(), 2), ("price".into(), 3)]
    );
    let embedded: Vec<Option<&String>> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.metadata().get("PARQUET:field_id"))
        .collect();
    assert_eq!(
        embedded,
        [
            Some(&"1".to_owned()),
            Some(&"2".to_owned()),
            Some(&"3".to_owned())
        ]
    );
}

#[test]
fn parquet_bytes_are_pinned() {
    use sha2::{Digest, Sha256};
    let csv = every_type_csv();
    let inferred = infer_schema(csv.as_bytes(), &opts()).unwrap();
    let types: Vec<_> = inferred.schema.fields.iter().map(|f| f.data_type).collect();
    assert_eq!(
        types,
        [
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::Bool,
            ColumnType::Date32,
            ColumnType::TimestampUtc,
            ColumnType::Timestamp,
            ColumnType::Utf8,
            ColumnType::Utf8,
        ]
    );
    let (single, batches) = round_trip(csv.as_bytes(), &opts());
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 20_000, "rows read back");
    let mut pipelined = Vec::new();
    write_parquet_pipelined(csv.as_bytes(), &opts(), &inferred.schema, &mut pipelined).unwrap();
    assert!(
        single == pipelined,
        "the pipelined writer wrote other bytes"
    );
    assert_eq!(hex::encode(Sha256::digest(&single)), PINNED_PARQUET_SHA256);
    // docs/contract.md section 13: the same bytes on any number of threads. Chunks of 64 KiB
    // split this file into a dozen, some cut inside a record batch.
    let options = opts();
    for threads in [1, 2, 8] {
        let read = ReadConfig::from(&options)
            .threads(threads)
            .chunk_bytes(64 * 1024);
        let mut parallel = Vec::new();
        let (written, _) =
            write_parquet_pipelined(csv.as_bytes(), read, &inferred.schema, &mut parallel).unwrap();
        assert_eq!(written.row_count, 20_000);
        assert_eq!(
            hex::encode(Sha256::digest(&parallel)),
            PINNED_PARQUET_SHA256,
            "{threads} threads"
        );
    }
}

#[test]
fn row_groups_hold_at_most_131072_rows() {
    assert_eq!(BATCH_ROWS, 8192);
    assert_eq!(MAX_ROW_GROUP_ROWS, 131_072);
    let rows = MAX_ROW_GROUP_ROWS + 3 * BATCH_ROWS + 5;
    let mut csv = String::with_capacity(rows * 8 + 4);
    csv.push_str("n\n");
    for i in 0..rows {
        csv.push_str(&i.to_string());
        csv.push('\n');
    }
    let (out, batches) = round_trip(csv.as_bytes(), &opts());
    let meta = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out))
        .unwrap()
        .metadata()
        .clone();
    let sizes: Vec<_> = meta.row_groups().iter().map(|rg| rg.num_rows()).collect();
    assert_eq!(
        sizes,
        [MAX_ROW_GROUP_ROWS as i64, (3 * BATCH_ROWS + 5) as i64]
    );
    let mut n = 0i64;
    for batch in &batches {
        for v in batch.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*v, n);
            n += 1;
        }
    }
    assert_eq!(n, rows as i64);
}

#[test]
fn empty_table_writes_a_valid_file() {
    let (out, batches) = round_trip(b"a,b\n", &opts());
    assert!(batches.iter().all(|b| b.num_rows() == 0));
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out)).unwrap();
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(builder.schema().fields().len(), 2);
}

#[test]
fn output_write_errors_are_io_errors() {
    struct Failing;
    impl std::io::Write for Failing {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "disk full",
            ))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let s = schema(&[("a", ColumnType::Int64)]);
    match write_parquet(&b"a\n1\n"[..], &opts(), &s, Failing) {
        Err(ConvertError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull),
        other => panic!("{other:?}"),
    }
}

#[test]
fn input_read_errors_are_io_errors() {
    struct Failing;
    impl std::io::Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("network"))
        }
    }
    assert!(matches!(
        infer_schema(Failing, &opts()),
        Err(ConvertError::Io(_))
    ));
}

#[test]
fn error_messages_are_lowercase_and_say_where() {
    let e = infer_schema(&b"a,b\n1\n"[..], &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed csv at line 2: expected 2 fields as in the header, found 1"
    );
    let e = infer_schema(&b"a\n\"x\n"[..], &opts()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "malformed csv at line 2, column 1: quoted field not closed at end of file"
    );
}

/// Files in memory, as a split output hands them back: bytes, size, rows. A file is handed
/// back before the next is opened (ingestd's sink relies on it).
#[derive(Default)]
struct Files(Vec<(Vec<u8>, u64, u64)>, bool);

impl CompactSink for Files {
    type Writer = Vec<u8>;

    fn open(&mut self) -> std::io::Result<Vec<u8>> {
        assert!(!self.1, "a file opened while another is open");
        self.1 = true;
        Ok(Vec::new())
    }

    fn close(&mut self, file: Vec<u8>, size: u64, rows: u64) -> std::io::Result<()> {
        assert!(self.1, "a file handed back that was not open");
        self.1 = false;
        self.0.push((file, size, rows));
        Ok(())
    }
}

/// The bytes of each column chunk of each row group of `file`, in order.
fn column_chunks(file: &[u8]) -> Vec<Vec<u8>> {
    let metadata = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(file))
        .unwrap()
        .metadata()
        .clone();
    let mut chunks = Vec::new();
    for group in metadata.row_groups() {
        for column in group.columns() {
            let (start, length) = column.byte_range();
            chunks.push(file[start as usize..(start + length) as usize].to_vec());
        }
    }
    chunks
}

#[test]
fn an_output_past_the_target_is_split_between_row_groups() {
    // Five row groups of 131,072 rows and a last one; ~1.2 MB of Parquet a row group.
    let rows = 5 * MAX_ROW_GROUP_ROWS + 1000;
    let mut csv = String::from("n,name\n");
    for i in 0..rows {
        csv.push_str(&format!("{i},name-{}\n", i * 7919 % 100_003));
    }
    let schema = infer_schema(csv.as_bytes(), &opts()).unwrap().schema;
    let options = opts();
    let mut one = Vec::new();
    write_parquet_pipelined(csv.as_bytes(), &options, &schema, &mut one).unwrap();
    let one_groups = column_chunks(&one);
    for threads in [1, 2, 8] {
        let read = ReadConfig::from(&options).threads(threads);
        let mut files = Files::default();
        let target = (one.len() / 3) as u64;
        let split = ParquetFiles::Split {
            sink: &mut files,
            target_bytes: target,
        };
        let (written, _) = write_parquet_pipelined(csv.as_bytes(), read, &schema, split).unwrap();
        assert_eq!(written.row_count, rows as u64);
        let files = files.0;
        assert!(files.len() >= 3, "{threads} threads: {} files", files.len());
        assert_eq!(
            written.size_bytes,
            files.iter().map(|(_, size, _)| size).sum::<u64>()
        );
        let mut chunks = Vec::new();
        let mut next = 0i64;
        for (i, (file, size, file_rows)) in files.iter().enumerate() {
            assert_eq!(file.len() as u64, *size);
            // Cut at the first row-group boundary at or past the target: every file but the
            // last reaches it, and none holds more than one row group past it.
            if i + 1 < files.len() {
                assert!(*size >= target, "file {i}: {size} bytes");
            }
            let groups =
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(file))
                    .unwrap()
                    .metadata()
                    .num_row_groups();
            assert!(groups >= 1);
            let mut counted = 0u64;
            for batch in
                ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::copy_from_slice(file))
                    .unwrap()
                    .build()
                    .unwrap()
            {
                let batch = batch.unwrap();
                counted += batch.num_rows() as u64;
                for v in batch.column(0).as_primitive::<Int64Type>().values() {
                    assert_eq!(*v, next, "rows in order across files");
                    next += 1;
                }
            }
            assert_eq!(counted, *file_rows);
            chunks.extend(column_chunks(file));
        }
        assert_eq!(next, rows as i64);
        // Only the files' boundaries change: the same column chunks, byte for byte.
        assert!(
            chunks == one_groups,
            "{threads} threads: other column chunks"
        );
    }
}
