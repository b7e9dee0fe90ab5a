//! The ingest pipeline behind `POST /ingest` (docs/contract.md sections 1, 3, 5 and 6), as one
//! type a handler drives in three calls:
//!
//! 1. [`Ingest::begin`]: reads the dataset's current manifest (the [`Plan`]: options, the
//!    registered schema if any) and starts the verified pass 2 on a blocking thread
//!    ([`start_speculative`]), before any byte of the body is read.
//! 2. [`Ingest::receive`]: spools the upload to disk, hashing it, and feeds every chunk to
//!    that pass as it arrives ([`spool::receive`]). Any failure withdraws the pass.
//! 3. [`Received::finish`]: settles pass 2 ([`settle`]: the speculative output when it
//!    proved its schema over every byte, else pass 1 and pass 2 over the spool file), then
//!    commits the Parquet object in storaged and registers the version in catalogd
//!    ([`commit`]).

use crate::spool::{self, ChannelReader, Spooled};
use crate::upload::{self, ChunkSender, Destination, ParquetUpload};
use crate::{AppState, IngestError};
use bytes::Bytes;
use futures::Stream;
use lakehouse_api::{
    CsvOptions, DatasetName, DateOrder, DecimalSeparator, INFERENCE_VERSION, IngestMode,
    IngestResponse, Manifest, ObjectKey, ObjectRef, RejectsRef, Schema, SchemaDriftDetails,
    SchemaEvolution, Sha256Digest, Source, TextEncoding, VersionRegisterRequest,
};
use lakehouse_client::trace::bind;
use lakehouse_convert::{ConvertError, Detected, EncodeStats, ReadConfig, ReadLimits};
use std::cell::Cell;
use std::collections::BTreeMap;

/// Day/month orders of `P/Q/YYYY` date columns, by name (docs/contract.md section 3).
type DateOrders = BTreeMap<String, lakehouse_api::DateOrder>;
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the client asked for, validated (query parameters of `POST /ingest`).
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Dataset name.
    pub name: DatasetName,
    /// `replace` or `append`.
    pub mode: IngestMode,
    /// `delimiter`, when given.
    pub delimiter: Option<u8>,
    /// `null_values`, when given.
    pub null_values: Option<Vec<String>>,
    /// `encoding`, when given (docs/contract.md section 3).
    pub encoding: Option<TextEncoding>,
    /// `decimal_separator`, when given (docs/contract.md section 14).
    pub decimal_separator: Option<DecimalSeparator>,
    /// `date_order`, when given (docs/contract.md section 14).
    pub date_order: Option<DateOrder>,
    /// `schema_evolution`, when given (docs/contract.md section 3, "Schema evolution").
    pub schema_evolution: Option<SchemaEvolution>,
    /// `max_rejects` (default 0; docs/contract.md section 3, "Rejects").
    pub max_rejects: u64,
    /// `dry_run`: check and answer, write nothing (docs/contract.md section 6).
    pub dry_run: bool,
    /// Multipart `filename` of the `file` field, when sent.
    pub filename: Option<String>,
    /// The source file a load reads (docs/contract.md section 12), recorded in the version.
    pub source_file: Option<lakehouse_api::SourceFile>,
}

impl IngestRequest {
    /// The options to read with: the request's own, else the ones the dataset recorded
    /// (docs/contract.md section 3), else the defaults.
    fn options(&self, current: Option<&Manifest>) -> CsvOptions {
        let recorded = current.map(|m| m.options.clone()).unwrap_or_default();
        CsvOptions {
            delimiter: self.delimiter.unwrap_or(recorded.delimiter),
            null_values: self.null_values.clone().unwrap_or(recorded.null_values),
            encoding: self.encoding.unwrap_or(recorded.encoding),
            // Settled by the dataset's first upload (docs/contract.md section 3), never a request's.
            date_orders: recorded.date_orders,
            decimal_separator: self.decimal_separator.unwrap_or(recorded.decimal_separator),
            date_order: self.date_order.or(recorded.date_order),
        }
    }
}

/// What is known before the body is read: the dataset's current manifest (a new dataset has
/// none), the CSV options to read the upload with and this service's caps on its shape.
#[derive(Debug)]
struct Plan {
    current: Option<Manifest>,
    options: CsvOptions,
    limits: ReadLimits,
    /// `max_csv_bytes`: the cap on the decompressed CSV.
    max_csv_bytes: u64,
    /// A new dataset's first upload with no `delimiter`: it is sniffed (docs/contract.md section
    /// 3), and `options.delimiter` is only a placeholder until then.
    sniff: bool,
    lookup_ms: u128,
    /// Where the Parquet goes: storaged, or nowhere for a dry run.
    destination: Destination,
    /// `schema_evolution` of the request.
    evolution: Option<SchemaEvolution>,
    /// `max_rejects` of the request.
    max_rejects: u64,
}

/// Reads the dataset's current manifest from catalogd, before the body is read, so that the
/// verified pass 2 knows, while the upload streams in, whether it proves an inference (new
/// dataset) or the check against the registered schema (existing one), and with which
/// options.
///
/// # Errors
/// [`IngestError::Upstream`] when catalogd fails.
async fn plan(state: &AppState, request: &IngestRequest) -> Result<Plan, IngestError> {
    let started = Instant::now();
    let current = state
        .inner
        .catalogd
        .latest(&request.name)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "catalogd",
            source,
        })?;
    let config = &state.inner.config;
    let limits = ReadLimits {
        max_columns: config.max_columns,
        max_field_bytes: config.max_field_bytes,
        max_record_bytes: config.max_record_bytes,
    };
    let options = request.options(current.as_ref());
    let sniff = current.is_none() && request.delimiter.is_none();
    let destination = if request.dry_run {
        Destination::Nowhere
    } else {
        Destination::Storaged(state.inner.storaged.clone())
    };
    Ok(Plan {
        current,
        options,
        limits,
        max_csv_bytes: config.max_csv_bytes,
        sniff,
        lookup_ms: started.elapsed().as_millis(),
        destination,
        evolution: request.schema_evolution,
        max_rejects: request.max_rejects,
    })
}

/// One ingest after [`Ingest::begin`]: the plan made, the verified pass 2 waiting for the
/// upload's bytes.
pub struct Ingest {
    state: AppState,
    request: IngestRequest,
    plan: Plan,
    tap: mpsc::Sender<Bytes>,
    speculative: Speculative,
}

impl Ingest {
    /// Plans the ingest ([`plan`]) and starts the verified pass 2 ([`start_speculative`]),
    /// so that it reads the upload while it arrives.
    ///
    /// # Errors
    /// [`IngestError::Upstream`] when catalogd fails.
    pub async fn begin(state: &AppState, request: IngestRequest) -> Result<Ingest, IngestError> {
        let plan = plan(state, &request).await?;
        // With rejects allowed, bad records are set aside before any pass reads the upload
        // ([`set_aside`]), so nothing is speculated while it arrives.
        let (tap, speculative) = if plan.max_rejects > 0 {
            no_speculation()
        } else {
            start_speculative(state, &request.name, &plan)
        };
        Ok(Ingest {
            state: state.clone(),
            request,
            plan,
            tap,
            speculative,
        })
    }

    /// Ends an ingest whose body could not be read at all (no `file` field): the verified
    /// pass sees the end of its input and is waited for, its upload to storaged withdrawn.
    /// Returns `error`, the answer.
    pub async fn abandon(self, error: IngestError) -> IngestError {
        drop(self.tap);
        self.speculative.cancel().await;
        error
    }

    /// Spools `body` (the `file` field's chunks, with the multipart `filename`), feeding the
    /// verified pass 2 as it arrives. Whatever way this ends the pass sees the end of its
    /// input; on an error it is waited for, so the spool file is gone before the answer is
    /// sent (the spool is removed when the request ends, whatever the outcome).
    ///
    /// # Errors
    /// [`IngestError::TooLarge`], [`IngestError::Spool`] and the body's own errors
    /// ([`IngestError::IdleTimeout`], [`IngestError::BadUpload`]).
    pub async fn receive<S>(
        self,
        body: S,
        filename: Option<String>,
    ) -> Result<Received, IngestError>
    where
        S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
    {
        let Ingest {
            state,
            mut request,
            plan,
            tap,
            speculative,
        } = self;
        let started = Instant::now();
        let config = state.config();
        let received = spool::receive(
            &config.spool_dir,
            body,
            config.max_upload_bytes,
            vec![tap],
            config.spool_direct_io,
        )
        .await;
        let upload = match received {
            Ok(upload) => upload,
            Err(error) => {
                speculative.cancel().await;
                return Err(error);
            }
        };
        request.filename = filename;
        Ok(Received {
            state,
            request,
            plan,
            speculative,
            upload,
            receive_ms: started.elapsed().as_millis(),
        })
    }
}

/// One ingest after [`Ingest::receive`]: the upload spooled, pass 2 finishing its tail.
pub struct Received {
    state: AppState,
    request: IngestRequest,
    plan: Plan,
    speculative: Speculative,
    upload: Spooled,
    receive_ms: u128,
}

impl Received {
    /// Ends an ingest whose body turned out unusable after the `file` field was spooled (a
    /// second `file` field): pass 2 is waited for and its upload to storaged withdrawn; the
    /// spool goes with `self`. Returns `error`, the answer.
    pub async fn abandon(self, error: IngestError) -> IngestError {
        self.speculative.cancel().await;
        error
    }

    /// Settles pass 2 ([`settle`]), then commits the Parquet object and registers the
    /// version ([`commit`]).
    ///
    /// # Errors
    /// [`IngestError::Convert`] for bad CSV and schema drift found before anything is
    /// stored, [`IngestError::Upstream`] when storaged or catalogd fail (a drift found by the
    /// register call's race-safe gate included), [`IngestError::StoredObject`] when storaged
    /// stored other bytes than were sent, [`IngestError::Spool`]/[`IngestError::Task`] for
    /// local failures.
    pub async fn finish(self) -> Result<IngestResponse, IngestError> {
        let Received {
            state,
            request,
            mut plan,
            speculative,
            upload,
            receive_ms,
        } = self;
        let csv = CsvFacts {
            size: upload.size_bytes,
            sha256: upload.sha256.clone(),
            hash_ms: upload.hash_time.as_millis(),
            receive_ms,
        };
        let (upload, set_aside) = if plan.max_rejects > 0 {
            set_aside(&state, &plan, upload).await?
        } else {
            (upload, None)
        };
        if let Some(set_aside) = &set_aside {
            // The passes read the clean CSV: plain UTF-8 text with the delimiter found.
            plan.options.delimiter = set_aside.delimiter;
            plan.options.encoding = TextEncoding::Utf8;
            plan.sniff = false;
        }
        let mut settled = settle(&state, &request.name, &plan, speculative, upload).await?;
        if let Some(set_aside) = &set_aside {
            // Pass 1 read the clean CSV, whose header already holds the final names.
            settled.pass1.warnings.clone_from(&set_aside.warnings);
            // The manifest says how the upload itself was read.
            settled.pass1.detected = set_aside.detected;
            settled.pass1.delimiter = set_aside.delimiter;
        }
        commit(&state, &request, plan, csv, settled, set_aside).await
    }
}

/// What is known of the uploaded CSV once spooled.
struct CsvFacts {
    size: u64,
    sha256: Sha256Digest,
    hash_ms: u128,
    receive_ms: u128,
}

/// Pass 2 settled: the schema and the Parquet written with it, its upload to storaged not
/// yet committed, and how it went.
struct Settled {
    pass1: Pass1Output,
    encoded: Encoded,
    parquet_upload: ParquetUpload,
    speculation_hit: bool,
    guess_ms: u128,
    speculation_wait_ms: u128,
    pass2_ms: u128,
}

/// What pass 1 found: the schema to write with, the header warnings, and its busy time.
struct Pass1Output {
    schema: Schema,
    warnings: Vec<String>,
    /// The upload's compression and text encoding, as read.
    detected: Detected,
    /// The delimiter read with: the option, or the one sniffed.
    delimiter: u8,
    /// The day/month orders read with: the dataset's, or those the inference settled.
    date_orders: DateOrders,
    busy: Duration,
}

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
struct SpeculativeOutput {
    schema: Schema,
    warnings: Vec<String>,
    detected: Detected,
    delimiter: u8,
    date_orders: DateOrders,
    encoded: Encoded,
    bytes_read: u64,
    guess_ms: u128,
}

/// How the speculative pass ended: proven (`Ok(Some)`), not proven or not tried
/// (`Ok(None)`: pass 1 and pass 2 run over the spool file), or a CSV error, which is pass 1's
/// answer too.
type SpeculativeResult = Result<Option<SpeculativeOutput>, ConvertError>;

/// The verified pass 2 running during the upload ([`start_speculative`]): its result, and
/// the upload of its Parquet to storaged when it started one (committed only if used).
struct Speculative {
    handle: tokio::task::JoinHandle<(SpeculativeResult, Option<ParquetUpload>)>,
}

impl Speculative {
    /// Waits for the task to end (its input must be closed: the tap dropped) and withdraws
    /// what it sent to storaged.
    async fn cancel(self) {
        if let Ok((_, Some(upload))) = self.handle.await {
            // The receive error (too large, broken body, ...) is the answer, not this one.
            let _ = upload.abort().await;
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
/// upload to storaged is withdrawn) and both passes run over the spool file after the upload.
fn start_speculative(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
) -> (mpsc::Sender<Bytes>, Speculative) {
    let (tx, rx) = mpsc::channel(spool::TAP_CHUNKS);
    let mut options = plan.options.clone();
    let limits = plan.limits;
    let max_csv_bytes = plan.max_csv_bytes;
    let sniff = plan.sniff;
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let destination = plan.destination.clone();
    let idle = state.inner.storaged_idle();
    let name = name.clone();
    let runtime = tokio::runtime::Handle::current();
    // Bound to the request's trace context and span: its log lines and its POST to storaged
    // carry the request id (docs/contract.md section 9).
    let handle = tokio::task::spawn_blocking(bind(move || {
        let (bytes_read, waited) = (Rc::default(), Rc::<Cell<Duration>>::default());
        let counting = Counting {
            inner: ChannelReader::new(rx),
            bytes: Rc::clone(&bytes_read),
            waited: Rc::clone(&waited),
        };
        let guess_started = Instant::now();
        // Decompressed and transcoded as needed; a plain UTF-8 upload passes as it is.
        let mut reader = match lakehouse_convert::decode(counting, options.encoding, max_csv_bytes)
        {
            Ok(reader) => reader,
            Err(e) if e.is_csv_error() => return (Err(e), None),
            Err(_) => return (Ok(None), None),
        };
        let detected = reader.detected();
        let mut prefix = Vec::new();
        let is_new = registered.is_none();
        let schema = match registered {
            Some(schema) => schema,
            None => {
                if (&mut reader)
                    .take(SPECULATION_PREFIX_BYTES)
                    .read_to_end(&mut prefix)
                    .is_err()
                {
                    return (Ok(None), None);
                }
                let complete = (prefix.len() as u64) < SPECULATION_PREFIX_BYTES;
                if sniff {
                    // The first records are in the prefix (else pass 1 sniffs the file).
                    match lakehouse_convert::sniff_delimiter_prefix(
                        &prefix,
                        complete,
                        limits.max_record_bytes,
                    ) {
                        Some(delimiter) => options.delimiter = delimiter,
                        None => return (Ok(None), None),
                    }
                }
                match lakehouse_convert::guess(
                    &prefix,
                    complete,
                    ReadConfig::new(&options, limits).sniffed(sniff),
                ) {
                    Some(guess) => {
                        // Its day/month orders too: the pass proves them with the schema.
                        options.date_orders = guess.date_orders;
                        guess.schema
                    }
                    None => return (Ok(None), None),
                }
            }
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
        let (out, parquet_upload) = upload::start(
            &destination,
            parquet_dir(&name, &schema),
            upload::PARQUET_SUFFIX,
            &runtime,
            idle,
        );
        let input = std::io::Cursor::new(prefix).chain(&mut reader);
        let outcome = lakehouse_convert::write_parquet_verified(
            input,
            ReadConfig::new(&options, limits).sniffed(sniff),
            expected,
            out,
        );
        let verified = match outcome {
            Ok(Some(verified)) => verified,
            unproven => {
                // Unwanted: withdrawn at once (the connection and what storaged staged go
                // now, not when the upload ends).
                let mut parquet_upload = parquet_upload;
                parquet_upload.withdraw();
                let result = match unproven {
                    Err(e) if e.is_csv_error() => Err(e),
                    // Not proven, or I/O or encoder trouble (pass 2 over the spool file then
                    // says what it is).
                    _ => Ok(None),
                };
                return (result, Some(parquet_upload));
            }
        };
        let output = SpeculativeOutput {
            schema,
            warnings: verified.warnings,
            detected,
            delimiter: options.delimiter,
            date_orders: options.date_orders.clone(),
            encoded: Encoded {
                output: verified.output,
                stats: verified.stats,
            },
            bytes_read: bytes_read.get(),
            guess_ms,
        };
        (Ok(Some(output)), Some(parquet_upload))
    }));
    (tx, Speculative { handle })
}

/// A speculative pass that is not tried: the tap is closed at once (the spool skips it) and
/// the result is "not proven", so pass 1 and pass 2 run over the spool file.
fn no_speculation() -> (mpsc::Sender<Bytes>, Speculative) {
    let (tx, _closed) = mpsc::channel(1);
    let handle = tokio::spawn(async { (Ok(None), None) });
    (tx, Speculative { handle })
}

/// Records set aside by [`set_aside`], waiting to be stored with the version.
struct PendingRejects {
    /// The rejects CSV (`line,column,reason,record`), a spool file.
    file: spool::SpoolFile,
    /// Records in it.
    count: u64,
    /// Header renames of the upload.
    warnings: Vec<String>,
    /// The upload's compression and encoding (the clean file is plain UTF-8).
    detected: Detected,
    /// The delimiter it was read with (the option, or the one sniffed).
    delimiter: u8,
}

/// `max_rejects` (docs/contract.md section 3, "Rejects"): one read of the spooled upload that
/// copies its good records to a clean spool file and its bad ones, up to `max_rejects`, to
/// a rejects spool file (`lakehouse_convert::set_aside`). When there were bad records, the
/// clean file is what the passes read and the rejects are stored with the version; when
/// there were none, the upload itself is read, exactly as without the option.
///
/// # Errors
/// [`IngestError::Convert`] (`TooManyRejects` past the limit, and the errors no record can
/// be set aside for), [`IngestError::Spool`], [`IngestError::Task`].
async fn set_aside(
    state: &AppState,
    plan: &Plan,
    upload: Spooled,
) -> Result<(Spooled, Option<PendingRejects>), IngestError> {
    let dir = state.config().spool_dir.clone();
    let mut options = plan.options.clone();
    let limits = plan.limits;
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let max_rejects = plan.max_rejects;
    let max_csv_bytes = plan.max_csv_bytes;
    let sniff = plan.sniff;
    let path = upload.file.path().to_owned();
    let (clean, rejects, outcome, clean_bytes, read_as) =
        tokio::task::spawn_blocking(bind(move || {
            // Sniffed and decoded as the passes would; the clean file is plain UTF-8 text.
            if sniff {
                options.delimiter = sniff_spooled(&path, &options, limits, max_csv_bytes)?;
            }
            let input = std::fs::File::open(&path).map_err(IngestError::Spool)?;
            let input = lakehouse_convert::decode(input, options.encoding, max_csv_bytes)?;
            let read_as = (input.detected(), options.delimiter);
            let clean = spool::new_file(&dir, ".clean.csv")?;
            let rejects = spool::new_file(&dir, ".rejects.csv")?;
            let outcome = lakehouse_convert::set_aside(
                input,
                ReadConfig::new(&options, limits).sniffed(sniff),
                registered.as_ref(),
                max_rejects,
                std::io::BufWriter::new(clean.as_file()),
                std::io::BufWriter::new(rejects.as_file()),
            )?;
            let clean_bytes = clean
                .as_file()
                .metadata()
                .map_err(IngestError::Spool)?
                .len();
            Ok::<_, IngestError>((clean, rejects, outcome, clean_bytes, read_as))
        }))
        .await
        .map_err(IngestError::Task)??;
    let (clean, rejects) = (spool::SpoolFile::new(clean), spool::SpoolFile::new(rejects));
    if outcome.rejected == 0 {
        return Ok((upload, None));
    }
    let clean = Spooled {
        file: clean,
        size_bytes: clean_bytes,
        sha256: upload.sha256.clone(),
        hash_time: Duration::ZERO,
    };
    let pending = PendingRejects {
        file: rejects,
        count: outcome.rejected,
        warnings: outcome.warnings,
        detected: read_as.0,
        delimiter: read_as.1,
    };
    Ok((clean, Some(pending)))
}

/// Stores the rejects CSV content-addressed at `datasets/<name>/_rejects/<sha256>.csv` (or,
/// for a dry run, only hashes it) once the version's Parquet is stored, and checks what
/// storaged answered, as for the Parquet.
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoredObject`], [`IngestError::Spool`],
/// [`IngestError::Task`].
async fn store_rejects(
    state: &AppState,
    name: &DatasetName,
    destination: &Destination,
    pending: PendingRejects,
) -> Result<RejectsRef, IngestError> {
    let (mut out, rejects_upload) = upload::start(
        destination,
        ObjectKey::rejects_dir(name),
        upload::REJECTS_SUFFIX,
        &tokio::runtime::Handle::current(),
        state.inner.storaged_idle(),
    );
    let path = pending.file.path().to_owned();
    let sent = tokio::task::spawn_blocking(move || {
        let mut file = std::fs::File::open(path)?;
        let sent = std::io::copy(&mut file, &mut out)?;
        std::io::Write::flush(&mut out)?;
        Ok::<u64, std::io::Error>(sent)
    })
    .await
    .map_err(IngestError::Task)?;
    let sent = match sent {
        Ok(sent) => sent,
        Err(e) => {
            return Err(rejects_upload
                .abort()
                .await
                .unwrap_or(IngestError::Spool(e)));
        }
    };
    let (stored, _created) = rejects_upload.commit().await?;
    let key = ObjectKey::rejects_object(name, &stored.sha256);
    if stored.key != key || stored.size != sent {
        return Err(IngestError::StoredObject {
            expected_key: key.to_string(),
            stored_key: stored.key.to_string(),
            sent_bytes: sent,
            stored_bytes: stored.size,
        });
    }
    Ok(RejectsRef {
        key,
        count: pending.count,
        size: stored.size,
        sha256: stored.sha256,
    })
}

/// Where the Parquet objects of `name` with `schema` go: `datasets/<name>/<fp_hex>`.
fn parquet_dir(name: &DatasetName, schema: &Schema) -> ObjectKey {
    ObjectKey::parquet_dir(name, &schema.fingerprint())
}

/// What pass 2 wrote (the bytes went to storaged as they were written).
struct Encoded {
    output: lakehouse_convert::ParquetOutput,
    stats: EncodeStats,
}

/// Settles pass 2: takes the verified pass's output when it proved its schema over every
/// byte spooled (the upload was read once, while it arrived, and the Parquet streamed to
/// storaged meanwhile), else withdraws it and runs pass 1 and pass 2 over the spool file.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV and drift, [`IngestError::Upstream`] when storaged
/// fails under either pass, [`IngestError::Spool`]/[`IngestError::Task`].
async fn settle(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
    speculative: Speculative,
    upload: Spooled,
) -> Result<Settled, IngestError> {
    // The verified pass 2 read the upload as it arrived; only its tail is left to wait for.
    let pass2_started = Instant::now();
    let (speculated, parquet_upload) = speculative.handle.await.map_err(IngestError::Task)?;
    let speculation_wait_ms = pass2_started.elapsed().as_millis();
    let settled = |pass1, encoded, parquet_upload, speculation_hit, guess_ms| Settled {
        pass1,
        encoded,
        parquet_upload,
        speculation_hit,
        guess_ms,
        speculation_wait_ms,
        pass2_ms: pass2_started.elapsed().as_millis(),
    };
    match (speculated, parquet_upload) {
        // Proven, and over every byte spooled: exactly what pass 1 then pass 2 would give.
        (Ok(Some(hit)), Some(parquet_upload)) if hit.bytes_read == upload.size_bytes => {
            let mut warnings = hit.warnings;
            if plan.current.is_none() {
                let options = CsvOptions {
                    delimiter: hit.delimiter,
                    ..plan.options.clone()
                };
                let limits = (plan.limits, plan.max_csv_bytes);
                let schema = hit.schema.clone();
                warnings.extend(crate::teach::of_spooled(upload, options, limits, schema).await?);
            } else {
                // The CSV spool file is not needed any more: gone now, before the kernel
                // writes its pages out (its pages are freed on a blocking thread).
                drop(upload);
            }
            let pass1 = Pass1Output {
                schema: hit.schema,
                warnings,
                detected: hit.detected,
                delimiter: hit.delimiter,
                date_orders: hit.date_orders,
                busy: Duration::ZERO,
            };
            Ok(settled(
                pass1,
                hit.encoded,
                parquet_upload,
                true,
                hit.guess_ms,
            ))
        }
        (speculated, parquet_upload) => {
            let storaged_failed = match parquet_upload {
                Some(parquet_upload) => parquet_upload.abort().await,
                None => None,
            };
            // A CSV error stops pass 1 at the same record with the same error.
            if let Err(csv) = speculated {
                return Err(IngestError::Convert(csv));
            }
            let (pass1, encoded, parquet_upload) =
                both_passes(state, name, plan, upload, storaged_failed).await?;
            Ok(settled(pass1, encoded, parquet_upload, false, 0))
        }
    }
}

/// The fallback of [`settle`]: pass 1 then pass 2 over the spool file, the Parquet streamed
/// to storaged. `storaged_failed`: storaged's failure under the speculative pass, returned
/// after pass 1 (bad CSV and drift are the client's to fix, whatever storaged does; the
/// fallback would fail alike).
async fn both_passes(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
    upload: Spooled,
    storaged_failed: Option<IngestError>,
) -> Result<(Pass1Output, Encoded, ParquetUpload), IngestError> {
    let inner = &state.inner;
    let limits = plan.limits;
    let path = upload.file.path().to_owned();
    let mut task_options = plan.options.clone();
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let max_csv_bytes = plan.max_csv_bytes;
    let sniff = plan.sniff;
    let evolution = plan.evolution;
    let pass1 = tokio::task::spawn_blocking(bind(move || {
        if sniff {
            task_options.delimiter = sniff_spooled(&path, &task_options, limits, max_csv_bytes)?;
        }
        run_pass1(
            &path,
            ReadConfig::new(&task_options, limits).sniffed(sniff),
            max_csv_bytes,
            registered,
            evolution,
        )
    }))
    .await
    .map_err(IngestError::Task)??;
    if let Some(error) = storaged_failed {
        return Err(error);
    }
    let (out, parquet_upload) = upload::start(
        &plan.destination,
        parquet_dir(name, &pass1.schema),
        upload::PARQUET_SUFFIX,
        &tokio::runtime::Handle::current(),
        inner.storaged_idle(),
    );
    let task_options = CsvOptions {
        delimiter: pass1.delimiter,
        date_orders: pass1.date_orders.clone(),
        ..plan.options.clone()
    };
    let schema = pass1.schema.clone();
    let new_dataset = plan.current.is_none();
    let encoded = tokio::task::spawn_blocking(bind(move || {
        let read = ReadConfig::new(&task_options, limits).sniffed(sniff);
        let encoded = encode(&upload, read, max_csv_bytes, &schema, out)?;
        let taught = if new_dataset {
            crate::teach::teaching_warnings(&upload, read, max_csv_bytes, &schema)?
        } else {
            Vec::new()
        };
        Ok::<_, IngestError>((encoded, taught))
    }))
    .await
    .map_err(IngestError::Task)?;
    let mut pass1 = pass1;
    match encoded {
        Ok((encoded, taught)) => {
            pass1.warnings.extend(taught);
            Ok((pass1, encoded, parquet_upload))
        }
        // storaged's own failure, if that is what stopped pass 2, says more.
        Err(e) => Err(parquet_upload.abort().await.unwrap_or(e)),
    }
}

/// Commits the Parquet object (ends its streamed POST and checks what storaged stored) and
/// registers the version with catalogd.
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoredObject`].
async fn commit(
    state: &AppState,
    request: &IngestRequest,
    plan: Plan,
    csv: CsvFacts,
    settled: Settled,
    set_aside: Option<PendingRejects>,
) -> Result<IngestResponse, IngestError> {
    let inner = &state.inner;
    let plan_was_new = plan.current.is_none();
    let parquet_size = settled.encoded.output.size_bytes;
    let row_count = settled.encoded.output.row_count;

    // The Parquet went to storaged while it was encoded: end its body, take the answer.
    let put_started = Instant::now();
    let (stored, _created) = settled.parquet_upload.commit().await?;
    let put_ms = put_started.elapsed().as_millis();
    let fingerprint = settled.pass1.schema.fingerprint();
    // storaged named the object by the SHA-256 of the bytes it received (ingestd does not
    // hash them a second time: docs/performance.md); they must be all the bytes sent, under
    // the dataset's and schema's directory.
    let parquet_sha256 = stored.sha256;
    let key = ObjectKey::parquet_object(&request.name, &fingerprint, &parquet_sha256);
    if stored.key != key || stored.size != parquet_size {
        return Err(IngestError::StoredObject {
            expected_key: key.to_string(),
            stored_key: stored.key.to_string(),
            sent_bytes: parquet_size,
            stored_bytes: stored.size,
        });
    }

    // The records set aside go next to the data, content-addressed, before the register
    // that names them (a failure leaves them an orphan for GC, like the Parquet).
    let rejects = match set_aside {
        Some(pending) => {
            Some(store_rejects(state, &request.name, &plan.destination, pending).await?)
        }
        None => None,
    };

    let register_started = Instant::now();
    let register = VersionRegisterRequest {
        replaces: Vec::new(),
        schema_fingerprint: fingerprint,
        schema: settled.pass1.schema.clone(),
        objects: vec![ObjectRef {
            key: key.clone(),
            size: parquet_size,
            sha256: parquet_sha256,
            row_count,
            rejects: rejects.clone(),
        }],
        mode: request.mode,
        source: Source {
            filename: request.filename.clone(),
            csv_sha256: Some(csv.sha256),
            csv_bytes: Some(csv.size),
            compression: settled.pass1.detected.compression,
            file: request.source_file.clone(),
        },
        // The encoding the text was read in: the option, or the UTF-16 of a byte order mark.
        options: CsvOptions {
            delimiter: settled.pass1.delimiter,
            date_orders: settled.pass1.date_orders.clone(),
            encoding: settled.pass1.detected.encoding,
            ..plan.options
        },
        inference_version: INFERENCE_VERSION,
        columns: settled.encoded.output.columns.clone(),
        schema_evolution: request.schema_evolution,
        dry_run: request.dry_run,
    };
    let registered = inner
        .catalogd
        .register(&request.name, &register)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "catalogd",
            source,
        })?;
    let register_ms = register_started.elapsed().as_millis();

    let infer_ms = settled.pass1.busy.as_millis();
    // A dry run ingested nothing: no bytes or rows counted, no stage timings.
    if !request.dry_run {
        crate::metrics::ingest_succeeded(
            csv.size,
            parquet_size,
            row_count,
            [
                plan.lookup_ms,
                csv.receive_ms,
                csv.hash_ms,
                settled.guess_ms,
                infer_ms,
                settled.encoded.stats.parse.as_millis(),
                settled.encoded.stats.encode.as_millis(),
                settled.speculation_wait_ms,
                settled.pass2_ms,
                put_ms,
                register_ms,
            ],
        );
    }
    tracing::info!(
        dataset = %request.name,
        version = registered.manifest.version,
        existing = registered.existing,
        csv_bytes = csv.size,
        rows = row_count,
        parquet_bytes = parquet_size,
        lookup_ms = plan.lookup_ms,
        receive_ms = csv.receive_ms,
        csv_hash_ms = csv.hash_ms,
        guess_ms = settled.guess_ms,
        infer_ms,
        parse_ms = settled.encoded.stats.parse.as_millis(),
        encode_ms = settled.encoded.stats.encode.as_millis(),
        speculation_hit = settled.speculation_hit,
        speculation_wait_ms = settled.speculation_wait_ms,
        pass2_ms = settled.pass2_ms,
        put_ms,
        register_ms,
        dry_run = request.dry_run,
        "ingest complete"
    );
    Ok(IngestResponse {
        manifest: registered.manifest,
        existing: registered.existing,
        row_count,
        parquet_key: key,
        parquet_size,
        schema: settled.pass1.schema,
        warnings: {
            let mut warnings = settled.pass1.warnings;
            if plan_was_new && row_count == 0 {
                warnings.push(crate::teach::NO_DATA_ROWS.to_owned());
            }
            warnings
        },
        columns: settled.encoded.output.columns,
        rejects,
        dry_run: request.dry_run,
    })
}

/// Pass 1 over the spool file (when the verified pass did not prove its schema). Blocking.
///
/// A new dataset's schema is inferred; an existing one's is checked
/// (`lakehouse_convert::check_schema`). When that check finds only new columns,
/// [`evolve`] decides between a new schema version (`schema_evolution=add_columns`) and a 409.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV, [`IngestError::SchemaDrift`] for drift,
/// [`IngestError::Spool`].
fn run_pass1(
    path: &std::path::Path,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    registered: Option<Schema>,
    evolution: Option<SchemaEvolution>,
) -> Result<Pass1Output, IngestError> {
    let started = Instant::now();
    let file = std::fs::File::open(path).map_err(IngestError::Spool)?;
    let file = lakehouse_convert::decode(file, options.csv.encoding, max_csv_bytes)?;
    let detected = file.detected();
    let mut date_orders = options.csv.date_orders.clone();
    let (schema, warnings) = match registered {
        None => {
            let inferred = lakehouse_convert::infer_schema(file, options)?;
            date_orders = inferred.date_orders;
            (inferred.schema, inferred.warnings)
        }
        Some(schema) => match lakehouse_convert::check_schema(file, options, &schema) {
            Ok(checked) => (schema, checked.warnings),
            Err(ConvertError::SchemaDrift(details)) => {
                let (schema, warnings, added_orders) =
                    evolve(path, options, max_csv_bytes, schema, details, evolution)?;
                date_orders.extend(added_orders);
                (schema, warnings)
            }
            Err(other) => return Err(other.into()),
        },
    };
    Ok(Pass1Output {
        schema,
        warnings,
        detected,
        delimiter: options.csv.delimiter,
        date_orders,
        busy: started.elapsed(),
    })
}

/// Sniffs the delimiter of the spooled upload (docs/contract.md section 3), reading its first
/// records once per candidate. Blocking.
fn sniff_spooled(
    path: &std::path::Path,
    options: &CsvOptions,
    limits: ReadLimits,
    max_csv_bytes: u64,
) -> Result<u8, IngestError> {
    let open = || {
        let file = std::fs::File::open(path).map_err(ConvertError::Io)?;
        lakehouse_convert::decode(file, options.encoding, max_csv_bytes)
    };
    Ok(lakehouse_convert::sniff_delimiter(
        open,
        limits.max_record_bytes,
    )?)
}

/// Schema evolution (docs/contract.md section 3): an upload to an existing dataset that
/// `check_schema` found drifting with `details`. When the drift is only new columns
/// (nothing removed, no registered column refusing a value) the upload is inferred too
/// (section 3 rules, the whole file), and when its header is the registered names in order
/// followed by the new ones, the evolved schema is the registered one plus the new columns
/// with their inferred types. Blocking.
///
/// # Errors
/// [`IngestError::SchemaDrift`] unless `evolution` is `add_columns` and the upload only adds
/// columns at the end (`evolvable` set when it does but the option was not given);
/// [`IngestError::Convert`], [`IngestError::Spool`] from the second read.
fn evolve(
    path: &std::path::Path,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    registered: Schema,
    details: Box<SchemaDriftDetails>,
    evolution: Option<SchemaEvolution>,
) -> Result<(Schema, Vec<String>, DateOrders), IngestError> {
    let only_added = details.removed.is_empty()
        && details.changed.is_empty()
        && details.reordered.is_empty()
        && !details.added.is_empty();
    if !only_added {
        return Err(IngestError::SchemaDrift {
            details,
            evolvable: false,
        });
    }
    let file = std::fs::File::open(path).map_err(IngestError::Spool)?;
    let file = lakehouse_convert::decode(file, options.csv.encoding, max_csv_bytes)?;
    let inferred = lakehouse_convert::infer_schema(file, options)?;
    let header_extends = inferred.schema.fields.len() > registered.fields.len()
        && inferred
            .schema
            .names()
            .zip(registered.names())
            .all(|(upload, known)| upload == known);
    let mut evolved = registered.clone();
    evolved.fields.extend(
        inferred
            .schema
            .fields
            .iter()
            .skip(registered.fields.len())
            .cloned(),
    );
    let evolvable = header_extends && evolved.adds_columns_to(&registered);
    match evolution {
        Some(SchemaEvolution::AddColumns) if evolvable => {
            // The new columns' day/month orders, settled by this upload.
            let added: DateOrders = inferred
                .date_orders
                .into_iter()
                .filter(|(name, _)| !registered.names().any(|known| known == name))
                .collect();
            Ok((evolved, inferred.warnings, added))
        }
        given => Err(IngestError::SchemaDrift {
            details,
            evolvable: evolvable && given.is_none(),
        }),
    }
}

/// Pass 2 over the spool file, parsing and encoding on two threads, the Parquet going to
/// `out` (an upload to storaged). Blocking: runs on the blocking pool.
fn encode(
    upload: &Spooled,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    schema: &Schema,
    out: ChunkSender,
) -> Result<Encoded, IngestError> {
    let csv = std::fs::File::open(upload.file.path()).map_err(IngestError::Spool)?;
    let csv = lakehouse_convert::decode(csv, options.csv.encoding, max_csv_bytes)?;
    let (output, stats) = lakehouse_convert::write_parquet_pipelined(csv, options, schema, out)?;
    Ok(Encoded { output, stats })
}
