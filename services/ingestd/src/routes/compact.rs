//! `POST /datasets/{name}/compact[?dry_run=true]` (docs/contract.md section 10).

use crate::compact::{self, CompactRequest};
use crate::{AppState, IngestError, metrics};
use axum::Json;
use axum::extract::{Path, State};
use lakehouse_api::{CompactResponse, DatasetName, ErrorBody};
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;

/// Query parameters of `POST /datasets/{name}/compact`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CompactParams {
    /// `true`: read and rewrite the files into a digest only and answer what the compaction
    /// would do, writing nothing.
    #[param(value_type = Option<bool>)]
    dry_run: Option<String>,
}

/// `POST /datasets/{name}/compact`: rewrites each contiguous run of the latest version's
/// live files smaller than `compact_min_file_bytes` into files of about `target_file_bytes`,
/// rows and their order unchanged, each run committed as a version with operation
/// `compact`. Takes an ingest slot (503 `busy` when none is free).
#[utoipa::path(
    post,
    path = "/datasets/{name}/compact",
    tag = "ingest",
    params(
        ("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
        CompactParams,
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Compacted (`versions` made), `existing: true` when a racing compaction committed the same result, or nothing to compact (`manifest: null`)", body = CompactResponse),
        (status = 400, description = "`invalid_name`, `invalid_option`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`: no such dataset", body = ErrorBody),
        (status = 409, description = "`conflict`: a commit removed the files or changed the schema meanwhile; nothing of that run was committed (`details.committed_versions`: runs committed before)", body = ErrorBody),
        (status = 502, description = "`upstream_error`: storaged or catalogd answered an error", body = ErrorBody),
        (status = 503, description = "`busy` (Retry-After), `unavailable`", body = ErrorBody),
    )
)]
pub async fn compact_post(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<ApiQuery<CompactParams>, ApiError>,
) -> Result<Json<CompactResponse>, ApiError> {
    let ApiQuery(params) = query?;
    state.admit()?;
    let name = DatasetName::new(name).map_err(IngestError::from)?;
    let dry_run = match params.dry_run.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(IngestError::InvalidOption {
                option: "dry_run",
                reason: format!("{other:?} is not `true` or `false`"),
            }
            .into());
        }
    };
    let _slot = state.inner.slots.clone().try_acquire_owned().map_err(|_| {
        metrics::busy_refused();
        IngestError::Busy {
            retry_after_secs: state.config().retry_after_secs,
        }
    })?;
    let request = CompactRequest { name, dry_run };
    Ok(Json(compact::compact(&state, &request, "manual").await?))
}
