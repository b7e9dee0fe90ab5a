//! Compaction (docs/contract.md section 10) against the real binaries: rows and their order
//! kept (read back with the parquet crate), dry runs, nothing to compact, unknown datasets,
//! races with a replace and with an append (held at a proxy in front of catalogd, so the
//! race is certain, not timed), two compactions at once, files of older schemas, and the
//! automatic compaction past `compact_after_files`.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use lakehouse_testkit::{Cluster, Harness, Service};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Automatic compaction off unless a test turns it on.
fn no_auto() -> Vec<(&'static str, String)> {
    vec![("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".into())]
}

/// A CSV of rows `first..first + count` (`id,name`).
fn csv(first: i64, count: i64) -> Vec<u8> {
    let mut out = String::from("id,name\n");
    for id in first..first + count {
        out.push_str(&format!("{id},name-{id}\n"));
    }
    out.into_bytes()
}

async fn append(h: &Harness, name: &str, first: i64, count: i64) -> Value {
    let (status, body) = h
        .ingest(&format!("name={name}&mode=append"), &csv(first, count))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn compact_at(
    http: &reqwest::Client,
    ingestd: &str,
    name: &str,
    query: &str,
) -> (u16, Value) {
    let response = http
        .post(format!("{ingestd}/datasets/{name}/compact{query}"))
        .send()
        .await
        .expect("ingestd answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

async fn compact(h: &Harness, name: &str, query: &str) -> (u16, Value) {
    compact_at(&h.http, &h.trio.ingestd.url(), name, query).await
}

/// The rows of a Parquet object as `(id, name)` (name `None` for null), read with the
/// parquet crate, and its number of columns.
async fn parquet_rows(h: &Harness, key: &str) -> (Vec<(i64, Option<String>)>, usize) {
    let data = h.stored_bytes(key).await;
    let reader = ParquetRecordBatchReaderBuilder::try_new(data)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut rows = Vec::new();
    let mut columns = 0;
    for batch in reader {
        let batch = batch.expect("a batch");
        columns = batch.num_columns();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        let names = batch.column(1).as_string::<i32>();
        for i in 0..batch.num_rows() {
            let name = (!names.is_null(i)).then(|| names.value(i).to_owned());
            rows.push((ids.value(i), name));
        }
    }
    (rows, columns)
}

/// Every row of a version, in the order of its objects.
async fn version_rows(h: &Harness, manifest: &Value) -> Vec<(i64, Option<String>)> {
    let mut rows = Vec::new();
    for object in manifest["objects"].as_array().expect("objects") {
        rows.extend(
            parquet_rows(h, object["key"].as_str().expect("key"))
                .await
                .0,
        );
    }
    rows
}

fn expected(ranges: &[(i64, i64)]) -> Vec<(i64, Option<String>)> {
    ranges
        .iter()
        .flat_map(|&(first, count)| {
            (first..first + count).map(|id| (id, Some(format!("name-{id}"))))
        })
        .collect()
}

fn keys(manifest: &Value) -> Vec<String> {
    manifest["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| o["key"].as_str().expect("key").to_owned())
        .collect()
}

#[tokio::test]
async fn compaction_keeps_every_row_in_order_and_a_dry_run_writes_nothing() {
    let h = Harness::start(&no_auto());
    let ranges = [(0, 3000), (3000, 10), (3010, 500), (3510, 1)];
    for &(first, count) in &ranges {
        append(&h, "feed", first, count).await;
    }
    let before = h.latest_manifest("feed").await;
    let stored_before = h.stored_objects().await;

    let (status, dry) = compact(&h, "feed", "?dry_run=true").await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["files_removed"], 4);
    assert_eq!(dry["files_added"], 1);
    assert_eq!(dry["rows"], 3511);
    assert_eq!(dry["versions"], serde_json::json!([]));
    assert_eq!(dry["manifest"]["version"], 5, "the version it would make");
    assert_eq!(
        h.stored_objects().await,
        stored_before,
        "a dry run stores nothing"
    );
    assert_eq!(
        h.latest_manifest("feed").await,
        before,
        "a dry run commits nothing"
    );

    let (status, done) = compact(&h, "feed", "").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["existing"], false);
    assert_eq!(done["versions"], serde_json::json!([5]));
    assert_eq!(done["files_removed"], 4);
    assert_eq!(done["files_added"], 1);
    assert_eq!(done["removed"].as_array().map(Vec::len), Some(4));
    assert_eq!(
        done["added"], dry["added"],
        "a dry run names the keys the compaction writes"
    );
    let bytes_before: u64 = before["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["size"].as_u64().unwrap())
        .sum();
    assert_eq!(done["bytes_before"], bytes_before);

    let latest = h.latest_manifest("feed").await;
    assert_eq!(latest["version"], 5);
    assert_eq!(latest["operation"], "compact");
    assert_eq!(latest["row_count"], 3511);
    assert_eq!(keys(&latest).len(), 1);
    assert_eq!(done["bytes_after"], latest["objects"][0]["size"]);
    assert_eq!(version_rows(&h, &latest).await, expected(&ranges));
    // Time travel still reads the files the compaction replaced.
    let (status, v4) = h.catalog("/datasets/feed/versions/4").await;
    assert_eq!(status, 200);
    assert_eq!(version_rows(&h, &v4).await, expected(&ranges));

    let (status, nothing) = compact(&h, "feed", "").await;
    assert_eq!(status, 200, "{nothing}");
    assert_eq!(nothing["manifest"], Value::Null);
    assert_eq!(nothing["files_removed"], 0);
    assert_eq!(
        h.latest_manifest("feed").await["version"],
        5,
        "no version made"
    );
}

#[tokio::test]
async fn large_files_end_runs_and_outputs_are_cut_at_the_target_size() {
    // Files of 2,000 rows are a few KiB; 20,000 rows are past the 60 KiB minimum.
    let h = Harness::start(&[
        ("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".into()),
        ("LAKEHOUSE_INGESTD__COMPACT_MIN_FILE_BYTES", "61440".into()),
        ("LAKEHOUSE_INGESTD__TARGET_FILE_BYTES", "61440".into()),
    ]);
    let ranges = [
        (0, 2000),
        (2000, 2000),
        (4000, 20_000),
        (24_000, 2000),
        (26_000, 2000),
    ];
    for &(first, count) in &ranges {
        append(&h, "runs", first, count).await;
    }
    let big = keys(&h.latest_manifest("runs").await)[2].clone();
    let (status, done) = compact(&h, "runs", "").await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        done["versions"],
        serde_json::json!([6, 7]),
        "one version per run"
    );
    assert_eq!(done["files_removed"], 4);
    let latest = h.latest_manifest("runs").await;
    let live = keys(&latest);
    assert_eq!(live.len(), 3, "{latest}");
    assert_eq!(live[1], big, "the large file stays where it was");
    assert_eq!(version_rows(&h, &latest).await, expected(&ranges));

    // 40,000 small rows in one run, cut into files at the target size.
    let h = Harness::start(&[
        ("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".into()),
        ("LAKEHOUSE_INGESTD__TARGET_FILE_BYTES", "100000".into()),
    ]);
    let ranges: Vec<(i64, i64)> = (0..20).map(|i| (i * 2000, 2000)).collect();
    for &(first, count) in &ranges {
        append(&h, "cut", first, count).await;
    }
    let (status, done) = compact(&h, "cut", "").await;
    assert_eq!(status, 200, "{done}");
    let latest = h.latest_manifest("cut").await;
    let files = latest["objects"].as_array().unwrap();
    assert!(files.len() >= 2 && files.len() < 20, "{latest}");
    for file in files {
        assert!(
            file["size"].as_u64().unwrap() <= 200_000,
            "about the target: {file}"
        );
    }
    assert_eq!(version_rows(&h, &latest).await, expected(&ranges));
}

#[tokio::test]
async fn files_of_an_older_schema_are_rewritten_with_nulls_in_the_added_columns() {
    let h = Harness::start(&no_auto());
    append(&h, "grow", 0, 5).await;
    append(&h, "grow", 5, 5).await;
    let (status, body) = h
        .ingest(
            "name=grow&mode=append&schema_evolution=add_columns",
            b"id,name,extra\n10,name-10,x\n",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, done) = compact(&h, "grow", "").await;
    assert_eq!(status, 200, "{done}");
    let latest = h.latest_manifest("grow").await;
    let live = keys(&latest);
    assert_eq!(live.len(), 1);
    let fingerprint = latest["schema_fingerprint"].as_str().unwrap();
    let hex = fingerprint.strip_prefix("sha256:").unwrap();
    assert!(
        live[0].contains(hex),
        "written under the latest schema: {}",
        live[0]
    );
    let (rows, columns) = parquet_rows(&h, &live[0]).await;
    assert_eq!(columns, 3);
    let mut want = expected(&[(0, 10)]);
    want.push((10, Some("name-10".into())));
    assert_eq!(rows, want);
}

#[tokio::test]
async fn an_unknown_dataset_is_a_404_and_a_bad_dry_run_a_400() {
    let h = Harness::start(&no_auto());
    let (status, body) = compact(&h, "nope", "").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = compact(&h, "bad%20name", "").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_name");
    append(&h, "one", 0, 3).await;
    let (status, body) = compact(&h, "one", "?dry_run=yes").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["option"], "dry_run");
    let (status, body) = compact(&h, "one", "").await;
    assert_eq!(status, 200, "a single file is nothing to compact: {body}");
    assert_eq!(body["manifest"], Value::Null);
}

/// A proxy in front of catalogd that holds the first register naming `replaces` until the
/// test releases it, so a commit can land in between for certain.
struct Hold {
    url: String,
    /// Tells the test the register has arrived (and is held).
    arrived: mpsc::Receiver<()>,
    /// Lets it through.
    release: Option<oneshot::Sender<()>>,
}

async fn hold_compaction_registers(upstream: String) -> Hold {
    let (arrived_tx, arrived) = mpsc::channel(1);
    let (release, released) = oneshot::channel::<()>();
    let gate = Arc::new(Mutex::new(Some((arrived_tx, released))));
    let client = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: Request| {
        let gate = Arc::clone(&gate);
        let client = client.clone();
        let upstream = upstream.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.expect("body");
            let compaction = parts.uri.path().ends_with("/versions")
                && String::from_utf8_lossy(&body).contains("\"replaces\"");
            let held = if compaction {
                gate.lock().unwrap().take()
            } else {
                None
            };
            if let Some((arrived, released)) = held {
                arrived.send(()).await.expect("the test listens");
                released.await.expect("the test releases");
            }
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let mut forward = client.request(parts.method, format!("{upstream}{path}"));
            if let Some(kind) = parts.headers.get("content-type") {
                forward = forward.header("content-type", kind);
            }
            let answer = forward.body(body).send().await.expect("catalogd answers");
            let mut response = Response::builder().status(answer.status().as_u16());
            if let Some(kind) = answer.headers().get("content-type") {
                response = response.header("content-type", kind);
            }
            response
                .body(Body::from(answer.bytes().await.expect("body")))
                .expect("response")
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Hold {
        url,
        arrived,
        release: Some(release),
    }
}

/// A second ingestd of `h`'s trio whose catalogd calls go through `catalogd_url`.
fn second_ingestd(h: &Harness, catalogd_url: &str) -> Service {
    Service::start(
        "ingestd",
        &[
            ("LAKEHOUSE_INGESTD__BIND", "127.0.0.1:0".into()),
            ("LAKEHOUSE_INGESTD__STORAGED_URL", h.trio.storaged.url()),
            ("LAKEHOUSE_INGESTD__CATALOGD_URL", catalogd_url.to_owned()),
            ("LAKEHOUSE_INGESTD__SPOOL_DIR", "data/spool-held".into()),
            ("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".into()),
        ],
        h.trio.dir.path(),
    )
    .expect("a second ingestd starts")
}

/// Starts a compaction through the held ingestd and waits until its register is held.
async fn compaction_held_at_register(
    h: &Harness,
    hold: &mut Hold,
    ingestd: &Service,
    name: &str,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let http = h.http.clone();
    let url = ingestd.url();
    let name = name.to_owned();
    let task = tokio::spawn(async move { compact_at(&http, &url, &name, "").await });
    hold.arrived.recv().await.expect("the compaction registers");
    task
}

#[tokio::test]
async fn a_replace_racing_a_compaction_stops_it_with_nothing_committed() {
    let h = Harness::start(&no_auto());
    for first in [0, 10, 20] {
        append(&h, "race", first, 10).await;
    }
    let mut hold = hold_compaction_registers(h.trio.catalogd.url()).await;
    let held = second_ingestd(&h, &hold.url);
    let task = compaction_held_at_register(&h, &mut hold, &held, "race").await;

    let (status, replaced) = h.ingest("name=race&mode=replace", &csv(100, 5)).await;
    assert_eq!(status, 200, "{replaced}");
    hold.release.take().unwrap().send(()).unwrap();
    let (status, body) = task.await.unwrap();
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict");

    let latest = h.latest_manifest("race").await;
    assert_eq!(
        latest["version"], 4,
        "nothing committed after the replace: {latest}"
    );
    assert_eq!(latest["operation"], "replace");
    assert_eq!(version_rows(&h, &latest).await, expected(&[(100, 5)]));
}

#[tokio::test]
async fn an_append_racing_a_compaction_is_kept() {
    let h = Harness::start(&no_auto());
    for first in [0, 10, 20] {
        append(&h, "feed", first, 10).await;
    }
    let mut hold = hold_compaction_registers(h.trio.catalogd.url()).await;
    let held = second_ingestd(&h, &hold.url);
    let task = compaction_held_at_register(&h, &mut hold, &held, "feed").await;

    let appended = append(&h, "feed", 30, 10).await;
    hold.release.take().unwrap().send(()).unwrap();
    let (status, body) = task.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["versions"], serde_json::json!([5]));

    let latest = h.latest_manifest("feed").await;
    assert_eq!(latest["operation"], "compact");
    let live = keys(&latest);
    assert_eq!(live.len(), 2, "{latest}");
    assert_eq!(live[1], appended["parquet_key"].as_str().unwrap());
    assert_eq!(
        version_rows(&h, &latest).await,
        expected(&[(0, 30), (30, 10)])
    );
}

/// Polls `condition` on the latest manifest of `name` until it holds (failing after a
/// minute: a background task that never runs).
async fn wait_for_latest(h: &Harness, name: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let latest = h.latest_manifest(name).await;
        if condition(&latest) {
            return latest;
        }
        assert!(
            Instant::now() < deadline,
            "never happened; latest: {latest}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_commit_past_compact_after_files_compacts_in_the_background() {
    let h = Harness::start(&[("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "3".into())]);
    let ranges: Vec<(i64, i64)> = (0..4).map(|i| (i * 10, 10)).collect();
    for &(first, count) in &ranges[..3] {
        append(&h, "auto", first, count).await;
    }
    assert_eq!(
        h.latest_manifest("auto").await["version"],
        3,
        "3 small files are not more than 3"
    );
    append(&h, "auto", 30, 10).await;
    let latest = wait_for_latest(&h, "auto", |m| m["operation"] == "compact").await;
    assert_eq!(keys(&latest).len(), 1);
    assert_eq!(version_rows(&h, &latest).await, expected(&ranges));
    // The run is counted once its answer is made, just after the commit that shows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counted = |text: &str| {
        text.lines().any(|line| {
            line.starts_with("lakehouse_ingestd_compactions_total{")
                && line.contains(r#"trigger="auto""#)
                && line.contains(r#"outcome="ok""#)
                && line.ends_with(" 1")
        })
    };
    let text = loop {
        let text = h.ingestd_metrics().await;
        if counted(&text) {
            break text;
        }
        assert!(Instant::now() < deadline, "never counted: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        text.contains("lakehouse_ingestd_compacted_files_total 4"),
        "{text}"
    );
}

#[tokio::test]
async fn two_compactions_at_once_on_two_replicas_commit_once() {
    let cluster = Cluster::start(&[], 2, 2, &no_auto()).expect("cluster starts");
    let http = reqwest::Client::new();
    for first in [0, 10, 20, 30] {
        let response = http
            .post(format!(
                "{}/ingest?name=twice&mode=append",
                cluster.ingestd[0].url()
            ))
            .header("content-type", lakehouse_testkit::multipart_content_type())
            .body(lakehouse_testkit::multipart_file("file", &csv(first, 10)))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let (one, two) = (cluster.ingestd[0].url(), cluster.ingestd[1].url());
    let (a, b) = tokio::join!(
        compact_at(&http, &one, "twice", ""),
        compact_at(&http, &two, "twice", ""),
    );
    for (status, body) in [&a, &b] {
        assert_eq!(*status, 200, "{body}");
    }
    let made: Vec<&Value> = [&a.1, &b.1]
        .into_iter()
        .filter(|body| !body["versions"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(made.len(), 1, "exactly one commits: {a:?} {b:?}");
    let other = if made[0] == &a.1 { &b.1 } else { &a.1 };
    assert!(
        other["existing"] == true || other["manifest"].is_null(),
        "the other found it done: {other}"
    );
    let latest: Value = http
        .get(format!("{}/datasets/twice", cluster.catalogd[1].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(latest["version"], 5, "{latest}");
    assert_eq!(latest["row_count"], 40);
    assert_eq!(latest["objects"].as_array().unwrap().len(), 1);
}

/// The rows of every object of `manifest`, read from `storaged` with the parquet crate.
async fn rows_at(
    http: &reqwest::Client,
    storaged: &str,
    manifest: &Value,
) -> Vec<(i64, Option<String>)> {
    let mut rows = Vec::new();
    for key in keys(manifest) {
        let bytes = http
            .get(format!("{storaged}/objects/{key}"))
            .send()
            .await
            .expect("storaged answers")
            .bytes()
            .await
            .expect("bytes");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("a Parquet file")
            .build()
            .expect("a reader");
        for batch in reader {
            let batch = batch.expect("a batch");
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                rows.push((
                    ids.value(i),
                    (!names.is_null(i)).then(|| names.value(i).to_owned()),
                ));
            }
        }
    }
    rows
}

/// The JSON answer of a GET of `url`.
async fn get_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url).send().await.unwrap().json().await.unwrap()
}

/// Appends and compactions (manual on both replicas, and automatic past 3 small files)
/// racing on 2 ingestd + 2 catalogd: versions stay 1..N, every compact version holds the
/// rows of the version before it in the same order, and the latest holds every appended
/// row exactly once.
async fn compactions_racing_appends_lose_no_row(storaged_envs: Vec<(&str, String)>) {
    const APPENDS: i64 = 24;
    let extra = [
        ("LAKEHOUSE_INGESTD__MAX_CONCURRENT_INGESTS", "64".to_owned()),
        ("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "3".to_owned()),
    ];
    let cluster = Cluster::start(&storaged_envs, 2, 2, &extra).expect("cluster starts");
    let http = reqwest::Client::new();
    let ingest = |replica: usize, first: i64| {
        let request = http
            .post(format!(
                "{}/ingest?name=race&mode=append",
                cluster.ingestd[replica].url()
            ))
            .header("content-type", lakehouse_testkit::multipart_content_type())
            .body(lakehouse_testkit::multipart_file("file", &csv(first, 10)));
        async move {
            let response = request.send().await.expect("ingestd answers");
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.expect("JSON"))
        }
    };
    let (status, first) = ingest(0, 0).await;
    assert_eq!(status, 200, "{first}");
    let appends = futures::future::join_all((1..=APPENDS).map(|i| ingest(i as usize % 2, i * 10)));
    let urls = [cluster.ingestd[0].url(), cluster.ingestd[1].url()];
    let compactions =
        futures::future::join_all((0..6).map(|i| compact_at(&http, &urls[i % 2], "race", "")));
    let (appended, compacted) = tokio::join!(appends, compactions);
    for (status, body) in &appended {
        assert_eq!(*status, 200, "{body}");
    }
    for (status, body) in &compacted {
        assert!(
            *status == 200 || (*status == 409 && body["error"]["code"] == "conflict"),
            "{status} {body}"
        );
    }
    // Background compactions may still be at work: wait for the history to settle (the
    // latest version unchanged across a manual compaction that finds nothing to do).
    let catalogd = cluster.catalogd[0].url();
    let deadline = Instant::now() + Duration::from_secs(120);
    let latest = loop {
        let before: Value = get_json(&http, format!("{catalogd}/datasets/race")).await;
        let (status, answer) = compact_at(&http, &cluster.ingestd[0].url(), "race", "").await;
        let after: Value = get_json(&http, format!("{catalogd}/datasets/race")).await;
        if status == 200 && answer["manifest"].is_null() && before["version"] == after["version"] {
            break after;
        }
        assert!(Instant::now() < deadline, "never settled: {answer}");
    };
    let storaged = cluster.storaged.url();
    let mut want: Vec<(i64, Option<String>)> = expected(&[(0, 10 * (APPENDS + 1))]);
    let mut got = rows_at(&http, &storaged, &latest).await;
    want.sort();
    got.sort();
    assert_eq!(got, want, "every appended row once");

    let last = latest["version"].as_u64().unwrap();
    let mut compact_versions = 0;
    for n in 2..=last {
        let version: Value =
            get_json(&http, format!("{catalogd}/datasets/race/versions/{n}")).await;
        assert_eq!(version["version"], n, "versions are 1..N: {version}");
        if version["operation"] == "compact" {
            compact_versions += 1;
            let before: Value = get_json(
                &http,
                format!("{catalogd}/datasets/race/versions/{}", n - 1),
            )
            .await;
            assert_eq!(
                rows_at(&http, &storaged, &version).await,
                rows_at(&http, &storaged, &before).await,
                "compact version {n} holds the rows of version {} in order",
                n - 1
            );
        }
    }
    assert!(
        compact_versions > 0,
        "no compaction committed: the test exercised nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_compactions_racing_appends_lose_no_row() {
    compactions_racing_appends_lose_no_row(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_compactions_racing_appends_lose_no_row() {
    let Some(envs) = lakehouse_testkit::fresh_s3_storaged_envs().await else {
        return;
    };
    compactions_racing_appends_lose_no_row(envs).await;
}

#[tokio::test]
async fn an_ingest_past_the_target_size_is_stored_as_several_files_in_row_order() {
    // ~530,000 rows of `id,name`: several MB of Parquet in five row groups, against a
    // target of 1 MB, so each row group starts a file of its own (and the first ones are
    // committed before the upload ends: more than `WAITING_FILES` wait).
    let mut envs = no_auto();
    envs.push(("LAKEHOUSE_INGESTD__TARGET_FILE_BYTES", "1000000".into()));
    let h = Harness::start(&envs);
    let rows = 4 * 131_072 + 5000;
    let (status, body) = h.ingest("name=big", &csv(0, rows)).await;
    assert_eq!(status, 200, "{body}");
    let latest = h.latest_manifest("big").await;
    assert_eq!(keys(&latest).len(), 5, "{latest}");
    let counts: Vec<u64> = latest["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["row_count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [131_072, 131_072, 131_072, 131_072, 5000]);
    assert_eq!(version_rows(&h, &latest).await, expected(&[(0, rows)]));
    let stored = h.stored_keys("datasets/big/").await;
    assert_eq!(
        stored.iter().filter(|k| k.ends_with(".parquet")).count(),
        5,
        "{stored:?}"
    );
    // The same upload again is the same five files: a retry is `existing: true`, no version.
    let (status, again) = h.ingest("name=big", &csv(0, rows)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], true, "{again}");
    assert_eq!(again["manifest"]["version"], latest["version"]);
    let (status, again) = h.ingest("name=big&mode=append", &csv(0, rows)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        again["existing"], true,
        "an append the latest version holds: {again}"
    );

    // A new dataset whose first column turns to text on its last row: the speculative pass
    // (guessing int64) had cut files before that row; they are withdrawn, and the pass that
    // verifies the second guess over the spool writes the files again. storaged keeps only
    // the version's.
    let mut late = csv(0, 330_000);
    late.extend_from_slice(b"not-a-number,name-last\n");
    let (status, body) = h.ingest("name=late", &late).await;
    assert_eq!(status, 200, "{body}");
    let latest = h.latest_manifest("late").await;
    assert_eq!(latest["schema"]["fields"][0]["type"], "utf8", "{latest}");
    let mut named = keys(&latest);
    assert_eq!(named.len(), 3, "{latest}");
    let mut stored: Vec<String> = h
        .stored_keys("datasets/late/")
        .await
        .into_iter()
        .filter(|k| k.ends_with(".parquet"))
        .collect();
    named.sort();
    stored.sort();
    assert_eq!(stored, named, "no Parquet object but the version's");
}
