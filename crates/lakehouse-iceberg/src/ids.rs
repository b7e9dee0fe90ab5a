//! Deterministic identifiers (docs/contract.md section 8: "derive ... from the file's identity, never
//! at random").
//!
//! Each is the SHA-256 of a domain tag, a NUL byte and the identity, cut to size:
//! - `table-uuid`: `"lakehouse-iceberg/table-uuid" 0x00 <name>`, first 16 bytes, with the
//!   version (8, "custom") and variant bits of RFC 9562 set;
//! - snapshot id of version N: `"lakehouse-iceberg/snapshot-id" 0x00 <name> 0x00 <N in
//!   decimal>`, first 8 bytes big-endian with the sign bit cleared (Iceberg ids are positive
//!   longs); a zero result becomes 1;
//! - Avro sync marker of a file: `"lakehouse-iceberg/avro-sync" 0x00 <object key>`, first
//!   16 bytes;
//! - commit tag of version N (in its Avro files' names, [`crate::layout::version_stem`]):
//!   `"lakehouse-iceberg/commit-tag" 0x00 <N's record>`, first 8 bytes in lowercase hex.

use lakehouse_api::DatasetName;
use sha2::{Digest, Sha256};

fn digest(tag: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(tag.as_bytes());
    for part in parts {
        hasher.update([0u8]);
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The table's `table-uuid`, from its dataset name.
pub fn table_uuid(name: &DatasetName) -> uuid::Uuid {
    let hash = digest("lakehouse-iceberg/table-uuid", &[name.as_str().as_bytes()]);
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The snapshot id of version `version` of `name`: a positive `i64`.
pub fn snapshot_id(name: &DatasetName, version: u64) -> i64 {
    let hash = digest(
        "lakehouse-iceberg/snapshot-id",
        &[name.as_str().as_bytes(), version.to_string().as_bytes()],
    );
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&hash[..8]);
    let id = (u64::from_be_bytes(bytes) & 0x7fff_ffff_ffff_ffff) as i64;
    if id == 0 { 1 } else { id }
}

/// The 16-byte Avro sync marker of the file stored at `key`.
pub fn sync_marker(key: &str) -> [u8; 16] {
    let hash = digest("lakehouse-iceberg/avro-sync", &[key.as_bytes()]);
    let mut marker = [0u8; 16];
    marker.copy_from_slice(&hash[..16]);
    marker
}

/// The commit tag of a version whose record (the catalog's bytes of it) is `record`: 16
/// lowercase hex digits.
pub fn commit_tag(record: &[u8]) -> String {
    use std::fmt::Write;
    let hash = digest("lakehouse-iceberg/commit-tag", &[record]);
    hash[..8]
        .iter()
        .fold(String::with_capacity(16), |mut tag, byte| {
            let _ = write!(tag, "{byte:02x}");
            tag
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_identity_only() {
        let a = DatasetName::new("sales").unwrap();
        let b = DatasetName::new("sales2").unwrap();
        assert_ne!(table_uuid(&a), table_uuid(&b));
        assert_eq!(table_uuid(&a).get_version_num(), 8);
        assert_ne!(snapshot_id(&a, 1), snapshot_id(&a, 2));
        assert_ne!(snapshot_id(&a, 1), snapshot_id(&b, 1));
        assert!((1..200).all(|v| snapshot_id(&a, v) > 0));
        assert_ne!(sync_marker("x"), sync_marker("y"));
        assert_ne!(commit_tag(b"x"), commit_tag(b"y"));
        assert_eq!(commit_tag(b"x").len(), 16);
    }

    /// Known answers computed outside this code (Python's `hashlib` and `uuid`, from the
    /// recipe in the module docs), so a change of the recipe, which would give every table a
    /// new identity and every file new bytes, cannot pass unnoticed.
    #[test]
    fn ids_match_the_documented_recipe() {
        let sales = DatasetName::new("sales").unwrap();
        assert_eq!(
            table_uuid(&sales).to_string(),
            "5f72555b-14c2-8921-a4a4-109a0c0240a0"
        );
        assert_eq!(snapshot_id(&sales, 1), 875_174_437_613_820_040);
        assert_eq!(snapshot_id(&sales, 2), 3_383_088_449_716_592_380);
        assert_eq!(
            hex::encode(sync_marker("datasets/sales/metadata/v1.metadata.json")),
            "06e3d8c5ed74ff7ce1a02dca0cb55280"
        );
        assert_eq!(commit_tag(br#"{"version":1}"#), "4c7c92e467efeb46");
    }
}
