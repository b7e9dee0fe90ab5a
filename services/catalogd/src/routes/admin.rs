//! `/admin`: operator endpoints. Today only garbage collection (docs/decisions.md, "Garbage
//! collection and retention").

use crate::error::api_error;
use crate::{AppState, run_gc};
use axum::Json;
use axum::extract::State;
use lakehouse_api::GcRunResponse;
use lakehouse_catalog::ManifestStore;
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;

/// Query of `POST /admin/gc[?dry_run=true]`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GcRunQuery {
    /// `true`: decide but delete nothing, answering `would_delete`. Default `false`.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /admin/gc[?dry_run=true]`: runs garbage collection now (the same run the schedule
/// makes every `gc_interval_ms`) and answers 200 [`GcRunResponse`]
/// `{dry_run, deleted, would_delete, retained_objects, scanned_objects, skipped_young,
/// expired_versions, errors, duration_ms}`.
///
/// One run at a time per process: a request made while another run is in progress waits for
/// it. Not bound by `request_timeout_ms` (a run over many objects can take longer). A run
/// cut short (the client disconnects, shutdown) is safe: each dataset's deletes are decided
/// under its commit lock, and the objects not deleted yet are simply left for the next run.
///
/// # Errors
/// 400 `invalid_option` for a query that does not parse; 503 `unavailable` / 502
/// `upstream_error` when storaged cannot list `datasets/` (nothing was deleted). Failures
/// after that are reported in the body's `errors`, not as an error status.
#[utoipa::path(
    post,
    path = "/admin/gc",
    tag = "admin",
    params(GcRunQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The run's report", body = GcRunResponse),
        (status = 400, description = "`invalid_option`", body = lakehouse_api::ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 502, description = "`upstream_error`", body = lakehouse_api::ErrorBody),
        (status = 503, description = "`unavailable`", body = lakehouse_api::ErrorBody),
    )
)]
pub async fn gc_run<S: ManifestStore>(
    State(state): State<AppState<S>>,
    ApiQuery(query): ApiQuery<GcRunQuery>,
) -> Result<Json<GcRunResponse>, ApiError> {
    let report = run_gc(&state, query.dry_run).await.map_err(api_error)?;
    Ok(Json(report))
}
