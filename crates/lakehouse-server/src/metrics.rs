//! Prometheus metrics plumbing of the three services (docs/contract.md section 9, "Metrics").
//!
//! The `metrics` facade records; [`install`] sets the process-wide recorder of
//! `metrics-exporter-prometheus` (no HTTP listener of its own) and [`metrics_get`] renders
//! its text exposition format from the service's own `GET /metrics` route, behind the same
//! read-scope bearer tokens as the service's other lookups (docs/decisions.md).
//!
//! Each service declares its families once, in its own `metrics.rs` (names
//! `lakehouse_<service>_<name>_<unit>`, units, help text); this module only provides the
//! per-request family recorded by [`track_requests`].

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Histogram buckets of durations, seconds: 1 ms to 5 min.
pub const DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (histograms with
/// [`DURATION_BUCKETS_SECONDS`]) and calls `describe` once, which should register the
/// service's help texts and units. Calling it again does nothing; in a process where another
/// recorder was installed first, metrics are not recorded and `/metrics` answers an empty
/// page.
pub fn install(describe: fn()) {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(DURATION_BUCKETS_SECONDS)
            .ok()?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).ok()?;
        describe();
        Some(handle)
    });
}

/// `GET /metrics`: the Prometheus text exposition format (version 0.0.4) of every family
/// recorded so far in this process.
pub async fn metrics_get() -> Response {
    let body = HANDLE
        .get()
        .and_then(Option::as_ref)
        .map(|handle| {
            handle.run_upkeep();
            handle.render()
        })
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// The names of a service's per-request family (declared in its `metrics.rs`).
#[derive(Debug, Clone, Copy)]
pub struct RequestMetrics {
    /// Counter of requests answered, labels `method`, `route`, `status`.
    pub requests_total: &'static str,
    /// Histogram of the time to the response's head, seconds, labels `method`, `route`,
    /// `status`.
    pub request_duration_seconds: &'static str,
}

impl RequestMetrics {
    /// Registers the help texts and units of both families.
    pub fn describe(self) {
        metrics::describe_counter!(
            self.requests_total,
            metrics::Unit::Count,
            "HTTP requests answered, by method, route template and status"
        );
        metrics::describe_histogram!(
            self.request_duration_seconds,
            metrics::Unit::Seconds,
            "Time from a request's arrival to its response's head (a streamed body may take \
             longer), by method, route template and status"
        );
    }
}

/// Records `names` for every request `router` answers, labelled by method (`other` for
/// methods outside HTTP's standard ones), route template (axum's [`MatchedPath`], such as
/// `/objects/{*key}`; `unmatched` for requests no route took) and status code: every label
/// has a bounded set of values whatever clients send.
pub fn track_requests(router: Router, names: RequestMetrics) -> Router {
    router.layer(axum::middleware::from_fn_with_state(names, record_request))
}

async fn record_request(
    State(names): State<RequestMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let labels = [
        ("method", method.to_owned()),
        ("route", route),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!(names.requests_total, &labels).increment(1);
    metrics::histogram!(names.request_duration_seconds, &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}
