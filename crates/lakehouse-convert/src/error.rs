//! The errors of the converter, each one a thing the caller can act on.

use crate::decode::DecodeError;
use lakehouse_api::SchemaDriftDetails;

/// Everything [`infer_schema`](crate::infer_schema), [`check_schema`](crate::check_schema)
/// and [`write_parquet`](crate::write_parquet) can fail with.
///
/// The ingest service maps each variant to an HTTP answer (docs/contract.md sections 3 and 6):
/// `EmptyCsv`, `MalformedCsv` and `InvalidHeader` are 400s, `SchemaDrift` is a 409, `Io` is
/// whatever failed reading the upload or writing the output, `Parquet` is an internal error.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The input holds no header record: 0 bytes, only a BOM, or only empty lines
    /// (`empty_csv`).
    #[error("csv has no header record")]
    EmptyCsv,
    /// A record that is not RFC 4180, not UTF-8, or has a field count different from the
    /// header's (`malformed_csv`).
    #[error("malformed csv at line {line}{}: {reason}", column_suffix(*column))]
    MalformedCsv {
        /// 1-based line on which the offending record starts.
        line: u64,
        /// 1-based field of the record, when the problem is in one field.
        column: Option<u64>,
        /// What is wrong, for a human.
        reason: String,
    },
    /// A header name holds a control character U+0000 to U+001F (`invalid_header`).
    #[error("invalid header name in column {column}: {reason}")]
    InvalidHeader {
        /// 1-based position of the header field.
        column: u64,
        /// What is wrong, for a human.
        reason: String,
    },
    /// A partitioned upload holds more distinct partition values than the caller allows
    /// (`max_partitions_per_upload`, docs/contract.md section 10; `limit_exceeded`, 400).
    #[error(
        "the upload holds more than max_partitions_per_upload = {max} distinct partition values"
    )]
    TooManyPartitions {
        /// The limit.
        max: u64,
    },
    /// The input exceeds one of the [`ReadLimits`](crate::ReadLimits) (`limit_exceeded`, 400).
    #[error("csv exceeds {limit} = {max} at line {line}{}", column_suffix(*column))]
    LimitExceeded {
        /// Which cap: `max_columns`, `max_field_bytes` or `max_record_bytes`.
        limit: &'static str,
        /// Its value.
        max: u64,
        /// 1-based line on which the offending record starts.
        line: u64,
        /// 1-based field, for `max_columns` and `max_field_bytes`.
        column: Option<u64>,
    },
    /// More CSV than a cap of the reading service allows, counted on the decompressed bytes
    /// (`max_csv_bytes`, docs/contract.md section 3): a 413 `payload_too_large`.
    #[error("csv exceeds {limit} = {max} bytes (decompressed)")]
    TooLarge {
        /// Which cap: `max_csv_bytes`.
        limit: &'static str,
        /// Its value, bytes.
        max: u64,
    },
    /// The upload starts with the magic bytes of a format that is not CSV (docs/contract.md section
    /// 14): a 415 `unsupported_media_type`.
    #[error("the upload is {format}, not CSV: {advice}")]
    UnsupportedFormat {
        /// The format its first bytes name: `an xlsx or other ZIP file`, `a PDF file`, `a PNG
        /// image`, `a Parquet file`.
        format: &'static str,
        /// What to do instead.
        advice: &'static str,
    },
    /// The upload does not conform to the registered schema (`schema_drift`, 409).
    #[error("upload does not conform to the registered schema")]
    SchemaDrift(Box<SchemaDriftDetails>),
    /// More bad records than `max_rejects` allows (docs/contract.md section 3, "Rejects"): `error`
    /// is the usual error of the first record past the limit, `rejected` the bad records
    /// found up to and including it.
    #[error("{error} ({rejected} bad records, more than max_rejects allows)")]
    TooManyRejects {
        /// Bad records found, the one past the limit included.
        rejected: u64,
        /// That record's own error (`MalformedCsv`, or `SchemaDrift` for a refused value).
        error: Box<ConvertError>,
    },
    /// A merge or delete upload row with a null in key column `column` (docs/contract.md
    /// section 11): a 400 `null_key`. `row` is the 0-based data row of the upload.
    #[error("data row {row} has a null key column {column:?}")]
    NullKey {
        /// 0-based data row of the upload.
        row: u64,
        /// The key column.
        column: String,
    },
    /// A merge or delete upload holding one key on two rows (docs/contract.md section 11):
    /// a 400 `duplicate_key`. Rows are 0-based data rows of the upload.
    #[error("data rows {first} and {second} have the same key")]
    DuplicateKey {
        /// The first row with the key.
        first: u64,
        /// The row that repeats it.
        second: u64,
    },
    /// A merge whose upload keys need more memory than `merge_key_memory_bytes` even split
    /// into the most parts (docs/contract.md section 11): a 400 `limit_exceeded`.
    #[error(
        "the upload's keys need more than 256 parts of merge_key_memory_bytes = {max} bytes ({rows} rows read); split the upload"
    )]
    MergeTooLarge {
        /// The cap, bytes.
        max: u64,
        /// Upload rows read when it was reached.
        rows: u64,
    },
    /// Reading the CSV or writing the Parquet output failed.
    #[error("i/o error reading csv or writing parquet")]
    Io(#[source] std::io::Error),
    /// The Parquet or Arrow encoder failed for a reason other than I/O (an internal error).
    #[error("parquet encoder failed: {0}")]
    Parquet(String),
}

impl ConvertError {
    /// Whether the CSV bytes themselves are at fault (`EmptyCsv`, `MalformedCsv`,
    /// `InvalidHeader`, `LimitExceeded`, `TooLarge`): every pass over the same bytes and
    /// options stops at the same record with the same error, whatever schema it was given.
    pub fn is_csv_error(&self) -> bool {
        matches!(
            self,
            ConvertError::EmptyCsv
                | ConvertError::MalformedCsv { .. }
                | ConvertError::InvalidHeader { .. }
                | ConvertError::LimitExceeded { .. }
                | ConvertError::TooLarge { .. }
                | ConvertError::TooManyRejects { .. }
                | ConvertError::UnsupportedFormat { .. }
        )
    }

    /// The error of a failed read of a [`Decoded`](crate::Decoded) upload (or any reader):
    /// a decompression or transcoding failure is `MalformedCsv` on the line where the text
    /// broke, the `max_csv_bytes` cap is `TooLarge`, anything else is `Io`.
    pub fn from_read(error: std::io::Error) -> ConvertError {
        match crate::decode::take_decode_error(error) {
            Ok(DecodeError::TooLarge { max }) => ConvertError::TooLarge {
                limit: "max_csv_bytes",
                max,
            },
            Ok(DecodeError::Broken { line, reason }) => ConvertError::MalformedCsv {
                line: line.unwrap_or(1),
                column: None,
                reason,
            },
            Ok(DecodeError::Source(io)) => ConvertError::Io(io),
            Err(io) => ConvertError::Io(io),
        }
    }
}

fn column_suffix(column: Option<u64>) -> String {
    column.map(|c| format!(", column {c}")).unwrap_or_default()
}

/// `Result` with a [`ConvertError`].
pub type Result<T, E = ConvertError> = std::result::Result<T, E>;
