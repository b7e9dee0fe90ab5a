//! Crash test (docs/decisions.md, "Hostile world"): concurrent ingests while storaged, catalogd
//! or ingestd is SIGKILLed at a random moment and restarted; after every round the
//! invariants of docs/contract.md section 2 (and section 8's Iceberg metadata) are checked:
//! - every manifest version references objects that exist and hash to their keys (1, 7);
//! - versions are 1..N without gaps;
//! - an answer cut by a kill is a 502 or 503 (or none, when ingestd itself died), never a
//!   500;
//! - every 200 a client received (an ingest's or a compaction's) is in the history, with the
//!   same objects (3), unless a drop removed its version since;
//! - no spool file is left behind (5);
//! - each version's schema is the previous one's, or it plus columns added at the end (2:
//!   some ingests add a column with `schema_evolution=add_columns`), within one dataset;
//! - compactions (docs/contract.md section 10; one round in two asks for one, racing the
//!   ingests and the kill): each `compact` version holds, as a multiset, exactly the rows of
//!   the version before it (read back through the `parquet` crate's Arrow reader); every
//!   third round also compacts with nothing killed, so that compactions commit often;
//! - drops (section 14; one round in eight): versions stay 1..N without gaps (the tombstone
//!   included), the versions up to the latest tombstone are gone and every check above holds
//!   for the dataset made under the name since;
//! - a `dry_run=true` answered 200 wrote nothing: its object is not stored and no version
//!   names it;
//! - loads (docs/contract.md section 12): each round adds a file to a directory source and
//!   loads the directory; no source file is recorded by two versions (each file loaded
//!   exactly once, whatever was killed), and every file a finished load reports loaded or
//!   skipped is recorded by the version it names;
//! - merges and deletes by key (docs/contract.md section 11; crash/keyed.rs): each round a
//!   merge, a delete and an append of a keyed dataset race the kill; every committed version
//!   holds exactly the previous version's rows with its own upload applied;
//! - the rejects object of an upload with `max_rejects=1` (and one bad record) named in a
//!   version exists and hashes to its key;
//! - Iceberg (section 8): every acknowledged version's metadata was stored before its 200;
//!   the table loads at the latest version and every file its metadata names exists
//!   (followed through the Avro manifest lists and manifests); every committed version's
//!   metadata JSON exists and parses.
//!
//! A second test kills catalogd between a version's commit and its metadata write (made to
//! fail) and checks that the restart heals it; a third (crash/partitioned.rs) kills ingestd
//! in the middle of a partitioned ingest.
//! Bounded: `LAKEHOUSE_CRASH_ROUNDS` rounds (default 30) of 6 ingests each (plus a load, and
//! maybe a compaction and a drop); the seed is
//! `LAKEHOUSE_CRASH_SEED` (default 1) and printed, so a failing run can be replayed.

#[path = "crash/iceberg.rs"]
mod iceberg;
#[path = "crash/invariants.rs"]
mod invariants;
#[path = "crash/keyed.rs"]
mod keyed;
#[path = "crash/partitioned.rs"]
mod partitioned;
#[path = "crash/rows.rs"]
mod rows;

use lakehouse_testkit::{Service, Trio, multipart_content_type, multipart_file};
use serde_json::Value;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

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

/// What the clients were answered, kept across rounds for the invariants.
#[derive(Default)]
struct Observed {
    /// 200 answers of ingests and of compactions that made a version.
    acknowledged: Vec<Value>,
    /// 200 answers of `dry_run=true` ingests.
    dry_runs: Vec<Value>,
    /// 200 answers of `POST /loads?wait=true`.
    loads: Vec<Value>,
    /// Counts for the closing line.
    ingests: u64,
    oks: u64,
    errors: u64,
    compactions: u64,
    drops: u64,
}

/// Sends `request` on its own task: (status, JSON body), status 0 when no answer came.
fn spawn_answer(request: reqwest::RequestBuilder) -> JoinHandle<(u16, Value)> {
    tokio::spawn(async move {
        match request.send().await {
            Ok(r) => (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            ),
            Err(_) => (0, Value::Null),
        }
    })
}

/// How many columns beyond `id,label` the dataset has now (0 when there is none).
async fn extra_columns(http: &reqwest::Client, trio: &Trio) -> usize {
    match http
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
    }
}

/// The round's ingests: one in three replaces, one in six is a dry run, one in six adds a
/// column (`schema_evolution=add_columns`), one in six sets a ragged record aside.
fn spawn_ingests(
    http: &reqwest::Client,
    url: &str,
    round: u64,
    extra: usize,
    rng: &mut Rng,
) -> Vec<JoinHandle<(u16, Value)>> {
    (0..INGESTS_PER_ROUND)
        .map(|i| {
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
            spawn_answer(
                http.post(format!("{url}/ingest?name=crash&mode={mode}{option}"))
                    .header("content-type", multipart_content_type())
                    .body(multipart_file("file", csv.as_bytes())),
            )
        })
        .collect()
}

/// A load of the source, one more file in it each round (with this round's columns: a file
/// left from a round whose load was cut may have fallen behind an added column; its load
/// then fails it as drift, which is a file's error).
fn spawn_load(
    http: &reqwest::Client,
    url: &str,
    source: &std::path::Path,
    round: u64,
    extra: usize,
) -> JoinHandle<(u16, Value)> {
    let header: String = (1..=extra).map(|c| format!(",c{c}")).collect();
    let values: String = (1..=extra).map(|c| format!(",{c}")).collect();
    std::fs::write(
        source.join(format!("round-{round:04}.csv")),
        format!("id,label{header}\n{round}00,load{round}{values}\n"),
    )
    .expect("write a source file");
    spawn_answer(
        http.post(format!("{url}/loads?wait=true"))
            .json(&serde_json::json!({"source": "drops", "pattern": "*.csv", "name": "crash"})),
    )
}

/// Collects one round's answers into `observed`, failing on an answer no fault explains.
async fn collect(
    observed: &mut Observed,
    round: u64,
    ingests: Vec<JoinHandle<(u16, Value)>>,
    load: JoinHandle<(u16, Value)>,
    compaction: Option<JoinHandle<(u16, Value)>>,
    drop: Option<JoinHandle<(u16, Value)>>,
) {
    // A killed service is a 502 or 503 (or no answer, when ingestd itself died), never a 500.
    let faulted = |status: u16| matches!(status, 0 | 502 | 503);
    for task in ingests {
        let (status, body) = task.await.expect("ingest task");
        observed.ingests += 1;
        match status {
            200 if body["dry_run"] == true => observed.dry_runs.push(body),
            200 => {
                observed.oks += 1;
                observed.acknowledged.push(body);
            }
            _ => {
                observed.errors += 1;
                assert!(
                    status == 409 || faulted(status),
                    "round {round}: ingest {status}: {body}"
                );
            }
        }
    }
    match load.await.expect("load task") {
        (200, body) => observed.loads.push(body),
        (status, body) => assert!(faulted(status), "round {round}: load {status}: {body}"),
    }
    if let Some(task) = compaction {
        record_compaction(observed, round, task).await;
    }
    if let Some(task) = drop {
        match task.await.expect("drop task") {
            (200, _) => observed.drops += 1,
            (status, body) => assert!(
                status == 404 || status == 409 || faulted(status),
                "round {round}: drop {status}: {body}"
            ),
        }
    }
}

/// Records a compaction's answer: a 200 that made a version is acknowledged.
async fn record_compaction(observed: &mut Observed, round: u64, task: JoinHandle<(u16, Value)>) {
    match task.await.expect("compaction task") {
        (200, body) => {
            observed.compactions += 1;
            if body["manifest"].is_object() {
                observed.acknowledged.push(body);
            }
        }
        // 404: no dataset (yet, or dropped); 409: a replace or a drop removed its files; a
        // killed service is a 502 or 503 (or no answer), never a 500.
        (status, body) => assert!(
            matches!(status, 0 | 404 | 409 | 502 | 503),
            "round {round}: compaction {status}: {body}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_never_break_the_invariants() {
    let rounds = env_number("LAKEHOUSE_CRASH_ROUNDS", 30);
    let seed = env_number("LAKEHOUSE_CRASH_SEED", 1).max(1);
    let mut rng = Rng(seed);
    // The source of the loads in the mix: one new file per round.
    let source = tempfile::tempdir().expect("tempdir");
    let sources = format!(
        "[{{name = \"drops\", url = \"file://{}/\"}}]",
        source.path().display()
    );
    let mut trio = Trio::start(&[
        (
            "LAKEHOUSE_INGESTD__MAX_CONCURRENT_INGESTS",
            (INGESTS_PER_ROUND + 5).to_string(),
        ),
        ("LAKEHOUSE_INGESTD__SOURCES", sources),
    ])
    .expect("trio starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let started = Instant::now();
    let mut observed = Observed::default();
    let mut keyed = keyed::Keyed::default();
    let mut all_violations = Vec::new();
    for round in 0..rounds {
        let url = trio.ingestd.url();
        let extra = extra_columns(&http, &trio).await;
        let ingests = spawn_ingests(&http, &url, round, extra, &mut rng);
        let keyed_requests = keyed.spawn(&http, &url, round, &mut rng);
        let load = spawn_load(&http, &url, source.path(), round, extra);
        let compaction = (rng.below(2) == 0)
            .then(|| spawn_answer(http.post(format!("{url}/datasets/crash/compact"))));
        let drop = (rng.below(8) == 0)
            .then(|| spawn_answer(http.delete(format!("{}/datasets/crash", trio.catalogd.url()))));
        // Up to about two debug-build ingests long: some answers come before the kill, some
        // are cut by it.
        tokio::time::sleep(Duration::from_millis(rng.below(150))).await;
        let service = match rng.below(3) {
            0 => &mut trio.storaged,
            1 => &mut trio.catalogd,
            _ => &mut trio.ingestd,
        };
        let name = service.name.clone();
        tokio::task::block_in_place(|| service.restart_on_same_port())
            .unwrap_or_else(|e| panic!("restarting {name}: {e:#}"));
        collect(&mut observed, round, ingests, load, compaction, drop).await;
        keyed.collect(round, keyed_requests).await;
        wait_ready(&http, [&trio.storaged, &trio.catalogd, &trio.ingestd]).await;
        if round % 3 == 2 {
            // A compaction with nothing killed, so that compactions commit often enough for
            // the row invariant to bite (the racing one above is mostly cut by the kill).
            let url = trio.ingestd.url();
            let quiet = spawn_answer(http.post(format!("{url}/datasets/crash/compact")));
            record_compaction(&mut observed, round, quiet).await;
        }
        let mut found = invariants::violations(&http, &trio, "crash", &observed).await;
        found.extend(keyed.violations(&http, &trio).await);
        for violation in &found {
            eprintln!("round {round} (killed {name}): VIOLATION {violation}");
        }
        all_violations.extend(found);
    }
    let loaded = observed
        .loads
        .iter()
        .flat_map(|l| l["files"].as_array().cloned().unwrap_or_default())
        .filter(|f| f["state"] == "loaded")
        .count();
    eprintln!(
        "crash test: seed {seed}, {rounds} rounds, {rounds} kills, {} ingests ({} answered 200 \
         with a version, {} dry runs answered 200, {} errors), {} loads answered 200 ({loaded} \
         files loaded), {} compactions and {} drops answered 200, {} keyed versions checked, \
         {} violations, {:.1}s",
        observed.ingests,
        observed.acknowledged.len() as u64
            - observed.compactions.min(observed.acknowledged.len() as u64),
        observed.dry_runs.len(),
        observed.errors,
        observed.loads.len(),
        observed.compactions,
        observed.drops,
        keyed.versions,
        all_violations.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        observed.oks > 0,
        "no ingest ever succeeded: the test exercised nothing"
    );
    assert!(
        keyed.versions > 0,
        "no keyed version was committed: the merge invariant checked nothing"
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
    let found = invariants::violations(&http, &trio, "crash", &Observed::default()).await;
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
