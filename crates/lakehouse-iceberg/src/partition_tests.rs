use super::*;
use crate::PartitionBy;
use crate::manifest::{ManifestFile, added_entry, deleted_entry, read_entries, write_manifest};
use crate::{ColumnMetrics, FileMetrics};
use lakehouse_api::{
    ColumnType, Field, ObjectKey, ObjectRef, PartitionSpecField as ApiField, Sha256Digest,
};
use std::collections::BTreeMap;

fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
            Field::new("ts", ColumnType::TimestampUtc),
            Field::new("local", ColumnType::Timestamp),
            Field::new("day", ColumnType::Date32),
            Field::new("at", ColumnType::Time64),
            Field::new("ok", ColumnType::Bool),
            Field::new("x", ColumnType::Float64),
        ],
    }
}

/// A spec of every result type: int, date, long, string, timestamptz, timestamp, date,
/// time, boolean, double.
fn spec() -> PartitionSpec {
    with_double("bucket(4,id),day(ts),truncate(10,id),name,ts,local,day,at,ok")
}

/// The spec `items` make of the schema, then the identity of the float64 column `x`, as a
/// version recorded before `PartitionBy::spec` refused it: the projection still renders it.
fn with_double(items: &str) -> PartitionSpec {
    let mut spec = PartitionBy::parse(items).unwrap().spec(&schema()).unwrap();
    spec.partition_by.push_str(",x");
    spec.fields.push(ApiField {
        field_id: 1000 + spec.fields.len() as i32,
        name: "x".into(),
        source: "x".into(),
        transform: "identity".into(),
        result_type: "double".into(),
    });
    spec
}

fn object(n: u64, tuple: Option<PartitionTuple>) -> ObjectRef {
    let sha = format!("{n:064x}");
    ObjectRef {
        key: ObjectKey::new(format!("datasets/d/f/{sha}.parquet")).unwrap(),
        size: 1000 + n,
        sha256: Sha256Digest::new(&sha).unwrap(),
        row_count: 10 * n,
        rejects: None,
        partition: tuple,
    }
}

fn tuple(n: i64) -> PartitionTuple {
    vec![
        Some(PartitionScalar::Int(n % 4)),
        Some(PartitionScalar::Int(19_725 + n)),
        Some(PartitionScalar::Int(10 * n)),
        Some(PartitionScalar::Str(format!("name-{n}"))),
        Some(PartitionScalar::Int(1_700_000_000_000_000 + n)),
        Some(PartitionScalar::Int(-n)),
        Some(PartitionScalar::Int(-n)),
        Some(PartitionScalar::Int(3_600_000_000 * n)),
        Some(PartitionScalar::Bool(n % 2 == 0)),
        Some(PartitionScalar::Float(n as f64 / 2.0)),
    ]
}

fn metrics() -> FileMetrics {
    FileMetrics {
        columns: BTreeMap::from([(
            1,
            ColumnMetrics {
                size_bytes: Some(1),
                value_count: Some(1),
                null_count: Some(0),
                lower: None,
                upper: None,
            },
        )]),
    }
}

#[test]
fn unpartitioned_keeps_the_fixed_schema_and_an_empty_record() {
    let none = Partitioning::new(None, &schema()).unwrap();
    assert!(std::ptr::eq(none.entry_schema(), manifest_entry_schema()));
    assert_eq!(none.spec_json().unwrap(), "[]");
    assert!(none.spec_fields().is_empty());
    let empty = PartitionSpec {
        partition_by: String::new(),
        fields: Vec::new(),
    };
    let empty = Partitioning::new(Some(&empty), &schema()).unwrap();
    assert!(std::ptr::eq(empty.entry_schema(), manifest_entry_schema()));
    // a tuple is ignored, no summary
    let record = empty.record("k", Some(&tuple(1))).unwrap();
    assert_eq!(record, Value::Record(Vec::new()));
    assert!(empty.summaries(&[]).is_empty());
}

#[test]
fn the_partition_record_schema_has_one_optional_field_per_spec_field() {
    let partitioning = Partitioning::new(Some(&spec()), &schema()).unwrap();
    let text: serde_json::Value = serde_json::from_str(&partitioning.entry_schema().text).unwrap();
    let data_file = &text["fields"][4]["type"];
    let partition = &data_file["fields"][3];
    assert_eq!(partition["name"], "partition");
    assert_eq!(partition["field-id"], 102);
    assert_eq!(partition["type"]["name"], "r102");
    let fields = partition["type"]["fields"].as_array().unwrap();
    let expected = [
        ("id_bucket", serde_json::json!("int")),
        (
            "ts_day",
            serde_json::json!({"type": "int", "logicalType": "date"}),
        ),
        ("id_trunc", serde_json::json!("long")),
        ("name", serde_json::json!("string")),
        (
            "ts",
            serde_json::json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": true}),
        ),
        (
            "local",
            serde_json::json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": false}),
        ),
        (
            "day",
            serde_json::json!({"type": "int", "logicalType": "date"}),
        ),
        (
            "at",
            serde_json::json!({"type": "long", "logicalType": "time-micros"}),
        ),
        ("ok", serde_json::json!("boolean")),
        ("x", serde_json::json!("double")),
    ];
    assert_eq!(fields.len(), expected.len());
    for (i, (field, (name, avro))) in fields.iter().zip(expected).enumerate() {
        assert_eq!(
            field,
            &serde_json::json!({
                "name": name,
                "type": ["null", avro],
                "default": null,
                "field-id": 1000 + i,
            })
        );
    }
    // the rest of the schema is the fixed one's
    let fixed: serde_json::Value = serde_json::from_str(MANIFEST_ENTRY_SCHEMA_TEXT).unwrap();
    let mut without = text.clone();
    without["fields"][4]["type"]["fields"][3]["type"]["fields"] = serde_json::json!([]);
    assert_eq!(without, fixed);
    // the spec's JSON: Appendix C, source ids by position
    assert_eq!(
        serde_json::to_value(&partitioning.spec_fields()[..2]).unwrap(),
        serde_json::json!([
            {"source-id": 1, "field-id": 1000, "name": "id_bucket", "transform": "bucket[4]"},
            {"source-id": 3, "field-id": 1001, "name": "ts_day", "transform": "day"},
        ])
    );
    assert!(partitioning.spec_json().unwrap().starts_with(
        r#"[{"source-id":1,"field-id":1000,"name":"id_bucket","transform":"bucket[4]"},"#
    ));
}

const MANIFEST_ENTRY_SCHEMA_TEXT: &str = crate::avro::MANIFEST_ENTRY_SCHEMA;

#[test]
fn avro_names_are_made_compatible_as_iceberg_does() {
    assert_eq!(avro_name("ts_day"), "ts_day");
    assert_eq!(avro_name("1st"), "_1st");
    assert_eq!(avro_name("a b-c"), "a_x20b_x2Dc");
    assert_eq!(avro_name("é"), "_xE9");
    assert_eq!(avro_name(""), "_");
    let schema = Schema {
        fields: vec![Field::new("event time", ColumnType::TimestampUtc)],
    };
    let spec = PartitionSpec {
        partition_by: "day(event time)".into(),
        fields: vec![ApiField {
            field_id: 1000,
            name: "event time_day".into(),
            source: "event time".into(),
            transform: "day".into(),
            result_type: "date".into(),
        }],
    };
    let partitioning = Partitioning::new(Some(&spec), &schema).unwrap();
    assert!(
        partitioning
            .entry_schema()
            .text
            .contains(r#""name":"event_x20time_day""#)
    );
    assert_eq!(partitioning.spec_fields()[0].name, "event time_day");
}

#[test]
fn specs_that_do_not_fit_the_schema_are_refused() {
    let mut spec = spec();
    spec.fields[0].source = "missing".into();
    assert!(matches!(
        Partitioning::new(Some(&spec), &schema()),
        Err(IcebergError::InvalidInput(_))
    ));
    let mut spec = self::spec();
    spec.fields[0].result_type = "decimal(9,2)".into();
    assert!(matches!(
        Partitioning::new(Some(&spec), &schema()),
        Err(IcebergError::InvalidInput(_))
    ));
    let mut spec = self::spec();
    spec.fields[1].name = "id_bucket".into();
    let error = Partitioning::new(Some(&spec), &schema()).unwrap_err();
    assert!(matches!(error, IcebergError::InvalidInput(_)), "{error}");
}

#[test]
fn tuples_that_do_not_fit_the_spec_are_refused() {
    let partitioning = Partitioning::new(Some(&spec()), &schema()).unwrap();
    assert!(partitioning.record("k", None).is_err());
    assert!(
        partitioning
            .record("k", Some(&tuple(1)[1..].to_vec()))
            .is_err()
    );
    let mut bad = tuple(1);
    bad[0] = Some(PartitionScalar::Str("x".into()));
    assert!(partitioning.record("k", Some(&bad)).is_err());
    let mut bad = tuple(1);
    bad[0] = Some(PartitionScalar::Int(i64::from(i32::MAX) + 1));
    assert!(partitioning.record("k", Some(&bad)).is_err());
    let mut nulls = tuple(1);
    nulls[3] = None;
    // a double recorded as a whole number
    nulls[9] = Some(PartitionScalar::Int(2));
    let Value::Record(values) = partitioning.record("k", Some(&nulls)).unwrap() else {
        panic!("not a record")
    };
    assert_eq!(
        values[3],
        ("name".into(), Value::Union(0, Box::new(Value::Null)))
    );
    assert_eq!(
        values[9],
        ("x".into(), Value::Union(1, Box::new(Value::Double(2.0))))
    );
}

#[test]
fn partition_values_are_written_and_read_back() {
    let partitioning = Partitioning::new(Some(&spec()), &schema()).unwrap();
    let mut with_null = tuple(2);
    with_null[3] = None;
    let objects = [object(1, Some(tuple(1))), object(2, Some(with_null))];
    let mut records = Vec::new();
    for object in &objects {
        let partition = partitioning
            .record(object.key.as_str(), object.partition.as_ref())
            .unwrap();
        records.push(added_entry(
            object.key.to_string(),
            object,
            partition,
            &metrics(),
            7,
            3,
        ));
    }
    let deleted = object(3, Some(tuple(3)));
    let partition = partitioning
        .record(deleted.key.as_str(), deleted.partition.as_ref())
        .unwrap();
    records.push(deleted_entry(
        deleted.key.to_string(),
        &deleted,
        partition,
        7,
    ));
    let bytes = write_manifest("m", "{}", 0, &partitioning, records.clone()).unwrap();
    let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
    let header = reader.user_metadata();
    assert_eq!(header["partition-spec-id"], b"0");
    assert_eq!(
        std::str::from_utf8(&header["partition-spec"]).unwrap(),
        partitioning.spec_json().unwrap()
    );
    let read = read_entries("m", &bytes).unwrap();
    assert_eq!(read, records, "the values read back are those written");
    let partition = |i: usize| field(field(&read[i], "data_file").unwrap(), "partition").unwrap();
    let Value::Record(first) = partition(0) else {
        panic!("no partition record")
    };
    let values: Vec<&Value> = first.iter().map(|(_, v)| unwrap_union(v)).collect();
    assert_eq!(
        values,
        [
            &Value::Int(1),
            &Value::Date(19_726),
            &Value::Long(10),
            &Value::String("name-1".into()),
            &Value::TimestampMicros(1_700_000_000_000_001),
            &Value::TimestampMicros(-1),
            &Value::Date(-1),
            &Value::TimeMicros(3_600_000_000),
            &Value::Boolean(false),
            &Value::Double(0.5),
        ]
    );
    let Value::Record(second) = partition(1) else {
        panic!("no partition record")
    };
    assert_eq!(second[3].1, Value::Union(0, Box::new(Value::Null)));
    // the same entries rewritten give the same bytes
    assert_eq!(
        write_manifest("m", "{}", 0, &partitioning, read).unwrap(),
        bytes
    );
}

#[test]
fn single_values_are_serialized_as_appendix_d_says() {
    assert_eq!(
        single_value(&Value::Date(19_725)).unwrap(),
        [0x0d, 0x4d, 0, 0]
    );
    assert_eq!(single_value(&Value::Int(-1)).unwrap(), [0xff; 4]);
    assert_eq!(
        single_value(&Value::Long(1)).unwrap(),
        [1, 0, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(
        single_value(&Value::TimestampMicros(256)).unwrap(),
        [0, 1, 0, 0, 0, 0, 0, 0]
    );
    assert_eq!(single_value(&Value::TimeMicros(2)).unwrap()[0], 2);
    assert_eq!(
        single_value(&Value::String("é".into())).unwrap(),
        [0xc3, 0xa9]
    );
    assert_eq!(single_value(&Value::Boolean(true)).unwrap(), [1]);
    assert_eq!(single_value(&Value::Boolean(false)).unwrap(), [0]);
    assert_eq!(
        single_value(&Value::Double(1.0)).unwrap(),
        [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]
    );
    assert_eq!(
        single_value(&Value::Union(1, Box::new(Value::Date(1)))).unwrap(),
        [1, 0, 0, 0]
    );
    assert_eq!(single_value(&Value::Null), None);
}

fn entry_with(values: Vec<Value>) -> Value {
    Value::Record(vec![(
        "data_file".into(),
        Value::Record(vec![(
            "partition".into(),
            Value::Record(
                values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("f{i}"), v))
                    .collect(),
            ),
        )]),
    )])
}

#[test]
fn summaries_bound_the_non_null_values_of_every_entry() {
    let spec = with_double("day(ts),name,ok");
    let partitioning = Partitioning::new(Some(&spec), &schema()).unwrap();
    let some = |v: Value| Value::Union(1, Box::new(v));
    let null = || Value::Union(0, Box::new(Value::Null));
    let entries = [
        entry_with(vec![
            some(Value::Date(19_726)),
            some(Value::String("b".into())),
            null(),
            some(Value::Double(f64::NAN)),
        ]),
        entry_with(vec![
            some(Value::Date(19_725)),
            some(Value::String("ab".into())),
            null(),
            some(Value::Double(-0.5)),
        ]),
        entry_with(vec![
            some(Value::Date(19_727)),
            null(),
            null(),
            some(Value::Double(2.0)),
        ]),
    ];
    let summaries = partitioning.summaries(&entries);
    assert_eq!(
        summaries,
        [
            FieldSummary {
                contains_null: false,
                contains_nan: Some(false),
                lower_bound: Some(vec![0x0d, 0x4d, 0, 0]),
                upper_bound: Some(vec![0x0f, 0x4d, 0, 0]),
            },
            FieldSummary {
                contains_null: true,
                contains_nan: Some(false),
                lower_bound: Some(b"ab".to_vec()),
                upper_bound: Some(b"b".to_vec()),
            },
            FieldSummary {
                contains_null: true,
                contains_nan: Some(false),
                lower_bound: None,
                upper_bound: None,
            },
            FieldSummary {
                contains_null: false,
                contains_nan: Some(true),
                lower_bound: Some((-0.5f64).to_le_bytes().to_vec()),
                upper_bound: Some(2.0f64.to_le_bytes().to_vec()),
            },
        ]
    );
    // read back from their Avro records
    for summary in &summaries {
        assert_eq!(
            FieldSummary::from_record(&summary.record()).as_ref(),
            Some(summary)
        );
    }
    // the list entry carries them; no entry: no bound
    let file = ManifestFile::of_records("k".into(), 1, 1, 1, &entries, &partitioning);
    assert_eq!(file.partitions, summaries);
    let empty = partitioning.summaries(&[]);
    assert_eq!(empty.len(), 4);
    assert!(
        empty
            .iter()
            .all(|s| !s.contains_null && s.lower_bound.is_none())
    );
}

#[test]
fn recorded_values_are_checked_against_their_result_type() {
    use PartitionScalar::{Bool, Float, Int, Str};
    for (result_type, value) in [
        ("int", Int(-1)),
        ("date", Int(19_782)),
        ("long", Int(i64::MIN)),
        ("time", Int(45_296_000_000)),
        ("timestamp", Int(1)),
        ("timestamptz", Int(1)),
        ("string", Str("eu".into())),
        ("boolean", Bool(false)),
        ("double", Float(0.5)),
    ] {
        assert_eq!(
            check_partition_value(result_type, &value),
            Ok(()),
            "{value:?}"
        );
    }
    assert_eq!(
        check_partition_value("int", &Str("3".into())),
        Err("an integer within 32 bits")
    );
    assert_eq!(
        check_partition_value("int", &Int(i64::from(i32::MAX) + 1)),
        Err("an integer within 32 bits")
    );
    assert!(check_partition_value("date", &Float(1.5)).is_err());
    assert!(check_partition_value("timestamp", &Str("2024-02-29".into())).is_err());
    assert_eq!(
        check_partition_value("string", &Bool(true)),
        Err("a string")
    );
    assert!(check_partition_value("boolean", &Int(1)).is_err());
    assert!(check_partition_value("decimal(9,2)", &Int(1)).is_err());
}
