//! The `s3` backend: an S3-compatible bucket through object_store's `AmazonS3`. A PUT goes to
//! the final key with the store's conditional and multipart operations instead of staging and
//! renaming (a rename on S3 is a copy plus a delete).

use super::hash::BodyHasher;
use super::{
    Body, MAX_PARTS_IN_FLIGHT, PutCondition, S3_PART_SIZE_BYTES, S3_SINGLE_PUT_MAX_BYTES, Store,
    UploadGuard, backend_error, check_digest, path_of,
};
use crate::error::{Result, StoragedError};
use futures::StreamExt;
use lakehouse_api::{ObjectKey, ObjectPutResponse, Sha256Digest};
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayloadMut, WriteMultipart};
use std::sync::Arc;

/// Where the `s3` backend's bucket is (docs/contract.md section 7). Empty strings leave the value to
/// the usual `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_REGION`, ...), which also
/// carry the credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name (required).
    pub bucket: String,
    /// Endpoint URL, e.g. `http://127.0.0.1:9000` for MinIO; empty for AWS itself.
    pub endpoint: String,
    /// Region, e.g. `us-east-1`; empty for `AWS_REGION` or `us-east-1`.
    pub region: String,
    /// Allow plain `http://` endpoints (a loopback test server, a MinIO on a trusted LAN).
    pub allow_http: bool,
}

impl Store {
    /// Opens the `s3` backend: `AmazonS3Builder::from_env()` (credentials and any other
    /// `AWS_*` settings), then the non-empty `settings` on top. Conditional PUT stays at
    /// object_store's default, `If-None-Match: *` / `If-Match`, which S3 honours since 2024.
    ///
    /// No staging objects are used on S3, so there is no debris to remove; an upload cut by a
    /// crash stays an invisible incomplete multipart upload (a bucket lifecycle rule
    /// `AbortIncompleteMultipartUpload` reclaims its space).
    ///
    /// # Errors
    /// [`StoragedError::Backend`] when the settings are incomplete (no bucket) or invalid.
    pub fn open_s3(settings: &S3Settings) -> Result<Store> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env();
        if !settings.bucket.is_empty() {
            builder = builder.with_bucket_name(&settings.bucket);
        }
        if !settings.endpoint.is_empty() {
            builder = builder.with_endpoint(&settings.endpoint);
        }
        if !settings.region.is_empty() {
            builder = builder.with_region(&settings.region);
        }
        if settings.allow_http {
            builder = builder.with_allow_http(true);
        }
        let s3 = builder.build().map_err(|source| StoragedError::Backend {
            op: "open",
            key: format!("s3 bucket {:?}", settings.bucket),
            source,
        })?;
        Ok(Store {
            inner: Arc::new(s3),
            kind: super::Kind::S3,
        })
    }

    /// The `s3` write path of [`Store::put`]: no staging object, no rename.
    ///
    /// - Small bodies (up to [`S3_SINGLE_PUT_MAX_BYTES`]): buffered while hashed, verified,
    ///   then one `put_opts` with [`PutMode::Create`] (`If-None-Match: *`, 412 from S3 becomes
    ///   [`StoragedError::AlreadyExists`]) or [`PutMode::Overwrite`]. Atomic on S3.
    /// - Larger bodies: a multipart upload to the final key in [`S3_PART_SIZE_BYTES`] parts,
    ///   at most [`MAX_PARTS_IN_FLIGHT`] in flight. Nothing is visible until
    ///   `CompleteMultipartUpload`; a checksum mismatch, a broken body, a failed part, a
    ///   create-only key found taken just before completion, or a cancelled request (client
    ///   gone) aborts the upload instead.
    ///
    /// object_store 0.14's `MultipartUpload::complete` sends no `If-None-Match`, so for a
    /// large create-only body the key check is a HEAD right before completion: two uploads
    /// of one large key racing inside that window both complete and the later one wins.
    /// the contract's writers never depend on that window: manifests (the catalog's version
    /// race) are small single conditional PUTs, and every large object's key is the SHA-256
    /// of its bytes, verified here, so the racers write the same bytes.
    pub(super) async fn put_s3<B: Body>(
        &self,
        key: &ObjectKey,
        condition: PutCondition,
        expected: Option<&Sha256Digest>,
        body: B,
    ) -> Result<ObjectPutResponse> {
        let location = path_of(key);
        let hasher = BodyHasher::spawn();
        let mut size = 0u64;
        let mut body = std::pin::pin!(body);
        let body_error = |e: B::Failure| StoragedError::BodyRead {
            source: Box::new(e),
        };

        // Buffer up to the single-PUT threshold.
        let mut buffered = PutPayloadMut::new();
        let mut upload: Option<UploadGuard> = None;
        while let Some(frame) = body.next().await {
            let bytes = frame.map_err(body_error)?;
            hasher.update(bytes.clone()).await;
            size += bytes.len() as u64;
            buffered.push(bytes);
            if buffered.content_length() > S3_SINGLE_PUT_MAX_BYTES {
                let started = self
                    .inner
                    .put_multipart(&location)
                    .await
                    .map_err(|e| backend_error("start upload of", key.as_str(), e))?;
                let mut writer = WriteMultipart::new_with_chunk_size(started, S3_PART_SIZE_BYTES);
                for piece in std::mem::take(&mut buffered).freeze() {
                    writer.put(piece);
                }
                upload = Some(UploadGuard(Some(writer)));
                break;
            }
        }

        let Some(mut guard) = upload else {
            let sha256 = hasher.finish(key.as_str()).await?;
            check_digest(expected, &sha256)?;
            let mode = match condition {
                PutCondition::CreateOnly => PutMode::Create,
                PutCondition::Overwrite => PutMode::Overwrite,
            };
            self.inner
                .put_opts(&location, buffered.freeze(), PutOptions::from(mode))
                .await
                .map_err(|e| backend_error("put", key.as_str(), e))?;
            return Ok(ObjectPutResponse {
                key: key.clone(),
                size,
                sha256,
            });
        };

        // Stream the rest as parts; every early return below aborts the upload (the guard).
        while let Some(frame) = body.next().await {
            let bytes = match frame {
                Ok(bytes) => bytes,
                Err(e) => {
                    guard.abort().await;
                    return Err(body_error(e));
                }
            };
            hasher.update(bytes.clone()).await;
            size += bytes.len() as u64;
            let writer = guard.writer();
            if let Err(e) = writer.wait_for_capacity(MAX_PARTS_IN_FLIGHT).await {
                guard.abort().await;
                return Err(backend_error("upload", key.as_str(), e));
            }
            guard.writer().put(bytes);
        }
        let checked = match hasher.finish(key.as_str()).await {
            Ok(sha256) => check_digest(expected, &sha256).map(|()| sha256),
            Err(e) => Err(e),
        };
        let sha256 = match checked {
            Ok(sha256) => sha256,
            Err(e) => {
                guard.abort().await;
                return Err(e);
            }
        };
        if let Err(e) = self.check_absent(key, condition).await {
            guard.abort().await;
            return Err(e);
        }
        guard
            .finish()
            .await
            .map_err(|e| backend_error("complete upload of", key.as_str(), e))?;
        Ok(ObjectPutResponse {
            key: key.clone(),
            size,
            sha256,
        })
    }

    /// For a create-only write: `Ok` when `key` does not exist (a HEAD), else
    /// [`StoragedError::AlreadyExists`] or the backend's error. Nothing to check for an
    /// overwrite.
    async fn check_absent(&self, key: &ObjectKey, condition: PutCondition) -> Result<()> {
        if condition != PutCondition::CreateOnly {
            return Ok(());
        }
        match self.inner.head(&path_of(key)).await {
            Err(object_store::Error::NotFound { .. }) => Ok(()),
            Ok(_) => Err(StoragedError::AlreadyExists {
                key: key.to_string(),
            }),
            Err(e) => Err(backend_error("head", key.as_str(), e)),
        }
    }
}
