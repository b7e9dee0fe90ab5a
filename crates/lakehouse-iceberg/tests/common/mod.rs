//! Helpers of the projection tests: a table driven through `TableState::commit` the way
//! catalogd drives it (read what it asks for, write what it returns create-only), with
//! everything written kept, and readers of what was written.

#![allow(dead_code)] // each test file uses its own share

use apache_avro::Reader;
use apache_avro::types::Value;
use lakehouse_api::{
    ColumnType, CsvOptions, DatasetName, Field, Manifest, ObjectKey, ObjectRef, Operation,
    PartitionSpec, PartitionTuple, Schema, Sha256Digest, Source,
};
use lakehouse_iceberg::spec::TableMetadata;
use lakehouse_iceberg::{ColumnMetrics, FileMetrics, TableConfig, TableState, VersionChange};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

/// Data object `n` of dataset `name`: `10 n` rows, `1000 + n` bytes.
pub fn object(name: &str, n: u64) -> ObjectRef {
    let sha = format!("{n:064x}");
    ObjectRef {
        key: ObjectKey::new(format!(
            "datasets/{name}/{}/{sha}.parquet",
            schema().fingerprint().hex()
        ))
        .unwrap(),
        size: 1000 + n,
        sha256: Sha256Digest::new(&sha).unwrap(),
        row_count: 10 * n,
        rejects: None,
        partition: None,
    }
}

/// Footer metrics of object `n`: bounds `n` and `100 n` on column 1.
pub fn metrics(n: u64) -> FileMetrics {
    let column = ColumnMetrics {
        size_bytes: Some(100 + n),
        value_count: Some(10 * n),
        null_count: Some(0),
        lower: Some((n as i64).to_le_bytes().to_vec()),
        upper: Some((n as i64 * 100).to_le_bytes().to_vec()),
    };
    FileMetrics {
        columns: BTreeMap::from([(1, column)]),
    }
}

/// The partition tuple of object `n` of a partitioned dataset.
pub type TupleOf = fn(u64) -> PartitionTuple;

/// A dataset's table and every file written for it, with the model of its live objects.
pub struct Table {
    pub name: DatasetName,
    pub base: String,
    pub config: TableConfig,
    pub state: TableState,
    /// Every file written, by key (create-only: a rewrite must give the same bytes).
    pub store: HashMap<String, Vec<u8>>,
    /// Live objects per version (index 0: before version 1).
    pub live: Vec<Vec<ObjectRef>>,
    /// Bytes written per version (manifests and list, then the metadata JSON).
    pub written: Vec<(u64, u64)>,
    /// Check each commit's round trip (slower).
    pub round_trip: bool,
    /// Retention: keep the latest this many versions' snapshots (all when `None`).
    pub retain_versions: Option<u64>,
    /// Keep every version's metadata JSON in `store` (else only the latest, as GC would).
    pub keep_old_json: bool,
    /// The dataset's schema ([`schema`] unless a test sets another).
    pub schema: Schema,
    /// A partitioned dataset's spec, and the tuple of object `n`.
    pub partitioning: Option<(PartitionSpec, TupleOf)>,
}

impl Table {
    pub fn new(name: &str, base: &str, config: TableConfig) -> Self {
        let name = DatasetName::new(name).unwrap();
        Table {
            state: TableState::empty(base, &name),
            name,
            base: base.to_owned(),
            config,
            store: HashMap::new(),
            live: vec![Vec::new()],
            written: Vec::new(),
            round_trip: true,
            retain_versions: None,
            keep_old_json: true,
            schema: schema(),
            partitioning: None,
        }
    }

    pub fn version(&self) -> u64 {
        self.state.version().unwrap_or(0)
    }

    pub fn live_now(&self) -> &[ObjectRef] {
        self.live.last().unwrap()
    }

    /// Commits version N: `objects` added (numbers), `removed` (objects of N-1) removed,
    /// recorded as `operation`.
    pub fn commit(&mut self, operation: Option<Operation>, added: &[u64], removed: &[ObjectRef]) {
        let version = self.version() + 1;
        let added: Vec<(ObjectRef, FileMetrics)> = added
            .iter()
            .map(|n| {
                let mut object = object(self.name.as_str(), *n);
                object.partition = self.partitioning.as_ref().map(|(_, tuple)| tuple(*n));
                (object, metrics(*n))
            })
            .collect();
        let mut live: Vec<ObjectRef> = self
            .live_now()
            .iter()
            .filter(|o| !removed.contains(o))
            .cloned()
            .collect();
        live.extend(added.iter().map(|(o, _)| o.clone()));
        let mut manifest = manifest_of(&self.name, version, operation, &live);
        manifest.schema = self.schema.clone();
        manifest.schema_fingerprint = self.schema.fingerprint();
        manifest.partition_spec = self.partitioning.as_ref().map(|(spec, _)| spec.clone());
        let oldest_retained = self
            .retain_versions
            .map_or(1, |keep| (version + 1).saturating_sub(keep).max(1));
        let change = VersionChange {
            manifest: &manifest,
            added: &added,
            removed,
            oldest_retained,
            tag: None,
        };
        let (files, state) = commit_once(&self.state, &change, &self.store, &self.config);
        if self.round_trip {
            check_round_trip(
                &self.base,
                &self.state,
                &change,
                &self.store,
                &self.config,
                &files,
                &state,
            );
        }
        let mut bytes = (0u64, 0u64);
        for file in &files {
            if file.key.ends_with(".metadata.json") {
                bytes.1 += file.bytes.len() as u64;
            } else {
                bytes.0 += file.bytes.len() as u64;
            }
            if let Some(existing) = self.store.get(&file.key) {
                assert_eq!(
                    existing, &file.bytes,
                    "{} rewritten with other bytes",
                    file.key
                );
            }
            self.store.insert(file.key.clone(), file.bytes.clone());
        }
        if let Some(key) = self.state.metadata_key().filter(|_| !self.keep_old_json) {
            self.store.remove(&key);
        }
        self.written.push(bytes);
        self.live.push(live);
        self.state = state;
    }

    pub fn append(&mut self, added: &[u64]) {
        self.commit(Some(Operation::Append), added, &[]);
    }

    pub fn replace(&mut self, added: &[u64]) {
        let removed = self.live_now().to_vec();
        self.commit(Some(Operation::Replace), added, &removed);
    }

    /// Replaces the live objects at `positions` by object `into`.
    pub fn compact(&mut self, positions: &[usize], into: u64) {
        let removed: Vec<ObjectRef> = positions
            .iter()
            .map(|&i| self.live_now()[i].clone())
            .collect();
        self.commit(Some(Operation::Compact), &[into], &removed);
    }

    pub fn metadata(&self) -> TableMetadata {
        let key = self.state.metadata_key().unwrap();
        serde_json::from_slice(&self.store[&key]).unwrap()
    }

    pub fn key_of(&self, uri: &str) -> String {
        let prefix = lakehouse_iceberg::storage_uri(&self.base, "");
        uri.strip_prefix(&prefix).unwrap().to_owned()
    }

    /// The manifest keys a stored manifest list names, in order.
    pub fn list_manifests(&self, list_key: &str) -> Vec<String> {
        records(&self.store[list_key])
            .iter()
            .map(|r| match field(r, "manifest_path") {
                Value::String(path) => self.key_of(path),
                other => panic!("manifest_path {other:?}"),
            })
            .collect()
    }

    /// The entries of every manifest a stored list names.
    pub fn entries(&self, list_key: &str) -> Vec<Value> {
        self.list_manifests(list_key)
            .iter()
            .flat_map(|key| records(&self.store[key]))
            .collect()
    }

    /// The live data files (keys) a stored manifest list reaches, each once.
    pub fn live_files(&self, list_key: &str) -> BTreeSet<String> {
        let mut live = BTreeSet::new();
        for entry in self.entries(list_key) {
            if field(&entry, "status") != &Value::Int(2) {
                let Value::String(path) = field(field(&entry, "data_file"), "file_path") else {
                    panic!("no file_path")
                };
                assert!(live.insert(self.key_of(path)), "{path} listed twice");
            }
        }
        live
    }
}

/// The manifest of version `version` holding `live`.
pub fn manifest_of(
    name: &DatasetName,
    version: u64,
    operation: Option<Operation>,
    live: &[ObjectRef],
) -> Manifest {
    Manifest {
        key: None,
        operation,
        name: name.clone(),
        version,
        schema_fingerprint: schema().fingerprint(),
        schema: schema(),
        row_count: live.iter().map(|o| o.row_count).sum(),
        objects: live.to_vec(),
        created_at: format!(
            "2026-01-01T{:02}:{:02}:{:02}.000000Z",
            version / 3600 % 24,
            version / 60 % 60,
            version % 60
        ),
        inference_version: 2,
        options: CsvOptions::default(),
        source: Source::default(),
        columns: Vec::new(),
        partition_spec: None,
    }
}

/// One commit the way catalogd does it: the manifests asked for, read from `store`.
pub fn commit_once(
    state: &TableState,
    change: &VersionChange<'_>,
    store: &HashMap<String, Vec<u8>>,
    config: &TableConfig,
) -> (Vec<lakehouse_iceberg::TableFile>, TableState) {
    let mut manifests = HashMap::new();
    for key in state.manifests_to_read(change, config).unwrap() {
        manifests.insert(key.clone(), store[&key].clone());
    }
    state.commit(change, &manifests, config).unwrap()
}

/// Version N's files parse back into the state `commit` returned, and N recomputed from
/// N-1 parsed back from its files gives the same bytes.
pub fn check_round_trip(
    base: &str,
    before: &TableState,
    change: &VersionChange<'_>,
    store: &HashMap<String, Vec<u8>>,
    config: &TableConfig,
    files: &[lakehouse_iceberg::TableFile],
    after: &TableState,
) {
    let get = |key: &str| {
        files
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.bytes.clone())
            .or_else(|| store.get(key).cloned())
            .unwrap()
    };
    let parsed = TableState::from_files(
        "s3://elsewhere",
        after.name(),
        &get(&after.metadata_key().unwrap()),
        &get(&after.manifest_list_key().unwrap()),
    );
    assert!(parsed.is_err(), "a table under another base is refused");
    let parsed = TableState::from_files(
        base,
        after.name(),
        &get(&after.metadata_key().unwrap()),
        &get(&after.manifest_list_key().unwrap()),
    )
    .unwrap();
    assert_eq!(&parsed, after, "version {:?} parses back", after.version());
    let previous = match before.version() {
        None => before.clone(),
        Some(_) => TableState::from_files(
            base,
            before.name(),
            &store[&before.metadata_key().unwrap()],
            &store[&before.manifest_list_key().unwrap()],
        )
        .unwrap(),
    };
    assert_eq!(&previous, before);
    let (again, state) = commit_once(&previous, change, store, config);
    assert_eq!(again, files, "recomputed from parsed files: same bytes");
    assert_eq!(&state, after);
}

/// The records of an Avro file.
pub fn records(bytes: &[u8]) -> Vec<Value> {
    Reader::new(bytes).unwrap().map(Result::unwrap).collect()
}

/// Field `name` of a record.
pub fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
    let Value::Record(fields) = record else {
        panic!("not a record: {record:?}")
    };
    &fields.iter().find(|(n, _)| n == name).unwrap().1
}

/// An optional long field's value.
pub fn optional_long(value: &Value) -> Option<i64> {
    match value {
        Value::Union(_, inner) => match inner.as_ref() {
            Value::Long(v) => Some(*v),
            _ => None,
        },
        _ => None,
    }
}
