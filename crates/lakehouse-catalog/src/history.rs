//! One dataset's versions in memory: the records loaded so far and the latest version's
//! manifest, materialized (docs/contract.md section 10).
//!
//! At load the records held run from the dataset's latest checkpoint (or its first version)
//! to the latest version; older records are read from the store when a lookup, a page of
//! the version list or garbage collection needs them ([`crate::Catalog`]), so the held ones
//! may have gaps below. Records are immutable once written: this only ever grows.

use crate::record::VersionRecord;
use lakehouse_api::{Manifest, ObjectRef};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// What the catalog holds of one dataset (module docs).
#[derive(Debug, Clone)]
pub(crate) struct History {
    /// Loaded records by version: every version from the load's base to the latest, and
    /// whichever older ones were read since.
    records: BTreeMap<u64, Arc<VersionRecord>>,
    /// The latest version, objects and all.
    latest: Arc<Manifest>,
    /// Versions whose checkpoint is known to be stored.
    checkpoints: BTreeSet<u64>,
    /// The latest tombstone's version: versions up to it belong to a dropped dataset.
    last_drop: Option<u64>,
}

impl History {
    /// The history of a dataset loaded from `base` (a full record, a checkpoint read as one),
    /// whose manifest is `manifest`.
    pub fn new(base: Arc<VersionRecord>, manifest: Arc<Manifest>, last_drop: Option<u64>) -> Self {
        let last_drop = if base.is_drop() {
            Some(base.version)
        } else {
            last_drop
        };
        History {
            records: BTreeMap::from([(base.version, base)]),
            latest: manifest,
            checkpoints: BTreeSet::new(),
            last_drop,
        }
    }

    /// The latest tombstone's version, when the dataset was ever dropped.
    pub fn last_drop(&self) -> Option<u64> {
        self.last_drop
    }

    /// True when the latest version is a tombstone: the dataset is dropped.
    pub fn is_dropped(&self) -> bool {
        self.last_drop == Some(self.latest.version)
    }

    /// The latest version's manifest.
    pub fn latest(&self) -> &Arc<Manifest> {
        &self.latest
    }

    /// The record of `version`, when held.
    pub fn record(&self, version: u64) -> Option<&Arc<VersionRecord>> {
        self.records.get(&version)
    }

    /// Records of versions `from..=to` that are held, ascending (none when `from > to`).
    pub fn records(&self, from: u64, to: u64) -> impl Iterator<Item = &Arc<VersionRecord>> {
        let range = if from <= to {
            self.records.range(from..=to)
        } else {
            self.records.range(0..0)
        };
        range.map(|(_, record)| record)
    }

    /// Adds the record of the version after the latest, whose manifest is `manifest`.
    pub fn push(&mut self, record: Arc<VersionRecord>, manifest: Arc<Manifest>) {
        debug_assert_eq!(record.version, self.latest.version + 1);
        if record.is_drop() {
            self.last_drop = Some(record.version);
        }
        self.records.insert(record.version, record);
        self.latest = manifest;
    }

    /// Adds older records read from the store (versions below the latest; others ignored).
    pub fn insert_older(&mut self, records: impl IntoIterator<Item = Arc<VersionRecord>>) {
        for record in records {
            if record.version < self.latest.version {
                self.records.entry(record.version).or_insert(record);
            }
        }
    }

    /// Notes that version `version`'s checkpoint is stored.
    pub fn mark_checkpoint(&mut self, version: u64) {
        self.checkpoints.insert(version);
    }

    /// Whether version `version`'s checkpoint is known to be stored.
    pub fn has_checkpoint(&self, version: u64) -> bool {
        self.checkpoints.contains(&version)
    }

    /// The highest version at or below `version` whose record is full and held with every
    /// record after it up to `version`: where [`History::materialize`] starts.
    pub fn full_at_or_below(&self, version: u64) -> Option<u64> {
        let mut expected = version;
        for (v, record) in self.records.range(..=version).rev() {
            if *v != expected {
                return None;
            }
            if record.is_full() {
                return Some(*v);
            }
            expected = v.checked_sub(1)?;
        }
        None
    }

    /// Versions at or below `version` whose records are not held, walking down until a held
    /// full record, at most `limit` of them, descending.
    pub fn missing_below(&self, version: u64, limit: usize) -> Vec<u64> {
        let mut missing = Vec::new();
        let mut v = version;
        while v >= 1 && missing.len() < limit {
            match self.records.get(&v) {
                Some(record) if record.is_full() => break,
                Some(_) => {}
                None => missing.push(v),
            }
            v -= 1;
        }
        missing
    }

    /// The manifest of `version` from held records only: the nearest full record at or
    /// below it with the changes after it applied. `None` when no held full record is below
    /// it (older records must be read first).
    ///
    /// # Errors
    /// The reason when a record does not apply (a corrupt chain).
    pub fn materialize(&self, version: u64) -> Result<Option<Manifest>, String> {
        if version == self.latest.version {
            return Ok(Some(Manifest::clone(&self.latest)));
        }
        let Some(base) = self.full_at_or_below(version) else {
            return Ok(None);
        };
        let mut objects: Option<Vec<ObjectRef>> = None;
        let mut manifest = None;
        for record in self.records(base, version) {
            let next = record.manifest(objects.as_deref())?;
            objects = Some(next.objects.clone());
            manifest = Some(next);
        }
        Ok(manifest.filter(|m| m.version == version))
    }
}
