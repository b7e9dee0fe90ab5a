//! Garbage collection and retention over HTTP (docs/decisions.md, "Garbage collection and retention"): the real `storaged` and `catalogd`
//! binaries on port 0 in a temporary directory.

use lakehouse_api::{IngestMode, ObjectRef};
use lakehouse_client::StoragedClient;
use lakehouse_testkit::Service;
use lakehouse_testkit::fixtures::{register_request, schema_id_name as schema};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn start_storaged(dir: &tempfile::TempDir) -> Service {
    Service::start(
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
    .unwrap()
}

/// A catalogd keeping only the latest version, with the given grace and schedule.
fn start_catalogd(
    storaged: &Service,
    dir: &tempfile::TempDir,
    gc_grace_ms: u64,
    gc_interval_ms: u64,
) -> Service {
    Service::start(
        "catalogd",
        &[
            ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
            ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
            ("LAKEHOUSE_CATALOGD__RETAIN_VERSIONS", "1".into()),
            ("LAKEHOUSE_CATALOGD__GC_GRACE_MS", gc_grace_ms.to_string()),
            (
                "LAKEHOUSE_CATALOGD__GC_INTERVAL_MS",
                gc_interval_ms.to_string(),
            ),
        ],
        dir.path(),
    )
    .unwrap()
}

/// PUTs `content` into storaged as an object of `sales`.
async fn put_object(storaged: &StoragedClient, content: &str) -> ObjectRef {
    lakehouse_testkit::put_test_object(storaged.base_url(), "sales", &schema(), content, 1).await
}

async fn register(http: &reqwest::Client, catalogd: &Service, object: &ObjectRef) -> Value {
    let request = register_request(&schema(), vec![object.clone()], IngestMode::Replace);
    let response = http
        .post(format!("{}/datasets/sales/versions", catalogd.url()))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: String) -> (u16, Value) {
    let response = http.request(method, url).send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn exists(storaged: &StoragedClient, object: &ObjectRef) -> bool {
    match storaged.head(&object.key).await {
        Ok(_) => true,
        Err(error) if error.is_not_found() => false,
        Err(error) => panic!("HEAD {}: {error}", object.key),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_gc_dry_run_real_deletion_schedule_and_410_gone() {
    let dir = tempfile::tempdir().unwrap();
    let storaged = start_storaged(&dir);
    let client = StoragedClient::new(&storaged.url()).unwrap();
    let http = reqwest::Client::new();
    // No grace at all, no schedule: only POST /admin/gc collects.
    let eager = start_catalogd(&storaged, &dir, 0, 0);

    let v1 = put_object(&client, "1,old").await;
    let v2 = put_object(&client, "2,new").await;
    register(&http, &eager, &v1).await;
    register(&http, &eager, &v2).await;
    let orphan = put_object(&client, "3,never registered").await;

    only_the_latest_is_retained(&http, &eager).await;
    let (v1_files, v2_files) = metadata_files_by_version(&client).await;
    // A catalogd with a long grace would delete nothing: every candidate is young.
    let patient = start_catalogd(&storaged, &dir, 3_600_000, 0);
    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/admin/gc?dry_run=true", patient.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["would_delete"], json!([]));
    assert_eq!(
        (
            &body["skipped_young"],
            &body["retained_objects"],
            &body["scanned_objects"]
        ),
        (&json!(2 + 3), &json!(1 + 4), &json!(3 + 7))
    );

    collect(
        &http,
        &client,
        &eager,
        (&v1, &v2, &orphan),
        &v1_files,
        &v2_files,
    )
    .await;
    the_schedule_collects(&client, &storaged, &dir, &v2).await;
}

/// Retention: only the latest is kept; version 1 is 410 gone and marked in the list.
async fn only_the_latest_is_retained(http: &reqwest::Client, eager: &Service) {
    let (status, body) = call(
        http,
        reqwest::Method::GET,
        format!("{}/datasets/sales/versions/1", eager.url()),
    )
    .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], json!("gone"));
    assert_eq!(
        body["error"]["details"],
        json!({"name": "sales", "version": 1})
    );
    let (status, body) = call(
        http,
        reqwest::Method::GET,
        format!("{}/datasets/sales/versions/2", eager.url()),
    )
    .await;
    assert_eq!((status, &body["version"]), (200, &json!(2)));
    let (status, body) = call(
        http,
        reqwest::Method::GET,
        format!("{}/datasets/sales/versions", eager.url()),
    )
    .await;
    assert_eq!(status, 200);
    let gone: Vec<&Value> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["gone"])
        .collect();
    assert_eq!(gone, [&json!(true), &json!(false)]);
}

/// The Iceberg metadata (docs/contract.md section 8): version 2's metadata JSON, manifest list and
/// manifests are referenced; version 1's (its snapshot expired) are candidates. Version 1's
/// files and version 2's, by key.
async fn metadata_files_by_version(client: &StoragedClient) -> (Vec<String>, Vec<String>) {
    let metadata = client
        .list("datasets/sales/metadata/", None, None)
        .await
        .unwrap();
    let (v1_files, v2_files): (Vec<String>, Vec<String>) = metadata
        .objects
        .iter()
        .map(|o| o.key.to_string())
        .partition(|key| {
            let file = key.rsplit('/').next().unwrap();
            file.starts_with("v1.") || file.starts_with("v1-") || file.ends_with("-v1.avro")
        });
    assert_eq!((v1_files.len(), v2_files.len()), (3, 4), "{metadata:?}");
    (v1_files, v2_files)
}

/// A dry run lists version 1's object, its Iceberg files and the orphan and deletes nothing;
/// a real run deletes exactly those; a bad `dry_run` is a 400.
async fn collect(
    http: &reqwest::Client,
    client: &StoragedClient,
    eager: &Service,
    (v1, v2, orphan): (&ObjectRef, &ObjectRef, &ObjectRef),
    v1_files: &[String],
    v2_files: &[String],
) {
    // Dry run: lists version 1's object, its Iceberg files and the orphan, deletes nothing.
    let mut doomed: Vec<String> = v1_files.to_vec();
    doomed.extend([v1.key.to_string(), orphan.key.to_string()]);
    doomed.sort_unstable();
    let doomed = json!(doomed);
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{}/admin/gc?dry_run=true", eager.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], json!(true));
    assert_eq!(body["deleted"], json!([]));
    assert_eq!(body["would_delete"], doomed);
    assert_eq!(body["expired_versions"], json!(1));
    assert!(exists(client, v1).await && exists(client, orphan).await);

    // Real run: deletes exactly those; the latest version's object and every manifest stay.
    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{}/admin/gc", eager.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["dry_run"], json!(false));
    assert_eq!(body["deleted"], doomed);
    assert_eq!(body["errors"], json!([]));
    assert!(!exists(client, v1).await && !exists(client, orphan).await);
    assert!(exists(client, v2).await);
    let left: Vec<String> = client
        .list("datasets/sales/metadata/", None, None)
        .await
        .unwrap()
        .objects
        .iter()
        .map(|o| o.key.to_string())
        .collect();
    assert_eq!(
        left, v2_files,
        "the latest metadata and what it references stay"
    );
    let manifests = client
        .list("_catalog/datasets/sales/", None, None)
        .await
        .unwrap();
    assert_eq!(manifests.objects.len(), 2);
    let (status, body) = call(
        http,
        reqwest::Method::GET,
        format!("{}/datasets/sales", eager.url()),
    )
    .await;
    assert_eq!((status, &body["version"]), (200, &json!(2)));
    assert!(
        eager
            .log_once_a_line_holds(&["garbage collection run complete"])
            .contains("garbage collection run complete")
    );

    let (status, body) = call(
        http,
        reqwest::Method::POST,
        format!("{}/admin/gc?dry_run=maybe", eager.url()),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_option"))
    );
}

/// The schedule runs the same collection by itself.
async fn the_schedule_collects(
    client: &StoragedClient,
    storaged: &Service,
    dir: &tempfile::TempDir,
    v2: &ObjectRef,
) {
    let late_orphan = put_object(client, "4,crashed before register").await;
    let scheduled = start_catalogd(storaged, dir, 0, 100);
    let deadline = Instant::now() + Duration::from_secs(30);
    while exists(client, &late_orphan).await {
        assert!(
            Instant::now() < deadline,
            "schedule never collected: {}",
            scheduled.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(exists(client, v2).await);
    assert!(
        scheduled
            .log_once_a_line_holds(&["garbage collection scheduled"])
            .contains("garbage collection scheduled")
    );
}

/// The dataset `sales` is not found on the catalogd at `base`: not by name, not in the
/// listing, not as an Iceberg table.
async fn assert_sales_gone(http: &reqwest::Client, base: &str) {
    let (status, _) = call(http, reqwest::Method::GET, format!("{base}/datasets/sales")).await;
    assert_eq!(status, 404, "{base}");
    let (_, list) = call(http, reqwest::Method::GET, format!("{base}/datasets")).await;
    assert_eq!(list["datasets"], json!([]), "{base}");
    let (status, _) = call(
        http,
        reqwest::Method::GET,
        format!("{base}/iceberg/v1/namespaces/lakehouse/tables/sales"),
    )
    .await;
    assert_eq!(status, 404, "{base}");
}

/// docs/contract.md section 14: `DELETE /datasets/{name}` commits a tombstone; the dataset
/// leaves lookups and listings on this catalogd, a replica and a restarted one; its objects
/// are collected (grace 0 here); a new dataset under the name continues the numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_dataset_is_gone_everywhere_collected_and_can_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let storaged = start_storaged(&dir);
    let client = StoragedClient::new(&storaged.url()).unwrap();
    let http = reqwest::Client::new();
    let mut catalogd = Service::start(
        "catalogd",
        &[
            ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
            ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
            ("LAKEHOUSE_CATALOGD__GC_GRACE_MS", "0".into()),
            ("LAKEHOUSE_CATALOGD__GC_INTERVAL_MS", "0".into()),
        ],
        dir.path(),
    )
    .unwrap();
    let replica = Service::start(
        "catalogd",
        &[
            ("LAKEHOUSE_CATALOGD__BIND", "127.0.0.1:0".into()),
            ("LAKEHOUSE_CATALOGD__STORAGED_URL", storaged.url()),
            ("LAKEHOUSE_CATALOGD__REFRESH_INTERVAL_MS", "0".into()),
        ],
        dir.path(),
    )
    .unwrap();
    let first = put_object(&client, "first").await;
    register(&http, &catalogd, &first).await;
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/datasets/sales", replica.url()),
    )
    .await;
    assert_eq!(status, 200);

    let url = format!("{}/datasets/sales", catalogd.url());
    let (status, body) = call(&http, reqwest::Method::DELETE, url.clone()).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"name": "sales", "version": 2}))
    );
    let (status, body) = call(&http, reqwest::Method::DELETE, url.clone()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    for base in [catalogd.url(), replica.url()] {
        assert_sales_gone(&http, &base).await;
    }
    catalogd.restart().unwrap();
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/datasets/sales", catalogd.url()),
    )
    .await;
    assert_eq!(status, 404, "the tombstone survives a restart");

    let (status, body) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/admin/gc", catalogd.url()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !exists(&client, &first).await,
        "the dropped dataset's object is collected"
    );

    let again = put_object(&client, "again").await;
    let body = register(&http, &catalogd, &again).await;
    assert_eq!(body["manifest"]["version"], json!(3));
    assert_eq!(body["manifest"]["objects"].as_array().unwrap().len(), 1);
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/datasets/sales/versions/1", catalogd.url()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("gone"))
    );
    let (status, body) = call(
        &http,
        reqwest::Method::GET,
        format!("{}/datasets/sales", replica.url()),
    )
    .await;
    assert_eq!((status, &body["version"]), (200, &json!(3)));
}
