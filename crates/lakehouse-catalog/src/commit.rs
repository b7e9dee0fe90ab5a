//! `register`: the commit protocol of docs/contract.md sections 6 and 10, the one atomic,
//! race-safe gate of a dataset, and the schema gate it applies.

use crate::record::{CHECKPOINT_INTERVAL, VersionRecord};
use crate::{Catalog, CatalogError, ManifestStore, PutOutcome, Result, error_chain};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use lakehouse_api::{
    DatasetName, IngestMode, Manifest, ObjectKey, ObjectRef, Operation, SchemaDriftDetails,
    SchemaEvolution, VersionRegisterRequest,
};
use std::collections::HashSet;
use std::sync::Arc;

/// How many times `register` tries to create the next version when other committers keep
/// winning the race, before it gives up with [`CatalogError::Conflict`].
pub const MAX_COMMIT_ATTEMPTS: u32 = 16;

/// What [`Catalog::register`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterOutcome {
    /// The new version, or the latest one when `existing` is true.
    pub manifest: Arc<Manifest>,
    /// True when the latest version already was what the request asked for (docs/contract.md
    /// section 2, invariant 4): no version was written.
    pub existing: bool,
}

/// Object sizes [`Catalog::register`] asks the store for at once.
const SIZE_CHECKS_AT_ONCE: usize = 16;

impl<S: ManifestStore> Catalog<S> {
    /// Registers a version of `name`: the atomic schema gate of docs/contract.md sections 2 and 6.
    ///
    /// 1. Validates the request: the fingerprint is the schema's, there are objects, each key
    ///    is `datasets/<name>/<fp_hex>/.../<sha256>.parquet` with its own `sha256`.
    /// 2. Serializes with other committers of `name` in this process (and with garbage
    ///    collection of `name`), checks that the store holds each object with the stated
    ///    size (so a manifest never points at an incomplete or collected object, invariant 7)
    ///    and loads versions other replicas wrote.
    /// 3. A different fingerprint than the latest version's is drift: nothing is written
    ///    (invariant 2); unless the request asks for `schema_evolution: add_columns` and its
    ///    schema is the latest one's plus new columns at the end ([`schema_gate`]).
    /// 4. When the latest version already is what the request asks for (`replace`: exactly
    ///    these objects; `append`: holds them all), answers it with `existing: true`
    ///    (invariant 4).
    /// 5. Otherwise writes version latest+1 create-only; when another replica wrote that
    ///    version first, loads it and goes back to 3.
    ///
    /// With `dry_run`, steps 1, 3 and 4 only, and the version step 5 would write is
    /// answered unwritten ([`Catalog::register_dry_run`]).
    ///
    /// # Errors
    /// [`CatalogError::FingerprintMismatch`], [`CatalogError::InvalidRequest`],
    /// [`CatalogError::InvalidObject`] for a bad request; [`CatalogError::SchemaDrift`] on
    /// drift; [`CatalogError::Conflict`] after [`MAX_COMMIT_ATTEMPTS`] lost races;
    /// [`CatalogError::Store`] and [`CatalogError::CorruptManifest`] from the store;
    /// [`CatalogError::Store`] or [`CatalogError::TableMetadata`] when the Iceberg metadata
    /// of the latest version (before the commit) or of the new one (after it: the version
    /// stays committed, the client's retry answers `existing: true`) cannot be written.
    pub async fn register(
        &self,
        name: &DatasetName,
        request: VersionRegisterRequest,
    ) -> Result<RegisterOutcome> {
        self.validate(name, &request)?;
        if request.dry_run {
            return self.register_dry_run(name, &request).await;
        }
        let started = std::time::Instant::now();
        let lock = self.commit_lock(name);
        let _guard = lock.lock().await;
        // Under the lock: garbage collection of `name` holds it while it decides and deletes,
        // so no object can vanish between this check and the commit below (docs/decisions.md, "Garbage collection and retention").
        // Independent storage round trips overlap (docs/contract.md section 10): the objects'
        // sizes, versions other replicas wrote, and the footers the Iceberg files need.
        let (stored, refreshed, footers) = tokio::join!(
            self.check_objects_stored(&request),
            self.refresh(name),
            self.prefetch_footers(&request.objects, &request.schema)
        );
        stored?;
        refreshed?;
        let checked_ms = started.elapsed().as_secs_f64() * 1000.0;
        if let Some(latest) = self.latest(name) {
            // Heal the latest version's Iceberg metadata before the next commit (docs/contract.md
            // section 8). A failure fails this register before it commits: so every version
            // but the latest always has its metadata, and the latest gets it by its own
            // commit, the next one, a table load or a restart.
            self.ensure_table_metadata(name, latest.version)
                .await
                .map_err(|error| match error {
                    CatalogError::Store(_) | CatalogError::TableMetadata { .. } => error,
                    // Not the request's fault (an object of the latest version is missing):
                    // a 503 like any other failed heal, not a 400 about the request.
                    other => CatalogError::TableMetadata {
                        name: name.clone(),
                        version: latest.version,
                        reason: error_chain(&other),
                    },
                })?;
        }
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let latest = self.latest(name);
            key_gate(name, latest.as_deref(), &request)?;
            if let Some(latest) = &latest {
                schema_gate(latest, &request)?;
                partition_gate(latest, &request)?;
                if let Some(key) = rejects_conflict(latest, &request) {
                    return Err(CatalogError::InvalidRequest(format!(
                        "version {} already holds {key} with other set-aside records; \
                         append cannot hold it twice (upload it with mode=replace)",
                        latest.version
                    )));
                }
                if already_holds(latest, &request) {
                    self.ensure_table_metadata(name, latest.version).await?;
                    return Ok(RegisterOutcome {
                        manifest: Arc::clone(latest),
                        existing: true,
                    });
                }
            }
            if let Some(key) = replaced_not_live(latest.as_deref(), &request) {
                return Err(CatalogError::CompactionConflict {
                    name: name.clone(),
                    key: key.clone(),
                });
            }
            let manifest =
                next_manifest(name, self.next_version(name), latest.as_deref(), &request);
            // A full record for a first version or a replace, else what changed
            // (docs/contract.md section 10).
            let previous = latest
                .as_deref()
                .filter(|_| manifest.operation != Some(Operation::Replace));
            let record = VersionRecord::of(&manifest, previous);
            debug_assert_eq!(
                record.manifest(latest.as_deref().map(|l| l.objects.as_slice())),
                Ok(manifest.clone())
            );
            let key = ObjectKey::manifest(name, manifest.version);
            let mut json = serde_json::to_vec(&record).map_err(CatalogError::Encode)?;
            json.push(b'\n');
            // The Iceberg files are rendered, and the Avro ones written under the commit's
            // tag, while the record is written; the metadata JSON only once it is
            // (docs/contract.md section 10: the fsyncs and the work of one commit overlap).
            tracing::debug!(dataset = %name, version = manifest.version, checked_ms, writing_ms = started.elapsed().as_secs_f64() * 1000.0, "writing the version record");
            let (put, rendered) = tokio::join!(
                self.store.put_if_absent(&key, Bytes::from(json)),
                self.render_and_write_avro(latest.as_deref(), &manifest, &footers)
            );
            match put? {
                PutOutcome::Created => {
                    let manifest = Arc::new(manifest);
                    self.push(Arc::new(record), Arc::clone(&manifest));
                    tracing::info!(dataset = %name, version = manifest.version, objects = manifest.objects.len(), "version registered");
                    if manifest.version.is_multiple_of(CHECKPOINT_INTERVAL)
                        && self
                            .write_checkpoint(
                                &manifest,
                                self.first_live(name).checked_sub(1).filter(|d| *d > 0),
                            )
                            .await
                    {
                        self.mark_checkpoint(name, manifest.version);
                    }
                    // A 200 means the Iceberg metadata is durable too: on failure the
                    // version stays committed and the client's retry (`existing: true`)
                    // heals it.
                    if let Some(rendered) = rendered? {
                        self.write_rendered(rendered, true).await?;
                    }
                    return Ok(RegisterOutcome {
                        manifest,
                        existing: false,
                    });
                }
                PutOutcome::AlreadyExists => {
                    tracing::info!(dataset = %name, version = manifest.version, "another committer wrote this version first; re-validating");
                    self.refresh(name).await?;
                }
            }
        }
        Err(CatalogError::Conflict {
            name: name.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// The number the next version of `name` gets: after the latest, a tombstone included
    /// (a dataset made again under a dropped name continues its numbers).
    fn next_version(&self, name: &DatasetName) -> u64 {
        self.latest_any(name).map_or(1, |latest| latest.version + 1)
    }

    /// Drops dataset `name` (`DELETE /datasets/{name}`, docs/contract.md section 14): commits
    /// a tombstone version (operation `drop`, no objects) create-only like any version, under
    /// the dataset's commit lock. Lookups then answer not found, listings and the Iceberg
    /// catalog leave it out, its versions count as past retention (their objects are
    /// garbage after the grace period), and a later register starts a new dataset whose
    /// versions continue after the tombstone.
    ///
    /// # Errors
    /// [`CatalogError::NotFound`] when the dataset has no version or is dropped already;
    /// [`CatalogError::Conflict`] after [`MAX_COMMIT_ATTEMPTS`] lost races; store errors.
    pub async fn drop_dataset(&self, name: &DatasetName) -> Result<Arc<Manifest>> {
        let lock = self.commit_lock(name);
        let _guard = lock.lock().await;
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            self.refresh(name).await?;
            let latest = self
                .latest(name)
                .ok_or_else(|| CatalogError::NotFound { name: name.clone() })?;
            let tombstone = Manifest {
                key: None,
                name: name.clone(),
                version: latest.version + 1,
                schema_fingerprint: latest.schema_fingerprint.clone(),
                schema: latest.schema.clone(),
                objects: Vec::new(),
                row_count: 0,
                created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
                inference_version: latest.inference_version,
                options: latest.options.clone(),
                source: Default::default(),
                columns: Vec::new(),
                operation: Some(Operation::Drop),
                partition_spec: None,
            };
            let record = VersionRecord::of(&tombstone, None);
            let key = ObjectKey::manifest(name, tombstone.version);
            let mut json = serde_json::to_vec(&record).map_err(CatalogError::Encode)?;
            json.push(b'\n');
            match self.store.put_if_absent(&key, Bytes::from(json)).await? {
                PutOutcome::Created => {
                    let tombstone = Arc::new(tombstone);
                    self.push(Arc::new(record), Arc::clone(&tombstone));
                    self.forget_table_metadata(name);
                    tracing::info!(dataset = %name, version = tombstone.version, "dataset dropped");
                    return Ok(tombstone);
                }
                PutOutcome::AlreadyExists => {
                    tracing::info!(dataset = %name, "another committer wrote this version first; dropping again");
                }
            }
        }
        Err(CatalogError::Conflict {
            name: name.clone(),
            attempts: MAX_COMMIT_ATTEMPTS,
        })
    }

    /// [`Catalog::register`] of a request with `dry_run`: the same validation and schema
    /// gate against the latest version (versions other replicas wrote included), answering
    /// the version a register would make now, or the latest one with `existing: true`;
    /// nothing is written (no manifest, no Iceberg metadata) and the objects need not be
    /// stored yet (ingestd's `dry_run`, docs/contract.md section 6). Another committer may of
    /// course make that version number taken by the time a real register comes.
    async fn register_dry_run(
        &self,
        name: &DatasetName,
        request: &VersionRegisterRequest,
    ) -> Result<RegisterOutcome> {
        self.refresh(name).await?;
        let latest = self.latest(name);
        key_gate(name, latest.as_deref(), request)?;
        if let Some(latest) = &latest {
            schema_gate(latest, request)?;
            partition_gate(latest, request)?;
            if already_holds(latest, request) {
                return Ok(RegisterOutcome {
                    manifest: Arc::clone(latest),
                    existing: true,
                });
            }
        }
        if let Some(key) = replaced_not_live(latest.as_deref(), request) {
            return Err(CatalogError::CompactionConflict {
                name: name.clone(),
                key: key.clone(),
            });
        }
        Ok(RegisterOutcome {
            manifest: Arc::new(next_manifest(
                name,
                self.next_version(name),
                latest.as_deref(),
                request,
            )),
            existing: false,
        })
    }

    /// Step 1 of [`Catalog::register`].
    fn validate(&self, name: &DatasetName, request: &VersionRegisterRequest) -> Result<()> {
        let computed = request.schema.fingerprint();
        if computed != request.schema_fingerprint {
            return Err(CatalogError::FingerprintMismatch {
                declared: request.schema_fingerprint.clone(),
                computed,
            });
        }
        // A delete may only remove files (docs/contract.md section 11).
        let only_removes = request.mode.is_keyed() && !request.replaces.is_empty();
        if request.objects.is_empty() && !only_removes {
            return Err(CatalogError::InvalidRequest(
                "objects must name at least one object".into(),
            ));
        }
        validate_key(request)?;
        validate_partition_spec(request)?;
        let prefix = format!("{}/", ObjectKey::parquet_dir(name, &computed));
        let mut seen = HashSet::new();
        for object in &request.objects {
            let key = object.key.as_str();
            let width = request
                .partition_spec
                .as_ref()
                .map(|spec| spec.fields.len());
            if object.partition.as_ref().map(Vec::len) != width {
                return Err(CatalogError::InvalidObject {
                    key: object.key.clone(),
                    reason: match width {
                        Some(width) => format!(
                            "a partitioned dataset's object needs a partition tuple of {width} values"
                        ),
                        None => "an unpartitioned dataset's object has no partition tuple".into(),
                    },
                });
            }
            if let (Some(spec), Some(tuple)) = (&request.partition_spec, &object.partition) {
                check_tuple(spec, tuple).map_err(|reason| CatalogError::InvalidObject {
                    key: object.key.clone(),
                    reason,
                })?;
            }
            if !seen.insert(key) {
                return Err(CatalogError::InvalidRequest(format!(
                    "object {key} is listed twice"
                )));
            }
            let file = format!("{}.parquet", object.sha256.as_str());
            let in_layout = key.strip_prefix(&prefix) == Some(file.as_str());
            if !in_layout {
                return Err(CatalogError::InvalidObject {
                    key: object.key.clone(),
                    reason: format!("key must be {prefix}{file} (docs/contract.md section 5)"),
                });
            }
            if let Some(rejects) = &object.rejects {
                let expected = ObjectKey::rejects_object(name, &rejects.sha256);
                if rejects.key != expected {
                    return Err(CatalogError::InvalidObject {
                        key: rejects.key.clone(),
                        reason: format!(
                            "a rejects key must be {expected} (docs/contract.md section 3)"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// Step 2 of [`Catalog::register`]: every object is stored with the stated size. Runs
    /// under the dataset's commit lock.
    async fn check_objects_stored(&self, request: &VersionRegisterRequest) -> Result<()> {
        let mut stated: Vec<(&ObjectKey, u64)> = Vec::with_capacity(request.objects.len());
        for object in &request.objects {
            stated.push((&object.key, object.size));
            if let Some(rejects) = &object.rejects {
                stated.push((&rejects.key, rejects.size));
            }
        }
        // Sizes asked for at once (a partitioned upload names hundreds of objects); in
        // request order, so the first bad object reported is the first one named.
        let mut sizes = Vec::with_capacity(stated.len());
        for batch in stated.chunks(SIZE_CHECKS_AT_ONCE) {
            let mut asked = futures::stream::FuturesOrdered::new();
            for (key, _) in batch {
                asked.push_back(self.store.object_size(key));
            }
            while let Some(size) = asked.next().await {
                sizes.push(size?);
            }
        }
        for ((key, stated_size), size) in stated.into_iter().zip(sizes) {
            match size {
                Some(size) if size == stated_size => {}
                Some(size) => {
                    return Err(CatalogError::InvalidObject {
                        key: key.clone(),
                        reason: format!(
                            "stored size is {size} bytes, the request says {stated_size}"
                        ),
                    });
                }
                None => {
                    return Err(CatalogError::InvalidObject {
                        key: key.clone(),
                        reason: "no such object in storage".into(),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Step 1 of [`Catalog::register`] for a key (docs/contract.md section 11): `merge` and
/// `delete` name one, of distinct columns of the schema; the other modes none.
///
/// # Errors
/// [`CatalogError::InvalidRequest`] naming what is wrong.
fn validate_key(request: &VersionRegisterRequest) -> Result<()> {
    let mode = request.mode;
    let Some(key) = &request.key else {
        if mode.is_keyed() {
            return Err(CatalogError::InvalidRequest(format!(
                "mode {} needs a key",
                mode.as_str()
            )));
        }
        return Ok(());
    };
    if !mode.is_keyed() {
        return Err(CatalogError::InvalidRequest(format!(
            "mode {} takes no key",
            mode.as_str()
        )));
    }
    if request.base_version.is_none() {
        return Err(CatalogError::InvalidRequest(format!(
            "mode {} needs the base_version it was planned on",
            mode.as_str()
        )));
    }
    let mut seen = HashSet::new();
    for column in key {
        if request.schema.fields.iter().all(|f| &f.name != column) {
            return Err(CatalogError::InvalidRequest(format!(
                "key column {column:?} is not a column of the schema"
            )));
        }
        if !seen.insert(column) {
            return Err(CatalogError::InvalidRequest(format!(
                "key column {column:?} is named twice"
            )));
        }
    }
    if key.is_empty() {
        return Err(CatalogError::InvalidRequest("key names no column".into()));
    }
    Ok(())
}

/// Step 3 for `merge` and `delete` (docs/contract.md section 11), under the commit: the
/// request's key must be the recorded one (the first merge declares it), and the version it
/// was planned on must still be the latest, and no new object may be a file the version
/// keeps (it would be listed, and its rows counted, once: docs/contract.md section 2).
///
/// # Errors
/// [`CatalogError::KeyMismatch`] naming both keys; [`CatalogError::StaleBase`];
/// [`CatalogError::InvalidRequest`] naming the object.
fn key_gate(
    name: &DatasetName,
    latest: Option<&Manifest>,
    request: &VersionRegisterRequest,
) -> Result<()> {
    let (Some(key), Some(base)) = (&request.key, request.base_version) else {
        return Ok(());
    };
    if let Some(recorded) = latest.and_then(|l| l.key.as_ref())
        && recorded != key
    {
        return Err(CatalogError::KeyMismatch {
            name: name.clone(),
            recorded: recorded.clone(),
            requested: key.clone(),
        });
    }
    let latest_version = latest.map_or(0, |l| l.version);
    if latest_version != base {
        return Err(CatalogError::StaleBase {
            name: name.clone(),
            base,
            latest: latest_version,
        });
    }
    // A new object with the key of a file the version keeps would be listed once and its
    // rows counted once: refused rather than lost (invariant 3).
    if let Some(latest) = latest {
        let replaced: HashSet<&ObjectKey> = request.replaces.iter().collect();
        let kept: HashSet<&ObjectKey> = latest
            .objects
            .iter()
            .map(|o| &o.key)
            .filter(|key| !replaced.contains(key))
            .collect();
        if let Some(object) = request.objects.iter().find(|o| kept.contains(&o.key)) {
            return Err(CatalogError::InvalidRequest(format!(
                "object {} is a file the version keeps; a merge cannot add it again",
                object.key
            )));
        }
    }
    Ok(())
}

/// Step 1 of [`Catalog::register`] for a partition spec: it must be what its own
/// `partition_by` makes of the request's schema (docs/contract.md section 10), so a
/// recorded spec always binds to the dataset's columns.
///
/// # Errors
/// [`CatalogError::InvalidRequest`] naming what is wrong.
fn validate_partition_spec(request: &VersionRegisterRequest) -> Result<()> {
    let Some(spec) = &request.partition_spec else {
        return Ok(());
    };
    let made = lakehouse_iceberg::PartitionBy::parse(&spec.partition_by)
        .and_then(|by| by.spec(&request.schema))
        .map_err(|e| CatalogError::InvalidRequest(format!("partition_spec: {e}")))?;
    if &made != spec {
        return Err(CatalogError::InvalidRequest(format!(
            "partition_spec: its fields are not what `{}` makes of the schema",
            spec.partition_by
        )));
    }
    Ok(())
}

/// Step 1 of [`Catalog::register`] for an object's partition tuple (of the spec's width):
/// each non-null value must be of its field's `result_type` as ingestd records it
/// (docs/contract.md section 10), so the version's Iceberg manifests can hold it.
///
/// # Errors
/// A reason naming the field, its type, what that type takes and the value given.
fn check_tuple(
    spec: &lakehouse_api::PartitionSpec,
    tuple: &lakehouse_api::PartitionTuple,
) -> std::result::Result<(), String> {
    for (field, value) in spec.fields.iter().zip(tuple) {
        let Some(value) = value else {
            continue;
        };
        if let Err(expected) = lakehouse_iceberg::check_partition_value(&field.result_type, value) {
            let given = serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"));
            return Err(format!(
                "partition field `{}` is of type `{}`, which takes {expected}, not {given}",
                field.name, field.result_type
            ));
        }
    }
    Ok(())
}

/// Step 3 of [`Catalog::register`], the schema gate (docs/contract.md sections 2, 3 and 6): the
/// request's schema must be the latest version's, or, with `schema_evolution: add_columns`,
/// the latest one's fields in order followed by new columns ([`Schema::adds_columns_to`]).
/// Checked under the commit, against the latest version, so of two racing evolutions that
/// add different columns only the first to commit passes.
///
/// # Errors
/// [`CatalogError::SchemaDrift`] otherwise; `evolvable` when the option would have let it
/// through.
///
/// [`Schema::adds_columns_to`]: lakehouse_api::Schema::adds_columns_to
fn schema_gate(latest: &Manifest, request: &VersionRegisterRequest) -> Result<()> {
    if latest.schema_fingerprint == request.schema_fingerprint {
        return Ok(());
    }
    let adds_columns = request.schema.adds_columns_to(&latest.schema);
    match request.schema_evolution {
        Some(SchemaEvolution::AddColumns) if adds_columns => Ok(()),
        evolution => Err(CatalogError::SchemaDrift {
            details: Box::new(SchemaDriftDetails::between(&latest.schema, &request.schema)),
            evolvable: adds_columns && evolution.is_none(),
        }),
    }
}

/// Step 3 too: a dataset keeps the partition spec of its first version (docs/contract.md
/// section 10), checked under the commit like the schema.
///
/// # Errors
/// [`CatalogError::PartitionSpecMismatch`] naming both specs.
fn partition_gate(latest: &Manifest, request: &VersionRegisterRequest) -> Result<()> {
    if latest.partition_spec == request.partition_spec {
        return Ok(());
    }
    let text = |spec: &Option<lakehouse_api::PartitionSpec>| {
        spec.as_ref().map(|spec| spec.partition_by.clone())
    };
    Err(CatalogError::PartitionSpecMismatch {
        name: latest.name.clone(),
        recorded: text(&latest.partition_spec),
        requested: text(&request.partition_spec),
    })
}

/// Invariant 4: `replace` asks for exactly these objects, `append` for a version holding them.
fn already_holds(latest: &Manifest, request: &VersionRegisterRequest) -> bool {
    let held = || latest.objects.iter().map(identity);
    let asked = || request.objects.iter().map(identity);
    if request.mode.is_keyed() {
        // ingestd answers a merge that changes nothing itself; one that reaches the commit
        // changes something (and `base_version` keeps it from applying twice).
        return false;
    }
    if !request.replaces.is_empty() {
        let keys: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
        let held: HashSet<_> = held().collect();
        return asked().all(|object| held.contains(&object))
            && request.replaces.iter().all(|key| !keys.contains(key));
    }
    match request.mode {
        IngestMode::Replace => held().eq(asked()),
        IngestMode::Append | IngestMode::Merge | IngestMode::Delete => {
            let held: HashSet<_> = held().collect();
            asked().all(|object| held.contains(&object))
        }
    }
}

/// What makes two object references the same: the data object and its rejects object (two
/// uploads that differ only in the records they set aside write the same Parquet).
fn identity(object: &ObjectRef) -> (&ObjectKey, Option<&ObjectKey>) {
    (&object.key, object.rejects.as_ref().map(|r| &r.key))
}

/// An object an append asks for whose data the latest version already holds with other
/// rejects: appending it again would list its rows twice, and keeping the old entry would
/// leave the new rejects unreferenced, so the register is refused (nothing written).
fn rejects_conflict<'a>(
    latest: &'a Manifest,
    request: &VersionRegisterRequest,
) -> Option<&'a ObjectKey> {
    if request.mode != IngestMode::Append {
        return None;
    }
    request.objects.iter().find_map(|asked| {
        latest
            .objects
            .iter()
            .find(|held| held.key == asked.key && identity(held) != identity(asked))
            .map(|held| &held.key)
    })
}

/// Step 5 of [`Catalog::register`]: version latest+1 (or 1).
fn next_manifest(
    name: &DatasetName,
    version: u64,
    latest: Option<&Manifest>,
    request: &VersionRegisterRequest,
) -> Manifest {
    let operation = operation_of(request);
    let objects: Vec<ObjectRef> = match (operation, latest) {
        (Operation::Append, Some(latest)) => {
            let held: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
            let new = request.objects.iter().filter(|o| !held.contains(&o.key));
            latest.objects.iter().chain(new).cloned().collect()
        }
        (Operation::Compact, Some(latest)) => compacted(latest, request),
        (Operation::Merge | Operation::Delete, Some(latest)) => merged(latest, request),
        _ => request.objects.clone(),
    };
    Manifest {
        name: name.clone(),
        version,
        schema_fingerprint: request.schema_fingerprint.clone(),
        schema: request.schema.clone(),
        row_count: objects.iter().map(|o| o.row_count).sum(),
        objects,
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true),
        inference_version: request.inference_version,
        options: request.options.clone(),
        source: request.source.clone(),
        columns: request.columns.clone(),
        operation: Some(operation),
        partition_spec: request.partition_spec.clone(),
        key: request
            .key
            .clone()
            .or_else(|| latest.and_then(|l| l.key.clone())),
    }
}

/// A merge's or delete's objects (docs/contract.md section 11): the latest version's objects
/// in order without the replaced ones, then the request's (rewrites and new rows; none of
/// them a kept file, [`key_gate`] refuses that).
fn merged(latest: &Manifest, request: &VersionRegisterRequest) -> Vec<ObjectRef> {
    let replaced: HashSet<&ObjectKey> = request.replaces.iter().collect();
    let kept = latest.objects.iter().filter(|o| !replaced.contains(&o.key));
    kept.chain(&request.objects).cloned().collect()
}

/// The operation a register request makes: `compact` when it names objects it replaces,
/// else its ingest mode.
fn operation_of(request: &VersionRegisterRequest) -> Operation {
    match request.mode {
        IngestMode::Merge => Operation::Merge,
        IngestMode::Delete => Operation::Delete,
        _ if !request.replaces.is_empty() => Operation::Compact,
        IngestMode::Replace => Operation::Replace,
        IngestMode::Append => Operation::Append,
    }
}

/// A compaction's objects (docs/contract.md section 10): the latest version's objects in
/// order, the first replaced one's place taking the compacted objects and the other replaced
/// ones dropped, so rows keep their order when the replaced files were contiguous.
fn compacted(latest: &Manifest, request: &VersionRegisterRequest) -> Vec<ObjectRef> {
    let replaced: HashSet<&ObjectKey> = request.replaces.iter().collect();
    let held: HashSet<&ObjectKey> = latest.objects.iter().map(|o| &o.key).collect();
    let mut out = Vec::with_capacity(latest.objects.len() + request.objects.len());
    let mut placed = false;
    for object in &latest.objects {
        if replaced.contains(&object.key) {
            if !placed {
                out.extend(
                    request
                        .objects
                        .iter()
                        .filter(|o| !held.contains(&o.key))
                        .cloned(),
                );
                placed = true;
            }
        } else {
            out.push(object.clone());
        }
    }
    out
}

/// A compaction may commit only while every object it replaces is live in `latest`
/// (docs/contract.md section 10): the first one that is not.
fn replaced_not_live<'a>(
    latest: Option<&Manifest>,
    request: &'a VersionRegisterRequest,
) -> Option<&'a ObjectKey> {
    let held: HashSet<&ObjectKey> = latest
        .map(|latest| latest.objects.iter().map(|o| &o.key).collect())
        .unwrap_or_default();
    request.replaces.iter().find(|key| !held.contains(key))
}
