//! Wire contract of the lakehouse trio (docs/contract.md sections 4 and 6).
//!
//! Everything that crosses a process boundary is defined here once and used by both the
//! servers and their clients: the JSON error body and its [`ErrorCode`] table, the validated
//! names ([`DatasetName`], [`ObjectKey`], [`Sha256Digest`]), the Arrow schema as the catalog
//! records it ([`Schema`], [`ColumnType`]) with its [`SchemaFingerprint`], the [`Manifest`],
//! and the request and response bodies of each service in a module of its own ([`storage`],
//! [`catalog`], [`ingest`]), all re-exported here. Bodies are named
//! `<Noun><Verb>Request` / `<Noun><Verb>Response` (`ObjectPutResponse`,
//! `VersionRegisterRequest`, `DatasetListResponse`).
//!
//! This crate does no I/O and knows nothing of HTTP servers or clients: only serde, the `http`
//! status codes of the error table and SHA-256 for the schema fingerprint.

pub mod catalog;
mod error;
pub mod iceberg;
pub mod ingest;
pub mod load;
mod manifest;
mod names;
mod partition;
mod schema;
pub mod storage;

pub use catalog::{
    DatasetDropResponse, DatasetListResponse, DatasetSummary, GcRunResponse, VersionListResponse,
    VersionRegisterRequest, VersionRegisterResponse, VersionSummary,
};
#[cfg(feature = "openapi")]
pub use error::TokenRefusal;
pub use error::{ErrorBody, ErrorCode, ErrorInfo, error_chain};
pub use iceberg::{
    IcebergCatalogConfig, IcebergErrorModel, IcebergErrorResponse, IcebergListNamespacesResponse,
    IcebergListTablesResponse, IcebergLoadTableResult, IcebergNamespaceResponse,
    IcebergTableIdentifier, S3Location, StorageLocation,
};
pub use ingest::{CompactResponse, IngestResponse, MergeCounts};
pub use load::{
    LoadCreateRequest, LoadCreateResponse, LoadFile, LoadFileState, LoadGetResponse,
    LoadListResponse, LoadState, LoadSummary, LoadedFile, LoadedFileListResponse,
};
pub use manifest::{
    ColumnReport, Compression, CsvOptions, DateOrder, DecidedBy, DecimalSeparator,
    INFERENCE_VERSION, IngestMode, Manifest, ObjectRef, Operation, RejectsRef, SchemaEvolution,
    Source, SourceFile, TextEncoding,
};
pub use names::{DatasetName, NameError, ObjectKey, Sha256Digest};
pub use partition::{
    PartitionScalar, PartitionSpec, PartitionSpecField, PartitionTuple, compare_tuples,
    partition_by_text,
};
pub use schema::{
    ColumnChange, ColumnType, Field, Schema, SchemaDriftDetails, SchemaFingerprint,
    fingerprint_of_pairs,
};
pub use storage::{ObjectInfo, ObjectListResponse, ObjectPutResponse};

/// Header that makes a storaged PUT verify the body's SHA-256 (lowercase hex), docs/contract.md
/// section 6.
pub const CHECKSUM_HEADER: &str = "x-checksum-sha256";
