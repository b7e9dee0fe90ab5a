//! The partitioning of a table (docs/contract.md section 10, partitioned datasets; Iceberg
//! spec "Partitioning", "Manifests", "Manifest Lists", "Appendix C", "Appendix D"): the
//! dataset's recorded [`lakehouse_api::PartitionSpec`] as the table's spec 0, the Avro
//! schema of its manifests' `data_file.partition` record, each data file's partition tuple as
//! that record, and the manifest list's partition field summaries.
//!
//! An unpartitioned dataset has a spec without fields, an empty `partition` record, the
//! fixed manifest schema ([`crate::avro::MANIFEST_ENTRY_SCHEMA`]) and no field summaries: the
//! bytes written before partitioned datasets existed.

use crate::avro::{FixedSchema, manifest_entry_schema, manifest_entry_schema_with};
use crate::manifest::field;
use crate::metrics::single_value;
use crate::spec::PartitionSpecField;
use crate::{IcebergError, Result};
use apache_avro::types::Value;
use lakehouse_api::{PartitionScalar, PartitionSpec, PartitionTuple, Schema};

/// The Iceberg type of a partition field's values (`PartitionSpecField::result_type`), as
/// far as this projection writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResultType {
    /// `int`: year, month, hour, bucket.
    Int,
    /// `date`: day, identity of a date.
    Date,
    /// `long`.
    Long,
    /// `time` (microseconds).
    Time,
    /// `timestamp` (microseconds, no zone).
    Timestamp,
    /// `timestamptz` (microseconds, UTC).
    TimestampTz,
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `double`.
    Double,
}

impl ResultType {
    /// The type of an Iceberg type name; `None` for one a partition field never has here.
    pub(crate) fn parse(name: &str) -> Option<ResultType> {
        Some(match name {
            "int" => ResultType::Int,
            "date" => ResultType::Date,
            "long" => ResultType::Long,
            "time" => ResultType::Time,
            "timestamp" => ResultType::Timestamp,
            "timestamptz" => ResultType::TimestampTz,
            "string" => ResultType::String,
            "boolean" => ResultType::Boolean,
            "double" => ResultType::Double,
            _ => return None,
        })
    }

    /// What a recorded value of this type is, for a message.
    fn expected(self) -> &'static str {
        match self {
            ResultType::Int => "an integer within 32 bits",
            ResultType::Date => "an integer within 32 bits (days since 1970-01-01)",
            ResultType::Long => "an integer",
            ResultType::Time => "an integer (microseconds since midnight)",
            ResultType::Timestamp | ResultType::TimestampTz => {
                "an integer (microseconds since 1970-01-01T00:00:00)"
            }
            ResultType::String => "a string",
            ResultType::Boolean => "true or false",
            ResultType::Double => "a number",
        }
    }

    /// Its Avro schema, as Iceberg writes it (Iceberg spec "Avro": date, time-micros and
    /// timestamp-micros logical types; `adjust-to-utc` tells timestamptz from timestamp).
    pub(crate) fn avro_type(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ResultType::Int => json!("int"),
            ResultType::Date => json!({"type": "int", "logicalType": "date"}),
            ResultType::Long => json!("long"),
            ResultType::Time => json!({"type": "long", "logicalType": "time-micros"}),
            ResultType::Timestamp => {
                json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": false})
            }
            ResultType::TimestampTz => {
                json!({"type": "long", "logicalType": "timestamp-micros", "adjust-to-utc": true})
            }
            ResultType::String => json!("string"),
            ResultType::Boolean => json!("boolean"),
            ResultType::Double => json!("double"),
        }
    }

    /// The Avro value of a recorded partition value of this type; `None` when the value
    /// does not fit it (a string for an `int`, an `int` beyond 32 bits, ...).
    fn value(self, scalar: &PartitionScalar) -> Option<Value> {
        Some(match (self, scalar) {
            (ResultType::Int, PartitionScalar::Int(v)) => Value::Int(i32::try_from(*v).ok()?),
            (ResultType::Date, PartitionScalar::Int(v)) => Value::Date(i32::try_from(*v).ok()?),
            (ResultType::Long, PartitionScalar::Int(v)) => Value::Long(*v),
            (ResultType::Time, PartitionScalar::Int(v)) => Value::TimeMicros(*v),
            (ResultType::Timestamp | ResultType::TimestampTz, PartitionScalar::Int(v)) => {
                Value::TimestampMicros(*v)
            }
            (ResultType::String, PartitionScalar::Str(v)) => Value::String(v.clone()),
            (ResultType::Boolean, PartitionScalar::Bool(v)) => Value::Boolean(*v),
            (ResultType::Double, PartitionScalar::Float(v)) => Value::Double(*v),
            // A whole double recorded without a fraction reads back as a number.
            (ResultType::Double, PartitionScalar::Int(v)) => Value::Double(*v as f64),
            _ => return None,
        })
    }
}

/// Checks one recorded partition value against its field's `result_type` (docs/contract.md
/// section 10: numbers for ints, dates in days since 1970-01-01, times and timestamps in
/// microseconds; strings; booleans), as the table's manifests will hold it: `int` and
/// `date` take an [`PartitionScalar::Int`] within 32 bits, `long`, `time`, `timestamp` and
/// `timestamptz` any `Int`, `string` a `Str`, `boolean` a `Bool`, `double` a `Float` (or a
/// whole `Int`). A null value (the tuple's `None`) fits every type and is not passed here.
///
/// # Errors
/// What a value of `result_type` is ("an integer within 32 bits", ...) when `value` is not
/// one, or "a type a partition field has" when `result_type` is none of the above.
/// Panics: none.
pub fn check_partition_value(
    result_type: &str,
    value: &PartitionScalar,
) -> std::result::Result<(), &'static str> {
    let kind = ResultType::parse(result_type).ok_or("a type a partition field has")?;
    match kind.value(value) {
        Some(_) => Ok(()),
        None => Err(kind.expected()),
    }
}

/// The table's partitioning at one commit: spec 0's fields, their Avro names and types, and
/// the manifest schema that holds them.
#[derive(Debug)]
pub(crate) struct Partitioning {
    /// Spec 0's fields as the metadata JSON and the manifests' header name them.
    spec: Vec<PartitionSpecField>,
    /// Per field: its name in the Avro `partition` record and its type.
    fields: Vec<(String, ResultType)>,
    /// The manifest entry schema of a partitioned table (`None`: the fixed one).
    schema: Option<FixedSchema>,
}

impl Partitioning {
    /// The partitioning of a dataset with recorded spec `spec` (none: unpartitioned) and
    /// schema `schema` (docs/contract.md section 10): each field's source id is its source
    /// column's 1-based position (section 8).
    ///
    /// # Errors
    /// [`IcebergError::InvalidInput`] when a field's source is not a column of `schema`, its
    /// result type is not one a partition field has, or the fields make no Avro schema.
    pub(crate) fn new(spec: Option<&PartitionSpec>, schema: &Schema) -> Result<Partitioning> {
        let Some(spec) = spec.filter(|s| !s.fields.is_empty()) else {
            return Ok(Partitioning {
                spec: Vec::new(),
                fields: Vec::new(),
                schema: None,
            });
        };
        let mut fields = Vec::with_capacity(spec.fields.len());
        let mut json = Vec::with_capacity(spec.fields.len());
        let mut spec_fields = Vec::with_capacity(spec.fields.len());
        for field in &spec.fields {
            let invalid = |what: String| {
                IcebergError::InvalidInput(format!(
                    "partition field `{}` of `{}`: {what}",
                    field.name, spec.partition_by
                ))
            };
            let position = schema
                .fields
                .iter()
                .position(|c| c.name == field.source)
                .ok_or_else(|| invalid(format!("the schema has no column `{}`", field.source)))?;
            let kind = ResultType::parse(&field.result_type)
                .ok_or_else(|| invalid(format!("result type `{}`", field.result_type)))?;
            let avro_name = avro_name(&field.name);
            json.push(serde_json::json!({
                "name": avro_name,
                "type": ["null", kind.avro_type()],
                "default": null,
                "field-id": field.field_id,
            }));
            fields.push((avro_name, kind));
            spec_fields.push(PartitionSpecField {
                source_id: i32::try_from(position + 1).unwrap_or(i32::MAX),
                field_id: field.field_id,
                name: field.name.clone(),
                transform: field.transform.clone(),
            });
        }
        let schema = manifest_entry_schema_with(&json)?;
        Ok(Partitioning {
            spec: spec_fields,
            fields,
            schema: Some(schema),
        })
    }

    /// Spec 0's fields (empty when unpartitioned).
    pub(crate) fn spec_fields(&self) -> &[PartitionSpecField] {
        &self.spec
    }

    /// The manifests' `partition-spec` header: spec 0's fields as a JSON array (Iceberg
    /// spec "Manifests"); `[]` when unpartitioned.
    pub(crate) fn spec_json(&self) -> Result<String> {
        serde_json::to_string(&self.spec).map_err(IcebergError::Json)
    }

    /// The Avro schema of a manifest entry.
    pub(crate) fn entry_schema(&self) -> &FixedSchema {
        self.schema
            .as_ref()
            .unwrap_or_else(|| manifest_entry_schema())
    }

    /// The `data_file.partition` record of the data file `key` with tuple `tuple`: empty
    /// when unpartitioned (a tuple is then ignored), else one optional value per field.
    ///
    /// # Errors
    /// [`IcebergError::InvalidInput`] when a partitioned table's file has no tuple, one of
    /// another width, or a value that does not fit its field's type.
    pub(crate) fn record(&self, key: &str, tuple: Option<&PartitionTuple>) -> Result<Value> {
        if self.fields.is_empty() {
            return Ok(Value::Record(Vec::new()));
        }
        let invalid = |what: String| {
            IcebergError::InvalidInput(format!("data file {key}'s partition tuple: {what}"))
        };
        let tuple = tuple.ok_or_else(|| invalid("absent in a partitioned dataset".into()))?;
        if tuple.len() != self.fields.len() {
            return Err(invalid(format!(
                "{} values for {} partition fields",
                tuple.len(),
                self.fields.len()
            )));
        }
        let mut values = Vec::with_capacity(tuple.len());
        for ((name, kind), scalar) in self.fields.iter().zip(tuple) {
            let value = match scalar {
                None => Value::Union(0, Box::new(Value::Null)),
                Some(scalar) => {
                    let value = kind.value(scalar).ok_or_else(|| {
                        invalid(format!("{scalar:?} is not a value of field `{name}`"))
                    })?;
                    Value::Union(1, Box::new(value))
                }
            };
            values.push((name.clone(), value));
        }
        Ok(Value::Record(values))
    }

    /// The manifest list's `partitions` of a manifest holding `entries` (Iceberg spec
    /// "Manifest Lists", field 507): one summary per spec field, over every entry, as Java's
    /// `PartitionSummary` makes them. Empty when unpartitioned.
    pub(crate) fn summaries(&self, entries: &[Value]) -> Vec<FieldSummary> {
        let mut stats: Vec<Stats<'_>> = self.fields.iter().map(|_| Stats::default()).collect();
        for entry in entries {
            let Some(Value::Record(values)) =
                field(entry, "data_file").and_then(|f| field(f, "partition"))
            else {
                continue;
            };
            for (stat, (_, value)) in stats.iter_mut().zip(values) {
                stat.update(value);
            }
        }
        stats.into_iter().map(Stats::summary).collect()
    }
}

/// A name Avro accepts (`[A-Za-z_][A-Za-z0-9_]*`) for a partition field, as Iceberg's
/// `AvroSchemaUtil.makeCompatibleName` makes it: a leading digit gets a `_` before it, any
/// other character not allowed becomes `_x` and its hexadecimal code (upper case).
pub(crate) fn avro_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, c) in name.chars().enumerate() {
        let allowed = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if allowed {
            out.push(c);
        } else if c.is_ascii_digit() {
            out.push('_');
            out.push(c);
        } else {
            out.push_str(&format!("_x{:X}", u32::from(c)));
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// One `field_summary` of a manifest list entry (Iceberg spec "Manifest Lists", fields
/// 508-511 and 518).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldSummary {
    /// Whether an entry's value is null.
    pub contains_null: bool,
    /// Whether an entry's value is NaN (false when none is, as Java writes it for every
    /// type); `None` when a list read back has it null.
    pub contains_nan: Option<bool>,
    /// The smallest non-null, non-NaN value, single-value serialized (Appendix D).
    pub lower_bound: Option<Vec<u8>>,
    /// The largest one.
    pub upper_bound: Option<Vec<u8>>,
}

impl FieldSummary {
    /// Its Avro record (`r508`).
    pub(crate) fn record(&self) -> Value {
        let optional = |value: Option<Value>| match value {
            None => Value::Union(0, Box::new(Value::Null)),
            Some(value) => Value::Union(1, Box::new(value)),
        };
        Value::Record(vec![
            ("contains_null".into(), Value::Boolean(self.contains_null)),
            (
                "contains_nan".into(),
                optional(self.contains_nan.map(Value::Boolean)),
            ),
            (
                "lower_bound".into(),
                optional(self.lower_bound.clone().map(Value::Bytes)),
            ),
            (
                "upper_bound".into(),
                optional(self.upper_bound.clone().map(Value::Bytes)),
            ),
        ])
    }

    /// A summary read back from its Avro record; `None` when it is not one.
    pub(crate) fn from_record(record: &Value) -> Option<FieldSummary> {
        let contains_null = match field(record, "contains_null")? {
            Value::Boolean(b) => *b,
            _ => return None,
        };
        let contains_nan = match unwrap_union(field(record, "contains_nan")?) {
            Value::Null => None,
            Value::Boolean(b) => Some(*b),
            _ => return None,
        };
        let bytes = |name: &str| match unwrap_union(field(record, name)?) {
            Value::Null => Some(None),
            Value::Bytes(b) => Some(Some(b.clone())),
            _ => None,
        };
        Some(FieldSummary {
            contains_null,
            contains_nan,
            lower_bound: bytes("lower_bound")?,
            upper_bound: bytes("upper_bound")?,
        })
    }
}

/// The running summary of one field: the bounds as recorded values, ordered as
/// [`lakehouse_api::compare_tuples`] orders partitions, with the Avro values they came from.
#[derive(Default)]
struct Stats<'a> {
    contains_null: bool,
    contains_nan: bool,
    lower: Option<(PartitionScalar, &'a Value)>,
    upper: Option<(PartitionScalar, &'a Value)>,
}

impl<'a> Stats<'a> {
    fn update(&mut self, value: &'a Value) {
        let value = unwrap_union(value);
        match value {
            Value::Null => self.contains_null = true,
            Value::Double(v) if v.is_nan() => self.contains_nan = true,
            Value::Float(v) if v.is_nan() => self.contains_nan = true,
            _ => {
                let Some(scalar) = scalar(value) else {
                    return;
                };
                let lower = self.lower.as_ref().is_none_or(|(l, _)| scalar < *l);
                let upper = self.upper.as_ref().is_none_or(|(u, _)| scalar > *u);
                match (lower, upper) {
                    (true, true) => {
                        self.lower = Some((scalar.clone(), value));
                        self.upper = Some((scalar, value));
                    }
                    (true, false) => self.lower = Some((scalar, value)),
                    (false, true) => self.upper = Some((scalar, value)),
                    (false, false) => {}
                }
            }
        }
    }

    fn summary(self) -> FieldSummary {
        FieldSummary {
            contains_null: self.contains_null,
            contains_nan: Some(self.contains_nan),
            lower_bound: self.lower.and_then(|(_, v)| single_value(v)),
            upper_bound: self.upper.and_then(|(_, v)| single_value(v)),
        }
    }
}

/// The value inside an optional field's union (the value itself when not a union).
pub(crate) fn unwrap_union(value: &Value) -> &Value {
    match value {
        Value::Union(_, inner) => inner,
        other => other,
    }
}

/// A partition value read from a manifest as the catalog records it (the inverse of
/// `ResultType::value`): int, date, long, time and timestamps as `Int`, strings as `Str`,
/// booleans as `Bool`, floats and doubles as `Float`; `None` for a null or another type.
fn scalar(value: &Value) -> Option<PartitionScalar> {
    Some(match value {
        Value::Int(v) | Value::Date(v) => PartitionScalar::Int(i64::from(*v)),
        Value::Long(v)
        | Value::TimeMicros(v)
        | Value::TimestampMicros(v)
        | Value::LocalTimestampMicros(v) => PartitionScalar::Int(*v),
        Value::String(v) => PartitionScalar::Str(v.clone()),
        Value::Boolean(v) => PartitionScalar::Bool(*v),
        Value::Double(v) => PartitionScalar::Float(*v),
        Value::Float(v) => PartitionScalar::Float(f64::from(*v)),
        _ => return None,
    })
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
