//! Warnings that teach (DESIGN.md section 14), added to a new dataset's answer: the utf8
//! columns another `decimal_separator` or `date_order` would have typed
//! ([`lakehouse_convert::teaching_warnings`]), and a first upload without data rows.

use crate::IngestError;
use crate::spool::Spooled;
use lakehouse_api::Schema;
use lakehouse_convert::ReadConfig;

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
    let csv = std::fs::File::open(upload.file.path()).map_err(IngestError::Spool)?;
    let csv = lakehouse_convert::decode(csv, options.csv.encoding, max_csv_bytes)?;
    Ok(lakehouse_convert::teaching_warnings(csv, options, schema)?)
}
