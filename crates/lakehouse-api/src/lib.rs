//! Wire contract of the lakehouse trio (DESIGN.md sections 4 and 6).
//!
//! Everything that crosses a process boundary is defined here once and used by both the
//! servers and their clients: the JSON error body and its [`ErrorCode`] table, the validated
//! names ([`DatasetName`], [`ObjectKey`], [`Sha256Digest`]), the Arrow schema as the catalog
//! records it ([`Schema`], [`ColumnType`]) with its fingerprint, the manifest and the request
//! and response bodies of the three services.
//!
//! This crate does no I/O and knows nothing of HTTP servers or clients: only serde, the `http`
//! status codes of the error table and SHA-256 for the schema fingerprint.

mod error;
mod iceberg;
mod manifest;
mod names;
mod schema;

pub use error::{ErrorBody, ErrorCode, ErrorInfo};
pub use iceberg::{
    IcebergCatalogConfig, IcebergErrorModel, IcebergErrorResponse, IcebergListNamespacesResponse,
    IcebergListTablesResponse, IcebergLoadTableResult, IcebergNamespaceResponse,
    IcebergTableIdentifier, S3Location, StorageLocation,
};
pub use manifest::{
    ColumnChange, CsvOptions, DatasetListResponse, DatasetSummary, GcRunResponse,
    INFERENCE_VERSION, IngestMode, IngestResponse, ListObjectsResponse, Manifest, ObjectInfo,
    ObjectPutResponse, ObjectRef, ReadLimits, RegisterVersionRequest, RegisterVersionResponse,
    SchemaDriftDetails, Source, VersionListResponse, VersionSummary,
};
pub use names::{DatasetName, NameError, ObjectKey, Sha256Digest};
pub use schema::{ColumnType, Field, Schema, fingerprint_of_pairs};

/// Header that makes a storaged PUT verify the body's SHA-256 (lowercase hex), DESIGN.md
/// section 6.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";
