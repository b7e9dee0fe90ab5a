//! How a version is stored (docs/contract.md section 10, "commit cost independent of
//! history"): the catalog's record of a version names the objects it adds and removes, not
//! every live object, and a checkpoint every [`CHECKPOINT_INTERVAL`] versions holds the whole
//! list, as the Delta log does.
//!
//! - `_catalog/datasets/<name>/<version, 20 digits>.json`: the version's record, written
//!   create-only: the commit point. A **full** record lists every object (`objects`): version
//!   1, every `replace` (it removes everything anyway), and every record written before
//!   records had deltas. A **delta** record (`changes`) lists the objects added, the keys
//!   removed, where the added ones go and how many objects the version holds; its objects are
//!   the previous version's with the change applied ([`VersionRecord::apply`]).
//! - `_catalog/checkpoints/<name>/<version, 20 digits>.json`: the whole [`Manifest`] of every
//!   [`CHECKPOINT_INTERVAL`]-th version, written create-only after the commit. A checkpoint is
//!   a shortcut, never the truth: a missing one costs reading more records, nothing else.
//!
//! So a commit writes bytes in proportion to what it changes; reading version N takes its
//! nearest full record or checkpoint at or below N and the at most [`CHECKPOINT_INTERVAL`]
//! records after it; catalogd's start reads each dataset's latest checkpoint and the records
//! after it, not every version.

use lakehouse_api::{
    ColumnReport, CsvOptions, DatasetName, Manifest, ObjectKey, ObjectRef, Operation,
    PartitionSpec, Schema, SchemaFingerprint, Source,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Every this many versions (versions `k * CHECKPOINT_INTERVAL`), a checkpoint holds the
/// version's whole manifest.
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// Prefix of every checkpoint: `_catalog/checkpoints/`.
pub(crate) const CHECKPOINT_PREFIX: &str = "_catalog/checkpoints/";

/// Key prefix of dataset `name`'s checkpoints: `_catalog/checkpoints/<name>/`.
pub(crate) fn checkpoint_prefix(name: &DatasetName) -> String {
    format!("{CHECKPOINT_PREFIX}{}/", name.as_str())
}

/// Key of the checkpoint of version `version` of `name`.
pub(crate) fn checkpoint_key(name: &DatasetName, version: u64) -> ObjectKey {
    ObjectKey::new(format!("{}{version:020}.json", checkpoint_prefix(name)))
        .expect("a dataset name and 20 digits make a valid key")
}

/// A checkpoint's content: the version's whole manifest and the version of the dataset's
/// latest tombstone at or below it (docs/contract.md section 14), so a start from the
/// checkpoint knows which older versions belong to a dropped dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Checkpoint {
    #[serde(flatten)]
    pub manifest: Manifest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drop: Option<u64>,
}

/// The stored record of one version (module docs): a [`Manifest`] whose objects are either
/// listed whole or as a change to the previous version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub name: DatasetName,
    pub version: u64,
    pub schema_fingerprint: SchemaFingerprint,
    pub schema: Schema,
    /// Every object of the version (a full record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<Vec<ObjectRef>>,
    /// What changed since the previous version (a delta record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changes: Option<Changes>,
    pub row_count: u64,
    pub created_at: String,
    pub inference_version: u32,
    pub options: CsvOptions,
    pub source: Source,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
    /// The dataset's partition spec (docs/contract.md section 10), in every record of a
    /// partitioned dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_spec: Option<PartitionSpec>,
    /// The dataset's key (docs/contract.md section 11), in every record once declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Vec<String>>,
}

/// A delta record's change to the previous version's objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Changes {
    /// Keys of the previous version's objects this one no longer holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<ObjectKey>,
    /// Objects this version adds, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<ObjectRef>,
    /// Where `added` goes among the kept objects (0-based); absent: at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insert_at: Option<u64>,
    /// How many objects the version holds.
    pub object_count: u64,
}

impl VersionRecord {
    /// The record of `manifest`: full when `previous` is `None` (version 1, a replace, a
    /// version that is checkpointed anyway), else the change from `previous`'s objects.
    pub fn of(manifest: &Manifest, previous: Option<&Manifest>) -> Self {
        let (objects, changes) = match previous {
            None => (Some(manifest.objects.clone()), None),
            Some(previous) => (None, Some(Changes::between(previous, manifest))),
        };
        VersionRecord {
            name: manifest.name.clone(),
            version: manifest.version,
            schema_fingerprint: manifest.schema_fingerprint.clone(),
            schema: manifest.schema.clone(),
            objects,
            changes,
            row_count: manifest.row_count,
            created_at: manifest.created_at.clone(),
            inference_version: manifest.inference_version,
            options: manifest.options.clone(),
            source: manifest.source.clone(),
            columns: manifest.columns.clone(),
            operation: manifest.operation,
            partition_spec: manifest.partition_spec.clone(),
            key: manifest.key.clone(),
        }
    }

    /// A checkpoint (a whole [`Manifest`]) read as a full record.
    pub fn from_manifest(manifest: Manifest) -> Self {
        VersionRecord {
            name: manifest.name,
            version: manifest.version,
            schema_fingerprint: manifest.schema_fingerprint,
            schema: manifest.schema,
            objects: Some(manifest.objects),
            changes: None,
            row_count: manifest.row_count,
            created_at: manifest.created_at,
            inference_version: manifest.inference_version,
            options: manifest.options,
            source: manifest.source,
            columns: manifest.columns,
            operation: manifest.operation,
            partition_spec: manifest.partition_spec,
            key: manifest.key,
        }
    }

    /// True when the record is a tombstone (`DELETE /datasets/{name}`).
    pub fn is_drop(&self) -> bool {
        self.operation == Some(Operation::Drop)
    }

    /// True when the record lists every object.
    pub fn is_full(&self) -> bool {
        self.objects.is_some()
    }

    /// How many objects the version holds.
    pub fn object_count(&self) -> u64 {
        match (&self.objects, &self.changes) {
            (Some(objects), _) => objects.len() as u64,
            (None, Some(changes)) => changes.object_count,
            (None, None) => 0,
        }
    }

    /// Keys of the objects (data and rejects) this record names as added: every object of a
    /// full record.
    pub fn added_keys(&self) -> impl Iterator<Item = &ObjectKey> {
        let added: &[ObjectRef] = match (&self.objects, &self.changes) {
            (Some(objects), _) => objects,
            (None, Some(changes)) => &changes.added,
            (None, None) => &[],
        };
        added.iter().flat_map(ObjectRef::keys)
    }

    /// The version's manifest: a full record's objects, or `previous` (the objects of the
    /// version before) with the change applied.
    ///
    /// # Errors
    /// A reason when a delta record is given no previous objects, or its counts do not add
    /// up (a removed key the previous version does not hold, a wrong `object_count`).
    pub fn manifest(&self, previous: Option<&[ObjectRef]>) -> Result<Manifest, String> {
        let objects = match (&self.objects, &self.changes, previous) {
            (Some(objects), _, _) => objects.clone(),
            (None, Some(changes), Some(previous)) => changes.apply(previous)?,
            (None, Some(_), None) => {
                return Err("a delta record needs the previous version's objects".into());
            }
            (None, None, _) => return Err("the record has neither objects nor changes".into()),
        };
        Ok(Manifest {
            name: self.name.clone(),
            version: self.version,
            schema_fingerprint: self.schema_fingerprint.clone(),
            schema: self.schema.clone(),
            objects,
            row_count: self.row_count,
            created_at: self.created_at.clone(),
            inference_version: self.inference_version,
            options: self.options.clone(),
            source: self.source.clone(),
            columns: self.columns.clone(),
            operation: self.operation,
            partition_spec: self.partition_spec.clone(),
            key: self.key.clone(),
        })
    }
}

impl Changes {
    /// The change from `previous`'s objects to `next`'s: removed keys in `previous`'s order,
    /// added objects in `next`'s order, placed where the first of them stands in `next`.
    fn between(previous: &Manifest, next: &Manifest) -> Self {
        let before: HashSet<&ObjectKey> = previous.objects.iter().map(|o| &o.key).collect();
        let after: HashSet<&ObjectKey> = next.objects.iter().map(|o| &o.key).collect();
        let removed = previous
            .objects
            .iter()
            .filter(|o| !after.contains(&o.key))
            .map(|o| o.key.clone())
            .collect();
        let first_added = next.objects.iter().position(|o| !before.contains(&o.key));
        let added: Vec<ObjectRef> = next
            .objects
            .iter()
            .filter(|o| !before.contains(&o.key))
            .cloned()
            .collect();
        let insert_at = first_added
            .filter(|at| at + added.len() < next.objects.len())
            .map(|at| at as u64);
        Changes {
            removed,
            added,
            insert_at,
            object_count: next.objects.len() as u64,
        }
    }

    /// `previous` with the change applied.
    fn apply(&self, previous: &[ObjectRef]) -> Result<Vec<ObjectRef>, String> {
        let removed: HashSet<&ObjectKey> = self.removed.iter().collect();
        let mut kept: Vec<ObjectRef> = previous
            .iter()
            .filter(|o| !removed.contains(&o.key))
            .cloned()
            .collect();
        if kept.len() + removed.len() != previous.len() {
            return Err("it removes an object the previous version does not hold".into());
        }
        let at = self
            .insert_at
            .map_or(kept.len(), |at| usize::try_from(at).unwrap_or(usize::MAX));
        if at > kept.len() {
            return Err(format!("insert_at {at} is past the kept objects"));
        }
        kept.splice(at..at, self.added.iter().cloned());
        if kept.len() as u64 != self.object_count {
            return Err(format!(
                "it says {} objects, the change gives {}",
                self.object_count,
                kept.len()
            ));
        }
        Ok(kept)
    }
}
