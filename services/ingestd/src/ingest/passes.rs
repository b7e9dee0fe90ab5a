//! Settling pass 2 ([`settle`]): the speculative output when it proved its schema, else
//! the second guess of a new dataset verified over the spool file (docs/contract.md
//! section 13), else pass 1 (inference, or the check against the registered schema and
//! schema evolution, docs/contract.md section 3) and pass 2 over the spool file.

use super::speculative::{Refuted, Speculated, Speculative};
use super::{DateOrders, Encoded, Pass1Output, Plan, Settled, SettledBy, Written, parquet_dir};
use crate::spool::Spooled;
use crate::upload::{ChunkSender, Uploads};
use crate::{AppState, IngestError};
use lakehouse_api::{CsvOptions, DatasetName, Schema, SchemaDriftDetails, SchemaEvolution};
use lakehouse_client::trace::bind;
use lakehouse_convert::{ConvertError, ReadConfig, ReadLimits};
use std::time::{Duration, Instant};

/// Settles pass 2: takes the verified pass's output when it proved its schema over every
/// byte spooled (the upload was read once, while it arrived, and the Parquet streamed to
/// storaged meanwhile), else withdraws it and verifies its second guess over the spool file
/// ([`second_guess`]), else runs pass 1 and pass 2 over it.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV and drift, [`IngestError::Upstream`] when storaged
/// fails under either pass, [`IngestError::Spool`]/[`IngestError::Task`].
pub(super) async fn settle(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
    speculative: Speculative,
    upload: Spooled,
) -> Result<Settled, IngestError> {
    // The verified pass 2 read the upload as it arrived; only its tail is left to wait for.
    let pass2_started = Instant::now();
    let (speculated, written) = speculative.handle.await.map_err(IngestError::Task)?;
    let speculation_wait_ms = pass2_started.elapsed().as_millis();
    let settled = |pass1, encoded, written, settled_by, guess_ms| Settled {
        pass1,
        encoded,
        written,
        settled_by,
        guess_ms,
        speculation_wait_ms,
        pass2_ms: pass2_started.elapsed().as_millis(),
    };
    match (speculated, written) {
        // Proven, and over every byte spooled: exactly what pass 1 then pass 2 would give.
        (Ok(Speculated::Proven(hit)), Some(written)) if hit.bytes_read == upload.size_bytes => {
            let mut warnings = hit.warnings;
            if plan.current.is_none() {
                let options = CsvOptions {
                    delimiter: hit.delimiter,
                    ..plan.options.clone()
                };
                let limits = (plan.limits, plan.max_csv_bytes);
                let schema = hit.schema.clone();
                warnings.extend(crate::teach::of_spooled(upload, options, limits, schema).await?);
            } else {
                // The CSV spool file is not needed any more: its name goes now, before the
                // kernel writes its pages out; its blocks once the ingest ends (`Scratch`).
                drop(upload);
            }
            let pass1 = Pass1Output {
                schema: hit.schema,
                warnings,
                detected: hit.detected,
                delimiter: hit.delimiter,
                date_orders: hit.date_orders,
                busy: Duration::ZERO,
            };
            let by = SettledBy::Speculation;
            Ok(settled(pass1, hit.encoded, written, by, hit.guess_ms))
        }
        (speculated, written) => {
            let storaged_failed = match written {
                Some(Written::Streamed(uploads)) => uploads.abort().await,
                // Partition files in the spool go with their directory.
                Some(Written::Partitioned(_)) | None => None,
            };
            // A CSV error stops pass 1 at the same record with the same error.
            let refuted = match speculated {
                Err(csv) => return Err(IngestError::Convert(csv)),
                Ok(Speculated::Unproven(refuted)) => refuted,
                Ok(Speculated::Proven(_)) => None,
            };
            // A second guess that covers every byte spooled, storaged fine so far.
            let refuted = refuted.filter(|refuted| {
                refuted.bytes_read == upload.size_bytes
                    && storaged_failed.is_none()
                    && plan.partition.is_none()
            });
            let mut upload = upload;
            if let Some(refuted) = refuted {
                let (proven, spool) = second_guess(state, name, plan, upload, *refuted).await?;
                if let Some((pass1, encoded, written)) = proven {
                    let by = SettledBy::SecondGuess;
                    return Ok(settled(pass1, encoded, written, by, 0));
                }
                upload = spool;
            }
            let (pass1, encoded, written) =
                both_passes(state, name, plan, upload, storaged_failed).await?;
            Ok(settled(pass1, encoded, written, SettledBy::Passes, 0))
        }
    }
}

/// After a new dataset's guess was refuted: one verified pass over the spool file with the
/// second guess the refuting pass read (docs/contract.md section 13, "A guess refuted
/// late"), the Parquet streamed to storaged. Proven: pass 1 and pass 2's result, the upload
/// read once more instead of twice. Not proven (rare: see
/// `lakehouse_convert::SecondGuess`): its upload withdrawn, `None`, and the spool file back
/// for pass 1 and pass 2.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV (pass 1's own error: the pass reads every record
/// in order), [`IngestError::Upstream`] when storaged fails, [`IngestError::Spool`],
/// [`IngestError::Task`].
async fn second_guess(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
    upload: Spooled,
    refuted: Refuted,
) -> Result<(Option<(Pass1Output, Encoded, Written)>, Spooled), IngestError> {
    let Refuted {
        second_guess: guess,
        delimiter,
        ..
    } = refuted;
    let mut uploads = Uploads::new(
        &plan.destination,
        parquet_dir(name, &guess.schema),
        &tokio::runtime::Handle::current(),
        state.inner.storaged_idle(),
    );
    let options = CsvOptions {
        delimiter,
        date_orders: guess.date_orders.clone(),
        ..plan.options.clone()
    };
    let (limits, max_csv_bytes, sniff) = (plan.limits, plan.max_csv_bytes, plan.sniff);
    let threads = state.config().parse_threads();
    let target_bytes = state.config().target_file_bytes.max(1);
    let schema = guess.schema.clone();
    let (outcome, uploads, upload) = tokio::task::spawn_blocking(bind(move || {
        let read = ReadConfig::new(&options, limits).sniffed(sniff);
        let outcome = verify_spooled(&upload, read.threads(threads), max_csv_bytes, &schema, {
            lakehouse_convert::ParquetFiles::Split {
                sink: &mut uploads,
                target_bytes,
            }
        })
        .and_then(|outcome| match outcome {
            Some((verified, detected)) => {
                let taught =
                    crate::teach::teaching_warnings(&upload, read, max_csv_bytes, &schema)?;
                Ok(Some((verified, detected, taught)))
            }
            None => Ok(None),
        });
        (outcome, uploads, upload)
    }))
    .await
    .map_err(IngestError::Task)?;
    let (verified, detected, taught) = match outcome {
        Ok(Some(proven)) => proven,
        Ok(None) => {
            if let Some(error) = uploads.abort().await {
                return Err(error);
            }
            return Ok((None, upload));
        }
        // storaged's own failure, if that is what stopped the pass, says more.
        Err(e) => return Err(uploads.abort().await.unwrap_or(e)),
    };
    let mut warnings = verified.warnings;
    warnings.extend(taught);
    let pass1 = Pass1Output {
        schema: guess.schema,
        warnings,
        detected,
        delimiter,
        date_orders: guess.date_orders,
        // No pass 1 ran: the whole pass is pass 2's time (`pass2_ms`).
        busy: Duration::ZERO,
    };
    let encoded = Encoded {
        output: verified.output,
        stats: verified.stats,
    };
    Ok((
        Some((pass1, encoded, Written::Streamed(Box::new(uploads)))),
        upload,
    ))
}

/// A verified pass 2 over the spool file with `schema` as the inference's guess
/// (`lakehouse_convert::write_parquet_verified`), the Parquet going to `out`: the verified
/// output and how the upload was read when proven. Blocking.
fn verify_spooled(
    upload: &Spooled,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    schema: &Schema,
    out: lakehouse_convert::ParquetFiles<'_, ChunkSender>,
) -> Result<Option<(lakehouse_convert::Verified, lakehouse_convert::Detected)>, IngestError> {
    let (path, direct) = (upload.file.path(), upload.direct);
    let csv = crate::spool::open_read(path, direct, options.csv.encoding, max_csv_bytes)?;
    let detected = csv.detected();
    let expected = lakehouse_convert::Expected::Inferred(schema);
    let verified = lakehouse_convert::write_parquet_verified(csv, options, expected, out)?;
    Ok(verified.map(|verified| (verified, detected)))
}

/// The fallback of [`settle`]: pass 1 then pass 2 over the spool file, the Parquet streamed
/// to storaged. `storaged_failed`: storaged's failure under the speculative pass, returned
/// after pass 1 (bad CSV and drift are the client's to fix, whatever storaged does; the
/// fallback would fail alike).
async fn both_passes(
    state: &AppState,
    name: &DatasetName,
    plan: &Plan,
    upload: Spooled,
    storaged_failed: Option<IngestError>,
) -> Result<(Pass1Output, Encoded, Written), IngestError> {
    let inner = &state.inner;
    let limits = plan.limits;
    let path = upload.file.path().to_owned();
    let direct = upload.direct;
    let mut task_options = plan.options.clone();
    let registered = plan.current.as_ref().map(|m| m.schema.clone());
    let max_csv_bytes = plan.max_csv_bytes;
    let sniff = plan.sniff;
    let evolution = plan.evolution;
    let threads = inner.config.parse_threads();
    let infer_threads = inner.config.infer_threads();
    let pass1 = tokio::task::spawn_blocking(bind(move || {
        if sniff {
            task_options.delimiter = sniff_spooled(&path, &task_options, limits, max_csv_bytes)?;
        }
        run_pass1(
            (&path, direct),
            ReadConfig::new(&task_options, limits)
                .sniffed(sniff)
                .threads(infer_threads),
            max_csv_bytes,
            registered,
            evolution,
        )
    }))
    .await
    .map_err(IngestError::Task)??;
    if let Some(error) = storaged_failed {
        return Err(error);
    }
    if let Some(by) = &plan.partition {
        return partitioned_pass2(state, plan, by, upload, pass1).await;
    }
    let mut uploads = Uploads::new(
        &plan.destination,
        parquet_dir(name, &pass1.schema),
        &tokio::runtime::Handle::current(),
        inner.storaged_idle(),
    );
    let target_bytes = state.config().target_file_bytes.max(1);
    let task_options = CsvOptions {
        delimiter: pass1.delimiter,
        date_orders: pass1.date_orders.clone(),
        ..plan.options.clone()
    };
    let schema = pass1.schema.clone();
    let new_dataset = plan.current.is_none();
    let (encoded, uploads) = tokio::task::spawn_blocking(bind(move || {
        let read = ReadConfig::new(&task_options, limits).sniffed(sniff);
        let files = lakehouse_convert::ParquetFiles::Split {
            sink: &mut uploads,
            target_bytes,
        };
        let encoded = encode(
            &upload,
            read.threads(threads),
            max_csv_bytes,
            &schema,
            files,
        )
        .and_then(|encoded| {
            let taught = if new_dataset {
                crate::teach::teaching_warnings(&upload, read, max_csv_bytes, &schema)?
            } else {
                Vec::new()
            };
            Ok::<_, IngestError>((encoded, taught))
        });
        (encoded, uploads)
    }))
    .await
    .map_err(IngestError::Task)?;
    let mut pass1 = pass1;
    match encoded {
        Ok((encoded, taught)) => {
            pass1.warnings.extend(taught);
            Ok((pass1, encoded, Written::Streamed(Box::new(uploads))))
        }
        // storaged's own failure, if that is what stopped pass 2, says more.
        Err(e) => Err(uploads.abort().await.unwrap_or(e)),
    }
}

/// Pass 2 of a partitioned dataset over the spool file, after pass 1
/// ([`super::partitioned::encode_partitioned`]), with the teaching warnings of a new
/// dataset.
///
/// # Errors
/// [`IngestError::InvalidOption`] when `partition_by` does not fit the schema pass 1
/// settled (a new dataset: nothing is stored), and those of
/// [`super::partitioned::encode_partitioned`].
async fn partitioned_pass2(
    state: &AppState,
    plan: &Plan,
    by: &lakehouse_iceberg::PartitionBy,
    upload: Spooled,
    mut pass1: Pass1Output,
) -> Result<(Pass1Output, Encoded, Written), IngestError> {
    let task_options = CsvOptions {
        delimiter: pass1.delimiter,
        date_orders: pass1.date_orders.clone(),
        ..plan.options.clone()
    };
    let (limits, max_csv_bytes, sniff) = (plan.limits, plan.max_csv_bytes, plan.sniff);
    let schema = pass1.schema.clone();
    let new_dataset = plan.current.is_none();
    let config = state.config().clone();
    let by = by.clone();
    let (encoded, files, taught) = tokio::task::spawn_blocking(bind(move || {
        let read = ReadConfig::new(&task_options, limits).sniffed(sniff);
        let (encoded, files) = super::partitioned::encode_partitioned(
            &upload,
            read,
            max_csv_bytes,
            &schema,
            &by,
            &config,
        )?;
        let taught = if new_dataset {
            crate::teach::teaching_warnings(&upload, read, max_csv_bytes, &schema)?
        } else {
            Vec::new()
        };
        Ok::<_, IngestError>((encoded, files, taught))
    }))
    .await
    .map_err(IngestError::Task)??;
    pass1.warnings.extend(taught);
    Ok((pass1, encoded, Written::Partitioned(files)))
}

/// Pass 1 over the spool file (when the verified pass did not prove its schema). Blocking.
/// `spool`: its path, and whether it was written past the page cache
/// ([`crate::spool::open_read`]).
///
/// A new dataset's schema is inferred; an existing one's is checked
/// (`lakehouse_convert::check_schema`). When that check finds only new columns,
/// [`evolve`] decides between a new schema version (`schema_evolution=add_columns`) and a 409.
///
/// # Errors
/// [`IngestError::Convert`] for bad CSV, [`IngestError::SchemaDrift`] for drift,
/// [`IngestError::Spool`].
fn run_pass1(
    spool: (&std::path::Path, bool),
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    registered: Option<Schema>,
    evolution: Option<SchemaEvolution>,
) -> Result<Pass1Output, IngestError> {
    let started = Instant::now();
    let file = crate::spool::open_read(spool.0, spool.1, options.csv.encoding, max_csv_bytes)?;
    let detected = file.detected();
    let mut date_orders = options.csv.date_orders.clone();
    let (schema, warnings) = match registered {
        None => {
            let inferred = lakehouse_convert::infer_schema(file, options)?;
            date_orders = inferred.date_orders;
            (inferred.schema, inferred.warnings)
        }
        Some(schema) => match lakehouse_convert::check_schema(file, options, &schema) {
            Ok(checked) => (schema, checked.warnings),
            Err(ConvertError::SchemaDrift(details)) => {
                let (schema, warnings, added_orders) =
                    evolve(spool, options, max_csv_bytes, schema, details, evolution)?;
                date_orders.extend(added_orders);
                (schema, warnings)
            }
            Err(other) => return Err(other.into()),
        },
    };
    Ok(Pass1Output {
        schema,
        warnings,
        detected,
        delimiter: options.csv.delimiter,
        date_orders,
        busy: started.elapsed(),
    })
}

/// Sniffs the delimiter of the spooled upload (docs/contract.md section 3), reading its first
/// records once per candidate. Blocking.
pub(super) fn sniff_spooled(
    path: &std::path::Path,
    options: &CsvOptions,
    limits: ReadLimits,
    max_csv_bytes: u64,
) -> Result<u8, IngestError> {
    let open = || {
        let file = std::fs::File::open(path).map_err(ConvertError::Io)?;
        lakehouse_convert::decode(file, options.encoding, max_csv_bytes)
    };
    Ok(lakehouse_convert::sniff_delimiter(
        open,
        limits.max_record_bytes,
    )?)
}

/// Schema evolution (docs/contract.md section 3): an upload to an existing dataset that
/// `check_schema` found drifting with `details`. When the drift is only new columns
/// (nothing removed, no registered column refusing a value) the upload is inferred too
/// (section 3 rules, the whole file), and when its header is the registered names in order
/// followed by the new ones, the evolved schema is the registered one plus the new columns
/// with their inferred types. Blocking. `spool` as for [`run_pass1`].
///
/// # Errors
/// [`IngestError::SchemaDrift`] unless `evolution` is `add_columns` and the upload only adds
/// columns at the end (`evolvable` set when it does but the option was not given);
/// [`IngestError::Convert`], [`IngestError::Spool`] from the second read.
fn evolve(
    spool: (&std::path::Path, bool),
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    registered: Schema,
    details: Box<SchemaDriftDetails>,
    evolution: Option<SchemaEvolution>,
) -> Result<(Schema, Vec<String>, DateOrders), IngestError> {
    let only_added = details.removed.is_empty()
        && details.changed.is_empty()
        && details.reordered.is_empty()
        && !details.added.is_empty();
    if !only_added {
        return Err(IngestError::SchemaDrift {
            details,
            evolvable: false,
        });
    }
    let file = crate::spool::open_read(spool.0, spool.1, options.csv.encoding, max_csv_bytes)?;
    let inferred = lakehouse_convert::infer_schema(file, options)?;
    let header_extends = inferred.schema.fields.len() > registered.fields.len()
        && inferred
            .schema
            .names()
            .zip(registered.names())
            .all(|(upload, known)| upload == known);
    let mut evolved = registered.clone();
    evolved.fields.extend(
        inferred
            .schema
            .fields
            .iter()
            .skip(registered.fields.len())
            .cloned(),
    );
    let evolvable = header_extends && evolved.adds_columns_to(&registered);
    match evolution {
        Some(SchemaEvolution::AddColumns) if evolvable => {
            // The new columns' day/month orders, settled by this upload.
            let added: DateOrders = inferred
                .date_orders
                .into_iter()
                .filter(|(name, _)| !registered.names().any(|known| known == name))
                .collect();
            Ok((evolved, inferred.warnings, added))
        }
        given => Err(IngestError::SchemaDrift {
            details,
            evolvable: evolvable && given.is_none(),
        }),
    }
}

/// Pass 2 over the spool file, parsing and encoding on two threads, the Parquet going to
/// `out` (an upload to storaged). Blocking: runs on the blocking pool.
fn encode(
    upload: &Spooled,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    schema: &Schema,
    out: lakehouse_convert::ParquetFiles<'_, ChunkSender>,
) -> Result<Encoded, IngestError> {
    let (path, direct) = (upload.file.path(), upload.direct);
    let csv = crate::spool::open_read(path, direct, options.csv.encoding, max_csv_bytes)?;
    let (output, stats) = lakehouse_convert::write_parquet_pipelined(csv, options, schema, out)?;
    Ok(Encoded { output, stats })
}
