//! `lakehouse load` and `lakehouse loads` (docs/contract.md section 12) with the real binary
//! against a real trio whose ingestd has a directory source: the summary table, `--json`,
//! a second load skipping every file, exit status 1 for a failed file, a usage error for a
//! mode loads do not have, and the progress bar under a pseudo-terminal (util-linux
//! `script`).

use lakehouse_testkit::Trio;
use lakehouse_testkit::cli::{command as cli, in_terminal, program, run};
use serde_json::Value;

/// A trio whose ingestd reads the directory `dir` as the source `drops`.
fn trio_with_source(dir: &std::path::Path) -> Trio {
    Trio::start(&[(
        "LAKEHOUSE_INGESTD__SOURCES",
        format!(
            "[{{name = \"drops\", url = \"file://{}/\"}}]",
            dir.display()
        ),
    )])
    .expect("trio starts")
}

#[test]
fn load_prints_every_file_and_a_second_load_skips_them() {
    let source = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(source.path().join("2026-12")).unwrap();
    for n in 1..=3 {
        std::fs::write(
            source.path().join(format!("2026-12/sales-{n}.csv")),
            format!("id,amount\n{n},{n}.5\n"),
        )
        .unwrap();
    }
    let trio = trio_with_source(source.path());

    let first = run(
        cli(&trio),
        &["load", "drops", "2026-12/*.csv", "--name", "sales"],
    );
    assert_eq!(first.status, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(first.stderr, "", "no bar when piped");
    assert!(first.stdout.starts_with("FILE"), "{}", first.stdout);
    assert!(
        first.stdout.contains("2026-12/sales-2.csv"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stdout
            .contains("3 loaded, 0 skipped, 0 failed, into sales"),
        "{}",
        first.stdout
    );

    let second = run(
        cli(&trio),
        &[
            "--json",
            "load",
            "drops",
            "2026-12/*.csv",
            "--name",
            "sales",
        ],
    );
    assert_eq!(second.status, 0, "{}", second.stderr);
    let answer: Value = serde_json::from_str(&second.stdout).expect("JSON");
    assert_eq!(answer["state"], "done");
    let states: Vec<&str> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["skipped"; 3]);
    assert_eq!(answer["files"][2]["reason"], "already_loaded");
    assert_eq!(answer["files"][2]["version"], 3);

    // A file that fails: the table, then exit status 1 with one line on stderr.
    std::fs::write(source.path().join("2026-12/sales-4.csv"), "id,amount\n1\n").unwrap();
    let failed = run(
        cli(&trio),
        &["load", "drops", "2026-12/", "--name", "sales"],
    );
    assert_eq!(failed.status, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(failed.stdout.contains("malformed_csv"), "{}", failed.stdout);
    assert!(
        failed.stderr.starts_with("error: load ") && failed.stderr.contains("1 file(s) failed"),
        "{}",
        failed.stderr
    );

    // `loads` lists the three, newest first.
    let loads = run(cli(&trio), &["--json", "loads"]);
    assert_eq!(loads.status, 0, "{}", loads.stderr);
    let loads: Value = serde_json::from_str(&loads.stdout).expect("JSON");
    let loads = loads["loads"].as_array().expect("loads");
    assert_eq!(loads.len(), 3);
    assert_eq!(loads[0]["files_failed"], 1);
    assert_eq!(loads[2]["files_loaded"], 3);
    let table = run(cli(&trio), &["loads"]);
    assert!(table.stdout.starts_with("LOAD"), "{}", table.stdout);

    // An unknown source is ingestd's 400, exit 1; a mode loads do not have is a usage error.
    let unknown = run(cli(&trio), &["load", "nope", "*.csv", "--name", "sales"]);
    assert_eq!(unknown.status, 1);
    assert!(
        unknown.stderr.contains("invalid_option"),
        "{}",
        unknown.stderr
    );
    let usage = run(
        cli(&trio),
        &[
            "load", "drops", "*.csv", "--name", "sales", "--mode", "replace",
        ],
    );
    assert_eq!(usage.status, 2, "{}", usage.stderr);
}

#[test]
fn the_load_progress_bar_is_drawn_on_a_terminal() {
    let source = tempfile::tempdir().expect("tempdir");
    for n in 0..4 {
        let mut csv = String::from("id,name,amount\n");
        for i in 0..60_000 {
            csv.push_str(&format!(
                "{i},name-{n}-{},{}.{:02}\n",
                i % 9973,
                i % 1000,
                i % 100
            ));
        }
        std::fs::write(source.path().join(format!("part-{n}.csv")), csv).unwrap();
    }
    let trio = trio_with_source(source.path());
    let shell = format!("{} load drops 'part-*.csv' --name big", program().display());
    let mut script = in_terminal(&trio, &shell);
    script.env("COLUMNS", "120");
    let drawn = run(script, &[]);
    assert_eq!(drawn.status, 0, "{}{}", drawn.stdout, drawn.stderr);
    assert!(drawn.stdout.contains("files "), "{:?}", drawn.stdout);
    assert!(drawn.stdout.contains("MiB"), "{:?}", drawn.stdout);
    assert!(
        drawn
            .stdout
            .contains("4 loaded, 0 skipped, 0 failed, into big"),
        "the summary follows: {:?}",
        drawn.stdout
    );
}
