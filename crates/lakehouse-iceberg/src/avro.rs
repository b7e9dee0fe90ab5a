//! The Avro files of the Iceberg spec ("Manifest Lists" and "Manifests", format version 2),
//! written with the `apache-avro` crate, with the spec's field ids on every field.
//!
//! The crate's writer keeps the file header's metadata in a `HashMap`, whose order changes
//! from one process to the next; so the header (Avro spec "Object Container Files": magic,
//! metadata map, sync marker) is written here, its keys ascending, with the crate's datum
//! encoder, and the writer is told the header is written. The sync marker is given
//! ([`crate::ids::sync_marker`]). No codec: the files are small.

use crate::{IcebergError, Result};
use apache_avro::Schema;
use apache_avro::types::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

/// Avro schema of a manifest list entry (`manifest_file`, field ids 500-519).
pub const MANIFEST_LIST_SCHEMA: &str = r#"{"type":"record","name":"manifest_file","fields":[
{"name":"manifest_path","type":"string","field-id":500},
{"name":"manifest_length","type":"long","field-id":501},
{"name":"partition_spec_id","type":"int","field-id":502},
{"name":"content","type":"int","field-id":517},
{"name":"sequence_number","type":"long","field-id":515},
{"name":"min_sequence_number","type":"long","field-id":516},
{"name":"added_snapshot_id","type":"long","field-id":503},
{"name":"added_files_count","type":"int","field-id":504},
{"name":"existing_files_count","type":"int","field-id":505},
{"name":"deleted_files_count","type":"int","field-id":506},
{"name":"added_rows_count","type":"long","field-id":512},
{"name":"existing_rows_count","type":"long","field-id":513},
{"name":"deleted_rows_count","type":"long","field-id":514},
{"name":"partitions","type":["null",{"type":"array","items":{"type":"record","name":"r508","fields":[
 {"name":"contains_null","type":"boolean","field-id":509},
 {"name":"contains_nan","type":["null","boolean"],"default":null,"field-id":518},
 {"name":"lower_bound","type":["null","bytes"],"default":null,"field-id":510},
 {"name":"upper_bound","type":["null","bytes"],"default":null,"field-id":511}]},"element-id":508}],"default":null,"field-id":507},
{"name":"key_metadata","type":["null","bytes"],"default":null,"field-id":519}]}"#;

/// Avro schema of a manifest entry (`manifest_entry` with its `data_file`, field ids 0-4 and
/// 100-140) of an unpartitioned table (`partition` is an empty record; a partitioned table's
/// schema is this one with its fields in that record, [`manifest_entry_schema_with`]).
pub const MANIFEST_ENTRY_SCHEMA: &str = r#"{"type":"record","name":"manifest_entry","fields":[
{"name":"status","type":"int","field-id":0},
{"name":"snapshot_id","type":["null","long"],"default":null,"field-id":1},
{"name":"sequence_number","type":["null","long"],"default":null,"field-id":3},
{"name":"file_sequence_number","type":["null","long"],"default":null,"field-id":4},
{"name":"data_file","type":{"type":"record","name":"r2","fields":[
 {"name":"content","type":"int","field-id":134},
 {"name":"file_path","type":"string","field-id":100},
 {"name":"file_format","type":"string","field-id":101},
 {"name":"partition","type":{"type":"record","name":"r102","fields":[]},"field-id":102},
 {"name":"record_count","type":"long","field-id":103},
 {"name":"file_size_in_bytes","type":"long","field-id":104},
 {"name":"column_sizes","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k117_v118","fields":[{"name":"key","type":"int","field-id":117},{"name":"value","type":"long","field-id":118}]}}],"default":null,"field-id":108},
 {"name":"value_counts","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k119_v120","fields":[{"name":"key","type":"int","field-id":119},{"name":"value","type":"long","field-id":120}]}}],"default":null,"field-id":109},
 {"name":"null_value_counts","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k121_v122","fields":[{"name":"key","type":"int","field-id":121},{"name":"value","type":"long","field-id":122}]}}],"default":null,"field-id":110},
 {"name":"nan_value_counts","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k138_v139","fields":[{"name":"key","type":"int","field-id":138},{"name":"value","type":"long","field-id":139}]}}],"default":null,"field-id":137},
 {"name":"lower_bounds","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k126_v127","fields":[{"name":"key","type":"int","field-id":126},{"name":"value","type":"bytes","field-id":127}]}}],"default":null,"field-id":125},
 {"name":"upper_bounds","type":["null",{"type":"array","logicalType":"map","items":{"type":"record","name":"k129_v130","fields":[{"name":"key","type":"int","field-id":129},{"name":"value","type":"bytes","field-id":130}]}}],"default":null,"field-id":128},
 {"name":"key_metadata","type":["null","bytes"],"default":null,"field-id":131},
 {"name":"split_offsets","type":["null",{"type":"array","items":"long","element-id":133}],"default":null,"field-id":132},
 {"name":"equality_ids","type":["null",{"type":"array","items":"int","element-id":136}],"default":null,"field-id":135},
 {"name":"sort_order_id","type":["null","int"],"default":null,"field-id":140}]},"field-id":2}]}"#;

/// A fixed schema, parsed once, with the compact JSON text the file header carries: the
/// schema text itself (keys sorted), not the crate's rendering of it, which drops the
/// `logicalType: map` annotations Iceberg readers need on arrays of key/value records.
#[derive(Debug)]
pub struct FixedSchema {
    /// The parsed schema the writer encodes with.
    pub schema: Schema,
    /// The header's `avro.schema`.
    pub text: String,
}

fn parsed(cell: &'static OnceLock<FixedSchema>, text: &str) -> &'static FixedSchema {
    cell.get_or_init(|| FixedSchema {
        schema: Schema::parse_str(text).expect("the fixed schema text parses"),
        text: serde_json::from_str::<serde_json::Value>(text)
            .expect("the fixed schema text is JSON")
            .to_string(),
    })
}

/// The parsed [`MANIFEST_LIST_SCHEMA`].
///
/// # Panics
/// Never: the text is a constant the tests parse.
pub fn manifest_list_schema() -> &'static FixedSchema {
    static CELL: OnceLock<FixedSchema> = OnceLock::new();
    parsed(&CELL, MANIFEST_LIST_SCHEMA)
}

/// The parsed [`MANIFEST_ENTRY_SCHEMA`].
///
/// # Panics
/// Never: the text is a constant the tests parse.
pub fn manifest_entry_schema() -> &'static FixedSchema {
    static CELL: OnceLock<FixedSchema> = OnceLock::new();
    parsed(&CELL, MANIFEST_ENTRY_SCHEMA)
}

/// The empty `partition` record (field 102) of [`MANIFEST_ENTRY_SCHEMA`].
const EMPTY_PARTITION_RECORD: &str = r#"{"type":"record","name":"r102","fields":[]}"#;

/// The manifest entry schema of a partitioned table (Iceberg spec "Manifests": `partition`,
/// field id 102, is a struct of the spec's partition fields): [`MANIFEST_ENTRY_SCHEMA`] with
/// `partition_fields` (Avro record fields, each `{"name", "type": ["null", <type>],
/// "default": null, "field-id"}`) in its `r102` record. Built per dataset, not cached.
///
/// # Errors
/// [`IcebergError::InvalidInput`] when the fields make no Avro schema (a name Avro refuses,
/// two fields of one name).
pub fn manifest_entry_schema_with(partition_fields: &[serde_json::Value]) -> Result<FixedSchema> {
    let record = serde_json::json!({
        "type": "record",
        "name": "r102",
        "fields": partition_fields,
    });
    let (head, tail) = MANIFEST_ENTRY_SCHEMA
        .split_once(EMPTY_PARTITION_RECORD)
        .ok_or_else(|| IcebergError::InvalidInput("the manifest schema has no r102".into()))?;
    let text = format!("{head}{record}{tail}");
    let schema = Schema::parse_str(&text).map_err(|e| {
        IcebergError::InvalidInput(format!("the partition fields make no Avro schema: {e}"))
    })?;
    let text = serde_json::from_str::<serde_json::Value>(&text)
        .map_err(IcebergError::Json)?
        .to_string();
    Ok(FixedSchema { schema, text })
}

/// An Avro object container file of `records` with `schema`, the file metadata `metadata`
/// (besides `avro.schema`) and sync marker `marker`: the same bytes for the same arguments.
///
/// # Errors
/// [`crate::IcebergError::Avro`] when a record does not match the schema (a bug).
pub fn write_file(
    schema: &FixedSchema,
    metadata: &BTreeMap<&str, String>,
    marker: [u8; 16],
    records: Vec<Value>,
) -> Result<Vec<u8>> {
    let mut header = b"Obj\x01".to_vec();
    let mut entries: BTreeMap<&str, Vec<u8>> = metadata
        .iter()
        .map(|(k, v)| (*k, v.as_bytes().to_vec()))
        .collect();
    entries.insert("avro.schema", schema.text.as_bytes().to_vec());
    // Said explicitly: pyiceberg reads a header without `avro.codec` as gzip.
    entries.insert("avro.codec", b"null".to_vec());
    let map_schema = Schema::map(Schema::Bytes).build();
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&map_schema).build()?;
    for (key, value) in entries {
        // One block of one entry per key, so the order is ours: [1][key][value][0] minus the
        // end-of-map 0, which follows the last block.
        let one = HashMap::from([(key.to_owned(), Value::Bytes(value))]);
        let mut block = datum.write_value_to_vec(Value::Map(one))?;
        block.pop();
        header.extend_from_slice(&block);
    }
    header.push(0);
    header.extend_from_slice(&marker);
    let mut writer = apache_avro::Writer::builder()
        .schema(&schema.schema)
        .writer(header)
        .marker(marker)
        .has_header(true)
        .build()?;
    for record in records {
        writer.append_value(record)?;
    }
    Ok(writer.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_keep_field_ids_and_files_read_back() {
        let json = &manifest_entry_schema().text;
        assert!(json.contains(r#""field-id":2"#), "{json}");
        assert!(json.contains(r#""element-id":133"#), "{json}");
        assert!(json.contains(r#""logicalType":"map""#), "{json}");
        let list = &manifest_list_schema().text;
        assert!(list.contains(r#""field-id":500"#));
        let metadata = BTreeMap::from([("format-version", "2".to_owned())]);
        let a = write_file(manifest_list_schema(), &metadata, [7; 16], vec![]).unwrap();
        let b = write_file(manifest_list_schema(), &metadata, [7; 16], vec![]).unwrap();
        assert_eq!(a, b);
        assert_ne!(
            a,
            write_file(manifest_list_schema(), &metadata, [8; 16], vec![]).unwrap(),
            "the sync marker is in the bytes"
        );
        let reader = apache_avro::Reader::new(&a[..]).unwrap();
        assert!(
            String::from_utf8_lossy(&a).contains(r#""field-id":500"#),
            "the header carries the spec's schema text, field ids included"
        );
        assert_eq!(
            reader
                .user_metadata()
                .get("format-version")
                .map(Vec::as_slice),
            Some(&b"2"[..])
        );
    }
}
