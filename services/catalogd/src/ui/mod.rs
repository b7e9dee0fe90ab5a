//! The catalog page (docs/contract.md section 9): `GET /ui` (the dataset list, filtered by name
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
use ::parquet::file::metadata::ParquetMetaData;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lakehouse_api::{DatasetName, Manifest, VersionSummary};
use lakehouse_catalog::footer::read_footer;
use lakehouse_catalog::{CatalogError, ManifestStore, error_chain};
use lakehouse_server::auth::{Scope, Tokens};
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;
use std::sync::Arc;

/// Datasets per page of `GET /ui` unless `limit` says otherwise.
pub const PAGE_SIZE: usize = 50;
/// Largest `limit` of `GET /ui`; larger ones are clamped to it.
pub const MAX_PAGE_SIZE: usize = 500;
/// Objects of a version whose footers the dataset page reads for its statistics, at most.
pub const MAX_STATS_OBJECTS: usize = 32;
/// How many of the latest versions the dataset page charts and lists.
pub const VERSIONS_SHOWN: usize = 200;
/// Name of the cookie that may carry a bearer token for the page.
pub const TOKEN_COOKIE: &str = "lakehouse_token";

/// The page's routes, with the read-token check of `require_read_token`.
pub fn router<S: ManifestStore>(state: AppState<S>) -> Router {
    Router::new()
        .route("/ui", get(list_page::<S>))
        .route("/ui/datasets/{name}", get(dataset_page::<S>))
        // Under `/ui` a page that does not exist is an HTML 404, not the API's JSON
        // (docs/contract.md section 14).
        .route("/ui/{*rest}", axum::routing::any(not_found_page))
        .route_layer(axum::middleware::from_fn_with_state(
            state.tokens.clone(),
            require_read_token,
        ))
        // Open: where a person's browser presents a token once (docs/contract.md section 14).
        .route("/ui/login", get(login_form).post(login_post::<S>))
        .with_state(state)
}

/// `GET /ui/login`: a form taking a read token, for a browser that cannot send an
/// `Authorization` header.
async fn login_form() -> Response {
    Html(pages::login(None).into_string()).into_response()
}

/// The form body of `POST /ui/login`.
#[derive(Debug, Deserialize)]
struct LoginForm {
    /// A read (or write) token.
    token: String,
}

/// `POST /ui/login` (form field `token`): a token with read scope becomes the
/// [`TOKEN_COOKIE`] cookie, `HttpOnly` (no script reads it), `SameSite=Strict` (no other
/// site's page sends it) and `Path=/ui`, for the browser's session, and the answer is a 303
/// to `/ui`; any other token is the form again with a 401. A token that cannot be a cookie
/// value (a space, `;`, `,`, a quote, a backslash or a control character in it) is refused
/// with a 400 saying so. The token is never logged or echoed.
async fn login_post<S: ManifestStore>(State(state): State<AppState<S>>, body: String) -> Response {
    let Ok(LoginForm { token }) = serde_urlencoded::from_str::<LoginForm>(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "the form needs one field, `token`");
    };
    let token = token.trim();
    let cookie_safe = !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'));
    if !cookie_safe {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this token cannot be kept in a cookie; present it as `Authorization: Bearer` instead",
        );
    }
    if !state.tokens.is_open() && state.tokens.scope_of(token.as_bytes()).is_none() {
        let mut page =
            Html(pages::login(Some("That token is not accepted.")).into_string()).into_response();
        *page.status_mut() = StatusCode::UNAUTHORIZED;
        return page;
    }
    let cookie = format!("{TOKEN_COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict");
    match HeaderValue::from_str(&cookie) {
        Ok(cookie) => (
            StatusCode::SEE_OTHER,
            [
                (header::SET_COOKIE, cookie),
                (header::LOCATION, HeaderValue::from_static("/ui")),
            ],
        )
            .into_response(),
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            "this token cannot be kept in a cookie",
        ),
    }
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
                    "{refused}: present a read token as `Authorization: Bearer <token>`, or \
                     once in a browser at /ui/login (it is kept in the cookie `{TOKEN_COOKIE}`)"
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
    /// The "next" link's cursor (opaque: [`crate::routes::cursor`]).
    #[serde(default)]
    pub cursor: Option<String>,
    /// Datasets per page, 1 to [`MAX_PAGE_SIZE`] (larger is clamped), default [`PAGE_SIZE`].
    #[serde(default)]
    pub limit: Option<usize>,
}

/// `GET /ui[?prefix=&cursor=&limit=]`: the dataset list, [`PAGE_SIZE`] a page.
async fn list_page<S: ManifestStore>(
    State(state): State<AppState<S>>,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Response {
    let query = match query {
        Ok(ApiQuery(query)) => query,
        Err(refused) => return error_page(StatusCode::BAD_REQUEST, &refused.body.error.message),
    };
    let after = match query.cursor.as_deref().map(crate::routes::cursor::decode) {
        None => None,
        Some(Ok(name)) => Some(name),
        Some(Err(message)) => return error_page(StatusCode::BAD_REQUEST, &message),
    };
    let limit = query.limit.unwrap_or(PAGE_SIZE);
    if limit == 0 {
        return error_page(StatusCode::BAD_REQUEST, "limit must be at least 1");
    }
    let limit = limit.min(MAX_PAGE_SIZE);
    let prefix = query.prefix.unwrap_or_default();
    let page = state.catalog.list(&prefix, limit, after.as_deref());
    let next = page.next_cursor.as_deref().map(|last| {
        pages::list_link(
            &prefix,
            Some(&crate::routes::cursor::encode(last)),
            query.limit,
        )
    });
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

/// `GET /ui/datasets/{name}[?version=N]`: the manifests and the objects' bytes are read on
/// the runtime (async I/O); the statistics, the preview's decoding and the HTML (CPU work:
/// up to [`MAX_STATS_OBJECTS`] footers folded, a row group of up to
/// [`parquet::MAX_PREVIEW_ROW_GROUP_BYTES`] decoded, every object of the version listed) on
/// tokio's blocking pool, in the request's tracing span, so other requests keep being served
/// meanwhile (docs/contract.md section 9; docs/decisions.md, "Off the runtime").
async fn dataset_page<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(name): Path<String>,
    query: Result<ApiQuery<DatasetQuery>, ApiError>,
) -> Response {
    let query = match query {
        Ok(ApiQuery(query)) => query,
        Err(refused) if refused.body.error.details.get("option").is_some() => {
            return error_page(StatusCode::BAD_REQUEST, &refused.body.error.message);
        }
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "version must be a positive integer",
            );
        }
    };
    let name = match DatasetName::new(name) {
        Ok(name) => name,
        Err(error) => return error_page(StatusCode::BAD_REQUEST, &error.to_string()),
    };
    let view = match dataset_view(&state, &name, query.version).await {
        Ok(view) => view,
        Err(page) => return page,
    };
    let reads = read_objects(state.catalog.store(), &view.manifest).await;
    let storaged_url = state.storaged.as_ref().map(|s| s.base_url().to_owned());
    let span = tracing::Span::current();
    let rendered = tokio::task::spawn_blocking(move || {
        span.in_scope(|| {
            let insight = insight(&view.manifest, reads);
            pages::dataset(&view, &insight, storaged_url.as_deref()).into_string()
        })
    })
    .await;
    match rendered {
        Ok(html) => Html(html).into_response(),
        Err(join) => error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("the page could not be rendered: {join}"),
        ),
    }
}

/// What the dataset page shows from the catalog.
pub struct DatasetView {
    /// The version shown: the latest, or the one asked for (past retention too).
    pub manifest: Arc<Manifest>,
    /// The latest [`VERSIONS_SHOWN`] versions, oldest first.
    pub versions: Vec<VersionSummary>,
    /// The latest version's number.
    pub latest: u64,
    /// Whether retention keeps the shown version (else its objects may be collected).
    pub retained: bool,
}

/// The manifests the page of `name` shows: `version` (the latest when `None`) and the latest
/// [`VERSIONS_SHOWN`] versions. A page costs what it shows, not the dataset's history
/// (docs/contract.md section 10).
///
/// # Errors
/// The error page to answer: 404 for an unknown dataset or version, else the JSON API's
/// status for the catalog's failure ([`catalog_error`]).
async fn dataset_view<S: ManifestStore>(
    state: &AppState<S>,
    name: &DatasetName,
    version: Option<u64>,
) -> Result<DatasetView, Response> {
    let latest = state
        .catalog
        .fetch_latest(name)
        .await
        .map_err(catalog_error)?;
    let latest_version = latest.version;
    let after = latest.version.saturating_sub(VERSIONS_SHOWN as u64);
    let (versions, _) = state
        .catalog
        .fetch_version_page(name, Some(after), VERSIONS_SHOWN)
        .await
        .map_err(catalog_error)?;
    let selected = match version {
        None => Ok(latest),
        Some(n) => state.catalog.fetch_version(name, n).await,
    };
    let manifest = match selected {
        Ok(manifest) => manifest,
        // Past retention: shown with a note, while its manifest is still readable.
        Err(CatalogError::Gone { version, .. }) => state
            .catalog
            .fetch_version_any(name, version)
            .await
            .map_err(catalog_error)?,
        Err(CatalogError::VersionNotFound { .. }) => {
            return Err(error_page(
                StatusCode::NOT_FOUND,
                &format!("dataset {} has no such version", name.as_str()),
            ));
        }
        Err(error) => return Err(catalog_error(error)),
    };
    Ok(DatasetView {
        retained: state.catalog.is_retained(&manifest),
        manifest,
        versions,
        latest: latest_version,
    })
}

/// What the page read of a version's objects, not decoded past their footers.
struct ObjectReads {
    /// The footers read, in the version's order: every object's when the version has at most
    /// [`MAX_STATS_OBJECTS`], else the first object's only (for the preview); cut short at the
    /// first that could not be read.
    footers: Vec<ParquetMetaData>,
    /// Why a footer could not be read (`<key>: <error>`).
    failed: Option<String>,
    /// The first object's first row group; `Ok(None)` when the version has no object or that
    /// object no row group.
    row_group: Result<Option<parquet::PreviewWindow>, String>,
}

/// Reads through the catalog's `store` the footers of `manifest`'s objects (decoded on the
/// blocking pool by the one footer reader) and the first object's first row group.
async fn read_objects<S: ManifestStore>(store: &S, manifest: &Manifest) -> ObjectReads {
    let wanted = if manifest.objects.len() > MAX_STATS_OBJECTS {
        1 // statistics are not shown; the preview needs the first footer
    } else {
        manifest.objects.len()
    };
    let mut footers = Vec::new();
    let mut failed = None;
    for object in manifest.objects.iter().take(wanted) {
        match read_footer(store, object).await {
            Ok(footer) => footers.push(footer),
            Err(error) => {
                failed = Some(format!("{}: {}", object.key.as_str(), error_chain(&error)));
                break;
            }
        }
    }
    let row_group = match (manifest.objects.first(), footers.first()) {
        (Some(object), Some(footer)) => parquet::preview_bytes(store, object, footer)
            .await
            .map_err(|e| error_chain(&e)),
        (None, _) => Ok(None),
        (Some(_), None) => Err("the first object's footer could not be read".to_owned()),
    };
    ObjectReads {
        footers,
        failed,
        row_group,
    }
}

/// The statistics and the preview of `manifest` from what [`read_objects`] read: CPU work
/// (folding the footers' row groups, decoding the row group), for the blocking pool.
fn insight(manifest: &Manifest, reads: ObjectReads) -> Insight {
    let stats = match reads.failed {
        Some(why) => Err(why),
        None if manifest.objects.len() > MAX_STATS_OBJECTS => Err(format!(
            "this version has {} objects; statistics are read for at most {MAX_STATS_OBJECTS}",
            manifest.objects.len()
        )),
        None => Ok(parquet::column_stats(&manifest.schema, &reads.footers)),
    };
    let columns: Vec<String> = manifest.schema.names().map(str::to_owned).collect();
    let preview = match (reads.row_group, reads.footers.into_iter().next()) {
        (Ok(Some(window)), Some(footer)) => {
            parquet::preview_rows(window, Arc::new(footer), &columns).map_err(|e| error_chain(&e))
        }
        (Ok(None), _) if manifest.objects.is_empty() => Ok((Vec::new(), Vec::new())),
        (Ok(_), _) => Ok((columns, Vec::new())),
        (Err(why), _) => Err(why),
    };
    Insight { stats, preview }
}

/// A catalog failure as a page, with the status the JSON API gives it (404 for an unknown
/// dataset, 503 when storaged is down, ...).
fn catalog_error(error: CatalogError) -> Response {
    let message = error_chain(&error);
    let status = crate::error::api_error(error).into_response().status();
    error_page(status, &message)
}

/// An HTML 404 for any other path under `/ui`.
async fn not_found_page(uri: axum::http::Uri) -> Response {
    error_page(
        StatusCode::NOT_FOUND,
        &format!("no page at {}: the catalog starts at /ui", uri.path()),
    )
}

/// A small HTML page saying `message`, with `status`.
fn error_page(status: StatusCode, message: &str) -> Response {
    (status, Html(pages::error(status, message).into_string())).into_response()
}
