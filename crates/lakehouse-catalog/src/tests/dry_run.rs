//! Dry runs (docs/contract.md section 6) and rejects objects (docs/contract.md section 3).

use super::{keys, name, open, put_object, replace_v1, request, schema_v2};
use crate::{CatalogError, MemoryStore};
use bytes::Bytes;
use lakehouse_api::{
    DatasetName, IngestMode, ObjectKey, ObjectRef, Sha256Digest, VersionRegisterRequest,
};
use lakehouse_testkit::fixtures::{object_ref, schema_id_name as schema_v1};

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
    let real = replace_v1(&catalog, &ds, vec![a.clone()]).await;
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

/// The reference to a rejects CSV of one record, `content`, stored content-addressed in
/// `dataset`'s layout.
fn rejects_ref(dataset: &DatasetName, content: &str) -> lakehouse_api::RejectsRef {
    let sha256 =
        Sha256Digest::from_bytes(<sha2::Sha256 as sha2::Digest>::digest(content.as_bytes()).into());
    lakehouse_api::RejectsRef {
        key: ObjectKey::rejects_object(dataset, &sha256),
        count: 1,
        size: content.len() as u64,
        sha256,
    }
}

#[tokio::test]
async fn a_rejects_object_is_checked_like_the_data_and_recorded_with_it() {
    let store = MemoryStore::new();
    let ds = name("sales");
    let a = put_object(&store, &ds, &schema_v1(), "a");
    let content = "line,column,reason,record\n3,,short,x\n";
    let rejects = rejects_ref(&ds, content);
    let catalog = open(store).await;
    // Registers the object `a` with `rejects`.
    let register = |rejects: lakehouse_api::RejectsRef, mode| {
        let object = ObjectRef {
            rejects: Some(rejects),
            ..a.clone()
        };
        catalog.register(&ds, request(&schema_v1(), vec![object], mode))
    };
    // Not stored yet: refused, nothing written.
    let err = register(rejects.clone(), IngestMode::Replace)
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
    let err = register(elsewhere.clone(), IngestMode::Replace)
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
    let v1 = register(rejects.clone(), IngestMode::Replace)
        .await
        .unwrap();
    assert_eq!(v1.manifest.objects[0].rejects.as_ref(), Some(&rejects));

    // The same Parquet with other set-aside records (two uploads differing only in a bad
    // line): not `existing`, or the new rejects object would be referenced by nothing.
    let other_content = "line,column,reason,record\n4,,short,y\n";
    let other = rejects_ref(&ds, other_content);
    catalog
        .store()
        .insert(other.key.clone(), Bytes::from(other_content));
    let err = register(other.clone(), IngestMode::Append)
        .await
        .unwrap_err();
    assert!(matches!(&err, CatalogError::InvalidRequest(_)), "{err:?}");
    assert_eq!(
        catalog.latest(&ds).unwrap().version,
        1,
        "append wrote nothing"
    );
    let v2 = register(other.clone(), IngestMode::Replace).await.unwrap();
    assert!(!v2.existing);
    assert_eq!(v2.manifest.version, 2);
    assert_eq!(v2.manifest.objects[0].rejects.as_ref(), Some(&other));
}
