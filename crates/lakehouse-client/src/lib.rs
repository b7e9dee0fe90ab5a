//! HTTP clients of storaged, catalogd and ingestd (docs/contract.md section 6), used by catalogd,
//! ingestd and the `lakehouse` CLI.
//!
//! Every non-2xx answer is decoded back into the [`ErrorBody`] the server sent, so a caller
//! sees [`ClientError::Remote`] with the same [`ErrorCode`] the remote service chose and
//! cannot tell a remote error from a local one. Transport failures are
//! [`ClientError::Transport`] with code [`ErrorCode::Unavailable`].
//!
//! Not for: retries or timeouts policy beyond the connect timeout (callers decide).

mod catalogd;
mod ingestd;
mod storaged;
/// The trace context these clients send along (`lakehouse-trace`, re-exported so callers
/// that bind work to it need one import).
pub use lakehouse_trace as trace;

pub use catalogd::CatalogdClient;
pub use ingestd::{IngestOptions, IngestdClient};
pub use storaged::{ObjectHead, PutOptions, PutOutcome, StoragedClient};

use lakehouse_api::{ErrorBody, ErrorCode};
use std::time::Duration;

/// What went wrong talking to storaged, catalogd or ingestd.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The base URL given to a client's `new` does not parse.
    #[error("invalid base url {url:?}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
    },
    /// The request could not be sent or its answer not read (refused, reset, timed out).
    #[error("request to {url} failed")]
    Transport {
        /// Request URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error status; `body` is its JSON error body (or one made
    /// from the status when the body was not one).
    #[error("{url} answered {status} {}: {}", body.error.code, body.error.message)]
    Remote {
        /// Request URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The decoded error body.
        body: ErrorBody,
    },
    /// A 2xx answer whose body is not of the documented shape.
    #[error("unexpected answer from {url}")]
    Decode {
        /// Request URL.
        url: String,
        /// The decoding error.
        #[source]
        source: reqwest::Error,
    },
    /// A 2xx answer of another status than the request asks for (a whole object where a
    /// range was asked for: 200 instead of 206).
    #[error("{url} answered {status} where {expected} was expected")]
    UnexpectedStatus {
        /// Request URL.
        url: String,
        /// The status received.
        status: u16,
        /// The status the request asks for.
        expected: u16,
    },
}

impl ClientError {
    /// The error code a caller can act on: the remote code for [`ClientError::Remote`],
    /// [`ErrorCode::Unavailable`] for transport failures, [`ErrorCode::UpstreamError`] for
    /// undecodable or unexpected answers, [`ErrorCode::Internal`] for a bad base URL.
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::InvalidUrl { .. } => ErrorCode::Internal,
            ClientError::Transport { .. } => ErrorCode::Unavailable,
            ClientError::Remote { body, .. } => body.error.code,
            ClientError::Decode { .. } | ClientError::UnexpectedStatus { .. } => {
                ErrorCode::UpstreamError
            }
        }
    }

    /// True for a remote 404 `not_found`.
    pub fn is_not_found(&self) -> bool {
        self.code() == ErrorCode::NotFound
    }
}

/// Result alias of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Connect timeout of both clients.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Base URL, HTTP client and bearer token of one service; what both clients are built on.
#[derive(Debug, Clone)]
struct Endpoint {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Endpoint {
    fn new(base_url: &str) -> Result<Self> {
        Ok(Endpoint {
            http: http_client(),
            base: base_url_of(base_url)?,
            token: None,
        })
    }

    fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// `base` + `path` (which starts with `/`).
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /readyz`: Ok on a 2xx.
    async fn ready(&self) -> Result<()> {
        let url = self.url("/readyz");
        send(self.request(reqwest::Method::GET, &url), &url, &[])
            .await
            .map(drop)
    }

    /// `GET base + path`, its 2xx JSON body decoded.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let url = self.url(path);
        json(
            send(self.request(reqwest::Method::GET, &url), &url, &[]).await?,
            &url,
        )
        .await
    }

    /// A request to `url` with the bearer token and, inside a served request, its
    /// `x-request-id` and `traceparent` ([`trace::current`]).
    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, url);
        if let Some(context) = trace::current() {
            request = request
                .header(trace::TRACEPARENT_HEADER, context.traceparent())
                .header(trace::REQUEST_ID_HEADER, context.request_id);
        }
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
}

fn base_url_of(url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/');
    if (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && reqwest::Url::parse(trimmed).is_ok()
    {
        Ok(trimmed.to_owned())
    } else {
        Err(ClientError::InvalidUrl {
            url: url.to_owned(),
        })
    }
}

/// Sends `request`; returns the response when its status is 2xx (or in `accept`), else the
/// decoded error.
async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
    accept: &[u16],
) -> Result<reqwest::Response> {
    let response = request
        .send()
        .await
        .map_err(|source| ClientError::Transport {
            url: url.to_owned(),
            source,
        })?;
    let status = response.status();
    if status.is_success() || accept.contains(&status.as_u16()) {
        return Ok(response);
    }
    let bytes = response.bytes().await.unwrap_or_default();
    let body = serde_json::from_slice::<ErrorBody>(&bytes).unwrap_or_else(|_| {
        let code = match status.as_u16() {
            404 => ErrorCode::NotFound,
            412 => ErrorCode::AlreadyExists,
            413 => ErrorCode::PayloadTooLarge,
            503 => ErrorCode::Unavailable,
            _ => ErrorCode::UpstreamError,
        };
        ErrorBody::new(code, String::from_utf8_lossy(&bytes).into_owned())
    });
    Err(ClientError::Remote {
        url: url.to_owned(),
        status: status.as_u16(),
        body,
    })
}

async fn json<T: serde::de::DeserializeOwned>(response: reqwest::Response, url: &str) -> Result<T> {
    response.json().await.map_err(|source| ClientError::Decode {
        url: url.to_owned(),
        source,
    })
}
