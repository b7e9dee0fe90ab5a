//! The Apache Iceberg (format version 2) projection of a dataset (DESIGN.md section 8).
//!
//! Our manifests stay the source of truth; this crate turns a dataset's manifests 1..N and the
//! Parquet footer statistics of its objects into the bytes of the Iceberg metadata files of
//! version N: `v<N>.metadata.json`, the manifest list of each snapshot and the manifests
//! (Avro, with the spec's field ids). It is a pure function: no clock, no randomness, no I/O,
//! so any replica, and any restart that finds a file missing, produces the same bytes, and
//! the files can be written create-only.
//!
//! The caller (catalogd, through `lakehouse-catalog`) first asks [`TableInput::plan`] which
//! files version N references, writes the missing ones (manifests first, the metadata JSON
//! last, so an existing metadata JSON means everything it references exists), reading the
//! footers ([`FileMetrics::from_parquet`]) only of the data files the missing manifests
//! list ([`PlannedFile::data_files`]).
//!
//! # Identity, never chance (DESIGN.md section 8)
//! Everything Iceberg usually draws at random is derived from the dataset's identity
//! (see [`ids`]): `table-uuid` from the name, snapshot ids from (name, version), Avro sync
//! markers from the file's key, file names from the version and snapshot id.
//!
//! Not here: HTTP, storage, the REST catalog (catalogd), writing Parquet.

pub mod avro;
pub mod ids;
mod metrics;
pub mod spec;
pub mod stats;
mod table;

pub use metrics::{ColumnMetrics, FileMetrics, truncate_lower, truncate_upper};
pub use table::{
    FileKind, PlannedFile, TableInput, iceberg_type, metadata_dir, metadata_file_key, name_mapping,
    storage_uri,
};

/// Why the metadata could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    /// The manifests given are not versions 1..N of one dataset in order.
    #[error("manifests are not versions 1..N of one dataset: {0}")]
    InvalidInput(String),
    /// The Avro writer refused a value (a bug: the schemas are fixed).
    #[error("avro encoding failed")]
    Avro(#[source] Box<apache_avro::Error>),
    /// JSON encoding failed (a bug: every value is serializable).
    #[error("json encoding failed")]
    Json(#[source] serde_json::Error),
}

impl From<apache_avro::Error> for IcebergError {
    fn from(error: apache_avro::Error) -> Self {
        IcebergError::Avro(Box::new(error))
    }
}

/// Result alias of this crate.
pub type Result<T, E = IcebergError> = std::result::Result<T, E>;
