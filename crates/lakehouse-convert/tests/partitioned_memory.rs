//! docs/contract.md section 2, invariant 5, for a partitioned pass 2 (section 10): memory
//! stays bounded by the configured budget however many partitions there are. 30,000 narrow
//! rows of 21 columns over 10,000 partitions under a 4 MiB budget, with a spill directory
//! as ingestd gives it: the small partitions' rows wait on disk and each partition becomes
//! one file at the end. (Before the spill and the bound on open files' metadata, this pass
//! wrote thousands of row groups of a few rows per flush, whose metadata the open files kept
//! until their footers: about 800 MiB at its peak.) Alone in its test binary, so the
//! process's peak RSS is this pass's.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema};
use lakehouse_convert::{
    Expected, PartitionSink, PartitionedConfig, Partitioner, write_parquet_partitioned,
};
use std::collections::HashMap;

const PARTITIONS: i64 = 10_000;
const COLUMNS: usize = 20;

/// Rows by their first column's value, numbered in order of first appearance.
#[derive(Default)]
struct ByKey(HashMap<i64, u32>);

impl Partitioner for ByKey {
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> lakehouse_convert::Result<()> {
        out.clear();
        for k in batch.column(0).as_primitive::<Int64Type>().values() {
            let next = self.0.len() as u32;
            out.push(*self.0.entry(*k).or_insert(next));
        }
        Ok(())
    }
}

/// Counts the files, keeps no byte.
#[derive(Default)]
struct Counted {
    files: u64,
    rows: u64,
}

impl PartitionSink for Counted {
    fn append(&mut self, _: u32, _: u32, _: &[u8]) -> std::io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _: u32, _: u32, _: &[u8], _: u64, rows: u64) -> std::io::Result<()> {
        self.files += 1;
        self.rows += rows;
        Ok(())
    }
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .expect("the field");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn ten_thousand_partitions_stay_within_the_budget() {
    const ROWS: i64 = 30_000;
    const BUDGET: usize = 4 << 20;
    let mut csv = String::from("k");
    for c in 0..COLUMNS {
        csv.push_str(&format!(",c{c}"));
    }
    csv.push('\n');
    for row in 0..ROWS {
        csv.push_str(&(row % PARTITIONS).to_string());
        for c in 0..COLUMNS as i64 {
            csv.push_str(&format!(",{}", (row + c) % 10));
        }
        csv.push('\n');
    }
    let schema = Schema {
        fields: std::iter::once(Field::new("k", ColumnType::Int64))
            .chain((0..COLUMNS).map(|c| Field::new(format!("c{c}"), ColumnType::Int64)))
            .collect(),
    };
    let spill = std::env::temp_dir().join(format!("lakehouse-spill-memory-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spill);
    std::fs::create_dir_all(&spill).expect("a spill directory");
    let before = status_kib("VmRSS:");
    let mut sink = Counted::default();
    let output = write_parquet_partitioned(
        csv.as_bytes(),
        &CsvOptions::default(),
        Expected::Registered(&schema),
        &mut ByKey::default(),
        &mut sink,
        PartitionedConfig {
            buffer_bytes: BUDGET,
            target_file_bytes: 128 << 20,
            spill_dir: Some(spill.clone()),
        },
    )
    .expect("written")
    .expect("the schema holds")
    .output;
    assert_eq!(output.row_count, ROWS as u64);
    assert_eq!(sink.rows, ROWS as u64);
    // Three rows per partition: every one spilled, then written as one file at the end.
    assert_eq!(sink.files, PARTITIONS as u64);
    std::fs::remove_dir_all(&spill).expect("removed");
    let grown = status_kib("VmHWM:").saturating_sub(before);
    eprintln!(
        "{PARTITIONS} partitions, {} files, peak RSS {grown} KiB over the {} KiB before",
        sink.files, before
    );
    // The budget, the metadata's budget as large again, a chunk being split, the encoders'
    // row groups and the allocator's slack: well under 64 MiB.
    assert!(grown < 64 << 10, "peak RSS grew {grown} KiB");
}
