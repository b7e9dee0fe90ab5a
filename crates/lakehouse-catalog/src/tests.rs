//! Unit tests of the commit protocol over [`MemoryStore`].

use crate::{
    Catalog, CatalogError, MAX_COMMIT_ATTEMPTS, ManifestStore, MemoryStore, RegisterOutcome,
    manifest_prefix,
};
use bytes::Bytes;
use lakehouse_api::{
    ColumnType, CsvOptions, DatasetName, Field, IngestMode, Manifest, ObjectKey, ObjectRef, Schema,
    SchemaEvolution, Sha256Digest, Source, VersionRegisterRequest,
};
use lakehouse_testkit::fixtures::{object_ref, register_request, schema_id_name as schema_v1};
use std::sync::Arc;

fn name(text: &str) -> DatasetName {
    DatasetName::new(text).unwrap()
}

fn schema_v2() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Float64),
            Field::new("name", ColumnType::Utf8),
            Field::new("extra", ColumnType::Bool),
        ],
    }
}

/// Stores `content` as the dataset's Parquet object under its content-addressed key.
fn put_object(
    store: &MemoryStore,
    dataset: &DatasetName,
    schema: &Schema,
    content: &str,
) -> ObjectRef {
    let object = object_ref(
        dataset,
        schema,
        content.as_bytes(),
        content.len() as u64 * 10,
    );
    store.insert(object.key.clone(), Bytes::from(content.to_owned()));
    object
}

fn request(schema: &Schema, objects: Vec<ObjectRef>, mode: IngestMode) -> VersionRegisterRequest {
    VersionRegisterRequest {
        replaces: Vec::new(),
        source: Source {
            filename: Some("x.csv".into()),
            ..Source::default()
        },
        ..register_request(schema, objects, mode)
    }
}

/// A manifest as another replica would write it.
fn rival_manifest(
    dataset: &DatasetName,
    version: u64,
    schema: &Schema,
    objects: Vec<ObjectRef>,
) -> Bytes {
    let manifest = Manifest {
        operation: None,
        name: dataset.clone(),
        version,
        schema_fingerprint: schema.fingerprint(),
        schema: schema.clone(),
        row_count: objects.iter().map(|o| o.row_count).sum(),
        objects,
        created_at: "2020-01-01T00:00:00.000000Z".into(),
        inference_version: 1,
        options: CsvOptions::default(),
        source: Source::default(),
        columns: Vec::new(),
    };
    Bytes::from(serde_json::to_vec(&manifest).unwrap())
}

/// Every version of `name`, materialized (test helper: O(versions x objects)).
pub(crate) async fn all_versions<S: ManifestStore>(
    catalog: &Catalog<S>,
    name: &DatasetName,
) -> Vec<Arc<Manifest>> {
    let latest = catalog.fetch_latest(name).await.unwrap().version;
    let mut out = Vec::new();
    for version in 1..=latest {
        out.push(catalog.fetch_version_any(name, version).await.unwrap());
    }
    out
}

fn keys(objects: &[ObjectRef]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

/// Registers a version made of `objects` with `schema`, which must succeed.
async fn commit<S: ManifestStore>(
    catalog: &Catalog<S>,
    dataset: &DatasetName,
    schema: &Schema,
    objects: Vec<ObjectRef>,
    mode: IngestMode,
) -> RegisterOutcome {
    catalog
        .register(dataset, request(schema, objects, mode))
        .await
        .unwrap()
}

async fn open(store: MemoryStore) -> Catalog<MemoryStore> {
    Catalog::open(store).await.unwrap()
}

#[tokio::test]
async fn first_version_is_1_and_is_written_create_only() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let outcome = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    assert!(!outcome.existing);
    let m = &outcome.manifest;
    assert_eq!(m.version, 1);
    assert_eq!(m.objects, vec![a.clone()]);
    assert_eq!(m.row_count, a.row_count);
    assert_eq!(m.schema_fingerprint, schema_v1().fingerprint());
    assert_eq!(m.source.filename.as_deref(), Some("x.csv"));
    // RFC 3339 UTC with microseconds.
    assert_eq!(
        m.created_at.len(),
        "2024-01-01T00:00:00.000000Z".len(),
        "{}",
        m.created_at
    );
    assert!(m.created_at.ends_with('Z'));
    let stored = catalog.store().bytes(&ObjectKey::manifest(&ds, 1)).unwrap();
    let stored: Manifest = serde_json::from_slice(&stored).unwrap();
    assert_eq!(&stored, m.as_ref());
    assert_eq!(catalog.latest(&ds).unwrap(), outcome.manifest);
}

#[tokio::test]
async fn same_objects_again_are_existing_in_both_modes() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let b = put_object(&store, &ds, &schema_v1(), "b");
    let catalog = open(store).await;
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    let again = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    assert!(again.existing);
    assert_eq!(again.manifest.version, 1);
    let appended = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![b.clone()],
        IngestMode::Append,
    )
    .await;
    assert_eq!(appended.manifest.version, 2);
    // Append of an object the latest version holds: existing.
    for object in [&a, &b] {
        let again = commit(
            &catalog,
            &ds,
            &schema_v1(),
            vec![object.clone()],
            IngestMode::Append,
        )
        .await;
        assert!(again.existing);
        assert_eq!(again.manifest.version, 2);
    }
    // Replace with one object of two is a new version holding only that object.
    let replaced = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    assert!(!replaced.existing);
    assert_eq!(replaced.manifest.version, 3);
    assert_eq!(catalog.store().keys(&manifest_prefix(&ds)).len(), 3);
}

#[tokio::test]
async fn replace_holds_only_the_new_object_and_append_adds_in_order() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let b = put_object(&store, &ds, &schema_v1(), "bb");
    let c = put_object(&store, &ds, &schema_v1(), "ccc");
    let catalog = open(store).await;
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    let v2 = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![b.clone()],
        IngestMode::Replace,
    )
    .await;
    assert_eq!(v2.manifest.version, 2);
    assert_eq!(keys(&v2.manifest.objects), keys(std::slice::from_ref(&b)));
    let v3 = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone(), c.clone()],
        IngestMode::Append,
    )
    .await;
    assert_eq!(v3.manifest.version, 3);
    assert_eq!(
        keys(&v3.manifest.objects),
        keys(&[b.clone(), a.clone(), c.clone()])
    );
    assert_eq!(
        v3.manifest.row_count,
        a.row_count + b.row_count + c.row_count
    );
    // Time travel still sees the old versions.
    assert_eq!(
        keys(&catalog.fetch_version(&ds, 1).await.unwrap().objects),
        keys(&[a])
    );
    assert_eq!(all_versions(&catalog, &ds).await.len(), 3);
}

#[tokio::test]
async fn drift_is_an_error_and_writes_nothing() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let d = put_object(&store, &ds, &schema_v2(), "d");
    let catalog = open(store).await;
    commit(&catalog, &ds, &schema_v1(), vec![a], IngestMode::Replace).await;
    let before = catalog.store().keys("");
    for mode in [IngestMode::Replace, IngestMode::Append] {
        let err = catalog
            .register(&ds, request(&schema_v2(), vec![d.clone()], mode))
            .await
            .unwrap_err();
        let CatalogError::SchemaDrift { details, .. } = err else {
            panic!("expected drift, got {err:?}");
        };
        assert_eq!(details.current_fingerprint, schema_v1().fingerprint());
        assert_eq!(details.attempted_fingerprint, schema_v2().fingerprint());
        assert_eq!(details.added, vec!["extra"]);
        assert_eq!(details.changed.len(), 1);
        assert_eq!(details.changed[0].column, "id");
    }
    assert_eq!(catalog.store().keys(""), before);
    assert_eq!(catalog.latest(&ds).unwrap().version, 1);
}

#[tokio::test]
async fn fingerprint_mismatch_is_refused() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let mut req = request(&schema_v1(), vec![a], IngestMode::Replace);
    req.schema_fingerprint = schema_v2().fingerprint();
    let err = catalog.register(&ds, req).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::FingerprintMismatch { declared, computed }
            if *declared == schema_v2().fingerprint() && *computed == schema_v1().fingerprint()),
        "{err:?}"
    );
    assert!(catalog.store().keys("_catalog/").is_empty());
}

#[tokio::test]
async fn missing_or_incomplete_objects_are_refused() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let mut wrong_size = a.clone();
    wrong_size.size += 1;
    let err = catalog
        .register(
            &ds,
            request(&schema_v1(), vec![wrong_size], IngestMode::Replace),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::InvalidObject { reason, .. } if reason.contains("size")),
        "{err:?}"
    );
    catalog.store().remove(&a.key);
    let err = catalog
        .register(
            &ds,
            request(&schema_v1(), vec![a.clone()], IngestMode::Replace),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::InvalidObject { key, .. } if *key == a.key),
        "{err:?}"
    );
    let err = catalog
        .register(&ds, request(&schema_v1(), vec![], IngestMode::Replace))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::InvalidRequest(_)), "{err:?}");
    assert!(catalog.store().keys("_catalog/").is_empty());
}

#[tokio::test]
async fn keys_outside_the_dataset_layout_are_refused() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let other = put_object(&store, &name("other"), &schema_v1(), "a");
    let other_fp = put_object(&store, &ds, &schema_v2(), "a");
    let good = put_object(&store, &ds, &schema_v1(), "a");
    let mut wrong_sha = good.clone();
    wrong_sha.sha256 = Sha256Digest::new("0".repeat(64)).unwrap();
    let mut nested = good.clone();
    nested.key = ObjectKey::new(format!(
        "datasets/sales/{}/day=1/{}.parquet",
        schema_v1().fingerprint().hex(),
        good.sha256
    ))
    .unwrap();
    store.insert(nested.key.clone(), Bytes::from_static(b"a"));
    let catalog = open(store).await;
    for bad in [other, other_fp, wrong_sha, nested] {
        let err = catalog
            .register(
                &ds,
                request(&schema_v1(), vec![bad.clone()], IngestMode::Replace),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, CatalogError::InvalidObject { key, .. } if *key == bad.key),
            "{err:?}"
        );
    }
    let err = catalog
        .register(
            &ds,
            request(
                &schema_v1(),
                vec![good.clone(), good.clone()],
                IngestMode::Replace,
            ),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::InvalidRequest(_)), "{err:?}");
    assert!(catalog.store().keys("_catalog/").is_empty());
}

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
    let outcome = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Append,
    )
    .await;
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
    let outcome = commit(&catalog, &ds, &schema_v1(), vec![a], IngestMode::Replace).await;
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
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
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

#[tokio::test]
async fn reopening_rebuilds_an_identical_index() {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    for (dataset, count) in [("a", 3), ("b.c", 1), ("z-1", 2)] {
        let ds = name(dataset);
        for i in 0..count {
            let object = put_object(&store, &ds, &schema_v1(), &format!("{dataset}{i}"));
            commit(
                &catalog,
                &ds,
                &schema_v1(),
                vec![object],
                IngestMode::Append,
            )
            .await;
        }
    }
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    for dataset in catalog.list("", 1000, None).datasets {
        assert_eq!(
            all_versions(&catalog, &dataset.name).await,
            all_versions(&reopened, &dataset.name).await
        );
    }
    assert_eq!(catalog.list("", 1000, None), reopened.list("", 1000, None));
    assert_eq!(reopened.list("", 1000, None).datasets.len(), 3);
}

#[tokio::test]
async fn corrupt_or_stray_manifests_stop_the_open_naming_the_key() {
    for (key, bytes) in [
        (
            "_catalog/datasets/sales/00000000000000000001.json",
            &b"{not json"[..],
        ),
        ("_catalog/datasets/sales/1.json", &b"{}"[..]),
        (
            "_catalog/datasets/sales/00000000000000000000.json",
            &b"{}"[..],
        ),
    ] {
        let store = MemoryStore::new();
        store.insert(ObjectKey::new(key).unwrap(), Bytes::from_static(bytes));
        let err = Catalog::open(store).await.unwrap_err();
        assert!(
            matches!(&err, CatalogError::CorruptManifest { key: k, .. } if k == key),
            "{err:?}"
        );
        assert!(err.to_string().contains(key));
    }
    // A manifest stored under another version's key.
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    store.insert(
        ObjectKey::manifest(&ds, 2),
        rival_manifest(&ds, 1, &schema_v1(), vec![a]),
    );
    let err = Catalog::open(store).await.unwrap_err();
    assert!(
        matches!(err, CatalogError::CorruptManifest { .. }),
        "{err:?}"
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
    let replicas = [
        Arc::new(Catalog::open(Arc::clone(&store)).await.unwrap()),
        Arc::new(Catalog::open(Arc::clone(&store)).await.unwrap()),
    ];
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
}

#[tokio::test]
async fn list_pages_by_name_with_prefix_and_cursor() {
    let store = MemoryStore::new();
    let names = ["a1", "a2", "a3", "b1", "a4"];
    for n in names {
        let ds = name(n);
        let o = put_object(&store, &ds, &schema_v1(), n);
        store.insert(
            ObjectKey::manifest(&ds, 1),
            rival_manifest(&ds, 1, &schema_v1(), vec![o]),
        );
    }
    let catalog = open(store).await;
    let page = catalog.list("a", 2, None);
    assert_eq!(
        page.datasets
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["a1", "a2"]
    );
    assert_eq!(page.next_cursor.as_deref(), Some("a2"));
    let page = catalog.list("a", 2, page.next_cursor.as_deref());
    assert_eq!(
        page.datasets
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>(),
        ["a3", "a4"]
    );
    assert_eq!(page.next_cursor, None);
    let all = catalog.list("", 10, None);
    assert_eq!(all.datasets.len(), 5);
    assert_eq!(all.next_cursor, None);
    assert_eq!(all.datasets[0].latest_version, 1);
    assert!(catalog.list("c", 10, None).datasets.is_empty());
}

#[tokio::test]
async fn lookups_see_versions_other_replicas_wrote() {
    let store = Arc::new(MemoryStore::new());
    let ds = name("sales");
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert!(matches!(
        catalog.fetch_latest(&ds).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.fetch_version(&ds, 1).await,
        Err(CatalogError::NotFound { .. })
    ));
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let b = put_object(&store, &ds, &schema_v1(), "b");
    store.insert(
        ObjectKey::manifest(&ds, 1),
        rival_manifest(&ds, 1, &schema_v1(), vec![a]),
    );
    assert_eq!(catalog.fetch_latest(&ds).await.unwrap().version, 1);
    store.insert(
        ObjectKey::manifest(&ds, 2),
        rival_manifest(&ds, 2, &schema_v1(), vec![b]),
    );
    assert_eq!(catalog.fetch_version(&ds, 2).await.unwrap().version, 2);
    assert!(matches!(
        catalog.fetch_version(&ds, 3).await,
        Err(CatalogError::VersionNotFound { version: 3, .. })
    ));
    assert_eq!(all_versions(&catalog, &ds).await.len(), 2);
}

#[tokio::test]
async fn reads_survive_a_store_outage_but_registers_fail() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    catalog.store().set_unavailable(true);
    assert!(catalog.store().ready().await.is_err());
    assert_eq!(catalog.fetch_latest(&ds).await.unwrap().version, 1);
    assert!(matches!(
        catalog.fetch_latest(&name("other")).await,
        Err(CatalogError::Store(_))
    ));
    let err = catalog
        .register(&ds, request(&schema_v1(), vec![a], IngestMode::Replace))
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::Store(_)), "{err:?}");
}

#[tokio::test]
async fn refresh_all_loads_datasets_and_versions_other_replicas_wrote() {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let (sales, items) = (name("sales"), name("items"));
    let a = put_object(&store, &sales, &schema_v1(), "a");
    let b = put_object(&store, &items, &schema_v1(), "b");
    store.insert(
        ObjectKey::manifest(&sales, 1),
        rival_manifest(&sales, 1, &schema_v1(), vec![a.clone()]),
    );
    store.insert(
        ObjectKey::manifest(&sales, 2),
        rival_manifest(&sales, 2, &schema_v1(), vec![a]),
    );
    store.insert(
        ObjectKey::manifest(&items, 1),
        rival_manifest(&items, 1, &schema_v1(), vec![b]),
    );
    // The index does not know them until a refresh.
    assert!(catalog.list("", 10, None).datasets.is_empty());
    assert_eq!(catalog.refresh_all().await.unwrap(), 3);
    let listed: Vec<(String, u64)> = catalog
        .list("", 10, None)
        .datasets
        .into_iter()
        .map(|d| (d.name.to_string(), d.latest_version))
        .collect();
    assert_eq!(listed, [("items".into(), 1), ("sales".into(), 2)]);
    // Nothing new: nothing loaded.
    assert_eq!(catalog.refresh_all().await.unwrap(), 0);
}

/// `schema_v1()` (`id:int64, name:utf8`) plus the columns `extra`.
fn schema_plus(extra: &[(&str, ColumnType)]) -> Schema {
    let mut schema = schema_v1();
    schema
        .fields
        .extend(extra.iter().map(|(n, t)| Field::new(*n, *t)));
    schema
}

fn evolving(schema: &Schema, objects: Vec<ObjectRef>, mode: IngestMode) -> VersionRegisterRequest {
    VersionRegisterRequest {
        replaces: Vec::new(),
        schema_evolution: Some(SchemaEvolution::AddColumns),
        ..request(schema, objects, mode)
    }
}

#[tokio::test]
async fn add_columns_makes_a_new_schema_version_keeping_appended_objects() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let wider = schema_plus(&[("extra", ColumnType::Bool)]);
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let b = put_object(&store, &ds, &wider, "b");
    let catalog = open(store).await;
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;

    // Without the option the same request is drift, and the message names the option.
    let err = catalog
        .register(&ds, request(&wider, vec![b.clone()], IngestMode::Append))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::SchemaDrift { evolvable: true, details } if details.added == ["extra"]),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("schema_evolution=add_columns"),
        "{err}"
    );
    assert_eq!(catalog.latest(&ds).unwrap().version, 1);

    let v2 = catalog
        .register(&ds, evolving(&wider, vec![b.clone()], IngestMode::Append))
        .await
        .unwrap();
    assert!(!v2.existing);
    assert_eq!(v2.manifest.version, 2);
    assert_eq!(v2.manifest.schema, wider);
    assert_eq!(v2.manifest.schema_fingerprint, wider.fingerprint());
    // Append keeps the object written with the older schema in the version.
    assert_eq!(keys(&v2.manifest.objects), keys(&[a, b.clone()]));
    // The same request again is the version it made.
    let again = catalog
        .register(&ds, evolving(&wider, vec![b], IngestMode::Append))
        .await
        .unwrap();
    assert!(again.existing);
    assert_eq!(again.manifest.version, 2);
}

#[tokio::test]
async fn add_columns_still_refuses_removed_reordered_and_retyped_columns() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    commit(&catalog, &ds, &schema_v1(), vec![a], IngestMode::Replace).await;
    let removed = Schema {
        fields: vec![Field::new("id", ColumnType::Int64)],
    };
    let reordered = Schema {
        fields: vec![
            Field::new("name", ColumnType::Utf8),
            Field::new("id", ColumnType::Int64),
            Field::new("extra", ColumnType::Bool),
        ],
    };
    let retyped = Schema {
        fields: vec![
            Field::new("id", ColumnType::Float64),
            Field::new("name", ColumnType::Utf8),
            Field::new("extra", ColumnType::Bool),
        ],
    };
    let in_the_middle = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("extra", ColumnType::Bool),
            Field::new("name", ColumnType::Utf8),
        ],
    };
    let before = catalog.store().keys("");
    for schema in [removed, reordered, retyped, in_the_middle] {
        let object = put_object(catalog.store(), &ds, &schema, "x");
        for evolution in [None, Some(SchemaEvolution::AddColumns)] {
            let request = VersionRegisterRequest {
                replaces: Vec::new(),
                schema_evolution: evolution,
                ..request(&schema, vec![object.clone()], IngestMode::Append)
            };
            let err = catalog.register(&ds, request).await.unwrap_err();
            assert!(
                matches!(
                    &err,
                    CatalogError::SchemaDrift {
                        evolvable: false,
                        ..
                    }
                ),
                "{schema:?} {evolution:?}: {err:?}"
            );
            assert!(!err.to_string().contains("schema_evolution"), "{err}");
        }
        catalog.store().remove(&object.key);
    }
    assert_eq!(catalog.store().keys(""), before);
    assert_eq!(catalog.latest(&ds).unwrap().version, 1);
}

/// Two uploads add different columns to version 1; the other one commits version 2 first
/// (between our listing and our create-only put): ours is re-validated against it under
/// the commit and refused.
#[tokio::test]
async fn racing_evolutions_adding_different_columns_one_wins() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let theirs_schema = schema_plus(&[("x", ColumnType::Int64)]);
    let ours_schema = schema_plus(&[("y", ColumnType::Utf8)]);
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let theirs = put_object(&store, &ds, &theirs_schema, "theirs");
    let ours = put_object(&store, &ds, &ours_schema, "ours");
    let catalog = open(store).await;
    commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    let (key, bytes) = (
        ObjectKey::manifest(&ds, 2),
        rival_manifest(&ds, 2, &theirs_schema, vec![a, theirs]),
    );
    catalog.store().before_next_put(move |objects| {
        objects.insert(key, bytes.clone());
    });
    let err = catalog
        .register(&ds, evolving(&ours_schema, vec![ours], IngestMode::Append))
        .await
        .unwrap_err();
    let CatalogError::SchemaDrift { details, evolvable } = &err else {
        panic!("expected drift, got {err:?}");
    };
    assert!(!evolvable);
    assert_eq!(details.current_fingerprint, theirs_schema.fingerprint());
    assert_eq!(details.added, ["y"]);
    assert_eq!(details.removed, ["x"]);
    assert_eq!(catalog.store().keys(&manifest_prefix(&ds)).len(), 2);
    assert_eq!(catalog.latest(&ds).unwrap().schema, theirs_schema);
}

#[tokio::test]
async fn dry_run_answers_the_version_a_register_would_make_and_writes_nothing() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let dry = |objects, mode| VersionRegisterRequest {
        replaces: Vec::new(),
        dry_run: true,
        ..request(&schema_v1(), objects, mode)
    };
    // A new dataset: version 1, nothing written.
    let first = catalog
        .register(&ds, dry(vec![a.clone()], IngestMode::Replace))
        .await
        .unwrap();
    assert_eq!((first.manifest.version, first.existing), (1, false));
    assert!(catalog.store().keys("_catalog/").is_empty());
    assert!(catalog.latest(&ds).is_none());
    let real = commit(
        &catalog,
        &ds,
        &schema_v1(),
        vec![a.clone()],
        IngestMode::Replace,
    )
    .await;
    let mut expected = real.manifest.as_ref().clone();
    expected.created_at = first.manifest.created_at.clone();
    assert_eq!(
        *first.manifest, expected,
        "the dry run's manifest is the real one"
    );

    let before = catalog.store().keys("");
    // The same object again: existing.
    let again = catalog
        .register(&ds, dry(vec![a.clone()], IngestMode::Append))
        .await
        .unwrap();
    assert_eq!((again.manifest.version, again.existing), (1, true));
    // An object not stored (yet): the dry run does not ask for it.
    let unstored = object_ref(&ds, &schema_v1(), b"not stored", 3);
    let next = catalog
        .register(&ds, dry(vec![unstored.clone()], IngestMode::Append))
        .await
        .unwrap();
    assert_eq!((next.manifest.version, next.existing), (2, false));
    assert_eq!(keys(&next.manifest.objects), keys(&[a, unstored]));
    // Drift is the same 409.
    let d = object_ref(&ds, &schema_v2(), b"d", 1);
    let err = catalog
        .register(
            &ds,
            VersionRegisterRequest {
                replaces: Vec::new(),
                dry_run: true,
                ..request(&schema_v2(), vec![d], IngestMode::Replace)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::SchemaDrift { .. }), "{err:?}");
    assert_eq!(catalog.store().keys(""), before);
    assert_eq!(catalog.latest(&ds).unwrap().version, 1);
}

#[tokio::test]
async fn a_rejects_object_is_checked_like_the_data_and_recorded_with_it() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let content = "line,column,reason,record\n3,,short,x\n";
    let sha256 =
        Sha256Digest::from_bytes(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()).into());
    let rejects = lakehouse_api::RejectsRef {
        key: ObjectKey::rejects_object(&ds, &sha256),
        count: 1,
        size: content.len() as u64,
        sha256,
    };
    let catalog = open(store).await;
    let with = |rejects: lakehouse_api::RejectsRef| ObjectRef {
        rejects: Some(rejects),
        ..a.clone()
    };
    // Not stored yet: refused, nothing written.
    let err = catalog
        .register(
            &ds,
            request(
                &schema_v1(),
                vec![with(rejects.clone())],
                IngestMode::Replace,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::InvalidObject { key, .. } if *key == rejects.key),
        "{err:?}"
    );
    // Outside the layout: refused.
    let mut elsewhere = rejects.clone();
    elsewhere.key = ObjectKey::new(format!(
        "datasets/other/_rejects/{}.csv",
        rejects.sha256.as_str()
    ))
    .unwrap();
    // Stored, so only the layout check can refuse it.
    catalog
        .store()
        .insert(elsewhere.key.clone(), Bytes::from(content));
    let err = catalog
        .register(
            &ds,
            request(
                &schema_v1(),
                vec![with(elsewhere.clone())],
                IngestMode::Replace,
            ),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CatalogError::InvalidObject { key, reason } if *key == elsewhere.key && reason.contains("rejects")),
        "{err:?}"
    );
    assert!(catalog.store().keys("_catalog/").is_empty());
    catalog
        .store()
        .insert(rejects.key.clone(), Bytes::from(content));
    let v1 = catalog
        .register(
            &ds,
            request(
                &schema_v1(),
                vec![with(rejects.clone())],
                IngestMode::Replace,
            ),
        )
        .await
        .unwrap();
    assert_eq!(v1.manifest.objects[0].rejects.as_ref(), Some(&rejects));

    // The same Parquet with other set-aside records (two uploads differing only in a bad
    // line): not `existing`, or the new rejects object would be referenced by nothing.
    let other_content = "line,column,reason,record\n4,,short,y\n";
    let other_sha = Sha256Digest::from_bytes(
        <sha2::Sha256 as sha2::Digest>::digest(other_content.as_bytes()).into(),
    );
    let other = lakehouse_api::RejectsRef {
        key: ObjectKey::rejects_object(&ds, &other_sha),
        count: 1,
        size: other_content.len() as u64,
        sha256: other_sha,
    };
    catalog
        .store()
        .insert(other.key.clone(), Bytes::from(other_content));
    let err = catalog
        .register(
            &ds,
            request(&schema_v1(), vec![with(other.clone())], IngestMode::Append),
        )
        .await
        .unwrap_err();
    assert!(matches!(&err, CatalogError::InvalidRequest(_)), "{err:?}");
    assert_eq!(
        catalog.latest(&ds).unwrap().version,
        1,
        "append wrote nothing"
    );
    let v2 = catalog
        .register(
            &ds,
            request(&schema_v1(), vec![with(other.clone())], IngestMode::Replace),
        )
        .await
        .unwrap();
    assert!(!v2.existing);
    assert_eq!(v2.manifest.version, 2);
    assert_eq!(v2.manifest.objects[0].rejects.as_ref(), Some(&other));
}
