//! ingestd SIGKILLed in the middle of a partitioned ingest (docs/contract.md section 10,
//! "Partitioned writes"): while pass 2 writes the partition files into a spool directory of
//! their own, and once those files have started reaching storaged. After each restart the
//! crash test's invariants hold for the dataset (no version names a missing object, every
//! object carries its partition tuple, the Iceberg table loads, no spool file or directory
//! is left: ingestd removes `lakehouse-spool-*` leftovers at start), and the same upload
//! sent again lands whole.

use super::{Observed, invariants, spawn_answer, wait_ready};
use lakehouse_testkit::{Trio, multipart_file, stored_keys};
use serde_json::Value;
use std::collections::HashSet;
use std::time::{Duration, Instant};

const DATASET: &str = "events";
const PARTITION_BY: &str = "day(ts),bucket(4,id)";

/// `rows` rows of `ts,id,name` from id `first`: ts over 30 days around the epoch (12 of
/// them before 1970), every eleventh one empty. About 40 bytes a row.
fn events_csv(first: u64, rows: u64) -> Vec<u8> {
    let mut out = String::from("ts,id,name\n");
    for id in first..first + rows {
        let ts = if id % 11 == 5 {
            String::new()
        } else {
            let d = (id * 7) % 30;
            let day = if d < 12 {
                format!("1969-12-{:02}", 20 + d)
            } else {
                format!("1970-01-{:02}", d - 11)
            };
            format!("{day}T{:02}:{:02}:00Z", id % 24, id % 60)
        };
        out.push_str(&format!("{ts},{id},name-{id}\n"));
    }
    out.into_bytes()
}

/// How many distinct partitions `day(ts),bucket(4,id)` the rows of `csv` fall in (the
/// date part of ts, or none, and the bucket of id).
fn partitions_of(csv: &[u8]) -> usize {
    let text = std::str::from_utf8(csv).expect("UTF-8");
    let tuples: HashSet<(Option<&str>, i32)> = text
        .lines()
        .skip(1)
        .map(|line| {
            let mut fields = line.split(',');
            let ts = fields.next().expect("ts");
            let id: i64 = fields.next().expect("id").parse().expect("an id");
            let day = (!ts.is_empty()).then(|| &ts[..10]);
            (day, lakehouse_iceberg::transform::bucket_i64(id, 4))
        })
        .collect();
    tuples.len()
}

/// When the kill comes.
#[derive(Clone, Copy, Debug)]
enum Moment {
    /// A `lakehouse-spool-*` directory is in ingestd's spool: pass 2 is writing the files.
    PartitionFiles,
    /// A Parquet object storaged did not hold before the upload is stored.
    Storing,
}

/// Whether `moment` has come: `before` holds the Parquet keys stored before the upload.
async fn reached(moment: Moment, trio: &Trio, before: &HashSet<String>) -> bool {
    match moment {
        Moment::PartitionFiles => std::fs::read_dir(trio.dir.path().join("data/spool"))
            .map(|entries| {
                entries.filter_map(Result::ok).any(|e| {
                    e.file_type().is_ok_and(|t| t.is_dir())
                        && e.file_name()
                            .to_string_lossy()
                            .starts_with("lakehouse-spool-")
                })
            })
            .unwrap_or(false),
        Moment::Storing => parquet_keys(trio)
            .await
            .into_iter()
            .any(|key| !before.contains(&key)),
    }
}

async fn parquet_keys(trio: &Trio) -> HashSet<String> {
    stored_keys(&trio.storaged.url(), &format!("datasets/{DATASET}/"))
        .await
        .into_iter()
        .filter(|key| key.ends_with(".parquet"))
        .collect()
}

fn ingest(http: &reqwest::Client, trio: &Trio, csv: &[u8]) -> reqwest::RequestBuilder {
    http.post(format!(
        "{}/ingest?name={DATASET}&mode=append&partition_by={PARTITION_BY}",
        trio.ingestd.url()
    ))
    .header("content-type", lakehouse_testkit::multipart_content_type())
    .body(multipart_file("file", csv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_in_the_middle_of_a_partitioned_ingest_keeps_the_invariants() {
    let started = Instant::now();
    let mut trio = Trio::start(&[]).expect("trio starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut observed = Observed::default();
    let first = ingest(&http, &trio, &events_csv(0, 500))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status().as_u16(), 200);
    observed.acknowledged.push(first.json().await.unwrap());

    // 120 partitions and the null ones, a few MB: pass 2 takes a while in a debug build.
    let rows = 80_000;
    let mut cut = 0;
    for (round, moment) in [Moment::PartitionFiles, Moment::Storing]
        .into_iter()
        .enumerate()
    {
        let csv = events_csv(1_000_000 * (round as u64 + 1), rows);
        let before = parquet_keys(&trio).await;
        let task = spawn_answer(ingest(&http, &trio, &csv));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !task.is_finished() && !reached(moment, &trio, &before).await {
            assert!(Instant::now() < deadline, "{moment:?} never came");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::task::block_in_place(|| trio.ingestd.restart_on_same_port())
            .expect("ingestd restarts");
        match task.await.expect("ingest task") {
            // Done before the kill (a fast machine): still checked below.
            (200, body) => observed.acknowledged.push(body),
            (0, _) => cut += 1,
            (status, body) => panic!("{moment:?}: ingest {status}: {body}"),
        }
        wait_ready(&http, [&trio.storaged, &trio.catalogd, &trio.ingestd]).await;
        let found = invariants::violations(&http, &trio, DATASET, &observed).await;
        assert!(found.is_empty(), "after a kill at {moment:?}: {found:#?}");

        // The same upload again, nothing killed: it lands whole, every file with its tuple.
        let latest: Value = http
            .get(format!("{}/datasets/{DATASET}", trio.catalogd.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let retry = ingest(&http, &trio, &csv).send().await.unwrap();
        assert_eq!(retry.status().as_u16(), 200, "{moment:?}: the retry");
        let body: Value = retry.json().await.unwrap();
        let manifest = &body["manifest"];
        let added = if body["existing"] == true {
            // The cut ingest had committed after all: the retry names its version.
            0
        } else {
            rows
        };
        assert_eq!(
            manifest["row_count"].as_u64(),
            latest["row_count"].as_u64().map(|n| n + added),
            "{moment:?}: {body}"
        );
        let objects = body["objects"].as_array().expect("objects");
        assert_eq!(
            objects.len(),
            partitions_of(&csv),
            "{moment:?}: one file a partition"
        );
        assert!(
            objects.iter().all(|o| o["partition"].is_array()),
            "{moment:?}: {body}"
        );
        observed.acknowledged.push(body);
        let found = invariants::violations(&http, &trio, DATASET, &observed).await;
        assert!(
            found.is_empty(),
            "after the retry of {moment:?}: {found:#?}"
        );
    }
    assert!(cut > 0, "no kill cut an ingest: the test exercised nothing");
    eprintln!(
        "partitioned kills: {cut} of 2 ingests cut, {:.1}s",
        started.elapsed().as_secs_f64()
    );
}
