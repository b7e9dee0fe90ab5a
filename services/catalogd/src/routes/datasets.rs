//! `/datasets`: registration, listing, latest and time travel (docs/contract.md section 6).
//!
//! Thin handlers: parse and validate the path and query (an invalid name is a 400
//! `invalid_name` before any I/O), call the [`lakehouse_catalog::Catalog`], map its error with
//! [`crate::error::api_error`].

use crate::AppState;
use crate::error::api_error;
use axum::Json;
use axum::extract::{Path, State};
use lakehouse_api::{
    DatasetDropResponse, DatasetListResponse, DatasetName, ErrorBody, ErrorCode, Manifest,
    VersionListResponse, VersionRegisterRequest, VersionRegisterResponse,
};
use lakehouse_catalog::ManifestStore;
use lakehouse_server::options::NoOptions;
use lakehouse_server::{ApiError, ApiJson, ApiQuery};
use serde::Deserialize;

/// Default page size of `GET /datasets`.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Largest page size of `GET /datasets`; larger `limit`s are clamped to it.
pub const MAX_LIST_LIMIT: usize = 1000;

/// Query of `GET /datasets[?prefix=&limit=&cursor=]`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DatasetListQuery {
    /// Only names starting with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Page size, 1 to [`MAX_LIST_LIMIT`] (larger is clamped), default [`DEFAULT_LIST_LIMIT`].
    #[serde(default)]
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page, as handed out (opaque; one this catalog did not hand
    /// out is a 400 `invalid_option`).
    #[serde(default)]
    pub cursor: Option<String>,
}

fn dataset_name(name: String) -> Result<DatasetName, ApiError> {
    DatasetName::new(name).map_err(|e| ApiError::new(ErrorCode::InvalidName, e.to_string()))
}

/// `GET /datasets[?prefix=&limit=&cursor=]`: [`DatasetListResponse`], names ascending.
///
/// Served from the index: a dataset another replica created shows up here once this replica
/// has looked it up or restarted.
///
/// # Errors
/// 400 `invalid_option` for `limit=0` or a query that does not parse.
#[utoipa::path(
    get,
    path = "/datasets",
    tag = "datasets",
    params(DatasetListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of datasets, names ascending", body = DatasetListResponse),
        (status = 400, description = "`invalid_option`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 503, description = "`unavailable`: the request took longer than request_timeout_ms", body = ErrorBody),
    )
)]
pub async fn dataset_list<S: ManifestStore>(
    State(state): State<AppState<S>>,
    ApiQuery(query): ApiQuery<DatasetListQuery>,
) -> Result<Json<DatasetListResponse>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if limit == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidOption,
            "limit must be at least 1",
        ));
    }
    let after = query
        .cursor
        .as_deref()
        .map(super::cursor::decode)
        .transpose()
        .map_err(|message| ApiError::new(ErrorCode::InvalidOption, message))?;
    let mut page = state.catalog.list(
        query.prefix.as_deref().unwrap_or(""),
        limit.min(MAX_LIST_LIMIT),
        after.as_deref(),
    );
    page.next_cursor = page.next_cursor.as_deref().map(super::cursor::encode);
    Ok(Json(page))
}

/// `GET /datasets/{name}`: the latest [`Manifest`] (versions other replicas wrote included).
///
/// # Errors
/// 400 `invalid_name`; 404 `not_found`; 503/502 when storaged fails and the dataset is not in
/// the index.
#[utoipa::path(
    get,
    path = "/datasets/{name}",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The latest manifest", body = Manifest),
        (status = 400, description = "`invalid_name`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn dataset_get<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    // Takes no options: `?version=1` here is a 400 naming it (docs/contract.md section 14).
    _: ApiQuery<NoOptions>,
) -> Result<Json<Manifest>, ApiError> {
    let name = dataset_name(name)?;
    let manifest = state.catalog.fetch_latest(&name).await.map_err(api_error)?;
    Ok(Json(manifest.as_ref().clone()))
}

/// `DELETE /datasets/{name}`: drops the dataset by committing a tombstone version
/// (docs/contract.md section 14): lookups then answer 404, listings and the Iceberg catalog
/// leave it out, its objects are garbage after `gc_grace_ms`, and a later ingest under the
/// name starts a new dataset whose versions continue after the tombstone. Write scope.
///
/// # Errors
/// 400 `invalid_name`; 404 `not_found` for an unknown or already dropped dataset; 502/503
/// when storage fails.
#[utoipa::path(
    delete,
    path = "/datasets/{name}",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The tombstone version", body = DatasetDropResponse),
        (status = 400, description = "`invalid_name`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn dataset_drop<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
) -> Result<Json<DatasetDropResponse>, ApiError> {
    let name = dataset_name(name)?;
    let catalog = std::sync::Arc::clone(&state.catalog);
    // Like a register, a drop runs to its end whoever is still listening.
    let drop = async move { catalog.drop_dataset(&name).await };
    let tombstone = tokio::spawn(lakehouse_client::trace::bind_future(drop))
        .await
        .map_err(|error| ApiError::new(ErrorCode::Internal, format!("drop task: {error}")))?
        .map_err(api_error)?;
    Ok(Json(DatasetDropResponse {
        name: tombstone.name.clone(),
        version: tombstone.version,
    }))
}

/// Default page size of `GET /datasets/{name}/versions`.
pub const DEFAULT_VERSION_LIMIT: usize = 1000;
/// Largest page size of `GET /datasets/{name}/versions`; larger `limit`s are clamped to it.
pub const MAX_VERSION_LIMIT: usize = 10_000;

/// Query of `GET /datasets/{name}/versions[?limit=&cursor=]`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionListQuery {
    /// Page size, 1 to [`MAX_VERSION_LIMIT`] (larger is clamped), default
    /// [`DEFAULT_VERSION_LIMIT`].
    #[serde(default)]
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page: the versions after it.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /datasets/{name}/versions[?limit=&cursor=]`: [`VersionListResponse`], one page of
/// versions ascending (`next_cursor` when more follow); versions past retention are listed
/// with `gone: true` (their records are the audit trail). A page costs what it lists, not
/// the dataset's history (docs/contract.md section 10).
///
/// # Errors
/// As [`dataset_get`]; 400 `invalid_option` for `limit=0` or a cursor that is not a
/// previous page's `next_cursor`.
#[utoipa::path(
    get,
    path = "/datasets/{name}/versions",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"), VersionListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of versions, ascending", body = VersionListResponse),
        (status = 400, description = "`invalid_name`, `invalid_option`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn version_list<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<VersionListQuery>,
) -> Result<Json<VersionListResponse>, ApiError> {
    let name = dataset_name(name)?;
    let limit = query.limit.unwrap_or(DEFAULT_VERSION_LIMIT);
    if limit == 0 {
        return Err(ApiError::new(
            ErrorCode::InvalidOption,
            "limit must be at least 1",
        ));
    }
    let after = match query.cursor.as_deref() {
        None => None,
        Some(cursor) => Some(cursor.parse::<u64>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidOption,
                format!("cursor {cursor:?} is not a next_cursor of this list"),
            )
        })?),
    };
    let (versions, next) = state
        .catalog
        .fetch_version_page(&name, after, limit.min(MAX_VERSION_LIMIT))
        .await
        .map_err(api_error)?;
    Ok(Json(VersionListResponse {
        name,
        versions,
        next_cursor: next.map(|v| v.to_string()),
    }))
}

/// `GET /datasets/{name}/versions/{n}`: version `n`'s [`Manifest`] (time travel).
///
/// # Errors
/// 400 `invalid_name`; 400 `invalid_request` when `n` is not a number; 404 `not_found` for an
/// unknown dataset or version; 410 `gone` for a version past retention (docs/decisions.md, "Garbage collection and retention").
#[utoipa::path(
    get,
    path = "/datasets/{name}/versions/{version}",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"), ("version" = String, Path, description = "Version number, from 1", pattern = "^[0-9]+$")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "That version's manifest (time travel)", body = Manifest),
        (status = 400, description = "`invalid_name`, `invalid_request` (not a number)", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 410, description = "`gone`: past retention", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn version_get<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path((name, version)): Path<(String, String)>,
    // Takes no options: `?version=1` here is a 400 naming it (docs/contract.md section 14).
    _: ApiQuery<NoOptions>,
) -> Result<Json<Manifest>, ApiError> {
    let name = dataset_name(name)?;
    let version: u64 = version.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("version {version:?} is not a positive integer"),
        )
    })?;
    let manifest = state
        .catalog
        .fetch_version(&name, version)
        .await
        .map_err(api_error)?;
    Ok(Json(manifest.as_ref().clone()))
}

/// `POST /datasets/{name}/versions` with a [`VersionRegisterRequest`]: 200
/// [`VersionRegisterResponse`] `{manifest, existing}` (docs/contract.md sections 2 and 6).
/// `schema_evolution: "add_columns"` lets a schema that adds columns after the latest one's
/// through the gate; `dry_run: true` answers the version a register would make and writes
/// nothing (ingestd's `dry_run`).
///
/// # Errors
/// 400 `invalid_name`, `invalid_request` (body), `fingerprint_mismatch`, `invalid_object`;
/// 409 `schema_drift` with the diff as details; 503 `unavailable` / 502 `upstream_error`
/// when storaged fails.
#[utoipa::path(
    post,
    path = "/datasets/{name}/versions",
    tag = "datasets",
    params(("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")),
    request_body = VersionRegisterRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Registered, or `existing: true` when the latest version already is this", body = VersionRegisterResponse),
        (status = 400, description = "`invalid_name`, `invalid_request`, `invalid_option` (a field the body does not have), `fingerprint_mismatch`, `invalid_object`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 409, description = "`schema_drift` with the differences in details", body = ErrorBody),
        (status = 502, description = "`upstream_error`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn version_register<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    body: Result<ApiJson<VersionRegisterRequest>, ApiError>,
) -> Result<Json<VersionRegisterResponse>, ApiError> {
    // The name is checked before the body, so a bad name is `invalid_name` whatever the body.
    let name = dataset_name(name)?;
    let ApiJson(request) = body?;
    let dry_run = request.dry_run;
    // The register runs as its own task: a client that hangs up (or is killed) mid-way
    // does not cancel a commit after its manifest is written and before its Iceberg
    // metadata is (docs/contract.md section 8), so the metadata of a committed version is written
    // whoever is still listening. It runs in the request's span and trace context, so what it
    // asks of storaged carries the request's id too (docs/contract.md section 9).
    let catalog = std::sync::Arc::clone(&state.catalog);
    let started = std::time::Instant::now();
    let register = async move { catalog.register(&name, request).await };
    let outcome = tokio::spawn(lakehouse_client::trace::bind_future(register))
        .await
        .map_err(|error| ApiError::new(ErrorCode::Internal, format!("register task: {error}")))?
        .map_err(api_error)
        .inspect_err(|error| {
            if error.code() == ErrorCode::SchemaDrift && !dry_run {
                crate::metrics::drift_refused();
            }
        })?;
    if !outcome.existing && !dry_run {
        crate::metrics::version_committed(outcome.manifest.operation, started.elapsed());
    }
    Ok(Json(VersionRegisterResponse {
        manifest: outcome.manifest.as_ref().clone(),
        existing: outcome.existing,
        dry_run,
    }))
}
