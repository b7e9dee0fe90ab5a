//! The JSON error response of DESIGN.md section 6, and extractors whose rejections use it.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lakehouse_api::{ErrorBody, ErrorCode};

/// An error ready to become an HTTP response: status from [`ErrorCode::status`], body
/// [`ErrorBody`], plus `Retry-After` for 503s that set it.
///
/// Each service maps its own error enum into this with one exhaustive `match`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The body to send.
    pub body: ErrorBody,
    /// `Retry-After` in seconds, for `busy` and `unavailable`.
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with empty details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            body: ErrorBody::new(code, message),
            retry_after_secs: None,
        }
    }

    /// An error with details (a JSON object).
    pub fn with_details(
        code: ErrorCode,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        ApiError {
            body: ErrorBody::with_details(code, message, details),
            retry_after_secs: None,
        }
    }

    /// Adds a `Retry-After` header of `secs` seconds.
    pub fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.body.error.code
    }
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> Self {
        ApiError {
            body,
            retry_after_secs: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.body.error.code.status();
        if status.is_server_error() {
            tracing::warn!(code = %self.body.error.code, message = %self.body.error.message, "request failed");
        }
        let mut response = (status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(ErrorCode::InvalidOption, rejection.body_text())
    }
}

/// `axum::Json` whose rejection is a 400 `invalid_request` [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejection is a 400 `invalid_option` [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
