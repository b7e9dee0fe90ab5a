//! Setting bad records aside (docs/contract.md section 3, "Rejects"): which records go, what the
//! rejects CSV says about them, the limit, and that the result depends only on the bytes.

use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{
    ConvertError, REJECTS_HEADER, SetAside, infer_schema, set_aside, write_parquet,
};
mod common;

use common::Chunked;
use proptest::prelude::*;

/// `set_aside` over `csv` read `k` bytes at a time: the outcome, the clean CSV and the
/// rejects CSV.
fn run(
    csv: &[u8],
    registered: Option<&Schema>,
    max: u64,
    k: usize,
) -> (Result<SetAside, ConvertError>, Vec<u8>, Vec<u8>) {
    let (mut kept, mut rejects) = (Vec::new(), Vec::new());
    let outcome = set_aside(
        Chunked { data: csv, k },
        &CsvOptions::default(),
        registered,
        max,
        &mut kept,
        &mut rejects,
    );
    (outcome, kept, rejects)
}

fn schema(fields: &[(&str, ColumnType)]) -> Schema {
    Schema {
        fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect(),
    }
}

/// Three bad records (a short one, invalid UTF-8, a value int64 refuses) among good ones.
const THREE_BAD: &[u8] =
    b"id,name\n1,a\n2\n3,\"x,\"\"y\"\"\"\n4,b\xffc\nfive,e\n6,\"multi\nline\"\n";

#[test]
fn three_bad_records_go_to_the_rejects_with_their_lines_and_reasons() {
    let registered = schema(&[("id", ColumnType::Int64), ("name", ColumnType::Utf8)]);
    let (outcome, kept, rejects) = run(THREE_BAD, Some(&registered), 5, 1 << 16);
    let outcome = outcome.unwrap();
    assert_eq!((outcome.kept, outcome.rejected), (3, 3));
    assert_eq!(
        String::from_utf8(kept).unwrap(),
        "id,name\n1,a\n3,\"x,\"\"y\"\"\"\n6,\"multi\nline\"\n"
    );
    assert_eq!(
        String::from_utf8(rejects).unwrap(),
        format!(
            "{REJECTS_HEADER}\n\
             3,,\"expected 2 fields as in the header, found 1\",2\n\
             5,2,\"invalid utf-8 at byte 2 of the field (it reads as Windows-1252, which \
             spreadsheet exports on Windows often are: add `encoding=windows-1252`)\",\"4,b\u{fffd}c\"\n\
             6,1,\"value \"\"five\"\" is not int64\",\"five,e\"\n"
        )
    );
}

/// docs/contract.md section 3: `record` is the raw record text, quotes and all, as the upload
/// wrote it (not its fields written back), without its line break (LF or CRLF); also past
/// the first MiB of input, whatever the read size.
#[test]
fn the_rejects_hold_each_record_as_it_was_written() {
    let csv = b"id,name\r\n1,\"a\"\"b\",\"extra\"\r\n2,ok\r\n";
    for k in [1, 3, 1 << 16] {
        let (outcome, _, rejects) = run(csv, None, 5, k);
        assert_eq!(outcome.unwrap().rejected, 1);
        assert_eq!(
            String::from_utf8(rejects).unwrap(),
            format!(
                "{REJECTS_HEADER}\n\
                 2,,\"expected 2 fields as in the header, found 3\",\"1,\"\"a\"\"\"\"b\"\",\"\"extra\"\"\"\n"
            ),
            "read {k} bytes at a time"
        );
    }
    let mut long = String::from("id,name\n");
    for i in 0..150_000 {
        long.push_str(&format!("{i},name {i}\n"));
    }
    long.push_str("x,\"q,\"\"r\"\"\",extra\n7,last\n");
    for k in [7, 1 << 16] {
        let (outcome, kept, rejects) = run(long.as_bytes(), None, 5, k);
        assert_eq!(outcome.unwrap().kept, 150_001);
        assert!(kept.ends_with(b"7,last\n"));
        let rejects = String::from_utf8(rejects).unwrap();
        assert_eq!(
            rejects.lines().nth(1),
            Some(
                "150002,,\"expected 2 fields as in the header, found 3\",\"x,\"\"q,\"\"\"\"r\"\"\"\"\"\",extra\""
            ),
            "read {k} bytes at a time"
        );
    }
}

#[test]
fn a_new_dataset_sets_aside_only_ragged_and_undecodable_records() {
    let (outcome, kept, _) = run(THREE_BAD, None, 5, 7);
    assert_eq!(outcome.unwrap().rejected, 2);
    // Inference sees only the records kept: `five` makes `id` text.
    let inferred = infer_schema(kept.as_slice(), &CsvOptions::default()).unwrap();
    assert_eq!(inferred.schema.fields[0].data_type, ColumnType::Utf8);
    assert_eq!(inferred.row_count, 4);
}

#[test]
fn the_record_past_the_limit_fails_with_its_usual_error_and_the_count() {
    let registered = schema(&[("id", ColumnType::Int64), ("name", ColumnType::Utf8)]);
    let (outcome, _, _) = run(THREE_BAD, Some(&registered), 2, 3);
    match outcome {
        Err(ConvertError::TooManyRejects { rejected, error }) => {
            assert_eq!(rejected, 3);
            let ConvertError::SchemaDrift(details) = *error else {
                panic!("{error:?}")
            };
            assert_eq!(details.changed[0].column, "id");
            assert_eq!(details.changed[0].line, Some(6));
            assert_eq!(details.changed[0].value.as_deref(), Some("five"));
        }
        other => panic!("{other:?}"),
    }
    let (outcome, _, _) = run(THREE_BAD, Some(&registered), 0, 3);
    match outcome {
        Err(ConvertError::TooManyRejects { rejected: 1, error }) => {
            assert!(
                matches!(*error, ConvertError::MalformedCsv { line: 3, .. }),
                "{error:?}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn header_errors_are_not_set_aside() {
    let (outcome, _, _) = run(b"", None, 5, 3);
    assert!(
        matches!(outcome, Err(ConvertError::EmptyCsv)),
        "{outcome:?}"
    );
    let (outcome, _, _) = run(b"a,b\n1,\"open\n", None, 5, 3);
    assert!(
        matches!(outcome, Err(ConvertError::MalformedCsv { line: 2, .. })),
        "{outcome:?}"
    );
}

/// A single-column file: an empty quoted field is a null record and stays one.
#[test]
fn a_single_column_null_stays_a_record() {
    let (outcome, kept, _) = run(b"a\n1\n\"\"\n2\n", None, 0, 2);
    assert_eq!(outcome.unwrap().kept, 3);
    assert_eq!(kept, b"a\n1\n\"\"\n2\n");
}

fn field() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "1", "2.5", ",", "\"", "\n", "\r\n", " ", "x y", "",
        ]),
        0..4,
    )
    .prop_map(|parts| parts.concat())
}

fn quoted(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) || field.is_empty() {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

proptest! {
    /// Whatever the read chunking, the same clean and rejects bytes; and a clean CSV read
    /// again gives byte-identical Parquet to the input's good records.
    #[test]
    fn outputs_depend_only_on_the_bytes(
        rows in prop::collection::vec((field(), field(), any::<bool>()), 1..20),
        k in 1usize..64,
    ) {
        let mut csv = String::from("a,b\n");
        let mut good = String::from("a,b\n");
        for (a, b, ragged) in &rows {
            if *ragged {
                csv.push_str(&format!("{}\n", quoted(a)));
            } else {
                let line = format!("{},{}\n", quoted(a), quoted(b));
                csv.push_str(&line);
                good.push_str(&line);
            }
        }
        let whole = run(csv.as_bytes(), None, 100, 1 << 16);
        let chunked = run(csv.as_bytes(), None, 100, k);
        prop_assert_eq!(&whole.1, &chunked.1);
        prop_assert_eq!(&whole.2, &chunked.2);
        let outcome = whole.0.unwrap();
        prop_assert_eq!(outcome.rejected, rows.iter().filter(|r| r.2).count() as u64);
        let options = CsvOptions::default();
        let schema = infer_schema(good.as_bytes(), &options).unwrap().schema;
        prop_assert_eq!(&infer_schema(whole.1.as_slice(), &options).unwrap().schema, &schema);
        let (mut from_good, mut from_kept) = (Vec::new(), Vec::new());
        write_parquet(good.as_bytes(), &options, &schema, &mut from_good).unwrap();
        write_parquet(whole.1.as_slice(), &options, &schema, &mut from_kept).unwrap();
        prop_assert!(from_good == from_kept, "Parquet of the kept records differs");
    }
}
