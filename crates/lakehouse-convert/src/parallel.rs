//! Pass 2 of one large CSV on several threads (docs/contract.md section 13), writing exactly
//! the bytes one thread writes.
//!
//! - The calling thread splits the input into chunks of whole records: it runs the
//!   tokenizer of `tokenize.rs` over the bytes (so a chunk boundary is a record boundary by
//!   the very rules every record is read with, quoted line breaks included; quote parity is
//!   used only where the tokenizer's fast-path checks prove the quotes sit where RFC 4180
//!   puts them, the exact state machine reads the rest), keeps what it read, and cuts after the record that makes a
//!   chunk [`PARALLEL_CHUNK_BYTES`] long, preferably where the file's row count is a multiple of
//!   [`BATCH_ROWS`]. It also counts each chunk's LF bytes, so a chunk knows its first line.
//! - `threads` workers parse chunks as one thread parses the file (the same `Records`, the
//!   same `BatchBuilder`), each chunk's first batch cut where the file's next batch ends, and
//!   note the values that changed a column's inference report.
//! - A merging thread takes the chunks in order: the first error in file order wins; the
//!   batch that straddles two chunks is joined; the columns' proofs are folded
//!   (`BatchBuilder::absorb`), so the report and the verdict are the file's. The batches go
//!   to the encoder of `encode.rs` in the order and sizes one thread gives it, hence the same
//!   bytes.
//!
//! Memory: `threads + 2` chunks split and not yet merged hold a token, plus the one the
//! splitter holds while it waits for one and the one the merger hands on, each its bytes and its
//! record batches, besides the encoder's row group (docs/performance.md).

use crate::classify::ColumnStats;
use crate::encode::{ParquetFiles, encode_batches};
use crate::error::{ConvertError, Result};
use crate::reading::Reading;
use crate::source::{Header, Nulls, ReadConfig, Records};
use crate::tokenize::{TokenError, Tokenizer, count_newlines};
use crate::write::{
    BatchBuilder, Output, Pass2, check_header, second_guess, value_refused, writer_properties,
};
use crate::{BATCH_ROWS, EncodeStats, Inferred, ParquetOutput};
use arrow_array::RecordBatch;
use lakehouse_api::Schema;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The bytes of a chunk ([`ReadConfig::chunk_bytes`]'s default): a chunk is cut after the
/// first record that makes it this long where the file's row count is a multiple of
/// [`BATCH_ROWS`] (no batch then straddles two chunks), or, when records are long, after the
/// first that makes it four times this long. Inputs shorter than four times this are parsed
/// on the calling thread: a pool costs more than it saves below it (docs/contract.md section
/// 13; the measurements in docs/performance.md). 1 MiB rather than 2 MiB: the chunks in
/// flight are most of what a parallel read adds to memory, and the smaller ones were no
/// slower (docs/performance.md, "2026-12-07, night").
pub const PARALLEL_CHUNK_BYTES: usize = 1024 * 1024;

/// Records of the file, whole, with where they sit in it.
struct Chunk {
    index: usize,
    bytes: Vec<u8>,
    /// LF bytes of the file before the chunk.
    newlines_before: u64,
    /// Rows in the chunk's first batch: the file's batch boundaries.
    first_batch_rows: usize,
    /// Fields per record (the header's), for every chunk but the first.
    width: usize,
}

/// A chunk parsed by pass 2.
struct Parsed<'s> {
    /// The first chunk's.
    header: Option<Header>,
    batches: Vec<RecordBatch>,
    proof: BatchBuilder<'s>,
    /// Verifying an inference: after a refused value, what the refusing record and the
    /// rest of the chunk point to (`proof` then holds the records before it).
    after: Option<Vec<ColumnStats>>,
    rows: u64,
    busy: Duration,
}

/// What the merging thread takes, by chunk index.
enum Piece<T> {
    Parsed(Result<T>),
    /// The read stopped here (its error), after every earlier chunk.
    Failed(ConvertError),
    /// No chunk after this index.
    End,
}

/// Everything read through it is also kept, for the splitter to cut into chunks.
struct Kept<R> {
    inner: R,
    bytes: Vec<u8>,
}

/// Most bytes one read through [`Kept`] takes: the tokenizer asks for all of its free
/// space, which grows past a long record and never shrinks, and what it read past a cut is
/// copied to the next chunk, so reads stay short.
const KEPT_READ_BYTES: usize = 256 * 1024;

impl<R: Read> Read for Kept<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len().min(KEPT_READ_BYTES);
        let n = self.inner.read(&mut buf[..len])?;
        self.bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// A reader that fails once with an error already met.
struct FailWith(Option<io::Error>);

impl Read for FailWith {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

/// The input as the parallel read takes it: `Ok` when it holds at least four times
/// [`ReadConfig::chunk_bytes`] (its first bytes, then the rest), `Err` with what it holds
/// when it is shorter (then one thread reads it: a pool costs more than it saves), a read
/// error kept to be met where one thread would meet it.
#[allow(clippy::type_complexity)]
fn long_enough<R: Read>(
    mut reader: R,
    read: ReadConfig<'_>,
) -> std::result::Result<io::Chain<io::Cursor<Vec<u8>>, R>, io::Chain<io::Cursor<Vec<u8>>, FailWith>>
{
    let min_bytes = read.chunk_bytes.saturating_mul(4);
    let mut head = Vec::with_capacity(min_bytes);
    match reader
        .by_ref()
        .take(min_bytes as u64)
        .read_to_end(&mut head)
    {
        Err(e) => Err(io::Cursor::new(head).chain(FailWith(Some(e)))),
        Ok(n) if n < min_bytes => Err(io::Cursor::new(head).chain(FailWith(None))),
        Ok(_) => Ok(io::Cursor::new(head).chain(reader)),
    }
}

/// Pass 2 into one Parquet file on `read.threads` threads: the result of
/// `write::write_parquet` with `Output::Pipelined`, byte for byte (see the module docs).
pub(crate) fn write_parquet<R: Read, W: Write + Send>(
    reader: R,
    read: ReadConfig<'_>,
    schema: &Schema,
    out: ParquetFiles<'_, W>,
    verify: bool,
) -> Result<Pass2> {
    match long_enough(reader, read) {
        Err(short) => crate::write::write_parquet(
            short,
            read.threads(1),
            schema,
            Output::Pipelined(out),
            verify,
        ),
        Ok(long) => pass2(long, read, schema, out, verify),
    }
}

/// Pass 1 of a new dataset on `read.threads` threads: the result of `infer::infer_schema`
/// (chunks' column states folded in file order with `ColumnStats::then`).
pub(crate) fn infer_schema<R: Read>(reader: R, read: ReadConfig<'_>) -> Result<Inferred> {
    let long = match long_enough(reader, read) {
        Err(short) => return crate::infer::infer_schema(short, read.threads(1)),
        Ok(long) => long,
    };
    let parse = |chunk: &Chunk| infer_chunk(chunk, read);
    run_chunks(long, read, &parse, |chunks| {
        let (mut header, mut stats, mut rows) = (None, Vec::new(), 0u64);
        for chunk in chunks {
            let (first, more, more_rows) = chunk?;
            header = header.or(first);
            if stats.is_empty() {
                stats = more;
            } else {
                for (stats, more) in stats.iter_mut().zip(more) {
                    *stats = stats.then(more);
                }
            }
            rows += more_rows;
        }
        let header = header.ok_or(ConvertError::EmptyCsv)?;
        Ok(Inferred {
            schema: crate::infer::schema_of(&header, &stats),
            date_orders: crate::infer::orders_of(&header, &stats),
            row_count: rows,
            warnings: header.warnings,
        })
    })?
}

/// One chunk of pass 1: the first chunk's header, each column's state, the rows.
fn infer_chunk(
    chunk: &Chunk,
    read: ReadConfig<'_>,
) -> Result<(Option<Header>, Vec<ColumnStats>, u64)> {
    let (mut records, header) = open(chunk, read)?;
    let nulls = Nulls::new(read);
    let reading = Reading::new(read.csv);
    let width = header.as_ref().map_or(chunk.width, |h| h.names.len());
    let mut stats = vec![ColumnStats::new(); width];
    while records.next_record()? {
        for (column, value) in stats.iter_mut().zip(records.record()) {
            if column.undecided() && !nulls.is_null(value) {
                column.observe(reading.classify(value));
            }
        }
    }
    Ok((header, stats, records.rows()))
}

/// A chunk's records: the first chunk's after its header, which is returned.
fn open<'c>(chunk: &'c Chunk, read: ReadConfig<'_>) -> Result<(Records<&'c [u8]>, Option<Header>)> {
    if chunk.index == 0 {
        let (records, header) = Records::open(&chunk.bytes[..], read)?;
        Ok((records, Some(header)))
    } else {
        let records =
            Records::continuing(&chunk.bytes[..], read, chunk.width, chunk.newlines_before);
        Ok((records, None))
    }
}

/// The threads of pass 2: [`run_chunks`]'s, and one that encodes (with helpers).
fn pass2<R: Read, W: Write + Send>(
    reader: R,
    read: ReadConfig<'_>,
    schema: &Schema,
    out: ParquetFiles<'_, W>,
    verify: bool,
) -> Result<Pass2> {
    let (batches_tx, batches) = sync_channel::<RecordBatch>(4);
    let arrow = crate::write::arrow_schema(schema);
    let abandoned = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (arrow, abandoned) = (&arrow, &abandoned);
        let encoder = crate::spawn_named(scope, "pass2-encode", move || {
            encode_batches(
                arrow,
                writer_properties(),
                out,
                batches,
                read.threads,
                abandoned,
            )
        });
        let parse = |chunk: &Chunk| parse(chunk, read, schema, (verify, abandoned));
        let merged = run_chunks(reader, read, &parse, move |chunks| {
            merge(chunks, batches_tx, abandoned, (schema, verify, read))
        });
        let encoded = join(encoder);
        // The input's error first; after a refused value the output was abandoned, so the
        // encoder's outcome does not matter; else it does.
        let (merged, (size_bytes, encode)) = match (merged, encoded) {
            (Err(e) | Ok(Err(Stop::Csv(e))), _) => return Err(e),
            (Ok(Ok(merged)), _) if merged.after.is_some() => (merged, (0, Duration::ZERO)),
            (_, Err(e)) => return Err(e),
            (Ok(Err(Stop::EncoderGone)), Ok(_)) => {
                return Err(ConvertError::Parquet("the encoder stopped".into()));
            }
            (Ok(Ok(merged)), Ok(encoded)) => (merged, encoded),
        };
        let infers_schema = verify && merged.after.is_none() && merged.proof.infers_schema();
        let second_guess = match &merged.after {
            Some(after) => merged.proof.second_guess(Some(after)),
            None if verify && !infers_schema => merged.proof.second_guess(None),
            None => None,
        };
        Ok(Pass2 {
            output: ParquetOutput {
                row_count: merged.rows,
                size_bytes,
                columns: merged.proof.report(),
            },
            stats: EncodeStats {
                parse: merged.busy,
                encode,
            },
            warnings: merged.header.warnings,
            infers_schema,
            second_guess,
        })
    })
}

/// Splits `reader` into chunks on this thread, runs `parse` on each on `read.threads`
/// threads, and `merge` on one more over their outcomes in file order (the first error
/// ends them: a CSV error of a chunk, or the read's own where one thread meets it). At most
/// `read.threads + 2` chunks hold a token (split and not yet taken by `merge`), besides the
/// one the splitter holds while it waits for a token. Returns `merge`'s result.
///
/// # Errors
/// `Parquet` when a thread panicked.
fn run_chunks<R: Read, T: Send, M: Send>(
    reader: R,
    read: ReadConfig<'_>,
    parse: &(dyn Fn(&Chunk) -> Result<T> + Sync),
    merge: impl FnOnce(&mut InOrder<T>) -> M + Send,
) -> Result<M> {
    let stop = AtomicBool::new(false);
    let in_flight = read.threads + 2;
    let (tokens_tx, tokens) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = tokens_tx.send(());
    }
    let (work_tx, work) = sync_channel::<Chunk>(read.threads);
    let work = Arc::new(Mutex::new(work));
    let (results_tx, results) = channel::<(usize, Piece<T>)>();
    std::thread::scope(|scope| {
        let stop = &stop;
        for _ in 0..read.threads {
            let (work, results) = (Arc::clone(&work), results_tx.clone());
            crate::spawn_named(scope, "pass2-parse", move || {
                worker(&work, &results, parse, stop);
            });
        }
        // Once the workers are gone, a send to them fails: the splitter then stops.
        drop(work);
        let merger = crate::spawn_named(scope, "pass2-merge", move || {
            let mut chunks = InOrder {
                results,
                tokens: tokens_tx,
                waiting: BTreeMap::new(),
                next: 0,
                done: false,
            };
            let merged = merge(&mut chunks);
            stop.store(true, Ordering::Relaxed);
            merged
        });
        split(reader, read, &work_tx, &results_tx, &tokens, stop);
        drop((work_tx, results_tx));
        merger
            .join()
            .map_err(|_| ConvertError::Parquet("the merging thread panicked".into()))
    })
}

/// The chunks' outcomes in file order, for `run_chunks`'s `merge`: each is taken from the
/// workers' results as it comes, kept until its turn; the read's own error comes in its
/// place; after an error, nothing.
struct InOrder<T> {
    results: Receiver<(usize, Piece<T>)>,
    tokens: SyncSender<()>,
    waiting: BTreeMap<usize, Piece<T>>,
    next: usize,
    done: bool,
}

impl<T> Iterator for InOrder<T> {
    type Item = Result<T>;

    fn next(&mut self) -> Option<Result<T>> {
        while !self.done {
            let Some(piece) = self.waiting.remove(&self.next) else {
                match self.results.recv() {
                    Ok((index, piece)) => {
                        self.waiting.insert(index, piece);
                    }
                    Err(_) => {
                        self.done = true;
                        let stopped = ConvertError::Parquet("a pass 2 thread stopped".into());
                        return Some(Err(stopped));
                    }
                }
                continue;
            };
            self.next += 1;
            return match piece {
                Piece::Parsed(parsed) => {
                    // The chunk is off the books: the splitter may cut another. (Never
                    // blocks: a token is given back only for one taken.)
                    let _ = self.tokens.try_send(());
                    self.done = parsed.is_err();
                    Some(parsed)
                }
                Piece::Failed(e) => {
                    self.done = true;
                    Some(Err(e))
                }
                Piece::End => {
                    self.done = true;
                    None
                }
            };
        }
        None
    }
}

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(ConvertError::Parquet("a pass 2 thread panicked".into())))
}

/// The splitter (see the module docs): sends chunks to the workers and the end, or the
/// read's error, to the merger. Stops early once `stop` is set or the merger is gone.
fn split<R: Read, T>(
    reader: R,
    read: ReadConfig<'_>,
    work: &SyncSender<Chunk>,
    results: &Sender<(usize, Piece<T>)>,
    tokens: &Receiver<()>,
    stop: &AtomicBool,
) {
    let kept = Kept {
        inner: reader,
        bytes: Vec::with_capacity(2 * read.chunk_bytes),
    };
    let max_record_bytes = read.limits.max_record_bytes;
    let tokens_left = || tokens.recv().is_ok() && !stop.load(Ordering::Relaxed);
    let mut tokenizer = Tokenizer::new(kept, read.csv.delimiter, max_record_bytes);
    let mut splitter = Splitter {
        chunk_bytes: read.chunk_bytes,
        ..Splitter::default()
    };
    let mut ends = Vec::new();
    loop {
        // The header's fields are counted; the other records' ends only are found, all
        // those the read buffer holds at once.
        let header = splitter.width.is_none();
        let read_next = if header {
            tokenizer.next_record().inspect(|&more| {
                if more {
                    splitter.width = Some(tokenizer.record().len());
                    ends.push(tokenizer.raw_span().end);
                }
            })
        } else {
            tokenizer.skip_records(&mut ends)
        };
        let failed = match read_next {
            Ok(true) => {
                for &end in &ends {
                    splitter.chunk_rows += u64::from(!header);
                    splitter.complete = end;
                    if !splitter.due(end) {
                        continue;
                    }
                    let chunk = splitter.cut(tokenizer.reader_mut(), end);
                    if !tokens_left() || work.send(chunk).is_err() {
                        return;
                    }
                }
                ends.clear();
                continue;
            }
            Ok(false) => None,
            Err(TokenError::RecordTooLarge) => Some(ConvertError::LimitExceeded {
                limit: "max_record_bytes",
                max: max_record_bytes,
                line: tokenizer.line(),
                column: None,
            }),
            Err(TokenError::Io(e)) => Some(ConvertError::from_read(e)),
        };
        // The end: every byte read is the last chunk's; after a failure, the records
        // read whole are, then the failure (a first chunk needs its header).
        let end = match failed {
            None => splitter.from + tokenizer.reader_mut().bytes.len() as u64,
            Some(_) => splitter.complete,
        };
        let keep = failed.is_none() || end > splitter.from;
        if keep {
            let chunk = splitter.cut(tokenizer.reader_mut(), end);
            if !tokens_left() || work.send(chunk).is_err() {
                return;
            }
        }
        let last = match failed {
            Some(e) => Piece::Failed(e),
            None => Piece::End,
        };
        let _ = results.send((splitter.index, last));
        return;
    }
}

/// Where the splitter stands.
#[derive(Default)]
struct Splitter {
    /// The next chunk's index.
    index: usize,
    /// Input offset of the next chunk's first byte.
    from: u64,
    /// Input offset just past the last record read whole.
    complete: u64,
    /// Data records before the next chunk.
    rows: u64,
    /// Data records in the next chunk so far.
    chunk_rows: u64,
    newlines: u64,
    /// The header's field count, once read.
    width: Option<usize>,
    chunk_bytes: usize,
}

impl Splitter {
    /// Whether the chunk ends with the record that ends at `end`.
    fn due(&self, end: u64) -> bool {
        let size = (end - self.from) as usize;
        let aligned = (self.rows + self.chunk_rows).is_multiple_of(BATCH_ROWS as u64);
        size >= self.chunk_bytes.saturating_mul(4) || (size >= self.chunk_bytes && aligned)
    }

    /// The chunk of the input's bytes `self.from..end`, taken from what `kept` holds.
    fn cut<R>(&mut self, kept: &mut Kept<R>, end: u64) -> Chunk {
        let len = ((end - self.from) as usize).min(kept.bytes.len());
        let mut rest = Vec::with_capacity(2 * self.chunk_bytes);
        rest.extend_from_slice(&kept.bytes[len..]);
        let mut bytes = std::mem::replace(&mut kept.bytes, rest);
        bytes.truncate(len);
        let into_batch = (self.rows % BATCH_ROWS as u64) as usize;
        let chunk = Chunk {
            index: self.index,
            newlines_before: self.newlines,
            first_batch_rows: BATCH_ROWS - into_batch,
            width: self.width.unwrap_or_default(),
            bytes,
        };
        self.newlines += count_newlines(&chunk.bytes);
        self.index += 1;
        self.from = end;
        self.rows += self.chunk_rows;
        self.chunk_rows = 0;
        chunk
    }
}

/// A parsing thread: chunks until there are none, or `stop`.
fn worker<T>(
    work: &Mutex<Receiver<Chunk>>,
    results: &Sender<(usize, Piece<T>)>,
    parse: &(dyn Fn(&Chunk) -> Result<T> + Sync),
    stop: &AtomicBool,
) {
    loop {
        let chunk = match work.lock() {
            Ok(work) => work.recv(),
            Err(_) => return,
        };
        let Ok(chunk) = chunk else { return };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&chunk)))
            .unwrap_or_else(|_| Err(ConvertError::Parquet("a parsing thread panicked".into())));
        if results.send((chunk.index, Piece::Parsed(parsed))).is_err() {
            return;
        }
    }
}

/// One chunk, parsed as `write::write_parquet` parses those records of the file; once
/// `abandoned` is set (a value of an earlier chunk was refused, so nothing more is
/// encoded), only inferred: all of it is `after`.
fn parse<'s>(
    chunk: &Chunk,
    read: ReadConfig<'_>,
    schema: &'s Schema,
    (verify, abandoned): (bool, &AtomicBool),
) -> Result<Parsed<'s>> {
    let started = Instant::now();
    let (mut records, header) = open(chunk, read)?;
    if let Some(header) = &header {
        check_header(schema, header)?;
    }
    let nulls = Nulls::new(read);
    let mut proof = BatchBuilder::chunk(schema, verify, read.csv, chunk.first_batch_rows);
    if verify && abandoned.load(Ordering::Acquire) {
        let fresh = vec![ColumnStats::new(); schema.fields.len()];
        let reading = Reading::new(read.csv);
        let after = second_guess::infer_rest(&mut records, &nulls, reading, fresh)?;
        return Ok(Parsed {
            header,
            batches: Vec::new(),
            proof,
            after: Some(after),
            rows: records.rows(),
            busy: started.elapsed(),
        });
    }
    let mut batches = Vec::new();
    let mut after = None;
    while records.next_record()? {
        let record = records.record();
        match proof.push(record, &nulls) {
            Ok(false) => {}
            Ok(true) => proof.settle_lines(records.raw_span().start),
            // Verifying an inference: the rest of the chunk is only inferred (the record
            // is half added, so no batch is finished any more).
            Err(_) if verify => {
                let reading = Reading::new(read.csv);
                let refused = second_guess::refused_record(record, &nulls, reading);
                after = Some(second_guess::infer_rest(
                    &mut records,
                    &nulls,
                    reading,
                    refused,
                )?);
                break;
            }
            Err(column) => {
                let value = record.iter().nth(column).unwrap_or_default();
                return Err(value_refused(schema, column, records.line(), value));
            }
        }
        if proof.is_full() {
            batches.push(proof.finish()?);
        }
    }
    if proof.pending() > 0 && after.is_none() {
        batches.push(proof.finish()?);
    }
    proof.offsets_to_lines(&chunk.bytes, chunk.newlines_before);
    Ok(Parsed {
        header,
        batches,
        proof,
        after,
        rows: records.rows(),
        busy: started.elapsed(),
    })
}

/// What the merger folded.
struct Merged<'s> {
    header: Header,
    proof: BatchBuilder<'s>,
    /// After a refused value: what the records from the refusing one on point to, per
    /// column (`proof` holds the records before it).
    after: Option<Vec<ColumnStats>>,
    rows: u64,
    busy: Duration,
}

/// Why the merger stopped early.
enum Stop {
    /// The input's error (or an internal one), which wins over the encoder's outcome.
    Csv(ConvertError),
    /// The encoder stopped on its own error, which its join returns.
    EncoderGone,
}

/// The merging thread: the chunks in order into the encoder (see the module docs).
fn merge<'s>(
    chunks: &mut InOrder<Parsed<'s>>,
    encoder: SyncSender<RecordBatch>,
    abandoned: &AtomicBool,
    (schema, verify, read): (&'s Schema, bool, ReadConfig<'_>),
) -> std::result::Result<Merged<'s>, Stop> {
    let mut header = None;
    let mut proof = BatchBuilder::new(schema, verify, read.csv);
    // Rows sent to the encoder, and read.
    let (mut rows, mut total, mut busy) = (0u64, 0u64, Duration::ZERO);
    let mut straddling: Option<RecordBatch> = None;
    let mut after: Option<Vec<ColumnStats>> = None;
    // Dropped at a refused value: the encoder then abandons its output.
    let mut encoder = Some(encoder);
    let send = |encoder: &Option<SyncSender<RecordBatch>>, batch| {
        encoder.as_ref().is_some_and(|tx| tx.send(batch).is_ok())
    };
    for parsed in chunks {
        let parsed = parsed.map_err(Stop::Csv)?;
        header = header.or(parsed.header);
        total += parsed.rows;
        busy += parsed.busy;
        // Past a refused value nothing is encoded: the chunks' values are only inferred.
        if let Some(after) = after.as_mut() {
            second_guess::fold_chunk(after, &parsed.proof, parsed.after.as_deref());
            continue;
        }
        if parsed.after.is_some() {
            abandoned.store(true, Ordering::Release);
            encoder = None;
            proof.absorb(&parsed.proof);
            after = parsed.after;
            continue;
        }
        for batch in parsed.batches {
            let batch = match straddling.take() {
                Some(first) => {
                    arrow_select::concat::concat_batches(&first.schema(), [&first, &batch])
                        .map_err(|e| Stop::Csv(ConvertError::Parquet(e.to_string())))?
                }
                None => batch,
            };
            let end = rows + batch.num_rows() as u64;
            if !end.is_multiple_of(BATCH_ROWS as u64) {
                straddling = Some(batch);
                continue;
            }
            rows = end;
            if !send(&encoder, batch) {
                return Err(Stop::EncoderGone);
            }
        }
        proof.absorb(&parsed.proof);
    }
    if let Some(batch) = straddling.filter(|_| after.is_none())
        && !send(&encoder, batch)
    {
        return Err(Stop::EncoderGone);
    }
    let header = header.ok_or(Stop::Csv(ConvertError::EmptyCsv))?;
    Ok(Merged {
        header,
        proof,
        after,
        rows: total,
        busy,
    })
}
