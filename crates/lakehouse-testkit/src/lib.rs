//! Test support: starts the real `storaged`, `catalogd` and `ingestd` binaries on port 0 in
//! a temporary directory and finds the address each one bound from its
//! `listening on <ip>:<port>` log line (docs/contract.md section 7). No fixed ports, no sleeps.
//!
//! The binaries are the ones `cargo test --workspace` already built, found next to the test
//! executable (`target/<profile>/`), or in `LAKEHOUSE_BIN_DIR` when that is set.
//!
//! Not for production code: it panics-free but uses `anyhow` and blocking process I/O.

pub mod cli;
pub mod config;
pub mod fixtures;
mod harness;

pub use harness::{Harness, field_types};

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How long a service may take to log its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Service::log_once_a_line_holds`] waits for a line to reach the test.
pub const LOG_WAIT: Duration = Duration::from_secs(10);

/// Directory holding the service binaries.
///
/// # Errors
/// When the test executable's path cannot be found.
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("LAKEHOUSE_BIN_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("current_exe")?;
    // target/<profile>/deps/<test-binary>
    let deps = exe
        .parent()
        .context("test binary has no parent directory")?;
    let dir = if deps.ends_with("deps") {
        deps.parent().context("deps has no parent")?
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// A running service process, killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Service {
    /// Binary name (`storaged`, ...).
    pub name: String,
    /// The address it bound.
    pub addr: SocketAddr,
    /// Environment it was started with (to restart it the same way).
    envs: Vec<(String, String)>,
    cwd: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
}

impl Service {
    /// Starts binary `bin` with `envs` in working directory `cwd` and waits for its
    /// `listening on` line. Set the service's `LAKEHOUSE_<SECTION>__BIND` to `127.0.0.1:0` in
    /// `envs` to get a free port.
    ///
    /// # Errors
    /// The binary is missing, fails to start, exits, or does not log `listening on` within
    /// [`START_TIMEOUT`]; the error includes what it logged.
    pub fn start(bin: &str, envs: &[(&str, String)], cwd: &Path) -> anyhow::Result<Service> {
        let envs: Vec<(String, String)> = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let (child, addr, log) = spawn(bin, &envs, cwd)?;
        Ok(Service {
            name: bin.to_owned(),
            addr,
            envs,
            cwd: cwd.to_owned(),
            child: Some(child),
            log,
        })
    }

    /// Peak resident memory of the running process so far (`VmHWM`), KiB; `None` once it
    /// has exited or off Linux.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        peak_rss_kib(self.child.as_ref()?.id())
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Everything the process logged, once one line of it holds every one of `needles` or
    /// [`LOG_WAIT`] has passed (whichever is first; the caller asserts on what it gets). The
    /// log reaches the test through a pipe and a reader thread, so a line the service wrote
    /// before it answered a request may land here a moment after the answer: read it with
    /// this, not [`Self::log`].
    pub fn log_once_a_line_holds(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + LOG_WAIT;
        loop {
            let log = self.log();
            let found = log
                .lines()
                .any(|line| needles.iter().all(|needle| line.contains(needle)));
            if found || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; returns the exit code (`None`
    /// when killed by a signal or still running at the timeout, in which case it is killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        self.send_sigterm();
        self.wait_exit(timeout)
    }

    /// Sends SIGTERM without waiting; see [`Service::wait_exit`].
    pub fn send_sigterm(&self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
    }

    /// Waits up to `timeout` for the process to exit and returns its exit code (`None` when
    /// it was killed by a signal, or is still running at the timeout, in which case it is
    /// killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    /// Kills the process (if running) and starts it again on the same address, so the
    /// services that talk to it need no new URL (a crash and restart, as a supervisor would
    /// do it).
    ///
    /// # Errors
    /// As [`Service::start`] (for example when the port was taken meanwhile).
    pub fn restart_on_same_port(&mut self) -> anyhow::Result<()> {
        self.kill();
        let bind = format!("LAKEHOUSE_{}__BIND", self.name.to_uppercase());
        let addr = self.addr.to_string();
        self.envs.retain(|(k, _)| *k != bind);
        self.envs.push((bind, addr));
        let (child, addr, log) = spawn(&self.name, &self.envs, &self.cwd)?;
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
        Ok(())
    }

    /// Kills the process (if running) and starts it again with the same environment and a
    /// new port 0 bind; `addr` is updated.
    ///
    /// # Errors
    /// As [`Service::start`].
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let (child, addr, log) = spawn(&self.name, &self.envs, &self.cwd)?;
        self.child = Some(child);
        self.addr = addr;
        self.log = log;
        Ok(())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(
    bin: &str,
    envs: &[(String, String)],
    cwd: &Path,
) -> anyhow::Result<(Child, SocketAddr, Arc<Mutex<String>>)> {
    let path = bin_dir()?.join(bin);
    if !path.exists() {
        bail!(
            "{} does not exist: build the workspace first (cargo test --workspace builds it)",
            path.display()
        );
    }
    let mut child = Command::new(&path)
        .current_dir(cwd)
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("LAKEHOUSE_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", path.display()))?;
    let stderr = child.stderr.take().context("no stderr pipe")?;
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel::<SocketAddr>();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(addr) = listening_addr(&line)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(addr);
            }
            if let Ok(mut log) = sink.lock() {
                log.push_str(&line);
                log.push('\n');
            }
        }
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok(addr) => Ok((child, addr, log)),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            let logged = log.lock().map(|l| l.clone()).unwrap_or_default();
            bail!("{bin} did not log `listening on` in time; it logged:\n{logged}")
        }
    }
}

/// Parses the address out of a `... listening on 127.0.0.1:12345 ...` log line.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = line.split("listening on ").nth(1)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// The whole trio on the local backend in one temporary directory, on free ports.
#[derive(Debug)]
pub struct Trio {
    /// Working directory of the three processes (`data/objects`, `data/spool` live here).
    pub dir: tempfile::TempDir,
    /// storaged.
    pub storaged: Service,
    /// catalogd.
    pub catalogd: Service,
    /// ingestd.
    pub ingestd: Service,
}

impl Trio {
    /// Starts storaged, then catalogd, then ingestd, each on `127.0.0.1:0`, wired together,
    /// with `extra_envs` added to every process (e.g. `LAKEHOUSE_INGESTD__MAX_UPLOAD_BYTES`).
    ///
    /// # Errors
    /// As [`Service::start`].
    pub fn start(extra_envs: &[(&str, String)]) -> anyhow::Result<Trio> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let with = |mut base: Vec<(&'static str, String)>| {
            let mut all: Vec<(&str, String)> = std::mem::take(&mut base);
            all.extend(extra_envs.iter().map(|(k, v)| (*k, v.clone())));
            all
        };
        let storaged = Service::start(
            "storaged",
            &with(vec![("LAKEHOUSE_STORAGED__BIND", "127.0.0.1:0".into())]),
            dir.path(),
        )?;
        let catalogd = Service::start(
            "catalogd",
            &with(vec![
                ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
                ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
            ]),
            dir.path(),
        )?;
        let ingestd = Service::start(
            "ingestd",
            &with(vec![
                ("LAKEHOUSE_INGESTD__BIND", "127.0.0.1:0".into()),
                ("LAKEHOUSE_INGESTD__STORAGED_URL", storaged.url()),
                ("LAKEHOUSE_INGESTD__CATALOGD_URL", catalogd.url()),
            ]),
            dir.path(),
        )?;
        Ok(Trio {
            dir,
            storaged,
            catalogd,
            ingestd,
        })
    }
}

/// Several replicas on one storaged (the scale-out layout of docs/contract.md section 1): one
/// storaged, `catalogd.len()` catalogd and `ingestd.len()` ingestd processes, ingestd `i`
/// registering with catalogd `i % catalogd.len()`. All in one temporary directory, on free
/// ports.
#[derive(Debug)]
pub struct Cluster {
    /// Working directory of every process.
    pub dir: tempfile::TempDir,
    /// The one storaged.
    pub storaged: Service,
    /// The catalogd replicas.
    pub catalogd: Vec<Service>,
    /// The ingestd replicas.
    pub ingestd: Vec<Service>,
}

impl Cluster {
    /// Starts storaged with `storaged_envs` (e.g. [`s3_storaged_envs`]), then `catalogds`
    /// catalogd and `ingestds` ingestd processes; `extra_envs` go to every process.
    ///
    /// # Errors
    /// As [`Service::start`]; also when `catalogds` is 0 while `ingestds` is not.
    pub fn start(
        storaged_envs: &[(&str, String)],
        catalogds: usize,
        ingestds: usize,
        extra_envs: &[(&str, String)],
    ) -> anyhow::Result<Cluster> {
        if catalogds == 0 && ingestds > 0 {
            bail!("ingestd needs at least one catalogd");
        }
        let dir = tempfile::tempdir().context("tempdir")?;
        let with = |base: Vec<(&'static str, String)>| {
            let mut all: Vec<(&str, String)> = base;
            all.extend(extra_envs.iter().map(|(k, v)| (*k, v.clone())));
            all
        };
        let mut envs = with(vec![("LAKEHOUSE_STORAGED__BIND", "127.0.0.1:0".into())]);
        envs.extend(storaged_envs.iter().map(|(k, v)| (*k, v.clone())));
        let storaged = Service::start("storaged", &envs, dir.path())?;
        let catalogd = (0..catalogds)
            .map(|_| {
                Service::start(
                    "catalogd",
                    &with(vec![
                        ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
                        ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
                    ]),
                    dir.path(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ingestd = (0..ingestds)
            .map(|i| {
                Service::start(
                    "ingestd",
                    &with(vec![
                        ("LAKEHOUSE_INGESTD__BIND", "127.0.0.1:0".into()),
                        ("LAKEHOUSE_INGESTD__STORAGED_URL", storaged.url()),
                        (
                            "LAKEHOUSE_INGESTD__CATALOGD_URL",
                            catalogd[i % catalogds].url(),
                        ),
                        // Replicas share the working directory: one spool each.
                        ("LAKEHOUSE_INGESTD__SPOOL_DIR", format!("data/spool-{i}")),
                    ]),
                    dir.path(),
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Cluster {
            dir,
            storaged,
            catalogd,
            ingestd,
        })
    }
}

/// Environment variable naming the S3-compatible test server's endpoint
/// (`http://127.0.0.1:<port>`); `scripts/test` starts the server and sets it.
pub const S3_ENDPOINT_ENV: &str = "LAKEHOUSE_TEST_S3_ENDPOINT";

/// The S3-compatible test server, when the environment provides one ([`S3_ENDPOINT_ENV`]).
///
/// `None` means the `s3` tests skip; under `CI` (any non-empty value) a missing server is a
/// panic instead, so CI can never pass without running them.
///
/// # Panics
/// When `CI` is set and [`S3_ENDPOINT_ENV`] is not.
pub fn s3_endpoint() -> Option<String> {
    match std::env::var(S3_ENDPOINT_ENV) {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!("{S3_ENDPOINT_ENV} is not set under CI: scripts/test starts the S3 server")
        }
        _ => {
            eprintln!("{S3_ENDPOINT_ENV} is not set: skipping an s3 test (scripts/test sets it)");
            None
        }
    }
}

/// A fresh bucket name for one test: `lakehouse-test-<pid>-<n>-<nanos>` (S3 bucket rules:
/// lower case, digits and `-`, at most 63 characters).
pub fn unique_bucket() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "lakehouse-test-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates `bucket` on the test server with an unsigned `PUT /<bucket>` (path style). The
/// moto server that `scripts/test` runs does not check signatures; a real S3 would refuse it.
///
/// # Errors
/// When the server does not answer 200.
pub async fn create_s3_bucket(endpoint: &str, bucket: &str) -> anyhow::Result<()> {
    let response = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .context("create bucket")?;
    if !response.status().is_success() {
        bail!(
            "creating bucket {bucket}: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}

/// Number of multipart uploads begun and neither completed nor aborted in `bucket`
/// (`GET /<bucket>?uploads`, unsigned, as [`create_s3_bucket`]).
///
/// # Errors
/// When the server does not answer 200.
pub async fn s3_incomplete_uploads(endpoint: &str, bucket: &str) -> anyhow::Result<usize> {
    let response = reqwest::Client::new()
        .get(format!(
            "{}/{bucket}?uploads",
            endpoint.trim_end_matches('/')
        ))
        .send()
        .await
        .context("list multipart uploads")?;
    if !response.status().is_success() {
        bail!("listing uploads of {bucket}: {}", response.status());
    }
    let body = response.text().await.context("uploads body")?;
    Ok(body.matches("<Upload>").count())
}

/// The environment that points a storaged at `bucket` on the test server: backend `s3`,
/// plain HTTP, and dummy credentials (the test server accepts any).
pub fn s3_storaged_envs(endpoint: &str, bucket: &str) -> Vec<(&'static str, String)> {
    vec![
        ("LAKEHOUSE_STORAGED__BACKEND", "s3".into()),
        ("LAKEHOUSE_STORAGED__BUCKET", bucket.into()),
        ("LAKEHOUSE_STORAGED__ENDPOINT", endpoint.into()),
        ("LAKEHOUSE_STORAGED__REGION", "us-east-1".into()),
        ("LAKEHOUSE_STORAGED__ALLOW_HTTP", "true".into()),
        ("AWS_ACCESS_KEY_ID", "lakehouse-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "lakehouse-test".into()),
    ]
}

/// The storaged environment of a fresh bucket on the S3 test server
/// ([`s3_storaged_envs`] after [`create_s3_bucket`] of a [`unique_bucket`]), or `None` when
/// no server is configured ([`s3_endpoint`]): the test then skips, saying so on stderr.
///
/// # Panics
/// When the server is configured but the bucket cannot be made (a test cannot go on).
pub async fn fresh_s3_storaged_envs() -> Option<Vec<(&'static str, String)>> {
    let Some(endpoint) = s3_endpoint() else {
        eprintln!("skipped: no S3 test server ({S3_ENDPOINT_ENV})");
        return None;
    };
    let bucket = unique_bucket();
    create_s3_bucket(&endpoint, &bucket)
        .await
        .expect("create a test bucket");
    Some(s3_storaged_envs(&endpoint, &bucket))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_address_in_text_and_json_log_lines() {
        assert_eq!(
            listening_addr("2026-11-23T14:00:00Z  INFO storaged: listening on 127.0.0.1:4321"),
            Some("127.0.0.1:4321".parse().unwrap())
        );
        assert_eq!(
            listening_addr(r#"{"fields":{"message":"listening on 127.0.0.1:80"}}"#),
            Some("127.0.0.1:80".parse().unwrap())
        );
        assert_eq!(listening_addr("nothing here"), None);
    }
}

/// Peak resident memory (`VmHWM`) of process `pid`, KiB; `None` when it cannot be read
/// (the process is gone, or not Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Boundary of the multipart bodies built by [`multipart_file`] and [`OpenUpload`].
pub const BOUNDARY: &str = "lakehouse-testkit-boundary-7d1f";

/// `Content-Type` of those bodies.
pub fn multipart_content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

fn field_head(field: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"upload.csv\"\r\nContent-Type: text/csv\r\n\r\n"
    )
}

/// A `multipart/form-data` body with one field `field` holding `bytes` as a file, as
/// `curl -F field=@upload.csv` sends it.
pub fn multipart_file(field: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = field_head(field).into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// An upload the test feeds piece by piece, to hold a request open (a slow or stalled
/// client): [`OpenUpload::new`] gives the request body, whose `file` field starts with
/// `head`; [`OpenUpload::finish`] sends `tail` and ends the body; dropping it without
/// finishing leaves the client silent.
#[derive(Debug)]
pub struct OpenUpload {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
}

impl OpenUpload {
    /// The handle and the streaming request body (`Content-Type`: [`multipart_content_type`]).
    pub fn new(head: &[u8]) -> (OpenUpload, reqwest::Body) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut first = field_head("file").into_bytes();
        first.extend_from_slice(head);
        let _ = tx.try_send(Ok(first));
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (OpenUpload { tx }, reqwest::Body::wrap_stream(stream))
    }

    /// Sends `bytes` as the next piece of the file, once the request has taken the pieces
    /// before it (at most 4 wait), so a large upload is never held whole by the test.
    pub async fn send(self, bytes: Vec<u8>) -> OpenUpload {
        let _ = self.tx.send(Ok(bytes)).await;
        self
    }

    /// Sends `tail` as the rest of the file and closes the body.
    pub async fn finish(self, tail: &[u8]) {
        let mut last = tail.to_vec();
        last.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let _ = self.tx.send(Ok(last)).await;
    }
}

/// Every key storaged at `storaged_url` holds under `prefix` (string prefix), ascending.
///
/// # Panics
/// When storaged does not answer 200 with a key list (a test failure).
pub async fn stored_keys(storaged_url: &str, prefix: &str) -> Vec<String> {
    let client = lakehouse_client::StoragedClient::new(storaged_url).expect("storaged url");
    let mut keys = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = client
            .list(prefix, after.as_deref(), Some(10_000))
            .await
            .expect("storaged lists its objects");
        keys.extend(page.objects.into_iter().map(|o| String::from(o.key)));
        match page.next_start_after {
            Some(next) => after = Some(next),
            None => return keys,
        }
    }
}

/// PUTs `content` (create-only, checksummed) into storaged as a Parquet object of `dataset`
/// with `schema`, under its content-addressed key (docs/contract.md section 5), and returns the
/// [`lakehouse_api::ObjectRef`] a register request names it with (`row_count` as given).
/// The bytes are not Parquet: catalogd only checks that the object exists with its size.
///
/// # Panics
/// On an invalid name or a failed PUT (a test failure).
pub async fn put_test_object(
    storaged_url: &str,
    dataset: &str,
    schema: &lakehouse_api::Schema,
    content: &str,
    row_count: u64,
) -> lakehouse_api::ObjectRef {
    let name = lakehouse_api::DatasetName::new(dataset).expect("dataset name");
    let object = fixtures::object_ref(&name, schema, content.as_bytes(), row_count);
    let options = lakehouse_client::PutOptions {
        create_only: true,
        sha256: Some(object.sha256.clone()),
    };
    lakehouse_client::StoragedClient::new(storaged_url)
        .expect("storaged url")
        .put_bytes(&object.key, content.to_owned().into(), &options)
        .await
        .expect("storaged stores the test object");
    object
}
