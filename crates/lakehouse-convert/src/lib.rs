//! CSV to Parquet for the lakehouse ingest path (docs/contract.md sections 3 and 5).
//!
//! What it is for: reading an uploaded RFC 4180 CSV, inferring its Arrow schema over the
//! whole file with the deterministic rules of docs/contract.md section 3 ([`infer_schema`]), or
//! checking it against a dataset's registered schema ([`check_schema`]), then streaming it
//! into Snappy Parquet with a fixed, reproducible encoding ([`write_parquet`], or
//! [`write_parquet_pipelined`], which parses and encodes on two threads and writes the same
//! bytes). Hashing the output is the caller's choice: the ingest service has storaged name
//! the object by the SHA-256 of what it received (docs/performance.md). Each pass reads the CSV once, streaming: memory is
//! bounded by a few record batches and one Parquet row group, never by the file size. The
//! output is a pure function of (CSV bytes, options, schema, program version), never of the
//! thread count or the read chunking (docs/performance.md). [`compact`] rewrites a
//! dataset's Parquet files into larger ones with the same writer settings, one row group
//! at a time, for compaction (docs/contract.md section 10).
//!
//! What it is not for: no async, no HTTP, no storage, no catalog. Spooling the upload,
//! keeping it to read twice, and registering the result are the ingest service's job; run
//! these functions on a blocking thread. The schema fingerprint (docs/contract.md section 4) and the
//! wire types live in `lakehouse-api`.

mod classify;
mod compact;
mod copy;
mod decode;
mod encode;
mod error;
mod hints;
mod infer;
mod merge;
mod parallel;
mod partitioned;
mod reading;
mod rejects;
mod sniff;
mod source;
mod spill;
mod tokenize;
mod write;

pub use compact::{CompactSink, CompactStats, RangeRead, compact};
pub use copy::rewrite_without;
pub use decode::{Decoded, Detected, decode, parse_encoding};
pub use encode::{IntoParquetFiles, ParquetFiles};
pub use error::{ConvertError, Result};
pub use hints::teaching_warnings;
pub use merge::{KeyedMode, MergePlan, plan_merge};
pub use parallel::PARALLEL_CHUNK_BYTES;
pub use partitioned::{
    FILE_KEY, PartitionSink, PartitionedConfig, Partitioner, SPILL_BELOW_ROWS, UPLOAD_KEY,
    stamp_upload,
};
pub use rejects::{REJECTS_HEADER, SetAside};
pub use sniff::{SNIFF_CANDIDATES, SNIFF_RECORDS, sniff_delimiter, sniff_delimiter_prefix};
pub use source::{ReadConfig, ReadLimits};
pub use spill::MAX_LIVE_RUNS as MAX_SPILL_RUNS;

use lakehouse_api::Schema;
use std::io::{Read, Write};
use std::time::Duration;
use write::Output;

/// `scope.spawn` with a thread name, which `top -H` and scripts/bench's per-thread CPU show.
/// Panics, as `scope.spawn` does, only when the OS cannot start a thread.
pub(crate) fn spawn_named<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> std::thread::ScopedJoinHandle<'scope, T> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, f)
        .unwrap_or_else(|e| panic!("cannot start a thread: {e}"))
}

/// Rows per Arrow record batch built from the CSV (docs/contract.md section 5).
pub const BATCH_ROWS: usize = 8192;

/// Maximum rows per Parquet row group: sixteen batches. A row group is the unit the writer
/// buffers in memory before it goes out, so this bounds the memory of [`write_parquet`].
pub const MAX_ROW_GROUP_ROWS: usize = 131_072;

/// The fixed `created_by` of every Parquet file written (docs/contract.md section 5).
pub const CREATED_BY: &str = concat!("lakehouse-convert ", env!("CARGO_PKG_VERSION"));

/// The schema inferred for a new dataset by [`infer_schema`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// Columns in header order, names after the renames of docs/contract.md section 3, all nullable.
    pub schema: Schema,
    /// The day/month order of each `date32` column of `P/Q/YYYY` values, by name: to be
    /// read with (`CsvOptions::date_orders`) and recorded.
    pub date_orders: std::collections::BTreeMap<String, lakehouse_api::DateOrder>,
    /// One line per header rename, in column order, for example
    /// `column 3: empty header name renamed to "column_3"`.
    pub warnings: Vec<String>,
    /// Data records (rows), the header and skipped empty lines not counted.
    pub row_count: u64,
}

/// What [`check_schema`] reports for an upload that conforms to the registered schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Header renames, as in [`Inferred::warnings`].
    pub warnings: Vec<String>,
    /// Data records (rows).
    pub row_count: u64,
}

/// What [`write_parquet`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetOutput {
    /// Rows written.
    pub row_count: u64,
    /// Bytes written to the output: the Parquet file's size.
    pub size_bytes: u64,
    /// The inference report of docs/contract.md section 3, one entry per column: its nulls, and
    /// the line and value by which the values settled its type (against the schema written
    /// with: the inferred one, or an existing dataset's registered one).
    pub columns: Vec<lakehouse_api::ColumnReport>,
}

/// Where the time of a pipelined pass 2 went ([`write_parquet_pipelined`]): busy time of
/// each stage, not counting the time a stage waited for the other. Not part of the output,
/// which does not depend on it.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeStats {
    /// Reading and tokenizing the CSV, parsing values and building record batches (and, in a
    /// verified pass, the proof of the schema).
    pub parse: Duration,
    /// Parquet encoding and compression, and writing to the output.
    pub encode: Duration,
}

/// Pass 1 for a NEW dataset: reads the whole CSV and infers its schema by docs/contract.md
/// section 3.
///
/// The first record is the header (renames: empty name -> `column_<n>`, then a name equal to
/// an earlier final name gets the first free `_2`, `_3`, ...; later names are not
/// considered, so `a,a,a_2` gives `a`, `a_2`, `a_2_2`). Each column gets the first type of
/// `bool`, `int64`, `float64`, `date32`, `time64[us]`, `timestamp[us, tz=UTC]`,
/// `timestamp[us]` that accepts every non-null value, else `utf8` (inference version 2's
/// forms); an all-null column is `utf8`. The result depends only
/// on the bytes and `options`, never on how `reader` chunks them.
///
/// `reader` is read to its end once, through an internal buffer (no need to wrap it in a
/// `BufReader`). With [`ReadConfig::threads`] above 1 an input of at least four times
/// [`ReadConfig::chunk_bytes`] is read on that many threads, with the same result and
/// errors (docs/contract.md section 13).
///
/// # Errors
/// - [`ConvertError::EmptyCsv`]: no header record (0 bytes, only a BOM, only empty lines).
/// - [`ConvertError::MalformedCsv`]: a record whose field count differs from the header's,
///   invalid UTF-8, or a quoted field open at the end of the file; `line` is where the
///   record starts.
/// - [`ConvertError::InvalidHeader`]: a header name with a control character
///   (U+0000 to U+001F).
/// - [`ConvertError::Io`]: reading failed.
pub fn infer_schema<'a, R: Read>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
) -> Result<Inferred> {
    let options = options.into();
    if options.threads > 1 {
        parallel::infer_schema(reader, options)
    } else {
        infer::infer_schema(reader, options)
    }
}

/// Pass 1 for an EXISTING dataset (docs/contract.md section 3, "Uploads to an existing dataset").
///
/// Ok when the header names (after the same renames as [`infer_schema`]) equal the
/// registered names in order and every non-null value is accepted by its column's registered
/// type: the table's rules, `float64` also accepting ints of magnitude up to 2^53 (a larger
/// one would be rounded), `utf8` accepting anything. So an all-empty column registered as
/// `int64`, or an all-int column registered as `float64`, conforms.
///
/// # Errors
/// - [`ConvertError::SchemaDrift`] otherwise. Its details come from
///   [`SchemaDriftDetails::between`](lakehouse_api::SchemaDriftDetails::between) the
///   registered schema and the upload's own inferred schema (added, removed, reordered
///   columns, both fingerprints), but `changed` lists only the columns present on both sides
///   that hold a value the registered type refuses, each with the upload's inferred type and
///   the line and text of the first refused value. The whole file is read first, so every
///   such column is listed.
/// - The same CSV errors as [`infer_schema`], which take precedence over drift.
pub fn check_schema<'a, R: Read>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    registered: &Schema,
) -> Result<Checked> {
    infer::check_schema(reader, options.into(), registered)
}

/// The 1-based line each of `rows` (0-based data rows, ascending, as a pass numbers them:
/// the header is not one) starts on in the CSV `reader`, for errors that name upload rows
/// found after the passes (docs/contract.md section 11: `null_key`, `duplicate_key`). A row
/// past the end of the file is left out.
///
/// # Errors
/// The CSV errors of [`infer_schema`] (the passes read the same bytes without one).
pub fn data_row_lines<'a, R: Read>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    rows: &[u64],
) -> Result<Vec<u64>> {
    let (mut records, _header) = source::Records::open(reader, options.into())?;
    let mut lines = Vec::with_capacity(rows.len());
    let mut wanted = rows.iter().peekable();
    let mut row = 0u64;
    while wanted.peek().is_some() && records.next_record()? {
        while wanted.next_if(|&&w| w == row).is_some() {
            lines.push(records.line());
        }
        row += 1;
    }
    Ok(lines)
}

/// Sets bad records aside (docs/contract.md section 3, "Rejects"), before the other passes: copies
/// the header (with its final names) and every good record to `kept` as CSV with the same
/// delimiter, and up to `max_rejects` bad records, in file order, to `rejects` as CSV
/// `line,column,reason,record` (the 1-based line the record starts on, the 1-based column
/// when one field is at fault, a reason for a human, and the record's text as written,
/// quotes included, without its line break, invalid UTF-8 replaced by U+FFFD). Bad is: a field count other than the header's,
/// invalid UTF-8, or (`registered`, an existing dataset) a non-null value its column's
/// registered type does not accept (as [`check_schema`] decides). Reading `kept` gives the
/// same values, in the same order, as the good records of the input, whatever the input's
/// quoting; both outputs depend only on the bytes, options, schema and limit, never on the
/// read chunking.
///
/// # Errors
/// - [`ConvertError::TooManyRejects`] at bad record `max_rejects + 1`, with that record's
///   usual error (`MalformedCsv`, or a `SchemaDrift` naming its column, line and value);
/// - `EmptyCsv`, `InvalidHeader`, `LimitExceeded`, a quoted field open at the end of the
///   file (`MalformedCsv`) and `Io`, as the other passes: those are not set aside.
pub fn set_aside<'a, R: Read, K: Write, J: Write>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    registered: Option<&Schema>,
    max_rejects: u64,
    kept: K,
    rejects: J,
) -> Result<SetAside> {
    rejects::set_aside(
        reader,
        options.into(),
        registered,
        max_rejects,
        kept,
        rejects,
    )
}

/// Pass 2: writes the CSV as Parquet with `schema` (the inferred or the registered one) into
/// `out` (docs/contract.md section 5).
///
/// Record batches of [`BATCH_ROWS`] rows, row groups of at most [`MAX_ROW_GROUP_ROWS`] rows,
/// Snappy compression, page-level statistics, `created_by` = [`CREATED_BY`], the Arrow
/// schema ([`arrow_schema`]) embedded, nothing time- or machine-dependent: the same input
/// gives byte-identical output. Timestamps are stored as microseconds since the epoch (UTC
/// for `timestamp[us, tz=UTC]`, offsets applied), dates as days since 1970-01-01.
/// The size is of the bytes as they were written, with no second read (hashing them is the
/// caller's choice: wrap `out`). Memory holds one batch and one row group at most. On error, `out` holds a partial file that
/// the caller must discard.
///
/// # Errors
/// - The same CSV errors as [`infer_schema`].
/// - [`ConvertError::SchemaDrift`] if the header does not match `schema`'s names or a value
///   is refused by its column's type; after a successful pass 1 with the same bytes and
///   options this does not happen.
/// - [`ConvertError::Io`]: reading the CSV or writing `out` failed.
/// - [`ConvertError::Parquet`]: the encoder failed (an internal error).
pub fn write_parquet<'a, R: Read, W: Write + Send>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    schema: &Schema,
    out: W,
) -> Result<ParquetOutput> {
    write::write_parquet(reader, options.into(), schema, Output::Serial(out), false)
        .map(|pass2| pass2.output)
}

/// [`write_parquet`] on two threads: the CSV is parsed into record batches on the calling
/// thread while a second (scoped) thread encodes them, with at most a few batches in flight
/// between them (a bounded channel, so memory stays one row group plus those batches). The
/// batches, their order and the encoder settings are exactly those of [`write_parquet`], so
/// the output is byte-identical to it (a property test checks this); it only finishes
/// sooner on a machine with a second core (docs/performance.md).
///
/// Also returns where the time went ([`EncodeStats`]), for the ingest's stage timings.
///
/// # Errors
/// As [`write_parquet`]. When the CSV error comes first, it is returned even if the output
/// failed too; an output that fails first stops the input, and its error is returned.
pub fn write_parquet_pipelined<'a, 's, R: Read, W: Write + Send + 's>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    schema: &Schema,
    out: impl IntoParquetFiles<'s, W>,
) -> Result<(ParquetOutput, EncodeStats)> {
    write::write_parquet(
        reader,
        options.into(),
        schema,
        Output::Pipelined(out.into_files()),
        false,
    )
    .map(|pass2| (pass2.output, pass2.stats))
}

/// The schema a pass 2 is asked to prove while it writes ([`write_parquet_verified`]).
#[derive(Debug, Clone, Copy)]
pub enum Expected<'a> {
    /// A guess of what [`infer_schema`] returns for the whole file (a new dataset), for
    /// example [`guess_schema`] over its first bytes.
    Inferred(&'a Schema),
    /// The dataset's registered schema (an existing one), which [`check_schema`] checks.
    Registered(&'a Schema),
}

/// What [`write_parquet_verified`] wrote once the expected schema was proven.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Header renames, as pass 1 reports them.
    pub warnings: Vec<String>,
    /// The Parquet written: the output of [`write_parquet`] with the proven schema.
    pub output: ParquetOutput,
    /// Where the time went.
    pub stats: EncodeStats,
}

/// Pass 1 and pass 2 in one read of the CSV, when the schema is known in advance or guessed
/// right: writes Parquet with the `expected` schema as [`write_parquet_pipelined`] does,
/// and proves from the values parsed on the way that pass 1 over the same bytes would have
/// settled on that schema (docs/performance.md, "Verified speculation").
///
/// - [`Expected::Registered`]: proven when the header names equal the schema's and every
///   non-null value is accepted by its column's type, which is what [`check_schema`]
///   checks.
/// - [`Expected::Inferred`]: proven when every non-null value is accepted and the values
///   show that no narrower type fits (docs/contract.md section 3): each typed column holds a
///   non-null value, each float64 column a value that is not an int, and the inference's
///   own classification of each utf8 column (stopped once it is certainly utf8) gives utf8.
///   Then [`infer_schema`] returns exactly that schema, whatever the guess was based on.
///
/// Returns `Ok(Some(_))` when proven: the Parquet bytes, row count and warnings are then
/// exactly those of pass 1 followed by [`write_parquet`]. `Ok(None)` when not (a refused
/// value, a header that differs, a type that is too wide): the Parquet stops at the first
/// refused value, `out` holds a partial file to discard, and the caller runs pass 1 and
/// pass 2 itself (or verifies the second guess of [`write_parquet_speculative`]). After a
/// refused value an [`Expected::Inferred`] pass reads on to the end of the input, only
/// inferring; an [`Expected::Registered`] one stops there.
///
/// # Errors
/// - The CSV errors of [`infer_schema`] ([`ConvertError::is_csv_error`]): exactly the error
///   pass 1 returns for the same bytes and options, since both read the same records in
///   the same order and this one stops early only at a value the registered schema
///   refuses, which is `Ok(None)`.
/// - [`ConvertError::Io`], [`ConvertError::Parquet`] as [`write_parquet`].
pub fn write_parquet_verified<'a, 's, R: Read, W: Write + Send + 's>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    expected: Expected<'_>,
    out: impl IntoParquetFiles<'s, W>,
) -> Result<Option<Verified>> {
    let outcome = write_parquet_speculative(reader, options, expected, out)?;
    Ok(match outcome {
        Speculation::Proven(verified) => Some(verified),
        Speculation::Unproven(_) => None,
    })
}

/// [`write_parquet_verified`], saying what the values point to when the guess is not
/// proven: the outcome of a verified pass (docs/contract.md section 13, "A guess refuted
/// late").
#[derive(Debug, Clone)]
pub enum Speculation {
    /// Proven: as [`write_parquet_verified`]'s `Some`.
    Proven(Verified),
    /// Not proven; `out` holds a partial file to discard. With [`Expected::Inferred`], the
    /// schema section 3 gives the records read when it is not the guess (`None` for a
    /// header that differs, or with [`Expected::Registered`], which stops at a refused
    /// value).
    Unproven(Option<SecondGuess>),
}

/// What a verified pass that was not proven read of the file: the schema and day/month
/// orders docs/contract.md section 3 gives its records, to verify in one more pass. Exactly
/// [`infer_schema`]'s when the pass read the whole file, but a guess all the same: only a
/// verified pass makes it a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecondGuess {
    /// Columns in header order, with the types the values read point to.
    pub schema: Schema,
    /// The day/month order of each `date32` column of `P/Q/YYYY` values, by name (to read
    /// with: `CsvOptions::date_orders`).
    pub date_orders: std::collections::BTreeMap<String, lakehouse_api::DateOrder>,
}

/// [`write_parquet_verified`], and when the guess is not proven, the second guess its
/// values point to ([`Speculation::Unproven`]). With [`Expected::Inferred`], a value the
/// guess refuses abandons the Parquet output there ([`CompactSink::abandon`] for a split
/// output; a single writer holds a partial file to discard), and the pass reads on to the
/// end of the input, only inferring (the cost of pass 1 over the rest of the input), so
/// that the second guess covers every record; the CSV errors met on the way are pass 1's,
/// whatever the output's outcome.
///
/// # Errors
/// As [`write_parquet_verified`].
pub fn write_parquet_speculative<'a, 's, R: Read, W: Write + Send + 's>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    expected: Expected<'_>,
    out: impl IntoParquetFiles<'s, W>,
) -> Result<Speculation> {
    verified(
        reader,
        options.into(),
        expected,
        Output::Pipelined(out.into_files()),
    )
}

/// A pass 2 into `output` that proves `expected` ([`write_parquet_speculative`]).
fn verified<R: Read, W: Write + Send>(
    reader: R,
    options: ReadConfig<'_>,
    expected: Expected<'_>,
    output: Output<'_, W>,
) -> Result<Speculation> {
    let (schema, verify_inference) = match expected {
        Expected::Inferred(schema) => (schema, true),
        Expected::Registered(schema) => (schema, false),
    };
    match write::write_parquet(reader, options, schema, output, verify_inference) {
        Ok(pass2) if pass2.infers_schema || !verify_inference => {
            Ok(Speculation::Proven(Verified {
                warnings: pass2.warnings,
                output: pass2.output,
                stats: pass2.stats,
            }))
        }
        Ok(pass2) => Ok(Speculation::Unproven(pass2.second_guess)),
        Err(ConvertError::SchemaDrift(_)) => Ok(Speculation::Unproven(None)),
        Err(e) => Err(e),
    }
}

/// Pass 2 for a partitioned dataset (docs/contract.md section 10): writes the CSV with the
/// `expected` schema as [`write_parquet_verified`] does, proving it the same way, but each
/// partition's rows (as `partitioner` assigns them) into Parquet files of their own, given
/// to `sink`: one per partition value, or several once a file reaches
/// `config.target_file_bytes` (cut between row groups), with the rows of each file in their
/// order in the CSV. Memory is bounded by `config.buffer_bytes` whatever the number of
/// partitions; the row groups are encoded on two threads besides the one that parses and
/// the one that splits. The files are a pure function of the input, options, schema,
/// partitioner and `config`. An input with no row gives one empty file, as partition 0
/// (the partitioner numbered none). Each file's footer holds [`UPLOAD_KEY`] with a
/// placeholder that [`stamp_upload`] replaces once the upload is whole.
///
/// `Ok(None)`: not proven (as [`write_parquet_verified`]); the sink holds partial files to
/// discard. With [`Expected::Registered`] a schema that pass 1 accepted is always proven.
/// The returned [`ParquetOutput::size_bytes`] is the sum of the files' sizes.
///
/// # Errors
/// As [`write_parquet_verified`], and the partitioner's own (for example
/// [`ConvertError::TooManyPartitions`]). After an error the sink holds partial files that
/// the caller must discard.
pub fn write_parquet_partitioned<'a, R: Read>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    expected: Expected<'_>,
    partitioner: &mut dyn Partitioner,
    sink: &mut dyn PartitionSink,
    config: PartitionedConfig,
) -> Result<Option<Verified>> {
    let output: Output<'_, std::io::Sink> = Output::Partitioned {
        partitioner,
        sink,
        config,
    };
    Ok(match verified(reader, options.into(), expected, output)? {
        Speculation::Proven(verified) => Some(verified),
        Speculation::Unproven(_) => None,
    })
}

/// A guess of [`infer_schema`]'s result from the first bytes of a file, for
/// [`write_parquet_verified`]: the schema inferred by docs/contract.md section 3's rules from the
/// records of `prefix` (ingestd passes the first 4 MiB). When
/// `complete` is false the file goes on after `prefix`, so its last record (maybe cut short)
/// is left out, and so is anything from the first error on. `None` when `prefix` has no
/// readable header. A guess, never a result: only a verified pass makes it one.
pub fn guess_schema<'a>(
    prefix: &[u8],
    complete: bool,
    options: impl Into<ReadConfig<'a>>,
) -> Option<Schema> {
    infer::guess(prefix, complete, options.into()).map(|guess| guess.schema)
}

/// [`guess_schema`] with the day/month orders it guessed too (and the records it looked
/// at): what [`infer_schema`] would return if the file were the prefix. A guess, never a
/// result.
pub fn guess<'a>(
    prefix: &[u8],
    complete: bool,
    options: impl Into<ReadConfig<'a>>,
) -> Option<Inferred> {
    infer::guess(prefix, complete, options.into())
}

/// The Arrow schema of a catalog schema: same names and order, every field nullable
/// (docs/contract.md section 3); `timestamp[us, tz=UTC]` is `Timestamp(Microsecond, Some("UTC"))`,
/// `timestamp[us]` is `Timestamp(Microsecond, None)`, `date32` is `Date32` (days),
/// `time64[us]` is `Time64(Microsecond)`, `utf8` is `Utf8`.
pub fn arrow_schema(schema: &Schema) -> arrow_schema::SchemaRef {
    write::arrow_schema(schema)
}
