//! The catalog tests' shared fixtures (lakehouse-catalog's unit tests, catalogd's in-process
//! and HTTP tests): the schemas they register, a register request, and the reference of an
//! object stored under its content-addressed key (docs/contract.md section 5). Pure: no I/O.

use lakehouse_api::{
    ColumnType, DatasetName, Field, INFERENCE_VERSION, IngestMode, ObjectKey, ObjectRef, Schema,
    Sha256Digest, VersionRegisterRequest,
};
use sha2::{Digest, Sha256};

/// `{id: int64}`.
pub fn schema_id() -> Schema {
    Schema {
        fields: vec![Field::new("id", ColumnType::Int64)],
    }
}

/// `{id: int64, name: utf8}`.
pub fn schema_id_name() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

/// A register request for `objects` with `schema` (its fingerprint, default options and
/// source, this build's inference version).
pub fn register_request(
    schema: &Schema,
    objects: Vec<ObjectRef>,
    mode: IngestMode,
) -> VersionRegisterRequest {
    VersionRegisterRequest {
        base_version: None,
        key: None,
        replaces: Vec::new(),
        schema_fingerprint: schema.fingerprint(),
        schema: schema.clone(),
        objects,
        mode,
        source: Default::default(),
        options: Default::default(),
        inference_version: INFERENCE_VERSION,
        columns: Vec::new(),
        schema_evolution: None,
        dry_run: false,
        partition_spec: None,
    }
}

/// The reference of `content` stored as one of `dataset`'s Parquet objects with `schema`:
/// key `datasets/<dataset>/<fp hex>/<sha256 of content>.parquet`, its size and digest, and
/// `row_count` rows.
pub fn object_ref(
    dataset: &DatasetName,
    schema: &Schema,
    content: &[u8],
    row_count: u64,
) -> ObjectRef {
    let sha256 = Sha256Digest::from_bytes(Sha256::digest(content).into());
    ObjectRef {
        key: ObjectKey::parquet_object(dataset, &schema.fingerprint(), &sha256),
        size: content.len() as u64,
        sha256,
        row_count,
        rejects: None,
        partition: None,
    }
}
