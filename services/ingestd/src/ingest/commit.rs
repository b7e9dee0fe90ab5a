//! The last stage: the Parquet object committed in storaged and checked, the rejects stored,
//! the version registered with catalogd (docs/contract.md sections 1 and 6).

use super::keyed::{KeyedInputs, commit_keyed};
use super::partitioned::store_partitioned;
use super::rejects::{PendingRejects, store_rejects};
use super::{CsvFacts, Encoded, IngestRequest, Pass1Output, Plan, Scratch, Settled, Written};
use crate::upload::StoredFile;
use crate::{AppState, IngestError};
use lakehouse_api::{
    CsvOptions, DatasetName, INFERENCE_VERSION, IngestResponse, MergeCounts, ObjectKey, ObjectRef,
    SchemaFingerprint, Sha256Digest, Source, VersionRegisterRequest, VersionRegisterResponse,
};
use std::time::Instant;

/// Commits the Parquet object (ends its streamed POST and checks what storaged stored) and
/// registers the version with catalogd. The partition files' spool directory goes to
/// `scratch` first, whatever happens next.
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoredObject`].
pub(super) async fn commit(
    state: &AppState,
    request: &IngestRequest,
    plan: Plan,
    csv: CsvFacts,
    settled: Settled,
    set_aside: Option<PendingRejects>,
    scratch: &mut Scratch,
) -> Result<IngestResponse, IngestError> {
    let Settled {
        pass1,
        encoded,
        mut written,
        settled_by,
        guess_ms,
        speculation_wait_ms,
        pass2_ms,
    } = settled;
    if let Written::Partitioned(files) = &mut written {
        scratch.partitions = files.take_dir(); // removed after the register, or a failure
    }
    // A key column the upload lacks is the request's fault, found before anything is kept.
    super::keyed::check_key_columns(request, &pass1.schema)?;
    let plan_was_new = plan.current.is_none();
    let row_count = encoded.output.row_count;
    let fingerprint = pass1.schema.fingerprint();
    // The records set aside go next to the data, content-addressed, before the register
    // that names them (a failure leaves them an orphan for GC, like the Parquet).
    let rejects = match set_aside {
        Some(pending) => {
            Some(store_rejects(state, &request.name, &plan.destination, pending).await?)
        }
        None => None,
    };
    let put_started = Instant::now();
    let (objects, partition_spec) = store_objects(
        state,
        request,
        &plan,
        &pass1.schema,
        written,
        &csv.sha256,
        rejects.clone(),
    )
    .await?;
    let put_ms = put_started.elapsed().as_millis();

    let register_started = Instant::now();
    let (csv_bytes, receive_ms, hash_ms) = (csv.size, csv.receive_ms, csv.hash_ms);
    let mut register = register_request(
        request,
        plan.options.clone(),
        csv,
        &pass1,
        &encoded,
        fingerprint,
        objects.clone(),
    );
    register.partition_spec = partition_spec;
    let (registered, objects, merge) =
        register_version(state, request, &plan, register, objects).await?;
    let stages = Stages {
        csv_bytes,
        settled_by,
        lookup_ms: plan.lookup_ms,
        receive_ms,
        hash_ms,
        guess_ms,
        infer_ms: pass1.busy.as_millis(),
        speculation_wait_ms,
        pass2_ms,
        put_ms,
        register_ms: register_started.elapsed().as_millis(),
    };
    report(request, &encoded, &registered, &stages);
    let first = objects.first();
    Ok(IngestResponse {
        manifest: registered.manifest,
        existing: registered.existing,
        row_count,
        parquet_key: first.map(|o| o.key.clone()).unwrap_or(
            // Never empty: a pass writes at least one file.
            ObjectKey::parquet_dir(&request.name, &pass1.schema.fingerprint()),
        ),
        parquet_size: first.map_or(0, |o| o.size),
        objects,
        schema: pass1.schema,
        warnings: {
            let mut warnings = pass1.warnings;
            if plan_was_new && row_count == 0 {
                warnings.push(crate::teach::NO_DATA_ROWS.to_owned());
            }
            warnings
        },
        columns: encoded.output.columns,
        rejects,
        dry_run: request.dry_run,
        merge,
    })
}

/// Stores the upload's Parquet: ends the streamed POST of a single object (and checks what
/// storaged stored), or stores a partitioned upload's files. Returns the objects and, for a
/// partitioned dataset, its spec.
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoredObject`].
async fn store_objects(
    state: &AppState,
    request: &IngestRequest,
    plan: &Plan,
    schema: &lakehouse_api::Schema,
    written: Written,
    csv_sha256: &Sha256Digest,
    rejects: Option<lakehouse_api::RejectsRef>,
) -> Result<(Vec<ObjectRef>, Option<lakehouse_api::PartitionSpec>), IngestError> {
    match written {
        // The Parquet went to storaged while it was encoded: end the bodies, take the
        // answers. The rejects object goes with the first file.
        Written::Streamed(uploads) => {
            let fingerprint = schema.fingerprint();
            let mut rejects = rejects;
            let mut objects = Vec::new();
            for file in uploads.commit().await? {
                let (key, sha256) = checked_parquet(&request.name, &fingerprint, &file)?;
                objects.push(ObjectRef {
                    key,
                    size: file.size,
                    sha256,
                    row_count: file.rows,
                    rejects: rejects.take(),
                    partition: None,
                });
            }
            Ok((objects, None))
        }
        Written::Partitioned(files) => {
            let objects = store_partitioned(
                &plan.destination,
                &request.name,
                schema,
                &files,
                csv_sha256,
                rejects,
                state.inner.storaged_idle(),
            )
            .await?;
            Ok((objects, Some(files.spec.clone())))
        }
    }
}

/// Registers the version with catalogd: the upload's `objects` as they are, or, for a merge
/// or delete, the version [`commit_keyed`] plans (docs/contract.md section 11). Returns
/// catalogd's answer, the objects the version added and a keyed upload's counts.
///
/// # Errors
/// [`IngestError::Upstream`], and those of [`commit_keyed`].
async fn register_version(
    state: &AppState,
    request: &IngestRequest,
    plan: &Plan,
    register: VersionRegisterRequest,
    objects: Vec<ObjectRef>,
) -> Result<(VersionRegisterResponse, Vec<ObjectRef>, Option<MergeCounts>), IngestError> {
    if let Some(dir) = &plan.keyed_dir {
        let inputs = KeyedInputs {
            csv: &dir.path().join(super::keyed::CSV_LINK),
            limits: (plan.limits, plan.max_csv_bytes),
            parquet_dir: dir.path(),
        };
        let keyed = commit_keyed(state, request, register, inputs).await?;
        return Ok((keyed.registered, keyed.objects, Some(keyed.counts)));
    }
    let registered = state
        .inner
        .catalogd
        .register(&request.name, &register)
        .await
        .map_err(|source| IngestError::Upstream {
            service: "catalogd",
            source,
        })?;
    Ok((registered, objects, None))
}

/// Checks what storaged stored of one Parquet file (streamed, or a partition file sent from
/// the spool): it named the object by the
/// SHA-256 of the bytes it received (ingestd does not hash them a second time:
/// docs/performance.md); they must be all the bytes the encoder wrote into that file, under
/// the dataset's and schema's directory. Returns the object's key and SHA-256.
///
/// # Errors
/// [`IngestError::StoredObject`].
pub(super) fn checked_parquet(
    name: &DatasetName,
    fingerprint: &SchemaFingerprint,
    file: &StoredFile,
) -> Result<(ObjectKey, Sha256Digest), IngestError> {
    let stored = &file.stored;
    let key = ObjectKey::parquet_object(name, fingerprint, &stored.sha256);
    if stored.key != key || stored.size != file.size {
        return Err(IngestError::StoredObject {
            expected_key: key.to_string(),
            stored_key: stored.key.to_string(),
            sent_bytes: file.size,
            stored_bytes: stored.size,
        });
    }
    Ok((key, stored.sha256.clone()))
}

/// The register call of the version holding `object`: what was read (`csv`), how
/// (`options`, the plan's, with what pass 1 settled), the schema (its `fingerprint`) and
/// pass 2's columns.
fn register_request(
    request: &IngestRequest,
    options: CsvOptions,
    csv: CsvFacts,
    pass1: &Pass1Output,
    encoded: &Encoded,
    fingerprint: SchemaFingerprint,
    objects: Vec<ObjectRef>,
) -> VersionRegisterRequest {
    VersionRegisterRequest {
        replaces: Vec::new(),
        schema_fingerprint: fingerprint,
        schema: pass1.schema.clone(),
        objects,
        mode: request.mode,
        source: Source {
            filename: request.filename.clone(),
            csv_sha256: Some(csv.sha256),
            csv_bytes: Some(csv.size),
            compression: pass1.detected.compression,
            file: request.source_file.clone(),
        },
        // The encoding the text was read in: the option, or the UTF-16 of a byte order mark.
        options: CsvOptions {
            delimiter: pass1.delimiter,
            date_orders: pass1.date_orders.clone(),
            encoding: pass1.detected.encoding,
            ..options
        },
        inference_version: INFERENCE_VERSION,
        columns: encoded.output.columns.clone(),
        schema_evolution: request.schema_evolution,
        dry_run: request.dry_run,
        partition_spec: None,
        key: None,
        base_version: None,
    }
}

/// How a committed ingest went, stage by stage (timings in milliseconds).
struct Stages {
    csv_bytes: u64,
    settled_by: super::SettledBy,
    lookup_ms: u128,
    receive_ms: u128,
    hash_ms: u128,
    guess_ms: u128,
    infer_ms: u128,
    speculation_wait_ms: u128,
    pass2_ms: u128,
    put_ms: u128,
    register_ms: u128,
}

/// Counts a committed ingest in the metrics and logs it, with every stage's timing.
fn report(
    request: &IngestRequest,
    encoded: &Encoded,
    registered: &VersionRegisterResponse,
    stages: &Stages,
) {
    let parquet_size = encoded.output.size_bytes;
    let row_count = encoded.output.row_count;
    // A dry run ingested nothing: no bytes or rows counted, no stage timings.
    if !request.dry_run {
        crate::metrics::schema_settled(stages.settled_by.as_str());
        crate::metrics::ingest_succeeded(
            stages.csv_bytes,
            parquet_size,
            row_count,
            [
                stages.lookup_ms,
                stages.receive_ms,
                stages.hash_ms,
                stages.guess_ms,
                stages.infer_ms,
                encoded.stats.parse.as_millis(),
                encoded.stats.encode.as_millis(),
                stages.speculation_wait_ms,
                stages.pass2_ms,
                stages.put_ms,
                stages.register_ms,
            ],
        );
    }
    tracing::info!(
        dataset = %request.name,
        version = registered.manifest.version,
        existing = registered.existing,
        csv_bytes = stages.csv_bytes,
        rows = row_count,
        parquet_bytes = parquet_size,
        lookup_ms = stages.lookup_ms,
        receive_ms = stages.receive_ms,
        csv_hash_ms = stages.hash_ms,
        guess_ms = stages.guess_ms,
        infer_ms = stages.infer_ms,
        parse_ms = encoded.stats.parse.as_millis(),
        encode_ms = encoded.stats.encode.as_millis(),
        settled_by = %stages.settled_by.as_str(),
        speculation_wait_ms = stages.speculation_wait_ms,
        pass2_ms = stages.pass2_ms,
        put_ms = stages.put_ms,
        register_ms = stages.register_ms,
        dry_run = request.dry_run,
        "ingest complete"
    );
}
