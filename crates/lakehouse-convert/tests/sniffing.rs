//! Property tests of delimiter sniffing and of decoding (docs/contract.md section 3): the sniffed
//! delimiter of a table is the one it was written with (quoted delimiters included), a
//! prefix never decides otherwise than the whole file, and neither the read chunking nor
//! gzip/zstd/UTF-16 framing of the same text changes any result; and the day/month order of
//! `P/Q/YYYY` dates is the one written, settled by the whole column.

use lakehouse_api::{CsvOptions, TextEncoding};
use lakehouse_convert::{
    SNIFF_CANDIDATES, decode, infer_schema, sniff_delimiter, sniff_delimiter_prefix, write_parquet,
};
mod common;

use common::Chunked;
use proptest::prelude::*;
use std::io::Write;

const MAX_RECORD: u64 = 1 << 20;

/// A value, quoted when it holds a quote, a line break or any candidate delimiter.
fn field(value: &str) -> String {
    if value.contains(['"', '\n', '\r', ',', '\t', ';', '|']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A table written with `delimiter`: alphanumeric header names, values from an alphabet
/// full of the other candidates, quotes and line breaks.
fn table() -> impl Strategy<Value = (u8, usize, String)> {
    (
        prop::sample::select(SNIFF_CANDIDATES.to_vec()),
        1usize..6,
        0usize..140,
        prop::bool::ANY,
    )
        .prop_flat_map(|(delimiter, width, rows, crlf)| {
            let value = prop::string::string_regex("[a-c0-9,;|\t\" \n.]{0,6}").expect("regex");
            (
                Just(delimiter),
                Just(width),
                Just(crlf),
                prop::collection::vec(prop::collection::vec(value, width), rows),
            )
        })
        .prop_map(|(delimiter, width, crlf, rows)| {
            let sep = char::from(delimiter).to_string();
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut csv = (1..=width)
                .map(|i| format!("col{i}"))
                .collect::<Vec<_>>()
                .join(&sep);
            csv.push_str(eol);
            for row in rows {
                // A one-column row whose value is empty is an empty line: no record.
                let line = row.iter().map(|v| field(v)).collect::<Vec<_>>().join(&sep);
                csv.push_str(&line);
                csv.push_str(eol);
            }
            (delimiter, width, csv)
        })
}

fn sniff(bytes: &[u8], k: usize) -> u8 {
    sniff_delimiter(|| Ok(Chunked { data: bytes, k }), MAX_RECORD).expect("in memory")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Quoted delimiters and line breaks never fool it: a table of 2 or more columns is
    /// sniffed as written, a single column gives `,`. Whatever the chunking.
    #[test]
    fn a_table_is_sniffed_as_written((delimiter, width, csv) in table(), k in 1usize..64) {
        let expected = if width >= 2 { delimiter } else { b',' };
        prop_assert_eq!(sniff(csv.as_bytes(), k), expected);
        prop_assert_eq!(sniff(csv.as_bytes(), usize::MAX), expected);
    }

    /// A prefix decides nothing or what the whole file decides.
    #[test]
    fn a_prefix_agrees_with_the_whole_file((_, _, csv) in table(), cut in 0.0f64..1.0) {
        let bytes = csv.as_bytes();
        let whole = sniff(bytes, usize::MAX);
        let at = (bytes.len() as f64 * cut) as usize;
        if let Some(d) = sniff_delimiter_prefix(&bytes[..at], false, MAX_RECORD) {
            prop_assert_eq!(d, whole);
        }
        prop_assert_eq!(sniff_delimiter_prefix(bytes, true, MAX_RECORD), Some(whole));
    }

    /// Any bytes: the sniff of a prefix, when it decides, is the whole file's.
    #[test]
    fn any_bytes_prefix_agrees(bytes in prop::collection::vec(prop::sample::select(b"ab,;|\t\"\r\n".to_vec()), 0..600), cut in 0usize..600) {
        let whole = sniff(&bytes, 7);
        let at = cut.min(bytes.len());
        if let Some(d) = sniff_delimiter_prefix(&bytes[..at], false, MAX_RECORD) {
            prop_assert_eq!(d, whole);
        }
    }

    /// The same text plain, gzipped, zstd-compressed or in UTF-16 (with a BOM) gives the same
    /// sniffed delimiter, schema and Parquet bytes, whatever the chunking.
    #[test]
    fn framing_never_changes_a_result((_, _, csv) in table(), k in 1usize..4096) {
        let plain = csv.as_bytes().to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst = zstd::stream::encode_all(&plain[..], 1).expect("zstd");
        let mut utf16 = vec![0xff, 0xfe];
        utf16.extend(csv.encode_utf16().flat_map(u16::to_le_bytes));
        let outcome = |bytes: &[u8]| {
            let open = || decode(Chunked { data: bytes, k }, TextEncoding::Utf8, u64::MAX);
            let delimiter = sniff_delimiter(open, MAX_RECORD).expect("decodes");
            let options = CsvOptions { delimiter, ..CsvOptions::default() };
            let inferred = infer_schema(open().expect("decodes"), &options).expect("a table");
            let mut parquet = Vec::new();
            write_parquet(open().expect("decodes"), &options, &inferred.schema, &mut parquet)
                .expect("writes");
            (delimiter, inferred.schema, parquet)
        };
        let expected = outcome(&plain);
        prop_assert_eq!(&outcome(&gz), &expected);
        prop_assert_eq!(&outcome(&zst), &expected);
        prop_assert_eq!(&outcome(&utf16), &expected);
    }
}

/// A column of real dates written `P<s>Q<s>YYYY` in one order, one separator.
fn pq_column() -> impl Strategy<Value = (bool, u8, Vec<(u32, u32, u32)>, bool)> {
    (
        prop::bool::ANY,
        prop::sample::select(vec![b'/', b'-', b'.']),
        prop::collection::vec((1u32..=12, 1u32..=28, 1900u32..=2100), 1..40),
        prop::bool::ANY,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Day/month order (docs/contract.md section 3): settled by the whole column, DMY or MDY when
    /// exactly one reading makes every value a real date, else utf8; the order is the one
    /// written, the values read back are the dates written, whatever the chunking; and the
    /// verified single read proves exactly that schema and those orders.
    #[test]
    fn day_month_order_is_the_one_written(
        (day_first, sep, dates, pad) in pq_column(),
        k in 1usize..64,
    ) {
        use lakehouse_api::{ColumnType, DateOrder};
        let sep = char::from(sep);
        let mut csv = String::from("d\n");
        for &(month, day, year) in &dates {
            let (p, q) = if day_first { (day, month) } else { (month, day) };
            if pad {
                csv.push_str(&format!("{p:02}{sep}{q:02}{sep}{year}\n"));
            } else {
                csv.push_str(&format!("{p}{sep}{q}{sep}{year}\n"));
            }
        }
        // Settled when some value is not a date the other way round: its day is past 12.
        let settled = dates.iter().any(|&(_, day, _)| day > 12);
        let inferred = infer_schema(Chunked { data: csv.as_bytes(), k }, &CsvOptions::default()).unwrap();
        let expected_type = if settled { ColumnType::Date32 } else { ColumnType::Utf8 };
        prop_assert_eq!(inferred.schema.fields[0].data_type, expected_type);
        let order = if day_first { DateOrder::Dmy } else { DateOrder::Mdy };
        prop_assert_eq!(inferred.date_orders.get("d").copied(), settled.then_some(order));
        let options = CsvOptions { date_orders: inferred.date_orders.clone(), ..CsvOptions::default() };
        let mut plain = Vec::new();
        let written = write_parquet(Chunked { data: csv.as_bytes(), k }, &options, &inferred.schema, &mut plain).unwrap();
        let verified = lakehouse_convert::write_parquet_verified(
            csv.as_bytes(),
            &options,
            lakehouse_convert::Expected::Inferred(&inferred.schema),
            Vec::new(),
        )
        .unwrap();
        prop_assert!(verified.is_some());
        prop_assert_eq!(&verified.unwrap().output, &written);
        if settled {
            let batches = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(plain),
            )
            .unwrap()
            .build()
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
            let days: Vec<i32> = batches
                .iter()
                .flat_map(|b| {
                    let a = arrow_array::cast::AsArray::as_primitive::<arrow_array::types::Date32Type>(b.column(0));
                    a.values().to_vec()
                })
                .collect();
            let want: Vec<i32> = dates
                .iter()
                .map(|&(m, d, y)| {
                    (chrono::NaiveDate::from_ymd_opt(y as i32, m, d).unwrap()
                        - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                    .num_days() as i32
                })
                .collect();
            prop_assert_eq!(days, want);
        }
    }
}
