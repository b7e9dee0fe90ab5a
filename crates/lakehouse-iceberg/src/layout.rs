//! Where a table's files live: storage keys and URIs (docs/contract.md section 1).
//!
//! Under `datasets/<name>/metadata/`:
//! - `v<N>.metadata.json`: the table metadata of version N;
//! - `v<N>-<tag>-list.avro`: the manifest list of version N's snapshot;
//! - `v<N>-<tag>-m<j>.avro`, j = 0, 1, ...: the manifests version N created, numbered in the
//!   order its manifest list names them; how many is the snapshot summary's
//!   `manifests-created`. `<tag>` is the commit's ([`version_stem`]); versions written before
//!   tags, and tables made without them, have `v<N>-list.avro` and `v<N>-m<j>.avro`.
//!
//! Tables first written before the incremental projection also hold
//! `snap-<snapshot id>-v<N>.avro` (manifest lists) and `v<N>-<snapshot id>-m0.avro` /
//! `-m1.avro` (manifests); their snapshots and lists name them by URI, so they stay
//! readable, and [`crate::TableState::referenced_keys`] knows their shape.

use crate::ids;
use crate::metrics::field_id;
use lakehouse_api::{ColumnType, DatasetName, Schema};

/// The URI of storage key `key` under the storage's own URI `base` (`file:///<root>`,
/// `s3://<bucket>`, `memory://`; docs/contract.md section 8): `<base>/<key>`, one slash between.
pub fn storage_uri(base: &str, key: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{key}")
    } else {
        format!("{base}/{key}")
    }
}

/// The key of `uri` under `base` (the inverse of [`storage_uri`]); `None` when `uri` is not
/// under `base`.
pub(crate) fn key_of<'a>(base: &str, uri: &'a str) -> Option<&'a str> {
    let rest = uri.strip_prefix(base)?;
    if base.ends_with('/') {
        Some(rest)
    } else {
        rest.strip_prefix('/')
    }
}

/// `datasets/<name>/metadata/`: where a dataset's Iceberg files live.
pub fn metadata_dir(name: &DatasetName) -> String {
    format!("datasets/{}/metadata/", name.as_str())
}

/// Key of version `version`'s metadata JSON: `datasets/<name>/metadata/v<version>.metadata.json`.
pub fn metadata_file_key(name: &DatasetName, version: u64) -> String {
    format!("{}v{version}.metadata.json", metadata_dir(name))
}

/// The stem of version `version`'s Avro files: `datasets/<name>/metadata/v<version>-<tag>`,
/// or `.../v<version>` without a tag. The catalog tags each commit (its record's digest,
/// docs/contract.md section 8), so committers racing for one version write them under
/// other names before the race is decided.
pub fn version_stem(name: &DatasetName, version: u64, tag: Option<&str>) -> String {
    match tag {
        Some(tag) => format!("{}v{version}-{tag}", metadata_dir(name)),
        None => format!("{}v{version}", metadata_dir(name)),
    }
}

/// Key of the manifest list of the version whose files have `stem` ([`version_stem`]):
/// `<stem>-list.avro`.
pub fn stem_list_key(stem: &str) -> String {
    format!("{stem}-list.avro")
}

/// Key of the `index`-th (0-based) manifest of the version whose files have `stem`:
/// `<stem>-m<index>.avro`.
pub fn stem_manifest_key(stem: &str, index: usize) -> String {
    format!("{stem}-m{index}.avro")
}

/// Key of untagged version `version`'s manifest list: `datasets/<name>/metadata/v<version>-list.avro`.
pub fn manifest_list_key(name: &DatasetName, version: u64) -> String {
    stem_list_key(&version_stem(name, version, None))
}

/// Key of the `index`-th (0-based) manifest untagged version `version` created:
/// `datasets/<name>/metadata/v<version>-m<index>.avro`.
pub fn manifest_key(name: &DatasetName, version: u64, index: usize) -> String {
    stem_manifest_key(&version_stem(name, version, None), index)
}

/// Key of a manifest of the layout before the incremental projection:
/// `v<version>-<snapshot id>-m0.avro` (live entries) or `-m1.avro` (deleted entries).
pub(crate) fn legacy_manifest_key(name: &DatasetName, version: u64, deleted: bool) -> String {
    format!(
        "{}v{version}-{}-m{}.avro",
        metadata_dir(name),
        ids::snapshot_id(name, version),
        u8::from(deleted)
    )
}

/// The version of a metadata JSON URI or key ending in `/v<N>.metadata.json`.
pub(crate) fn metadata_file_version(uri: &str) -> Option<u64> {
    let file = uri.rsplit('/').next()?;
    file.strip_prefix('v')?
        .strip_suffix(".metadata.json")?
        .parse()
        .ok()
}

/// The Iceberg primitive type of a column type (Iceberg spec "Primitive Types").
pub fn iceberg_type(data_type: ColumnType) -> &'static str {
    match data_type {
        ColumnType::Bool => "boolean",
        ColumnType::Int64 => "long",
        ColumnType::Float64 => "double",
        ColumnType::Date32 => "date",
        ColumnType::Time64 => "time",
        ColumnType::TimestampUtc => "timestamptz",
        ColumnType::Timestamp => "timestamp",
        ColumnType::Utf8 => "string",
    }
}

/// The `schema.name-mapping.default` property of `schema`: `[{"field-id": i, "names":
/// [name]}, ...]`, so files written without field ids read by name.
pub fn name_mapping(schema: &Schema) -> String {
    let entries: Vec<serde_json::Value> = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, field)| serde_json::json!({"field-id": field_id(i), "names": [field.name]}))
        .collect();
    serde_json::Value::Array(entries).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_uris_round_trip() {
        let name = DatasetName::new("sales").unwrap();
        assert_eq!(
            manifest_list_key(&name, 7),
            "datasets/sales/metadata/v7-list.avro"
        );
        assert_eq!(
            manifest_key(&name, 7, 2),
            "datasets/sales/metadata/v7-m2.avro"
        );
        for base in ["memory://", "file:///data", "s3://bucket", "file:///data/"] {
            let uri = storage_uri(base, "datasets/sales/metadata/v7-m2.avro");
            assert_eq!(
                key_of(base, &uri),
                Some("datasets/sales/metadata/v7-m2.avro")
            );
        }
        assert_eq!(key_of("s3://bucket", "s3://other/x"), None);
        assert_eq!(
            metadata_file_version("file:///d/datasets/s/metadata/v12.metadata.json"),
            Some(12)
        );
        assert_eq!(metadata_file_version("v12-list.avro"), None);
    }
}
