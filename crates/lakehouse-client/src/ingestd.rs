//! Client of ingestd's `POST /ingest` (docs/contract.md section 6).

use crate::{Endpoint, Result, json, send};
use lakehouse_api::{
    DatasetName, DateOrder, DecimalSeparator, IngestMode, IngestResponse, LoadCreateRequest,
    LoadCreateResponse, LoadGetResponse, LoadListResponse, SchemaEvolution,
};

/// Client of ingestd (`/ingest`), cheap to clone.
#[derive(Debug, Clone)]
pub struct IngestdClient {
    endpoint: Endpoint,
}

/// The query options of one `POST /ingest`: every option ingestd takes (docs/contract.md section
/// 6). `None` leaves an option to ingestd's default. Serialized by serde as the query
/// string, in field order (`mode` by the wire type's own names: `replace`, `append`, `merge`, `delete`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct IngestOptions {
    /// Dataset to ingest into (`name`).
    pub name: DatasetName,
    /// `mode`: `replace` (ingestd's default), `append`, `merge` or `delete`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<IngestMode>,
    /// `key`: the key columns of `merge` and `delete`, comma-separated (docs/contract.md
    /// section 11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `delimiter`: one ASCII character, or `tab`, as ingestd parses it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// `null_values`: comma-separated strings read as null.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub null_values: Option<String>,
    /// `encoding`: `utf-8`, `windows-1252` (or a WHATWG label of it such as `latin1`),
    /// `utf-16le`, `utf-16be` (docs/contract.md section 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `decimal_separator`: `.` or `,` (docs/contract.md section 14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimal_separator: Option<DecimalSeparator>,
    /// `date_order`: `DMY` or `MDY`, how a new dataset's `P/Q/YYYY` columns are read
    /// (docs/contract.md section 14).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_order: Option<DateOrder>,
    /// `schema_evolution`: `add_columns` lets new columns at the end make a new schema
    /// version (docs/contract.md section 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_evolution: Option<SchemaEvolution>,
    /// `max_rejects`: how many bad records may be set aside into a rejects object instead
    /// of failing the upload (docs/contract.md section 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rejects: Option<u64>,
    /// `dry_run`: `true` checks the upload and answers what the ingest would, writing
    /// nothing (docs/contract.md section 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// `partition_by`: a new dataset's partitioning, comma-separated Iceberg transforms of
    /// its columns such as `day(ts),bucket(16,id)` (docs/contract.md section 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_by: Option<String>,
}

impl IngestdClient {
    /// A client of the ingestd at `base_url` (`http://127.0.0.1:8081`).
    ///
    /// # Errors
    /// [`crate::ClientError::InvalidUrl`] unless it is an `http(s)://` URL.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(IngestdClient {
            endpoint: Endpoint::new(base_url)?,
        })
    }

    /// Sends `Authorization: Bearer <token>` on every request; `None` or an empty token
    /// sends none.
    pub fn with_token(self, token: Option<String>) -> Self {
        IngestdClient {
            endpoint: self.endpoint.with_token(token),
        }
    }

    /// `POST /ingest?name=&mode=&delimiter=&null_values=&encoding=&schema_evolution=&max_rejects=&dry_run=&partition_by=` with a multipart body whose field
    /// `file` (named `filename`, `text/csv`) streams `file`, of exactly `length` bytes. The
    /// body's `Content-Length` is known in advance, so ingestd can refuse an upload over its
    /// cap before reading it; nothing of `file` is held in memory beyond reqwest's chunks.
    ///
    /// # Errors
    /// [`crate::ClientError::Remote`] with ingestd's answer (409 `schema_drift` with a
    /// [`lakehouse_api::SchemaDriftDetails`] as details, 400 `malformed_csv`, 413, 503
    /// `busy`, ...); [`crate::ClientError::Transport`] when ingestd does not answer or `file`
    /// fails while it is sent; [`crate::ClientError::Decode`].
    pub async fn ingest(
        &self,
        options: &IngestOptions,
        file: impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
        length: u64,
        filename: &str,
    ) -> Result<IngestResponse> {
        let url = self.endpoint.url("/ingest");
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(file), length)
                .file_name(filename.to_owned())
                .mime_str("text/csv")
                .map_err(|source| crate::ClientError::Transport {
                    url: url.clone(),
                    source,
                })?;
        let form = reqwest::multipart::Form::new().part("file", part);
        let request = self
            .endpoint
            .request(reqwest::Method::POST, &url)
            .query(options)
            .multipart(form);
        let response = send(request, &url, &[]).await?;
        json(response, &url).await
    }

    /// `POST /loads`: starts a load of the files of a configured source matching a pattern
    /// (docs/contract.md section 12); ingestd answers 202 with its id at once.
    ///
    /// # Errors
    /// [`crate::ClientError::Remote`] with ingestd's refusal (400 `invalid_option` for an
    /// unknown source, a pattern that leaves the source or a mode other than `append`;
    /// `invalid_name`; 401/403; 503 `unavailable`); transport and decode errors.
    pub async fn load(&self, request: &LoadCreateRequest) -> Result<LoadCreateResponse> {
        let url = self.endpoint.url("/loads");
        let request = self
            .endpoint
            .request(reqwest::Method::POST, &url)
            .json(request);
        json(send(request, &url, &[]).await?, &url).await
    }

    /// `POST /loads?wait=true`: as [`IngestdClient::load`], answering once the load has
    /// ended, with its final state (no timeout: a load of many files takes long).
    ///
    /// # Errors
    /// As [`IngestdClient::load`].
    pub async fn load_and_wait(&self, request: &LoadCreateRequest) -> Result<LoadGetResponse> {
        let url = self.endpoint.url("/loads");
        let request = self
            .endpoint
            .request(reqwest::Method::POST, &url)
            .query(&[("wait", "true")])
            .json(request);
        json(send(request, &url, &[]).await?, &url).await
    }

    /// `GET /loads/{id}`: where a load stands, file by file.
    ///
    /// # Errors
    /// 404 `not_found` for a load this ingestd does not know (another replica's, or one from
    /// before a restart); transport and decode errors.
    pub async fn load_get(&self, id: &str) -> Result<LoadGetResponse> {
        self.endpoint.get_json(&format!("/loads/{id}")).await
    }

    /// `GET /loads`: the loads this ingestd ran since it started, newest first.
    ///
    /// # Errors
    /// 401/403; transport and decode errors.
    pub async fn loads(&self) -> Result<LoadListResponse> {
        self.endpoint.get_json("/loads").await
    }

    /// `POST /datasets/{name}/compact[?dry_run=true]` (docs/contract.md section 10): what
    /// the compaction did, or would do with `dry_run`.
    ///
    /// # Errors
    /// [`crate::ClientError::Remote`] with ingestd's answer (404 `not_found`, 409
    /// `conflict`, 503 `busy`, ...); transport and decode errors.
    pub async fn compact(
        &self,
        name: &lakehouse_api::DatasetName,
        dry_run: bool,
    ) -> Result<lakehouse_api::CompactResponse> {
        let url = self
            .endpoint
            .url(&format!("/datasets/{}/compact", name.as_str()));
        let mut request = self.endpoint.request(reqwest::Method::POST, &url);
        if dry_run {
            request = request.query(&[("dry_run", "true")]);
        }
        let response = send(request, &url, &[]).await?;
        json(response, &url).await
    }

    /// `GET /readyz`: Ok when ingestd answers 200.
    ///
    /// # Errors
    /// Transport errors or the 503 answer.
    pub async fn ready(&self) -> Result<()> {
        self.endpoint.ready().await
    }
}
