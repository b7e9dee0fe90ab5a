//! The table metadata JSON of the Iceberg spec ("Table Metadata", format version 2), with the
//! spec's field names. Only what this projection writes: unsorted tables of primitive
//! columns, unpartitioned or with one partition spec (id 0). Maps are `BTreeMap`s so the bytes never depend on hashing.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// `v<N>.metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TableMetadata {
    /// Always 2.
    pub format_version: u8,
    /// Derived from the dataset name ([`crate::ids::table_uuid`]).
    pub table_uuid: String,
    /// `<base>/datasets/<name>`.
    pub location: String,
    /// The latest version N.
    pub last_sequence_number: i64,
    /// Commit time of version N, milliseconds since the epoch.
    pub last_updated_ms: i64,
    /// Highest field id of any schema.
    pub last_column_id: i32,
    /// Every schema the dataset had, by `schema-id` (0-based, in order of first use).
    pub schemas: Vec<IcebergSchema>,
    /// The schema of version N.
    pub current_schema_id: i32,
    /// One spec, id 0: the dataset's partition spec, without fields when it is unpartitioned.
    pub partition_specs: Vec<PartitionSpec>,
    /// 0.
    pub default_spec_id: i32,
    /// Highest partition field id: 999 + the number of partition fields (999, the spec's
    /// value for a table with no partition field, when unpartitioned).
    pub last_partition_id: i32,
    /// `schema.name-mapping.default` and the writer's name.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Snapshot of version N.
    pub current_snapshot_id: i64,
    /// One snapshot per retained version, the latest `max_snapshots` at most. Shared: the
    /// next version's metadata carries them over without copying (docs/contract.md section
    /// 10, the commit's work follows what it changes).
    #[serde(serialize_with = "serialize_snapshots")]
    pub snapshots: Vec<Arc<Snapshot>>,
    /// The snapshots' (timestamp, id) in order.
    #[serde(default)]
    pub snapshot_log: Vec<SnapshotLogEntry>,
    /// Earlier metadata files of the retained versions, the latest `max_metadata_log` at
    /// most.
    #[serde(default)]
    pub metadata_log: Vec<MetadataLogEntry>,
    /// One unsorted order, id 0.
    pub sort_orders: Vec<SortOrder>,
    /// 0.
    pub default_sort_order_id: i32,
    /// `main` (branch, version N) and `v<k>` (tag) for each retained version k.
    #[serde(default)]
    pub refs: BTreeMap<String, SnapshotRef>,
}

/// A schema (`struct` type with a `schema-id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IcebergSchema {
    /// Always `struct`.
    #[serde(rename = "type")]
    pub kind: String,
    /// 0-based schema id.
    pub schema_id: i32,
    /// Columns in order.
    pub fields: Vec<NestedField>,
}

/// One column of a schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NestedField {
    /// Field id: column i has id i (1-based).
    pub id: i32,
    /// Column name.
    pub name: String,
    /// Always false: every column is nullable (docs/contract.md section 3).
    pub required: bool,
    /// Iceberg primitive type name (`long`, `string`, `timestamptz`, ...).
    #[serde(rename = "type")]
    pub kind: String,
}

/// A partition spec (Iceberg spec: "Partitioning", serialized as in "Appendix C").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionSpec {
    /// 0.
    pub spec_id: i32,
    /// The dataset's partition fields in order; empty when it is unpartitioned.
    pub fields: Vec<PartitionSpecField>,
}

/// One field of a [`PartitionSpec`] (Iceberg spec: "Partitioning", "Appendix C"):
/// `{"source-id": 3, "field-id": 1000, "name": "ts_day", "transform": "day"}`. The same JSON
/// is a manifest's `partition-spec` header (Iceberg spec: "Manifests").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PartitionSpecField {
    /// Field id of the source column: its 1-based position in the schema (docs/contract.md
    /// section 8).
    pub source_id: i32,
    /// Partition field id: 1000, 1001, ...
    pub field_id: i32,
    /// Partition field name (`ts_day`, `id_bucket`, the column name for identity).
    pub name: String,
    /// Transform in Iceberg's spelling: `identity`, `year`, `month`, `day`, `hour`,
    /// `bucket[N]`, `truncate[W]`.
    pub transform: String,
}

/// A sort order; ours has no fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SortOrder {
    /// 0.
    pub order_id: i32,
    /// Empty.
    pub fields: Vec<serde_json::Value>,
}

/// One snapshot: version N of the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Snapshot {
    /// [`crate::ids::snapshot_id`] of (name, N).
    pub snapshot_id: i64,
    /// Snapshot of version N-1, absent for version 1.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub parent_snapshot_id: Option<i64>,
    /// N.
    pub sequence_number: i64,
    /// Commit time of version N, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Location of its manifest list.
    pub manifest_list: String,
    /// `operation`, `lakehouse.version`, `lakehouse.operation`, `manifests-created` and the
    /// spec's counts (crate docs).
    pub summary: BTreeMap<String, String>,
    /// Schema of version N.
    pub schema_id: i32,
    /// The snapshot's own JSON, made the first time a metadata JSON holding it is written.
    #[serde(skip)]
    pub json: SnapshotJson,
}

/// The compact JSON of a [`Snapshot`], kept with it: a snapshot never changes, and a
/// metadata JSON carries up to `max_snapshots` of them, so each is serialized once, not
/// once per commit (docs/contract.md section 10: a commit's work follows what it changes).
/// The bytes are those the snapshot serializes to. Never part of equality.
#[derive(Debug, Clone, Default)]
pub struct SnapshotJson(std::sync::OnceLock<Option<Box<serde_json::value::RawValue>>>);

impl PartialEq for SnapshotJson {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Snapshot {
    /// This snapshot's JSON (`None` only if it cannot be serialized: then it is written the
    /// ordinary way, which reports why).
    fn raw_json(&self) -> Option<&serde_json::value::RawValue> {
        self.json
            .0
            .get_or_init(|| serde_json::value::to_raw_value(self).ok())
            .as_deref()
    }
}

/// Writes `snapshots` from their kept JSON ([`SnapshotJson`]).
fn serialize_snapshots<S: serde::Serializer>(
    snapshots: &[Arc<Snapshot>],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = serializer.serialize_seq(Some(snapshots.len()))?;
    for snapshot in snapshots {
        match snapshot.raw_json() {
            Some(raw) => seq.serialize_element(raw)?,
            None => seq.serialize_element(&**snapshot)?,
        }
    }
    seq.end()
}

/// A named reference to a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotRef {
    /// The snapshot.
    pub snapshot_id: i64,
    /// `branch` or `tag`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// One entry of `snapshot-log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotLogEntry {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The snapshot.
    pub snapshot_id: i64,
}

/// One entry of `metadata-log`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MetadataLogEntry {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Location of that metadata file.
    pub metadata_file: String,
}
