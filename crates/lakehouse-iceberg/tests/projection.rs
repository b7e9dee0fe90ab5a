//! The projection (docs/contract.md sections 8 and 10): version N's files from the table at N-1 and
//! N's change; what a reader of the files finds; the round trip through the stored files.
//! Every commit in these tests also checks that its files parse back into the state it
//! returned and that recomputing it from N-1's parsed files gives the same bytes
//! (`common::Table::commit`).

mod common;

use apache_avro::types::Value;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema};
use bytes::Bytes;
use common::{Table, field, manifest_of, object, optional_long, records, schema};
use lakehouse_api::{ColumnType, DatasetName, Field, ObjectRef, Operation, Schema};
use lakehouse_iceberg::ids::snapshot_id;
use lakehouse_iceberg::{
    FileMetrics, IcebergError, TableConfig, TableState, VersionChange, manifest_key,
    manifest_list_key,
};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::ParquetMetaDataReader;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

fn keys(table: &Table, n: &[u64]) -> BTreeSet<String> {
    n.iter()
        .map(|n| object(table.name.as_str(), *n).key.to_string())
        .collect()
}

fn list_of(table: &Table) -> String {
    table.state.manifest_list_key().unwrap()
}

fn summary(table: &Table, version: u64) -> std::collections::BTreeMap<String, String> {
    let metadata = table.metadata();
    let tag = &metadata.refs[&format!("v{version}")];
    let snapshot = metadata
        .snapshots
        .iter()
        .find(|s| s.snapshot_id == tag.snapshot_id)
        .unwrap();
    snapshot.summary.clone()
}

#[test]
fn append_carries_the_previous_manifests_and_reads_none() {
    let mut table = Table::new("d", "s3://bucket", TableConfig::default());
    table.commit(Some(Operation::Replace), &[1, 2], &[]);
    table.append(&[3]);
    table.append(&[4]);
    let name = table.name.clone();
    assert_eq!(
        table.list_manifests(&list_of(&table)),
        [
            manifest_key(&name, 3, 0),
            manifest_key(&name, 2, 0),
            manifest_key(&name, 1, 0)
        ],
        "fast append: the new manifest first, the previous ones unchanged"
    );
    assert_eq!(
        table.live_files(&list_of(&table)),
        keys(&table, &[1, 2, 3, 4])
    );
    // v4's own files: one manifest, the list, the metadata JSON; nothing read
    let manifest = manifest_of(&name, 4, Some(Operation::Append), &[]);
    let added = [(object("d", 5), common::metrics(5))];
    let change = VersionChange {
        manifest: &manifest,
        added: &added,
        removed: &[],
        oldest_retained: 1,
        tag: None,
    };
    assert!(
        table
            .state
            .manifests_to_read(&change, &table.config)
            .unwrap()
            .is_empty()
    );
    table.append(&[5]);
    let written: Vec<&String> = table
        .store
        .keys()
        .filter(|k| k.contains("/v4"))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        written,
        [
            "datasets/d/metadata/v4-list.avro",
            "datasets/d/metadata/v4-m0.avro",
            "datasets/d/metadata/v4.metadata.json"
        ]
    );
    let ops: Vec<String> = (1..=4)
        .map(|v| summary(&table, v)["operation"].clone())
        .collect();
    assert_eq!(ops, ["append", "append", "append", "append"]);
    assert_eq!(summary(&table, 1)["lakehouse.operation"], "replace");
    assert_eq!(summary(&table, 4)["lakehouse.operation"], "append");
    assert_eq!(summary(&table, 4)["total-data-files"], "5");
    assert_eq!(summary(&table, 4)["total-records"], "150");
    assert_eq!(summary(&table, 4)["total-files-size"], "5015");
    assert_eq!(summary(&table, 4)["added-records"], "50");
}

#[test]
fn compaction_rewrites_only_the_manifests_holding_removed_files() {
    let mut table = Table::new("d", "memory://", TableConfig::default());
    table.append(&[1, 2]); // v1-m0: 1, 2
    table.append(&[3]); // v2-m0: 3
    table.append(&[4]); // v3-m0: 4
    // v4 compacts 2 and 3 into 7
    table.compact(&[1, 2], 7);
    let name = table.name.clone();
    assert_eq!(
        table.list_manifests(&list_of(&table)),
        [
            manifest_key(&name, 4, 0), // 7, added
            manifest_key(&name, 3, 0), // 4, carried unchanged
            manifest_key(&name, 4, 1), // v2-m0 rewritten: 3 deleted
            manifest_key(&name, 4, 2), // v1-m0 rewritten: 1 existing, 2 deleted
        ]
    );
    assert_eq!(table.live_files(&list_of(&table)), keys(&table, &[1, 4, 7]));
    let rewritten = records(&table.store[&manifest_key(&name, 4, 2)]);
    let existing = &rewritten[0];
    assert_eq!(field(existing, "status"), &Value::Int(0));
    assert_eq!(
        optional_long(field(existing, "snapshot_id")),
        Some(snapshot_id(&name, 1)),
        "an existing entry keeps the snapshot that added it"
    );
    assert_eq!(optional_long(field(existing, "sequence_number")), Some(1));
    assert_ne!(
        field(field(existing, "data_file"), "lower_bounds"),
        &Value::Union(0, Box::new(Value::Null)),
        "and its metrics"
    );
    let deleted = &rewritten[1];
    assert_eq!(field(deleted, "status"), &Value::Int(2));
    assert_eq!(
        optional_long(field(deleted, "snapshot_id")),
        Some(snapshot_id(&name, 4)),
        "a deleted entry names the snapshot that deleted it"
    );
    assert_eq!(
        optional_long(field(deleted, "sequence_number")),
        Some(1),
        "and keeps its data sequence number"
    );
    let summary4 = summary(&table, 4);
    assert_eq!(summary4["operation"], "replace");
    assert_eq!(summary4["lakehouse.operation"], "compact");
    assert_eq!(summary4["deleted-data-files"], "2");
    assert_eq!(summary4["added-data-files"], "1");
    assert_eq!(summary4["total-data-files"], "3");
    assert_eq!(summary4["manifests-created"], "3");
    // v5: the rewritten v2 manifest holds no live file any more: it leaves the list
    table.append(&[8]);
    assert_eq!(
        table.list_manifests(&list_of(&table)),
        [
            manifest_key(&name, 5, 0),
            manifest_key(&name, 4, 0),
            manifest_key(&name, 3, 0),
            manifest_key(&name, 4, 2),
        ]
    );
    // time travel: every tag still reaches its version's files
    let metadata = table.metadata();
    for (version, live) in table.live.iter().enumerate().skip(1) {
        let tag = &metadata.refs[&format!("v{version}")];
        let snapshot = metadata
            .snapshots
            .iter()
            .find(|s| s.snapshot_id == tag.snapshot_id)
            .unwrap();
        let expected: BTreeSet<String> = live.iter().map(|o| o.key.to_string()).collect();
        assert_eq!(
            table.live_files(&table.key_of(&snapshot.manifest_list)),
            expected
        );
    }
}

#[test]
fn replace_deletes_everything_without_reading_a_manifest() {
    let mut table = Table::new("d", "file:///data", TableConfig::default());
    table.append(&[1]);
    table.append(&[2]);
    let removed = table.live_now().to_vec();
    let manifest = manifest_of(&table.name, 3, Some(Operation::Replace), &[object("d", 3)]);
    let added = [(object("d", 3), common::metrics(3))];
    let change = VersionChange {
        manifest: &manifest,
        added: &added,
        removed: &removed,
        oldest_retained: 1,
        tag: None,
    };
    assert!(
        table
            .state
            .manifests_to_read(&change, &table.config)
            .unwrap()
            .is_empty()
    );
    let (files, _) = table
        .state
        .commit(&change, &HashMap::new(), &table.config)
        .unwrap();
    assert_eq!(files.len(), 4, "m0, m1, the list, the metadata JSON");
    table.replace(&[3]);
    let name = table.name.clone();
    assert_eq!(
        table.list_manifests(&list_of(&table)),
        [manifest_key(&name, 3, 0), manifest_key(&name, 3, 1)]
    );
    let deleted = records(&table.store[&manifest_key(&name, 3, 1)]);
    assert_eq!(deleted.len(), 2);
    assert!(deleted.iter().all(|e| field(e, "status") == &Value::Int(2)));
    assert_eq!(table.live_files(&list_of(&table)), keys(&table, &[3]));
    let summary3 = summary(&table, 3);
    assert_eq!(summary3["operation"], "overwrite");
    assert_eq!(summary3["lakehouse.operation"], "replace");
    assert_eq!(summary3["deleted-records"], "30");
    assert_eq!(summary3["total-records"], "30");
    let metadata = table.metadata();
    assert_eq!(metadata.refs["main"].kind, "branch");
    assert_eq!(metadata.current_snapshot_id, snapshot_id(&name, 3));
    assert_eq!(metadata.location, "file:///data/datasets/d");
    assert!(metadata.properties["schema.name-mapping.default"].contains(r#""field-id":2"#));
    // v4 drops the manifest of deleted entries, keeps the new one
    table.append(&[4]);
    assert_eq!(
        table.list_manifests(&list_of(&table)),
        [manifest_key(&name, 4, 0), manifest_key(&name, 3, 0)]
    );
}

#[test]
fn operations_default_to_what_the_change_does() {
    let mut table = Table::new("d", "memory://", TableConfig::default());
    table.commit(None, &[1], &[]);
    let removed = table.live_now().to_vec();
    table.commit(None, &[2], &removed);
    assert_eq!(summary(&table, 1)["lakehouse.operation"], "append");
    assert_eq!(summary(&table, 2)["lakehouse.operation"], "replace");
    assert_eq!(summary(&table, 2)["operation"], "overwrite");
}

#[test]
fn retention_and_the_snapshot_cap_bound_the_metadata() {
    let config = TableConfig {
        max_snapshots: 4,
        max_metadata_log: 2,
        ..TableConfig::default()
    };
    let mut table = Table::new("d", "memory://", config);
    table.retain_versions = Some(6);
    for n in 1..=10 {
        table.append(&[n]);
    }
    let metadata = table.metadata();
    let tags: Vec<&String> = metadata.refs.keys().collect();
    assert_eq!(tags, ["main", "v10", "v7", "v8", "v9"], "the latest 4");
    assert_eq!(metadata.snapshot_log.len(), 4);
    assert_eq!(
        metadata
            .metadata_log
            .iter()
            .map(|e| e.metadata_file.as_str())
            .collect::<Vec<_>>(),
        [
            "memory://datasets/d/metadata/v8.metadata.json",
            "memory://datasets/d/metadata/v9.metadata.json"
        ]
    );
    assert_eq!(table.state.oldest_snapshot_version(), Some(7));
    // retention tighter than the cap
    table.retain_versions = Some(2);
    table.append(&[11]);
    let metadata = table.metadata();
    let versions: Vec<i64> = metadata
        .snapshots
        .iter()
        .map(|s| s.sequence_number)
        .collect();
    assert_eq!(versions, [10, 11]);
    assert_eq!(metadata.metadata_log.len(), 1, "v10's metadata only");
    assert_eq!(
        metadata.snapshots[0].parent_snapshot_id,
        Some(snapshot_id(&table.name, 9)),
        "a snapshot keeps its parent even when the parent expired"
    );
}

#[test]
fn referenced_keys_name_every_list_and_manifest_of_the_kept_snapshots() {
    let config = TableConfig {
        manifest_merge_count: 3,
        max_snapshots: 5,
        ..TableConfig::default()
    };
    let mut table = Table::new("d", "memory://", config);
    for n in 1..=12 {
        table.append(&[n]);
        if n % 5 == 0 {
            table.compact(&[0, 1], 100 + n);
        }
    }
    let metadata = table.metadata();
    let mut expected = BTreeSet::from([table.state.metadata_key().unwrap()]);
    for snapshot in &metadata.snapshots {
        let list = table.key_of(&snapshot.manifest_list);
        expected.extend(table.list_manifests(&list));
        expected.insert(list);
    }
    let oldest = table.state.oldest_list_key().unwrap();
    let referenced = table.state.referenced_keys(&table.store[&oldest]).unwrap();
    assert!(
        expected.is_subset(&referenced),
        "missing: {:?}",
        expected.difference(&referenced).collect::<Vec<_>>()
    );
    for key in &referenced {
        assert!(table.store.contains_key(key), "{key} was never written");
    }
    assert_ne!(list_of(&table), oldest);
    assert!(
        table
            .state
            .referenced_keys(&table.store[&list_of(&table)])
            .is_err(),
        "another list is refused"
    );
}

#[test]
fn changes_that_do_not_follow_the_table_are_refused() {
    let mut table = Table::new("d", "memory://", TableConfig::default());
    table.append(&[1, 2]);
    table.append(&[3]);
    let config = TableConfig::default();
    let live = table.live_now().to_vec();
    let none = HashMap::new();
    let try_commit = |version: u64, added: &[u64], removed: &[ObjectRef], rows: Option<u64>| {
        let added: Vec<(ObjectRef, FileMetrics)> = added
            .iter()
            .map(|n| (object("d", *n), FileMetrics::default()))
            .collect();
        let mut objects: Vec<ObjectRef> = live
            .iter()
            .filter(|o| !removed.contains(o))
            .cloned()
            .collect();
        objects.extend(added.iter().map(|(o, _)| o.clone()));
        let mut manifest = manifest_of(&table.name, version, None, &objects);
        if let Some(rows) = rows {
            manifest.row_count = rows;
        }
        let change = VersionChange {
            manifest: &manifest,
            added: &added,
            removed,
            oldest_retained: 1,
            tag: None,
        };
        table.state.commit(&change, &none, &config)
    };
    assert!(matches!(
        try_commit(4, &[4], &[], None),
        Err(IcebergError::InvalidInput(_))
    ));
    assert!(matches!(
        try_commit(3, &[4], &[], Some(1)),
        Err(IcebergError::InvalidInput(_))
    ));
    assert!(
        matches!(
            try_commit(3, &[4], &[live[0].clone()], None),
            Err(IcebergError::MissingManifest { .. })
        ),
        "a partial removal needs the manifests"
    );
    let mut stranger = object("d", 99);
    stranger.row_count = 1;
    stranger.size = 1;
    let mut manifests = HashMap::new();
    for key in table.list_manifests(&list_of(&table)) {
        manifests.insert(key.clone(), table.store[&key].clone());
    }
    let manifest = manifest_of(&table.name, 3, None, &live);
    let added = [(object("d", 5), FileMetrics::default())];
    let mut manifest = manifest;
    manifest.row_count = live.iter().map(|o| o.row_count).sum::<u64>() + 50 - 1;
    let removed = [stranger];
    let change = VersionChange {
        manifest: &manifest,
        added: &added,
        removed: &removed,
        oldest_retained: 1,
        tag: None,
    };
    assert!(matches!(
        table.state.commit(&change, &manifests, &config),
        Err(IcebergError::InvalidInput(reason)) if reason.contains("does not hold")
    ));
    let other = DatasetName::new("e").unwrap();
    assert!(matches!(
        TableState::from_files(
            "memory://",
            &other,
            &table.store[&table.state.metadata_key().unwrap()],
            &table.store[&list_of(&table)]
        ),
        Err(IcebergError::Unreadable { .. })
    ));
    assert!(matches!(
        TableState::from_files(
            "memory://",
            &table.name,
            &table.store[&table.state.metadata_key().unwrap()],
            &table.store[&manifest_list_key(&table.name, 1)]
        ),
        Err(IcebergError::Unreadable { .. })
    ));
}

/// Known answers: a change of any file's bytes (which would make a replica or a restart
/// write other bytes under an existing key) cannot pass unnoticed. Update them only on
/// purpose.
#[test]
fn version_files_have_known_bytes() {
    let mut table = Table::new("sales", "s3://bucket", TableConfig::default());
    table.append(&[1, 2]);
    table.append(&[3]);
    table.compact(&[0, 2], 4);
    let digest = |key: &str| hex::encode(Sha256::digest(&table.store[key]));
    let mut answers: Vec<(String, String)> = table
        .store
        .keys()
        .filter(|k| k.contains("/v3"))
        .map(|k| (k.rsplit('/').next().unwrap().to_owned(), digest(k)))
        .collect();
    answers.sort();
    let expected: Vec<(String, String)> = KNOWN
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    assert_eq!(answers, expected);
}

const KNOWN: &[(&str, &str)] = &[
    (
        "v3-list.avro",
        "24fd403cc6e5518359963470099ef124b1948aaa545bbdce11e52554c877aa79",
    ),
    (
        "v3-m0.avro",
        "12ef86aa5329bba2a07437a3a8bab9c3b28ea17cd6a86befeeb11b4fa1dc9adb",
    ),
    (
        "v3-m1.avro",
        "f68521480108ef6d2155783db772201e815a3def6273e188a7152fdc27834dfb",
    ),
    (
        "v3-m2.avro",
        "38f6675c7b5a37aa9df39cdae87522dfe4a952992e680394994b6b11572c2fc4",
    ),
    (
        "v3.metadata.json",
        "6a3b05e8665c41e65d2572350740ffc5cd7bf82f72253b65533eaa22ebb4d52b",
    ),
];

#[test]
fn footer_bounds_are_single_value_serialized() {
    let arrow = Arc::new(ArrowSchema::new(vec![
        ArrowField::new("id", DataType::Int64, true),
        ArrowField::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        arrow.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(7), None, Some(-3)])),
            Arc::new(StringArray::from(vec![
                Some("b"),
                Some("abcdefghijklmnopqrstuvwxyz"),
                None,
            ])),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, arrow, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::from(buf))
        .unwrap();
    let metrics = FileMetrics::from_parquet(&meta, &schema());
    let id = &metrics.columns[&1];
    assert_eq!(id.value_count, Some(3));
    assert_eq!(id.null_count, Some(1));
    assert_eq!(id.lower.as_deref(), Some(&(-3i64).to_le_bytes()[..]));
    assert_eq!(id.upper.as_deref(), Some(&7i64.to_le_bytes()[..]));
    let name = &metrics.columns[&2];
    assert_eq!(name.lower.as_deref(), Some(&b"abcdefghijklmnop"[..]));
    assert_eq!(name.upper.as_deref(), Some(&b"b"[..]));
}

/// docs/contract.md section 8: a column added by schema evolution (a new fingerprint whose schema
/// is the old one plus columns at the end) gets the next unused field id and a new schema
/// id; the old columns keep their ids, and the appended version still lists the file
/// written before the column existed. Going back to an earlier schema reuses its id.
#[test]
fn added_columns_get_new_field_ids_and_a_new_schema() {
    let mut table = Table::new("d", "memory://", TableConfig::default());
    table.append(&[1]);
    let wider = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
            Field::new("score", ColumnType::Float64),
        ],
    };
    let mut live = table.live_now().to_vec();
    live.push(object("d", 2));
    let mut manifest = manifest_of(&table.name, 2, Some(Operation::Append), &live);
    manifest.schema_fingerprint = wider.fingerprint();
    manifest.schema = wider;
    let added = [(object("d", 2), common::metrics(2))];
    let change = VersionChange {
        manifest: &manifest,
        added: &added,
        removed: &[],
        oldest_retained: 1,
        tag: None,
    };
    let (files, state) = common::commit_once(&table.state, &change, &table.store, &table.config);
    common::check_round_trip(
        &table.base,
        &table.state,
        &change,
        &table.store,
        &table.config,
        &files,
        &state,
    );
    let metadata = state.metadata().unwrap();
    let ids = |schema: usize| -> Vec<(i32, String)> {
        metadata.schemas[schema]
            .fields
            .iter()
            .map(|f| (f.id, f.name.clone()))
            .collect()
    };
    assert_eq!(metadata.schemas.len(), 2);
    assert_eq!(ids(0), [(1, "id".to_owned()), (2, "name".to_owned())]);
    assert_eq!(
        ids(1),
        [
            (1, "id".to_owned()),
            (2, "name".to_owned()),
            (3, "score".to_owned())
        ],
        "the added column gets the next unused id, the others keep theirs"
    );
    assert_eq!(metadata.schemas[1].fields[2].kind, "double");
    assert_eq!(metadata.current_schema_id, 1);
    assert_eq!(metadata.last_column_id, 3);
    let schema_ids: Vec<i32> = metadata.snapshots.iter().map(|s| s.schema_id).collect();
    assert_eq!(schema_ids, [0, 1]);
    assert_eq!(metadata.snapshots[1].summary["total-data-files"], "2");
    assert!(
        metadata.properties["schema.name-mapping.default"]
            .contains(r#""field-id":3,"names":["score"]"#)
    );
    let manifest_bytes = &files[0].bytes;
    let reader = apache_avro::Reader::new(&manifest_bytes[..]).unwrap();
    assert_eq!(
        reader.user_metadata().get("schema-id").map(Vec::as_slice),
        Some(&b"1"[..]),
        "a new manifest names the version's schema"
    );
    // a replace back to the first schema reuses schema id 0
    let mut table2 = Table::new("d", "memory://", TableConfig::default());
    table2.state = state;
    table2.store = table.store.clone();
    for file in files {
        table2.store.insert(file.key, file.bytes);
    }
    table2.live.push(live);
    table2.replace(&[3]);
    assert_eq!(table2.metadata().current_schema_id, 0);
    assert_eq!(table2.metadata().schemas.len(), 2);
}
