//! Client of catalogd's dataset API.

use crate::{Endpoint, Result, json, send};
use lakehouse_api::{DatasetName, Manifest, VersionRegisterRequest, VersionRegisterResponse};

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

    /// `GET /readyz`: Ok when catalogd answers 200.
    ///
    /// # Errors
    /// Transport errors or the 503 answer.
    pub async fn ready(&self) -> Result<()> {
        self.endpoint.ready().await
    }
}
