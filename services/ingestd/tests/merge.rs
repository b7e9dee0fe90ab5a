//! Merge and delete by key (docs/contract.md section 11) against the real binaries: the
//! counts, the rows of every version read back from the stored Parquet with the parquet
//! crate against a `BTreeMap` model (random sequences of merges, deletes and appends
//! included, their keys matched in parts under a tiny key memory), `existing: true` for a
//! merge that changes nothing, dry runs, the refusals
//! with nothing stored, a partitioned dataset, and time travel to the version before.

use arrow_array::Array;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse_testkit::Harness;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::collections::BTreeMap;

/// One table row: `id -> (name, score)`; a `None` score is an empty field.
type Model = BTreeMap<i64, (String, Option<i64>)>;

/// A CSV `id,name,score` of `rows`.
fn csv(rows: &[(i64, &str, Option<i64>)]) -> Vec<u8> {
    let mut out = String::from("id,name,score\n");
    for (id, name, score) in rows {
        let score = score.map(|s| s.to_string()).unwrap_or_default();
        out.push_str(&format!("{id},{name},{score}\n"));
    }
    out.into_bytes()
}

/// A key-only CSV `id` of `ids`.
fn keys(ids: &[i64]) -> Vec<u8> {
    let mut out = String::from("id\n");
    for id in ids {
        out.push_str(&format!("{id}\n"));
    }
    out.into_bytes()
}

/// The record batches of a stored object, read back from storaged.
async fn batches_of(h: &Harness, object: &Value) -> Vec<arrow_array::RecordBatch> {
    let data = h.stored_bytes(object["key"].as_str().expect("a key")).await;
    ParquetRecordBatchReaderBuilder::try_new(data)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
        .collect::<Result<_, _>>()
        .expect("batches")
}

/// Every row of the objects of `manifest`, read back from storaged, as `(id, name, score)`.
async fn rows_of(h: &Harness, manifest: &Value) -> Vec<(i64, String, Option<i64>)> {
    let mut rows = Vec::new();
    for object in manifest["objects"].as_array().expect("objects") {
        let mut in_file = 0u64;
        for batch in batches_of(h, object).await {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            let scores = batch.column(2).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let score = (!scores.is_null(i)).then(|| scores.value(i));
                rows.push((ids.value(i), names.value(i).to_owned(), score));
            }
            in_file += batch.num_rows() as u64;
        }
        assert_eq!(in_file, object["row_count"].as_u64().unwrap(), "{object}");
    }
    rows
}

/// The rows of `manifest` as a model; panics on a key held twice.
async fn model_of(h: &Harness, manifest: &Value) -> Model {
    let mut model = Model::new();
    for (id, name, score) in rows_of(h, manifest).await {
        assert!(
            model.insert(id, (name, score)).is_none(),
            "key {id} is held twice in version {}",
            manifest["version"]
        );
    }
    assert_eq!(model.len() as u64, manifest["row_count"].as_u64().unwrap());
    model
}

fn counts(body: &Value) -> [u64; 5] {
    let m = &body["merge"];
    ["inserted", "updated", "unchanged", "deleted", "not_found"].map(|k| m[k].as_u64().unwrap())
}

#[tokio::test]
async fn merges_and_deletes_keep_the_table_current() {
    let h = Harness::start(&[]);
    let first: Vec<(i64, &str, Option<i64>)> = (0..50).map(|i| (i, "a", Some(i * 10))).collect();
    let (status, body) = h
        .ingest("name=people&mode=merge&key=id", &csv(&first))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [50, 0, 0, 0, 0]);
    assert_eq!(body["manifest"]["key"], serde_json::json!(["id"]));
    assert_eq!(body["manifest"]["operation"], "merge");
    let v1 = body["manifest"].clone();

    // Two updates, one unchanged row, two new keys.
    let delta = [
        (3, "changed", Some(30)),
        (7, "a", None),
        (8, "a", Some(80)),
        (100, "new", Some(1)),
        (101, "new", None),
    ];
    let (status, body) = h
        .ingest("name=people&mode=merge&key=id", &csv(&delta))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [2, 2, 1, 0, 0], "{body}");
    assert_eq!(body["existing"], false);
    assert_eq!(body["merge"]["files_removed"], 1);
    let mut model: Model = first
        .iter()
        .map(|(i, n, s)| (*i, (n.to_string(), *s)))
        .collect();
    for (id, name, score) in delta {
        model.insert(id, (name.to_owned(), score));
    }
    let v2 = body["manifest"].clone();
    assert_eq!(v2["version"], 2);
    assert_eq!(model_of(&h, &v2).await, model);

    // The same merge again changes nothing: no version, a retry is safe.
    let (status, again) = h
        .ingest("name=people&mode=merge&key=id", &csv(&delta))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["existing"], true);
    assert_eq!(counts(&again), [0, 0, 5, 0, 0]);
    assert_eq!(again["manifest"]["version"], 2);

    // A dry run answers the counts and writes nothing.
    let objects_before = h.stored_objects().await;
    let (status, dry) = h
        .ingest(
            "name=people&mode=merge&key=id&dry_run=true",
            &csv(&[(1, "dry", None), (500, "dry", None)]),
        )
        .await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["dry_run"], true);
    assert_eq!(counts(&dry), [1, 1, 0, 0, 0]);
    assert_eq!(h.latest_manifest("people").await["version"], 2);
    assert_eq!(h.stored_objects().await, objects_before);

    // A delete by a key list.
    let (status, body) = h
        .ingest("name=people&mode=delete&key=id", &keys(&[3, 100, 999]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [0, 0, 0, 2, 1], "{body}");
    assert_eq!(body["manifest"]["operation"], "delete");
    model.remove(&3);
    model.remove(&100);
    let v3 = body["manifest"].clone();
    assert_eq!(model_of(&h, &v3).await, model);
    // A delete that finds nothing makes no version.
    let (status, body) = h
        .ingest("name=people&mode=delete&key=id", &keys(&[3]))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["existing"], true);
    assert_eq!(counts(&body), [0, 0, 0, 0, 1]);

    // Time travel: version 1 still reads as it was.
    let (status, old) = h.catalog("/datasets/people/versions/1").await;
    assert_eq!(status, 200, "{old}");
    assert_eq!(model_of(&h, &old).await.len(), 50);
    assert_eq!(old["objects"], v1["objects"]);
}

#[tokio::test]
async fn bad_keys_are_refused_naming_their_lines_and_nothing_is_stored() {
    let h = Harness::start(&[]);
    let (status, body) = h
        .ingest(
            "name=k&mode=merge&key=id",
            &csv(&[(1, "a", None), (2, "b", None)]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let stored = h.stored_objects().await;

    // A quoted line break before it: the line is the record's, not the row's.
    let null_key = b"id,name,score\n5,\"two\nlines\",1\n,b,2\n".to_vec();
    let (status, body) = h.ingest("name=k&mode=merge&key=id", &null_key).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "null_key");
    assert_eq!(body["error"]["details"]["line"], 4, "{body}");
    assert_eq!(body["error"]["details"]["column"], "id");

    let twice = csv(&[(5, "a", None), (6, "b", None), (5, "c", None)]);
    let (status, body) = h.ingest("name=k&mode=merge&key=id", &twice).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_key");
    assert_eq!(body["error"]["details"]["lines"], serde_json::json!([2, 4]));
    let (status, body) = h.ingest("name=k&mode=delete&key=id", &keys(&[1, 1])).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_key");

    let (status, body) = h
        .ingest("name=k&mode=merge&key=name", &csv(&[(9, "z", None)]))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "key_mismatch");
    assert_eq!(
        body["error"]["details"]["recorded"],
        serde_json::json!(["id"])
    );

    for query in [
        "name=k&mode=merge",
        "name=k&mode=append&key=id",
        "name=k&mode=merge&key=id,,name",
        "name=k2&mode=merge&key=nope",
        "name=k&mode=merge&key=id&max_rejects=3",
    ] {
        let (status, body) = h.ingest(query, &csv(&[(9, "z", None)])).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_option", "{query}: {body}");
    }
    // A delete of a dataset that does not exist.
    let (status, body) = h
        .ingest("name=absent&mode=delete&key=id", &keys(&[1]))
        .await;
    assert_eq!(status, 404, "{body}");

    let latest = h.latest_manifest("k").await;
    assert_eq!(latest["version"], 1);
    // The refused uploads left no object behind.
    assert_eq!(h.stored_objects().await, stored);
    assert!(h.spool_files().is_empty(), "{:?}", h.spool_files());
}

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::test]
async fn random_merges_deletes_and_appends_match_a_model() {
    // A key memory of 1 KiB: every merge of more than about eight keys is matched against
    // the table in parts (docs/contract.md section 11), and must give the model all the same.
    let h = Harness::start(&[(
        "LAKEHOUSE_INGESTD__MERGE_KEY_MEMORY_BYTES",
        "1024".to_owned(),
    )]);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut model = Model::new();
    let mut next_fresh = 1_000i64;
    let names = ["x", "y", "z"];
    for step in 0..24 {
        let before = model.clone();
        let (query, body) = match rng.below(5) {
            // merge: some existing keys (changed or not), some new ones
            0..=2 => {
                let mut picked = BTreeMap::new();
                for _ in 0..rng.below(30) + 1 {
                    let id = if !model.is_empty() && rng.below(2) == 0 {
                        *model
                            .keys()
                            .nth(rng.below(model.len() as u64) as usize)
                            .unwrap()
                    } else {
                        rng.below(200) as i64
                    };
                    let name = names[rng.below(3) as usize];
                    let score = (rng.below(4) != 0).then(|| rng.below(5) as i64);
                    picked.insert(id, (name, score));
                }
                let rows: Vec<_> = picked.iter().map(|(i, (n, s))| (*i, *n, *s)).collect();
                for (id, (name, score)) in &picked {
                    model.insert(*id, (name.to_string(), *score));
                }
                ("mode=merge&key=id", csv(&rows))
            }
            // delete some keys, held or not
            3 => {
                let mut ids = std::collections::BTreeSet::new();
                for _ in 0..rng.below(10) + 1 {
                    ids.insert(rng.below(220) as i64);
                }
                for id in &ids {
                    model.remove(id);
                }
                let ids: Vec<i64> = ids.into_iter().collect();
                ("mode=delete&key=id", keys(&ids))
            }
            // append rows with fresh keys
            _ => {
                let rows: Vec<_> = (0..rng.below(5) + 1)
                    .map(|_| {
                        next_fresh += 1;
                        (next_fresh, "appended", Some(step))
                    })
                    .collect();
                for (id, name, score) in &rows {
                    model.insert(*id, (name.to_string(), *score));
                }
                ("mode=append", csv(&rows))
            }
        };
        if before.is_empty() && query.starts_with("mode=delete") {
            model = before;
            continue;
        }
        let (status, answer) = h.ingest(&format!("name=model&{query}"), &body).await;
        assert_eq!(status, 200, "step {step} ({query}): {answer}");
        let latest = h.latest_manifest("model").await;
        assert_eq!(model_of(&h, &latest).await, model, "step {step} ({query})");
        assert_eq!(
            answer["existing"],
            before == model,
            "step {step} ({query}): {answer}"
        );
    }
}

#[tokio::test]
async fn a_partitioned_dataset_merges_within_its_partitions() {
    let h = Harness::start(&[]);
    let rows: Vec<(i64, &str, Option<i64>)> = (0..40).map(|i| (i, "p", Some(i))).collect();
    let (status, body) = h
        .ingest("name=parts&partition_by=bucket(4,id)", &csv(&rows))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h
        .ingest(
            "name=parts&mode=merge&key=id",
            &csv(&[(5, "five", None), (77, "new", Some(7))]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [1, 1, 0, 0, 0]);
    // Only the file of 5's bucket was rewritten.
    assert_eq!(body["merge"]["files_removed"], 1, "{body}");
    let latest = h.latest_manifest("parts").await;
    let model = model_of(&h, &latest).await;
    assert_eq!(model.len(), 41);
    assert_eq!(model[&5], ("five".to_owned(), None));
    for object in latest["objects"].as_array().unwrap() {
        let tuple = &object["partition"];
        for batch in batches_of(&h, object).await {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                let bucket = lakehouse_iceberg::transform::bucket_i64(ids.value(i), 4);
                assert_eq!(serde_json::json!([bucket]), *tuple);
            }
        }
    }
}

#[tokio::test]
async fn a_merge_may_add_columns_and_older_files_read_them_as_null() {
    let h = Harness::start(&[]);
    let first = csv(&[(1, "a", Some(1)), (2, "b", Some(2)), (3, "c", None)]);
    let (status, body) = h.ingest("name=wide&mode=merge&key=id", &first).await;
    assert_eq!(status, 200, "{body}");
    let wider = b"id,name,score,note\n2,B,2,changed\n9,new,9,added\n".to_vec();
    let (status, body) = h.ingest("name=wide&mode=merge&key=id", &wider).await;
    assert_eq!(status, 409, "without the option it is drift: {body}");
    let (status, body) = h
        .ingest(
            "name=wide&mode=merge&key=id&schema_evolution=add_columns",
            &wider,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [1, 1, 0, 0, 0], "{body}");
    let latest = h.latest_manifest("wide").await;
    assert_eq!(latest["schema"]["fields"].as_array().unwrap().len(), 4);
    // Every object, old schema or new, read as the version's four columns.
    let mut rows: Vec<(i64, String, Option<String>)> = Vec::new();
    for object in latest["objects"].as_array().unwrap() {
        for batch in batches_of(&h, object).await {
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let names = batch.column(1).as_string::<i32>();
            let notes = batch.column_by_name("note");
            for i in 0..batch.num_rows() {
                let note = notes
                    .filter(|n| !n.is_null(i))
                    .map(|n| n.as_string::<i32>().value(i).to_owned());
                rows.push((ids.value(i), names.value(i).to_owned(), note));
            }
        }
    }
    rows.sort();
    let expected = vec![
        (1, "a".to_owned(), None),
        (2, "B".to_owned(), Some("changed".to_owned())),
        (3, "c".to_owned(), None),
        (9, "new".to_owned(), Some("added".to_owned())),
    ];
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn a_merge_upload_past_the_target_size_is_written_as_several_files() {
    // 300,000 rows of `id,name,score`: three row groups of several MB each against a 1 MB
    // target, so the first merge's upload is three files, and so is the second's.
    let h = Harness::start(&[("LAKEHOUSE_INGESTD__TARGET_FILE_BYTES", "1000000".into())]);
    let first: Vec<(i64, &str, Option<i64>)> = (0..300_000).map(|i| (i, "a", Some(i))).collect();
    let (status, body) = h.ingest("name=wide&mode=merge&key=id", &csv(&first)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [300_000, 0, 0, 0, 0]);
    let v1 = &body["manifest"];
    assert_eq!(v1["objects"].as_array().unwrap().len(), 3, "{v1}");
    let mut model: Model = first
        .iter()
        .map(|(i, n, s)| (*i, (n.to_string(), *s)))
        .collect();
    assert_eq!(model_of(&h, v1).await, model);

    // Every other key updated, and as many new keys.
    let delta: Vec<(i64, &str, Option<i64>)> = (0..300_000)
        .map(|i| {
            if i % 2 == 0 {
                (i, "b", None)
            } else {
                (300_000 + i, "new", Some(i))
            }
        })
        .collect();
    let (status, body) = h.ingest("name=wide&mode=merge&key=id", &csv(&delta)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(counts(&body), [150_000, 150_000, 0, 0, 0], "{body}");
    for (id, name, score) in &delta {
        model.insert(*id, (name.to_string(), *score));
    }
    let v2 = &body["manifest"];
    assert!(v2["objects"].as_array().unwrap().len() >= 4, "{v2}");
    assert_eq!(model_of(&h, v2).await, model);
}
