//! `GET /readyz`.

use crate::AppState;
use axum::Json;
use axum::extract::State;
use lakehouse_api::ErrorCode;
use lakehouse_server::ApiError;
use serde_json::{Value, json};

/// `GET /readyz`: 200 when storaged and catalogd both answer their `/readyz`, else 503
/// `unavailable` naming the one that does not.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "storaged and catalogd answer", body = Object),
        (status = 503, description = "`unavailable`: an upstream does not answer", body = lakehouse_api::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let inner = &state.inner;
    let (storaged, catalogd) = tokio::join!(inner.storaged.ready(), inner.catalogd.ready());
    for (service, result) in [("storaged", storaged), ("catalogd", catalogd)] {
        if let Err(error) = result {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("{service} is not ready: {error}"),
            )
            .retry_after(1));
        }
    }
    Ok(Json(json!({ "status": "ready" })))
}
