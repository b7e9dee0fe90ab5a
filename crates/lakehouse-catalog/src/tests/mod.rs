//! Unit tests of the commit protocol over [`MemoryStore`], by topic: registering
//! ([`register`]), racing committers and replicas ([`races`]), opening and reading
//! ([`reads`]), schema evolution ([`evolution`]), dry runs and rejects ([`dry_run`]), the
//! Iceberg table of a partitioned dataset ([`partitioned`]).

mod dry_run;
mod evolution;
mod partitioned;
mod races;
mod reads;
mod register;

use crate::{Catalog, ManifestStore, MemoryStore, RegisterOutcome};
use bytes::Bytes;
use lakehouse_api::{
    ColumnType, CsvOptions, DatasetName, Field, IngestMode, Manifest, ObjectRef, Schema, Source,
    VersionRegisterRequest,
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
        key: None,
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
        partition_spec: None,
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

/// Commits a replace of `name`'s data by `objects` with [`schema_v1`], which must succeed.
async fn replace_v1<S: ManifestStore>(
    catalog: &Catalog<S>,
    name: &DatasetName,
    objects: Vec<ObjectRef>,
) -> RegisterOutcome {
    commit(catalog, name, &schema_v1(), objects, IngestMode::Replace).await
}

/// Commits an append of `objects` to `name` with [`schema_v1`], which must succeed.
async fn append_v1<S: ManifestStore>(
    catalog: &Catalog<S>,
    name: &DatasetName,
    objects: Vec<ObjectRef>,
) -> RegisterOutcome {
    commit(catalog, name, &schema_v1(), objects, IngestMode::Append).await
}

async fn open(store: MemoryStore) -> Catalog<MemoryStore> {
    Catalog::open(store).await.unwrap()
}
