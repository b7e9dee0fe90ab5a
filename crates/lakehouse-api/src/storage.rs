//! Bodies of storaged's routes (docs/contract.md section 6). The object bytes themselves travel as
//! raw HTTP bodies, not JSON.

use crate::{ObjectKey, Sha256Digest};
use serde::{Deserialize, Serialize};

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
pub struct ObjectListResponse {
    /// At most `limit` objects, ascending by key.
    pub objects: Vec<ObjectInfo>,
    /// Pass as `start_after` to get the next page; absent on the last page.
    pub next_start_after: Option<String>,
    /// With `delimiter=/`: the "directories" right under the prefix, each ending in `/`,
    /// ascending (then `objects` is empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub common_prefixes: Vec<String>,
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
