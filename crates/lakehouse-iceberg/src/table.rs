//! Version N of a dataset as Iceberg files: which files, and their bytes (DESIGN.md section 8).
//!
//! Per version k of the dataset (k = 1..N), against version k-1:
//! - added objects = in k, not in k-1; removed = in k-1, not in k; kept = in both.
//! - No removed object: the snapshot's operation is `append`; its manifest list holds a new
//!   manifest `m0` of the added objects (status ADDED) first, then the live manifests of
//!   k-1's list, unchanged (a fast append: an append adds a file, it rewrites nothing).
//! - Otherwise `overwrite` (mode replace): its list holds `m0` with the kept objects
//!   (EXISTING, with their first snapshot and sequence number) and the added ones (ADDED),
//!   and `m1` with the removed ones (DELETED).
//! - Data sequence number of a file: the version that added it; snapshot sequence number: k.
//!
//! The metadata JSON of version N keeps the snapshots of the retained versions (the caller's
//! choice, [`TableInput::retained`]), a tag `v<k>` for each and the branch `main` at N.
//!
//! File keys, under `datasets/<name>/metadata/`: `v<N>.metadata.json`,
//! `snap-<snapshot id>-v<k>.avro` (manifest list of version k), `v<k>-<snapshot id>-m0.avro`
//! and `-m1.avro` (manifests).

use crate::avro::{manifest_entry_schema, manifest_list_schema, write_file};
use crate::metrics::field_id;
use crate::spec::{
    IcebergSchema, MetadataLogEntry, NestedField, PartitionSpec, Snapshot, SnapshotLogEntry,
    SnapshotRef, SortOrder, TableMetadata,
};
use crate::{FileMetrics, IcebergError, Result, ids};
use apache_avro::types::Value;
use lakehouse_api::{ColumnType, DatasetName, Manifest, ObjectKey, ObjectRef, Schema};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// The Iceberg primitive type of a column type (Iceberg spec "Primitive Types").
pub fn iceberg_type(data_type: ColumnType) -> &'static str {
    match data_type {
        ColumnType::Bool => "boolean",
        ColumnType::Int64 => "long",
        ColumnType::Float64 => "double",
        ColumnType::Date32 => "date",
        ColumnType::Time64 => "time",
        ColumnType::TimestampUtc => "timestamptz",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Utf8 => "string",
    }
}

/// The URI of storage key `key` under the storage's own URI `base` (`file:///<root>`,
/// `s3://<bucket>`, `memory://`; DESIGN.md section 8): `<base>/<key>`, one slash between.
pub fn storage_uri(base: &str, key: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{key}")
    } else {
        format!("{base}/{key}")
    }
}

/// `datasets/<name>/metadata/`: where a dataset's Iceberg files live.
pub fn metadata_dir(name: &DatasetName) -> String {
    format!("datasets/{}/metadata/", name.as_str())
}

/// Key of version `version`'s metadata JSON: `datasets/<name>/metadata/v<version>.metadata.json`.
pub fn metadata_file_key(name: &DatasetName, version: u64) -> String {
    format!("{}v{version}.metadata.json", metadata_dir(name))
}

/// The `schema.name-mapping.default` property of `schema`: `[{"field-id": i, "names":
/// [name]}, ...]`, so files written without field ids read by name.
pub fn name_mapping(schema: &Schema) -> String {
    let entries: Vec<serde_json::Value> = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| serde_json::json!({"field-id": field_id(i), "names": [field.name]}))
        .collect();
    serde_json::Value::Array(entries).to_string()
}

/// What kind of file a [`PlannedFile`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A manifest (`m0`: live entries, `m1`: deleted entries) of a version.
    Manifest {
        /// The version that wrote it.
        version: u64,
        /// True for `m1`.
        deleted: bool,
    },
    /// The manifest list of a version's snapshot.
    ManifestList {
        /// Its version.
        version: u64,
    },
    /// `v<N>.metadata.json`.
    Metadata,
}

/// One file version N references, in the order to write them ([`TableInput::plan`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Its storage key, under `datasets/<name>/metadata/`.
    pub key: String,
    /// What it is.
    pub kind: FileKind,
    /// Data files whose footer metrics rendering it needs (live entries of an `m0`).
    pub data_files: Vec<ObjectRef>,
    /// Keys of the manifests whose lengths rendering it needs (a manifest list).
    pub manifests: Vec<String>,
}

#[derive(Debug, Clone)]
struct Entry {
    object: ObjectRef,
    /// 0 existing, 1 added, 2 deleted.
    status: i32,
    snapshot_id: i64,
    data_sequence: i64,
}

#[derive(Debug, Clone)]
struct VersionPlan {
    version: u64,
    snapshot_id: i64,
    parent: Option<i64>,
    timestamp_ms: i64,
    schema_id: i32,
    overwrite: bool,
    live: Vec<Entry>,
    deleted: Vec<Entry>,
    /// Keys of the manifests of its list, newest first.
    list: Vec<String>,
    /// Keys of its live manifests (what an append carries over).
    live_manifests: Vec<String>,
}

/// A dataset's versions 1..N and where its table lives: the input of the projection.
#[derive(Debug, Clone)]
pub struct TableInput {
    name: DatasetName,
    base: String,
    manifests: Vec<Arc<Manifest>>,
    retained: BTreeSet<u64>,
    schemas: Vec<Schema>,
    versions: Vec<VersionPlan>,
}

impl TableInput {
    /// The table of `manifests` (versions 1..N of one dataset, ascending) at
    /// `<base>/datasets/<name>`, keeping the snapshots of the versions in `retained`
    /// (version N is always kept). `base` is the storage's URI of its root (`file:///...`,
    /// `s3://<bucket>`, `memory://`).
    ///
    /// # Errors
    /// [`IcebergError::InvalidInput`] when `manifests` is empty or not versions 1..N of one
    /// dataset in order.
    pub fn new(
        base: &str,
        manifests: Vec<Arc<Manifest>>,
        mut retained: BTreeSet<u64>,
    ) -> Result<Self> {
        let first = manifests
            .first()
            .ok_or_else(|| IcebergError::InvalidInput("no version".into()))?;
        let name = first.name.clone();
        for (i, manifest) in manifests.iter().enumerate() {
            if manifest.name != name || manifest.version != i as u64 + 1 {
                return Err(IcebergError::InvalidInput(format!(
                    "position {} holds version {} of {}",
                    i + 1,
                    manifest.version,
                    manifest.name
                )));
            }
        }
        let latest = manifests.len() as u64;
        retained.retain(|v| (1..=latest).contains(v));
        retained.insert(latest);
        let mut input = TableInput {
            name,
            base: base.to_owned(),
            manifests,
            retained,
            schemas: Vec::new(),
            versions: Vec::new(),
        };
        input.derive();
        Ok(input)
    }

    /// The dataset.
    pub fn name(&self) -> &DatasetName {
        &self.name
    }

    /// The latest version N.
    pub fn latest(&self) -> u64 {
        self.manifests.len() as u64
    }

    /// Versions whose snapshots version N's metadata keeps.
    pub fn retained(&self) -> &BTreeSet<u64> {
        &self.retained
    }

    /// `<base>/datasets/<name>`.
    pub fn location(&self) -> String {
        self.uri(&format!("datasets/{}", self.name.as_str()))
    }

    /// The URI of storage key `key`: `<base>/<key>`.
    pub fn uri(&self, key: &str) -> String {
        storage_uri(&self.base, key)
    }

    fn manifest_key(&self, version: u64, deleted: bool) -> String {
        format!(
            "{}v{version}-{}-m{}.avro",
            metadata_dir(&self.name),
            ids::snapshot_id(&self.name, version),
            u8::from(deleted)
        )
    }

    fn list_key(&self, version: u64) -> String {
        format!(
            "{}snap-{}-v{version}.avro",
            metadata_dir(&self.name),
            ids::snapshot_id(&self.name, version)
        )
    }

    fn derive(&mut self) {
        let mut fingerprints: Vec<lakehouse_api::SchemaFingerprint> = Vec::new();
        // key -> (snapshot id, data sequence number) of the version that added it
        let mut added_by: HashMap<ObjectKey, (i64, i64)> = HashMap::new();
        let mut versions: Vec<VersionPlan> = Vec::with_capacity(self.manifests.len());
        for (index, manifest) in self.manifests.iter().enumerate() {
            let version = manifest.version;
            let snapshot_id = ids::snapshot_id(&self.name, version);
            let schema_id = match fingerprints
                .iter()
                .position(|f| *f == manifest.schema_fingerprint)
            {
                Some(id) => id,
                None => {
                    fingerprints.push(manifest.schema_fingerprint.clone());
                    self.schemas.push(manifest.schema.clone());
                    fingerprints.len() - 1
                }
            };
            let before: &[ObjectRef] = match index {
                0 => &[],
                _ => &self.manifests[index - 1].objects,
            };
            let held: BTreeSet<&ObjectKey> = manifest.objects.iter().map(|o| &o.key).collect();
            let had: BTreeSet<&ObjectKey> = before.iter().map(|o| &o.key).collect();
            let removed: Vec<Entry> = before
                .iter()
                .filter(|o| !held.contains(&o.key))
                .map(|o| Entry {
                    object: o.clone(),
                    status: 2,
                    snapshot_id,
                    data_sequence: added_by.get(&o.key).map_or(0, |(_, seq)| *seq),
                })
                .collect();
            for entry in &removed {
                added_by.remove(&entry.object.key);
            }
            let overwrite = !removed.is_empty();
            let mut live = Vec::new();
            for object in &manifest.objects {
                if had.contains(&object.key) {
                    if overwrite {
                        let (first_snapshot, data_sequence) = added_by
                            .get(&object.key)
                            .copied()
                            .unwrap_or((snapshot_id, version as i64));
                        live.push(Entry {
                            object: object.clone(),
                            status: 0,
                            snapshot_id: first_snapshot,
                            data_sequence,
                        });
                    }
                } else {
                    added_by.insert(object.key.clone(), (snapshot_id, version as i64));
                    live.push(Entry {
                        object: object.clone(),
                        status: 1,
                        snapshot_id,
                        data_sequence: version as i64,
                    });
                }
            }
            let previous = versions.last();
            let m0 = self.manifest_key(version, false);
            let (list, live_manifests) = if overwrite {
                (vec![m0.clone(), self.manifest_key(version, true)], vec![m0])
            } else {
                let mut carried = vec![m0];
                if let Some(previous) = previous {
                    carried.extend(previous.live_manifests.iter().cloned());
                }
                (carried.clone(), carried)
            };
            let parent = previous.map(|p| p.snapshot_id);
            versions.push(VersionPlan {
                version,
                snapshot_id,
                parent,
                timestamp_ms: timestamp_ms(&manifest.created_at),
                schema_id: schema_id as i32,
                overwrite,
                live,
                deleted: removed,
                list,
                live_manifests,
            });
        }
        self.versions = versions;
    }

    fn plan_of(&self, version: u64) -> &VersionPlan {
        &self.versions[version as usize - 1]
    }

    /// Every file version N's metadata references, each once, in the order to write them:
    /// manifests, then manifest lists, then the metadata JSON (so an existing metadata JSON
    /// means the rest exists).
    pub fn plan(&self) -> Vec<PlannedFile> {
        let mut manifests: BTreeMap<String, PlannedFile> = BTreeMap::new();
        let mut lists = Vec::new();
        for &version in &self.retained {
            let plan = self.plan_of(version);
            for key in &plan.list {
                if manifests.contains_key(key) {
                    continue;
                }
                let (owner, deleted) = self.owner_of(key);
                let data_files = if deleted {
                    Vec::new()
                } else {
                    self.plan_of(owner)
                        .live
                        .iter()
                        .map(|e| e.object.clone())
                        .collect()
                };
                manifests.insert(
                    key.clone(),
                    PlannedFile {
                        key: key.clone(),
                        kind: FileKind::Manifest {
                            version: owner,
                            deleted,
                        },
                        data_files,
                        manifests: Vec::new(),
                    },
                );
            }
            lists.push(PlannedFile {
                key: self.list_key(version),
                kind: FileKind::ManifestList { version },
                data_files: Vec::new(),
                manifests: plan.list.clone(),
            });
        }
        let mut files: Vec<PlannedFile> = manifests.into_values().collect();
        files.extend(lists);
        files.push(PlannedFile {
            key: metadata_file_key(&self.name, self.latest()),
            kind: FileKind::Metadata,
            data_files: Vec::new(),
            manifests: Vec::new(),
        });
        files
    }

    /// (version, is m1) of a manifest key this table made.
    fn owner_of(&self, key: &str) -> (u64, bool) {
        for plan in &self.versions {
            if self.manifest_key(plan.version, false) == key {
                return (plan.version, false);
            }
            if self.manifest_key(plan.version, true) == key {
                return (plan.version, true);
            }
        }
        (self.latest(), false)
    }

    /// The bytes of `file` (one of [`TableInput::plan`]'s). `metrics` must hold the footer
    /// metrics of its `data_files`, `lengths` the sizes in bytes of its `manifests`.
    ///
    /// # Errors
    /// [`IcebergError::InvalidInput`] when one of those is missing (the bytes would
    /// otherwise depend on what the caller happened to have);
    /// [`IcebergError::Avro`] / [`IcebergError::Json`] for encoding bugs.
    pub fn render(
        &self,
        file: &PlannedFile,
        metrics: &HashMap<ObjectKey, FileMetrics>,
        lengths: &HashMap<String, u64>,
    ) -> Result<Vec<u8>> {
        match file.kind {
            FileKind::Manifest { version, deleted } => {
                self.render_manifest(&file.key, version, deleted, metrics)
            }
            FileKind::ManifestList { version } => self.render_list(&file.key, version, lengths),
            FileKind::Metadata => self.render_metadata(),
        }
    }

    /// The Iceberg schema `schema_id` (the dataset's distinct fingerprints in order of first
    /// use). Field ids are positions + 1: a dataset's schemas only ever grow by columns
    /// added at the end (schema evolution, DESIGN.md section 3), so a column keeps its id in
    /// every schema and an added column gets the next unused id (section 8).
    fn iceberg_schema(&self, schema_id: i32) -> IcebergSchema {
        let schema = &self.schemas[schema_id as usize];
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

    fn render_manifest(
        &self,
        key: &str,
        version: u64,
        deleted: bool,
        metrics: &HashMap<ObjectKey, FileMetrics>,
    ) -> Result<Vec<u8>> {
        let plan = self.plan_of(version);
        let schema_json = serde_json::to_string(&self.iceberg_schema(plan.schema_id))
            .map_err(IcebergError::Json)?;
        let metadata = BTreeMap::from([
            ("schema", schema_json),
            ("schema-id", plan.schema_id.to_string()),
            ("partition-spec", "[]".to_owned()),
            ("partition-spec-id", "0".to_owned()),
            ("format-version", "2".to_owned()),
            ("content", "data".to_owned()),
        ]);
        let entries = if deleted { &plan.deleted } else { &plan.live };
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let stats = if entry.status == 2 {
                None
            } else {
                Some(metrics.get(&entry.object.key).ok_or_else(|| {
                    IcebergError::InvalidInput(format!(
                        "no footer metrics for {}",
                        entry.object.key
                    ))
                })?)
            };
            records.push(self.entry_record(entry, stats));
        }
        write_file(
            manifest_entry_schema(),
            &metadata,
            ids::sync_marker(key),
            records,
        )
    }

    fn entry_record(&self, entry: &Entry, stats: Option<&FileMetrics>) -> Value {
        let long = |v: i64| Value::Union(1, Box::new(Value::Long(v)));
        let null = || Value::Union(0, Box::new(Value::Null));
        let map = |pick: &dyn Fn(&crate::ColumnMetrics) -> Option<Value>| match stats {
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
        let data_file = Value::Record(vec![
            ("content".into(), Value::Int(0)),
            (
                "file_path".into(),
                Value::String(self.uri(entry.object.key.as_str())),
            ),
            ("file_format".into(), Value::String("PARQUET".into())),
            ("partition".into(), Value::Record(Vec::new())),
            (
                "record_count".into(),
                Value::Long(entry.object.row_count as i64),
            ),
            (
                "file_size_in_bytes".into(),
                Value::Long(entry.object.size as i64),
            ),
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
        ]);
        Value::Record(vec![
            ("status".into(), Value::Int(entry.status)),
            ("snapshot_id".into(), long(entry.snapshot_id)),
            ("sequence_number".into(), long(entry.data_sequence)),
            ("file_sequence_number".into(), long(entry.data_sequence)),
            ("data_file".into(), data_file),
        ])
    }

    fn render_list(
        &self,
        key: &str,
        version: u64,
        lengths: &HashMap<String, u64>,
    ) -> Result<Vec<u8>> {
        let plan = self.plan_of(version);
        let metadata = BTreeMap::from([
            ("snapshot-id", plan.snapshot_id.to_string()),
            (
                "parent-snapshot-id",
                plan.parent
                    .map_or_else(|| "null".to_owned(), |p| p.to_string()),
            ),
            ("sequence-number", version.to_string()),
            ("format-version", "2".to_owned()),
        ]);
        let mut records = Vec::with_capacity(plan.list.len());
        for manifest_key in &plan.list {
            let length = lengths.get(manifest_key).ok_or_else(|| {
                IcebergError::InvalidInput(format!("no length for {manifest_key}"))
            })?;
            let (owner, deleted) = self.owner_of(manifest_key);
            let owner_plan = self.plan_of(owner);
            let entries = if deleted {
                &owner_plan.deleted
            } else {
                &owner_plan.live
            };
            let count = |status: i32| entries.iter().filter(|e| e.status == status).count() as i32;
            let rows = |status: i32| {
                entries
                    .iter()
                    .filter(|e| e.status == status)
                    .map(|e| e.object.row_count as i64)
                    .sum::<i64>()
            };
            let min_sequence = entries
                .iter()
                .filter(|e| e.status != 2)
                .map(|e| e.data_sequence)
                .min()
                .unwrap_or(owner as i64);
            records.push(Value::Record(vec![
                (
                    "manifest_path".into(),
                    Value::String(self.uri(manifest_key)),
                ),
                ("manifest_length".into(), Value::Long(*length as i64)),
                ("partition_spec_id".into(), Value::Int(0)),
                ("content".into(), Value::Int(0)),
                ("sequence_number".into(), Value::Long(owner as i64)),
                ("min_sequence_number".into(), Value::Long(min_sequence)),
                (
                    "added_snapshot_id".into(),
                    Value::Long(owner_plan.snapshot_id),
                ),
                ("added_files_count".into(), Value::Int(count(1))),
                ("existing_files_count".into(), Value::Int(count(0))),
                ("deleted_files_count".into(), Value::Int(count(2))),
                ("added_rows_count".into(), Value::Long(rows(1))),
                ("existing_rows_count".into(), Value::Long(rows(0))),
                ("deleted_rows_count".into(), Value::Long(rows(2))),
                (
                    "partitions".into(),
                    Value::Union(1, Box::new(Value::Array(Vec::new()))),
                ),
                (
                    "key_metadata".into(),
                    Value::Union(0, Box::new(Value::Null)),
                ),
            ]));
        }
        write_file(
            manifest_list_schema(),
            &metadata,
            ids::sync_marker(key),
            records,
        )
    }

    fn summary(&self, plan: &VersionPlan) -> BTreeMap<String, String> {
        let manifest = &self.manifests[plan.version as usize - 1];
        let added: Vec<&Entry> = plan.live.iter().filter(|e| e.status == 1).collect();
        let mut summary = BTreeMap::new();
        let operation = if plan.overwrite {
            "overwrite"
        } else {
            "append"
        };
        summary.insert("operation".to_owned(), operation.to_owned());
        summary.insert("lakehouse.version".to_owned(), plan.version.to_string());
        let mut put_nonzero = |key: &str, value: u64| {
            if value > 0 {
                summary.insert(key.to_owned(), value.to_string());
            }
        };
        put_nonzero("added-data-files", added.len() as u64);
        put_nonzero(
            "added-records",
            added.iter().map(|e| e.object.row_count).sum(),
        );
        put_nonzero(
            "added-files-size",
            added.iter().map(|e| e.object.size).sum(),
        );
        put_nonzero("deleted-data-files", plan.deleted.len() as u64);
        put_nonzero(
            "deleted-records",
            plan.deleted.iter().map(|e| e.object.row_count).sum(),
        );
        put_nonzero(
            "removed-files-size",
            plan.deleted.iter().map(|e| e.object.size).sum(),
        );
        summary.insert(
            "total-data-files".to_owned(),
            manifest.objects.len().to_string(),
        );
        summary.insert("total-records".to_owned(), manifest.row_count.to_string());
        summary.insert(
            "total-files-size".to_owned(),
            manifest
                .objects
                .iter()
                .map(|o| o.size)
                .sum::<u64>()
                .to_string(),
        );
        for key in [
            "total-delete-files",
            "total-position-deletes",
            "total-equality-deletes",
        ] {
            summary.insert(key.to_owned(), "0".to_owned());
        }
        summary
    }

    fn render_metadata(&self) -> Result<Vec<u8>> {
        let latest = self.plan_of(self.latest());
        let last_schema = &self.manifests[self.manifests.len() - 1].schema;
        let mut snapshots = Vec::new();
        let mut snapshot_log = Vec::new();
        let mut metadata_log = Vec::new();
        let mut refs = BTreeMap::new();
        for &version in &self.retained {
            let plan = self.plan_of(version);
            snapshots.push(Snapshot {
                snapshot_id: plan.snapshot_id,
                parent_snapshot_id: plan.parent,
                sequence_number: version as i64,
                timestamp_ms: plan.timestamp_ms,
                manifest_list: self.uri(&self.list_key(version)),
                summary: self.summary(plan),
                schema_id: plan.schema_id,
            });
            snapshot_log.push(SnapshotLogEntry {
                timestamp_ms: plan.timestamp_ms,
                snapshot_id: plan.snapshot_id,
            });
            if version < self.latest() {
                metadata_log.push(MetadataLogEntry {
                    timestamp_ms: plan.timestamp_ms,
                    metadata_file: self.uri(&metadata_file_key(&self.name, version)),
                });
            }
            refs.insert(
                format!("v{version}"),
                SnapshotRef {
                    snapshot_id: plan.snapshot_id,
                    kind: "tag".into(),
                },
            );
        }
        refs.insert(
            "main".into(),
            SnapshotRef {
                snapshot_id: latest.snapshot_id,
                kind: "branch".into(),
            },
        );
        let properties = BTreeMap::from([
            (
                "schema.name-mapping.default".to_owned(),
                name_mapping(last_schema),
            ),
            ("write.format.default".to_owned(), "parquet".to_owned()),
            ("lakehouse.dataset".to_owned(), self.name.to_string()),
        ]);
        let metadata = TableMetadata {
            format_version: 2,
            table_uuid: ids::table_uuid(&self.name).to_string(),
            location: self.location(),
            last_sequence_number: self.latest() as i64,
            last_updated_ms: latest.timestamp_ms,
            last_column_id: self
                .schemas
                .iter()
                .map(|s| s.fields.len())
                .max()
                .map_or(0, field_id_or_zero),
            schemas: (0..self.schemas.len())
                .map(|id| self.iceberg_schema(id as i32))
                .collect(),
            current_schema_id: latest.schema_id,
            partition_specs: vec![PartitionSpec {
                spec_id: 0,
                fields: Vec::new(),
            }],
            default_spec_id: 0,
            last_partition_id: 999,
            properties,
            current_snapshot_id: latest.snapshot_id,
            snapshots,
            snapshot_log,
            metadata_log,
            sort_orders: vec![SortOrder {
                order_id: 0,
                fields: Vec::new(),
            }],
            default_sort_order_id: 0,
            refs,
        };
        let mut bytes = serde_json::to_vec_pretty(&metadata).map_err(IcebergError::Json)?;
        bytes.push(b'\n');
        Ok(bytes)
    }
}

/// Highest field id of a schema of `columns` columns (0 for none).
fn field_id_or_zero(columns: usize) -> i32 {
    i32::try_from(columns).unwrap_or(i32::MAX)
}

/// Milliseconds since the epoch of an RFC 3339 `created_at`; 0 when it does not parse.
fn timestamp_ms(created_at: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(created_at).map_or(0, |t| t.timestamp_millis())
}
