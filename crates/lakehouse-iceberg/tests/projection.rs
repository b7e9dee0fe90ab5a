//! The projection is a pure function (DESIGN.md section 8): the same manifests and footers
//! give the same bytes; snapshots, tags and entries follow the versions.

use apache_avro::Reader;
use apache_avro::types::Value;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema};
use bytes::Bytes;
use lakehouse_api::{
    ColumnType, CsvOptions, DatasetName, Field, Manifest, ObjectKey, ObjectRef, Schema,
    Sha256Digest, Source,
};
use lakehouse_iceberg::{FileKind, FileMetrics, TableInput, spec::TableMetadata};
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::ParquetMetaDataReader;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

fn object(name: &str, n: u64) -> ObjectRef {
    let sha = format!("{n:064x}");
    let fp = schema().fingerprint();
    ObjectRef {
        key: ObjectKey::new(format!("datasets/{name}/{}/{sha}.parquet", fp.hex())).unwrap(),
        size: 1000 + n,
        sha256: Sha256Digest::new(&sha).unwrap(),
        row_count: 10 * n,
        rejects: None,
    }
}

/// Versions 1..: `true` appends a new object, `false` replaces everything with one.
fn manifests(name: &str, appends: &[bool]) -> Vec<Arc<Manifest>> {
    let mut out: Vec<Arc<Manifest>> = Vec::new();
    let mut objects: Vec<ObjectRef> = Vec::new();
    for (i, append) in appends.iter().enumerate() {
        let n = i as u64 + 1;
        if !append {
            objects.clear();
        }
        objects.push(object(name, n));
        out.push(Arc::new(Manifest {
            operation: None,
            name: DatasetName::new(name).unwrap(),
            version: n,
            schema_fingerprint: schema().fingerprint(),
            schema: schema(),
            row_count: objects.iter().map(|o| o.row_count).sum(),
            objects: objects.clone(),
            created_at: format!("2026-01-01T00:00:{:02}.000000Z", n % 60),
            inference_version: 1,
            options: CsvOptions::default(),
            source: Source::default(),
            columns: Vec::new(),
        }));
    }
    out
}

fn metrics_for(input: &TableInput) -> HashMap<ObjectKey, FileMetrics> {
    let mut metrics = HashMap::new();
    for file in input.plan() {
        for object in file.data_files {
            metrics.insert(object.key.clone(), FileMetrics::default());
        }
    }
    metrics
}

/// Every planned file's bytes, rendered in plan order.
fn render_all(input: &TableInput) -> Vec<(String, Vec<u8>)> {
    let metrics = metrics_for(input);
    let mut lengths = HashMap::new();
    let mut out = Vec::new();
    for file in input.plan() {
        let bytes = input.render(&file, &metrics, &lengths).unwrap();
        lengths.insert(file.key.clone(), bytes.len() as u64);
        out.push((file.key, bytes));
    }
    out
}

fn all_versions(n: usize) -> BTreeSet<u64> {
    (1..=n as u64).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn same_manifests_give_the_same_bytes(appends in proptest::collection::vec(any::<bool>(), 1..8)) {
        let a = TableInput::new("file:///data", manifests("d", &appends), all_versions(appends.len())).unwrap();
        let b = TableInput::new("file:///data", manifests("d", &appends), all_versions(appends.len())).unwrap();
        prop_assert_eq!(render_all(&a), render_all(&b));
    }

    #[test]
    fn every_tag_names_its_version_and_counts_its_rows(appends in proptest::collection::vec(any::<bool>(), 1..8)) {
        let versions = manifests("d", &appends);
        let input = TableInput::new("s3://bucket", versions.clone(), all_versions(appends.len())).unwrap();
        let files = render_all(&input);
        let (_, json) = files.last().unwrap();
        let metadata: TableMetadata = serde_json::from_slice(json).unwrap();
        prop_assert_eq!(metadata.snapshots.len(), appends.len());
        for manifest in &versions {
            let tag = &metadata.refs[&format!("v{}", manifest.version)];
            prop_assert_eq!(tag.kind.as_str(), "tag");
            let snapshot = metadata.snapshots.iter().find(|s| s.snapshot_id == tag.snapshot_id).unwrap();
            prop_assert_eq!(&snapshot.summary["total-records"], &manifest.row_count.to_string());
            prop_assert_eq!(&snapshot.summary["lakehouse.version"], &manifest.version.to_string());
            // The live entries its manifest list reaches are exactly the version's objects.
            let list_key = snapshot.manifest_list.trim_start_matches("s3://bucket/");
            let list = &files.iter().find(|(k, _)| k == list_key).unwrap().1;
            let mut live = BTreeSet::new();
            for record in Reader::new(&list[..]).unwrap() {
                let Value::Record(fields) = record.unwrap() else { panic!() };
                let Value::String(path) = &fields[0].1 else { panic!() };
                let key = path.trim_start_matches("s3://bucket/");
                let manifest_bytes = &files.iter().find(|(k, _)| k == key).unwrap().1;
                for entry in Reader::new(&manifest_bytes[..]).unwrap() {
                    let Value::Record(entry) = entry.unwrap() else { panic!() };
                    let Value::Int(status) = entry[0].1 else { panic!() };
                    let Value::Record(data_file) = &entry[4].1 else { panic!() };
                    let Value::String(file) = &data_file[1].1 else { panic!() };
                    if status != 2 {
                        prop_assert!(live.insert(file.clone()), "listed twice: {}", file);
                    }
                }
            }
            let expected: BTreeSet<String> = manifest.objects.iter().map(|o| format!("s3://bucket/{}", o.key)).collect();
            prop_assert_eq!(live, expected);
        }
    }
}

#[test]
fn replace_is_an_overwrite_and_append_an_append() {
    let input = TableInput::new(
        "memory://",
        manifests("d", &[true, true, false]),
        all_versions(3),
    )
    .unwrap();
    let files = render_all(&input);
    let metadata: TableMetadata = serde_json::from_slice(&files.last().unwrap().1).unwrap();
    let ops: Vec<&str> = metadata
        .snapshots
        .iter()
        .map(|s| s.summary["operation"].as_str())
        .collect();
    assert_eq!(ops, ["append", "append", "overwrite"]);
    assert_eq!(metadata.snapshots[2].summary["deleted-data-files"], "2");
    assert_eq!(metadata.refs["main"].kind, "branch");
    assert_eq!(
        metadata.current_snapshot_id,
        metadata.snapshots[2].snapshot_id
    );
    assert_eq!(metadata.location, "memory://datasets/d");
    assert!(metadata.properties["schema.name-mapping.default"].contains(r#""field-id":2"#));
    assert_eq!(metadata.schemas[0].fields[1].kind, "string");
}

#[test]
fn retention_drops_expired_snapshots_but_keeps_the_latest() {
    let input = TableInput::new(
        "memory://",
        manifests("d", &[true, true, true]),
        BTreeSet::from([2]),
    )
    .unwrap();
    let metadata: TableMetadata =
        serde_json::from_slice(&render_all(&input).last().unwrap().1).unwrap();
    let tags: Vec<&String> = metadata.refs.keys().collect();
    assert_eq!(tags, ["main", "v2", "v3"]);
    assert!(
        input
            .plan()
            .iter()
            .all(|f| f.kind != FileKind::ManifestList { version: 1 })
    );
}

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

/// DESIGN.md section 8: a column added by schema evolution (a new fingerprint whose schema
/// is the old one plus columns at the end) gets the next unused field id and a new schema
/// id; the old columns keep their ids, and the appended version still lists the file
/// written before the column existed.
#[test]
fn added_columns_get_new_field_ids_and_a_new_schema() {
    let mut versions = manifests("d", &[true]);
    let wider = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
            Field::new("score", ColumnType::Float64),
        ],
    };
    let sha = format!("{:064x}", 2);
    let added = ObjectRef {
        key: ObjectKey::new(format!(
            "datasets/d/{}/{sha}.parquet",
            wider.fingerprint().hex()
        ))
        .unwrap(),
        size: 2000,
        sha256: Sha256Digest::new(&sha).unwrap(),
        row_count: 5,
        rejects: None,
    };
    let mut v2 = versions[0].as_ref().clone();
    v2.version = 2;
    v2.schema_fingerprint = wider.fingerprint();
    v2.schema = wider;
    v2.objects.push(added);
    v2.row_count = v2.objects.iter().map(|o| o.row_count).sum();
    versions.push(Arc::new(v2));
    let input = TableInput::new("memory://", versions, all_versions(2)).unwrap();
    let files = render_all(&input);
    let metadata: TableMetadata = serde_json::from_slice(&files.last().unwrap().1).unwrap();
    let ids = |schema: usize| -> Vec<(i32, String)> {
        metadata.schemas[schema]
            .fields
            .iter()
            .map(|f| (f.id, f.name.clone()))
            .collect()
    };
    assert_eq!(metadata.schemas.len(), 2);
    assert_eq!(
        ids(0),
        [(1, "id".to_owned()), (2, "name".to_owned())],
        "first schema: column i has id i"
    );
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
    assert_eq!(metadata.schemas[1].schema_id, 1);
    assert_eq!(metadata.current_schema_id, 1);
    assert_eq!(metadata.last_column_id, 3);
    assert_eq!(
        metadata
            .snapshots
            .iter()
            .map(|s| s.schema_id)
            .collect::<Vec<_>>(),
        [0, 1]
    );
    assert_eq!(metadata.snapshots[1].summary["operation"], "append");
    assert_eq!(metadata.snapshots[1].summary["total-data-files"], "2");
    assert!(
        metadata.properties["schema.name-mapping.default"]
            .contains(r#""field-id":3,"names":["score"]"#),
        "{}",
        metadata.properties["schema.name-mapping.default"]
    );
}
