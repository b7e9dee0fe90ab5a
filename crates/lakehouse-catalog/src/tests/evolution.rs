//! Schema evolution (`schema_evolution=add_columns`, docs/contract.md section 3).

use super::{keys, name, open, put_object, replace_v1, request, rival_manifest};
use crate::{CatalogError, MemoryStore, manifest_prefix};
use lakehouse_api::{
    ColumnType, Field, IngestMode, ObjectKey, ObjectRef, Schema, SchemaEvolution,
    VersionRegisterRequest,
};
use lakehouse_testkit::fixtures::schema_id_name as schema_v1;

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
    replace_v1(&catalog, &ds, vec![a.clone()]).await;

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
    replace_v1(&catalog, &ds, vec![a]).await;
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
    replace_v1(&catalog, &ds, vec![a.clone()]).await;
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
