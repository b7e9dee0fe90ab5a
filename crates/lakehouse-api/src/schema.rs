//! The schema as the catalog records it and its fingerprint (docs/contract.md sections 3 and 4).

use crate::NameError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// A column type, named by its fingerprint name (docs/contract.md section 3's table), which is also
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
    /// Microseconds since midnight, a time of day with no date or zone (`HH:MM` or
    /// `HH:MM:SS[.f]`, inference version 2).
    #[serde(rename = "time64[us]")]
    Time64,
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
    /// Every column type, in the order of docs/contract.md section 3's table: the
    /// narrowest first, `utf8` (which accepts any value) last.
    pub const ALL: [ColumnType; 8] = [
        ColumnType::Bool,
        ColumnType::Int64,
        ColumnType::Float64,
        ColumnType::Date32,
        ColumnType::Time64,
        ColumnType::TimestampUtc,
        ColumnType::Timestamp,
        ColumnType::Utf8,
    ];

    /// The fingerprint name of docs/contract.md section 3 (`int64`, `timestamp[us, tz=UTC]`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Date32 => "date32",
            ColumnType::Time64 => "time64[us]",
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
    /// Column name after the header renames of docs/contract.md section 3.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub data_type: ColumnType,
    /// Always `true` for inferred schemas (docs/contract.md section 3); not part of the fingerprint.
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
    /// The schema fingerprint of docs/contract.md section 4:
    /// `"sha256:" + hex(SHA-256(name || 0x1f || type || 0x1e, for each field))`.
    pub fn fingerprint(&self) -> SchemaFingerprint {
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

    /// Whether this schema is `base`'s fields in order (same names and types) followed by one
    /// or more new columns whose names are all distinct: the one change
    /// `schema_evolution=add_columns` accepts (docs/contract.md section 3, "Schema evolution").
    pub fn adds_columns_to(&self, base: &Schema) -> bool {
        let (kept, new) = self
            .fields
            .split_at(base.fields.len().min(self.fields.len()));
        let same_prefix = kept.len() == base.fields.len()
            && kept
                .iter()
                .zip(&base.fields)
                .all(|(a, b)| a.name == b.name && a.data_type == b.data_type);
        let mut seen: std::collections::HashSet<&str> = base.names().collect();
        same_prefix && !new.is_empty() && new.iter().all(|f| seen.insert(f.name.as_str()))
    }
}

/// The fingerprint of docs/contract.md section 4 over raw `(name, type string)` pairs; the type
/// string is hashed as given, which is what lets the section's test vectors use type strings
/// that are not real types.
pub fn fingerprint_of_pairs<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> SchemaFingerprint {
    let mut hasher = Sha256::new();
    for (name, data_type) in pairs {
        hasher.update(name.as_bytes());
        hasher.update([0x1f]);
        hasher.update(data_type.as_bytes());
        hasher.update([0x1e]);
    }
    SchemaFingerprint(format!("{PREFIX}{}", hex::encode(hasher.finalize())))
}

const PREFIX: &str = "sha256:";

/// A schema fingerprint of docs/contract.md section 4: `sha256:` and 64 lowercase hex digits,
/// written that way by `Display` and serde (so a JSON body carries the string
/// `"sha256:<hex>"`). [`SchemaFingerprint::hex`] is the digest alone, the object-key segment
/// of docs/contract.md section 5 (`datasets/<name>/<hex>/...`).
///
/// Made by [`Schema::fingerprint`], or parsed (and validated) from its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct SchemaFingerprint(String);

impl SchemaFingerprint {
    /// Validates `text` as `sha256:` followed by 64 lowercase hex digits.
    ///
    /// # Errors
    /// [`NameError::Fingerprint`] otherwise.
    pub fn new(text: impl Into<String>) -> Result<Self, NameError> {
        let text = text.into();
        let ok = text.strip_prefix(PREFIX).is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(SchemaFingerprint(text))
        } else {
            Err(NameError::Fingerprint(text))
        }
    }

    /// The 64 lowercase hex digits, without `sha256:`.
    pub fn hex(&self) -> &str {
        &self.0[PREFIX.len()..]
    }

    /// The whole text, `sha256:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits: how tables for people (the CLI, the catalog page) show it.
    pub fn short(&self) -> &str {
        let hex = self.hex();
        hex.get(..12).unwrap_or(hex)
    }
}

impl TryFrom<String> for SchemaFingerprint {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        SchemaFingerprint::new(value)
    }
}

impl From<SchemaFingerprint> for String {
    fn from(value: SchemaFingerprint) -> Self {
        value.0
    }
}

impl fmt::Display for SchemaFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for SchemaFingerprint {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for SchemaFingerprint {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// One type difference in a `schema_drift` error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnChange {
    /// Column name.
    pub column: String,
    /// Type the dataset has registered.
    pub registered_type: String,
    /// Type the upload would have on its own (its inferred type), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempted_type: Option<String>,
    /// 1-based CSV line of the first value the registered type does not accept, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// That value, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `details` of a 409 `schema_drift` (docs/contract.md sections 3 and 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaDriftDetails {
    /// Fingerprint of the dataset's latest version.
    pub current_fingerprint: SchemaFingerprint,
    /// Fingerprint of the schema the upload would have had (its own inference).
    pub attempted_fingerprint: SchemaFingerprint,
    /// Columns in the upload that the registered schema lacks.
    pub added: Vec<String>,
    /// Registered columns the upload lacks.
    pub removed: Vec<String>,
    /// Columns present on both sides whose type does not fit.
    pub changed: Vec<ColumnChange>,
    /// Columns present on both sides but in another order.
    #[serde(default)]
    pub reordered: Vec<String>,
}

impl SchemaDriftDetails {
    /// The name-level diff between a registered and an attempted schema: added, removed,
    /// reordered and type-changed columns (type changes carry no line or value).
    pub fn between(current: &Schema, attempted: &Schema) -> Self {
        let has = |schema: &Schema, name: &str| schema.names().any(|n| n == name);
        let added = attempted
            .names()
            .filter(|n| !has(current, n))
            .map(str::to_owned)
            .collect();
        let removed = current
            .names()
            .filter(|n| !has(attempted, n))
            .map(str::to_owned)
            .collect();
        let common_current: Vec<&str> = current.names().filter(|n| has(attempted, n)).collect();
        let common_attempted: Vec<&str> = attempted.names().filter(|n| has(current, n)).collect();
        let reordered = common_current
            .iter()
            .zip(&common_attempted)
            .filter(|(a, b)| a != b)
            .map(|(a, _)| (*a).to_owned())
            .collect();
        let changed = current
            .fields
            .iter()
            .filter_map(|registered| {
                let other = attempted
                    .fields
                    .iter()
                    .find(|f| f.name == registered.name)?;
                (other.data_type != registered.data_type).then(|| ColumnChange {
                    column: registered.name.clone(),
                    registered_type: registered.data_type.name().to_owned(),
                    attempted_type: Some(other.data_type.name().to_owned()),
                    line: None,
                    value: None,
                })
            })
            .collect();
        SchemaDriftDetails {
            current_fingerprint: current.fingerprint(),
            attempted_fingerprint: attempted.fingerprint(),
            added,
            removed,
            changed,
            reordered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The four test vectors of docs/contract.md section 4.
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
    fn fingerprint_text_hex_and_validation() {
        let fp = Schema {
            fields: vec![Field::new("id", ColumnType::Int64)],
        }
        .fingerprint();
        assert_eq!(fp.to_string(), format!("sha256:{}", fp.hex()));
        assert_eq!(fp.hex().len(), 64);
        assert_eq!(fp.short(), &fp.hex()[..12]);
        let json = serde_json::to_string(&fp).unwrap();
        assert_eq!(json, format!("\"{fp}\""));
        assert_eq!(
            serde_json::from_str::<SchemaFingerprint>(&json).unwrap(),
            fp
        );
        assert!(SchemaFingerprint::new(fp.hex()).is_err());
        assert!(SchemaFingerprint::new(format!("sha256:{}", fp.hex().to_uppercase())).is_err());
        assert!(SchemaFingerprint::new("sha256:abc").is_err());
        assert!(serde_json::from_str::<SchemaFingerprint>("\"md5:00\"").is_err());
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

    #[test]
    fn adds_columns_to_accepts_only_new_columns_at_the_end() {
        let schema = |fields: &[(&str, ColumnType)]| Schema {
            fields: fields.iter().map(|(n, t)| Field::new(*n, *t)).collect(),
        };
        let base = schema(&[("a", ColumnType::Int64), ("b", ColumnType::Utf8)]);
        let added = schema(&[
            ("a", ColumnType::Int64),
            ("b", ColumnType::Utf8),
            ("c", ColumnType::Bool),
        ]);
        assert!(added.adds_columns_to(&base));
        assert!(!base.adds_columns_to(&base), "nothing added");
        assert!(!base.adds_columns_to(&added), "removed");
        let middle = schema(&[
            ("a", ColumnType::Int64),
            ("c", ColumnType::Bool),
            ("b", ColumnType::Utf8),
        ]);
        assert!(!middle.adds_columns_to(&base), "added in the middle");
        let retyped = schema(&[
            ("a", ColumnType::Float64),
            ("b", ColumnType::Utf8),
            ("c", ColumnType::Bool),
        ]);
        assert!(!retyped.adds_columns_to(&base), "retyped");
        let reordered = schema(&[
            ("b", ColumnType::Utf8),
            ("a", ColumnType::Int64),
            ("c", ColumnType::Bool),
        ]);
        assert!(!reordered.adds_columns_to(&base), "reordered");
        let duplicate = schema(&[
            ("a", ColumnType::Int64),
            ("b", ColumnType::Utf8),
            ("a", ColumnType::Bool),
        ]);
        assert!(!duplicate.adds_columns_to(&base), "a name taken twice");
    }

    #[test]
    fn drift_diff_names_added_removed_reordered_and_changed() {
        let current = Schema {
            fields: vec![
                Field::new("a", ColumnType::Int64),
                Field::new("b", ColumnType::Utf8),
                Field::new("c", ColumnType::Bool),
            ],
        };
        let attempted = Schema {
            fields: vec![
                Field::new("b", ColumnType::Utf8),
                Field::new("a", ColumnType::Float64),
                Field::new("d", ColumnType::Bool),
            ],
        };
        let diff = SchemaDriftDetails::between(&current, &attempted);
        assert_eq!(diff.added, vec!["d"]);
        assert_eq!(diff.removed, vec!["c"]);
        assert_eq!(diff.reordered, vec!["a", "b"]);
        assert_eq!(diff.changed.len(), 1);
        assert_eq!(diff.changed[0].column, "a");
        assert_eq!(diff.changed[0].attempted_type.as_deref(), Some("float64"));
    }
}
