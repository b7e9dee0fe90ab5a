//! A partitioned dataset's Iceberg table (docs/contract.md section 10): its versions,
//! registered with their partition spec and tuples, project spec 0 with the dataset's
//! partition fields, and manifests whose `partition` record holds them, through appends, a
//! compaction and a replace.

use super::{name, open, put_object, request};
use crate::MemoryStore;
use lakehouse_api::{IngestMode, ObjectKey, ObjectRef, PartitionScalar, PartitionSpec};
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
