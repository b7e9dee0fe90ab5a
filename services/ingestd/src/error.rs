//! ingestd's error enum and its one mapping to the JSON error body (docs/contract.md section 6).

use lakehouse_api::{ErrorBody, ErrorCode, NameError, SchemaDriftDetails};
use lakehouse_client::ClientError;
use lakehouse_convert::ConvertError;
use lakehouse_server::ApiError;
use serde_json::json;

/// Why ingestd could not start ([`AppState::new`](crate::AppState::new)).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `storaged_url` or `catalogd_url` is not a usable base URL.
    #[error("invalid {service} url")]
    UpstreamUrl {
        /// `storaged` or `catalogd`.
        service: &'static str,
        /// What the client refused.
        #[source]
        source: ClientError,
    },
    /// A `[[ingestd.sources]]` entry cannot be opened (docs/contract.md section 12).
    #[error(transparent)]
    Source(#[from] crate::sources::SourceConfigError),
    /// The spool directory cannot be created, or its crash leftovers listed or removed.
    #[error("cannot prepare the spool directory {}", dir.display())]
    SpoolDir {
        /// The configured `spool_dir`.
        dir: std::path::PathBuf,
        /// The file system's error.
        #[source]
        source: std::io::Error,
    },
}

/// Everything an ingest can fail with.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// `name` is missing or not a valid dataset name.
    #[error("{0}")]
    InvalidName(#[from] NameError),
    /// The query has no `name` (docs/contract.md section 14).
    #[error("missing query parameter `name`: the dataset to ingest into, as in `?name=sales`")]
    MissingName,
    /// The multipart body has more than one `file` field (docs/contract.md section 14).
    #[error("the multipart body has a second field named `file`: send one file per ingest")]
    SecondFile,
    /// A query option is invalid.
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// The multipart body has no `file` field (or is not multipart at all).
    #[error("missing multipart field `file`: {reason}")]
    MissingFile {
        /// What was found instead.
        reason: String,
    },
    /// The multipart body is malformed or the client stopped sending.
    #[error("unreadable upload: {reason}")]
    BadUpload {
        /// What the multipart reader reported.
        reason: String,
    },
    /// The upload is larger than `max_upload_bytes`.
    #[error("upload larger than the limit of {limit_bytes} bytes")]
    TooLarge {
        /// The limit, bytes.
        limit_bytes: u64,
    },
    /// `disabled = true` (the kill switch), or the service is shutting down.
    #[error("ingest is unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: &'static str,
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The spool disk has less free space than `min_free_spool_bytes`.
    #[error("the spool disk has {available_bytes} bytes free, below the floor of {floor_bytes}")]
    InsufficientStorage {
        /// Free bytes on the spool's file system.
        available_bytes: u64,
        /// The configured floor.
        floor_bytes: u64,
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The client sent nothing for `upload_idle_timeout_ms`.
    #[error("no upload bytes for {idle_ms} ms; the upload was abandoned")]
    IdleTimeout {
        /// The idle limit, milliseconds.
        idle_ms: u64,
    },
    /// `max_concurrent_ingests` are in flight.
    #[error("too many ingests in flight; retry later")]
    Busy {
        /// Seconds to put in `Retry-After`.
        retry_after_secs: u64,
    },
    /// The CSV is bad.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The upload does not fit the dataset's registered schema (docs/contract.md section 3): 409
    /// `schema_drift` with `details`. `evolvable`: its only change is new columns at the
    /// end, which `schema_evolution=add_columns` would have accepted (the message says so).
    #[error(
        "upload does not conform to the registered schema{}",
        if *.evolvable { "; it only adds columns at the end, which schema_evolution=add_columns accepts" } else { "" }
    )]
    SchemaDrift {
        /// Added, removed, reordered and refused columns.
        details: Box<SchemaDriftDetails>,
        /// Whether `schema_evolution=add_columns` would have let the upload through.
        evolvable: bool,
    },
    /// The spool file could not be written or read.
    #[error("spool i/o failed")]
    Spool(#[source] std::io::Error),
    /// The conversion task died.
    #[error("conversion task failed")]
    Task(#[source] tokio::task::JoinError),
    /// storaged answered the Parquet upload with a size other than the bytes ingestd sent,
    /// or a key that is not the content address of its digest in the dataset's directory
    /// (a truncated body, a misrouted request): nothing is registered.
    #[error(
        "storaged stored {stored_key} ({stored_bytes} bytes), not {expected_key} ({sent_bytes} bytes sent)"
    )]
    StoredObject {
        /// The key the stored digest belongs under.
        expected_key: String,
        /// The key storaged reported.
        stored_key: String,
        /// Bytes sent.
        sent_bytes: u64,
        /// Bytes storaged reported.
        stored_bytes: u64,
    },
    /// storaged stopped taking the Parquet POST's body, or did not answer its end, for
    /// `storaged_idle_timeout_ms` (the request was dropped; nothing is registered).
    #[error("storaged took no bytes of the Parquet upload for {idle_ms} ms")]
    StoragedStalled {
        /// The idle limit, milliseconds.
        idle_ms: u64,
    },
    /// A load's source could not be listed or one of its files read (unreachable, refused
    /// credentials, gone): that file's error, or the load's when listing failed.
    #[error("source {source_name:?} failed at {path:?}: {reason}")]
    SourceFailed {
        /// The source's name.
        source_name: String,
        /// The file's path (empty for the listing).
        path: String,
        /// What the source answered.
        reason: String,
    },
    /// A source file changed between its listing and the end of its read (another ETag or
    /// size): nothing of it is committed (docs/contract.md section 12).
    #[error("source {source_name:?} file {path:?} changed: {reason}")]
    SourceChanged {
        /// The source's name.
        source_name: String,
        /// The file's path.
        path: String,
        /// What changed.
        reason: String,
    },
    /// A file of a `file://` source resolves outside the source's directory (a symlink): it
    /// is not read (docs/contract.md section 12).
    #[error(
        "source {source_name:?} file {path:?} resolves outside the source's directory; it was not read"
    )]
    SourceEscape {
        /// The source's name.
        source_name: String,
        /// The file's path as listed.
        path: String,
    },
    /// `GET /loads/{id}` of a load this process does not know.
    #[error(
        "no load {id:?} here (loads are kept in memory by the ingestd that ran them, until it restarts)"
    )]
    LoadNotFound {
        /// The id asked for.
        id: String,
    },
    /// `POST /datasets/{name}/compact` of a dataset catalogd does not know (404).
    #[error("dataset {name} not found")]
    DatasetNotFound {
        /// The dataset.
        name: lakehouse_api::DatasetName,
    },
    /// A compaction's commit was refused because the dataset changed under it (409
    /// `conflict`, docs/contract.md section 10): a file it rewrote is no longer live (a
    /// replace removed it) or the schema changed. Nothing of that run was committed; the
    /// runs committed before it are named.
    #[error(
        "compaction stopped: the dataset changed meanwhile ({reason}); nothing of this run was committed"
    )]
    CompactionConflict {
        /// catalogd's refusal.
        reason: String,
        /// Versions this compaction committed before (earlier runs), ascending.
        committed: Vec<u64>,
    },
    /// An ingest whose `partition_by` is not the one the dataset was made with (409
    /// `partition_spec_mismatch`, docs/contract.md section 10), found before the body is
    /// read.
    #[error(
        "dataset {name} is partitioned by {}, the request by {}; a dataset keeps the partition_by it was made with",
        lakehouse_api::partition_by_text(.recorded.as_deref()),
        lakehouse_api::partition_by_text(.requested.as_deref())
    )]
    PartitionSpecMismatch {
        /// The dataset.
        name: lakehouse_api::DatasetName,
        /// Its canonical `partition_by`, `None` when unpartitioned.
        recorded: Option<String>,
        /// The request's.
        requested: Option<String>,
    },
    /// A merge or delete naming other key columns than the dataset's recorded key (409
    /// `key_mismatch`, docs/contract.md section 11), found before anything is stored.
    #[error(
        "dataset {name} has the key ({}), the request names ({}); a dataset keeps the key its first merge declared",
        .recorded.join(", "),
        .requested.join(", ")
    )]
    KeyMismatch {
        /// The dataset.
        name: lakehouse_api::DatasetName,
        /// The recorded key columns.
        recorded: Vec<String>,
        /// The request's.
        requested: Vec<String>,
    },
    /// A merge or delete upload with a null key (400 `null_key`, docs/contract.md section
    /// 11): nothing was stored.
    #[error(
        "line {line}: key column {column:?} is empty (null); every row of a {mode} needs its key"
    )]
    NullKey {
        /// 1-based line the record starts on.
        line: u64,
        /// The key column.
        column: String,
        /// `merge` or `delete`.
        mode: &'static str,
    },
    /// A merge or delete upload holding one key twice (400 `duplicate_key`,
    /// docs/contract.md section 11): nothing was stored.
    #[error("lines {first_line} and {second_line} have the same key; a {mode} takes each key once")]
    DuplicateKey {
        /// 1-based line of the first record with the key.
        first_line: u64,
        /// 1-based line of the record that repeats it.
        second_line: u64,
        /// `merge` or `delete`.
        mode: &'static str,
    },
    /// A merge or delete that lost the commit race more times than it re-plans (409
    /// `conflict`, docs/contract.md section 11): nothing was committed; retry.
    #[error(
        "{name} kept changing while the {mode} was planned ({attempts} attempts); nothing was committed, retry"
    )]
    MergeConflict {
        /// The dataset.
        name: lakehouse_api::DatasetName,
        /// `merge` or `delete`.
        mode: &'static str,
        /// Plans made.
        attempts: u32,
    },
    /// storaged or catalogd answered with a record ingestd cannot use (a dataset's
    /// recorded `partition_by` that does not parse, docs/contract.md section 10): the
    /// upstream's state is at fault, not the request (502 `upstream_error`).
    #[error("{service} holds a record ingestd cannot use: {reason}")]
    CorruptRecord {
        /// `storaged` or `catalogd`.
        service: &'static str,
        /// What is wrong with it, naming the record.
        reason: String,
    },
    /// storaged or catalogd failed.
    #[error("{service} failed")]
    Upstream {
        /// `storaged` or `catalogd`.
        service: &'static str,
        /// What the client saw.
        #[source]
        source: ClientError,
    },
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        let message = error.to_string();
        match error {
            IngestError::InvalidName(_) | IngestError::MissingName => {
                ApiError::new(ErrorCode::InvalidName, message)
            }
            IngestError::SecondFile => ApiError::new(ErrorCode::InvalidRequest, message),
            IngestError::InvalidOption { option, .. } => ApiError::with_details(
                ErrorCode::InvalidOption,
                message,
                json!({ "option": option }),
            ),
            IngestError::MissingFile { .. } => ApiError::new(ErrorCode::MissingFile, message),
            IngestError::BadUpload { .. } => ApiError::new(ErrorCode::InvalidRequest, message),
            IngestError::TooLarge { limit_bytes } => ApiError::with_details(
                ErrorCode::PayloadTooLarge,
                message,
                json!({ "limit_bytes": limit_bytes }),
            ),
            IngestError::Busy { retry_after_secs } => {
                ApiError::new(ErrorCode::Busy, message).retry_after(retry_after_secs)
            }
            IngestError::Unavailable {
                retry_after_secs, ..
            } => ApiError::new(ErrorCode::Unavailable, message).retry_after(retry_after_secs),
            IngestError::InsufficientStorage {
                available_bytes,
                floor_bytes,
                retry_after_secs,
            } => ApiError::with_details(
                ErrorCode::InsufficientStorage,
                message,
                json!({ "available_bytes": available_bytes, "floor_bytes": floor_bytes }),
            )
            .retry_after(retry_after_secs),
            IngestError::IdleTimeout { idle_ms } => ApiError::with_details(
                ErrorCode::RequestTimeout,
                message,
                json!({ "idle_ms": idle_ms }),
            ),
            IngestError::Convert(convert) => convert_error(convert),
            IngestError::SchemaDrift { details, .. } => drift_error(message, &details),
            IngestError::Spool(source) => internal_error(message, source),
            IngestError::Task(source) => internal_error(message, source),
            IngestError::StoredObject {
                expected_key,
                stored_key,
                sent_bytes,
                stored_bytes,
            } => ApiError::with_details(
                ErrorCode::UpstreamError,
                message,
                json!({
                    "service": "storaged",
                    "expected_key": expected_key,
                    "stored_key": stored_key,
                    "sent_bytes": sent_bytes,
                    "stored_bytes": stored_bytes,
                }),
            ),
            IngestError::StoragedStalled { idle_ms } => ApiError::with_details(
                ErrorCode::Unavailable,
                message,
                json!({ "service": "storaged", "idle_ms": idle_ms }),
            )
            .retry_after(1),
            error @ (IngestError::SourceFailed { .. }
            | IngestError::SourceChanged { .. }
            | IngestError::SourceEscape { .. }
            | IngestError::LoadNotFound { .. }) => load_error(error, message),
            error @ (IngestError::DatasetNotFound { .. }
            | IngestError::CompactionConflict { .. }
            | IngestError::PartitionSpecMismatch { .. }
            | IngestError::KeyMismatch { .. }
            | IngestError::NullKey { .. }
            | IngestError::DuplicateKey { .. }
            | IngestError::MergeConflict { .. }) => dataset_error(error, message),
            IngestError::CorruptRecord { service, .. } => ApiError::with_details(
                ErrorCode::UpstreamError,
                message,
                json!({ "service": service }),
            ),
            IngestError::Upstream { service, source } => upstream_error(service, source),
        }
    }
}

/// The answers about a load's source (docs/contract.md section 12).
fn load_error(error: IngestError, message: String) -> ApiError {
    match error {
        IngestError::SourceFailed {
            source_name, path, ..
        } => ApiError::with_details(
            ErrorCode::UpstreamError,
            message,
            json!({ "service": "source", "source": source_name, "path": path }),
        ),
        IngestError::SourceChanged {
            source_name, path, ..
        } => ApiError::with_details(
            ErrorCode::Conflict,
            message,
            json!({ "source": source_name, "path": path }),
        ),
        IngestError::SourceEscape { source_name, path } => ApiError::with_details(
            ErrorCode::InvalidRequest,
            message,
            json!({ "source": source_name, "path": path }),
        ),
        IngestError::LoadNotFound { id } => {
            ApiError::with_details(ErrorCode::NotFound, message, json!({ "load_id": id }))
        }
        // `From<IngestError>` sends only the variants above here.
        other => internal_error(message, other),
    }
}

/// The answers about a dataset's state: not found, a commit that lost to another, a key or
/// partitioning other than the recorded one, a bad key (docs/contract.md sections 10, 11).
fn dataset_error(error: IngestError, message: String) -> ApiError {
    match error {
        IngestError::DatasetNotFound { name } => {
            ApiError::with_details(ErrorCode::NotFound, message, json!({ "name": name }))
        }
        IngestError::CompactionConflict { committed, .. } => ApiError::with_details(
            ErrorCode::Conflict,
            message,
            json!({ "committed_versions": committed }),
        ),
        IngestError::PartitionSpecMismatch {
            name,
            recorded,
            requested,
        } => ApiError::with_details(
            ErrorCode::PartitionSpecMismatch,
            message,
            json!({ "name": name, "recorded": recorded, "requested": requested }),
        ),
        IngestError::KeyMismatch {
            name,
            recorded,
            requested,
        } => ApiError::with_details(
            ErrorCode::KeyMismatch,
            message,
            json!({ "name": name, "recorded": recorded, "requested": requested }),
        ),
        IngestError::NullKey { line, column, .. } => ApiError::with_details(
            ErrorCode::NullKey,
            message,
            json!({ "line": line, "column": column }),
        ),
        IngestError::DuplicateKey {
            first_line,
            second_line,
            ..
        } => ApiError::with_details(
            ErrorCode::DuplicateKey,
            message,
            json!({ "lines": [first_line, second_line] }),
        ),
        IngestError::MergeConflict { name, attempts, .. } => ApiError::with_details(
            ErrorCode::Conflict,
            message,
            json!({ "name": name, "attempts": attempts }),
        ),
        // `From<IngestError>` sends only the variants above here.
        other => internal_error(message, other),
    }
}

impl IngestError {
    /// A compaction's conflict, naming the versions committed before it (`committed`);
    /// any other error as it is.
    pub fn after(self, committed: &[u64]) -> IngestError {
        match self {
            IngestError::CompactionConflict { reason, .. } => IngestError::CompactionConflict {
                reason,
                committed: committed.to_vec(),
            },
            other => other,
        }
    }
}

/// A 409 `schema_drift`, its details the diff (docs/contract.md section 3).
fn drift_error(message: String, details: &SchemaDriftDetails) -> ApiError {
    ApiError::with_details(
        ErrorCode::SchemaDrift,
        message,
        serde_json::to_value(details).unwrap_or_default(),
    )
}

/// A 500 `internal`: ingestd's own failure (`message`), with what caused it.
fn internal_error(message: String, source: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("{message}: {source}"))
}

fn convert_error(error: ConvertError) -> ApiError {
    let message = error.to_string();
    match error {
        ConvertError::EmptyCsv => ApiError::new(ErrorCode::EmptyCsv, message),
        ConvertError::UnsupportedFormat { format, .. } => ApiError::with_details(
            ErrorCode::UnsupportedMediaType,
            message,
            json!({ "format": format }),
        ),
        ConvertError::MalformedCsv { line, column, .. } => ApiError::with_details(
            ErrorCode::MalformedCsv,
            message,
            json!({ "line": line, "column": column }),
        ),
        ConvertError::LimitExceeded {
            limit,
            max,
            line,
            column,
        } => ApiError::with_details(
            ErrorCode::LimitExceeded,
            message,
            json!({ "limit": limit, "max": max, "line": line, "column": column }),
        ),
        ConvertError::TooManyPartitions { max } => ApiError::with_details(
            ErrorCode::LimitExceeded,
            message,
            json!({ "limit": "max_partitions_per_upload", "max": max }),
        ),
        ConvertError::InvalidHeader { column, .. } => ApiError::with_details(
            ErrorCode::InvalidHeader,
            message,
            json!({ "line": 1, "column": column }),
        ),
        ConvertError::TooLarge { limit, max } => ApiError::with_details(
            ErrorCode::PayloadTooLarge,
            message,
            json!({ "limit": limit, "limit_bytes": max }),
        ),
        ConvertError::SchemaDrift(details) => drift_error(message, &details),
        ConvertError::TooManyRejects { rejected, error } => {
            // The usual answer of the record past the limit, with the count in its details.
            let mut api = convert_error(*error);
            let details = &mut api.body.error.details;
            if !details.is_object() {
                *details = json!({});
            }
            details["rejected"] = json!(rejected);
            api.body.error.message = message;
            api
        }
        // ingestd names the lines of these before they reach here; rows as a fallback.
        ConvertError::NullKey { row, column } => ApiError::with_details(
            ErrorCode::NullKey,
            message,
            json!({ "row": row, "column": column }),
        ),
        ConvertError::DuplicateKey { first, second } => ApiError::with_details(
            ErrorCode::DuplicateKey,
            message,
            json!({ "rows": [first, second] }),
        ),
        ConvertError::MergeTooLarge { max, .. } => ApiError::with_details(
            ErrorCode::LimitExceeded,
            message,
            json!({ "limit": "merge_key_memory_bytes", "max": max }),
        ),
        ConvertError::Io(source) => ApiError::new(
            ErrorCode::Internal,
            format!("reading the spool failed: {source}"),
        ),
        ConvertError::Parquet(reason) => ApiError::new(
            ErrorCode::Internal,
            format!("parquet encoding failed: {reason}"),
        ),
    }
}

/// An upstream answer becomes ours when the client can act on it (a drift or conflict 409
/// from the catalog's race-safe gate); transport failures and the upstream's 503s
/// ([`ErrorCode::is_retryable_upstream`]) are 503 `unavailable`; anything else is our
/// upstream misbehaving: 502 `upstream_error` (a 408 included: ingestd sends whole bodies).
fn upstream_error(service: &'static str, error: ClientError) -> ApiError {
    let code = error.code();
    match code {
        ErrorCode::SchemaDrift
        | ErrorCode::Conflict
        | ErrorCode::PartitionSpecMismatch
        | ErrorCode::KeyMismatch => match error {
            ClientError::Remote { body, .. } => ApiError::from(body),
            other => ApiError::new(ErrorCode::UpstreamError, other.to_string()),
        },
        code if code.is_retryable_upstream() => ApiError::new(
            ErrorCode::Unavailable,
            format!("{service} is unavailable: {error}"),
        )
        .retry_after(1),
        _ => ApiError::from(ErrorBody::with_details(
            ErrorCode::UpstreamError,
            format!("{service} failed: {error}"),
            json!({ "service": service, "upstream_code": code }),
        )),
    }
}
