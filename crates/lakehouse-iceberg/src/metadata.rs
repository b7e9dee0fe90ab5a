//! The table metadata JSON of version N from that of version N-1 (Iceberg spec "Table
//! Metadata"): the schemas, the bounded snapshot list with its tags and logs, the summary.

use crate::layout::{
    iceberg_type, metadata_file_key, metadata_file_version, name_mapping, storage_uri,
};
use crate::metrics::field_id;
use crate::spec::{
    IcebergSchema, MetadataLogEntry, NestedField, PartitionSpec, PartitionSpecField, Snapshot,
    SnapshotLogEntry, SnapshotRef, SortOrder, TableMetadata,
};
use crate::{IcebergError, Result, ids};
use lakehouse_api::{DatasetName, Operation, Schema};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Summary key: the dataset version of a snapshot.
pub(crate) const VERSION_KEY: &str = "lakehouse.version";
/// Summary key: what made the version (`replace`, `append`, `compact`).
pub(crate) const OPERATION_KEY: &str = "lakehouse.operation";
/// Summary key (Iceberg's `SnapshotSummary`): manifests the snapshot created.
pub(crate) const MANIFESTS_CREATED_KEY: &str = "manifests-created";

/// The Iceberg schema `schema_id` of `schema`. Field ids are positions + 1: a dataset's
/// schemas only ever grow by columns added at the end (schema evolution, docs/contract.md section
/// 3), so a column keeps its id in every schema and an added column gets the next unused id
/// (section 8).
pub(crate) fn iceberg_schema(schema: &Schema, schema_id: i32) -> IcebergSchema {
    IcebergSchema {
        kind: "struct".into(),
        schema_id,
        fields: schema
            .fields
            .iter()
            .enumerate()
            .map(|(i, field)| NestedField {
                id: field_id(i),
                name: field.name.clone(),
                required: false,
                kind: iceberg_type(field.data_type).into(),
            })
            .collect(),
    }
}

/// The table's schemas with `schema` among them, and its id: an earlier schema with the
/// same columns (names and types, which is what the schema fingerprint covers, docs/contract.md
/// section 4) keeps its id, a new one gets the next.
pub(crate) fn schemas_with(
    previous: &[IcebergSchema],
    schema: &Schema,
) -> (Vec<IcebergSchema>, i32) {
    let mut schemas = previous.to_vec();
    let candidate = iceberg_schema(schema, 0);
    if let Some(found) = schemas.iter().find(|s| s.fields == candidate.fields) {
        let id = found.schema_id;
        return (schemas, id);
    }
    let id = i32::try_from(schemas.len()).unwrap_or(i32::MAX);
    schemas.push(iceberg_schema(schema, id));
    (schemas, id)
}

/// The counts of one version's change, and the table's running totals after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Files, records and bytes added.
    pub added: [u64; 3],
    /// Files, records and bytes removed.
    pub removed: [u64; 3],
    /// Live files, records and bytes after the change.
    pub total: [u64; 3],
}

/// The running totals (`total-data-files`, `total-records`, `total-files-size`) of a
/// snapshot's summary.
pub(crate) fn totals(snapshot: &Snapshot) -> Option<[u64; 3]> {
    let get = |key: &str| snapshot.summary.get(key)?.parse::<u64>().ok();
    Some([
        get("total-data-files")?,
        get("total-records")?,
        get("total-files-size")?,
    ])
}

/// A snapshot's summary: `operation`, `lakehouse.version`, `lakehouse.operation`,
/// `manifests-created`, the added and deleted counts that are not zero, and the totals.
pub(crate) fn summary(
    operation: &str,
    version: u64,
    lakehouse_operation: Operation,
    manifests_created: usize,
    counts: &Counts,
) -> BTreeMap<String, String> {
    let mut summary = BTreeMap::from([
        ("operation".to_owned(), operation.to_owned()),
        (VERSION_KEY.to_owned(), version.to_string()),
        (
            OPERATION_KEY.to_owned(),
            lakehouse_operation.as_str().to_owned(),
        ),
        (
            MANIFESTS_CREATED_KEY.to_owned(),
            manifests_created.to_string(),
        ),
    ]);
    let names = [
        ("added-data-files", "added-records", "added-files-size"),
        (
            "deleted-data-files",
            "deleted-records",
            "removed-files-size",
        ),
        ("total-data-files", "total-records", "total-files-size"),
    ];
    for (values, (files, records, size), always) in [
        (counts.added, names[0], false),
        (counts.removed, names[1], false),
        (counts.total, names[2], true),
    ] {
        for (key, value) in [(files, values[0]), (records, values[1]), (size, values[2])] {
            if always || value > 0 {
                summary.insert(key.to_owned(), value.to_string());
            }
        }
    }
    summary
}

/// What version N adds to the metadata of N-1.
pub(crate) struct NextMetadata<'a> {
    pub name: &'a DatasetName,
    pub base: &'a str,
    pub snapshot: Snapshot,
    pub schemas: Vec<IcebergSchema>,
    pub schema: &'a Schema,
    /// Spec 0's fields (Iceberg spec "Partitioning"; none when unpartitioned).
    pub partition_fields: Vec<PartitionSpecField>,
    /// Snapshots of versions older than this are dropped.
    pub oldest_retained: u64,
    pub max_snapshots: usize,
    pub max_metadata_log: usize,
}

/// The metadata of version N (`next.snapshot`'s sequence number) after `previous` (none for
/// version 1).
pub(crate) fn next_metadata(
    previous: Option<&TableMetadata>,
    next: NextMetadata<'_>,
) -> TableMetadata {
    let version = next.snapshot.sequence_number;
    let timestamp_ms = next.snapshot.timestamp_ms;
    let lowest = (version as u64)
        .saturating_add(1)
        .saturating_sub(next.max_snapshots.max(1) as u64)
        .max(next.oldest_retained.min(version as u64));
    let mut snapshots: Vec<Arc<Snapshot>> = previous
        .map(|p| {
            p.snapshots
                .iter()
                .filter(|s| s.sequence_number as u64 >= lowest)
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let current = next.snapshot.snapshot_id;
    let schema_id = next.snapshot.schema_id;
    snapshots.push(Arc::new(next.snapshot));
    let mut metadata_log: Vec<MetadataLogEntry> = previous
        .map(|p| {
            let mut log = p.metadata_log.clone();
            log.push(MetadataLogEntry {
                timestamp_ms: p.last_updated_ms,
                metadata_file: storage_uri(
                    next.base,
                    &metadata_file_key(next.name, p.last_sequence_number as u64),
                ),
            });
            log
        })
        .unwrap_or_default();
    metadata_log.retain(|e| metadata_file_version(&e.metadata_file).is_none_or(|v| v >= lowest));
    let excess = metadata_log.len().saturating_sub(next.max_metadata_log);
    metadata_log.drain(..excess);
    let mut refs: BTreeMap<String, SnapshotRef> = snapshots
        .iter()
        .map(|s| {
            let tag = SnapshotRef {
                snapshot_id: s.snapshot_id,
                kind: "tag".into(),
            };
            (format!("v{}", s.sequence_number), tag)
        })
        .collect();
    refs.insert(
        "main".into(),
        SnapshotRef {
            snapshot_id: current,
            kind: "branch".into(),
        },
    );
    let properties = BTreeMap::from([
        (
            "schema.name-mapping.default".to_owned(),
            name_mapping(next.schema),
        ),
        ("write.format.default".to_owned(), "parquet".to_owned()),
        ("lakehouse.dataset".to_owned(), next.name.to_string()),
    ]);
    TableMetadata {
        format_version: 2,
        table_uuid: ids::table_uuid(next.name).to_string(),
        location: storage_uri(next.base, &format!("datasets/{}", next.name.as_str())),
        last_sequence_number: version,
        last_updated_ms: timestamp_ms,
        last_column_id: next
            .schemas
            .iter()
            .map(|s| s.fields.len())
            .max()
            .map_or(0, |n| i32::try_from(n).unwrap_or(i32::MAX)),
        schemas: next.schemas,
        current_schema_id: schema_id,
        // Iceberg spec "Partitioning": field ids from 1000; 999 when there is none.
        last_partition_id: 999 + i32::try_from(next.partition_fields.len()).unwrap_or(0),
        partition_specs: vec![PartitionSpec {
            spec_id: 0,
            fields: next.partition_fields,
        }],
        default_spec_id: 0,
        properties,
        current_snapshot_id: current,
        snapshot_log: snapshots
            .iter()
            .map(|s| SnapshotLogEntry {
                timestamp_ms: s.timestamp_ms,
                snapshot_id: s.snapshot_id,
            })
            .collect(),
        snapshots,
        metadata_log,
        sort_orders: vec![SortOrder {
            order_id: 0,
            fields: Vec::new(),
        }],
        default_sort_order_id: 0,
        refs,
    }
}

/// The bytes of a metadata JSON: compact (no pretty printing: it is rewritten on every
/// commit, and no reader needs the whitespace).
pub(crate) fn to_bytes(metadata: &TableMetadata) -> Result<Vec<u8>> {
    // About 650 bytes a snapshot with its log entry and tag: sized once, not grown ~20 times.
    let mut bytes = Vec::with_capacity(16 * 1024 + 700 * metadata.snapshots.len());
    serde_json::to_writer(&mut bytes, metadata).map_err(IcebergError::Json)?;
    Ok(bytes)
}

/// Milliseconds since the epoch of an RFC 3339 `created_at`; 0 when it does not parse.
pub(crate) fn timestamp_ms(created_at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(created_at).map_or(0, |t| t.timestamp_millis())
}
