//! Bodies of ingestd's routes (DESIGN.md section 6).

use crate::{ColumnReport, Manifest, ObjectKey, RejectsRef, Schema};
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
    /// Key of this upload's Parquet object in storaged.
    pub parquet_key: ObjectKey,
    /// Size of that object, bytes.
    pub parquet_size: u64,
    /// Schema the object was written with.
    pub schema: Schema,
    /// Header renames and similar notes (DESIGN.md section 3).
    pub warnings: Vec<String>,
    /// The inference report of this upload, one entry per column (DESIGN.md section 3).
    #[serde(default)]
    pub columns: Vec<ColumnReport>,
    /// The records this upload set aside (`max_rejects`, DESIGN.md section 3): the rejects
    /// object's key and count (also in the manifest, on this upload's object); null when
    /// none were.
    #[serde(default)]
    pub rejects: Option<RejectsRef>,
    /// True for `dry_run=true` (DESIGN.md section 6): the answer is what the ingest would
    /// have answered (`manifest` the version it would make, `parquet_key` the object it would
    /// store), and nothing was written.
    #[serde(default)]
    pub dry_run: bool,
}
