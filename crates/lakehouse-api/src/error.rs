//! The one JSON error body of docs/contract.md section 6 and the table from code to HTTP status.

use http::StatusCode;
use serde::{Deserialize, Serialize};

/// Machine-readable error code, serialized in `snake_case` (docs/contract.md section 6).
///
/// [`ErrorCode::status`] is the single table from code to HTTP status; every service maps its
/// own error enum to one of these codes and never picks a status by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Dataset name does not match `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (400).
    InvalidName,
    /// The multipart body has no `file` field (400).
    MissingFile,
    /// The CSV is not RFC 4180 / UTF-8, or a record has the wrong field count (400).
    MalformedCsv,
    /// The CSV has no header record (400).
    EmptyCsv,
    /// A header name holds a control character U+0000..U+001F (400).
    InvalidHeader,
    /// The CSV exceeds a configured cap (columns, field or record size) (400).
    LimitExceeded,
    /// A query option (`mode`, `delimiter`, `null_values`, `limit`, ...) is invalid (400).
    InvalidOption,
    /// A request body or parameter that is not of the documented shape (400).
    InvalidRequest,
    /// An object key outside docs/contract.md section 6's key grammar (400).
    InvalidKey,
    /// A PUT body whose SHA-256 is not the one announced in `x-checksum-sha256` (400).
    DigestMismatch,
    /// A register request whose `schema_fingerprint` is not the one of its `schema` (400).
    FingerprintMismatch,
    /// A register request that names an object storaged does not hold, or holds with another
    /// size (400).
    InvalidObject,
    /// No bearer token, or one that is not valid (401). Says nothing of which part was
    /// wrong.
    Unauthorized,
    /// A valid bearer token without the scope the request needs (403).
    Forbidden,
    /// Unknown dataset, version or object key, or an unknown route (404).
    NotFound,
    /// A known route asked with a method it does not serve (405).
    MethodNotAllowed,
    /// The upload does not fit the dataset's registered schema (409).
    SchemaDrift,
    /// The request raced another commit that changed what it depends on, for example a
    /// compaction whose input files a replace removed (409).
    Conflict,
    /// An ingest whose `partition_by` differs from the one the dataset was made with (409,
    /// docs/contract.md section 10, "Partitioned datasets"); the message names both.
    PartitionSpecMismatch,
    /// A merge or delete naming other key columns than the ones the dataset's first merge
    /// declared (409, docs/contract.md section 11); the message names both.
    KeyMismatch,
    /// A merge or delete upload with a null in a key column (400, docs/contract.md section
    /// 11); the message names the line.
    NullKey,
    /// A merge or delete upload holding one key twice (400, docs/contract.md section 11);
    /// the message names both lines.
    DuplicateKey,
    /// A dataset version past retention (`retain_versions` / `retain_ms`): its manifest is
    /// kept as the audit trail but its objects may be garbage collected (410, docs/decisions.md, "Garbage collection and retention").
    Gone,
    /// A create-only write (`If-None-Match: *`) to a key that exists (412).
    AlreadyExists,
    /// The client stopped sending in the middle of its request (408).
    RequestTimeout,
    /// Upload larger than `max_upload_bytes` (413).
    PayloadTooLarge,
    /// A `Range` header that cannot be satisfied (416).
    InvalidRange,
    /// A body in a format the route does not take, named in the message: an xlsx, PDF, PNG
    /// or Parquet file sent as a CSV (415, docs/contract.md section 14).
    UnsupportedMediaType,
    /// The request's URI is longer than the server reads (414, docs/contract.md section 14).
    UriTooLong,
    /// The request's headers are more or larger than the server reads (431, docs/contract.md
    /// section 14).
    HeadersTooLarge,
    /// Too many requests in flight; retry after the `Retry-After` seconds (503).
    Busy,
    /// The service is shutting down, disabled, or its upstream does not answer (503).
    Unavailable,
    /// The spool disk has less free space than configured; retry later (503).
    InsufficientStorage,
    /// An upstream service answered with an error the caller cannot act on (502).
    UpstreamError,
    /// A bug or an I/O failure on this side (500).
    Internal,
    /// A code this build does not know (from a newer peer); treated as 500.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// HTTP status of this code: the one table of docs/contract.md section 6.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidName
            | ErrorCode::MissingFile
            | ErrorCode::MalformedCsv
            | ErrorCode::EmptyCsv
            | ErrorCode::InvalidHeader
            | ErrorCode::LimitExceeded
            | ErrorCode::InvalidOption
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidKey
            | ErrorCode::DigestMismatch
            | ErrorCode::FingerprintMismatch
            | ErrorCode::InvalidObject
            | ErrorCode::NullKey
            | ErrorCode::DuplicateKey => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::SchemaDrift
            | ErrorCode::Conflict
            | ErrorCode::PartitionSpecMismatch
            | ErrorCode::KeyMismatch => StatusCode::CONFLICT,
            ErrorCode::Gone => StatusCode::GONE,
            ErrorCode::AlreadyExists => StatusCode::PRECONDITION_FAILED,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::UriTooLong => StatusCode::URI_TOO_LONG,
            ErrorCode::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::Busy | ErrorCode::Unavailable | ErrorCode::InsufficientStorage => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether a peer service that answered this code (or a transport failure, which
    /// `lakehouse_client` reports as [`ErrorCode::Unavailable`]) is only unable to take the
    /// request now, so that the caller answers "unavailable, retry later" rather than "the
    /// upstream failed": the 503 codes `unavailable`, `busy` and `insufficient_storage`
    /// (docs/contract.md section 6). One arm per code, no catch-all: a new code is decided
    /// here. catalogd's store and ingestd's upstream mapping both classify with it.
    pub fn is_retryable_upstream(self) -> bool {
        match self {
            ErrorCode::Unavailable | ErrorCode::Busy | ErrorCode::InsufficientStorage => true,
            ErrorCode::InvalidName
            | ErrorCode::MissingFile
            | ErrorCode::MalformedCsv
            | ErrorCode::EmptyCsv
            | ErrorCode::InvalidHeader
            | ErrorCode::LimitExceeded
            | ErrorCode::InvalidOption
            | ErrorCode::InvalidRequest
            | ErrorCode::InvalidKey
            | ErrorCode::DigestMismatch
            | ErrorCode::FingerprintMismatch
            | ErrorCode::InvalidObject
            | ErrorCode::Unauthorized
            | ErrorCode::Forbidden
            | ErrorCode::NotFound
            | ErrorCode::MethodNotAllowed
            | ErrorCode::SchemaDrift
            | ErrorCode::Conflict
            | ErrorCode::PartitionSpecMismatch
            | ErrorCode::KeyMismatch
            | ErrorCode::NullKey
            | ErrorCode::DuplicateKey
            | ErrorCode::Gone
            | ErrorCode::AlreadyExists
            | ErrorCode::RequestTimeout
            | ErrorCode::PayloadTooLarge
            | ErrorCode::InvalidRange
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::UriTooLong
            | ErrorCode::HeadersTooLarge
            | ErrorCode::UpstreamError
            | ErrorCode::Internal
            | ErrorCode::Unknown => false,
        }
    }

    /// The `snake_case` wire name, as in the JSON body.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::MissingFile => "missing_file",
            ErrorCode::MalformedCsv => "malformed_csv",
            ErrorCode::EmptyCsv => "empty_csv",
            ErrorCode::InvalidHeader => "invalid_header",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::InvalidOption => "invalid_option",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::DigestMismatch => "digest_mismatch",
            ErrorCode::FingerprintMismatch => "fingerprint_mismatch",
            ErrorCode::InvalidObject => "invalid_object",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::SchemaDrift => "schema_drift",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PartitionSpecMismatch => "partition_spec_mismatch",
            ErrorCode::KeyMismatch => "key_mismatch",
            ErrorCode::NullKey => "null_key",
            ErrorCode::DuplicateKey => "duplicate_key",
            ErrorCode::Gone => "gone",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidRange => "invalid_range",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::Busy => "busy",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"error": {...}}`: the body of every non-2xx answer of the three services.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorInfo,
}

/// Inside [`ErrorBody`]: what went wrong and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorInfo {
    /// Machine-readable code; decides the HTTP status.
    pub code: ErrorCode,
    /// Human text: what went wrong and where (line, column, key, ...).
    pub message: String,
    /// Structured facts about the error, always a JSON object (`{}` when there are none):
    /// `line` and `column` for CSV errors, the diff for `schema_drift`, and so on.
    #[serde(default = "empty_object")]
    pub details: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

impl ErrorBody {
    /// An error body with empty `details`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_details(code, message, empty_object())
    }

    /// An error body with the given `details` (a JSON object; anything else is wrapped as
    /// `{"value": ...}` so the body keeps its shape).
    pub fn with_details(
        code: ErrorCode,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        let details = match details {
            serde_json::Value::Object(_) => details,
            serde_json::Value::Null => empty_object(),
            other => serde_json::json!({ "value": other }),
        };
        ErrorBody {
            error: ErrorInfo {
                code,
                message: message.into(),
                details,
            },
        }
    }
}

/// `error: source: source ...`: an error and its whole `source()` chain on one line, for logs,
/// HTTP messages and the CLI's one-line errors (the enums' own messages never repeat their
/// sources). A source whose text the line already holds (a wrapper that prints its cause, as
/// some transport errors do) is left out, so nothing is said twice. The one formatter of
/// error chains in the workspace.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(next) = source {
        let part = next.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = next.source();
    }
    text
}

#[cfg(test)]
mod tests {

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn error_chain_joins_sources_once_each() {
        let inner = Layer("connection refused", None);
        let middle = Layer(
            "error sending request: connection refused",
            Some(Box::new(inner)),
        );
        let outer = Layer("request to http://x failed", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "request to http://x failed: error sending request: connection refused"
        );
        assert_eq!(error_chain(&Layer("alone", None)), "alone");
    }
    use super::*;

    #[test]
    fn codes_serialize_as_their_wire_names() {
        for code in [
            ErrorCode::InvalidName,
            ErrorCode::MalformedCsv,
            ErrorCode::SchemaDrift,
            ErrorCode::AlreadyExists,
            ErrorCode::PayloadTooLarge,
            ErrorCode::UpstreamError,
            ErrorCode::Gone,
            ErrorCode::PartitionSpecMismatch,
            ErrorCode::KeyMismatch,
            ErrorCode::NullKey,
            ErrorCode::DuplicateKey,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, code);
        }
    }

    #[test]
    fn the_retryable_upstream_codes_are_the_503s() {
        for code in [
            ErrorCode::Unavailable,
            ErrorCode::Busy,
            ErrorCode::InsufficientStorage,
        ] {
            assert!(code.is_retryable_upstream(), "{code}");
            assert_eq!(code.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        for code in [
            ErrorCode::RequestTimeout,
            ErrorCode::Conflict,
            ErrorCode::UpstreamError,
            ErrorCode::Internal,
            ErrorCode::Unknown,
        ] {
            assert!(!code.is_retryable_upstream(), "{code}");
        }
    }

    #[test]
    fn unknown_code_from_a_newer_peer_is_a_500() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"code":"brand_new","message":"x"}}"#).unwrap();
        assert_eq!(body.error.code, ErrorCode::Unknown);
        assert_eq!(body.error.code.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.error.details.is_object());
    }

    #[test]
    fn error_table_gives_the_statuses_of_design_section_6() {
        assert_eq!(ErrorCode::SchemaDrift.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorCode::MalformedCsv.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            ErrorCode::PayloadTooLarge.status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ErrorCode::AlreadyExists.status(),
            StatusCode::PRECONDITION_FAILED
        );
        assert_eq!(ErrorCode::NotFound.status(), StatusCode::NOT_FOUND);
        assert_eq!(ErrorCode::Busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(ErrorCode::Gone.status(), StatusCode::GONE);
        assert_eq!(
            ErrorCode::PartitionSpecMismatch.status(),
            StatusCode::CONFLICT
        );
        assert_eq!(ErrorCode::KeyMismatch.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorCode::NullKey.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorCode::DuplicateKey.status(), StatusCode::BAD_REQUEST);
    }
}

/// The 401 and 403 of every route behind the bearer tokens, for the services' OpenAPI
/// documents (`responses(TokenRefusal, ..)`): 401 `unauthorized` when tokens are configured
/// and none or an unknown one was sent, 403 `forbidden` when the token lacks the route's
/// scope (read or write).
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
pub enum TokenRefusal {
    /// No token, or one the service does not know.
    #[response(
        status = 401,
        description = "`unauthorized`: tokens are configured and none or an unknown one was sent"
    )]
    Unauthorized(ErrorBody),
    /// A token without the route's scope.
    #[response(
        status = 403,
        description = "`forbidden`: the token lacks the route's scope"
    )]
    Forbidden(ErrorBody),
}
