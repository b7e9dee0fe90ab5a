//! The CLI's side of docs/contract.md section 14, with the real binary against a real trio on free
//! ports: `--json` failures as `{"error": ...}` on stdout with the same exit status, clap's
//! "did you mean" kept, every option checked before a request, one wording for "not found",
//! a progress bar that fits an 80-column terminal (under a pseudo-terminal, util-linux
//! `script`), and `get` into `DIR/v<N>/`.

use lakehouse_testkit::Trio;
use lakehouse_testkit::cli::{Run, command as cli, in_terminal, program, run_lossy as run, write};
use serde_json::Value;
use std::path::Path;

fn stdout_json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", run.stdout))
}

#[test]
fn json_failures_are_an_error_document_on_stdout_with_the_same_status() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "a.csv", "a\n1\n");
    assert_eq!(
        run(cli(&trio), &["ingest", &csv, "--name", "here"]).status,
        0
    );

    // Not found: the same code and wording from every command.
    for args in [
        &["--json", "show", "nosuch"][..],
        &["--json", "versions", "nosuch"],
        &["--json", "show", "nosuch", "--version", "2"],
    ] {
        let failed = run(cli(&trio), args);
        assert_eq!(failed.status, 1, "{args:?}");
        let body = stdout_json(&failed);
        assert_eq!(body["error"]["code"], "not_found", "{args:?}: {body}");
        assert_eq!(body["error"]["message"], "no dataset named nosuch");
        assert_eq!(body["error"]["details"]["dataset"], "nosuch");
        assert_eq!(
            failed.stderr, "error: no dataset named nosuch\n",
            "{args:?}"
        );
    }
    let failed = run(cli(&trio), &["--json", "show", "here", "--version", "7"]);
    assert_eq!(failed.status, 1);
    assert_eq!(stdout_json(&failed)["error"]["details"]["version"], 7);
    // A service's own refusal: its error body as sent.
    let drift = write(files.path(), "b.csv", "b\nx\n");
    let failed = run(cli(&trio), &["ingest", &drift, "--name", "here", "--json"]);
    assert_eq!(failed.status, 1);
    let body = stdout_json(&failed);
    assert_eq!(body["error"]["code"], "schema_drift");
    assert!(body["error"]["details"]["added"].is_array(), "{body}");
    // A usage error: exit 2, code `usage`.
    let failed = run(
        cli(&trio),
        &["--json", "ingest", &csv, "--name", "x", "--mode", "upsert"],
    );
    assert_eq!(failed.status, 2);
    assert_eq!(stdout_json(&failed)["error"]["code"], "usage");
    // A missing file: exit 1, code `invalid_input`.
    let failed = run(
        cli(&trio),
        &["--json", "ingest", "/nonexistent.csv", "--name", "x"],
    );
    assert_eq!(failed.status, 1);
    assert_eq!(stdout_json(&failed)["error"]["code"], "invalid_input");
    // Without --json, stdout stays empty on a failure.
    let failed = run(cli(&trio), &["show", "nosuch"]);
    assert_eq!((failed.status, failed.stdout.as_str()), (1, ""));
}

#[test]
fn clap_hints_are_kept_and_every_option_is_checked_before_a_request() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "a.csv", "a\n1\n");
    let cases: [(&[&str], &str); 6] = [
        (
            &["ingest", &csv, "--name", "x", "--null-value", "NA"],
            "tip: a similar argument exists: '--null-values'",
        ),
        (&["gc", "--dry"], "'--dry-run'"),
        (
            &["ingest", &csv, "--name", "x", "--encoding", "klingon"],
            "encoding \"klingon\" is not one of",
        ),
        (
            &["ingest", &csv, "--name", "x", "--decimal-separator", ";"],
            "is not `.` or `,`",
        ),
        (
            &["ingest", &csv, "--name", "x", "--date-order", "YMD"],
            "'YMD'",
        ),
        (
            &["versoins", "x"],
            "tip: a similar subcommand exists: 'versions'",
        ),
    ];
    for (args, needle) in cases {
        let failed = run(cli(&trio), args);
        assert_eq!(failed.status, 2, "{args:?}: {}", failed.stderr);
        assert_eq!(failed.stderr.lines().count(), 1, "{}", failed.stderr);
        assert!(
            failed.stderr.contains(needle),
            "{args:?}: {}",
            failed.stderr
        );
    }
    // Nothing reached ingestd.
    let listed = run(cli(&trio), &["--json", "datasets"]);
    assert_eq!(stdout_json(&listed)["datasets"], serde_json::json!([]));

    // Good values go through: a `;` export with decimal commas and day-first dates.
    let eu = write(
        files.path(),
        "eu.csv",
        "d;x\n01/02/2024;1,5\n03/04/2024;2\n",
    );
    let done = run(
        cli(&trio),
        &[
            "--json",
            "ingest",
            &eu,
            "--name",
            "eu",
            "--decimal-separator",
            ",",
            "--date-order",
            "DMY",
            "--encoding",
            "latin1",
        ],
    );
    assert_eq!(done.status, 0, "{}", done.stderr);
    let body = stdout_json(&done);
    let types: Vec<&str> = body["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["date32", "float64"]);
    assert_eq!(body["manifest"]["options"]["encoding"], "windows-1252");
}

#[test]
fn get_writes_each_version_into_its_own_directory() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let v1 = write(files.path(), "1.csv", "a\n1\n");
    let v2 = write(files.path(), "2.csv", "a\n2\n");
    for file in [&v1, &v2] {
        assert_eq!(run(cli(&trio), &["ingest", file, "--name", "g"]).status, 0);
    }
    let out = files.path().join("out");
    let out_arg = out.to_str().unwrap();
    for version in ["1", "2"] {
        let got = run(
            cli(&trio),
            &["get", "g", "--version", version, "-o", out_arg],
        );
        assert_eq!(got.status, 0, "{}", got.stderr);
    }
    let parquet_in = |dir: &Path| -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".parquet")
            })
            .count()
    };
    assert_eq!(parquet_in(&out.join("v1")), 1);
    assert_eq!(parquet_in(&out.join("v2")), 1);
    // The same download again is fine; a directory holding other files is refused.
    let again = run(cli(&trio), &["get", "g", "--version", "2", "-o", out_arg]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    std::fs::write(out.join("v2/notes.txt"), "mine").unwrap();
    let refused = run(cli(&trio), &["get", "g", "--version", "2", "-o", out_arg]);
    assert_eq!(refused.status, 1);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    let forced = run(
        cli(&trio),
        &["get", "g", "--version", "2", "-o", out_arg, "--force"],
    );
    assert_eq!(forced.status, 0, "{}", forced.stderr);
    assert!(out.join("v2/notes.txt").exists(), "--force deletes nothing");
}

/// What a terminal shows of `drawn` (what `script` copied): the lines between carriage
/// returns and newlines, ANSI escape sequences removed.
fn screen_lines(drawn: &str) -> Vec<String> {
    let mut plain = String::with_capacity(drawn.len());
    let mut chars = drawn.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters, then a final byte in @..~.
            if chars.peek() == Some(&'[') {
                chars.next();
                for next in chars.by_ref() {
                    if ('@'..='~').contains(&next) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split(['\r', '\n'])
        .map(str::to_owned)
        .filter(|l| !l.trim().is_empty())
        .collect()
}

#[test]
fn the_progress_bar_fits_an_80_column_terminal() {
    use std::io::Write;
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let path = files.path().join("large.csv");
    {
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        writeln!(file, "id,name,amount").unwrap();
        for i in 0..1_500_000u64 {
            writeln!(file, "{i},name-{},{}.{:02}", i % 9973, i % 100_000, i % 100).unwrap();
        }
    }
    // util-linux `script` runs the command under a pseudo-terminal of 80 columns and copies
    // what it drew to stdout.
    let shell = format!(
        "stty cols 80 rows 24; {} ingest {} --name wide",
        program().display(),
        path.display()
    );
    let mut script = in_terminal(&trio, &shell);
    script.env_remove("COLUMNS");
    let drawn = run(script, &[]);
    assert_eq!(drawn.status, 0, "{}{}", drawn.stdout, drawn.stderr);
    // What the bar and the spinner drew: everything before the summary of the answer
    // (whose long object key a terminal wraps as any text).
    let lines: Vec<String> = screen_lines(&drawn.stdout)
        .into_iter()
        .take_while(|l| !l.starts_with("ingested "))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("uploading") && l.contains("ETA")),
        "a bar was drawn: {lines:?}"
    );
    for line in &lines {
        assert!(
            line.chars().count() <= 80,
            "{} columns: {line:?}",
            line.chars().count()
        );
    }
}
