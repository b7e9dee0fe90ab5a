//! What is known before the body is read: the request's options (its own, else the
//! dataset's recorded ones, docs/contract.md section 3), the dataset's current manifest, the
//! caps on the upload's shape, and where the Parquet goes (nowhere for a dry run,
//! docs/contract.md section 6).

use crate::upload::Destination;
use crate::{AppState, IngestError};
use lakehouse_api::{
    CsvOptions, DatasetName, DateOrder, DecimalSeparator, IngestMode, Manifest, SchemaEvolution,
    TextEncoding,
};
use lakehouse_convert::ReadLimits;
use std::time::Instant;

/// What the client asked for, validated (query parameters of `POST /ingest`).
#[derive(Debug, Clone)]
pub struct IngestRequest {
    /// Dataset name.
    pub name: DatasetName,
    /// `replace`, `append`, `merge` or `delete` (docs/contract.md sections 6 and 11).
    pub mode: IngestMode,
    /// `delimiter`, when given.
    pub delimiter: Option<u8>,
    /// `null_values`, when given.
    pub null_values: Option<Vec<String>>,
    /// `encoding`, when given (docs/contract.md section 3).
    pub encoding: Option<TextEncoding>,
    /// `decimal_separator`, when given (docs/contract.md section 14).
    pub decimal_separator: Option<DecimalSeparator>,
    /// `date_order`, when given (docs/contract.md section 14).
    pub date_order: Option<DateOrder>,
    /// `schema_evolution`, when given (docs/contract.md section 3, "Schema evolution").
    pub schema_evolution: Option<SchemaEvolution>,
    /// `max_rejects` (default 0; docs/contract.md section 3, "Rejects").
    pub max_rejects: u64,
    /// `dry_run`: check and answer, write nothing (docs/contract.md section 6).
    pub dry_run: bool,
    /// `partition_by`, when given (docs/contract.md section 10).
    pub partition_by: Option<lakehouse_iceberg::PartitionBy>,
    /// `key` of `mode=merge` and `mode=delete` (docs/contract.md section 11).
    pub key: Option<Vec<String>>,
    /// Multipart `filename` of the `file` field, when sent.
    pub filename: Option<String>,
    /// The source file a load reads (docs/contract.md section 12), recorded in the version.
    pub source_file: Option<lakehouse_api::SourceFile>,
}

impl IngestRequest {
    /// The options to read with: the request's own, else the ones the dataset recorded
    /// (docs/contract.md section 3), else the defaults.
    pub(super) fn options(&self, current: Option<&Manifest>) -> CsvOptions {
        let recorded = current.map(|m| m.options.clone()).unwrap_or_default();
        CsvOptions {
            delimiter: self.delimiter.unwrap_or(recorded.delimiter),
            null_values: self.null_values.clone().unwrap_or(recorded.null_values),
            encoding: self.encoding.unwrap_or(recorded.encoding),
            // Settled by the dataset's first upload (docs/contract.md section 3), never a request's.
            date_orders: recorded.date_orders,
            decimal_separator: self.decimal_separator.unwrap_or(recorded.decimal_separator),
            date_order: self.date_order.or(recorded.date_order),
        }
    }
}

/// What is known before the body is read: the dataset's current manifest (a new dataset has
/// none), the CSV options to read the upload with and this service's caps on its shape.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) current: Option<Manifest>,
    pub(super) options: CsvOptions,
    pub(super) limits: ReadLimits,
    /// `max_csv_bytes`: the cap on the decompressed CSV.
    pub(super) max_csv_bytes: u64,
    /// A new dataset's first upload with no `delimiter`: it is sniffed (docs/contract.md section
    /// 3), and `options.delimiter` is only a placeholder until then.
    pub(super) sniff: bool,
    pub(super) lookup_ms: u128,
    /// Where the Parquet goes: storaged, or nowhere for a dry run.
    pub(super) destination: Destination,
    /// `schema_evolution` of the request.
    pub(super) evolution: Option<SchemaEvolution>,
    /// `max_rejects` of the request.
    pub(super) max_rejects: u64,
    /// A keyed ingest's spool directory (removed when the plan goes): a link to the spooled
    /// CSV (`upload.csv`), and a dry run's or a delete's Parquet, read back.
    pub(super) keyed_dir: Option<tempfile::TempDir>,
    /// The partitioning the upload is written with (docs/contract.md section 10): the
    /// dataset's recorded one, else the request's for a new dataset; `None` unpartitioned.
    pub(super) partition: Option<lakehouse_iceberg::PartitionBy>,
}

/// Reads the dataset's current manifest from catalogd, before the body is read, so that the
/// verified pass 2 knows, while the upload streams in, whether it proves an inference (new
/// dataset) or the check against the registered schema (existing one), and with which
/// options.
///
/// # Errors
/// [`IngestError::Upstream`] when catalogd fails.
pub(super) async fn plan(state: &AppState, request: &IngestRequest) -> Result<Plan, IngestError> {
    let started = Instant::now();
    let current = state.latest(&request.name).await?;
    let config = &state.inner.config;
    let limits = ReadLimits {
        max_columns: config.max_columns,
        max_field_bytes: config.max_field_bytes,
        max_record_bytes: config.max_record_bytes,
    };
    super::keyed::check_key(request, current.as_ref())?;
    let options = request.options(current.as_ref());
    let mut partition = partitioning(request, current.as_ref())?;
    let sniff = current.is_none() && request.delimiter.is_none();
    // A keyed ingest's Parquet goes to a spool directory (docs/contract.md section 11): it is
    // read back to plan the merge, and stored only once the plan holds (a delete's never:
    // only its keys matter). The directory also holds a link to the spooled CSV, to name
    // the lines of bad keys.
    let keyed_dir = if request.mode.is_keyed() {
        Some(crate::spool::new_dir(&config.spool_dir)?)
    } else {
        None
    };
    let destination = match &keyed_dir {
        Some(dir) => Destination::Spool(dir.path().to_owned()),
        None if request.dry_run => Destination::Nowhere,
        None => Destination::Storaged(state.inner.storaged.clone()),
    };
    let mut current = current;
    if request.mode == IngestMode::Delete
        && let Some(current) = &mut current
    {
        // A delete's upload is checked against the key columns of the dataset's schema.
        let key = request.key.clone().unwrap_or_default();
        current.schema = super::keyed::key_schema(&key, &current.schema)?;
        current.schema_fingerprint = current.schema.fingerprint();
        partition = None;
    }
    Ok(Plan {
        keyed_dir,
        current,
        options,
        limits,
        max_csv_bytes: config.max_csv_bytes,
        sniff,
        lookup_ms: started.elapsed().as_millis(),
        destination,
        evolution: request.schema_evolution,
        max_rejects: request.max_rejects,
        partition,
    })
}

/// The partitioning of an upload (docs/contract.md section 10): an existing dataset's
/// recorded `partition_by`, which a request may repeat but not change; a new dataset's
/// from the request. Checked before the body is read.
///
/// # Errors
/// [`IngestError::PartitionSpecMismatch`] for another `partition_by` than the recorded one
/// (an unpartitioned dataset included); [`IngestError::CorruptRecord`] when the recorded
/// one does not parse (catalogd checks a spec at register, so its record is at fault).
fn partitioning(
    request: &IngestRequest,
    current: Option<&Manifest>,
) -> Result<Option<lakehouse_iceberg::PartitionBy>, IngestError> {
    let Some(current) = current else {
        return Ok(request.partition_by.clone());
    };
    let recorded = current
        .partition_spec
        .as_ref()
        .map(|spec| spec.partition_by.clone());
    let requested = request.partition_by.as_ref().map(ToString::to_string);
    if requested.is_some() && requested != recorded {
        return Err(IngestError::PartitionSpecMismatch {
            name: request.name.clone(),
            recorded,
            requested,
        });
    }
    let Some(text) = recorded else {
        return Ok(None);
    };
    lakehouse_iceberg::PartitionBy::parse(&text)
        .map(Some)
        .map_err(|e| IngestError::CorruptRecord {
            service: "catalogd",
            reason: format!(
                "dataset {}'s recorded partition_by `{text}` does not parse: {e}",
                request.name
            ),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{
        ColumnType, ErrorCode, Field, PartitionSpec, PartitionSpecField, Schema, Source,
    };
    use lakehouse_server::ApiError;

    fn request(partition_by: Option<&str>) -> IngestRequest {
        IngestRequest {
            name: DatasetName::new("events").unwrap(),
            mode: IngestMode::Append,
            delimiter: None,
            null_values: None,
            encoding: None,
            decimal_separator: None,
            date_order: None,
            schema_evolution: None,
            max_rejects: 0,
            dry_run: false,
            key: None,
            partition_by: partition_by.map(|text| text.parse().unwrap()),
            filename: None,
            source_file: None,
        }
    }

    /// The latest version of a dataset whose record says it is partitioned by
    /// `partition_by`.
    fn recorded(partition_by: &str) -> Manifest {
        let schema = Schema {
            fields: vec![Field::new("id", ColumnType::Int64)],
        };
        Manifest {
            name: DatasetName::new("events").unwrap(),
            version: 1,
            schema_fingerprint: schema.fingerprint(),
            schema,
            objects: Vec::new(),
            row_count: 0,
            created_at: "2024-02-29T00:00:00.000000Z".into(),
            inference_version: 2,
            options: CsvOptions::default(),
            source: Source::default(),
            columns: Vec::new(),
            operation: None,
            key: None,
            partition_spec: Some(PartitionSpec {
                partition_by: partition_by.into(),
                fields: vec![PartitionSpecField {
                    field_id: 1000,
                    name: "id_bucket".into(),
                    source: "id".into(),
                    transform: "bucket[4]".into(),
                    result_type: "int".into(),
                }],
            }),
        }
    }

    #[test]
    fn a_recorded_partition_by_that_does_not_parse_is_the_catalogs_fault() {
        let current = recorded("bucket(4,id");
        let error = partitioning(&request(None), Some(&current)).unwrap_err();
        let api = ApiError::from(error);
        assert_eq!(api.body.error.code, ErrorCode::UpstreamError);
        assert_eq!(api.body.error.code.status().as_u16(), 502);
        assert_eq!(api.body.error.details["service"], "catalogd");
        let message = &api.body.error.message;
        assert!(
            message.contains("events") && message.contains("`bucket(4,id`"),
            "{message}"
        );
        // a sound record is used as it is
        let current = recorded("bucket(4,id)");
        let by = partitioning(&request(None), Some(&current)).unwrap();
        assert_eq!(by.unwrap().to_string(), "bucket(4,id)");
        // a request's own option that differs is still the request's fault
        let error = partitioning(&request(Some("day(ts)")), Some(&current)).unwrap_err();
        assert_eq!(
            ApiError::from(error).body.error.code,
            ErrorCode::PartitionSpecMismatch
        );
    }
}
