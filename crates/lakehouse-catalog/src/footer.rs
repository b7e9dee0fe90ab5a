//! The one reader of Parquet footers in the workspace: the footer of a data object read
//! through a [`ManifestStore`] with range reads, decoded on a blocking thread, at most
//! [`MAX_FOOTER_BYTES`] of it. What the Iceberg projection takes its data-file metrics from
//! (docs/contract.md section 8) and the catalog page its column statistics and preview.
//!
//! A Parquet file ends with its footer (Thrift-encoded metadata), the footer's length as a
//! 4-byte little-endian integer and the magic `PAR1`. The first read takes the object's
//! last [`FOOTER_PREFETCH_BYTES`], which hold the whole footer of a typical object; a longer
//! footer costs a second read of exactly its bytes.

use crate::{ManifestStore, StoreError};
use bytes::Bytes;
use lakehouse_api::ObjectRef;
use parquet::errors::ParquetError;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};

/// Bytes read from the end of an object in the first range read.
pub const FOOTER_PREFETCH_BYTES: u64 = 64 * 1024;

/// Largest footer read, bytes: decoding one costs memory and CPU in proportion (row groups
/// times columns), and the objects this project writes have footers of a few KiB to a few
/// hundred KiB.
pub const MAX_FOOTER_BYTES: u64 = 16 * 1024 * 1024;

/// Why a footer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FooterError {
    /// The store does not hold the object.
    #[error("no such object in storage")]
    Missing,
    /// The store failed or did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The object's bytes are not a Parquet footer (too short, no magic, a length past the
    /// start of the object, or the decoder gave up).
    #[error("not a parquet footer: {0}")]
    NotParquet(String),
    /// The footer is longer than [`MAX_FOOTER_BYTES`].
    #[error("footer of {bytes} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// The footer's length.
        bytes: u64,
        /// [`MAX_FOOTER_BYTES`].
        limit: u64,
    },
    /// The footer's Thrift does not decode.
    #[error("footer does not decode")]
    Decode(#[source] ParquetError),
}

impl FooterError {
    /// Whether the object's own bytes are at fault ([`FooterError::NotParquet`],
    /// [`FooterError::TooLarge`], [`FooterError::Decode`]): as permanent as those bytes, where
    /// a missing object or a store failure may change.
    pub fn is_unreadable(&self) -> bool {
        match self {
            FooterError::NotParquet(_) | FooterError::TooLarge { .. } | FooterError::Decode(_) => {
                true
            }
            FooterError::Missing | FooterError::Store(_) => false,
        }
    }
}

/// Reads and decodes the footer of `object` (its `size` as the manifest records it): one
/// range read of the last [`FOOTER_PREFETCH_BYTES`], a second when the footer is longer;
/// the decoding runs on tokio's blocking pool.
///
/// # Errors
/// [`FooterError`]; the object is never read past [`MAX_FOOTER_BYTES`] of footer.
pub async fn read_footer<S: ManifestStore>(
    store: &S,
    object: &ObjectRef,
) -> Result<ParquetMetaData, FooterError> {
    read_footer_with(store, object, |metadata| metadata).await
}

/// [`read_footer`], then `then` applied to the decoded footer in the same blocking task, in
/// the caller's tracing span: for a caller whose own work on the footer (statistics,
/// metrics) must not run on the runtime either.
///
/// # Errors
/// As [`read_footer`]; a panic in the decoder or in `then` is [`FooterError::NotParquet`].
pub async fn read_footer_with<S, T, F>(
    store: &S,
    object: &ObjectRef,
    then: F,
) -> Result<T, FooterError>
where
    S: ManifestStore,
    T: Send + 'static,
    F: FnOnce(ParquetMetaData) -> T + Send + 'static,
{
    let size = object.size;
    let tail_len = size.min(FOOTER_PREFETCH_BYTES);
    let tail = store
        .get_range(&object.key, size - tail_len..size)
        .await?
        .ok_or(FooterError::Missing)?;
    let length = footer_length(&tail, size)?;
    let metadata = if length + 8 <= tail.len() as u64 {
        let end = tail.len() - 8;
        tail.slice(end - length as usize..end)
    } else {
        store
            .get_range(&object.key, size - 8 - length..size - 8)
            .await?
            .ok_or(FooterError::Missing)?
    };
    decode(metadata, then).await
}

/// The metadata length the last 8 bytes of `tail` (the end of an object of `size` bytes)
/// announce, checked against the object and [`MAX_FOOTER_BYTES`].
fn footer_length(tail: &[u8], size: u64) -> Result<u64, FooterError> {
    let last8 = tail
        .len()
        .checked_sub(8)
        .and_then(|start| <[u8; 8]>::try_from(&tail[start..]).ok())
        .ok_or_else(|| FooterError::NotParquet("shorter than a parquet footer".into()))?;
    let length = FooterTail::try_new(&last8)
        .map_err(|error| FooterError::NotParquet(error.to_string()))?
        .metadata_length() as u64;
    if length + 8 > size {
        return Err(FooterError::NotParquet(format!(
            "a footer of {length} bytes does not fit in an object of {size} bytes"
        )));
    }
    if length > MAX_FOOTER_BYTES {
        return Err(FooterError::TooLarge {
            bytes: length,
            limit: MAX_FOOTER_BYTES,
        });
    }
    Ok(length)
}

/// Decodes footer bytes and applies `then` on tokio's blocking pool (up to
/// [`MAX_FOOTER_BYTES`] of Thrift: milliseconds of CPU, past what a runtime thread may
/// spend), in the caller's tracing span.
async fn decode<T, F>(metadata: Bytes, then: F) -> Result<T, FooterError>
where
    T: Send + 'static,
    F: FnOnce(ParquetMetaData) -> T + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        span.in_scope(|| ParquetMetaDataReader::decode_metadata(&metadata).map(then))
    })
    .await
    // A decoder panic is as permanent as the bytes that caused it.
    .map_err(|join| FooterError::NotParquet(format!("footer decoding failed: {join}")))?
    .map_err(FooterError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use lakehouse_api::{ObjectKey, Sha256Digest};

    fn object(key: &str, size: u64) -> ObjectRef {
        ObjectRef {
            key: ObjectKey::new(key).unwrap(),
            size,
            sha256: Sha256Digest::from_bytes([0; 32]),
            row_count: 0,
            rejects: None,
            partition: None,
        }
    }

    #[tokio::test]
    async fn what_is_not_a_footer_says_why() {
        let store = MemoryStore::new();
        store.insert(ObjectKey::new("a/short").unwrap(), "PAR1");
        store.insert(
            ObjectKey::new("a/text").unwrap(),
            "this is not parquet at all",
        );
        let mut huge = vec![0u8; 16];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(b"PAR1");
        store.insert(ObjectKey::new("a/huge").unwrap(), huge);
        let read = |key: &'static str, size: u64| {
            let store = &store;
            async move { read_footer(store, &object(key, size)).await.unwrap_err() }
        };
        assert!(matches!(
            read("a/short", 4).await,
            FooterError::NotParquet(_)
        ));
        assert!(matches!(
            read("a/text", 26).await,
            FooterError::NotParquet(_)
        ));
        assert!(matches!(
            read("a/huge", 24).await,
            FooterError::NotParquet(_)
        ));
        assert!(matches!(read("a/none", 100).await, FooterError::Missing));
    }

    /// A Parquet file of `columns` int64 columns and one row: its footer grows with them.
    fn parquet_with_columns(columns: usize) -> Bytes {
        use arrow_array::{ArrayRef, Int64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        use std::sync::Arc;
        let fields: Vec<Field> = (0..columns)
            .map(|i| Field::new(format!("column_{i}"), DataType::Int64, true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let arrays: Vec<ArrayRef> = (0..columns)
            .map(|i| Arc::new(Int64Array::from(vec![i as i64])) as ArrayRef)
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
        let mut buf = Vec::new();
        let mut writer = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        Bytes::from(buf)
    }

    #[tokio::test]
    async fn short_and_long_footers_read_as_the_file_s_own() {
        let store = MemoryStore::new();
        for (key, columns) in [("d/small.parquet", 3), ("d/wide.parquet", 2000)] {
            let bytes = parquet_with_columns(columns);
            let tail = &bytes[bytes.len() - 8..];
            let length = u64::from(u32::from_le_bytes(tail[..4].try_into().unwrap()));
            // The wide file's footer does not fit the first read: it takes the second.
            assert_eq!(
                length + 8 > FOOTER_PREFETCH_BYTES,
                columns == 2000,
                "{length}"
            );
            store.insert(ObjectKey::new(key).unwrap(), bytes.clone());
            let footer = read_footer(&store, &object(key, bytes.len() as u64))
                .await
                .unwrap();
            let direct = ParquetMetaDataReader::new()
                .parse_and_finish(&bytes)
                .unwrap();
            assert_eq!(footer.file_metadata().schema_descr().num_columns(), columns);
            assert_eq!(footer.file_metadata().num_rows(), 1);
            assert_eq!(
                footer.row_group(0).column(columns - 1).statistics(),
                direct.row_group(0).column(columns - 1).statistics()
            );
        }
    }

    #[test]
    fn a_footer_over_the_limit_is_refused_before_it_is_read() {
        let mut tail = vec![0u8; 8];
        tail[..4].copy_from_slice(&(MAX_FOOTER_BYTES as u32 + 1).to_le_bytes());
        tail[4..].copy_from_slice(b"PAR1");
        let error = footer_length(&tail, u64::MAX).unwrap_err();
        assert!(matches!(error, FooterError::TooLarge { .. }), "{error}");
        assert!(footer_length(&tail, u64::MAX).unwrap_err().is_unreadable());
    }
}
