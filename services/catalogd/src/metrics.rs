//! catalogd's Prometheus families (docs/contract.md section 9), declared once: names, units and
//! help texts. Recorded where the event happens (the register handler and each garbage
//! collection run), served by `GET /metrics`.

use lakehouse_api::GcRunResponse;
use lakehouse_server::metrics::RequestMetrics;

/// Requests answered and their latency, by method, route template and status.
pub const HTTP: RequestMetrics = RequestMetrics {
    requests_total: "lakehouse_catalogd_http_requests_total",
    request_duration_seconds: "lakehouse_catalogd_http_request_duration_seconds",
};
/// Counter of dataset versions this process committed (a register answered with
/// `existing: false`).
pub const VERSIONS_COMMITTED_TOTAL: &str = "lakehouse_catalogd_versions_committed_total";
/// Histogram of the seconds a committed register took (validation, the version's record,
/// its Iceberg metadata), by `operation` (`replace`, `append`, `compact`): what docs/
/// contract.md section 10 keeps independent of the dataset's history.
pub const COMMIT_DURATION_SECONDS: &str = "lakehouse_catalogd_commit_duration_seconds";
/// Counter of registers refused 409 `schema_drift`.
pub const DRIFT_REFUSALS_TOTAL: &str = "lakehouse_catalogd_drift_refusals_total";
/// Counter of garbage collection runs (scheduled and `POST /admin/gc`), by `dry_run`
/// (`true`/`false`) and `result` (`ok`/`error`).
pub const GC_RUNS_TOTAL: &str = "lakehouse_catalogd_gc_runs_total";
/// Counter of objects garbage collection deleted.
pub const GC_DELETED_OBJECTS_TOTAL: &str = "lakehouse_catalogd_gc_deleted_objects_total";

/// Registers help texts and units (called once by [`lakehouse_server::metrics::install`]).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_histogram};
    HTTP.describe();
    describe_counter!(
        VERSIONS_COMMITTED_TOTAL,
        Unit::Count,
        "Dataset versions committed by this process"
    );
    describe_histogram!(
        COMMIT_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of committed registers, by operation"
    );
    describe_counter!(
        DRIFT_REFUSALS_TOTAL,
        Unit::Count,
        "Registers refused with 409 schema_drift"
    );
    describe_counter!(
        GC_RUNS_TOTAL,
        Unit::Count,
        "Garbage collection runs, by dry_run and result"
    );
    describe_counter!(
        GC_DELETED_OBJECTS_TOTAL,
        Unit::Count,
        "Objects deleted by garbage collection"
    );
    metrics::counter!(VERSIONS_COMMITTED_TOTAL).absolute(0);
    metrics::counter!(DRIFT_REFUSALS_TOTAL).absolute(0);
    metrics::counter!(GC_DELETED_OBJECTS_TOTAL).absolute(0);
}

/// Records a committed version: what made it and how long the register took.
pub fn version_committed(operation: Option<lakehouse_api::Operation>, took: std::time::Duration) {
    metrics::counter!(VERSIONS_COMMITTED_TOTAL).increment(1);
    let operation = operation.map_or("replace", |op| op.as_str());
    metrics::histogram!(COMMIT_DURATION_SECONDS, "operation" => operation)
        .record(took.as_secs_f64());
}

/// Records a register refused for schema drift.
pub fn drift_refused() {
    metrics::counter!(DRIFT_REFUSALS_TOTAL).increment(1);
}

/// Records a garbage collection run and, when it ran, what it deleted.
pub fn gc_ran<E>(dry_run: bool, result: &Result<GcRunResponse, E>) {
    let dry_run = if dry_run { "true" } else { "false" };
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::counter!(GC_RUNS_TOTAL, "dry_run" => dry_run, "result" => outcome).increment(1);
    if let Ok(report) = result {
        metrics::counter!(GC_DELETED_OBJECTS_TOTAL).increment(report.deleted.len() as u64);
    }
}
