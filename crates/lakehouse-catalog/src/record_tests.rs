//! Tests of how versions are recorded (docs/contract.md section 10): deltas and checkpoints,
//! what a start reads, time travel through them, and a compaction's register.

use crate::record::{VersionRecord, checkpoint_key};
use crate::tests::all_versions;
use crate::{CHECKPOINT_INTERVAL, Catalog, CatalogError, MemoryStore};
use bytes::Bytes;
use lakehouse_api::{
    DatasetName, IngestMode, Manifest, ObjectKey, ObjectRef, Operation, VersionRegisterRequest,
};
use lakehouse_testkit::fixtures::{object_ref, register_request, schema_id as schema};
use std::sync::Arc;

fn name(text: &str) -> DatasetName {
    DatasetName::new(text).unwrap()
}

fn put(store: &MemoryStore, ds: &DatasetName, seed: &str) -> ObjectRef {
    let object = object_ref(ds, &schema(), seed.as_bytes(), 10);
    store.insert(object.key.clone(), Bytes::from(seed.as_bytes().to_vec()));
    object
}

fn append(object: ObjectRef) -> VersionRegisterRequest {
    register_request(&schema(), vec![object], IngestMode::Append)
}

async fn appended(store: &Arc<MemoryStore>, ds: &DatasetName, count: u64) -> Vec<ObjectRef> {
    let catalog = Catalog::open(Arc::clone(store)).await.unwrap();
    let mut objects = Vec::new();
    for i in 0..count {
        let object = put(store, ds, &format!("o{i}"));
        catalog.register(ds, append(object.clone())).await.unwrap();
        objects.push(object);
    }
    objects
}

fn stored_record(store: &MemoryStore, ds: &DatasetName, version: u64) -> (usize, VersionRecord) {
    let bytes = store.bytes(&ObjectKey::manifest(ds, version)).unwrap();
    (bytes.len(), serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn an_append_writes_what_it_adds_whatever_the_history() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    let count = 2 * CHECKPOINT_INTERVAL + 30;
    appended(&store, &ds, count).await;
    let (first_delta, record) = stored_record(&store, &ds, 2);
    assert!(!record.is_full());
    let (last, record) = stored_record(&store, &ds, count);
    assert_eq!(record.object_count(), count);
    assert_eq!(record.added_keys().count(), 1);
    // Same shape of change, same bytes: a version number has a few more digits at most.
    assert!(
        last <= first_delta + 16,
        "record of version {count} is {last} bytes, of version 2 {first_delta}"
    );
    for version in [CHECKPOINT_INTERVAL, 2 * CHECKPOINT_INTERVAL] {
        let checkpoint: Manifest =
            serde_json::from_slice(&store.bytes(&checkpoint_key(&ds, version)).unwrap()).unwrap();
        assert_eq!(checkpoint.objects.len() as u64, version);
    }
    assert!(
        store
            .bytes(&checkpoint_key(&ds, CHECKPOINT_INTERVAL + 1))
            .is_none()
    );
}

#[tokio::test]
async fn a_start_reads_the_latest_checkpoint_and_the_records_after_it() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    let count = 3 * CHECKPOINT_INTERVAL + 7;
    let objects = appended(&store, &ds, count).await;
    let before = store.reads();
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    let reads = store.reads() - before;
    // A listing of the datasets and of the checkpoints, the checkpoint, the 7 records after
    // it and the GET that finds no next version: not one read per version.
    assert!(reads <= 12, "{reads} reads to open {count} versions");
    let latest = reopened.fetch_latest(&ds).await.unwrap();
    assert_eq!(latest.version, count);
    assert_eq!(latest.objects, objects);
    // Time travel below the checkpoint it was loaded from reads its own checkpoint.
    for version in [
        1,
        57,
        CHECKPOINT_INTERVAL,
        CHECKPOINT_INTERVAL + 1,
        250,
        count - 1,
    ] {
        let manifest = reopened.fetch_version(&ds, version).await.unwrap();
        assert_eq!(
            manifest.objects,
            objects[..version as usize],
            "version {version}"
        );
    }
}

#[tokio::test]
async fn a_missing_checkpoint_costs_reads_never_correctness() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    let count = 2 * CHECKPOINT_INTERVAL + 3;
    let objects = appended(&store, &ds, count).await;
    store.remove(&checkpoint_key(&ds, 2 * CHECKPOINT_INTERVAL));
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(reopened.fetch_latest(&ds).await.unwrap().objects, objects);
    let original = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(
        all_versions(&reopened, &ds).await,
        all_versions(&original, &ds).await
    );
}

#[tokio::test]
async fn records_written_whole_before_deltas_existed_still_load_and_get_a_checkpoint() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("legacy");
    let count = CHECKPOINT_INTERVAL + 5;
    let mut objects = Vec::new();
    for version in 1..=count {
        objects.push(put(&store, &ds, &format!("l{version}")));
        let manifest = Manifest {
            key: None,
            name: ds.clone(),
            version,
            schema_fingerprint: schema().fingerprint(),
            schema: schema(),
            objects: objects.clone(),
            row_count: objects.iter().map(|o| o.row_count).sum(),
            created_at: "2026-01-01T00:00:00.000000Z".into(),
            inference_version: 2,
            options: Default::default(),
            source: Default::default(),
            columns: Vec::new(),
            operation: None,
            partition_spec: None,
        };
        store.insert(
            ObjectKey::manifest(&ds, version),
            serde_json::to_vec_pretty(&manifest).unwrap(),
        );
    }
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(catalog.fetch_latest(&ds).await.unwrap().objects, objects);
    assert!(
        store
            .bytes(&checkpoint_key(&ds, CHECKPOINT_INTERVAL))
            .is_some(),
        "the open wrote the checkpoint the old layout lacked"
    );
    let next = put(&store, &ds, "next");
    let outcome = catalog.register(&ds, append(next)).await.unwrap();
    assert_eq!(outcome.manifest.objects.len() as u64, count + 1);
    assert!(!stored_record(&store, &ds, count + 1).1.is_full());
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(reopened.fetch_latest(&ds).await.unwrap(), outcome.manifest);
}

#[tokio::test]
async fn versions_are_listed_a_page_at_a_time() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    appended(&store, &ds, 25).await;
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let (page, next) = catalog.fetch_version_page(&ds, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|v| v.version).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(next, Some(10));
    let (page, next) = catalog.fetch_version_page(&ds, Some(20), 10).await.unwrap();
    assert_eq!(
        page.iter()
            .map(|v| (v.version, v.object_count))
            .collect::<Vec<_>>(),
        (21..=25).map(|v| (v, v)).collect::<Vec<_>>()
    );
    assert_eq!(next, None);
    assert!(
        page.iter()
            .all(|v| v.operation == Some(Operation::Append) && !v.gone)
    );
}

fn compaction(replaces: &[&ObjectRef], into: ObjectRef) -> VersionRegisterRequest {
    let mut request = register_request(&schema(), vec![into], IngestMode::Append);
    request.replaces = replaces.iter().map(|o| o.key.clone()).collect();
    request
}

#[tokio::test]
async fn a_compaction_replaces_its_inputs_in_place_and_keeps_a_racing_append() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    let objects = appended(&store, &ds, 4).await;
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    // An append lands after the compaction read version 4.
    let late = put(&store, &ds, "late");
    catalog.register(&ds, append(late.clone())).await.unwrap();
    let merged = put(&store, &ds, "merged");
    let request = compaction(&[&objects[1], &objects[2]], merged.clone());
    let outcome = catalog.register(&ds, request.clone()).await.unwrap();
    assert!(!outcome.existing);
    assert_eq!(outcome.manifest.operation, Some(Operation::Compact));
    let keys: Vec<&ObjectKey> = outcome.manifest.objects.iter().map(|o| &o.key).collect();
    assert_eq!(
        keys,
        [&objects[0].key, &merged.key, &objects[3].key, &late.key]
    );
    // The same compaction again (a retry, a racing replica): the version already holds it.
    let again = catalog.register(&ds, request).await.unwrap();
    assert!(again.existing);
    assert_eq!(again.manifest.version, outcome.manifest.version);
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(reopened.fetch_latest(&ds).await.unwrap(), outcome.manifest);
}

#[tokio::test]
async fn a_compaction_whose_inputs_a_replace_removed_commits_nothing() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("feed");
    let objects = appended(&store, &ds, 3).await;
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let fresh = put(&store, &ds, "fresh");
    catalog
        .register(
            &ds,
            register_request(&schema(), vec![fresh], IngestMode::Replace),
        )
        .await
        .unwrap();
    let merged = put(&store, &ds, "merged");
    let error = catalog
        .register(&ds, compaction(&[&objects[0], &objects[1]], merged))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, CatalogError::CompactionConflict { key, .. } if *key == objects[0].key),
        "{error:?}"
    );
    assert_eq!(catalog.fetch_latest(&ds).await.unwrap().version, 4);
    assert!(store.bytes(&ObjectKey::manifest(&ds, 5)).is_none());
}

#[tokio::test]
async fn a_dropped_dataset_leaves_lookups_and_a_new_one_continues_its_numbers() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("gone");
    let objects = appended(&store, &ds, 3).await;
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let replica = Catalog::open(Arc::clone(&store)).await.unwrap();
    let tombstone = catalog.drop_dataset(&ds).await.unwrap();
    assert_eq!(
        (tombstone.version, tombstone.operation),
        (4, Some(Operation::Drop))
    );
    assert!(matches!(
        catalog.fetch_latest(&ds).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.drop_dataset(&ds).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(catalog.list("", 100, None).datasets.is_empty());
    // Another replica sees the tombstone by its refresh; a restart by its records.
    assert!(matches!(
        replica.fetch_latest(&ds).await,
        Err(CatalogError::NotFound { .. })
    ));
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert!(reopened.list("", 100, None).datasets.is_empty());
    // Garbage collection may take every object of the dropped dataset.
    let (kept, expired) = catalog.retained_keys(&ds).await.unwrap();
    assert!(kept.is_empty() && expired == 0, "{kept:?}");
    assert!(!objects.is_empty());

    // A new dataset under the name: any schema, numbers after the tombstone.
    let other_schema = lakehouse_testkit::fixtures::schema_id_name();
    let fresh = object_ref(&ds, &other_schema, b"fresh", 5);
    store.insert(fresh.key.clone(), Bytes::from_static(b"fresh"));
    let outcome = reopened
        .register(
            &ds,
            register_request(&other_schema, vec![fresh.clone()], IngestMode::Append),
        )
        .await
        .unwrap();
    assert_eq!(outcome.manifest.version, 5);
    assert_eq!(outcome.manifest.objects, vec![fresh]);
    assert!(stored_record(&store, &ds, 5).1.is_full());
    assert!(matches!(
        reopened.fetch_version(&ds, 2).await,
        Err(CatalogError::Gone { version: 2, .. })
    ));
    let (page, _) = reopened.fetch_version_page(&ds, None, 10).await.unwrap();
    assert_eq!(
        page.iter().map(|v| v.gone).collect::<Vec<_>>(),
        [true, true, true, true, false]
    );
    let (kept, _) = reopened.retained_keys(&ds).await.unwrap();
    assert_eq!(kept.len(), 1);
}
