//! The real `lakehouse` binary against a real trio started on free ports (docs/contract.md
//! section 9): every subcommand's output and exit status, `--json` parsed, `get` files whose
//! SHA-256 match their keys, a drift shown as a diff, a missing service, bad input, and the
//! progress bar under a pseudo-terminal (util-linux `script`) but not when piped.

use lakehouse_testkit::Trio;
use lakehouse_testkit::cli::{Run, command as cli, in_terminal, program, run, write};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn json(run: &Run) -> Value {
    assert_eq!(run.status, 0, "stderr: {}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn every_subcommand_against_a_real_trio() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let appended = ingest_piped_appended_and_with_options(&trio, files.path());
    datasets_and_show(&trio);
    versions_and_get(&trio, &appended);
    gc_and_an_unknown_dataset(&trio);
}

/// `ingest` of `trips` (version 1 piped, version 2 appended with `--json`) and of `semi` with
/// reading options that later ingests reuse; the appended answer.
fn ingest_piped_appended_and_with_options(trio: &Trio, files: &Path) -> Value {
    let v1 = write(files, "v1.csv", "id,qty,city\n1,10,Oslo\n2,,Bergen\n");
    let v2 = write(files, "v2.csv", "id,qty,city\n3,30,Trondheim\n");

    // ingest, piped: no progress bar, nothing on stderr, a summary on stdout.
    let first = run(cli(trio), &["ingest", &v1, "--name", "trips"]);
    assert_eq!(first.status, 0, "{}", first.stderr);
    assert_eq!(first.stderr, "", "no bar nor anything else when piped");
    assert!(
        first
            .stdout
            .starts_with("ingested 2 rows into trips version 1 (new version)"),
        "{}",
        first.stdout
    );
    let appended = json(&run(
        cli(trio),
        &[
            "--json", "ingest", &v2, "--name", "trips", "--mode", "append",
        ],
    ));
    assert_eq!(appended["manifest"]["version"], 2);
    assert_eq!(appended["manifest"]["row_count"], 3);
    assert_eq!(appended["manifest"]["objects"].as_array().unwrap().len(), 2);
    assert_eq!(appended["manifest"]["source"]["filename"], "v2.csv");
    let semi = write(files, "semi.csv", "a;b\nNA;x\n");
    let options = json(&run(
        cli(trio),
        &[
            "ingest",
            &semi,
            "--name",
            "semi",
            "--delimiter",
            ";",
            "--null-values",
            "NA",
            "--json",
        ],
    ));
    assert_eq!(options["manifest"]["options"]["delimiter"], ";");
    assert_eq!(options["manifest"]["options"]["null_values"][0], "NA");
    // As `--help` says: without the flags, a later ingest reads with the recorded options.
    let semi2 = write(files, "semi2.csv", "a;b\nNA;y\n");
    let again = json(&run(
        cli(trio),
        &[
            "--json", "ingest", &semi2, "--name", "semi", "--mode", "append",
        ],
    ));
    assert_eq!(again["manifest"]["row_count"], 2);
    assert_eq!(again["manifest"]["options"]["delimiter"], ";");
    assert_eq!(again["manifest"]["options"]["null_values"][0], "NA");
    appended
}

/// `datasets` (table and `--json --prefix`) and `show` (latest and time travel).
fn datasets_and_show(trio: &Trio) {
    // datasets
    let table = run(cli(trio), &["datasets"]);
    assert_eq!(table.status, 0, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{}", table.stdout);
    assert!(lines[1].starts_with("semi "), "{}", table.stdout);
    assert!(lines[2].starts_with("trips  2"), "{}", table.stdout);
    let listed = json(&run(cli(trio), &["datasets", "--json", "--prefix", "tr"]));
    let names: Vec<&str> = listed["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["trips"]);

    // show, latest and time travel
    let shown = run(cli(trio), &["show", "trips"]);
    assert_eq!(shown.status, 0, "{}", shown.stderr);
    assert!(shown.stdout.contains("version   2"), "{}", shown.stdout);
    assert!(shown.stdout.contains("rows      3"), "{}", shown.stdout);
    for (column, kind) in [("id", "int64"), ("qty", "int64"), ("city", "utf8")] {
        assert!(
            shown
                .stdout
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([column, kind])),
            "{column} {kind} in {}",
            shown.stdout
        );
    }
    let old = json(&run(
        cli(trio),
        &["show", "trips", "--version", "1", "--json"],
    ));
    assert_eq!(old["version"], 1);
    assert_eq!(old["row_count"], 2);
}

/// `versions` (table and `--json`) and `get` (files named by their keys whose SHA-256 match).
fn versions_and_get(trio: &Trio, appended: &Value) {
    // versions
    let versions = run(cli(trio), &["versions", "trips"]);
    assert_eq!(versions.status, 0, "{}", versions.stderr);
    let rows: Vec<Vec<&str>> = versions
        .stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(3).collect())
        .collect();
    assert_eq!(rows, [["1", "2", "1"], ["2", "3", "2"]]);
    let versions = json(&run(cli(trio), &["--json", "versions", "trips"]));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);

    // get: files named by their keys whose SHA-256 match
    let out = tempfile::tempdir().expect("tempdir");
    let target = out.path().join("nested/dir");
    let got = json(&run(
        cli(trio),
        &["get", "trips", "-o", target.to_str().unwrap(), "--json"],
    ));
    let files_written = got["files"].as_array().unwrap();
    assert_eq!(files_written.len(), 2);
    for (file, object) in files_written
        .iter()
        .zip(appended["manifest"]["objects"].as_array().unwrap())
    {
        let key = object["key"].as_str().unwrap();
        // DIR/v<N>/: versions downloaded into one directory never mix.
        let path = target.join("v2").join(key.rsplit('/').next().unwrap());
        assert_eq!(file["path"], path.display().to_string());
        let bytes = std::fs::read(&path).expect("downloaded file");
        assert_eq!(bytes.len() as u64, object["size"].as_u64().unwrap());
        assert_eq!(hex::encode(Sha256::digest(&bytes)), object["sha256"]);
        assert!(bytes.starts_with(b"PAR1"));
    }
    let leftovers: Vec<_> = std::fs::read_dir(target.join("v2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.ends_with(".parquet"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let human = run(
        cli(trio),
        &[
            "get",
            "trips",
            "--version",
            "1",
            "-o",
            out.path().to_str().unwrap(),
        ],
    );
    assert_eq!(human.status, 0, "{}", human.stderr);
    assert!(
        human
            .stdout
            .contains("trips version 1: 1 object(s) written"),
        "{}",
        human.stdout
    );
}

/// `gc` (dry run and real) and an unknown dataset (one line, exit 1).
fn gc_and_an_unknown_dataset(trio: &Trio) {
    // gc
    let dry = json(&run(cli(trio), &["gc", "--dry-run", "--json"]));
    assert_eq!(dry["dry_run"], true);
    assert!(dry["scanned_objects"].as_u64().unwrap() >= 3, "{dry}");
    let gc = run(cli(trio), &["gc"]);
    assert_eq!(gc.status, 0, "{}", gc.stderr);
    assert!(
        gc.stdout.starts_with("deleted 0 object(s); scanned"),
        "{}",
        gc.stdout
    );

    // unknown dataset: one line, exit 1
    let missing = run(cli(trio), &["show", "nope"]);
    assert_eq!(missing.status, 1);
    assert_eq!(missing.stderr, "error: no dataset named nope\n");
    // One wording for "not found", whatever the command.
    let out = tempfile::tempdir().expect("tempdir");
    for args in [
        &["versions", "nope"][..],
        &["show", "nope", "--version", "1"],
        &["get", "nope", "-o", out.path().to_str().unwrap()],
        &["drop", "nope", "--yes"],
    ] {
        let missing = run(cli(trio), args);
        assert_eq!(missing.status, 1, "{args:?}");
        assert_eq!(missing.stderr, "error: no dataset named nope\n", "{args:?}");
    }
    let missing = run(cli(trio), &["show", "trips", "--version", "9"]);
    assert_eq!(missing.status, 1);
    assert_eq!(missing.stderr, "error: dataset trips has no version 9\n");
}

#[test]
fn a_drift_is_printed_as_a_diff() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let v1 = write(
        files.path(),
        "v1.csv",
        "id,qty,city\n1,10,Oslo\n2,20,Bergen\n",
    );
    let drift = write(files.path(), "drift.csv", "id,qty,zone\n1,10,a\n2,many,b\n");
    assert_eq!(run(cli(&trio), &["ingest", &v1, "--name", "d"]).status, 0);
    let refused = run(cli(&trio), &["ingest", &drift, "--name", "d"]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert_eq!(refused.stdout, "");
    let lines: Vec<&str> = refused.stderr.lines().collect();
    assert!(lines[0].starts_with("error: "), "{}", refused.stderr);
    assert!(lines[0].contains("schema_drift"), "{}", refused.stderr);
    assert!(
        lines.contains(&"  + zone  (added: not in the dataset's schema)"),
        "{}",
        refused.stderr
    );
    assert!(
        lines.contains(&"  - city  (removed: missing from the upload)"),
        "{}",
        refused.stderr
    );
    assert!(
        lines.iter().any(|l| l.starts_with("  ~ qty  int64")),
        "{}",
        refused.stderr
    );
    // Nothing new was registered.
    let versions = json(&run(cli(&trio), &["--json", "versions", "d"]));
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
}

#[test]
fn a_changed_type_names_its_line_and_value() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let v1 = write(files.path(), "v1.csv", "id,qty\n1,10\n");
    let drift = write(files.path(), "drift.csv", "id,qty\n1,10\n2,many\n");
    assert_eq!(run(cli(&trio), &["ingest", &v1, "--name", "d"]).status, 0);
    let refused = run(
        cli(&trio),
        &["ingest", &drift, "--name", "d", "--mode", "append"],
    );
    assert_eq!(refused.status, 1);
    assert!(
        refused
            .stderr
            .contains("  ~ qty  int64 -> utf8  (line 3: \"many\")"),
        "{}",
        refused.stderr
    );
}

#[test]
fn a_missing_service_is_one_line_and_exit_1() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "a.csv", "a\n1\n");
    for args in [
        vec!["datasets"],
        vec!["show", "x"],
        vec!["versions", "x"],
        vec!["get", "x", "-o", "out"],
        vec!["gc"],
        vec!["ingest", &csv, "--name", "x"],
    ] {
        let mut command = Command::new(program());
        command
            .env("LAKEHOUSE_INGESTD_URL", &url)
            .env("LAKEHOUSE_CATALOGD_URL", &url)
            .env("LAKEHOUSE_STORAGED_URL", &url)
            .current_dir(files.path());
        let failed = run(command, &args);
        assert_eq!(failed.status, 1, "{args:?}");
        assert_eq!(failed.stdout, "", "{args:?}");
        assert_eq!(
            failed.stderr.lines().count(),
            1,
            "{args:?}: {}",
            failed.stderr
        );
        assert!(
            failed
                .stderr
                .starts_with(&format!("error: cannot reach {url}/")),
            "{args:?}: {}",
            failed.stderr
        );
        assert!(failed.stderr.contains("refused"), "{}", failed.stderr);
    }
}

#[test]
fn bad_input_sends_nothing() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "ok.csv", "a\n1\n");
    let missing = files.path().join("missing.csv");
    let dir = files.path().display().to_string();
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["ingest", missing.to_str().unwrap(), "--name", "x"],
            1,
            "missing.csv: No such file or directory",
        ),
        (
            vec!["ingest", &dir, "--name", "x"],
            1,
            "is not a regular file",
        ),
        (
            vec!["ingest", &csv, "--name", "x", "--bogus"],
            2,
            "'--bogus'",
        ),
        (
            vec!["ingest", &csv, "--name", "bad name"],
            2,
            "invalid dataset name",
        ),
        (
            vec!["ingest", &csv, "--name", "x", "--mode", "upsert"],
            2,
            "'upsert'",
        ),
        (
            vec!["ingest", &csv, "--name", "x", "--delimiter", ";;"],
            2,
            "delimiter",
        ),
        (vec!["ingest", &csv], 2, "--name"),
        (
            vec!["--ingestd-url", "ftp://host", "ingest", &csv, "--name", "x"],
            2,
            "invalid base url \"ftp://host\"",
        ),
        (
            vec!["--catalogd-url", "http://[::1", "datasets"],
            2,
            "--catalogd-url",
        ),
        (vec!["show", "x", "--version", "latest"], 2, "'latest'"),
        (vec!["frobnicate"], 2, "'frobnicate'"),
        (vec!["get", "x"], 2, "--output"),
    ];
    for (args, status, needle) in cases {
        let failed = run(cli(&trio), &args);
        assert_eq!(failed.status, status, "{args:?}: {}", failed.stderr);
        assert_eq!(
            failed.stderr.lines().count(),
            1,
            "{args:?}: {}",
            failed.stderr
        );
        assert!(failed.stderr.starts_with("error: "), "{}", failed.stderr);
        assert!(
            failed.stderr.contains(needle),
            "{args:?}: {}",
            failed.stderr
        );
    }
    no_subcommand_and_a_bad_url_are_usage_errors(&trio, &csv);
    // Nothing reached the services.
    let listed = json(&run(cli(&trio), &["--json", "datasets"]));
    assert_eq!(listed["datasets"], serde_json::json!([]));
    assert!(
        lakehouse_testkit::peak_rss_kib(std::process::id()).is_some(),
        "sanity: /proc is readable"
    );
}

/// No subcommand (the help on stderr, exit 2), options without one (one line), and a
/// malformed URL from the environment: usage errors, exit 2.
fn no_subcommand_and_a_bad_url_are_usage_errors(trio: &Trio, csv: &str) {
    // No subcommand, nothing else either: the help (every subcommand named) on stderr,
    // exit 2, nothing on stdout.
    let mut bare = Command::new(program());
    for key in [
        "LAKEHOUSE_INGESTD_URL",
        "LAKEHOUSE_CATALOGD_URL",
        "LAKEHOUSE_STORAGED_URL",
        "LAKEHOUSE_TOKEN",
    ] {
        bare.env_remove(key);
    }
    let bare = run(bare, &[]);
    assert_eq!(bare.status, 2, "{}", bare.stderr);
    assert_eq!(bare.stdout, "");
    for word in ["Usage: lakehouse", "ingest", "datasets", "versions", "gc"] {
        assert!(bare.stderr.contains(word), "{word}: {}", bare.stderr);
    }
    // Options but no subcommand: one line naming the problem.
    let failed = run(cli(trio), &["--json"]);
    assert_eq!(failed.status, 2, "{}", failed.stderr);
    assert_eq!(failed.stderr.lines().count(), 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("requires a subcommand"),
        "{}",
        failed.stderr
    );
    // A malformed URL from the environment is a usage error too.
    let mut command = cli(trio);
    command.env("LAKEHOUSE_INGESTD_URL", "not a url");
    let failed = run(command, &["ingest", csv, "--name", "x"]);
    assert_eq!(failed.status, 2, "{}", failed.stderr);
}

/// A CSV of about `mib` MiB.
fn large_csv(dir: &Path, mib: usize) -> String {
    use std::io::Write;
    let path = dir.join("large.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    writeln!(file, "id,name,amount").unwrap();
    let mut written = 0;
    let mut i = 0u64;
    while written < mib << 20 {
        let line = format!("{i},name-{},{}.{:02}\n", i % 9973, i % 100_000, i % 100);
        written += line.len();
        file.write_all(line.as_bytes()).unwrap();
        i += 1;
    }
    file.flush().unwrap();
    path.display().to_string()
}

#[test]
fn the_progress_bar_is_drawn_on_a_terminal_and_not_when_piped() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = large_csv(files.path(), 48);
    // util-linux `script` runs the command under a pseudo-terminal and copies what it
    // drew to stdout.
    let shell = format!("{} ingest {csv} --name on_a_tty", program().display());
    let mut script = in_terminal(&trio, &shell);
    script.env("COLUMNS", "120");
    let drawn = run(script, &[]);
    assert_eq!(drawn.status, 0, "{}{}", drawn.stdout, drawn.stderr);
    assert!(drawn.stdout.contains("uploading"), "{:?}", drawn.stdout);
    assert!(drawn.stdout.contains("ETA"), "{:?}", drawn.stdout);
    assert!(drawn.stdout.contains("MiB"), "{:?}", drawn.stdout);
    assert!(drawn.stdout.contains("[="), "a bar: {:?}", drawn.stdout);
    assert!(
        drawn.stdout.contains("ingested "),
        "the summary follows: {:?}",
        drawn.stdout
    );

    // The same upload piped: the summary alone, no bar, nothing on stderr.
    let piped = run(cli(&trio), &["ingest", &csv, "--name", "piped"]);
    assert_eq!(piped.status, 0, "{}", piped.stderr);
    assert_eq!(piped.stderr, "");
    assert!(!piped.stdout.contains("ETA"), "{}", piped.stdout);
    assert!(piped.stdout.starts_with("ingested "), "{}", piped.stdout);
}

#[test]
fn get_refuses_an_object_whose_bytes_do_not_match_its_key() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "a.csv", "id,v\n1,x\n2,y\n");
    let ingested = json(&run(cli(&trio), &["--json", "ingest", &csv, "--name", "c"]));
    let key = ingested["parquet_key"].as_str().unwrap();
    // Same size, other bytes: only the SHA-256 can tell.
    let stored = trio.dir.path().join("data/objects").join(key);
    let mut bytes = std::fs::read(&stored).expect("the local backend's file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&stored, &bytes).unwrap();
    let out = files.path().join("out");
    let refused = run(cli(&trio), &["get", "c", "-o", out.to_str().unwrap()]);
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("its key says") && refused.stderr.contains("nothing written"),
        "{}",
        refused.stderr
    );
    let left: Vec<_> = std::fs::read_dir(out.join("v1")).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing left in the output directory: {left:?}"
    );
}

#[test]
fn a_reader_that_has_gone_is_not_a_crash() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let csv = write(files.path(), "a.csv", "id,v\n1,x\n");
    assert_eq!(run(cli(&trio), &["ingest", &csv, "--name", "a"]).status, 0);
    for args in [
        &["datasets"][..],
        &["--json", "versions", "a"],
        &["show", "a"],
    ] {
        // stdout is a pipe whose reading end is already closed (as `| head` leaves it).
        let (reader, writer) = std::io::pipe().expect("a pipe");
        drop(reader);
        let mut command = cli(&trio);
        command.stdout(writer);
        let output = command.args(args).output().expect("the CLI runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}

#[test]
fn dry_run_writes_nothing_and_schema_evolution_adds_columns() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("tempdir");
    let v1 = write(files.path(), "v1.csv", "id,qty\n1,10\n2,20\n");
    let wider = write(files.path(), "wider.csv", "id,qty,city\n3,30,Oslo\n");

    let dry = run(cli(&trio), &["ingest", &v1, "--name", "e", "--dry-run"]);
    assert_eq!(dry.status, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.starts_with("dry run: nothing was written\n"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("would ingest 2 rows into e version 1 (it would be a new version)"),
        "{}",
        dry.stdout
    );
    let missing = run(cli(&trio), &["--json", "versions", "e"]);
    assert_eq!(
        missing.status, 1,
        "a dry run registers nothing: {}",
        missing.stdout
    );

    assert_eq!(run(cli(&trio), &["ingest", &v1, "--name", "e"]).status, 0);
    // Without the option the new column is refused, and the error says which option helps.
    let refused = run(
        cli(&trio),
        &["ingest", &wider, "--name", "e", "--mode", "append"],
    );
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("schema_evolution=add_columns"),
        "{}",
        refused.stderr
    );
    let evolved = json(&run(
        cli(&trio),
        &[
            "--json",
            "ingest",
            &wider,
            "--name",
            "e",
            "--mode",
            "append",
            "--schema-evolution",
            "add_columns",
        ],
    ));
    assert_eq!(evolved["manifest"]["version"], 2);
    assert_eq!(evolved["manifest"]["objects"].as_array().unwrap().len(), 2);
    let names: Vec<&str> = evolved["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id", "qty", "city"]);
    let bad = run(
        cli(&trio),
        &[
            "ingest",
            &wider,
            "--name",
            "e",
            "--schema-evolution",
            "drop",
        ],
    );
    assert_eq!(bad.status, 2, "{}", bad.stderr);

    max_rejects_sets_records_aside(&trio, files.path());
}

/// Two ragged records set aside with `--max-rejects 2` (the answer names the rejects
/// object); with `--max-rejects 1` the second one fails the upload.
fn max_rejects_sets_records_aside(trio: &Trio, files: &Path) {
    let ragged = write(files, "ragged.csv", "id,qty,city\n4,40,Rome\n5\n6,60\n");
    let set_aside = run(
        cli(trio),
        &[
            "ingest",
            &ragged,
            "--name",
            "e",
            "--mode",
            "append",
            "--max-rejects",
            "2",
        ],
    );
    assert_eq!(set_aside.status, 0, "{}", set_aside.stderr);
    assert!(
        set_aside
            .stdout
            .contains("rejects  2 record(s) set aside in datasets/e/_rejects/"),
        "{}",
        set_aside.stdout
    );
    let refused = run(
        cli(trio),
        &[
            "ingest",
            &ragged,
            "--name",
            "e",
            "--mode",
            "append",
            "--max-rejects",
            "1",
        ],
    );
    assert_eq!(refused.status, 1, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("malformed_csv"),
        "{}",
        refused.stderr
    );
}

/// `--encoding` is passed on: a Windows-1252 file is read as such, and the answer's report
/// shows its text decoded.
#[test]
fn an_encoding_is_passed_on() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("temp dir");
    let latin = files.path().join("latin.csv");
    std::fs::write(&latin, b"name\ncaf\xe9\n").expect("write latin.csv");
    let latin = latin.to_string_lossy().into_owned();
    let read = json(&run(
        cli(&trio),
        &[
            "ingest",
            &latin,
            "--name",
            "latin",
            "--encoding",
            "latin1",
            "--json",
        ],
    ));
    assert_eq!(read["manifest"]["options"]["encoding"], "windows-1252");
    assert_eq!(read["columns"][0]["decided_by"]["value"], "café");
}

#[test]
fn compact_rewrites_small_files_and_says_what_it_did() {
    let trio = Trio::start(&[("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".into())])
        .expect("trio starts");
    let files = tempfile::tempdir().expect("temp dir");
    for i in 0..3 {
        let csv = write(files.path(), &format!("p{i}.csv"), &format!("id\n{i}\n"));
        let appended = run(
            cli(&trio),
            &["ingest", &csv, "--name", "feed", "--mode", "append"],
        );
        assert_eq!(appended.status, 0, "{}", appended.stderr);
    }
    let dry = run(cli(&trio), &["compact", "feed", "--dry-run"]);
    assert_eq!(dry.status, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .starts_with("dry run: nothing was written; would compact 3 file(s)"),
        "{}",
        dry.stdout
    );
    let done = json(&run(cli(&trio), &["compact", "feed", "--json"]));
    assert_eq!(done["versions"], serde_json::json!([4]));
    assert_eq!(done["files_removed"], 3);
    assert_eq!(done["files_added"], 1);
    assert_eq!(done["manifest"]["operation"], "compact");
    let again = run(cli(&trio), &["compact", "feed"]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(again.stdout, "nothing to compact\n");
    let missing = run(cli(&trio), &["compact", "nope"]);
    assert_eq!(missing.status, 1);
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);
}

#[test]
fn merge_and_delete_by_key_print_their_counts() {
    let trio = Trio::start(&[]).expect("trio starts");
    let files = tempfile::tempdir().expect("temp dir");
    let first = write(files.path(), "v1.csv", "id,name\n1,a\n2,b\n3,c\n");
    let merged = run(
        cli(&trio),
        &[
            "ingest", &first, "--name", "people", "--mode", "merge", "--key", "id",
        ],
    );
    assert_eq!(merged.status, 0, "{}", merged.stderr);
    assert!(
        merged
            .stdout
            .contains("merge by (id): 3 inserted, 0 updated, 0 unchanged"),
        "{}",
        merged.stdout
    );
    let delta = write(files.path(), "v2.csv", "id,name\n2,b\n3,C\n4,d\n");
    let answer = json(&run(
        cli(&trio),
        &[
            "--json", "ingest", &delta, "--name", "people", "--mode", "merge", "--key", "id",
        ],
    ));
    assert_eq!(answer["merge"]["inserted"], 1);
    assert_eq!(answer["merge"]["updated"], 1);
    assert_eq!(answer["merge"]["unchanged"], 1);
    let keys = write(files.path(), "gone.csv", "id\n1\n9\n");
    let deleted = run(
        cli(&trio),
        &[
            "ingest", &keys, "--name", "people", "--mode", "delete", "--key", "id",
        ],
    );
    assert_eq!(deleted.status, 0, "{}", deleted.stderr);
    assert!(
        deleted.stdout.contains("1 deleted, 1 not found"),
        "{}",
        deleted.stdout
    );
    let shown = run(cli(&trio), &["show", "people"]);
    assert!(shown.stdout.contains("key       id"), "{}", shown.stdout);
    assert!(
        shown
            .stdout
            .lines()
            .any(|l| l.starts_with("rows") && l.ends_with(" 3")),
        "{}",
        shown.stdout
    );
    // Another key is refused, naming the recorded one.
    let other = run(
        cli(&trio),
        &[
            "ingest", &delta, "--name", "people", "--mode", "merge", "--key", "name",
        ],
    );
    assert_eq!(other.status, 1);
    assert!(
        other.stderr.contains("key_mismatch") || other.stderr.contains("has the key (id)"),
        "{}",
        other.stderr
    );
}
