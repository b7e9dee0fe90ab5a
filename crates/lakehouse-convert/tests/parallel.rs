//! Pass 1 and pass 2 on many threads (docs/contract.md section 13): whatever the thread count and
//! wherever the chunk boundaries fall (chunks of a few bytes put one in every record, inside
//! quoted line breaks' records, inside record batches), the Parquet bytes, the row count, the
//! inference report, the verdict of a verified pass and every error (message, line and
//! column included) are those of one thread.

use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{
    Expected, ReadConfig, ReadLimits, Speculation, check_schema, infer_schema,
    write_parquet_pipelined, write_parquet_speculative, write_parquet_verified,
};
mod common;

use common::Chunked;
use proptest::prelude::*;

/// Values that exercise every type, nulls, quotes, quoted line breaks (LF, CRLF, CR),
/// doubled quotes, text after a closing quote, quotes inside unquoted fields and non-ASCII.
fn value() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "1",
        "-42",
        "007",
        "9007199254740993",
        "2.5",
        "1e3",
        "true",
        "FALSE",
        "2024-02-29",
        "03/04/2024",
        "12:30:00",
        "2024-01-01T00:00:00Z",
        "2024-01-01 10:00:00",
        "",
        "NA",
        "\"a,b\"",
        "\"line\nbreak\"",
        "\"crlf\r\nbreak\"",
        "\"cr\rbreak\"",
        "\"say \"\"hi\"\"\"",
        "\"q\"tail",
        "un\"quoted",
        "é",
        "x",
    ])
    .prop_map(str::to_owned)
}

/// A column whose values stay within one type for a while, then maybe change: typed
/// columns whose proof settles in one chunk and is refuted in another.
fn column() -> impl Strategy<Value = (Vec<String>, usize)> {
    (prop::collection::vec(value(), 1..4), 0usize..400)
}

/// A CSV of 3 columns and up to `max_rows` rows, each column drawn from a few values
/// (switching at a random row), with LF or CRLF line ends and maybe blank lines and a BOM.
fn csv(max_rows: usize) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec(column(), 3),
        1..max_rows,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(columns, rows, crlf, blank, bom)| {
            let end = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            text.push_str("a,b,c");
            text.push_str(end);
            for row in 0..rows {
                let fields: Vec<&str> = columns
                    .iter()
                    .map(|(values, switch)| {
                        let k = usize::from(row >= *switch) * (row % values.len());
                        values[k].as_str()
                    })
                    .collect();
                text.push_str(&fields.join(","));
                text.push_str(end);
                if blank && row % 97 == 5 {
                    text.push_str(end);
                }
            }
            text.into_bytes()
        })
}

/// Everything a caller sees of a verified pass, or its error as a message.
fn verified(
    csv: &[u8],
    read: ReadConfig<'_>,
    expected: Expected<'_>,
    k: usize,
) -> Result<Option<(Vec<u8>, String)>, String> {
    let mut out = Vec::new();
    write_parquet_verified(Chunked { data: csv, k }, read, expected, &mut out)
        .map(|v| v.map(|v| (out, format!("{:?} {:?}", v.output, v.warnings))))
        .map_err(|e| e.to_string())
}

/// [`verified`] against `schema` on one thread and as `many` says (threads, chunk size):
/// asserts both give the same bytes and report, and returns the one-thread result.
fn verified_on_one_and_many(
    csv: &[u8],
    many: ReadConfig<'_>,
    schema: &Schema,
    k: usize,
) -> Result<Option<(Vec<u8>, String)>, String> {
    let single = verified(csv, many.threads(1), Expected::Inferred(schema), k);
    let parallel = verified(csv, many, Expected::Inferred(schema), k);
    assert_eq!(single, parallel);
    single
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The verified pass at 2 and 8 threads, chunks of a few bytes to a few KiB: the same
    /// verdict, bytes, report and errors as at one thread, for the inferred schema, a
    /// perturbed guess, and as a registered schema.
    #[test]
    fn many_threads_write_what_one_writes(
        csv in csv(20_000),
        chunk in 1usize..6000,
        k in 1usize..70_000,
        guess in prop::option::of((0usize..3, prop::sample::select(vec![
            ColumnType::Int64, ColumnType::Float64, ColumnType::Utf8, ColumnType::Date32,
        ]))),
    ) {
        let options = CsvOptions::default();
        let schema = match infer_schema(&csv[..], &options) {
            Ok(inferred) => inferred.schema,
            Err(_) => Schema { fields: vec![Field::new("a", ColumnType::Utf8)] },
        };
        let mut guessed = schema.clone();
        if let Some((i, ty)) = guess && let Some(field) = guessed.fields.get_mut(i) {
            field.data_type = ty;
        }
        let one = ReadConfig::from(&options);
        let inferred = |read: ReadConfig<'_>| {
            infer_schema(Chunked { data: &csv, k }, read)
                .map(|i| format!("{i:?}"))
                .map_err(|e| e.to_string())
        };
        for threads in [2, 8] {
            prop_assert_eq!(inferred(one), inferred(one.threads(threads).chunk_bytes(chunk)));
        }
        for expected in [Expected::Inferred(&schema), Expected::Inferred(&guessed), Expected::Registered(&guessed)] {
            let single = verified(&csv, one, expected, k);
            for threads in [2, 8] {
                let many = verified(&csv, one.threads(threads).chunk_bytes(chunk), expected, k);
                prop_assert_eq!(&single, &many, "{} threads, chunks of {}", threads, chunk);
            }
        }
        // A refuted guess: the same second guess (the records from the refused value on
        // are only inferred, chunk by chunk), or the same error.
        let second_guess = |read: ReadConfig<'_>| {
            let input = Chunked { data: &csv, k };
            match write_parquet_speculative(input, read, Expected::Inferred(&guessed), Vec::new()) {
                Ok(Speculation::Proven(_)) => Ok(None),
                Ok(Speculation::Unproven(second)) => Ok(Some(format!("{second:?}"))),
                Err(e) => Err(e.to_string()),
            }
        };
        for threads in [2, 8] {
            let many = one.threads(threads).chunk_bytes(chunk);
            prop_assert_eq!(second_guess(one), second_guess(many), "{} threads", threads);
        }
        prop_assert_eq!(
            check_schema(&csv[..], &options, &guessed).is_ok(),
            verified(&csv, one.threads(8).chunk_bytes(chunk), Expected::Registered(&guessed), k)
                .is_ok_and(|v| v.is_some())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arbitrary bytes (quotes left open at the end, ragged records in the last chunk,
    /// invalid UTF-8, a record over the cap): the pipelined pass 2 at 8 threads in chunks
    /// of a few bytes succeeds exactly when one thread does, with the same bytes, or fails
    /// with the same message (line and column included).
    #[test]
    fn many_threads_fail_as_one_does(
        bytes in prop::collection::vec(
            prop::sample::select(b"a1,\"\r\n\t.-:T Z+e\xEF\xBB\xBF\xff\xc3\x01".to_vec()),
            0..400,
        ),
        chunk in 1usize..64,
        max_record_bytes in prop::sample::select(vec![16u64, 64, 1 << 20]),
    ) {
        let options = CsvOptions::default();
        let limits = ReadLimits { max_record_bytes, ..ReadLimits::default() };
        let one = ReadConfig::new(&options, limits);
        let schema = infer_schema(&bytes[..], one)
            .map(|i| i.schema)
            .unwrap_or(Schema { fields: vec![] });
        let run = |read: ReadConfig<'_>| {
            let mut out = Vec::new();
            write_parquet_pipelined(&bytes[..], read, &schema, &mut out)
                .map(|(written, _)| (written, out))
                .map_err(|e| e.to_string())
        };
        prop_assert_eq!(run(one), run(one.threads(8).chunk_bytes(chunk)));
        let inferred = |read: ReadConfig<'_>| {
            infer_schema(&bytes[..], read).map(|i| format!("{i:?}")).map_err(|e| e.to_string())
        };
        prop_assert_eq!(inferred(one), inferred(one.threads(8).chunk_bytes(chunk)));
    }
}

/// A column's type is settled by the value that, with every value before it, rules out the
/// narrower types: here a time after dates (utf8), which alone would be a time. With one
/// record per chunk that value starts a chunk, and the report still names it and its line.
#[test]
fn the_value_that_settles_a_type_is_found_across_chunks() {
    let mut csv = String::from("when,n\n");
    for i in 0..40 {
        csv.push_str(&format!("2024-01-{:02},{i}\n", i % 28 + 1));
    }
    csv.push_str("12:30:00,1.5\n12:31:00,2\n");
    let options = CsvOptions::default();
    let inferred = infer_schema(csv.as_bytes(), &options).unwrap();
    assert_eq!(inferred.schema.fields[0].data_type, ColumnType::Utf8);
    let read = ReadConfig::from(&options).threads(4).chunk_bytes(1);
    let single = verified_on_one_and_many(csv.as_bytes(), read, &inferred.schema, 1 << 20);
    let report = single.unwrap().unwrap().1;
    assert!(report.contains("line: 42, value: \"12:30:00\""), "{report}");
}

/// A record longer than the splitter's reads and than a chunk (a 1 MiB quoted field with
/// line breaks, early in the file), then short rows: the same bytes and report at 8 threads.
#[test]
fn a_record_longer_than_a_chunk_reads_as_on_one_thread() {
    let mut csv = String::from("id,text\n1,short\n2,\"");
    for i in 0..40_000 {
        csv.push_str(&format!("line {i}\n"));
    }
    csv.push_str("\"\n");
    for i in 3..20_000 {
        csv.push_str(&format!("{i},row {i}\n"));
    }
    let options = CsvOptions::default();
    let inferred = infer_schema(csv.as_bytes(), &options).unwrap();
    let read = ReadConfig::from(&options).threads(8).chunk_bytes(64 * 1024);
    let single = verified_on_one_and_many(csv.as_bytes(), read, &inferred.schema, 1 << 16);
    assert!(single.as_ref().is_ok_and(Option::is_some), "{single:?}");
}
