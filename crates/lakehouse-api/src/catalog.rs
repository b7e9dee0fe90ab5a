//! Bodies of catalogd's routes (docs/contract.md section 6): registering a version, listing
//! datasets and versions, and the garbage collection run.

use crate::{ColumnReport, ObjectRef, Schema, SchemaEvolution, SchemaFingerprint, Source};
use crate::{CsvOptions, DatasetName, INFERENCE_VERSION, IngestMode, Manifest, ObjectKey};
use serde::{Deserialize, Serialize};

/// Body of `POST /datasets/{name}/versions` (catalogd).
///
/// `options` and `inference_version` go beyond the four fields docs/contract.md section 6 lists:
/// the manifest records them, so the registering client has to say them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionRegisterRequest {
    /// Must equal `schema.fingerprint()`, or the request is a 400 `fingerprint_mismatch`.
    pub schema_fingerprint: SchemaFingerprint,
    /// Schema of the objects.
    pub schema: Schema,
    /// Objects of this upload, each already stored in storaged.
    pub objects: Vec<ObjectRef>,
    /// `replace`, `append`, `merge` or `delete` (docs/contract.md sections 6 and 11).
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
    /// The upload's inference report (docs/contract.md section 3), recorded in the manifest.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnReport>,
    /// `add_columns`: a schema that is the latest version's fields in order followed by new
    /// ones is a new schema version, not drift (docs/contract.md sections 3 and 6); checked under
    /// the commit, so two racing evolutions cannot both win. Absent: any other fingerprint
    /// than the latest version's is a 409.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_evolution: Option<SchemaEvolution>,
    /// Validate and answer the version a register would make (`existing`, the manifest with
    /// its version number) without writing anything: no manifest, no Iceberg metadata, and
    /// the objects need not be stored (ingestd's `dry_run`, docs/contract.md section 6).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Compaction (docs/contract.md section 10): keys of objects of the latest version that
    /// `objects` replace, rows unchanged. Non-empty makes the version the latest one minus
    /// these plus `objects` (operation `compact`, `mode` ignored), committed only while every
    /// one of them is still live: otherwise a 409 `conflict` and nothing is written. When
    /// the latest version already holds every object of `objects` and none of these, the
    /// answer is that version with `existing: true` (a racing compaction won).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaces: Vec<ObjectKey>,
    /// The partition spec the objects were written with (docs/contract.md section 10): a new
    /// dataset records it; a later version must give the recorded one, else a 409
    /// `partition_spec_mismatch` naming both and nothing is written. Absent: unpartitioned
    /// (a partitioned dataset refuses it alike).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_spec: Option<crate::PartitionSpec>,
    /// `merge` and `delete` (docs/contract.md section 11): the key columns. The first one
    /// declares them; another key than the recorded one is a 409 `key_mismatch`, nothing
    /// written. Absent for the other modes, which keep the recorded key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
    /// `merge` and `delete`: the version the change was planned on. Committed only while it
    /// is still the latest, else a 409 `conflict` and nothing written (the caller plans
    /// again on the new latest version, so no update is lost or applied twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<u64>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

fn default_inference_version() -> u32 {
    INFERENCE_VERSION
}

/// 200 answer of `POST /datasets/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionRegisterResponse {
    /// The new version, or the latest one when `existing` is true.
    pub manifest: Manifest,
    /// True when the latest version already was what the request asked for (docs/contract.md
    /// section 2, invariant 4): no new version was made.
    pub existing: bool,
    /// True when the request was a dry run: `manifest` is the version a register would
    /// make, and nothing was written.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
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
    pub schema_fingerprint: SchemaFingerprint,
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

/// Answer of `DELETE /datasets/{name}`: the tombstone version that dropped the dataset
/// (docs/contract.md section 14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatasetDropResponse {
    /// The dataset dropped.
    pub name: DatasetName,
    /// The tombstone's version number: a new dataset under the name starts after it.
    pub version: u64,
}

/// One version in `GET /datasets/{name}/versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionSummary {
    /// Version number.
    pub version: u64,
    /// Its fingerprint.
    pub schema_fingerprint: SchemaFingerprint,
    /// Its rows.
    pub row_count: u64,
    /// How many objects it references.
    pub object_count: u64,
    /// Its commit time.
    pub created_at: String,
    /// What made it (`replace`, `append`, `compact`); absent for versions that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<crate::Operation>,
    /// True when the version is past retention (`retain_versions` / `retain_ms` of catalogd):
    /// `GET /datasets/{name}/versions/{n}` answers it 410 `gone` and its objects may already
    /// be garbage collected (docs/decisions.md, "Garbage collection and retention"). Absent (false) from peers that predate retention.
    #[serde(default)]
    pub gone: bool,
}

/// Answer of `GET /datasets/{name}/versions[?limit=&cursor=]`: one page of versions,
/// ascending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionListResponse {
    /// Dataset name.
    pub name: DatasetName,
    /// Versions ascending.
    pub versions: Vec<VersionSummary>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Answer of catalogd's `POST /admin/gc[?dry_run=true]`: what one garbage collection run
/// over `datasets/` did (docs/decisions.md, "Garbage collection and retention").
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
