//! `POST /ingest?name=&mode=&delimiter=&null_values=&encoding=&decimal_separator=`
//! `&date_order=&schema_evolution=&max_rejects=&dry_run=&partition_by=&key=` (docs/contract.md
//! sections 6, 11 and 14). Any
//! other parameter is a 400 `invalid_option` naming the closest known one
//! ([`lakehouse_server::options`]), before the body is read.

use crate::ingest::{Ingest, IngestRequest};
use crate::{AppState, IngestError, metrics, spool};
use axum::Json;
use axum::extract::State;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use futures::Stream;
use lakehouse_api::{
    CsvOptions, DatasetName, DateOrder, DecimalSeparator, ErrorBody, IngestMode, IngestResponse,
    SchemaEvolution,
};
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// Room for the multipart framing around the file when checking `Content-Length`, bytes.
const MULTIPART_OVERHEAD_BYTES: u64 = 64 * 1024;

/// Query parameters of `POST /ingest`, as sent (validated by [`IngestParams::validate`]).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IngestParams {
    /// Dataset name, `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (required; 400 `invalid_name`).
    #[param(required = true, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]
    pub(crate) name: Option<String>,
    /// `replace` (default: the version holds only the new object), `append`, `merge` (rows
    /// replace those with their `key`, new keys are added) or `delete` (the upload lists
    /// keys; their rows are removed), docs/contract.md section 11.
    #[param(pattern = "^(replace|append|merge|delete)$")]
    pub(crate) mode: Option<String>,
    /// `merge` and `delete`: the key columns, comma-separated (e.g. `id` or `region,id`).
    /// The first merge declares them; another key later is a 409 `key_mismatch`.
    pub(crate) key: Option<String>,
    /// One-byte field delimiter, `tab` for a tab; default the dataset's recorded one, else `,`.
    #[param(pattern = r#"^([\t !#-~]|tab|\\t)$"#)]
    pub(crate) delimiter: Option<String>,
    /// Comma-separated tokens read as null besides the empty field, e.g. `NA,NULL`.
    pub(crate) null_values: Option<String>,
    /// Text encoding: `utf-8` (default: the dataset's recorded one, else UTF-8),
    /// `windows-1252` (also `latin1`, `iso-8859-1`), `utf-16le`, `utf-16be`; a UTF-16 byte
    /// order mark selects UTF-16 whatever this says (docs/contract.md section 3).
    pub(crate) encoding: Option<String>,
    /// `.` (default: the dataset's recorded one, else `.`) or `,`: the decimal separator of
    /// float64 values (docs/contract.md section 14).
    #[param(pattern = "^[.,]$")]
    pub(crate) decimal_separator: Option<String>,
    /// `DMY` or `MDY`: how a new dataset's `P/Q/YYYY` columns are read (docs/contract.md section
    /// 14); without it the column itself settles the order when only one reading fits.
    #[param(pattern = "^(DMY|MDY)$")]
    pub(crate) date_order: Option<String>,
    /// `add_columns`: new columns after the registered ones make a new schema version
    /// instead of a 409 (docs/contract.md section 3, "Schema evolution").
    #[param(pattern = "^add_columns$")]
    pub(crate) schema_evolution: Option<String>,
    /// Records that may be set aside into a rejects object instead of failing the upload
    /// (docs/contract.md section 3, "Rejects"); default 0.
    #[param(value_type = Option<u64>, minimum = 0)]
    pub(crate) max_rejects: Option<String>,
    /// `true`: check the upload and answer what the ingest would, writing nothing (docs/contract.md
    /// section 6).
    #[param(value_type = Option<bool>)]
    pub(crate) dry_run: Option<String>,
    /// A new dataset's partitioning (docs/contract.md section 10): comma-separated Iceberg
    /// transforms of its columns, `col` or `identity(col)`, `year(col)`, `month(col)`,
    /// `day(col)`, `hour(col)`, `bucket(N,col)`, `truncate(W,col)`, e.g.
    /// `day(ts),bucket(16,id)`. Kept by every later upload; another one on an existing
    /// dataset is a 409 `partition_spec_mismatch`.
    pub(crate) partition_by: Option<String>,
}

/// The multipart body of `POST /ingest`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IngestUpload {
    /// The CSV (RFC 4180, first record the header; UTF-8 unless `encoding` or a UTF-16 byte
    /// order mark says otherwise; gzip or zstd compressed or not); other fields are ignored,
    /// a second `file` field is a 400.
    #[schema(format = Binary, content_media_type = "text/csv")]
    file: String,
}

impl IngestParams {
    /// Checks every option (each error names its option) into the pipeline's request.
    ///
    /// # Errors
    /// [`IngestError::MissingName`], [`IngestError::InvalidName`],
    /// [`IngestError::InvalidOption`].
    pub(crate) fn validate(self) -> Result<IngestRequest, IngestError> {
        let name = DatasetName::new(self.name.ok_or(IngestError::MissingName)?)?;
        let mode = match self.mode.as_deref() {
            None | Some("replace") => IngestMode::Replace,
            Some("append") => IngestMode::Append,
            Some("merge") => IngestMode::Merge,
            Some("delete") => IngestMode::Delete,
            Some(other) => {
                return Err(IngestError::InvalidOption {
                    option: "mode",
                    reason: format!("{other:?} is not `replace`, `append`, `merge` or `delete`"),
                });
            }
        };
        let delimiter = self
            .delimiter
            .map(|d| CsvOptions::parse_delimiter(&d))
            .transpose()
            .map_err(|reason| IngestError::InvalidOption {
                option: "delimiter",
                reason,
            })?;
        let null_values = self.null_values.map(|v| CsvOptions::parse_null_values(&v));
        let encoding = self
            .encoding
            .map(|label| lakehouse_convert::parse_encoding(&label))
            .transpose()
            .map_err(|reason| IngestError::InvalidOption {
                option: "encoding",
                reason,
            })?;
        let decimal_separator = self
            .decimal_separator
            .map(|v| DecimalSeparator::parse(&v))
            .transpose()
            .map_err(|reason| IngestError::InvalidOption {
                option: "decimal_separator",
                reason,
            })?;
        let date_order = self
            .date_order
            .map(|v| DateOrder::parse(&v))
            .transpose()
            .map_err(|reason| IngestError::InvalidOption {
                option: "date_order",
                reason,
            })?;
        let schema_evolution = self
            .schema_evolution
            .map(|v| SchemaEvolution::parse(&v))
            .transpose()
            .map_err(|reason| IngestError::InvalidOption {
                option: "schema_evolution",
                reason,
            })?;
        let max_rejects = self
            .max_rejects
            .as_deref()
            .map(parse_max_rejects)
            .transpose()?
            .unwrap_or(0);
        let key = parse_key(mode, self.key.as_deref(), max_rejects)?;
        let dry_run = match self.dry_run.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(IngestError::InvalidOption {
                    option: "dry_run",
                    reason: format!("{other:?} is not `true` or `false`"),
                });
            }
        };
        let partition_by = self
            .partition_by
            .map(|text| lakehouse_iceberg::PartitionBy::parse(&text))
            .transpose()
            .map_err(|e| IngestError::InvalidOption {
                option: "partition_by",
                reason: e.to_string(),
            })?;
        Ok(IngestRequest {
            name,
            mode,
            partition_by,
            delimiter,
            null_values,
            encoding,
            decimal_separator,
            date_order,
            schema_evolution,
            max_rejects,
            dry_run,
            key,
            filename: None,
            source_file: None,
        })
    }
}

/// `key`: comma-separated column names, each once, given exactly for `merge` and `delete`
/// (docs/contract.md section 11), which do not take `max_rejects` yet.
///
/// # Errors
/// [`IngestError::InvalidOption`] naming what is wrong.
pub(crate) fn parse_key(
    mode: IngestMode,
    key: Option<&str>,
    max_rejects: u64,
) -> Result<Option<Vec<String>>, IngestError> {
    if mode.is_keyed() && max_rejects > 0 {
        return Err(IngestError::InvalidOption {
            option: "max_rejects",
            reason: format!(
                "mode={} does not set records aside yet: send the upload without max_rejects",
                mode.as_str()
            ),
        });
    }
    let invalid = |reason: String| IngestError::InvalidOption {
        option: "key",
        reason,
    };
    let Some(text) = key else {
        if mode.is_keyed() {
            return Err(invalid(format!(
                "mode={} needs `key`, the key columns (e.g. key=id)",
                mode.as_str()
            )));
        }
        return Ok(None);
    };
    if !mode.is_keyed() {
        return Err(invalid(format!(
            "`key` is for mode=merge or mode=delete, not mode={}",
            mode.as_str()
        )));
    }
    let columns: Vec<String> = text.split(',').map(|c| c.trim().to_owned()).collect();
    if let Some(empty) = columns.iter().position(String::is_empty) {
        return Err(invalid(format!(
            "column {} of {text:?} is empty",
            empty + 1
        )));
    }
    for (i, column) in columns.iter().enumerate() {
        if columns[..i].contains(column) {
            return Err(invalid(format!("{column:?} is named twice")));
        }
    }
    Ok(Some(columns))
}

/// `max_rejects`: a non-negative integer written in decimal digits only (no sign, no
/// spaces), at most `u64::MAX`.
///
/// # Errors
/// [`IngestError::InvalidOption`] otherwise.
fn parse_max_rejects(value: &str) -> Result<u64, IngestError> {
    let invalid = |reason: String| IngestError::InvalidOption {
        option: "max_rejects",
        reason,
    };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("{value:?} is not a non-negative integer")));
    }
    value
        .parse::<u64>()
        .map_err(|_| invalid(format!("{value} is too large")))
}

/// `POST /ingest`: validates the query before reading the body, takes an ingest slot (503
/// `busy` when none is free), then drives one [`Ingest`]: begin (the dataset's manifest is
/// read and the verified pass 2 started before the body), receive the `file` field, finish. Its outcome and
/// duration are recorded in [`metrics::INGESTS_TOTAL`] and
/// [`metrics::INGEST_DURATION_SECONDS`].
#[utoipa::path(
    post,
    path = "/ingest",
    tag = "ingest",
    params(IngestParams),
    request_body(content = IngestUpload, content_type = "multipart/form-data"),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Ingested: a new version, or `existing: true` when the latest version already is this", body = IngestResponse),
        (status = 400, description = "`invalid_name`, `invalid_option` (an unknown parameter too: details.option, details.did_you_mean), `invalid_request` (a second `file` field), `missing_file`, `malformed_csv` (details.line), `empty_csv`, `invalid_header`, `limit_exceeded`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 408, description = "`request_timeout`: the upload stalled", body = ErrorBody),
        (status = 409, description = "`schema_drift` with the differences in details", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over max_upload_bytes, or (decompressed) over max_csv_bytes", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: the file is an xlsx (ZIP), PDF, PNG or Parquet file (details.format)", body = ErrorBody),
        (status = 502, description = "`upstream_error`: storaged or catalogd answered an error", body = ErrorBody),
        (status = 503, description = "`busy` (Retry-After), `unavailable`, `insufficient_storage`", body = ErrorBody),
    )
)]
pub async fn ingest_post(
    State(state): State<AppState>,
    query: Result<ApiQuery<IngestParams>, ApiError>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    let started = Instant::now();
    let answer = match query {
        Ok(ApiQuery(params)) => ingest(state, params, headers, multipart).await,
        Err(rejected) => Err(rejected),
    };
    let outcome = match &answer {
        Ok(Json(response)) if response.dry_run => "dry_run",
        Ok(Json(response)) if response.existing => "existing",
        Ok(Json(_)) => "ok",
        Err(error) => error.code().as_str(),
    };
    metrics::ingest_answered(outcome, started.elapsed());
    answer
}

async fn ingest(
    state: AppState,
    params: IngestParams,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<IngestResponse>, ApiError> {
    state.admit()?;
    let request = params.validate()?;
    let config = state.config();
    let _slot = state.inner.slots.clone().try_acquire_owned().map_err(|_| {
        metrics::busy_refused();
        IngestError::Busy {
            retry_after_secs: config.retry_after_secs,
        }
    })?;
    let _in_flight = metrics::InFlight::start();
    check_declared_length(&headers, config.max_upload_bytes)?;
    spool::check_free_space(
        &config.spool_dir,
        config.min_free_spool_bytes,
        config.retry_after_secs,
    )?;
    let idle = Duration::from_millis(config.upload_idle_timeout_ms);
    let mut multipart = multipart.map_err(|rejection| IngestError::MissingFile {
        reason: format!(
            "the body is not multipart/form-data ({})",
            rejection.body_text()
        ),
    })?;

    let ingest = Ingest::begin(&state, request).await?;
    // Fields before `file` are skipped.
    let received = loop {
        let field = match next_field(&mut multipart, idle).await {
            Ok(Some(field)) if field.name() == Some("file") => field,
            Ok(Some(_)) => continue,
            Ok(None) => {
                let missing = IngestError::MissingFile {
                    reason: "the multipart body has no field named `file`".into(),
                };
                return Err(ingest.abandon(missing).await.into());
            }
            Err(error) => return Err(ingest.abandon(error).await.into()),
        };
        let filename = field.file_name().map(str::to_owned);
        let chunks = Box::pin(with_idle_timeout(field, idle));
        break ingest.receive(chunks, filename).await?;
    };
    // Fields after `file` are skipped too, but a second `file` is refused (docs/contract.md
    // section 14): which one was meant cannot be known.
    loop {
        match next_field(&mut multipart, idle).await {
            Ok(Some(field)) if field.name() == Some("file") => {
                return Err(received.abandon(IngestError::SecondFile).await.into());
            }
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(error) => return Err(received.abandon(error).await.into()),
        }
    }
    let response = received.finish().await?;
    if !response.existing && !response.dry_run {
        crate::compact::after_commit(&state, &response.manifest);
    }
    Ok(Json(response))
}

/// 413 before any byte is read when `Content-Length` is past `max_upload_bytes` plus room
/// for the multipart framing.
fn check_declared_length(headers: &HeaderMap, max_upload_bytes: u64) -> Result<(), IngestError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_upload_bytes.saturating_add(MULTIPART_OVERHEAD_BYTES)) {
        return Err(IngestError::TooLarge {
            limit_bytes: max_upload_bytes,
        });
    }
    Ok(())
}

/// The next multipart field, `None` after the last.
///
/// # Errors
/// [`IngestError::IdleTimeout`], [`IngestError::BadUpload`].
async fn next_field(
    multipart: &mut Multipart,
    idle: Duration,
) -> Result<Option<Field<'_>>, IngestError> {
    tokio::time::timeout(idle, multipart.next_field())
        .await
        .map_err(|_| IngestError::IdleTimeout {
            idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
        })?
        .map_err(|e| IngestError::BadUpload {
            reason: e.body_text(),
        })
}

/// The chunks of a multipart field, failing with [`IngestError::IdleTimeout`] when the client
/// sends nothing for `idle`, and with [`IngestError::BadUpload`] when the multipart body
/// breaks (client gone, bad framing).
fn with_idle_timeout(
    field: Field<'_>,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, IngestError>> + '_ {
    futures::stream::unfold(Some(field), move |field| async move {
        let mut field = field?;
        match tokio::time::timeout(idle, field.chunk()).await {
            Ok(Ok(Some(chunk))) => Some((Ok(chunk), Some(field))),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => Some((
                Err(IngestError::BadUpload {
                    reason: e.body_text(),
                }),
                None,
            )),
            Err(_) => Some((
                Err(IngestError::IdleTimeout {
                    idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
                }),
                None,
            )),
        }
    })
}
