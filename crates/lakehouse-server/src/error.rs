//! The JSON error response of docs/contract.md section 6, and extractors whose rejections use it.

use crate::options;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use lakehouse_api::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;

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

/// `axum::Json` whose rejection is a 400 `invalid_request` [`ApiError`], and strict (docs/contract.md
/// section 14): a top-level field `T` does not declare is a 400 `invalid_option` naming the
/// closest known one ([`crate::options`]).
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        if let (Some(known), serde_json::Value::Object(map)) = (options::field_names::<T>(), &value)
        {
            options::check_known(map.keys().map(String::as_str), known)?;
        }
        serde_json::from_value(value)
            .map(ApiJson)
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, format!("invalid body: {e}")))
    }
}

/// `axum::extract::Query` whose rejection is a 400 `invalid_option` [`ApiError`], and strict
/// (docs/contract.md section 14): a parameter `T` does not declare is a 400 `invalid_option` naming
/// the closest known one ([`crate::options`]).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some(known) = options::field_names::<T>() {
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|e| {
                ApiError::new(ErrorCode::InvalidOption, format!("invalid query: {e}"))
            })?;
            options::check_known(pairs.iter().map(|(name, _)| name.as_str()), known)?;
        }
        let axum::extract::Query(value) = axum::extract::Query::<T>::try_from_uri(&parts.uri)?;
        Ok(ApiQuery(value))
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
