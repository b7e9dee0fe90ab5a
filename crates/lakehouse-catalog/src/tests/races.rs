//! Racing committers and replicas on one store: next versions, existing, drift, bounded
//! conflicts, no gaps or overwrites.

use super::{
    append_v1, keys, name, open, put_object, replace_v1, request, rival_manifest, schema_v2,
};
use crate::{Catalog, CatalogError, MAX_COMMIT_ATTEMPTS, MemoryStore, manifest_prefix};
use lakehouse_api::{IngestMode, ObjectKey, ObjectRef};
use lakehouse_iceberg::TableState;
use lakehouse_testkit::fixtures::schema_id_name as schema_v1;
use std::sync::Arc;

#[tokio::test]
async fn racing_committer_with_other_objects_makes_us_the_next_version() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let b = put_object(&store, &ds, &schema_v1(), "b");
    let rival = rival_manifest(&ds, 1, &schema_v1(), vec![b.clone()]);
    let catalog = open(store).await;
    let (key, bytes) = (ObjectKey::manifest(&ds, 1), rival.clone());
    catalog.store().before_next_put(move |objects| {
        objects.insert(key, bytes);
    });
    let outcome = append_v1(&catalog, &ds, vec![a.clone()]).await;
    assert!(!outcome.existing);
    assert_eq!(outcome.manifest.version, 2);
    assert_eq!(keys(&outcome.manifest.objects), keys(&[b, a]));
    // The rival's version was never overwritten.
    assert_eq!(
        catalog.store().bytes(&ObjectKey::manifest(&ds, 1)).unwrap(),
        rival
    );
}

#[tokio::test]
async fn racing_committer_with_the_same_objects_makes_us_existing() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let (key, bytes) = (
        ObjectKey::manifest(&ds, 1),
        rival_manifest(&ds, 1, &schema_v1(), vec![a.clone()]),
    );
    catalog.store().before_next_put(move |objects| {
        objects.insert(key, bytes);
    });
    let outcome = replace_v1(&catalog, &ds, vec![a]).await;
    assert!(outcome.existing);
    assert_eq!(outcome.manifest.version, 1);
    assert_eq!(outcome.manifest.created_at, "2020-01-01T00:00:00.000000Z");
    assert_eq!(catalog.store().keys(&manifest_prefix(&ds)).len(), 1);
}

#[tokio::test]
async fn racing_committer_with_another_schema_makes_us_drift() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let d = put_object(&store, &ds, &schema_v2(), "d");
    let catalog = open(store).await;
    replace_v1(&catalog, &ds, vec![a.clone()]).await;
    let b = put_object(catalog.store(), &ds, &schema_v1(), "b");
    let (key, bytes) = (
        ObjectKey::manifest(&ds, 2),
        rival_manifest(&ds, 2, &schema_v2(), vec![d]),
    );
    catalog.store().before_next_put(move |objects| {
        objects.insert(key, bytes.clone());
    });
    let err = catalog
        .register(&ds, request(&schema_v1(), vec![b], IngestMode::Replace))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::SchemaDrift { details: d, .. } if d.current_fingerprint == schema_v2().fingerprint()),
        "{err:?}"
    );
    assert_eq!(catalog.store().keys(&manifest_prefix(&ds)).len(), 2);
    assert_eq!(
        catalog.latest(&ds).unwrap().schema_fingerprint,
        schema_v2().fingerprint()
    );
}

#[tokio::test]
async fn losing_every_race_is_a_bounded_conflict() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    for version in 1..=u64::from(MAX_COMMIT_ATTEMPTS) {
        let b = put_object(
            catalog.store(),
            &ds,
            &schema_v1(),
            &format!("rival{version}"),
        );
        let (key, bytes) = (
            ObjectKey::manifest(&ds, version),
            rival_manifest(&ds, version, &schema_v1(), vec![b]),
        );
        catalog.store().before_next_put(move |objects| {
            objects.insert(key, bytes);
        });
    }
    let err = catalog
        .register(&ds, request(&schema_v1(), vec![a], IngestMode::Replace))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::Conflict {
                attempts: MAX_COMMIT_ATTEMPTS,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        catalog.latest(&ds).unwrap().version,
        u64::from(MAX_COMMIT_ATTEMPTS)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_registers_on_one_catalog_give_versions_without_gaps() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let objects: Vec<ObjectRef> = (0..24)
        .map(|i| put_object(&store, &ds, &schema_v1(), &format!("o{i}")))
        .collect();
    let catalog = Arc::new(open(store).await);
    let tasks: Vec<_> = objects
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let (catalog, ds) = (Arc::clone(&catalog), ds.clone());
            let mode = if i % 2 == 0 {
                IngestMode::Append
            } else {
                IngestMode::Replace
            };
            tokio::spawn(async move {
                catalog
                    .register(&ds, request(&schema_v1(), vec![object], mode))
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        assert!(!outcome.existing);
        versions.push(outcome.manifest.version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=24).collect::<Vec<u64>>());
    assert_eq!(catalog.store().keys(&manifest_prefix(&ds)).len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_store_race_without_gaps_or_overwrites() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("sales");
    let objects: Vec<ObjectRef> = (0..30)
        .map(|i| put_object(&store, &ds, &schema_v1(), &format!("o{i}")))
        .collect();
    let replica = || async {
        let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
        Arc::new(catalog.with_table_base("memory://"))
    };
    let replicas = [replica().await, replica().await];
    let tasks: Vec<_> = objects
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let (catalog, ds) = (Arc::clone(&replicas[i % 2]), ds.clone());
            tokio::spawn(async move {
                catalog
                    .register(&ds, request(&schema_v1(), vec![object], IngestMode::Append))
                    .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.unwrap().unwrap().manifest.version);
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=30).collect::<Vec<u64>>());
    // Appends commute: the last version holds every object, each once.
    let last = replicas[0].fetch_latest(&ds).await.unwrap();
    assert_eq!(last.version, 30);
    assert_eq!(last.objects.len(), 30);
    // Each version's record is exactly what its committer answered (never overwritten):
    // version 1 lists its object, each later one adds one (docs/contract.md section 10).
    for version in 1..=30 {
        let stored: crate::record::VersionRecord =
            serde_json::from_slice(&store.bytes(&ObjectKey::manifest(&ds, version)).unwrap())
                .unwrap();
        assert_eq!(stored.object_count(), version);
        assert_eq!(stored.is_full(), version == 1);
    }
    // Each version's Iceberg table reads exactly its objects: the Avro files a committer
    // wrote before losing a race are never the winner's (their names carry the commit's
    // tag; docs/contract.md section 10).
    let bytes = |key: &str| store.bytes(&ObjectKey::new(key.to_owned()).unwrap());
    for version in 1..=30 {
        let manifest = replicas[1].fetch_version(&ds, version).await.unwrap();
        let json = bytes(&lakehouse_iceberg::metadata_file_key(&ds, version)).unwrap();
        let list_key = TableState::list_key_of("memory://", &ds, &json).unwrap();
        let list = bytes(&list_key).unwrap();
        let read = lakehouse_iceberg::live_data_files("memory://", &list_key, &list, |key| {
            bytes(key).map(|b| b.to_vec())
        })
        .unwrap();
        let mut read: Vec<&str> = read.iter().map(String::as_str).collect();
        let mut held = keys(&manifest.objects);
        read.sort_unstable();
        held.sort_unstable();
        assert_eq!(read, held, "version {version}");
    }
}
