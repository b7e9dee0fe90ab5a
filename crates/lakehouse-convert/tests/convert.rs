//! Behaviour of the public API as a data engineer sees it: CSV reading rules, header renames,
//! inference, conformance checks and the Parquet written (docs/contract.md sections 3 and 5).

use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Float64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema, TextEncoding};
use lakehouse_convert::{
    ConvertError, check_schema, infer_schema, write_parquet, write_parquet_pipelined,
};
mod common;

use common::{Chunked, every_type_csv, opts, round_trip, schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn types(csv: &str) -> Vec<(String, ColumnType)> {
    types_with(csv.as_bytes(), &opts())
}

fn types_with(csv: &[u8], options: &CsvOptions) -> Vec<(String, ColumnType)> {
    infer_schema(csv, options)
        .unwrap()
        .schema
        .fields
        .into_iter()
        .map(|f| (f.name, f.data_type))
        .collect()
}

fn one_type(values: &[&str]) -> ColumnType {
    let csv = format!("x\n{}\n", values.join("\n"));
    types(&csv)[0].1
}

fn malformed(csv: &[u8]) -> (u64, Option<u64>, String) {
    match infer_schema(csv, &opts()) {
        Err(ConvertError::MalformedCsv {
            line,
            column,
            reason,
        }) => (line, column, reason),
        other => panic!("expected malformed_csv, got {other:?}"),
    }
}

// ---------------------------------------------------------------- reading (section 3)

#[test]
fn empty_inputs_have_no_header() {
    for csv in [&b""[..], b"\xEF\xBB\xBF", b"\n\n\r\n", b"\xEF\xBB\xBF\r\n"] {
        assert!(
            matches!(infer_schema(csv, &opts()), Err(ConvertError::EmptyCsv)),
            "{csv:?}"
        );
    }
}

#[test]
fn leading_bom_is_dropped_but_only_one() {
    assert_eq!(types("\u{feff}id\n1\n")[0].0, "id");
    // A second BOM is a character of the name, whatever the chunking.
    assert_eq!(types("\u{feff}\u{feff}id\n1\n")[0].0, "\u{feff}id");
}

#[test]
fn crlf_quoted_newlines_delimiters_and_escaped_quotes() {
    let csv = "id,text\r\n1,\"a,b\"\r\n2,\"line1\r\nline2\"\r\n3,\"say \"\"hi\"\"\"\r\n";
    let inferred = infer_schema(csv.as_bytes(), &opts()).unwrap();
    assert_eq!(inferred.row_count, 3);
    let (_, batches) = round_trip(csv.as_bytes(), &opts());
    let text = batches[0].column(1).as_string::<i32>();
    assert_eq!(text.value(0), "a,b");
    assert_eq!(text.value(1), "line1\r\nline2");
    assert_eq!(text.value(2), "say \"hi\"");
}

#[test]
fn completely_empty_lines_are_skipped() {
    let inferred = infer_schema(&b"a,b\n\n1,2\r\n\r\n\n3,4\n\n"[..], &opts()).unwrap();
    assert_eq!(inferred.row_count, 2);
    assert_eq!(inferred.schema.fields[0].data_type, ColumnType::Int64);
    // A line holding only a space is a record, not an empty line.
    let (line, _, _) = malformed(b"a,b\n1,2\n \n");
    assert_eq!(line, 3);
}

#[test]
fn ragged_record_reports_its_start_line() {
    assert_eq!(malformed(b"a,b\n1,2\n1,2,3\n").0, 3);
    assert_eq!(malformed(b"a,b\n1\n").0, 2);
    // After empty lines (which the csv crate would count on the previous record).
    assert_eq!(malformed(b"a,b\n\n\n1,2,3\n").0, 4);
    assert_eq!(malformed(b"a,b\r\n\r\n\r\n1,2\r\n1,2,3\r\n").0, 5);
    // After a record spanning three lines.
    let (line, column, reason) = malformed(b"a,b\n1,\"x\ny\nz\"\n7,8,9\n");
    assert_eq!((line, column), (5, None));
    assert!(reason.contains("expected 2 fields"), "{reason}");
    // A ragged record that itself spans lines reports the line it starts on.
    assert_eq!(malformed(b"a,b\n1,2\n\"x\ny\",2,3\n").0, 3);
}

#[test]
fn invalid_utf8_reports_line_and_column() {
    let (line, column, _) = malformed(b"a,b,c\n1,2,3\n4,\xff,6\n");
    assert_eq!((line, column), (3, Some(2)));
    // Valid bytes split across two fields are still two invalid fields.
    let (line, column, _) = malformed(b"a,b\n\xC3,\xA9\n");
    assert_eq!((line, column), (2, Some(1)));
    // In the header.
    let (line, column, _) = malformed(b"\n\nok,b\xffad\n1,2\n");
    assert_eq!((line, column), (3, Some(2)));
}

#[test]
fn unclosed_quote_at_end_of_file_is_malformed() {
    let (line, column, reason) = malformed(b"a,b\n1,2\n3,\"open\n");
    assert_eq!((line, column), (3, Some(2)));
    assert!(reason.contains("not closed"), "{reason}");
    // With escaped quotes inside, still open.
    assert_eq!(malformed(b"a,b\n1,\"x\"\"y\"\"\n").0, 2);
    // CRLF, and the open field swallowing later lines (which would also look ragged).
    let (line, column, reason) = malformed(b"a,b\r\n1,\"x\r\n2,3\r\n4,5\r\n");
    assert_eq!((line, column), (2, Some(2)));
    assert!(reason.contains("not closed"), "{reason}");
    // In the header itself.
    assert_eq!(malformed(b"\"a,b\n").0, 1);
    // Closed quotes, doubled quotes, and quotes inside unquoted fields are fine.
    for csv in [
        &b"a,b\n1,\"x\"\"\"\n"[..],
        b"a,b\n1,\"\"\n",
        b"a,b\n1,x\"y\n",
        b"a,b\n1,\"x\"y\n",
        b"a,b\r\n1,\"x\"\r\n",
        b"a,b\n1,\"\"\"\"",
    ] {
        assert!(infer_schema(csv, &opts()).is_ok(), "{csv:?}");
    }
}

#[test]
fn header_renames_with_warnings() {
    let inferred = infer_schema(&b"a,,a,A,a_2\n1,2,3,4,5\n"[..], &opts()).unwrap();
    let names: Vec<_> = inferred.schema.names().collect();
    assert_eq!(names, ["a", "column_2", "a_2", "A", "a_2_2"]);
    assert_eq!(
        inferred.warnings,
        [
            "column 2: empty header name renamed to \"column_2\"",
            "column 3: duplicate header name \"a\" renamed to \"a_2\"",
            "column 5: duplicate header name \"a_2\" renamed to \"a_2_2\"",
        ]
    );
    let names: Vec<_> = types("a,a,a_2\n1,2,3\n")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["a", "a_2", "a_2_2"]);
    let names: Vec<_> = types("column_2,\n1,2\n")
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["column_2", "column_2_2"]);
}

#[test]
fn control_characters_in_header_are_invalid() {
    match infer_schema(&b"ok,\"bad\ttab\"\n1,2\n"[..], &opts()) {
        Err(ConvertError::InvalidHeader { column, reason }) => {
            assert_eq!(column, 2);
            assert!(reason.contains("U+0009"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        infer_schema(&b"\"a\nb\"\n1\n"[..], &opts()),
        Err(ConvertError::InvalidHeader { column: 1, .. })
    ));
    // DEL and other non-control characters are fine.
    assert!(infer_schema("caf\u{e9} \u{7f}\n1\n".as_bytes(), &opts()).is_ok());
}

#[test]
fn null_tokens_and_empty_fields_are_null_everywhere() {
    let options = CsvOptions {
        delimiter: b',',
        null_values: vec!["NA".into(), "NULL".into()],
        ..CsvOptions::default()
    };
    let csv = b"i,f,d,s\n1,NA,,x\nNULL,1.5,2024-01-01,NA\n,,NULL,\n";
    let t = types_with(csv, &options);
    assert_eq!(
        t.iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        [
            ColumnType::Int64,
            ColumnType::Float64,
            ColumnType::Date32,
            ColumnType::Utf8
        ]
    );
    let (_, batches) = round_trip(csv, &options);
    let b = &batches[0];
    assert_eq!(b.column(0).null_count(), 2);
    assert_eq!(b.column(3).null_count(), 2);
    // Tokens match exactly: `na` is text.
    assert_eq!(types_with(b"x\n1\nna\n", &options)[0].1, ColumnType::Utf8);
    // Without tokens, `NA` is text.
    assert_eq!(one_type(&["1", "NA"]), ColumnType::Utf8);
    // All-null column is utf8.
    assert_eq!(
        types_with(b"x,y\n,1\nNA,2\n", &options)[0].1,
        ColumnType::Utf8
    );
    assert_eq!(types("x\n")[0].1, ColumnType::Utf8);
}

#[test]
fn values_are_not_trimmed() {
    assert_eq!(one_type(&[" 1", "2"]), ColumnType::Utf8);
    assert_eq!(one_type(&["true "]), ColumnType::Utf8);
}

#[test]
fn inference_table_edge_cases() {
    assert_eq!(one_type(&["007"]), ColumnType::Utf8);
    assert_eq!(one_type(&["-0", "+5"]), ColumnType::Int64);
    assert_eq!(one_type(&["9223372036854775808"]), ColumnType::Utf8);
    assert_eq!(
        one_type(&["1", "9007199254740992", "0.5"]),
        ColumnType::Float64
    );
    assert_eq!(
        one_type(&["1", "9007199254740993", "0.5"]),
        ColumnType::Utf8
    );
    assert_eq!(one_type(&["1e999"]), ColumnType::Utf8);
    assert_eq!(one_type(&["nan", "-Infinity", "1"]), ColumnType::Float64);
    assert_eq!(one_type(&[".5"]), ColumnType::Float64);
    assert_eq!(one_type(&["5."]), ColumnType::Utf8);
    assert_eq!(one_type(&["2023-02-29"]), ColumnType::Utf8);
    assert_eq!(one_type(&["2024-02-29"]), ColumnType::Date32);
    assert_eq!(
        one_type(&["2024-01-01T00:00:00.123456"]),
        ColumnType::Timestamp
    );
    assert_eq!(one_type(&["2024-01-01T00:00:00.1234567"]), ColumnType::Utf8);
    assert_eq!(
        one_type(&["2024-01-01T00:00:00Z", "2024-01-01T00:00:00"]),
        ColumnType::Utf8
    );
    assert_eq!(
        one_type(&["2024-01-01", "2024-01-01 00:00:00"]),
        ColumnType::Utf8
    );
    assert_eq!(one_type(&["TRUE", "false"]), ColumnType::Bool);
}

#[test]
fn tab_delimiter() {
    let options = CsvOptions {
        delimiter: b'\t',
        null_values: vec![],
        ..CsvOptions::default()
    };
    let t = types_with(b"a\tb,c\n1\tx,y\n", &options);
    assert_eq!(
        t,
        [
            ("a".to_owned(), ColumnType::Int64),
            ("b,c".to_owned(), ColumnType::Utf8)
        ]
    );
}

// ---------------------------------------------------------------- check (section 3)

#[test]
fn conforming_uploads_pass_the_check() {
    let registered = schema(&[
        ("id", ColumnType::Int64),
        ("price", ColumnType::Float64),
        ("note", ColumnType::Utf8),
    ]);
    // All-empty int64 column and all-int float64 column: not drift.
    let checked = check_schema(&b"id,price,note\n,1,5\n,2,x\n"[..], &opts(), &registered).unwrap();
    assert_eq!(checked.row_count, 2);
    // And the file writes with the registered schema.
    let mut out = Vec::new();
    let csv = b"id,price,note\n,1,5\n,2,x\n";
    write_parquet(&csv[..], &opts(), &registered, &mut out).unwrap();
    let batch = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out))
        .unwrap()
        .build()
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.column(0).null_count(), 2);
    assert_eq!(batch.column(1).as_primitive::<Float64Type>().value(1), 2.0);
}

fn drift(csv: &[u8], registered: &Schema) -> lakehouse_api::SchemaDriftDetails {
    match check_schema(csv, &opts(), registered) {
        Err(ConvertError::SchemaDrift(details)) => *details,
        other => panic!("expected drift, got {other:?}"),
    }
}

#[test]
fn refused_values_are_drift_with_first_line_and_value() {
    let registered = schema(&[("id", ColumnType::Int64), ("price", ColumnType::Float64)]);
    let d = drift(
        b"id,price\n1,2.5\n2,9007199254740993\nx,3\ny,4\n",
        &registered,
    );
    assert!(d.added.is_empty() && d.removed.is_empty() && d.reordered.is_empty());
    assert_eq!(d.current_fingerprint, registered.fingerprint());
    let attempted = schema(&[("id", ColumnType::Utf8), ("price", ColumnType::Utf8)]);
    assert_eq!(d.attempted_fingerprint, attempted.fingerprint());
    assert_eq!(d.changed.len(), 2);
    assert_eq!(d.changed[0].column, "id");
    assert_eq!(d.changed[0].registered_type, "int64");
    assert_eq!(d.changed[0].attempted_type.as_deref(), Some("utf8"));
    assert_eq!(d.changed[0].line, Some(4));
    assert_eq!(d.changed[0].value.as_deref(), Some("x"));
    // A float64 column refuses an int beyond 2^53 (it would be rounded).
    assert_eq!(d.changed[1].column, "price");
    assert_eq!(d.changed[1].line, Some(3));
    assert_eq!(d.changed[1].value.as_deref(), Some("9007199254740993"));
}

#[test]
fn header_mismatch_is_drift() {
    let registered = schema(&[("a", ColumnType::Int64), ("b", ColumnType::Utf8)]);
    let d = drift(b"b,a\nx,1\n", &registered);
    assert_eq!(d.reordered, ["a", "b"]);
    assert!(d.changed.is_empty());
    let d = drift(b"a,c\n1,x\n", &registered);
    assert_eq!(
        (d.added.as_slice(), d.removed.as_slice()),
        (&["c".to_owned()][..], &["b".to_owned()][..])
    );
    // Names compare after renames: `a,` is `a,column_2`.
    let d = drift(b"a,\n1,x\n", &registered);
    assert_eq!(d.added, ["column_2"]);
    // A reordered column is still checked against its own registered type.
    let d = drift(b"b,a\nx,1.5\n", &registered);
    assert_eq!(d.changed.len(), 1);
    assert_eq!(d.changed[0].column, "a");
    assert_eq!(d.changed[0].line, Some(2));
}

#[test]
fn csv_errors_come_before_drift() {
    let registered = schema(&[("a", ColumnType::Int64)]);
    assert!(matches!(
        check_schema(&b"a\nx\n1,2\n"[..], &opts(), &registered),
        Err(ConvertError::MalformedCsv { line: 3, .. })
    ));
    assert!(matches!(
        check_schema(&b""[..], &opts(), &registered),
        Err(ConvertError::EmptyCsv)
    ));
}

#[test]
fn write_refuses_a_schema_the_file_does_not_fit() {
    let registered = schema(&[("a", ColumnType::Int64)]);
    let result = write_parquet(&b"a\n1\nx\n"[..], &opts(), &registered, Vec::new());
    match result {
        Err(ConvertError::SchemaDrift(d)) => {
            assert_eq!(d.changed[0].line, Some(3));
            assert_eq!(d.changed[0].value.as_deref(), Some("x"));
        }
        other => panic!("{other:?}"),
    }
    let result = write_parquet(&b"b\n1\n"[..], &opts(), &registered, Vec::new());
    assert!(matches!(result, Err(ConvertError::SchemaDrift(_))));
}

/// The default options (comma, no null tokens), read within these caps.
static COMMA: CsvOptions = CsvOptions {
    delimiter: b',',
    null_values: Vec::new(),
    encoding: TextEncoding::Utf8,
    date_orders: std::collections::BTreeMap::new(),
    decimal_separator: lakehouse_api::DecimalSeparator::Point,
    date_order: None,
};

fn limited(
    max_columns: u64,
    max_field_bytes: u64,
    max_record_bytes: u64,
) -> lakehouse_convert::ReadConfig<'static> {
    lakehouse_convert::ReadConfig::new(
        &COMMA,
        lakehouse_convert::ReadLimits {
            max_columns,
            max_field_bytes,
            max_record_bytes,
        },
    )
}

fn limit_of(
    result: lakehouse_convert::Result<lakehouse_convert::Inferred>,
) -> (&'static str, u64, Option<u64>) {
    match result {
        Err(ConvertError::LimitExceeded {
            limit,
            line,
            column,
            ..
        }) => (limit, line, column),
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn too_many_columns_is_a_limit_error_on_the_header() {
    let options = limited(2, 100, 1000);
    assert_eq!(
        limit_of(infer_schema(&b"a,b,c\n1,2,3\n"[..], options)),
        ("max_columns", 1, Some(3))
    );
    assert!(infer_schema(&b"a,b\n1,2\n"[..], options).is_ok());
}

#[test]
fn an_oversized_field_names_its_line_and_column() {
    let options = limited(10, 5, 1000);
    let csv = b"a,b\n1,2\n\n3,\"toolong\"\n";
    assert_eq!(
        limit_of(infer_schema(&csv[..], options)),
        ("max_field_bytes", 4, Some(2))
    );
    assert!(
        infer_schema(&b"a,b\n1,12345\n"[..], options).is_ok(),
        "5 bytes is within 5"
    );
}

#[test]
fn an_oversized_record_is_refused_with_its_start_line() {
    let options = limited(10, 1 << 20, 20);
    let csv = b"a,b\n1,2\n\"x\ny\",0123456789012345\n";
    assert_eq!(
        limit_of(infer_schema(&csv[..], options)),
        ("max_record_bytes", 3, None)
    );
}

#[test]
fn a_runaway_quote_stops_at_the_record_cap_whatever_the_chunking() {
    // 8 MiB inside one unclosed quote: the reader must stop near the 64 KiB cap, not buffer
    // the whole file, and say the same thing however the bytes arrive.
    let mut csv = b"a,b\n1,2\n3,\"".to_vec();
    csv.extend(std::iter::repeat_n(b'x', 8 << 20));
    let options = limited(10, 1 << 30, 64 * 1024);
    let whole = limit_of(infer_schema(&csv[..], options));
    assert_eq!(whole, ("max_record_bytes", 3, None));
    for k in [1, 7, 4096, 1 << 20] {
        let mut input = Chunked { data: &csv, k };
        assert_eq!(
            limit_of(infer_schema(&mut input, options)),
            whole,
            "chunk {k}"
        );
        let read = csv.len() - input.data.len();
        assert!(
            read < 2 << 20,
            "chunk {k}: read {read} bytes of a runaway record"
        );
    }
    // A record just under the cap is fine.
    let mut ok = b"a\n\"".to_vec();
    ok.extend(std::iter::repeat_n(b'y', 60 * 1024));
    ok.extend_from_slice(b"\"\n");
    assert!(infer_schema(&ok[..], options).is_ok());
}

/// Decodes (docs/contract.md section 3: decompression, transcoding), infers, writes: the Parquet
/// bytes and the batches read back.
fn decoded_round_trip(upload: &[u8], options: &CsvOptions) -> (Vec<u8>, Vec<RecordBatch>) {
    let decode = || lakehouse_convert::decode(upload, options.encoding, u64::MAX).unwrap();
    let inferred = infer_schema(decode(), options).unwrap();
    let mut parquet = Vec::new();
    write_parquet(decode(), options, &inferred.schema, &mut parquet).unwrap();
    let batches = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet.clone()))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (parquet, batches)
}

#[test]
fn gzip_and_zstd_uploads_give_the_plain_files_parquet_bytes() {
    use std::io::Write;
    let csv = every_type_csv().into_bytes();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&csv).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&csv[..], 3).unwrap();
    let (plain, _) = round_trip(&csv, &opts());
    assert_eq!(decoded_round_trip(&csv, &opts()).0, plain);
    assert_eq!(decoded_round_trip(&gz, &opts()).0, plain);
    assert_eq!(decoded_round_trip(&zst, &opts()).0, plain);
}

#[test]
fn windows_1252_and_utf16_give_the_values_of_their_utf8_equivalent() {
    let utf8 = "name,price,note\ncafé,2.5,€ 3\nd’Artagnan,1,naïve\n";
    let cp1252 = b"name,price,note\ncaf\xe9,2.5,\x80 3\nd\x92Artagnan,1,na\xefve\n";
    let mut utf16le = vec![0xff, 0xfe];
    utf16le.extend(utf8.encode_utf16().flat_map(u16::to_le_bytes));
    let (expected, batches) = round_trip(utf8.as_bytes(), &opts());
    let names = batches[0].column(0).as_string::<i32>();
    assert_eq!(names.value(0), "café");
    assert_eq!(names.value(1), "d’Artagnan");
    assert_eq!(batches[0].column(2).as_string::<i32>().value(0), "€ 3");
    let windows = CsvOptions {
        encoding: TextEncoding::Windows1252,
        ..CsvOptions::default()
    };
    // Same values, same schema, so the same Parquet bytes.
    assert_eq!(decoded_round_trip(cp1252, &windows).0, expected);
    // The BOM selects UTF-16 whatever the option.
    assert_eq!(decoded_round_trip(&utf16le, &opts()).0, expected);
    // Without the transcoding these bytes are not UTF-8.
    let (line, column, _) = malformed(cp1252);
    assert_eq!((line, column), (2, Some(1)));
}

#[test]
fn broken_utf16_and_truncated_gzip_are_malformed_on_their_line() {
    use std::io::Write;
    let mut odd = vec![0xff, 0xfe];
    odd.extend("a,b\n1,2\n3,4\n".encode_utf16().flat_map(u16::to_le_bytes));
    odd.push(b'5');
    let error = infer_schema(
        lakehouse_convert::decode(&odd[..], TextEncoding::Utf8, u64::MAX).unwrap(),
        &opts(),
    );
    assert!(
        matches!(&error, Err(ConvertError::MalformedCsv { line: 4, column: None, reason }) if reason.contains("utf-16le")),
        "{error:?}"
    );
    let csv: String = (0..200_000).map(|i| format!("{i},{}\n", i * 2)).collect();
    let csv = format!("a,b\n{csv}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(csv.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    let cut = &gz[..gz.len() - 100];
    let error = infer_schema(
        lakehouse_convert::decode(cut, TextEncoding::Utf8, u64::MAX).unwrap(),
        &opts(),
    );
    match error {
        Err(ConvertError::MalformedCsv { line, reason, .. }) => {
            assert!(reason.starts_with("gzip stream is"), "{reason}");
            assert!(line > 150_000, "{line}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn slash_dates_and_minute_timestamps_are_temporal_in_rule_set_2() {
    let csv = "d,t,z\n2012/01/01,2012/01/01 08:30,2024-03-01T10:15+01:00\n2012-01-02,2012-01-02T09:45:30.5,2024/03/01 09:15Z\n";
    let (_, batches) = round_trip(csv.as_bytes(), &opts());
    let types: Vec<_> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert_eq!(
        types,
        [
            DataType::Date32,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ]
    );
    let days = batches[0].column(0).as_primitive::<Date32Type>();
    assert_eq!((days.value(0), days.value(1)), (15_340, 15_341));
    let local = batches[0]
        .column(1)
        .as_primitive::<TimestampMicrosecondType>();
    assert_eq!(
        local.value(0),
        (15_340 * 86_400 + 8 * 3600 + 30 * 60) * 1_000_000
    );
    assert_eq!(
        local.value(1),
        (15_341 * 86_400 + 9 * 3600 + 45 * 60 + 30) * 1_000_000 + 500_000
    );
    let zoned = batches[0]
        .column(2)
        .as_primitive::<TimestampMicrosecondType>();
    // Both are 2024-03-01T09:15:00Z.
    assert_eq!(zoned.value(0), zoned.value(1));
    // Mixing a slash date with a timestamp is still utf8.
    assert_eq!(
        one_type(&["2012/01/01", "2012/01/01 08:30"]),
        ColumnType::Utf8
    );
    assert_eq!(one_type(&["2012/01/01", "2012-13-01"]), ColumnType::Utf8);
}

#[test]
fn times_of_day_are_time64_microseconds() {
    let csv = "opens,note\n08:30,a\n17:45:30.25,b\n,c\n";
    let (_, batches) = round_trip(csv.as_bytes(), &opts());
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &DataType::Time64(TimeUnit::Microsecond)
    );
    let times = batches[0]
        .column(0)
        .as_primitive::<arrow_array::types::Time64MicrosecondType>();
    assert_eq!(times.value(0), 30_600_000_000);
    assert_eq!(times.value(1), 63_930_250_000);
    assert!(times.is_null(2));
    assert_eq!(one_type(&["08:30", "25:00"]), ColumnType::Utf8);
    assert_eq!(one_type(&["08:30", "2024-01-01"]), ColumnType::Utf8);
    assert_eq!(ColumnType::Time64.name(), "time64[us]");
}

/// The inference report (docs/contract.md section 3): per column its nulls and the earliest value
/// by which the values so far rule out every type above the final one.
#[test]
fn the_report_names_the_value_that_settled_each_type() {
    let csv = "zip,n,f,flag,empty,text,day\n\
               02139,1,1,true,,1,2024-01-01\n\
               10001,2,2.5,false,,2,\n\
               \"9\n0210\",,3,TRUE,,x,2024-01-03\n";
    let inferred = infer_schema(csv.as_bytes(), &opts()).unwrap();
    let mut out = Vec::new();
    let written = write_parquet(csv.as_bytes(), &opts(), &inferred.schema, &mut out).unwrap();
    let report: Vec<_> = written
        .columns
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.data_type,
                c.null_count,
                c.decided_by.as_ref().map(|d| (d.line, d.value.as_str())),
            )
        })
        .collect();
    assert_eq!(
        report,
        [
            // Utf8 from its first value's leading zero.
            ("zip", ColumnType::Utf8, 0, Some((2, "02139"))),
            // An int rules out bool at once.
            ("n", ColumnType::Int64, 1, Some((2, "1"))),
            // Float64 once a value is not an int.
            ("f", ColumnType::Float64, 0, Some((3, "2.5"))),
            // Bool: nothing above it.
            ("flag", ColumnType::Bool, 0, None),
            // All null: utf8 by default, decided by no value.
            ("empty", ColumnType::Utf8, 3, None),
            // `1`, `2`, `x`: the record of `x` starts on line 4.
            ("text", ColumnType::Utf8, 0, Some((4, "x"))),
            ("day", ColumnType::Date32, 1, Some((2, "2024-01-01"))),
        ]
    );
    // The same report, whatever the chunking and threading.
    let mut again = Vec::new();
    let pipelined = write_parquet_pipelined(
        Chunked {
            data: csv.as_bytes(),
            k: 3,
        },
        &opts(),
        &inferred.schema,
        &mut again,
    )
    .unwrap()
    .0;
    assert_eq!(pipelined.columns, written.columns);
    // A long value is cut to 200 characters.
    let long = format!("v\n{}é\n", "x".repeat(300));
    let schema = infer_schema(long.as_bytes(), &opts()).unwrap().schema;
    let written = write_parquet(long.as_bytes(), &opts(), &schema, std::io::sink()).unwrap();
    let value = &written.columns[0].decided_by.as_ref().unwrap().value;
    assert_eq!(value.chars().count(), 201);
    assert!(value.ends_with('…'));
}

/// Day-first or month-first `P/Q/YYYY` dates (docs/contract.md section 3): the whole column
/// settles the order, which the Parquet is then written with (and later uploads checked
/// with); ambiguous and contradictory columns are utf8.
#[test]
fn day_month_order_is_settled_by_the_whole_file() {
    use lakehouse_api::DateOrder;
    let csv = "eu,us,both,neither\n03/04/2024,03/04/2024,03/04/2024,13/02/2024\n\
               13.02.2024,02/13/2024,1/2/2024,02/13/2024\n";
    let inferred = infer_schema(csv.as_bytes(), &opts()).unwrap();
    let types: Vec<ColumnType> = inferred.schema.fields.iter().map(|f| f.data_type).collect();
    // `eu` mixes `/` and `.` (one separator per column, or utf8); `both` has both readings
    // for every value, `neither` neither: utf8.
    assert_eq!(
        types,
        [
            ColumnType::Utf8,
            ColumnType::Date32,
            ColumnType::Utf8,
            ColumnType::Utf8
        ]
    );
    assert_eq!(
        inferred.date_orders,
        [("us".to_owned(), DateOrder::Mdy)].into()
    );
    let csv = "eu,us\n03/04/2024,03/04/2024\n13/02/2024,02/13/2024\n";
    let inferred = infer_schema(csv.as_bytes(), &opts()).unwrap();
    assert_eq!(inferred.date_orders.get("eu"), Some(&DateOrder::Dmy));
    assert_eq!(inferred.date_orders.get("us"), Some(&DateOrder::Mdy));
    let options = CsvOptions {
        date_orders: inferred.date_orders.clone(),
        ..opts()
    };
    let mut out = Vec::new();
    let written = write_parquet(csv.as_bytes(), &options, &inferred.schema, &mut out).unwrap();
    let batches = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let eu = batches[0].column(0).as_primitive::<Date32Type>();
    let us = batches[0].column(1).as_primitive::<Date32Type>();
    // 3 April and 13 February 2024; 4 March and 13 February 2024.
    assert_eq!((eu.value(0), eu.value(1)), (19_816, 19_766));
    assert_eq!((us.value(0), us.value(1)), (19_786, 19_766));
    assert_eq!(written.columns[0].order, Some(DateOrder::Dmy));
    assert_eq!(written.columns[1].order, Some(DateOrder::Mdy));
    assert_eq!(written.columns[0].decided_by.as_ref().unwrap().line, 2);
    // A later upload is checked with the recorded orders: `03/04/2024` is then fine in both
    // (and read as the order says), `2024-04-03` is refused.
    assert!(
        check_schema(
            &b"eu,us\n03/04/2024,03/04/2024\n"[..],
            &options,
            &inferred.schema
        )
        .is_ok()
    );
    assert!(
        check_schema(
            &b"eu,us\n2024-04-03,03/04/2024\n"[..],
            &options,
            &inferred.schema
        )
        .is_err()
    );
    // Written without its order, a P/Q/YYYY column is refused (no silent reading).
    assert!(write_parquet(csv.as_bytes(), &opts(), &inferred.schema, std::io::sink()).is_err());
    // The verified single read proves it, given the orders.
    let verified = lakehouse_convert::write_parquet_verified(
        csv.as_bytes(),
        &options,
        lakehouse_convert::Expected::Inferred(&inferred.schema),
        Vec::new(),
    )
    .unwrap();
    assert!(verified.is_some());
    // An ambiguous column guessed DMY is not proven: inference says utf8.
    let ambiguous = "d\n03/04/2024\n";
    let schema = Schema {
        fields: vec![Field::new("d", ColumnType::Date32)],
    };
    let dmy = CsvOptions {
        date_orders: [("d".to_owned(), DateOrder::Dmy)].into(),
        ..opts()
    };
    let verified = lakehouse_convert::write_parquet_verified(
        ambiguous.as_bytes(),
        &dmy,
        lakehouse_convert::Expected::Inferred(&schema),
        Vec::new(),
    )
    .unwrap();
    assert!(verified.is_none());
}
