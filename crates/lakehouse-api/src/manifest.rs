//! The manifest of a dataset version and the parts it records: the objects, the CSV options,
//! the ingest mode and the source (DESIGN.md section 6). Shared by the three services.

use crate::{DatasetName, ObjectKey, Schema, SchemaFingerprint, Sha256Digest};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The inference rule set this build implements, recorded in every manifest as
/// `inference_version` (DESIGN.md section 3). Bumped whenever the rules change.
pub const INFERENCE_VERSION: u32 = 1;

/// CSV reading options of DESIGN.md section 3, recorded in the manifest so later uploads to
/// the dataset read the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CsvOptions {
    /// Field delimiter, one ASCII byte; written in JSON as a one-character string
    /// (`","`, `"\t"`, ...).
    #[serde(serialize_with = "ser_delimiter", deserialize_with = "de_delimiter")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 1))]
    pub delimiter: u8,
    /// Tokens read as null besides the empty field, matched exactly (case-sensitive).
    #[serde(default)]
    pub null_values: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            null_values: Vec::new(),
        }
    }
}

impl CsvOptions {
    /// Parses the `delimiter` query parameter: `tab` means `\t`, otherwise exactly one ASCII
    /// character that is not `"`, CR or LF.
    ///
    /// # Errors
    /// A human-readable reason when the value is not one of those.
    pub fn parse_delimiter(value: &str) -> Result<u8, String> {
        let byte = match value.as_bytes() {
            b"tab" | b"\\t" => b'\t',
            [b] if b.is_ascii() => *b,
            _ => {
                return Err(format!(
                    "delimiter {value:?} must be one ASCII character or `tab`"
                ));
            }
        };
        if matches!(byte, b'"' | b'\r' | b'\n') {
            return Err(format!(
                "delimiter {value:?} cannot be a quote or a line break"
            ));
        }
        Ok(byte)
    }

    /// Parses the `null_values` query parameter: a comma-separated token list (`NA,NULL`).
    /// Empty tokens are dropped (the empty field is always null).
    pub fn parse_null_values(value: &str) -> Vec<String> {
        value
            .split(',')
            .filter(|token| !token.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

fn ser_delimiter<S: Serializer>(delimiter: &u8, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 4];
    serializer.serialize_str(char::from(*delimiter).encode_utf8(&mut buf))
}

fn de_delimiter<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    let text = String::deserialize(deserializer)?;
    CsvOptions::parse_delimiter(&text).map_err(serde::de::Error::custom)
}

/// `replace` (the new version holds only the new object) or `append` (the previous objects
/// plus the new one), DESIGN.md section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IngestMode {
    /// The new version holds only the new object.
    #[default]
    Replace,
    /// The new version holds the previous version's objects plus the new one.
    Append,
}

/// `schema_evolution` of an ingest or a register request (DESIGN.md section 3, "Schema
/// evolution"): which schema changes an upload to an existing dataset may make. Absent, every
/// change is a 409 `schema_drift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SchemaEvolution {
    /// New columns after the registered ones, in order: a new schema that is the registered
    /// one plus them (a new fingerprint); readers see nulls for them in older objects.
    AddColumns,
}

impl SchemaEvolution {
    /// The query and JSON spelling (`add_columns`).
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaEvolution::AddColumns => "add_columns",
        }
    }

    /// Parses the `schema_evolution` query parameter.
    ///
    /// # Errors
    /// A human-readable reason when the value is not `add_columns`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "add_columns" => Ok(SchemaEvolution::AddColumns),
            other => Err(format!(
                "schema_evolution {other:?} is not supported; the only value is `add_columns`"
            )),
        }
    }
}

/// One Parquet object a manifest references.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectRef {
    /// Content-addressed key (DESIGN.md section 5).
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the object's bytes (also the last segment of its key).
    pub sha256: Sha256Digest,
    /// Rows in the object.
    pub row_count: u64,
    /// The records its upload set aside (`max_rejects`, DESIGN.md section 3), when any:
    /// kept, and collected, together with this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<RejectsRef>,
}

impl ObjectRef {
    /// The keys this reference keeps alive: the object's, then its rejects object's.
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        std::iter::once(&self.key).chain(self.rejects.as_ref().map(|r| &r.key))
    }
}

/// The rejects object of an upload (DESIGN.md section 3, "Rejects"): a CSV
/// `line,column,reason,record` of the records set aside, stored content-addressed at
/// `datasets/<name>/_rejects/<sha256>.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RejectsRef {
    /// `datasets/<name>/_rejects/<sha256>.csv`.
    pub key: ObjectKey,
    /// Records set aside.
    pub count: u64,
    /// Size of the rejects CSV, bytes.
    pub size: u64,
    /// SHA-256 of its bytes (also in its key).
    pub sha256: Sha256Digest,
}

/// Where a version's data came from. Informational: never part of an identity check.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Source {
    /// The multipart `filename` of the upload, when the client sent one.
    #[serde(default)]
    pub filename: Option<String>,
    /// SHA-256 of the uploaded CSV bytes.
    #[serde(default)]
    pub csv_sha256: Option<Sha256Digest>,
    /// Size of the uploaded CSV in bytes.
    #[serde(default)]
    pub csv_bytes: Option<u64>,
}

/// One immutable version of a dataset (DESIGN.md section 6), stored as
/// `_catalog/datasets/<name>/<version as 20 digits>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// Dataset name.
    pub name: DatasetName,
    /// 1-based version number; the latest version is the highest.
    pub version: u64,
    /// `sha256:<hex>` of `schema` (DESIGN.md section 4).
    pub schema_fingerprint: SchemaFingerprint,
    /// Arrow schema of every object of this version.
    pub schema: Schema,
    /// Parquet objects that make up this version.
    pub objects: Vec<ObjectRef>,
    /// Sum of the objects' rows.
    pub row_count: u64,
    /// Commit time, RFC 3339 in UTC with microseconds.
    pub created_at: String,
    /// Inference rule set the schema was made with (DESIGN.md section 3).
    pub inference_version: u32,
    /// CSV options the version was made with.
    pub options: CsvOptions,
    /// Where the latest upload of this version came from.
    pub source: Source,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_with_a_tab_delimiter() {
        let options = CsvOptions {
            delimiter: b'\t',
            null_values: vec!["NA".into()],
        };
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(json, r#"{"delimiter":"\t","null_values":["NA"]}"#);
        assert_eq!(serde_json::from_str::<CsvOptions>(&json).unwrap(), options);
    }

    #[test]
    fn delimiter_parsing() {
        assert_eq!(CsvOptions::parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(CsvOptions::parse_delimiter(";"), Ok(b';'));
        assert!(CsvOptions::parse_delimiter(";;").is_err());
        assert!(CsvOptions::parse_delimiter("\"").is_err());
        assert!(CsvOptions::parse_delimiter("é").is_err());
        assert!(CsvOptions::parse_delimiter("").is_err());
        assert_eq!(
            CsvOptions::parse_null_values("NA,,NULL"),
            vec!["NA", "NULL"]
        );
    }
}
