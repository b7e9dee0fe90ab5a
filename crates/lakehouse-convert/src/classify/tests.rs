//! Unit tests of the value classifier (docs/contract.md section 3's type table).

use super::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    /// The one-scan fast path gives exactly what the general path gives, whenever it
    /// answers; and it answers for the common literals.
    #[test]
    fn plain_numbers_parse_as_the_general_path_does(
        text in "[+-]?[0-9]{0,20}(\\.[0-9]{0,24})?([eE][0-9])?",
    ) {
        let general = any_float_literal(text.as_bytes());
        match plain_number(text.as_bytes()) {
            Some((value, int)) => {
                let (expected, expected_int) = general.unwrap();
                prop_assert_eq!(value.to_bits(), expected.to_bits(), "{}", text);
                prop_assert_eq!(int, expected_int);
            }
            None => {
                // Up to 15 digits, no exponent, no leading zero: always the fast path.
                let body = text.trim_start_matches(['+', '-']);
                let common = body.len() <= 15
                    && !body.contains(['e', 'E'])
                    && !body.starts_with(['0', '.'])
                    && !body.ends_with('.');
                prop_assert!(!(common && general.is_some()), "{} not on the fast path", text);
            }
        }
    }

    /// The unchecked loop for short ints accepts and values exactly what the full scan
    /// does (ints around i64's limits, leading zeros, signs, stray bytes included).
    #[test]
    fn ints_parse_as_the_full_scan_does(
        text in "[+-]?[0-9]{0,21}[x. ]?|[+-]?(9223372036854775[0-9]{3}|99999999999999999[0-9])",
    ) {
        prop_assert_eq!(parse_int(text.as_bytes()), scan_int(text.as_bytes()), "{}", text);
    }
}

fn mask(v: &str) -> u16 {
    classify(v.as_bytes()).mask
}

fn stats_of(values: &[&str]) -> ColumnType {
    let mut stats = ColumnStats::new();
    for v in values {
        stats.observe(classify(v.as_bytes()));
    }
    stats.resolve()
}

#[test]
fn bools_in_any_case() {
    for v in ["true", "FALSE", "True", "fAlSe"] {
        assert_eq!(mask(v), BOOL, "{v}");
    }
    for v in ["t", "yes", "1", "truee", " true"] {
        assert_eq!(mask(v) & BOOL, 0, "{v}");
    }
}

#[test]
fn ints_follow_the_grammar_and_fit_i64() {
    assert_eq!(parse_int(b"0"), Some(0));
    assert_eq!(parse_int(b"-0"), Some(0));
    assert_eq!(parse_int(b"+5"), Some(5));
    assert_eq!(parse_int(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_int(b"-9223372036854775808"), Some(i64::MIN));
    for v in [
        "007", "00", "-01", "+", "-", "1_000", " 1", "1 ", "0x10", "1.0",
    ] {
        assert_eq!(parse_int(v.as_bytes()), None, "{v}");
    }
    // Out of i64: neither an int nor a float, so utf8.
    for v in [
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
    ] {
        assert_eq!(mask(v), 0, "{v}");
    }
    assert_eq!(mask("007"), 0);
}

#[test]
fn float_forms_of_the_table() {
    for v in [
        "1.5",
        ".5",
        "-.5",
        "+.5",
        "0.25",
        "1e5",
        "1E+05",
        "-2.5e-3",
        "0e0",
        "nan",
        "NaN",
        "-nan",
        "inf",
        "-Infinity",
        "+INF",
        "1e-400",
    ] {
        assert_eq!(mask(v), FLOAT, "{v}");
    }
    for v in [
        "5.", ".", "e5", ".e5", "1.5e", "00.5", "01e5", "1.2.3", "--1", "infinit", "1e999",
        "-1e999",
    ] {
        assert_eq!(mask(v), 0, "{v}");
    }
    assert_eq!(mask("12"), INT | FLOAT);
    // A `-` at index 4 is not only a date's: these are floats too.
    for v in ["1.5e-3", "741e-3", "12.5e-7", "1234-5"] {
        let expected = if v == "1234-5" { 0 } else { FLOAT };
        assert_eq!(mask(v), expected, "{v}");
    }
    assert_eq!(parse_float(b"-Infinity"), Some(f64::NEG_INFINITY));
    assert!(parse_float(b"nan").is_some_and(f64::is_nan));
    assert_eq!(parse_float(b".5"), Some(0.5));
    assert_eq!(parse_float(b"1e999"), None);
    // 309 integer digits without an exponent overflow too.
    let huge = format!("{}.0", "9".repeat(309));
    assert_eq!(mask(&huge), 0);
    let big_but_finite = format!("{}.0", "9".repeat(308));
    assert_eq!(mask(&big_but_finite), FLOAT);
}

#[test]
fn ints_mixed_with_floats_need_every_int_within_2_pow_53() {
    let two53 = "9007199254740992";
    let two53_plus_1 = "9007199254740993";
    assert_eq!(stats_of(&["1.5", two53]), ColumnType::Float64);
    assert_eq!(stats_of(&["1.5", "-9007199254740992"]), ColumnType::Float64);
    assert_eq!(stats_of(&["1.5", two53_plus_1]), ColumnType::Utf8);
    assert_eq!(stats_of(&[two53_plus_1, "-1.5"]), ColumnType::Utf8);
    // Without floats, big ints are just int64.
    assert_eq!(stats_of(&[two53_plus_1, "1"]), ColumnType::Int64);
    assert_eq!(parse_float(two53_plus_1.as_bytes()), None);
    assert_eq!(parse_float(two53.as_bytes()), Some(9_007_199_254_740_992.0));
}

#[test]
fn dates_must_be_real() {
    assert_eq!(parse_date(b"1970-01-01"), Some(0));
    assert_eq!(parse_date(b"2024-02-29"), Some(19_782));
    assert_eq!(parse_date(b"1969-12-31"), Some(-1));
    assert_eq!(parse_date(b"2000-02-29"), Some(11_016));
    assert_eq!(parse_date(b"0000-01-01"), Some(-719_528));
    for v in [
        "2023-02-29",
        "1900-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-04-31",
        "2024-1-01",
        "2024/01-01",
        "2024-01/01",
        "2024.01.01",
        "2023/02/29",
        "2024/1/01",
        "24-01-01",
    ] {
        assert_eq!(parse_date(v.as_bytes()), None, "{v}");
        assert_eq!(mask(v), 0, "{v}");
    }
    assert_eq!(mask("2024-02-29"), DATE);
    assert_eq!(mask("2023-02-29"), 0);
    // YYYY/MM/DD (inference version 2): the same days.
    assert_eq!(parse_date(b"2024/02/29"), Some(19_782));
    assert_eq!(parse_date(b"1970/01/01"), Some(0));
    assert_eq!(mask("2012/01/01"), DATE);
}

/// Every real date of years 0000..=9999, in calendar order, is the day after the one
/// before it: 3,652,425 days from 0000-01-01 (-719,528) to 9999-12-31 (2,932,896).
#[test]
fn every_date_is_the_day_after_the_one_before() {
    let mut expected = -719_528;
    for year in 0..=9999 {
        for month in 1..=12 {
            for day in 1..=days_in_month(year, month) {
                let text = format!("{year:04}-{month:02}-{day:02}");
                assert_eq!(parse_date(text.as_bytes()), Some(expected), "{text}");
                expected += 1;
            }
        }
    }
    assert_eq!(expected, 2_932_897);
}

#[test]
fn timestamps_with_and_without_offsets() {
    let day = 19_723_i64 * MICROS_PER_DAY; // 2024-01-01
    assert_eq!(parse_timestamp(b"2024-01-01T00:00:00"), Some((day, false)));
    assert_eq!(parse_timestamp(b"2024-01-01 00:00:00Z"), Some((day, true)));
    assert_eq!(
        parse_timestamp(b"2024-01-01T00:00:00.5"),
        Some((day + 500_000, false))
    );
    assert_eq!(
        parse_timestamp(b"2024-01-01T00:00:00.123456"),
        Some((day + 123_456, false))
    );
    // 2024-01-01T00:30:00+01:00 is 2023-12-31T23:30:00Z.
    assert_eq!(
        parse_timestamp(b"2024-01-01T00:30:00+01:00"),
        Some((day - 30 * 60 * MICROS_PER_SECOND, true))
    );
    assert_eq!(
        parse_timestamp(b"2023-12-31T20:00:00-04:30"),
        Some((day + 30 * 60 * MICROS_PER_SECOND, true))
    );
    for v in [
        "2024-01-01T00:00:00.1234567",
        "2024-01-01T24:00:00",
        "2024-01-01T23:60:00",
        "2024-01-01T23:59:60",
        "2024-01-01T00:00:00+24:00",
        "2024-01-01T00:00:00+01:60",
        "2024-01-01T00:00:00+0100",
        "2024-01-01T00:00:00z",
        "2024-01-01t00:00:00",
        "2024-01-01T00:0",
        "2024-01-01T00:00:",
        "2024-01-01T00:00.5",
        "2024/01-01T00:00",
        "2024-01-01T00:00:00.",
        "2023-02-29T00:00:00",
        "2024-01-01T00:00:00ZZ",
    ] {
        assert_eq!(parse_timestamp(v.as_bytes()), None, "{v}");
        assert_eq!(mask(v), 0, "{v}");
    }
    assert_eq!(mask("2024-01-01T00:00:00.123456"), TS);
    assert_eq!(mask("2024-01-01T00:00:00+05:00"), TS_UTC);
    // Inference version 2: YYYY/MM/DD dates and HH:MM times in timestamps.
    assert_eq!(parse_timestamp(b"2024/01/01 00:00"), Some((day, false)));
    assert_eq!(
        parse_timestamp(b"2024/01/01T00:30+01:00"),
        Some((day - 30 * 60 * MICROS_PER_SECOND, true))
    );
    assert_eq!(
        parse_timestamp(b"2024-01-01 00:30Z"),
        Some((day + 30 * 60 * MICROS_PER_SECOND, true))
    );
    assert_eq!(mask("2024/01/01 08:30"), TS);
    assert_eq!(mask("2024/01/01 08:30:00.5Z"), TS_UTC);
}

fn order_of(values: &[&str]) -> (ColumnType, Option<DateOrder>) {
    let mut stats = ColumnStats::new();
    for v in values {
        stats.observe(classify(v.as_bytes()));
    }
    (stats.resolve(), stats.order())
}

#[test]
fn day_month_order_is_settled_by_the_whole_column() {
    assert_eq!(mask("03/04/2024"), MDY | DMY);
    assert_eq!(mask("13/02/2024"), DMY);
    assert_eq!(mask("02/13/2024"), MDY);
    assert_eq!(mask("1.2.2024"), MDY | DMY);
    assert_eq!(mask("31-02-2024"), 0);
    assert_eq!(mask("29/02/2023"), 0);
    for v in [
        "03/04/24",
        "003/04/2024",
        "03/04-2024",
        "03/04/2024x",
        "3//2024",
        "a3/04/2024",
    ] {
        assert_eq!(mask(v), 0, "{v}");
    }
    // DMY: one value is a date only day first.
    assert_eq!(
        order_of(&["03/04/2024", "13/02/2024"]),
        (ColumnType::Date32, Some(DateOrder::Dmy))
    );
    // MDY: one value is a date only month first.
    assert_eq!(
        order_of(&["03/04/2024", "02/13/2024"]),
        (ColumnType::Date32, Some(DateOrder::Mdy))
    );
    // Ambiguous (both readings hold for every value): utf8.
    assert_eq!(
        order_of(&["03/04/2024", "1/2/2024"]),
        (ColumnType::Utf8, None)
    );
    // Contradictory (neither reading holds for every value): utf8.
    assert_eq!(
        order_of(&["13/02/2024", "02/13/2024"]),
        (ColumnType::Utf8, None)
    );
    // Two separators, or mixed with ISO dates: utf8.
    assert_eq!(
        order_of(&["13/02/2024", "14.02.2024"]),
        (ColumnType::Utf8, None)
    );
    assert_eq!(
        order_of(&["13/02/2024", "2024-02-14"]),
        (ColumnType::Utf8, None)
    );
    assert_eq!(order_of(&["2024-02-14"]), (ColumnType::Date32, None));
    // Readings in days.
    assert_eq!(pq_readings(b"13/02/2024"), Some((b'/', None, Some(19_766))));
    assert_eq!(pq_readings(b"2.13.2024"), Some((b'.', Some(19_766), None)));
    assert!(accepts_in(
        ColumnType::Date32,
        Some(DateOrder::Dmy),
        classify(b"13-02-2024")
    ));
    assert!(!accepts_in(
        ColumnType::Date32,
        Some(DateOrder::Mdy),
        classify(b"13-02-2024")
    ));
    assert!(!accepts_in(
        ColumnType::Date32,
        Some(DateOrder::Dmy),
        classify(b"2024-02-13")
    ));
    assert!(!accepts_in(
        ColumnType::Date32,
        None,
        classify(b"13/02/2024")
    ));
}

#[test]
fn times_of_day() {
    assert_eq!(parse_time(b"00:00"), Some(0));
    assert_eq!(parse_time(b"08:30"), Some(30_600 * MICROS_PER_SECOND));
    assert_eq!(parse_time(b"23:59:59"), Some(86_399 * MICROS_PER_SECOND));
    assert_eq!(
        parse_time(b"12:00:00.5"),
        Some(43_200 * MICROS_PER_SECOND + 500_000)
    );
    assert_eq!(
        parse_time(b"12:00:00.000001"),
        Some(43_200 * MICROS_PER_SECOND + 1)
    );
    for v in [
        "24:00",
        "23:60",
        "23:59:60",
        "8:30",
        "08:3",
        "08:30:",
        "08:30:0",
        "08:30.5",
        "08:30:00.",
        "08:30:00.1234567",
        "08:30:00Z",
        "08:30 ",
        "08-30",
        "08:30:00:00",
    ] {
        assert_eq!(parse_time(v.as_bytes()), None, "{v}");
        assert_eq!(mask(v), 0, "{v}");
    }
    assert_eq!(mask("08:30"), TIME);
    assert_eq!(mask("08:30:15.25"), TIME);
    assert_eq!(stats_of(&["08:30", "17:45:00"]), ColumnType::Time64);
    assert_eq!(stats_of(&["08:30", "2024-01-01"]), ColumnType::Utf8);
    assert_eq!(stats_of(&["08:30", "1"]), ColumnType::Utf8);
    assert!(accepts(ColumnType::Time64, classify(b"08:30")));
    assert!(!accepts(ColumnType::Time64, classify(b"2024-01-01 08:30")));
}

#[test]
fn column_resolution_order_and_mixes() {
    assert_eq!(stats_of(&[]), ColumnType::Utf8);
    assert_eq!(stats_of(&["true", "False"]), ColumnType::Bool);
    assert_eq!(stats_of(&["1", "-2"]), ColumnType::Int64);
    assert_eq!(stats_of(&["1", "2.5"]), ColumnType::Float64);
    assert_eq!(stats_of(&["1", "true"]), ColumnType::Utf8);
    assert_eq!(
        stats_of(&["2024-01-01", "2024-01-01T00:00:00"]),
        ColumnType::Utf8
    );
    assert_eq!(
        stats_of(&["2024-01-01T00:00:00Z", "2024-01-01T00:00:00"]),
        ColumnType::Utf8
    );
    assert_eq!(
        stats_of(&["2024-01-01T00:00:00Z", "2024-01-01 01:00:00+02:00"]),
        ColumnType::TimestampUtc
    );
    assert_eq!(stats_of(&["2024-01-01 00:00:00"]), ColumnType::Timestamp);
    assert_eq!(stats_of(&["2024-01-01"]), ColumnType::Date32);
}

#[test]
fn acceptance_of_registered_types() {
    let c = |v: &str| classify(v.as_bytes());
    assert!(accepts(ColumnType::Float64, c("3")));
    assert!(accepts(ColumnType::Float64, c("9007199254740992")));
    assert!(!accepts(ColumnType::Float64, c("9007199254740993")));
    assert!(!accepts(ColumnType::Int64, c("3.0")));
    assert!(accepts(ColumnType::Utf8, c("anything")));
    assert!(!accepts(ColumnType::Timestamp, c("2024-01-01T00:00:00Z")));
    assert!(!accepts(ColumnType::Date32, c("2024-01-01T00:00:00")));
}

/// Odd bytes neither panic nor pass for a number, a date or a time: only `utf8` takes
/// them. The one well-formed value among them, the last timestamp of the calendar with
/// the largest offset, is a zoned timestamp and nothing else.
#[test]
fn odd_bytes_are_text_and_never_panic() {
    let accepted = |v: &[u8]| -> Vec<ColumnType> {
        let class = classify(v);
        ColumnType::ALL
            .into_iter()
            .filter(|&t| accepts(t, class))
            .collect()
    };
    for v in [
        &b"\xff\xfe"[..],
        b"-",
        b"+",
        b".",
        b"2024-",
        b"2024-01-01T",
        b"\x00",
    ] {
        assert_eq!(accepted(v), [ColumnType::Utf8], "{v:?}");
        assert_eq!(parse_float(v), None, "{v:?}");
        assert_eq!(parse_timestamp(v), None, "{v:?}");
    }
    let last = b"9999-12-31T23:59:59.999999+23:59";
    assert_eq!(accepted(last), [ColumnType::TimestampUtc, ColumnType::Utf8]);
    assert_eq!(parse_float(last), None);
    assert!(matches!(parse_timestamp(last), Some((_, true))));
}
