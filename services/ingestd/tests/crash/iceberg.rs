//! The Iceberg half of the crash test's invariants: every file a table metadata names exists.

use serde_json::Value;

/// One decoded Avro record: its fields by name.
type Record = Vec<(String, apache_avro::types::Value)>;

/// The files an Iceberg table metadata references that storaged does not have (as text):
/// each snapshot's manifest list, each manifest it lists, and each data file those
/// manifests hold as live (status EXISTING or ADDED; Iceberg spec: manifests). Read with
/// the `apache-avro` reader, as an engine would, not with the code that wrote them.
pub(crate) async fn missing_table_files(
    http: &reqwest::Client,
    storage: &str,
    dataset: &str,
    metadata: &Value,
) -> Vec<String> {
    let mut found = Vec::new();
    let location = metadata["location"].as_str().unwrap_or_default();
    // `<base>/datasets/<dataset>` -> object keys are the paths after `<base>/`.
    let Some(base) = location.strip_suffix(&format!("datasets/{dataset}")) else {
        return vec![format!(
            "table location {location:?} is not <base>/datasets/{dataset}"
        )];
    };
    let fetch = |path: String| async move {
        let key = path.strip_prefix(base)?.to_owned();
        let r = http
            .get(format!("{storage}/objects/{key}"))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.bytes().await.ok()
    };
    let snapshots = metadata["snapshots"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for snapshot in snapshots {
        let list = snapshot["manifest-list"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(list_bytes) = fetch(list.clone()).await else {
            found.push(format!("manifest list {list} missing"));
            continue;
        };
        let manifests = match avro_records(&list, &list_bytes) {
            Ok(manifests) => manifests,
            Err(e) => {
                found.push(e);
                continue;
            }
        };
        if manifests.is_empty() {
            found.push(format!("manifest list {list} lists no manifest"));
        }
        for manifest in manifests {
            let Some(apache_avro::types::Value::String(path)) = field(&manifest, "manifest_path")
            else {
                found.push(format!(
                    "manifest list {list}: an entry has no manifest_path"
                ));
                continue;
            };
            let Some(manifest_bytes) = fetch(path.clone()).await else {
                found.push(format!("manifest {path} missing"));
                continue;
            };
            let entries = match avro_records(&path, &manifest_bytes) {
                Ok(entries) => entries,
                Err(e) => {
                    found.push(e);
                    continue;
                }
            };
            match live_data_files(&path, &entries) {
                Ok(files) => {
                    for file in files {
                        if fetch(file.clone()).await.is_none() {
                            found.push(format!("data file {file} of manifest {path} missing"));
                        }
                    }
                }
                Err(e) => found.push(e),
            }
        }
    }
    found
}

/// The records of an Avro file; a file that does not decode is an error (a violation),
/// never an empty list.
fn avro_records(path: &str, bytes: &[u8]) -> Result<Vec<Record>, String> {
    let reader =
        apache_avro::Reader::new(bytes).map_err(|e| format!("{path} does not decode: {e}"))?;
    reader
        .map(|value| match value {
            Ok(apache_avro::types::Value::Record(fields)) => Ok(fields),
            Ok(other) => Err(format!("{path}: an entry is not a record: {other:?}")),
            Err(e) => Err(format!("{path} does not decode: {e}")),
        })
        .collect()
}

/// The value of field `name` of `record`.
fn field(
    record: &[(String, apache_avro::types::Value)],
    name: &str,
) -> Option<apache_avro::types::Value> {
    record
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

/// The paths of the data files manifest `path`'s `entries` hold as live (status EXISTING or
/// ADDED, not DELETED); an entry without a `data_file.file_path` is an error.
fn live_data_files(path: &str, entries: &[Record]) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for entry in entries {
        let live = !matches!(
            field(entry, "status"),
            Some(apache_avro::types::Value::Int(2))
        );
        let file = match field(entry, "data_file") {
            Some(apache_avro::types::Value::Record(data_file)) => field(&data_file, "file_path"),
            _ => None,
        };
        match file {
            Some(apache_avro::types::Value::String(file)) => {
                if live {
                    files.push(file);
                }
            }
            _ => return Err(format!("manifest {path}: an entry has no file_path")),
        }
    }
    Ok(files)
}
