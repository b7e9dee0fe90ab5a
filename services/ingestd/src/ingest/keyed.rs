//! `mode=merge` and `mode=delete` by key (docs/contract.md section 11), after the passes:
//! the upload's Parquet is written into a spool directory (nothing reaches storaged before
//! the plan holds: a null or repeated key stores nothing), then [`commit_keyed`] plans on
//! the latest version (`lakehouse_convert::plan_merge`), rewrites the live files that hold
//! replaced or deleted rows without them (copy-on-write, docs/decisions.md "Merge by key"),
//! stores the upload's files as they are (or rewritten without their unchanged rows; a
//! delete's never), and registers the change as one version planned on that latest
//! version. When another commit wins the race, catalogd refuses it
//! (409 `conflict`, nothing written) and the merge plans again on the new latest version,
//! so no update is lost or applied twice.

use super::IngestRequest;
use crate::compact::{ReadFailure, Rewrite, rewrite_each, stored_input, take_failure};
use crate::upload::Destination;
use crate::{AppState, IngestError};
use lakehouse_api::{
    ErrorCode, IngestMode, Manifest, MergeCounts, ObjectRef, Schema, VersionRegisterRequest,
    VersionRegisterResponse,
};
use lakehouse_client::ClientError;
use lakehouse_convert::{ConvertError, KeyedMode, RangeRead, ReadConfig, ReadLimits};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The link to the spooled CSV in a keyed ingest's spool directory.
pub(super) const CSV_LINK: &str = "upload.csv";

/// Plans a merge makes, at most, when other commits keep winning the race (each lost race
/// means another commit landed: with N writers at once a merge loses at most N - 1).
const MAX_PLANS: u32 = 32;

/// What a keyed ingest committed.
pub(super) struct KeyedCommit {
    pub(super) registered: VersionRegisterResponse,
    pub(super) counts: MergeCounts,
    /// The files the version added (the upload's rows, the rewrites).
    pub(super) objects: Vec<ObjectRef>,
}

/// Where the upload's CSV and Parquet are, to read back.
pub(super) struct KeyedInputs<'a> {
    /// A link to the spooled CSV, to name the lines of bad keys.
    pub(super) csv: &'a Path,
    /// The caps the passes read with, and `max_csv_bytes`.
    pub(super) limits: (ReadLimits, u64),
    /// The spool directory the upload's Parquet went to, each file as `<sha256>.parquet`.
    pub(super) parquet_dir: &'a Path,
}

/// The key of `request`: the `key` option (checked present for merge and delete by the
/// route).
fn key_of(request: &IngestRequest) -> Vec<String> {
    request.key.clone().unwrap_or_default()
}

/// Checks a keyed request against the dataset's latest version before the body is read:
/// a delete needs the dataset, and the key must be the recorded one.
///
/// # Errors
/// [`IngestError::DatasetNotFound`], [`IngestError::KeyMismatch`].
pub(super) fn check_key(
    request: &IngestRequest,
    current: Option<&Manifest>,
) -> Result<(), IngestError> {
    if !request.mode.is_keyed() {
        return Ok(());
    }
    let Some(current) = current else {
        if request.mode == IngestMode::Delete {
            return Err(IngestError::DatasetNotFound {
                name: request.name.clone(),
            });
        }
        return Ok(());
    };
    let key = key_of(request);
    match &current.key {
        Some(recorded) if *recorded != key => Err(IngestError::KeyMismatch {
            name: request.name.clone(),
            recorded: recorded.clone(),
            requested: key,
        }),
        _ => Ok(()),
    }
}

/// The schema a delete's upload must have: the dataset's key columns, in key order, with
/// their types (docs/contract.md section 11).
///
/// # Errors
/// [`IngestError::InvalidOption`] for a key column the dataset lacks.
pub(super) fn key_schema(key: &[String], schema: &Schema) -> Result<Schema, IngestError> {
    let fields = key
        .iter()
        .map(|name| {
            schema
                .fields
                .iter()
                .find(|f| &f.name == name)
                .cloned()
                .ok_or_else(|| IngestError::InvalidOption {
                    option: "key",
                    reason: format!("{name:?} is not a column of the dataset"),
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Schema { fields })
}

/// Checks that the upload's schema holds the key columns (a merge; a delete's upload is
/// checked against the key columns by its pass), before anything is stored.
///
/// # Errors
/// [`IngestError::InvalidOption`] naming the first missing column.
pub(super) fn check_key_columns(
    request: &IngestRequest,
    schema: &Schema,
) -> Result<(), IngestError> {
    if request.mode != IngestMode::Merge {
        return Ok(());
    }
    for column in key_of(request) {
        if schema.fields.iter().all(|f| f.name != column) {
            return Err(IngestError::InvalidOption {
                option: "key",
                reason: format!("{column:?} is not a column of the upload"),
            });
        }
    }
    Ok(())
}

/// One plan made on one latest version, its files rewritten, ready to register.
struct Planned {
    latest: Option<Manifest>,
    schema: Schema,
    counts: MergeCounts,
    /// The files the version adds, in order.
    objects: Vec<ObjectRef>,
    /// Keys of the live files it removes.
    replaces: Vec<lakehouse_api::ObjectKey>,
    changes_nothing: bool,
}

/// Plans, rewrites and registers a merge or delete (module docs). `register` is the upload's
/// register request, its objects the upload's files, in `inputs.parquet_dir`.
///
/// # Errors
/// [`IngestError::NullKey`], [`IngestError::DuplicateKey`] (lines named), the
/// `limit_exceeded` of `merge_key_memory_bytes`, [`IngestError::KeyMismatch`],
/// [`IngestError::MergeConflict`] after [`MAX_PLANS`] lost races, and the errors of reading
/// and storing files and of catalogd.
pub(super) async fn commit_keyed(
    state: &AppState,
    request: &IngestRequest,
    mut register: VersionRegisterRequest,
    inputs: KeyedInputs<'_>,
) -> Result<KeyedCommit, IngestError> {
    let delta = std::mem::take(&mut register.objects);
    let delta_inputs: Vec<Arc<dyn RangeRead>> = delta
        .iter()
        .map(|object| local_input(inputs.parquet_dir, object))
        .collect::<Result<_, _>>()?;
    for _ in 0..MAX_PLANS {
        let planned = plan_once(state, request, &register, &inputs, &delta, &delta_inputs).await?;
        if let (Some(latest), true) = (&planned.latest, planned.changes_nothing) {
            return Ok(KeyedCommit {
                registered: VersionRegisterResponse {
                    manifest: latest.clone(),
                    existing: true,
                    dry_run: request.dry_run,
                },
                counts: planned.counts,
                objects: Vec::new(),
            });
        }
        let mut attempt = register.clone();
        attempt.schema_fingerprint = planned.schema.fingerprint();
        attempt.schema = planned.schema;
        attempt.objects = planned.objects.clone();
        attempt.replaces = planned.replaces;
        attempt.key = Some(key_of(request));
        attempt.base_version = Some(planned.latest.as_ref().map_or(0, |l| l.version));
        if request.mode == IngestMode::Delete
            && let Some(latest) = &planned.latest
        {
            // A delete keeps the dataset's inference report and options.
            attempt.columns = latest.columns.clone();
            attempt.options = latest.options.clone();
        }
        match state.inner.catalogd.register(&request.name, &attempt).await {
            Ok(registered) => {
                return Ok(KeyedCommit {
                    registered,
                    counts: planned.counts,
                    objects: planned.objects,
                });
            }
            Err(source @ ClientError::Remote { .. }) if source.code() == ErrorCode::Conflict => {
                tracing::info!(dataset = %request.name, error = %source, "merge lost the commit race; planning again");
            }
            Err(source) => {
                return Err(IngestError::Upstream {
                    service: "catalogd",
                    source,
                });
            }
        }
    }
    Err(IngestError::MergeConflict {
        name: request.name.clone(),
        mode: request.mode.as_str(),
        attempts: MAX_PLANS,
    })
}

/// Plans the merge on the latest version and writes its files: the rewrites of the live
/// files that lose rows, then the upload's files (copied as they are, or rewritten without
/// their unchanged rows); for a dry run into a digest only.
async fn plan_once(
    state: &AppState,
    request: &IngestRequest,
    register: &VersionRegisterRequest,
    inputs: &KeyedInputs<'_>,
    delta: &[ObjectRef],
    delta_inputs: &[Arc<dyn RangeRead>],
) -> Result<Planned, IngestError> {
    let key = key_of(request);
    let mode = match request.mode {
        IngestMode::Delete => KeyedMode::Delete,
        _ => KeyedMode::Merge,
    };
    let latest = state.latest(&request.name).await?;
    check_key(request, latest.as_ref())?;
    // A delete's files have the dataset's schema; a merge's the upload's (the same, or with
    // columns added by `schema_evolution=add_columns`).
    let schema = match (mode, &latest) {
        (KeyedMode::Delete, Some(latest)) => latest.schema.clone(),
        _ => register.schema.clone(),
    };
    let table: Vec<ObjectRef> = latest
        .as_ref()
        .map(|l| l.objects.clone())
        .unwrap_or_default();
    let failure = ReadFailure::default();
    let table_inputs: Vec<Arc<dyn RangeRead>> = table
        .iter()
        .map(|o| stored_input(state, o, &failure))
        .collect();
    let planned = plan(
        state,
        &schema,
        &key,
        mode,
        delta_inputs,
        table_inputs.clone(),
    )
    .await?;
    let plan = match planned {
        Ok(plan) => plan,
        Err(error) => {
            return Err(take_failure(&failure)
                .unwrap_or_else(|| name_lines(error, inputs, register, request.mode)));
        }
    };
    let mut counts = MergeCounts {
        inserted: plan.inserted,
        updated: plan.updated,
        unchanged: plan.unchanged,
        deleted: plan.deleted,
        not_found: plan.not_found,
        files_added: 0,
        files_removed: 0,
    };
    let changes_nothing = plan.changes_nothing();
    if changes_nothing && latest.is_some() {
        return Ok(Planned {
            latest,
            schema,
            counts,
            objects: Vec::new(),
            replaces: Vec::new(),
            changes_nothing,
        });
    }
    let files = Files {
        table: &table,
        table_inputs: &table_inputs,
        delta,
        delta_inputs,
        parquet_dir: inputs.parquet_dir,
        failure: &failure,
    };
    let objects = write_files(state, request, &schema, &plan, mode, &files).await?;
    counts.files_added = objects.len() as u64;
    counts.files_removed = plan.table_removed.len() as u64;
    let replaces = plan
        .table_removed
        .iter()
        .map(|(at, _)| table[*at].key.clone())
        .collect();
    Ok(Planned {
        latest,
        schema,
        counts,
        objects,
        replaces,
        changes_nothing,
    })
}

/// The files one plan reads: the latest version's and the upload's, and where storaged's
/// failure to answer a read is kept.
struct Files<'a> {
    table: &'a [ObjectRef],
    table_inputs: &'a [Arc<dyn RangeRead>],
    delta: &'a [ObjectRef],
    delta_inputs: &'a [Arc<dyn RangeRead>],
    parquet_dir: &'a Path,
    failure: &'a ReadFailure,
}

/// Writes the version's new files (docs/contract.md section 11): each live file that loses
/// rows rewritten without them, then (a merge) each upload file copied as it is, or
/// rewritten without its unchanged rows. Into storaged, or a digest for a dry run.
async fn write_files(
    state: &AppState,
    request: &IngestRequest,
    schema: &Schema,
    plan: &lakehouse_convert::MergePlan,
    mode: KeyedMode,
    files: &Files<'_>,
) -> Result<Vec<ObjectRef>, IngestError> {
    let destination = if request.dry_run {
        Destination::Nowhere
    } else {
        Destination::Storaged(state.inner.storaged.clone())
    };
    let rewrite = |input: &Arc<dyn RangeRead>, object: &ObjectRef, removed: &Vec<u64>| Rewrite {
        input: Arc::clone(input),
        partition: object.partition.clone(),
        removed: removed.clone(),
    };
    let rewrites: Vec<Rewrite> = plan
        .table_removed
        .iter()
        .map(|(at, removed)| rewrite(&files.table_inputs[*at], &files.table[*at], removed))
        .collect();
    let name = &request.name;
    let mut objects = rewrite_each(
        state,
        name,
        schema,
        rewrites,
        destination.clone(),
        files.failure,
    )
    .await?;
    if mode == KeyedMode::Delete {
        return Ok(objects);
    }
    let upload = files.delta.iter().zip(files.delta_inputs);
    for ((object, input), removed) in upload.zip(&plan.upload_removed) {
        if removed.is_empty() {
            objects.push(copy_as_is(state, files.parquet_dir, object, &destination).await?);
        } else {
            let one = vec![rewrite(input, object, removed)];
            objects.extend(
                rewrite_each(state, name, schema, one, destination.clone(), files.failure).await?,
            );
        }
    }
    Ok(objects)
}

/// Stores the upload's file `object` (in the spool directory `dir`) as it is, content-
/// addressed like the ingest would have (or hashes it, for a dry run): the same key.
///
/// # Errors
/// [`IngestError::Spool`] reading it, storaged's errors, [`IngestError::StoredObject`] when
/// storaged names it otherwise.
async fn copy_as_is(
    state: &AppState,
    dir: &Path,
    object: &ObjectRef,
    destination: &Destination,
) -> Result<ObjectRef, IngestError> {
    let path = dir.join(format!("{}.parquet", object.sha256.as_str()));
    let parent = object
        .key
        .as_str()
        .rsplit_once('/')
        .map(|(parent, _)| parent.to_owned())
        .unwrap_or_default();
    let parent = lakehouse_api::ObjectKey::try_from(parent)
        .map_err(|e| IngestError::Spool(io::Error::other(e)))?;
    let (mut sender, upload) = crate::upload::start(
        destination,
        parent,
        crate::upload::PARQUET_SUFFIX,
        &tokio::runtime::Handle::current(),
        state.inner.storaged_idle(),
    );
    let sent = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut file = std::fs::File::open(&path)?;
        std::io::copy(&mut file, &mut sender)?;
        sender.flush()
    })
    .await
    .map_err(IngestError::Task)?;
    if let Err(error) = sent {
        return Err(upload.abort().await.unwrap_or(IngestError::Spool(error)));
    }
    let (stored, _created) = upload.commit().await?;
    if stored.key != object.key || stored.size != object.size {
        return Err(IngestError::StoredObject {
            expected_key: object.key.to_string(),
            stored_key: stored.key.to_string(),
            sent_bytes: object.size,
            stored_bytes: stored.size,
        });
    }
    Ok(object.clone())
}

/// `lakehouse_convert::plan_merge` on a blocking thread.
async fn plan(
    state: &AppState,
    schema: &Schema,
    key: &[String],
    mode: KeyedMode,
    delta: &[Arc<dyn RangeRead>],
    table: Vec<Arc<dyn RangeRead>>,
) -> Result<Result<lakehouse_convert::MergePlan, ConvertError>, IngestError> {
    let memory = state.config().merge_key_memory_bytes;
    let (schema, key, delta) = (schema.clone(), key.to_vec(), delta.to_vec());
    tokio::task::spawn_blocking(lakehouse_client::trace::bind(move || {
        lakehouse_convert::plan_merge(&schema, &key, mode, &delta, &table, memory)
    }))
    .await
    .map_err(IngestError::Task)
}

/// A null or repeated key as the lines of the CSV it is on; any other error as it is.
fn name_lines(
    error: ConvertError,
    inputs: &KeyedInputs<'_>,
    register: &VersionRegisterRequest,
    mode: IngestMode,
) -> IngestError {
    let rows = match &error {
        ConvertError::NullKey { row, .. } => vec![*row],
        ConvertError::DuplicateKey { first, second } => vec![*first, *second],
        _ => return IngestError::Convert(error),
    };
    let lines = match data_row_lines(inputs, register, &rows) {
        Ok(lines) if lines.len() == rows.len() => lines,
        _ => return IngestError::Convert(error),
    };
    match error {
        ConvertError::NullKey { column, .. } => IngestError::NullKey {
            line: lines[0],
            column,
            mode: mode.as_str(),
        },
        _ => IngestError::DuplicateKey {
            first_line: lines[0],
            second_line: lines[1],
            mode: mode.as_str(),
        },
    }
}

/// The lines of data rows `rows` in the spooled CSV, read with the options the passes read
/// it with. Blocking, on an error path only.
fn data_row_lines(
    inputs: &KeyedInputs<'_>,
    register: &VersionRegisterRequest,
    rows: &[u64],
) -> Result<Vec<u64>, ConvertError> {
    let (limits, max_csv_bytes) = inputs.limits;
    let csv = std::fs::File::open(inputs.csv).map_err(ConvertError::Io)?;
    let csv = lakehouse_convert::decode(csv, register.options.encoding, max_csv_bytes)?;
    lakehouse_convert::data_row_lines(csv, ReadConfig::new(&register.options, limits), rows)
}

/// A dry run's Parquet file in the spool directory `dir`, named by its SHA-256.
///
/// # Errors
/// [`IngestError::Spool`] when it cannot be opened.
fn local_input(dir: &Path, object: &ObjectRef) -> Result<Arc<dyn RangeRead>, IngestError> {
    let path: PathBuf = dir.join(format!("{}.parquet", object.sha256.as_str()));
    let file = std::fs::File::open(&path).map_err(IngestError::Spool)?;
    let size = file.metadata().map_err(IngestError::Spool)?.len();
    Ok(Arc::new(LocalFile { file, size }))
}

/// A file of the spool read by range.
struct LocalFile {
    file: std::fs::File,
    size: u64,
}

impl RangeRead for LocalFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_range(&self, start: u64, length: u64) -> io::Result<bytes::Bytes> {
        use std::os::unix::fs::FileExt;
        let mut buffer = vec![0; usize::try_from(length).map_err(io::Error::other)?];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}
