//! Helpers shared by the converter's integration tests (each test crate uses some of them).
#![allow(dead_code)]

pub mod guesses;

use arrow_array::RecordBatch;
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{infer_schema, write_parquet};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use std::io::Read;

/// The default options: comma, no null tokens.
pub fn opts() -> CsvOptions {
    CsvOptions::default()
}

/// A schema of `fields` (name, type), all nullable.
pub fn schema(fields: &[(&str, ColumnType)]) -> Schema {
    Schema {
        fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect(),
    }
}

/// Infers, writes and reads back: (parquet bytes, batches as read).
pub fn round_trip(csv: &[u8], options: &CsvOptions) -> (Vec<u8>, Vec<RecordBatch>) {
    let inferred = infer_schema(csv, options).unwrap();
    let mut out = Vec::new();
    let written = write_parquet(csv, options, &inferred.schema, &mut out).unwrap();
    assert_eq!(written.row_count, inferred.row_count);
    assert_eq!(written.size_bytes, out.len() as u64);
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(out.clone()))
        .unwrap()
        .build()
        .unwrap();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (out, batches)
}

/// A reader that hands out at most `k` bytes per `read` call, to check that results do not
/// depend on how the input is chunked (docs/contract.md section 3).
pub struct Chunked<'a> {
    /// Bytes not read yet.
    pub data: &'a [u8],
    /// Most bytes per call.
    pub k: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.k.min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}

/// A CSV of 20,000 rows (three record batches) with every column type, nulls, quotes,
/// embedded delimiters and line breaks, exponents and leading zeros.
pub fn every_type_csv() -> String {
    let mut csv = String::from("id,price,flag,day,at,local,name,zip\n");
    for i in 0..20_000u32 {
        let price = match i % 4 {
            0 => format!("{}.{:02}", i * 7 % 1000, i % 100),
            1 => format!("{}e-{}", i % 97, i % 5),
            2 => String::new(),
            _ => format!("-{}", i % 313),
        };
        let flag = ["true", "false", ""][(i % 3) as usize];
        let day = format!("20{:02}-{:02}-{:02}", i % 30, i % 12 + 1, i % 28 + 1);
        let at = format!(
            "2024-03-{:02}T{:02}:{:02}:07.{:06}Z",
            i % 28 + 1,
            i % 24,
            i % 60,
            i
        );
        let local = format!("2024-03-{:02} {:02}:15:00", i % 28 + 1, i % 24);
        let name = match i % 5 {
            0 => format!("\"a, \"\"quoted\"\"\nname {i}\""),
            1 => String::new(),
            _ => format!("name {}", i % 50),
        };
        let zip = format!("{:05}", i * 37 % 100_000);
        csv.push_str(&format!(
            "{i},{price},{flag},{day},{at},{local},{name},{zip}\n"
        ));
    }
    csv
}
