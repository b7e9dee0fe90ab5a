//! [`ManifestStore`] over storaged's HTTP API (docs/contract.md section 6).

use bytes::Bytes;
use lakehouse_api::{ErrorCode, ObjectInfo, ObjectKey};
use lakehouse_catalog::{ManifestStore, PutOutcome, StoreError, StoredObject};
use lakehouse_client::{ClientError, PutOptions, StoragedClient};

/// Keys per `GET /objects` page when listing manifests.
const LIST_PAGE: u32 = 1000;

/// The catalog's store: storaged, through [`StoragedClient`]. Manifests are written with
/// `If-None-Match: *` (create-only), so two replicas can never overwrite each other's version.
#[derive(Debug, Clone)]
pub struct StoragedStore {
    client: StoragedClient,
}

impl StoragedStore {
    /// A store over the storaged at `base_url` (`http://127.0.0.1:8083`), presenting
    /// `service_token` as a bearer token when given.
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] unless it is an `http(s)://` URL.
    pub fn new(base_url: &str, service_token: Option<String>) -> Result<Self, ClientError> {
        Ok(StoragedStore {
            client: StoragedClient::new(base_url)?.with_token(service_token),
        })
    }

    /// The client underneath.
    pub fn client(&self) -> &StoragedClient {
        &self.client
    }

    /// Every object whose key starts with `prefix` (a string prefix, as storaged's LIST),
    /// after `start_after`, ascending, read page by page ([`LIST_PAGE`] keys a request).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] / [`StoreError::Failed`] as [`store_error`] maps the
    /// client's errors; `Failed` when storaged hands back the same page cursor twice (which
    /// would loop forever).
    async fn list_all(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut objects = Vec::new();
        let mut after = start_after.map(str::to_owned);
        loop {
            let page = self
                .client
                .list(prefix, after.as_deref(), Some(LIST_PAGE))
                .await
                .map_err(store_error)?;
            objects.extend(
                page.objects
                    .into_iter()
                    .filter(|object| object.key.as_str().starts_with(prefix)),
            );
            match page.next_start_after {
                Some(next) if after.as_deref() != Some(next.as_str()) => after = Some(next),
                Some(_) => {
                    return Err(StoreError::failed(
                        "storaged repeated the same next_start_after",
                    ));
                }
                None => return Ok(objects),
            }
        }
    }
}

/// What a failed storaged request means for the catalog: transport failures, storaged's
/// 503s ([`ErrorCode::is_retryable_upstream`], where every code is decided) and a 408
/// (storaged timed out reading the request: the next attempt may get through) are
/// [`StoreError::Unavailable`] (retry later); everything else is [`StoreError::Failed`],
/// the catalog cannot act on it: a 401 or 403 (catalogd's service token is wrong or lacks
/// the scope, a deployment error), a refusal of a key or body the catalog built (a bug), a
/// storaged fault (500) or an answer that does not decode. Not-found and already-exists
/// are decided by the callers before this.
fn store_error(error: ClientError) -> StoreError {
    let code = error.code();
    if code.is_retryable_upstream() || code == ErrorCode::RequestTimeout {
        StoreError::unavailable(error)
    } else {
        StoreError::failed(error)
    }
}

impl ManifestStore for StoragedStore {
    async fn put_if_absent(&self, key: &ObjectKey, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        let options = PutOptions {
            create_only: true,
            sha256: None,
        };
        match self.client.put_bytes(key, bytes, &options).await {
            Ok(lakehouse_client::PutOutcome::Created) => Ok(PutOutcome::Created),
            Ok(lakehouse_client::PutOutcome::AlreadyExists) => Ok(PutOutcome::AlreadyExists),
            Err(error) if error.code() == ErrorCode::AlreadyExists => Ok(PutOutcome::AlreadyExists),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        match self.client.get_bytes(key).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        match self.client.get_range(key, range.start, range.end).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ObjectKey>, StoreError> {
        let objects = self.list_all(prefix, start_after).await?;
        Ok(objects.into_iter().map(|object| object.key).collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let dirs = self.client.list_dirs(prefix).await.map_err(store_error)?;
        Ok(dirs
            .into_iter()
            .filter_map(|dir| {
                dir.strip_prefix(prefix)
                    .and_then(|rest| rest.strip_suffix('/'))
                    .map(str::to_owned)
            })
            .collect())
    }

    async fn object_size(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        match self.client.head(key).await {
            Ok(head) => Ok(Some(head.size)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(store_error(error)),
        }
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.client.ready().await.map_err(store_error)
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        let objects = self.list_all(prefix, None).await?;
        Ok(objects
            .into_iter()
            .map(|object| {
                StoredObject::from_listing(object.key, object.size, &object.last_modified)
            })
            .collect())
    }

    async fn delete(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        match self.client.delete(key).await {
            Ok(()) => Ok(true),
            Err(error) if error.is_not_found() => Ok(false),
            Err(error) => Err(store_error(error)),
        }
    }
}
