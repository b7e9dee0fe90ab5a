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
    metadata: &Value,
) -> Vec<String> {
    let mut found = Vec::new();
    let location = metadata["location"].as_str().unwrap_or_default();
    // `<base>/datasets/crash` -> object keys are the paths after `<base>/`.
    let Some(base) = location.strip_suffix("datasets/crash") else {
        return vec![format!(
            "table location {location:?} is not <base>/datasets/crash"
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
    // A file that does not decode is a violation, never an empty list.
    let avro_records = |path: &str, bytes: &[u8]| -> Result<Vec<Record>, String> {
        let reader = apache_avro::Reader::new(bytes).map_err(|e| format!("{path}: {e}"))?;
        reader
            .map(|value| match value {
                Ok(apache_avro::types::Value::Record(fields)) => Ok(fields),
                Ok(other) => Err(format!("{path}: an entry is not a record: {other:?}")),
                Err(e) => Err(format!("{path}: {e}")),
            })
            .collect()
    };
    let field = |record: &[(String, apache_avro::types::Value)], name: &str| {
        record
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
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
                found.push(format!("manifest list does not decode: {e}"));
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
                    found.push(format!("manifest does not decode: {e}"));
                    continue;
                }
            };
            for entry in entries {
                let live = !matches!(
                    field(&entry, "status"),
                    Some(apache_avro::types::Value::Int(2))
                );
                let file = match field(&entry, "data_file") {
                    Some(apache_avro::types::Value::Record(data_file)) => {
                        field(&data_file, "file_path")
                    }
                    _ => None,
                };
                match file {
                    Some(apache_avro::types::Value::String(file)) => {
                        if live && fetch(file.clone()).await.is_none() {
                            found.push(format!("data file {file} of manifest {path} missing"));
                        }
                    }
                    _ => found.push(format!("manifest {path}: an entry has no file_path")),
                }
            }
        }
    }
    found
}
