//! Client of storaged's object API.

use crate::{ClientError, Endpoint, Result, json, send};
use bytes::Bytes;
use lakehouse_api::{
    CHECKSUM_HEADER, ObjectKey, ObjectListResponse, ObjectPutResponse, Sha256Digest,
    StorageLocation,
};
use reqwest::header;

/// Client of storaged (`/objects`), cheap to clone.
#[derive(Debug, Clone)]
pub struct StoragedClient {
    endpoint: Endpoint,
}

/// How a PUT should behave.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Send `If-None-Match: *`: fail with [`PutOutcome::AlreadyExists`] if the key exists.
    pub create_only: bool,
    /// Send `x-checksum-sha256`: storaged refuses the body (400 `digest_mismatch`) unless its
    /// SHA-256 is this.
    pub sha256: Option<Sha256Digest>,
}

/// Result of a PUT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// 201: the object was written.
    Created,
    /// 412 on a create-only PUT: the key already exists and nothing was written.
    AlreadyExists,
}

/// What `HEAD /objects/{key}` tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectHead {
    /// Size in bytes (`Content-Length`).
    pub size: u64,
    /// `ETag`, when sent.
    pub etag: Option<String>,
}

impl StoragedClient {
    /// A client of the storaged at `base_url` (`http://127.0.0.1:8083`).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] unless it is an `http(s)://` URL.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(StoragedClient {
            endpoint: Endpoint::new(base_url)?,
        })
    }

    /// Sends `Authorization: Bearer <token>` on every request (the service token of issue
    /// 5's auth); `None` or an empty token sends none.
    pub fn with_token(self, token: Option<String>) -> Self {
        StoragedClient {
            endpoint: self.endpoint.with_token(token),
        }
    }

    /// The base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        &self.endpoint.base
    }

    fn object_url(&self, key: &ObjectKey) -> String {
        self.endpoint.url(&format!("/objects/{}", key.as_str()))
    }

    /// `PUT /objects/{key}` with an in-memory body (small objects such as manifests).
    ///
    /// # Errors
    /// [`ClientError::Remote`] for storaged's error answers (400 `digest_mismatch`, ...),
    /// [`ClientError::Transport`] when storaged does not answer.
    pub async fn put_bytes(
        &self,
        key: &ObjectKey,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<PutOutcome> {
        let length = body.len() as u64;
        self.put(key, reqwest::Body::from(body), length, options)
            .await
    }

    /// `PUT /objects/{key}` streaming `body` of `length` bytes (sent as `Content-Length`), so
    /// a large object never sits in memory.
    ///
    /// # Errors
    /// As [`StoragedClient::put_bytes`].
    pub async fn put(
        &self,
        key: &ObjectKey,
        body: reqwest::Body,
        length: u64,
        options: &PutOptions,
    ) -> Result<PutOutcome> {
        let url = self.object_url(key);
        let mut request = self
            .endpoint
            .request(reqwest::Method::PUT, &url)
            .header(header::CONTENT_LENGTH, length)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        if options.create_only {
            request = request.header(header::IF_NONE_MATCH, "*");
        }
        if let Some(sha) = &options.sha256 {
            request = request.header(CHECKSUM_HEADER, sha.as_str());
        }
        let accept: &[u16] = if options.create_only { &[412] } else { &[] };
        let response = send(request, &url, accept).await?;
        Ok(if response.status().as_u16() == 412 {
            PutOutcome::AlreadyExists
        } else {
            PutOutcome::Created
        })
    }

    /// `POST /objects/{dir}?suffix=`: streams `body`, of a length not known in advance (sent
    /// chunked), into the object named by its own SHA-256, `{dir}/{hex}{suffix}`. Returns
    /// what is stored and whether this call created it (201) or found the same bytes
    /// already there (200). A `body` stream that ends with an error aborts the request and
    /// storaged keeps nothing.
    ///
    /// # Errors
    /// [`ClientError::Remote`] for storaged's error answers (400 `invalid_key`, ...),
    /// [`ClientError::Transport`] when storaged does not answer or the body broke off,
    /// [`ClientError::Decode`] for an answer that is not the expected JSON.
    pub async fn put_content_addressed(
        &self,
        dir: &ObjectKey,
        suffix: &str,
        body: reqwest::Body,
    ) -> Result<(ObjectPutResponse, bool)> {
        let url = self.object_url(dir);
        let request = self
            .endpoint
            .request(reqwest::Method::POST, &url)
            .query(&[("suffix", suffix)])
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .body(body);
        let response = send(request, &url, &[]).await?;
        let created = response.status() == reqwest::StatusCode::CREATED;
        Ok((json(response, &url).await?, created))
    }

    /// `GET /objects/{key}` read whole into memory (manifests; not for Parquet objects).
    ///
    /// # Errors
    /// [`ClientError::Remote`] with code `not_found` for a missing key; transport errors.
    pub async fn get_bytes(&self, key: &ObjectKey) -> Result<Bytes> {
        let url = self.object_url(key);
        let response = send(self.endpoint.request(reqwest::Method::GET, &url), &url, &[]).await?;
        response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// `GET /objects/{key}` as a stream of chunks, for objects of any size: the object's
    /// size (`Content-Length`) and its bytes as they arrive.
    ///
    /// # Errors
    /// [`ClientError::Remote`] with code `not_found` for a missing key; transport errors
    /// (also as items of the stream, when the body breaks off).
    pub async fn get_stream(
        &self,
        key: &ObjectKey,
    ) -> Result<(
        Option<u64>,
        futures::stream::BoxStream<'static, Result<Bytes>>,
    )> {
        use futures::StreamExt;
        let url = self.object_url(key);
        let response = send(self.endpoint.request(reqwest::Method::GET, &url), &url, &[]).await?;
        let size = response.content_length();
        let chunks = response
            .bytes_stream()
            .map(move |chunk| {
                chunk.map_err(|source| ClientError::Transport {
                    url: url.clone(),
                    source,
                })
            })
            .boxed();
        Ok((size, chunks))
    }

    /// `GET /objects/{key}` with `Range: bytes=start-(end-1)`: the bytes `start..end` of the
    /// object (fewer when the object ends first), read whole into memory (footers, pages).
    /// An empty range (`end <= start`) is empty bytes, without a request.
    ///
    /// # Errors
    /// [`ClientError::Remote`] with `not_found` for a missing key or storaged's 416 for a
    /// range past the end; [`ClientError::UnexpectedStatus`] when the answer is not a 206
    /// (a server that ignored the range would send the whole object); transport errors.
    pub async fn get_range(&self, key: &ObjectKey, start: u64, end: u64) -> Result<Bytes> {
        if end <= start {
            return Ok(Bytes::new());
        }
        let url = self.object_url(key);
        let request = self
            .endpoint
            .request(reqwest::Method::GET, &url)
            .header(header::RANGE, format!("bytes={start}-{}", end - 1));
        let response = send(request, &url, &[]).await?;
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT {
            return Err(ClientError::UnexpectedStatus {
                url,
                status: response.status().as_u16(),
                expected: 206,
            });
        }
        response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { url, source })
    }

    /// `HEAD /objects/{key}`.
    ///
    /// # Errors
    /// [`ClientError::Remote`] with code `not_found` for a missing key; transport errors.
    pub async fn head(&self, key: &ObjectKey) -> Result<ObjectHead> {
        let url = self.object_url(key);
        let response = send(
            self.endpoint.request(reqwest::Method::HEAD, &url),
            &url,
            &[],
        )
        .await?;
        let headers = response.headers();
        let size = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let etag = headers
            .get(header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(ObjectHead { size, etag })
    }

    /// `DELETE /objects/{key}`.
    ///
    /// # Errors
    /// [`ClientError::Remote`] with code `not_found` for a missing key; transport errors.
    pub async fn delete(&self, key: &ObjectKey) -> Result<()> {
        let url = self.object_url(key);
        send(
            self.endpoint.request(reqwest::Method::DELETE, &url),
            &url,
            &[],
        )
        .await
        .map(drop)
    }

    /// One page of `GET /objects?prefix=&start_after=&limit=`: keys with the string prefix
    /// `prefix`, ascending, after `start_after`.
    ///
    /// # Errors
    /// Storaged's error answers; transport errors; [`ClientError::Decode`].
    pub async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ObjectListResponse> {
        let url = self.endpoint.url("/objects");
        let mut query: Vec<(&str, String)> = vec![("prefix", prefix.to_owned())];
        if let Some(after) = start_after {
            query.push(("start_after", after.to_owned()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let response = send(
            self.endpoint
                .request(reqwest::Method::GET, &url)
                .query(&query),
            &url,
            &[],
        )
        .await?;
        json(response, &url).await
    }

    /// `GET /objects?prefix=&delimiter=/`: the "directories" right under `prefix` (empty or
    /// ending in `/`), each as `<prefix><dir>/`, ascending.
    ///
    /// # Errors
    /// Storaged's error answers; transport errors; [`ClientError::Decode`].
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let url = self.endpoint.url("/objects");
        let query = [("prefix", prefix), ("delimiter", "/")];
        let response = send(
            self.endpoint
                .request(reqwest::Method::GET, &url)
                .query(&query),
            &url,
            &[],
        )
        .await?;
        let page: ObjectListResponse = json(response, &url).await?;
        Ok(page.common_prefixes)
    }

    /// `GET /location`: the storage's URI of its root and, for s3, how engines reach it
    /// (docs/contract.md section 8).
    ///
    /// # Errors
    /// Storaged's error answers; transport errors; [`ClientError::Decode`].
    pub async fn location(&self) -> Result<StorageLocation> {
        self.endpoint.get_json("/location").await
    }

    /// `GET /readyz`: Ok when storaged answers 200.
    ///
    /// # Errors
    /// Transport errors or the 503 answer.
    pub async fn ready(&self) -> Result<()> {
        self.endpoint.ready().await
    }
}
