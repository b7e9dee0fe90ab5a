//! The one aggregation of a Parquet footer's column statistics over its row groups, for the
//! Iceberg projection's data-file metrics ([`crate::FileMetrics`]) and the catalog page's
//! column statistics alike: per column of a schema, the values, nulls and compressed bytes
//! summed over the row groups, and the least minimum and greatest maximum, as typed values
//! ([`Bound`]). Pure and synchronous: callers with a runtime run it on a blocking thread.

use lakehouse_api::Schema;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;

/// A minimum or maximum as the footer stores it, by Parquet physical type: `Int` for
/// `date32` (days since 1970-01-01), `Long` for `int64`, `time64[us]` and the timestamps
/// (microseconds), `Double` for `float64`, `Bytes` for `utf8` (UTF-8 bytes). Values of one
/// column are of one variant, so the derived order compares them as their type does.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Bound {
    /// A `BOOLEAN` value.
    Bool(bool),
    /// An `INT32` value.
    Int(i32),
    /// An `INT64` value.
    Long(i64),
    /// A `DOUBLE` value, never NaN.
    Double(f64),
    /// A `BYTE_ARRAY` value.
    Bytes(Vec<u8>),
}

/// One column of one Parquet file, summed over its row groups.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSummary {
    /// Compressed bytes of the column's chunks.
    pub size_bytes: u64,
    /// Values, nulls included (the row count).
    pub value_count: u64,
    /// Null values; `None` when a row group does not record its null count.
    pub null_count: Option<u64>,
    /// The least row-group minimum; `None` when there is no non-null value or a row group
    /// holding non-null values records no minimum and maximum (or a NaN one).
    pub lower: Option<Bound>,
    /// The greatest row-group maximum; `None` as for `lower`.
    pub upper: Option<Bound>,
}

/// Per field of `schema`, in order, its [`ColumnSummary`] in the file of `metadata`; `None`
/// for a column the file does not hold (added later by schema evolution). Columns are
/// matched by name (a top-level leaf of that name). Never panics.
pub fn column_summaries(metadata: &ParquetMetaData, schema: &Schema) -> Vec<Option<ColumnSummary>> {
    let descr = metadata.file_metadata().schema_descr();
    schema
        .fields
        .iter()
        .map(|field| {
            let leaf = (0..descr.num_columns())
                .find(|&j| descr.column(j).path().parts() == [field.name.as_str()])?;
            let mut acc = Accumulator::default();
            for row_group in metadata.row_groups() {
                let chunk = row_group.column(leaf);
                acc.add(
                    row_group.num_rows().max(0) as u64,
                    chunk.compressed_size().max(0) as u64,
                    chunk.statistics(),
                );
            }
            Some(acc.finish())
        })
        .collect()
}

/// A column's summary while row groups are folded in.
struct Accumulator {
    values: u64,
    nulls: Option<u64>,
    size: u64,
    lower: Option<Bound>,
    upper: Option<Bound>,
    bounds_known: bool,
}

impl Default for Accumulator {
    fn default() -> Self {
        Accumulator {
            values: 0,
            nulls: Some(0),
            size: 0,
            lower: None,
            upper: None,
            bounds_known: true,
        }
    }
}

impl Accumulator {
    fn add(&mut self, rows: u64, size: u64, statistics: Option<&Statistics>) {
        self.values += rows;
        self.size += size;
        let nulls = statistics.and_then(Statistics::null_count_opt);
        self.nulls = match (self.nulls, nulls) {
            (Some(total), Some(n)) => Some(total + n),
            _ => None,
        };
        if nulls == Some(rows) {
            return; // all null: no bounds needed from this row group
        }
        let Some((min, max)) = statistics.and_then(bounds_of) else {
            self.bounds_known = false;
            return;
        };
        if self.lower.as_ref().is_none_or(|lower| min < *lower) {
            self.lower = Some(min);
        }
        if self.upper.as_ref().is_none_or(|upper| max > *upper) {
            self.upper = Some(max);
        }
    }

    fn finish(self) -> ColumnSummary {
        let (lower, upper) = if self.bounds_known {
            (self.lower, self.upper)
        } else {
            (None, None)
        };
        ColumnSummary {
            size_bytes: self.size,
            value_count: self.values,
            null_count: self.nulls,
            lower,
            upper,
        }
    }
}

fn bounds_of(statistics: &Statistics) -> Option<(Bound, Bound)> {
    Some(match statistics {
        Statistics::Boolean(s) => (Bound::Bool(*s.min_opt()?), Bound::Bool(*s.max_opt()?)),
        Statistics::Int32(s) => (Bound::Int(*s.min_opt()?), Bound::Int(*s.max_opt()?)),
        Statistics::Int64(s) => (Bound::Long(*s.min_opt()?), Bound::Long(*s.max_opt()?)),
        Statistics::Double(s) => {
            let (min, max) = (*s.min_opt()?, *s.max_opt()?);
            if min.is_nan() || max.is_nan() {
                return None;
            }
            (Bound::Double(min), Bound::Double(max))
        }
        Statistics::ByteArray(s) => (
            Bound::Bytes(s.min_opt()?.data().to_vec()),
            Bound::Bytes(s.max_opt()?.data().to_vec()),
        ),
        Statistics::Int96(_) | Statistics::Float(_) | Statistics::FixedLenByteArray(_) => {
            return None;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema};
    use lakehouse_api::{ColumnType, Field};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::ParquetMetaDataReader;
    use parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    /// A Parquet file of two row groups: ids 5, null / -2, 9; names "m", "b" / null, null.
    fn two_row_groups() -> ParquetMetaData {
        let arrow = Arc::new(ArrowSchema::new(vec![
            ArrowField::new("id", DataType::Int64, true),
            ArrowField::new("name", DataType::Utf8, true),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let mut buf = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut buf, arrow.clone(), Some(props)).unwrap();
        let batch = RecordBatch::try_new(
            arrow,
            vec![
                Arc::new(Int64Array::from(vec![Some(5), None, Some(-2), Some(9)])),
                Arc::new(StringArray::from(vec![Some("m"), Some("b"), None, None])),
            ],
        )
        .unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        ParquetMetaDataReader::new()
            .parse_and_finish(&bytes::Bytes::from(buf))
            .unwrap()
    }

    #[test]
    fn row_groups_fold_into_one_summary_per_column() {
        let metadata = two_row_groups();
        assert_eq!(metadata.num_row_groups(), 2);
        let schema = Schema {
            fields: vec![
                Field::new("id", ColumnType::Int64),
                Field::new("name", ColumnType::Utf8),
                Field::new("added_later", ColumnType::Float64),
            ],
        };
        let summaries = column_summaries(&metadata, &schema);
        let id = summaries[0].as_ref().unwrap();
        assert_eq!(id.value_count, 4);
        assert_eq!(id.null_count, Some(1));
        assert_eq!(id.lower, Some(Bound::Long(-2)));
        assert_eq!(id.upper, Some(Bound::Long(9)));
        assert!(id.size_bytes > 0);
        // The second row group is all null: the bounds come from the first alone.
        let name = summaries[1].as_ref().unwrap();
        assert_eq!(name.null_count, Some(2));
        assert_eq!(name.lower, Some(Bound::Bytes(b"b".to_vec())));
        assert_eq!(name.upper, Some(Bound::Bytes(b"m".to_vec())));
        assert_eq!(summaries[2], None);
    }
}
