//! The Iceberg projection and the read-only REST catalog over HTTP (docs/contract.md section 8):
//! the real `storaged`, `catalogd` and `ingestd` binaries on port 0.

use lakehouse_testkit::{Service, Trio, multipart_content_type, multipart_file};
use serde_json::{Value, json};

async fn ingest(trio: &Trio, name: &str, mode: &str, csv: &str) -> Value {
    let response = reqwest::Client::new()
        .post(format!(
            "{}/ingest?name={name}&mode={mode}",
            trio.ingestd.url()
        ))
        .header("content-type", multipart_content_type())
        .body(multipart_file("file", csv.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

async fn get(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn assert_iceberg_error(body: &Value, status: u16, kind: &str) {
    assert_eq!(body["error"]["code"], status, "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn every_version_is_a_snapshot_with_a_tag_and_the_catalog_serves_it() {
    let trio = Trio::start(&[]).unwrap();
    ingest(&trio, "sales", "replace", "id,name\n1,a\n2,b\n").await;
    ingest(&trio, "sales", "append", "id,name\n3,c\n").await;
    ingest(&trio, "sales", "replace", "id,name\n10,x\n").await;
    let base = format!("{}/iceberg", trio.catalogd.url());

    let (status, config) = get(&format!("{base}/v1/config?warehouse=lakehouse")).await;
    assert_eq!(status, 200);
    assert!(config.get("endpoints").is_none());
    let (_, namespaces) = get(&format!("{base}/v1/namespaces")).await;
    assert_eq!(namespaces["namespaces"], serde_json::json!([["lakehouse"]]));
    let (_, tables) = get(&format!("{base}/v1/namespaces/lakehouse/tables")).await;
    assert_eq!(tables["identifiers"][0]["name"], "sales");

    let (status, table) = get(&format!("{base}/v1/namespaces/lakehouse/tables/sales")).await;
    assert_eq!(status, 200, "{table}");
    let location = table["metadata-location"].as_str().unwrap();
    assert!(location.starts_with("file:///"), "{location}");
    assert!(location.ends_with("/datasets/sales/metadata/v3.metadata.json"));
    let metadata = &table["metadata"];
    assert_eq!(metadata["format-version"], 2);
    assert_eq!(metadata["last-sequence-number"], 3);
    let snapshots = metadata["snapshots"].as_array().unwrap();
    let ops: Vec<&str> = snapshots
        .iter()
        .map(|s| s["summary"]["operation"].as_str().unwrap())
        .collect();
    assert_eq!(ops, ["append", "append", "overwrite"]);
    for (i, snapshot) in snapshots.iter().enumerate() {
        let tag = &metadata["refs"][format!("v{}", i + 1)];
        assert_eq!(tag["type"], "tag");
        assert_eq!(tag["snapshot-id"], snapshot["snapshot-id"]);
    }
    assert_eq!(snapshots[1]["summary"]["total-records"], "3");
    assert_eq!(metadata["refs"]["main"]["type"], "branch");
    // The metadata file is where the location says, byte for byte what was served.
    let path = location.trim_start_matches("file://");
    let on_disk: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(&on_disk, metadata);
    let (status, _) = get(&format!("{base}/v1/namespaces/lakehouse/tables/sales")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_requests_answer_in_the_iceberg_error_model() {
    let trio = Trio::start(&[]).unwrap();
    ingest(&trio, "a1", "replace", "x\n1\n").await;
    ingest(&trio, "a2", "replace", "x\n2\n").await;
    ingest(&trio, "a3", "replace", "x\n3\n").await;
    let base = format!("{}/iceberg/v1", trio.catalogd.url());
    let client = reqwest::Client::new();

    let (status, body) = get(&format!("{base}/namespaces/nope")).await;
    assert_eq!(status, 404);
    assert_iceberg_error(&body, 404, "NoSuchNamespaceException");
    let (status, body) = get(&format!("{base}/namespaces/nope/tables/a1")).await;
    assert_eq!(status, 404);
    assert_iceberg_error(&body, 404, "NoSuchNamespaceException");
    let (status, body) = get(&format!("{base}/namespaces/lakehouse/tables/missing")).await;
    assert_eq!(status, 404);
    assert_iceberg_error(&body, 404, "NoSuchTableException");
    let head = client
        .head(format!("{base}/namespaces/lakehouse/tables/missing"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 404);
    let head = client
        .head(format!("{base}/namespaces/lakehouse/tables/a1"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 204);
    let head = client
        .head(format!("{base}/namespaces/lakehouse"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 204);

    // Writes are refused in the error model.
    for (method, path) in [
        (reqwest::Method::POST, "namespaces"),
        (reqwest::Method::POST, "namespaces/lakehouse/tables"),
        (reqwest::Method::DELETE, "namespaces/lakehouse/tables/a1"),
        (reqwest::Method::POST, "namespaces/lakehouse/tables/a1"),
        (reqwest::Method::POST, "transactions/commit"),
    ] {
        let response = client
            .request(method.clone(), format!("{base}/{path}"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 406, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_iceberg_error(&body, 406, "UnsupportedOperationException");
    }

    // Pagination: two pages, then a malformed token is a 400.
    let (_, page) = get(&format!("{base}/namespaces/lakehouse/tables?pageSize=2")).await;
    assert_eq!(page["identifiers"].as_array().unwrap().len(), 2);
    let token = page["next-page-token"].as_str().unwrap().to_owned();
    let (_, rest) = get(&format!(
        "{base}/namespaces/lakehouse/tables?pageSize=2&pageToken={token}"
    ))
    .await;
    assert_eq!(rest["identifiers"][0]["name"], "a3");
    assert!(rest.get("next-page-token").is_none());
    let (status, body) = get(&format!(
        "{base}/namespaces/lakehouse/tables?pageToken=zz-not-a-token"
    ))
    .await;
    assert_eq!(status, 400);
    assert_iceberg_error(&body, 400, "BadRequestException");
    let (status, body) = get(&format!("{base}/namespaces/lakehouse/tables?pageSize=0")).await;
    assert_eq!(status, 400);
    assert_iceberg_error(&body, 400, "BadRequestException");
}

#[tokio::test]
async fn tokens_apply_and_pyiceberg_s_bearer_none_is_refused_in_the_error_model() {
    let trio = Trio::start(&[("LAKEHOUSE_CATALOGD__READ_TOKENS", "[\"reader\"]".into())]).unwrap();
    let base = format!("{}/iceberg/v1", trio.catalogd.url());
    let client = reqwest::Client::new();
    // DuckDB calls the config without a token.
    let config = client
        .get(format!("{base}/config?warehouse=w"))
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), 200);
    let refused = client
        .get(format!("{base}/namespaces"))
        .header("authorization", "Bearer None")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_iceberg_error(&body, 401, "NotAuthorizedException");
    let allowed = client
        .get(format!("{base}/namespaces"))
        .bearer_auth("reader")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
}

/// Every Iceberg file under `datasets/<name>/metadata/` with its bytes, by key.
async fn metadata_files(storaged: &str, name: &str) -> Vec<(String, Vec<u8>)> {
    let client = lakehouse_client::StoragedClient::new(storaged).unwrap();
    let mut files = Vec::new();
    for key in lakehouse_testkit::stored_keys(storaged, &format!("datasets/{name}/metadata/")).await
    {
        let object = lakehouse_api::ObjectKey::new(key.clone()).unwrap();
        files.push((key, client.get_bytes(&object).await.unwrap().to_vec()));
    }
    files
}

#[tokio::test]
async fn metadata_is_byte_identical_from_either_replica_and_heals_at_restart() {
    let mut cluster = lakehouse_testkit::Cluster::start(&[], 2, 1, &[]).unwrap();
    let storaged = cluster.storaged.url();
    let client = lakehouse_client::StoragedClient::new(&storaged).unwrap();
    let http = reqwest::Client::new();
    for (mode, csv) in [("replace", "id,name\n1,a\n"), ("append", "id,name\n2,b\n")] {
        let response = http
            .post(format!(
                "{}/ingest?name=rep&mode={mode}",
                cluster.ingestd[0].url()
            ))
            .header("content-type", multipart_content_type())
            .body(multipart_file("file", csv.as_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let written = metadata_files(&storaged, "rep").await;
    assert!(
        written
            .iter()
            .any(|(k, _)| k.ends_with("/v2.metadata.json"))
    );

    // Lose every file, then let the other replica write version 2's metadata again.
    for (key, _) in &written {
        client
            .delete(&lakehouse_api::ObjectKey::new(key.clone()).unwrap())
            .await
            .unwrap();
    }
    let mut healed = Vec::new();
    for replica in [1, 0] {
        let (status, _) = get(&format!(
            "{}/iceberg/v1/namespaces/lakehouse/tables/rep",
            cluster.catalogd[replica].url()
        ))
        .await;
        assert_eq!(status, 200);
        healed = metadata_files(&storaged, "rep").await;
        // Version 2 references everything but version 1's metadata JSON, byte for byte.
        let expected: Vec<_> = written
            .iter()
            .filter(|(k, _)| !k.ends_with("/v1.metadata.json"))
            .cloned()
            .collect();
        assert_eq!(healed, expected, "replica {replica}");
        for (key, _) in &healed {
            client
                .delete(&lakehouse_api::ObjectKey::new(key.clone()).unwrap())
                .await
                .unwrap();
        }
    }

    // A catalogd that died between a commit and its metadata write heals it at start,
    // before it answers anything.
    assert!(metadata_files(&storaged, "rep").await.is_empty());
    cluster.catalogd[0].kill();
    cluster.catalogd[0].restart().unwrap();
    assert_eq!(metadata_files(&storaged, "rep").await, healed);
}

/// `GET` of the `sales` table: status, `Retry-After`, body.
async fn load_sales(trio_catalogd: &str, token: Option<&str>) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new().get(format!(
        "{trio_catalogd}/iceberg/v1/namespaces/lakehouse/tables/sales"
    ));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (
        status,
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

/// A fault of the server is a 500 an engine does not retry: a manifest in storage that does
/// not parse (the `/datasets` API calls it a 502 `upstream_error`).
#[tokio::test]
async fn a_corrupt_manifest_is_a_500_service_failure_not_a_retry() {
    let trio = Trio::start(&[]).unwrap();
    ingest(&trio, "sales", "replace", "id\n1\n").await;
    let put = reqwest::Client::new()
        .put(format!(
            "{}/objects/_catalog/datasets/sales/00000000000000000002.json",
            trio.storaged.url()
        ))
        .body("{not a manifest")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let (status, retry_after, body) = load_sales(&trio.catalogd.url(), None).await;
    assert_eq!(status, 500, "{body}");
    assert_iceberg_error(&body, 500, "ServiceFailureException");
    assert_eq!(retry_after, None);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("00000000000000000002.json"),
        "{body}"
    );
    let (status, lookup) = get(&format!("{}/datasets/sales", trio.catalogd.url())).await;
    assert_eq!(
        (status, &lookup["error"]["code"]),
        (502, &json!("upstream_error"))
    );
}

/// storaged refusing catalogd's token (rotated on storaged, not on catalogd) is a deployment
/// fault: 500 `ServiceFailureException`, not a 503 engines would retry forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_storaged_refuses_is_a_500_service_failure() {
    let token = |t: &str| {
        [
            ("LAKEHOUSE_STORAGED__SERVICE_TOKEN", t.to_owned()),
            ("LAKEHOUSE_CATALOGD__SERVICE_TOKEN", t.to_owned()),
            ("LAKEHOUSE_INGESTD__SERVICE_TOKEN", t.to_owned()),
        ]
    };
    let mut trio = Trio::start(&token("first")).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{}/ingest?name=sales", trio.ingestd.url()))
        .header("content-type", multipart_content_type())
        .body(multipart_file("file", b"id\n1\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _, body) = load_sales(&trio.catalogd.url(), Some("first")).await;
    assert_eq!(status, 200, "{body}");
    // storaged comes back with another token; catalogd still presents the first one.
    let addr = trio.storaged.addr.to_string();
    trio.storaged.kill();
    let _storaged = tokio::task::block_in_place(|| {
        Service::start(
            "storaged",
            &[
                ("LAKEHOUSE_STORAGED__BIND", addr),
                ("LAKEHOUSE_STORAGED__SERVICE_TOKEN", "second".into()),
            ],
            trio.dir.path(),
        )
    })
    .unwrap();
    let (status, retry_after, body) = load_sales(&trio.catalogd.url(), Some("first")).await;
    assert_eq!(status, 500, "{body}");
    assert_iceberg_error(&body, 500, "ServiceFailureException");
    assert_eq!(retry_after, None);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("401"),
        "{body}"
    );
}

/// Only storaged not answering is a 503 `ServiceUnavailableException` with `Retry-After`:
/// the one failure a retry can fix.
#[tokio::test]
async fn a_stopped_storaged_is_a_503_service_unavailable_with_retry_after() {
    let mut trio = Trio::start(&[]).unwrap();
    ingest(&trio, "sales", "replace", "id\n1\n").await;
    trio.storaged.kill();
    let (status, retry_after, body) = load_sales(&trio.catalogd.url(), None).await;
    assert_eq!(status, 503, "{body}");
    assert_iceberg_error(&body, 503, "ServiceUnavailableException");
    assert_eq!(retry_after.as_deref(), Some("1"));
}
