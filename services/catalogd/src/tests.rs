//! In-process tests of the router over a [`lakehouse_catalog::MemoryStore`]; the tests in
//! `tests/` run the real binaries.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use lakehouse_api::{DatasetName, IngestMode, ObjectRef, VersionRegisterRequest};
use lakehouse_catalog::MemoryStore;
use lakehouse_testkit::fixtures::{object_ref, schema_id as schema};
use serde_json::{Value, json};
use tower::ServiceExt;

#[test]
fn defaults_equal_the_checked_in_config() {
    lakehouse_testkit::config::assert_defaults_equal_checked_in::<Config>("catalogd");
}

async fn app() -> (Router, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    let catalog = Catalog::open(Arc::clone(&store)).await.unwrap();
    (router(AppState::new(catalog, &Config::default())), store)
}

fn object(store: &MemoryStore, dataset: &str, content: &str) -> ObjectRef {
    let dataset = DatasetName::new(dataset).unwrap();
    let object = object_ref(&dataset, &schema(), content.as_bytes(), 1);
    store.insert(object.key.clone(), content.to_owned());
    object
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn register_then_read_back_over_http() {
    let (app, store) = app().await;
    let a = object(&store, "sales", "a");
    let request = VersionRegisterRequest {
        base_version: None,
        key: None,
        replaces: Vec::new(),
        schema_fingerprint: schema().fingerprint(),
        schema: schema(),
        objects: vec![a],
        mode: IngestMode::Replace,
        source: Default::default(),
        options: Default::default(),
        inference_version: 1,
        columns: Vec::new(),
        schema_evolution: None,
        dry_run: false,
        partition_spec: None,
    };
    let body = serde_json::to_value(&request).unwrap();
    let (status, answer) = call(&app, "POST", "/datasets/sales/versions", Some(body.clone())).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["existing"], json!(false));
    assert_eq!(answer["manifest"]["version"], json!(1));
    let (status, answer) = call(&app, "POST", "/datasets/sales/versions", Some(body)).await;
    assert_eq!(
        (status, &answer["existing"]),
        (StatusCode::OK, &json!(true))
    );
    let (status, latest) = call(&app, "GET", "/datasets/sales", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest, answer["manifest"]);
    let (status, v1) = call(&app, "GET", "/datasets/sales/versions/1", None).await;
    assert_eq!((status, v1), (StatusCode::OK, latest));
    let (status, list) = call(&app, "GET", "/datasets/sales/versions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["versions"][0]["object_count"], json!(1));
    let (status, list) = call(&app, "GET", "/datasets?limit=5000", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["datasets"][0]["name"], json!("sales"));
}

#[tokio::test]
async fn bad_paths_and_queries_are_json_4xx() {
    let (app, store) = app().await;
    for (method, uri, status, code) in [
        ("GET", "/datasets/.bad", 400, "invalid_name"),
        ("GET", "/datasets/.bad/versions/1", 400, "invalid_name"),
        ("GET", "/datasets/nope", 404, "not_found"),
        ("GET", "/datasets/nope/versions", 404, "not_found"),
        ("GET", "/datasets/nope/versions/1", 404, "not_found"),
        ("GET", "/datasets/nope/versions/x", 400, "invalid_request"),
        ("GET", "/datasets?limit=0", 400, "invalid_option"),
        ("GET", "/datasets?limit=x", 400, "invalid_option"),
        ("GET", "/datasets?prefx=fl", 400, "invalid_option"),
        ("GET", "/datasets?cursor=zzz", 400, "invalid_option"),
        ("GET", "/nowhere", 404, "not_found"),
    ] {
        let (got, body) = call(&app, method, uri, None).await;
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        assert_eq!(body["error"]["code"], json!(code), "{uri}");
    }
    // A field the body does not have is `invalid_option` naming it (docs/contract.md section 14),
    // a body missing a field is `invalid_request`.
    let (status, body) = call(
        &app,
        "POST",
        "/datasets/sales/versions",
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (400, &json!("invalid_option"))
    );
    assert_eq!(body["error"]["details"]["option"], "x");
    let (status, body) = call(&app, "POST", "/datasets/sales/versions", Some(json!({}))).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (400, &json!("invalid_request"))
    );
    let (status, body) = call(
        &app,
        "POST",
        "/datasets/.bad/versions",
        Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (400, &json!("invalid_name"))
    );
    let (status, _) = call(&app, "GET", "/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    store.set_unavailable(true);
    let (status, body) = call(&app, "GET", "/readyz", None).await;
    assert_eq!(
        (status.as_u16(), &body["error"]["code"]),
        (503, &json!("unavailable"))
    );
    let (status, _) = call(&app, "GET", "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}
