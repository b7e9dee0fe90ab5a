//! Manifests and the request/response bodies of ingestd, catalogd and storaged
//! (DESIGN.md section 6).

use crate::{DatasetName, ObjectKey, Schema, Sha256Digest};
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
    /// Caps on the input's shape (issue 5). Not part of the wire format or the manifest
    /// (serde skips it): the reading service sets it from its own configuration.
    #[serde(skip)]
    pub limits: ReadLimits,
}

/// Caps a CSV must stay within, so that no input can make a reader hold more than a
/// configured amount of memory (DESIGN.md section 2, invariant 5). Exceeding one is a 400
/// `limit_exceeded` naming the cap, the line and, for fields, the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadLimits {
    /// Most fields in the header (and so in every record).
    pub max_columns: u64,
    /// Most bytes in one field (after unquoting).
    pub max_field_bytes: u64,
    /// Most bytes in one record as written (quotes and line breaks inside it included).
    pub max_record_bytes: u64,
}

impl Default for ReadLimits {
    /// 10,000 columns, 16 MiB per field, 64 MiB per record.
    fn default() -> Self {
        ReadLimits {
            max_columns: 10_000,
            max_field_bytes: 16 * 1024 * 1024,
            max_record_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            null_values: Vec::new(),
            limits: ReadLimits::default(),
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
    pub schema_fingerprint: String,
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

/// Body of `POST /datasets/{name}/versions` (catalogd).
///
/// `options` and `inference_version` go beyond the four fields DESIGN.md section 6 lists:
/// the manifest records them, so the registering client has to say them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterVersionRequest {
    /// Must equal `schema.fingerprint()`, or the request is a 400 `fingerprint_mismatch`.
    pub schema_fingerprint: String,
    /// Schema of the objects.
    pub schema: Schema,
    /// Objects of this upload, each already stored in storaged.
    pub objects: Vec<ObjectRef>,
    /// `replace` or `append`.
    #[serde(default)]
    pub mode: IngestMode,
    /// Where the objects came from.
    #[serde(default)]
    pub source: Source,
    /// CSV options the objects were made with.
    #[serde(default)]
    pub options: CsvOptions,
    /// Inference rule set the schema was made with.
    #[serde(default = "default_inference_version")]
    pub inference_version: u32,
}

fn default_inference_version() -> u32 {
    INFERENCE_VERSION
}

/// 200 answer of `POST /datasets/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterVersionResponse {
    /// The new version, or the latest one when `existing` is true.
    pub manifest: Manifest,
    /// True when the latest version already was what the request asked for (DESIGN.md
    /// section 2, invariant 4): no new version was made.
    pub existing: bool,
}

/// 200 answer of `POST /ingest` (ingestd).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestResponse {
    /// The dataset version this upload is now part of.
    pub manifest: Manifest,
    /// True when no new version was made (the same upload was already registered).
    pub existing: bool,
    /// Rows in this upload's CSV (and Parquet object).
    pub row_count: u64,
    /// Key of this upload's Parquet object in storaged.
    pub parquet_key: ObjectKey,
    /// Size of that object, bytes.
    pub parquet_size: u64,
    /// Schema the object was written with.
    pub schema: Schema,
    /// Header renames and similar notes (DESIGN.md section 3).
    pub warnings: Vec<String>,
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

/// `details` of a 409 `schema_drift` (DESIGN.md sections 3 and 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaDriftDetails {
    /// Fingerprint of the dataset's latest version.
    pub current_fingerprint: String,
    /// Fingerprint of the schema the upload would have had (its own inference).
    pub attempted_fingerprint: String,
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

/// One entry of `GET /objects` (storaged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectInfo {
    /// Object key.
    pub key: ObjectKey,
    /// Size in bytes.
    pub size: u64,
    /// Entity tag as the backend reports it (opaque), when it has one.
    pub etag: Option<String>,
    /// Last modification, RFC 3339 UTC.
    pub last_modified: String,
}

/// Answer of `GET /objects?prefix=&start_after=&limit=` (storaged): keys in ascending byte
/// order, `next_start_after` set when more keys follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListObjectsResponse {
    /// At most `limit` objects, ascending by key.
    pub objects: Vec<ObjectInfo>,
    /// Pass as `start_after` to get the next page; absent on the last page.
    pub next_start_after: Option<String>,
}

/// Answer of a successful storaged write: `PUT /objects/{key}` (201) or the content-addressed
/// `POST /objects/{dir}` (201 created, 200 already there): what is stored under `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectPutResponse {
    /// The key written.
    pub key: ObjectKey,
    /// Size of the body in bytes.
    pub size: u64,
    /// SHA-256 of the body as received (64 lowercase hex digits).
    pub sha256: Sha256Digest,
}

/// One dataset in `GET /datasets` (catalogd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetSummary {
    /// Dataset name.
    pub name: DatasetName,
    /// Latest version number.
    pub latest_version: u64,
    /// Fingerprint of the latest version.
    pub schema_fingerprint: String,
    /// Rows in the latest version.
    pub row_count: u64,
    /// `created_at` of the latest version.
    pub updated_at: String,
}

/// Answer of `GET /datasets[?prefix=&limit=&cursor=]`: names ascending, `next_cursor` set when
/// more follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetListResponse {
    /// At most `limit` datasets, ascending by name.
    pub datasets: Vec<DatasetSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One version in `GET /datasets/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    /// Version number.
    pub version: u64,
    /// Its fingerprint.
    pub schema_fingerprint: String,
    /// Its rows.
    pub row_count: u64,
    /// How many objects it references.
    pub object_count: u64,
    /// Its commit time.
    pub created_at: String,
    /// True when the version is past retention (`retain_versions` / `retain_ms` of catalogd):
    /// `GET /datasets/{name}/versions/{n}` answers it 410 `gone` and its objects may already
    /// be garbage collected (issue 5). Absent (false) from peers that predate retention.
    #[serde(default)]
    pub gone: bool,
}

/// Answer of `GET /datasets/{name}/versions`: every version, ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionListResponse {
    /// Dataset name.
    pub name: DatasetName,
    /// Versions ascending.
    pub versions: Vec<VersionSummary>,
}

/// Answer of catalogd's `POST /admin/gc[?dry_run=true]`: what one garbage collection run
/// over `datasets/` did (issue 5, "Garbage collection and retention"; docs/decisions.md).
///
/// Every object counted in `scanned_objects` is in exactly one of `retained_objects`,
/// `skipped_young`, `deleted` / `would_delete`, or (when its dataset could not be decided)
/// none of them, with the reason in `errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcRunResponse {
    /// True when nothing was deleted: the run only reports `would_delete`.
    pub dry_run: bool,
    /// Keys deleted by this run, ascending (empty on a dry run). A key another GC deleted
    /// first is listed too: it is gone either way.
    pub deleted: Vec<ObjectKey>,
    /// Keys a real run would delete now, ascending (empty unless `dry_run`).
    pub would_delete: Vec<ObjectKey>,
    /// Objects kept because a retained version references them.
    pub retained_objects: u64,
    /// Objects listed under `datasets/`.
    pub scanned_objects: u64,
    /// Unreferenced objects kept because they are younger than `gc_grace_ms` (an ingest may
    /// be about to register them).
    pub skipped_young: u64,
    /// Versions past retention seen by this run (their manifests stay; their objects are
    /// candidates unless a retained version shares them).
    pub expired_versions: u64,
    /// What could not be done (a dataset whose manifests could not be read, a failed
    /// DELETE); nothing is deleted for a dataset that could not be decided.
    pub errors: Vec<String>,
    /// Wall time of the run in milliseconds.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ColumnType, Field};

    #[test]
    fn options_round_trip_with_a_tab_delimiter() {
        let options = CsvOptions {
            delimiter: b'\t',
            null_values: vec!["NA".into()],
            ..CsvOptions::default()
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
