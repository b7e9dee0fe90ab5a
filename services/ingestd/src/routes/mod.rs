//! HTTP routes of ingestd (docs/contract.md section 6).

pub(crate) mod compact;
pub(crate) mod health;
pub(crate) mod ingest;
pub(crate) mod loads;

use crate::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

/// ingestd's own routes and types in its OpenAPI document (`GET /openapi.json`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        ingest::ingest_post,
        compact::compact_post,
        loads::load_create,
        loads::load_get,
        loads::load_list,
        health::readyz
    ),
    components(schemas(lakehouse_api::IngestResponse, lakehouse_api::CompactResponse))
)]
pub struct ApiDoc;

/// `POST /ingest`, `POST /datasets/{name}/compact`, `POST /loads`, `GET /loads[/{id}]`, `GET
/// /metrics` (behind the same tokens), `GET /healthz`, `GET /readyz`.
pub fn router(state: AppState) -> Router {
    let tokens = || {
        axum::middleware::from_fn_with_state(
            state.inner.tokens.clone(),
            lakehouse_server::auth::require_token,
        )
    };
    Router::new()
        // Loads read sources and write versions: the same tokens as uploads.
        .route(
            "/loads",
            post(loads::load_create)
                .get(loads::load_list)
                .route_layer(tokens()),
        )
        .route("/loads/{id}", get(loads::load_get).route_layer(tokens()))
        .route(
            "/ingest",
            // The upload cap is enforced while streaming (max_upload_bytes), not by axum's
            // default 2 MB body limit.
            post(ingest::ingest_post)
                .layer(DefaultBodyLimit::disable())
                .route_layer(axum::middleware::from_fn_with_state(
                    state.inner.tokens.clone(),
                    lakehouse_server::auth::require_token,
                )),
        )
        .route(
            "/datasets/{name}/compact",
            post(compact::compact_post).route_layer(axum::middleware::from_fn_with_state(
                state.inner.tokens.clone(),
                lakehouse_server::auth::require_token,
            )),
        )
        .route(
            "/metrics",
            get(lakehouse_server::metrics::metrics_get).route_layer(
                axum::middleware::from_fn_with_state(
                    state.inner.tokens.clone(),
                    lakehouse_server::auth::require_token,
                ),
            ),
        )
        .route(
            "/openapi.json",
            lakehouse_server::openapi::route(lakehouse_server::openapi::document(
                <ApiDoc as utoipa::OpenApi>::openapi(),
                "ingestd",
            )),
        )
        .route("/healthz", get(lakehouse_server::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
