//! Property tests of the converter (docs/contract.md sections 3 and 5): whatever the CSV, the
//! result does not depend on how the input is chunked, values round-trip through Parquet,
//! and a file always conforms to its own inferred schema.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float64Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
};
use arrow_array::{Array, RecordBatch};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
use lakehouse_api::Schema;
use lakehouse_api::{ColumnType, CsvOptions};
use lakehouse_convert::{
    BATCH_ROWS, Expected, MAX_ROW_GROUP_ROWS, ReadConfig, check_schema, guess_schema, infer_schema,
    write_parquet, write_parquet_pipelined, write_parquet_verified,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
mod common;

use common::Chunked;
use common::guesses::{guesses, lattice_case, perturbed};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Bool,
    Date,
    Time,
    TsUtc,
    Ts,
    Text,
    Mixed,
}

impl Kind {
    /// The type a column of only this kind (and some non-null value) must get.
    fn pure_type(self) -> Option<ColumnType> {
        match self {
            Kind::Int => Some(ColumnType::Int64),
            Kind::Float => Some(ColumnType::Float64),
            Kind::Bool => Some(ColumnType::Bool),
            Kind::Date => Some(ColumnType::Date32),
            Kind::Time => Some(ColumnType::Time64),
            Kind::TsUtc => Some(ColumnType::TimestampUtc),
            Kind::Ts => Some(ColumnType::Timestamp),
            Kind::Text | Kind::Mixed => None,
        }
    }
}

/// A date written `YYYY-MM-DD` or (rule set 2) `YYYY/MM/DD`.
fn date() -> impl Strategy<Value = String> {
    (1i32..=3_652_059, prop::bool::ANY).prop_map(|(days, slash)| {
        NaiveDate::from_num_days_from_ce_opt(days)
            .unwrap()
            .format(if slash { "%Y/%m/%d" } else { "%Y-%m-%d" })
            .to_string()
    })
}

/// A time of day: `HH:MM` or `HH:MM:SS[.f{1,6}]` (rule set 2).
fn time() -> impl Strategy<Value = String> {
    (
        0u32..24,
        0u32..60,
        prop::option::of((0u32..60, 0usize..=6, 0u32..1_000_000)),
    )
        .prop_map(|(h, m, seconds)| {
            let mut text = format!("{h:02}:{m:02}");
            if let Some((s, digits, micros)) = seconds {
                text.push_str(&format!(":{s:02}"));
                if digits > 0 {
                    text.push('.');
                    text.push_str(&format!("{micros:06}")[..digits]);
                }
            }
            text
        })
}

/// A temporal text in the one form chrono is asked to parse: `-` dates, `T`, seconds.
fn normalized(text: &str) -> String {
    let mut t = text.replacen(' ', "T", 1);
    t.replace_range(..10, &t[..10].replace('/', "-"));
    if t.len() > 10 && t.as_bytes().get(16) != Some(&b':') {
        t.insert_str(16, ":00");
    }
    t
}

fn timestamp(zoned: bool) -> impl Strategy<Value = String> {
    (
        date(),
        prop::bool::ANY,
        0u32..24,
        0u32..60,
        0u32..60,
        0usize..=6,
        0u32..1_000_000,
        prop::option::of((prop::bool::ANY, 0u32..24, 0u32..60)),
    )
        .prop_map(move |(d, space, h, m, s, digits, micros, offset)| {
            // HH:MM without seconds (rule set 2) one time in eight.
            let minutes_only = micros % 8 == 0;
            let mut text = format!("{d}{}{h:02}:{m:02}", if space { ' ' } else { 'T' });
            if !minutes_only {
                text.push_str(&format!(":{s:02}"));
            }
            if digits > 0 && !minutes_only {
                let fraction = format!("{micros:06}");
                text.push('.');
                text.push_str(&fraction[..digits]);
            }
            if zoned {
                match offset {
                    None => text.push('Z'),
                    Some((neg, oh, om)) => {
                        text.push_str(&format!("{}{oh:02}:{om:02}", if neg { '-' } else { '+' }))
                    }
                }
            }
            text
        })
}

fn value(kind: Kind) -> BoxedStrategy<String> {
    match kind {
        Kind::Int => prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            (-1000i64..1000).prop_map(|v| v.to_string()),
            Just("+5".to_owned()),
            Just("-0".to_owned()),
        ]
        .boxed(),
        Kind::Float => prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(|v| format!("{v:?}")),
            "[1-9][0-9]{0,2}\\.[0-9]{1,4}",
            "-?\\.[0-9]{1,3}(e[+-]?[0-9]{1,2})?",
            Just("nan".to_owned()),
            Just("-Infinity".to_owned()),
            Just("INF".to_owned()),
        ]
        .boxed(),
        Kind::Bool => prop_oneof![
            Just("true".to_owned()),
            Just("FALSE".to_owned()),
            Just("True".to_owned()),
            Just("false".to_owned()),
        ]
        .boxed(),
        Kind::Date => date().boxed(),
        Kind::Time => time().boxed(),
        Kind::TsUtc => timestamp(true).boxed(),
        Kind::Ts => timestamp(false).boxed(),
        Kind::Text => "[a-z0-9 ,;|\t\"\r\né.+-]{0,8}".boxed(),
        Kind::Mixed => prop_oneof![
            value(Kind::Int),
            value(Kind::Float),
            value(Kind::Bool),
            value(Kind::Date),
            value(Kind::Time),
            value(Kind::TsUtc),
            value(Kind::Ts),
            value(Kind::Text),
            Just("9007199254740993".to_owned()),
            Just("007".to_owned()),
        ]
        .boxed(),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Int),
        Just(Kind::Float),
        Just(Kind::Bool),
        Just(Kind::Date),
        Just(Kind::Time),
        Just(Kind::TsUtc),
        Just(Kind::Ts),
        Just(Kind::Text),
        Just(Kind::Mixed),
    ]
}

/// One generated CSV with what was put in it.
#[derive(Debug, Clone)]
struct Case {
    options: CsvOptions,
    kinds: Vec<Kind>,
    /// Cell texts by row (null cells are `""` or a null token).
    rows: Vec<Vec<String>>,
    bytes: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        1usize..=5,
        0usize..=30,
        prop::sample::select(vec![b',', b'\t', b';', b'|']),
        prop::bool::ANY,
    )
        .prop_flat_map(|(ncols, nrows, delimiter, tokens)| {
            let null_values: Vec<String> = if tokens {
                vec!["NA".into(), "NULL".into()]
            } else {
                vec![]
            };
            let kinds = prop::collection::vec(kind(), ncols);
            let names = prop::collection::vec(
                prop::sample::select(vec!["a", "b", "a_2", "", "x y", "q\"u,o"]),
                ncols,
            );
            let layout = (
                prop::bool::ANY,
                prop::bool::ANY,
                prop::bool::ANY,
                prop::bool::ANY,
            );
            (kinds, names, layout).prop_flat_map(move |(kinds, names, layout)| {
                let null_values = null_values.clone();
                let cells: Vec<BoxedStrategy<String>> = kinds
                    .iter()
                    .map(|&k| {
                        let mut nulls = vec![Just(String::new()).boxed()];
                        for t in &null_values {
                            nulls.push(Just(t.clone()).boxed());
                        }
                        prop_oneof![
                            6 => value(k),
                            1 => prop::strategy::Union::new(nulls),
                        ]
                        .boxed()
                    })
                    .collect();
                let rows = prop::collection::vec(cells, nrows);
                let options = CsvOptions {
                    delimiter,
                    null_values: null_values.clone(),
                    ..CsvOptions::default()
                };
                (Just(kinds), Just(names), Just(layout), rows, Just(options))
            })
        })
        .prop_map(
            |(kinds, names, (bom, crlf, quote_all, blank_lines), rows, options)| {
                let bytes = render(
                    &names,
                    &rows,
                    options.delimiter,
                    bom,
                    crlf,
                    quote_all,
                    blank_lines,
                );
                Case {
                    options,
                    kinds,
                    rows,
                    bytes,
                }
            },
        )
}

fn render(
    names: &[&str],
    rows: &[Vec<String>],
    delimiter: u8,
    bom: bool,
    crlf: bool,
    quote_all: bool,
    blank_lines: bool,
) -> Vec<u8> {
    let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let line = |fields: &mut dyn Iterator<Item = &str>, out: &mut Vec<u8>| {
        let fields: Vec<&str> = fields.collect();
        let single = fields.len() == 1;
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                out.push(delimiter);
            }
            let needs = quote_all
                || (single && f.is_empty())
                || f.bytes()
                    .any(|b| b == delimiter || b == b'"' || b == b'\r' || b == b'\n');
            if needs {
                out.push(b'"');
                out.extend_from_slice(f.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            } else {
                out.extend_from_slice(f.as_bytes());
            }
        }
        out.extend_from_slice(eol);
        if blank_lines {
            out.extend_from_slice(eol);
        }
    };
    line(&mut names.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}

fn chunk_sizes() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=64, Just(usize::MAX)]
}

fn micros_utc(text: &str) -> i64 {
    let mut t = normalized(text);
    if t.ends_with('Z') {
        t.pop();
        t.push_str("+00:00");
    }
    DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%:z")
        .unwrap()
        .timestamp_micros()
}

fn micros_local(text: &str) -> i64 {
    let t = normalized(text);
    NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

/// Checks row `row` of column `col` of the read-back batches against the generated text,
/// with std and chrono as the independent oracle.
fn assert_cell(array: &dyn Array, i: usize, ty: ColumnType, text: &str, nulls: &[String]) {
    if text.is_empty() || nulls.iter().any(|t| t == text) {
        assert!(array.is_null(i), "{text:?} should be null");
        return;
    }
    assert!(array.is_valid(i), "{text:?} should not be null");
    match ty {
        ColumnType::Utf8 => assert_eq!(array.as_string::<i32>().value(i), text),
        ColumnType::Bool => {
            assert_eq!(
                array.as_boolean().value(i),
                text.eq_ignore_ascii_case("true")
            )
        }
        ColumnType::Int64 => assert_eq!(
            array.as_primitive::<Int64Type>().value(i),
            text.parse::<i64>().unwrap()
        ),
        ColumnType::Float64 => {
            let got = array.as_primitive::<Float64Type>().value(i);
            let want = text.parse::<f64>().unwrap();
            assert!(
                got == want || (got.is_nan() && want.is_nan()),
                "{text}: {got} != {want}"
            );
        }
        ColumnType::Date32 => {
            let want = NaiveDate::parse_from_str(&normalized(text), "%Y-%m-%d").unwrap()
                - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
            assert_eq!(
                i64::from(array.as_primitive::<Date32Type>().value(i)),
                want.num_days()
            );
        }
        ColumnType::Time64 => {
            let want = NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
                .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
                .unwrap()
                - NaiveTime::MIN;
            assert_eq!(
                array.as_primitive::<Time64MicrosecondType>().value(i),
                want.num_microseconds().unwrap(),
                "{text}"
            );
        }
        ColumnType::TimestampUtc => assert_eq!(
            array.as_primitive::<TimestampMicrosecondType>().value(i),
            micros_utc(text),
            "{text}"
        ),
        ColumnType::Timestamp => assert_eq!(
            array.as_primitive::<TimestampMicrosecondType>().value(i),
            micros_local(text),
            "{text}"
        ),
    }
}

fn read_back(parquet: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(parquet))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Same bytes, same schema and warnings, whatever the read chunking.
    #[test]
    fn inference_ignores_chunking(case in case(), k in chunk_sizes()) {
        let whole = infer_schema(&case.bytes[..], &case.options).unwrap();
        let chunked = infer_schema(Chunked { data: &case.bytes, k }, &case.options).unwrap();
        prop_assert_eq!(&whole, &chunked);
        prop_assert_eq!(whole.row_count, case.rows.len() as u64);
        for (field, kind) in whole.schema.fields.iter().zip(&case.kinds) {
            let col = whole.schema.fields.iter().position(|f| f.name == field.name).unwrap();
            let any_value = case.rows.iter().any(|r| {
                !r[col].is_empty() && !case.options.null_values.contains(&r[col])
            });
            if let (Some(ty), true) = (kind.pure_type(), any_value) {
                prop_assert_eq!(field.data_type, ty, "column {} of kind {:?}", field.name, kind);
            }
            if !any_value {
                prop_assert_eq!(field.data_type, ColumnType::Utf8);
            }
        }
    }

    /// Byte-identical Parquet and SHA-256 whatever the read chunking, and the values the
    /// CSV held read back.
    #[test]
    fn parquet_is_deterministic_and_round_trips(case in case(), k in chunk_sizes()) {
        let inferred = infer_schema(&case.bytes[..], &case.options).unwrap();
        let mut a = Vec::new();
        let out_a = write_parquet(&case.bytes[..], &case.options, &inferred.schema, &mut a).unwrap();
        let mut b = Vec::new();
        let out_b = write_parquet(Chunked { data: &case.bytes, k }, &case.options, &inferred.schema, &mut b).unwrap();
        prop_assert!(a == b, "parquet bytes differ with chunk size {k}");
        prop_assert_eq!(&out_a, &out_b);
        prop_assert_eq!(out_a.size_bytes, a.len() as u64);
        prop_assert_eq!(out_a.row_count, case.rows.len() as u64);
        // The inference report counts every null cell, and a typed column other than bool
        // and float64 is settled by its first non-null value.
        for (c, report) in out_a.columns.iter().enumerate() {
            let is_null = |text: &String| text.is_empty() || case.options.null_values.contains(text);
            let nulls = case.rows.iter().filter(|row| is_null(&row[c])).count();
            prop_assert_eq!(report.null_count, nulls as u64);
            let first = case.rows.iter().find(|row| !is_null(&row[c])).map(|row| row[c].clone());
            match report.data_type {
                ColumnType::Bool => prop_assert!(report.decided_by.is_none()),
                ColumnType::Int64 | ColumnType::Date32 | ColumnType::Time64
                | ColumnType::TimestampUtc | ColumnType::Timestamp => prop_assert_eq!(
                    report.decided_by.as_ref().map(|d| d.value.clone()),
                    first
                ),
                ColumnType::Utf8 if first.is_none() => prop_assert!(report.decided_by.is_none()),
                ColumnType::Float64 | ColumnType::Utf8 => prop_assert!(report.decided_by.is_some()),
            }
        }

        let batches = read_back(a);
        let mut row = 0;
        for batch in &batches {
            for i in 0..batch.num_rows() {
                for (col, field) in inferred.schema.fields.iter().enumerate() {
                    assert_cell(
                        batch.column(col).as_ref(),
                        i,
                        field.data_type,
                        &case.rows[row][col],
                        &case.options.null_values,
                    );
                }
                row += 1;
            }
        }
        prop_assert_eq!(row, case.rows.len());
    }

    /// A file always conforms to its own inferred schema.
    #[test]
    fn a_file_conforms_to_its_inferred_schema(case in case(), k in chunk_sizes()) {
        let inferred = infer_schema(&case.bytes[..], &case.options).unwrap();
        let checked = check_schema(Chunked { data: &case.bytes, k }, &case.options, &inferred.schema).unwrap();
        prop_assert_eq!(checked.row_count, inferred.row_count);
        prop_assert_eq!(checked.warnings, inferred.warnings);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No input makes any pass panic, and the passes agree on whether the bytes are a CSV.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(
            prop::sample::select(b"a1,\"\r\n\t.-:T Z+e\xEF\xBB\xBF\xff\x01".to_vec()),
            0..200,
        ),
        k in chunk_sizes(),
    ) {
        let options = CsvOptions::default();
        let inferred = infer_schema(Chunked { data: &bytes, k }, &options);
        match inferred {
            Ok(inferred) => {
                prop_assert!(check_schema(&bytes[..], &options, &inferred.schema).is_ok());
                prop_assert!(write_parquet(&bytes[..], &options, &inferred.schema, Vec::new()).is_ok());
            }
            Err(e) => {
                // The write pass fails on the same fault, given a schema that is not itself
                // at fault: the header's own (inferred from the first line alone, so every
                // column is utf8 and accepts any value; a CR ends a line too). When the header
                // line is the fault, no schema fits it and the write only has to fail.
                let header = bytes.split(|&b| b == b'\n' || b == b'\r').next().unwrap_or_default();
                let header_schema = infer_schema(header, &options).map(|inferred| inferred.schema);
                let schema = header_schema
                    .as_ref()
                    .cloned()
                    .unwrap_or(lakehouse_api::Schema { fields: vec![] });
                let written = write_parquet(&bytes[..], &options, &schema, Vec::new());
                let Err(written) = written else {
                    return Err(TestCaseError::fail(format!("inference refused the bytes ({e}), the write accepted them")));
                };
                if header_schema.is_ok() {
                    prop_assert_eq!(std::mem::discriminant(&written), std::mem::discriminant(&e), "{} / {}", written, e);
                }
                // Same error kind on every inference pass, whatever the chunking.
                prop_assert_eq!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(&infer_schema(&bytes[..], &options).unwrap_err())
                );
            }
        }
    }
}

/// `case`'s bytes with its data lines repeated until they hold more than two record batches
/// (the header is kept once), so that the pipelined writer has batches in flight.
fn multi_batch(case: &Case) -> Vec<u8> {
    let header_end = case
        .bytes
        .iter()
        .position(|&b| b == b'\n')
        .map_or(case.bytes.len(), |i| i + 1);
    let (header, body) = case.bytes.split_at(header_end);
    let copies = (2 * BATCH_ROWS + 1000) / case.rows.len().max(1) + 1;
    let mut bytes = header.to_vec();
    for _ in 0..copies {
        bytes.extend_from_slice(body);
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// The pipelined pass 2 (parse and encode on two threads) writes byte-identical Parquet,
    /// size, SHA-256 and row count to the single-threaded one, over several batches.
    #[test]
    fn pipelined_parquet_is_byte_identical_to_single_threaded(case in case(), k in chunk_sizes()) {
        let bytes = multi_batch(&case);
        let inferred = infer_schema(&bytes[..], &case.options).unwrap();
        let mut single = Vec::new();
        let out_single = write_parquet(&bytes[..], &case.options, &inferred.schema, &mut single).unwrap();
        let mut piped = Vec::new();
        let (out_piped, _) = write_parquet_pipelined(
            Chunked { data: &bytes, k: k.max(4096) },
            &case.options,
            &inferred.schema,
            &mut piped,
        )
        .unwrap();
        prop_assert!(single == piped, "pipelined parquet differs");
        prop_assert_eq!(&out_single, &out_piped);
        prop_assert_eq!(out_piped.size_bytes, piped.len() as u64);
        prop_assert_eq!(out_piped.row_count, inferred.row_count);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// On any input the pipelined pass 2 succeeds exactly when the single-threaded one does,
    /// with the same bytes or the same kind of error.
    #[test]
    fn pipelined_agrees_with_single_threaded_on_arbitrary_bytes(
        bytes in prop::collection::vec(
            prop::sample::select(b"a1,\"\r\n\t.-:T Z+e\xEF\xBB\xBF\xff\x01".to_vec()),
            0..200,
        ),
    ) {
        let options = CsvOptions::default();
        let schema = infer_schema(&bytes[..], &options)
            .map(|i| i.schema)
            .unwrap_or(lakehouse_api::Schema { fields: vec![] });
        let mut single = Vec::new();
        let mut piped = Vec::new();
        let a = write_parquet(&bytes[..], &options, &schema, &mut single);
        let b = write_parquet_pipelined(&bytes[..], &options, &schema, &mut piped);
        match (a, b) {
            (Ok(a), Ok((b, _))) => {
                prop_assert_eq!(a, b);
                prop_assert!(single == piped);
            }
            (Err(a), Err(b)) => prop_assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b)),
            (a, b) => prop_assert!(false, "single {:?} vs pipelined {:?}", a.is_ok(), b.is_ok()),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The verified pass proves a guessed schema exactly when it is the whole-file inference:
    /// whatever the guess (right, or wrong in any column), it answers `Some` if and only if
    /// `infer_schema` returns that schema, and then writes the bytes, row count and warnings
    /// of pass 1 followed by `write_parquet`, whatever the chunking.
    #[test]
    fn verified_pass_proves_exactly_the_inferred_schema(
        case in case(),
        types in guesses(),
        k in chunk_sizes(),
    ) {
        let inferred = infer_schema(&case.bytes[..], &case.options).unwrap();
        let guess = perturbed(&inferred.schema, &types);
        let mut out = Vec::new();
        let verified = write_parquet_verified(
            Chunked { data: &case.bytes, k },
            &case.options,
            Expected::Inferred(&guess),
            &mut out,
        )
        .unwrap();
        prop_assert_eq!(verified.is_some(), guess == inferred.schema, "guess {:?}", guess);
        if let Some(verified) = verified {
            let mut expected = Vec::new();
            let written = write_parquet(&case.bytes[..], &case.options, &inferred.schema, &mut expected).unwrap();
            prop_assert!(out == expected, "verified parquet differs");
            prop_assert_eq!(verified.output, written);
            prop_assert_eq!(verified.warnings, inferred.warnings);
        }
    }

    /// With a registered schema, the verified pass proves it exactly when `check_schema`
    /// accepts the file.
    #[test]
    fn verified_pass_agrees_with_the_check(case in case(), types in guesses(), k in chunk_sizes()) {
        let inferred = infer_schema(&case.bytes[..], &case.options).unwrap();
        let registered = perturbed(&inferred.schema, &types);
        let checked = check_schema(&case.bytes[..], &case.options, &registered);
        let mut out = Vec::new();
        let verified = write_parquet_verified(
            Chunked { data: &case.bytes, k },
            &case.options,
            Expected::Registered(&registered),
            &mut out,
        )
        .unwrap();
        prop_assert_eq!(verified.is_some(), checked.is_ok());
        if let (Some(verified), Ok(checked)) = (verified, checked) {
            let mut expected = Vec::new();
            write_parquet(&case.bytes[..], &case.options, &registered, &mut expected).unwrap();
            prop_assert!(out == expected, "verified parquet differs");
            prop_assert_eq!(verified.output.row_count, checked.row_count);
            prop_assert_eq!(verified.warnings, checked.warnings);
        }
    }

    /// On any bytes, the verified pass fails with exactly pass 1's CSV error, proves pass 1's
    /// schema when there is one, and a guess from any prefix never panics.
    #[test]
    fn verified_pass_fails_as_pass_1_on_arbitrary_bytes(
        bytes in prop::collection::vec(
            prop::sample::select(b"a1,\"\r\n\t.-:T Z+e\xEF\xBB\xBF\xff\x01".to_vec()),
            0..200,
        ),
        cut in 0usize..200,
        types in guesses(),
    ) {
        let options = CsvOptions::default();
        let prefix = &bytes[..cut.min(bytes.len())];
        let guess = guess_schema(prefix, false, &options);
        if let (Some(guess), Ok(inferred)) = (&guess, infer_schema(prefix, &options)) {
            // Same header, so the same names (the types may differ: the last record, maybe
            // cut short, is left out of a guess).
            prop_assert!(guess.names().eq(inferred.schema.names()), "{:?} vs {:?}", guess, inferred.schema);
        }
        prop_assert_eq!(
            guess_schema(&bytes, true, &options),
            infer_schema(&bytes[..], &options).ok().map(|i| i.schema)
        );
        match infer_schema(&bytes[..], &options) {
            Ok(inferred) => {
                for schema in [inferred.schema.clone(), perturbed(&inferred.schema, &types)] {
                    let verified = write_parquet_verified(&bytes[..], &options, Expected::Inferred(&schema), Vec::new()).unwrap();
                    prop_assert_eq!(verified.is_some(), schema == inferred.schema);
                }
            }
            Err(e) => {
                let schema = guess.unwrap_or(Schema { fields: vec![] });
                for expected in [Expected::Inferred(&schema), Expected::Registered(&schema)] {
                    match write_parquet_verified(&bytes[..], &options, expected, Vec::new()) {
                        Err(v) => prop_assert_eq!(v.to_string(), e.to_string()),
                        // Stopped at a refused value before the bad record: not proven.
                        Ok(v) => prop_assert!(v.is_none()),
                    }
                }
            }
        }
    }
}
proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Over the whole lattice of types: a guess is proven exactly when it is the inference
    /// (an all-int column guessed float64, an all-empty one guessed int64, a date column
    /// guessed utf8, ... are not), and a registered schema exactly when the check accepts.
    /// Read with the inference's day/month orders, as a guess always is.
    #[test]
    fn verified_pass_proves_no_other_schema((csv, types) in lattice_case()) {
        let inferred = infer_schema(&csv[..], &CsvOptions::default()).unwrap();
        let options = CsvOptions { date_orders: inferred.date_orders.clone(), ..CsvOptions::default() };
        let guess = perturbed(&inferred.schema, &types);
        let verified = write_parquet_verified(&csv[..], &options, Expected::Inferred(&guess), Vec::new()).unwrap();
        prop_assert_eq!(verified.is_some(), guess == inferred.schema, "guess {:?}", guess);
        let checked = check_schema(&csv[..], &options, &guess);
        let verified = write_parquet_verified(&csv[..], &options, Expected::Registered(&guess), Vec::new()).unwrap();
        prop_assert_eq!(verified.is_some(), checked.is_ok(), "registered {:?}", guess);
    }
}

/// Over several row groups (the column-parallel encoder starts new column writers for each,
/// split between two threads, and appends their chunks in column order) the pipelined pass
/// still writes byte for byte what the single-threaded `ArrowWriter` writes.
#[test]
fn pipelined_parquet_is_byte_identical_over_row_groups() {
    let rows = 2 * MAX_ROW_GROUP_ROWS + 3 * BATCH_ROWS + 17;
    let mut csv = b"id,amount,name,flag,note\n".to_vec();
    for i in 0..rows {
        let note = if i % 7 == 0 {
            ""
        } else {
            "\"long, quoted \"\"text\"\"\""
        };
        csv.extend_from_slice(
            format!(
                "{i},{}.{:02},n{},{},{note}\n",
                i % 997,
                i % 100,
                i % 13,
                i % 3 == 0
            )
            .as_bytes(),
        );
    }
    let options = CsvOptions::default();
    let schema = infer_schema(&csv[..], &options).unwrap().schema;
    let mut single = Vec::new();
    write_parquet(&csv[..], &options, &schema, &mut single).unwrap();
    let mut piped = Vec::new();
    let (written, _) = write_parquet_pipelined(&csv[..], &options, &schema, &mut piped).unwrap();
    assert_eq!(written.row_count, rows as u64);
    assert!(single == piped, "pipelined parquet differs");
    // On 3 and 8 threads (docs/contract.md section 13) the row groups are encoded whole on
    // threads of their own and appended in order: still the same bytes.
    for threads in [3, 8] {
        let read = ReadConfig::from(&options)
            .threads(threads)
            .chunk_bytes(256 * 1024);
        let mut spread = Vec::new();
        write_parquet_pipelined(&csv[..], read, &schema, &mut spread).unwrap();
        assert!(single == spread, "{threads} threads wrote other bytes");
    }
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(piped)).unwrap();
    assert_eq!(reader.metadata().num_row_groups(), 3);
}
