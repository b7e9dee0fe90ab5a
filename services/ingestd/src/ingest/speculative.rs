//! The verified pass 2 that runs while the upload arrives ([`start_speculative`]): its
//! output is used when it proved its schema over every byte (docs/performance.md).

use super::partitioned::PartitionedPass;
use super::{DateOrders, Encoded, Plan, Written, parquet_dir};
use crate::AppState;
use crate::spool::{self, ChannelReader};
use crate::upload::{Destination, Uploads};
use bytes::Bytes;
use lakehouse_api::{CsvOptions, DatasetName, Schema};
use lakehouse_client::trace::bind;
use lakehouse_convert::{ConvertError, Detected, ReadConfig, ReadLimits, SecondGuess, Speculation};
use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A `Read` that counts bytes and the time spent waiting for them, in cells the caller
/// keeps a handle to (the reader itself goes into the decoding layers).
struct Counting {
    inner: ChannelReader,
    bytes: Rc<Cell<u64>>,
    waited: Rc<Cell<Duration>>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.read(buf)?;
        self.waited.set(self.waited.get() + started.elapsed());
        self.bytes.set(self.bytes.get() + n as u64);
        Ok(n)
    }
}

/// Bytes of the upload's start that the speculative pass 2 infers its guess of the schema
/// from, for a new dataset: big enough that the guess is usually the final schema, small
/// enough to hold in memory.
const SPECULATION_PREFIX_BYTES: u64 = 4 << 20;

/// What the speculative pass wrote and proved: the schema pass 1 would settle on, its
/// warnings, and the Parquet written with that schema (streamed to storaged).
pub(super) struct SpeculativeOutput {
    pub(super) schema: Schema,
    pub(super) warnings: Vec<String>,
    pub(super) detected: Detected,
    pub(super) delimiter: u8,
    pub(super) date_orders: DateOrders,
    pub(super) encoded: Encoded,
    pub(super) bytes_read: u64,
    pub(super) guess_ms: u128,
}

/// A new dataset's guess that the values refuted, and what they point to instead
/// (`lakehouse_convert::SecondGuess`): verified over the spool file after the upload
/// instead of pass 1 and pass 2 (docs/contract.md section 13, "A guess refuted late").
pub(super) struct Refuted {
    pub(super) second_guess: SecondGuess,
    /// The delimiter the pass read with (sniffed, or the option).
    pub(super) delimiter: u8,
    /// Bytes of the upload it read: the second guess covers the upload only when that is
    /// every byte spooled.
    pub(super) bytes_read: u64,
}

/// How the speculative pass ended, when the CSV read without error.
pub(super) enum Speculated {
    /// Its schema proven over the bytes it read.
    Proven(SpeculativeOutput),
    /// Not proven, or not tried; with what the values point to when they refuted a new
    /// dataset's guess.
    Unproven(Option<Box<Refuted>>),
}

/// How the speculative pass ended: [`Speculated`], or a CSV error, which is pass 1's answer
/// too.
pub(super) type SpeculativeResult = Result<Speculated, ConvertError>;

/// The verified pass 2 running during the upload ([`start_speculative`]): its result, and
/// what it wrote: the upload of its Parquet to storaged when it started one (committed only
/// if used), or a partitioned dataset's files in the spool.
pub(super) struct Speculative {
    pub(super) handle: tokio::task::JoinHandle<(SpeculativeResult, Option<Written>)>,
}

impl Speculative {
    /// Waits for the task to end (its input must be closed: the tap dropped) and withdraws
    /// what it sent to storaged.
    pub(super) async fn cancel(self) {
        if let Ok((_, Some(Written::Streamed(uploads)))) = self.handle.await {
            // The receive error (too large, broken body, ...) is the answer, not this one.
            let _ = uploads.abort().await;
        }
    }
}

/// Starts the verified pass 2 (`lakehouse_convert::write_parquet_verified`) on a blocking
/// thread, reading the chunks sent on the returned tap, which
/// [`spool::receive`](crate::spool::receive) feeds as the upload arrives. Its schema is the
/// registered one for an existing dataset, else a guess from the first
/// [`SPECULATION_PREFIX_BYTES`] of the upload; while it encodes Parquet (streamed to
/// storaged as it is written, [`crate::upload`]) it proves from the values that pass 1 (the
/// check, or the whole-file inference) would settle on that schema. Then its output is
/// exactly what pass 1 followed by pass 2 would give, and the upload is read once.
/// Otherwise (a type that changes after the prefix, drift) nothing it made is used (the
/// upload to storaged is withdrawn); for a new dataset it reads on, only inferring, and
/// names the second guess ([`Refuted`]) that [`super::passes::settle`] verifies over the
/// spool file, else pass 1 and pass 2 run over it after the upload.
pub(super) fn start_speculative(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
) -> (mpsc::Sender<Bytes>, Speculative) {
    let (tx, rx) = mpsc::channel(spool::TAP_CHUNKS);
    let job = Job {
        options: plan.options.clone(),
        limits: plan.limits,
        max_csv_bytes: plan.max_csv_bytes,
        sniff: plan.sniff,
        registered: plan.current.as_ref().map(|m| m.schema.clone()),
        destination: plan.destination.clone(),
        partition: plan.partition.clone(),
        config: state.config().clone(),
        idle: state.inner.storaged_idle(),
        name: name.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    // Bound to the request's trace context and span: its log lines and its POST to storaged
    // carry the request id (docs/contract.md section 9).
    let handle = tokio::task::spawn_blocking(bind(move || job.run(rx)));
    (tx, Speculative { handle })
}

/// What the speculative pass needs, moved to its blocking thread by [`start_speculative`].
struct Job {
    /// The options to read with; a new dataset's sniffed delimiter and guessed day/month
    /// orders are settled in them.
    options: CsvOptions,
    limits: ReadLimits,
    max_csv_bytes: u64,
    sniff: bool,
    /// The registered schema, `None` for a new dataset.
    registered: Option<Schema>,
    destination: Destination,
    /// The dataset's partitioning, if any: the pass then writes partition files into the
    /// spool instead of one object to storaged (docs/contract.md section 10).
    partition: Option<lakehouse_iceberg::PartitionBy>,
    /// ingestd's configuration (the partitioned pass's limits and spool directory).
    config: crate::Config,
    /// `storaged_idle_timeout_ms`.
    idle: Duration,
    name: DatasetName,
    /// The runtime the upload to storaged runs on.
    runtime: tokio::runtime::Handle,
}

impl Job {
    /// Runs the pass over the chunks of `rx` (see [`start_speculative`]). Blocking.
    fn run(mut self, rx: mpsc::Receiver<Bytes>) -> (SpeculativeResult, Option<Written>) {
        let (bytes_read, waited) = (Rc::default(), Rc::<Cell<Duration>>::default());
        let counting = Counting {
            inner: ChannelReader::new(rx),
            bytes: Rc::clone(&bytes_read),
            waited: Rc::clone(&waited),
        };
        let guess_started = Instant::now();
        // Decompressed and transcoded as needed; a plain UTF-8 upload passes as it is.
        let decoded =
            lakehouse_convert::decode(counting, self.options.encoding, self.max_csv_bytes);
        let mut reader = match decoded {
            Ok(reader) => reader,
            Err(e) if e.is_csv_error() => return (Err(e), None),
            Err(_) => return (Ok(Speculated::Unproven(None)), None),
        };
        let detected = reader.detected();
        let mut prefix = Vec::new();
        let is_new = self.registered.is_none();
        let schema = match self.registered.take() {
            Some(schema) => schema,
            None => match self.guess(&mut reader, &mut prefix) {
                Some(schema) => schema,
                None => return (Ok(Speculated::Unproven(None)), None),
            },
        };
        let guess_ms = guess_started
            .elapsed()
            .saturating_sub(waited.get())
            .as_millis();
        let expected = if is_new {
            lakehouse_convert::Expected::Inferred(&schema)
        } else {
            lakehouse_convert::Expected::Registered(&schema)
        };
        let read = ReadConfig::new(&self.options, self.limits)
            .sniffed(self.sniff)
            .threads(self.config.parse_threads());
        if let Some(by) = &self.partition {
            // A spec that does not fit the guessed schema: not tried (pass 1 decides).
            let Ok(pass) = PartitionedPass::new(by, &schema, &self.config) else {
                return (Ok(Speculated::Unproven(None)), None);
            };
            let input = std::io::Cursor::new(prefix).chain(&mut reader);
            let (verified, files) = match pass.run(input, read, expected) {
                Ok(Some(done)) => done,
                Err(crate::IngestError::Convert(e)) if e.is_csv_error() => return (Err(e), None),
                // Not proven, too many values under a guessed schema, or I/O trouble: the
                // passes over the spool file say what it is.
                _ => return (Ok(Speculated::Unproven(None)), None),
            };
            let output = self.output(schema, verified, detected, bytes_read.get(), guess_ms);
            return (
                Ok(Speculated::Proven(output)),
                Some(Written::Partitioned(files)),
            );
        }
        let mut uploads = Uploads::new(
            &self.destination,
            parquet_dir(&self.name, &schema),
            &self.runtime,
            self.idle,
        );
        let input = std::io::Cursor::new(prefix).chain(&mut reader);
        let files = lakehouse_convert::ParquetFiles::Split {
            sink: &mut uploads,
            target_bytes: self.config.target_file_bytes.max(1),
        };
        let outcome = lakehouse_convert::write_parquet_speculative(input, read, expected, files);
        let verified = match outcome {
            Ok(Speculation::Proven(verified)) => verified,
            unproven => {
                // Unwanted: withdrawn now if not already (a refused value withdrew it at
                // once, through `CompactSink::abandon`, before the pass read on).
                uploads.withdraw();
                let result = match unproven {
                    Err(e) if e.is_csv_error() => Err(e),
                    Ok(Speculation::Unproven(Some(second_guess))) if is_new => {
                        Ok(Speculated::Unproven(Some(Box::new(Refuted {
                            second_guess,
                            delimiter: self.options.delimiter,
                            bytes_read: bytes_read.get(),
                        }))))
                    }
                    // Not proven, or I/O or encoder trouble (pass 2 over the spool file then
                    // says what it is).
                    _ => Ok(Speculated::Unproven(None)),
                };
                return (result, Some(Written::Streamed(Box::new(uploads))));
            }
        };
        let output = self.output(schema, verified, detected, bytes_read.get(), guess_ms);
        (
            Ok(Speculated::Proven(output)),
            Some(Written::Streamed(Box::new(uploads))),
        )
    }

    /// The proven pass's output.
    fn output(
        &self,
        schema: Schema,
        verified: lakehouse_convert::Verified,
        detected: Detected,
        bytes_read: u64,
        guess_ms: u128,
    ) -> SpeculativeOutput {
        SpeculativeOutput {
            schema,
            warnings: verified.warnings,
            detected,
            delimiter: self.options.delimiter,
            date_orders: self.options.date_orders.clone(),
            encoded: Encoded {
                output: verified.output,
                stats: verified.stats,
            },
            bytes_read,
            guess_ms,
        }
    }

    /// A new dataset's guess of its schema: reads the first [`SPECULATION_PREFIX_BYTES`] of
    /// `reader` into `prefix`, sniffs the delimiter when asked to and infers from the prefix,
    /// settling both in the options. `None`: no guess (the pass is not tried).
    fn guess(&mut self, reader: &mut impl Read, prefix: &mut Vec<u8>) -> Option<Schema> {
        if reader
            .by_ref()
            .take(SPECULATION_PREFIX_BYTES)
            .read_to_end(prefix)
            .is_err()
        {
            return None;
        }
        let complete = (prefix.len() as u64) < SPECULATION_PREFIX_BYTES;
        if self.sniff {
            // The first records are in the prefix (else pass 1 sniffs the file).
            self.options.delimiter = lakehouse_convert::sniff_delimiter_prefix(
                prefix,
                complete,
                self.limits.max_record_bytes,
            )?;
        }
        let guess = lakehouse_convert::guess(
            prefix,
            complete,
            ReadConfig::new(&self.options, self.limits).sniffed(self.sniff),
        )?;
        // Its day/month orders too: the pass proves them with the schema.
        self.options.date_orders = guess.date_orders;
        Some(guess.schema)
    }
}

/// A speculative pass that is not tried: the tap is closed at once (the spool skips it) and
/// the result is "not proven", so pass 1 and pass 2 run over the spool file.
pub(super) fn no_speculation() -> (mpsc::Sender<Bytes>, Speculative) {
    let (tx, _closed) = mpsc::channel(1);
    let handle = tokio::spawn(async { (Ok(Speculated::Unproven(None)), None) });
    (tx, Speculative { handle })
}
