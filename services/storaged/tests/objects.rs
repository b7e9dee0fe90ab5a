//! storaged over HTTP: the real binary on port 0, one conformance suite run against the
//! `local`, `memory` and `s3` backends (docs/contract.md section 6), plus local-only durability tests.
//!
//! The `s3` cases need an S3-compatible server: `scripts/test` starts one (moto) and sets
//! `LAKEHOUSE_TEST_S3_ENDPOINT`; each case gets a fresh bucket. Without it they skip, except
//! under `CI`, where they fail.

use bytes::Bytes;
use futures::StreamExt;
use lakehouse_testkit::Service;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Harness: the real binary on port 0 (lakehouse-testkit's `Service`) and an HTTP client.
// ---------------------------------------------------------------------------------------------

/// A running `storaged` (killed on drop) and a client for it.
struct Server {
    service: Service,
    base: String,
    backend: &'static str,
    root: PathBuf,
    client: reqwest::Client,
    /// `(endpoint, bucket)` of the `s3` backend.
    s3: Option<(String, String)>,
}

impl Server {
    /// Starts `storaged` with `backend` on `root` and waits for its `listening on` line.
    fn start(backend: &'static str, root: &Path) -> Server {
        Server::start_with(backend, root, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    fn start_with(backend: &'static str, root: &Path, env: &[(&str, &str)]) -> Server {
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn object(&self, key: &str) -> String {
        self.url(&format!("/objects/{key}"))
    }

    fn is_local(&self) -> bool {
        self.backend == "local"
    }

    async fn put(&self, key: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .put(self.object(key))
            .body(body)
            .send()
            .await
            .expect("PUT")
    }

    async fn put_with(
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

    async fn get(&self, key: &str) -> reqwest::Response {
        self.client.get(self.object(key)).send().await.expect("GET")
    }

    async fn get_range(&self, key: &str, range: &str) -> reqwest::Response {
        self.client
            .get(self.object(key))
            .header(header::RANGE, range)
            .send()
            .await
            .expect("GET")
    }

    async fn list(&self, query: &str) -> (StatusCode, Value) {
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
    async fn keys(&self, prefix: &str) -> Vec<String> {
        let (status, body) = self.list(&format!("prefix={prefix}&limit=10000")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        keys_of(&body)
    }

    /// Sends a request with the raw request target (no client-side normalisation of `..`,
    /// `//` or percent-escapes) and returns the status and JSON body.
    async fn raw(&self, method: &str, target: &str) -> (u16, Value) {
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
struct Fixture {
    server: Server,
    _dir: TempDir,
}

fn start(backend: &'static str) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(backend, &dir.path().join("objects"));
    Fixture { server, _dir: dir }
}

/// A storaged on a fresh bucket of the S3 test server, or `None` (skip) without one.
async fn start_s3() -> Option<Fixture> {
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

fn keys_of(list: &Value) -> Vec<String> {
    list["objects"]
        .as_array()
        .expect("objects array")
        .iter()
        .map(|o| o["key"].as_str().expect("key").to_owned())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error body");
    body["error"]["code"]
        .as_str()
        .expect("error.code")
        .to_owned()
}

/// Files (not directories) below `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
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
async fn assert_no_staging_debris(server: &Server) {
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

// ---------------------------------------------------------------------------------------------
// The conformance suite: every case runs against both backends.
// ---------------------------------------------------------------------------------------------

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::start("local");
                    super::$case(&fixture.server).await;
                }
            )*
        }
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fixture = super::start("memory");
                    super::$case(&fixture.server).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(fixture) = super::start_s3().await else { return };
                    super::$case(&fixture.server).await;
                }
            )*
        }
    };
}

conformance!(
    put_get_round_trip_with_headers,
    create_only_conflict_keeps_the_original,
    put_without_if_none_match_overwrites,
    checksum_is_verified_and_a_mismatch_stores_nothing,
    ranges_are_served_and_checked,
    list_paginates_in_key_order_with_string_prefixes,
    delete_then_not_found,
    invalid_keys_are_refused_before_any_io,
    large_object_streams_both_ways,
    concurrent_create_only_puts_have_one_winner,
    large_mismatch_or_conflict_stores_nothing,
    content_addressed_post_names_the_object_by_its_bytes,
    health_and_readiness,
);

async fn put_get_round_trip_with_headers(server: &Server) {
    let body = b"hello, lakehouse".to_vec();
    let response = server.put("rt/a=1/hello.bin", body.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["key"], "rt/a=1/hello.bin");
    assert_eq!(created["size"], body.len());
    assert_eq!(created["sha256"], sha256_hex(&body));

    let response = server.get("rt/a=1/hello.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers[header::CONTENT_LENGTH],
        body.len().to_string().as_str()
    );
    assert_eq!(headers[header::ACCEPT_RANGES], "bytes");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "{etag}"
    );
    let modified = headers[header::LAST_MODIFIED].to_str().unwrap();
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert_eq!(response.bytes().await.unwrap(), body);

    let response = server
        .client
        .head(server.object("rt/a=1/hello.bin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    for name in [
        header::CONTENT_LENGTH,
        header::ETAG,
        header::ACCEPT_RANGES,
        header::LAST_MODIFIED,
    ] {
        assert_eq!(response.headers()[&name], headers[&name], "{name}");
    }
    assert!(response.bytes().await.unwrap().is_empty());

    // The empty object is an object too.
    assert_eq!(
        server.put("rt/empty", Vec::new()).await.status(),
        StatusCode::CREATED
    );
    let response = server.get("rt/empty").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "0");
    assert!(response.bytes().await.unwrap().is_empty());

    if server.is_local() {
        let on_disk = std::fs::read(server.root.join("rt/a=1/hello.bin")).unwrap();
        assert_eq!(on_disk, body);
    }
}

async fn create_only_conflict_keeps_the_original(server: &Server) {
    let create = [("if-none-match", "*")];
    let first = server.put_with("co/key", &create, "original").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = server.put_with("co/key", &create, "intruder").await;
    assert_eq!(second.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(error_code(second).await, "already_exists");
    assert_eq!(
        server.get("co/key").await.bytes().await.unwrap(),
        "original"
    );
    assert_no_staging_debris(server).await;

    let bad = server
        .put_with("co/other", &[("if-none-match", "\"abc\"")], "x")
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad).await, "invalid_request");
}

async fn put_without_if_none_match_overwrites(server: &Server) {
    assert_eq!(
        server.put("ow/key", "one").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        server.put("ow/key", "two, longer").await.status(),
        StatusCode::CREATED
    );
    let response = server.get("ow/key").await;
    assert_eq!(response.headers()[header::CONTENT_LENGTH], "11");
    assert_eq!(response.bytes().await.unwrap(), "two, longer");
    assert_eq!(server.keys("ow/").await, ["ow/key"]);
}

async fn checksum_is_verified_and_a_mismatch_stores_nothing(server: &Server) {
    let body = b"checked bytes";
    let good = sha256_hex(body);
    let response = server
        .put_with("ck/good", &[("x-checksum-sha256", &good)], body.to_vec())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["sha256"], good.as_str());

    let wrong = sha256_hex(b"other bytes");
    let response = server
        .put_with(
            "ck/bad",
            &[("x-checksum-sha256", &wrong), ("if-none-match", "*")],
            body.to_vec(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "digest_mismatch");
    assert_eq!(error["error"]["details"]["expected"], wrong.as_str());
    assert_eq!(error["error"]["details"]["actual"], good.as_str());
    assert_eq!(server.get("ck/bad").await.status(), StatusCode::NOT_FOUND);
    assert_no_staging_debris(server).await;
    if server.is_local() {
        assert!(!server.root.join("ck/bad").exists());
    }

    // A mismatching overwrite leaves the old object as it was.
    let response = server
        .put_with("ck/good", &[("x-checksum-sha256", &wrong)], "replacement")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        server.get("ck/good").await.bytes().await.unwrap(),
        &body[..]
    );

    let response = server
        .put_with("ck/fmt", &[("x-checksum-sha256", "not-hex")], "x")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "invalid_request");
    assert_eq!(server.get("ck/fmt").await.status(), StatusCode::NOT_FOUND);
}

async fn ranges_are_served_and_checked(server: &Server) {
    assert_eq!(
        server.put("rg/ten", "0123456789").await.status(),
        StatusCode::CREATED
    );
    for (range, content, content_range) in [
        ("bytes=2-5", "2345", "bytes 2-5/10"),
        ("bytes=7-", "789", "bytes 7-9/10"),
        ("bytes=-3", "789", "bytes 7-9/10"),
        ("bytes=8-100", "89", "bytes 8-9/10"),
        ("bytes=-100", "0123456789", "bytes 0-9/10"),
    ] {
        let response = server.get_range("rg/ten", range).await;
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            response.headers()[header::CONTENT_RANGE],
            content_range,
            "{range}"
        );
        assert_eq!(
            response.headers()[header::CONTENT_LENGTH],
            content.len().to_string().as_str()
        );
        assert_eq!(response.bytes().await.unwrap(), content, "{range}");
    }
    for range in ["bytes=10-", "bytes=10-20", "bytes=5-2", "bytes=abc"] {
        let response = server.get_range("rg/ten", range).await;
        assert_eq!(
            response.status(),
            StatusCode::RANGE_NOT_SATISFIABLE,
            "{range}"
        );
        assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */10");
        assert_eq!(error_code(response).await, "invalid_range");
    }
    // Several ranges: the whole object with 200.
    let response = server.get_range("rg/ten", "bytes=0-1,4-5").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), "0123456789");
    // A range of a missing object is a 404, of the empty object a 416.
    assert_eq!(
        server.get_range("rg/missing", "bytes=0-1").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.put("rg/empty", "").await.status(),
        StatusCode::CREATED
    );
    let response = server.get_range("rg/empty", "bytes=-1").await;
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(response.headers()[header::CONTENT_RANGE], "bytes */0");
}

async fn list_paginates_in_key_order_with_string_prefixes(server: &Server) {
    let keys = [
        "ls/flights/2024/b.parquet",
        "ls/flights/2024/a.parquet",
        "ls/fleet.csv",
        "ls/f/x",
        "ls/flights-old/z",
        "ls/other/y",
    ];
    for key in keys {
        assert_eq!(
            server.put(key, key.to_owned()).await.status(),
            StatusCode::CREATED
        );
    }
    let mut expected: Vec<&str> = keys.to_vec();
    expected.sort();

    // Three pages of two give every key exactly once, ascending.
    let mut seen = Vec::new();
    let mut start_after: Option<String> = None;
    for page in 0..3 {
        let query = match &start_after {
            None => "prefix=ls/&limit=2".to_owned(),
            Some(after) => format!("prefix=ls/&limit=2&start_after={after}"),
        };
        let (status, body) = server.list(&query).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page_keys = keys_of(&body);
        assert_eq!(page_keys.len(), 2, "page {page}: {body}");
        seen.extend(page_keys);
        start_after = body["next_start_after"].as_str().map(str::to_owned);
        if page < 2 {
            assert_eq!(start_after.as_deref(), seen.last().map(String::as_str));
        } else {
            assert!(start_after.is_none(), "{body}");
        }
    }
    assert_eq!(seen, expected);

    // String-prefix semantics: `ls/fl` matches inside a segment, `ls/f/` does not.
    assert_eq!(
        server.keys("ls/fl").await,
        [
            "ls/fleet.csv",
            "ls/flights-old/z",
            "ls/flights/2024/a.parquet",
            "ls/flights/2024/b.parquet",
        ]
    );
    assert_eq!(server.keys("ls/flights/").await.len(), 2);
    assert_eq!(server.keys("ls/f/").await, ["ls/f/x"]);
    assert!(server.keys("ls/nothing").await.is_empty());
    assert!(server.keys("ls/../").await.is_empty());
    assert!(server.keys("absent/dir/").await.is_empty());
    // A prefix that runs through an object as if it were a directory matches nothing.
    assert!(server.keys("ls/fleet.csv/").await.is_empty());
    assert_eq!(server.keys("ls/fleet.csv").await, ["ls/fleet.csv"]);

    let (_, body) = server.list("prefix=ls/flights/2024/a.parquet").await;
    let object = &body["objects"][0];
    assert_eq!(object["size"], "ls/flights/2024/a.parquet".len());
    assert!(object["etag"].as_str().is_some_and(|e| e.starts_with('"')));
    let modified = object["last_modified"].as_str().unwrap();
    assert!(chrono_like_rfc3339(modified), "{modified}");

    for bad in ["limit=0", "limit=10001", "limit=abc", "color=red"] {
        let (status, body) = server.list(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(body["error"]["code"], "invalid_option", "{bad}");
    }
}

fn chrono_like_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 20 && b[4] == b'-' && b[10] == b'T' && s.ends_with('Z')
}

async fn delete_then_not_found(server: &Server) {
    assert_eq!(
        server.put("del/key", "bye").await.status(),
        StatusCode::CREATED
    );
    let response = server
        .client
        .delete(server.object("del/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let response = server.get("del/key").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(body["error"]["details"]["key"], "del/key");
    let response = server
        .client
        .delete(server.object("del/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = server
        .client
        .head(server.object("del/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(server.keys("del/").await.is_empty());
}

async fn invalid_keys_are_refused_before_any_io(server: &Server) {
    let long = "a".repeat(1025);
    let targets = [
        "/objects/..".to_owned(),
        "/objects/a/../b".to_owned(),
        "/objects/a//b".to_owned(),
        "/objects/%2e%2e".to_owned(),
        "/objects/a/%2E%2E/b".to_owned(),
        "/objects/a%5Cb".to_owned(),
        "/objects/a%20b".to_owned(),
        "/objects/a/".to_owned(),
        "/objects/%FF".to_owned(),
        format!("/objects/{long}"),
        "/objects/_storaged_staging/x".to_owned(),
        "/objects/_storaged_staging".to_owned(),
    ];
    for target in &targets {
        for method in ["PUT", "GET", "DELETE"] {
            let (status, body) = server.raw(method, target).await;
            assert_eq!(status, 400, "{method} {target}: {body}");
            assert_eq!(
                body["error"]["code"], "invalid_key",
                "{method} {target}: {body}"
            );
            assert!(
                body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }
    // 1024 bytes is still a key (segments of at most 255 bytes fit every backend).
    let longest = vec!["b".repeat(204); 5].join("/");
    assert_eq!(longest.len(), 1024);
    let (status, body) = server.raw("PUT", &format!("/objects/{longest}")).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(server.keys("").await, [longest]);
}

/// 64 MiB of deterministic pseudo-random bytes, as a stream of 64 KiB chunks.
fn generated(total_chunks: u64) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::iter(0..total_chunks).map(|i| Ok(chunk(i)))
}

fn chunk(i: u64) -> Bytes {
    let mut state = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(64 * 1024);
    while out.len() < 64 * 1024 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

async fn large_object_streams_both_ways(server: &Server) {
    const CHUNKS: u64 = 1024; // 64 MiB
    let mut hasher = Sha256::new();
    for i in 0..CHUNKS {
        hasher.update(chunk(i));
    }
    let expected = hex::encode(hasher.finalize());

    let response = server
        .client
        .put(server.object("big/blob.bin"))
        .header("x-checksum-sha256", &expected)
        .header("if-none-match", "*")
        .body(reqwest::Body::wrap_stream(generated(CHUNKS)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["size"], CHUNKS * 64 * 1024);
    assert_eq!(created["sha256"], expected.as_str());

    let response = server.get("big/blob.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_LENGTH],
        (CHUNKS * 64 * 1024).to_string().as_str()
    );
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    while let Some(piece) = body.next().await {
        let piece = piece.unwrap();
        received += piece.len() as u64;
        hasher.update(&piece);
    }
    assert_eq!(received, CHUNKS * 64 * 1024);
    assert_eq!(hex::encode(hasher.finalize()), expected);

    // The local and s3 backends never hold the body in memory (docs/contract.md invariant 5); s3
    // buffers up to three 8 MiB parts.
    let bound_kib = match server.backend {
        "local" => Some(32 * 1024),
        "s3" => Some(56 * 1024),
        _ => None,
    };
    if let (Some(bound), Some(peak)) = (bound_kib, server.service.peak_rss_kib()) {
        eprintln!("storaged peak RSS: {peak} KiB");
        assert!(
            peak < bound,
            "storaged peak RSS {peak} KiB for a 64 MiB object"
        );
    }
    assert_no_staging_debris(server).await;
}

/// Bodies larger than the s3 backend's single-PUT threshold (8 MiB) take its multipart path:
/// a checksum mismatch or a taken key must abort the upload and leave nothing visible.
async fn large_mismatch_or_conflict_stores_nothing(server: &Server) {
    const CHUNKS: u64 = 320; // 20 MiB
    let mut hasher = Sha256::new();
    for i in 0..CHUNKS {
        hasher.update(chunk(i));
    }
    let good = hex::encode(hasher.finalize());
    let wrong = sha256_hex(b"not these bytes");
    let put = |key: &'static str, checksum: String| {
        server
            .client
            .put(server.object(key))
            .header("x-checksum-sha256", checksum)
            .header("if-none-match", "*")
            .body(reqwest::Body::wrap_stream(generated(CHUNKS)))
            .send()
    };
    let response = put("large/bad", wrong.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "digest_mismatch");
    assert_eq!(
        server.get("large/bad").await.status(),
        StatusCode::NOT_FOUND
    );

    let response = put("large/taken", good.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = put("large/taken", good.clone()).await.unwrap();
    assert_eq!(response.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(error_code(response).await, "already_exists");
    assert_eq!(server.keys("large/").await, ["large/taken"]);
    assert_no_staging_debris(server).await;
}

/// `POST /objects/{dir}?suffix=`: a streamed body of unknown length lands under
/// `{dir}/{its sha256}{suffix}` (201), the same bytes again find it there (200), and a body
/// that breaks off, a checksum mismatch or a bad `dir`/`suffix` store nothing.
async fn content_addressed_post_names_the_object_by_its_bytes(server: &Server) {
    const CHUNKS: u64 = 320; // 20 MiB: several parts on every backend
    let mut hasher = Sha256::new();
    for i in 0..CHUNKS {
        hasher.update(chunk(i));
    }
    let digest = hex::encode(hasher.finalize());
    let post = |dir: &str, query: &str, body: reqwest::Body| {
        server
            .client
            .post(server.url(&format!("/objects/{dir}{query}")))
            .body(body)
            .send()
    };
    let body = || reqwest::Body::wrap_stream(generated(CHUNKS));
    let response = post("ca/dir", "?suffix=.parquet", body()).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored: Value = response.json().await.unwrap();
    let key = format!("ca/dir/{digest}.parquet");
    assert_eq!(stored["key"], key.as_str());
    assert_eq!(stored["sha256"], digest.as_str());
    assert_eq!(stored["size"], CHUNKS * 64 * 1024);
    let read = server.get(&key).await.bytes().await.unwrap();
    assert_eq!(sha256_hex(&read), digest);

    let again = post("ca/dir", "?suffix=.parquet", body()).await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, stored);

    // A body that breaks off after 4 MiB.
    let broken = generated(64).chain(futures::stream::once(async {
        Err(std::io::Error::other("client gave up"))
    }));
    let result = post("ca/broken", "", reqwest::Body::wrap_stream(broken)).await;
    assert!(result.is_err() || !result.unwrap().status().is_success());
    let response = server
        .client
        .post(server.url("/objects/ca/sum"))
        .header("x-checksum-sha256", sha256_hex(b"other bytes"))
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "digest_mismatch");
    for (dir, query) in [
        ("ca/dir", "?suffix=a/b"),
        ("ca/dir", "?suffix=a%20b"),
        ("ca/a%20b", ""),
        ("_storaged_staging", ""),
    ] {
        let response = post(dir, query, reqwest::Body::from("x")).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{dir}{query}");
        assert_eq!(error_code(response).await, "invalid_key", "{dir}{query}");
    }
    assert_eq!(server.keys("ca/").await, [key]);
    assert_no_staging_debris(server).await;
}

async fn concurrent_create_only_puts_have_one_winner(server: &Server) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let client = server.client.clone();
            let url = server.object("race/key");
            tokio::spawn(async move {
                let response = client
                    .put(url)
                    .header("if-none-match", "*")
                    .body(format!("writer {i}"))
                    .send()
                    .await
                    .unwrap();
                (i, response.status())
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, status) = task.await.unwrap();
        match status {
            StatusCode::CREATED => winners.push(i),
            StatusCode::PRECONDITION_FAILED => {}
            other => panic!("writer {i} got {other}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = server.get("race/key").await.bytes().await.unwrap();
    assert_eq!(stored, format!("writer {}", winners[0]));
    assert_no_staging_debris(server).await;
}

async fn health_and_readiness(server: &Server) {
    for path in ["/healthz", "/readyz"] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let response = server.client.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(response).await, "not_found");
}

// ---------------------------------------------------------------------------------------------
// Local backend only: durability, crash debris, path conflicts, SIGTERM.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_objects_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    let body: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    {
        let server = Server::start("local", &root);
        let response = server
            .put_with(
                "durable/x=1/part.bin",
                &[("if-none-match", "*")],
                body.clone(),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(
            std::fs::read(root.join("durable/x=1/part.bin")).unwrap(),
            body
        );
        // Dropping the server sends SIGKILL: no shutdown path runs.
    }
    let server = Server::start("local", &root);
    let response = server.get("durable/x=1/part.bin").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap(), body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_staging_debris_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    std::fs::create_dir_all(root.join("_storaged_staging")).unwrap();
    std::fs::write(root.join("_storaged_staging/0123abcd"), "half an upload").unwrap();
    std::fs::write(root.join("_storaged_staging/0123abcd#1"), "a part file").unwrap();
    let server = Server::start("local", &root);
    assert!(files_under(&root.join("_storaged_staging")).is_empty());
    assert!(server.keys("").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_key_path_conflicts_are_client_errors() {
    let fixture = start("local");
    let server = &fixture.server;
    assert_eq!(
        server.put("pc/a", "file").await.status(),
        StatusCode::CREATED
    );
    let below_a_file = server.put("pc/a/b", "x").await;
    assert_eq!(below_a_file.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(below_a_file).await, "invalid_key");
    assert_eq!(
        server.put("pc/d/e", "x").await.status(),
        StatusCode::CREATED
    );
    let over_a_directory = server.put("pc/d", "x").await;
    assert_eq!(over_a_directory.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(over_a_directory).await, "invalid_key");
    let create_over_a_directory = server
        .put_with("pc/d", &[("if-none-match", "*")], "x")
        .await;
    assert_eq!(create_over_a_directory.status(), StatusCode::BAD_REQUEST);
    // A directory is not an object; a segment longer than a file name cannot be one.
    assert_eq!(server.get("pc/d").await.status(), StatusCode::NOT_FOUND);
    let too_long = server.put(&"s".repeat(256), "x").await;
    assert_eq!(too_long.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(too_long).await, "invalid_key");
    assert_no_staging_debris(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_upload_finish_and_exits_0() {
    let mut fixture = start("local");
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let request = fixture
        .server
        .client
        .put(fixture.server.object("term/in-flight"))
        .body(body)
        .send();
    let upload = tokio::spawn(request);
    tx.send(Ok(Bytes::from_static(b"first half, ")))
        .await
        .unwrap();
    // The server has the request (its staging object exists) before SIGTERM.
    let staging = fixture.server.root.join("_storaged_staging");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while files_under(&staging).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        files_under(&staging).len(),
        1,
        "the upload is staged before SIGTERM"
    );
    let server = &mut fixture.server;
    server.service.send_sigterm();
    // Shutdown has begun: the server says so, and it accepts no new connection.
    let log = tokio::task::block_in_place(|| {
        server
            .service
            .log_once_a_line_holds(&["shutdown requested"])
    });
    assert!(log.contains("shutdown requested"), "{log}");
    assert!(
        tokio::net::TcpStream::connect(server.service.addr)
            .await
            .is_err(),
        "the listener is closed once shutdown began"
    );
    tx.send(Ok(Bytes::from_static(b"second half")))
        .await
        .unwrap();
    drop(tx);
    let response = upload.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let code = tokio::task::block_in_place(|| server.service.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, Some(0), "storaged exits 0 after SIGTERM");
    assert_eq!(
        std::fs::read(server.root.join("term/in-flight")).unwrap(),
        b"first half, second half"
    );
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_never_cuts_a_streamed_put() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("LAKEHOUSE_STORAGED__REQUEST_TIMEOUT_MS", "100")];
    let server = Server::start_with("memory", &dir.path().join("objects"), &env);
    // Five pieces 100 ms apart: the upload takes ~5 times the request timeout.
    let slow = futures::stream::iter(0..5).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(Bytes::from(format!("piece {i};")))
    });
    let response = server
        .client
        .put(server.object("slow/upload"))
        .body(reqwest::Body::wrap_stream(slow))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored = server.get("slow/upload").await.bytes().await.unwrap();
    assert_eq!(stored, "piece 0;piece 1;piece 2;piece 3;piece 4;");
}
