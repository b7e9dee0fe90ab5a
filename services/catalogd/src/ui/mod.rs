//! The catalog page (DESIGN.md section 9): `GET /ui` (the dataset list, filtered by name
//! prefix, paginated) and `GET /ui/datasets/{name}[?version=N]` (one dataset: schema, column
//! statistics, versions with time travel, objects with download links, a row-count chart and
//! a preview of the first rows). Server-rendered HTML through maud, which escapes every
//! value it inserts; no script, no external resource, inline CSS readable at phone width.
//!
//! Read tokens apply as on the JSON API: a token in `Authorization: Bearer` or in the
//! `lakehouse_token` cookie (docs/decisions.md).

mod pages;
pub mod parquet;

use crate::AppState;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lakehouse_api::{DatasetName, Manifest};
use lakehouse_catalog::{CatalogError, ManifestStore, error_chain};
use lakehouse_server::auth::{Scope, Tokens};
use serde::Deserialize;
use std::sync::Arc;

/// Datasets per page of `GET /ui` unless `limit` says otherwise.
pub const PAGE_SIZE: usize = 50;
/// Largest `limit` of `GET /ui`; larger ones are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;
/// Objects of a version whose footers the dataset page reads for its statistics, at most.
pub const MAX_STATS_OBJECTS: usize = 32;
/// Name of the cookie that may carry a bearer token for the page.
pub const TOKEN_COOKIE: &str = "lakehouse_token";

/// The page's routes, with the read-token check of [`require_read_token`].
pub fn router<S: ManifestStore>(state: AppState<S>) -> Router {
    Router::new()
        .route("/ui", get(list_page::<S>))
        .route("/ui/datasets/{name}", get(dataset_page::<S>))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            require_read_token,
        ))
        .with_state(state)
}

/// Lets a request through when it carries a read token in `Authorization: Bearer` or in the
/// [`TOKEN_COOKIE`] cookie (or when no token is configured); else the JSON API's 401 or 403
/// (status and `WWW-Authenticate`) as an HTML page saying how to present a token.
async fn require_read_token(
    State(tokens): State<Tokens>,
    request: Request,
    next: Next,
) -> Response {
    let from_cookie = request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == TOKEN_COOKIE)
        .and_then(|(_, token)| HeaderValue::from_str(&format!("Bearer {token}")).ok());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .cloned()
        .or(from_cookie);
    match tokens.check(presented.as_ref(), Scope::Read) {
        Ok(()) => next.run(request).await,
        // The JSON API's status and `WWW-Authenticate`, with a page a browser can show.
        Err(refused) => {
            let api = refused.into_response();
            let mut page = error_page(
                api.status(),
                &format!(
                    "{refused}: present a read token as `Authorization: Bearer <token>` or in \
                     the cookie `{TOKEN_COOKIE}`"
                ),
            );
            if let Some(challenge) = api.headers().get(header::WWW_AUTHENTICATE) {
                page.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, challenge.clone());
            }
            page
        }
    }
}

/// Query of `GET /ui`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// Only names starting with this.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The last name of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Datasets per page, 1 to [`MAX_PAGE_SIZE`] (larger is clamped), default [`PAGE_SIZE`].
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /ui[?prefix=&cursor=&limit=]`: the dataset list, [`PAGE_SIZE`] a page.
async fn list_page<S: ManifestStore>(
    State(state): State<AppState<S>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page(StatusCode::BAD_REQUEST, "the query string does not parse");
    };
    let limit = query.limit.unwrap_or(PAGE_SIZE);
    if limit == 0 {
        return error_page(StatusCode::BAD_REQUEST, "limit must be at least 1");
    }
    let limit = limit.min(MAX_PAGE_SIZE);
    let prefix = query.prefix.unwrap_or_default();
    let page = state.catalog.list(&prefix, limit, query.cursor.as_deref());
    let next = page
        .next_cursor
        .as_deref()
        .map(|cursor| pages::list_link(&prefix, Some(cursor), query.limit));
    Html(pages::list(&prefix, &page, next.as_deref()).into_string()).into_response()
}

/// Query of `GET /ui/datasets/{name}`.
#[derive(Debug, Default, Deserialize)]
pub struct DatasetQuery {
    /// Version to show (time travel); the latest when absent.
    #[serde(default)]
    pub version: Option<u64>,
}

/// What the dataset page shows beside the manifests.
pub struct Insight {
    /// Per column statistics, or why they are missing.
    pub stats: Result<Vec<parquet::ColumnStats>, String>,
    /// The preview's column names and rows, or why it is missing.
    pub preview: Result<(Vec<String>, Vec<Vec<String>>), String>,
}

/// `GET /ui/datasets/{name}[?version=N]`.
async fn dataset_page<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    query: Result<Query<DatasetQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(query)) = query else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "version must be a positive integer",
        );
    };
    let name = match DatasetName::new(name) {
        Ok(name) => name,
        Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let versions = match state.catalog.fetch_versions(&name).await {
        Ok(versions) => versions,
        Err(error) => return catalog_error(error),
    };
    let selected: Option<Arc<Manifest>> = match query.version {
        None => versions.last().cloned(),
        Some(n) => versions.iter().find(|m| m.version == n).cloned(),
    };
    let Some(manifest) = selected else {
        return error_page(
            StatusCode::NOT_FOUND,
            &format!("dataset {} has no such version", name.as_str()),
        );
    };
    let retained = state.catalog.is_retained(&manifest);
    let insight = insight(&state, &manifest).await;
    let storaged_url = state.storaged.as_ref().map(|s| s.base_url().to_owned());
    Html(
        pages::dataset(
            &manifest,
            &versions,
            retained,
            &insight,
            storaged_url.as_deref(),
        )
        .into_string(),
    )
    .into_response()
}

/// Reads the footers of `manifest`'s objects (at most [`MAX_STATS_OBJECTS`]) and the
/// preview of its first object through the catalog's store. Everything that decodes or
/// computes runs on tokio's blocking pool (footers of up to 16 MiB, statistics over 32 of
/// them, a row group of up to 64 MiB), so other requests keep being served meanwhile.
async fn insight<S: ManifestStore>(state: &AppState<S>, manifest: &Arc<Manifest>) -> Insight {
    let store = state.catalog.store();
    let mut footers = Vec::new();
    let mut failed = None;
    for object in manifest.objects.iter().take(MAX_STATS_OBJECTS) {
        match lakehouse_catalog::footer::read_footer(store, object).await {
            Ok(footer) => footers.push(Arc::new(footer)),
            Err(error) => {
                failed = Some(format!("{}: {}", object.key.as_str(), error_chain(&error)));
                break;
            }
        }
    }
    let first = footers.first().cloned();
    let stats = match failed {
        Some(why) => Err(why),
        None if manifest.objects.len() > MAX_STATS_OBJECTS => Err(format!(
            "this version has {} objects; statistics are read for at most {MAX_STATS_OBJECTS}",
            manifest.objects.len()
        )),
        None => {
            let manifest = Arc::clone(manifest);
            tokio::task::spawn_blocking(move || parquet::column_stats(&manifest.schema, &footers))
                .await
                .map_err(|join| format!("statistics failed: {join}"))
        }
    };
    let preview = match (manifest.objects.first(), first) {
        (Some(object), Some(footer)) => preview(store, object, footer).await,
        (None, _) => Ok((Vec::new(), Vec::new())),
        (Some(_), None) => Err("the first object's footer could not be read".to_owned()),
    };
    Insight { stats, preview }
}

/// The preview of `object`: its first row group read, then decoded on the blocking pool.
async fn preview<S: ManifestStore>(
    store: &S,
    object: &lakehouse_api::ObjectRef,
    footer: Arc<::parquet::file::metadata::ParquetMetaData>,
) -> Result<(Vec<String>, Vec<Vec<String>>), String> {
    let window = match parquet::preview_bytes(store, object, &footer).await {
        Ok(Some(window)) => window,
        Ok(None) => return Ok((Vec::new(), Vec::new())),
        Err(error) => return Err(error_chain(&error)),
    };
    tokio::task::spawn_blocking(move || parquet::preview_rows(window, footer))
        .await
        .map_err(|join| format!("preview failed: {join}"))?
        .map_err(|error| error_chain(&error))
}

/// A catalog failure as a page, with the status the JSON API gives it (404 for an unknown
/// dataset, 503 when storaged is down, ...).
fn catalog_error(error: CatalogError) -> Response {
    let message = error_chain(&error);
    let status = crate::error::api_error(error).into_response().status();
    error_page(status, &message)
}

/// A small HTML page saying `message`, with `status`.
fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error(status, message).into_string())).into_response()
}
