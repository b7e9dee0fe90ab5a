//! Per-file column metrics from a Parquet footer, in Iceberg's single-value serialization
//! (Iceberg spec: "Appendix D: Single-value serialization"; docs/contract.md section 8).

use crate::partition::unwrap_union;
use crate::stats::{Bound, column_summaries};
use apache_avro::types::Value;
use lakehouse_api::{ColumnType, Schema};
use parquet::file::metadata::ParquetMetaData;
use std::collections::BTreeMap;

/// Iceberg's default metrics mode for strings is `truncate(16)`: bounds keep at most this
/// many Unicode code points.
pub const TRUNCATE_CHARS: usize = 16;

/// Metrics of one column of one data file, keyed in [`FileMetrics`] by field id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnMetrics {
    /// Total compressed bytes of the column's chunks (`column_sizes`).
    pub size_bytes: Option<u64>,
    /// Values in the column, nulls included (`value_counts`).
    pub value_count: Option<u64>,
    /// Null values (`null_value_counts`).
    pub null_count: Option<u64>,
    /// Lower bound, single-value serialized (`lower_bounds`).
    pub lower: Option<Vec<u8>>,
    /// Upper bound, single-value serialized (`upper_bounds`).
    pub upper: Option<Vec<u8>>,
}

/// Column metrics of one data file by Iceberg field id (column i of the schema has id i,
/// 1-based; docs/contract.md section 8).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileMetrics {
    /// Field id -> metrics; a column the file does not hold (added later by schema
    /// evolution) is absent.
    pub columns: BTreeMap<i32, ColumnMetrics>,
}

impl FileMetrics {
    /// Reads the metrics of the columns of `schema` from a Parquet footer: per column, the
    /// row groups folded by [`column_summaries`] (the one aggregation, shared with the
    /// catalog page), its bounds serialized for the column's Iceberg type (strings
    /// truncated as `truncate(16)` does). Columns are matched by name; a bound is left out
    /// when any row group lacks one while holding non-null values, and a null count when
    /// any row group lacks it. Never panics.
    pub fn from_parquet(metadata: &ParquetMetaData, schema: &Schema) -> FileMetrics {
        let columns = column_summaries(metadata, schema)
            .into_iter()
            .zip(&schema.fields)
            .enumerate()
            .filter_map(|(i, (summary, field))| {
                let summary = summary?;
                let metrics = ColumnMetrics {
                    size_bytes: Some(summary.size_bytes),
                    value_count: Some(summary.value_count),
                    null_count: summary.null_count,
                    lower: summary
                        .lower
                        .and_then(|b| serialize(field.data_type, b, false)),
                    upper: summary
                        .upper
                        .and_then(|b| serialize(field.data_type, b, true)),
                };
                Some((field_id(i), metrics))
            })
            .collect();
        FileMetrics { columns }
    }
}

/// Field id of column `index` (0-based) of a schema: `index + 1`.
pub(crate) fn field_id(index: usize) -> i32 {
    i32::try_from(index + 1).unwrap_or(i32::MAX)
}

/// Single-value serialization of a bound for `data_type`, by [`single_value`] of the
/// bound as a value of the column's Iceberg type (`None` when the stored physical type does
/// not fit the column type, or a string upper bound cannot be truncated).
fn serialize(data_type: ColumnType, bound: Bound, upper: bool) -> Option<Vec<u8>> {
    let value = match (data_type, bound) {
        (ColumnType::Bool, Bound::Bool(b)) => Value::Boolean(b),
        (ColumnType::Int64, Bound::Long(v)) => Value::Long(v),
        (ColumnType::Time64, Bound::Long(v)) => Value::TimeMicros(v),
        (ColumnType::Timestamp | ColumnType::TimestampUtc, Bound::Long(v)) => {
            Value::TimestampMicros(v)
        }
        (ColumnType::Date32, Bound::Int(v)) => Value::Date(v),
        (ColumnType::Float64, Bound::Double(v)) => Value::Double(v),
        (ColumnType::Utf8, Bound::Bytes(bytes)) => {
            let text = String::from_utf8(bytes).ok()?;
            Value::String(if upper {
                truncate_upper(&text)?
            } else {
                truncate_lower(&text)
            })
        }
        _ => return None,
    };
    single_value(&value)
}

/// The single-value binary serialization of a value of an Iceberg primitive type, as an
/// Avro value (Iceberg spec "Appendix D"; docs/contract.md section 8): int and date 4 bytes
/// little-endian, long, time and timestamps 8 bytes little-endian, string its UTF-8 bytes,
/// boolean one byte (0 or 1), float and double their IEEE 754 bits little-endian; an
/// optional field's union is looked into. The one encoding of both the data files' column
/// bounds ([`FileMetrics`]) and the manifest list's partition bounds. `None` for null or a
/// value of another type.
pub(crate) fn single_value(value: &Value) -> Option<Vec<u8>> {
    Some(match unwrap_union(value) {
        Value::Int(v) | Value::Date(v) => v.to_le_bytes().to_vec(),
        Value::Long(v)
        | Value::TimeMicros(v)
        | Value::TimestampMicros(v)
        | Value::LocalTimestampMicros(v) => v.to_le_bytes().to_vec(),
        Value::String(v) => v.as_bytes().to_vec(),
        Value::Boolean(v) => vec![u8::from(*v)],
        Value::Double(v) => v.to_le_bytes().to_vec(),
        Value::Float(v) => v.to_le_bytes().to_vec(),
        _ => return None,
    })
}

/// A lower bound of `text` with at most `TRUNCATE_CHARS` (16) code points: its prefix.
pub fn truncate_lower(text: &str) -> String {
    text.chars().take(TRUNCATE_CHARS).collect()
}

/// An upper bound of `text` with at most `TRUNCATE_CHARS` (16) code points: `text` itself when
/// short enough, else its prefix with the last code point that can be incremented
/// incremented (and what follows it dropped); `None` when no code point can be (every one
/// is `char::MAX`), as Iceberg's `truncate` metrics mode does.
pub fn truncate_upper(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= TRUNCATE_CHARS {
        return Some(text.to_owned());
    }
    let mut prefix: Vec<char> = chars[..TRUNCATE_CHARS].to_vec();
    while let Some(last) = prefix.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            code => char::from_u32(code),
        };
        if let Some(next) = next {
            prefix.push(next);
            return Some(prefix.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_bounds_are_the_single_values_partition_bounds_are() {
        let cases = [
            (
                ColumnType::Int64,
                Bound::Long(-2),
                vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            ),
            (
                ColumnType::Date32,
                Bound::Int(19_725),
                vec![0x0d, 0x4d, 0, 0],
            ),
            (
                ColumnType::Time64,
                Bound::Long(2),
                vec![2, 0, 0, 0, 0, 0, 0, 0],
            ),
            (
                ColumnType::Timestamp,
                Bound::Long(256),
                vec![0, 1, 0, 0, 0, 0, 0, 0],
            ),
            (
                ColumnType::TimestampUtc,
                Bound::Long(256),
                vec![0, 1, 0, 0, 0, 0, 0, 0],
            ),
            (
                ColumnType::Float64,
                Bound::Double(1.0),
                vec![0, 0, 0, 0, 0, 0, 0xf0, 0x3f],
            ),
            (ColumnType::Bool, Bound::Bool(true), vec![1]),
            (ColumnType::Utf8, Bound::Bytes("é".into()), vec![0xc3, 0xa9]),
        ];
        for (data_type, bound, bytes) in cases {
            assert_eq!(
                serialize(data_type, bound.clone(), false).as_deref(),
                Some(&bytes[..])
            );
            assert_eq!(
                serialize(data_type, bound, true).as_deref(),
                Some(&bytes[..])
            );
        }
        // a day is serialized alike as a column bound and as a partition value
        assert_eq!(
            serialize(ColumnType::Date32, Bound::Int(-1), false),
            single_value(&Value::Union(1, Box::new(Value::Date(-1))))
        );
        // a physical type that does not fit the column has no bound
        assert_eq!(serialize(ColumnType::Date32, Bound::Long(1), false), None);
        // strings are truncated to 16 code points, the upper bound rounded up
        let long = Bound::Bytes(b"abcdefghijklmnopqrstuvwxyz".to_vec());
        assert_eq!(
            serialize(ColumnType::Utf8, long.clone(), false).unwrap(),
            b"abcdefghijklmnop"
        );
        assert_eq!(
            serialize(ColumnType::Utf8, long, true).unwrap(),
            b"abcdefghijklmnoq"
        );
    }

    #[test]
    fn strings_truncate_to_16_code_points() {
        assert_eq!(truncate_lower("short"), "short");
        assert_eq!(truncate_upper("short").as_deref(), Some("short"));
        let long = "abcdefghijklmnopqrstuvwxyz";
        assert_eq!(truncate_lower(long), "abcdefghijklmnop");
        assert_eq!(truncate_upper(long).as_deref(), Some("abcdefghijklmnoq"));
        let accents = "éééééééééééééééééé";
        assert_eq!(truncate_lower(accents).chars().count(), 16);
        assert_eq!(
            truncate_upper(accents).unwrap(),
            format!("{}ê", "é".repeat(15))
        );
        let maxed: String = std::iter::repeat_n(char::MAX, 20).collect();
        assert_eq!(truncate_upper(&maxed), None);
        let mut tail: String = "a".repeat(15);
        tail.push(char::MAX);
        tail.push('z');
        assert_eq!(
            truncate_upper(&tail).unwrap(),
            format!("{}b", "a".repeat(14))
        );
    }
}
