//! Manifests and manifest lists (Iceberg spec "Manifests", "Manifest Lists"): their records
//! as Avro values, written with [`crate::avro::write_file`] and read back with the
//! `apache-avro` reader, so that a rewrite or a merge copies an entry's snapshot id,
//! sequence numbers and metrics exactly as they were written.

use crate::avro::{manifest_list_schema, write_file};
use crate::layout::{key_of, storage_uri};
use crate::partition::{FieldSummary, Partitioning};
use crate::{ColumnMetrics, FileMetrics, IcebergError, Result, ids};
use apache_avro::types::Value;
use lakehouse_api::ObjectRef;
use std::collections::BTreeMap;

/// `status` of a manifest entry: a file carried from an earlier snapshot.
pub(crate) const EXISTING: i32 = 0;
/// `status`: a file the entry's snapshot added.
pub(crate) const ADDED: i32 = 1;
/// `status`: a file the entry's snapshot removed.
pub(crate) const DELETED: i32 = 2;

/// One entry of a manifest list (`manifest_file`), for a data manifest of spec 0
/// (`partition_spec_id` 0, `content` 0), with one partition field summary per spec field
/// (none when unpartitioned: an empty `partitions` array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ManifestFile {
    /// Storage key of the manifest.
    pub key: String,
    /// Its size in bytes.
    pub length: u64,
    /// Sequence number of the snapshot that created it (its version).
    pub sequence_number: i64,
    /// Smallest data sequence number of its live entries.
    pub min_sequence_number: i64,
    /// Snapshot that created it.
    pub added_snapshot_id: i64,
    /// Entries by status: added, existing, deleted.
    pub files: [i32; 3],
    /// Rows of those entries.
    pub rows: [i64; 3],
    /// `partitions`: one summary per partition field, over all its entries.
    pub partitions: Vec<FieldSummary>,
}

impl ManifestFile {
    /// Whether it holds a live (added or existing) entry.
    pub fn is_live(&self) -> bool {
        self.files[0] > 0 || self.files[1] > 0
    }

    /// The manifest list record of this entry.
    fn record(&self, base: &str) -> Value {
        Value::Record(vec![
            (
                "manifest_path".into(),
                Value::String(storage_uri(base, &self.key)),
            ),
            ("manifest_length".into(), Value::Long(self.length as i64)),
            ("partition_spec_id".into(), Value::Int(0)),
            ("content".into(), Value::Int(0)),
            ("sequence_number".into(), Value::Long(self.sequence_number)),
            (
                "min_sequence_number".into(),
                Value::Long(self.min_sequence_number),
            ),
            (
                "added_snapshot_id".into(),
                Value::Long(self.added_snapshot_id),
            ),
            ("added_files_count".into(), Value::Int(self.files[0])),
            ("existing_files_count".into(), Value::Int(self.files[1])),
            ("deleted_files_count".into(), Value::Int(self.files[2])),
            ("added_rows_count".into(), Value::Long(self.rows[0])),
            ("existing_rows_count".into(), Value::Long(self.rows[1])),
            ("deleted_rows_count".into(), Value::Long(self.rows[2])),
            (
                "partitions".into(),
                Value::Union(
                    1,
                    Box::new(Value::Array(
                        self.partitions.iter().map(FieldSummary::record).collect(),
                    )),
                ),
            ),
            (
                "key_metadata".into(),
                Value::Union(0, Box::new(Value::Null)),
            ),
        ])
    }

    /// The list entry of a manifest written at `key` with `length` bytes holding `records`,
    /// created by snapshot `snapshot_id` of sequence number `sequence`, its partition
    /// summaries by `partitioning`.
    pub fn of_records(
        key: String,
        length: u64,
        sequence: i64,
        snapshot_id: i64,
        records: &[Value],
        partitioning: &Partitioning,
    ) -> ManifestFile {
        let mut files = [0i32; 3];
        let mut rows = [0i64; 3];
        let mut min_sequence: Option<i64> = None;
        for record in records {
            let slot = match entry_status(record) {
                ADDED => 0,
                EXISTING => 1,
                _ => 2,
            };
            files[slot] += 1;
            rows[slot] += entry_record_count(record);
            if slot < 2 {
                let sequence = entry_data_sequence(record).unwrap_or(sequence);
                min_sequence = Some(min_sequence.map_or(sequence, |m| m.min(sequence)));
            }
        }
        ManifestFile {
            key,
            length,
            sequence_number: sequence,
            min_sequence_number: min_sequence.unwrap_or(sequence),
            added_snapshot_id: snapshot_id,
            files,
            rows,
            partitions: partitioning.summaries(records),
        }
    }
}

/// The header of a manifest list: the snapshot it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListHeader {
    /// `snapshot-id`.
    pub snapshot_id: i64,
}

/// The bytes of a manifest list at `key` naming `manifests` (in that order), of snapshot
/// `snapshot_id` with parent `parent` and sequence number `sequence`.
pub(crate) fn write_list(
    base: &str,
    key: &str,
    snapshot_id: i64,
    parent: Option<i64>,
    sequence: i64,
    manifests: &[ManifestFile],
) -> Result<Vec<u8>> {
    let metadata = BTreeMap::from([
        ("snapshot-id", snapshot_id.to_string()),
        (
            "parent-snapshot-id",
            parent.map_or_else(|| "null".to_owned(), |p| p.to_string()),
        ),
        ("sequence-number", sequence.to_string()),
        ("format-version", "2".to_owned()),
    ]);
    let records = manifests.iter().map(|m| m.record(base)).collect();
    write_file(
        manifest_list_schema(),
        &metadata,
        ids::sync_marker(key),
        records,
    )
}

fn unreadable(key: &str, reason: impl Into<String>) -> IcebergError {
    IcebergError::Unreadable {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// Reads a manifest list stored at `key` (under `base`) back: its header and its entries.
///
/// # Errors
/// [`IcebergError::Unreadable`] when the bytes are not a manifest list of this shape.
pub(crate) fn read_list(
    base: &str,
    key: &str,
    bytes: &[u8],
) -> Result<(ListHeader, Vec<ManifestFile>)> {
    let reader = apache_avro::Reader::new(bytes).map_err(|e| unreadable(key, e.to_string()))?;
    let snapshot_id = reader
        .user_metadata()
        .get("snapshot-id")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<i64>().ok())
        .ok_or_else(|| unreadable(key, "no snapshot-id in the header"))?;
    let mut manifests = Vec::new();
    for record in reader {
        let record = record.map_err(|e| unreadable(key, e.to_string()))?;
        let long = |name: &str| -> Result<i64> {
            match field(&record, name) {
                Some(Value::Long(v)) => Ok(*v),
                Some(Value::Int(v)) => Ok(i64::from(*v)),
                _ => Err(unreadable(key, format!("no {name} in a list entry"))),
            }
        };
        let int = |name: &str| -> Result<i32> {
            i32::try_from(long(name)?).map_err(|_| unreadable(key, format!("{name} out of range")))
        };
        let Some(Value::String(path)) = field(&record, "manifest_path") else {
            return Err(unreadable(key, "no manifest_path in a list entry"));
        };
        let partitions = match field(&record, "partitions") {
            Some(Value::Union(_, inner)) => match inner.as_ref() {
                Value::Null => Vec::new(),
                Value::Array(items) => items
                    .iter()
                    .map(FieldSummary::from_record)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| unreadable(key, "a partition field summary is malformed"))?,
                _ => return Err(unreadable(key, "partitions is not an array")),
            },
            _ => Vec::new(),
        };
        let manifest_key = key_of(base, path)
            .ok_or_else(|| unreadable(key, format!("manifest {path} is not under {base}")))?;
        manifests.push(ManifestFile {
            key: manifest_key.to_owned(),
            length: u64::try_from(long("manifest_length")?)
                .map_err(|_| unreadable(key, "negative manifest_length"))?,
            sequence_number: long("sequence_number")?,
            min_sequence_number: long("min_sequence_number")?,
            added_snapshot_id: long("added_snapshot_id")?,
            files: [
                int("added_files_count")?,
                int("existing_files_count")?,
                int("deleted_files_count")?,
            ],
            rows: [
                long("added_rows_count")?,
                long("existing_rows_count")?,
                long("deleted_rows_count")?,
            ],
            partitions,
        });
    }
    Ok((ListHeader { snapshot_id }, manifests))
}

/// The entries of a manifest stored at `key`, as the Avro records they were written as.
///
/// # Errors
/// [`IcebergError::Unreadable`] when the bytes are not a manifest of this shape.
pub(crate) fn read_entries(key: &str, bytes: &[u8]) -> Result<Vec<Value>> {
    let reader = apache_avro::Reader::new(bytes).map_err(|e| unreadable(key, e.to_string()))?;
    let mut entries = Vec::new();
    for record in reader {
        let record = record.map_err(|e| unreadable(key, e.to_string()))?;
        if entry_file_path(&record).is_none()
            || !matches!(field(&record, "status"), Some(Value::Int(_)))
        {
            return Err(unreadable(key, "an entry without status or file_path"));
        }
        entries.push(record);
    }
    Ok(entries)
}

/// The bytes of a manifest at `key` holding `records`, whose header names the table schema
/// `schema_json` (an Iceberg schema, compact JSON) with id `schema_id` and the partition
/// spec of `partitioning` (Iceberg spec "Manifests": `partition-spec`, `partition-spec-id`),
/// written with its entry schema.
pub(crate) fn write_manifest(
    key: &str,
    schema_json: &str,
    schema_id: i32,
    partitioning: &Partitioning,
    records: Vec<Value>,
) -> Result<Vec<u8>> {
    let metadata = BTreeMap::from([
        ("schema", schema_json.to_owned()),
        ("schema-id", schema_id.to_string()),
        ("partition-spec", partitioning.spec_json()?),
        ("partition-spec-id", "0".to_owned()),
        ("format-version", "2".to_owned()),
        ("content", "data".to_owned()),
    ]);
    write_file(
        partitioning.entry_schema(),
        &metadata,
        ids::sync_marker(key),
        records,
    )
}

/// The field `name` of a record value.
pub(crate) fn field<'a>(record: &'a Value, name: &str) -> Option<&'a Value> {
    let Value::Record(fields) = record else {
        return None;
    };
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn field_mut<'a>(record: &'a mut Value, name: &str) -> Option<&'a mut Value> {
    let Value::Record(fields) = record else {
        return None;
    };
    fields.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
}

fn optional_long(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Union(_, inner) => match inner.as_ref() {
            Value::Long(v) => Some(*v),
            _ => None,
        },
        Value::Long(v) => Some(*v),
        _ => None,
    }
}

/// `status` of an entry (an unreadable one counts as deleted).
pub(crate) fn entry_status(entry: &Value) -> i32 {
    match field(entry, "status") {
        Some(Value::Int(status)) => *status,
        _ => DELETED,
    }
}

/// `snapshot_id` of an entry.
pub(crate) fn entry_snapshot_id(entry: &Value) -> Option<i64> {
    optional_long(field(entry, "snapshot_id"))
}

/// `sequence_number` (the data sequence number) of an entry.
pub(crate) fn entry_data_sequence(entry: &Value) -> Option<i64> {
    optional_long(field(entry, "sequence_number"))
}

/// `data_file.file_path` of an entry.
pub(crate) fn entry_file_path(entry: &Value) -> Option<&str> {
    match field(field(entry, "data_file")?, "file_path")? {
        Value::String(path) => Some(path),
        _ => None,
    }
}

fn entry_record_count(entry: &Value) -> i64 {
    match field(entry, "data_file").and_then(|f| field(f, "record_count")) {
        Some(Value::Long(rows)) => *rows,
        _ => 0,
    }
}

/// Sets an entry's status to EXISTING (its snapshot id and sequence numbers kept).
pub(crate) fn mark_existing(entry: &mut Value) {
    if let Some(status) = field_mut(entry, "status") {
        *status = Value::Int(EXISTING);
    }
}

/// Sets an entry's status to DELETED by snapshot `snapshot_id` (its sequence numbers kept,
/// as the spec asks of a deleted entry).
pub(crate) fn mark_deleted(entry: &mut Value, snapshot_id: i64) {
    if let Some(status) = field_mut(entry, "status") {
        *status = Value::Int(DELETED);
    }
    if let Some(id) = field_mut(entry, "snapshot_id") {
        *id = long(snapshot_id);
    }
}

fn long(v: i64) -> Value {
    Value::Union(1, Box::new(Value::Long(v)))
}

fn null() -> Value {
    Value::Union(0, Box::new(Value::Null))
}

/// The entry of data file `object` (at `uri`, with `data_file.partition` record
/// `partition`) added by snapshot `snapshot_id` of sequence number `sequence`, with its
/// footer `metrics`.
pub(crate) fn added_entry(
    uri: String,
    object: &ObjectRef,
    partition: Value,
    metrics: &FileMetrics,
    snapshot_id: i64,
    sequence: i64,
) -> Value {
    entry(
        ADDED,
        long(snapshot_id),
        long(sequence),
        data_file(uri, object, partition, Some(metrics)),
    )
}

/// The entry of data file `object` (at `uri`, with `data_file.partition` record
/// `partition`) deleted by snapshot `snapshot_id`, written without reading the manifest that
/// held it: no metrics, and no sequence numbers (the spec's fields are optional, and only an
/// ADDED entry inherits them).
pub(crate) fn deleted_entry(
    uri: String,
    object: &ObjectRef,
    partition: Value,
    snapshot_id: i64,
) -> Value {
    entry(
        DELETED,
        long(snapshot_id),
        null(),
        data_file(uri, object, partition, None),
    )
}

fn entry(status: i32, snapshot_id: Value, sequence: Value, data_file: Value) -> Value {
    Value::Record(vec![
        ("status".into(), Value::Int(status)),
        ("snapshot_id".into(), snapshot_id),
        ("sequence_number".into(), sequence.clone()),
        ("file_sequence_number".into(), sequence),
        ("data_file".into(), data_file),
    ])
}

fn data_file(
    uri: String,
    object: &ObjectRef,
    partition: Value,
    stats: Option<&FileMetrics>,
) -> Value {
    let map = |pick: &dyn Fn(&ColumnMetrics) -> Option<Value>| match stats {
        None => null(),
        Some(stats) => Value::Union(
            1,
            Box::new(Value::Array(
                stats
                    .columns
                    .iter()
                    .filter_map(|(id, column)| {
                        pick(column).map(|value| {
                            Value::Record(vec![
                                ("key".into(), Value::Int(*id)),
                                ("value".into(), value),
                            ])
                        })
                    })
                    .collect(),
            )),
        ),
    };
    let count = |v: Option<u64>| v.map(|v| Value::Long(v as i64));
    Value::Record(vec![
        ("content".into(), Value::Int(0)),
        ("file_path".into(), Value::String(uri)),
        ("file_format".into(), Value::String("PARQUET".into())),
        ("partition".into(), partition),
        ("record_count".into(), Value::Long(object.row_count as i64)),
        ("file_size_in_bytes".into(), Value::Long(object.size as i64)),
        ("column_sizes".into(), map(&|c| count(c.size_bytes))),
        ("value_counts".into(), map(&|c| count(c.value_count))),
        ("null_value_counts".into(), map(&|c| count(c.null_count))),
        ("nan_value_counts".into(), null()),
        (
            "lower_bounds".into(),
            map(&|c| c.lower.clone().map(Value::Bytes)),
        ),
        (
            "upper_bounds".into(),
            map(&|c| c.upper.clone().map(Value::Bytes)),
        ),
        ("key_metadata".into(), null()),
        ("split_offsets".into(), null()),
        ("equality_ids".into(), null()),
        ("sort_order_id".into(), null()),
    ])
}

/// The storage keys of the live data files (entries ADDED or EXISTING) that the manifest
/// list `list`, stored at `list_key` under the storage URI `base`, names: what a reader of
/// its snapshot reads, in list and manifest order. `manifest` gives a manifest's bytes by
/// key.
///
/// # Errors
/// [`IcebergError::Unreadable`] when a file does not parse as this crate writes it or a
/// manifest is missing.
pub fn live_data_files(
    base: &str,
    list_key: &str,
    list: &[u8],
    manifest: impl Fn(&str) -> Option<Vec<u8>>,
) -> Result<Vec<String>> {
    let (_, manifests) = read_list(base, list_key, list)?;
    let mut keys = Vec::new();
    for listed in manifests {
        let bytes = manifest(&listed.key).ok_or_else(|| unreadable(&listed.key, "missing"))?;
        for entry in read_entries(&listed.key, &bytes)? {
            if entry_status(&entry) == DELETED {
                continue;
            }
            if let Some(path) = entry_file_path(&entry) {
                keys.push(key_of(base, path).unwrap_or(path).to_owned());
            }
        }
    }
    Ok(keys)
}
