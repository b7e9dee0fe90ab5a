//! Merges and deletes by key in the crash test's mix (docs/contract.md section 11), on a
//! dataset of their own (`keyed`, columns `id,value`): each round sends a merge, a delete and
//! an append of fresh keys while a service is killed. The invariant, over every committed
//! version (acknowledged or cut by the kill): its rows, read back from its Parquet objects,
//! are the previous version's rows with its own upload applied (found by the CSV SHA-256 the
//! version records): a merge's rows replace those of their keys, a delete's keys are gone,
//! an append's rows are added; no key is held twice. Every 200 names a version with the
//! objects it answered.

use super::Rng;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use lakehouse_testkit::{Trio, multipart_content_type, multipart_file};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use tokio::task::JoinHandle;

/// The dataset the keyed requests write.
const DATASET: &str = "keyed";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Merge,
    Delete,
    Append,
}

/// The keyed requests sent and what was checked of them.
#[derive(Default)]
pub(crate) struct Keyed {
    /// Every upload sent, by the SHA-256 (hex) of its CSV: its mode and rows.
    uploads: HashMap<String, (Mode, Vec<(i64, i64)>)>,
    /// 200 answers that made a version.
    acknowledged: Vec<Value>,
    /// The last version whose rows were checked, and those rows.
    checked: u64,
    rows: BTreeMap<i64, i64>,
    /// Counts for the closing line.
    pub(crate) versions: u64,
}

impl Keyed {
    /// This round's keyed requests to ingestd at `url`: a merge of six keys of 0..60, a
    /// delete of two, an append of two fresh keys.
    pub(crate) fn spawn(
        &mut self,
        http: &reqwest::Client,
        url: &str,
        round: u64,
        rng: &mut Rng,
    ) -> Vec<JoinHandle<(u16, Value)>> {
        let round = round as i64;
        let mut merge = BTreeMap::new();
        for _ in 0..6 {
            merge.insert(rng.below(60) as i64, round * 100 + rng.below(3) as i64);
        }
        let deleted: BTreeMap<i64, i64> = (0..2).map(|_| (rng.below(60) as i64, 0)).collect();
        let appended: BTreeMap<i64, i64> =
            (0..2).map(|k| (100_000 + round * 10 + k, round)).collect();
        [
            (Mode::Merge, merge),
            (Mode::Delete, deleted),
            (Mode::Append, appended),
        ]
        .into_iter()
        .map(|(mode, rows)| {
            let (csv, query) = match mode {
                Mode::Delete => (
                    rows.keys().map(|id| format!("{id}\n")).collect::<String>(),
                    "mode=delete&key=id",
                ),
                Mode::Merge => (render(&rows), "mode=merge&key=id"),
                Mode::Append => (render(&rows), "mode=append"),
            };
            let csv = match mode {
                Mode::Delete => format!("id\n{csv}"),
                _ => format!("id,value\n{csv}"),
            };
            let sha = hex::encode(Sha256::digest(csv.as_bytes()));
            self.uploads.insert(sha, (mode, rows.into_iter().collect()));
            super::spawn_answer(
                http.post(format!("{url}/ingest?name={DATASET}&{query}"))
                    .header("content-type", multipart_content_type())
                    .body(multipart_file("file", csv.as_bytes())),
            )
        })
        .collect()
    }

    /// Collects this round's answers, failing on one no fault explains: a 200, a 404 (a
    /// delete before the dataset exists), or a killed service's 502/503/none.
    pub(crate) async fn collect(&mut self, round: u64, tasks: Vec<JoinHandle<(u16, Value)>>) {
        for task in tasks {
            let (status, body) = task.await.expect("keyed task");
            match status {
                200 if body["existing"] == false => self.acknowledged.push(body),
                200 | 404 | 0 | 502 | 503 => {}
                _ => panic!("round {round}: keyed request {status}: {body}"),
            }
        }
    }

    /// The versions committed since the last check, each against its upload (module docs).
    pub(crate) async fn violations(&mut self, http: &reqwest::Client, trio: &Trio) -> Vec<String> {
        let catalogd = trio.catalogd.url();
        let storaged = trio.storaged.url();
        let mut found = Vec::new();
        let latest = match get(http, &format!("{catalogd}/datasets/{DATASET}")).await {
            Some(latest) => latest["version"].as_u64().unwrap_or(0),
            None => return found,
        };
        for version in self.checked + 1..=latest {
            let Some(manifest) = get(
                http,
                &format!("{catalogd}/datasets/{DATASET}/versions/{version}"),
            )
            .await
            else {
                found.push(format!("keyed version {version} cannot be read"));
                break;
            };
            let rows = match rows_of(http, &storaged, &manifest).await {
                Ok(rows) => rows,
                Err(error) => {
                    found.push(format!("keyed version {version}: {error}"));
                    break;
                }
            };
            let sha = manifest["source"]["csv_sha256"]
                .as_str()
                .unwrap_or_default();
            let sha = sha.strip_prefix("sha256:").unwrap_or(sha);
            let Some((mode, upload)) = self.uploads.get(sha) else {
                found.push(format!(
                    "keyed version {version} records an upload never sent: {sha}"
                ));
                break;
            };
            let mut expected = self.rows.clone();
            for (id, value) in upload {
                match mode {
                    Mode::Delete => {
                        expected.remove(id);
                    }
                    Mode::Merge | Mode::Append => {
                        expected.insert(*id, *value);
                    }
                }
            }
            if rows != expected {
                found.push(format!(
                    "keyed version {version} ({mode:?}) holds {rows:?}, the previous one with its upload applied is {expected:?}"
                ));
            }
            self.rows = rows;
            self.checked = version;
            self.versions += 1;
        }
        for body in &self.acknowledged {
            let version = body["manifest"]["version"].as_u64().unwrap_or(0);
            let named = get(
                http,
                &format!("{catalogd}/datasets/{DATASET}/versions/{version}"),
            )
            .await;
            if named.as_ref().map(|m| &m["objects"]) != Some(&body["manifest"]["objects"]) {
                found.push(format!(
                    "keyed 200 of version {version} is not that version"
                ));
            }
        }
        found
    }
}

fn render(rows: &BTreeMap<i64, i64>) -> String {
    rows.iter()
        .map(|(id, value)| format!("{id},{value}\n"))
        .collect()
}

async fn get(http: &reqwest::Client, url: &str) -> Option<Value> {
    let response = http.get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// The rows of `manifest` as `id -> value`; an error on a key held twice.
async fn rows_of(
    http: &reqwest::Client,
    storaged: &str,
    manifest: &Value,
) -> Result<BTreeMap<i64, i64>, String> {
    let mut rows = BTreeMap::new();
    for object in manifest["objects"].as_array().cloned().unwrap_or_default() {
        let key = object["key"].as_str().unwrap_or_default();
        let bytes = http
            .get(format!("{storaged}/objects/{key}"))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("{key}: {e}"))?
            .bytes()
            .await
            .map_err(|e| format!("{key}: {e}"))?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .and_then(|b| b.build())
            .map_err(|e| format!("{key}: {e}"))?;
        for batch in reader {
            let batch = batch.map_err(|e| format!("{key}: {e}"))?;
            let ids = batch.column(0).as_primitive::<Int64Type>();
            let values = batch.column(1).as_primitive::<Int64Type>();
            for i in 0..batch.num_rows() {
                if rows.insert(ids.value(i), values.value(i)).is_some() {
                    return Err(format!("key {} is held twice", ids.value(i)));
                }
            }
        }
    }
    Ok(rows)
}
