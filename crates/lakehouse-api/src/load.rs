//! Bodies of ingestd's `/loads` routes (docs/contract.md section 12): loading the files of a
//! configured source, each exactly once, through the same pipeline as `POST /ingest`.

use crate::{DatasetName, ErrorInfo};
use serde::{Deserialize, Serialize};

/// Body of `POST /loads` (ingestd). Unknown fields are refused (400).
///
/// The reading options are those of `POST /ingest`, spelt the same way (`null_values` is the
/// same comma-separated string); each file of the load is ingested with them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoadCreateRequest {
    /// A configured source's name (`[[ingestd.sources]]`); an unknown one is a 400.
    pub source: String,
    /// A path or glob under the source's URL (`*` and `?` within a segment, `**` across
    /// segments, `[...]` classes): no `..` segment, not absolute, not a URL.
    pub pattern: String,
    /// Dataset to load into, `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
    pub name: String,
    /// `append` (the default) or `merge` (each file merged by `key` in turn,
    /// docs/contract.md section 11); `replace` would keep only the last file and `delete`
    /// is for one key list: both are a 400.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `merge`: the key columns, as `/ingest`'s `key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Load files a version of the dataset already records too (default false).
    #[serde(default)]
    pub force: bool,
    /// As `POST /ingest`'s `delimiter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// As `POST /ingest`'s `null_values`: comma-separated tokens, e.g. `"NA,NULL"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_values: Option<String>,
    /// As `POST /ingest`'s `encoding`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// As `POST /ingest`'s `schema_evolution` (`add_columns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_evolution: Option<String>,
    /// As `POST /ingest`'s `max_rejects`, per file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejects: Option<u64>,
    /// `.` or `,`: the decimal separator of float64 values, as `/ingest`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decimal_separator: Option<String>,
    /// `DMY` or `MDY`: how a new dataset's `P/Q/YYYY` columns are read, as `/ingest`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date_order: Option<String>,
    /// A new dataset's partitioning, as `/ingest`'s `partition_by` (docs/contract.md section
    /// 10), e.g. `"day(ts),bucket(16,id)"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
}

/// 202 answer of `POST /loads`: the load runs on; `GET /loads/{load_id}` follows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadCreateResponse {
    /// The load's id.
    pub load_id: String,
}

/// Where a load stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoadState {
    /// Files are being listed or loaded.
    Running,
    /// Every file was tried; a file's own failure is in its entry.
    Done,
    /// The load itself could not go on (the source could not be listed, the service is
    /// shutting down): `error` says why; files not tried stay `pending`.
    Failed,
}

/// Where one file of a load stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LoadFileState {
    /// Not tried yet.
    Pending,
    /// Ingested: `version` holds it (`existing: true` when the dataset already held the same
    /// Parquet object, so no version was made).
    Loaded,
    /// Not read, for `reason` (`already_loaded`: a version of the dataset records this
    /// path, ETag and size).
    Skipped,
    /// Its ingest failed: `error` is the answer `POST /ingest` would have given.
    Failed,
}

/// One file of a load, in key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadFile {
    /// Path under the source's URL.
    pub path: String,
    /// The ETag listed, when the source gives one.
    pub etag: Option<String>,
    /// Size listed, bytes.
    pub size: u64,
    /// Where it stands.
    pub state: LoadFileState,
    /// Why it was skipped (`already_loaded`), for `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The version that records it: the one it made, or for `already_loaded` the one that
    /// recorded it.
    pub version: Option<u64>,
    /// For `loaded`: whether the dataset already held its Parquet object (no new version).
    pub existing: Option<bool>,
    /// For `failed`: the error, as `POST /ingest` would have answered it.
    pub error: Option<ErrorInfo>,
}

/// `GET /loads/{id}` (and `POST /loads?wait=true` once the load ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadGetResponse {
    /// The load's id.
    pub load_id: String,
    /// The source read.
    pub source: String,
    /// The pattern matched.
    pub pattern: String,
    /// The dataset loaded into.
    pub name: DatasetName,
    /// Whether files already loaded were loaded again.
    pub force: bool,
    /// Where the load stands.
    pub state: LoadState,
    /// When the load was created, RFC 3339 UTC.
    pub created_at: String,
    /// When it ended, RFC 3339 UTC; null while running.
    pub finished_at: Option<String>,
    /// Files matched (0 until the source is listed, and for a pattern matching nothing).
    pub files_total: u64,
    /// Files tried (loaded, skipped or failed).
    pub files_done: u64,
    /// Bytes of the matched files, as listed.
    pub bytes_total: u64,
    /// Bytes of the files tried, plus those read so far of the one in progress.
    pub bytes_done: u64,
    /// For `failed`: why the load could not go on.
    pub error: Option<ErrorInfo>,
    /// Every matched file, in key order.
    pub files: Vec<LoadFile>,
}

impl LoadGetResponse {
    /// The files in `state`.
    pub fn count(&self, state: LoadFileState) -> usize {
        self.files.iter().filter(|f| f.state == state).count()
    }
}

/// One load in `GET /loads`: [`LoadGetResponse`] without the file list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadSummary {
    /// The load's id.
    pub load_id: String,
    /// The source read.
    pub source: String,
    /// The pattern matched.
    pub pattern: String,
    /// The dataset loaded into.
    pub name: DatasetName,
    /// Where the load stands.
    pub state: LoadState,
    /// When it was created, RFC 3339 UTC.
    pub created_at: String,
    /// When it ended; null while running.
    pub finished_at: Option<String>,
    /// Files matched.
    pub files_total: u64,
    /// Files tried.
    pub files_done: u64,
    /// Files loaded (a version made, or `existing`).
    pub files_loaded: u64,
    /// Files skipped.
    pub files_skipped: u64,
    /// Files failed.
    pub files_failed: u64,
    /// Bytes matched.
    pub bytes_total: u64,
    /// Bytes tried.
    pub bytes_done: u64,
}

impl From<&LoadGetResponse> for LoadSummary {
    fn from(load: &LoadGetResponse) -> Self {
        let count = |state| load.count(state) as u64;
        LoadSummary {
            load_id: load.load_id.clone(),
            source: load.source.clone(),
            pattern: load.pattern.clone(),
            name: load.name.clone(),
            state: load.state,
            created_at: load.created_at.clone(),
            finished_at: load.finished_at.clone(),
            files_total: load.files_total,
            files_done: load.files_done,
            files_loaded: count(LoadFileState::Loaded),
            files_skipped: count(LoadFileState::Skipped),
            files_failed: count(LoadFileState::Failed),
            bytes_total: load.bytes_total,
            bytes_done: load.bytes_done,
        }
    }
}

/// `GET /loads`: the loads this ingestd ran since it started (the most recent ones), newest
/// first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadListResponse {
    /// Newest first.
    pub loads: Vec<LoadSummary>,
}

/// One file a version of a dataset records as read by a load (`source.file`), in catalogd's
/// `GET /datasets/{name}/loaded-files`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadedFile {
    /// The version that records it.
    pub version: u64,
    /// The file, as the load read it.
    pub file: crate::SourceFile,
}

/// `GET /datasets/{name}/loaded-files[?source=]` (catalogd): the ledger of loads
/// (docs/contract.md section 12), every version's `source.file`, versions past retention
/// included, ascending by version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadedFileListResponse {
    /// The dataset.
    pub name: DatasetName,
    /// Ascending by version.
    pub files: Vec<LoadedFile>,
}
