//! The manifest of a dataset version and the parts it records: the objects, the CSV options,
//! the ingest mode and the source (docs/contract.md section 6). Shared by the three services.

use crate::{
    ColumnType, DatasetName, ObjectKey, PartitionSpec, PartitionTuple, Schema, SchemaFingerprint,
    Sha256Digest,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The inference rule set this build implements, recorded in every manifest as
/// `inference_version` (docs/contract.md section 3). Bumped whenever the rules change.
pub const INFERENCE_VERSION: u32 = 2;

/// CSV reading options of docs/contract.md section 3, recorded in the manifest so later uploads to
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
    /// Text encoding of the CSV (docs/contract.md section 3), transcoded to UTF-8 before parsing.
    /// Absent in JSON when `utf-8`, so a manifest made before encodings existed (inference
    /// version 1) reads as UTF-8, which is what it meant.
    #[serde(default, skip_serializing_if = "TextEncoding::is_utf8")]
    pub encoding: TextEncoding,
    /// The day/month order of each `date32` column written `P/Q/YYYY` (docs/contract.md section 3),
    /// by column name: settled by the whole first upload, and how later uploads read the
    /// column. Absent in JSON when empty (every manifest of inference version 1).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub date_orders: std::collections::BTreeMap<String, DateOrder>,
    /// The decimal separator of float64 values (docs/contract.md section 14): `.` (the default,
    /// absent in JSON) or `,` (`1234,56` and `-0,5` are floats, `1.5` is not).
    #[serde(default, skip_serializing_if = "DecimalSeparator::is_point")]
    pub decimal_separator: DecimalSeparator,
    /// The day/month order a new `P/Q/YYYY` column is read in (docs/contract.md section 14), when
    /// the request gave one; absent, the column's values settle it (section 3). The order
    /// each such column was settled in is in `date_orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_order: Option<DateOrder>,
}

/// The decimal separator of float64 values (docs/contract.md section 14, `decimal_separator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DecimalSeparator {
    /// `.`, the default: `1234.56`.
    #[default]
    #[serde(rename = ".")]
    Point,
    /// `,`: `1234,56`; with `,` as the delimiter too such values must be quoted.
    #[serde(rename = ",")]
    Comma,
}

impl DecimalSeparator {
    /// Parses the `decimal_separator` option: `.` or `,`.
    ///
    /// # Errors
    /// A human-readable reason for anything else.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "." => Ok(DecimalSeparator::Point),
            "," => Ok(DecimalSeparator::Comma),
            other => Err(format!("{other:?} is not `.` or `,`")),
        }
    }

    /// `.` or `,`.
    pub fn as_str(self) -> &'static str {
        match self {
            DecimalSeparator::Point => ".",
            DecimalSeparator::Comma => ",",
        }
    }

    /// Whether this is `.` (the default, left out of the JSON).
    pub fn is_point(&self) -> bool {
        *self == DecimalSeparator::Point
    }
}

impl DateOrder {
    /// Parses the `date_order` option: `DMY` or `MDY` (any letter case).
    ///
    /// # Errors
    /// A human-readable reason for anything else.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.to_ascii_uppercase().as_str() {
            "DMY" => Ok(DateOrder::Dmy),
            "MDY" => Ok(DateOrder::Mdy),
            _ => Err(format!("{value:?} is not `DMY` or `MDY`")),
        }
    }

    /// `DMY` or `MDY`.
    pub fn as_str(self) -> &'static str {
        match self {
            DateOrder::Dmy => "DMY",
            DateOrder::Mdy => "MDY",
        }
    }
}

/// How a `P/Q/YYYY` date is read (docs/contract.md section 3): day first or month first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DateOrder {
    /// Day, month, year: `13/02/2024` is 13 February.
    #[serde(rename = "DMY")]
    Dmy,
    /// Month, day, year: `02/13/2024` is 13 February.
    #[serde(rename = "MDY")]
    Mdy,
}

/// The text encodings an upload may be in (docs/contract.md section 3, `encoding`). The query
/// parameter also takes the WHATWG labels of each (`latin1`, `iso-8859-1`, `cp1252`, ... for
/// `windows-1252`); the JSON form is always the canonical name below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TextEncoding {
    /// `utf-8`, the default: the bytes are parsed as they are.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// `windows-1252` (what WHATWG also calls `latin1` and `iso-8859-1`).
    #[serde(rename = "windows-1252")]
    Windows1252,
    /// `utf-16le`, little-endian UTF-16.
    #[serde(rename = "utf-16le")]
    Utf16Le,
    /// `utf-16be`, big-endian UTF-16.
    #[serde(rename = "utf-16be")]
    Utf16Be,
}

impl TextEncoding {
    /// Every encoding, in the order the contract lists them.
    pub const ALL: [TextEncoding; 4] = [
        TextEncoding::Utf8,
        TextEncoding::Windows1252,
        TextEncoding::Utf16Le,
        TextEncoding::Utf16Be,
    ];

    /// The canonical name (`utf-8`, `windows-1252`, `utf-16le`, `utf-16be`).
    pub fn as_str(self) -> &'static str {
        match self {
            TextEncoding::Utf8 => "utf-8",
            TextEncoding::Windows1252 => "windows-1252",
            TextEncoding::Utf16Le => "utf-16le",
            TextEncoding::Utf16Be => "utf-16be",
        }
    }

    /// Whether this is `utf-8` (the default, left out of the JSON).
    pub fn is_utf8(&self) -> bool {
        *self == TextEncoding::Utf8
    }

    /// Parses the `encoding` option: a WHATWG label (case-insensitive, as `encoding_rs`
    /// looks them up) of one of these encodings, so `latin1`, `iso-8859-1` and `cp1252` name
    /// `windows-1252`, and `utf8` names `utf-8` (docs/contract.md section 3). The one parser of the
    /// option: ingestd and the CLI both call it.
    ///
    /// # Errors
    /// A reason naming the accepted encodings, for a 400 `invalid_option`.
    pub fn from_label(label: &str) -> Result<Self, String> {
        let found = encoding_rs::Encoding::for_label(label.trim().as_bytes()).map(|e| e.name());
        TextEncoding::ALL
            .into_iter()
            .find(|ours| found.is_some_and(|name| name.eq_ignore_ascii_case(ours.as_str())))
            .ok_or_else(|| {
                format!(
                    "encoding {label:?} is not one of utf-8, windows-1252 (also latin1, \
                     iso-8859-1), utf-16le, utf-16be"
                )
            })
    }
}

impl std::fmt::Display for TextEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Compression of an upload, detected by its first bytes (docs/contract.md section 3): gzip
/// (`1f 8b`) or zstd (`28 b5 2f fd`). Recorded in the manifest's [`Source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// gzip (RFC 1952), one or more members.
    Gzip,
    /// Zstandard, one or more frames.
    Zstd,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            null_values: Vec::new(),
            encoding: TextEncoding::Utf8,
            date_orders: std::collections::BTreeMap::new(),
            decimal_separator: DecimalSeparator::Point,
            date_order: None,
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

/// `replace` (the new version holds only the new object), `append` (the previous objects
/// plus the new one), docs/contract.md section 6; `merge` or `delete` by key,
/// docs/contract.md section 11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IngestMode {
    /// The new version holds only the new object.
    #[default]
    Replace,
    /// The new version holds the previous version's objects plus the new one.
    Append,
    /// Each upload row replaces the rows with its key, new keys are added, every other row
    /// is kept (`key` names the key columns; docs/contract.md section 11).
    Merge,
    /// The upload lists keys (its header is the key columns): the rows with them are
    /// removed (docs/contract.md section 11).
    Delete,
}

impl IngestMode {
    /// The query spelling: `replace`, `append`, `merge` or `delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            IngestMode::Replace => "replace",
            IngestMode::Append => "append",
            IngestMode::Merge => "merge",
            IngestMode::Delete => "delete",
        }
    }

    /// True for `merge` and `delete`, the modes that need `key` (docs/contract.md section 11).
    pub fn is_keyed(self) -> bool {
        matches!(self, IngestMode::Merge | IngestMode::Delete)
    }
}

/// `schema_evolution` of an ingest or a register request (docs/contract.md section 3, "Schema
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
    /// Content-addressed key (docs/contract.md section 5).
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the object's bytes (also the last segment of its key).
    pub sha256: Sha256Digest,
    /// Rows in the object.
    pub row_count: u64,
    /// The records its upload set aside (`max_rejects`, docs/contract.md section 3), when any:
    /// kept, and collected, together with this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejects: Option<RejectsRef>,
    /// Its partition tuple, in a partitioned dataset (docs/contract.md section 10): every row
    /// of the object maps to it under the dataset's [`PartitionSpec`]. Absent in an
    /// unpartitioned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub partition: Option<PartitionTuple>,
}

impl ObjectRef {
    /// The keys this reference keeps alive: the object's, then its rejects object's.
    pub fn keys(&self) -> impl Iterator<Item = &ObjectKey> {
        std::iter::once(&self.key).chain(self.rejects.as_ref().map(|r| &r.key))
    }
}

/// The rejects object of an upload (docs/contract.md section 3, "Rejects"): a CSV
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
    /// The upload's compression, when it was compressed (docs/contract.md section 3): then
    /// `csv_sha256` and `csv_bytes` are those of the bytes received, and `csv_bytes`
    /// counts compressed bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// The source file a load read (docs/contract.md section 12): the ledger of loads,
    /// committed with the version itself. Absent for an upload to `POST /ingest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<SourceFile>,
}

/// A file of a configured source as a load read it (docs/contract.md section 12): the
/// identity by which a later load skips it (`path`, `etag`, `size`), recorded in the
/// manifest's `source.file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SourceFile {
    /// The source's name (`[[ingestd.sources]]` `name`).
    pub source: String,
    /// The file's path under the source's URL, `/`-separated, as listed.
    pub path: String,
    /// The ETag the source gave for it when it was listed (S3's ETag; object_store's
    /// inode, size and mtime tag for a directory source); null when the source gives none.
    pub etag: Option<String>,
    /// Its size in bytes, as listed (compressed bytes for a gzip or zstd file).
    pub size: u64,
    /// The load that read it.
    pub load_id: String,
}

impl SourceFile {
    /// Whether `other` is the same file as it was then: same source, path, ETag and size
    /// (the load id does not count).
    pub fn same_file(&self, other: &SourceFile) -> bool {
        self.source == other.source
            && self.path == other.path
            && self.etag == other.etag
            && self.size == other.size
    }
}

/// One column of the inference report (docs/contract.md section 3, "Inference report"): in the
/// answer of `POST /ingest` and in the manifest of the version the upload made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ColumnReport {
    /// Column name, as in the schema.
    pub name: String,
    /// Column type, as in the schema.
    #[serde(rename = "type")]
    pub data_type: ColumnType,
    /// Null values (empty fields and `null_values` tokens) in the upload.
    pub null_count: u64,
    /// The earliest non-null value by which the column's values so far rule out every type
    /// above `type` in docs/contract.md section 3's table; `null` for `bool` and for a column with
    /// no non-null value (and, for an existing dataset, when the upload's values alone do
    /// not rule them out).
    pub decided_by: Option<DecidedBy>,
    /// `DMY` or `MDY` where the column's `P/Q/YYYY` dates settled a day/month order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<DateOrder>,
}

/// Where a column's type was settled: `{line, value}` ([`ColumnReport::decided_by`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecidedBy {
    /// 1-based line on which the value's record starts.
    pub line: u64,
    /// The value as written (its first 200 characters, then `…`).
    pub value: String,
}

/// One immutable version of a dataset (docs/contract.md section 6), stored as
/// `_catalog/datasets/<name>/<version as 20 digits>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// Dataset name.
    pub name: DatasetName,
    /// 1-based version number; the latest version is the highest.
    pub version: u64,
    /// `sha256:<hex>` of `schema` (docs/contract.md section 4).
    pub schema_fingerprint: SchemaFingerprint,
    /// Arrow schema of every object of this version.
    pub schema: Schema,
    /// Parquet objects that make up this version.
    pub objects: Vec<ObjectRef>,
    /// Sum of the objects' rows.
    pub row_count: u64,
    /// Commit time, RFC 3339 in UTC with microseconds.
    pub created_at: String,
    /// Inference rule set the schema was made with (docs/contract.md section 3).
    pub inference_version: u32,
    /// CSV options the version was made with.
    pub options: CsvOptions,
    /// Where the latest upload of this version came from.
    pub source: Source,
    /// The inference report of that upload (docs/contract.md section 3); absent in manifests made
    /// before the report existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnReport>,
    /// What made this version (docs/contract.md section 10): `replace`, `append` or
    /// `compact`. Absent from versions written before operations were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// The partition spec of a dataset made with `partition_by` (docs/contract.md section 10),
    /// the same in every version; absent for an unpartitioned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_spec: Option<PartitionSpec>,
    /// The key columns the dataset's first merge or delete declared (docs/contract.md section
    /// 11; Iceberg `identifier-field-ids`), kept by every later version; absent until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
}

/// What made a version (docs/contract.md section 10): an ingest's mode, or a compaction that
/// rewrote small files into larger ones with the same rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// The version holds only the upload's objects (`mode=replace`).
    Replace,
    /// The version holds the previous objects plus the upload's (`mode=append`).
    Append,
    /// The previous objects minus the compacted ones plus their rewrite: rows unchanged.
    Compact,
    /// `mode=merge` (docs/contract.md section 11): the previous objects minus those holding
    /// replaced rows, plus their rewrite without them and the upload's new and changed rows.
    Merge,
    /// `mode=delete` (docs/contract.md section 11): the previous objects minus those holding
    /// deleted rows, plus their rewrite without them.
    Delete,
    /// A tombstone: `DELETE /datasets/{name}` dropped the dataset (no objects); lookups
    /// answer 404 until a new dataset is made under the name, whose versions continue
    /// after it (docs/contract.md section 14).
    Drop,
}

impl Operation {
    /// The wire name: `replace`, `append`, `compact`, `merge`, `delete` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Replace => "replace",
            Operation::Append => "append",
            Operation::Compact => "compact",
            Operation::Merge => "merge",
            Operation::Delete => "delete",
            Operation::Drop => "drop",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_with_a_tab_delimiter() {
        let options = CsvOptions {
            delimiter: b'\t',
            null_values: vec!["NA".into()],
            encoding: TextEncoding::Utf8,
            date_orders: std::collections::BTreeMap::new(),
            decimal_separator: DecimalSeparator::Point,
            date_order: None,
        };
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(json, r#"{"delimiter":"\t","null_values":["NA"]}"#);
        assert_eq!(serde_json::from_str::<CsvOptions>(&json).unwrap(), options);
    }

    #[test]
    fn encoding_is_recorded_only_when_not_utf8() {
        let options = CsvOptions {
            encoding: TextEncoding::Utf16Le,
            ..CsvOptions::default()
        };
        let json = serde_json::to_string(&options).unwrap();
        assert_eq!(
            json,
            r#"{"delimiter":",","null_values":[],"encoding":"utf-16le"}"#
        );
        assert_eq!(serde_json::from_str::<CsvOptions>(&json).unwrap(), options);
        // A version 1 manifest's options have no encoding: UTF-8.
        let old: CsvOptions = serde_json::from_str(r#"{"delimiter":";"}"#).unwrap();
        assert_eq!(old.encoding, TextEncoding::Utf8);
        let source = Source::default();
        assert_eq!(
            serde_json::to_string(&source).unwrap(),
            r#"{"filename":null,"csv_sha256":null,"csv_bytes":null}"#
        );
        let gz = Source {
            compression: Some(Compression::Gzip),
            ..Source::default()
        };
        assert!(
            serde_json::to_string(&gz)
                .unwrap()
                .ends_with(r#""compression":"gzip"}"#)
        );
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
