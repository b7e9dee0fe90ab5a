//! Pass 2 of a partitioned dataset and the storing of its files (docs/contract.md section
//! 10, "Partitioned datasets"): the spooled CSV is written as one Parquet file per
//! partition value (several past `target_file_bytes`) into a spool directory of its own
//! ([`encode_partitioned`]), then each file goes to storaged, content-addressed, as the
//! upload's objects, in partition order ([`store_partitioned`]).

use super::Encoded;
use super::commit::checked_parquet;
use crate::partition::{RowPartitioner, SpoolSink, SpooledFile};
use crate::spool::Spooled;
use crate::upload::{self, Destination, StoredFile};
use crate::{Config, IngestError};
use lakehouse_api::{
    DatasetName, ObjectKey, ObjectRef, PartitionSpec, PartitionTuple, RejectsRef, Schema,
    SchemaFingerprint, Sha256Digest,
};
use lakehouse_convert::{Expected, PartitionedConfig, ReadConfig, Verified};
use std::io::Read;
use std::time::Duration;

/// Partition files stored at once, at most.
const FILES_IN_FLIGHT: usize = 8;

/// A partitioned pass 2's files, waiting in their spool directory (removed with it: when
/// this is dropped, unless the ingest took the directory over first, [`Self::take_dir`]).
pub(super) struct PartitionedFiles {
    /// The spec they were written with.
    pub(super) spec: PartitionSpec,
    /// Each file with its partition tuple, in partition order (then file number).
    files: Vec<(SpooledFile, PartitionTuple)>,
    dir: Option<tempfile::TempDir>,
}

impl PartitionedFiles {
    /// The spool directory that holds the files, for the caller to remove when it is done
    /// with them (`None` once taken).
    pub(super) fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self.dir.take()
    }
}

/// A partitioned pass 2 about to run: the spec bound to the schema, the partitioner, and the
/// spool directory its files go to.
pub(super) struct PartitionedPass {
    spec: PartitionSpec,
    partitioner: RowPartitioner,
    sink: SpoolSink,
    dir: tempfile::TempDir,
    limits: PartitionedConfig,
}

impl PartitionedPass {
    /// Binds `by` to `schema` and makes a spool directory for the files.
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`] when `by` does not fit `schema` (an unknown column, a
    /// type the transform does not take), [`IngestError::Spool`].
    pub(super) fn new(
        by: &lakehouse_iceberg::PartitionBy,
        schema: &Schema,
        config: &Config,
    ) -> Result<Self, IngestError> {
        let invalid = |reason: String| IngestError::InvalidOption {
            option: "partition_by",
            reason,
        };
        let spec = by.spec(schema).map_err(|e| invalid(e.to_string()))?;
        let partitioner = RowPartitioner::new(&spec, schema, config.max_partitions_per_upload)
            .map_err(invalid)?;
        let dir = crate::spool::new_dir(&config.spool_dir)?;
        let sink = SpoolSink::new(dir.path());
        // The small partitions' rows spill next to the files.
        let spill_dir = Some(dir.path().to_owned());
        Ok(PartitionedPass {
            spec,
            partitioner,
            sink,
            dir,
            limits: PartitionedConfig {
                buffer_bytes: usize::try_from(config.partition_buffer_bytes).unwrap_or(usize::MAX),
                target_file_bytes: config.target_file_bytes.max(1),
                spill_dir,
            },
        })
    }

    /// Runs the pass over `csv` (decoded), proving `expected` as
    /// `lakehouse_convert::write_parquet_partitioned` does. Blocking. `Ok(None)`: not proven
    /// (the files go with the returned nothing).
    ///
    /// # Errors
    /// [`IngestError::Convert`] (bad CSV,
    /// [`lakehouse_convert::ConvertError::TooManyPartitions`] past
    /// `max_partitions_per_upload`).
    pub(super) fn run(
        mut self,
        csv: impl Read,
        read: ReadConfig<'_>,
        expected: Expected<'_>,
    ) -> Result<Option<(Verified, PartitionedFiles)>, IngestError> {
        let Some(verified) = lakehouse_convert::write_parquet_partitioned(
            csv,
            read,
            expected,
            &mut self.partitioner,
            &mut self.sink,
            self.limits,
        )?
        else {
            return Ok(None);
        };
        let tuples = self.partitioner.into_tuples();
        // Partition 0 of an upload with no row has no tuple: its empty file is the null one.
        let null_tuple: PartitionTuple = vec![None; self.spec.fields.len()];
        let mut files: Vec<(SpooledFile, PartitionTuple)> = self
            .sink
            .done
            .into_iter()
            .map(|file| {
                let tuple = tuples
                    .get(file.partition as usize)
                    .cloned()
                    .unwrap_or_else(|| null_tuple.clone());
                (file, tuple)
            })
            .collect();
        // Partition order (docs/contract.md section 10), then file number.
        files.sort_by(|(a, ta), (b, tb)| {
            lakehouse_api::compare_tuples(ta, tb).then(a.file.cmp(&b.file))
        });
        Ok(Some((
            verified,
            PartitionedFiles {
                spec: self.spec,
                files,
                dir: Some(self.dir),
            },
        )))
    }
}

/// Pass 2 over the spool file for a partitioned dataset, after pass 1 settled `schema`
/// (docs/contract.md section 10). Blocking.
///
/// # Errors
/// As [`PartitionedPass::new`] and [`PartitionedPass::run`], [`IngestError::Spool`].
pub(super) fn encode_partitioned(
    upload: &Spooled,
    read: ReadConfig<'_>,
    max_csv_bytes: u64,
    schema: &Schema,
    by: &lakehouse_iceberg::PartitionBy,
    config: &Config,
) -> Result<(Encoded, PartitionedFiles), IngestError> {
    let pass = PartitionedPass::new(by, schema, config)?;
    let (path, direct) = (upload.file.path(), upload.direct);
    let csv = crate::spool::open_read(path, direct, read.csv.encoding, max_csv_bytes)?;
    let (verified, files) = pass
        .run(csv, read, Expected::Registered(schema))?
        .ok_or_else(|| {
            // A schema pass 1 settled over the same bytes always holds.
            IngestError::Convert(lakehouse_convert::ConvertError::Parquet(
                "the schema pass 1 settled did not hold in pass 2".into(),
            ))
        })?;
    Ok((
        Encoded {
            output: verified.output,
            stats: verified.stats,
        },
        files,
    ))
}

/// Stores every file of `files` in storaged (or, for a dry run, only hashes it), at most
/// [`FILES_IN_FLIGHT`] at once, each content-addressed under the schema's directory once its
/// footer names the upload whose SHA-256 is `upload` ([`SpooledFile::send_stamped`]: so two
/// uploads never share an object, and the same upload again makes the same ones), and
/// checks what storaged stored ([`checked_parquet`]). Returns the objects in partition
/// order; the first carries `rejects` (docs/contract.md section 10).
///
/// # Errors
/// [`IngestError::Upstream`], [`IngestError::StoragedStalled`],
/// [`IngestError::StoredObject`], [`IngestError::Spool`].
pub(super) async fn store_partitioned(
    destination: &Destination,
    name: &DatasetName,
    schema: &Schema,
    files: &PartitionedFiles,
    upload: &Sha256Digest,
    rejects: Option<RejectsRef>,
    idle: Duration,
) -> Result<Vec<ObjectRef>, IngestError> {
    use futures::StreamExt;
    let fingerprint = schema.fingerprint();
    let dir = ObjectKey::parquet_dir(name, &fingerprint);
    let puts: Vec<_> = files
        .files
        .iter()
        .map(|(file, tuple)| {
            Stored {
                destination: destination.clone(),
                name: name.clone(),
                fingerprint: fingerprint.clone(),
                dir: dir.clone(),
                file: file.clone(),
                tuple: tuple.clone(),
                upload: upload.clone(),
                idle,
            }
            .store()
        })
        .collect();
    let stored: Vec<_> = futures::stream::iter(puts)
        .buffered(FILES_IN_FLIGHT)
        .collect()
        .await;
    let mut objects = stored.into_iter().collect::<Result<Vec<_>, _>>()?;
    if let Some(first) = objects.first_mut() {
        first.rejects = rejects;
    }
    Ok(objects)
}

/// One partition file to store, and where.
struct Stored {
    destination: Destination,
    name: DatasetName,
    fingerprint: SchemaFingerprint,
    dir: ObjectKey,
    file: SpooledFile,
    tuple: PartitionTuple,
    upload: Sha256Digest,
    idle: Duration,
}

impl Stored {
    /// Stamps the file, sends it, and checks storaged's answer: the size sent, and a key
    /// that is the content address of the SHA-256 storaged answers ([`checked_parquet`]).
    async fn store(self) -> Result<ObjectRef, IngestError> {
        let (mut sender, put) = upload::start(
            &self.destination,
            self.dir,
            upload::PARQUET_SUFFIX,
            &tokio::runtime::Handle::current(),
            self.idle,
        );
        let (file, upload) = (self.file.clone(), self.upload);
        let copied = tokio::task::spawn_blocking(move || file.send_stamped(&upload, &mut sender))
            .await
            .map_err(IngestError::Task)?;
        if let Err(error) = copied {
            return Err(put.abort().await.unwrap_or(IngestError::Spool(error)));
        }
        let (stored, _created) = put.commit().await?;
        let stored = StoredFile {
            stored,
            size: self.file.size,
            rows: self.file.rows,
        };
        let (key, sha256) = checked_parquet(&self.name, &self.fingerprint, &stored)?;
        Ok(ObjectRef {
            key,
            size: stored.size,
            sha256,
            row_count: stored.rows,
            rejects: None,
            partition: Some(self.tuple),
        })
    }
}
