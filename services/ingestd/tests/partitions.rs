//! Partitioned datasets (docs/contract.md section 10) against the real binaries: every file's
//! rows map to its partition tuple (read back with the parquet crate), a later append follows
//! the recorded spec, the 409 and 400s, the limit on distinct values, and the files cut past
//! `target_file_bytes` under a tiny memory budget, each with the same rows as without.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use lakehouse_testkit::Harness;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

const DAY_MICROS: i64 = 86_400_000_000;

/// `rows` rows of `ts,id,name`: ts across four days around the epoch (one before 1970),
/// every tenth one empty; ids 0..rows.
fn csv(rows: i64) -> Vec<u8> {
    let mut out = String::from("ts,id,name\n");
    let days = ["1969-12-31", "1970-01-01", "2024-02-29", "2024-03-01"];
    for id in 0..rows {
        let ts = if id % 10 == 9 {
            String::new()
        } else {
            let day = days[(id % 4) as usize];
            format!("{day}T{:02}:{:02}:00Z", id % 24, id % 60)
        };
        out.push_str(&format!("{ts},{id},name-{id}\n"));
    }
    out.into_bytes()
}

/// The record batches of a stored Parquet object.
async fn batches_of(h: &Harness, key: &str) -> Vec<arrow_array::RecordBatch> {
    let data = h.stored_bytes(key).await;
    ParquetRecordBatchReaderBuilder::try_new(data)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .map(|batch| batch.expect("a batch"))
        .collect()
}

/// Each row of a stored Parquet object as `(ts micros or None, id)`.
async fn rows_of(h: &Harness, key: &str) -> Vec<(Option<i64>, i64)> {
    let mut rows = Vec::new();
    for batch in batches_of(h, key).await {
        let ts = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        let ids = batch.column(1).as_primitive::<Int64Type>();
        for i in 0..batch.num_rows() {
            rows.push(((!ts.is_null(i)).then(|| ts.value(i)), ids.value(i)));
        }
    }
    rows
}

/// The partition tuple `day(ts),bucket(4,id)` gives a row, as the catalog records it.
fn tuple_of(ts: Option<i64>, id: i64) -> Value {
    let day = ts.map(|micros| micros.div_euclid(DAY_MICROS));
    let bucket = lakehouse_iceberg::transform::bucket_i64(id, 4);
    serde_json::json!([day, bucket])
}

/// Checks that every object of `objects` holds rows of its own tuple only, and returns all
/// the rows, object by object.
async fn check_files(h: &Harness, objects: &[Value]) -> Vec<(Option<i64>, i64)> {
    let mut all = Vec::new();
    for object in objects {
        let key = object["key"].as_str().expect("key");
        let rows = rows_of(h, key).await;
        assert_eq!(rows.len() as u64, object["row_count"].as_u64().unwrap());
        for &(ts, id) in &rows {
            assert_eq!(tuple_of(ts, id), object["partition"], "row {id} in {key}");
        }
        all.extend(rows);
    }
    all
}

#[tokio::test]
async fn a_dataset_by_day_and_bucket_writes_one_file_per_partition_and_appends_follow() {
    let h = Harness::start(&[]);
    let query = "name=events&partition_by=day(ts), bucket(4,id)";
    let (status, body) = h.ingest(query, &csv(200)).await;
    assert_eq!(status, 200, "{body}");
    let spec = &body["manifest"]["partition_spec"];
    assert_eq!(spec["partition_by"], "day(ts),bucket(4,id)");
    assert_eq!(spec["fields"][0]["name"], "ts_day");
    assert_eq!(spec["fields"][0]["field_id"], 1000);
    assert_eq!(spec["fields"][1]["transform"], "bucket[4]");
    let objects = body["objects"].as_array().expect("objects").clone();
    // Four days and the null day, four buckets each: at most 20 partitions, all present.
    assert_eq!(objects.len(), 20, "{body}");
    assert_eq!(body["manifest"]["objects"].as_array().unwrap().len(), 20);
    let mut rows = check_files(&h, &objects).await;
    // Every row, once; within a file in the CSV's order.
    let mut ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>());
    rows.sort_by_key(|r| r.1);
    assert_eq!(rows[9].0, None);
    assert_eq!(rows[0].0, Some(-DAY_MICROS));
    // Files are listed in partition order: the null day first, then by day and bucket.
    let tuples: Vec<&Value> = objects.iter().map(|o| &o["partition"]).collect();
    assert!(tuples[0][0].is_null());
    assert_eq!(tuples[4][0], -1);

    // The same upload again makes the same keys: nothing new.
    let (status, again) = h.ingest(query, &csv(200)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], true);
    assert_eq!(again["objects"], body["objects"]);

    // An append without partition_by follows the recorded spec.
    let (status, appended) = h.ingest("name=events&mode=append", &csv(7)).await;
    assert_eq!(status, 200, "{appended}");
    check_files(&h, appended["objects"].as_array().unwrap()).await;
    let latest = h.latest_manifest("events").await;
    assert_eq!(latest["partition_spec"], body["manifest"]["partition_spec"]);
    assert_eq!(
        latest["row_count"], 207,
        "the append kept the first version's files"
    );

    // Another spec on the existing dataset: 409 naming both, nothing written.
    let (status, refused) = h
        .ingest("name=events&mode=append&partition_by=day(ts)", &csv(3))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "partition_spec_mismatch");
    assert_eq!(
        refused["error"]["details"]["recorded"],
        "day(ts),bucket(4,id)"
    );
    assert_eq!(refused["error"]["details"]["requested"], "day(ts)");
    assert_eq!(
        h.latest_manifest("events").await["version"],
        latest["version"]
    );
}

#[tokio::test]
async fn an_unpartitioned_dataset_refuses_a_partition_by() {
    let h = Harness::start(&[]);
    let (status, body) = h.ingest("name=plain", &csv(5)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["manifest"].get("partition_spec").is_none());
    assert!(body["objects"][0].get("partition").is_none());
    let (status, refused) = h
        .ingest("name=plain&mode=append&partition_by=bucket(2,id)", &csv(5))
        .await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "partition_spec_mismatch");
    assert!(refused["error"]["details"]["recorded"].is_null());
}

#[tokio::test]
async fn transforms_that_do_not_fit_are_400s_and_store_nothing() {
    let h = Harness::start(&[]);
    for (spec, says) in [
        ("bucket(0,id)", "bucket"),
        ("week(ts)", "week"),
        ("day(ts", ")"),
        ("day(name)", "utf8"),
        ("bucket(4,missing)", "missing"),
    ] {
        let (status, body) = h
            .ingest(&format!("name=bad&partition_by={spec}"), &csv(5))
            .await;
        assert_eq!(status, 400, "{spec}: {body}");
        assert_eq!(body["error"]["code"], "invalid_option", "{spec}");
        assert_eq!(body["error"]["details"]["option"], "partition_by");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{spec}: {message}");
    }
    let (status, _) = h.catalog("/datasets/bad").await;
    assert_eq!(status, 404);
    assert!(h.stored_keys("datasets/bad").await.is_empty());
}

#[tokio::test]
async fn more_distinct_values_than_the_limit_is_a_400_with_nothing_stored() {
    let h = Harness::start(&[("LAKEHOUSE_INGESTD__MAX_PARTITIONS_PER_UPLOAD", "5".into())]);
    let (status, body) = h.ingest("name=wide&partition_by=id", &csv(6)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "limit_exceeded");
    assert_eq!(
        body["error"]["details"]["limit"],
        "max_partitions_per_upload"
    );
    assert!(h.stored_keys("datasets/wide").await.is_empty());
    let (status, body) = h.ingest("name=wide&partition_by=id", &csv(5)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["objects"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_tiny_buffer_and_target_cut_files_without_changing_the_rows() {
    let h = Harness::start(&[
        ("LAKEHOUSE_INGESTD__PARTITION_BUFFER_BYTES", "1".into()),
        ("LAKEHOUSE_INGESTD__TARGET_FILE_BYTES", "2000".into()),
    ]);
    let (status, body) = h
        .ingest("name=cut&partition_by=day(ts),bucket(4,id)", &csv(20_000))
        .await;
    assert_eq!(status, 200, "{body}");
    let objects = body["objects"].as_array().unwrap();
    assert!(objects.len() > 20, "files cut: {}", objects.len());
    let rows = check_files(&h, objects).await;
    assert_eq!(rows.len(), 20_000);
    // Within one partition the files hold its rows in the CSV's order.
    let mut last: std::collections::HashMap<String, i64> = Default::default();
    for object in objects {
        for (_, id) in rows_of(&h, object["key"].as_str().unwrap()).await {
            let partition = object["partition"].to_string();
            if let Some(before) = last.insert(partition, id) {
                assert!(before < id, "row {id} after {before}");
            }
        }
    }
}

#[tokio::test]
async fn an_upload_with_no_row_makes_one_empty_file_in_the_null_partition() {
    let h = Harness::start(&[]);
    let (status, body) = h.ingest("name=empty&partition_by=id", b"id,name\n").await;
    assert_eq!(status, 200, "{body}");
    let objects = body["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0]["row_count"], 0);
    assert_eq!(objects[0]["partition"], serde_json::json!([null]));
}

/// Two uploads whose rows of one partition are the same still append both: each file's
/// footer names its upload, so the second upload's file is another object, not one the
/// latest version "already holds" (docs/contract.md section 10).
#[tokio::test]
async fn an_append_whose_partition_rows_match_a_live_file_still_appends_them() {
    let h = Harness::start(&[]);
    let first = b"k,x\n1,a\n2,b\n";
    let (status, body) = h.ingest("name=same&partition_by=k", first).await;
    assert_eq!(status, 200, "{body}");
    // Partition k=1 holds the same row as before; k=3 is new.
    let (status, appended) = h.ingest("name=same&mode=append", b"k,x\n1,a\n3,c\n").await;
    assert_eq!(status, 200, "{appended}");
    assert_eq!(appended["existing"], false);
    let objects = appended["manifest"]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 4, "{appended}");
    let rows: u64 = objects
        .iter()
        .map(|o| o["row_count"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 4);
    // Every row the answer counts is in a stored file.
    let mut stored = 0;
    for object in objects {
        let data = h.stored_bytes(object["key"].as_str().unwrap()).await;
        stored += parquet::file::reader::FileReader::metadata(
            &parquet::file::reader::SerializedFileReader::new(data).expect("a Parquet file"),
        )
        .file_metadata()
        .num_rows();
    }
    assert_eq!(stored, 4);
    assert_eq!(appended["manifest"]["row_count"], 4);

    // The same rows in other bytes (CRLF line ends): another upload, appended too.
    let (status, crlf) = h
        .ingest("name=same&mode=append", b"k,x\r\n1,a\r\n2,b\r\n")
        .await;
    assert_eq!(status, 200, "{crlf}");
    assert_eq!(crlf["existing"], false);
    assert_eq!(crlf["manifest"]["row_count"], 6);
    // The first upload again is a retry of what the dataset holds: nothing new.
    let (status, again) = h.ingest("name=same&mode=append", first).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], true, "{again}");
    assert_eq!(again["manifest"]["row_count"], 6);
}

/// The default `max_partitions_per_upload`, reached: 10,000 partitions make 10,000 files,
/// registered in one version (a register body past axum's 2 MB default), and the limit
/// plus one is refused.
#[tokio::test]
async fn ten_thousand_partitions_ingest_in_one_version() {
    const LIMIT: i64 = 10_000;
    let h = Harness::start(&[]);
    let mut body = String::from("k,v\n");
    for k in 0..LIMIT {
        body.push_str(&format!("{k},{}\n", k * 3));
    }
    let (status, answer) = h.ingest("name=many&partition_by=k", body.as_bytes()).await;
    assert_eq!(status, 200, "{answer}");
    let objects = answer["manifest"]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), LIMIT as usize);
    assert_eq!(answer["manifest"]["row_count"], LIMIT);
    // Partition order: numerically, each file its own value.
    assert_eq!(objects[9_999]["partition"], serde_json::json!([9_999]));
    let one = rows_of_kv(&h, objects[1234]["key"].as_str().unwrap()).await;
    assert_eq!(one, vec![(1234, 3702)]);
    body.push_str(&format!("{LIMIT},0\n"));
    let (status, refused) = h.ingest("name=many&mode=append", body.as_bytes()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "limit_exceeded");
}

/// Each row of a stored `k,v` Parquet object.
async fn rows_of_kv(h: &Harness, key: &str) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    for batch in batches_of(h, key).await {
        let k = batch.column(0).as_primitive::<Int64Type>();
        let v = batch.column(1).as_primitive::<Int64Type>();
        rows.extend((0..batch.num_rows()).map(|i| (k.value(i), v.value(i))));
    }
    rows
}
