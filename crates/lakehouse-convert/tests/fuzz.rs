//! Fuzz target of the CSV reader and inference (docs/decisions.md, "Hostile world"), run as a proptest so it
//! needs no nightly toolchain; `fuzz_framed_bytes` also decodes (gzip, zstd, cut streams,
//! UTF-16, every encoding, a small `max_csv_bytes`) and sniffs the delimiter. For any bytes
//! and options:
//! - no pass panics;
//! - the result is a schema or a typed [`ConvertError`];
//! - the same bytes and options always give the same result (schema, warnings and row count,
//!   or the same error, message included), however the input is chunked;
//! - a schema it infers is one the file conforms to, and encodes to the same Parquet bytes
//!   twice;
//! - pass 1 and pass 2 on 8 threads, in chunks of a few bytes, give what one thread gives
//!   or fail with the same message (docs/contract.md section 13).
//!
//! `scripts/test` runs a short pass (`LAKEHOUSE_FUZZ_CASES`, default 300 per target). A
//! longer pass: `LAKEHOUSE_FUZZ_CASES=200000 cargo test --release -p lakehouse-convert --test
//! fuzz` (see the README).

use lakehouse_api::{CsvOptions, DateOrder, DecimalSeparator, TextEncoding};
use lakehouse_convert::{
    ConvertError, ReadConfig, check_schema, decode, infer_schema, sniff_delimiter, write_parquet,
    write_parquet_pipelined,
};
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
                ConvertError::LimitExceeded { .. }
                | ConvertError::TooManyPartitions { .. }
                | ConvertError::MergeTooLarge { .. } => "limit_exceeded",
                ConvertError::NullKey { .. } => "null_key",
                ConvertError::DuplicateKey { .. } => "duplicate_key",
                ConvertError::TooLarge { .. } => "payload_too_large",
                ConvertError::SchemaDrift(_) => "schema_drift",
                ConvertError::TooManyRejects { .. } => "too_many_rejects",
                ConvertError::UnsupportedFormat { .. } => "unsupported_media_type",
                ConvertError::Io(_) => "io",
                ConvertError::Parquet(_) => "parquet",
            };
            format!("{kind}: {e}")
        })
}

/// Delimiter, null tokens, and the reading options of docs/contract.md section 14 (a decimal comma,
/// a date order), so every invariant below holds under them too.
fn options() -> impl Strategy<Value = CsvOptions> {
    (
        prop::sample::select(vec![b',', b';', b'\t', b'|']),
        prop::collection::vec(prop::sample::select(vec!["NA", "", "null", "-", "1"]), 0..3),
        prop::sample::select(vec![DecimalSeparator::Point, DecimalSeparator::Comma]),
        prop::sample::select(vec![None, Some(DateOrder::Dmy), Some(DateOrder::Mdy)]),
    )
        .prop_map(
            |(delimiter, nulls, decimal_separator, date_order)| CsvOptions {
                delimiter,
                null_values: nulls.into_iter().map(str::to_owned).collect(),
                decimal_separator,
                date_order,
                ..CsvOptions::default()
            },
        )
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

/// Pass 2 at 1 and at 8 threads in chunks of `k` bytes (docs/contract.md section 13): the
/// same bytes, or the same error message (line and column included).
fn check_threads(bytes: &[u8], options: &CsvOptions, k: usize) -> Result<(), TestCaseError> {
    let schema = match infer_schema(bytes, options) {
        Ok(inferred) => inferred.schema,
        Err(_) => lakehouse_api::Schema {
            fields: vec![lakehouse_api::Field::new(
                "a",
                lakehouse_api::ColumnType::Int64,
            )],
        },
    };
    let run = |read: ReadConfig<'_>| {
        let mut out = Vec::new();
        write_parquet_pipelined(bytes, read, &schema, &mut out)
            .map(|(written, _)| (written, out))
            .map_err(|e| e.to_string())
    };
    let one = ReadConfig::from(options);
    prop_assert_eq!(
        run(one),
        run(one.threads(8).chunk_bytes(k)),
        "8 threads differ"
    );
    let inferred = |read: ReadConfig<'_>| outcome(infer_schema(bytes, read));
    prop_assert_eq!(inferred(one), inferred(one.threads(8).chunk_bytes(k)));
    Ok(())
}

fn check(bytes: &[u8], options: &CsvOptions, k: usize) -> Result<(), TestCaseError> {
    check_threads(bytes, options, k)?;
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
        // Read with the day/month orders the inference settled, as ingestd does.
        let options = &CsvOptions {
            date_orders: inferred.date_orders.clone(),
            ..options.clone()
        };
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

/// How [`fuzz_framed_bytes`] wraps its bytes before they are read.
#[derive(Debug, Clone, Copy)]
enum Framing {
    Plain,
    Gzip,
    Zstd,
    Utf16Le,
    /// gzip or zstd, cut at a fraction of its length.
    CutGzip(f64),
    CutZstd(f64),
    /// The gzip magic bytes followed by the bytes as they are (not a gzip stream).
    FakeGzip,
}

fn framed(bytes: &[u8], framing: Framing) -> Vec<u8> {
    use std::io::Write;
    let gzip = || {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    };
    let zstd = || zstd::stream::encode_all(bytes, 1).expect("in memory");
    let cut = |mut framed: Vec<u8>, at: f64| {
        framed.truncate((framed.len() as f64 * at) as usize);
        framed
    };
    match framing {
        Framing::Plain => bytes.to_vec(),
        Framing::Gzip => gzip(),
        Framing::Zstd => zstd(),
        Framing::Utf16Le => {
            let mut out = vec![0xff, 0xfe];
            out.extend(bytes.iter().flat_map(|&b| [b, 0]));
            out
        }
        Framing::CutGzip(at) => cut(gzip(), at),
        Framing::CutZstd(at) => cut(zstd(), at),
        Framing::FakeGzip => [&[0x1f, 0x8b][..], bytes].concat(),
    }
}

/// What a new dataset's first upload without a delimiter goes through (docs/contract.md section
/// 3): decode (decompress, transcode), sniff, infer; as a comparable result.
fn framed_outcome(
    bytes: &[u8],
    encoding: TextEncoding,
    max_csv_bytes: u64,
    k: usize,
) -> Result<String, String> {
    let open = || decode(Chunked { data: bytes, k }, encoding, max_csv_bytes);
    let delimiter = sniff_delimiter(open, 1 << 20).map_err(|e| format!("sniff: {e}"))?;
    let options = CsvOptions {
        delimiter,
        encoding,
        ..CsvOptions::default()
    };
    let reader = open().map_err(|e| format!("decode: {e}"))?;
    outcome(infer_schema(reader, &options)).map(|found| format!("{delimiter} {found}"))
}

/// Any bytes, compressed, cut, transcoded or not, in any encoding, under a small
/// `max_csv_bytes` or none: no panic, a typed result, the same whatever the chunking.
#[test]
fn fuzz_framed_bytes() {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let framing = prop_oneof![
        Just(Framing::Plain),
        Just(Framing::Gzip),
        Just(Framing::Zstd),
        Just(Framing::Utf16Le),
        (0.0f64..1.0).prop_map(Framing::CutGzip),
        (0.0f64..1.0).prop_map(Framing::CutZstd),
        Just(Framing::FakeGzip),
    ];
    let strategy = (
        prop_oneof![csvish_bytes(), mutated_csv()],
        framing,
        prop::sample::select(TextEncoding::ALL.to_vec()),
        prop::sample::select(vec![u64::MAX, 64, 0]),
        1usize..=64,
    );
    let result = runner.run(&strategy, |(bytes, framing, encoding, max, k)| {
        let upload = framed(&bytes, framing);
        let whole = framed_outcome(&upload, encoding, max, usize::MAX);
        let chunked = framed_outcome(&upload, encoding, max, k);
        prop_assert_eq!(&whole, &chunked, "result depends on chunking");
        Ok(())
    });
    eprintln!("fuzz framed_bytes: {} inputs tried", cases());
    if let Err(failure) = result {
        panic!("fuzz framed_bytes found a failing input: {failure}");
    }
}
