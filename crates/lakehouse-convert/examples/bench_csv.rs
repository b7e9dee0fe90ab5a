//! Deterministic generator of the benchmark CSV of `scripts/bench` (docs/performance.md).
//!
//! `cargo run --release --example bench_csv -- <out.csv> <size_bytes> [seed]` writes rows of
//! 12 mixed columns until the file reaches `size_bytes` (whole rows, so a little over):
//! ints, floats, short and long strings (quotes, delimiters and embedded newlines), booleans,
//! dates, zoned timestamps, a mostly-empty column and zip codes with leading zeros. The same
//! size and seed always give the same bytes (a SplitMix64 stream, no external crate).

use std::io::{BufWriter, Write};

/// SplitMix64: tiny, fast and fully determined by its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const WORDS: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
];
const CITIES: &[&str] = &[
    "Boston", "Chicago", "Denver", "El Paso", "Fresno", "Houston", "Miami", "Portland",
];
const CATEGORIES: &[&str] = &["retail", "wholesale", "online", "partner"];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(size)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bench_csv <out.csv> <size_bytes> [seed]");
        std::process::exit(2);
    };
    let size: u64 = size.parse().map_err(std::io::Error::other)?;
    let seed: u64 = args
        .get(3)
        .map_or(Ok(42), |s| s.parse())
        .map_err(std::io::Error::other)?;
    let mut rng = Rng(seed);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let header = "id,amount,qty,city,comment,active,day,created_at,discount,zip,category,score\n";
    out.write_all(header.as_bytes())?;
    let mut written = header.len() as u64;
    let mut line = String::with_capacity(512);
    let mut id: u64 = 0;
    while written < size {
        use std::fmt::Write as _;
        line.clear();
        id += 1;
        let r = rng.next();
        // id, amount (2 decimals), qty
        let _ = write!(
            line,
            "{id},{}.{:02},{},",
            r % 100_000,
            (r >> 20) % 100,
            (r >> 40) % 500
        );
        // city: short string
        line.push_str(CITIES[rng.below(CITIES.len() as u64) as usize]);
        line.push(',');
        // comment: a long quoted string, sometimes with "" quotes, commas or a newline
        line.push('"');
        let words = 4 + rng.below(12);
        for w in 0..words {
            if w > 0 {
                line.push(' ');
            }
            line.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        }
        match rng.below(10) {
            0 => line.push_str(", said \"\"hi\"\""),
            1 => line.push_str("\nsecond line"),
            2 => line.push_str("\r\nthird, line"),
            _ => {}
        }
        line.push_str("\",");
        // active
        line.push_str(if r & 1 == 0 { "true," } else { "false," });
        // day: 2000-01-01 + up to ~27 years
        let r = rng.next();
        let year = 2000 + r % 27;
        let month = 1 + (r >> 8) % 12;
        let day = 1 + (r >> 16) % 28;
        let _ = write!(line, "{year:04}-{month:02}-{day:02},");
        // created_at: zoned timestamp with micros and an offset or Z
        let (h, m, s, us) = (
            (r >> 24) % 24,
            (r >> 32) % 60,
            (r >> 40) % 60,
            (r >> 12) % 1_000_000,
        );
        let _ = write!(
            line,
            "{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}"
        );
        match (r >> 50) % 3 {
            0 => line.push_str("Z,"),
            1 => line.push_str("+02:00,"),
            _ => line.push_str("-05:30,"),
        }
        // discount: empty in 70% of rows, else a small float
        let r = rng.next();
        if r % 10 < 7 {
            line.push(',');
        } else {
            let _ = write!(line, "0.{:02},", (r >> 8) % 100);
        }
        // zip: five digits with leading zeros
        let _ = write!(line, "{:05},", (r >> 16) % 100_000);
        line.push_str(CATEGORIES[((r >> 40) % CATEGORIES.len() as u64) as usize]);
        // score: float with exponent now and then
        if (r >> 44).is_multiple_of(20) {
            let _ = writeln!(line, ",{}e-3", (r >> 48) % 10_000);
        } else {
            let _ = writeln!(line, ",{}.{:03}", (r >> 48) % 100, (r >> 4) % 1000);
        }
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()
}
