//! The ingest pipeline behind `POST /ingest` (docs/contract.md sections 1, 3, 5 and 6), as one
//! type a handler drives in three calls:
//!
//! 1. [`Ingest::begin`]: reads the dataset's current manifest (the [`Plan`]: options, the
//!    registered schema if any) and starts the verified pass 2 on a blocking thread
//!    ([`start_speculative`]), before any byte of the body is read.
//! 2. [`Ingest::receive`]: spools the upload to disk, hashing it, and feeds every chunk to
//!    that pass as it arrives ([`spool::receive`]). Any failure withdraws the pass.
//! 3. [`Received::finish`]: settles pass 2 ([`settle`]: the speculative output when it
//!    proved its schema over every byte, else the second guess verified over the spool
//!    file, else pass 1 and pass 2 over it), then
//!    commits the Parquet object in storaged and registers the version in catalogd
//!    ([`commit`]).
//!
//! Its stages, one submodule each: [`plan`] (the request's options and what is known before
//! the body is read), [`speculative`] (the verified pass 2 during the upload), [`rejects`]
//! (`max_rejects`), [`passes`] (settling pass 2, else pass 1 and pass 2 over the spool file)
//! and [`commit`] (storing and registering).

mod commit;
mod keyed;
mod partitioned;
mod passes;
mod plan;
mod rejects;
mod speculative;

pub use plan::IngestRequest;

use crate::spool::{self, Spooled};
use crate::upload::Uploads;
use crate::{AppState, IngestError};
use bytes::Bytes;
use commit::commit;
use futures::Stream;
use lakehouse_api::{DatasetName, IngestResponse, ObjectKey, Schema, Sha256Digest, TextEncoding};
use lakehouse_convert::{Detected, EncodeStats};
use passes::settle;
use plan::{Plan, plan};
use rejects::set_aside;
use speculative::{Speculative, no_speculation, start_speculative};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Day/month orders of `P/Q/YYYY` date columns, by name (docs/contract.md section 3).
type DateOrders = BTreeMap<String, lakehouse_api::DateOrder>;

/// One ingest after [`Ingest::begin`]: the plan made, the verified pass 2 waiting for the
/// upload's bytes.
pub struct Ingest {
    state: AppState,
    request: IngestRequest,
    plan: Plan,
    tap: mpsc::Sender<Bytes>,
    speculative: Speculative,
}

impl Ingest {
    /// Plans the ingest ([`plan`]) and starts the verified pass 2 ([`start_speculative`]),
    /// so that it reads the upload while it arrives.
    ///
    /// # Errors
    /// [`IngestError::Upstream`] when catalogd fails.
    pub async fn begin(state: &AppState, request: IngestRequest) -> Result<Ingest, IngestError> {
        let plan = plan(state, &request).await?;
        // With rejects allowed, bad records are set aside before any pass reads the upload
        // ([`set_aside`]), so nothing is speculated while it arrives.
        let (tap, speculative) = if plan.max_rejects > 0 {
            no_speculation()
        } else {
            start_speculative(state, &request.name, &plan)
        };
        Ok(Ingest {
            state: state.clone(),
            request,
            plan,
            tap,
            speculative,
        })
    }

    /// Ends an ingest whose body could not be read at all (no `file` field): the verified
    /// pass sees the end of its input and is waited for, its upload to storaged withdrawn.
    /// Returns `error`, the answer.
    pub async fn abandon(self, error: IngestError) -> IngestError {
        drop(self.tap);
        self.speculative.cancel().await;
        error
    }

    /// Spools `body` (the `file` field's chunks, with the multipart `filename`), feeding the
    /// verified pass 2 as it arrives. Whatever way this ends the pass sees the end of its
    /// input; on an error it is waited for, so the spool file is gone before the answer is
    /// sent (the spool is removed when the request ends, whatever the outcome).
    ///
    /// # Errors
    /// [`IngestError::TooLarge`], [`IngestError::Spool`] and the body's own errors
    /// ([`IngestError::IdleTimeout`], [`IngestError::BadUpload`]).
    pub async fn receive<S>(
        self,
        body: S,
        filename: Option<String>,
    ) -> Result<Received, IngestError>
    where
        S: Stream<Item = Result<Bytes, IngestError>> + Unpin,
    {
        let Ingest {
            state,
            mut request,
            plan,
            tap,
            speculative,
        } = self;
        let started = Instant::now();
        let config = state.config();
        let received = spool::receive(
            &config.spool_dir,
            body,
            config.max_upload_bytes,
            vec![tap],
            config.spool_direct_io,
        )
        .await;
        let upload = match received {
            Ok(upload) => upload,
            Err(error) => {
                speculative.cancel().await;
                return Err(error);
            }
        };
        request.filename = filename;
        Ok(Received {
            state,
            request,
            plan,
            speculative,
            upload,
            receive_ms: started.elapsed().as_millis(),
        })
    }
}

/// One ingest after [`Ingest::receive`]: the upload spooled, pass 2 finishing its tail.
pub struct Received {
    state: AppState,
    request: IngestRequest,
    plan: Plan,
    speculative: Speculative,
    upload: Spooled,
    receive_ms: u128,
}

impl Received {
    /// Ends an ingest whose body turned out unusable after the `file` field was spooled (a
    /// second `file` field): pass 2 is waited for and its upload to storaged withdrawn; the
    /// spool goes with `self`. Returns `error`, the answer.
    pub async fn abandon(self, error: IngestError) -> IngestError {
        self.speculative.cancel().await;
        error
    }

    /// Settles pass 2 ([`settle`]), then commits the Parquet object and registers the
    /// version ([`commit`]).
    ///
    /// # Errors
    /// [`IngestError::Convert`] for bad CSV and schema drift found before anything is
    /// stored, [`IngestError::Upstream`] when storaged or catalogd fail (a drift found by the
    /// register call's race-safe gate included), [`IngestError::StoredObject`] when storaged
    /// stored other bytes than were sent, [`IngestError::Spool`]/[`IngestError::Task`] for
    /// local failures.
    pub async fn finish(self) -> Result<IngestResponse, IngestError> {
        let Received {
            state,
            request,
            mut plan,
            speculative,
            upload,
            receive_ms,
        } = self;
        let csv = CsvFacts {
            size: upload.size_bytes,
            sha256: upload.sha256.clone(),
            hash_ms: upload.hash_time.as_millis(),
            receive_ms,
        };
        if let Some(dir) = &plan.keyed_dir {
            // The passes drop the spool file; a merge's bad keys are named by line from it.
            std::fs::hard_link(upload.file.path(), dir.path().join(keyed::CSV_LINK))
                .map_err(IngestError::Spool)?;
        }
        let (upload, set_aside) = if plan.max_rejects > 0 {
            set_aside(&state, &plan, upload).await?
        } else {
            (upload, None)
        };
        if let Some(set_aside) = &set_aside {
            // The passes read the clean CSV: plain UTF-8 text with the delimiter found.
            plan.options.delimiter = set_aside.delimiter;
            plan.options.encoding = TextEncoding::Utf8;
            plan.sniff = false;
        }
        // The spool's blocks are freed once the ingest is answered, not while it stores.
        let mut scratch = Scratch {
            // Only an optimisation: without a second handle the blocks go with the file.
            csv: upload.file.hold().ok(),
            partitions: None,
        };
        let mut settled = settle(&state, &request.name, &plan, speculative, upload).await?;
        if let Some(set_aside) = &set_aside {
            // Pass 1 read the clean CSV, whose header already holds the final names.
            settled.pass1.warnings.clone_from(&set_aside.warnings);
            // The manifest says how the upload itself was read.
            settled.pass1.detected = set_aside.detected;
            settled.pass1.delimiter = set_aside.delimiter;
        }
        let answer = commit(
            &state,
            &request,
            plan,
            csv,
            settled,
            set_aside,
            &mut scratch,
        )
        .await;
        scratch.remove_partitions().await;
        answer
    }
}

/// Spool space an ingest no longer reads but frees only once its objects are stored and its
/// version registered, on a blocking thread: a second handle on the CSV spool file (its name
/// is gone already) and the partition files already stored. Freeing a GiB of blocks (a
/// discard per extent on a disk mounted with `discard`) while storaged writes and syncs the
/// upload's objects slowed the store of a 1 GiB upload's 325 partition files from 0.63 to
/// 0.85 s (docs/performance.md).
struct Scratch {
    csv: Option<std::fs::File>,
    /// The partition files' spool directory.
    partitions: Option<tempfile::TempDir>,
}

impl Scratch {
    /// Removes the partition files now and waits for it, so none is left in the spool once
    /// the ingest is answered. The CSV's blocks are freed in the background when `self` drops.
    async fn remove_partitions(&mut self) {
        if let Some(dir) = self.partitions.take() {
            // A failed task only means the directory went with its panic: nothing to report.
            let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let freed = (self.csv.take(), self.partitions.take());
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || drop(freed))),
            Err(_) => drop(freed),
        }
    }
}

/// What is known of the uploaded CSV once spooled.
struct CsvFacts {
    size: u64,
    sha256: Sha256Digest,
    hash_ms: u128,
    receive_ms: u128,
}

/// Pass 2 settled: the schema and the Parquet written with it, its upload to storaged not
/// yet committed, and how it went.
struct Settled {
    pass1: Pass1Output,
    encoded: Encoded,
    written: Written,
    settled_by: SettledBy,
    guess_ms: u128,
    speculation_wait_ms: u128,
    pass2_ms: u128,
}

/// How the schema and the Parquet were settled (docs/contract.md section 13): the
/// `settled_by` field of the `ingest complete` log line and the `by` label of
/// [`crate::metrics::SCHEMA_SETTLED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SettledBy {
    /// The speculative pass proved its schema while the upload arrived: one read.
    Speculation,
    /// A new dataset's guess was refuted and the second guess proven over the spool file.
    SecondGuess,
    /// Pass 1 and pass 2 over the spool file.
    Passes,
}

impl SettledBy {
    /// The label value: `speculation`, `second_guess` or `passes`.
    fn as_str(self) -> &'static str {
        match self {
            SettledBy::Speculation => "speculation",
            SettledBy::SecondGuess => "second_guess",
            SettledBy::Passes => "passes",
        }
    }
}

/// Where pass 2's Parquet is.
enum Written {
    /// The object (or objects, past `target_file_bytes`), their POSTs to storaged still
    /// open (committed by [`commit`]).
    Streamed(Box<Uploads>),
    /// A partitioned dataset's files, in the spool (stored by [`commit`]).
    Partitioned(partitioned::PartitionedFiles),
}

/// What pass 1 found: the schema to write with, the header warnings, and its busy time.
struct Pass1Output {
    schema: Schema,
    warnings: Vec<String>,
    /// The upload's compression and text encoding, as read.
    detected: Detected,
    /// The delimiter read with: the option, or the one sniffed.
    delimiter: u8,
    /// The day/month orders read with: the dataset's, or those the inference settled.
    date_orders: DateOrders,
    busy: Duration,
}

/// Where the Parquet objects of `name` with `schema` go: `datasets/<name>/<fp_hex>`.
fn parquet_dir(name: &DatasetName, schema: &Schema) -> ObjectKey {
    ObjectKey::parquet_dir(name, &schema.fingerprint())
}

/// What pass 2 wrote (the bytes went to storaged as they were written).
struct Encoded {
    output: lakehouse_convert::ParquetOutput,
    stats: EncodeStats,
}
