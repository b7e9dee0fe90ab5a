//! Loads from object storage (docs/contract.md section 12): the job and its state.
//!
//! A load lists the files of a configured source ([`crate::sources`]) that a pattern matches,
//! reads the dataset's ledger (the files its versions record in `source.file`, from catalogd)
//! and then, file by file in key order, skips a file the ledger holds (unless `force`) or
//! streams it through the same pipeline as `POST /ingest` ([`Ingest::begin`],
//! [`Ingest::receive`], [`crate::ingest::Received::finish`]), which commits its own version
//! recording the file. A file's failure is recorded in its entry and the load goes on. Each
//! file takes one of the `max_concurrent_ingests` slots while it is ingested (waiting for one
//! rather than failing), so uploads and loads share the same bound.
//!
//! The state of a load lives in this process only ([`Loads`], the most recent
//! [`KEPT_LOADS`]); the ledger lives in the catalog, committed with each version, so a load
//! cut by a crash is finished by posting it again.

use crate::ingest::{Ingest, IngestRequest};
use crate::sources::{Listed, Pattern, Source};
use crate::{AppState, IngestError, metrics, spool};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use lakehouse_api::{
    ErrorInfo, IngestResponse, LoadFile, LoadFileState, LoadGetResponse, LoadState, SourceFile,
};
use lakehouse_server::ApiError;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Loads kept for `GET /loads` and `GET /loads/{id}`: running ones always, and the most
/// recent finished ones up to this many in all.
pub const KEPT_LOADS: usize = 100;

/// Why a file was skipped: a version of the dataset records the same path, ETag and size.
pub const ALREADY_LOADED: &str = "already_loaded";

/// What a load was asked to do, validated.
#[derive(Debug)]
pub struct LoadPlan {
    /// The source to read.
    pub source: Arc<Source>,
    /// The pattern as given.
    pub pattern_text: String,
    /// The pattern, checked.
    pub pattern: Pattern,
    /// Load files the ledger holds too.
    pub force: bool,
    /// The ingest every file gets (dataset, `append`, the reading options).
    pub template: IngestRequest,
}

/// One load: its state, and a signal for those waiting for its end.
#[derive(Debug)]
pub struct Job {
    status: Mutex<LoadGetResponse>,
    finished: watch::Sender<bool>,
}

impl Job {
    /// A copy of the load's state now.
    pub fn status(&self) -> LoadGetResponse {
        self.lock().clone()
    }

    /// Waits until the load has ended; then its final state.
    pub async fn wait(&self) -> LoadGetResponse {
        let mut finished = self.finished.subscribe();
        // The sender lives as long as the job, so this only ends when it is set.
        let _ = finished.wait_for(|done| *done).await;
        self.status()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LoadGetResponse> {
        // A panic while holding it cannot leave the status torn in a way that matters to
        // a reader: take it anyway.
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update(&self, f: impl FnOnce(&mut LoadGetResponse)) {
        f(&mut self.lock());
    }

    fn finish(&self, state: LoadState, error: Option<ErrorInfo>) {
        self.update(|status| {
            status.state = state;
            status.error = error;
            status.finished_at = Some(now());
        });
        metrics::load_ended(match state {
            LoadState::Running | LoadState::Done => "done",
            LoadState::Failed => "failed",
        });
        self.finished.send_replace(true);
    }
}

/// The loads of this process, oldest first.
#[derive(Debug, Default)]
pub struct Loads {
    jobs: Mutex<VecDeque<Arc<Job>>>,
}

impl Loads {
    /// The load `id`.
    ///
    /// # Errors
    /// [`IngestError::LoadNotFound`].
    pub fn get(&self, id: &str) -> Result<Arc<Job>, IngestError> {
        self.lock()
            .iter()
            .find(|job| job.lock().load_id == id)
            .cloned()
            .ok_or_else(|| IngestError::LoadNotFound { id: id.to_owned() })
    }

    /// Every load kept, newest first.
    pub fn list(&self) -> Vec<LoadGetResponse> {
        self.lock().iter().rev().map(|job| job.status()).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `job`, dropping the oldest finished loads past [`KEPT_LOADS`].
    fn add(&self, job: Arc<Job>) {
        let mut jobs = self.lock();
        jobs.push_back(job);
        while jobs.len() > KEPT_LOADS {
            let Some(oldest_finished) = jobs
                .iter()
                .position(|job| job.lock().state != LoadState::Running)
            else {
                break;
            };
            jobs.remove(oldest_finished);
        }
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Creates the load and runs it in the background (bound to the request's trace context, so
/// its log lines and upstream calls carry the request id). Returns it at once.
pub fn start(state: &AppState, plan: LoadPlan) -> Arc<Job> {
    let status = LoadGetResponse {
        load_id: uuid::Uuid::new_v4().to_string(),
        source: plan.source.name.clone(),
        pattern: plan.pattern_text.clone(),
        name: plan.template.name.clone(),
        force: plan.force,
        state: LoadState::Running,
        created_at: now(),
        finished_at: None,
        files_total: 0,
        files_done: 0,
        bytes_total: 0,
        bytes_done: 0,
        error: None,
        files: Vec::new(),
    };
    let job = Arc::new(Job {
        status: Mutex::new(status),
        finished: watch::Sender::new(false),
    });
    state.inner.loads.add(Arc::clone(&job));
    metrics::load_started();
    let running = Arc::clone(&job);
    let state = state.clone();
    tokio::spawn(lakehouse_client::trace::bind_future(async move {
        run(&state, &running, &plan).await;
    }));
    job
}

/// The body of a load: list, read the ledger, then each file in key order.
async fn run(state: &AppState, job: &Job, plan: &LoadPlan) {
    let listed = match plan.source.list(&plan.pattern).await {
        Ok(listed) => listed,
        Err(error) => return job.finish(LoadState::Failed, Some(info(error))),
    };
    job.update(|status| {
        status.files_total = listed.len() as u64;
        status.bytes_total = listed.iter().map(|f| f.size).sum();
        status.files = listed
            .iter()
            .map(|f| LoadFile {
                path: f.path.clone(),
                etag: f.etag.clone(),
                size: f.size,
                state: LoadFileState::Pending,
                reason: None,
                version: None,
                existing: None,
                error: None,
            })
            .collect();
    });
    let ledger = if plan.force || listed.is_empty() {
        Ledger::default()
    } else {
        match Ledger::read(state, plan).await {
            Ok(ledger) => ledger,
            Err(error) => return job.finish(LoadState::Failed, Some(info(error))),
        }
    };
    let load_id = job.lock().load_id.clone();
    for (index, file) in listed.iter().enumerate() {
        if let Err(error) = state.admit() {
            // Shutting down or switched off: the files left stay pending, for the next run.
            return job.finish(LoadState::Failed, Some(info(error)));
        }
        if let Some(version) = ledger.version_of(&plan.source.name, file) {
            job.update(|status| {
                let entry = &mut status.files[index];
                entry.state = LoadFileState::Skipped;
                entry.reason = Some(ALREADY_LOADED.into());
                entry.version = Some(version);
                status.files_done += 1;
                status.bytes_done += file.size;
            });
            metrics::load_file("skipped", file.size);
            continue;
        }
        let base = job.lock().bytes_done;
        let outcome = load_file(state, plan, file, &load_id, job).await;
        if let Err(error) = &outcome {
            tracing::warn!(load_id, path = %file.path, error = %error, "load: file failed");
        }
        job.update(|status| {
            let entry = &mut status.files[index];
            match outcome {
                Ok(answer) => {
                    entry.state = LoadFileState::Loaded;
                    entry.version = Some(answer.manifest.version);
                    entry.existing = Some(answer.existing);
                    metrics::load_file(
                        if answer.existing {
                            "existing"
                        } else {
                            "loaded"
                        },
                        file.size,
                    );
                }
                Err(error) => {
                    entry.state = LoadFileState::Failed;
                    entry.error = Some(info(error));
                    metrics::load_file("failed", file.size);
                }
            }
            status.files_done += 1;
            status.bytes_done = base + file.size;
        });
    }
    job.finish(LoadState::Done, None);
}

/// Ingests one file: a slot (waited for), then the source's stream through the pipeline of
/// `POST /ingest`, recording the file in the version it commits.
async fn load_file(
    state: &AppState,
    plan: &LoadPlan,
    file: &Listed,
    load_id: &str,
    job: &Job,
) -> Result<IngestResponse, IngestError> {
    let _slot = state
        .inner
        .slots
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| IngestError::Unavailable {
            reason: "shutting down",
            retry_after_secs: state.config().retry_after_secs,
        })?;
    let _in_flight = metrics::InFlight::start();
    let config = state.config();
    spool::check_free_space(
        &config.spool_dir,
        config.min_free_spool_bytes,
        config.retry_after_secs,
    )?;
    let body = Box::pin(plan.source.open(file).await?);
    let mut request = plan.template.clone();
    request.source_file = Some(SourceFile {
        source: plan.source.name.clone(),
        path: file.path.clone(),
        etag: file.etag.clone(),
        size: file.size,
        load_id: load_id.to_owned(),
    });
    let filename = file.path.rsplit('/').next().map(str::to_owned);
    let idle = Duration::from_millis(config.upload_idle_timeout_ms);
    let counted = body.inspect(|chunk| {
        if let Ok(chunk) = chunk {
            job.update(|status| status.bytes_done += chunk.len() as u64);
        }
    });
    let ingest = Ingest::begin(state, request).await?;
    let chunks = coalesce(Box::pin(with_idle_timeout(counted, idle)), COALESCE_BYTES);
    let received = ingest.receive(Box::pin(chunks), filename).await?;
    received.finish().await
}

/// The least bytes handed to the pipeline at a time: an S3 body arrives in frames of a few
/// KiB, and each chunk costs a spool write and a hand-over to the verified pass.
const COALESCE_BYTES: usize = 1 << 20;

/// `chunks` gathered into chunks of at least `min` bytes (the last one may be smaller).
fn coalesce<S>(chunks: S, min: usize) -> impl Stream<Item = Result<Bytes, IngestError>>
where
    S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
{
    let state = (Some(chunks), bytes::BytesMut::new());
    futures::stream::unfold(state, move |(chunks, mut buffer)| async move {
        let mut chunks = chunks?;
        loop {
            match chunks.next().await {
                Some(Ok(chunk)) => {
                    buffer.extend_from_slice(&chunk);
                    if buffer.len() >= min {
                        return Some((Ok(buffer.split().freeze()), (Some(chunks), buffer)));
                    }
                }
                Some(Err(error)) => return Some((Err(error), (None, buffer))),
                None if buffer.is_empty() => return None,
                None => return Some((Ok(buffer.split().freeze()), (None, buffer))),
            }
        }
    })
}

/// `chunks`, failing with [`IngestError::IdleTimeout`] when the source sends nothing for
/// `idle` (`upload_idle_timeout_ms`, as for an upload).
fn with_idle_timeout<S>(chunks: S, idle: Duration) -> impl Stream<Item = Result<Bytes, IngestError>>
where
    S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
{
    futures::stream::unfold(Some(chunks), move |chunks| async move {
        let mut chunks = chunks?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(chunks))),
            Ok(Some(Err(error))) => Some((Err(error), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(IngestError::IdleTimeout {
                    idle_ms: u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
                }),
                None,
            )),
        }
    })
}

/// The files a dataset's versions record as loaded from one source: (path, ETag, size) to
/// the version that recorded it.
#[derive(Debug, Default)]
struct Ledger {
    files: HashMap<(String, String, Option<String>, u64), u64>,
}

impl Ledger {
    /// Reads the ledger from catalogd (`GET /datasets/{name}/loaded-files`); a dataset that
    /// does not exist yet has an empty one.
    async fn read(state: &AppState, plan: &LoadPlan) -> Result<Ledger, IngestError> {
        let listed = state
            .inner
            .catalogd
            .loaded_files(&plan.template.name, &plan.source.name)
            .await
            .map_err(|source| IngestError::Upstream {
                service: "catalogd",
                source,
            })?;
        let files = listed
            .map(|list| list.files)
            .unwrap_or_default()
            .into_iter()
            .map(|loaded| {
                let f = loaded.file;
                ((f.source, f.path, f.etag, f.size), loaded.version)
            })
            .collect();
        Ok(Ledger { files })
    }

    fn version_of(&self, source: &str, file: &Listed) -> Option<u64> {
        let key = (
            source.to_owned(),
            file.path.clone(),
            file.etag.clone(),
            file.size,
        );
        self.files.get(&key).copied()
    }
}

/// A file's or a load's error as `POST /ingest` would answer it.
fn info(error: IngestError) -> ErrorInfo {
    ApiError::from(error).body.error
}
