//! `/objects`: PUT, GET, HEAD and DELETE of one object, the ordered listing (docs/contract.md
//! section 6), and the content-addressed POST.

use super::range::{ByteRange, quoted_etag};
use crate::AppState;
use crate::error::StoragedError;
use crate::store::{
    DEFAULT_LIST_LIMIT, Fetched, MAX_LIST_LIMIT, ObjectPutResponse, PutCondition, parse_key,
};
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::SecondsFormat;
use lakehouse_api::{
    CHECKSUM_HEADER, ErrorBody, ObjectInfo, ObjectKey, ObjectListResponse, Sha256Digest,
};
use lakehouse_server::ApiQuery;
use object_store::ObjectMeta;
use serde::Deserialize;

/// Query of `GET /objects`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ObjectsListQuery {
    /// String prefix keys must start with (default: every key).
    #[serde(default)]
    pub prefix: String,
    /// Only keys strictly greater than this (byte order): the previous page's
    /// `next_start_after`.
    pub start_after: Option<String>,
    /// Objects per page, 1 to 10000 (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// `/`: list the "directories" right under `prefix` (which must be empty or end in `/`)
    /// as `common_prefixes`, and no objects; the only delimiter supported.
    pub delimiter: Option<String>,
}

/// The key of `/objects/{*key}`, validated before any I/O.
fn object_key(path: Result<Path<String>, PathRejection>) -> Result<ObjectKey, StoragedError> {
    match path {
        Ok(Path(raw)) => parse_key(&raw),
        Err(rejection) => Err(StoragedError::InvalidKey {
            key: String::new(),
            reason: rejection.body_text(),
        }),
    }
}

/// `PUT /objects/{*key}`: streams the body into the object; 201 `{key, size, sha256}`.
///
/// `If-None-Match: *` makes it create-only (412 `already_exists` when the key is taken);
/// `x-checksum-sha256: <64 hex>` makes it verify the body (400 `digest_mismatch`, nothing
/// stored). Any other `If-None-Match` value, and `If-Match`, are 400 `invalid_request`.
///
/// # Errors
/// 400 `invalid_key` before any I/O for a bad key, 400 `invalid_request` for a bad header,
/// then whatever [`Store::put`](crate::store::Store::put) returns.
#[utoipa::path(
    put,
    path = "/objects/{key}",
    tag = "objects",
    params(
        ("key" = String, Path, description = "Object key: `/`-separated segments of `[A-Za-z0-9._=-]` (no `.` or `..` segment), at most 1024 bytes", pattern = r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", max_length = 1024),
        ("if-none-match" = Option<String>, Header, description = "`*`: create-only (412 when the key exists)", pattern = r"^\s*\*\s*$"),
        ("x-checksum-sha256" = Option<String>, Header, description = "64 hex digits the body's SHA-256 must equal", pattern = "^[0-9a-fA-F]{64}$"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Stored", body = ObjectPutResponse),
        (status = 400, description = "`invalid_key`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 412, description = "`already_exists` (create-only)", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn object_put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ObjectPutResponse>), StoragedError> {
    let key = object_key(path)?;
    let condition = match headers.get(header::IF_NONE_MATCH) {
        None => PutCondition::Overwrite,
        Some(value) if value.as_bytes().trim_ascii() == b"*" => PutCondition::CreateOnly,
        Some(_) => {
            return Err(StoragedError::InvalidHeader {
                header: "if-none-match",
                reason: "only `*` (create-only) is supported".into(),
            });
        }
    };
    if headers.contains_key(header::IF_MATCH) {
        return Err(StoragedError::InvalidHeader {
            header: "if-match",
            reason: "conditional overwrite is not supported".into(),
        });
    }
    let expected = expected_checksum(&headers)?;
    let stored = state
        .store
        .put(&key, condition, expected.as_ref(), body.into_data_stream())
        .await?;
    crate::metrics::written(stored.size);
    tracing::info!(key = %stored.key, size = stored.size, sha256 = %stored.sha256, "object stored");
    Ok((StatusCode::CREATED, Json(stored)))
}

/// The `x-checksum-sha256` a write must match, when sent.
fn expected_checksum(headers: &HeaderMap) -> Result<Option<Sha256Digest>, StoragedError> {
    let Some(value) = headers.get(CHECKSUM_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    Sha256Digest::new(text)
        .map(Some)
        .map_err(|_| StoragedError::InvalidHeader {
            header: CHECKSUM_HEADER,
            reason: "must be 64 hex digits".into(),
        })
}

/// Query of the content-addressed `POST /objects/{*dir}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ContentAddressQuery {
    /// Appended to the hex digest to make the last segment, for example `.parquet`: at most
    /// 32 bytes of `[A-Za-z0-9._=-]` (default none).
    #[serde(default)]
    #[param(pattern = "^[A-Za-z0-9._=-]{0,32}$")]
    pub suffix: String,
}

/// `POST /objects/{*dir}[?suffix=.parquet]`: streams the body (any length, chunked is fine)
/// into the object named by its own SHA-256, `{dir}/{sha256 hex}{suffix}`: 201
/// `{key, size, sha256}` when created, 200 with the same body when that key already held
/// these bytes. For a writer that streams an object before it knows its digest (ingestd
/// sends Parquet while it encodes); see [`Store::put_content_addressed`](crate::store::Store::put_content_addressed).
/// `x-checksum-sha256` is honoured as for PUT. Not part of docs/contract.md section 6's list
/// (docs/decisions.md says why).
///
/// # Errors
/// 400 `invalid_key` before any I/O for a bad `dir` or `suffix`, 400 `invalid_request` for
/// a bad header or query, then what the store returns (nothing is stored on any error).
#[utoipa::path(
    post,
    path = "/objects/{key}",
    tag = "objects",
    params(
        ("key" = String, Path, description = "The directory the object goes under (a key)", pattern = r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", max_length = 1024),
        ContentAddressQuery,
        ("x-checksum-sha256" = Option<String>, Header, description = "64 hex digits the body's SHA-256 must equal", pattern = "^[0-9a-fA-F]{64}$"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Created under its digest", body = ObjectPutResponse),
        (status = 200, description = "The key already held these bytes", body = ObjectPutResponse),
        (status = 400, description = "`invalid_key`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn object_post(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    ApiQuery(query): ApiQuery<ContentAddressQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ObjectPutResponse>), StoragedError> {
    let dir = object_key(path)?;
    let expected = expected_checksum(&headers)?;
    let (stored, created) = state
        .store
        .put_content_addressed(
            &dir,
            &query.suffix,
            expected.as_ref(),
            body.into_data_stream(),
        )
        .await?;
    tracing::info!(
        key = %stored.key,
        size = stored.size,
        created,
        "content-addressed object stored"
    );
    if created {
        crate::metrics::written(stored.size);
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(stored)))
}

/// `GET /objects/{*key}`: the object's bytes, streamed, with `Content-Length`, `ETag`,
/// `Last-Modified` and `Accept-Ranges: bytes`.
///
/// One `Range` (`bytes=a-b`, `a-`, `-n`) gives 206 with `Content-Range`; several ranges give
/// the whole object with 200; an unsatisfiable or malformed `bytes=` range gives 416
/// `invalid_range` with `Content-Range: bytes */<size>`.
///
/// # Errors
/// 400 `invalid_key`, 404 `not_found`, 416 `invalid_range`.
#[utoipa::path(
    get,
    path = "/objects/{key}",
    tag = "objects",
    params(("key" = String, Path, description = "Object key: `/`-separated segments of `[A-Za-z0-9._=-]` (no `.` or `..` segment), at most 1024 bytes", pattern = r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", max_length = 1024), ("range" = Option<String>, Header, description = "`bytes=a-b`, `bytes=a-` or `bytes=-n`")),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The object's bytes", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 206, description = "One range of them", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "`invalid_key`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 416, description = "`invalid_range`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn object_get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, StoragedError> {
    let key = object_key(path)?;
    let range_header = headers
        .get(header::RANGE)
        .map(|v| v.to_str().unwrap_or("bytes=?"));
    let unsatisfiable = |size| StoragedError::RangeNotSatisfiable {
        range: range_header.unwrap_or_default().to_owned(),
        size,
    };
    let range = match ByteRange::from_header(range_header) {
        ByteRange::Whole => None,
        ByteRange::Part(range) => Some(range),
        ByteRange::Malformed => return Err(unsatisfiable(state.store.head(&key).await?.size)),
    };
    let read = match state.store.get(&key, range).await? {
        Fetched::Read(read) => read,
        Fetched::Unsatisfiable { size } => return Err(unsatisfiable(size)),
    };
    let mut response_headers = object_headers(&read.meta, read.range.end - read.range.start);
    let status = if read.partial {
        let value = format!(
            "bytes {}-{}/{}",
            read.range.start,
            read.range.end.saturating_sub(1),
            read.meta.size
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            response_headers.insert(header::CONTENT_RANGE, value);
        }
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = futures::TryStreamExt::inspect_ok(read.body, |chunk| {
        crate::metrics::read(chunk.len() as u64)
    });
    Ok((status, response_headers, Body::from_stream(body)).into_response())
}

/// `HEAD /objects/{*key}`: the headers of a whole-object GET, no body (`Range` is ignored).
///
/// # Errors
/// 400 `invalid_key`, 404 `not_found` (status only, as HEAD has no body).
#[utoipa::path(
    head,
    path = "/objects/{key}",
    tag = "objects",
    params(("key" = String, Path, description = "Object key: `/`-separated segments of `[A-Za-z0-9._=-]` (no `.` or `..` segment), at most 1024 bytes", pattern = r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", max_length = 1024)),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The headers of a GET, no body"),
        (status = 400, description = "`invalid_key` (no body)"),
        (status = 401, description = "`unauthorized` (no body)"),
        (status = 403, description = "`forbidden` (no body)"),
        (status = 404, description = "`not_found` (no body)"),
        (status = 503, description = "`unavailable` (no body)"),
    )
)]
pub async fn object_head(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, StoragedError> {
    let key = object_key(path)?;
    let meta = state.store.head(&key).await?;
    Ok((StatusCode::OK, object_headers(&meta, meta.size)).into_response())
}

/// `DELETE /objects/{*key}`: 204.
///
/// # Errors
/// 400 `invalid_key`, 404 `not_found`.
#[utoipa::path(
    delete,
    path = "/objects/{key}",
    tag = "objects",
    params(("key" = String, Path, description = "Object key: `/`-separated segments of `[A-Za-z0-9._=-]` (no `.` or `..` segment), at most 1024 bytes", pattern = r"^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", max_length = 1024)),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_key`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn object_delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, StoragedError> {
    let key = object_key(path)?;
    state.store.delete(&key).await?;
    tracing::info!(key = %key, "object deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /objects?prefix=&start_after=&limit=`: `{objects, next_start_after}`, keys ascending
/// in byte order, `prefix` a plain string prefix; with `delimiter=/`, `{common_prefixes}`:
/// the "directories" right under `prefix`.
///
/// # Errors
/// 400 `invalid_option` for an unknown parameter or a `limit` outside 1..=10000.
#[utoipa::path(
    get,
    path = "/objects",
    tag = "objects",
    params(ObjectsListQuery),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of keys, ascending", body = ObjectListResponse),
        (status = 400, description = "`invalid_option`", body = ErrorBody),
        lakehouse_api::TokenRefusal,
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn objects_list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ObjectsListQuery>,
) -> Result<Json<ObjectListResponse>, StoragedError> {
    let limit = query.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(StoragedError::InvalidOption {
            option: "limit",
            reason: format!("must be between 1 and {MAX_LIST_LIMIT}, got {limit}"),
        });
    }
    if let Some(delimiter) = &query.delimiter {
        if delimiter != "/" || !(query.prefix.is_empty() || query.prefix.ends_with('/')) {
            return Err(StoragedError::InvalidOption {
                option: "delimiter",
                reason: "the only delimiter is `/`, with a prefix that is empty or ends in `/`"
                    .into(),
            });
        }
        let common_prefixes = state.store.list_dirs(&query.prefix).await?;
        return Ok(Json(ObjectListResponse {
            objects: Vec::new(),
            next_start_after: None,
            common_prefixes,
        }));
    }
    let page = state
        .store
        .list(&query.prefix, query.start_after.as_deref(), limit)
        .await?;
    let objects = page
        .objects
        .iter()
        .filter_map(|meta| {
            Some(ObjectInfo {
                key: ObjectKey::new(meta.location.as_ref()).ok()?,
                size: meta.size,
                etag: quoted_etag(meta),
                last_modified: meta
                    .last_modified
                    .to_rfc3339_opts(SecondsFormat::Millis, true),
            })
        })
        .collect();
    Ok(Json(ObjectListResponse {
        objects,
        next_start_after: page.next_start_after,
        common_prefixes: Vec::new(),
    }))
}

/// Headers shared by GET and HEAD.
fn object_headers(meta: &ObjectMeta, content_length: u64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(content_length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(etag) = quoted_etag(meta).and_then(|t| HeaderValue::from_str(&t).ok()) {
        headers.insert(header::ETAG, etag);
    }
    let modified = meta
        .last_modified
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    if let Ok(value) = HeaderValue::from_str(&modified) {
        headers.insert(header::LAST_MODIFIED, value);
    }
    headers
}
