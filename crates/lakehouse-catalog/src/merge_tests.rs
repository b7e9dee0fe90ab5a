//! A merge's or delete's register (docs/contract.md section 11): the key declared and kept,
//! another key refused, a stale base version refused with nothing written, the version's
//! objects (kept files, then the rewrites), a delete that only removes files, and the
//! records read back.

use crate::{Catalog, CatalogError, MemoryStore};
use bytes::Bytes;
use lakehouse_api::{
    DatasetName, IngestMode, ObjectKey, ObjectRef, Operation, VersionRegisterRequest,
};
use lakehouse_testkit::fixtures::{object_ref, register_request, schema_id_name as schema};
use std::sync::Arc;

fn put(store: &MemoryStore, ds: &DatasetName, seed: &str) -> ObjectRef {
    let object = object_ref(ds, &schema(), seed.as_bytes(), 10);
    store.insert(object.key.clone(), Bytes::from(seed.as_bytes().to_vec()));
    object
}

fn keyed(
    mode: IngestMode,
    objects: Vec<ObjectRef>,
    replaces: &[&ObjectRef],
    key: &str,
    base: u64,
) -> VersionRegisterRequest {
    let mut request = register_request(&schema(), objects, mode);
    request.replaces = replaces.iter().map(|o| o.key.clone()).collect();
    request.key = Some(vec![key.to_owned()]);
    request.base_version = Some(base);
    request
}

#[tokio::test]
async fn a_merge_declares_its_key_and_replaces_the_files_it_rewrote() {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let ds = DatasetName::new("people").unwrap();
    let (a, b, c) = (
        put(&store, &ds, "a"),
        put(&store, &ds, "b"),
        put(&store, &ds, "c"),
    );
    let first = register_request(
        &schema(),
        vec![a.clone(), b.clone(), c.clone()],
        IngestMode::Replace,
    );
    catalog.register(&ds, first).await.unwrap();
    let (rewrite, delta) = (put(&store, &ds, "a-without"), put(&store, &ds, "delta"));
    let merge = keyed(
        IngestMode::Merge,
        vec![rewrite.clone(), delta.clone()],
        &[&a],
        "id",
        1,
    );
    let outcome = catalog.register(&ds, merge.clone()).await.unwrap();
    assert!(!outcome.existing);
    let manifest = &outcome.manifest;
    assert_eq!(manifest.operation, Some(Operation::Merge));
    assert_eq!(manifest.key.as_deref(), Some(&["id".to_owned()][..]));
    let keys: Vec<&ObjectKey> = manifest.objects.iter().map(|o| &o.key).collect();
    assert_eq!(keys, [&b.key, &c.key, &rewrite.key, &delta.key]);

    // The same register again: planned on version 1, which is no longer the latest.
    let error = catalog.register(&ds, merge).await.unwrap_err();
    assert!(
        matches!(
            error,
            CatalogError::StaleBase {
                base: 1,
                latest: 2,
                ..
            }
        ),
        "{error:?}"
    );
    // A new object that is a file the version keeps: refused, not silently listed once.
    let again = keyed(IngestMode::Merge, vec![b.clone()], &[&rewrite], "id", 2);
    let error = catalog.register(&ds, again).await.unwrap_err();
    assert!(
        matches!(&error, CatalogError::InvalidRequest(m) if m.contains("keeps")),
        "{error:?}"
    );
    // Another key: refused whatever the base.
    let other = keyed(
        IngestMode::Merge,
        vec![put(&store, &ds, "x")],
        &[],
        "name",
        2,
    );
    let error = catalog.register(&ds, other).await.unwrap_err();
    assert!(
        matches!(error, CatalogError::KeyMismatch { .. }),
        "{error:?}"
    );
    assert!(store.bytes(&ObjectKey::manifest(&ds, 3)).is_none());

    // An append keeps the key; a delete may only remove files.
    let late = put(&store, &ds, "late");
    let appended = catalog
        .register(
            &ds,
            register_request(&schema(), vec![late.clone()], IngestMode::Append),
        )
        .await
        .unwrap();
    assert_eq!(appended.manifest.key, manifest.key);
    let delete = keyed(IngestMode::Delete, Vec::new(), &[&b, &late], "id", 3);
    let deleted = catalog.register(&ds, delete).await.unwrap();
    assert_eq!(deleted.manifest.operation, Some(Operation::Delete));
    let keys: Vec<&ObjectKey> = deleted.manifest.objects.iter().map(|o| &o.key).collect();
    assert_eq!(keys, [&c.key, &rewrite.key, &delta.key]);
    assert_eq!(deleted.manifest.row_count, 30);

    // Read back from the records alone.
    let reopened = Catalog::open(Arc::clone(&store)).await.unwrap();
    assert_eq!(reopened.fetch_latest(&ds).await.unwrap(), deleted.manifest);
    assert_eq!(
        reopened.fetch_version(&ds, 2).await.unwrap(),
        outcome.manifest
    );
}

#[tokio::test]
async fn a_keyed_register_needs_its_key_and_base_and_the_key_in_the_schema() {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    let ds = DatasetName::new("k").unwrap();
    let object = put(&store, &ds, "a");
    let mut no_key = keyed(IngestMode::Merge, vec![object.clone()], &[], "id", 0);
    no_key.key = None;
    let mut no_base = keyed(IngestMode::Merge, vec![object.clone()], &[], "id", 0);
    no_base.base_version = None;
    let unknown = keyed(IngestMode::Merge, vec![object.clone()], &[], "nope", 0);
    let mut append_with_key = register_request(&schema(), vec![object.clone()], IngestMode::Append);
    append_with_key.key = Some(vec!["id".into()]);
    let nothing = keyed(IngestMode::Merge, Vec::new(), &[], "id", 0);
    for request in [no_key, no_base, unknown, append_with_key, nothing] {
        let error = catalog.register(&ds, request).await.unwrap_err();
        assert!(
            matches!(error, CatalogError::InvalidRequest(_)),
            "{error:?}"
        );
    }
    // A first merge makes the dataset at version 1 (base 0: no version yet).
    let made = catalog
        .register(&ds, keyed(IngestMode::Merge, vec![object], &[], "id", 0))
        .await
        .unwrap();
    assert_eq!(made.manifest.version, 1);
}
