//! `GET /readyz` (`GET /healthz` is [`lakehouse_server::healthz`]).

use crate::AppState;
use crate::error::StoragedError;
use axum::Json;
use axum::extract::State;

/// `GET /readyz`: 200 `{"status":"ready"}` when the storage backend answers a tiny probe,
/// else 503 `unavailable` (docs/contract.md section 6).
///
/// # Errors
/// [`StoragedError::NotReady`] (503) when the probe fails.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The storage backend answers", body = Object),
        (status = 503, description = "`unavailable`", body = lakehouse_api::ErrorBody),
    )
)]
pub async fn readyz(
    State(state): State<AppState>,
) -> Result<Json<serde_json::Value>, StoragedError> {
    state.store.ready().await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

/// `GET /location`: the storage's own URI of its root (`file:///...`, `s3://<bucket>`,
/// `memory://`) and, for s3, the endpoint, region and addressing style engines need; catalogd
/// builds the Iceberg table locations from it (docs/contract.md section 8). Read scope, like the
/// object lookups.
#[utoipa::path(
    get,
    path = "/location",
    tag = "operations",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The storage's root URI (and, for s3, how to reach the bucket)", body = lakehouse_api::StorageLocation),
        lakehouse_api::TokenRefusal,
    )
)]
pub async fn location(State(state): State<AppState>) -> Json<lakehouse_api::StorageLocation> {
    Json(state.location)
}
