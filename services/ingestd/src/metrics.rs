//! ingestd's Prometheus families (docs/contract.md section 9), declared once: names, units and help
//! texts. Recorded where the event happens (the `POST /ingest` handler and the pipeline's
//! `ingest complete` point), served by `GET /metrics`.

use lakehouse_server::metrics::RequestMetrics;
use std::time::Duration;

/// Requests answered and their latency, by method, route template and status.
pub const HTTP: RequestMetrics = RequestMetrics {
    requests_total: "lakehouse_ingestd_http_requests_total",
    request_duration_seconds: "lakehouse_ingestd_http_request_duration_seconds",
};
/// Counter of `POST /ingest` requests by `outcome`: `ok` (a new version), `existing` (the
/// same content was already the latest version), `dry_run` (a `dry_run=true` that would
/// have succeeded; it counts no bytes or rows) or the error code of the answer
/// (`schema_drift`, `malformed_csv`, `busy`, ...; a closed set).
pub const INGESTS_TOTAL: &str = "lakehouse_ingestd_ingests_total";
/// Histogram of a `POST /ingest`'s duration from arrival to answer, seconds, by `outcome`.
pub const INGEST_DURATION_SECONDS: &str = "lakehouse_ingestd_ingest_duration_seconds";
/// Histogram of the time of each stage of a successful ingest, seconds, by `stage` (the
/// stages the `ingest complete` log line times: [`STAGES`]).
pub const INGEST_STAGE_DURATION_SECONDS: &str = "lakehouse_ingestd_ingest_stage_duration_seconds";
/// Counter of CSV bytes of successful ingests (`ok` and `existing`).
pub const CSV_BYTES_TOTAL: &str = "lakehouse_ingestd_ingested_csv_bytes_total";
/// Counter of Parquet bytes written by successful ingests (`ok` and `existing`).
pub const PARQUET_BYTES_TOTAL: &str = "lakehouse_ingestd_ingested_parquet_bytes_total";
/// Counter of rows of successful ingests (`ok` and `existing`).
pub const ROWS_TOTAL: &str = "lakehouse_ingestd_ingested_rows_total";
/// Counter of successful ingests (dry runs not counted) by how their schema and Parquet
/// were settled, `by`: `speculation` (the speculative pass proved its schema while the
/// upload arrived: the upload read once), `second_guess` (a new dataset's guess was refuted
/// and the second guess proven over the spool file: read twice) or `passes` (pass 1 and
/// pass 2 over the spool file) (docs/contract.md section 13).
pub const SCHEMA_SETTLED_TOTAL: &str = "lakehouse_ingestd_schema_settled_total";
/// Gauge of ingests holding a slot (`max_concurrent_ingests`) now.
pub const INGESTS_IN_FLIGHT: &str = "lakehouse_ingestd_ingests_in_flight";
/// Counter of ingests refused 503 `busy` because every slot was taken.
pub const BUSY_REFUSALS_TOTAL: &str = "lakehouse_ingestd_busy_refusals_total";
/// Counter of the files of loads (docs/contract.md section 12) by `outcome`: `loaded` (a
/// version made), `existing` (the dataset already held its Parquet object), `skipped`
/// (already loaded) or `failed`.
pub const LOAD_FILES_TOTAL: &str = "lakehouse_ingestd_load_files_total";
/// Counter of the bytes of those files, as listed by the source, by the same `outcome`.
pub const LOAD_BYTES_TOTAL: &str = "lakehouse_ingestd_load_bytes_total";
/// Counter of loads ended, by `state`: `done` or `failed`.
pub const LOADS_TOTAL: &str = "lakehouse_ingestd_loads_total";
/// Gauge of loads running now.
pub const LOADS_RUNNING: &str = "lakehouse_ingestd_loads_running";

/// Counter of compactions (docs/contract.md section 10) by `trigger` (`manual`: `POST
/// /datasets/{name}/compact`; `auto`: after a commit past `compact_after_files`) and
/// `outcome`: `ok` (versions made), `existing` (a racing compaction had committed the same
/// result), `nothing` (nothing to compact), `dry_run`, or the error code (`conflict`,
/// `not_found`, ...; a closed set).
pub const COMPACTIONS_TOTAL: &str = "lakehouse_ingestd_compactions_total";
/// Histogram of a compaction's duration, seconds, by `trigger` and `outcome`.
pub const COMPACTION_DURATION_SECONDS: &str = "lakehouse_ingestd_compaction_duration_seconds";
/// Counter of files replaced by committed compactions.
pub const COMPACTED_FILES_TOTAL: &str = "lakehouse_ingestd_compacted_files_total";
/// Counter of bytes of the files replaced by committed compactions (the bytes rewritten).
pub const COMPACTED_BYTES_TOTAL: &str = "lakehouse_ingestd_compacted_bytes_total";

/// The `stage` label values of [`INGEST_STAGE_DURATION_SECONDS`], the `<stage>_ms` fields of
/// the `ingest complete` log line: manifest lookup, upload receipt, CSV hashing, schema guess,
/// pass 1 (inference or check over the spool file), CSV parsing and Parquet encoding, the
/// wait for the speculative pass, the whole pass 2, storaged's answer to the Parquet POST and
/// catalogd's register.
pub const STAGES: [&str; 11] = [
    "lookup",
    "receive",
    "csv_hash",
    "guess",
    "infer",
    "parse",
    "encode",
    "speculation_wait",
    "pass2",
    "put",
    "register",
];

/// Registers help texts and units (called once by [`lakehouse_server::metrics::install`]).
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    HTTP.describe();
    describe_counter!(
        INGESTS_TOTAL,
        Unit::Count,
        "POST /ingest requests answered, by outcome (ok, existing, dry_run, or the error code)"
    );
    describe_histogram!(
        INGEST_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of POST /ingest from arrival to answer, by outcome"
    );
    describe_histogram!(
        INGEST_STAGE_DURATION_SECONDS,
        Unit::Seconds,
        "Time of each stage of a successful ingest, by stage"
    );
    describe_counter!(
        CSV_BYTES_TOTAL,
        Unit::Bytes,
        "CSV bytes of successful ingests (ok and existing)"
    );
    describe_counter!(
        PARQUET_BYTES_TOTAL,
        Unit::Bytes,
        "Parquet bytes written by successful ingests (ok and existing)"
    );
    describe_counter!(
        ROWS_TOTAL,
        Unit::Count,
        "Rows of successful ingests (ok and existing)"
    );
    describe_counter!(
        SCHEMA_SETTLED_TOTAL,
        Unit::Count,
        "Successful ingests by how the schema was settled (speculation, second_guess, passes)"
    );
    describe_gauge!(
        INGESTS_IN_FLIGHT,
        Unit::Count,
        "Ingests holding one of the max_concurrent_ingests slots now"
    );
    describe_counter!(
        BUSY_REFUSALS_TOTAL,
        Unit::Count,
        "Ingests refused with 503 busy because every slot was taken"
    );
    describe_counter!(
        LOAD_FILES_TOTAL,
        Unit::Count,
        "Files of loads, by outcome (loaded, existing, skipped, failed)"
    );
    describe_counter!(
        LOAD_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes of the files of loads as listed by the source, by outcome"
    );
    describe_counter!(
        LOADS_TOTAL,
        Unit::Count,
        "Loads ended, by state (done, failed)"
    );
    describe_gauge!(LOADS_RUNNING, Unit::Count, "Loads running now");
    metrics::gauge!(LOADS_RUNNING).set(0.0);
    describe_counter!(
        COMPACTIONS_TOTAL,
        Unit::Count,
        "Compactions by trigger (manual, auto) and outcome (ok, existing, nothing, dry_run, or the error code)"
    );
    describe_histogram!(
        COMPACTION_DURATION_SECONDS,
        Unit::Seconds,
        "Duration of a compaction, by trigger and outcome"
    );
    describe_counter!(
        COMPACTED_FILES_TOTAL,
        Unit::Count,
        "Files replaced by committed compactions"
    );
    describe_counter!(
        COMPACTED_BYTES_TOTAL,
        Unit::Bytes,
        "Bytes of the files replaced by committed compactions"
    );
    metrics::gauge!(INGESTS_IN_FLIGHT).set(0.0);
    metrics::counter!(BUSY_REFUSALS_TOTAL).absolute(0);
}

/// Records the end of a `POST /ingest` with `outcome` after `elapsed`.
pub fn ingest_answered(outcome: &'static str, elapsed: Duration) {
    metrics::counter!(INGESTS_TOTAL, "outcome" => outcome).increment(1);
    metrics::histogram!(INGEST_DURATION_SECONDS, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Records what a successful ingest read and wrote, and its stages' times in milliseconds
/// (in the order of [`STAGES`]).
pub fn ingest_succeeded(csv_bytes: u64, parquet_bytes: u64, rows: u64, stage_ms: [u128; 11]) {
    metrics::counter!(CSV_BYTES_TOTAL).increment(csv_bytes);
    metrics::counter!(PARQUET_BYTES_TOTAL).increment(parquet_bytes);
    metrics::counter!(ROWS_TOTAL).increment(rows);
    for (stage, ms) in STAGES.into_iter().zip(stage_ms) {
        metrics::histogram!(INGEST_STAGE_DURATION_SECONDS, "stage" => stage)
            .record(ms as f64 / 1000.0);
    }
}

/// Counts a successful ingest (not a dry run) under how its schema was settled (`by`:
/// `speculation`, `second_guess` or `passes`).
pub fn schema_settled(by: &'static str) {
    metrics::counter!(SCHEMA_SETTLED_TOTAL, "by" => by).increment(1);
}

/// Records a load's start.
pub fn load_started() {
    metrics::gauge!(LOADS_RUNNING).increment(1.0);
}

/// Records a load's end in `state` (`done` or `failed`).
pub fn load_ended(state: &'static str) {
    metrics::gauge!(LOADS_RUNNING).decrement(1.0);
    metrics::counter!(LOADS_TOTAL, "state" => state).increment(1);
}

/// Records one file of a load with `outcome` (`loaded`, `existing`, `skipped`, `failed`) and
/// its listed size.
pub fn load_file(outcome: &'static str, bytes: u64) {
    metrics::counter!(LOAD_FILES_TOTAL, "outcome" => outcome).increment(1);
    metrics::counter!(LOAD_BYTES_TOTAL, "outcome" => outcome).increment(bytes);
}

/// Records the end of a compaction started by `trigger` with `outcome` after `elapsed`.
pub fn compaction_answered(trigger: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(COMPACTIONS_TOTAL, "trigger" => trigger, "outcome" => outcome).increment(1);
    metrics::histogram!(COMPACTION_DURATION_SECONDS, "trigger" => trigger, "outcome" => outcome)
        .record(elapsed.as_secs_f64());
}

/// Records a committed compaction run that replaced `files` files of `bytes` bytes.
pub fn compaction_committed(files: u64, bytes: u64) {
    metrics::counter!(COMPACTED_FILES_TOTAL).increment(files);
    metrics::counter!(COMPACTED_BYTES_TOTAL).increment(bytes);
}

/// Records a 503 `busy` refusal.
pub fn busy_refused() {
    metrics::counter!(BUSY_REFUSALS_TOTAL).increment(1);
}

/// Counts one ingest in [`INGESTS_IN_FLIGHT`] while it lives.
#[derive(Debug)]
pub struct InFlight(());

impl InFlight {
    /// Adds one to the gauge; dropping the value takes it away.
    pub fn start() -> Self {
        metrics::gauge!(INGESTS_IN_FLIGHT).increment(1.0);
        InFlight(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(INGESTS_IN_FLIGHT).decrement(1.0);
    }
}
