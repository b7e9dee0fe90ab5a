//! storaged: the HTTP front of `object_store` (docs/contract.md section 6).
//!
//! It stores opaque objects under validated keys, streams bodies both ways with bounded
//! memory, makes writes atomic (create-only with `If-None-Match: *`, verified with
//! `x-checksum-sha256`) and durable (fsynced on the local backend before the 201), and lists
//! keys in byte order with string-prefix semantics. It knows nothing about datasets,
//! manifests or Parquet: ingestd and catalogd give the keys their meaning.
//!
//! The binary is a thin `main`; tests start the real service through [`run`] or the binary on
//! port 0.

pub mod error;
pub mod metrics;
pub mod routes;
pub mod store;

pub use error::StoragedError;
pub use store::{Backend, ObjectPutResponse, S3Settings, Store};

use axum::Router;
use axum::routing::get;
use lakehouse_server::auth::{Secret, Tokens, require_token};
use lakehouse_server::request_timeout;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;

/// The `[storaged]` section of `config/lakehouse.toml` (docs/contract.md section 7); every key can
/// also be set as `LAKEHOUSE_STORAGED__<KEY>`. The defaults equal the checked-in file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on, `ip:port`. Port 0 picks a free port (logged as
    /// `listening on <ip>:<port>`). Default `127.0.0.1:8083`: loopback only; bind a public
    /// address only behind a trusted network, as storaged has no authentication.
    pub bind: String,
    /// Storage backend: `local` (a directory, durable, the default), `memory` (lost at exit,
    /// for tests) or `s3` (an S3-compatible bucket: `bucket`, `endpoint`, `region`,
    /// `allow_http`, credentials from the usual `AWS_*` variables).
    pub backend: Backend,
    /// Directory of the `local` backend, relative to the working directory; created when
    /// missing. Default `data/objects`. Must be on one file system (renames are hard links).
    pub root: PathBuf,
    /// `local` backend: write object bodies past the page cache (`O_DIRECT`, Linux, where
    /// the file system allows it), so the fsync before a 201 has little left to flush and the
    /// write costs no page-cache copy (docs/performance.md). `false`: through the page cache.
    pub direct_io: bool,
    /// Milliseconds in-flight requests get to finish after SIGTERM before the process exits
    /// anyway. Default 30000: long enough for a large upload on a LAN; longer delays restarts.
    pub shutdown_grace_ms: u64,
    /// Milliseconds a non-streaming request (HEAD, DELETE, LIST, readyz, and a GET up to its
    /// first byte) may take before a 503 `unavailable`. PUT bodies and GET bodies are never cut
    /// by it. Default 30000: generous for a slow disk; lower fails faster on a hung backend.
    pub request_timeout_ms: u64,
    /// A connection that does not send its request headers within this is closed (slowloris
    /// guard), milliseconds. Default 30000.
    pub header_timeout_ms: u64,
    /// `s3` backend: the bucket (required there). Default empty.
    pub bucket: String,
    /// `s3` backend: endpoint URL of an S3-compatible server (`http://127.0.0.1:9000` for a
    /// MinIO); empty means `AWS_ENDPOINT`, else AWS S3 itself.
    pub endpoint: String,
    /// `s3` backend: region; empty means `AWS_REGION`, else `us-east-1`.
    pub region: String,
    /// `s3` backend: allow a plain `http://` endpoint (loopback test servers, a trusted LAN);
    /// `false` also leaves it to `AWS_ALLOW_HTTP`. Default false: credentials and data go over
    /// TLS.
    pub allow_http: bool,
    /// Internal service token: when not empty, every `/objects` request must carry
    /// `Authorization: Bearer <it>` (catalogd and ingestd present it). Empty (the default)
    /// leaves storaged open: keep it on loopback then.
    pub service_token: Secret,
    /// Extra tokens allowed to read objects (`GET`/`HEAD`, e.g. for DuckDB over HTTP) but not
    /// to write them. Ignored while `service_token` is empty and this list is empty.
    pub read_tokens: Vec<Secret>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: "127.0.0.1:8083".into(),
            backend: Backend::Local,
            root: PathBuf::from("data/objects"),
            direct_io: true,
            shutdown_grace_ms: 30_000,
            request_timeout_ms: 30_000,
            header_timeout_ms: 30_000,
            bucket: String::new(),
            endpoint: String::new(),
            region: String::new(),
            allow_http: false,
            service_token: Secret::default(),
            read_tokens: Vec::new(),
        }
    }
}

/// Shared state of the handlers: the store and the limits from [`Config`].
#[derive(Debug, Clone)]
pub struct AppState {
    /// The object store with storaged's invariants on top.
    pub store: Store,
    /// Limit of non-streaming requests ([`Config::request_timeout_ms`]).
    pub request_timeout: Duration,
    /// Grace after SIGTERM ([`Config::shutdown_grace_ms`]).
    pub shutdown_grace: Duration,
    /// Header read limit of each connection ([`Config::header_timeout_ms`]).
    pub header_timeout: Duration,
    /// Tokens accepted on `/objects` ([`Config::service_token`], [`Config::read_tokens`]).
    pub tokens: Tokens,
    /// The storage's URI of its root, answered by `GET /location` (docs/contract.md section 8).
    pub location: lakehouse_api::StorageLocation,
}

/// The storage's own URI of its root for `config` (docs/contract.md section 8): `file://` + the
/// canonical local root, `s3://<bucket>` with the endpoint and region (the config's, else
/// `AWS_ENDPOINT` / `AWS_ENDPOINT_URL` and `AWS_REGION` / `AWS_DEFAULT_REGION`, else AWS S3 and
/// `us-east-1`; path-style, object_store's default), or `memory://`.
async fn storage_location(config: &Config) -> lakehouse_api::StorageLocation {
    use lakehouse_api::{S3Location, StorageLocation};
    let env = |names: &[&str]| {
        names
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    };
    match config.backend {
        Backend::Local => {
            let root = tokio::fs::canonicalize(&config.root)
                .await
                .unwrap_or_else(|_| config.root.clone());
            let root = root.to_string_lossy();
            StorageLocation {
                base: format!("file://{}", root.trim_end_matches('/')),
                s3: None,
            }
        }
        Backend::Memory => StorageLocation {
            base: "memory://".into(),
            s3: None,
        },
        Backend::S3 => {
            let bucket = if config.bucket.is_empty() {
                env(&["AWS_BUCKET", "AWS_BUCKET_NAME"]).unwrap_or_default()
            } else {
                config.bucket.clone()
            };
            let endpoint = if config.endpoint.is_empty() {
                env(&["AWS_ENDPOINT", "AWS_ENDPOINT_URL"]).unwrap_or_default()
            } else {
                config.endpoint.clone()
            };
            let region = if config.region.is_empty() {
                env(&["AWS_REGION", "AWS_DEFAULT_REGION"]).unwrap_or_else(|| "us-east-1".into())
            } else {
                config.region.clone()
            };
            StorageLocation {
                base: format!("s3://{bucket}"),
                s3: Some(S3Location {
                    endpoint,
                    region,
                    path_style_access: true,
                }),
            }
        }
    }
}

impl AppState {
    /// Opens the configured backend (creating the local root, removing staging debris of an
    /// earlier crash).
    ///
    /// # Errors
    /// What [`Store::open`] returns.
    pub async fn open(config: &Config) -> Result<AppState, StoragedError> {
        let store = match config.backend {
            Backend::S3 => Store::open_s3(&S3Settings {
                bucket: config.bucket.clone(),
                endpoint: config.endpoint.clone(),
                region: config.region.clone(),
                allow_http: config.allow_http,
            })?,
            backend => Store::open(backend, &config.root)
                .await?
                .with_direct_io(config.direct_io),
        };
        Ok(AppState {
            location: storage_location(config).await,
            store,
            request_timeout: Duration::from_millis(config.request_timeout_ms),
            shutdown_grace: Duration::from_millis(config.shutdown_grace_ms),
            header_timeout: Duration::from_millis(config.header_timeout_ms),
            tokens: Tokens::new(&config.read_tokens, [&config.service_token]),
        })
    }
}

/// storaged's own routes and types in its OpenAPI document (`GET /openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    routes::objects::object_put,
    routes::objects::object_post,
    routes::objects::object_get,
    routes::objects::object_head,
    routes::objects::object_delete,
    routes::objects::objects_list,
    routes::health::readyz,
    routes::health::location,
))]
pub struct ApiDoc;

/// The storaged router (docs/contract.md section 6): `/objects`, `/objects/{*key}`, `GET /location`
/// (section 8), `/healthz`, `/readyz`, `GET /metrics` (section 9) and `GET /openapi.json`, inside [`lakehouse_server::common_layers`]
/// and the per-request metrics. Installs the process's metrics recorder on first use.
///
/// Every route except the writes (PUT, POST) is under the request timeout; the timeout covers producing the
/// response head, so a GET body streams for as long as it needs.
pub fn router(state: AppState) -> Router {
    let timeout = axum::middleware::from_fn_with_state(state.request_timeout, request_timeout);
    use routes::objects::{
        object_delete, object_get, object_head, object_post, object_put, objects_list,
    };
    let routes = Router::new()
        .route("/objects", get(objects_list).route_layer(timeout.clone()))
        .route("/location", get(routes::health::location))
        .route(
            "/objects/{*key}",
            get(object_get)
                .head(object_head)
                .delete(object_delete)
                .route_layer(timeout.clone())
                .put(object_put)
                .post(object_post),
        )
        // Read scope, like the object lookups (docs/decisions.md).
        .route("/metrics", get(lakehouse_server::metrics::metrics_get))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            require_token,
        ))
        .route("/readyz", get(routes::health::readyz).route_layer(timeout))
        .route("/healthz", get(lakehouse_server::healthz))
        .route(
            "/openapi.json",
            lakehouse_server::openapi::route(lakehouse_server::openapi::document(
                <ApiDoc as utoipa::OpenApi>::openapi(),
                "storaged",
            )),
        )
        .with_state(state);
    lakehouse_server::metrics::install(metrics::describe);
    lakehouse_server::metrics::track_requests(
        lakehouse_server::common_layers(routes),
        metrics::HTTP,
    )
}

/// Serves storaged on `listener` until `shutdown` completes, then lets in-flight requests
/// finish within [`AppState::shutdown_grace`].
///
/// # Errors
/// The listener's I/O error.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let options = lakehouse_server::ServeOptions {
        grace: state.shutdown_grace,
        header_read_timeout: state.header_timeout,
    };
    lakehouse_server::serve_with(listener, router(state), shutdown, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_equal_the_checked_in_config() {
        lakehouse_testkit::config::assert_defaults_equal_checked_in::<Config>("storaged");
    }
}
