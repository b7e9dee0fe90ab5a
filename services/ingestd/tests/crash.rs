//! Crash test (docs/decisions.md, "Hostile world"): concurrent ingests while storaged, catalogd
//! or ingestd is SIGKILLed at a random moment and restarted; after every round the
//! invariants of docs/contract.md section 2 (and section 8's Iceberg metadata) are checked:
//! - every manifest version references objects that exist and hash to their keys (1, 7);
//! - versions are 1..N without gaps;
//! - every 200 a client received is in the history, with the same objects (3);
//! - no spool file is left behind (5);
//! - each version's schema is the previous one's, or it plus columns added at the end (2:
//!   some ingests add a column with `schema_evolution=add_columns`);
//! - a `dry_run=true` answered 200 wrote nothing: its object is not stored and no version
//!   names it;
//! - loads (docs/contract.md section 12): each round adds a file to a directory source and
//!   loads the directory; no source file is recorded by two versions (each file loaded
//!   exactly once, whatever was killed), and every file a finished load reports loaded or
//!   skipped is recorded by the version it names;
//! - the rejects object of an upload with `max_rejects=1` (and one bad record) named in a
//!   version exists and hashes to its key;
//! - Iceberg (section 8): every acknowledged version's metadata was stored before its 200;
//!   the table loads at the latest version and every file its metadata names exists
//!   (followed through the Avro manifest lists and manifests); every committed version's
//!   metadata JSON exists and parses.
//!
//! A second test kills catalogd between a version's commit and its metadata write (made to
//! fail) and checks that the restart heals it.
//! Bounded: `LAKEHOUSE_CRASH_ROUNDS` rounds (default 30) of 6 ingests each; the seed is
//! `LAKEHOUSE_CRASH_SEED` (default 1) and printed, so a failing run can be replayed.

use lakehouse_testkit::{Service, Trio, multipart_content_type, multipart_file};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

const INGESTS_PER_ROUND: usize = 6;

/// xorshift64*: a tiny seeded generator, enough to pick victims and delays reproducibly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn wait_ready(http: &reqwest::Client, services: [&Service; 3]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for service in services {
        loop {
            let ready = http
                .get(format!("{}/readyz", service.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                service.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The files an Iceberg table metadata references that storaged does not have (as text):
/// each snapshot's manifest list, each manifest it lists, and each data file those
/// manifests hold as live (status EXISTING or ADDED; Iceberg spec: manifests). Read with
/// the `apache-avro` reader, as an engine would, not with the code that wrote them.
async fn missing_table_files(
    http: &reqwest::Client,
    storage: &str,
    metadata: &Value,
) -> Vec<String> {
    let mut found = Vec::new();
    let location = metadata["location"].as_str().unwrap_or_default();
    // `<base>/datasets/crash` -> object keys are the paths after `<base>/`.
    let Some(base) = location.strip_suffix("datasets/crash") else {
        return vec![format!(
            "table location {location:?} is not <base>/datasets/crash"
        )];
    };
    let fetch = |path: String| async move {
        let key = path.strip_prefix(base)?.to_owned();
        let r = http
            .get(format!("{storage}/objects/{key}"))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.bytes().await.ok()
    };
    let avro_records = |bytes: &[u8]| -> Vec<Vec<(String, apache_avro::types::Value)>> {
        apache_avro::Reader::new(bytes)
            .map(|reader| {
                reader
                    .filter_map(Result::ok)
                    .filter_map(|value| match value {
                        apache_avro::types::Value::Record(fields) => Some(fields),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let field = |record: &[(String, apache_avro::types::Value)], name: &str| {
        record
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let snapshots = metadata["snapshots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for snapshot in snapshots {
        let list = snapshot["manifest-list"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(list_bytes) = fetch(list.clone()).await else {
            found.push(format!("manifest list {list} missing"));
            continue;
        };
        let manifests = avro_records(&list_bytes);
        if manifests.is_empty() {
            found.push(format!("manifest list {list} lists no manifest"));
        }
        for manifest in manifests {
            let Some(apache_avro::types::Value::String(path)) = field(&manifest, "manifest_path")
            else {
                found.push(format!(
                    "manifest list {list}: an entry has no manifest_path"
                ));
                continue;
            };
            let Some(manifest_bytes) = fetch(path.clone()).await else {
                found.push(format!("manifest {path} missing"));
                continue;
            };
            for entry in avro_records(&manifest_bytes) {
                let live = !matches!(
                    field(&entry, "status"),
                    Some(apache_avro::types::Value::Int(2))
                );
                let file = match field(&entry, "data_file") {
                    Some(apache_avro::types::Value::Record(data_file)) => {
                        field(&data_file, "file_path")
                    }
                    _ => None,
                };
                match file {
                    Some(apache_avro::types::Value::String(file)) => {
                        if live && fetch(file.clone()).await.is_none() {
                            found.push(format!("data file {file} of manifest {path} missing"));
                        }
                    }
                    _ => found.push(format!("manifest {path}: an entry has no file_path")),
                }
            }
        }
    }
    found
}

/// The ledger of loads (docs/contract.md section 12) in `manifests` (by version): no source
/// file recorded twice, and each file a finished load (`loads`, answers of `POST
/// /loads?wait=true`) reports `loaded` (with a new version) or `skipped` recorded by the
/// version it names.
fn ledger_violations(
    manifests: &std::collections::HashMap<u64, Value>,
    loads: &[Value],
) -> Vec<String> {
    let mut found = Vec::new();
    let mut recorded: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    for (version, manifest) in manifests {
        if let Some(path) = manifest["source"]["file"]["path"].as_str()
            && let Some(other) = recorded.insert(path.to_owned(), *version)
        {
            found.push(format!(
                "source file {path} recorded by versions {other} and {version}"
            ));
        }
    }
    for load in loads {
        for file in load["files"].as_array().cloned().unwrap_or_default() {
            let path = file["path"].as_str().unwrap_or_default();
            let reported = match (file["state"].as_str(), file["existing"].as_bool()) {
                (Some("loaded"), Some(false)) | (Some("skipped"), _) => file["version"].as_u64(),
                _ => continue,
            };
            if recorded.get(path).copied() != reported {
                found.push(format!(
                    "load {} reports {path} in version {reported:?}, the ledger says {:?}",
                    load["load_id"],
                    recorded.get(path)
                ));
            }
        }
    }
    found
}

/// Checks the invariants; returns the violations found (as text).
async fn violations(
    http: &reqwest::Client,
    trio: &Trio,
    acknowledged: &[Value],
    dry_runs: &[Value],
    loads: &[Value],
) -> Vec<String> {
    let mut found = Vec::new();
    let catalog = trio.catalogd.url();
    let storage = trio.storaged.url();
    let response = http
        .get(format!("{catalog}/datasets/crash/versions"))
        .send()
        .await;
    let versions: Vec<u64> = match response {
        Ok(r) if r.status().as_u16() == 404 => Vec::new(),
        Ok(r) => r.json::<Value>().await.map_or_else(
            |e| {
                found.push(format!("version list unreadable: {e}"));
                Vec::new()
            },
            |v| {
                v["versions"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|x| x["version"].as_u64()).collect())
                    .unwrap_or_default()
            },
        ),
        Err(e) => {
            found.push(format!("catalogd does not answer: {e}"));
            return found;
        }
    };
    let expected: Vec<u64> = (1..=versions.len() as u64).collect();
    if versions != expected {
        found.push(format!("versions are not 1..N without gaps: {versions:?}"));
    }
    let mut manifests = std::collections::HashMap::new();
    for version in &versions {
        let manifest: Value = match http
            .get(format!("{catalog}/datasets/crash/versions/{version}"))
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => {
                found.push(format!("version {version} unreadable: {e}"));
                continue;
            }
        };
        for object in manifest["objects"].as_array().cloned().unwrap_or_default() {
            let key = object["key"].as_str().unwrap_or_default();
            let bytes = match http.get(format!("{storage}/objects/{key}")).send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default(),
                other => {
                    found.push(format!(
                        "version {version}: object {key} missing ({other:?})"
                    ));
                    continue;
                }
            };
            let digest = hex::encode(Sha256::digest(&bytes));
            if !key.ends_with(&format!("/{digest}.parquet")) {
                found.push(format!(
                    "version {version}: object {key} hashes to {digest}"
                ));
            }
            // The records its upload set aside (max_rejects) are stored next to it.
            if let Some(rejects) = object["rejects"]["key"].as_str() {
                match http
                    .get(format!("{storage}/objects/{rejects}"))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => {
                        let bytes = r.bytes().await.unwrap_or_default();
                        let digest = hex::encode(Sha256::digest(&bytes));
                        if !rejects.ends_with(&format!("/{digest}.csv")) {
                            found.push(format!(
                                "version {version}: rejects {rejects} hashes to {digest}"
                            ));
                        }
                    }
                    other => found.push(format!(
                        "version {version}: rejects {rejects} missing ({other:?})"
                    )),
                }
            }
        }
        manifests.insert(*version, manifest);
    }
    // Invariant 2 with additive evolution: a schema only ever grows by columns at the end.
    for version in versions.iter().skip(1) {
        let fields = |v: u64| {
            manifests.get(&v).map_or_else(Vec::new, |m: &Value| {
                m["schema"]["fields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
        };
        let (before, now) = (fields(version - 1), fields(*version));
        if now.len() < before.len() || now[..before.len()] != before[..] {
            found.push(format!(
                "version {version}'s schema does not extend version {}'s",
                version - 1
            ));
        }
    }
    found.extend(ledger_violations(&manifests, loads));
    for dry in dry_runs {
        let key = dry["parquet_key"].as_str().unwrap_or_default();
        let named = manifests.values().any(|m| {
            m["objects"]
                .as_array()
                .is_some_and(|objects| objects.iter().any(|o| o["key"] == key))
        });
        if named {
            found.push(format!("dry run's object {key} is in a version"));
        }
        match http.head(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().as_u16() == 404 => {}
            other => found.push(format!("dry run's object {key} is stored ({other:?})")),
        }
    }
    for ack in acknowledged {
        let version = ack["manifest"]["version"].as_u64().unwrap_or(0);
        match manifests.get(&version) {
            Some(stored) if stored["objects"] == ack["manifest"]["objects"] => {}
            Some(_) => found.push(format!(
                "acknowledged version {version} has other objects now"
            )),
            None => found.push(format!(
                "acknowledged version {version} is not in the history"
            )),
        }
    }
    // Iceberg (docs/contract.md section 8): the table loads at the latest version through the REST
    // catalog (which writes the latest version's metadata if its own commit could not), every
    // manifest list, manifest and live data file that metadata names exists, and then every
    // committed version's metadata JSON is stored and parses.
    // A 200 means the version's metadata was durable before the answer: checked before the
    // load below could write it.
    for ack in acknowledged {
        let version = ack["manifest"]["version"].as_u64().unwrap_or(0);
        let key = format!("datasets/crash/metadata/v{version}.metadata.json");
        match http.head(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().is_success() => {}
            other => found.push(format!(
                "acknowledged version {version}: no {key} ({other:?})"
            )),
        }
    }
    if let Some(latest) = versions.last() {
        let table = http
            .get(format!(
                "{catalog}/iceberg/v1/namespaces/lakehouse/tables/crash"
            ))
            .send()
            .await;
        match table {
            Ok(r) if r.status().is_success() => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                // At least: a register whose client was killed still runs to its end in
                // catalogd, so versions may have been committed since the list above.
                let at = body["metadata"]["last-sequence-number"].as_u64();
                if at.is_none_or(|at| at < *latest) {
                    found.push(format!(
                        "iceberg table is behind version {latest}: {}",
                        body["metadata"]["last-sequence-number"]
                    ));
                }
                found.extend(missing_table_files(http, &storage, &body["metadata"]).await);
            }
            other => found.push(format!("iceberg table does not load: {other:?}")),
        }
    }
    for version in &versions {
        let key = format!("datasets/crash/metadata/v{version}.metadata.json");
        match http.get(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().is_success() => {
                let parsed = r.json::<Value>().await;
                if !parsed.is_ok_and(|m| m["last-sequence-number"].as_u64() == Some(*version)) {
                    found.push(format!("version {version}: {key} does not load"));
                }
            }
            other => found.push(format!("version {version}: no {key} ({other:?})")),
        }
    }
    let spool = trio.dir.path().join("data/spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        found.push(format!("spool files left behind: {left:?}"));
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_never_break_the_invariants() {
    let rounds = env_number("LAKEHOUSE_CRASH_ROUNDS", 30);
    let seed = env_number("LAKEHOUSE_CRASH_SEED", 1).max(1);
    let mut rng = Rng(seed);
    // The source of the loads in the mix: one new file per round.
    let source = tempfile::tempdir().expect("tempdir");
    let mut trio = Trio::start(&[
        (
            "LAKEHOUSE_INGESTD__MAX_CONCURRENT_INGESTS",
            INGESTS_PER_ROUND.to_string(),
        ),
        (
            "LAKEHOUSE_INGESTD__SOURCES",
            format!(
                "[{{name = \"drops\", url = \"file://{}/\"}}]",
                source.path().display()
            ),
        ),
    ])
    .expect("trio starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let (mut kills, mut ingests, mut oks, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut acknowledged: Vec<Value> = Vec::new();
    let mut dry_runs: Vec<Value> = Vec::new();
    let mut loads: Vec<Value> = Vec::new();
    let mut all_violations = Vec::new();

    for round in 0..rounds {
        let url = trio.ingestd.url();
        // Columns beyond `id,label` the dataset has now; one ingest in six adds one more
        // (`schema_evolution=add_columns`), one in six is a dry run.
        let extra = match http
            .get(format!("{}/datasets/crash", trio.catalogd.url()))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.map_or(0, |m| {
                m["schema"]["fields"]
                    .as_array()
                    .map_or(0, |f| f.len().saturating_sub(2))
            }),
            _ => 0,
        };
        let mut tasks = Vec::new();
        for i in 0..INGESTS_PER_ROUND {
            let mode = if rng.below(3) == 0 {
                "replace"
            } else {
                "append"
            };
            let (columns, option, label) = match rng.below(6) {
                0 => (extra, "&dry_run=true", "dry"),
                1 => (extra + 1, "&schema_evolution=add_columns", "r"),
                2 => (extra, "&max_rejects=1", "r"),
                _ => (extra, "", "r"),
            };
            let header: String = (1..=columns).map(|c| format!(",c{c}")).collect();
            let values: String = (1..=columns).map(|c| format!(",{c}")).collect();
            let mut csv = format!(
                "id,label{header}\n{round}{i},{label}{round}i{i}{values}\n{},x{values}\n",
                rng.next() % 1000
            );
            if option.contains("max_rejects") {
                // A ragged record, set aside.
                csv.push_str(&format!("ragged{round}{i}\n"));
            }
            let request = http
                .post(format!("{url}/ingest?name=crash&mode={mode}{option}"))
                .header("content-type", multipart_content_type())
                .body(multipart_file("file", csv.as_bytes()));
            tasks.push(tokio::spawn(async move {
                match request.send().await {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or(Value::Null),
                    ),
                    Err(_) => (0, Value::Null),
                }
            }));
        }
        ingests += INGESTS_PER_ROUND as u64;
        // A load of the source, one more file in it each round (with this round's columns:
        // a file left from a round whose load was cut may have fallen behind an added
        // column; its load then fails it as drift, which is a file's error).
        let header: String = (1..=extra).map(|c| format!(",c{c}")).collect();
        let values: String = (1..=extra).map(|c| format!(",{c}")).collect();
        std::fs::write(
            source.path().join(format!("round-{round:04}.csv")),
            format!("id,label{header}\n{round}00,load{round}{values}\n"),
        )
        .expect("write a source file");
        let request = http
            .post(format!("{url}/loads?wait=true"))
            .json(&serde_json::json!({"source": "drops", "pattern": "*.csv", "name": "crash"}));
        let load_task = tokio::spawn(async move {
            match request.send().await {
                Ok(r) => (
                    r.status().as_u16(),
                    r.json::<Value>().await.unwrap_or(Value::Null),
                ),
                Err(_) => (0, Value::Null),
            }
        });
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
        let victim = rng.below(3);
        let service = match victim {
            0 => &mut trio.storaged,
            1 => &mut trio.catalogd,
            _ => &mut trio.ingestd,
        };
        let name = service.name.clone();
        tokio::task::block_in_place(|| service.restart_on_same_port())
            .unwrap_or_else(|e| panic!("restarting {name}: {e:#}"));
        kills += 1;
        for task in tasks {
            let (status, body) = task.await.expect("task");
            if status == 200 && body["dry_run"] == true {
                dry_runs.push(body);
            } else if status == 200 {
                oks += 1;
                acknowledged.push(body);
            } else {
                errors += 1;
                assert!(
                    status == 0 || status == 409 || status >= 500,
                    "round {round}: unexpected {status}: {body}"
                );
            }
        }
        match load_task.await.expect("load task") {
            (200, load) => loads.push(load),
            (status, body) => assert!(
                status == 0 || status >= 500,
                "round {round}: unexpected load answer {status}: {body}"
            ),
        }
        wait_ready(&http, [&trio.storaged, &trio.catalogd, &trio.ingestd]).await;
        let found = violations(&http, &trio, &acknowledged, &dry_runs, &loads).await;
        for violation in &found {
            eprintln!("round {round} (killed {name}): VIOLATION {violation}");
        }
        all_violations.extend(found);
    }
    eprintln!(
        "crash test: seed {seed}, {rounds} rounds, {kills} kills, {ingests} ingests ({oks} answered 200, {} dry runs answered 200, {errors} errors), {} loads answered 200 ({} files loaded), {} violations, {:.1}s",
        dry_runs.len(),
        loads.len(),
        loads
            .iter()
            .flat_map(|l| l["files"].as_array().cloned().unwrap_or_default())
            .filter(|f| f["state"] == "loaded")
            .count(),
        all_violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        oks > 0,
        "no ingest ever succeeded: the test exercised nothing"
    );
    assert!(all_violations.is_empty(), "{all_violations:#?}");
}

/// docs/contract.md section 8: an ingest whose version was committed but whose Iceberg metadata
/// could not be written does not answer 200; a catalogd killed in that state writes the
/// metadata at restart (the invariants above hold, the table loads), and the client's retry
/// answers 200 with `existing: true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_committed_without_its_metadata_heals_at_restart() {
    let mut trio = Trio::start(&[]).expect("trio starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    // A regular file where the metadata directory goes: every metadata write fails (as on a
    // failing disk), while the data object and the manifest commit under `_catalog/` do not.
    let dataset_dir = trio.dir.path().join("data/objects/datasets/crash");
    std::fs::create_dir_all(&dataset_dir).unwrap();
    let blocker = dataset_dir.join("metadata");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let ingest = |url: String| {
        http.post(format!("{url}/ingest?name=crash"))
            .header("content-type", multipart_content_type())
            .body(multipart_file("file", b"id,label\n1,a\n2,b\n"))
            .send()
    };

    let first = ingest(trio.ingestd.url()).await.unwrap();
    let status = first.status().as_u16();
    let body: Value = first.json().await.unwrap_or(Value::Null);
    assert!(
        status >= 500,
        "answered {status} without the metadata: {body}"
    );
    let versions: Value = http
        .get(format!("{}/datasets/crash/versions", trio.catalogd.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        versions["versions"][0]["version"], 1,
        "the version was committed before the metadata write: {versions}"
    );
    let table = format!(
        "{}/iceberg/v1/namespaces/lakehouse/tables/crash",
        trio.catalogd.url()
    );
    let before = http.get(&table).send().await.unwrap().status().as_u16();
    assert_ne!(before, 200, "the table loads without its metadata");

    // Killed in that state; the disk recovers; a supervisor restarts catalogd.
    trio.catalogd.kill();
    std::fs::remove_file(&blocker).unwrap();
    tokio::task::block_in_place(|| trio.catalogd.restart_on_same_port()).unwrap();
    wait_ready(&http, [&trio.storaged, &trio.catalogd, &trio.ingestd]).await;
    let found = violations(&http, &trio, &[], &[], &[]).await;
    assert!(found.is_empty(), "after the restart: {found:#?}");

    let retry = ingest(trio.ingestd.url()).await.unwrap();
    assert_eq!(retry.status().as_u16(), 200);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["existing"], true, "{body}");
    assert_eq!(body["manifest"]["version"], 1, "{body}");
    assert_eq!(
        http.get(&table).send().await.unwrap().status().as_u16(),
        200
    );
}
