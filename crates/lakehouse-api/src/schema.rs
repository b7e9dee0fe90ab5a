//! The schema as the catalog records it and its fingerprint (DESIGN.md sections 3 and 4).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A column type, named by its fingerprint name (DESIGN.md section 3's table), which is also
/// how it is written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ColumnType {
    /// `true`/`false` in any letter case.
    #[serde(rename = "bool")]
    Bool,
    /// 64-bit signed integer.
    #[serde(rename = "int64")]
    Int64,
    /// IEEE 754 double.
    #[serde(rename = "float64")]
    Float64,
    /// Days since 1970-01-01.
    #[serde(rename = "date32")]
    Date32,
    /// Microseconds since the epoch, UTC (the CSV gave an offset).
    #[serde(rename = "timestamp[us, tz=UTC]")]
    TimestampUtc,
    /// Microseconds since the epoch of a wall-clock time with no zone.
    #[serde(rename = "timestamp[us]")]
    Timestamp,
    /// Any UTF-8 text: the default on any ambiguity.
    #[serde(rename = "utf8")]
    Utf8,
}

impl ColumnType {
    /// The fingerprint name of DESIGN.md section 3 (`int64`, `timestamp[us, tz=UTC]`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Date32 => "date32",
            ColumnType::TimestampUtc => "timestamp[us, tz=UTC]",
            ColumnType::Timestamp => "timestamp[us]",
            ColumnType::Utf8 => "utf8",
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One column of a [`Schema`]: `{name, type, nullable}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Field {
    /// Column name after the header renames of DESIGN.md section 3.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub data_type: ColumnType,
    /// Always `true` for inferred schemas (DESIGN.md section 3); not part of the fingerprint.
    #[serde(default = "yes")]
    pub nullable: bool,
}

fn yes() -> bool {
    true
}

impl Field {
    /// A nullable field.
    pub fn new(name: impl Into<String>, data_type: ColumnType) -> Self {
        Field {
            name: name.into(),
            data_type,
            nullable: true,
        }
    }
}

/// `{fields: [...]}` in header order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schema {
    /// Columns in header order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// The schema fingerprint of DESIGN.md section 4:
    /// `"sha256:" + hex(SHA-256(name || 0x1f || type || 0x1e, for each field))`.
    pub fn fingerprint(&self) -> String {
        fingerprint_of_pairs(
            self.fields
                .iter()
                .map(|field| (field.name.as_str(), field.data_type.name())),
        )
    }

    /// Column names in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|field| field.name.as_str())
    }
}

/// The fingerprint of DESIGN.md section 4 over raw `(name, type string)` pairs; the type
/// string is hashed as given, which is what lets the section's test vectors use type strings
/// that are not real types.
pub fn fingerprint_of_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut hasher = Sha256::new();
    for (name, data_type) in pairs {
        hasher.update(name.as_bytes());
        hasher.update([0x1f]);
        hasher.update(data_type.as_bytes());
        hasher.update([0x1e]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four test vectors of DESIGN.md section 4.
    #[test]
    fn fingerprint_test_vectors_of_design_section_4() {
        let schema = |fields: &[(&str, ColumnType)]| Schema {
            fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect(),
        };
        assert_eq!(
            schema(&[("id", ColumnType::Int64), ("name", ColumnType::Utf8)]).fingerprint(),
            "sha256:293f0ddbb873f5da65f02282c2398ce7597f2bd837fac219f1b1b350bb83dde5"
        );
        assert_eq!(
            schema(&[("a,b", ColumnType::Utf8)]).fingerprint(),
            "sha256:03e8328ff17b1fa9216bdc0e0b75cb5229dbb8134252a6a3bdbf729bb76555cb"
        );
        assert_eq!(
            fingerprint_of_pairs([("a", "b,utf8")]),
            "sha256:0a30975d5fa48d7eae8edc2d235a2afaf5c915f7c881e9af3301c73fa8956b6d"
        );
        assert_eq!(
            schema(&[
                ("id", ColumnType::Int64),
                ("name", ColumnType::Utf8),
                ("price", ColumnType::Float64),
                ("active", ColumnType::Bool),
                ("day", ColumnType::Date32),
                ("at", ColumnType::TimestampUtc),
                ("local", ColumnType::Timestamp),
            ])
            .fingerprint(),
            "sha256:a91da95e028ac2748e10ed95cf43735586e082e31d3be75eef979d1d4a10410e"
        );
    }

    #[test]
    fn nullability_is_not_part_of_the_fingerprint() {
        let mut a = Schema {
            fields: vec![Field::new("x", ColumnType::Int64)],
        };
        let before = a.fingerprint();
        a.fields[0].nullable = false;
        assert_eq!(a.fingerprint(), before);
    }

    #[test]
    fn types_serialize_as_fingerprint_names() {
        let json = serde_json::to_string(&Field::new("at", ColumnType::TimestampUtc)).unwrap();
        assert_eq!(
            json,
            r#"{"name":"at","type":"timestamp[us, tz=UTC]","nullable":true}"#
        );
    }
}
