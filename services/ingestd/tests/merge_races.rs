//! Merges racing appends and each other through two replicas (docs/contract.md section 11):
//! two catalogd and two ingestd processes on one storaged. Every merge updates its own keys
//! of one shared file, so each must re-plan when another commit wins; appends add fresh keys
//! meanwhile. Checked from the outside: every request answers 200, versions are 1..N with
//! one per request, and the latest version's rows (read back from the stored Parquet) hold
//! every key once, with every merge's update and every appended row: no update lost or
//! applied twice.

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use futures::future::join_all;
use lakehouse_testkit::{Cluster, multipart_content_type, multipart_file};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Keys of the first version: 0..BASE_KEYS, value 0.
const BASE_KEYS: i64 = 100;
/// Concurrent merges; merge `m` sets keys `m*5..m*5+5` to `m + 1`.
const MERGES: i64 = 8;
/// Concurrent appends; append `a` adds keys `10_000 + a*10 ..+3` with value -1.
const APPENDS: i64 = 6;

async fn ingest(http: &reqwest::Client, url: &str, query: &str, csv: &str) -> (u16, Value) {
    loop {
        let response = http
            .post(format!("{url}/ingest?{query}"))
            .header("content-type", multipart_content_type())
            .body(multipart_file("file", csv.as_bytes()))
            .send()
            .await
            .expect("ingestd answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON body");
        if status == 503 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        return (status, body);
    }
}

fn csv(rows: impl Iterator<Item = (i64, i64)>) -> String {
    let mut out = String::from("id,value\n");
    for (id, value) in rows {
        out.push_str(&format!("{id},{value}\n"));
    }
    out
}

async fn races(storaged_envs: Vec<(&str, String)>) {
    let extra = [
        ("LAKEHOUSE_INGESTD__MAX_CONCURRENT_INGESTS", "64".to_owned()),
        ("LAKEHOUSE_INGESTD__COMPACT_AFTER_FILES", "0".to_owned()),
    ];
    let cluster = Cluster::start(&storaged_envs, 2, 2, &extra).expect("cluster starts");
    let http = reqwest::Client::new();
    let urls: Vec<String> = cluster.ingestd.iter().map(|s| s.url()).collect();
    let first = csv((0..BASE_KEYS).map(|id| (id, 0)));
    let (status, body) = ingest(&http, &urls[0], "name=racy&mode=merge&key=id", &first).await;
    assert_eq!(status, 200, "{body}");

    let merges = (0..MERGES).map(|m| {
        let (http, url) = (&http, &urls[m as usize % 2]);
        async move {
            let rows = csv((m * 5..m * 5 + 5).map(|id| (id, m + 1)));
            ingest(http, url, "name=racy&mode=merge&key=id", &rows).await
        }
    });
    let appends = (0..APPENDS).map(|a| {
        let (http, url) = (&http, &urls[(a as usize + 1) % 2]);
        async move {
            let rows = csv((0..3).map(|k| (10_000 + a * 10 + k, -1)));
            ingest(http, url, "name=racy&mode=append", &rows).await
        }
    });
    let (merged, appended) = futures::join!(join_all(merges), join_all(appends));
    for (status, body) in merged.iter().chain(&appended) {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["existing"], false, "{body}");
    }
    for (status, body) in &merged {
        assert_eq!(body["merge"]["updated"], 5, "{status} {body}");
    }

    let catalogd = cluster.catalogd[1].url();
    let get = |url: String| async {
        let response = http.get(url).send().await.expect("catalogd answers");
        response.json::<Value>().await.expect("JSON body")
    };
    let versions = get(format!("{catalogd}/datasets/racy/versions")).await;
    let count = versions["versions"].as_array().expect("versions").len() as i64;
    assert_eq!(count, 1 + MERGES + APPENDS, "{versions}");
    let latest = get(format!("{catalogd}/datasets/racy")).await;
    let mut rows = BTreeMap::new();
    for object in latest["objects"].as_array().expect("objects") {
        let key = object["key"].as_str().unwrap();
        let bytes = http
            .get(format!("{}/objects/{key}", cluster.storaged.url()))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
        {
            let batch = batch.unwrap();
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let values = batch.column(1).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let id = ids.value(i);
                assert!(rows.insert(id, values.value(i)).is_none(), "key {id} twice");
            }
        }
    }
    let mut expected: BTreeMap<i64, i64> = (0..BASE_KEYS).map(|id| (id, 0)).collect();
    for m in 0..MERGES {
        for id in m * 5..m * 5 + 5 {
            expected.insert(id, m + 1);
        }
    }
    for a in 0..APPENDS {
        for k in 0..3 {
            expected.insert(10_000 + a * 10 + k, -1);
        }
    }
    assert_eq!(rows, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_merges_racing_appends_through_two_replicas_lose_no_update() {
    races(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_merges_racing_appends_through_two_replicas_lose_no_update() {
    let Some(envs) = lakehouse_testkit::fresh_s3_storaged_envs().await else {
        return;
    };
    races(envs).await;
}
