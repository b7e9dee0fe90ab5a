//! Partition transforms (Iceberg spec: "Partitioning", "Partition Transforms", "Bucket
//! Transform Details", "Truncate Transform Details", "Appendix B: 32-bit Hash
//! Requirements"), for a future `partition_by` dataset option. Not wired into the projection
//! yet: tables stay unpartitioned (module `spec`).
//!
//! Three steps, each a pure function:
//! - [`PartitionBy::parse`] reads the option string (`day(ts), bucket(16, id)`) and
//!   [`PartitionBy`]'s `Display` writes its canonical form back (`day(ts),bucket(16,id)`);
//! - [`PartitionBy::bind`] checks it against the dataset's [`Schema`] and gives the Iceberg
//!   partition spec's fields ([`SpecField`]: field ids from 1000, names, result types);
//! - [`Transform::apply_i64`], [`Transform::apply_date`] and [`Transform::apply_str`] give
//!   the partition value of one source value.

use crate::{IcebergError, Result, iceberg_type};
use lakehouse_api::{ColumnType, Schema};
use serde::{Serialize, Serializer};
use std::fmt;

/// The first partition field id (Iceberg spec: "Partitioning"; Java's `PartitionSpec`
/// assigns ids from 1000 so they never collide with column ids).
pub const FIRST_PARTITION_FIELD_ID: i32 = 1000;

/// The largest bucket count or truncation width: Iceberg stores both as a Java `int`.
pub const MAX_PARAMETER: u32 = i32::MAX as u32;

/// A partition transform (Iceberg spec: "Partition Transforms"). `void` is left out: it
/// only serves partition evolution, which this crate does not do.
///
/// `Display` gives the transform's name in Iceberg's JSON (Iceberg spec: "Appendix C",
/// partition specs): `identity`, `year`, `month`, `day`, `hour`, `bucket[N]`,
/// `truncate[W]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transform {
    /// The source value, unmodified.
    Identity,
    /// Years from 1970 (1969 is -1).
    Year,
    /// Months from 1970-01 (1969-12 is -1).
    Month,
    /// Days from 1970-01-01 (1969-12-31 is -1).
    Day,
    /// Hours from 1970-01-01T00:00 (1969-12-31T23:00 is -1).
    Hour,
    /// `(murmur3_x86_32(value) & i32::MAX) % N`, N in 1..=[`MAX_PARAMETER`].
    Bucket(u32),
    /// Integers rounded down to a multiple of W, strings cut to W code points; W in
    /// 1..=[`MAX_PARAMETER`].
    Truncate(u32),
}

impl Transform {
    /// The option syntax's name of the transform (`identity`, `bucket`, ...), without its
    /// parameter. Panics: none.
    pub fn keyword(self) -> &'static str {
        match self {
            Transform::Identity => "identity",
            Transform::Year => "year",
            Transform::Month => "month",
            Transform::Day => "day",
            Transform::Hour => "hour",
            Transform::Bucket(_) => "bucket",
            Transform::Truncate(_) => "truncate",
        }
    }

    /// Whether the transform takes a column of type `source` (Iceberg spec: "Partition
    /// Transforms", column "Source types", mapped through [`iceberg_type`]): identity any
    /// type; bucket `long`, `date`, `time`, `timestamp`, `timestamptz` and `string` (not
    /// `boolean` or `double`: Appendix B says they are not valid for bucketing); truncate
    /// `long` and `string`; year, month and day `date` and the timestamps; hour the
    /// timestamps only. Panics: none.
    pub fn accepts(self, source: ColumnType) -> bool {
        use ColumnType as C;
        match self {
            Transform::Identity => true,
            Transform::Bucket(_) => matches!(
                source,
                C::Int64 | C::Date32 | C::Time64 | C::Timestamp | C::TimestampUtc | C::Utf8
            ),
            Transform::Truncate(_) => matches!(source, C::Int64 | C::Utf8),
            Transform::Year | Transform::Month | Transform::Day => {
                matches!(source, C::Date32 | C::Timestamp | C::TimestampUtc)
            }
            Transform::Hour => matches!(source, C::Timestamp | C::TimestampUtc),
        }
    }

    /// The Iceberg type of the partition values made from a `source` column (Iceberg spec:
    /// "Partition Transforms", column "Result type"): the source type for identity and
    /// truncate, `date` for day (the spec's table; Java's `Days` says the same; readers
    /// also accept `int`), `int` for the others. Only meaningful when
    /// [`Transform::accepts`] `source`. Panics: none.
    pub fn result_type(self, source: ColumnType) -> &'static str {
        match self {
            Transform::Identity | Transform::Truncate(_) => iceberg_type(source),
            Transform::Day => "date",
            Transform::Year | Transform::Month | Transform::Hour | Transform::Bucket(_) => "int",
        }
    }

    /// The partition field's name for a source column (Java's `PartitionSpec.Builder`
    /// defaults, which Spark's `PARTITIONED BY` uses): identity the column name,
    /// `<col>_year`, `<col>_month`, `<col>_day`, `<col>_hour`, `<col>_bucket`,
    /// `<col>_trunc`. The parameter is not part of the name, so two buckets of one column
    /// clash (see [`PartitionBy::bind`]). Panics: none.
    pub fn field_name(self, source: &str) -> String {
        let suffix = match self {
            Transform::Identity => return source.to_owned(),
            Transform::Year => "year",
            Transform::Month => "month",
            Transform::Day => "day",
            Transform::Hour => "hour",
            Transform::Bucket(_) => "bucket",
            Transform::Truncate(_) => "trunc",
        };
        format!("{source}_{suffix}")
    }

    /// The partition value of an `i64` source value: an `int64`, a `time64[us]` or a
    /// timestamp in microseconds since the epoch. Year, month, day and hour read it as a
    /// timestamp (flooring before 1970); identity and truncate give a [`PartitionValue::Long`],
    /// bucket an [`PartitionValue::Int`] (the value hashed as a long, Appendix B), day a
    /// [`PartitionValue::Date`]. Hours, months and years beyond `i32` (more than about
    /// 245,000 years from 1970) wrap as Java's `(int)` narrowing does. Panics: none.
    pub fn apply_i64(self, value: i64) -> PartitionValue<'static> {
        match self {
            Transform::Identity => PartitionValue::Long(value),
            Transform::Year => PartitionValue::Int(micros_to_year(value)),
            Transform::Month => PartitionValue::Int(micros_to_month(value)),
            Transform::Day => PartitionValue::Date(micros_to_day(value)),
            Transform::Hour => PartitionValue::Int(micros_to_hour(value)),
            Transform::Bucket(n) => PartitionValue::Int(bucket_i64(value, n)),
            Transform::Truncate(w) => PartitionValue::Long(truncate_i64(value, w)),
        }
    }

    /// The partition value of a `date32` source value (days since 1970-01-01), or `None`
    /// for a transform that does not take dates (hour, truncate). Identity and day give a
    /// [`PartitionValue::Date`], year and month an [`PartitionValue::Int`], bucket the day
    /// count hashed as a long (Appendix B: `hashInt`, which is `hashLong`). Panics: none.
    pub fn apply_date(self, days: i32) -> Option<PartitionValue<'static>> {
        Some(match self {
            Transform::Identity | Transform::Day => PartitionValue::Date(days),
            Transform::Year => PartitionValue::Int(days_to_year(days)),
            Transform::Month => PartitionValue::Int(days_to_month(days)),
            Transform::Bucket(n) => PartitionValue::Int(bucket_i64(i64::from(days), n)),
            Transform::Hour | Transform::Truncate(_) => return None,
        })
    }

    /// The partition value of a `utf8` source value, or `None` for a transform that does not
    /// take strings (year, month, day, hour). Identity gives the value, truncate its first
    /// W code points (both [`PartitionValue::Str`], borrowed from `value`), bucket the hash
    /// of its UTF-8 bytes. Panics: none.
    pub fn apply_str(self, value: &str) -> Option<PartitionValue<'_>> {
        Some(match self {
            Transform::Identity => PartitionValue::Str(value),
            Transform::Truncate(w) => PartitionValue::Str(truncate_str(value, w)),
            Transform::Bucket(n) => PartitionValue::Int(bucket_str(value, n)),
            Transform::Year | Transform::Month | Transform::Day | Transform::Hour => return None,
        })
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Bucket(n) => write!(f, "bucket[{n}]"),
            Transform::Truncate(w) => write!(f, "truncate[{w}]"),
            other => f.write_str(other.keyword()),
        }
    }
}

/// Serialized as its Iceberg JSON name (`Display`).
impl Serialize for Transform {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A partition value made by a transform, in Iceberg terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionValue<'a> {
    /// An Iceberg `int`: year, month, hour and bucket results.
    Int(i32),
    /// An Iceberg `long` (or `time`, `timestamp`, `timestamptz` in microseconds): identity
    /// and truncate of an `i64` source.
    Long(i64),
    /// An Iceberg `date`, days since 1970-01-01: day results, identity of a date.
    Date(i32),
    /// An Iceberg `string`: identity and truncate of a string.
    Str(&'a str),
}

/// One item of `partition_by`: a source column and its transform.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionField {
    /// The dataset column's name, as in the schema.
    pub source: String,
    /// The transform applied to it.
    pub transform: Transform,
}

/// The option syntax of one item: the bare column name for identity, `day(ts)`,
/// `bucket(16,id)`, `truncate(4,name)`.
impl fmt::Display for PartitionField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.transform {
            Transform::Identity => f.write_str(&self.source),
            Transform::Bucket(p) | Transform::Truncate(p) => {
                write!(f, "{}({p},{})", self.transform.keyword(), self.source)
            }
            other => write!(f, "{}({})", other.keyword(), self.source),
        }
    }
}

/// The parsed `partition_by` option: its items in order (at least one).
///
/// Syntax: a comma-separated list of items, each `col`, `identity(col)`, `year(col)`,
/// `month(col)`, `day(col)`, `hour(col)`, `bucket(N,col)` or `truncate(W,col)`, with
/// whitespace allowed around every token; N and W are decimal integers from 1 to
/// 2,147,483,647 (Iceberg's `int`). Transform names are lowercase. A column name is taken
/// as written, trimmed of surrounding whitespace; one with a comma or a parenthesis, or
/// with leading or trailing whitespace, cannot be written here.
///
/// `Display` gives the canonical form: items joined by `,` with no whitespace, identity as
/// the bare column name (`day(ts),bucket(16,id),region`). Parsing it gives the same value,
/// so two specs compare by their canonical text, which also names them in error messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionBy {
    /// The items in order.
    pub fields: Vec<PartitionField>,
}

impl fmt::Display for PartitionBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{field}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for PartitionBy {
    type Err = IcebergError;

    fn from_str(text: &str) -> Result<Self> {
        PartitionBy::parse(text)
    }
}

/// One field of the Iceberg partition spec a [`PartitionBy`] makes (Iceberg spec:
/// "Partitioning"; serialized as in "Appendix C": `{"source-id": 3, "field-id": 1000,
/// "name": "ts_day", "transform": "day"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SpecField {
    /// Field id of the source column: its position in the schema + 1 (docs/contract.md
    /// section 8, as the projection's schemas number columns).
    pub source_id: i32,
    /// [`FIRST_PARTITION_FIELD_ID`] + the item's position.
    pub field_id: i32,
    /// [`Transform::field_name`] of the source column.
    pub name: String,
    /// The transform.
    pub transform: Transform,
    /// [`Transform::result_type`] of the source column (not serialized: the spec's JSON
    /// leaves it to the reader).
    #[serde(skip)]
    pub result_type: &'static str,
}

impl PartitionBy {
    /// Parses a `partition_by` option (syntax in the type's docs).
    ///
    /// Errors: [`IcebergError::PartitionSyntax`], naming the item's text, its 1-based
    /// number and its byte offset in `text`, for an empty option or item, an unknown
    /// transform, a missing or unmatched parenthesis, a wrong number of arguments, an empty
    /// column name, or a bucket count or width that is not an integer from 1 to
    /// [`MAX_PARAMETER`]. Panics: none.
    pub fn parse(text: &str) -> Result<PartitionBy> {
        let fields = split_items(text)
            .into_iter()
            .enumerate()
            .map(|(i, (offset, raw))| {
                let item = raw.trim();
                let offset = offset + (raw.len() - raw.trim_start().len());
                parse_item(item).map_err(|reason| IcebergError::PartitionSyntax {
                    item: item.to_owned(),
                    number: i + 1,
                    offset,
                    reason,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(PartitionBy { fields })
    }

    /// Checks the items against the dataset's schema and gives the Iceberg partition spec's
    /// fields, in order, with field ids from [`FIRST_PARTITION_FIELD_ID`].
    ///
    /// Errors, each naming the item in canonical form:
    /// - [`IcebergError::PartitionColumn`]: the column is not in `schema`;
    /// - [`IcebergError::PartitionType`]: the transform does not take the column's type
    ///   ([`Transform::accepts`]), naming the column, its type and the transform;
    /// - [`IcebergError::PartitionDuplicate`]: an item repeats an earlier one (same column,
    ///   same transform);
    /// - [`IcebergError::PartitionName`]: two items would get the same partition field name
    ///   (`bucket(16,id)` and `bucket(8,id)` are both `id_bucket`), or a non-identity
    ///   item's name is a column of the schema (a column `ts_day` and `day(ts)`), both of
    ///   which Java's `PartitionSpec.Builder` refuses too.
    ///
    /// Two time transforms of one column (`year(ts),day(ts)`) are accepted, though Java's
    /// builder calls them redundant. Panics: none.
    pub fn bind(&self, schema: &Schema) -> Result<Vec<SpecField>> {
        let mut spec: Vec<SpecField> = Vec::with_capacity(self.fields.len());
        for (i, field) in self.fields.iter().enumerate() {
            let Some(position) = schema.fields.iter().position(|c| c.name == field.source) else {
                return Err(IcebergError::PartitionColumn {
                    item: field.to_string(),
                    column: field.source.clone(),
                });
            };
            let column_type = schema.fields[position].data_type;
            if !field.transform.accepts(column_type) {
                return Err(IcebergError::PartitionType {
                    item: field.to_string(),
                    column: field.source.clone(),
                    column_type,
                    transform: field.transform.keyword(),
                });
            }
            if self.fields[..i].contains(field) {
                return Err(IcebergError::PartitionDuplicate {
                    item: field.to_string(),
                });
            }
            let name = field.transform.field_name(&field.source);
            if let Some(j) = spec.iter().position(|s| s.name == name) {
                return Err(IcebergError::PartitionName {
                    item: field.to_string(),
                    name,
                    other: format!("partition item `{}`", self.fields[j]),
                });
            }
            if field.transform != Transform::Identity && schema.names().any(|c| c == name) {
                return Err(IcebergError::PartitionName {
                    item: field.to_string(),
                    name: name.clone(),
                    other: format!("column `{name}`"),
                });
            }
            spec.push(SpecField {
                source_id: position as i32 + 1,
                field_id: FIRST_PARTITION_FIELD_ID + i as i32,
                name,
                transform: field.transform,
                result_type: field.transform.result_type(column_type),
            });
        }
        Ok(spec)
    }

    /// [`PartitionBy::bind`], as the catalog records it: the canonical text and the fields
    /// with their source column's name, the transform and result type in Iceberg's
    /// spelling (docs/contract.md section 10).
    ///
    /// # Errors
    /// As [`PartitionBy::bind`], and [`IcebergError::PartitionFloatIdentity`] for the
    /// identity of a `float64` column, which Iceberg allows but the recorded tuple cannot
    /// hold (JSON has no NaN or infinity: docs/contract.md section 10). Panics: none.
    pub fn spec(&self, schema: &Schema) -> Result<lakehouse_api::PartitionSpec> {
        let bound = self.bind(schema)?;
        if let Some(field) = self.fields.iter().find(|field| {
            field.transform == Transform::Identity
                && schema
                    .fields
                    .iter()
                    .any(|c| c.name == field.source && c.data_type == ColumnType::Float64)
        }) {
            return Err(IcebergError::PartitionFloatIdentity {
                item: field.to_string(),
                column: field.source.clone(),
            });
        }
        let fields = bound
            .into_iter()
            .zip(&self.fields)
            .map(|(bound, field)| lakehouse_api::PartitionSpecField {
                field_id: bound.field_id,
                name: bound.name,
                source: field.source.clone(),
                transform: bound.transform.to_string(),
                result_type: bound.result_type.to_owned(),
            })
            .collect();
        Ok(lakehouse_api::PartitionSpec {
            partition_by: self.to_string(),
            fields,
        })
    }
}

/// Splits at the commas outside parentheses: (byte offset, raw item) pairs. A `)` with no
/// open `(` does not go below depth 0; the item parser reports it.
fn split_items(text: &str) -> Vec<(usize, &str)> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push((start, &text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push((start, &text[start..]));
    items
}

/// Parses one trimmed item; the error is the reason only.
fn parse_item(item: &str) -> std::result::Result<PartitionField, String> {
    if item.is_empty() {
        return Err("empty item".into());
    }
    let Some(open) = item.find('(') else {
        if item.contains(')') {
            return Err("`)` without `(`".into());
        }
        return Ok(PartitionField {
            source: item.to_owned(),
            transform: Transform::Identity,
        });
    };
    let keyword = item[..open].trim();
    let Some(inner) = item[open + 1..].strip_suffix(')') else {
        return Err("expected `)` at the end".into());
    };
    if inner.contains('(') || inner.contains(')') {
        return Err("unexpected parenthesis inside the arguments".into());
    }
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let column = |arg: &str| -> std::result::Result<String, String> {
        if arg.is_empty() {
            Err("empty column name".into())
        } else {
            Ok(arg.to_owned())
        }
    };
    let simple = match keyword {
        "identity" => Some(Transform::Identity),
        "year" => Some(Transform::Year),
        "month" => Some(Transform::Month),
        "day" => Some(Transform::Day),
        "hour" => Some(Transform::Hour),
        "bucket" | "truncate" => None,
        "" => return Err("missing transform name before `(`".into()),
        other => {
            return Err(format!(
                "unknown transform `{other}` (expected identity, year, month, day, hour, \
                 bucket or truncate)"
            ));
        }
    };
    match (simple, args.as_slice()) {
        (Some(transform), [arg]) => Ok(PartitionField {
            source: column(arg)?,
            transform,
        }),
        (Some(_), _) => Err(format!("{keyword} takes one argument, a column")),
        (None, [parameter, arg]) => {
            let what = if keyword == "bucket" {
                "bucket count N"
            } else {
                "width W"
            };
            let value = parse_parameter(parameter).ok_or_else(|| {
                format!("{what} `{parameter}` is not an integer from 1 to {MAX_PARAMETER}")
            })?;
            let transform = if keyword == "bucket" {
                Transform::Bucket(value)
            } else {
                Transform::Truncate(value)
            };
            Ok(PartitionField {
                source: column(arg)?,
                transform,
            })
        }
        (None, _) => Err(format!(
            "{keyword} takes two arguments: {keyword}({},column)",
            if keyword == "bucket" { "N" } else { "W" }
        )),
    }
}

/// A decimal integer in 1..=MAX_PARAMETER (ASCII digits only, no sign).
fn parse_parameter(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u64 = text.parse().ok()?;
    (1..=u64::from(MAX_PARAMETER))
        .contains(&value)
        .then_some(value as u32)
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a timestamp in microseconds, flooring (-1 µs is day -1).
/// Iceberg spec: "Partition Transforms", `day`. Panics: none (every `i64` of microseconds
/// is within ±107 million days).
pub fn micros_to_day(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_DAY) as i32
}

/// Hours since 1970-01-01T00:00 of a timestamp in microseconds, flooring (-1 µs is hour
/// -1). Iceberg spec: "Partition Transforms", `hour`. Beyond ±245,000 years the hour count
/// leaves `i32` and wraps, as Java's `(int)` narrowing does. Panics: none.
pub fn micros_to_hour(micros: i64) -> i32 {
    micros.div_euclid(MICROS_PER_HOUR) as i32
}

/// Months since 1970-01 of a timestamp in microseconds (1969-12 is -1). Iceberg spec:
/// "Partition Transforms", `month`. Panics: none.
pub fn micros_to_month(micros: i64) -> i32 {
    let (year, month) = civil_from_days(micros.div_euclid(MICROS_PER_DAY));
    ((year - 1970) * 12 + month - 1) as i32
}

/// Years since 1970 of a timestamp in microseconds (1969 is -1). Iceberg spec: "Partition
/// Transforms", `year`. Panics: none.
pub fn micros_to_year(micros: i64) -> i32 {
    (civil_from_days(micros.div_euclid(MICROS_PER_DAY)).0 - 1970) as i32
}

/// Months since 1970-01 of a date in days since 1970-01-01 (day -1 is month -1). Iceberg
/// spec: "Partition Transforms", `month`. Panics: none.
pub fn days_to_month(days: i32) -> i32 {
    let (year, month) = civil_from_days(i64::from(days));
    ((year - 1970) * 12 + month - 1) as i32
}

/// Years since 1970 of a date in days since 1970-01-01 (day -1 is year -1). Iceberg spec:
/// "Partition Transforms", `year`. Panics: none.
pub fn days_to_year(days: i32) -> i32 {
    (civil_from_days(i64::from(days)).0 - 1970) as i32
}

/// (year, month 1..=12) of the proleptic Gregorian date `days` after 1970-01-01, by eras of
/// 400 years (146,097 days), as in H. Hinnant's "chrono-Compatible Low-Level Date
/// Algorithms". Exact for any `|days| < 2^60`.
fn civil_from_days(days: i64) -> (i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month from March, 0..=11
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month)
}

/// The 32-bit Murmur3 hash, x86 variant, seed 0, of `bytes`, as Java's signed `int`.
/// Iceberg spec: "Appendix B: 32-bit Hash Requirements" (`hashBytes`). Panics: none.
pub fn hash_bytes(bytes: &[u8]) -> i32 {
    let mut reader = bytes;
    // Reading from a byte slice cannot fail, so the `Err` arm is never taken.
    murmur3::murmur3_32(&mut reader, 0).unwrap_or(0) as i32
}

/// The Iceberg hash of an `int`, `long`, `date` (days), `time` (microseconds since
/// midnight) or timestamp (microseconds since the epoch): the 8 little-endian bytes of the
/// value as a long. Iceberg spec: "Appendix B: 32-bit Hash Requirements" (`hashLong`;
/// `34` gives 2017239379). Panics: none.
pub fn hash_i64(value: i64) -> i32 {
    hash_bytes(&value.to_le_bytes())
}

/// The Iceberg hash of a string: its UTF-8 bytes. Iceberg spec: "Appendix B: 32-bit Hash
/// Requirements" (`iceberg` gives 1210000089). Panics: none.
pub fn hash_str(value: &str) -> i32 {
    hash_bytes(value.as_bytes())
}

/// `(hash & i32::MAX) % n`, in `0..n` (Iceberg spec: "Bucket Transform Details"); `n` is 1
/// or more ([`PartitionBy::parse`] refuses 0; 0 here gives 0 rather than dividing by zero).
fn bucket_of(hash: i32, n: u32) -> i32 {
    match (hash & i32::MAX) as u32 {
        positive if n > 0 => (positive % n) as i32,
        _ => 0,
    }
}

/// The bucket in `0..n` of an `i64` (int64, date days, time or timestamp microseconds),
/// hashed by [`hash_i64`]. Iceberg spec: "Bucket Transform Details". Panics: none.
pub fn bucket_i64(value: i64, n: u32) -> i32 {
    bucket_of(hash_i64(value), n)
}

/// The bucket in `0..n` of a string, hashed by [`hash_str`]. Iceberg spec: "Bucket
/// Transform Details". Panics: none.
pub fn bucket_str(value: &str, n: u32) -> i32 {
    bucket_of(hash_str(value), n)
}

/// `value` rounded down to a multiple of `width`: `v - (((v % W) + W) % W)`, so
/// truncate(10, -1) is -10 (Iceberg spec: "Truncate Transform Details"). A width of 0
/// ([`PartitionBy::parse`] refuses it) gives `value`. Within `width` of `i64::MIN` the true
/// result is below `i64::MIN` and wraps, as Java's `long` arithmetic does. Panics: none.
pub fn truncate_i64(value: i64, width: u32) -> i64 {
    if width == 0 {
        return value;
    }
    let w = i64::from(width);
    value.wrapping_sub(((value % w) + w) % w)
}

/// The first `width` Unicode code points of `value` (all of it when shorter), never
/// cutting a character (Iceberg spec: "Truncate Transform Details", note 3). Panics: none.
pub fn truncate_str(value: &str, width: u32) -> &str {
    match value.char_indices().nth(width as usize) {
        Some((end, _)) => &value[..end],
        None => value,
    }
}

#[cfg(test)]
#[path = "transform_tests.rs"]
mod tests;
