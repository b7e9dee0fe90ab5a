//! The opt-in forgiving ingest options of docs/contract.md sections 3 and 6, end to end over the real
//! binaries on port 0: `dry_run`, `schema_evolution=add_columns`, `max_rejects`, and the
//! validation of those options before the body is read.

use lakehouse_testkit::{Harness, OpenUpload, field_types, multipart_content_type};
use serde_json::{Value, json};
use std::time::Duration;

/// How long an answer that needs no body may take; far beyond a healthy one.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// The parts of an ingest answer that a dry run and the real ingest after it must share:
/// everything but `dry_run` and the manifest's `created_at` (a commit time).
fn comparable(mut body: Value) -> Value {
    if let Some(answer) = body.as_object_mut() {
        answer.remove("dry_run");
        if let Some(manifest) = answer.get_mut("manifest").and_then(Value::as_object_mut) {
            manifest.remove("created_at");
        }
    }
    body
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

#[tokio::test]
async fn bad_options_are_400_invalid_option_before_the_body_is_read() {
    let h = Harness::start_unpooled(&[]);
    let cases = [
        ("dry_run=yes", "dry_run"),
        ("dry_run=", "dry_run"),
        ("dry_run=TRUE", "dry_run"),
        ("schema_evolution=drop_columns", "schema_evolution"),
        ("schema_evolution=", "schema_evolution"),
        ("max_rejects=-1", "max_rejects"),
        ("max_rejects=abc", "max_rejects"),
        ("max_rejects=1.5", "max_rejects"),
        ("max_rejects=+3", "max_rejects"),
        ("max_rejects=", "max_rejects"),
        ("max_rejects=99999999999999999999999", "max_rejects"),
    ];
    for (option, name) in cases {
        // The upload stays open: an answer while it is open was made before the body.
        let (upload, body) = OpenUpload::new(b"a\n1\n");
        let answer = tokio::time::timeout(
            ANSWER_WITHIN,
            h.ingest_body(&format!("name=opts&{option}"), body),
        )
        .await
        .unwrap_or_else(|_| panic!("{option}: no answer while the body is open"));
        drop(upload);
        let (status, body) = answer;
        assert_eq!(status, 400, "{option}: {body}");
        assert_eq!(body["error"]["code"], "invalid_option", "{option}: {body}");
        assert_eq!(body["error"]["details"]["option"], name, "{option}: {body}");
        assert!(message(&body).contains(name), "{option}: {body}");
    }
    // Good values pass validation.
    let (status, body) = h
        .ingest(
            "name=opts&dry_run=false&schema_evolution=add_columns&max_rejects=0",
            b"a\n1\n",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(h.spool_files().is_empty());
}

#[tokio::test]
async fn dry_runs_answer_what_the_real_ingest_answers_and_write_nothing() {
    let h = Harness::start_unpooled(&[]);
    let first = b"id,name,price\n1,apple,1.5\n2,pear,2\n";
    let conforming = b"id,name,price\n3,kiwi,\n4,plum,7\n";
    let drifting = b"id,name,price\n5,fig,cheap\n";
    // (query, csv) in order: a new dataset, a conforming append, the same again (existing),
    // a drifting upload, an upload with a new column with and without the option.
    let steps: [(&str, &[u8]); 8] = [
        ("name=d", first),
        ("name=d&mode=append", conforming),
        ("name=d&mode=append", conforming),
        ("name=d&mode=append", drifting),
        ("name=d&mode=append", b"id,name,price,note\n6,lime,1,sour\n"),
        (
            "name=d&mode=append&schema_evolution=add_columns",
            b"id,name,price,note\n6,lime,1,sour\n",
        ),
        // Records set aside, within and past the limit.
        (
            "name=d&mode=append&max_rejects=1",
            b"id,name,price,note\n7,x,1,a\nbad\n",
        ),
        (
            "name=d&mode=append&max_rejects=1",
            b"id,name,price,note\nx,x,1,a\nbad\n",
        ),
    ];
    for (query, csv) in steps {
        let keys_before = h.stored_keys("").await;
        let versions_before = h.catalog("/datasets/d/versions").await;
        let (dry_status, dry) = h.ingest(&format!("{query}&dry_run=true"), csv).await;
        assert_eq!(
            h.stored_keys("").await,
            keys_before,
            "{query}: dry run stored something"
        );
        assert_eq!(
            h.catalog("/datasets/d/versions").await,
            versions_before,
            "{query}: dry run made a version"
        );
        if dry_status == 200 {
            assert_eq!(dry["dry_run"], true, "{query}: {dry}");
        }
        let (status, real) = h.ingest(query, csv).await;
        assert_eq!(dry_status, status, "{query}: {dry} vs {real}");
        if status == 200 {
            assert_eq!(real["dry_run"], false, "{query}: {real}");
        }
        assert_eq!(comparable(dry), comparable(real), "{query}");
    }
    // The steps made versions 1 (new), 2 (append), 3 (evolution), 4 (rejects); the rest
    // changed nothing.
    let (_, versions) = h.catalog("/datasets/d/versions").await;
    assert_eq!(
        versions["versions"].as_array().unwrap().len(),
        4,
        "{versions}"
    );
    assert!(h.spool_files().is_empty());
}

#[tokio::test]
async fn a_dry_run_takes_an_ingest_slot() {
    let h = Harness::start_unpooled(&[("LAKEHOUSE_INGESTD__MAX_CONCURRENT_INGESTS", "1".into())]);
    let (upload, body) = OpenUpload::new(b"a\n1\n");
    let url = format!("{}/ingest?name=slot&dry_run=true", h.trio.ingestd.url());
    let held = tokio::spawn(
        h.http
            .post(url)
            .header("content-type", multipart_content_type())
            .body(body)
            .send(),
    );
    // The dry run holds the slot once its spool file exists (bounded wait, no fixed sleep).
    let deadline = std::time::Instant::now() + ANSWER_WITHIN;
    while h.spool_files().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the dry run never spooled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, busy) = h.ingest("name=other", b"a\n1\n").await;
    assert_eq!(
        (status, busy["error"]["code"].as_str()),
        (503, Some("busy")),
        "{busy}"
    );
    upload.finish(b"2\n").await;
    let answer = held.await.unwrap().expect("ingestd answers the dry run");
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        (body["dry_run"].as_bool(), body["row_count"].as_u64()),
        (Some(true), Some(2))
    );
    let (status, _) = h.catalog("/datasets/slot/versions").await;
    assert_eq!(status, 404, "a dry run registers nothing");
}

#[tokio::test]
async fn add_columns_makes_a_new_schema_version_that_keeps_appended_objects() {
    let h = Harness::start_unpooled(&[]);
    let (status, v1) = h.ingest("name=e", b"id,name\n1,a\n2,b\n").await;
    assert_eq!(status, 200, "{v1}");
    let wider = b"id,name,score,seen\n3,c,1.5,2024-01-02\n4,d,,2024-01-03\n";

    // Without the option: a 409 that names it, nothing changed.
    let (status, refused) = h.ingest("name=e&mode=append", wider).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "schema_drift");
    assert_eq!(
        refused["error"]["details"]["added"],
        json!(["score", "seen"])
    );
    assert!(
        message(&refused).contains("schema_evolution=add_columns"),
        "{refused}"
    );

    let (status, v2) = h
        .ingest("name=e&mode=append&schema_evolution=add_columns", wider)
        .await;
    assert_eq!(status, 200, "{v2}");
    assert_eq!(
        field_types(&v2),
        ["id:int64", "name:utf8", "score:float64", "seen:date32"]
    );
    assert_eq!(v2["manifest"]["version"], 2);
    assert_ne!(
        v2["manifest"]["schema_fingerprint"],
        v1["manifest"]["schema_fingerprint"]
    );
    assert_eq!(v2["manifest"]["schema"], v2["schema"]);
    let objects: Vec<&str> = v2["manifest"]["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        [
            v1["parquet_key"].as_str().unwrap(),
            v2["parquet_key"].as_str().unwrap()
        ],
        "append keeps the object written before the columns were added"
    );
    assert_eq!(v2["manifest"]["row_count"], 4);

    // The registered schema is now the wider one: the same upload again is existing, and
    // the old header is a removal.
    let (status, again) = h
        .ingest("name=e&mode=append&schema_evolution=add_columns", wider)
        .await;
    assert_eq!((status, &again["existing"]), (200, &json!(true)), "{again}");
    let (status, narrow) = h
        .ingest(
            "name=e&mode=append&schema_evolution=add_columns",
            b"id,name\n5,e\n",
        )
        .await;
    assert_eq!(status, 409, "{narrow}");
    assert_eq!(
        narrow["error"]["details"]["removed"],
        json!(["score", "seen"])
    );
}

#[tokio::test]
async fn removed_reordered_and_retyped_columns_are_409_with_or_without_the_option() {
    let h = Harness::start_unpooled(&[]);
    let (status, _) = h.ingest("name=f", b"id,name\n1,a\n").await;
    assert_eq!(status, 200);
    let versions = h.catalog("/datasets/f/versions").await;
    let cases: [(&str, &[u8], &str); 4] = [
        ("removed", b"id\n2\n", "removed"),
        ("reordered", b"name,id,extra\nb,2,x\n", "reordered"),
        ("retyped", b"id,name,extra\nx,b,1\n", "changed"),
        ("added in the middle", b"id,extra,name\n2,x,b\n", "added"),
    ];
    for (what, csv, detail) in cases {
        for option in ["", "&schema_evolution=add_columns"] {
            let (status, body) = h.ingest(&format!("name=f&mode=append{option}"), csv).await;
            assert_eq!(status, 409, "{what}{option}: {body}");
            assert_eq!(body["error"]["code"], "schema_drift", "{what}{option}");
            assert!(
                body["error"]["details"][detail]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
                "{what}{option}: {body}"
            );
            assert!(
                !message(&body).contains("schema_evolution"),
                "{what}{option}: the option would not help: {body}"
            );
        }
    }
    assert_eq!(
        h.catalog("/datasets/f/versions").await,
        versions,
        "nothing registered"
    );
}

/// Both uploads pass ingestd's own check against version 1 when they overlap; catalogd's
/// gate, under its commit, lets one through. Three datasets, so three races.
#[tokio::test]
async fn two_racing_uploads_adding_different_columns_one_wins() {
    let h = Harness::start_unpooled(&[]);
    for round in 0..3 {
        let name = format!("r{round}");
        let (status, _) = h.ingest(&format!("name={name}"), b"id\n1\n").await;
        assert_eq!(status, 200);
        let query = format!("name={name}&mode=append&schema_evolution=add_columns");
        let (a, b) = (b"id,x\n2,v\n", b"id,y\n3,w\n");
        let ((status_a, body_a), (status_b, body_b)) =
            tokio::join!(h.ingest(&query, a), h.ingest(&query, b));
        let mut statuses = [status_a, status_b];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "round {round}: {body_a} {body_b}");
        let (winner, loser) = if status_a == 200 {
            (body_a, body_b)
        } else {
            (body_b, body_a)
        };
        assert_eq!(loser["error"]["code"], "schema_drift", "{loser}");
        let (_, latest) = h.catalog(&format!("/datasets/{name}")).await;
        assert_eq!(latest, winner["manifest"]);
        assert_eq!(latest["version"], 2);
    }
}

/// Three bad records: a short one, invalid UTF-8, a value int64 refuses (lines 3, 5, 6).
const THREE_BAD: &[u8] = b"id,name\n1,a\n2\n3,\"x,y\"\n4,b\xffc\nfive,e\n6,f\n";

#[tokio::test]
async fn rejects_up_to_the_limit_are_set_aside_next_to_the_data() {
    let h = Harness::start_unpooled(&[]);
    let (status, _) = h.ingest("name=j", b"id,name\n0,z\n").await;
    assert_eq!(status, 200);
    let (status, body) = h
        .ingest("name=j&mode=append&max_rejects=5", THREE_BAD)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["row_count"], 3, "the good rows only: {body}");
    assert_eq!(body["rejects"]["count"], 3);
    let key = body["rejects"]["key"].as_str().unwrap();
    assert!(
        key.starts_with("datasets/j/_rejects/") && key.ends_with(".csv"),
        "{key}"
    );
    let objects = body["manifest"]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2);
    assert_eq!(objects[1]["rejects"], body["rejects"]);
    assert_eq!(body["manifest"]["row_count"], 4);
    let stored = h.stored_bytes(key).await;
    assert_eq!(
        String::from_utf8(stored.to_vec()).unwrap(),
        "line,column,reason,record\n\
         3,,\"expected 2 fields as in the header, found 1\",2\n\
         5,2,\"invalid utf-8 at byte 2 of the field (it reads as Windows-1252, which \
         spreadsheet exports on Windows often are: add `encoding=windows-1252`)\",\"4,b\u{fffd}c\"\n\
         6,1,\"value \"\"five\"\" is not int64\",\"five,e\"\n"
    );
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored));
    assert_eq!(key, format!("datasets/j/_rejects/{digest}.csv"));
    // The same upload again: the same objects, nothing new.
    let (status, again) = h
        .ingest("name=j&mode=append&max_rejects=5", THREE_BAD)
        .await;
    assert_eq!((status, &again["existing"]), (200, &json!(true)), "{again}");
    assert_eq!(again["rejects"], body["rejects"]);
    assert!(h.spool_files().is_empty());
}

#[tokio::test]
async fn past_the_limit_the_usual_error_with_the_count_and_nothing_stored() {
    let h = Harness::start_unpooled(&[]);
    let (status, _) = h.ingest("name=k", b"id,name\n0,z\n").await;
    assert_eq!(status, 200);
    let keys = h.stored_keys("").await;
    let (status, body) = h
        .ingest("name=k&mode=append&max_rejects=2", THREE_BAD)
        .await;
    assert_eq!(
        status, 409,
        "the third bad record is a refused value: {body}"
    );
    assert_eq!(body["error"]["code"], "schema_drift");
    assert_eq!(body["error"]["details"]["rejected"], 3);
    assert_eq!(body["error"]["details"]["changed"][0]["line"], 6);
    let (status, body) = h
        .ingest("name=k&mode=append&max_rejects=0", THREE_BAD)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "malformed_csv");
    assert_eq!(body["error"]["details"]["line"], 3);
    assert_eq!(h.stored_keys("").await, keys, "nothing stored");
    let (_, versions) = h.catalog("/datasets/k/versions").await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    assert!(h.spool_files().is_empty());
}

/// A new dataset: inference sees only the records kept (`five` would make `id` text, but
/// without a registered schema only ragged and undecodable records are set aside), and the
/// Parquet and rejects bytes are the same in two datasets.
#[tokio::test]
async fn rejects_of_a_new_dataset_are_deterministic() {
    let h = Harness::start_unpooled(&[]);
    let (status, x) = h.ingest("name=x&max_rejects=5", THREE_BAD).await;
    assert_eq!(status, 200, "{x}");
    let (status, y) = h.ingest("name=y&max_rejects=5", THREE_BAD).await;
    assert_eq!(status, 200, "{y}");
    assert_eq!(x["rejects"]["count"], 2);
    assert_eq!(x["row_count"], 4);
    assert_eq!(field_types(&x), ["id:utf8", "name:utf8"]);
    let file = |body: &Value, at: &str| {
        body[at]
            .as_str()
            .or_else(|| body["rejects"]["key"].as_str().filter(|_| at == "rejects"))
            .map(|k| k.rsplit('/').next().unwrap().to_owned())
    };
    assert_eq!(file(&x, "parquet_key"), file(&y, "parquet_key"));
    assert_eq!(file(&x, "rejects"), file(&y, "rejects"));
    assert_eq!(x["rejects"]["sha256"], y["rejects"]["sha256"]);
}
