//! Client of catalogd's dataset API.

use crate::{Endpoint, Result, json, send};
use lakehouse_api::{
    DatasetDropResponse, DatasetListResponse, DatasetName, GcRunResponse, LoadedFileListResponse,
    Manifest, VersionListResponse, VersionRegisterRequest, VersionRegisterResponse,
};

/// Client of catalogd (`/datasets`), cheap to clone.
#[derive(Debug, Clone)]
pub struct CatalogdClient {
    endpoint: Endpoint,
}

impl CatalogdClient {
    /// A client of the catalogd at `base_url` (`http://127.0.0.1:8082`).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidUrl`] unless it is an `http(s)://` URL.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(CatalogdClient {
            endpoint: Endpoint::new(base_url)?,
        })
    }

    /// Sends `Authorization: Bearer <token>` on every request (the service token of issue
    /// 5's auth); `None` or an empty token sends none.
    pub fn with_token(self, token: Option<String>) -> Self {
        CatalogdClient {
            endpoint: self.endpoint.with_token(token),
        }
    }

    /// `GET /datasets/{name}`: the latest manifest, or `None` for an unknown dataset.
    ///
    /// # Errors
    /// catalogd's error answers other than 404; transport and decode errors.
    pub async fn latest(&self, name: &DatasetName) -> Result<Option<Manifest>> {
        let url = self.endpoint.url(&format!("/datasets/{}", name.as_str()));
        match send(self.endpoint.request(reqwest::Method::GET, &url), &url, &[]).await {
            Ok(response) => json(response, &url).await.map(Some),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST /datasets/{name}/versions`: registers a new version (or finds it existing).
    ///
    /// # Errors
    /// [`crate::ClientError::Remote`] with `schema_drift` (409), `fingerprint_mismatch` or
    /// `invalid_object` (400), ...; transport and decode errors.
    pub async fn register(
        &self,
        name: &DatasetName,
        request: &VersionRegisterRequest,
    ) -> Result<VersionRegisterResponse> {
        let url = self
            .endpoint
            .url(&format!("/datasets/{}/versions", name.as_str()));
        let response = send(
            self.endpoint
                .request(reqwest::Method::POST, &url)
                .json(request),
            &url,
            &[],
        )
        .await?;
        json(response, &url).await
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.endpoint.base
    }

    /// One page of `GET /datasets?prefix=&limit=&cursor=`: names ascending, `next_cursor`
    /// set when more follow.
    ///
    /// # Errors
    /// catalogd's error answers (400 `invalid_option`, 401); transport and decode errors.
    pub async fn list(
        &self,
        prefix: &str,
        limit: Option<usize>,
        cursor: Option<&str>,
    ) -> Result<DatasetListResponse> {
        let url = self.endpoint.url("/datasets");
        let mut query: Vec<(&str, String)> = Vec::new();
        if !prefix.is_empty() {
            query.push(("prefix", prefix.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        let request = self
            .endpoint
            .request(reqwest::Method::GET, &url)
            .query(&query);
        json(send(request, &url, &[]).await?, &url).await
    }

    /// `DELETE /datasets/{name}`: drops the dataset (a tombstone version; docs/contract.md
    /// section 14).
    ///
    /// # Errors
    /// 404 `not_found` for an unknown or already dropped dataset; 401/403 without a write
    /// token; transport and decode errors.
    pub async fn drop_dataset(&self, name: &DatasetName) -> Result<DatasetDropResponse> {
        let url = self.endpoint.url(&format!("/datasets/{}", name.as_str()));
        let request = self.endpoint.request(reqwest::Method::DELETE, &url);
        json(send(request, &url, &[]).await?, &url).await
    }

    /// Every version of `name`, ascending: [`CatalogdClient::versions_page`] followed
    /// through every page (the answer has no `next_cursor`).
    ///
    /// # Errors
    /// 404 `not_found` for an unknown dataset; transport and decode errors.
    pub async fn versions(&self, name: &DatasetName) -> Result<VersionListResponse> {
        let mut all = self.versions_page(name, None, None).await?;
        while let Some(cursor) = all.next_cursor.take() {
            let page = self.versions_page(name, Some(&cursor), None).await?;
            all.versions.extend(page.versions);
            all.next_cursor = page.next_cursor;
        }
        Ok(all)
    }

    /// One page of `GET /datasets/{name}/versions[?limit=&cursor=]`: versions ascending
    /// after `cursor` (a previous page's `next_cursor`), at most `limit` (server default
    /// 1000).
    ///
    /// # Errors
    /// 404 `not_found` for an unknown dataset, 400 `invalid_option` for a bad cursor;
    /// transport and decode errors.
    pub async fn versions_page(
        &self,
        name: &DatasetName,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<VersionListResponse> {
        let url = self
            .endpoint
            .url(&format!("/datasets/{}/versions", name.as_str()));
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(cursor) = cursor {
            query.push(("cursor", cursor.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let request = self
            .endpoint
            .request(reqwest::Method::GET, &url)
            .query(&query);
        json(send(request, &url, &[]).await?, &url).await
    }

    /// `GET /datasets/{name}/versions/{version}`: that version's manifest (time travel).
    ///
    /// # Errors
    /// 404 `not_found` for an unknown dataset or version, 410 `gone` past retention;
    /// transport and decode errors.
    pub async fn version(&self, name: &DatasetName, version: u64) -> Result<Manifest> {
        self.endpoint
            .get_json(&format!("/datasets/{}/versions/{version}", name.as_str()))
            .await
    }

    /// `GET /datasets/{name}/loaded-files?source=`: the files of `source` that versions of
    /// the dataset record as loaded (docs/contract.md section 12), or `None` for a dataset
    /// that does not exist yet.
    ///
    /// # Errors
    /// catalogd's error answers other than 404; transport and decode errors.
    pub async fn loaded_files(
        &self,
        name: &DatasetName,
        source: &str,
    ) -> Result<Option<LoadedFileListResponse>> {
        let url = self
            .endpoint
            .url(&format!("/datasets/{}/loaded-files", name.as_str()));
        let request = self
            .endpoint
            .request(reqwest::Method::GET, &url)
            .query(&[("source", source)]);
        match send(request, &url, &[]).await {
            Ok(response) => json(response, &url).await.map(Some),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST /admin/gc[?dry_run=true]`: one garbage collection run.
    ///
    /// # Errors
    /// 401/403 without a write token; 503/502 when storaged cannot list; transport and
    /// decode errors.
    pub async fn gc(&self, dry_run: bool) -> Result<GcRunResponse> {
        let url = self.endpoint.url("/admin/gc");
        let mut request = self.endpoint.request(reqwest::Method::POST, &url);
        if dry_run {
            request = request.query(&[("dry_run", "true")]);
        }
        json(send(request, &url, &[]).await?, &url).await
    }

    /// `GET /readyz`: Ok when catalogd answers 200.
    ///
    /// # Errors
    /// Transport errors or the 503 answer.
    pub async fn ready(&self) -> Result<()> {
        self.endpoint.ready().await
    }
}
