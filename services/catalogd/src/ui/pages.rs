//! The page templates (maud: checked at compile time, every `(value)` HTML-escaped).

use super::parquet::ColumnStats;
use super::{DatasetView, Insight};
use axum::http::StatusCode;
use lakehouse_api::{DatasetListResponse, Manifest, VersionSummary};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// Inline style sheet: readable from phone width up, no external resource.
const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:.6rem 1rem}
header a{color:#fff;text-decoration:none;font-weight:600}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;word-break:break-all}h2{font-size:1.1rem;margin-top:1.6rem}
.scroll{overflow-x:auto;background:#fff;border:1px solid #dde1e8;border-radius:6px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:.35rem .6rem;text-align:left;border-bottom:1px solid #eceef2;vertical-align:top}
th{background:#eef1f5;font-weight:600;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.type{white-space:nowrap;word-break:normal}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;word-break:break-all}
.bar{display:inline-block;width:5rem;height:.6rem;background:#e3e7ee;border-radius:3px;vertical-align:middle}
.bar span{display:block;height:100%;background:#d9822b;border-radius:3px}
.muted{color:#6b7385}.null{color:#9aa1ae;font-style:italic}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;font-size:.95rem}
.note{background:#fff7e6;border:1px solid #f0d59a;padding:.5rem .8rem;border-radius:6px}
form{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0 1rem}
input{padding:.4rem;font-size:1rem;flex:1;min-width:10rem}button{padding:.4rem .8rem;font-size:1rem}
svg{max-width:100%;height:auto;background:#fff;border:1px solid #dde1e8;border-radius:6px}
.current{font-weight:700}
";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · lakehouse catalog" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header { a href="/ui" { "lakehouse catalog" } }
                main { (body) }
            }
        }
    }
}

/// `/ui?…` as a link, its query values percent-encoded.
pub fn list_link(prefix: &str, cursor: Option<&str>, limit: Option<usize>) -> String {
    let limit = limit.map(|l| l.to_string());
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if !prefix.is_empty() {
        pairs.push(("prefix", prefix));
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor));
    }
    if let Some(limit) = &limit {
        pairs.push(("limit", limit));
    }
    match serde_urlencoded::to_string(&pairs) {
        Ok(query) if !query.is_empty() => format!("/ui?{query}"),
        _ => "/ui".to_owned(),
    }
}

/// The dataset list: a prefix filter, one row per dataset, a link to the next page (`next`,
/// when there is one).
pub fn list(prefix: &str, page: &DatasetListResponse, next: Option<&str>) -> Markup {
    layout(
        "datasets",
        html! {
            h1 { "Datasets" }
            form method="get" action="/ui" {
                input type="search" name="prefix" value=(prefix) placeholder="name starts with…" aria-label="name prefix";
                button type="submit" { "Filter" }
            }
            @if page.datasets.is_empty() {
                p class="muted" { "No datasets" @if !prefix.is_empty() { " starting with " code { (prefix) } } "." }
            } @else {
                div class="scroll" {
                    table id="datasets" {
                        thead { tr { th { "name" } th { "version" } th { "rows" } th { "updated" } th { "schema" } } }
                        tbody {
                            @for d in &page.datasets {
                                tr {
                                    td { a href={ "/ui/datasets/" (d.name.as_str()) } { (d.name.as_str()) } }
                                    td class="num" { (d.latest_version) }
                                    td class="num" { (count(d.row_count)) }
                                    td { (d.updated_at) }
                                    td class="mono" { (d.schema_fingerprint.short()) }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a href=(next) rel="next" { "Next page →" } }
            }
        },
    )
}

/// `n` with a comma between each group of three digits: `336,776`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The reading options a version recorded, as the facts show them (docs/contract.md sections 3 and
/// 14): delimiter, null values, encoding, decimal separator, the date order asked for and
/// each date column's order.
fn reading(options: &lakehouse_api::CsvOptions) -> Markup {
    html! {
        ", delimiter " code { (format!("{:?}", options.delimiter as char)) }
        ", null values " code { (format!("{:?}", options.null_values)) }
        ", encoding " code { (options.encoding.as_str()) }
        @if !options.decimal_separator.is_point() {
            ", decimal separator " code { (options.decimal_separator.as_str()) }
        }
        @if let Some(order) = options.date_order {
            ", date order " code { (order.as_str()) }
        }
        @for (column, order) in &options.date_orders {
            ", " code { (column) } " read " code { (order.as_str()) }
        }
    }
}

/// `bytes` for people (KiB, MiB, ... with one decimal).
fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One dataset version: notes, facts, schema with statistics, preview, chart, versions,
/// objects (with download links under `storaged_url`, when set).
pub fn dataset(view: &DatasetView, insight: &Insight, storaged_url: Option<&str>) -> Markup {
    let manifest = &*view.manifest;
    let name = manifest.name.as_str();
    layout(
        name,
        html! {
            h1 { (name) }
            (notes(manifest, view.latest, view.retained))
            (facts(manifest))
            h2 { "Schema" }
            (schema_table(manifest, &insight.stats))
            h2 { "Preview" }
            (preview_table(&insight.preview))
            h2 { "Rows per version" }
            (chart(&view.versions, manifest.version))
            h2 { "Versions" }
            (versions_table(name, &view.versions, manifest.version))
            @if let Some(spec) = &manifest.partition_spec {
                h2 { "Partitions" }
                (partitions_table(manifest, spec))
            }
            h2 { "Objects" }
            (objects_table(manifest, storaged_url))
        },
    )
}

/// The notes above the facts: an older version than `latest` (with a link to the latest),
/// a version past retention.
fn notes(manifest: &Manifest, latest: u64, retained: bool) -> Markup {
    let name = manifest.name.as_str();
    html! {
        @if manifest.version != latest {
            p class="note" {
                "You are looking at version " (manifest.version) " of " (latest) ". "
                a href={ "/ui/datasets/" (name) } { "Show the latest version" }
            }
        }
        @if !retained {
            p class="note" { "This version is past retention: its objects may already be garbage collected." }
        }
    }
}

/// The version's facts: number, rows, objects and their size, creation time, schema
/// fingerprint, inference and reading options, source file, partitioning and the key of
/// merges (docs/contract.md section 11).
fn facts(manifest: &Manifest) -> Markup {
    let total_size: u64 = manifest.objects.iter().map(|o| o.size).sum();
    html! {
        div class="facts" id="facts" {
            span class="muted" { "version" } span { (manifest.version) }
            span class="muted" { "rows" } span { (count(manifest.row_count)) }
            span class="muted" { "objects" } span { (manifest.objects.len()) " (" (size(total_size)) ")" }
            span class="muted" { "created" } span { (manifest.created_at) }
            span class="muted" { "schema" } span class="mono" { (manifest.schema_fingerprint.to_string()) }
            span class="muted" { "inference" } span {
                "rule set v" (manifest.inference_version)
                (reading(&manifest.options))
            }
            @if let Some(filename) = &manifest.source.filename {
                span class="muted" { "source" } span { (filename) }
            }
            @if let Some(spec) = &manifest.partition_spec {
                span class="muted" { "partitioned by" } span class="mono" { (spec.partition_by) }
            }
            @if let Some(key) = &manifest.key {
                span class="muted" { "key" } span class="mono" { (key.join(", ")) }
            }
        }
    }
}

/// A partitioned version's files per partition value (docs/contract.md section 10): the
/// partition as people read it, its files, rows and bytes, in the version's order. Files
/// are grouped by their tuple, not its label: the string `"null"` and a null value read
/// alike but are two partitions.
fn partitions_table(manifest: &Manifest, spec: &lakehouse_api::PartitionSpec) -> Markup {
    let mut rows: Vec<(String, u64, u64, u64)> = Vec::new();
    let mut index: std::collections::HashMap<Option<&lakehouse_api::PartitionTuple>, usize> =
        std::collections::HashMap::new();
    for object in &manifest.objects {
        let tuple = object.partition.as_ref();
        let i = *index.entry(tuple).or_insert_with(|| {
            let label = tuple.map_or_else(|| "(none)".to_owned(), |tuple| spec.label(tuple));
            rows.push((label, 0, 0, 0));
            rows.len() - 1
        });
        rows[i].1 += 1;
        rows[i].2 += object.row_count;
        rows[i].3 += object.size;
    }
    html! {
        p class="muted" { (rows.len()) " partitions" }
        div class="scroll" {
            table id="partitions" {
                thead { tr { th { "partition" } th { "files" } th { "rows" } th { "size" } } }
                tbody {
                    @for (label, files, row_count, bytes) in &rows {
                        tr {
                            td class="mono" { (label) }
                            td class="num" { (files) }
                            td class="num" { (count(*row_count)) }
                            td class="num" { (size(*bytes)) }
                        }
                    }
                }
            }
        }
    }
}

/// The schema, one row per column with its statistics (null share, min, max) when `stats`
/// has them, else a line saying why not.
fn schema_table(manifest: &Manifest, stats: &Result<Vec<ColumnStats>, String>) -> Markup {
    html! {
        @if let Err(why) = stats {
            p class="muted" { "Column statistics unavailable: " (why) }
        }
        div class="scroll" {
            table id="schema" {
                thead { tr { th { "column" } th { "type" } th { "nulls" } th { "min" } th { "max" } } }
                tbody {
                    @for (i, field) in manifest.schema.fields.iter().enumerate() {
                        @let stats = stats.as_ref().ok().and_then(|s| s.get(i));
                        tr {
                            td class="column" { (field.name) }
                            td class="type mono" { (field.data_type.name()) }
                            td class="num" { (null_bar(stats, manifest.row_count)) }
                            td { (opt(stats.and_then(|s| s.min.as_deref()))) }
                            td { (opt(stats.and_then(|s| s.max.as_deref()))) }
                        }
                    }
                }
            }
        }
    }
}

/// The preview's rows (nulls greyed), or a line saying why there is none.
fn preview_table(preview: &Result<(Vec<String>, Vec<Vec<String>>), String>) -> Markup {
    html! {
        @match preview {
            Err(why) => p class="muted" { "Preview unavailable: " (why) },
            Ok((columns, rows)) => {
                p class="muted" { "The first " (rows.len()) " rows of this version's first object, in this version's schema (a column the object predates shows null)." }
                div class="scroll" {
                    table id="preview" {
                        thead { tr { @for c in columns { th { (c) } } } }
                        tbody {
                            @for row in rows {
                                tr { @for value in row {
                                    @if value == "null" { td class="null" { "null" } } @else { td { (value) } }
                                } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The versions, newest first, each linked to its page; the `shown` one marked.
fn versions_table(name: &str, versions: &[VersionSummary], shown: u64) -> Markup {
    html! {
        div class="scroll" {
            table id="versions" {
                thead { tr { th { "version" } th { "operation" } th { "rows" } th { "live files" } th { "created" } th { "schema" } } }
                tbody {
                    @for v in versions.iter().rev() {
                        tr class=[(v.version == shown).then_some("current")] {
                            td { a href={ "/ui/datasets/" (name) "?version=" (v.version) } { "v" (v.version) } }
                            td { (v.operation.map_or("–", |op| op.as_str())) }
                            td class="num" { (count(v.row_count)) }
                            td class="num" { (count(v.object_count)) }
                            td { (v.created_at) }
                            td class="mono" { (v.schema_fingerprint.short()) }
                        }
                    }
                }
            }
        }
    }
}

/// The version's objects: key (a download link under `storaged_url`), rows, size and the
/// records its upload set aside (`max_rejects`, linked likewise).
fn objects_table(manifest: &Manifest, storaged_url: Option<&str>) -> Markup {
    html! {
        div class="scroll" {
            table id="objects" {
                thead { tr {
                    th { "object" }
                    @if manifest.partition_spec.is_some() { th { "partition" } }
                    th { "rows" } th { "size" } th { "set aside" }
                } }
                tbody {
                    @for o in &manifest.objects {
                        tr {
                            td class="mono" {
                                @if let Some(base) = storaged_url {
                                    a href={ (base) "/objects/" (o.key.as_str()) } download { (o.key.as_str()) }
                                } @else { (o.key.as_str()) }
                            }
                            @if let Some(spec) = &manifest.partition_spec {
                                td class="mono" {
                                    (o.partition.as_ref().map(|t| spec.label(t)).unwrap_or_default())
                                }
                            }
                            td class="num" { (count(o.row_count)) }
                            td class="num" { (size(o.size)) }
                            td class="num" {
                                @if let Some(rejects) = &o.rejects {
                                    @if let Some(base) = storaged_url {
                                        a href={ (base) "/objects/" (rejects.key.as_str()) } download { (rejects.count) " records" }
                                    } @else { (rejects.count) " records" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn opt(value: Option<&str>) -> Markup {
    match value {
        Some(value) => html! { (value) },
        None => html! { span class="null" { "–" } },
    }
}

/// The null share of a column as a small bar and a percentage.
fn null_bar(stats: Option<&ColumnStats>, rows: u64) -> Markup {
    let Some(stats) = stats else {
        return html! { span class="null" { "–" } };
    };
    let share = if rows == 0 {
        0.0
    } else {
        stats.nulls as f64 / rows as f64 * 100.0
    };
    html! {
        span class="bar" title={ (count(stats.nulls)) " nulls of " (count(rows)) } {
            span style={ "width:" (format!("{share:.1}")) "%" } {}
        }
        " " (format!("{share:.1}")) "%"
    }
}

/// An inline SVG bar chart of row count per version; the shown version is darker.
fn chart(versions: &[VersionSummary], shown: u64) -> Markup {
    const WIDTH: f64 = 600.0;
    const HEIGHT: f64 = 140.0;
    const TOP: f64 = 12.0;
    const BOTTOM: f64 = 20.0;
    // Bars of versions with rows are at least this tall, so a small version beside large
    // ones stays visible (its exact count is in its tooltip and the versions table).
    const MIN_BAR: f64 = 2.0;
    let n = versions.len().max(1) as f64;
    let most = versions.iter().map(|m| m.row_count).max().unwrap_or(0);
    let max = most.max(1) as f64;
    let slot = WIDTH / n;
    let bar = (slot * 0.8).max(1.0);
    html! {
        svg id="chart" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width=(WIDTH) height=(HEIGHT) role="img" aria-label="rows per version" xmlns="http://www.w3.org/2000/svg" {
            line x1="0" y1=(HEIGHT - BOTTOM) x2=(WIDTH) y2=(HEIGHT - BOTTOM) stroke="#c4cad4" {}
            text x="4" y="10" font-size="10" fill="#6b7385" { (count(most)) (if most == 1 { " row" } else { " rows" }) }
            @for (i, v) in versions.iter().enumerate() {
                @let h = if v.row_count == 0 { 0.0 } else { ((v.row_count as f64 / max) * (HEIGHT - TOP - BOTTOM)).max(MIN_BAR) };
                @let x = i as f64 * slot + (slot - bar) / 2.0;
                rect x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - BOTTOM - h)) width=(format!("{bar:.1}")) height=(format!("{h:.1}"))
                    fill=(if v.version == shown { "#1d5fa8" } else { "#8fb3dd" }) {
                    title { "version " (v.version) ": " (count(v.row_count)) " rows" }
                }
                @if versions.len() <= 30 || i == 0 || i + 1 == versions.len() {
                    text x=(format!("{:.1}", x + bar / 2.0)) y=(HEIGHT - 6.0) font-size="10" text-anchor="middle" fill="#6b7385" { "v" (v.version) }
                }
            }
        }
    }
}

/// The form of `GET /ui/login`: one password field, posted to `/ui/login`; `problem` says
/// why the previous attempt was refused.
pub fn login(problem: Option<&str>) -> Markup {
    layout(
        "sign in",
        html! {
            h1 { "Sign in" }
            p { "The catalog needs a read token. Give it once: this browser keeps it in an HttpOnly, SameSite=Strict cookie for this session." }
            @if let Some(problem) = problem {
                p class="note" { (problem) }
            }
            form method="post" action="/ui/login" {
                input type="password" name="token" autocomplete="current-password" placeholder="read token" aria-label="read token" required;
                button type="submit" { "Open the catalog" }
            }
        },
    )
}

/// An error page with `status` and `message`.
pub fn error(status: StatusCode, message: &str) -> Markup {
    layout(
        status.as_str(),
        html! {
            h1 { (status.as_str()) " " (status.canonical_reason().unwrap_or("")) }
            p { (message) }
            @if status == StatusCode::UNAUTHORIZED {
                p { a href="/ui/login" { "Sign in with a read token" } }
            }
            p { a href="/ui" { "All datasets" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use lakehouse_api::{
        ColumnType, CsvOptions, DatasetName, Field, Manifest, ObjectKey, ObjectRef,
        PartitionScalar, PartitionSpec, PartitionSpecField, Schema, Sha256Digest, Source,
    };

    /// A version of a dataset partitioned by its string column `region`, one object per
    /// tuple.
    fn by_region(tuples: &[Option<&str>]) -> (Manifest, PartitionSpec) {
        let spec = PartitionSpec {
            partition_by: "region".into(),
            fields: vec![PartitionSpecField {
                field_id: 1000,
                name: "region".into(),
                source: "region".into(),
                transform: "identity".into(),
                result_type: "string".into(),
            }],
        };
        let schema = Schema {
            fields: vec![Field::new("region", ColumnType::Utf8)],
        };
        let objects = tuples
            .iter()
            .enumerate()
            .map(|(i, region)| {
                let sha = format!("{i:064x}");
                ObjectRef {
                    key: ObjectKey::new(format!("datasets/d/f/{sha}.parquet")).unwrap(),
                    size: 100,
                    sha256: Sha256Digest::new(&sha).unwrap(),
                    row_count: 10,
                    rejects: None,
                    partition: Some(vec![region.map(|r| PartitionScalar::Str(r.into()))]),
                }
            })
            .collect::<Vec<_>>();
        let manifest = Manifest {
            key: None,
            name: DatasetName::new("d").unwrap(),
            version: 1,
            schema_fingerprint: schema.fingerprint(),
            schema,
            row_count: 10 * objects.len() as u64,
            objects,
            created_at: "2024-02-29T00:00:00.000000Z".into(),
            inference_version: 2,
            options: CsvOptions::default(),
            source: Source::default(),
            columns: Vec::new(),
            operation: None,
            partition_spec: Some(spec.clone()),
        };
        (manifest, spec)
    }

    #[test]
    fn a_string_null_is_another_partition_than_null() {
        let (manifest, spec) = by_region(&[Some("null"), None, Some("null"), Some("eu")]);
        let page = super::partitions_table(&manifest, &spec).into_string();
        assert!(page.contains("3 partitions"), "{page}");
        // the string "null": 2 files, 20 rows; the null partition: 1 file, 10 rows
        let rows: Vec<&str> = page.split("<tr>").skip(2).collect();
        assert_eq!(rows.len(), 3, "{page}");
        assert!(
            rows[0].contains(r#"<td class="num">2</td><td class="num">20</td>"#),
            "{page}"
        );
        assert!(
            rows[1].contains(r#"<td class="num">1</td><td class="num">10</td>"#),
            "{page}"
        );
        assert!(rows[2].contains("region=eu"), "{page}");
    }

    #[test]
    fn the_facts_name_a_merged_datasets_key() {
        let (mut manifest, _) = by_region(&[Some("eu")]);
        let page = super::facts(&manifest).into_string();
        assert!(!page.contains(">key<"), "{page}");
        manifest.key = Some(vec!["region".into(), "id".into()]);
        let page = super::facts(&manifest).into_string();
        assert!(
            page.contains(r#">key</span><span class="mono">region, id</span>"#),
            "{page}"
        );
    }

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(super::count(0), "0");
        assert_eq!(super::count(999), "999");
        assert_eq!(super::count(1000), "1,000");
        assert_eq!(super::count(336_776), "336,776");
        assert_eq!(super::count(1_234_567), "1,234,567");
    }
}
