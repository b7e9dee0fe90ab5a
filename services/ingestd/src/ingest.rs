//! The ingest pipeline behind `POST /ingest` (DESIGN.md sections 1, 3, 5 and 6).

use crate::spool::{self, Spooled};
use crate::{AppState, IngestError};
use lakehouse_api::{
    CsvOptions, DatasetName, INFERENCE_VERSION, IngestMode, IngestResponse, Manifest, ObjectKey,
    ObjectRef, RegisterVersionRequest, Schema, Sha256Digest, Source,
};
use lakehouse_client::PutOptions;
use std::time::Instant;
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
    /// (DESIGN.md section 3), else the defaults.
    fn options(&self, current: Option<&Manifest>) -> CsvOptions {
        let recorded = current.map(|m| m.options.clone()).unwrap_or_default();
        CsvOptions {
            delimiter: self.delimiter.unwrap_or(recorded.delimiter),
            null_values: self.null_values.clone().unwrap_or(recorded.null_values),
        }
    }
}

/// Result of the blocking conversion step.
struct Converted {
    schema: Schema,
    warnings: Vec<String>,
    row_count: u64,
    parquet: tempfile::NamedTempFile,
    parquet_size: u64,
    parquet_sha256: Sha256Digest,
    infer_ms: u128,
    encode_ms: u128,
}

/// Runs an ingest of the spooled upload: reads the dataset's current manifest, infers or
/// checks the schema, encodes Parquet, stores it and registers the version.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV and schema drift found before anything is written,
/// [`IngestError::Upstream`] when storaged or catalogd fail (a drift found by the register
/// call's race-safe gate included), [`IngestError::Spool`]/[`IngestError::Task`] for local
/// failures.
pub async fn ingest(
    state: &AppState,
    request: IngestRequest,
    upload: Spooled,
    receive_ms: u128,
) -> Result<IngestResponse, IngestError> {
    let inner = &state.inner;
    let started = Instant::now();
    let current = inner
        .catalogd
        .latest(&request.name)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "catalogd",
            source,
        })?;
    let lookup_ms = started.elapsed().as_millis();
    let options = request.options(current.as_ref());
    let registered = current.as_ref().map(|m| m.schema.clone());
    let spool_dir = inner.config.spool_dir.clone();
    let csv_size = upload.size_bytes;
    let csv_sha256 = upload.sha256.clone();

    let task_options = options.clone();
    let converted = tokio::task::spawn_blocking(move || {
        convert(&upload, &task_options, registered.as_ref(), &spool_dir)
    })
    .await
    .map_err(IngestError::Task)??;

    let fingerprint = converted.schema.fingerprint();
    let fp_hex = fingerprint.trim_start_matches("sha256:");
    let key = ObjectKey::parquet_object(&request.name, fp_hex, &converted.parquet_sha256);

    let put_started = Instant::now();
    let file = tokio::fs::File::open(converted.parquet.path())
        .await
        .map_err(IngestError::Spool)?;
    let body = reqwest::Body::wrap_stream(ReaderStream::with_capacity(file, PUT_CHUNK_BYTES));
    let put_options = PutOptions {
        create_only: true,
        sha256: Some(converted.parquet_sha256.clone()),
    };
    // 201 or 412: either way the identical bytes are stored under this content address.
    inner
        .storaged
        .put(&key, body, converted.parquet_size, &put_options)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "storaged",
            source,
        })?;
    let put_ms = put_started.elapsed().as_millis();

    let register_started = Instant::now();
    let register = RegisterVersionRequest {
        schema_fingerprint: fingerprint,
        schema: converted.schema.clone(),
        objects: vec![ObjectRef {
            key: key.clone(),
            size: converted.parquet_size,
            sha256: converted.parquet_sha256.clone(),
            row_count: converted.row_count,
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
        rows = converted.row_count,
        parquet_bytes = converted.parquet_size,
        receive_ms,
        lookup_ms,
        infer_ms = converted.infer_ms,
        encode_ms = converted.encode_ms,
        put_ms,
        register_ms,
        "ingest complete"
    );
    Ok(IngestResponse {
        manifest: registered.manifest,
        existing: registered.existing,
        row_count: converted.row_count,
        parquet_key: key,
        parquet_size: converted.parquet_size,
        schema: converted.schema,
        warnings: converted.warnings,
    })
}

/// Pass 1 (infer, or check against `registered`) and pass 2 (encode) over the spool file.
/// Blocking: runs on the blocking pool.
fn convert(
    upload: &Spooled,
    options: &CsvOptions,
    registered: Option<&Schema>,
    spool_dir: &std::path::Path,
) -> Result<Converted, IngestError> {
    let open = || std::fs::File::open(upload.file.path()).map_err(IngestError::Spool);
    let started = Instant::now();
    let (schema, warnings) = match registered {
        None => {
            let inferred = lakehouse_convert::infer_schema(open()?, options)?;
            (inferred.schema, inferred.warnings)
        }
        Some(schema) => {
            let checked = lakehouse_convert::check_schema(open()?, options, schema)?;
            (schema.clone(), checked.warnings)
        }
    };
    let infer_ms = started.elapsed().as_millis();

    let started = Instant::now();
    let parquet = spool::new_file(spool_dir, ".parquet")?;
    let out =
        std::io::BufWriter::with_capacity(1 << 20, parquet.reopen().map_err(IngestError::Spool)?);
    let written = lakehouse_convert::write_parquet(open()?, options, &schema, out)?;
    let encode_ms = started.elapsed().as_millis();
    Ok(Converted {
        schema,
        warnings,
        row_count: written.row_count,
        parquet,
        parquet_size: written.size_bytes,
        parquet_sha256: written.sha256,
        infer_ms,
        encode_ms,
    })
}
