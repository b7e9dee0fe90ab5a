//! `GET /datasets/{name}/loaded-files`: the ledger of loads (docs/contract.md section 12),
//! the source files that a dataset's versions record as read by a load (`source.file`).
//!
//! ingestd reads it once at the start of a load to skip the files already loaded. The ledger
//! is the manifests themselves, committed with each version, so it cannot disagree with the
//! data. Versions past retention count too: their records are kept (docs/decisions.md,
//! "Garbage collection and retention"), and an append successor usually still holds their
//! rows, so loading their files again would duplicate them. Versions of a dropped dataset do
//! not: a dataset made again under the name loads its files again. Each record is read once
//! and then held (`Catalog::fetch_sources`).

use crate::AppState;
use crate::error::api_error;
use axum::Json;
use axum::extract::{Path, State};
use lakehouse_api::{DatasetName, ErrorBody, ErrorCode, LoadedFile, LoadedFileListResponse};
use lakehouse_catalog::ManifestStore;
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;

/// Query of `GET /datasets/{name}/loaded-files[?source=]`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoadedFileQuery {
    /// Only files of this source (`[[ingestd.sources]]` `name`).
    #[serde(default)]
    pub source: Option<String>,
}

/// `GET /datasets/{name}/loaded-files[?source=]`: [`LoadedFileListResponse`], every
/// version's `source.file` (versions past retention included), ascending by version. A
/// dataset that does not exist yet is a 404, as for the other lookups.
///
/// # Errors
/// 400 `invalid_name`, `invalid_option`; 404 `not_found`; 503/502 when storaged fails.
#[utoipa::path(
    get,
    path = "/datasets/{name}/loaded-files",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"), LoadedFileQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The files loads recorded, ascending by version", body = LoadedFileListResponse),
        (status = 400, description = "`invalid_name`, `invalid_option`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn loaded_file_list<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<LoadedFileQuery>,
) -> Result<Json<LoadedFileListResponse>, ApiError> {
    let name =
        DatasetName::new(name).map_err(|e| ApiError::new(ErrorCode::InvalidName, e.to_string()))?;
    let sources = state
        .catalog
        .fetch_sources(&name)
        .await
        .map_err(api_error)?;
    let files = sources
        .into_iter()
        .filter_map(|(version, source)| {
            let file = source.file?;
            let wanted = query.source.as_deref().is_none_or(|s| s == file.source);
            wanted.then_some(LoadedFile { version, file })
        })
        .collect();
    Ok(Json(LoadedFileListResponse { name, files }))
}
