//! Registering versions: numbering, existing objects, replace and append, and what is refused.

use super::{
    all_versions, append_v1, keys, name, open, put_object, replace_v1, request, schema_v2,
};
use crate::{CatalogError, MemoryStore, manifest_prefix};
use bytes::Bytes;
use lakehouse_api::{IngestMode, Manifest, ObjectKey, Sha256Digest};
use lakehouse_testkit::fixtures::schema_id_name as schema_v1;

#[tokio::test]
async fn first_version_is_1_and_is_written_create_only() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let catalog = open(store).await;
    let outcome = replace_v1(&catalog, &ds, vec![a.clone()]).await;
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
    replace_v1(&catalog, &ds, vec![a.clone()]).await;
    let again = replace_v1(&catalog, &ds, vec![a.clone()]).await;
    assert!(again.existing);
    assert_eq!(again.manifest.version, 1);
    let appended = append_v1(&catalog, &ds, vec![b.clone()]).await;
    assert_eq!(appended.manifest.version, 2);
    // Append of an object the latest version holds: existing.
    for object in [&a, &b] {
        let again = append_v1(&catalog, &ds, vec![object.clone()]).await;
        assert!(again.existing);
        assert_eq!(again.manifest.version, 2);
    }
    // Replace with one object of two is a new version holding only that object.
    let replaced = replace_v1(&catalog, &ds, vec![a.clone()]).await;
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
    replace_v1(&catalog, &ds, vec![a.clone()]).await;
    let v2 = replace_v1(&catalog, &ds, vec![b.clone()]).await;
    assert_eq!(v2.manifest.version, 2);
    assert_eq!(keys(&v2.manifest.objects), keys(std::slice::from_ref(&b)));
    let v3 = append_v1(&catalog, &ds, vec![a.clone(), c.clone()]).await;
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
    replace_v1(&catalog, &ds, vec![a]).await;
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
