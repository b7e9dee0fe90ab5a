//! storaged's one error enum and its one mapping to the JSON error response
//! (docs/contract.md section 6).

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lakehouse_api::ErrorCode;
use lakehouse_server::ApiError;
use serde_json::json;

/// `Result` with a [`StoragedError`].
pub type Result<T, E = StoragedError> = std::result::Result<T, E>;

/// Everything a storaged request or startup can fail with, as a caller can act on it.
///
/// [`StoragedError::to_api_error`] is the single table from variant to (HTTP status, error
/// code); it is an exhaustive `match`, so a new variant cannot silently become a 500.
#[derive(Debug, thiserror::Error)]
pub enum StoragedError {
    /// The key breaks the key grammar of docs/contract.md section 6, or lies under storaged's private
    /// staging prefix (400 `invalid_key`).
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The refused key, as received (after percent-decoding).
        key: String,
        /// Which rule it broke.
        reason: String,
    },
    /// On the local backend, the key's file would have to be a directory or live below a file
    /// (`a` and `a/b` cannot both exist there) (400 `invalid_key`).
    #[error("object key {key:?} collides with an existing key's path on the local backend")]
    KeyPathConflict {
        /// The refused key.
        key: String,
    },
    /// A header of the request is malformed or unsupported (400 `invalid_request`).
    #[error("invalid header {header}: {reason}")]
    InvalidHeader {
        /// Header name.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A query option is out of range (400 `invalid_option`).
    #[error("invalid option {option}: {reason}")]
    InvalidOption {
        /// Query parameter name.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The request body could not be read to its end (client gone, broken framing)
    /// (400 `invalid_request`).
    #[error("request body could not be read")]
    BodyRead {
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The body's SHA-256 is not the one of `x-checksum-sha256`; nothing was stored
    /// (400 `digest_mismatch`).
    #[error("body sha-256 {actual} does not match x-checksum-sha256 {expected}")]
    DigestMismatch {
        /// Digest announced by the client.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// No object under this key (404 `not_found`).
    #[error("no object under key {key:?}")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// A create-only PUT (`If-None-Match: *`) found the key taken (412 `already_exists`).
    #[error("an object already exists under key {key:?}")]
    AlreadyExists {
        /// The key asked for.
        key: String,
    },
    /// The `Range` header cannot be satisfied for an object of `size` bytes
    /// (416 `invalid_range`, with `Content-Range: bytes */<size>`).
    #[error("range {range:?} cannot be satisfied for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// The `Range` header as received.
        range: String,
        /// The object's size in bytes.
        size: u64,
    },
    /// The backend does not answer its readiness probe (503 `unavailable`).
    #[error("storage backend is not ready")]
    NotReady {
        /// Why the probe failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The object store failed in a way the client cannot fix (500 `internal`).
    #[error("storage backend failed to {op} {key:?}")]
    Backend {
        /// The operation (`put`, `get`, `rename`, ...).
        op: &'static str,
        /// The key or path involved.
        key: String,
        /// The object_store error.
        #[source]
        source: object_store::Error,
    },
    /// A local file-system operation failed (fsync, directory creation) (500 `internal`).
    #[error("failed to {op} {path:?}")]
    Io {
        /// The operation.
        op: &'static str,
        /// The path involved.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl StoragedError {
    /// The one table from error to (code, message, details) of docs/contract.md section 6; the
    /// status follows from the code ([`ErrorCode::status`]).
    pub fn to_api_error(&self) -> ApiError {
        let message = self.to_string();
        match self {
            StoragedError::InvalidKey { key, reason } => ApiError::with_details(
                ErrorCode::InvalidKey,
                message,
                json!({ "key": key, "reason": reason }),
            ),
            StoragedError::KeyPathConflict { key } => ApiError::with_details(
                ErrorCode::InvalidKey,
                message,
                json!({ "key": key, "reason": "path conflict on the local backend" }),
            ),
            StoragedError::InvalidHeader { header, reason } => ApiError::with_details(
                ErrorCode::InvalidRequest,
                message,
                json!({ "header": header, "reason": reason }),
            ),
            StoragedError::InvalidOption { option, reason } => ApiError::with_details(
                ErrorCode::InvalidOption,
                message,
                json!({ "option": option, "reason": reason }),
            ),
            StoragedError::BodyRead { .. } => ApiError::new(ErrorCode::InvalidRequest, message),
            StoragedError::DigestMismatch { expected, actual } => ApiError::with_details(
                ErrorCode::DigestMismatch,
                message,
                json!({ "expected": expected, "actual": actual }),
            ),
            StoragedError::NotFound { key } => {
                ApiError::with_details(ErrorCode::NotFound, message, json!({ "key": key }))
            }
            StoragedError::AlreadyExists { key } => {
                ApiError::with_details(ErrorCode::AlreadyExists, message, json!({ "key": key }))
            }
            StoragedError::RangeNotSatisfiable { range, size } => ApiError::with_details(
                ErrorCode::InvalidRange,
                message,
                json!({ "range": range, "size": size }),
            ),
            StoragedError::NotReady { .. } => {
                ApiError::new(ErrorCode::Unavailable, message).retry_after(1)
            }
            StoragedError::Backend { .. } | StoragedError::Io { .. } => {
                ApiError::new(ErrorCode::Internal, message)
            }
        }
    }
}

impl IntoResponse for StoragedError {
    fn into_response(self) -> Response {
        let api = self.to_api_error();
        if api.code().status().is_server_error() {
            // The response says what failed; the log keeps the whole cause chain.
            tracing::error!(error = %lakehouse_api::error_chain(&self), "request failed");
        }
        let mut response = api.into_response();
        if let StoragedError::RangeNotSatisfiable { size, .. } = &self
            && let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}"))
        {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn client_errors_are_4xx_and_range_errors_carry_the_size() {
        let cases = [
            (
                StoragedError::InvalidKey {
                    key: "..".into(),
                    reason: "dot".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                StoragedError::DigestMismatch {
                    expected: "a".into(),
                    actual: "b".into(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                StoragedError::AlreadyExists { key: "k".into() },
                StatusCode::PRECONDITION_FAILED,
            ),
            (
                StoragedError::NotFound { key: "k".into() },
                StatusCode::NOT_FOUND,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.into_response().status(), status);
        }
        let response = StoragedError::RangeNotSatisfiable {
            range: "bytes=9-".into(),
            size: 3,
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */3");
    }
}
