//! The ingest pipeline behind `POST /ingest` (DESIGN.md sections 1, 3, 5 and 6).

use crate::spool::{self, ChannelReader, Spooled};
use crate::{AppState, IngestError};
use bytes::Bytes;
use lakehouse_api::{
    CsvOptions, DatasetName, INFERENCE_VERSION, IngestMode, IngestResponse, Manifest, ObjectKey,
    ObjectRef, ReadLimits, RegisterVersionRequest, Schema, Source,
};
use lakehouse_client::PutOptions;
use lakehouse_convert::{ConvertError, EncodeStats};
use std::io::Read;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;

/// Chunk size of the streamed PUT of the Parquet object, bytes.
const PUT_CHUNK_BYTES: usize = 256 * 1024;

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
    /// Multipart `filename` of the `file` field, when sent.
    pub filename: Option<String>,
}

impl IngestRequest {
    /// The options to read with: the request's own, else the ones the dataset recorded
    /// (DESIGN.md section 3), else the defaults; with this service's `limits`.
    fn options(&self, current: Option<&Manifest>, limits: ReadLimits) -> CsvOptions {
        let recorded = current.map(|m| m.options.clone()).unwrap_or_default();
        CsvOptions {
            delimiter: self.delimiter.unwrap_or(recorded.delimiter),
            null_values: self.null_values.clone().unwrap_or(recorded.null_values),
            limits,
        }
    }
}

/// What is known before the body is read: the dataset's current manifest (a new dataset has
/// none) and the CSV options to read the upload with.
#[derive(Debug)]
pub struct Plan {
    current: Option<Manifest>,
    options: CsvOptions,
    lookup_ms: u128,
}

/// Reads the dataset's current manifest from catalogd, before the body is read, so that
/// pass 1 (inference for a new dataset, the check against the registered schema for an
/// existing one) can run while the upload streams in.
///
/// # Errors
/// [`IngestError::Upstream`] when catalogd fails.
pub async fn plan(state: &AppState, request: &IngestRequest) -> Result<Plan, IngestError> {
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
    let options = request.options(current.as_ref(), limits);
    Ok(Plan {
        current,
        options,
        lookup_ms: started.elapsed().as_millis(),
    })
}

/// What pass 1 found: the schema to write with, the header warnings, how many CSV bytes it
/// read, and its busy time (waits for the upload not counted).
struct Pass1Output {
    schema: Schema,
    warnings: Vec<String>,
    bytes_read: u64,
    busy: Duration,
}

/// Pass 1 running on a blocking thread over the upload as it arrives ([`start_pass1`]).
pub struct Pass1 {
    handle: tokio::task::JoinHandle<Result<Pass1Output, ConvertError>>,
}

impl Pass1 {
    /// Waits for the task to end (its input must be closed: the tap dropped).
    pub async fn cancel(self) {
        let _ = self.handle.await;
    }
}

/// A `Read` that counts bytes and the time spent waiting for them.
struct Counting {
    inner: ChannelReader,
    bytes: u64,
    waited: Duration,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let started = Instant::now();
        let n = self.inner.read(buf)?;
        self.waited += started.elapsed();
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Starts pass 1 (inference for a new dataset, else the check against the registered
/// schema) on a blocking thread, reading the chunks sent on the returned tap, which
/// [`spool::receive`](crate::spool::receive) feeds as the upload arrives.
pub fn start_pass1(plan: &Plan) -> (mpsc::Sender<Bytes>, Pass1) {
    let (tx, rx) = mpsc::channel(spool::TAP_CHUNKS);
    let options = plan.options.clone();
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let handle = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut reader = Counting {
            inner: ChannelReader::new(rx),
            bytes: 0,
            waited: Duration::ZERO,
        };
        let (schema, warnings) = match registered {
            None => {
                let inferred = lakehouse_convert::infer_schema(&mut reader, &options)?;
                (inferred.schema, inferred.warnings)
            }
            Some(schema) => {
                let checked = lakehouse_convert::check_schema(&mut reader, &options, &schema)?;
                (schema, checked.warnings)
            }
        };
        Ok(Pass1Output {
            schema,
            warnings,
            bytes_read: reader.bytes,
            busy: started.elapsed().saturating_sub(reader.waited),
        })
    });
    (tx, Pass1 { handle })
}

/// Bytes of the upload's start that the speculative pass 2 infers its guess of the schema
/// from, for a new dataset: big enough that the guess is usually the final schema, small
/// enough to hold in memory.
const SPECULATION_PREFIX_BYTES: u64 = 4 << 20;

/// What the speculative pass 2 wrote, and with which schema.
struct SpeculativeOutput {
    schema: Schema,
    encoded: Encoded,
    bytes_read: u64,
}

/// Pass 2 running during the upload with a guessed schema ([`start_speculative`]).
pub struct Speculative {
    handle: tokio::task::JoinHandle<Option<SpeculativeOutput>>,
}

impl Speculative {
    /// Waits for the task to end (its input must be closed: the tap dropped) and drops what
    /// it made, spool file included.
    pub async fn cancel(self) {
        let _ = self.handle.await;
    }
}

/// Starts pass 2 while the upload arrives, with the schema it will most likely have: the
/// registered one for an existing dataset (exact whenever pass 1's check passes), else the
/// schema inferred from the first [`SPECULATION_PREFIX_BYTES`] of the upload. Its output is
/// used only if that schema turns out to be the one pass 1 settles on and it read every
/// byte spooled; since the Parquet bytes are a pure function of (CSV bytes, options,
/// schema), they are then exactly those a pass 2 after pass 1 would write. Otherwise (a
/// column's type changed after the prefix, bad CSV) it stops or is discarded, and pass 2
/// runs over the spool file as usual.
pub fn start_speculative(
    plan: &Plan,
    spool_dir: &std::path::Path,
) -> (mpsc::Sender<Bytes>, Speculative) {
    let (tx, rx) = mpsc::channel(spool::TAP_CHUNKS);
    let options = plan.options.clone();
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let spool_dir = spool_dir.to_owned();
    let handle = tokio::task::spawn_blocking(move || {
        let mut reader = Counting {
            inner: ChannelReader::new(rx),
            bytes: 0,
            waited: Duration::ZERO,
        };
        let mut prefix = Vec::new();
        let schema = match registered {
            Some(schema) => schema,
            None => {
                (&mut reader)
                    .take(SPECULATION_PREFIX_BYTES)
                    .read_to_end(&mut prefix)
                    .ok()?;
                // Whole records only (a cut inside a quoted newline fails or guesses wrong,
                // which only costs the speculation).
                let end = if (prefix.len() as u64) < SPECULATION_PREFIX_BYTES {
                    prefix.len()
                } else {
                    prefix
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1)
                };
                let head = prefix.get(..end)?;
                lakehouse_convert::infer_schema(head, &options).ok()?.schema
            }
        };
        let parquet = spool::new_file(&spool_dir, ".parquet").ok()?;
        let out = std::io::BufWriter::with_capacity(1 << 20, parquet.reopen().ok()?);
        let input = std::io::Cursor::new(prefix).chain(&mut reader);
        let (output, stats) =
            lakehouse_convert::write_parquet_pipelined(input, &options, &schema, out).ok()?;
        Some(SpeculativeOutput {
            schema,
            encoded: Encoded {
                parquet,
                output,
                stats,
            },
            bytes_read: reader.bytes,
        })
    });
    (tx, Speculative { handle })
}

/// Result of the blocking encode step (pass 2).
struct Encoded {
    parquet: tempfile::NamedTempFile,
    output: lakehouse_convert::ParquetOutput,
    stats: EncodeStats,
}

/// Finishes an ingest of the spooled upload: waits for pass 1 (which read the upload while
/// it arrived), encodes Parquet (pass 2, pipelined over two threads), stores it and
/// registers the version.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV and schema drift found before anything is written,
/// [`IngestError::Upstream`] when storaged or catalogd fail (a drift found by the register
/// call's race-safe gate included), [`IngestError::Spool`]/[`IngestError::Task`] for local
/// failures.
pub async fn ingest(
    state: &AppState,
    request: IngestRequest,
    plan: Plan,
    pass1: Pass1,
    speculative: Speculative,
    upload: Spooled,
    receive_ms: u128,
) -> Result<IngestResponse, IngestError> {
    let inner = &state.inner;
    let options = plan.options;
    let spool_dir = inner.config.spool_dir.clone();
    let csv_size = upload.size_bytes;
    let csv_sha256 = upload.sha256.clone();
    let csv_hash_ms = upload.hash_time.as_millis();

    // Pass 1 has read the upload as it arrived; only its tail is left to wait for.
    let waited = Instant::now();
    let pass1 = match pass1.handle.await {
        Ok(Ok(pass1)) => Ok(pass1),
        Ok(Err(convert)) => Err(IngestError::Convert(convert)),
        Err(join) => Err(IngestError::Task(join)),
    };
    let mut pass1 = match pass1 {
        Ok(pass1) => pass1,
        Err(error) => {
            // Bad CSV or drift: the speculative pass 2 and its spool file go first.
            speculative.cancel().await;
            return Err(error);
        }
    };
    let infer_wait_ms = waited.elapsed().as_millis();
    if pass1.bytes_read != csv_size {
        // Cannot happen (pass 1 reads to the end and the tap sees every spooled byte), but
        // the output must never rest on a pass over part of the file: redo it from the spool.
        tracing::warn!(
            read = pass1.bytes_read,
            spooled = csv_size,
            "pass 1 saw a different byte count; rerunning it over the spool file"
        );
        let path = upload.file.path().to_owned();
        let task_options = options.clone();
        let registered = plan.current.as_ref().map(|m| m.schema.clone());
        pass1 = tokio::task::spawn_blocking(move || rerun_pass1(&path, &task_options, registered))
            .await
            .map_err(IngestError::Task)??;
    }

    // The speculative pass 2 read the same upload with a guessed schema: its output is
    // exactly what pass 2 would write now if the guess was right and it read every byte.
    let pass2_started = Instant::now();
    let guessed = speculative.handle.await.map_err(IngestError::Task)?;
    let speculation_wait_ms = pass2_started.elapsed().as_millis();
    let (encoded, speculation_hit) = match guessed {
        Some(guess) if guess.schema == pass1.schema && guess.bytes_read == csv_size => {
            (guess.encoded, true)
        }
        missed => {
            // Its Parquet spool file goes before pass 2 writes another.
            drop(missed);
            let task_options = options.clone();
            let schema = pass1.schema.clone();
            let encoded = tokio::task::spawn_blocking(move || {
                encode(&upload, &task_options, &schema, &spool_dir)
            })
            .await
            .map_err(IngestError::Task)??;
            (encoded, false)
        }
    };
    let pass2_ms = pass2_started.elapsed().as_millis();
    let parquet_size = encoded.output.size_bytes;
    let parquet_sha256 = encoded.output.sha256.clone();
    let row_count = encoded.output.row_count;

    let fingerprint = pass1.schema.fingerprint();
    let fp_hex = fingerprint.trim_start_matches("sha256:");
    let key = ObjectKey::parquet_object(&request.name, fp_hex, &parquet_sha256);

    let put_started = Instant::now();
    let file = tokio::fs::File::open(encoded.parquet.path())
        .await
        .map_err(IngestError::Spool)?;
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, PUT_CHUNK_BYTES));
    let put_options = PutOptions {
        create_only: true,
        sha256: Some(parquet_sha256.clone()),
    };
    // 201 or 412: either way the identical bytes are stored under this content address.
    inner
        .storaged
        .put(&key, body, parquet_size, &put_options)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "storaged",
            source,
        })?;
    let put_ms = put_started.elapsed().as_millis();

    let register_started = Instant::now();
    let register = RegisterVersionRequest {
        schema_fingerprint: fingerprint,
        schema: pass1.schema.clone(),
        objects: vec![ObjectRef {
            key: key.clone(),
            size: parquet_size,
            sha256: parquet_sha256,
            row_count,
        }],
        mode: request.mode,
        source: Source {
            filename: request.filename.clone(),
            csv_sha256: Some(csv_sha256),
            csv_bytes: Some(csv_size),
        },
        options,
        inference_version: INFERENCE_VERSION,
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

    tracing::info!(
        dataset = %request.name,
        version = registered.manifest.version,
        existing = registered.existing,
        csv_bytes = csv_size,
        rows = row_count,
        parquet_bytes = parquet_size,
        lookup_ms = plan.lookup_ms,
        receive_ms,
        csv_hash_ms,
        infer_ms = pass1.busy.as_millis(),
        infer_wait_ms,
        parse_ms = encoded.stats.parse.as_millis(),
        encode_ms = encoded.stats.encode.as_millis(),
        parquet_hash_ms = encoded.stats.hash.as_millis(),
        speculation_hit,
        speculation_wait_ms,
        pass2_ms,
        put_ms,
        register_ms,
        "ingest complete"
    );
    Ok(IngestResponse {
        manifest: registered.manifest,
        existing: registered.existing,
        row_count,
        parquet_key: key,
        parquet_size,
        schema: pass1.schema,
        warnings: pass1.warnings,
    })
}

/// Pass 1 again, over the spool file (the fallback of [`ingest`]). Blocking.
fn rerun_pass1(
    path: &std::path::Path,
    options: &CsvOptions,
    registered: Option<Schema>,
) -> Result<Pass1Output, IngestError> {
    let started = Instant::now();
    let file = std::fs::File::open(path).map_err(IngestError::Spool)?;
    let bytes_read = file.metadata().map_err(IngestError::Spool)?.len();
    let (schema, warnings) = match registered {
        None => {
            let inferred = lakehouse_convert::infer_schema(file, options)?;
            (inferred.schema, inferred.warnings)
        }
        Some(schema) => {
            let checked = lakehouse_convert::check_schema(file, options, &schema)?;
            (schema, checked.warnings)
        }
    };
    Ok(Pass1Output {
        schema,
        warnings,
        bytes_read,
        busy: started.elapsed(),
    })
}

/// Pass 2: encodes the spooled CSV to a Parquet spool file, parsing and encoding on two
/// threads. Blocking: runs on the blocking pool.
fn encode(
    upload: &Spooled,
    options: &CsvOptions,
    schema: &Schema,
    spool_dir: &std::path::Path,
) -> Result<Encoded, IngestError> {
    let csv = std::fs::File::open(upload.file.path()).map_err(IngestError::Spool)?;
    let parquet = spool::new_file(spool_dir, ".parquet")?;
    let out =
        std::io::BufWriter::with_capacity(1 << 20, parquet.reopen().map_err(IngestError::Spool)?);
    let (output, stats) = lakehouse_convert::write_parquet_pipelined(csv, options, schema, out)?;
    Ok(Encoded {
        parquet,
        output,
        stats,
    })
}
