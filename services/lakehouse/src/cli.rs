//! The command line: clap derive, whose doc comments are the `--help` text.

use clap::{Args, Parser, Subcommand, ValueEnum};
use lakehouse_api::{
    CsvOptions, DatasetName, DateOrder, DecimalSeparator, IngestMode, SchemaEvolution, TextEncoding,
};
use lakehouse_client::{CatalogdClient, IngestdClient, StoragedClient};
use std::path::PathBuf;

/// Command-line client of a lakehouse trio (ingestd, catalogd, storaged).
///
/// Ingests CSV files as versioned Parquet datasets, lists and shows datasets and their
/// versions, downloads a version's Parquet objects and runs garbage collection. Output is a
/// table for people, or JSON with `--json`. Exit status: 0 ok, 1 error (the service refused or
/// could not be reached), 2 usage (a bad flag or argument; nothing was sent).
#[derive(Debug, Parser)]
#[command(name = "lakehouse", version)]
pub struct Cli {
    /// Where the services are and how to talk to them.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Service options")]
pub struct Global {
    /// Base URL of ingestd.
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_INGESTD_URL",
        default_value = "http://127.0.0.1:8081",
        value_parser = ingestd_client,
        value_name = "URL"
    )]
    pub ingestd_url: IngestdClient,
    /// Base URL of catalogd.
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_CATALOGD_URL",
        default_value = "http://127.0.0.1:8082",
        value_parser = catalogd_client,
        value_name = "URL"
    )]
    pub catalogd_url: CatalogdClient,
    /// Base URL of storaged (`get` downloads the objects from it).
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_STORAGED_URL",
        default_value = "http://127.0.0.1:8083",
        value_parser = storaged_client,
        value_name = "URL"
    )]
    pub storaged_url: StoragedClient,
    /// Bearer token sent to every service (a read token for lookups and `get`, a write token
    /// for `ingest` and `gc`).
    #[arg(
        long,
        global = true,
        env = "LAKEHOUSE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// Print the answer as JSON on stdout (one document) instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest a CSV file as a new version of a dataset (`POST /ingest`).
    ///
    /// The file is streamed, never read whole. On a terminal a progress bar shows the bytes
    /// sent, the rate and the time left, then a spinner while ingestd converts and commits.
    /// An upload whose schema does not fit the dataset's is refused (exit 1) and the
    /// difference is printed column by column.
    Ingest(IngestArgs),
    /// List datasets with their latest version (`GET /datasets`, every page).
    Datasets {
        /// Only datasets whose name starts with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Show a dataset version: its schema, objects and counts (`GET /datasets/{name}`).
    Show {
        /// Dataset name.
        #[arg(value_parser = dataset_name)]
        name: DatasetName,
        /// Version to show (time travel); the latest when absent.
        #[arg(long)]
        version: Option<u64>,
    },
    /// List every version of a dataset (`GET /datasets/{name}/versions`).
    Versions {
        /// Dataset name.
        #[arg(value_parser = dataset_name)]
        name: DatasetName,
    },
    /// Download a version's Parquet objects into a directory, checking each one's SHA-256.
    ///
    /// Each object is written as DIR/v<N>/<last segment of its key> (`<sha256>.parquet`, N
    /// the version), streamed to a temporary file that is renamed only once its SHA-256
    /// matches the key's; so versions downloaded into one DIR never mix. A DIR/v<N> that
    /// holds files other than that version's objects is refused unless `--force`.
    Get {
        /// Dataset name.
        #[arg(value_parser = dataset_name)]
        name: DatasetName,
        /// Version to download; the latest when absent.
        #[arg(long)]
        version: Option<u64>,
        /// Directory to write into (created when missing); the files go to DIR/v<N>/.
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: PathBuf,
        /// Write into DIR/v<N> even when it holds other files.
        #[arg(long)]
        force: bool,
    },
    /// Drop a dataset (`DELETE /datasets/{name}`; needs a write token when tokens are on).
    ///
    /// Commits a tombstone version: the dataset leaves listings and lookups, its objects are
    /// collected after the grace period, and a later ingest under the name starts a new
    /// dataset. Asks for `--yes` so that it is never typed by accident.
    Drop {
        /// Dataset name.
        #[arg(value_parser = dataset_name)]
        name: DatasetName,
        /// Confirm the drop.
        #[arg(long, required = true)]
        yes: bool,
    },
    /// Load the files of a configured source that match a pattern, each exactly once
    /// (`POST /loads`).
    ///
    /// Each matching file becomes a version of its own (append), in key order; a file a
    /// version of the dataset already records (same path, ETag and size) is skipped unless
    /// `--force`. On a terminal a progress bar shows the files and bytes done; at the end a
    /// table lists every file. Exit status 1 when the load or any file failed.
    Load(LoadArgs),
    /// List the loads this ingestd ran since it started, newest first (`GET /loads`).
    Loads,
    /// Compact a dataset's small files (`POST /datasets/{name}/compact`).
    ///
    /// Each contiguous run of live files smaller than ingestd's `compact_min_file_bytes` is
    /// rewritten into files of about `target_file_bytes`, rows and their order unchanged,
    /// and committed as a new version (operation `compact`). Nothing to compact is not an
    /// error: nothing is done.
    Compact {
        /// Dataset name.
        #[arg(value_parser = dataset_name)]
        name: DatasetName,
        /// Report what would be rewritten, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run garbage collection now (`POST /admin/gc`; needs a write token when tokens are on).
    Gc {
        /// Report what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Arguments of `lakehouse ingest`: the file and every `/ingest` option.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// CSV file to ingest (UTF-8, header line first).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Dataset to ingest into; created by the first ingest.
    #[arg(long, value_parser = dataset_name)]
    pub name: DatasetName,
    /// `replace`: the new version holds only this file; `append`: the previous version's
    /// objects plus this file; `merge`: rows replace those with their `--key`, new keys are
    /// added; `delete`: the file lists keys (its header the key columns), their rows are
    /// removed. ingestd's default is `replace`.
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// `--mode merge` and `--mode delete`: the key columns, comma-separated (`id`,
    /// `region,id`). The first merge declares them for the dataset.
    #[arg(long, value_name = "COLUMNS")]
    pub key: Option<String>,
    /// Field delimiter: one ASCII character, or `tab`. When absent: the one the dataset
    /// recorded; for a new dataset, sniffed from `,`, tab, `;` and `|`.
    #[arg(long, value_parser = delimiter, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// Comma-separated strings read as null besides the empty field (e.g. `NA,NULL`). When
    /// absent: the ones the dataset recorded, none for a new dataset.
    #[arg(long, value_name = "LIST")]
    pub null_values: Option<String>,
    /// Text encoding: `utf-8`, `windows-1252` (also `latin1`, `iso-8859-1`), `utf-16le`,
    /// `utf-16be`. When absent: the one the dataset recorded, UTF-8 for a new dataset; a
    /// UTF-16 byte order mark is detected whatever this says. gzip and zstd files are
    /// decompressed by ingestd, with no option.
    #[arg(long, value_parser = encoding, value_name = "NAME")]
    pub encoding: Option<TextEncoding>,
    /// Decimal separator of float values: `.` or `,` (`1234,56`; with `,` as the delimiter
    /// too such values must be quoted). When absent: the one the dataset recorded, `.` for a
    /// new dataset.
    #[arg(long, value_parser = decimal_separator, value_name = "CHAR")]
    pub decimal_separator: Option<DecimalSeparator>,
    /// How a new dataset's `P/Q/YYYY` date columns are read: `DMY` (day first) or `MDY`
    /// (month first). When absent, a column is a date only when one reading fits all its
    /// values.
    #[arg(long, value_enum, value_name = "ORDER")]
    pub date_order: Option<DateOrderArg>,
    /// `add_columns`: columns after the dataset's own at the end of the header make a new
    /// schema version (typed from this file) instead of a schema_drift refusal.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub schema_evolution: Option<EvolutionArg>,
    /// Set up to N bad records (wrong field count, undecodable text, a value the dataset's
    /// type refuses) aside into a rejects CSV stored next to the data, instead of failing.
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,
    /// Check the file and show what the ingest would do (the version it would make, or the
    /// refusal), writing nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Partition a new dataset: comma-separated transforms of its columns, `col`,
    /// `year(col)`, `month(col)`, `day(col)`, `hour(col)`, `bucket(N,col)`,
    /// `truncate(W,col)`, e.g. `day(ts),bucket(16,id)`. Each upload then writes one file
    /// per partition value, and engines skip the files a filter rules out. Kept by every
    /// later upload.
    #[arg(long, value_name = "SPEC")]
    pub partition_by: Option<String>,
}

/// Arguments of `lakehouse load`: the source, the pattern and the `/loads` options.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// A source configured in ingestd (`[[ingestd.sources]]`).
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// A path or glob under the source: `*` and `?` within a segment, `**` across segments,
    /// a trailing `/` for everything under a directory. Quote it so the shell leaves it be.
    #[arg(value_name = "PATTERN")]
    pub pattern: String,
    /// Dataset to load into; created by the first file.
    #[arg(long, value_parser = dataset_name)]
    pub name: DatasetName,
    /// `append` (the default: each file is a version of its own that keeps the others) or
    /// `merge` (each file merged by `--key` in turn).
    #[arg(long, value_enum)]
    pub mode: Option<LoadModeArg>,
    /// `--mode merge`: the key columns, comma-separated.
    #[arg(long, value_name = "COLUMNS")]
    pub key: Option<String>,
    /// Load files already loaded too (same path, ETag and size in a version's record).
    #[arg(long)]
    pub force: bool,
    /// As `ingest --delimiter`, for every file.
    #[arg(long, value_parser = delimiter, value_name = "CHAR")]
    pub delimiter: Option<String>,
    /// As `ingest --null-values`, for every file.
    #[arg(long, value_name = "LIST")]
    pub null_values: Option<String>,
    /// As `ingest --encoding`, for every file.
    #[arg(long, value_name = "NAME")]
    pub encoding: Option<String>,
    /// As `ingest --schema-evolution`, for every file.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub schema_evolution: Option<EvolutionArg>,
    /// As `ingest --max-rejects`, per file.
    #[arg(long, value_name = "N")]
    pub max_rejects: Option<u64>,
    /// As `ingest --partition-by`, when the first file makes the dataset.
    #[arg(long, value_name = "SPEC")]
    pub partition_by: Option<String>,
}

/// `load --mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LoadModeArg {
    /// Each file is a new version holding the previous objects plus its own.
    Append,
    /// Each file is merged by key: its rows replace those with their key.
    Merge,
}

/// `--schema-evolution`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EvolutionArg {
    /// New columns after the registered ones make a new schema version.
    #[value(name = "add_columns")]
    AddColumns,
}

impl From<EvolutionArg> for SchemaEvolution {
    fn from(evolution: EvolutionArg) -> Self {
        match evolution {
            EvolutionArg::AddColumns => SchemaEvolution::AddColumns,
        }
    }
}

/// `--date-order`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DateOrderArg {
    /// Day, month, year: `13/02/2024` is 13 February.
    #[value(name = "DMY", alias = "dmy")]
    Dmy,
    /// Month, day, year: `02/13/2024` is 13 February.
    #[value(name = "MDY", alias = "mdy")]
    Mdy,
}

impl From<DateOrderArg> for DateOrder {
    fn from(order: DateOrderArg) -> Self {
        match order {
            DateOrderArg::Dmy => DateOrder::Dmy,
            DateOrderArg::Mdy => DateOrder::Mdy,
        }
    }
}

/// `--mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// The new version holds only the new file.
    Replace,
    /// The new version holds the previous version's objects plus the new file.
    Append,
    /// The file's rows replace those with their key; new keys are added.
    Merge,
    /// The rows with the file's keys are removed.
    Delete,
}

impl From<ModeArg> for IngestMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Replace => IngestMode::Replace,
            ModeArg::Append => IngestMode::Append,
            ModeArg::Merge => IngestMode::Merge,
            ModeArg::Delete => IngestMode::Delete,
        }
    }
}

fn dataset_name(value: &str) -> Result<DatasetName, String> {
    DatasetName::new(value).map_err(|e| e.to_string())
}

fn delimiter(value: &str) -> Result<String, String> {
    CsvOptions::parse_delimiter(value).map(|_| value.to_owned())
}

fn encoding(value: &str) -> Result<TextEncoding, String> {
    TextEncoding::from_label(value)
}

fn decimal_separator(value: &str) -> Result<DecimalSeparator, String> {
    DecimalSeparator::parse(value)
}

fn ingestd_client(value: &str) -> Result<IngestdClient, String> {
    IngestdClient::new(value).map_err(|e| e.to_string())
}

fn catalogd_client(value: &str) -> Result<CatalogdClient, String> {
    CatalogdClient::new(value).map_err(|e| e.to_string())
}

fn storaged_client(value: &str) -> Result<StoragedClient, String> {
    StoragedClient::new(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
