//! Serving a router on a bound listener with graceful shutdown.

use crate::ApiError;
use axum::Router;
use axum::http::{HeaderName, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lakehouse_api::ErrorCode;
use lakehouse_trace::{self as trace, TraceContext};
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Adds the layers every service has: an `x-request-id` (kept from the client or a new
/// UUID, echoed in the response), a W3C trace context (the client's `traceparent` trace id
/// kept, else a new one; [`lakehouse_trace`]) under which the handler runs, so that
/// the requests it makes to the other services carry both, a tracing span per request that
/// carries the request id and trace id, and JSON 404 and 405 answers for unknown routes and
/// methods.
pub fn common_layers(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "method not allowed on this route",
            )
        })
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let context = request.extensions().get::<TraceContext>();
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    uri = %request.uri().path(),
                    request_id = %context.map_or("-", |c| c.request_id.as_str()),
                    trace_id = %context.map_or("-", |c| c.trace_id.as_str()),
                )
            }),
        )
        .layer(axum::middleware::from_fn(trace_context))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(request_limits))
}

/// Longest request URI (path and query) a service reads, bytes; a longer one is a 414
/// `uri_too_long` (docs/contract.md section 14).
pub const MAX_URI_BYTES: usize = 16 * 1024;
/// Most request headers a service reads; more is a 431 `headers_too_large`.
pub const MAX_HEADERS: usize = 100;
/// Most bytes of request headers (names and values) a service reads; more is a 431
/// `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// What hyper itself parses before answering an empty 431: room above [`MAX_HEADERS`] so the
/// JSON answer of [`request_limits`] is the one a client sees.
const HYPER_MAX_HEADERS: usize = 1000;
/// hyper's read buffer, bytes: room above [`MAX_HEADER_BYTES`] and [`MAX_URI_BYTES`] for the
/// same reason. (A URI past 64 KiB, or a head past this, still gets hyper's own empty answer.)
const HYPER_MAX_BUF_BYTES: usize = 1024 * 1024;

/// The server's own limits on a request's head, answered with the JSON error body: 414
/// `uri_too_long` past [`MAX_URI_BYTES`], 431 `headers_too_large` past [`MAX_HEADERS`] or
/// [`MAX_HEADER_BYTES`] (docs/contract.md section 14).
async fn request_limits(request: axum::extract::Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    let uri_bytes = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return ApiError::new(
            ErrorCode::UriTooLong,
            format!("the request URI is {uri_bytes} bytes; the limit is {MAX_URI_BYTES}"),
        )
        .into_response();
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return ApiError::new(
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} headers of {header_bytes} bytes; the limits are \
                 {MAX_HEADERS} headers and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        )
        .into_response();
    }
    next.run(request).await
}

/// Builds the request's [`TraceContext`], stores it in the request's extensions (for the
/// span) and runs the rest of the stack inside [`trace::scope`].
async fn trace_context(mut request: axum::extract::Request, next: Next) -> Response {
    let context = {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
        TraceContext::new(
            header(trace::REQUEST_ID_HEADER).unwrap_or("-"),
            header(trace::TRACEPARENT_HEADER),
        )
    };
    request.extensions_mut().insert(context.clone());
    trace::scope(context, next.run(request)).await
}

/// `GET /healthz`: 200 `{"status":"ok"}` while the process runs.
pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// How long a client may take to send a request's headers before its connection is closed
/// (a slowloris guard), unless [`ServeOptions::header_read_timeout`] says otherwise.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection-level settings of [`serve_with`].
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// After the shutdown signal, in-flight requests get this long before `serve` returns.
    pub grace: Duration,
    /// A connection whose request headers do not arrive within this is closed.
    pub header_read_timeout: Duration,
}

/// [`serve_with`] with `grace` and [`DEFAULT_HEADER_READ_TIMEOUT`].
///
/// # Errors
/// As [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let options = ServeOptions {
        grace,
        header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
    };
    serve_with(listener, router, shutdown, options).await
}

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish for at most `options.grace`, and returns.
///
/// Each connection gets `options.header_read_timeout` to send its request headers. Logs
/// `listening on <ip>:<port>` (docs/contract.md section 7) once the listener is serving, so a
/// service bound to port 0 can be found by whoever started it.
///
/// # Errors
/// The listener's I/O error when its address cannot be read. Failed accepts (for example
/// out of file descriptors) are logged and retried, not returned.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!("listening on {addr}");
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(error) => {
                        tracing::warn!(%error, "accept failed; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(options.header_read_timeout)
                    .max_headers(HYPER_MAX_HEADERS)
                    .max_buf_size(HYPER_MAX_BUF_BYTES);
                let connection = builder
                    .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutdown requested; finishing in-flight requests");
    if tokio::time::timeout(options.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_ms = options.grace.as_millis() as u64,
            "grace period over; exiting"
        );
    }
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
