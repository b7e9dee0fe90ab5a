//! The projection of a partitioned dataset (docs/contract.md section 10; Iceberg spec
//! "Partitioning", "Manifests", "Manifest Lists", "Appendix C", "Appendix D"): spec 0 in the
//! metadata JSON, each entry's `partition` record, each manifest's partition field summaries,
//! through appends, compactions, replaces and merges. Every commit also checks its round trip
//! (`common::Table::commit`).

mod common;

use apache_avro::types::Value;
use common::{Table, field, object, records};
use lakehouse_api::{
    ColumnType, Field, ObjectRef, Operation, PartitionScalar, PartitionSpec, PartitionTuple, Schema,
};
use lakehouse_iceberg::{IcebergError, PartitionBy, TableConfig, VersionChange};
use std::collections::HashMap;

fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
            Field::new("ts", ColumnType::TimestampUtc),
        ],
    }
}

const PARTITION_BY: &str = "day(ts),bucket(4,id),name";

fn spec() -> PartitionSpec {
    PartitionBy::parse(PARTITION_BY)
        .unwrap()
        .spec(&schema())
        .unwrap()
}

/// Object `n`'s tuple: day 19725 + n % 3, bucket n % 4, name `n<n>` (null when n % 5 == 0).
fn tuple(n: u64) -> PartitionTuple {
    vec![
        Some(PartitionScalar::Int(19_725 + (n % 3) as i64)),
        Some(PartitionScalar::Int((n % 4) as i64)),
        (!n.is_multiple_of(5)).then(|| PartitionScalar::Str(format!("n{n}"))),
    ]
}

fn partitioned(config: TableConfig) -> Table {
    let mut table = Table::new("events", "s3://bucket", config);
    table.schema = schema();
    table.partitioning = Some((spec(), tuple as common::TupleOf));
    table
}

/// The object number of a data file URI.
fn number_of(table: &Table, uri: &str, upto: u64) -> u64 {
    let key = table.key_of(uri);
    (1..=upto)
        .find(|n| object(table.name.as_str(), *n).key.as_str() == key)
        .unwrap_or_else(|| panic!("{uri} is no object"))
}

fn unwrap(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

/// A tuple as the Avro values the manifest must hold.
fn expected_values(n: u64) -> Vec<Value> {
    let t = tuple(n);
    let int = |v: &Option<PartitionScalar>| match v {
        Some(PartitionScalar::Int(v)) => *v as i32,
        other => panic!("{other:?}"),
    };
    vec![
        Value::Date(int(&t[0])),
        Value::Int(int(&t[1])),
        match &t[2] {
            Some(PartitionScalar::Str(s)) => Value::String(s.clone()),
            _ => Value::Null,
        },
    ]
}

/// The summaries a manifest holding objects `numbers` must have: Appendix D bytes of the
/// smallest and largest non-null values.
fn expected_summaries(numbers: &[u64]) -> Vec<Value> {
    let days: Vec<i32> = numbers.iter().map(|n| 19_725 + (n % 3) as i32).collect();
    let buckets: Vec<i32> = numbers.iter().map(|n| (n % 4) as i32).collect();
    let names: Vec<String> = numbers
        .iter()
        .filter(|n| !n.is_multiple_of(5))
        .map(|n| format!("n{n}"))
        .collect();
    let some = |v: Value| Value::Union(1, Box::new(v));
    let null = || Value::Union(0, Box::new(Value::Null));
    let summary = |contains_null: bool, bounds: Option<(Vec<u8>, Vec<u8>)>| {
        let (lower, upper) = match bounds {
            Some((l, u)) => (some(Value::Bytes(l)), some(Value::Bytes(u))),
            None => (null(), null()),
        };
        Value::Record(vec![
            ("contains_null".into(), Value::Boolean(contains_null)),
            ("contains_nan".into(), some(Value::Boolean(false))),
            ("lower_bound".into(), lower),
            ("upper_bound".into(), upper),
        ])
    };
    let ints = |v: &[i32]| {
        Some((
            v.iter().min().unwrap().to_le_bytes().to_vec(),
            v.iter().max().unwrap().to_le_bytes().to_vec(),
        ))
    };
    vec![
        summary(false, ints(&days)),
        summary(false, ints(&buckets)),
        summary(
            names.len() < numbers.len(),
            names.iter().min().map(|l| {
                (
                    l.as_bytes().to_vec(),
                    names.iter().max().unwrap().as_bytes().to_vec(),
                )
            }),
        ),
    ]
}

/// Checks the stored table at its version: the spec in the metadata JSON, every entry's
/// partition record, every manifest's summaries and header.
fn check(table: &Table, upto: u64) {
    let json =
        String::from_utf8(table.store[&table.state.metadata_key().unwrap()].clone()).unwrap();
    assert!(
        json.contains(concat!(
            r#""partition-specs":[{"spec-id":0,"fields":["#,
            r#"{"source-id":3,"field-id":1000,"name":"ts_day","transform":"day"},"#,
            r#"{"source-id":1,"field-id":1001,"name":"id_bucket","transform":"bucket[4]"},"#,
            r#"{"source-id":2,"field-id":1002,"name":"name","transform":"identity"}]}]"#,
            r#","default-spec-id":0,"last-partition-id":1002"#
        )),
        "{json}"
    );
    let list_key = table.state.manifest_list_key().unwrap();
    let list = records(&table.store[&list_key]);
    let manifests = table.list_manifests(&list_key);
    assert_eq!(list.len(), manifests.len());
    for (list_entry, key) in list.iter().zip(&manifests) {
        let bytes = &table.store[key];
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        let header = reader.user_metadata();
        assert_eq!(header["partition-spec-id"], b"0");
        assert_eq!(
            std::str::from_utf8(&header["partition-spec"]).unwrap(),
            concat!(
                r#"[{"source-id":3,"field-id":1000,"name":"ts_day","transform":"day"},"#,
                r#"{"source-id":1,"field-id":1001,"name":"id_bucket","transform":"bucket[4]"},"#,
                r#"{"source-id":2,"field-id":1002,"name":"name","transform":"identity"}]"#
            )
        );
        // the header's avro.schema (not among the reader's user metadata)
        let avro_schema = String::from_utf8_lossy(bytes);
        assert!(
            avro_schema.contains(
                r#"{"default":null,"field-id":1000,"name":"ts_day","type":["null",{"logicalType":"date","type":"int"}]}"#
            ),
            "{key}: the partition record's fields in the header"
        );
        let mut numbers = Vec::new();
        for entry in records(bytes) {
            let data_file = field(&entry, "data_file");
            let Value::String(path) = field(data_file, "file_path") else {
                panic!("no file_path")
            };
            let n = number_of(table, path, upto);
            let Value::Record(partition) = field(data_file, "partition") else {
                panic!("no partition record")
            };
            let names: Vec<&str> = partition.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["ts_day", "id_bucket", "name"]);
            let values: Vec<Value> = partition.iter().map(|(_, v)| unwrap(v).clone()).collect();
            assert_eq!(values, expected_values(n), "object {n} in {key}");
            numbers.push(n);
        }
        assert_eq!(
            field(list_entry, "partitions"),
            &Value::Union(1, Box::new(Value::Array(expected_summaries(&numbers)))),
            "summaries of {key} (objects {numbers:?})"
        );
    }
}

#[test]
fn a_partitioned_dataset_projects_its_spec_partitions_and_summaries() {
    let mut table = partitioned(TableConfig::default());
    table.commit(Some(Operation::Replace), &[1, 2], &[]);
    check(&table, 2);
    let metadata = table.metadata();
    assert_eq!(metadata.last_partition_id, 1002);
    assert_eq!(metadata.partition_specs[0].fields[0].source_id, 3);
    table.append(&[3, 4, 5]);
    check(&table, 5);
    table.append(&[6]);
    check(&table, 6);
    // a compaction rewrites the manifest holding objects 3 and 4: its summaries follow
    table.compact(&[2, 3], 7);
    check(&table, 7);
    table.append(&[10]);
    check(&table, 10);
    // a replace of everything: the deleted entries carry their partitions too
    table.replace(&[11, 12]);
    check(&table, 12);
    let list = records(&table.store[&table.state.manifest_list_key().unwrap()]);
    assert_eq!(list.len(), 2, "the added manifest and the deleted one");
}

#[test]
fn merged_manifests_carry_partitions_and_summaries() {
    let config = TableConfig {
        manifest_merge_count: 3,
        manifest_target_bytes: 1 << 20,
        ..TableConfig::default()
    };
    let mut table = partitioned(config);
    for n in 1..=9 {
        table.append(&[n]);
        check(&table, n);
    }
    let list = records(&table.store[&table.state.manifest_list_key().unwrap()]);
    assert!(list.len() <= 4, "merged: {} manifests", list.len());
    // and a compaction across merged manifests
    table.compact(&[0, 8], 13);
    check(&table, 13);
    assert_eq!(
        table
            .live_files(&table.state.manifest_list_key().unwrap())
            .len(),
        8
    );
}

#[test]
fn a_change_of_spec_or_a_tuple_that_does_not_fit_is_refused() {
    let mut table = partitioned(TableConfig::default());
    table.commit(Some(Operation::Replace), &[1], &[]);
    let mut added = object(table.name.as_str(), 2);
    added.partition = Some(tuple(2));
    let mut live: Vec<ObjectRef> = table.live_now().to_vec();
    live.push(added.clone());
    let mut manifest = common::manifest_of(&table.name, 2, Some(Operation::Append), &live);
    manifest.schema = schema();
    manifest.schema_fingerprint = schema().fingerprint();
    let added = [(added, common::metrics(2))];
    let change = |manifest| VersionChange {
        manifest,
        added: &added,
        removed: &[],
        oldest_retained: 1,
        tag: None,
    };
    // unpartitioned now: refused, the table's manifests are of the spec
    let refused = table
        .state
        .commit(&change(&manifest), &HashMap::new(), &table.config);
    assert!(matches!(refused, Err(IcebergError::InvalidInput(_))));
    // another spec
    let mut other = manifest.clone();
    other.partition_spec = Some(PartitionBy::parse("name").unwrap().spec(&schema()).unwrap());
    let refused = table
        .state
        .commit(&change(&other), &HashMap::new(), &table.config);
    assert!(matches!(refused, Err(IcebergError::InvalidInput(_))));
    // the spec, but a tuple of another width
    let mut same = manifest.clone();
    same.partition_spec = Some(spec());
    let mut short = added[0].clone();
    short.0.partition = Some(tuple(2)[..2].to_vec());
    let short = [short];
    let change = VersionChange {
        manifest: &same,
        added: &short,
        removed: &[],
        oldest_retained: 1,
        tag: None,
    };
    let refused = table.state.commit(&change, &HashMap::new(), &table.config);
    assert!(
        matches!(refused, Err(IcebergError::InvalidInput(_))),
        "{refused:?}"
    );
    // and the same change with the right tuple commits
    let change = VersionChange {
        manifest: &same,
        added: &added,
        removed: &[],
        oldest_retained: 1,
        tag: None,
    };
    assert!(
        table
            .state
            .commit(&change, &HashMap::new(), &table.config)
            .is_ok()
    );
}

/// Writes a partitioned table of 10 versions (appends, merges, a compaction) under the
/// directory `$LAKEHOUSE_ICEBERG_DUMP`, when set, for an outside reader (pyiceberg) to
/// check; does nothing otherwise.
#[test]
fn dump_a_partitioned_table_when_asked() {
    let Ok(dir) = std::env::var("LAKEHOUSE_ICEBERG_DUMP") else {
        return;
    };
    let config = TableConfig {
        manifest_merge_count: 3,
        ..TableConfig::default()
    };
    let mut table = Table::new("events", &format!("file://{dir}"), config);
    table.schema = schema();
    table.partitioning = Some((spec(), tuple as common::TupleOf));
    for n in 1..=9 {
        table.append(&[n]);
    }
    table.compact(&[0, 1], 10);
    for (key, bytes) in &table.store {
        let path = std::path::Path::new(&dir).join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    println!("{}", table.state.metadata_key().unwrap());
}
