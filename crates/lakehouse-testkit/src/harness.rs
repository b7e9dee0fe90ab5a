//! [`Harness`]: a [`Trio`] and an HTTP client with the calls ingestd's integration tests make
//! (ingest, read the catalog, list and read what storaged holds, look at the spool).

use crate::{Trio, multipart_content_type, multipart_file, stored_keys};
use serde_json::Value;

/// A running trio (on port 0, in its own temporary directory) and a client to drive it.
#[derive(Debug)]
pub struct Harness {
    /// The three services.
    pub trio: Trio,
    /// The client every call uses.
    pub http: reqwest::Client,
}

impl Harness {
    /// Starts a trio with `envs` added to every process ([`Trio::start`]); a default client.
    ///
    /// # Panics
    /// When the trio does not start (a test cannot go on).
    pub fn start(envs: &[(&str, String)]) -> Harness {
        Harness::with_client(envs, reqwest::Client::new())
    }

    /// As [`Harness::start`] with a client that keeps no idle connection: an answer sent
    /// before an open upload was read closes its connection, which the next request must
    /// not reuse.
    ///
    /// # Panics
    /// When the trio does not start.
    pub fn start_unpooled(envs: &[(&str, String)]) -> Harness {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        Harness::with_client(envs, http)
    }

    fn with_client(envs: &[(&str, String)], http: reqwest::Client) -> Harness {
        Harness {
            trio: Trio::start(envs).expect("trio starts"),
            http,
        }
    }

    /// `POST /ingest?{query}` with `csv` as the `file` field: the status and JSON answer.
    ///
    /// # Panics
    /// When ingestd does not answer or its answer is not JSON.
    pub async fn ingest(&self, query: &str, csv: &[u8]) -> (u16, Value) {
        self.ingest_field(query, "file", csv).await
    }

    /// As [`Harness::ingest`] with the upload in the multipart field `field`.
    ///
    /// # Panics
    /// As [`Harness::ingest`].
    pub async fn ingest_field(&self, query: &str, field: &str, csv: &[u8]) -> (u16, Value) {
        self.ingest_body(query, multipart_file(field, csv).into())
            .await
    }

    /// `POST /ingest?{query}` with a multipart `body` (built whole or streamed): the status
    /// and the JSON answer.
    ///
    /// # Panics
    /// As [`Harness::ingest`].
    pub async fn ingest_body(&self, query: &str, body: reqwest::Body) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/ingest?{query}", self.trio.ingestd.url()))
            .header("content-type", multipart_content_type())
            .body(body)
            .send()
            .await
            .expect("ingestd answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON body"))
    }

    /// `GET url`: the status and the JSON answer (`Null` when the body is not JSON).
    ///
    /// # Panics
    /// When nothing answers.
    pub async fn get(&self, url: String) -> (u16, Value) {
        let response = self.http.get(url).send().await.expect("answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// ingestd's `GET /metrics` page (the Prometheus text format).
    ///
    /// # Panics
    /// When ingestd does not answer.
    pub async fn ingestd_metrics(&self) -> String {
        let url = format!("{}/metrics", self.trio.ingestd.url());
        let response = self.http.get(url).send().await.expect("metrics");
        response.text().await.expect("metrics text")
    }

    /// `GET {catalogd}{path}`, as [`Harness::get`].
    ///
    /// # Panics
    /// When catalogd does not answer.
    pub async fn catalog(&self, path: &str) -> (u16, Value) {
        self.get(format!("{}{path}", self.trio.catalogd.url()))
            .await
    }

    /// The latest manifest of dataset `name`.
    ///
    /// # Panics
    /// When catalogd does not answer it with a 200.
    pub async fn latest_manifest(&self, name: &str) -> Value {
        let (status, manifest) = self.catalog(&format!("/datasets/{name}")).await;
        assert_eq!(status, 200, "GET /datasets/{name}: {manifest}");
        manifest
    }

    /// Every key storaged holds under `prefix` (`""`: all of them).
    ///
    /// # Panics
    /// As [`stored_keys`].
    pub async fn stored_keys(&self, prefix: &str) -> Vec<String> {
        stored_keys(&self.trio.storaged.url(), prefix).await
    }

    /// Every key storaged holds under `datasets/` but the Iceberg metadata files
    /// (`datasets/<name>/metadata/`, which every committed version adds; docs/contract.md section 8).
    ///
    /// # Panics
    /// As [`stored_keys`].
    pub async fn stored_objects(&self) -> Vec<String> {
        self.stored_keys("datasets/")
            .await
            .into_iter()
            .filter(|key| !key.contains("/metadata/"))
            .collect()
    }

    /// The bytes storaged holds under `key`.
    ///
    /// # Panics
    /// When storaged does not answer it with a 200.
    pub async fn stored_bytes(&self, key: &str) -> bytes::Bytes {
        let response = self
            .http
            .get(format!("{}/objects/{key}", self.trio.storaged.url()))
            .send()
            .await
            .expect("storaged answers");
        assert_eq!(response.status(), 200, "GET /objects/{key}");
        response.bytes().await.expect("body")
    }

    /// The names of the files in ingestd's spool directory (`data/spool`).
    pub fn spool_files(&self) -> Vec<String> {
        std::fs::read_dir(self.trio.dir.path().join("data/spool"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The `schema.fields` of an ingest answer or a manifest as `name:type` strings, in order
/// (type names as in docs/contract.md section 4's fingerprint: `int64`, `utf8`, ...).
///
/// # Panics
/// When `body` has no `schema.fields` array.
pub fn field_types(body: &Value) -> Vec<String> {
    body["schema"]["fields"]
        .as_array()
        .expect("schema.fields")
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["name"].as_str().unwrap_or(""),
                f["type"].as_str().unwrap_or("")
            )
        })
        .collect()
}
