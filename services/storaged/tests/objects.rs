//! storaged over HTTP: the real binary on port 0, one conformance suite run against the
//! `local`, `memory` and `s3` backends (docs/contract.md section 6). The local-only durability
//! tests are in `durability.rs`; the harness is `common/`.
//!
//! The `s3` cases need an S3-compatible server: `scripts/test` starts one (moto) and sets
//! `LAKEHOUSE_TEST_S3_ENDPOINT`; each case gets a fresh bucket. Without it they skip, except
//! under `CI`, where they fail.

mod common;

use bytes::Bytes;
use common::{Server, assert_no_staging_debris, error_code, keys_of, sha256_hex, start, start_s3};
use futures::StreamExt;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;
use sha2::{Digest, Sha256};

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
