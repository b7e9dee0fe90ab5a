//! Path traversal at every endpoint of the trio (docs/decisions.md, "Hostile world": names and keys are
//! validated before any I/O). Requests go out as raw HTTP so no client normalizes `..` away;
//! afterwards no file outside the storage root was written and no answer held the secret.

use lakehouse_testkit::Trio;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "top-secret-sentinel-5f2c";

/// Sends one raw HTTP/1.1 request; returns the status and the whole answer as text.
async fn raw(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nContent-Type: multipart/form-data; boundary=b\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// Every file under `dir` (recursively) with its contents, except under `skip`.
fn snapshot(dir: &Path, skip: &[PathBuf], into: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if skip.iter().any(|s| path.starts_with(s)) {
            continue;
        }
        if path.is_dir() {
            snapshot(&path, skip, into);
        } else {
            into.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
        }
    }
}

#[tokio::test]
async fn traversal_attempts_are_400s_and_touch_nothing_outside_the_root() {
    let trio = Trio::start(&[]).expect("trio starts");
    let base = trio.dir.path().to_owned();
    std::fs::create_dir_all(base.join("outside")).unwrap();
    std::fs::write(base.join("outside/secret.txt"), SECRET).unwrap();
    std::fs::write(base.join("data/secret.txt"), SECRET).unwrap();
    let root = base.join("data/objects");
    let skip = [root.clone(), base.join("data/spool")];
    let mut before = BTreeMap::new();
    snapshot(&base, &skip, &mut before);

    let refused = storaged_refuses_traversing_keys(trio.storaged.addr).await
        + ingestd_and_catalogd_refuse_traversing_names(&trio).await;

    let mut after = BTreeMap::new();
    snapshot(&base, &skip, &mut after);
    assert_eq!(before, after, "files outside the storage root changed");
    let mut stored = BTreeMap::new();
    snapshot(&root, &[], &mut stored);
    assert!(
        stored.is_empty(),
        "something was stored: {:?}",
        stored.keys()
    );
    eprintln!("traversal: {refused} attempts refused, nothing outside the root touched");
}

/// Every method of `/objects/{key}` and the listing with such a prefix, for keys that try to
/// leave the root: 4xx (200 for a listing), never the secret. The number of refusals.
async fn storaged_refuses_traversing_keys(storaged: std::net::SocketAddr) -> usize {
    let keys = [
        "../secret.txt",
        "../../outside/secret.txt",
        "%2e%2e/secret.txt",
        "%2E%2E/%2e%2e/outside/secret.txt",
        "..%2fsecret.txt",
        "..%2F..%2Foutside%2Fsecret.txt",
        "a/../../secret.txt",
        "a/./b",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "a%5C..%5C..%5Csecret.txt",
        "..\\..\\secret.txt",
        "a%00b",
        "x%2F",
        &"k".repeat(1100),
    ];
    let mut refused = 0;
    for key in keys {
        for method in ["GET", "HEAD", "PUT", "POST", "DELETE"] {
            let (status, answer) = raw(storaged, method, &format!("/objects/{key}"), b"x").await;
            assert!(
                (400..500).contains(&status),
                "storaged {method} {key}: {answer}"
            );
            assert!(
                !answer.contains(SECRET),
                "storaged {method} {key} leaked the secret"
            );
            refused += 1;
        }
        let (status, answer) = raw(storaged, "GET", &format!("/objects?prefix={key}"), b"").await;
        assert!(
            status == 200 || (400..500).contains(&status),
            "list {key}: {answer}"
        );
        assert!(!answer.contains(SECRET));
    }
    refused
}

/// Dataset names that try to leave the root: 400 `invalid_name` from ingestd, 4xx from
/// catalogd's lookups and registers, never the secret. The number of refusals.
async fn ingestd_and_catalogd_refuse_traversing_names(trio: &Trio) -> usize {
    let mut refused = 0;
    let names = [
        "..",
        "%2e%2e",
        "..%2F..%2Foutside",
        "%2Fetc",
        "a%00",
        "a%5Cb",
        ".hidden",
        "-x",
        &"n".repeat(129),
    ];
    let csv = b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\na\n1\r\n--b--\r\n";
    for name in names {
        let (status, answer) = raw(
            trio.ingestd.addr,
            "POST",
            &format!("/ingest?name={name}"),
            csv,
        )
        .await;
        assert_eq!(status, 400, "ingestd name {name}: {answer}");
        assert!(
            answer.contains("invalid_name"),
            "ingestd name {name}: {answer}"
        );
        for path in [
            format!("/datasets/{name}"),
            format!("/datasets/{name}/versions"),
            format!("/datasets/{name}/versions/1"),
        ] {
            let (status, answer) = raw(trio.catalogd.addr, "GET", &path, b"").await;
            assert!(
                (400..500).contains(&status),
                "catalogd GET {path}: {answer}"
            );
            assert!(!answer.contains(SECRET));
        }
        let (status, answer) = raw(
            trio.catalogd.addr,
            "POST",
            &format!("/datasets/{name}/versions"),
            b"{}",
        )
        .await;
        assert!(
            (400..500).contains(&status),
            "catalogd POST {name}: {answer}"
        );
        refused += 5;
    }
    refused
}
