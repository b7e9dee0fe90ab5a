//! storaged's Prometheus families (docs/contract.md section 9), declared once: names, units and
//! help texts. Recorded where the event happens (the object handlers and the store's
//! fsyncs), served by `GET /metrics`.

use lakehouse_server::metrics::RequestMetrics;
use std::time::Duration;

/// Requests answered and their latency, by method, route template and status.
pub const HTTP: RequestMetrics = RequestMetrics {
    requests_total: "lakehouse_storaged_http_requests_total",
    request_duration_seconds: "lakehouse_storaged_http_request_duration_seconds",
};
/// Counter of object bytes stored by `PUT` and by a content-addressed `POST` that created its
/// object.
pub const WRITTEN_BYTES_TOTAL: &str = "lakehouse_storaged_written_bytes_total";
/// Counter of object bytes sent in `GET` bodies (counted as they are streamed, so a client
/// that hangs up early counts only what it was sent).
pub const READ_BYTES_TOTAL: &str = "lakehouse_storaged_read_bytes_total";
/// Histogram of each `fsync` the local backend makes (files and directories), seconds.
pub const FSYNC_DURATION_SECONDS: &str = "lakehouse_storaged_fsync_duration_seconds";

/// Registers help texts and units (called once by [`lakehouse_server::metrics::install`]).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    HTTP.describe();
    describe_counter!(
        WRITTEN_BYTES_TOTAL,
        Unit::Bytes,
        "Object bytes stored by PUT and by content-addressed POSTs that created their object"
    );
    describe_counter!(
        READ_BYTES_TOTAL,
        Unit::Bytes,
        "Object bytes sent in GET bodies"
    );
    describe_histogram!(
        FSYNC_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of each fsync of the local backend (files and directories)"
    );
    metrics::counter!(WRITTEN_BYTES_TOTAL).absolute(0);
    metrics::counter!(READ_BYTES_TOTAL).absolute(0);
}

/// Records `bytes` stored.
pub fn written(bytes: u64) {
    metrics::counter!(WRITTEN_BYTES_TOTAL).increment(bytes);
}

/// Records `bytes` sent in a GET body.
pub fn read(bytes: u64) {
    metrics::counter!(READ_BYTES_TOTAL).increment(bytes);
}

/// Records one fsync that took `elapsed`.
pub fn fsync(elapsed: Duration) {
    metrics::histogram!(FSYNC_DURATION_SECONDS).record(elapsed.as_secs_f64());
}
