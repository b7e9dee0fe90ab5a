//! In-process tests of the router over a [`lakehouse_catalog::MemoryStore`]; the tests in
//! `tests/` run the real binaries.

use super::*;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use lakehouse_api::{DatasetName, IngestMode, ObjectKey, ObjectRef, VersionRegisterRequest};
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
        ("GET", "/nowhere", 404, "not_found"),
    ] {
        let (got, body) = call(&app, method, uri, None).await;
        assert_eq!(got.as_u16(), status, "{uri}: {body}");
        assert_eq!(body["error"]["code"], json!(code), "{uri}");
    }
    let (status, body) = call(
        &app,
        "POST",
        "/datasets/sales/versions",
        Some(json!({"x": 1})),
    )
    .await;
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

/// A [`MemoryStore`] that counts range reads (footers and row groups), wakes `first_range`
/// at the first one and answers them without yielding.
struct CountingStore {
    inner: Arc<MemoryStore>,
    ranges: Arc<std::sync::atomic::AtomicUsize>,
    first_range: Arc<tokio::sync::Notify>,
}

impl lakehouse_catalog::ManifestStore for CountingStore {
    async fn put_if_absent(
        &self,
        key: &ObjectKey,
        bytes: bytes::Bytes,
    ) -> Result<lakehouse_catalog::PutOutcome, lakehouse_catalog::StoreError> {
        self.inner.put_if_absent(key, bytes).await
    }

    async fn get(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<bytes::Bytes>, lakehouse_catalog::StoreError> {
        self.inner.get(key).await
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Option<bytes::Bytes>, lakehouse_catalog::StoreError> {
        if self
            .ranges
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            == 0
        {
            self.first_range.notify_one();
        }
        // Answered at once, without the memory store's simulated I/O yield: the page's own
        // work is then the only place it can let other tasks run.
        Ok(self.inner.bytes(key).map(|bytes| {
            let len = bytes.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            bytes.slice(start as usize..end.max(start) as usize)
        }))
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ObjectKey>, lakehouse_catalog::StoreError> {
        self.inner.list_keys(prefix, start_after).await
    }

    async fn object_size(
        &self,
        key: &ObjectKey,
    ) -> Result<Option<u64>, lakehouse_catalog::StoreError> {
        self.inner.object_size(key).await
    }

    async fn ready(&self) -> Result<(), lakehouse_catalog::StoreError> {
        self.inner.ready().await
    }

    async fn list_objects(
        &self,
        prefix: &str,
    ) -> Result<Vec<lakehouse_catalog::StoredObject>, lakehouse_catalog::StoreError> {
        self.inner.list_objects(prefix).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<bool, lakehouse_catalog::StoreError> {
        self.inner.delete(key).await
    }
}

/// A Parquet object of `rows` int64 values `first..first + rows` in row groups of 1,000.
fn parquet_ids(first: i64, rows: i64) -> Vec<u8> {
    use arrow_array::{Int64Array, RecordBatch};
    let arrow = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
        "id",
        arrow_schema::DataType::Int64,
        true,
    )]));
    let props = ::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .build();
    let mut bytes = Vec::new();
    let mut writer =
        ::parquet::arrow::ArrowWriter::try_new(&mut bytes, arrow.clone(), Some(props)).unwrap();
    let ids = Int64Array::from_iter_values(first..first + rows);
    writer
        .write(&RecordBatch::try_new(arrow, vec![Arc::new(ids)]).unwrap())
        .unwrap();
    writer.close().unwrap();
    bytes
}

/// The catalog page decodes footers, folds statistics and decodes a preview off the runtime
/// (STYLE.md, "Async and blocking"). On this test's current-thread runtime, work done on the
/// runtime would hold the one thread until the page is done: a lookup sent once the page has
/// read its first footer is answered while the page has not read all 32 and is not done.
#[tokio::test]
async fn a_lookup_completes_while_a_page_of_many_large_objects_renders() {
    let store = Arc::new(MemoryStore::new());
    let ranges = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let first_range = Arc::new(tokio::sync::Notify::new());
    let counting = CountingStore {
        inner: Arc::clone(&store),
        ranges: Arc::clone(&ranges),
        first_range: Arc::clone(&first_range),
    };
    let catalog = Catalog::open(counting).await.unwrap();
    let app = router(AppState::new(catalog, &Config::default()));
    let name = DatasetName::new("many").unwrap();
    let objects: Vec<ObjectRef> = (0..ui::MAX_STATS_OBJECTS as i64)
        .map(|i| {
            let bytes = parquet_ids(i * 20_000, 20_000);
            let object = object_ref(&name, &schema(), &bytes, 20_000);
            store.insert(object.key.clone(), bytes);
            object
        })
        .collect();
    let request =
        lakehouse_testkit::fixtures::register_request(&schema(), objects, IngestMode::Replace);
    let body = serde_json::to_value(&request).unwrap();
    let (status, answer) = call(&app, "POST", "/datasets/many/versions", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let page = tokio::spawn({
        let app = app.clone();
        async move {
            let request = Request::get("/ui/datasets/many")
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            String::from_utf8(bytes.to_vec()).unwrap()
        }
    });
    first_range.notified().await;
    let (status, latest) = call(&app, "GET", "/datasets/many", None).await;
    assert_eq!((status, &latest["version"]), (StatusCode::OK, &json!(1)));
    let read = ranges.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        read < ui::MAX_STATS_OBJECTS,
        "the lookup waited for the page to read all {read} footers"
    );
    assert!(!page.is_finished(), "the lookup waited for the whole page");
    let html = page.await.unwrap();
    // The statistics span all 32 objects: ids 0 to 639,999.
    assert!(html.contains("<td>0</td><td>639999</td>"), "{html}");
}
