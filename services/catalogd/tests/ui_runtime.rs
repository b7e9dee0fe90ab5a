//! The catalog page keeps its CPU work off the async runtime (docs/decisions.md, "Off the
//! runtime"; docs/contract.md section 9): footer decoding, the statistics fold, the preview's
//! decoding and the HTML run on tokio's blocking pool while lookups are served.
//!
//! catalogd's router runs in process on a current-thread runtime, over an in-memory store
//! that answers at once (no simulated I/O yield), so the page's own off-runtime work is the
//! only place where it lets another request run: were that work done inside the handler,
//! the one runtime thread would be held until the page is done and a lookup sent meanwhile
//! would be answered after it. The store reports each range read, which is how the test
//! knows where the page is: no sleep, no timing.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use catalogd::{AppState, Config, router};
use lakehouse_api::{ColumnType, DatasetName, Field, IngestMode, ObjectKey, ObjectRef, Schema};
use lakehouse_catalog::{
    Catalog, ManifestStore, MemoryStore, PutOutcome, StoreError, StoredObject,
};
use lakehouse_testkit::fixtures::{object_ref, register_request};
use std::ops::Range;
use std::sync::Arc;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// Objects in the version: under the page's limit of 32, so it reads every footer.
const OBJECTS: usize = 24;
/// Rows per object.
const ROWS: i64 = 20_000;
/// Rows per row group: 100 row groups per object, so each footer holds 300 column chunks.
const ROW_GROUP_ROWS: usize = 200;

/// A range read the store answered: of an object's tail (its footer) or of its body (the
/// preview's row group).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Footer,
    RowGroup,
}

/// A [`MemoryStore`] whose `get` and `get_range` answer without yielding and whose range
/// reads are reported on a channel.
struct ImmediateStore {
    inner: MemoryStore,
    reads: mpsc::UnboundedSender<Read>,
}

impl ImmediateStore {
    /// `range` of the bytes at `key` (clamped to their end), without yielding.
    fn slice(&self, key: &ObjectKey, range: Range<u64>) -> Option<Bytes> {
        self.inner.bytes(key).map(|bytes| {
            let len = bytes.len() as u64;
            let (start, end) = (range.start.min(len), range.end.min(len));
            bytes.slice(start as usize..end.max(start) as usize)
        })
    }
}

impl ManifestStore for ImmediateStore {
    async fn put_if_absent(&self, key: &ObjectKey, bytes: Bytes) -> Result<PutOutcome, StoreError> {
        self.inner.put_if_absent(key, bytes).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<Option<Bytes>, StoreError> {
        Ok(self.inner.bytes(key))
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> Result<Option<Bytes>, StoreError> {
        let size = self.inner.bytes(key).map_or(0, |b| b.len() as u64);
        // A footer read ends at the object's end, or at its last 8 bytes (length and magic).
        let read = if range.end + 8 >= size {
            Read::Footer
        } else {
            Read::RowGroup
        };
        let _ = self.reads.send(read);
        Ok(self.slice(key, range))
    }

    async fn list_keys(
        &self,
        prefix: &str,
        start_after: Option<&str>,
    ) -> Result<Vec<ObjectKey>, StoreError> {
        self.inner.list_keys(prefix, start_after).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_dirs(prefix).await
    }

    async fn object_size(&self, key: &ObjectKey) -> Result<Option<u64>, StoreError> {
        self.inner.object_size(key).await
    }

    async fn ready(&self) -> Result<(), StoreError> {
        self.inner.ready().await
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<StoredObject>, StoreError> {
        self.inner.list_objects(prefix).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        self.inner.delete(key).await
    }
}

/// `{id: int64, label: utf8, score: float64}`.
fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("label", ColumnType::Utf8),
            Field::new("score", ColumnType::Float64),
        ],
    }
}

/// A Parquet object of [`ROWS`] rows with ids `first..first + ROWS`, in row groups of
/// [`ROW_GROUP_ROWS`].
fn parquet_object(first: i64) -> Vec<u8> {
    use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field as ArrowField, Schema as ArrowSchema};
    let arrow = Arc::new(ArrowSchema::new(vec![
        ArrowField::new("id", DataType::Int64, true),
        ArrowField::new("label", DataType::Utf8, true),
        ArrowField::new("score", DataType::Float64, true),
    ]));
    let ids = first..first + ROWS;
    let batch = RecordBatch::try_new(
        arrow.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.clone().map(|id| format!("label-{id:08}")),
            )),
            Arc::new(Float64Array::from_iter_values(
                ids.map(|id| id as f64 / 4.0),
            )),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, arrow, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

/// Sends `request` to `app`: the status and the body as text.
async fn send(app: Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}

/// catalogd's router over an [`ImmediateStore`] holding one version of [`OBJECTS`] objects
/// of dataset `name`, and the store's range reads.
async fn app_with_version(name: &DatasetName) -> (Router, mpsc::UnboundedReceiver<Read>) {
    let (reads, read_events) = mpsc::unbounded_channel();
    let store = ImmediateStore {
        inner: MemoryStore::new(),
        reads,
    };
    let objects: Vec<ObjectRef> = (0..OBJECTS as i64)
        .map(|i| {
            let bytes = parquet_object(i * ROWS);
            let object = object_ref(name, &schema(), &bytes, ROWS as u64);
            store.inner.insert(object.key.clone(), bytes);
            object
        })
        .collect();
    let catalog = Catalog::open(store).await.unwrap();
    let app = router(AppState::new(catalog, &Config::default()));
    let body =
        serde_json::to_string(&register_request(&schema(), objects, IngestMode::Replace)).unwrap();
    let register = Request::post(format!("/datasets/{}/versions", name.as_str()))
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let (status, answer) = send(app.clone(), register).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (app, read_events)
}

/// Sends a lookup of `name` while `page` is in flight: it must be answered before the page
/// is, else the page held the runtime thread. `biased`: a page already done is seen first.
async fn lookup_before_page(
    app: &Router,
    name: &DatasetName,
    page: &mut tokio::task::JoinHandle<(StatusCode, String)>,
    when: &str,
) {
    let lookup = send(app.clone(), get(&format!("/datasets/{}", name.as_str())));
    tokio::select! {
        biased;
        _ = &mut *page => panic!(
            "{when}, the page was answered before a lookup sent meanwhile: its work held the runtime"
        ),
        (status, body) = lookup => {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert!(body.contains(r#""version":1"#), "{body}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn lookups_are_answered_while_a_page_of_many_large_objects_renders() {
    let name = DatasetName::new("many").unwrap();
    let (app, mut reads) = app_with_version(&name).await;
    while reads.try_recv().is_ok() {} // whatever the register read

    let mut page = tokio::spawn(send(app.clone(), get("/ui/datasets/many")));

    // While the page reads and decodes footers: a lookup sent at its first footer read is
    // answered before it has read them all.
    assert_eq!(reads.recv().await, Some(Read::Footer));
    lookup_before_page(&app, &name, &mut page, "while footers were read").await;
    let mut footer_reads = 1;
    let mut row_group_read = false;
    while let Ok(read) = reads.try_recv() {
        match read {
            Read::Footer => footer_reads += 1,
            Read::RowGroup => row_group_read = true,
        }
    }
    assert!(
        footer_reads < OBJECTS && !row_group_read,
        "the lookup was answered only after the page had read every footer ({footer_reads} \
         reads) and the preview's row group ({row_group_read})"
    );

    // While the page folds the statistics, decodes the preview and renders: a lookup sent at
    // its last read (the preview's row group) is answered before the page.
    loop {
        match reads.recv().await {
            Some(Read::Footer) => footer_reads += 1,
            Some(Read::RowGroup) => break,
            None => panic!("the store went away"),
        }
    }
    assert!(footer_reads >= OBJECTS, "every footer is read");
    lookup_before_page(
        &app,
        &name,
        &mut page,
        "while statistics and preview were made",
    )
    .await;

    let (status, html) = page.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{html}");
    // The statistics span every object: ids 0 to OBJECTS * ROWS - 1.
    let last = OBJECTS as i64 * ROWS - 1;
    assert!(
        html.contains(&format!("<td>0</td><td>{last}</td>")),
        "{html}"
    );
    assert!(
        html.contains("<td>label-00000000</td><td>label-00479999</td>"),
        "{html}"
    );
    // The preview: the first rows of the first object.
    assert!(html.contains("<td>label-00000019</td>"), "{html}");
}
