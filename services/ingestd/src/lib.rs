//! ingestd: the upload side of the lakehouse (docs/contract.md sections 1 and 6).
//!
//! `POST /ingest` streams a multipart CSV to a spool file (hashing it on the way), infers its
//! schema over the whole file (or checks it against the dataset's registered schema), writes
//! Snappy Parquet straight into a content-addressed POST to storaged (the key is the SHA-256
//! of the bytes) and registers the new version with catalogd; on a proven speculation all of
//! that happens in one read of the upload, while it arrives (docs/performance.md). ingestd holds no state of its own: the
//! spool directory only holds files of requests in flight.

mod compact;
mod error;
mod ingest;
mod loads;
pub mod metrics;
mod partition;
mod routes;
pub mod sources;
mod spool;
mod teach;
mod upload;

pub use error::{IngestError, StartError};

use lakehouse_api::DatasetName;
use lakehouse_client::{CatalogdClient, StoragedClient};
use lakehouse_server::auth::{Secret, Tokens};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The `[ingestd]` section of `config/lakehouse.toml` (docs/contract.md section 7); every key can be
/// overridden as `LAKEHOUSE_INGESTD__<KEY>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (logged as `listening on ...`).
    pub bind: String,
    /// Base URL of storaged.
    pub storaged_url: String,
    /// Base URL of catalogd.
    pub catalogd_url: String,
    /// Directory of the spool files (the uploaded CSV of each request in flight; the Parquet
    /// streams to storaged). Needs free space of the largest upload per concurrent ingest.
    pub spool_dir: PathBuf,
    /// Write spool files with `O_DIRECT` (Linux), past the page cache: on the reference
    /// machine (a VM) buffered writes took 1.7 s of CPU per GiB, direct ones 0.14 s
    /// (docs/performance.md). Where the file system refuses it (tmpfs), or `false`, the
    /// spool is written through the page cache, which suits a slow disk better.
    pub spool_direct_io: bool,
    /// Largest CSV accepted, in bytes; an upload past it is a 413 as soon as the cap is crossed.
    pub max_upload_bytes: u64,
    /// Most bytes of CSV text in one upload once decompressed (docs/contract.md section 3): a gzip
    /// or zstd upload that inflates past it is a 413 `payload_too_large` as soon as it
    /// crosses it, nothing stored (a decompression bomb costs no disk and no memory, only
    /// the CPU of inflating this much). Counts a plain upload's bytes too.
    pub max_csv_bytes: u64,
    /// Most columns a CSV may have; more is a 400 `limit_exceeded`.
    pub max_columns: u64,
    /// Most bytes in one CSV field; more is a 400 `limit_exceeded` with its line and column.
    pub max_field_bytes: u64,
    /// Most bytes in one CSV record as written; more is a 400 `limit_exceeded` with its line.
    /// Bounds the memory a single record can take while it is parsed.
    pub max_record_bytes: u64,
    /// Ingests in flight at once; one more is answered 503 `busy` at once. Each ingest uses
    /// about one CPU core and a bounded amount of memory (one row group).
    pub max_concurrent_ingests: usize,
    /// `Retry-After` of the 503 `busy` answer, seconds.
    pub retry_after_secs: u64,
    /// After SIGTERM, in-flight ingests get this long to finish, milliseconds.
    pub shutdown_grace_ms: u64,
    /// Internal service token presented to storaged and catalogd (empty: none).
    pub service_token: Secret,
    /// A connection that does not send its request headers within this is closed (slowloris
    /// guard), milliseconds.
    pub header_timeout_ms: u64,
    /// Kill switch: `true` makes `POST /ingest` answer 503 `unavailable` (lookups in catalogd
    /// and objects in storaged keep working). For emergencies and maintenance.
    pub disabled: bool,
    /// A client that sends no upload bytes for this long is cut off (408
    /// `request_timeout`), its spool removed and nothing written, milliseconds.
    pub upload_idle_timeout_ms: u64,
    /// storaged may leave a chunk of the streamed Parquet POST untaken, or the end of its
    /// body unanswered, this long before the request is dropped and the ingest fails (503
    /// `unavailable`, nothing registered), milliseconds. The POST has no whole-request
    /// timeout: it lasts as long as the upload.
    pub storaged_idle_timeout_ms: u64,
    /// An ingest is refused with 503 `insufficient_storage` before its body is read when the
    /// spool's file system has less free space than this, bytes. Leaves room for the uploads
    /// already in flight.
    pub min_free_spool_bytes: u64,
    /// Bearer tokens accepted on `POST /ingest` and `POST /datasets/{name}/compact`. Empty
    /// (the default) leaves ingestd open: keep it on loopback then.
    pub tokens: Vec<Secret>,
    /// The sources `POST /loads` may read (`[[ingestd.sources]]`, docs/contract.md section
    /// 12): nothing else is ever fetched. Opened at start (a bad entry stops the start).
    pub sources: Vec<sources::SourceConfig>,
    /// After a commit by this process leaves more than this many live files smaller than
    /// `compact_min_file_bytes` in the dataset's latest version, a compaction of it runs in
    /// the background (one per dataset at a time; docs/contract.md section 10). 0 turns
    /// automatic compaction off (`POST /datasets/{name}/compact` still works). Lower keeps
    /// engines opening fewer files, at the cost of rewriting more often.
    pub compact_after_files: u64,
    /// Live files smaller than this are compacted, bytes. Larger files are left as they are
    /// and end a run of small ones (rows keep their order).
    pub compact_min_file_bytes: u64,
    /// Size of the files a compaction writes, and past which an ingest's Parquet is split,
    /// bytes: a file is cut at the first row-group boundary at or past it. Larger files mean
    /// fewer files to open; smaller ones finer pruning and retries of less.
    pub target_file_bytes: u64,
    /// A partitioned upload holding more distinct partition values than this is refused
    /// (400 `limit_exceeded`, nothing stored; docs/contract.md section 10).
    pub max_partitions_per_upload: u64,
    /// Bytes of rows a partitioned upload keeps in memory, over all its partitions, before
    /// it writes the largest out as row groups (docs/contract.md section 10): bounds its
    /// memory whatever the number of partitions. Lower means smaller row groups when
    /// partitions are many; a quarter of it also bounds the first rows whose strings decide
    /// which columns get a dictionary (docs/decisions.md, "Partitioned writes").
    pub partition_buffer_bytes: u64,
    /// Memory a merge or delete may hold for its upload's keys, bytes (docs/contract.md
    /// section 11): each key's encoding twice plus about 96 bytes. Past it the keys are split
    /// by hash into up to 256 parts matched against the table in turn (its key columns read
    /// once per part); past 256 times it, a 400 `limit_exceeded`, nothing stored. The table's
    /// size does not count: its files are read one row group at a time.
    pub merge_key_memory_bytes: u64,
    /// Threads that parse one large upload (docs/contract.md section 13); 0, the default,
    /// means the machine's cores from 4 cores up, and one thread below (on 2 cores the
    /// second tokenizing pass costs more than the second thread gives: docs/performance.md),
    /// except for pass 1 (when neither guess of the verified pass was proven), which takes
    /// every core
    /// ([`Config::infer_threads`]). Uploads under 4 MiB are parsed on one. The Parquet bytes
    /// are the same at any count; memory grows by about 27 MiB per thread.
    pub convert_threads: usize,
}

impl Config {
    /// `convert_threads`, 0 resolved to the machine's cores when they are 4 or more, else 1.
    pub fn parse_threads(&self) -> usize {
        if self.convert_threads > 0 {
            return self.convert_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if cores >= 4 { cores } else { 1 }
    }

    /// Threads for a pass that only reads (the whole-file inference of pass 1, when
    /// neither guess of the verified pass was proven): `convert_threads`, 0 resolved to the machine's
    /// cores, 2 included. Nothing encodes meanwhile, so on 2 cores the second tokenizing
    /// pass costs less than the second thread gives (the 1 GiB bench file with a type
    /// refuted at its end: inference 1.67 s on one thread, 1.13 s on two;
    /// docs/performance.md). Rule: docs/contract.md section 13, "Pass 1".
    pub fn infer_threads(&self) -> usize {
        if self.convert_threads > 0 {
            return self.convert_threads;
        }
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8081".into(),
            storaged_url: "http://127.0.0.1:8083".into(),
            catalogd_url: "http://127.0.0.1:8082".into(),
            spool_dir: PathBuf::from("data/spool"),
            spool_direct_io: true,
            max_upload_bytes: 10 * 1024 * 1024 * 1024,
            max_csv_bytes: 100 * 1024 * 1024 * 1024,
            max_columns: 10_000,
            max_field_bytes: 16 * 1024 * 1024,
            max_record_bytes: 64 * 1024 * 1024,
            max_concurrent_ingests: 4,
            retry_after_secs: 1,
            shutdown_grace_ms: 60_000,
            header_timeout_ms: 30_000,
            disabled: false,
            upload_idle_timeout_ms: 60_000,
            storaged_idle_timeout_ms: 60_000,
            min_free_spool_bytes: 1024 * 1024 * 1024,
            service_token: Secret::default(),
            tokens: Vec::new(),
            sources: Vec::new(),
            compact_after_files: 64,
            compact_min_file_bytes: 32 * 1024 * 1024,
            target_file_bytes: 128 * 1024 * 1024,
            max_partitions_per_upload: 10_000,
            partition_buffer_bytes: 64 * 1024 * 1024,
            merge_key_memory_bytes: 128 * 1024 * 1024,
            convert_threads: 0,
        }
    }
}

/// Shared state of the handlers: config, upstream clients and the ingest slots.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    storaged: StoragedClient,
    catalogd: CatalogdClient,
    slots: Arc<Semaphore>,
    tokens: Tokens,
    /// Set once the shutdown signal arrived: new ingests are answered 503.
    draining: AtomicBool,
    /// The configured sources of loads.
    sources: sources::Sources,
    /// The loads of this process (docs/contract.md section 12).
    loads: loads::Loads,
    /// Datasets with a background compaction running in this process.
    compacting: Arc<Mutex<HashSet<DatasetName>>>,
}

/// A dataset marked as being compacted in the background ([`AppState::start_compacting`]);
/// dropping it clears the mark.
#[derive(Debug)]
struct Compacting {
    name: DatasetName,
    set: Arc<Mutex<HashSet<DatasetName>>>,
}

impl Drop for Compacting {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.name);
        }
    }
}

impl Inner {
    /// How long storaged may leave a streamed Parquet body untaken or its end unanswered
    /// (`storaged_idle_timeout_ms`).
    fn storaged_idle(&self) -> Duration {
        Duration::from_millis(self.config.storaged_idle_timeout_ms)
    }
}

impl AppState {
    /// Builds the state: creates `spool_dir` and removes spool files left by a crash.
    ///
    /// # Errors
    /// [`StartError::UpstreamUrl`] for an invalid `storaged_url` or `catalogd_url`,
    /// [`StartError::SpoolDir`] for a spool directory that cannot be created or read,
    /// [`StartError::Source`] for a `[[ingestd.sources]]` entry that cannot be opened.
    pub fn new(config: Config) -> Result<Self, StartError> {
        let upstream = |service| move |source| StartError::UpstreamUrl { service, source };
        let storaged = StoragedClient::new(&config.storaged_url)
            .map_err(upstream("storaged"))?
            .with_token(config.service_token.configured());
        let catalogd = CatalogdClient::new(&config.catalogd_url)
            .map_err(upstream("catalogd"))?
            .with_token(config.service_token.configured());
        let tokens = Tokens::new([], &config.tokens);
        spool::prepare_dir(&config.spool_dir).map_err(|source| StartError::SpoolDir {
            dir: config.spool_dir.clone(),
            source,
        })?;
        let sources = sources::Sources::open(&config.sources)?;
        let slots = Arc::new(Semaphore::new(config.max_concurrent_ingests.max(1)));
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                storaged,
                catalogd,
                slots,
                tokens,
                draining: AtomicBool::new(false),
                sources,
                loads: loads::Loads::default(),
                compacting: Arc::default(),
            }),
        })
    }

    fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The latest version of `name` from catalogd; `None` for a dataset it does not know.
    ///
    /// # Errors
    /// [`IngestError::Upstream`] when catalogd fails.
    async fn latest(
        &self,
        name: &lakehouse_api::DatasetName,
    ) -> Result<Option<lakehouse_api::Manifest>, IngestError> {
        self.inner
            .catalogd
            .latest(name)
            .await
            .map_err(|source| IngestError::Upstream {
                service: "catalogd",
                source,
            })
    }

    /// The size limits of a compaction, from the configuration.
    fn compact_limits(&self) -> compact::Limits {
        compact::Limits {
            min_file_bytes: self.inner.config.compact_min_file_bytes,
            target_file_bytes: self.inner.config.target_file_bytes,
        }
    }

    /// Marks `name` as compacted in the background, unless it already is (then `None`).
    fn start_compacting(&self, name: &DatasetName) -> Option<Compacting> {
        let mut set = self.inner.compacting.lock().ok()?;
        set.insert(name.clone()).then(|| Compacting {
            name: name.clone(),
            set: Arc::clone(&self.inner.compacting),
        })
    }

    /// Whether a new ingest may start: not while the kill switch is on or after the shutdown
    /// signal.
    ///
    /// # Errors
    /// [`IngestError::Unavailable`] saying which.
    fn admit(&self) -> Result<(), IngestError> {
        let retry_after_secs = self.inner.config.retry_after_secs;
        if self.inner.config.disabled {
            return Err(IngestError::Unavailable {
                reason: "disabled by configuration",
                retry_after_secs,
            });
        }
        if self.inner.draining.load(Ordering::SeqCst) {
            return Err(IngestError::Unavailable {
                reason: "shutting down",
                retry_after_secs,
            });
        }
        Ok(())
    }
}

/// The HTTP routes of docs/contract.md section 6 and `GET /metrics` (section 9) with the common
/// layers and the per-request metrics. Installs the process's metrics recorder on first use.
pub fn router(state: AppState) -> axum::Router {
    lakehouse_server::metrics::install(metrics::describe);
    lakehouse_server::metrics::track_requests(
        lakehouse_server::common_layers(routes::router(state)),
        metrics::HTTP,
    )
}

/// Serves `state` on `listener` until `shutdown` completes; in-flight ingests then get
/// `shutdown_grace_ms` to finish.
///
/// # Errors
/// The listener's I/O error.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = Duration::from_millis(state.config().shutdown_grace_ms);
    let draining = state.clone();
    let shutdown = async move {
        shutdown.await;
        draining.inner.draining.store(true, Ordering::SeqCst);
    };
    let options = lakehouse_server::ServeOptions {
        grace,
        header_read_timeout: Duration::from_millis(state.config().header_timeout_ms),
    };
    lakehouse_server::serve_with(listener, router(state), shutdown, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_equal_the_checked_in_config_file() {
        lakehouse_testkit::config::assert_defaults_equal_checked_in::<Config>("ingestd");
    }
}
