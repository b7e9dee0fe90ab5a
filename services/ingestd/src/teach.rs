//! Warnings that teach (docs/contract.md section 14), added to a new dataset's answer: the utf8
//! columns another `decimal_separator` or `date_order` would have typed
//! ([`lakehouse_convert::teaching_warnings`]), and a first upload without data rows.

use crate::IngestError;
use crate::spool::Spooled;
use lakehouse_api::{CsvOptions, Schema};
use lakehouse_client::trace::bind;
use lakehouse_convert::{ReadConfig, ReadLimits};

/// The warning of a new dataset's first upload that has a header and no data rows.
pub(crate) const NO_DATA_ROWS: &str = "the upload has no data rows: every column is utf8, and \
     that is now the dataset's registered schema (uploads with other types will be refused \
     with a 409; ingest a file with rows under a new name to have its types inferred)";

/// [`lakehouse_convert::teaching_warnings`] over the spooled upload, read as the inference
/// read it (`options`: the delimiter found, the encoding). Blocking: call it on a blocking
/// thread.
///
/// # Errors
/// [`IngestError::Spool`] when the spool file cannot be opened, [`IngestError::Convert`] as
/// the inference's own read.
pub(crate) fn teaching_warnings(
    upload: &Spooled,
    options: ReadConfig<'_>,
    max_csv_bytes: u64,
    schema: &Schema,
) -> Result<Vec<String>, IngestError> {
    let (path, direct) = (upload.file.path(), upload.direct);
    let csv = crate::spool::open_read(path, direct, options.csv.encoding, max_csv_bytes)?;
    Ok(lakehouse_convert::teaching_warnings(csv, options, schema)?)
}

/// [`teaching_warnings`] on a blocking thread, for the speculative pass's result (`options`
/// with the delimiter it read with; `limits`: the caps and `max_csv_bytes`); the spool file
/// goes when it is done.
///
/// # Errors
/// As [`teaching_warnings`]; [`IngestError::Task`] when the blocking task fails.
pub(crate) async fn of_spooled(
    upload: Spooled,
    options: CsvOptions,
    limits: (ReadLimits, u64),
    schema: Schema,
) -> Result<Vec<String>, IngestError> {
    let (read_limits, max_csv_bytes) = limits;
    tokio::task::spawn_blocking(bind(move || {
        let read = ReadConfig::new(&options, read_limits);
        teaching_warnings(&upload, read, max_csv_bytes, &schema)
    }))
    .await
    .map_err(IngestError::Task)?
}
