//! The `lakehouse` command-line client run as a user runs it against a [`Trio`] (its tests,
//! docs/contract.md section 9): the binary found next to the services' ([`bin_dir`]), wired to
//! the trio through the environment, its exit status and output collected, and under a
//! pseudo-terminal (util-linux `script`) where it draws its progress bar.

use crate::{Trio, bin_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `lakehouse` binary that `cargo test` built, next to the services' ([`bin_dir`]).
///
/// # Panics
/// When the test executable's directory cannot be found.
pub fn program() -> PathBuf {
    bin_dir()
        .expect("the directory of the binaries")
        .join("lakehouse")
}

/// `lakehouse` wired to `trio` through the environment, as a user would set it: the three
/// URLs, no `LAKEHOUSE_TOKEN`, nothing on stdin.
pub fn command(trio: &Trio) -> Command {
    let mut command = Command::new(program());
    wire(&mut command, trio);
    command
}

/// util-linux `script` running the command line `shell` under a pseudo-terminal (`TERM=xterm`)
/// with the environment of [`command`]; it copies what was drawn to its stdout.
pub fn in_terminal(trio: &Trio, shell: &str) -> Command {
    let mut script = Command::new("script");
    script.args(["-qefc", shell, "/dev/null"]);
    wire(&mut script, trio);
    script.env("TERM", "xterm");
    script
}

/// Sets the environment that points the CLI at `trio`, and a closed stdin.
fn wire(command: &mut Command, trio: &Trio) {
    command
        .env("LAKEHOUSE_INGESTD_URL", trio.ingestd.url())
        .env("LAKEHOUSE_CATALOGD_URL", trio.catalogd.url())
        .env("LAKEHOUSE_STORAGED_URL", trio.storaged.url())
        .env_remove("LAKEHOUSE_TOKEN")
        .stdin(Stdio::null());
}

/// A finished run of a command.
#[derive(Debug)]
pub struct Run {
    /// Its exit status.
    pub status: i32,
    /// What it wrote to stdout.
    pub stdout: String,
    /// What it wrote to stderr.
    pub stderr: String,
}

/// Runs `command` with `args` to its end; what it writes must be UTF-8.
///
/// # Panics
/// When the command cannot run, ends without an exit status (a signal) or writes other than
/// UTF-8.
pub fn run(command: Command, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = output(command, args);
    Run {
        status: status.code().expect("the CLI exits with a status"),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

/// Like [`run`], what is not UTF-8 in the output replaced by U+FFFD.
///
/// # Panics
/// When the command cannot run or ends without an exit status (a signal).
pub fn run_lossy(command: Command, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = output(command, args);
    Run {
        status: status.code().expect("an exit status"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `command` with `args`, collecting its output.
fn output(mut command: Command, args: &[&str]) -> Output {
    command.args(args).output().expect("the CLI runs")
}

/// Writes `text` to the file `name` in `dir`; its path, for a command line.
///
/// # Panics
/// When the file cannot be written.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write csv");
    path.display().to_string()
}
