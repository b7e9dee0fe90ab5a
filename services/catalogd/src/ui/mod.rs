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
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use lakehouse_api::{DatasetName, Manifest};
use lakehouse_catalog::{CatalogError, ManifestStore, error_chain};
use lakehouse_server::auth::{Scope, Tokens};
use lakehouse_server::{ApiError, ApiQuery};
use serde::Deserialize;

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

/// The page's routes, with the read-token check of [`require_read_token`].
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

/// `GET /ui/datasets/{name}[?version=N]`.
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
    // The latest versions for the chart and the table: a page costs what it shows, not
    // the dataset's history (docs/contract.md section 10).
    let latest = match state.catalog.fetch_latest(&name).await {
        Ok(latest) => latest,
        Err(error) => return catalog_error(error),
    };
    let latest_version = latest.version;
    let after = latest.version.saturating_sub(VERSIONS_SHOWN as u64);
    let versions = match state
        .catalog
        .fetch_version_page(&name, Some(after), VERSIONS_SHOWN)
        .await
    {
        Ok((versions, _)) => versions,
        Err(error) => return catalog_error(error),
    };
    let selected = match query.version {
        None => Ok(latest),
        Some(n) => state.catalog.fetch_version(&name, n).await,
    };
    let manifest = match selected {
        Ok(manifest) => manifest,
        Err(CatalogError::Gone { .. }) => match state
            .catalog
            .fetch_version_any(&name, query.version.unwrap_or(0))
            .await
        {
            Ok(manifest) => manifest,
            Err(error) => return catalog_error(error),
        },
        Err(CatalogError::VersionNotFound { .. }) => {
            return error_page(
                StatusCode::NOT_FOUND,
                &format!("dataset {} has no such version", name.as_str()),
            );
        }
        Err(error) => return catalog_error(error),
    };
    let retained = state.catalog.is_retained(&manifest);
    let insight = insight(&state, &manifest).await;
    let storaged_url = state.storaged.as_ref().map(|s| s.base_url().to_owned());
    Html(
        pages::dataset(
            &manifest,
            &versions,
            latest_version,
            retained,
            &insight,
            storaged_url.as_deref(),
        )
        .into_string(),
    )
    .into_response()
}

/// Reads the footers of `manifest`'s objects (at most [`MAX_STATS_OBJECTS`]) and the
/// preview of its first object.
async fn insight<S: ManifestStore>(state: &AppState<S>, manifest: &Manifest) -> Insight {
    let Some(storaged) = &state.storaged else {
        let why = "storaged is not configured".to_owned();
        return Insight {
            stats: Err(why.clone()),
            preview: Err(why),
        };
    };
    let mut footers = Vec::new();
    let mut failed = None;
    for object in manifest.objects.iter().take(MAX_STATS_OBJECTS) {
        match parquet::footer(storaged, object).await {
            Ok(footer) => footers.push(footer),
            Err(error) => {
                failed = Some(format!("{}: {}", object.key.as_str(), error_chain(&error)));
                break;
            }
        }
    }
    let stats = match failed {
        Some(why) => Err(why),
        None if manifest.objects.len() > MAX_STATS_OBJECTS => Err(format!(
            "this version has {} objects; statistics are read for at most {MAX_STATS_OBJECTS}",
            manifest.objects.len()
        )),
        None => parquet::column_stats(manifest, &footers).map_err(|e| error_chain(&e)),
    };
    let preview = match (manifest.objects.first(), footers.into_iter().next()) {
        (Some(object), Some(footer)) => {
            let columns: Vec<String> = manifest.schema.names().map(str::to_owned).collect();
            parquet::preview(storaged, object, footer, &columns)
                .await
                .map_err(|e| error_chain(&e))
        }
        (None, _) => Ok((Vec::new(), Vec::new())),
        (Some(_), None) => Err("the first object's footer could not be read".to_owned()),
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
