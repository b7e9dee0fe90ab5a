//! Fuzz target of the CSV reader and inference (docs/decisions.md, "Hostile world"), run as a proptest so it
//! needs no nightly toolchain. For any bytes and options:
//! - no pass panics;
//! - the result is a schema or a typed [`ConvertError`];
//! - the same bytes and options always give the same result (schema, warnings and row count,
//!   or the same error, message included), however the input is chunked;
//! - a schema it infers is one the file conforms to, and encodes to the same Parquet bytes
//!   twice.
//!
//! `scripts/test` runs a short pass (`LAKEHOUSE_FUZZ_CASES`, default 300 per target). A
//! longer pass: `LAKEHOUSE_FUZZ_CASES=200000 cargo test --release -p lakehouse-convert --test
//! fuzz` (see the README).

use lakehouse_api::CsvOptions;
use lakehouse_convert::{ConvertError, check_schema, infer_schema, write_parquet};
mod common;

use common::Chunked;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("LAKEHOUSE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

/// The result in a comparable form: what a client would see.
fn outcome(result: Result<lakehouse_convert::Inferred, ConvertError>) -> Result<String, String> {
    result
        .map(|i| format!("{:?} {:?} {}", i.schema, i.warnings, i.row_count))
        .map_err(|e| {
            // Every error is one of the typed variants the service maps to a 4xx or 500.
            let kind = match &e {
                ConvertError::EmptyCsv => "empty_csv",
                ConvertError::MalformedCsv { .. } => "malformed_csv",
                ConvertError::InvalidHeader { .. } => "invalid_header",
                ConvertError::LimitExceeded { .. } => "limit_exceeded",
                ConvertError::SchemaDrift(_) => "schema_drift",
                ConvertError::TooManyRejects { .. } => "too_many_rejects",
                ConvertError::Io(_) => "io",
                ConvertError::Parquet(_) => "parquet",
            };
            format!("{kind}: {e}")
        })
}

fn options() -> impl Strategy<Value = CsvOptions> {
    (
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        prop::collection::vec(prop::sample::select(vec!["NA", "", "null", "-", "1"]), 0..3),
    )
        .prop_map(|(delimiter, nulls)| CsvOptions {
            delimiter,
            null_values: nulls.into_iter().map(str::to_owned).collect(),
        })
}

/// Bytes from an alphabet rich in what CSV parsing and inference care about.
fn csvish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: Vec<u8> =
        b"ab1029,;|\t\"\"\r\n\n.-+:eETZ tfrua \xEF\xBB\xBF\xC3\xA9\xff\x00\x1f".to_vec();
    prop::collection::vec(prop::sample::select(alphabet), 0..400)
}

/// A well-formed CSV of typed-looking values, then mutated (bytes flipped, inserted, cut).
fn mutated_csv() -> impl Strategy<Value = Vec<u8>> {
    let cell = prop::sample::select(vec![
        "1",
        "-7",
        "007",
        "2.5",
        "1e999",
        "nan",
        "TRUE",
        "false",
        "2024-02-29",
        "2023-02-29",
        "2024-01-01T00:00:00Z",
        "2024-01-01 00:00:00.1234567",
        "\"a,b\"",
        "\"x\"\"y\"",
        "\"multi\nline\"",
        "",
        "NA",
        "é",
    ]);
    let row = prop::collection::vec(cell, 1..5);
    (
        prop::collection::vec(row, 1..8),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
    )
        .prop_map(|(rows, mutations)| {
            let width = rows[0].len();
            let mut text = (0..width)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",");
            for row in &rows {
                text.push('\n');
                text.push_str(&row.join(","));
            }
            let mut bytes = text.into_bytes();
            for (at, byte, op) in mutations {
                if bytes.is_empty() {
                    break;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            bytes
        })
}

fn check(bytes: &[u8], options: &CsvOptions, k: usize) -> Result<(), TestCaseError> {
    let whole = outcome(infer_schema(bytes, options));
    let chunked = outcome(infer_schema(Chunked { data: bytes, k }, options));
    prop_assert_eq!(&whole, &chunked, "result depends on chunking");
    prop_assert_eq!(
        &whole,
        &outcome(infer_schema(bytes, options)),
        "result not deterministic"
    );
    if let Ok(inferred) = infer_schema(bytes, options) {
        prop_assert!(!inferred.schema.fields.is_empty());
        let checked = check_schema(Chunked { data: bytes, k }, options, &inferred.schema);
        prop_assert!(
            checked.is_ok(),
            "a file must conform to its own schema: {:?}",
            checked
        );
        let mut first = Vec::new();
        let mut second = Vec::new();
        let a = write_parquet(bytes, options, &inferred.schema, &mut first);
        let b = write_parquet(
            Chunked { data: bytes, k },
            options,
            &inferred.schema,
            &mut second,
        );
        prop_assert!(a.is_ok() && b.is_ok(), "encoding failed: {:?} {:?}", a, b);
        prop_assert_eq!(first, second, "parquet bytes depend on chunking");
    }
    Ok(())
}

fn run<S: Strategy<Value = Vec<u8>>>(name: &str, bytes: S) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (bytes, options(), 1usize..=64);
    let result = runner.run(&strategy, |(bytes, options, k)| check(&bytes, &options, k));
    eprintln!("fuzz {name}: {} inputs tried", cases());
    if let Err(failure) = result {
        panic!("fuzz {name} found a failing input: {failure}");
    }
}

#[test]
fn fuzz_csvish_bytes() {
    run("csvish_bytes", csvish_bytes());
}

#[test]
fn fuzz_mutated_csv() {
    run("mutated_csv", mutated_csv());
}
