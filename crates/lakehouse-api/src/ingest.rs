//! Bodies of ingestd's routes (docs/contract.md section 6).

use crate::{ColumnReport, Manifest, ObjectKey, ObjectRef, RejectsRef, Schema};
use serde::{Deserialize, Serialize};

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
    /// Key of this upload's Parquet object in storaged (of its first one, in partition
    /// order, when it wrote several: `objects` lists them all).
    pub parquet_key: ObjectKey,
    /// Size of that object, bytes.
    pub parquet_size: u64,
    /// Every Parquet object this upload wrote (docs/contract.md section 10): one for an
    /// unpartitioned dataset, one or more per partition value for a partitioned one, in
    /// partition order, each with its key, size, rows and partition tuple.
    #[serde(default)]
    pub objects: Vec<ObjectRef>,
    /// Schema the object was written with.
    pub schema: Schema,
    /// Header renames and similar notes (docs/contract.md section 3).
    pub warnings: Vec<String>,
    /// The inference report of this upload, one entry per column (docs/contract.md section 3).
    #[serde(default)]
    pub columns: Vec<ColumnReport>,
    /// The records this upload set aside (`max_rejects`, docs/contract.md section 3): the rejects
    /// object's key and count (also in the manifest, on this upload's object); null when
    /// none were.
    #[serde(default)]
    pub rejects: Option<RejectsRef>,
    /// True for `dry_run=true` (docs/contract.md section 6): the answer is what the ingest would
    /// have answered (`manifest` the version it would make, `parquet_key` the object it would
    /// store), and nothing was written.
    #[serde(default)]
    pub dry_run: bool,
    /// What a `mode=merge` or `mode=delete` did (docs/contract.md section 11); absent for
    /// the other modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<MergeCounts>,
}

/// The counts of a merge or delete by key (docs/contract.md section 11). Rows are counted
/// once each: an upload row of a merge is `inserted`, `updated` or `unchanged`; a key of a
/// delete is `deleted` (every row with it removed counts) or `not_found`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MergeCounts {
    /// Upload rows whose key the table did not hold, added.
    pub inserted: u64,
    /// Upload rows that replaced a row with their key and another value in some column.
    pub updated: u64,
    /// Upload rows equal in every column to the row they would replace: nothing changed.
    pub unchanged: u64,
    /// Rows a delete removed.
    pub deleted: u64,
    /// Keys of a delete that no row held.
    pub not_found: u64,
    /// Files the version added: the upload's rows, and the rewrite of each file that held
    /// a replaced or deleted row, without it.
    pub files_added: u64,
    /// Live files the version removed: those that held a replaced or deleted row.
    pub files_removed: u64,
}

/// 200 answer of `POST /datasets/{name}/compact[?dry_run=true]` (ingestd; docs/contract.md
/// section 10): what a compaction did. Each contiguous run of small live files of the latest
/// version is rewritten into files of at most `target_file_bytes` and committed as one
/// version (operation `compact`, rows and their order unchanged), so one call makes one
/// version per run (usually one). A dataset with nothing to compact answers
/// `manifest: null`, no version and every count 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompactResponse {
    /// The latest version after the compaction: the last one it made (with `existing`, the
    /// one that already held its result; for a dry run, the one it would make). Null when
    /// there was nothing to compact.
    pub manifest: Option<Manifest>,
    /// The versions this call made, ascending (empty for a dry run, for nothing to
    /// compact, and when `existing`).
    #[serde(default)]
    pub versions: Vec<u64>,
    /// True when no version was made because the latest one already held the result (a
    /// racing compaction of the same files, on this or another replica, committed it).
    pub existing: bool,
    /// True for `dry_run=true`: the files were read and rewritten into a digest only, the
    /// counts and keys are what the compaction would give, and nothing was written.
    #[serde(default)]
    pub dry_run: bool,
    /// Live files replaced (read and rewritten).
    pub files_removed: u64,
    /// Files written in their place.
    pub files_added: u64,
    /// Total size of the replaced files, bytes.
    pub bytes_before: u64,
    /// Total size of the files written, bytes.
    pub bytes_after: u64,
    /// Rows rewritten (the same rows in the same order).
    pub rows: u64,
    /// Keys of the replaced files, in the order they were live.
    #[serde(default)]
    pub removed: Vec<ObjectKey>,
    /// The files written, in row order.
    #[serde(default)]
    pub added: Vec<ObjectRef>,
}
