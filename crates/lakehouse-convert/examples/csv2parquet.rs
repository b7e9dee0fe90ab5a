//! File-to-file conversion with the stage timings, for profiling the converter without the
//! services (docs/performance.md).
//!
//! `cargo run --release --example csv2parquet -- <in.csv> <out.parquet> [single]` infers the
//! schema over the whole file, then writes Parquet (pipelined, or on one thread with
//! `single`), and prints the time of each stage.

use lakehouse_api::CsvOptions;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(output)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: csv2parquet <in.csv> <out.parquet> [single]");
        std::process::exit(2);
    };
    let single = args.get(3).is_some_and(|a| a == "single");
    let options = CsvOptions::default();
    let started = Instant::now();
    let inferred = lakehouse_convert::infer_schema(std::fs::File::open(input)?, &options)?;
    let infer = started.elapsed();
    let started = Instant::now();
    let out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(output)?);
    let csv = std::fs::File::open(input)?;
    let (written, stats) = if single {
        let written = lakehouse_convert::write_parquet(csv, &options, &inferred.schema, out)?;
        (written, lakehouse_convert::EncodeStats::default())
    } else {
        lakehouse_convert::write_parquet_pipelined(csv, &options, &inferred.schema, out)?
    };
    let pass2 = started.elapsed();
    println!(
        "rows={} parquet_bytes={} infer={:?} pass2={:?} parse={:?} encode={:?} hash={:?}",
        written.row_count, written.size_bytes, infer, pass2, stats.parse, stats.encode, stats.hash
    );
    for field in &inferred.schema.fields {
        println!("  {}: {}", field.name, field.data_type.name());
    }
    Ok(())
}
