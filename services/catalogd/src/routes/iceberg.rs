//! The read-only Iceberg REST catalog under `/iceberg` (docs/contract.md section 8; Apache Iceberg
//! REST OpenAPI spec): clients use the URI `http://<catalogd>/iceberg`.
//!
//! One namespace ([`crate::Config::iceberg_namespace`]) holding every dataset as a table.
//! Errors use the Iceberg error model `{"error": {"message", "type", "code"}}`: an unknown
//! namespace or table is a 404 `NoSuchNamespaceException` / `NoSuchTableException`, a bad
//! page token or size a 400 `BadRequestException`, a write route a 406
//! `UnsupportedOperationException`; a fault of the server (a corrupt manifest or metadata
//! file, an error storaged answered, such as a 401 to a wrong service token) a 500
//! `ServiceFailureException`, and only storaged not answering (or a commit race lost too
//! often) a 503 `ServiceUnavailableException` with `Retry-After`, which engines retry
//! (`IcebergRouteError::from_catalog` is the one table). The bearer tokens of `/datasets` apply (read scope), in
//! the same error model (401 `NotAuthorizedException`, 403 `ForbiddenException`), except on
//! `GET /v1/config`, which reveals nothing and which DuckDB calls without a token. With no
//! token configured, any `Authorization` header (pyiceberg sends `Bearer None`) is ignored.
//!
//! `/v1/config` lists no `endpoints`, so clients assume the spec's default set (pyiceberg
//! refuses any route missing from a list when there is one).

use crate::AppState;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, get, on};
use axum::{Json, Router};
use lakehouse_api::{
    DatasetName, IcebergCatalogConfig, IcebergErrorModel, IcebergErrorResponse,
    IcebergListNamespacesResponse, IcebergListTablesResponse, IcebergLoadTableResult,
    IcebergNamespaceResponse, IcebergTableIdentifier, ObjectKey,
};
use lakehouse_catalog::{CatalogError, ManifestStore, StoreError, error_chain};
use lakehouse_server::auth::{AuthError, Scope, Tokens};
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::Modify;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required, ResponseBuilder};

/// Default `pageSize` of the table listing.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest `pageSize`; larger ones are clamped.
pub const MAX_PAGE_SIZE: usize = 1000;

/// An error of the Iceberg REST routes, answered in the Iceberg error model.
#[derive(Debug, thiserror::Error)]
pub enum IcebergRouteError {
    /// The namespace is not the configured one.
    #[error("namespace {0} does not exist")]
    NoSuchNamespace(String),
    /// No dataset of that name.
    #[error("table {namespace}.{table} does not exist")]
    NoSuchTable {
        /// The namespace asked for.
        namespace: String,
        /// The table asked for.
        table: String,
    },
    /// A malformed query parameter.
    #[error("{0}")]
    BadRequest(String),
    /// A write route: this catalog is read-only.
    #[error(
        "{method} {path} is not supported: this Iceberg catalog is read-only (tables change through ingestd)"
    )]
    Unsupported {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// No such route.
    #[error("no route {0}")]
    NoSuchRoute(String),
    /// Missing or invalid bearer token, or a token without read scope.
    #[error(transparent)]
    Auth(AuthError),
    /// storaged does not answer, or other committers kept winning the race for the next
    /// version: a retry later may succeed (503 `ServiceUnavailableException`, `Retry-After`).
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
    /// A fault of this server or what it stores: a corrupt manifest or metadata file, an
    /// error storaged answered (a wrong service token included), a bug. Retrying does not
    /// help (500 `ServiceFailureException`).
    #[error("catalog failed: {0}")]
    ServerError(String),
}

impl IcebergRouteError {
    fn status_and_type(&self) -> (StatusCode, &'static str) {
        match self {
            IcebergRouteError::NoSuchNamespace(_) => {
                (StatusCode::NOT_FOUND, "NoSuchNamespaceException")
            }
            IcebergRouteError::NoSuchTable { .. } => {
                (StatusCode::NOT_FOUND, "NoSuchTableException")
            }
            IcebergRouteError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequestException"),
            IcebergRouteError::Unsupported { .. } => {
                (StatusCode::NOT_ACCEPTABLE, "UnsupportedOperationException")
            }
            IcebergRouteError::NoSuchRoute(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
            IcebergRouteError::Auth(AuthError::Unauthorized) => {
                (StatusCode::UNAUTHORIZED, "NotAuthorizedException")
            }
            IcebergRouteError::Auth(AuthError::Forbidden) => {
                (StatusCode::FORBIDDEN, "ForbiddenException")
            }
            IcebergRouteError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
            ),
            IcebergRouteError::ServerError(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailureException")
            }
        }
    }

    /// The one table from a catalog failure to the Iceberg error an engine sees (Iceberg REST
    /// spec: 404 for what does not exist, 503 only when a retry can succeed, 500 for a
    /// server fault), one arm per variant so a new one is decided here. The read routes
    /// cannot meet the register errors; they are mapped as what they would mean.
    fn from_catalog(error: CatalogError, namespace: &str, table: &DatasetName) -> Self {
        let message = error_chain(&error);
        match error {
            CatalogError::NotFound { .. } => IcebergRouteError::NoSuchTable {
                namespace: namespace.to_owned(),
                table: table.to_string(),
            },
            CatalogError::VersionNotFound { .. } | CatalogError::Gone { .. } => {
                IcebergRouteError::NoSuchRoute(message)
            }
            CatalogError::FingerprintMismatch { .. }
            | CatalogError::InvalidObject { .. }
            | CatalogError::InvalidRequest(_)
            | CatalogError::SchemaDrift { .. }
            | CatalogError::CompactionConflict { .. }
            | CatalogError::KeyMismatch { .. }
            | CatalogError::StaleBase { .. }
            | CatalogError::PartitionSpecMismatch { .. } => IcebergRouteError::BadRequest(message),
            CatalogError::Conflict { .. } | CatalogError::Store(StoreError::Unavailable(_)) => {
                IcebergRouteError::Unavailable(message)
            }
            CatalogError::CorruptManifest { .. }
            | CatalogError::Encode(_)
            | CatalogError::TableMetadata { .. }
            | CatalogError::Store(StoreError::Failed(_)) => IcebergRouteError::ServerError(message),
        }
    }

    /// A store failure outside the catalog's own calls (reading the metadata file back).
    fn from_store(error: StoreError) -> Self {
        let message = error_chain(&error);
        match error {
            StoreError::Unavailable(_) => IcebergRouteError::Unavailable(message),
            StoreError::Failed(_) => IcebergRouteError::ServerError(message),
        }
    }
}

impl IntoResponse for IcebergRouteError {
    fn into_response(self) -> Response {
        let (status, kind) = self.status_and_type();
        let body = IcebergErrorResponse {
            error: IcebergErrorModel {
                message: self.to_string(),
                kind: kind.to_owned(),
                code: status.as_u16(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

type Result<T> = std::result::Result<T, IcebergRouteError>;

/// The `/iceberg` router (nested by [`crate::router`], which gives it its state), protected
/// by `tokens` except for `/v1/config`.
pub fn router<S: ManifestStore>(tokens: Tokens) -> Router<AppState<S>> {
    let mut tables = Router::new()
        .route("/v1/namespaces", get(namespace_list::<S>))
        .route(
            "/v1/namespaces/{ns}",
            get(namespace_get::<S>).head(namespace_head::<S>),
        )
        .route("/v1/namespaces/{ns}/tables", get(table_list::<S>))
        .route(
            "/v1/namespaces/{ns}/tables/{table}",
            get(table_load::<S>).head(table_head::<S>),
        );
    for write in REFUSED_WRITES {
        tables = tables.route(write.path, on(write.method.filter(), unsupported));
    }
    let tables = tables.route_layer(axum::middleware::from_fn_with_state(
        tokens,
        require_read_token,
    ));
    tables
        .route("/v1/config", get(config_get))
        .fallback(no_route)
}

/// The `/datasets` tokens, answered in the Iceberg error model.
async fn require_read_token(
    State(tokens): State<Tokens>,
    request: Request,
    next: Next,
) -> Response {
    match tokens.check(request.headers().get(header::AUTHORIZATION), Scope::Read) {
        Ok(()) => next.run(request).await,
        Err(error) => IcebergRouteError::Auth(error).into_response(),
    }
}

async fn unsupported(request: Request) -> IcebergRouteError {
    IcebergRouteError::Unsupported {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
    }
}

/// A write route of the Iceberg REST spec, answered 406 `UnsupportedOperationException`
/// whatever its body: this catalog is read-only (docs/contract.md section 8; tables change through
/// ingestd). One table serves both the router and the OpenAPI document ([`RefusedWrites`]).
#[derive(Debug, Clone, Copy)]
pub struct RefusedWrite {
    /// The method refused.
    pub method: WriteMethod,
    /// The route under `/iceberg`, with the spec's `{ns}` / `{table}` parameters.
    pub path: &'static str,
    /// What the route would do (the spec's operation), for the document.
    pub what: &'static str,
}

/// Every write route of the Iceberg REST spec (Iceberg REST OpenAPI: the catalog API), plus
/// `POST /v1/namespaces/{ns}`, which is no spec route but would be a write.
pub const REFUSED_WRITES: [RefusedWrite; 11] = [
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces",
        what: "create a namespace",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}",
        what: "no route of the spec; a write",
    },
    RefusedWrite {
        method: WriteMethod::Delete,
        path: "/v1/namespaces/{ns}",
        what: "drop a namespace",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}/properties",
        what: "update a namespace's properties",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}/tables",
        what: "create a table",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}/tables/{table}",
        what: "commit to a table",
    },
    RefusedWrite {
        method: WriteMethod::Delete,
        path: "/v1/namespaces/{ns}/tables/{table}",
        what: "drop a table",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}/register",
        what: "register a table",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/namespaces/{ns}/tables/{table}/metrics",
        what: "report scan metrics",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/tables/rename",
        what: "rename a table",
    },
    RefusedWrite {
        method: WriteMethod::Post,
        path: "/v1/transactions/commit",
        what: "commit a transaction",
    },
];

/// The methods of the refused write routes.
#[derive(Debug, Clone, Copy)]
pub enum WriteMethod {
    /// `POST`.
    Post,
    /// `DELETE`.
    Delete,
}

impl WriteMethod {
    fn filter(self) -> MethodFilter {
        match self {
            WriteMethod::Post => MethodFilter::POST,
            WriteMethod::Delete => MethodFilter::DELETE,
        }
    }

    fn openapi(self) -> HttpMethod {
        match self {
            WriteMethod::Post => HttpMethod::Post,
            WriteMethod::Delete => HttpMethod::Delete,
        }
    }

    fn name(self) -> &'static str {
        match self {
            WriteMethod::Post => "post",
            WriteMethod::Delete => "delete",
        }
    }
}

impl RefusedWrite {
    /// The route's OpenAPI operation: its path parameters, 406, and the token refusals.
    fn operation(&self) -> Operation {
        let error_body = || {
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("IcebergErrorResponse")))
                .build()
        };
        let response = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content("application/json", error_body())
                .build()
        };
        let mut operation = OperationBuilder::new()
            .tag("iceberg")
            .summary(Some(format!("{} (refused: read-only)", self.what)))
            .operation_id(Some(format!(
                "refused_{}_{}",
                self.method.name(),
                self.path
                    .trim_start_matches('/')
                    .replace(['/', '{', '}'], "_")
            )))
            .security(SecurityRequirement::default())
            .security(SecurityRequirement::new("bearer", Vec::<String>::new()))
            .response("406", response(UNSUPPORTED_DOC))
            .response("401", response(NOT_AUTHORIZED_DOC))
            .response("403", response(FORBIDDEN_DOC));
        for (name, description) in [("ns", NS_DOC), ("table", TABLE_DOC)] {
            if self.path.contains(&format!("{{{name}}}")) {
                operation = operation.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True)
                        .description(Some(description))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                );
            }
        }
        operation.build()
    }
}

const UNSUPPORTED_DOC: &str =
    "`UnsupportedOperationException`: this catalog is read-only (tables change through ingestd)";
const NOT_AUTHORIZED_DOC: &str =
    "`NotAuthorizedException`: tokens are configured and none or an unknown one was sent";
const FORBIDDEN_DOC: &str = "`ForbiddenException`: the token has no read scope";
const NS_DOC: &str = "Namespace (the configured one, `catalogd.iceberg_namespace`)";
const TABLE_DOC: &str = "Table: a dataset name";

/// Adds [`REFUSED_WRITES`] to catalogd's OpenAPI document (`modifiers` of its `ApiDoc`).
pub struct RefusedWrites;

impl Modify for RefusedWrites {
    fn modify(&self, openapi: &mut OpenApi) {
        for write in REFUSED_WRITES {
            openapi.paths.add_path_operation(
                format!("/iceberg{}", write.path),
                vec![write.method.openapi()],
                write.operation(),
            );
        }
    }
}

/// The 401 and 403 of every route behind the tokens, in the Iceberg error model.
#[derive(utoipa::IntoResponses)]
pub enum IcebergTokenRefusal {
    /// Tokens are configured and none or an unknown one was sent.
    #[response(
        status = 401,
        description = "`NotAuthorizedException`: tokens are configured and none or an unknown one was sent"
    )]
    NotAuthorized(IcebergErrorResponse),
    /// The token has no read scope.
    #[response(
        status = 403,
        description = "`ForbiddenException`: the token has no read scope"
    )]
    Forbidden(IcebergErrorResponse),
}

/// Path parameters of the namespace routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct NamespacePath {
    /// Namespace (the configured one, `catalogd.iceberg_namespace`).
    pub ns: String,
}

/// Path parameters of the table routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TablePath {
    /// Namespace (the configured one, `catalogd.iceberg_namespace`).
    pub ns: String,
    /// Table: a dataset name.
    pub table: String,
}

async fn no_route(request: Request) -> IcebergRouteError {
    if request.method() == axum::http::Method::GET || request.method() == axum::http::Method::HEAD {
        IcebergRouteError::NoSuchRoute(request.uri().path().to_owned())
    } else {
        unsupported(request).await
    }
}

/// Query of `GET /v1/config`: `warehouse` is accepted (DuckDB sends the name it was given)
/// and ignored, there being one warehouse.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigQuery {
    /// Ignored.
    #[serde(default)]
    pub warehouse: Option<String>,
}

/// `GET /iceberg/v1/config`: no defaults, no overrides, no `endpoints` list.
#[utoipa::path(
    get,
    path = "/iceberg/v1/config",
    tag = "iceberg",
    params(
        ConfigQuery,
    ),
    responses(
        (status = 200, description = "No defaults, no overrides", body = IcebergCatalogConfig),
    )
)]
pub async fn config_get(Query(_query): Query<ConfigQuery>) -> Json<IcebergCatalogConfig> {
    Json(IcebergCatalogConfig::default())
}

fn check_namespace<S>(state: &AppState<S>, ns: &str) -> Result<()> {
    if ns == state.iceberg_namespace {
        Ok(())
    } else {
        Err(IcebergRouteError::NoSuchNamespace(ns.to_owned()))
    }
}

/// Query of `GET /v1/namespaces`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NamespaceListQuery {
    /// Only children of this namespace: ours has none.
    #[serde(default)]
    pub parent: Option<String>,
    /// Accepted; there is one page.
    #[serde(default, rename = "pageToken")]
    pub page_token: Option<String>,
    /// Accepted; there is one page.
    #[serde(default, rename = "pageSize")]
    pub page_size: Option<String>,
}

/// `GET /iceberg/v1/namespaces`: the one namespace (none under a `parent`).
#[utoipa::path(
    get,
    path = "/iceberg/v1/namespaces",
    tag = "iceberg",
    params(
        NamespaceListQuery,
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The one namespace (none under a `parent`); one page", body = IcebergListNamespacesResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn namespace_list<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Query(query): Query<NamespaceListQuery>,
) -> Json<IcebergListNamespacesResponse> {
    let namespaces = match query.parent {
        Some(_) => Vec::new(),
        None => vec![vec![state.iceberg_namespace.clone()]],
    };
    Json(IcebergListNamespacesResponse {
        namespaces,
        next_page_token: None,
    })
}

/// `GET /iceberg/v1/namespaces/{ns}`.
///
/// # Errors
/// 404 `NoSuchNamespaceException`.
#[utoipa::path(
    get,
    path = "/iceberg/v1/namespaces/{ns}",
    tag = "iceberg",
    params(NamespacePath),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The namespace, no properties", body = IcebergNamespaceResponse),
        (status = 404, description = "`NoSuchNamespaceException`", body = IcebergErrorResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn namespace_get<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(ns): Path<String>,
) -> Result<Json<IcebergNamespaceResponse>> {
    check_namespace(&state, &ns)?;
    Ok(Json(IcebergNamespaceResponse {
        namespace: vec![ns],
        properties: BTreeMap::new(),
    }))
}

/// `HEAD /iceberg/v1/namespaces/{ns}`: 204 when it exists.
///
/// # Errors
/// 404 `NoSuchNamespaceException`.
#[utoipa::path(
    head,
    path = "/iceberg/v1/namespaces/{ns}",
    tag = "iceberg",
    params(NamespacePath),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "The namespace exists"),
        (status = 404, description = "`NoSuchNamespaceException`", body = IcebergErrorResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn namespace_head<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(ns): Path<String>,
) -> Result<StatusCode> {
    check_namespace(&state, &ns)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/namespaces/{ns}/tables`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TableListQuery {
    /// `next-page-token` of the previous page.
    #[serde(default, rename = "pageToken")]
    pub page_token: Option<String>,
    /// Page size, 1 to [`MAX_PAGE_SIZE`] (clamped), default [`DEFAULT_PAGE_SIZE`].
    #[serde(default, rename = "pageSize")]
    pub page_size: Option<String>,
}

/// `GET /iceberg/v1/namespaces/{ns}/tables[?pageToken=&pageSize=]`: datasets ascending by
/// name. The page token is the hex of the page's last name (opaque to clients).
///
/// # Errors
/// 404 `NoSuchNamespaceException`; 400 `BadRequestException` for a token that is not one
/// this catalog made or a size that is not a positive integer.
#[utoipa::path(
    get,
    path = "/iceberg/v1/namespaces/{ns}/tables",
    tag = "iceberg",
    params(
        NamespacePath,
        TableListQuery,
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "One page of tables, ascending by name", body = IcebergListTablesResponse),
        (status = 400, description = "`BadRequestException`: a `pageToken` this catalog did not hand out or a `pageSize` that is not a positive integer", body = IcebergErrorResponse),
        (status = 404, description = "`NoSuchNamespaceException`", body = IcebergErrorResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn table_list<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path(ns): Path<String>,
    Query(query): Query<TableListQuery>,
) -> Result<Json<IcebergListTablesResponse>> {
    check_namespace(&state, &ns)?;
    let size = match query.page_size.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                IcebergRouteError::BadRequest(format!(
                    "pageSize {text:?} is not a positive integer"
                ))
            })?
            .min(MAX_PAGE_SIZE),
    };
    let after = match query.page_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(
            hex::decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .filter(|name| DatasetName::new(name.as_str()).is_ok())
                .ok_or_else(|| {
                    IcebergRouteError::BadRequest(format!(
                        "pageToken {token:?} is not a token this catalog handed out"
                    ))
                })?,
        ),
    };
    let page = state.catalog.list("", size, after.as_deref());
    let identifiers = page
        .datasets
        .iter()
        .map(|d| IcebergTableIdentifier {
            namespace: vec![ns.clone()],
            name: d.name.to_string(),
        })
        .collect();
    Ok(Json(IcebergListTablesResponse {
        identifiers,
        next_page_token: page.next_cursor.map(hex::encode),
    }))
}

fn table_name(ns: &str, table: &str) -> Result<DatasetName> {
    DatasetName::new(table).map_err(|_| IcebergRouteError::NoSuchTable {
        namespace: ns.to_owned(),
        table: table.to_owned(),
    })
}

/// `GET /iceberg/v1/namespaces/{ns}/tables/{table}`: the [`IcebergLoadTableResult`] of the
/// dataset's latest version (its metadata healed first if missing), with an `ETag` naming
/// that metadata file.
///
/// # Errors
/// 404 `NoSuchNamespaceException` / `NoSuchTableException`; 503
/// `ServiceUnavailableException` when storaged does not answer; 500
/// `ServiceFailureException` for a corrupt manifest or metadata file or an error storaged
/// answered (a wrong service token).
#[utoipa::path(
    get,
    path = "/iceberg/v1/namespaces/{ns}/tables/{table}",
    tag = "iceberg",
    params(TablePath),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The latest version's table metadata; `ETag` names it", body = IcebergLoadTableResult),
        (status = 404, description = "`NoSuchNamespaceException` or `NoSuchTableException`", body = IcebergErrorResponse),
        (status = 500, description = "`ServiceFailureException`: a corrupt manifest or metadata file, or storaged answered an error", body = IcebergErrorResponse),
        (status = 503, description = "`ServiceUnavailableException`: storaged does not answer", body = IcebergErrorResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn table_load<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path((ns, table)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    check_namespace(&state, &ns)?;
    let _ = headers; // X-Iceberg-Access-Delegation: no credentials are vended
    let name = table_name(&ns, &table)?;
    let catalog = &state.catalog;
    let latest = catalog
        .fetch_latest(&name)
        .await
        .map_err(|e| IcebergRouteError::from_catalog(e, &ns, &name))?;
    let key = lakehouse_iceberg::metadata_file_key(&name, latest.version);
    let object =
        ObjectKey::new(key.clone()).map_err(|e| IcebergRouteError::ServerError(e.to_string()))?;
    let mut bytes = None;
    for attempt in 0..2 {
        if attempt > 0 {
            // Gone since this process wrote it: look at the store again and heal.
            catalog.forget_table_metadata(&name);
        }
        catalog
            .ensure_table_metadata(&name, latest.version)
            .await
            .map_err(|e| IcebergRouteError::from_catalog(e, &ns, &name))?;
        bytes = catalog
            .store()
            .get(&object)
            .await
            .map_err(IcebergRouteError::from_store)?;
        if bytes.is_some() {
            break;
        }
    }
    let bytes = bytes.ok_or_else(|| {
        IcebergRouteError::ServerError(format!("{key} is missing after it was written"))
    })?;
    let metadata: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        IcebergRouteError::ServerError(format!("{key} is not JSON: {}", error_chain(&e)))
    })?;
    let base = catalog.table_base().unwrap_or("memory://");
    let location = lakehouse_iceberg::storage_uri(base, &key);
    let mut config = BTreeMap::new();
    if let Some(s3) = &state.storage.s3 {
        if !s3.endpoint.is_empty() {
            config.insert("s3.endpoint".to_owned(), s3.endpoint.clone());
        }
        config.insert("s3.region".to_owned(), s3.region.clone());
        config.insert(
            "s3.path-style-access".to_owned(),
            s3.path_style_access.to_string(),
        );
    }
    let etag = format!("\"{}-v{}\"", name, latest.version);
    let mut response = Json(IcebergLoadTableResult {
        metadata_location: location,
        metadata,
        config,
    })
    .into_response();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Ok(response)
}

/// `HEAD /iceberg/v1/namespaces/{ns}/tables/{table}`: 204 when the table exists.
///
/// # Errors
/// 404 `NoSuchNamespaceException` / `NoSuchTableException`.
#[utoipa::path(
    head,
    path = "/iceberg/v1/namespaces/{ns}/tables/{table}",
    tag = "iceberg",
    params(TablePath),
    security((), ("bearer" = [])),
    responses(
        (status = 204, description = "The table exists"),
        (status = 404, description = "`NoSuchNamespaceException` or `NoSuchTableException`", body = IcebergErrorResponse),
        (status = 500, description = "`ServiceFailureException`: a corrupt manifest or metadata file, or storaged answered an error", body = IcebergErrorResponse),
        (status = 503, description = "`ServiceUnavailableException`: storaged does not answer", body = IcebergErrorResponse),
        IcebergTokenRefusal,
    )
)]
pub async fn table_head<S: ManifestStore>(
    State(state): State<AppState<S>>,
    Path((ns, table)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_namespace(&state, &ns)?;
    let name = table_name(&ns, &table)?;
    state
        .catalog
        .fetch_latest(&name)
        .await
        .map_err(|e| IcebergRouteError::from_catalog(e, &ns, &name))?;
    Ok(StatusCode::NO_CONTENT)
}
