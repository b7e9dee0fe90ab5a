//! The rows of a version as a multiset, read back from its Parquet objects with the `parquet`
//! crate's Arrow reader (not with the code that wrote them): what a compaction must keep.

use arrow_array::Array;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;
use std::collections::HashMap;

/// Rendered rows of the objects read so far in one check, by object key, each row rendered
/// in the column order of the schema it was asked for.
#[derive(Default)]
pub(crate) struct RowCache {
    rows: HashMap<(String, Vec<String>), Vec<String>>,
}

impl RowCache {
    /// The rows of `manifest` (a `GET /datasets/{name}/versions/{n}` body), each rendered as
    /// one string over the manifest's schema, sorted: equal vectors mean equal multisets. A
    /// column an older object lacks reads as null, as an engine reads it (schema evolution).
    ///
    /// # Errors
    /// The object or its Parquet could not be read (as text).
    pub(crate) async fn sorted_rows(
        &mut self,
        http: &reqwest::Client,
        storage: &str,
        manifest: &Value,
    ) -> Result<Vec<String>, String> {
        let fields: Vec<String> = manifest["schema"]["fields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let mut all = Vec::new();
        for object in manifest["objects"].as_array().cloned().unwrap_or_default() {
            let key = object["key"].as_str().unwrap_or_default().to_owned();
            let cache_key = (key.clone(), fields.clone());
            if !self.rows.contains_key(&cache_key) {
                let bytes = http
                    .get(format!("{storage}/objects/{key}"))
                    .send()
                    .await
                    .map_err(|e| format!("{key}: {e}"))?
                    .error_for_status()
                    .map_err(|e| format!("{key}: {e}"))?
                    .bytes()
                    .await
                    .map_err(|e| format!("{key}: {e}"))?;
                let rows = render(bytes, &fields).map_err(|e| format!("{key}: {e}"))?;
                self.rows.insert(cache_key.clone(), rows);
            }
            all.extend(self.rows[&cache_key].iter().cloned());
        }
        all.sort();
        Ok(all)
    }
}

/// Every row of one Parquet object as `name=value` pairs over `fields`, joined by `|`.
fn render<B: parquet::file::reader::ChunkReader + 'static>(
    bytes: B,
    fields: &[String],
) -> Result<Vec<String>, String> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .and_then(|builder| builder.build())
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        for row in 0..batch.num_rows() {
            let values: Vec<String> = fields
                .iter()
                .map(|name| match batch.column_by_name(name) {
                    Some(column) if !column.is_null(row) => {
                        format!("{name}={:?}", column.slice(row, 1))
                    }
                    // Absent from an object written before the column was added, or null.
                    _ => format!("{name}=null"),
                })
                .collect();
            rows.push(values.join("|"));
        }
    }
    Ok(rows)
}
