//! Loads from object storage (docs/contract.md section 12): a directory source and an S3
//! bucket (moto's server, when `scripts/test` provides it) of 30 files, some gzipped; a
//! second load skipping all of them; new files loading alone; `force`; every bad input; a
//! symlink that leaves the source; a SIGKILL of ingestd in the middle of a load followed by
//! a second load, after which every file is loaded exactly once. The real binaries on port
//! 0, driven over HTTP.

use lakehouse_testkit::{Harness, create_s3_bucket, s3_endpoint, unique_bucket};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// File `n`'s CSV: `rows` rows whose ids are unique across files.
fn csv(n: u64, rows: u64) -> Vec<u8> {
    let mut text = String::from("id,file,amount,day\n");
    for i in 0..rows {
        text.push_str(&format!(
            "{},{n},{}.{:02},2026-{:02}-{:02}\n",
            n * 1_000_000 + i,
            i % 997,
            i % 100,
            i % 12 + 1,
            i % 28 + 1
        ));
    }
    text.into_bytes()
}

/// 30 files (`part-00.csv` ... `part-29.csv.gz`, every third gzipped) of `3 + n` rows each:
/// the file names and their row counts.
fn thirty_files() -> BTreeMap<String, (Vec<u8>, u64)> {
    (0..30)
        .map(|n| {
            let rows = 3 + n;
            let plain = csv(n, rows);
            if n % 3 == 0 {
                (format!("part-{n:02}.csv.gz"), (gzip(&plain), rows))
            } else {
                (format!("part-{n:02}.csv"), (plain, rows))
            }
        })
        .collect()
}

fn write_files(dir: &Path, files: &BTreeMap<String, (Vec<u8>, u64)>) {
    for (name, (bytes, _)) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, bytes).expect("write a source file");
    }
}

/// The environment giving ingestd the sources `(name, url, extra settings)`.
fn sources_env(sources: &[(&str, String, &str)]) -> (&'static str, String) {
    let entries: Vec<String> = sources
        .iter()
        .map(|(name, url, extra)| {
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(", {extra}")
            };
            format!("{{name = \"{name}\", url = \"{url}\"{extra}}}")
        })
        .collect();
    (
        "LAKEHOUSE_INGESTD__SOURCES",
        format!("[{}]", entries.join(", ")),
    )
}

fn dir_url(dir: &Path) -> String {
    format!("file://{}/", dir.display())
}

/// `POST /loads{query}` with `body`: the status and the JSON answer.
async fn post_load(h: &Harness, query: &str, body: &Value) -> (u16, Value) {
    let response = h
        .http
        .post(format!("{}/loads{query}", h.trio.ingestd.url()))
        .json(body)
        .send()
        .await
        .expect("ingestd answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A load run to its end (`?wait=true`), which must answer 200.
async fn load(h: &Harness, body: Value) -> Value {
    let (status, answer) = post_load(h, "?wait=true", &body).await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn states(load: &Value) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for file in load["files"].as_array().expect("files") {
        *counts
            .entry(file["state"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    counts
}

fn count(load: &Value, state: &str) -> usize {
    states(load).get(state).copied().unwrap_or(0)
}

/// The ledger: `(path, version)` of every file the dataset's versions record.
async fn ledger(h: &Harness, name: &str) -> Vec<(String, u64)> {
    let (status, body) = h.catalog(&format!("/datasets/{name}/loaded-files")).await;
    assert_eq!(status, 200, "{body}");
    body["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| {
            (
                f["file"]["path"].as_str().unwrap_or_default().to_owned(),
                f["version"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// Checks the first load of the thirty files into `name`: every file loaded as a version of
/// its own in key order, the rows all there, each version recording its file.
async fn check_first_load(
    h: &Harness,
    name: &str,
    first: &Value,
    files: &BTreeMap<String, (Vec<u8>, u64)>,
) {
    assert_eq!(first["state"], "done", "{first}");
    assert_eq!(first["files_total"], 30);
    assert_eq!(first["files_done"], 30);
    let bytes: u64 = files.values().map(|(b, _)| b.len() as u64).sum();
    assert_eq!(first["bytes_total"], bytes);
    assert_eq!(first["bytes_done"], bytes);
    assert_eq!(count(first, "loaded"), 30, "{first}");
    let paths: Vec<&str> = first["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(paths, expected, "files are taken in key order");
    for (i, file) in first["files"].as_array().unwrap().iter().enumerate() {
        assert_eq!(file["version"], i as u64 + 1, "{file}");
        assert_eq!(file["existing"], false);
        assert!(file["etag"].is_string(), "{file}");
    }
    let latest = h.latest_manifest(name).await;
    assert_eq!(latest["version"], 30);
    let rows: u64 = files.values().map(|(_, r)| r).sum();
    assert_eq!(latest["row_count"], rows, "every row of every file, once");
    let (_, v1) = h.catalog(&format!("/datasets/{name}/versions/1")).await;
    let recorded = &v1["source"]["file"];
    assert_eq!(recorded["path"], "part-00.csv.gz");
    assert_eq!(recorded["size"], files["part-00.csv.gz"].0.len() as u64);
    assert_eq!(recorded["load_id"], first["load_id"]);
    assert_eq!(v1["source"]["compression"], "gzip");
    assert_eq!(v1["source"]["filename"], "part-00.csv.gz");
}

/// The ledger's lessons, for any source: a second load skips all; new and changed files
/// load alone; `force` loads again what a replace removed.
async fn check_later_loads(
    h: &Harness,
    name: &str,
    source: &str,
    add: impl AsyncFn(&BTreeMap<String, (Vec<u8>, u64)>),
) {
    let body = json!({"source": source, "pattern": "part-*", "name": name});
    let second = load(h, body.clone()).await;
    assert_eq!(second["state"], "done");
    assert_eq!(count(&second, "skipped"), 30, "{second}");
    for file in second["files"].as_array().unwrap() {
        assert_eq!(file["reason"], "already_loaded");
    }
    assert_eq!(
        second["files"][4]["version"], 5,
        "the version that recorded it"
    );
    assert_eq!(h.latest_manifest(name).await["version"], 30, "nothing new");

    // Two new files and one rewritten with other content: those three alone load.
    let mut changed = BTreeMap::new();
    changed.insert("part-30.csv".to_owned(), (csv(30, 5), 5));
    changed.insert("part-31.csv".to_owned(), (csv(31, 6), 6));
    changed.insert("part-01.csv".to_owned(), (csv(101, 7), 7));
    add(&changed).await;
    let third = load(h, body.clone()).await;
    assert_eq!(count(&third, "loaded"), 3, "{third}");
    assert_eq!(count(&third, "skipped"), 29, "{third}");
    let loaded: Vec<&str> = third["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["state"] == "loaded")
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(loaded, ["part-01.csv", "part-30.csv", "part-31.csv"]);
    assert_eq!(h.latest_manifest(name).await["version"], 33);

    // A replace through /ingest removes the loaded rows; the ledger still says loaded, so a
    // plain load skips; `force` loads every file again, as new versions.
    let (status, replaced) = h
        .ingest(&format!("name={name}&mode=replace"), &csv(999, 2))
        .await;
    assert_eq!(status, 200, "{replaced}");
    let skipped = load(h, body.clone()).await;
    assert_eq!(count(&skipped, "skipped"), 32, "{skipped}");
    let mut forced_body = body.clone();
    forced_body["force"] = json!(true);
    let forced = load(h, forced_body).await;
    assert_eq!(forced["force"], true);
    assert_eq!(count(&forced, "loaded"), 32, "{forced}");
    assert!(
        forced["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["existing"] == false)
    );
    assert_eq!(h.latest_manifest(name).await["version"], 34 + 32);
}

#[tokio::test]
async fn a_directory_source_loads_each_file_exactly_once() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    let files = thirty_files();
    write_files(source_dir.path(), &files);
    let h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);

    let first = load(
        &h,
        json!({"source": "local", "pattern": "part-*", "name": "events", "null_values": "NA"}),
    )
    .await;
    check_first_load(&h, "events", &first, &files).await;
    let dir = source_dir.path().to_owned();
    check_later_loads(&h, "events", "local", async |more| write_files(&dir, more)).await;

    // Without `wait`: 202 with the id at once, then GET /loads/{id} follows it to the end.
    let (status, started) = post_load(
        &h,
        "",
        &json!({"source": "local", "pattern": "part-0*", "name": "events"}),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    let id = started["load_id"].as_str().expect("load_id").to_owned();
    let finished = wait_for_end(&h, &id).await;
    assert_eq!(finished["state"], "done");
    assert_eq!(count(&finished, "skipped"), 10, "{finished}");
    // GET /loads: newest first, without the file lists.
    let (status, list) = h.get(format!("{}/loads", h.trio.ingestd.url())).await;
    assert_eq!(status, 200, "{list}");
    let loads = list["loads"].as_array().expect("loads");
    assert_eq!(loads.len(), 6);
    assert_eq!(loads[0]["load_id"], id.as_str());
    assert_eq!(loads[0]["files_skipped"], 10);
    assert_eq!(loads[5]["load_id"], first["load_id"]);
    assert_eq!(loads[5]["files_loaded"], 30);
    assert!(loads[0].get("files").is_none());
    let (status, missing) = h
        .get(format!("{}/loads/no-such-load", h.trio.ingestd.url()))
        .await;
    assert_eq!(status, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "not_found");

    // The metrics count files and bytes by outcome.
    let metrics = h.ingestd_metrics().await;
    assert!(
        metrics.contains(r#"lakehouse_ingestd_load_files_total{outcome="loaded"} 65"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"lakehouse_ingestd_loads_total{state="done"} 6"#));
}

/// Polls `GET /loads/{id}` until the load is no longer running (bounded).
async fn wait_for_end(h: &Harness, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, load) = h.get(format!("{}/loads/{id}", h.trio.ingestd.url())).await;
        assert_eq!(status, 200, "{load}");
        if load["state"] != "running" {
            return load;
        }
        assert!(Instant::now() < deadline, "the load never ended: {load}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn bad_loads_are_400s_and_nothing_is_read_or_stored() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    write_files(source_dir.path(), &thirty_files());
    let h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);
    let base = json!({"source": "local", "pattern": "part-*", "name": "events"});
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("source", json!("nope")), "invalid_option", "source"),
        (
            with("pattern", json!("../secret.csv")),
            "invalid_option",
            "pattern",
        ),
        (
            with("pattern", json!("a/../../x.csv")),
            "invalid_option",
            "pattern",
        ),
        (
            with("pattern", json!("/etc/passwd")),
            "invalid_option",
            "pattern",
        ),
        (
            with("pattern", json!("s3://another-bucket/x.csv")),
            "invalid_option",
            "pattern",
        ),
        (
            with("pattern", json!("file:///etc/passwd")),
            "invalid_option",
            "pattern",
        ),
        (with("pattern", json!("")), "invalid_option", "pattern"),
        // A merge needs its key; a delete takes one key list, not files.
        (with("mode", json!("merge")), "invalid_option", "key"),
        (with("mode", json!("delete")), "invalid_option", "mode"),
        (with("mode", json!("replace")), "invalid_option", "mode"),
        (
            with("delimiter", json!("ab")),
            "invalid_option",
            "delimiter",
        ),
        (
            with("encoding", json!("klingon")),
            "invalid_option",
            "encoding",
        ),
        (with("name", json!("../x")), "invalid_name", ""),
        // Strict bodies name the closest known field (docs/contract.md section 14).
        (with("forse", json!(true)), "invalid_option", "forse"),
    ];
    for (body, code, option) in cases {
        let (status, answer) = post_load(&h, "?wait=true", &body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        if !option.is_empty() {
            assert_eq!(answer["error"]["details"]["option"], option, "{answer}");
        }
    }
    let (status, answer) = post_load(&h, "?wait=yes", &base).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["details"]["option"], "wait");
    // A pattern matching nothing is a load of zero files, done.
    let nothing = load(&h, with("pattern", json!("nothing-*.csv"))).await;
    assert_eq!(nothing["state"], "done", "{nothing}");
    assert_eq!(nothing["files_total"], 0);
    assert_eq!(nothing["files"], json!([]));
    // Nothing was stored, no dataset made, and no load but that one recorded.
    assert_eq!(h.stored_objects().await, Vec::<String>::new());
    let (status, _) = h.catalog("/datasets/events").await;
    assert_eq!(status, 404);
    let (_, list) = h.get(format!("{}/loads", h.trio.ingestd.url())).await;
    assert_eq!(list["loads"].as_array().map(Vec::len), Some(1), "{list}");
}

/// A load in `mode: merge` merges each file by key in turn (docs/contract.md section 11):
/// the later file's rows replace the earlier's with the same key.
#[tokio::test]
async fn a_merge_load_merges_each_file_by_key() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(source_dir.path().join("a.csv"), "id,status\n1,new\n2,new\n").unwrap();
    std::fs::write(
        source_dir.path().join("b.csv"),
        "id,status\n2,paid\n3,new\n",
    )
    .unwrap();
    let h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);
    let body = json!({"source": "local", "pattern": "*.csv", "name": "orders", "mode": "merge", "key": "id"});
    let done = load(&h, body).await;
    assert_eq!(count(&done, "loaded"), 2, "{done}");
    let latest = h.latest_manifest("orders").await;
    assert_eq!(latest["key"], json!(["id"]));
    assert_eq!(latest["operation"], "merge");
    assert_eq!(latest["row_count"], 3, "{latest}");
    let mut statuses = Vec::new();
    for object in latest["objects"].as_array().unwrap() {
        let bytes = h.stored_bytes(object["key"].as_str().unwrap()).await;
        for batch in parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
        {
            use arrow_array::cast::AsArray;
            let batch = batch.unwrap();
            let ids = batch
                .column(0)
                .as_primitive::<arrow_array::types::Int64Type>();
            let status = batch.column(1).as_string::<i32>();
            for i in 0..batch.num_rows() {
                statuses.push((ids.value(i), status.value(i).to_owned()));
            }
        }
    }
    statuses.sort();
    let want = [(1, "new"), (2, "paid"), (3, "new")].map(|(i, s)| (i, s.to_owned()));
    assert_eq!(statuses, want);
}

#[tokio::test]
async fn a_symlink_out_of_the_source_is_that_files_error_and_is_never_read() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(outside.path().join("secret.csv"), csv(7, 1000)).unwrap();
    std::fs::create_dir(outside.path().join("secrets")).unwrap();
    std::fs::write(outside.path().join("secrets/more.csv"), csv(8, 1000)).unwrap();
    std::fs::write(source_dir.path().join("a.csv"), csv(1, 4)).unwrap();
    std::fs::write(source_dir.path().join("b.csv"), csv(2, 5)).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.csv"),
        source_dir.path().join("link.csv"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secrets"),
        source_dir.path().join("dir"),
    )
    .unwrap();
    // A link that stays inside is fine: it reads the file it names.
    std::os::unix::fs::symlink(
        source_dir.path().join("a.csv"),
        source_dir.path().join("same.csv"),
    )
    .unwrap();
    let h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);

    let done = load(
        &h,
        json!({"source": "local", "pattern": "**/*.csv", "name": "t"}),
    )
    .await;
    assert_eq!(done["state"], "done", "{done}");
    let by_path: BTreeMap<&str, &Value> = done["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["path"].as_str().unwrap(), f))
        .collect();
    for escaped in ["dir/more.csv", "link.csv"] {
        let file = by_path[escaped];
        assert_eq!(file["state"], "failed", "{file}");
        assert_eq!(file["error"]["code"], "invalid_request", "{file}");
        assert!(
            file["error"]["message"]
                .as_str()
                .unwrap()
                .contains("outside the source's directory"),
            "{file}"
        );
    }
    assert_eq!(by_path["a.csv"]["state"], "loaded");
    assert_eq!(by_path["b.csv"]["state"], "loaded");
    // same.csv holds a.csv's bytes: the dataset already holds that object.
    assert_eq!(by_path["same.csv"]["state"], "loaded");
    assert_eq!(by_path["same.csv"]["existing"], true);
    assert_eq!(
        h.latest_manifest("t").await["row_count"],
        9,
        "no row from outside"
    );
}

#[tokio::test]
async fn a_failing_file_is_recorded_and_the_load_goes_on() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(source_dir.path().join("1-good.csv"), csv(1, 3)).unwrap();
    std::fs::write(
        source_dir.path().join("2-ragged.csv"),
        b"id,file,amount,day\n1,2\n",
    )
    .unwrap();
    std::fs::write(source_dir.path().join("3-drift.csv"), b"other\nx\n").unwrap();
    std::fs::write(source_dir.path().join("4-good.csv"), csv(4, 3)).unwrap();
    let h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);
    let done = load(
        &h,
        json!({"source": "local", "pattern": "*.csv", "name": "t"}),
    )
    .await;
    assert_eq!(done["state"], "done", "{done}");
    let files = done["files"].as_array().unwrap();
    assert_eq!(files[0]["state"], "loaded");
    assert_eq!(files[1]["state"], "failed");
    assert_eq!(files[1]["error"]["code"], "malformed_csv");
    assert_eq!(files[1]["error"]["details"]["line"], 2);
    assert_eq!(files[2]["state"], "failed");
    assert_eq!(files[2]["error"]["code"], "schema_drift");
    assert_eq!(files[3]["state"], "loaded");
    assert_eq!(files[3]["version"], 2);
    // The failed files are not in the ledger: the next load tries them again.
    let again = load(
        &h,
        json!({"source": "local", "pattern": "*.csv", "name": "t"}),
    )
    .await;
    assert_eq!(
        states(&again),
        BTreeMap::from([("failed".into(), 2), ("skipped".into(), 2)])
    );
}

/// PUTs `bytes` at `bucket/key` on the S3 test server, signed (object_store's client, as any
/// writer of the bucket would), so that a rewrite of a key is accepted too.
async fn put_s3(endpoint: &str, bucket: &str, key: &str, bytes: Vec<u8>) {
    use object_store::ObjectStoreExt;
    let store = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_allow_http(true)
        .with_access_key_id("lakehouse-test")
        .with_secret_access_key("lakehouse-test")
        .build()
        .expect("an S3 client");
    store
        .put(&object_store::path::Path::from(key), bytes.into())
        .await
        .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
}

#[tokio::test]
async fn an_s3_source_loads_each_file_exactly_once() {
    let Some(endpoint) = s3_endpoint() else {
        return;
    };
    let bucket = unique_bucket();
    create_s3_bucket(&endpoint, &bucket).await.expect("bucket");
    let files = thirty_files();
    for (name, (bytes, _)) in &files {
        put_s3(&endpoint, &bucket, &format!("drops/{name}"), bytes.clone()).await;
    }
    // Outside the source's prefix: never matched.
    put_s3(&endpoint, &bucket, "elsewhere/part-99.csv", csv(99, 3)).await;
    let settings = format!(
        "endpoint = \"{endpoint}\", region = \"us-east-1\", allow_http = true, \
         access_key_id_env = \"SOURCE_KEY\", secret_access_key_env = \"SOURCE_SECRET\""
    );
    let h = Harness::start(&[
        sources_env(&[
            ("bucket", format!("s3://{bucket}/drops/"), settings.as_str()),
            ("gone", format!("s3://{bucket}-missing/"), settings.as_str()),
            (
                "down",
                "s3://any/".into(),
                "endpoint = \"http://127.0.0.1:9\", allow_http = true",
            ),
        ]),
        ("SOURCE_KEY", "lakehouse-test".into()),
        ("SOURCE_SECRET", "lakehouse-test".into()),
        ("AWS_ACCESS_KEY_ID", "lakehouse-test".into()),
        ("AWS_SECRET_ACCESS_KEY", "lakehouse-test".into()),
    ]);

    let first = load(
        &h,
        json!({"source": "bucket", "pattern": "part-*", "name": "events"}),
    )
    .await;
    check_first_load(&h, "events", &first, &files).await;
    assert!(
        first["files"][0]["etag"].as_str().unwrap().contains('"'),
        "S3's own ETag: {first}"
    );
    let (endpoint2, bucket2) = (endpoint.clone(), bucket.clone());
    check_later_loads(&h, "events", "bucket", async move |more| {
        for (name, (bytes, _)) in more {
            put_s3(
                &endpoint2,
                &bucket2,
                &format!("drops/{name}"),
                bytes.clone(),
            )
            .await;
        }
    })
    .await;

    // A source that cannot be listed fails its load, saying why; the service stays up.
    for source in ["gone", "down"] {
        let failed = load(
            &h,
            json!({"source": source, "pattern": "*", "name": "other"}),
        )
        .await;
        assert_eq!(failed["state"], "failed", "{failed}");
        assert_eq!(failed["error"]["code"], "upstream_error", "{failed}");
        assert_eq!(failed["error"]["details"]["source"], source);
    }
    let (status, _) = h.get(format!("{}/readyz", h.trio.ingestd.url())).await;
    assert_eq!(status, 200);
    assert_eq!(ledger(&h, "events").await.len(), 30 + 3 + 32);
}

#[tokio::test]
async fn a_load_cut_by_sigkill_is_finished_by_posting_it_again_each_file_once() {
    let source_dir = tempfile::tempdir().expect("tempdir");
    // Files large enough that the load is still running when ingestd is killed.
    let files: BTreeMap<String, (Vec<u8>, u64)> = (0..24)
        .map(|n| (format!("f-{n:02}.csv"), (csv(n, 20_000), 20_000)))
        .collect();
    write_files(source_dir.path(), &files);
    let mut h = Harness::start(&[sources_env(&[("local", dir_url(source_dir.path()), "")])]);
    let body = json!({"source": "local", "pattern": "*.csv", "name": "cut"});
    let (status, started) = post_load(&h, "", &body).await;
    assert_eq!(status, 202, "{started}");
    let id = started["load_id"].as_str().unwrap().to_owned();
    // Kill ingestd once a few files are in and one is being read.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, load) = h.get(format!("{}/loads/{id}", h.trio.ingestd.url())).await;
        let done = load["files_done"].as_u64().unwrap_or(0);
        assert!(
            load["state"] == "running",
            "the load ended before the kill: {load}"
        );
        if done >= 5 && load["bytes_done"].as_u64() > Some(0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the load made no progress: {load}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    h.trio.ingestd.kill();
    h.trio
        .ingestd
        .restart_on_same_port()
        .expect("ingestd restarts");
    let before = ledger(&h, "cut").await.len();
    assert!(
        (5..24).contains(&before),
        "{before} files were committed before the kill"
    );

    let second = load(&h, body).await;
    assert_eq!(second["state"], "done", "{second}");
    assert_eq!(count(&second, "skipped"), before, "{second}");
    assert_eq!(count(&second, "loaded"), 24 - before, "{second}");
    let recorded = ledger(&h, "cut").await;
    let mut paths: Vec<&str> = recorded.iter().map(|(p, _)| p.as_str()).collect();
    paths.sort_unstable();
    let expected: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(paths, expected, "every file recorded exactly once");
    let latest = h.latest_manifest("cut").await;
    assert_eq!(latest["row_count"], 24 * 20_000, "every row exactly once");
    assert_eq!(latest["version"], 24);
}
