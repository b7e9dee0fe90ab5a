//! TEMPORARY stand-in for the incremental projection being built on the `iceberg` branch:
//! it writes no files. Replaced by that branch's crate before anything lands.

use crate::{FileMetrics, Result};
use lakehouse_api::{DatasetName, Manifest, ObjectRef};
use std::collections::HashMap;

/// Bounds of the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableConfig {
    /// Merge manifests past this many.
    pub manifest_merge_count: usize,
    /// Merge target.
    pub manifest_target_bytes: u64,
    /// At most this many snapshots.
    pub max_snapshots: usize,
    /// Metadata log bound.
    pub max_metadata_log: usize,
}

impl Default for TableConfig {
    fn default() -> Self {
        TableConfig {
            manifest_merge_count: 100,
            manifest_target_bytes: 8 * 1024 * 1024,
            max_snapshots: 1000,
            max_metadata_log: 100,
        }
    }
}

/// A version's change.
#[derive(Debug)]
pub struct VersionChange<'a> {
    /// The version.
    pub manifest: &'a Manifest,
    /// Added objects and their metrics.
    pub added: &'a [(ObjectRef, FileMetrics)],
    /// Removed objects.
    pub removed: &'a [ObjectRef],
    /// Oldest retained version.
    pub oldest_retained: u64,
}

/// A file to write.
#[derive(Debug, Clone)]
pub struct TableFile {
    /// Its key.
    pub key: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

/// The table at one version.
#[derive(Debug, Clone)]
pub struct TableState {
    version: Option<u64>,
}

impl TableState {
    /// Before version 1.
    pub fn empty(_base: &str, _name: &DatasetName) -> Self {
        TableState { version: None }
    }
    /// From files.
    ///
    /// # Errors
    /// Never in the stand-in.
    pub fn from_files(
        _base: &str,
        _name: &DatasetName,
        _json: &[u8],
        _list: &[u8],
    ) -> Result<Self> {
        Ok(TableState { version: None })
    }
    /// The manifest list key a metadata JSON names.
    ///
    /// # Errors
    /// Never in the stand-in.
    pub fn list_key_of(_base: &str, _name: &DatasetName, _json: &[u8]) -> Result<String> {
        Ok(String::new())
    }
    /// Its version.
    pub fn version(&self) -> Option<u64> {
        self.version
    }
    /// Manifests to read.
    pub fn manifests_to_read(
        &self,
        _change: &VersionChange<'_>,
        _config: &TableConfig,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    /// Commit.
    ///
    /// # Errors
    /// Never in the stand-in.
    pub fn commit(
        &self,
        change: &VersionChange<'_>,
        _manifests: &HashMap<String, Vec<u8>>,
        _config: &TableConfig,
    ) -> Result<(Vec<TableFile>, TableState)> {
        Ok((
            Vec::new(),
            TableState {
                version: Some(change.manifest.version),
            },
        ))
    }
    /// Keys to keep.
    ///
    /// # Errors
    /// Never in the stand-in.
    pub fn referenced_keys(
        &self,
        _oldest_list: &[u8],
    ) -> Result<std::collections::BTreeSet<String>> {
        Ok(Default::default())
    }
    /// Oldest snapshot.
    pub fn oldest_snapshot_version(&self) -> Option<u64> {
        None
    }
    /// Oldest list key.
    pub fn oldest_list_key(&self) -> Option<String> {
        None
    }
}
