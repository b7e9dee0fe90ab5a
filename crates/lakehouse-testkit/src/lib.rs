//! Test support: starts the real `storaged`, `catalogd` and `ingestd` binaries on port 0 in
//! a temporary directory and finds the address each one bound from its
//! `listening on <ip>:<port>` log line (DESIGN.md section 7). No fixed ports, no sleeps.
//!
//! The binaries are the ones `cargo test --workspace` already built, found next to the test
//! executable (`target/<profile>/`), or in `LAKEHOUSE_BIN_DIR` when that is set.
//!
//! Not for production code: it panics-free but uses `anyhow` and blocking process I/O.

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// How long a service may take to log its `listening on` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

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

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything the process logged so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
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

    /// Sends `tail` as the rest of the file and closes the body.
    pub async fn finish(self, tail: &[u8]) {
        let mut last = tail.to_vec();
        last.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        let _ = self.tx.send(Ok(last)).await;
    }
}
