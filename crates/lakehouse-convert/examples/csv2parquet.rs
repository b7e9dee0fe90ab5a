//! File-to-file conversion with the stage timings, for profiling the converter without the
//! services (docs/performance.md).
//!
//! `cargo run --release --example csv2parquet -- <in.csv> <out.parquet> [mode]` writes
//! Parquet and prints the time of each stage. Modes: `verified` (the default, as ingestd on
//! a speculation hit: a guess from the first 4 MiB, then one verified pass),
//! `two-pass` (inference over the whole file, then the pipelined pass 2), `single` (inference,
//! then pass 2 on one thread), `partitioned:N` (inference, then the partitioned pass 2 with
//! the rows spread over N partitions by their first column, an int64, modulo N; the files are
//! only counted).

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse_api::CsvOptions;
use std::io::Read;
use std::time::Instant;

/// Rows by their first column modulo `n`, numbered in order of first appearance.
struct Modulo {
    n: i64,
    index: std::collections::HashMap<i64, u32>,
}

impl lakehouse_convert::Partitioner for Modulo {
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> lakehouse_convert::Result<()> {
        out.clear();
        for id in batch.column(0).as_primitive::<Int64Type>().values() {
            let next = self.index.len() as u32;
            out.push(*self.index.entry(id.rem_euclid(self.n)).or_insert(next));
        }
        Ok(())
    }
}

/// Counts the files and bytes of a partitioned pass.
#[derive(Default)]
struct Counted {
    files: u64,
    bytes: u64,
}

impl lakehouse_convert::PartitionSink for Counted {
    fn append(&mut self, _: u32, _: u32, bytes: &[u8]) -> std::io::Result<()> {
        self.bytes += bytes.len() as u64;
        Ok(())
    }

    fn finish(&mut self, _: u32, _: u32, footer: &[u8], _: u64, _: u64) -> std::io::Result<()> {
        self.bytes += footer.len() as u64;
        self.files += 1;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: csv2parquet <in.csv> <out.parquet> [verified|two-pass|single]");
        std::process::exit(2);
    };
    let mode = args.get(3).map_or("verified", String::as_str);
    let options = CsvOptions::default();
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let csv = std::fs::File::open(input)?;
    let started = Instant::now();
    let (schema, written, stats) = if mode == "verified" {
        let mut prefix = Vec::new();
        std::fs::File::open(input)?
            .take(4 << 20)
            .read_to_end(&mut prefix)?;
        let complete = prefix.len() < 4 << 20;
        let guess = lakehouse_convert::guess_schema(&prefix, complete, &options)
            .ok_or("no guess from the first 4 MiB")?;
        println!("guess={:?}", started.elapsed());
        let expected = lakehouse_convert::Expected::Inferred(&guess);
        let verified = lakehouse_convert::write_parquet_verified(csv, &options, expected, out)?
            .ok_or("the guess did not hold")?;
        (guess, verified.output, verified.stats)
    } else {
        let inferred = lakehouse_convert::infer_schema(std::fs::File::open(input)?, &options)?;
        println!("infer={:?}", started.elapsed());
        if let Some(n) = mode.strip_prefix("partitioned:") {
            let mut partitioner = Modulo {
                n: n.parse()?,
                index: std::collections::HashMap::new(),
            };
            let mut sink = Counted::default();
            let config = lakehouse_convert::PartitionedConfig {
                // `PARTITION_BUFFER_MIB` (default 64), as ingestd's `partition_buffer_bytes`.
                buffer_bytes: std::env::var("PARTITION_BUFFER_MIB")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(64)
                    << 20,
                target_file_bytes: 128 << 20,
                // `SPILL_DIR` (an existing directory), as ingestd's spool directory.
                spill_dir: std::env::var_os("SPILL_DIR").map(std::path::PathBuf::from),
            };
            let verified = lakehouse_convert::write_parquet_partitioned(
                csv,
                &options,
                lakehouse_convert::Expected::Registered(&inferred.schema),
                &mut partitioner,
                &mut sink,
                config,
            )?
            .ok_or("the inferred schema did not hold")?;
            println!("files={} bytes={}", sink.files, sink.bytes);
            (inferred.schema, verified.output, verified.stats)
        } else if mode == "single" {
            let written = lakehouse_convert::write_parquet(csv, &options, &inferred.schema, out)?;
            (
                inferred.schema,
                written,
                lakehouse_convert::EncodeStats::default(),
            )
        } else {
            let (written, stats) =
                lakehouse_convert::write_parquet_pipelined(csv, &options, &inferred.schema, out)?;
            (inferred.schema, written, stats)
        }
    };
    println!(
        "rows={} parquet_bytes={} total={:?} parse={:?} encode={:?}",
        written.row_count,
        written.size_bytes,
        started.elapsed(),
        stats.parse,
        stats.encode
    );
    for field in &schema.fields {
        println!("  {}: {}", field.name, field.data_type.name());
    }
    Ok(())
}
