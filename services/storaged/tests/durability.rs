//! storaged over HTTP, local backend only (and one `memory` case): durability across a
//! kill -9, crash debris removed at start, key/path conflicts, SIGTERM letting an upload
//! finish, and a request timeout that never cuts a streamed PUT.

mod common;

use bytes::Bytes;
use common::{Server, assert_no_staging_debris, error_code, files_under, start};
use futures::StreamExt;
use reqwest::StatusCode;
use std::time::Duration;

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

/// The fsyncs storaged has made, from its `/metrics` (the histogram's count).
async fn fsyncs(server: &Server) -> u64 {
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("lakehouse_storaged_fsync_duration_seconds_count "))
        .map_or(0, |count| count.trim().parse().unwrap())
}

/// docs/contract.md section 2, invariant 3: a 201 rests on the object's bytes and on its
/// directory entry being on disk. The first object of a new directory flushes the staged
/// file, then the object and every directory up to the root; a later object in that
/// directory flushes its staged file and the directory (no fewer: a crash could lose its
/// name; no more: each costs a cache flush).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_created_object_flushes_its_bytes_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start("local", &dir.path().join("objects"));
    let before = fsyncs(&server).await;
    let put = |key: &'static str| server.put_with(key, &[("if-none-match", "*")], "bytes");
    assert_eq!(put("fsync/a/one").await.status(), StatusCode::CREATED);
    let first = fsyncs(&server).await - before;
    // The staged file; then the object, `fsync/a`, `fsync` and the root.
    assert_eq!(first, 5);
    assert_eq!(put("fsync/a/two").await.status(), StatusCode::CREATED);
    assert_eq!(fsyncs(&server).await - before - first, 2);
    // A taken key stores nothing and flushes nothing beyond its staged file.
    let before_taken = fsyncs(&server).await;
    assert_eq!(
        put("fsync/a/two").await.status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(fsyncs(&server).await - before_taken, 1);
    assert_eq!(
        std::fs::read(dir.path().join("objects/fsync/a/two")).unwrap(),
        b"bytes"
    );
}
