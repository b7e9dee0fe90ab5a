//! Opening a catalog and reading it: the rebuilt index, what stops an open, listing pages,
//! lookups of versions other replicas wrote, reads through a store outage.

use super::{all_versions, append_v1, name, open, put_object, replace_v1, request, rival_manifest};
use crate::{Catalog, CatalogError, ManifestStore, MemoryStore};
use bytes::Bytes;
use lakehouse_api::{IngestMode, ObjectKey};
use lakehouse_testkit::fixtures::schema_id_name as schema_v1;
use std::sync::Arc;

#[tokio::test]
async fn reopening_rebuilds_an_identical_index() {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    for (dataset, count) in [("a", 3), ("b.c", 1), ("z-1", 2)] {
        let ds = name(dataset);
        for i in 0..count {
            let object = put_object(&store, &ds, &schema_v1(), &format!("{dataset}{i}"));
            append_v1(&catalog, &ds, vec![object]).await;
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
    replace_v1(&catalog, &ds, vec![a.clone()]).await;
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
