//! What the commands print: a table or a few lines for people, or the same struct as JSON
//! (`--json`); errors as one line on stderr, a schema drift followed by its diff.

use crate::commands::CliError;
use indicatif::HumanBytes;
use lakehouse_api::{
    CompactResponse, DatasetDropResponse, DatasetListResponse, DatasetName, ErrorCode,
    GcRunResponse, IngestResponse, LoadFileState, LoadGetResponse, LoadListResponse, LoadState,
    Manifest, ObjectKey, SchemaDriftDetails, VersionListResponse,
};
use lakehouse_client::ClientError;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

/// What `lakehouse get` did: one entry per object written.
#[derive(Debug, Serialize)]
pub struct GetReport {
    /// Dataset name.
    pub name: DatasetName,
    /// The version downloaded.
    pub version: u64,
    /// The directory written into.
    pub dir: PathBuf,
    /// The files written, in manifest order.
    pub files: Vec<Downloaded>,
}

/// One object written by `lakehouse get`.
#[derive(Debug, Serialize)]
pub struct Downloaded {
    /// Its key in storaged.
    pub key: ObjectKey,
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes written.
    pub size: u64,
    /// SHA-256 of those bytes, checked equal to the key's.
    pub sha256: String,
    /// Rows, as the manifest says.
    pub rows: u64,
}

/// An answer printable for people ([`Render::human`]) and as JSON (its `Serialize`).
pub trait Render: Serialize {
    /// The human text, ending with a newline.
    fn human(&self) -> String;
}

/// Prints `value` on stdout: JSON when `json`, else its human text. A reader that has gone
/// (a closed pipe, as `| head` leaves) is not an error: the rest is dropped quietly.
///
/// # Errors
/// [`CliError::Print`] when stdout cannot be written for another reason.
pub fn print<T: Render>(value: &T, json: bool) -> Result<(), CliError> {
    let text = if json {
        let mut text = serde_json::to_string_pretty(value)
            .map_err(|e| CliError::Print(std::io::Error::other(e)))?;
        text.push('\n');
        text
    } else {
        value.human()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Print(error)),
        _ => Ok(()),
    }
}

/// Prints `error` as one line on stderr (`error: ...`); a schema drift adds its diff below.
pub fn print_error(error: &CliError) {
    let mut text = format!("error: {}", one_line(error));
    if let CliError::Client(ClientError::Remote { body, .. }) = error
        && body.error.code == ErrorCode::SchemaDrift
        && let Ok(drift) = serde_json::from_value::<SchemaDriftDetails>(body.error.details.clone())
    {
        text.push('\n');
        text.push_str(&drift_diff(&drift));
    }
    eprintln!("{}", text.trim_end());
}

/// With `--json`, a failure is also one JSON document on stdout (docs/contract.md section 14):
/// `{"error": {"code", "message", "details"}}`, a service's own error body as it sent it,
/// else a code of the CLI's own (docs/decisions.md): `not_found`, `unavailable`,
/// `invalid_input`, `output_failed`, `not_empty`, `digest_mismatch`, `upstream_error`,
/// `load_failed`.
pub fn print_error_json(error: &CliError) {
    let (code, details) = match error {
        CliError::Client(ClientError::Remote { body, .. }) => {
            print_json_error(&serde_json::json!(body));
            return;
        }
        CliError::Client(other) => (other.code().as_str(), serde_json::json!({})),
        CliError::UnknownDataset { name } => {
            ("not_found", serde_json::json!({ "dataset": name.as_str() }))
        }
        CliError::UnknownVersion { name, version } => (
            "not_found",
            serde_json::json!({ "dataset": name.as_str(), "version": version }),
        ),
        CliError::Input { path, .. } | CliError::NotAFile { path } => {
            ("invalid_input", serde_json::json!({ "path": path }))
        }
        CliError::Output { path, .. } => ("output_failed", serde_json::json!({ "path": path })),
        CliError::Print(_) => ("output_failed", serde_json::json!({})),
        CliError::NotEmpty { dir } => ("not_empty", serde_json::json!({ "path": dir })),
        CliError::Load {
            load_id, failed, ..
        } => (
            "load_failed",
            serde_json::json!({ "load_id": load_id, "failed_files": failed }),
        ),
        CliError::Digest { key, .. } | CliError::Size { key, .. } => {
            ("digest_mismatch", serde_json::json!({ "key": key }))
        }
    };
    print_json_error(&serde_json::json!({
        "error": { "code": code, "message": one_line(error), "details": details }
    }));
}

/// A usage error (exit status 2) as [`print_error_json`] prints failures: code `usage`.
pub fn print_usage_error_json(message: &str) {
    let message = message.strip_prefix("error: ").unwrap_or(message);
    print_json_error(&serde_json::json!({
        "error": { "code": "usage", "message": message, "details": {} }
    }));
}

fn print_json_error(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// The error and its sources on one line.
fn one_line(error: &CliError) -> String {
    match error {
        CliError::Client(ClientError::Remote { body, status, .. }) => {
            format!("{} ({status} {})", body.error.message, body.error.code)
        }
        CliError::Client(ClientError::Transport { url, source }) => {
            format!("cannot reach {url}: {}", innermost(source))
        }
        other => {
            let mut line = other.to_string();
            if let Some(source) = std::error::Error::source(other)
                && !matches!(
                    other,
                    CliError::Input { .. } | CliError::Output { .. } | CliError::Print(_)
                )
            {
                let _ = write!(line, ": {}", lakehouse_api::error_chain(source));
            }
            line
        }
    }
}

/// The deepest source of `error` (for a transport error: the OS's reason, such as
/// "Connection refused").
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    deepest.to_string()
}

/// The drift as a diff: `+` added, `-` removed, `~` changed (with line and value when
/// known), `>` reordered.
pub fn drift_diff(drift: &SchemaDriftDetails) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "schema of the dataset vs this upload:");
    for column in &drift.added {
        let _ = writeln!(out, "  + {column}  (added: not in the dataset's schema)");
    }
    for column in &drift.removed {
        let _ = writeln!(out, "  - {column}  (removed: missing from the upload)");
    }
    for change in &drift.changed {
        let mut line = format!("  ~ {}  {}", change.column, change.registered_type);
        if let Some(attempted) = &change.attempted_type {
            let _ = write!(line, " -> {attempted}");
        }
        match (&change.line, &change.value) {
            (Some(at), Some(value)) => {
                let _ = write!(line, "  (line {at}: {value:?})");
            }
            (Some(at), None) => {
                let _ = write!(line, "  (line {at})");
            }
            (None, Some(value)) => {
                let _ = write!(line, "  (value {value:?})");
            }
            (None, None) => {}
        }
        let _ = writeln!(out, "{line}");
    }
    if !drift.reordered.is_empty() {
        let _ = writeln!(out, "  > reordered: {}", drift.reordered.join(", "));
    }
    out
}

/// Left-aligned columns separated by two spaces, a header line first.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, width) in cells.zip(&widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

impl Render for IngestResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        let what = match (self.existing, self.dry_run) {
            (true, false) => "already registered: no new version",
            (false, false) => "new version",
            (true, true) => "already registered: it would make no new version",
            (false, true) => "it would be a new version",
        };
        if self.dry_run {
            let _ = writeln!(out, "dry run: nothing was written");
        }
        let verb = if self.dry_run {
            "would ingest"
        } else {
            "ingested"
        };
        let _ = writeln!(
            out,
            "{verb} {} rows into {} version {} ({what})",
            self.row_count,
            self.manifest.name.as_str(),
            self.manifest.version
        );
        match &self.manifest.partition_spec {
            Some(spec) if !self.objects.is_empty() => {
                let _ = writeln!(
                    out,
                    "parquet  {} file(s) in {} partition(s) of {}",
                    self.objects.len(),
                    distinct_partitions(&self.objects),
                    spec.partition_by
                );
                for object in &self.objects {
                    let label = object
                        .partition
                        .as_ref()
                        .map(|t| spec.label(t))
                        .unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "  {label}: {} rows, {} ({})",
                        object.row_count,
                        HumanBytes(object.size),
                        object.key.as_str()
                    );
                }
            }
            _ => {
                let _ = writeln!(
                    out,
                    "parquet  {} ({})",
                    self.parquet_key.as_str(),
                    HumanBytes(self.parquet_size)
                );
            }
        }
        let _ = writeln!(
            out,
            "dataset  {} rows in {} object(s), schema {}",
            self.manifest.row_count,
            self.manifest.objects.len(),
            self.manifest.schema_fingerprint.short()
        );
        if let Some(merge) = &self.merge {
            let key = self.manifest.key.as_deref().unwrap_or_default().join(",");
            let _ = writeln!(
                out,
                "{} by ({key}): {} inserted, {} updated, {} unchanged, {} deleted, {} not found; \
                 {} file(s) rewritten or added, {} removed",
                if merge.deleted + merge.not_found > 0 {
                    "delete"
                } else {
                    "merge"
                },
                merge.inserted,
                merge.updated,
                merge.unchanged,
                merge.deleted,
                merge.not_found,
                merge.files_added,
                merge.files_removed
            );
        }
        if let Some(rejects) = &self.rejects {
            let _ = writeln!(
                out,
                "rejects  {} record(s) set aside in {}",
                rejects.count,
                rejects.key.as_str()
            );
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "warning: {warning}");
        }
        out
    }
}

/// How many distinct partition tuples `objects` hold (docs/contract.md section 10).
fn distinct_partitions(objects: &[lakehouse_api::ObjectRef]) -> usize {
    objects
        .iter()
        .filter_map(|o| o.partition.as_ref())
        .collect::<std::collections::HashSet<_>>()
        .len()
}

impl Render for DatasetListResponse {
    fn human(&self) -> String {
        if self.datasets.is_empty() {
            return "no datasets\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .datasets
            .iter()
            .map(|d| {
                vec![
                    d.name.as_str().to_owned(),
                    d.latest_version.to_string(),
                    d.row_count.to_string(),
                    d.updated_at.clone(),
                    d.schema_fingerprint.short().to_owned(),
                ]
            })
            .collect();
        table(&["NAME", "VERSION", "ROWS", "UPDATED", "SCHEMA"], &rows)
    }
}

impl Render for Manifest {
    fn human(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "dataset   {}", self.name.as_str());
        let _ = writeln!(out, "version   {}", self.version);
        let _ = writeln!(out, "created   {}", self.created_at);
        let _ = writeln!(out, "rows      {}", self.row_count);
        let size: u64 = self.objects.iter().map(|o| o.size).sum();
        let _ = writeln!(
            out,
            "objects   {} ({})",
            self.objects.len(),
            HumanBytes(size)
        );
        let _ = writeln!(out, "schema    {}", self.schema_fingerprint);
        let _ = writeln!(
            out,
            "inference rules v{}, delimiter {:?}, null values {:?}",
            self.inference_version, self.options.delimiter as char, self.options.null_values
        );
        if let Some(filename) = &self.source.filename {
            let _ = writeln!(out, "source    {filename}");
        }
        if let Some(spec) = &self.partition_spec {
            let _ = writeln!(
                out,
                "partitioned by {} ({} partitions)",
                spec.partition_by,
                distinct_partitions(&self.objects)
            );
        }
        if let Some(key) = &self.key {
            let _ = writeln!(
                out,
                "key       {} (merge and delete by key)",
                key.join(", ")
            );
        }
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .schema
            .fields
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.data_type.name().to_owned(),
                    if f.nullable { "yes" } else { "no" }.to_owned(),
                ]
            })
            .collect();
        out.push_str(&table(&["COLUMN", "TYPE", "NULLABLE"], &rows));
        out.push('\n');
        let rows: Vec<Vec<String>> = self
            .objects
            .iter()
            .map(|o| {
                let mut row = vec![
                    o.key.as_str().to_owned(),
                    o.row_count.to_string(),
                    o.size.to_string(),
                ];
                if let (Some(spec), Some(tuple)) = (&self.partition_spec, &o.partition) {
                    row.push(spec.label(tuple));
                }
                row
            })
            .collect();
        let header: &[&str] = if self.partition_spec.is_some() {
            &["OBJECT", "ROWS", "BYTES", "PARTITION"]
        } else {
            &["OBJECT", "ROWS", "BYTES"]
        };
        out.push_str(&table(header, &rows));
        out
    }
}

impl Render for VersionListResponse {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .versions
            .iter()
            .map(|v| {
                vec![
                    v.version.to_string(),
                    v.row_count.to_string(),
                    v.object_count.to_string(),
                    v.created_at.clone(),
                    v.schema_fingerprint.short().to_owned(),
                    if v.gone { "gone" } else { "" }.to_owned(),
                ]
            })
            .collect();
        table(
            &[
                "VERSION",
                "ROWS",
                "OBJECTS",
                "CREATED",
                "SCHEMA",
                "RETENTION",
            ],
            &rows,
        )
    }
}

impl Render for GetReport {
    fn human(&self) -> String {
        let mut out = String::new();
        let rows: Vec<Vec<String>> = self
            .files
            .iter()
            .map(|f| {
                vec![
                    f.path.display().to_string(),
                    f.rows.to_string(),
                    f.size.to_string(),
                    "ok".to_owned(),
                ]
            })
            .collect();
        out.push_str(&table(&["FILE", "ROWS", "BYTES", "SHA-256"], &rows));
        let _ = writeln!(
            out,
            "{} version {}: {} object(s) written to {}",
            self.name.as_str(),
            self.version,
            self.files.len(),
            self.dir.display()
        );
        out
    }
}

impl Render for DatasetDropResponse {
    fn human(&self) -> String {
        format!(
            "dropped {} (tombstone version {}); its objects are collected after the grace period\n",
            self.name.as_str(),
            self.version
        )
    }
}

impl Render for CompactResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        let Some(manifest) = &self.manifest else {
            out.push_str("nothing to compact\n");
            return out;
        };
        let sizes = format!(
            "{} file(s), {} -> {} file(s), {} ({} rows)",
            self.files_removed,
            HumanBytes(self.bytes_before),
            self.files_added,
            HumanBytes(self.bytes_after),
            self.rows
        );
        let _ = if self.dry_run {
            writeln!(out, "dry run: nothing was written; would compact {sizes}")
        } else if self.existing {
            writeln!(
                out,
                "already compacted: version {} holds {sizes}",
                manifest.version
            )
        } else {
            let versions: Vec<String> = self.versions.iter().map(u64::to_string).collect();
            writeln!(out, "compacted {sizes}: version {}", versions.join(", "))
        };
        for object in &self.added {
            let _ = writeln!(
                out,
                "  {}  {}  {} rows",
                object.key.as_str(),
                HumanBytes(object.size),
                object.row_count
            );
        }
        out
    }
}

impl Render for GcRunResponse {
    fn human(&self) -> String {
        let mut out = String::new();
        let (verb, keys) = if self.dry_run {
            ("would delete", &self.would_delete)
        } else {
            ("deleted", &self.deleted)
        };
        let _ = writeln!(
            out,
            "{verb} {} object(s); scanned {}, retained {}, too young {}, expired versions {} ({} ms)",
            keys.len(),
            self.scanned_objects,
            self.retained_objects,
            self.skipped_young,
            self.expired_versions,
            self.duration_ms
        );
        for key in keys {
            let _ = writeln!(out, "  {}", key.as_str());
        }
        for error in &self.errors {
            let _ = writeln!(out, "error: {error}");
        }
        out
    }
}

fn load_state(state: LoadState) -> &'static str {
    match state {
        LoadState::Running => "running",
        LoadState::Done => "done",
        LoadState::Failed => "failed",
    }
}

impl Render for LoadGetResponse {
    fn human(&self) -> String {
        let rows: Vec<Vec<String>> = self
            .files
            .iter()
            .map(|f| {
                let (state, detail) = match f.state {
                    LoadFileState::Pending => ("pending", String::new()),
                    LoadFileState::Loaded if f.existing == Some(true) => {
                        ("loaded", "already held: no new version".to_owned())
                    }
                    LoadFileState::Loaded => ("loaded", String::new()),
                    LoadFileState::Skipped => ("skipped", f.reason.clone().unwrap_or_default()),
                    LoadFileState::Failed => (
                        "failed",
                        f.error
                            .as_ref()
                            .map(|e| format!("{}: {}", e.code, e.message))
                            .unwrap_or_default(),
                    ),
                };
                vec![
                    f.path.clone(),
                    HumanBytes(f.size).to_string(),
                    state.to_owned(),
                    f.version.map(|v| v.to_string()).unwrap_or_default(),
                    detail,
                ]
            })
            .collect();
        let mut out = String::new();
        if !rows.is_empty() {
            out.push_str(&table(
                &["FILE", "SIZE", "STATE", "VERSION", "DETAIL"],
                &rows,
            ));
        }
        let _ = writeln!(
            out,
            "load {} {}: {} file(s) matched {:?} in {} ({}): {} loaded, {} skipped, {} failed, into {}",
            self.load_id,
            load_state(self.state),
            self.files_total,
            self.pattern,
            self.source,
            HumanBytes(self.bytes_total),
            self.count(LoadFileState::Loaded),
            self.count(LoadFileState::Skipped),
            self.count(LoadFileState::Failed),
            self.name.as_str()
        );
        if let Some(error) = &self.error {
            let _ = writeln!(out, "error: {} ({})", error.message, error.code);
        }
        out
    }
}

impl Render for LoadListResponse {
    fn human(&self) -> String {
        if self.loads.is_empty() {
            return "no loads\n".to_owned();
        }
        let rows: Vec<Vec<String>> = self
            .loads
            .iter()
            .map(|l| {
                vec![
                    l.load_id.clone(),
                    load_state(l.state).to_owned(),
                    l.source.clone(),
                    l.pattern.clone(),
                    l.name.as_str().to_owned(),
                    format!(
                        "{}/{}/{} of {}",
                        l.files_loaded, l.files_skipped, l.files_failed, l.files_total
                    ),
                    HumanBytes(l.bytes_total).to_string(),
                    l.created_at.clone(),
                ]
            })
            .collect();
        table(
            &[
                "LOAD",
                "STATE",
                "SOURCE",
                "PATTERN",
                "DATASET",
                "LOADED/SKIPPED/FAILED",
                "BYTES",
                "CREATED",
            ],
            &rows,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{ColumnChange, ColumnType, Field, Schema};

    #[test]
    fn a_drift_reads_as_a_diff() {
        let drift = SchemaDriftDetails {
            current_fingerprint: Schema { fields: vec![] }.fingerprint(),
            attempted_fingerprint: Schema {
                fields: vec![Field::new("extra", ColumnType::Utf8)],
            }
            .fingerprint(),
            added: vec!["extra".into()],
            removed: vec!["gone".into()],
            changed: vec![ColumnChange {
                column: "qty".into(),
                registered_type: "int64".into(),
                attempted_type: Some("utf8".into()),
                line: Some(3),
                value: Some("many".into()),
            }],
            reordered: vec![],
        };
        let diff = drift_diff(&drift);
        assert!(diff.contains("  + extra"), "{diff}");
        assert!(diff.contains("  - gone"), "{diff}");
        assert!(
            diff.contains("  ~ qty  int64 -> utf8  (line 3: \"many\")"),
            "{diff}"
        );
    }

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "BB"],
            &[
                vec!["long".into(), "x".into()],
                vec!["s".into(), "y".into()],
            ],
        );
        assert_eq!(text, "A     BB\nlong  x\ns     y\n");
    }
}
