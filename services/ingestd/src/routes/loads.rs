//! `POST /loads`, `GET /loads/{id}`, `GET /loads` (docs/contract.md section 12): thin
//! handlers over [`crate::loads`].

use crate::loads::{self, LoadPlan};
use crate::routes::ingest::IngestParams;
use crate::sources::Pattern;
use crate::{AppState, IngestError};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lakehouse_api::{
    ErrorBody, LoadCreateRequest, LoadCreateResponse, LoadGetResponse, LoadListResponse,
    LoadSummary,
};
use lakehouse_server::{ApiError, ApiJson, ApiQuery};
use serde::Deserialize;

/// Query of `POST /loads`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LoadCreateQuery {
    /// `true`: answer 200 with the final state once the load has ended, instead of 202 at
    /// once.
    #[param(value_type = Option<bool>)]
    wait: Option<String>,
}

/// Checks a load request into a [`LoadPlan`]: the source is configured, the pattern stays
/// under it, the mode is `append` or `merge`, the reading options are those `POST /ingest` accepts.
///
/// # Errors
/// [`IngestError::InvalidOption`] (`source`, `pattern`, `mode`, a reading option),
/// [`IngestError::InvalidName`].
fn plan(state: &AppState, request: LoadCreateRequest) -> Result<LoadPlan, IngestError> {
    let mode = match request.mode.as_deref() {
        None | Some("append") => "append",
        Some("merge") => "merge",
        Some("delete") => {
            return Err(IngestError::InvalidOption {
                option: "mode",
                reason: "a load merges or appends files; send a key list to delete with \
                         POST /ingest?mode=delete"
                    .into(),
            });
        }
        Some("replace") => {
            return Err(IngestError::InvalidOption {
                option: "mode",
                reason: "a load appends each file as a version of its own; `replace` would \
                         keep only the last file (ingest one file with POST /ingest to replace)"
                    .into(),
            });
        }
        Some(other) => {
            return Err(IngestError::InvalidOption {
                option: "mode",
                reason: format!("{other:?} is not `append` or `merge`"),
            });
        }
    };
    let template = IngestParams {
        name: Some(request.name),
        mode: Some(mode.into()),
        key: request.key,
        delimiter: request.delimiter,
        null_values: request.null_values,
        encoding: request.encoding,
        schema_evolution: request.schema_evolution,
        max_rejects: request.max_rejects.map(|n| n.to_string()),
        decimal_separator: request.decimal_separator,
        date_order: request.date_order,
        dry_run: None,
        partition_by: request.partition_by,
    }
    .validate()?;
    let source = state.inner.sources.get(&request.source)?;
    let pattern = Pattern::parse(&request.pattern)?;
    Ok(LoadPlan {
        source,
        pattern_text: request.pattern,
        pattern,
        force: request.force,
        template,
    })
}

/// `POST /loads[?wait=true]` with a [`LoadCreateRequest`]: checks it (nothing is read from
/// the source before it is valid), starts the load and answers 202 [`LoadCreateResponse`]
/// with `Location: /loads/{id}`; with `wait=true`, 200 [`LoadGetResponse`] once it has
/// ended.
#[utoipa::path(
    post,
    path = "/loads",
    tag = "loads",
    params(LoadCreateQuery),
    request_body = LoadCreateRequest,
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "`wait=true`: the load ended (`done`: every file tried, each file's outcome in its entry; or `failed`)", body = LoadGetResponse),
        (status = 202, description = "The load started", body = LoadCreateResponse),
        (status = 400, description = "`invalid_option` (an unknown source, a pattern that leaves the source, a mode other than `append`, a bad reading option), `invalid_name`, `invalid_request` (a body of another shape)", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 503, description = "`unavailable`: switched off or shutting down", body = ErrorBody),
    )
)]
pub async fn load_create(
    State(state): State<AppState>,
    query: Result<ApiQuery<LoadCreateQuery>, ApiError>,
    body: Result<ApiJson<LoadCreateRequest>, ApiError>,
) -> Result<Response, ApiError> {
    state.admit()?;
    let ApiQuery(query) = query?;
    let wait = match query.wait.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(IngestError::InvalidOption {
                option: "wait",
                reason: format!("{other:?} is not `true` or `false`"),
            }
            .into());
        }
    };
    let ApiJson(request) = body?;
    let job = loads::start(&state, plan(&state, request)?);
    if wait {
        return Ok(Json(job.wait().await).into_response());
    }
    let load_id = job.status().load_id;
    let location = format!("/loads/{load_id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(LoadCreateResponse { load_id }),
    )
        .into_response())
}

/// `GET /loads/{id}`: [`LoadGetResponse`], where the load stands file by file.
#[utoipa::path(
    get,
    path = "/loads/{id}",
    tag = "loads",
    params(("id" = String, Path, description = "The load's id, from POST /loads")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The load", body = LoadGetResponse),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`: no such load in this ingestd (loads are kept in memory, the most recent 100)", body = ErrorBody),
    )
)]
pub async fn load_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<LoadGetResponse>, ApiError> {
    Ok(Json(state.inner.loads.get(&id)?.status()))
}

/// `GET /loads`: [`LoadListResponse`], the loads this ingestd ran since it started (the most
/// recent 100), newest first.
#[utoipa::path(
    get,
    path = "/loads",
    tag = "loads",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Recent loads, newest first", body = LoadListResponse),
        lakehouse_api::TokenRefusal,
    )
)]
pub async fn load_list(State(state): State<AppState>) -> Json<LoadListResponse> {
    let loads = state
        .inner
        .loads
        .list()
        .iter()
        .map(LoadSummary::from)
        .collect();
    Json(LoadListResponse { loads })
}
