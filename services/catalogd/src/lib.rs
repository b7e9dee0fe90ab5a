//! catalogd: versioned manifests and the atomic schema gate of the lakehouse (docs/contract.md
//! section 6), as a library with a thin `main`.
//!
//! [`router`] serves `/datasets` and `/admin/gc` over a [`Catalog`]; [`run`] serves it on a
//! bound listener until a shutdown future completes, with scheduled garbage collection
//! beside it; [`open_catalog`] rebuilds the index from storaged at start, waiting for
//! storaged to answer. The commit protocol itself lives in
//! `lakehouse-catalog`; this crate is HTTP, configuration and the storaged-backed store.

pub mod error;
pub mod metrics;
mod openapi;
pub mod routes;
pub mod store;
pub mod ui;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lakehouse_api::{ErrorCode, GcRunResponse, StorageLocation};
use lakehouse_catalog::{
    Catalog, CatalogError, GcOptions, ManifestStore, RetentionPolicy, StoreError, error_chain,
};
use lakehouse_client::ClientError;
use lakehouse_server::ApiError;
use lakehouse_server::auth::{Secret, Tokens, require_token};
use lakehouse_server::request_timeout;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::StoragedStore;
use tokio::net::TcpListener;

/// `[catalogd]` of `config/lakehouse.toml` (docs/contract.md section 7); every key can also come
/// from `LAKEHOUSE_CATALOGD__<KEY>`. The defaults equal the checked-in file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on, `ip:port`; port 0 picks a free port (logged as
    /// `listening on <ip>:<port>`).
    pub bind: String,
    /// Base URL of storaged, where the manifests live.
    pub storaged_url: String,
    /// After SIGTERM, in-flight requests get this many milliseconds to finish.
    pub shutdown_grace_ms: u64,
    /// A request that takes longer than this many milliseconds is answered 503
    /// `unavailable` (a register cut short is safe to retry: it is idempotent).
    pub request_timeout_ms: u64,
    /// A connection that does not send its request headers within this is closed (slowloris
    /// guard), milliseconds. Default 30000.
    pub header_timeout_ms: u64,
    /// Every this many milliseconds catalogd loads the manifests other replicas wrote (new
    /// versions and new datasets), so that `GET /datasets` on any replica is at most this
    /// stale. Lookups by name and registers read the store first anyway. Costs one
    /// delimited LIST of `_catalog/datasets/` and one GET per dataset per period (docs/
    /// contract.md section 10); 0 disables the periodic refresh. Default 2000.
    pub refresh_interval_ms: u64,
    /// Internal service token: presented to storaged, and accepted here with write scope
    /// (ingestd presents it). Empty (the default) sends none.
    pub service_token: Secret,
    /// Bearer tokens allowed to make lookups (`GET`).
    pub read_tokens: Vec<Secret>,
    /// Bearer tokens allowed to make lookups and registers. With no token configured at all
    /// (the default), catalogd is open: keep it on loopback then.
    pub write_tokens: Vec<Secret>,
    /// Garbage collection keeps an unreferenced object under `datasets/` until its
    /// `last_modified` is this many milliseconds old, so an ingest that has stored its
    /// object but not registered it yet (or a slow multipart upload, whose `last_modified`
    /// is its start) never loses it. Longer only delays reclaiming space; shorter than the
    /// slowest ingest's upload + register time risks failing that ingest (never a
    /// registered version). Default 6 hours.
    pub gc_grace_ms: u64,
    /// Milliseconds between scheduled garbage collection runs (the first one an interval
    /// after start); 0 disables the schedule, leaving `POST /admin/gc`. Default 1 hour.
    pub gc_interval_ms: u64,
    /// Retention: keep the last this many versions of each dataset; 0 = this rule is off.
    /// The latest version is always kept. Default 0.
    pub retain_versions: u64,
    /// Retention: keep versions younger than this many milliseconds (by `created_at`); 0 =
    /// this rule is off. With both rules on, a version is kept when either keeps it; with
    /// both off (the default) every version is kept. Older versions answer 410 `gone` and
    /// their objects are collected.
    pub retain_ms: u64,
    /// The one namespace of the Iceberg REST catalog under `/iceberg`: every dataset is the
    /// table `<iceberg_namespace>.<name>` (docs/contract.md section 8). Default `lakehouse`.
    pub iceberg_namespace: String,
    /// A commit whose Iceberg manifest list would name more manifests than this merges them
    /// (Iceberg's `commit.manifest.min-count-to-merge`; docs/contract.md section 10): more
    /// means cheaper commits, fewer means fewer files for engines to open. Default 100.
    pub manifest_merge_count: usize,
    /// The Iceberg metadata JSON lists at most this many of the latest retained versions as
    /// snapshots (with their `v<N>` tags); older retained versions stay readable through the
    /// catalog API (docs/contract.md section 10). The JSON is rewritten by every commit, so
    /// its size is a cost of every commit. Default 1000.
    pub iceberg_max_snapshots: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8082".into(),
            storaged_url: "http://127.0.0.1:8083".into(),
            shutdown_grace_ms: 30_000,
            request_timeout_ms: 30_000,
            header_timeout_ms: 30_000,
            refresh_interval_ms: 2_000,
            service_token: Secret::default(),
            read_tokens: Vec::new(),
            write_tokens: Vec::new(),
            gc_grace_ms: 21_600_000,
            gc_interval_ms: 3_600_000,
            retain_versions: 0,
            retain_ms: 0,
            iceberg_namespace: "lakehouse".into(),
            manifest_merge_count: 100,
            iceberg_max_snapshots: 1000,
        }
    }
}

/// How long [`open_catalog`] keeps retrying while storaged does not answer.
pub const STORAGED_WAIT: Duration = Duration::from_secs(30);

/// Why catalogd could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `storaged_url` is not an `http(s)://` URL.
    #[error("invalid storaged_url")]
    StoragedUrl(#[source] ClientError),
    /// The catalog could not be rebuilt from storaged (storaged still down after
    /// [`STORAGED_WAIT`], or a corrupt manifest).
    #[error("cannot open the catalog")]
    Catalog(#[source] CatalogError),
    /// storaged did not say where its storage is (`GET /location`).
    #[error("cannot read storaged's location")]
    Location(#[source] ClientError),
}

/// Opens the catalog over the storaged at `storaged_url`, rebuilding the index from its
/// manifests. While storaged does not answer, retries with backoff (100 ms doubling to 2 s,
/// each attempt logged) for at most `wait`. Then asks storaged where its storage is
/// (`GET /location`), so the catalog writes each version's Iceberg metadata with table
/// locations `<base>/datasets/<name>`, and heals the latest version's metadata of every
/// dataset (docs/contract.md section 8; a failure there is logged and healed before the dataset's
/// next commit).
///
/// # Errors
/// [`StartError::StoragedUrl`] for a bad URL; [`StartError::Catalog`] for a corrupt manifest
/// (at once) or storaged still unavailable after `wait`; [`StartError::Location`] when
/// storaged does not answer `GET /location`.
pub async fn open_catalog(
    storaged_url: &str,
    service_token: &Secret,
    wait: Duration,
) -> Result<(Catalog<StoragedStore>, StorageLocation), StartError> {
    let catalog = open_index(storaged_url, service_token, wait).await?;
    let location = catalog
        .store()
        .client()
        .location()
        .await
        .map_err(StartError::Location)?;
    tracing::info!(base = %location.base, "iceberg table locations");
    let catalog = catalog.with_table_base(location.base.clone());
    Ok((catalog, location))
}

async fn open_index(
    storaged_url: &str,
    service_token: &Secret,
    wait: Duration,
) -> Result<Catalog<StoragedStore>, StartError> {
    let deadline = Instant::now() + wait;
    let mut backoff = Duration::from_millis(100);
    for attempt in 1.. {
        let store = StoragedStore::new(storaged_url, service_token.configured())
            .map_err(StartError::StoragedUrl)?;
        match Catalog::open(store).await {
            Ok(catalog) => return Ok(catalog),
            Err(CatalogError::Store(StoreError::Unavailable(source)))
                if Instant::now() + backoff < deadline =>
            {
                tracing::warn!(
                    attempt,
                    storaged_url,
                    retry_in_ms = backoff.as_millis() as u64,
                    error = %error_chain(&*source),
                    "storaged is not answering yet; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(error) => return Err(StartError::Catalog(error)),
        }
    }
    unreachable!("the retry loop only ends by returning")
}

/// What the handlers share: the catalog, the timeouts and the garbage collection settings.
pub struct AppState<S> {
    /// The catalog (index + commit protocol).
    pub catalog: Arc<Catalog<S>>,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Grace period after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Header read limit of each connection ([`Config::header_timeout_ms`]).
    pub header_timeout: Duration,
    /// Period of the background [`Catalog::refresh_all`] (`None`: never).
    pub refresh_interval: Option<Duration>,
    /// Tokens accepted on `/datasets` ([`Config::read_tokens`], [`Config::write_tokens`],
    /// [`Config::service_token`]).
    pub tokens: Tokens,
    /// `gc_grace_ms` of the config.
    pub gc_grace_ms: u64,
    /// Time between scheduled garbage collection runs; `None` when `gc_interval_ms` is 0.
    pub gc_interval: Option<Duration>,
    /// storaged, for the catalog page's download links (`None` when `storaged_url` does not
    /// parse, which [`open_catalog`] already refuses). The page reads footers and rows
    /// through the catalog's store.
    pub storaged: Option<lakehouse_client::StoragedClient>,
    /// Held by the garbage collection run in progress: one run at a time per process.
    gc_running: Arc<tokio::sync::Mutex<()>>,
    /// Where the storage is ([`AppState::with_storage`]): the Iceberg REST catalog's table
    /// config for s3. `memory://` until set.
    pub storage: StorageLocation,
    /// [`Config::iceberg_namespace`].
    pub iceberg_namespace: String,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            catalog: Arc::clone(&self.catalog),
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            header_timeout: self.header_timeout,
            refresh_interval: self.refresh_interval,
            tokens: self.tokens.clone(),
            gc_grace_ms: self.gc_grace_ms,
            gc_interval: self.gc_interval,
            storaged: self.storaged.clone(),
            gc_running: Arc::clone(&self.gc_running),
            storage: self.storage.clone(),
            iceberg_namespace: self.iceberg_namespace.clone(),
        }
    }
}

impl<S: ManifestStore> AppState<S> {
    /// State over `catalog` with the timeouts, retention and garbage collection settings of
    /// `config`.
    pub fn new(catalog: Catalog<S>, config: &Config) -> Self {
        let retention = RetentionPolicy {
            retain_versions: config.retain_versions,
            retain_ms: config.retain_ms,
        };
        AppState {
            catalog: Arc::new(catalog.with_retention(retention).with_table_config(
                lakehouse_iceberg::TableConfig {
                    manifest_merge_count: config.manifest_merge_count.max(1),
                    max_snapshots: config.iceberg_max_snapshots.max(1),
                    ..lakehouse_iceberg::TableConfig::default()
                },
            )),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            refresh_interval: (config.refresh_interval_ms > 0)
                .then(|| Duration::from_millis(config.refresh_interval_ms)),
            tokens: Tokens::new(
                &config.read_tokens,
                config.write_tokens.iter().chain([&config.service_token]),
            ),
            gc_grace_ms: config.gc_grace_ms,
            gc_interval: (config.gc_interval_ms > 0)
                .then(|| Duration::from_millis(config.gc_interval_ms)),
            storaged: lakehouse_client::StoragedClient::new(&config.storaged_url)
                .ok()
                .map(|client| client.with_token(config.service_token.configured())),
            gc_running: Arc::new(tokio::sync::Mutex::new(())),
            storage: StorageLocation {
                base: "memory://".into(),
                s3: None,
            },
            iceberg_namespace: config.iceberg_namespace.clone(),
        }
    }

    /// The state with storaged's `location` (what [`open_catalog`] read), for the Iceberg
    /// REST catalog's table config.
    pub fn with_storage(mut self, location: StorageLocation) -> Self {
        self.storage = location;
        self
    }
}

/// One garbage collection run with the state's `gc_grace_ms` (waiting for a run already in
/// progress in this process first): what `POST /admin/gc` and the schedule call.
///
/// # Errors
/// As [`Catalog::collect_garbage`].
pub async fn run_gc<S: ManifestStore>(
    state: &AppState<S>,
    dry_run: bool,
) -> Result<GcRunResponse, CatalogError> {
    let _running = state.gc_running.lock().await;
    let result = state
        .catalog
        .collect_garbage(GcOptions {
            grace_ms: state.gc_grace_ms,
            dry_run,
        })
        .await;
    metrics::gc_ran(dry_run, &result);
    result
}

/// Runs [`run_gc`] every `every` (the first run one interval after start) until `stop`
/// turns true or its sender is dropped. A run in progress at that moment is dropped, which
/// is safe: each dataset's deletes are decided under its commit lock, which the drop
/// releases.
async fn gc_schedule<S: ManifestStore>(
    state: AppState<S>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tracing::info!(
        interval_ms = every.as_millis() as u64,
        grace_ms = state.gc_grace_ms,
        "garbage collection scheduled"
    );
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = ticker.tick() => {}
        }
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            result = run_gc(&state, false) => {
                if let Err(error) = result {
                    tracing::warn!(error = %error_chain(&error), "scheduled garbage collection failed");
                }
            }
        }
    }
    tracing::info!("garbage collection schedule stopped");
}

use routes::iceberg::RefusedWrites;

/// catalogd's own routes and types in its OpenAPI document (`GET /openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    routes::datasets::dataset_list,
    routes::datasets::dataset_get,
    routes::datasets::dataset_drop,
    routes::datasets::version_list,
    routes::datasets::version_get,
    routes::datasets::version_register,
    routes::loaded::loaded_file_list,
    routes::admin::gc_run,
    readyz,
    openapi::ui_list,
    openapi::ui_dataset,
    routes::iceberg::config_get,
    routes::iceberg::namespace_list,
    routes::iceberg::namespace_get,
    routes::iceberg::namespace_head,
    routes::iceberg::table_list,
    routes::iceberg::table_load,
    routes::iceberg::table_head,
), modifiers(&RefusedWrites))]
pub struct ApiDoc;

/// The largest register body catalogd reads, bytes: 64 MiB, about 250,000 objects. A
/// partitioned upload registers a file per partition value (up to ingestd's
/// `max_partitions_per_upload`, 10,000 by default, and more once files are cut at
/// `target_file_bytes`), past axum's 2 MB default (docs/contract.md section 10).
pub const MAX_REGISTER_BODY_BYTES: usize = 64 << 20;

/// The HTTP API of docs/contract.md section 6: `/datasets...`, `/healthz`, `/readyz`, `POST
/// /admin/gc`, `GET /metrics` and `GET /openapi.json` (section 9), the read-only Iceberg REST
/// catalog under `/iceberg` (section 8) and the catalog page `/ui`, with the shared layers
/// (request ids, tracing, JSON 404/405) and the request timeout.
pub fn router<S: ManifestStore>(state: AppState<S>) -> Router {
    use routes::datasets::{
        dataset_drop, dataset_get, dataset_list, version_get, version_list, version_register,
    };
    let timeout = state.request_timeout;
    let api = Router::new()
        .route("/datasets", get(dataset_list::<S>))
        .route(
            "/datasets/{name}",
            get(dataset_get::<S>).delete(dataset_drop::<S>),
        )
        .route(
            "/datasets/{name}/versions",
            get(version_list::<S>).post(version_register::<S>).layer(
                axum::extract::DefaultBodyLimit::max(MAX_REGISTER_BODY_BYTES),
            ),
        )
        .route("/datasets/{name}/versions/{version}", get(version_get::<S>))
        .route(
            "/datasets/{name}/loaded-files",
            get(routes::loaded::loaded_file_list::<S>),
        )
        // Read scope, like the dataset lookups (docs/decisions.md).
        .route("/metrics", get(lakehouse_server::metrics::metrics_get))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            require_token,
        ))
        .route("/readyz", get(readyz::<S>))
        .nest(
            "/iceberg",
            routes::iceberg::router::<S>(state.tokens.clone()),
        )
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            request_timeout,
        ))
        .route("/healthz", get(lakehouse_server::healthz))
        .route(
            "/openapi.json",
            lakehouse_server::openapi::route(lakehouse_server::openapi::document(
                <ApiDoc as utoipa::OpenApi>::openapi(),
                "catalogd",
            )),
        )
        // Outside the request timeout: a run over many objects may take longer.
        // Deletes objects: needs a write-scope token whenever tokens are configured.
        .route(
            "/admin/gc",
            post(routes::admin::gc_run::<S>).route_layer(axum::middleware::from_fn_with_state(
                state.tokens.clone(),
                require_token,
            )),
        )
        .with_state(state.clone())
        // The catalog page (`/ui`), with its own read-token check (header or cookie).
        .merge(ui::router(state));
    lakehouse_server::metrics::install(metrics::describe);
    lakehouse_server::metrics::track_requests(lakehouse_server::common_layers(api), metrics::HTTP)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets in-flight requests
/// finish for up to the state's grace period. Scheduled garbage collection (every
/// `gc_interval`, when set) runs beside it and stops when `shutdown` completes.
///
/// # Errors
/// The listener's I/O error.
pub async fn run<S: ManifestStore>(
    listener: TcpListener,
    state: AppState<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = lakehouse_server::ServeOptions {
        grace: state.shutdown_grace,
        header_read_timeout: state.header_timeout,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let schedule = state
        .gc_interval
        .map(|every| tokio::spawn(gc_schedule(state.clone(), every, stopped)));
    let refresher = state
        .refresh_interval
        .map(|period| tokio::spawn(refresh_periodically(Arc::clone(&state.catalog), period)));
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let served = lakehouse_server::serve_with(listener, router(state), shutdown, options).await;
    if let Some(task) = refresher {
        task.abort();
    }
    if let Some(schedule) = schedule {
        // Ends at once: the stop signal was sent, or its sender dropped with `serve`.
        let _ = schedule.await;
    }
    served
}

/// Loads other replicas' manifests every `period` ([`Catalog::refresh_all`]); a failure is
/// logged and retried at the next tick, the index keeps serving what it has.
async fn refresh_periodically<S: ManifestStore>(catalog: Arc<Catalog<S>>, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; the index was just rebuilt
    loop {
        ticks.tick().await;
        match catalog.refresh_all().await {
            Ok(0) => {}
            Ok(loaded) => tracing::info!(loaded, "loaded manifests written by other replicas"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "periodic catalog refresh failed")
            }
        }
    }
}

/// `GET /readyz`: 200 when storaged answers, else 503 `unavailable`.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "storaged answers", body = Object),
        (status = 503, description = "`unavailable`", body = lakehouse_api::ErrorBody),
    )
)]
async fn readyz<S: ManifestStore>(State(state): State<AppState<S>>) -> Response {
    match state.catalog.store().ready().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(error) => ApiError::new(
            ErrorCode::Unavailable,
            format!("storaged is not ready: {}", error_chain(&error)),
        )
        .retry_after(1)
        .into_response(),
    }
}

#[cfg(test)]
mod tests;
