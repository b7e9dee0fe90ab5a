//! File-to-file conversion with the stage timings, for profiling the converter without the
//! services (docs/performance.md).
//!
//! `cargo run --release --example csv2parquet -- <in.csv> <out.parquet> [mode]` writes
//! Parquet and prints the time of each stage. Modes: `verified` (the default, as ingestd on
//! a speculation hit: a guess from the first 4 MiB, then one verified pass),
//! `two-pass` (inference over the whole file, then the pipelined pass 2), `single` (inference,
//! then pass 2 on one thread).

use lakehouse_api::CsvOptions;
use std::io::Read;
use std::time::Instant;

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
        if mode == "single" {
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
