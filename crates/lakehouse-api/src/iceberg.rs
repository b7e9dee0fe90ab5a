//! Wire types of the Iceberg side (docs/contract.md section 8): what storaged tells catalogd about
//! its storage, and the bodies of catalogd's read-only Iceberg REST catalog (Apache Iceberg
//! REST OpenAPI spec names, kebab-case as the spec spells them).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Answer of storaged's `GET /location`: the storage's own URI of its root, which catalogd
/// uses as `<base>` of the table locations `<base>/datasets/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StorageLocation {
    /// `file:///<absolute root>` (local), `s3://<bucket>` (s3) or `memory://` (memory: no
    /// engine can open it; for tests).
    pub base: String,
    /// How an engine reaches the bucket (s3 backend only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Location>,
}

/// The S3 settings an engine needs to read the data files (handed to Iceberg clients in
/// `LoadTableResult.config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct S3Location {
    /// Endpoint URL; empty for AWS S3 itself.
    pub endpoint: String,
    /// Region.
    pub region: String,
    /// True when the bucket is addressed as `<endpoint>/<bucket>` (object_store's default).
    pub path_style_access: bool,
}

/// `GET /iceberg/v1/config` (`CatalogConfig`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergCatalogConfig {
    /// Properties a client uses unless it sets its own.
    pub defaults: BTreeMap<String, String>,
    /// Properties that win over the client's.
    pub overrides: BTreeMap<String, String>,
}

/// `GET /iceberg/v1/namespaces` (`ListNamespacesResponse`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IcebergListNamespacesResponse {
    /// Each namespace as its list of levels.
    pub namespaces: Vec<Vec<String>>,
    /// Pass as `pageToken` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /iceberg/v1/namespaces/{ns}` (`GetNamespaceResponse`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergNamespaceResponse {
    /// The namespace's levels.
    pub namespace: Vec<String>,
    /// Its properties.
    pub properties: BTreeMap<String, String>,
}

/// A table's name in its namespace (`TableIdentifier`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergTableIdentifier {
    /// Namespace levels.
    pub namespace: Vec<String>,
    /// Table name (the dataset name).
    pub name: String,
}

/// `GET /iceberg/v1/namespaces/{ns}/tables` (`ListTablesResponse`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IcebergListTablesResponse {
    /// Tables, ascending by name.
    pub identifiers: Vec<IcebergTableIdentifier>,
    /// Pass as `pageToken` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// `GET /iceberg/v1/namespaces/{ns}/tables/{table}` (`LoadTableResult`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IcebergLoadTableResult {
    /// URI of the current metadata JSON.
    pub metadata_location: String,
    /// That file's content (Iceberg spec: table metadata), documented as a free-form object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// What the client needs to read the files (`s3.endpoint`, `s3.region`,
    /// `s3.path-style-access` for s3 tables).
    pub config: BTreeMap<String, String>,
}

/// The Iceberg REST error body (`IcebergErrorResponse`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergErrorResponse {
    /// The error.
    pub error: IcebergErrorModel,
}

/// `ErrorModel` of the Iceberg REST spec.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcebergErrorModel {
    /// Human-readable text.
    pub message: String,
    /// Exception name, e.g. `NoSuchTableException`.
    #[serde(rename = "type")]
    pub kind: String,
    /// HTTP status code.
    pub code: u16,
}
