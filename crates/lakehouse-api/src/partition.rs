//! What a partitioned dataset records (docs/contract.md section 10, "Partitioned datasets"):
//! its partition spec, in every version, and each data file's partition tuple, in its
//! [`ObjectRef`](crate::ObjectRef). The option's syntax, the transforms and their Iceberg
//! projection live in `lakehouse-iceberg`; these are only the recorded shapes.

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

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
///
/// Two values are equal when they are the same variant and, for `Float`, the same bits
/// (`f64::to_bits`), as they hash: `NaN` equals itself and `-0.0` is not `0.0`, so every
/// distinct value is one partition (docs/contract.md section 10).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PartitionScalar {
    /// `boolean` (identity of a bool column).
    Bool(bool),
    /// `int`, `long`, `date`, `time`, `timestamp`, `timestamptz`.
    Int(i64),
    /// `double` (identity of a float64 column, held only by versions recorded before
    /// `partition_by` refused it: docs/contract.md section 10).
    Float(f64),
    /// `string`.
    Str(String),
}

impl PartialEq for PartitionScalar {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PartitionScalar::Bool(a), PartitionScalar::Bool(b)) => a == b,
            (PartitionScalar::Int(a), PartitionScalar::Int(b)) => a == b,
            (PartitionScalar::Float(a), PartitionScalar::Float(b)) => a.to_bits() == b.to_bits(),
            (PartitionScalar::Str(a), PartitionScalar::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for PartitionScalar {}

/// The order of partition values (docs/contract.md section 10: objects are listed in
/// partition order): by value within a variant (`false` before `true`, integers
/// numerically, floats by `f64::total_cmp`, strings by their UTF-8 bytes), and across
/// variants `Bool`, `Int`, `Float`, `Str` (values of one field are all of one variant). As
/// `Option<PartitionScalar>`, null comes first. Consistent with equality: two floats are
/// ordered equal exactly when their bits are.
impl Ord for PartitionScalar {
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |v: &PartitionScalar| match v {
            PartitionScalar::Bool(_) => 0,
            PartitionScalar::Int(_) => 1,
            PartitionScalar::Float(_) => 2,
            PartitionScalar::Str(_) => 3,
        };
        match (self, other) {
            (PartitionScalar::Bool(a), PartitionScalar::Bool(b)) => a.cmp(b),
            (PartitionScalar::Int(a), PartitionScalar::Int(b)) => a.cmp(b),
            (PartitionScalar::Float(a), PartitionScalar::Float(b)) => a.total_cmp(b),
            (PartitionScalar::Str(a), PartitionScalar::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for PartitionScalar {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

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

impl PartitionSpec {
    /// A partition tuple for people: `name=value` per field, joined by `, `, each value as
    /// its transform means it (docs/contract.md section 10): a day as `2024-02-29`, a month
    /// as `2024-02`, a year as `2024`, an hour as `2024-02-29T13`, a timestamp identity in
    /// RFC 3339, a time identity as `HH:MM:SS[.ffffff]`, a bucket as its number, a string as
    /// it is, null as `null`. Panics: none.
    pub fn label(&self, tuple: &PartitionTuple) -> String {
        let mut out = String::new();
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&field.name);
            out.push('=');
            out.push_str(&field.value_label(tuple.get(i).and_then(Option::as_ref)));
        }
        out
    }
}

impl PartitionSpecField {
    /// One value of this field for people (see [`PartitionSpec::label`]). Panics: none.
    pub fn value_label(&self, value: Option<&PartitionScalar>) -> String {
        let Some(value) = value else {
            return "null".to_owned();
        };
        let epoch = chrono::DateTime::UNIX_EPOCH;
        let int = match value {
            PartitionScalar::Int(i) => *i,
            PartitionScalar::Bool(b) => return b.to_string(),
            PartitionScalar::Float(f) => return f.to_string(),
            PartitionScalar::Str(s) => return s.clone(),
        };
        let shown = match (self.transform.as_str(), self.result_type.as_str()) {
            ("year", _) => Some(format!("{}", 1970 + int)),
            ("month", _) => Some(format!(
                "{:04}-{:02}",
                1970 + int.div_euclid(12),
                int.rem_euclid(12) + 1
            )),
            ("hour", _) => epoch
                .checked_add_signed(chrono::TimeDelta::hours(int))
                .map(|t| t.format("%Y-%m-%dT%H").to_string()),
            (_, "date") => epoch
                .checked_add_signed(chrono::TimeDelta::days(int))
                .map(|t| t.format("%Y-%m-%d").to_string()),
            (_, "time") => time_of_day(int),
            (_, "timestamp" | "timestamptz") => epoch
                .checked_add_signed(chrono::TimeDelta::microseconds(int))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
            _ => None,
        };
        shown.unwrap_or_else(|| int.to_string())
    }
}

/// Microseconds since midnight as `HH:MM:SS`, with `.ffffff` when not a whole second;
/// `None` outside one day.
fn time_of_day(micros: i64) -> Option<String> {
    let seconds = u32::try_from(micros.div_euclid(1_000_000)).ok()?;
    let fraction = micros.rem_euclid(1_000_000) as u32;
    let time = chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds, fraction * 1000)?;
    Some(if fraction == 0 {
        time.format("%H:%M:%S").to_string()
    } else {
        time.format("%H:%M:%S%.6f").to_string()
    })
}

/// How a dataset's partitioning is named in a message (docs/contract.md section 10): its
/// canonical `partition_by` in backquotes, or "nothing (unpartitioned)". Panics: none.
pub fn partition_by_text(partition_by: Option<&str>) -> String {
    match partition_by {
        Some(text) => format!("`{text}`"),
        None => "nothing (unpartitioned)".to_owned(),
    }
}

/// A data file's partition tuple: one value per field of the dataset's [`PartitionSpec`], in
/// its order, `None` for null (docs/contract.md section 10: nulls go to the null partition).
pub type PartitionTuple = Vec<Option<PartitionScalar>>;

/// The order of partition tuples, the one order of partitions (docs/contract.md section 10:
/// a version lists its objects in partition order; Iceberg's partition summaries take their
/// bounds by it): field by field, null first, then by value as [`PartitionScalar`]'s `Ord`
/// says (numbers numerically, floats by `f64::total_cmp`, strings by their bytes); a tuple
/// that is a prefix of the other first. Panics: none.
pub fn compare_tuples(a: &[Option<PartitionScalar>], b: &[Option<PartitionScalar>]) -> Ordering {
    a.cmp(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_as_the_transforms_mean() {
        let field = |name: &str, transform: &str, result_type: &str| PartitionSpecField {
            field_id: 1000,
            name: name.into(),
            source: "ts".into(),
            transform: transform.into(),
            result_type: result_type.into(),
        };
        let spec = PartitionSpec {
            partition_by: "day(ts),month(ts),year(ts),hour(ts),bucket(4,id),region".into(),
            fields: vec![
                field("ts_day", "day", "date"),
                field("ts_month", "month", "int"),
                field("ts_year", "year", "int"),
                field("ts_hour", "hour", "int"),
                field("id_bucket", "bucket[4]", "int"),
                field("region", "identity", "string"),
            ],
        };
        let tuple = vec![
            Some(PartitionScalar::Int(19_782)),
            Some(PartitionScalar::Int(-1)),
            Some(PartitionScalar::Int(54)),
            Some(PartitionScalar::Int(-1)),
            Some(PartitionScalar::Int(3)),
            None,
        ];
        assert_eq!(
            spec.label(&tuple),
            "ts_day=2024-02-29, ts_month=1969-12, ts_year=2024, ts_hour=1969-12-31T23, \
             id_bucket=3, region=null"
        );
    }

    #[test]
    fn a_time_identity_reads_as_a_time_of_day() {
        let at = PartitionSpecField {
            field_id: 1000,
            name: "at".into(),
            source: "at".into(),
            transform: "identity".into(),
            result_type: "time".into(),
        };
        let label = |micros| at.value_label(Some(&PartitionScalar::Int(micros)));
        assert_eq!(label(45_296_000_000), "12:34:56");
        assert_eq!(label(45_296_000_001), "12:34:56.000001");
        assert_eq!(label(0), "00:00:00");
        assert_eq!(label(86_399_999_999), "23:59:59.999999");
        // not a time of day: shown as the number it is
        assert_eq!(label(86_400_000_000), "86400000000");
        assert_eq!(label(-1), "-1");
    }

    #[test]
    fn float_values_are_equal_when_their_bits_are() {
        use std::collections::HashSet;
        let nan = PartitionScalar::Float(f64::NAN);
        assert_eq!(nan, nan.clone());
        assert_ne!(PartitionScalar::Float(0.0), PartitionScalar::Float(-0.0));
        // one partition per distinct value: NaN once, and 0.0 apart from -0.0
        let tuples: HashSet<PartitionTuple> = [f64::NAN, f64::NAN, 0.0, -0.0, 0.0]
            .into_iter()
            .map(|f| vec![Some(PartitionScalar::Float(f))])
            .collect();
        assert_eq!(tuples.len(), 3);
    }

    #[test]
    fn tuples_order_null_first_then_by_value() {
        let int = |v| Some(PartitionScalar::Int(v));
        let float = |v| Some(PartitionScalar::Float(v));
        let text = |v: &str| Some(PartitionScalar::Str(v.into()));
        let mut tuples: Vec<PartitionTuple> = vec![
            vec![int(3), text("b")],
            vec![None, text("z")],
            vec![int(-1), text("a")],
            vec![int(3), text("a")],
            vec![int(3), None],
            vec![int(10), text("a")],
        ];
        tuples.sort_by(|a, b| compare_tuples(a, b));
        assert_eq!(
            tuples,
            vec![
                vec![None, text("z")],
                vec![int(-1), text("a")],
                vec![int(3), None],
                vec![int(3), text("a")],
                vec![int(3), text("b")],
                vec![int(10), text("a")],
            ]
        );
        // floats in IEEE total order: -inf, -0.0, 0.0, 1.5, inf, NaN
        let mut floats: Vec<PartitionTuple> = [f64::NAN, 1.5, 0.0, f64::INFINITY, -0.0]
            .into_iter()
            .chain([f64::NEG_INFINITY])
            .map(|f| vec![float(f)])
            .collect();
        floats.sort_by(|a, b| compare_tuples(a, b));
        let shown: Vec<String> = floats
            .iter()
            .map(|t| match &t[0] {
                Some(PartitionScalar::Float(f)) => f.to_string(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(shown, ["-inf", "-0", "0", "1.5", "inf", "NaN"]);
        // strings by their UTF-8 bytes: upper case before lower case, accents after both
        let mut words = vec![text("é"), text("b"), text("B"), text("a")];
        words.sort();
        assert_eq!(words, vec![text("B"), text("a"), text("b"), text("é")]);
        // a shorter tuple first when it is a prefix of the other
        assert_eq!(
            compare_tuples(&[int(1)], &[int(1), None]),
            std::cmp::Ordering::Less
        );
    }

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
