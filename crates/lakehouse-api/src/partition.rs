//! What a partitioned dataset records (docs/contract.md section 10, "Partitioned datasets"):
//! its partition spec, in every version, and each data file's partition tuple, in its
//! [`ObjectRef`](crate::ObjectRef). The option's syntax, the transforms and their Iceberg
//! projection live in `lakehouse-iceberg`; these are only the recorded shapes.

use serde::{Deserialize, Serialize};

/// The partition spec of a dataset made with `partition_by` (docs/contract.md section 10):
/// recorded by its first version and kept by every later one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionSpec {
    /// The canonical `partition_by` text: items joined by `,`, no whitespace, identity as the
    /// bare column name (`day(ts),bucket(4,id)`). Two specs are the same when these are.
    pub partition_by: String,
    /// The partition fields, in the option's order.
    pub fields: Vec<PartitionSpecField>,
}

/// One field of a [`PartitionSpec`] (Iceberg spec: "Partitioning").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PartitionSpecField {
    /// Partition field id: 1000 for the first field, then 1001, ...
    pub field_id: i32,
    /// Partition field name: the column name for identity, else `<column>_day`,
    /// `<column>_bucket`, `<column>_trunc`, ...
    pub name: String,
    /// The source column's name.
    pub source: String,
    /// The transform in Iceberg's spelling: `identity`, `year`, `month`, `day`, `hour`,
    /// `bucket[N]`, `truncate[W]`.
    pub transform: String,
    /// The Iceberg type of the field's values: `int` (year, month, hour, bucket), `date`
    /// (day), or the source's type for identity and truncate (`long`, `string`, ...).
    pub result_type: String,
}

/// One value of a partition tuple, as the catalog records it: a number for `int`, `long`,
/// `date` (days since 1970-01-01), `time` and the timestamps (microseconds since the epoch),
/// `double`; a string for `string`; `true`/`false` for `boolean`. A null value is the
/// tuple's `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PartitionScalar {
    /// `boolean` (identity of a bool column).
    Bool(bool),
    /// `int`, `long`, `date`, `time`, `timestamp`, `timestamptz`.
    Int(i64),
    /// `double` (identity of a float64 column).
    Float(f64),
    /// `string`.
    Str(String),
}

impl Eq for PartitionScalar {}

impl std::hash::Hash for PartitionScalar {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            PartitionScalar::Bool(b) => b.hash(state),
            PartitionScalar::Int(i) => i.hash(state),
            PartitionScalar::Float(f) => f.to_bits().hash(state),
            PartitionScalar::Str(s) => s.hash(state),
        }
    }
}

/// A data file's partition tuple: one value per field of the dataset's [`PartitionSpec`], in
/// its order, `None` for null (docs/contract.md section 10: nulls go to the null partition).
pub type PartitionTuple = Vec<Option<PartitionScalar>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_are_json_arrays_of_plain_values() {
        let tuple: PartitionTuple = vec![
            Some(PartitionScalar::Int(19_725)),
            None,
            Some(PartitionScalar::Str("eu".into())),
            Some(PartitionScalar::Bool(true)),
            Some(PartitionScalar::Float(1.5)),
        ];
        let json = serde_json::to_string(&tuple).unwrap();
        assert_eq!(json, r#"[19725,null,"eu",true,1.5]"#);
        assert_eq!(
            serde_json::from_str::<PartitionTuple>(&json).unwrap(),
            tuple
        );
    }
}
