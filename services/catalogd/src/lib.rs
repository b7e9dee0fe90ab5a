//! catalogd: versioned manifests and the atomic schema gate of the lakehouse (DESIGN.md
//! section 6), as a library with a thin `main`.
//!
//! [`router`] serves `/datasets` over a [`Catalog`]; [`run`] serves it on a bound listener
//! until a shutdown future completes; [`open_catalog`] rebuilds the index from storaged at
//! start, waiting for storaged to answer. The commit protocol itself lives in
//! `lakehouse-catalog`; this crate is HTTP, configuration and the storaged-backed store.

pub mod error;
pub mod routes;
pub mod store;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use lakehouse_api::ErrorCode;
use lakehouse_catalog::{Catalog, CatalogError, ManifestStore, StoreError, error_chain};
use lakehouse_client::ClientError;
use lakehouse_server::ApiError;
use lakehouse_server::auth::{Secret, Tokens, require_token};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::StoragedStore;
use tokio::net::TcpListener;

/// `[catalogd]` of `config/lakehouse.toml` (DESIGN.md section 7); every key can also come
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
    /// Internal service token: presented to storaged, and accepted here with write scope
    /// (ingestd presents it). Empty (the default) sends none.
    pub service_token: Secret,
    /// Bearer tokens allowed to make lookups (`GET`).
    pub read_tokens: Vec<Secret>,
    /// Bearer tokens allowed to make lookups and registers. With no token configured at all
    /// (the default), catalogd is open: keep it on loopback then.
    pub write_tokens: Vec<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8082".into(),
            storaged_url: "http://127.0.0.1:8083".into(),
            shutdown_grace_ms: 30_000,
            request_timeout_ms: 30_000,
            service_token: Secret::default(),
            read_tokens: Vec::new(),
            write_tokens: Vec::new(),
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
}

/// Opens the catalog over the storaged at `storaged_url`, rebuilding the index from its
/// manifests. While storaged does not answer, retries with backoff (100 ms doubling to 2 s,
/// each attempt logged) for at most `wait`.
///
/// # Errors
/// [`StartError::StoragedUrl`] for a bad URL; [`StartError::Catalog`] for a corrupt manifest
/// (at once) or storaged still unavailable after `wait`.
pub async fn open_catalog(
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

/// What the handlers share: the catalog and the timeouts.
pub struct AppState<S> {
    /// The catalog (index + commit protocol).
    pub catalog: Arc<Catalog<S>>,
    /// Per-request time limit.
    pub request_timeout: Duration,
    /// Grace period after the shutdown signal.
    pub shutdown_grace: Duration,
    /// Tokens accepted on `/datasets` ([`Config::read_tokens`], [`Config::write_tokens`],
    /// [`Config::service_token`]).
    pub tokens: Tokens,
}

impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        AppState {
            catalog: Arc::clone(&self.catalog),
            request_timeout: self.request_timeout,
            shutdown_grace: self.shutdown_grace,
            tokens: self.tokens.clone(),
        }
    }
}

impl<S: ManifestStore> AppState<S> {
    /// State over `catalog` with the timeouts of `config`.
    pub fn new(catalog: Catalog<S>, config: &Config) -> Self {
        AppState {
            catalog: Arc::new(catalog),
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
            tokens: Tokens::new(
                &config.read_tokens,
                config.write_tokens.iter().chain([&config.service_token]),
            ),
        }
    }
}

/// The HTTP API of DESIGN.md section 6: `/datasets...`, `/healthz`, `/readyz`, with the
/// shared layers (request ids, tracing, JSON 404/405) and the request timeout.
pub fn router<S: ManifestStore>(state: AppState<S>) -> Router {
    use routes::datasets::{
        dataset_get, dataset_list, version_get, version_list, version_register,
    };
    let timeout = state.request_timeout;
    let api = Router::new()
        .route("/datasets", get(dataset_list::<S>))
        .route("/datasets/{name}", get(dataset_get::<S>))
        .route(
            "/datasets/{name}/versions",
            get(version_list::<S>).post(version_register::<S>),
        )
        .route("/datasets/{name}/versions/{version}", get(version_get::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            require_token,
        ))
        .route("/readyz", get(readyz::<S>))
        .layer(axum::middleware::from_fn_with_state(
            timeout,
            request_timeout,
        ))
        .route("/healthz", get(lakehouse_server::healthz))
        .with_state(state);
    lakehouse_server::common_layers(api)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then lets in-flight requests
/// finish for up to the state's grace period.
///
/// # Errors
/// The listener's I/O error.
pub async fn run<S: ManifestStore>(
    listener: TcpListener,
    state: AppState<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.shutdown_grace;
    lakehouse_server::serve(listener, router(state), shutdown, grace).await
}

/// `GET /readyz`: 200 when storaged answers, else 503 `unavailable`.
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

/// Answers 503 `unavailable` when a request takes longer than the configured limit.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            ErrorCode::Unavailable,
            format!("request did not finish within {} ms", limit.as_millis()),
        )
        .retry_after(1)
        .into_response(),
    }
}

#[cfg(test)]
mod tests;
