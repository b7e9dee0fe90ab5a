//! The storaged test harness shared by the test files of this directory: the real binary on
//! port 0 (lakehouse-testkit's `Service`), an HTTP client for it, and checks of what it
//! stored.
#![allow(dead_code)] // each test file uses its own share

use lakehouse_testkit::Service;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running `storaged` (killed on drop) and a client for it.
pub struct Server {
    /// The process.
    pub service: Service,
    /// `http://<addr>`.
    pub base: String,
    /// `local`, `memory` or `s3`.
    pub backend: &'static str,
    /// `LAKEHOUSE_STORAGED__ROOT`.
    pub root: PathBuf,
    /// The HTTP client.
    pub client: reqwest::Client,
    /// `(endpoint, bucket)` of the `s3` backend.
    pub s3: Option<(String, String)>,
}

impl Server {
    /// Starts `storaged` with `backend` on `root` and waits for its `listening on` line.
    pub fn start(backend: &'static str, root: &Path) -> Server {
        Server::start_with(backend, root, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with(backend: &'static str, root: &Path, env: &[(&str, &str)]) -> Server {
        let mut envs: Vec<(&str, String)> =
            env.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        envs.extend([
            ("LAKEHOUSE_STORAGED__BIND", "127.0.0.1:0".to_owned()),
            ("LAKEHOUSE_STORAGED__ROOT", root.display().to_string()),
            ("LAKEHOUSE_STORAGED__BACKEND", backend.to_owned()),
            ("RUST_LOG", "info".to_owned()),
        ]);
        let cwd = root.parent().expect("root has a parent");
        let service = Service::start("storaged", &envs, cwd).expect("start storaged");
        Server {
            base: service.url(),
            service,
            backend,
            root: root.to_owned(),
            client: reqwest::Client::new(),
            s3: None,
        }
    }

    /// `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The URL of object `key`.
    pub fn object(&self, key: &str) -> String {
        self.url(&format!("/objects/{key}"))
    }

    /// Whether the backend is `local`.
    pub fn is_local(&self) -> bool {
        self.backend == "local"
    }

    /// `PUT /objects/{key}` with `body`.
    pub async fn put(&self, key: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .put(self.object(key))
            .body(body)
            .send()
            .await
            .expect("PUT")
    }

    /// `PUT /objects/{key}` with `headers` and `body`.
    pub async fn put_with(
        &self,
        key: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut request = self.client.put(self.object(key)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("PUT")
    }

    /// `GET /objects/{key}`.
    pub async fn get(&self, key: &str) -> reqwest::Response {
        self.client.get(self.object(key)).send().await.expect("GET")
    }

    /// `GET /objects/{key}` with `Range: range`.
    pub async fn get_range(&self, key: &str, range: &str) -> reqwest::Response {
        self.client
            .get(self.object(key))
            .header(header::RANGE, range)
            .send()
            .await
            .expect("GET")
    }

    /// `GET /objects?query`: the status and the JSON body.
    pub async fn list(&self, query: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(self.url(&format!("/objects?{query}")))
            .send()
            .await
            .expect("LIST");
        let status = response.status();
        (status, response.json().await.expect("JSON list body"))
    }

    /// All keys under `prefix`, page by page.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.list(&format!("prefix={prefix}&limit=10000")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        keys_of(&body)
    }

    /// Sends a request with the raw request target (no client-side normalisation of `..`,
    /// `//` or percent-escapes) and returns the status and JSON body.
    pub async fn raw(&self, method: &str, target: &str) -> (u16, Value) {
        let mut stream = tokio::net::TcpStream::connect(self.service.addr)
            .await
            .expect("connect");
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.service.addr
        );
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        let text = String::from_utf8_lossy(&response);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

/// A fresh server with its own temporary directory.
pub struct Fixture {
    /// The server.
    pub server: Server,
    /// Its temporary directory, removed on drop.
    pub _dir: TempDir,
}

/// A storaged with `backend` in a fresh temporary directory.
pub fn start(backend: &'static str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(backend, &dir.path().join("objects"));
    Fixture { server, _dir: dir }
}

/// A storaged on a fresh bucket of the S3 test server, or `None` (skip) without one.
pub async fn start_s3() -> Option<Fixture> {
    let endpoint = lakehouse_testkit::s3_endpoint()?;
    let bucket = lakehouse_testkit::unique_bucket();
    lakehouse_testkit::create_s3_bucket(&endpoint, &bucket)
        .await
        .expect("create test bucket");
    let dir = tempfile::tempdir().expect("tempdir");
    let envs = lakehouse_testkit::s3_storaged_envs(&endpoint, &bucket);
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = Server::start_with("s3", &dir.path().join("objects"), &envs);
    server.s3 = Some((endpoint, bucket));
    Some(Fixture { server, _dir: dir })
}

/// The keys of a `GET /objects` answer, in order.
pub fn keys_of(list: &Value) -> Vec<String> {
    list["objects"]
        .as_array()
        .expect("objects array")
        .iter()
        .map(|o| o["key"].as_str().expect("key").to_owned())
        .collect()
}

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The `error.code` of an error answer.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// Files (not directories) below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.map_while(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// No staging object is visible in LIST, nor (local backend) on disk, nor (s3 backend) an
/// unfinished multipart upload.
pub async fn assert_no_staging_debris(server: &Server) {
    if let Some((endpoint, bucket)) = &server.s3 {
        // Aborts of cancelled uploads run in the background: give them a moment.
        let mut open = usize::MAX;
        for _ in 0..50 {
            open = lakehouse_testkit::s3_incomplete_uploads(endpoint, bucket)
                .await
                .expect("list uploads");
            if open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(open, 0, "unfinished multipart uploads left in {bucket}");
    }
    let all = server.keys("").await;
    assert!(
        all.iter().all(|k| !k.starts_with("_storaged_staging")),
        "{all:?}"
    );
    if server.is_local() {
        let debris = files_under(&server.root.join("_storaged_staging"));
        assert!(debris.is_empty(), "staging debris on disk: {debris:?}");
    }
}
