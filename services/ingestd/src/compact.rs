//! Compaction (docs/contract.md section 10): `POST /datasets/{name}/compact` and the
//! automatic run after a commit that leaves more than `compact_after_files` small files.
//!
//! 1. [`plan_runs`]: the latest version's live files smaller than `compact_min_file_bytes`,
//!    in maximal contiguous runs of two or more (a larger file between two small ones ends a
//!    run, so each run's rewrite can take its place and rows keep their order).
//! 2. [`rewrite`]: per run, on a blocking thread, `lakehouse_convert::compact` reads the
//!    files from storaged one row group at a time (range GETs) and writes the same rows into
//!    files of about `target_file_bytes`, each streamed to storaged's content-addressed POST
//!    as it is encoded (the same path, writer settings and key layout as an ingest's Parquet).
//! 3. [`commit_run`]: registers the run with catalogd as a version that `replaces` the run's
//!    keys: committed only while they are all live (else 409 `conflict`, nothing written),
//!    `existing: true` when a racing compaction of the same files already committed the
//!    same output (the bytes are a pure function of the inputs, so the keys are the same).
//!
//! Files the rewrite stored but no version names (a failed register, a crash) are orphans
//! for garbage collection, as an ingest's are.

use crate::upload::{self, ChunkSender, Destination, ParquetUpload};
use crate::{AppState, IngestError, metrics};
use bytes::Bytes;
use lakehouse_api::{
    CompactResponse, DatasetName, ErrorCode, IngestMode, Manifest, ObjectKey, ObjectRef,
    PartitionTuple, VersionRegisterRequest,
};
use lakehouse_client::{ClientError, StoragedClient};
use lakehouse_convert::{CompactSink, ConvertError, RangeRead};
use lakehouse_server::ApiError;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a compaction is asked to do.
#[derive(Debug, Clone)]
pub struct CompactRequest {
    /// The dataset.
    pub name: DatasetName,
    /// Read and rewrite into a digest only; write nothing.
    pub dry_run: bool,
}

/// The size limits of a compaction (`[ingestd]` keys).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `compact_min_file_bytes`: files smaller than this are compacted.
    pub min_file_bytes: u64,
    /// `target_file_bytes`: the size the rewritten files are cut at.
    pub target_file_bytes: u64,
}

/// The live files of `manifest` worth compacting: per partition (docs/contract.md section
/// 10; an unpartitioned dataset is one partition), maximal runs of two or more of its files
/// smaller than `min_file_bytes`, contiguous among the partition's files, whose rewrite into
/// files of `target_file_bytes` leaves fewer files than the run had. Ordered by their first
/// file's place in the version.
pub fn plan_runs(manifest: &Manifest, limits: Limits) -> Vec<Vec<ObjectRef>> {
    let target = limits.target_file_bytes.max(1);
    let worth = |run: &Vec<ObjectRef>| {
        let bytes: u64 = run.iter().map(|o| o.size).sum();
        run.len() >= 2 && bytes.div_ceil(target) < run.len() as u64
    };
    // Each partition's run in progress, with the place of its first file.
    let mut open: HashMap<Option<&PartitionTuple>, (usize, Vec<ObjectRef>)> = HashMap::new();
    let mut runs: Vec<(usize, Vec<ObjectRef>)> = Vec::new();
    for (i, object) in manifest.objects.iter().enumerate() {
        let partition = object.partition.as_ref();
        if object.size < limits.min_file_bytes {
            open.entry(partition)
                .or_insert_with(|| (i, Vec::new()))
                .1
                .push(object.clone());
        } else if let Some(run) = open.remove(&partition) {
            runs.push(run);
        }
    }
    runs.extend(open.into_values());
    runs.sort_by_key(|(first, _)| *first);
    runs.into_iter().map(|(_, run)| run).filter(worth).collect()
}

/// The most live files of `manifest` smaller than `min_file_bytes` in one partition (all of
/// them, unpartitioned): what `compact_after_files` is compared with.
pub fn small_files(manifest: &Manifest, min_file_bytes: u64) -> usize {
    let mut counts: HashMap<Option<&PartitionTuple>, usize> = HashMap::new();
    for object in manifest.objects.iter().filter(|o| o.size < min_file_bytes) {
        *counts.entry(object.partition.as_ref()).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

/// Runs a compaction of `request.name`'s latest version: each run of [`plan_runs`]
/// rewritten and committed as one version, in order. Records its outcome in
/// [`metrics::COMPACTIONS_TOTAL`] with `trigger` (`manual` or `auto`).
///
/// # Errors
/// As the [`ApiError`] of: [`IngestError::DatasetNotFound`] (404);
/// [`IngestError::CompactionConflict`] (409 `conflict`) when a commit removed or changed
/// the files meanwhile (the runs committed before are named); [`IngestError::Upstream`],
/// [`IngestError::StoredObject`], [`IngestError::Convert`] and [`IngestError::Task`] when
/// reading, writing or registering fails (nothing committed for that run).
pub async fn compact(
    state: &AppState,
    request: &CompactRequest,
    trigger: &'static str,
) -> Result<CompactResponse, ApiError> {
    let started = Instant::now();
    let answer = compact_runs(state, request).await.map_err(ApiError::from);
    let outcome = match &answer {
        Ok(response) if response.manifest.is_none() => "nothing",
        Ok(response) if response.dry_run => "dry_run",
        Ok(response) if response.existing => "existing",
        Ok(_) => "ok",
        Err(error) => error.code().as_str(),
    };
    metrics::compaction_answered(trigger, outcome, started.elapsed());
    match &answer {
        Ok(response) => tracing::info!(
            dataset = %request.name,
            trigger,
            outcome,
            versions = ?response.versions,
            files_removed = response.files_removed,
            files_added = response.files_added,
            bytes_before = response.bytes_before,
            bytes_after = response.bytes_after,
            rows = response.rows,
            duration_ms = started.elapsed().as_millis(),
            "compaction complete"
        ),
        Err(error) => tracing::warn!(
            dataset = %request.name,
            trigger,
            outcome,
            error = %error.body.error.message,
            "compaction failed"
        ),
    }
    answer
}

async fn compact_runs(
    state: &AppState,
    request: &CompactRequest,
) -> Result<CompactResponse, IngestError> {
    let inner = &state.inner;
    let latest =
        state
            .latest(&request.name)
            .await?
            .ok_or_else(|| IngestError::DatasetNotFound {
                name: request.name.clone(),
            })?;
    let limits = state.compact_limits();
    let runs = plan_runs(&latest, limits);
    let mut response = CompactResponse {
        manifest: None,
        versions: Vec::new(),
        existing: !runs.is_empty(),
        dry_run: request.dry_run,
        files_removed: 0,
        files_added: 0,
        bytes_before: 0,
        bytes_after: 0,
        rows: 0,
        removed: Vec::new(),
        added: Vec::new(),
    };
    for run in runs {
        let destination = if request.dry_run {
            Destination::Nowhere
        } else {
            Destination::Storaged(inner.storaged.clone())
        };
        let added = rewrite(state, &latest, &run, limits, destination).await?;
        let committed = commit_run(state, request, &latest, &run, &added)
            .await
            .map_err(|error| error.after(&response.versions))?;
        if !committed.existing && !request.dry_run {
            response.versions.push(committed.manifest.version);
            metrics::compaction_committed(run.len() as u64, run.iter().map(|o| o.size).sum());
        }
        response.existing &= committed.existing;
        response.manifest = Some(committed.manifest);
        response.files_removed += run.len() as u64;
        response.files_added += added.len() as u64;
        response.bytes_before += run.iter().map(|o| o.size).sum::<u64>();
        response.bytes_after += added.iter().map(|o| o.size).sum::<u64>();
        response.rows += added.iter().map(|o| o.row_count).sum::<u64>();
        response.removed.extend(run.into_iter().map(|o| o.key));
        response.added.extend(added);
    }
    Ok(response)
}

/// Rewrites `run` (files of `latest`) with `latest`'s schema into files of about
/// `target_file_bytes`, stored content-addressed under the schema's directory (or only
/// hashed, for a dry run): their references, in row order.
///
/// # Errors
/// [`IngestError::Convert`] for an unreadable input, [`IngestError::Upstream`] /
/// [`IngestError::StoragedStalled`] / [`IngestError::StoredObject`] from storaged,
/// [`IngestError::Task`].
async fn rewrite(
    state: &AppState,
    latest: &Manifest,
    run: &[ObjectRef],
    limits: Limits,
    destination: Destination,
) -> Result<Vec<ObjectRef>, IngestError> {
    let runtime = tokio::runtime::Handle::current();
    let read_failure = Arc::new(std::sync::Mutex::new(None));
    let inputs: Vec<Arc<dyn RangeRead>> = run
        .iter()
        .map(|object| {
            Arc::new(StoredObject {
                storaged: state.inner.storaged.clone(),
                key: object.key.clone(),
                size: object.size,
                runtime: runtime.clone(),
                failure: Arc::clone(&read_failure),
            }) as Arc<dyn RangeRead>
        })
        .collect();
    let mut sink = Outputs {
        destination,
        name: latest.name.clone(),
        dir: ObjectKey::parquet_dir(&latest.name, &latest.schema_fingerprint),
        runtime,
        idle: state.inner.storaged_idle(),
        pending: None,
        written: Vec::new(),
        failure: None,
        partition: run.first().and_then(|o| o.partition.clone()),
    };
    let schema = latest.schema.clone();
    let target = limits.target_file_bytes;
    tokio::task::spawn_blocking(lakehouse_client::trace::bind(move || {
        let compacted =
            at_low_priority(|| lakehouse_convert::compact(&schema, &inputs, target, &mut sink));
        match compacted.map_err(ConvertError::Io).and_then(|done| done) {
            Ok(_) => Ok(sink.written),
            // storaged's own answer (to a read or a write) says more than the I/O error it
            // caused: a storaged that went away is a 503, not a bad input.
            Err(error) => Err(sink
                .failure
                .take()
                .or_else(|| {
                    read_failure
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take()
                })
                .unwrap_or(IngestError::Convert(error))),
        }
    }))
    .await
    .map_err(IngestError::Task)?
}

/// Runs `work` on a thread of its own at the lowest CPU priority (nice 19), waiting for it:
/// a compaction is background work, so the ingests sharing the cores are served first
/// (docs/decisions.md, "Compaction yields the cores"). Where the priority cannot be lowered,
/// `work` runs at the usual one. A panic in `work` is resumed here.
///
/// # Errors
/// The I/O error of making the thread (`work` did not run).
fn at_low_priority<T: Send>(work: impl FnOnce() -> T + Send) -> io::Result<T> {
    let work = lakehouse_client::trace::bind(work);
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("compaction".into())
            .spawn_scoped(scope, move || {
                // Linux keeps the nice value per thread: only this one is lowered, and it
                // ends with the compaction.
                if let Err(error) =
                    rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19)
                {
                    tracing::debug!(%error, "the compaction's priority stays as it was");
                }
                work()
            })
            .map_err(|error| {
                io::Error::new(error.kind(), format!("no compaction thread: {error}"))
            })?;
        Ok(thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// One file a merge or delete rewrites (docs/contract.md section 11): its bytes, its
/// partition tuple (kept), and its rows to leave out (0-based, ascending).
pub(crate) struct Rewrite {
    pub(crate) input: Arc<dyn RangeRead>,
    pub(crate) partition: Option<PartitionTuple>,
    pub(crate) removed: Vec<u64>,
}

/// storaged's failure to answer a read of one of several inputs, kept to be answered
/// instead of the I/O error it caused (a storaged that went away is a 503, not a 500).
pub(crate) type ReadFailure = Arc<std::sync::Mutex<Option<IngestError>>>;

/// Takes the failure `failure` holds, if any.
pub(crate) fn take_failure(failure: &ReadFailure) -> Option<IngestError> {
    failure.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// A stored object as an input of a rewrite or a merge's plan: read by range from storaged;
/// a failed read is kept in `failure`.
pub(crate) fn stored_input(
    state: &AppState,
    object: &ObjectRef,
    failure: &ReadFailure,
) -> Arc<dyn RangeRead> {
    Arc::new(StoredObject {
        storaged: state.inner.storaged.clone(),
        key: object.key.clone(),
        size: object.size,
        runtime: tokio::runtime::Handle::current(),
        failure: Arc::clone(failure),
    })
}

/// Rewrites each of `files` without its removed rows, with `schema`, into files of about
/// `target_file_bytes` stored content-addressed under the schema's directory (or only
/// hashed, for a dry run): the written files' references, in order (a file left without
/// rows gives none).
///
/// # Errors
/// As [`rewrite`].
pub(crate) async fn rewrite_each(
    state: &AppState,
    name: &DatasetName,
    schema: &lakehouse_api::Schema,
    files: Vec<Rewrite>,
    destination: Destination,
    read_failure: &ReadFailure,
) -> Result<Vec<ObjectRef>, IngestError> {
    let read_failure = Arc::clone(read_failure);
    let runtime = tokio::runtime::Handle::current();
    let idle = state.inner.storaged_idle();
    let target = state.compact_limits().target_file_bytes;
    let dir = ObjectKey::parquet_dir(name, &schema.fingerprint());
    let name = name.clone();
    let schema = schema.clone();
    tokio::task::spawn_blocking(lakehouse_client::trace::bind(move || {
        let mut written = Vec::new();
        for file in files {
            let mut sink = Outputs {
                destination: destination.clone(),
                name: name.clone(),
                dir: dir.clone(),
                runtime: runtime.clone(),
                idle,
                pending: None,
                written: Vec::new(),
                failure: None,
                partition: file.partition,
            };
            let removed = [file.removed];
            let inputs = [file.input];
            if let Err(error) =
                lakehouse_convert::rewrite_without(&schema, &inputs, &removed, target, &mut sink)
            {
                return Err(sink
                    .failure
                    .take()
                    .or_else(|| take_failure(&read_failure))
                    .unwrap_or(IngestError::Convert(error)));
            }
            written.append(&mut sink.written);
        }
        Ok(written)
    }))
    .await
    .map_err(IngestError::Task)?
}

/// What [`commit_run`] got from catalogd.
struct Committed {
    manifest: Manifest,
    existing: bool,
}

/// Registers `added` as the replacement of `run` (docs/contract.md section 10).
///
/// # Errors
/// [`IngestError::CompactionConflict`] for catalogd's 409 (`conflict`: a file of the run is
/// no longer live; `schema_drift`: the schema changed meanwhile); [`IngestError::Upstream`].
async fn commit_run(
    state: &AppState,
    request: &CompactRequest,
    latest: &Manifest,
    run: &[ObjectRef],
    added: &[ObjectRef],
) -> Result<Committed, IngestError> {
    let register = VersionRegisterRequest {
        schema_fingerprint: latest.schema_fingerprint.clone(),
        schema: latest.schema.clone(),
        objects: added.to_vec(),
        // Ignored when `replaces` is given: the operation is `compact`.
        mode: IngestMode::Append,
        source: lakehouse_api::Source::default(),
        options: latest.options.clone(),
        inference_version: latest.inference_version,
        columns: latest.columns.clone(),
        schema_evolution: None,
        dry_run: request.dry_run,
        replaces: run.iter().map(|o| o.key.clone()).collect(),
        partition_spec: latest.partition_spec.clone(),
        key: None,
        base_version: None,
    };
    match state
        .inner
        .catalogd
        .register(&request.name, &register)
        .await
    {
        Ok(registered) => Ok(Committed {
            manifest: registered.manifest,
            existing: registered.existing,
        }),
        Err(source @ ClientError::Remote { .. })
            if matches!(source.code(), ErrorCode::Conflict | ErrorCode::SchemaDrift) =>
        {
            Err(IngestError::CompactionConflict {
                reason: source.to_string(),
                committed: Vec::new(),
            })
        }
        Err(source) => Err(IngestError::Upstream {
            service: "catalogd",
            source,
        }),
    }
}

/// An input of the rewrite: a stored Parquet object read by range from storaged (blocking
/// on the runtime: called from the rewrite's blocking thread).
struct StoredObject {
    storaged: StoragedClient,
    key: ObjectKey,
    size: u64,
    runtime: tokio::runtime::Handle,
    /// storaged's failure to answer a read, kept to be answered instead of the I/O error it
    /// caused (shared by the inputs of one rewrite).
    failure: Arc<std::sync::Mutex<Option<IngestError>>>,
}

impl RangeRead for StoredObject {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_range(&self, start: u64, length: u64) -> io::Result<Bytes> {
        let end = start.saturating_add(length);
        let bytes = self
            .runtime
            .block_on(self.storaged.get_range(&self.key, start, end))
            .map_err(|source| {
                let text = format!("reading {}: {source}", self.key);
                let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                failure.get_or_insert(IngestError::Upstream {
                    service: "storaged",
                    source,
                });
                io::Error::other(text)
            })?;
        if bytes.len() as u64 != length {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} answered {} of {length} bytes", self.key, bytes.len()),
            ));
        }
        Ok(bytes)
    }
}

/// The outputs of the rewrite: each file a streamed content-addressed POST to storaged (or
/// a digest, for a dry run), committed when the file is complete and checked against the
/// key layout of docs/contract.md section 5.
struct Outputs {
    destination: Destination,
    name: DatasetName,
    dir: ObjectKey,
    runtime: tokio::runtime::Handle,
    idle: Duration,
    pending: Option<ParquetUpload>,
    written: Vec<ObjectRef>,
    /// storaged's failure, kept to be answered instead of the I/O error it caused.
    failure: Option<IngestError>,
    /// The run's partition tuple, which every rewritten file keeps.
    partition: Option<PartitionTuple>,
}

impl Outputs {
    fn fail(&mut self, error: IngestError) -> io::Error {
        let text = error.to_string();
        self.failure = Some(error);
        io::Error::other(text)
    }
}

impl CompactSink for Outputs {
    type Writer = ChunkSender;

    fn open(&mut self) -> io::Result<ChunkSender> {
        let (sender, upload) = upload::start(
            &self.destination,
            self.dir.clone(),
            upload::PARQUET_SUFFIX,
            &self.runtime,
            self.idle,
        );
        self.pending = Some(upload);
        Ok(sender)
    }

    fn close(&mut self, mut writer: ChunkSender, size: u64, rows: u64) -> io::Result<()> {
        use std::io::Write;
        writer.flush()?;
        drop(writer);
        let Some(upload) = self.pending.take() else {
            return Err(io::Error::other("no output file is open"));
        };
        let (stored, _created) = match self.runtime.block_on(upload.commit()) {
            Ok(answer) => answer,
            Err(error) => return Err(self.fail(error)),
        };
        let key = ObjectKey::try_from(format!(
            "{}/{}{}",
            self.dir,
            stored.sha256.as_str(),
            upload::PARQUET_SUFFIX
        ))
        .map_err(io::Error::other)?;
        if stored.key != key || stored.size != size {
            return Err(self.fail(IngestError::StoredObject {
                expected_key: key.to_string(),
                stored_key: stored.key.to_string(),
                sent_bytes: size,
                stored_bytes: stored.size,
            }));
        }
        tracing::debug!(dataset = %self.name, key = %key, size, rows, "compacted file stored");
        self.written.push(ObjectRef {
            key,
            size,
            sha256: stored.sha256,
            row_count: rows,
            rejects: None,
            partition: self.partition.clone(),
        });
        Ok(())
    }
}

/// After a commit of `manifest` by this process: when it leaves more than
/// `compact_after_files` small files and no compaction of the dataset runs in this process,
/// starts one in the background (docs/contract.md section 10). Its outcome is logged and
/// counted ([`metrics::COMPACTIONS_TOTAL`] with `trigger="auto"`).
pub fn after_commit(state: &AppState, manifest: &Manifest) {
    let config = state.config();
    if config.compact_after_files == 0
        || small_files(manifest, config.compact_min_file_bytes) as u64 <= config.compact_after_files
    {
        return;
    }
    let Some(guard) = state.start_compacting(&manifest.name) else {
        return;
    };
    let state = state.clone();
    let request = CompactRequest {
        name: manifest.name.clone(),
        dry_run: false,
    };
    tokio::spawn(lakehouse_client::trace::bind_future(async move {
        let _guard = guard;
        // One slot like an ingest: waits for one rather than refusing, since nobody waits
        // for the answer.
        let Ok(_slot) = state.inner.slots.clone().acquire_owned().await else {
            return;
        };
        let _ = compact(&state, &request, "auto").await;
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{Schema, Sha256Digest};

    fn object(n: u8, size: u64) -> ObjectRef {
        let sha256 = Sha256Digest::from_bytes([n; 32]);
        ObjectRef {
            key: ObjectKey::try_from(format!("datasets/d/fp/{}.parquet", sha256.as_str())).unwrap(),
            size,
            sha256,
            row_count: 1,
            rejects: None,
            partition: None,
        }
    }

    fn manifest(sizes: &[u64]) -> Manifest {
        let schema = Schema { fields: Vec::new() };
        Manifest {
            key: None,
            name: DatasetName::new("d").unwrap(),
            version: 1,
            schema_fingerprint: schema.fingerprint(),
            schema,
            objects: sizes
                .iter()
                .enumerate()
                .map(|(i, &s)| object(i as u8, s))
                .collect(),
            row_count: sizes.len() as u64,
            created_at: String::new(),
            inference_version: 2,
            options: Default::default(),
            source: Default::default(),
            columns: Vec::new(),
            operation: None,
            partition_spec: None,
        }
    }

    const LIMITS: Limits = Limits {
        min_file_bytes: 100,
        target_file_bytes: 1000,
    };

    fn run_sizes(sizes: &[u64]) -> Vec<Vec<u64>> {
        plan_runs(&manifest(sizes), LIMITS)
            .iter()
            .map(|run| run.iter().map(|o| o.size).collect())
            .collect()
    }

    /// The nice value of the calling thread (field 19 of `/proc/thread-self/stat`).
    fn nice() -> Option<i32> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(16)?
            .parse()
            .ok()
    }

    #[test]
    fn compaction_work_runs_at_nice_19_and_the_caller_keeps_its_priority() {
        let before = nice();
        assert!(before.is_some_and(|n| n < 19), "{before:?}");
        assert_eq!(at_low_priority(nice).unwrap(), Some(19));
        assert_eq!(
            nice(),
            before,
            "only the compaction's own thread is lowered"
        );
        let panicked = std::panic::catch_unwind(|| at_low_priority(|| panic!("in the work")));
        assert!(panicked.is_err(), "a panic in the work reaches the caller");
    }

    #[test]
    fn runs_are_contiguous_small_files_split_by_large_ones() {
        assert_eq!(
            run_sizes(&[10, 20, 500, 30, 40, 50, 100, 60]),
            vec![vec![10, 20], vec![30, 40, 50]]
        );
    }

    #[test]
    fn a_lone_small_file_or_none_is_nothing_to_do() {
        assert!(run_sizes(&[]).is_empty());
        assert!(run_sizes(&[10]).is_empty());
        assert!(run_sizes(&[10, 500, 20]).is_empty());
        assert!(run_sizes(&[500, 600]).is_empty());
    }

    #[test]
    fn a_run_that_would_not_shrink_is_left_alone() {
        let limits = Limits {
            min_file_bytes: 100,
            target_file_bytes: 90,
        };
        assert!(plan_runs(&manifest(&[95, 95]), limits).is_empty());
        assert_eq!(plan_runs(&manifest(&[40, 40, 40]), limits).len(), 1);
    }

    #[test]
    fn small_files_are_counted() {
        assert_eq!(small_files(&manifest(&[10, 500, 20]), 100), 2);
    }
}
