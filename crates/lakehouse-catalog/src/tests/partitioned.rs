//! A partitioned dataset's Iceberg table (docs/contract.md section 10): its versions,
//! registered with their partition spec and tuples, project spec 0 with the dataset's
//! partition fields, and manifests whose `partition` record holds them, through appends, a
//! compaction and a replace; a tuple whose values do not fit their fields' types is
//! refused at register.

use super::{name, open, put_object, request};
use crate::{CatalogError, MemoryStore};
use lakehouse_api::{
    ColumnType, Field, IngestMode, ObjectKey, ObjectRef, PartitionScalar, PartitionSpec, Schema,
};
use lakehouse_iceberg::spec::TableMetadata;
use lakehouse_iceberg::{PartitionBy, metadata_file_key};
use lakehouse_testkit::fixtures::schema_id_name as schema_v1;

fn spec() -> PartitionSpec {
    PartitionBy::parse("bucket(4,id),name")
        .unwrap()
        .spec(&schema_v1())
        .unwrap()
}

/// `content` stored as an object of bucket `bucket` and name `label`.
fn object(store: &MemoryStore, content: &str, bucket: i64, label: &str) -> ObjectRef {
    let mut object = put_object(store, &name("events"), &schema_v1(), content);
    object.partition = Some(vec![
        Some(PartitionScalar::Int(bucket)),
        Some(PartitionScalar::Str(label.into())),
    ]);
    object
}

#[tokio::test]
async fn a_partitioned_dataset_projects_its_partition_spec_and_tuples() {
    let store = MemoryStore::new();
    let events = name("events");
    let a = object(&store, "a", 0, "eu");
    let b = object(&store, "b", 1, "us");
    let c = object(&store, "c", 2, "eu");
    let d = object(&store, "d", 3, "asia");
    let catalog = open(store).await.with_table_base("memory://");
    let register = |objects: Vec<ObjectRef>, mode, replaces: Vec<ObjectKey>| {
        let mut request = request(&schema_v1(), objects, mode);
        request.partition_spec = Some(spec());
        request.replaces = replaces;
        let catalog = &catalog;
        let events = &events;
        async move { catalog.register(events, request).await.unwrap() }
    };
    register(vec![a.clone()], IngestMode::Replace, Vec::new()).await;
    register(vec![b.clone()], IngestMode::Append, Vec::new()).await;
    register(vec![c.clone()], IngestMode::Append, Vec::new()).await;
    // a compaction of b and c into d
    let outcome = register(
        vec![d.clone()],
        IngestMode::Append,
        vec![b.key.clone(), c.key.clone()],
    )
    .await;
    assert_eq!(outcome.manifest.version, 4);
    let metadata_key = ObjectKey::new(metadata_file_key(&events, 4)).unwrap();
    let json = catalog.store().bytes(&metadata_key).unwrap();
    let metadata: TableMetadata = serde_json::from_slice(&json).unwrap();
    let fields = serde_json::to_value(&metadata.partition_specs).unwrap();
    assert_eq!(
        fields,
        serde_json::json!([{"spec-id": 0, "fields": [
            {"source-id": 1, "field-id": 1000, "name": "id_bucket", "transform": "bucket[4]"},
            {"source-id": 2, "field-id": 1001, "name": "name", "transform": "identity"},
        ]}])
    );
    assert_eq!(metadata.last_partition_id, 1001);
    assert_eq!(metadata.snapshots.len(), 4);
    // every manifest the table names holds the partition record's fields
    let keys = catalog.table_keys(&events).await.unwrap();
    let manifests: Vec<&String> = keys.iter().filter(|k| k.contains("-m")).collect();
    assert!(!manifests.is_empty());
    for key in manifests {
        let bytes = catalog
            .store()
            .bytes(&ObjectKey::new(key.clone()).unwrap())
            .unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""name":"id_bucket","type":["null","int"]"#),
            "{key} has the partition record"
        );
        assert!(
            text.contains(
                r#"{"source-id":2,"field-id":1001,"name":"name","transform":"identity"}"#
            )
        );
    }
    // a replace of everything: the deleted entries carry their partitions as well
    let e = object(catalog.store(), "e", 0, "eu");
    register(vec![e], IngestMode::Replace, Vec::new()).await;
    let json = catalog
        .store()
        .bytes(&ObjectKey::new(metadata_file_key(&events, 5)).unwrap())
        .unwrap();
    let metadata: TableMetadata = serde_json::from_slice(&json).unwrap();
    assert_eq!(metadata.partition_specs[0].fields.len(), 2);
}

/// `{id: int64, d: date32, name: utf8}`.
fn schema_dated() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("d", ColumnType::Date32),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

#[tokio::test]
async fn a_tuple_that_does_not_fit_its_fields_types_is_refused() {
    use PartitionScalar::{Bool, Float, Int, Str};
    let store = MemoryStore::new();
    let typed = name("typed");
    let schema = schema_dated();
    // result types int, date, string
    let spec = PartitionBy::parse("bucket(4,id),day(d),name")
        .unwrap()
        .spec(&schema)
        .unwrap();
    let stored = put_object(&store, &typed, &schema, "a");
    let other = put_object(&store, &typed, &schema, "b");
    let catalog = open(store).await.with_table_base("memory://");
    let register = |object: &ObjectRef, tuple: Vec<Option<PartitionScalar>>| {
        let mut object = object.clone();
        object.partition = Some(tuple);
        let mut request = request(&schema, vec![object], IngestMode::Replace);
        request.partition_spec = Some(spec.clone());
        let catalog = &catalog;
        let typed = &typed;
        async move { catalog.register(typed, request).await }
    };
    // as ingestd sends them: a bucket and a day as numbers, a string as a string
    let fits = vec![Some(Int(3)), Some(Int(19_782)), Some(Str("eu".into()))];
    for (at, value, field, expected) in [
        (0, Str("3".into()), "id_bucket", "int"),
        (0, Int(i64::from(i32::MAX) + 1), "id_bucket", "int"),
        (1, Float(19_782.5), "d_day", "date"),
        (1, Str("2024-02-29".into()), "d_day", "date"),
        (2, Bool(true), "name", "string"),
        (2, Int(7), "name", "string"),
    ] {
        let mut tuple = fits.clone();
        tuple[at] = Some(value.clone());
        match register(&stored, tuple).await {
            Err(CatalogError::InvalidObject { key, reason }) => {
                assert_eq!(key, stored.key, "{value:?}");
                assert!(
                    reason.contains(&format!("`{field}`"))
                        && reason.contains(&format!("`{expected}`")),
                    "{value:?}: {reason}"
                );
            }
            other => panic!("{value:?} for {field}: {other:?}"),
        }
    }
    assert!(catalog.latest(&typed).is_none(), "nothing was committed");
    // nulls fit every type
    register(&stored, vec![None, None, None]).await.unwrap();
    let outcome = register(&other, fits).await.unwrap();
    assert_eq!(outcome.manifest.version, 2);
    let json = catalog
        .store()
        .bytes(&ObjectKey::new(metadata_file_key(&typed, 2)).unwrap())
        .unwrap();
    let metadata: TableMetadata = serde_json::from_slice(&json).unwrap();
    assert_eq!(metadata.snapshots.len(), 2);
}
