//! The invariants the crash test checks after every round (see crash.rs's module comment).

use super::Observed;
use super::iceberg::missing_table_files;
use super::rows::RowCache;
use lakehouse_testkit::Trio;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The dataset's history as the catalog answers it: every version number (1..N when the
/// catalog is sound), the latest tombstone (0 when never dropped) and the manifests of the
/// versions after it, by version.
struct History {
    versions: Vec<u64>,
    tombstone: u64,
    manifests: HashMap<u64, Value>,
}

impl History {
    /// The live versions (after the latest tombstone), ascending.
    fn live(&self) -> impl Iterator<Item = u64> + '_ {
        self.versions
            .iter()
            .copied()
            .filter(move |v| *v > self.tombstone)
    }
}

/// Checks the invariants of the dataset `dataset`; returns the violations found (as text).
pub(crate) async fn violations(
    http: &reqwest::Client,
    trio: &Trio,
    dataset: &str,
    observed: &Observed,
) -> Vec<String> {
    let catalog = trio.catalogd.url();
    let storage = trio.storaged.url();
    let mut found = Vec::new();
    let Some(history) = read_history(http, &catalog, &storage, dataset, &mut found).await else {
        return found;
    };
    found.extend(object_violations(http, &storage, &history).await);
    found.extend(schema_violations(&history));
    found.extend(partition_violations(&history));
    found.extend(row_violations(http, &storage, &history).await);
    found.extend(ledger_violations(&history, &observed.loads));
    found.extend(dry_run_violations(http, &storage, &history, &observed.dry_runs).await);
    found.extend(acknowledged_violations(&history, &observed.acknowledged));
    found.extend(
        iceberg_violations(
            http,
            &catalog,
            &storage,
            dataset,
            &history,
            &observed.acknowledged,
        )
        .await,
    );
    let spool = trio.dir.path().join("data/spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        found.push(format!("spool files left behind: {left:?}"));
    }
    found
}

/// Reads the version list (contiguous 1..N), the latest tombstone and the live manifests.
/// A dropped dataset with no version since answers 404: its tombstone is then the latest
/// record key in storaged.
async fn read_history(
    http: &reqwest::Client,
    catalog: &str,
    storage: &str,
    dataset: &str,
    found: &mut Vec<String>,
) -> Option<History> {
    let response = http
        .get(format!("{catalog}/datasets/{dataset}/versions?limit=10000"))
        .send()
        .await;
    let (versions, tombstone) = match response {
        Ok(r) if r.status().as_u16() == 404 => {
            (Vec::new(), latest_record(http, storage, dataset).await)
        }
        Ok(r) => {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let listed = body["versions"].as_array().cloned().unwrap_or_default();
            let versions: Vec<u64> = listed
                .iter()
                .filter_map(|x| x["version"].as_u64())
                .collect();
            let tombstone = listed
                .iter()
                .filter(|x| x["operation"] == "drop")
                .filter_map(|x| x["version"].as_u64())
                .max()
                .unwrap_or(0);
            (versions, tombstone)
        }
        Err(e) => {
            found.push(format!("catalogd does not answer: {e}"));
            return None;
        }
    };
    let expected: Vec<u64> = (1..=versions.len() as u64).collect();
    if versions != expected {
        found.push(format!("versions are not 1..N without gaps: {versions:?}"));
    }
    let mut history = History {
        versions,
        tombstone,
        manifests: HashMap::new(),
    };
    let live: Vec<u64> = history.live().collect();
    for version in live {
        match http
            .get(format!("{catalog}/datasets/{dataset}/versions/{version}"))
            .send()
            .await
        {
            Ok(r) => {
                let manifest = r.json().await.unwrap_or(Value::Null);
                history.manifests.insert(version, manifest);
            }
            Err(e) => found.push(format!("version {version} unreadable: {e}")),
        }
    }
    Some(history)
}

/// The number of the latest version record stored (0 when none).
async fn latest_record(http: &reqwest::Client, storage: &str, dataset: &str) -> u64 {
    let listing: Value = match http
        .get(format!(
            "{storage}/objects?prefix=_catalog/datasets/{dataset}/&limit=10000"
        ))
        .send()
        .await
    {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    listing["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["key"].as_str())
        .filter_map(|key| key.rsplit('/').next()?.strip_suffix(".json")?.parse().ok())
        .max()
        .unwrap_or(0)
}

/// Invariants 1 and 7: every object a live version names exists and hashes to its key, and
/// so does the rejects object its upload set aside (max_rejects).
async fn object_violations(
    http: &reqwest::Client,
    storage: &str,
    history: &History,
) -> Vec<String> {
    let mut found = Vec::new();
    let mut checked = std::collections::HashSet::new();
    for (version, manifest) in &history.manifests {
        for object in manifest["objects"].as_array().cloned().unwrap_or_default() {
            let key = object["key"].as_str().unwrap_or_default().to_owned();
            if !checked.insert(key.clone()) {
                continue;
            }
            let rejects = object["rejects"]["key"].as_str();
            for (key, suffix) in [(Some(key.as_str()), "parquet"), (rejects, "csv")] {
                let Some(key) = key else { continue };
                let bytes = match http.get(format!("{storage}/objects/{key}")).send().await {
                    Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default(),
                    other => {
                        found.push(format!(
                            "version {version}: object {key} missing ({other:?})"
                        ));
                        continue;
                    }
                };
                let digest = hex::encode(Sha256::digest(&bytes));
                if !key.ends_with(&format!("/{digest}.{suffix}")) {
                    found.push(format!(
                        "version {version}: object {key} hashes to {digest}"
                    ));
                }
            }
        }
    }
    found
}

/// Invariant 2 with additive evolution: within one dataset (after the latest tombstone) a
/// schema only ever grows by columns at the end.
fn schema_violations(history: &History) -> Vec<String> {
    let fields = |v: u64| {
        history
            .manifests
            .get(&v)
            .map_or_else(Vec::new, |m: &Value| {
                m["schema"]["fields"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
    };
    history
        .live()
        .filter(|v| *v > history.tombstone + 1)
        .filter_map(|version| {
            let (before, now) = (fields(version - 1), fields(version));
            (now.len() < before.len() || now[..before.len()] != before[..]).then(|| {
                format!(
                    "version {version}'s schema does not extend version {}'s",
                    version - 1
                )
            })
        })
        .collect()
}

/// docs/contract.md section 10, "Partitioned datasets": within one dataset (after the latest
/// tombstone) every version records the first one's `partition_spec` (or none), and every
/// object of a version with a spec carries a `partition` tuple of one value per spec field
/// (none without a spec).
fn partition_violations(history: &History) -> Vec<String> {
    let mut found = Vec::new();
    let first = history
        .live()
        .next()
        .and_then(|v| history.manifests.get(&v));
    let Some(first) = first else {
        return found;
    };
    for version in history.live() {
        let Some(manifest) = history.manifests.get(&version) else {
            continue;
        };
        let spec = &manifest["partition_spec"];
        if *spec != first["partition_spec"] {
            found.push(format!(
                "version {version}'s partition_spec {spec} is not the first's {}",
                first["partition_spec"]
            ));
        }
        let fields = spec["fields"].as_array().map(Vec::len);
        for object in manifest["objects"].as_array().into_iter().flatten() {
            let tuple = object
                .get("partition")
                .and_then(Value::as_array)
                .map(Vec::len);
            if tuple != fields {
                found.push(format!(
                    "version {version}: object {} has partition {:?}, the spec {fields:?} fields",
                    object["key"],
                    object.get("partition")
                ));
            }
        }
    }
    found
}

/// docs/contract.md section 10: a compaction keeps the rows. Each `compact` version holds,
/// as a multiset, exactly the rows of the version before it.
async fn row_violations(http: &reqwest::Client, storage: &str, history: &History) -> Vec<String> {
    let mut found = Vec::new();
    let mut cache = RowCache::default();
    for version in history.live().filter(|v| *v > history.tombstone + 1) {
        let (Some(now), Some(before)) = (
            history.manifests.get(&version),
            history.manifests.get(&(version - 1)),
        ) else {
            continue;
        };
        if now["operation"] != "compact" {
            continue;
        }
        let rows_now = cache.sorted_rows(http, storage, now).await;
        let rows_before = cache.sorted_rows(http, storage, before).await;
        match (rows_now, rows_before) {
            (Ok(a), Ok(b)) if a == b => {}
            (Ok(a), Ok(b)) => found.push(format!(
                "compaction version {version} holds {} rows, version {} held {}, or other rows",
                a.len(),
                version - 1,
                b.len()
            )),
            (Err(e), _) | (_, Err(e)) => found.push(format!(
                "compaction version {version}: rows unreadable: {e}"
            )),
        }
    }
    found
}

/// The ledger of loads (docs/contract.md section 12) in the live versions: no source file
/// recorded twice, and each file a finished load (`loads`, answers of `POST
/// /loads?wait=true`) reports `loaded` (with a new version) or `skipped` recorded by the
/// version it names, unless a drop removed that version since.
fn ledger_violations(history: &History, loads: &[Value]) -> Vec<String> {
    let mut found = Vec::new();
    let mut recorded: HashMap<String, u64> = HashMap::new();
    for (version, manifest) in &history.manifests {
        if let Some(path) = manifest["source"]["file"]["path"].as_str()
            && let Some(other) = recorded.insert(path.to_owned(), *version)
        {
            found.push(format!(
                "source file {path} recorded by versions {other} and {version}"
            ));
        }
    }
    for load in loads {
        for file in load["files"].as_array().cloned().unwrap_or_default() {
            let path = file["path"].as_str().unwrap_or_default();
            let reported = match (file["state"].as_str(), file["existing"].as_bool()) {
                (Some("loaded"), Some(false)) | (Some("skipped"), _) => file["version"].as_u64(),
                _ => continue,
            };
            if reported.is_some_and(|v| v <= history.tombstone) {
                continue;
            }
            if recorded.get(path).copied() != reported {
                found.push(format!(
                    "load {} reports {path} in version {reported:?}, the ledger says {:?}",
                    load["load_id"],
                    recorded.get(path)
                ));
            }
        }
    }
    found
}

/// A `dry_run=true` answered 200 wrote nothing: its object is not stored and no version
/// names it.
async fn dry_run_violations(
    http: &reqwest::Client,
    storage: &str,
    history: &History,
    dry_runs: &[Value],
) -> Vec<String> {
    let mut found = Vec::new();
    for dry in dry_runs {
        let key = dry["parquet_key"].as_str().unwrap_or_default();
        let named = history.manifests.values().any(|m| {
            m["objects"]
                .as_array()
                .is_some_and(|objects| objects.iter().any(|o| o["key"] == key))
        });
        if named {
            found.push(format!("dry run's object {key} is in a version"));
        }
        match http.head(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().as_u16() == 404 => {}
            other => found.push(format!("dry run's object {key} is stored ({other:?})")),
        }
    }
    found
}

/// Invariant 3: every version a client got a 200 for (an ingest's or a compaction's) is in
/// the history with the same objects, unless a drop removed it since.
fn acknowledged_violations(history: &History, acknowledged: &[Value]) -> Vec<String> {
    acknowledged
        .iter()
        .filter_map(|ack| {
            let version = ack["manifest"]["version"].as_u64().unwrap_or(0);
            if version <= history.tombstone {
                return None;
            }
            match history.manifests.get(&version) {
                Some(stored) if stored["objects"] == ack["manifest"]["objects"] => None,
                Some(_) => Some(format!(
                    "acknowledged version {version} has other objects now"
                )),
                None => Some(format!(
                    "acknowledged version {version} is not in the history"
                )),
            }
        })
        .collect()
}

/// docs/contract.md section 8: every acknowledged live version's metadata was stored before
/// its 200 (checked before the table load below could write it); the table loads at the
/// latest version through the REST catalog and every manifest list, manifest and live data
/// file its metadata names exists; every live version's metadata JSON is stored and parses.
async fn iceberg_violations(
    http: &reqwest::Client,
    catalog: &str,
    storage: &str,
    dataset: &str,
    history: &History,
    acknowledged: &[Value],
) -> Vec<String> {
    let mut found = Vec::new();
    let metadata_key = |v: u64| format!("datasets/{dataset}/metadata/v{v}.metadata.json");
    for ack in acknowledged {
        let version = ack["manifest"]["version"].as_u64().unwrap_or(0);
        if version <= history.tombstone {
            continue;
        }
        let key = metadata_key(version);
        match http.head(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().is_success() => {}
            other => found.push(format!(
                "acknowledged version {version}: no {key} ({other:?})"
            )),
        }
    }
    let Some(latest) = history.live().last() else {
        return found;
    };
    let table = http
        .get(format!(
            "{catalog}/iceberg/v1/namespaces/lakehouse/tables/{dataset}"
        ))
        .send()
        .await;
    match table {
        Ok(r) if r.status().is_success() => {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            // At least: a register whose client was killed still runs to its end in
            // catalogd, so versions may have been committed since the list was read.
            let at = body["metadata"]["last-sequence-number"].as_u64();
            if at.is_none_or(|at| at < latest) {
                found.push(format!(
                    "iceberg table is behind version {latest}: {}",
                    body["metadata"]["last-sequence-number"]
                ));
            }
            found.extend(missing_table_files(http, storage, dataset, &body["metadata"]).await);
        }
        other => found.push(format!("iceberg table does not load: {other:?}")),
    }
    for version in history.live() {
        let key = metadata_key(version);
        match http.get(format!("{storage}/objects/{key}")).send().await {
            Ok(r) if r.status().is_success() => {
                let parsed = r.json::<Value>().await;
                if !parsed.is_ok_and(|m| m["last-sequence-number"].as_u64() == Some(version)) {
                    found.push(format!("version {version}: {key} does not load"));
                }
            }
            other => found.push(format!("version {version}: no {key} ({other:?})")),
        }
    }
    found
}
