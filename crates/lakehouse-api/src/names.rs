//! Validated names: dataset names, object keys and SHA-256 digests (docs/contract.md section 6).

use crate::SchemaFingerprint;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a name, key or digest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a dataset name of docs/contract.md section 6.
    #[error("invalid dataset name {0:?}: must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,127}}$")]
    DatasetName(String),
    /// Not an object key of docs/contract.md section 6.
    #[error("invalid object key {key:?}: {reason}")]
    ObjectKey {
        /// The refused key (as given).
        key: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// Not 64 lowercase hex digits.
    #[error("invalid sha-256 digest {0:?}: must be 64 lowercase hex digits")]
    Sha256(String),
    /// Not a schema fingerprint of docs/contract.md section 4.
    #[error("invalid schema fingerprint {0:?}: must be sha256: and 64 lowercase hex digits")]
    Fingerprint(String),
}

/// A dataset name: `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$` (docs/contract.md section 6).
///
/// Safe to use as one object-key segment: it has no `/` and is never `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct DatasetName(String);

impl DatasetName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`NameError::DatasetName`] when it does not match the pattern above.
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        let bytes = name.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 128
            && bytes[0].is_ascii_alphanumeric()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(DatasetName(name))
        } else {
            Err(NameError::DatasetName(name))
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DatasetName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        DatasetName::new(value)
    }
}

impl From<DatasetName> for String {
    fn from(value: DatasetName) -> Self {
        value.0
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maximum length of an object key, in bytes (docs/contract.md section 6).
pub const MAX_KEY_BYTES: usize = 1024;

/// An object key: `/`-separated segments of `[A-Za-z0-9._=-]`, no empty, `.` or `..`
/// segment, at most 1024 bytes (docs/contract.md section 6).
///
/// A valid key never escapes the storage root when joined to a directory path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `key`.
    ///
    /// # Errors
    /// [`NameError::ObjectKey`] naming the rule the key breaks.
    pub fn new(key: impl Into<String>) -> Result<Self, NameError> {
        let key = key.into();
        let reason = if key.is_empty() {
            Some("empty key")
        } else if key.len() > MAX_KEY_BYTES {
            Some("longer than 1024 bytes")
        } else {
            key.split('/').find_map(|segment| {
                if segment.is_empty() {
                    Some("empty segment")
                } else if segment == "." || segment == ".." {
                    Some("`.` or `..` segment")
                } else if !segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'=' | b'-'))
                {
                    Some("segment with a character outside [A-Za-z0-9._=-]")
                } else {
                    None
                }
            })
        };
        match reason {
            None => Ok(ObjectKey(key)),
            Some(reason) => Err(NameError::ObjectKey { key, reason }),
        }
    }

    /// The key as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Content-addressed key of a dataset's Parquet object (docs/contract.md section 5):
    /// `datasets/<name>/<fp_hex>/<sha256-of-the-parquet-bytes-hex>.parquet`.
    pub fn parquet_object(
        name: &DatasetName,
        fingerprint: &SchemaFingerprint,
        sha: &Sha256Digest,
    ) -> Self {
        ObjectKey(format!(
            "{}/{}.parquet",
            Self::parquet_dir(name, fingerprint).0,
            sha.as_str()
        ))
    }

    /// The folder of a dataset's Parquet objects of one schema, `datasets/<name>/<fp_hex>`:
    /// where ingestd's content-addressed POST puts them (storaged names each
    /// `<sha256-hex>.parquet`, as [`ObjectKey::parquet_object`]). `<fp_hex>` is the
    /// fingerprint's 64 hex digits ([`SchemaFingerprint::hex`]), so the key is valid.
    pub fn parquet_dir(name: &DatasetName, fingerprint: &SchemaFingerprint) -> Self {
        ObjectKey(format!("datasets/{}/{}", name.as_str(), fingerprint.hex()))
    }

    /// Directory of dataset `name`'s rejects objects (docs/contract.md section 3, "Rejects"):
    /// `datasets/<name>/_rejects`.
    pub fn rejects_dir(name: &DatasetName) -> Self {
        ObjectKey(format!("datasets/{}/_rejects", name.as_str()))
    }

    /// Key of the rejects object of `name` whose bytes hash to `sha`:
    /// `datasets/<name>/_rejects/<sha>.csv`.
    pub fn rejects_object(name: &DatasetName, sha: &Sha256Digest) -> Self {
        ObjectKey(format!(
            "{}/{}.csv",
            Self::rejects_dir(name).0,
            sha.as_str()
        ))
    }

    /// Key of version `version` of dataset `name`'s manifest (docs/contract.md section 6):
    /// `_catalog/datasets/<name>/<version as 20 digits>.json`.
    pub fn manifest(name: &DatasetName, version: u64) -> Self {
        ObjectKey(format!(
            "_catalog/datasets/{}/{version:020}.json",
            name.as_str()
        ))
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        ObjectKey::new(value)
    }
}

impl From<ObjectKey> for String {
    fn from(value: ObjectKey) -> Self {
        value.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A SHA-256 digest as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest(String);

impl Sha256Digest {
    /// Validates `hex`.
    ///
    /// # Errors
    /// [`NameError::Sha256`] unless it is exactly 64 lowercase hex digits.
    pub fn new(hex: impl Into<String>) -> Result<Self, NameError> {
        let hex = hex.into();
        if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Sha256Digest(hex))
        } else {
            Err(NameError::Sha256(hex))
        }
    }

    /// From the 32 raw digest bytes.
    pub fn from_bytes(digest: [u8; 32]) -> Self {
        Sha256Digest(hex::encode(digest))
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Sha256Digest {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Sha256Digest::new(value)
    }
}

impl From<Sha256Digest> for String {
    fn from(value: Sha256Digest) -> Self {
        value.0
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_names_follow_the_pattern() {
        for ok in ["a", "flights", "A.b_c-d", "0", &"x".repeat(128)] {
            assert!(DatasetName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "-a",
            "_a",
            "a/b",
            "a b",
            "ä",
            "..",
            &"x".repeat(129),
        ] {
            assert!(DatasetName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_never_escape_the_root() {
        for ok in ["a", "a/b.c", "datasets/x/y=1/z-2.parquet", "_catalog/a/b"] {
            assert!(ObjectKey::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", ".", "..", "a/../b", "a/./b", "a\\b", "a b", "%2e%2e", "a\0b",
            "é",
        ] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?}");
        }
        assert!(ObjectKey::new("a".repeat(1024)).is_ok());
        assert!(ObjectKey::new("a".repeat(1025)).is_err());
    }

    #[test]
    fn manifest_keys_sort_by_version() {
        let name = DatasetName::new("d").unwrap();
        let k9 = ObjectKey::manifest(&name, 9);
        let k10 = ObjectKey::manifest(&name, 10);
        assert_eq!(k9.as_str(), "_catalog/datasets/d/00000000000000000009.json");
        assert!(k9 < k10);
    }

    #[test]
    fn digests_are_lowercase_hex() {
        assert!(Sha256Digest::new("a".repeat(64)).is_ok());
        assert!(Sha256Digest::new("A".repeat(64)).is_err());
        assert!(Sha256Digest::new("a".repeat(63)).is_err());
    }
}
