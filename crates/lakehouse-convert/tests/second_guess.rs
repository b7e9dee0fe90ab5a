//! The second guess of a verified pass that was not proven (docs/contract.md section 13, "A
//! guess refuted late"): what the values read point to is the whole-file inference, so one
//! more verified pass proves it and writes pass 2's bytes; and the refused pass's Parquet
//! is abandoned at the refusal, before the rest of the input is read.

use lakehouse_api::{ColumnType, CsvOptions, DateOrder, Schema};
use lakehouse_convert::{
    CompactSink, Expected, ParquetFiles, ReadConfig, SecondGuess, Speculation, guess_schema,
    infer_schema, write_parquet, write_parquet_speculative, write_parquet_verified,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
mod common;

use common::Chunked;
use common::guesses::{lattice_case, perturbed};

/// An int no float64 holds exactly (beyond 2^53).
const BIG_INT: &str = "9007199254740993";

/// The verified pass's outcome with `guess` over `csv`, read `k` bytes at a time.
fn speculate(csv: &[u8], options: &CsvOptions, guess: &Schema, k: usize) -> Speculation {
    let input = Chunked { data: csv, k };
    write_parquet_speculative(input, options, Expected::Inferred(guess), Vec::new()).unwrap()
}

/// The second guess of a pass that was not proven; panics if it was, or gave none.
fn second_guess_of(csv: &[u8], guess: &Schema) -> SecondGuess {
    match speculate(csv, &CsvOptions::default(), guess, usize::MAX) {
        Speculation::Proven(_) => panic!("{guess:?} was proven"),
        Speculation::Unproven(second) => second.expect("a second guess"),
    }
}

/// Verifies `second` over `csv` with its day/month orders: the Parquet when proven.
fn verify(csv: &[u8], options: &CsvOptions, second: &SecondGuess) -> Option<Vec<u8>> {
    let options = CsvOptions {
        date_orders: second.date_orders.clone(),
        ..options.clone()
    };
    let mut out = Vec::new();
    let expected = Expected::Inferred(&second.schema);
    let verified = write_parquet_verified(csv, &options, expected, &mut out).unwrap();
    verified.map(|_| out)
}

/// Pass 1 then pass 2 over `csv`: what a proven second guess must have written.
fn both_passes(csv: &[u8]) -> Vec<u8> {
    let inferred = infer_schema(csv, &CsvOptions::default()).unwrap();
    let options = CsvOptions {
        date_orders: inferred.date_orders,
        ..CsvOptions::default()
    };
    let mut out = Vec::new();
    write_parquet(csv, &options, &inferred.schema, &mut out).unwrap();
    out
}

/// `rows` records of `id,qty,name,day` (ints, ints, text, dates), then `tail`.
fn file(rows: usize, tail: &str) -> Vec<u8> {
    let mut csv = String::from("id,qty,name,day\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "{i},{},item {i},2024-01-{:02}\n",
            i % 90,
            1 + i % 28
        ));
    }
    csv.push_str(tail);
    csv.into_bytes()
}

/// The guess ingestd makes: the inference over the first `bytes` of the file.
fn prefix_guess(csv: &[u8], bytes: usize) -> Schema {
    guess_schema(&csv[..bytes], false, &CsvOptions::default()).unwrap()
}

fn types(schema: &Schema) -> Vec<ColumnType> {
    schema.fields.iter().map(|f| f.data_type).collect()
}

#[test]
fn a_late_float_widens_its_column_and_the_second_guess_is_proven() {
    let csv = file(5_000, "5000,2.5,last,2024-02-01\n");
    let guess = prefix_guess(&csv, 4096);
    assert_eq!(types(&guess)[1], ColumnType::Int64);
    let second = second_guess_of(&csv, &guess);
    let inferred = infer_schema(&csv[..], &CsvOptions::default()).unwrap();
    assert_eq!(second.schema, inferred.schema);
    assert_eq!(types(&second.schema)[1], ColumnType::Float64);
    let written = verify(&csv, &CsvOptions::default(), &second).expect("proven");
    assert!(
        written == both_passes(&csv),
        "the bytes of pass 1 and pass 2"
    );
}

/// A trailer line refuses every typed column at once: the pass refused only its first, but
/// the record's other values and every record after it are read too.
#[test]
fn a_trailer_line_refutes_every_typed_column_in_one_second_guess() {
    let csv = file(3_000, "Total,n/a,,none\n");
    let guess = prefix_guess(&csv, 2048);
    let second = second_guess_of(&csv, &guess);
    assert_eq!(types(&second.schema), [ColumnType::Utf8; 4]);
    assert!(verify(&csv, &CsvOptions::default(), &second).is_some());
}

/// No value is refused, but a column empty in the prefix (guessed utf8) holds ints later:
/// the values read prove a narrower type, which the second guess names.
#[test]
fn a_column_empty_in_the_prefix_is_typed_by_its_later_values() {
    let mut csv = String::from("a,b\n");
    for i in 0..2_000 {
        csv.push_str(&format!("{i},\n"));
    }
    for i in 0..2_000 {
        csv.push_str(&format!("{i},{}\n", i * 3));
    }
    let csv = csv.into_bytes();
    let guess = prefix_guess(&csv, 1024);
    assert_eq!(types(&guess), [ColumnType::Int64, ColumnType::Utf8]);
    let second = second_guess_of(&csv, &guess);
    assert_eq!(
        types(&second.schema),
        [ColumnType::Int64, ColumnType::Int64]
    );
    assert!(verify(&csv, &CsvOptions::default(), &second).is_some());
}

/// `P/Q/YYYY` dates refuted by a value neither reading accepts: utf8; a late value that
/// only one reading accepts keeps the column a date, in that order.
#[test]
fn day_month_orders_follow_the_values_read() {
    let mut csv = String::from("d\n");
    for i in 1..=2_000 {
        csv.push_str(&format!("{:02}/{:02}/2021\n", 1 + i % 12, 1 + i % 12));
    }
    let ambiguous = csv.clone().into_bytes();
    let guess = prefix_guess(&ambiguous, 1024);
    assert_eq!(types(&guess), [ColumnType::Utf8], "both readings hold");
    csv.push_str("13/04/2021\n");
    let csv = csv.into_bytes();
    let second = second_guess_of(&csv, &guess);
    assert_eq!(types(&second.schema), [ColumnType::Date32]);
    assert_eq!(
        second.date_orders,
        BTreeMap::from([("d".to_owned(), DateOrder::Dmy)])
    );
    let inferred = infer_schema(&csv[..], &CsvOptions::default()).unwrap();
    assert_eq!(second.date_orders, inferred.date_orders);
    assert!(verify(&csv, &CsvOptions::default(), &second).is_some());
}

/// An int beyond 2^53 and then a non-int float make the inference utf8 (no float64 holds
/// that int): the int64 column tracked it, so the second guess says utf8 too.
#[test]
fn an_int_beyond_2_pow_53_then_a_float_is_utf8_in_the_second_guess_too() {
    let csv = file(
        2_000,
        &format!("{BIG_INT},{BIG_INT},x,2024-01-01\n1,2.5,y,2024-01-02\n"),
    );
    let guess = prefix_guess(&csv, 1024);
    let second = second_guess_of(&csv, &guess);
    let inferred = infer_schema(&csv[..], &CsvOptions::default()).unwrap();
    assert_eq!(types(&inferred.schema)[1], ColumnType::Utf8);
    assert_eq!(second.schema, inferred.schema);
    assert!(verify(&csv, &CsvOptions::default(), &second).is_some());
}

/// After a refused value the pass reads on: a bad record past it is pass 1's error, with
/// its line, not a second guess.
#[test]
fn a_bad_record_after_the_refusal_is_pass_1s_error() {
    let csv = file(2_000, "2000,2.5,x,2024-01-01\n1,2\n");
    let guess = prefix_guess(&csv, 1024);
    let input = Chunked {
        data: &csv,
        k: 4096,
    };
    let expected = Expected::Inferred(&guess);
    let error = write_parquet_speculative(input, &CsvOptions::default(), expected, Vec::new())
        .expect_err("a ragged record");
    let pass1 = infer_schema(&csv[..], &CsvOptions::default()).expect_err("a ragged record");
    assert_eq!(error.to_string(), pass1.to_string());
    assert!(error.to_string().contains("2003"), "{error}");
}

/// A sink that records what the encoder did with its files, and how many bytes of the
/// input had been read when it abandoned them.
struct Recording<'a> {
    read: &'a AtomicU64,
    events: Vec<String>,
}

impl CompactSink for Recording<'_> {
    type Writer = Vec<u8>;

    fn open(&mut self) -> std::io::Result<Vec<u8>> {
        self.events.push("open".into());
        Ok(Vec::new())
    }

    fn close(&mut self, _: Vec<u8>, _: u64, _: u64) -> std::io::Result<()> {
        self.events.push("close".into());
        Ok(())
    }

    fn abandon(&mut self) {
        let read = self.read.load(Ordering::SeqCst);
        self.events.push(format!("abandon after {read} bytes"));
    }
}

/// A reader that counts the bytes read through it.
struct Counted<'a> {
    inner: &'a [u8],
    read: &'a AtomicU64,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(4096);
        let n = self.inner.read(&mut buf[..len])?;
        self.read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
}

/// A refused value abandons the Parquet output at once (so a caller drops what it staged
/// then, not once the whole input is read), and no file is closed after it, at one thread
/// and at four.
#[test]
fn a_refused_value_abandons_the_output_before_the_rest_is_read() {
    let mut csv = file(1_000, "1000,2.5,late,2024-01-01\n");
    csv.extend_from_slice(&file(200_000, "")[16..]);
    let guess = prefix_guess(&csv, 1024);
    for threads in [1, 4] {
        let read = AtomicU64::new(0);
        let mut sink = Recording {
            read: &read,
            events: Vec::new(),
        };
        let options = CsvOptions::default();
        let config = ReadConfig::from(&options)
            .threads(threads)
            .chunk_bytes(64 << 10);
        let files = ParquetFiles::Split {
            sink: &mut sink,
            target_bytes: 1 << 20,
        };
        let input = Counted {
            inner: &csv,
            read: &read,
        };
        let outcome = write_parquet_speculative(input, config, Expected::Inferred(&guess), files);
        assert!(
            matches!(outcome, Ok(Speculation::Unproven(Some(_)))),
            "{threads} threads"
        );
        let abandoned: Vec<&String> = sink
            .events
            .iter()
            .filter(|e| e.starts_with("abandon"))
            .collect();
        assert_eq!(abandoned.len(), 1, "{threads} threads: {:?}", sink.events);
        let at: u64 = abandoned[0].split(' ').nth(2).unwrap().parse().unwrap();
        assert!(
            at < csv.len() as u64 / 2,
            "{threads} threads: abandoned after {at} of {} bytes",
            csv.len()
        );
        assert_eq!(
            sink.events.last().unwrap(),
            abandoned[0],
            "nothing closed after it"
        );
        assert_eq!(
            read.load(Ordering::SeqCst),
            csv.len() as u64,
            "then read to the end"
        );
    }
}

/// Options of a read: the `date_order` option, and the day/month order a guess gives each
/// of the first three columns (used when it guesses date32).
fn read_options() -> impl Strategy<Value = (Option<DateOrder>, Vec<DateOrder>)> {
    let order = prop::sample::select(vec![DateOrder::Dmy, DateOrder::Mdy]);
    (
        prop::option::of(order.clone()),
        prop::collection::vec(order, 3),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Whatever the guess (day/month orders included), over every class of values, with or
    /// without a `date_order`: a refuted guess points to the inference's schema and
    /// day/month orders, whatever the chunking, and verifying that second guess proves it,
    /// writing pass 2's bytes.
    #[test]
    fn a_refuted_guess_points_to_the_inference(
        (csv, types) in lattice_case(),
        (date_order, orders) in read_options(),
        k in prop_oneof![1usize..=16, Just(usize::MAX)],
    ) {
        let options = CsvOptions { date_order, ..CsvOptions::default() };
        let inferred = infer_schema(&csv[..], &options).unwrap();
        let guess = perturbed(&inferred.schema, &types);
        let guessed = CsvOptions {
            date_orders: guess
                .fields
                .iter()
                .zip(&orders)
                .filter(|(f, _)| f.data_type == ColumnType::Date32)
                .map(|(f, order)| (f.name.clone(), *order))
                .collect(),
            ..options.clone()
        };
        let second = match speculate(&csv, &guessed, &guess, k) {
            Speculation::Proven(_) => {
                prop_assert_eq!(&guess, &inferred.schema);
                for (name, order) in &inferred.date_orders {
                    prop_assert_eq!(guessed.date_orders.get(name), Some(order));
                }
                return Ok(());
            }
            Speculation::Unproven(second) => second,
        };
        let Some(second) = second else {
            return Err(TestCaseError::fail(format!("no second guess for {guess:?}")));
        };
        prop_assert_eq!(&second.schema, &inferred.schema, "guess {:?}", guess);
        prop_assert_eq!(&second.date_orders, &inferred.date_orders);
        let written = verify(&csv, &options, &second);
        prop_assert!(written.is_some(), "the inference, not proven: {:?}", second);
        let mut expected = Vec::new();
        let with_orders = CsvOptions { date_orders: inferred.date_orders.clone(), ..options };
        write_parquet(&csv[..], &with_orders, &inferred.schema, &mut expected).unwrap();
        prop_assert!(written == Some(expected), "not pass 2's bytes");
    }
}
