//! Entries of catalogd's OpenAPI document for the routes whose handlers answer HTML, not the
//! JSON wire types: the catalog page (`GET /ui`, `GET /ui/datasets/{name}`, [`crate::ui`]).
//! Documentation only: these functions are never called.

/// `GET /ui[?prefix=&cursor=&limit=]`: the dataset list page.
#[utoipa::path(
    get,
    path = "/ui",
    tag = "page",
    params(
        ("prefix" = Option<String>, Query, description = "Only names starting with this"),
        ("cursor" = Option<String>, Query, description = "The last name of the previous page"),
        ("limit" = Option<String>, Query, description = "Datasets per page, 1 to 500 (larger is clamped), default 50", pattern = "^0*[1-9][0-9]{0,18}$"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 400, description = "A query that does not parse", body = String, content_type = "text/html"),
        (status = 401, description = "No valid read token (header or cookie): a page saying how to present one, with `WWW-Authenticate: Bearer`", body = String, content_type = "text/html"),
        (status = 403, description = "A token without the read scope", body = String, content_type = "text/html"),
    )
)]
#[allow(dead_code)]
pub(crate) fn ui_list() {}

/// `GET /ui/datasets/{name}[?version=N]`: one dataset's page (the latest version, or `N`).
#[utoipa::path(
    get,
    path = "/ui/datasets/{name}",
    tag = "page",
    params(
        ("name" = String, Path, description = "Dataset name", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"),
        ("version" = Option<String>, Query, description = "Version to show (time travel)", pattern = "^[0-9]{1,19}$"),
    ),
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "The page", body = String, content_type = "text/html"),
        (status = 400, description = "A bad name or version", body = String, content_type = "text/html"),
        (status = 401, description = "No valid read token (header or cookie): a page saying how to present one, with `WWW-Authenticate: Bearer`", body = String, content_type = "text/html"),
        (status = 403, description = "A token without the read scope", body = String, content_type = "text/html"),
        (status = 404, description = "No such dataset or version", body = String, content_type = "text/html"),
        (status = 410, description = "The version is past retention", body = String, content_type = "text/html"),
        (status = 502, description = "storaged answered an error", body = String, content_type = "text/html"),
        (status = 503, description = "storaged does not answer", body = String, content_type = "text/html"),
    )
)]
#[allow(dead_code)]
pub(crate) fn ui_dataset() {}
