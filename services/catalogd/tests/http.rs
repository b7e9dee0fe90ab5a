//! catalogd over HTTP: the real `storaged` and `catalogd` binaries on port 0 in a temporary
//! directory (docs/contract.md sections 2 and 6).

use lakehouse_api::{
    ColumnType, DatasetName, Field, IngestMode, ObjectKey, ObjectRef, Schema, Sha256Digest,
    VersionRegisterRequest,
};
use lakehouse_testkit::Service;
use lakehouse_testkit::fixtures::{register_request as request, schema_id_name as schema_v1};
use serde_json::{Value, json};
use std::time::Duration;

/// storaged + catalogd sharing one temporary directory.
struct Stack {
    dir: tempfile::TempDir,
    storaged: Service,
    catalogd: Service,
    http: reqwest::Client,
}

impl Stack {
    fn start() -> Stack {
        let dir = tempfile::tempdir().unwrap();
        let storaged = Service::start(
            "storaged",
            &[
                ("LAKEHOUSE_STORAGED__BIND", "127.0.0.1:0".into()),
                (
                    "LAKEHOUSE_STORAGED__ROOT",
                    dir.path().join("objects").display().to_string(),
                ),
            ],
            dir.path(),
        )
        .unwrap();
        let catalogd = start_catalogd(&storaged, &dir);
        Stack {
            dir,
            storaged,
            catalogd,
            http: reqwest::Client::new(),
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.get_from(&self.catalogd, path).await
    }

    async fn get_from(&self, catalogd: &Service, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", catalogd.url()))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn register(&self, name: &str, request: &VersionRegisterRequest) -> (u16, Value) {
        register_at(&self.http, &self.catalogd.url(), name, request).await
    }

    /// PUTs `content` into storaged as a Parquet object of dataset `name` with `schema`.
    async fn object(&self, name: &str, schema: &Schema, content: &str) -> ObjectRef {
        lakehouse_testkit::put_test_object(&self.storaged.url(), name, schema, content, 2).await
    }
}

fn start_catalogd(storaged: &Service, dir: &tempfile::TempDir) -> Service {
    Service::start(
        "catalogd",
        &[
            ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
            ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
        ],
        dir.path(),
    )
    .unwrap()
}

async fn register_at(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    request: &VersionRegisterRequest,
) -> (u16, Value) {
    let response = http
        .post(format!("{base}/datasets/{name}/versions"))
        .json(request)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn schema_v2() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("price", ColumnType::Float64),
        ],
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<no code>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_existing_drift_append_and_time_travel() {
    let stack = Stack::start();
    let a = stack.object("sales", &schema_v1(), "a,1").await;
    let b = stack.object("sales", &schema_v1(), "b,2").await;

    let (status, v1) = stack
        .register(
            "sales",
            &request(&schema_v1(), vec![a.clone()], IngestMode::Replace),
        )
        .await;
    assert_eq!(status, 200, "{v1}");
    assert_eq!(v1["existing"], json!(false));
    assert_eq!(v1["manifest"]["version"], json!(1));
    assert_eq!(v1["manifest"]["row_count"], json!(2));

    // Retrying the same request: existing, no new version (invariant 4).
    let (status, again) = stack
        .register(
            "sales",
            &request(&schema_v1(), vec![a.clone()], IngestMode::Replace),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(again["existing"], json!(true));
    assert_eq!(again["manifest"], v1["manifest"]);

    // Drift: 409 with the diff, and nothing a reader sees changes (invariant 2).
    let c = stack.object("sales", &schema_v2(), "c,3").await;
    let (status, drift) = stack
        .register(
            "sales",
            &request(&schema_v2(), vec![c], IngestMode::Replace),
        )
        .await;
    assert_eq!(status, 409, "{drift}");
    assert_eq!(code(&drift), "schema_drift");
    let details = &drift["error"]["details"];
    assert_eq!(
        details["current_fingerprint"],
        json!(schema_v1().fingerprint())
    );
    assert_eq!(
        details["attempted_fingerprint"],
        json!(schema_v2().fingerprint())
    );
    assert_eq!(details["added"], json!(["price"]));
    assert_eq!(details["removed"], json!(["name"]));
    let (status, latest) = stack.get("/datasets/sales").await;
    assert_eq!((status, &latest), (200, &v1["manifest"]));

    // Append: v2 holds both objects.
    let (status, v2) = stack
        .register(
            "sales",
            &request(&schema_v1(), vec![b.clone()], IngestMode::Append),
        )
        .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(v2["manifest"]["version"], json!(2));
    assert_eq!(v2["manifest"]["row_count"], json!(4));
    let keys: Vec<&str> = v2["manifest"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, [a.key.as_str(), b.key.as_str()]);
    let (_, latest) = stack.get("/datasets/sales").await;
    assert_eq!(latest, v2["manifest"]);

    time_travel_and_the_version_list(&stack, &v1).await;
    errors_leave_the_latest_version(&stack, &a).await;
    let (status, _) = stack.get("/healthz").await;
    assert_eq!(status, 200);
    let (status, _) = stack.get("/readyz").await;
    assert_eq!(status, 200);
}

/// Time travel and the version list, after `v1` (the first register's answer) and an append.
async fn time_travel_and_the_version_list(stack: &Stack, v1: &Value) {
    let (status, old) = stack.get("/datasets/sales/versions/1").await;
    assert_eq!((status, &old), (200, &v1["manifest"]));
    let (status, versions) = stack.get("/datasets/sales/versions").await;
    assert_eq!(status, 200);
    assert_eq!(versions["name"], json!("sales"));
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);
    assert_eq!(versions["versions"][1]["object_count"], json!(2));
}

/// Unknown routes, datasets and versions, and register requests refused as 400s (a bad
/// name, a fingerprint that is not the schema's, an object storaged does not hold, no
/// objects): version 2 stays the latest.
async fn errors_leave_the_latest_version(stack: &Stack, a: &ObjectRef) {
    for (path, status, expected) in [
        ("/datasets/sales/versions/3", 404, "not_found"),
        ("/datasets/sales/versions/0", 404, "not_found"),
        ("/datasets/nope", 404, "not_found"),
        ("/datasets/nope/versions", 404, "not_found"),
        ("/datasets/-bad", 400, "invalid_name"),
        ("/no/such/route", 404, "not_found"),
    ] {
        let (got, body) = stack.get(path).await;
        assert_eq!((got, code(&body)), (status, expected), "{path}: {body}");
    }
    let (status, body) = stack
        .register(
            "-bad",
            &request(&schema_v1(), vec![a.clone()], IngestMode::Replace),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_name"));
    let mut mismatch = request(&schema_v1(), vec![a.clone()], IngestMode::Replace);
    mismatch.schema_fingerprint = schema_v2().fingerprint();
    let (status, body) = stack.register("sales", &mismatch).await;
    assert_eq!(
        (status, code(&body)),
        (400, "fingerprint_mismatch"),
        "{body}"
    );
    let mut missing = a.clone();
    missing.key = ObjectKey::parquet_object(
        &DatasetName::new("sales").unwrap(),
        &schema_v1().fingerprint(),
        &Sha256Digest::new("f".repeat(64)).unwrap(),
    );
    missing.sha256 = Sha256Digest::new("f".repeat(64)).unwrap();
    let (status, body) = stack
        .register(
            "sales",
            &request(&schema_v1(), vec![missing], IngestMode::Replace),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_object"), "{body}");
    let (status, body) = stack
        .register("sales", &request(&schema_v1(), vec![], IngestMode::Replace))
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_request"), "{body}");
    let (_, latest) = stack.get("/datasets/sales").await;
    assert_eq!(latest["version"], json!(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_through_every_dataset() {
    let stack = Stack::start();
    let names = ["b", "a", "c.1", "c.2", "c-3", "d"];
    for name in names {
        let o = stack.object(name, &schema_v1(), name).await;
        let (status, body) = stack
            .register(name, &request(&schema_v1(), vec![o], IngestMode::Replace))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/datasets?limit=4&cursor={c}"),
            None => "/datasets?limit=4".to_owned(),
        };
        let (status, page) = stack.get(&path).await;
        assert_eq!(status, 200, "{page}");
        let datasets = page["datasets"].as_array().unwrap();
        assert!(datasets.len() <= 4);
        seen.extend(
            datasets
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c-3", "c.1", "c.2", "d"]);
    let (_, page) = stack.get("/datasets?prefix=c.").await;
    let names: Vec<&str> = page["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["c.1", "c.2"]);
    assert_eq!(page["datasets"][0]["latest_version"], json!(1));
    let (status, body) = stack.get("/datasets?limit=0").await;
    assert_eq!((status, code(&body)), (400, "invalid_option"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_and_restart_rebuilds_the_index() {
    let mut stack = Stack::start();
    let a = stack.object("sales", &schema_v1(), "a").await;
    let b = stack.object("sales", &schema_v1(), "b").await;
    let o = stack.object("other", &schema_v1(), "o").await;
    stack
        .register(
            "sales",
            &request(&schema_v1(), vec![a.clone()], IngestMode::Replace),
        )
        .await;
    stack
        .register("sales", &request(&schema_v1(), vec![b], IngestMode::Append))
        .await;
    stack
        .register(
            "other",
            &request(&schema_v1(), vec![o], IngestMode::Replace),
        )
        .await;
    let (_, list_before) = stack.get("/datasets").await;
    let (_, versions_before) = stack.get("/datasets/sales/versions").await;
    let (_, v1_before) = stack.get("/datasets/sales/versions/1").await;

    stack.catalogd.restart().unwrap(); // SIGKILL, then start again
    let (status, list_after) = stack.get("/datasets").await;
    assert_eq!(status, 200);
    assert_eq!(list_after, list_before);
    assert_eq!(list_after["datasets"].as_array().unwrap().len(), 2);
    assert_eq!(
        stack.get("/datasets/sales/versions").await.1,
        versions_before
    );
    assert_eq!(stack.get("/datasets/sales/versions/1").await.1, v1_before);
    // Registering goes on from the rebuilt latest version.
    let (status, again) = stack
        .register("sales", &request(&schema_v1(), vec![a], IngestMode::Append))
        .await;
    assert_eq!((status, &again["existing"]), (200, &json!(true)));
    assert_eq!(again["manifest"]["version"], json!(2));
    assert!(stack.catalogd.log().contains("catalog index rebuilt"));
    // A clean SIGTERM exits 0.
    assert_eq!(stack.catalogd.terminate(Duration::from_secs(10)), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_catalogds_on_one_storaged_race_without_gaps() {
    let stack = Stack::start();
    let second = start_catalogd(&stack.storaged, &stack.dir);
    const N: usize = 20;
    let mut objects = Vec::new();
    for i in 0..N {
        objects.push(
            stack
                .object("race", &schema_v1(), &format!("row {i}"))
                .await,
        );
    }
    let bases = [stack.catalogd.url(), second.url()];
    let tasks: Vec<_> = objects
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let base = bases[i % 2].clone();
            let http = stack.http.clone();
            tokio::spawn(async move {
                register_at(
                    &http,
                    &base,
                    "race",
                    &request(&schema_v1(), vec![object], IngestMode::Append),
                )
                .await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["existing"], json!(false));
        versions.push(body["manifest"]["version"].as_u64().unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (1..=N as u64).collect::<Vec<_>>());
    // Both replicas agree, and the last version holds every object once.
    let (_, first_view) = stack.get("/datasets/race/versions").await;
    let (_, second_view) = stack.get_from(&second, "/datasets/race/versions").await;
    assert_eq!(first_view, second_view);
    assert_eq!(first_view["versions"].as_array().unwrap().len(), N);
    let (_, latest) = stack.get_from(&second, "/datasets/race").await;
    assert_eq!(latest["objects"].as_array().unwrap().len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_from_another_replica_is_a_409_on_this_one() {
    let stack = Stack::start();
    let second = start_catalogd(&stack.storaged, &stack.dir);
    let a = stack.object("shared", &schema_v1(), "a").await;
    let (status, _) = register_at(
        &stack.http,
        &second.url(),
        "shared",
        &request(&schema_v1(), vec![a], IngestMode::Replace),
    )
    .await;
    assert_eq!(status, 200);
    // The first replica never saw "shared": a lookup miss reads storaged before a 404.
    let (status, latest) = stack.get("/datasets/shared").await;
    assert_eq!((status, &latest["version"]), (200, &json!(1)));
    let c = stack.object("shared", &schema_v2(), "c").await;
    let (status, body) = stack
        .register(
            "shared",
            &request(&schema_v2(), vec![c], IngestMode::Replace),
        )
        .await;
    assert_eq!((status, code(&body)), (409, "schema_drift"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalogd_waits_for_storaged_at_start() {
    let dir = tempfile::tempdir().unwrap();
    // catalogd's storaged address is a port this test holds for the whole test: it turns
    // catalogd's first connection away (nobody answers), then forwards every later one to
    // a storaged started only after that refusal.
    let front = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let storaged_url = format!("http://{}", front.local_addr().unwrap());
    let cwd = dir.path().to_owned();
    let catalogd = std::thread::spawn(move || {
        Service::start(
            "catalogd",
            &[
                ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
                ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged_url),
            ],
            &cwd,
        )
    });
    let (refused, _) = front.accept().await.unwrap();
    drop(refused);
    let storaged = Service::start(
        "storaged",
        &[
            ("LAKEHOUSE_STORAGED__BIND", "127.0.0.1:0".into()),
            (
                "LAKEHOUSE_STORAGED__ROOT",
                dir.path().join("objects").display().to_string(),
            ),
        ],
        dir.path(),
    )
    .unwrap();
    let target = storaged.addr;
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = front.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let catalogd = tokio::task::block_in_place(|| catalogd.join().unwrap().unwrap());
    assert!(
        catalogd.log().contains("storaged is not answering yet"),
        "{}",
        catalogd.log()
    );
    let response = reqwest::get(format!("{}/readyz", catalogd.url()))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
