//! The Apache Iceberg (format version 2) projection of a dataset (docs/contract.md sections 8 and
//! 10), incremental and bounded.
//!
//! Our manifests stay the source of truth; this crate turns version N's change (the data
//! files it adds, with their Parquet footer metrics, and those it removes) and the table at
//! N-1 ([`TableState`], parsed back from N-1's metadata JSON and manifest list) into the
//! bytes of version N's Iceberg files and the table at N. It is a pure function: no clock,
//! no randomness, no I/O, so any replica, retry or restart that recomputes version N from
//! N-1's files writes the same bytes, and the files can be written create-only (an
//! existing one is success).
//!
//! # A commit's work depends on its change, not on history
//! - **Append** (Iceberg's fast append): the new manifest list names one new manifest of the
//!   added files (status ADDED) first, then the previous list's manifests unchanged. No
//!   manifest is read.
//! - **Replace of everything** (every live file removed; operation `overwrite`): the list
//!   names the manifest of the added files and one manifest of the removed ones (status
//!   DELETED, made from the removed objects: no metrics, no sequence numbers), and none of the
//!   previous ones. No manifest is read.
//! - **Compaction** (some files replaced, rows unchanged; operation `replace`) or any other
//!   partial removal (Iceberg's `MergingSnapshotProducer`): the previous live manifests are
//!   read back (Avro); each one holding a removed file is rewritten in its place, its other
//!   entries copied as EXISTING with their snapshot id, sequence numbers and metrics, the
//!   removed ones as DELETED by the new snapshot, earlier DELETED entries dropped; the others
//!   are carried unchanged, and the added files get a new manifest first.
//! - A previous manifest with no live entry left (only DELETED ones) is dropped from the
//!   next list.
//! - **Merging** (module `merge`): a list naming more than
//!   [`TableConfig::manifest_merge_count`] manifests is merged down to at most that many + 1,
//!   by packing manifests from the oldest into bins of about
//!   [`TableConfig::manifest_target_bytes`]; a bin of two or more becomes one manifest
//!   (entries added by the new snapshot stay ADDED, earlier ones become EXISTING with their
//!   snapshot ids and sequence numbers, DELETED entries of earlier snapshots are dropped). A
//!   manifest that has reached the target size is left alone, so a merge reads and writes
//!   about the target size at most, once every `manifest_merge_count` commits.
//!
//! Data sequence number of a file: the version that added it; a snapshot's sequence number
//! and a new manifest's: the version. Snapshot operation: `append`, `overwrite` (a replace),
//! `replace` (a compaction, `lakehouse_api::Operation::Compact`).
//!
//! # The metadata JSON stays small
//! It is rewritten (and fsynced) on every commit, so it is bounded and compact:
//! - at most [`TableConfig::max_snapshots`] snapshots: those of the latest versions from the
//!   oldest retained one (`VersionChange::oldest_retained`), each with its tag `v<k>`, the
//!   branch `main` at N, a `snapshot-log` of exactly those snapshots, and a `metadata-log` of
//!   at most [`TableConfig::max_metadata_log`] earlier metadata files of those versions;
//! - no pretty printing;
//! - a snapshot summary holds `operation`, `lakehouse.version` (N), `lakehouse.operation`
//!   (`replace`, `append`, `compact`: the manifest's `operation`, else derived: an append
//!   when nothing is removed), `manifests-created` (which garbage collection reads), the
//!   spec's added and deleted counts when not zero (`added-data-files`, `added-records`,
//!   `added-files-size`, `deleted-data-files`, `deleted-records`, `removed-files-size`) and
//!   the running totals (`total-data-files`, `total-records`, `total-files-size`, carried
//!   from snapshot to snapshot, never summed over live files). The delete-file totals
//!   (`total-delete-files`, `total-position-deletes`, `total-equality-deletes`) are left out:
//!   they are always zero here, and no reader needs them.
//! - schemas: the dataset's distinct schemas (field id = position + 1, a new schema id for
//!   new columns), and the name mapping of the current one.
//!
//! # Files (module `layout`)
//! Under `datasets/<name>/metadata/`: `v<N>.metadata.json`; `v<N>-<tag>-list.avro`, the
//! manifest list of version N; `v<N>-<tag>-m<j>.avro` (j = 0, 1, ...), the manifests version
//! N created, in the order its list names them (their number is its summary's
//! `manifests-created`). `<tag>` is the commit's ([`ids::commit_tag`]); tables without tags
//! name them `v<N>-list.avro` and `v<N>-m<j>.avro`. Files of the earlier layout (`snap-<snapshot id>-v<N>.avro`, `v<N>-<snapshot id>-m0.avro` and
//! `-m1.avro`) are read and carried as they are.
//!
//! # Partitioned datasets (module `partition`; docs/contract.md section 10)
//! A dataset recorded with a [`lakehouse_api::PartitionSpec`] is a table of spec 0 with its
//! fields (`source-id`: the source column's 1-based position; `last-partition-id`: 999 + the
//! number of fields). Its manifests' `data_file.partition` record has one optional field per
//! spec field (Avro type by result type: `date` and `timestamp-micros` logical types, ...),
//! each entry holding its object's partition tuple, and the manifests' `partition-spec`
//! header names the fields. Each manifest list entry has one field summary per spec field
//! (`contains_null`, `contains_nan`, and the bounds as Iceberg's single-value serialization,
//! "Appendix D"), over all the manifest's entries as Java's `PartitionSummary` makes them;
//! rewrites and merges copy entries with their partitions and recompute the summaries. A
//! change whose spec is not the table's is refused. An unpartitioned dataset's files keep
//! the bytes they had before partitions existed (a spec without fields, an empty
//! `partition` record, empty `partitions` arrays).
//!
//! # Identity, never chance (docs/contract.md section 8)
//! Everything Iceberg usually draws at random is derived from the dataset's identity (see
//! [`ids`]): `table-uuid` from the name, snapshot ids from (name, version), Avro sync
//! markers from the file's key, file names from the version.
//!
//! Not here: HTTP, storage, the REST catalog (catalogd), writing Parquet.

pub mod avro;
pub mod ids;
mod layout;
mod manifest;
pub use manifest::live_data_files;
mod merge;
mod metadata;
mod metrics;
mod partition;
pub mod spec;
mod state;
pub mod stats;
pub mod transform;

pub use layout::{
    iceberg_type, manifest_key, manifest_list_key, metadata_dir, metadata_file_key, name_mapping,
    stem_list_key, stem_manifest_key, storage_uri, version_stem,
};
pub use metrics::{ColumnMetrics, FileMetrics, truncate_lower, truncate_upper};
pub use partition::check_partition_value;
pub use state::{PendingMetadata, TableConfig, TableFile, TableState, VersionChange};
pub use transform::{PartitionBy, PartitionField, PartitionValue, SpecField, Transform};

/// Why a version's files could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IcebergError {
    /// The change does not follow the table: another dataset or version, a removed file that
    /// is not live, or a row count that does not add up.
    #[error("the change does not follow the table: {0}")]
    InvalidInput(String),
    /// A stored file does not parse as what this crate writes, or is not the one expected.
    #[error("stored iceberg file {key} is unreadable: {reason}")]
    Unreadable {
        /// Its storage key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`TableState::commit`] was not given the bytes of a manifest it must read
    /// ([`TableState::manifests_to_read`]).
    #[error("manifest {key} was not given")]
    MissingManifest {
        /// Its storage key.
        key: String,
    },
    /// The Avro writer refused a value (a bug: the schemas are fixed).
    #[error("avro encoding failed")]
    Avro(#[source] Box<apache_avro::Error>),
    /// JSON encoding failed (a bug: every value is serializable).
    #[error("json encoding failed")]
    Json(#[source] serde_json::Error),
    /// A `partition_by` option does not parse ([`PartitionBy::parse`]).
    #[error("partition_by item {number} `{item}` (byte {offset}): {reason}")]
    PartitionSyntax {
        /// The item's text, trimmed.
        item: String,
        /// Its 1-based position in the list.
        number: usize,
        /// Byte offset of its first non-blank character in the option.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A `partition_by` item names a column the schema does not have ([`PartitionBy::bind`]).
    #[error("partition_by item `{item}`: the schema has no column `{column}`")]
    PartitionColumn {
        /// The item in canonical form.
        item: String,
        /// The column name.
        column: String,
    },
    /// A `partition_by` item's transform does not take its column's type
    /// ([`transform::Transform::accepts`]).
    #[error(
        "partition_by item `{item}`: {transform} does not apply to column `{column}` of type {column_type}"
    )]
    PartitionType {
        /// The item in canonical form.
        item: String,
        /// The column name.
        column: String,
        /// The column's type.
        column_type: lakehouse_api::ColumnType,
        /// The transform's keyword (`hour`, `bucket`, ...).
        transform: &'static str,
    },
    /// A `partition_by` item repeats an earlier one: same column, same transform.
    #[error("partition_by item `{item}` appears twice")]
    PartitionDuplicate {
        /// The item in canonical form.
        item: String,
    },
    /// A `partition_by` item is the identity of a `float64` column ([`PartitionBy::spec`];
    /// docs/contract.md section 10): a version records partition values as JSON, which has
    /// no NaN or infinity, so those rows would be recorded in the null partition.
    #[error(
        "partition_by item `{item}`: identity of the float64 column `{column}` is refused: a \
         version records partition values as JSON, which has no NaN or infinity, so rows \
         holding them would land in the null partition; partition by another column, or \
         write the value as an integer (cents, say) and partition by that"
    )]
    PartitionFloatIdentity {
        /// The item in canonical form.
        item: String,
        /// The column name.
        column: String,
    },
    /// A `partition_by` item's partition field name is already taken, by an earlier item or
    /// by a column ([`PartitionBy::bind`]).
    #[error("partition_by item `{item}` would be named `{name}`, as is the {other}")]
    PartitionName {
        /// The item in canonical form.
        item: String,
        /// The partition field name ([`transform::Transform::field_name`]).
        name: String,
        /// What already has it: "partition item `bucket(16,id)`" or "column `ts_day`".
        other: String,
    },
}

impl From<apache_avro::Error> for IcebergError {
    fn from(error: apache_avro::Error) -> Self {
        IcebergError::Avro(Box::new(error))
    }
}

/// Result alias of this crate.
pub type Result<T, E = IcebergError> = std::result::Result<T, E>;
