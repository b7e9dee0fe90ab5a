//! One function per subcommand: call `lakehouse-client`, hand the answer to [`crate::output`].

use crate::cli::{Cli, Command, IngestArgs, LoadArgs};
use crate::output::{self, Downloaded, GetReport};
use crate::progress::{LoadProgress, UploadProgress};
use futures::StreamExt;
use lakehouse_api::{
    DatasetListResponse, DatasetName, ErrorCode, LoadCreateRequest, LoadFileState, LoadGetResponse,
    LoadState, Manifest, ObjectRef,
};
use lakehouse_client::{CatalogdClient, ClientError, IngestOptions, StoragedClient};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Read size of the file being ingested, bytes.
const READ_CHUNK_BYTES: usize = 256 * 1024;

/// Page size when listing every dataset.
const LIST_PAGE: usize = 1000;

/// Why a command failed (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A service refused the request or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The file to ingest cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Input {
        /// The file as given.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The path to ingest is not a regular file.
    #[error("{path} is not a regular file")]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },
    /// catalogd has no dataset of that name (one wording for every command).
    #[error("no dataset named {}", name.as_str())]
    UnknownDataset {
        /// The name asked for.
        name: DatasetName,
    },
    /// The dataset exists but has no such version.
    #[error("dataset {} has no version {version}", name.as_str())]
    UnknownVersion {
        /// The dataset.
        name: DatasetName,
        /// The version asked for.
        version: u64,
    },
    /// `get` would write into a directory holding other files (without `--force`).
    #[error(
        "{} holds files other than this version's objects; give another -o or --force",
        dir.display()
    )]
    NotEmpty {
        /// The directory.
        dir: PathBuf,
    },
    /// A downloaded object cannot be written.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file being written.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A downloaded object's bytes do not hash to the SHA-256 of its key.
    #[error("object {key}: its SHA-256 is {actual}, its key says {expected}; nothing written")]
    Digest {
        /// The object key.
        key: String,
        /// SHA-256 of the key.
        expected: String,
        /// SHA-256 of the bytes received.
        actual: String,
    },
    /// A load ended `failed`, or with failed files (its table was printed).
    #[error("load {load_id}: {}", if *.state == LoadState::Failed { "the load failed".to_owned() } else { format!("{failed} file(s) failed") })]
    Load {
        /// The load's id.
        load_id: String,
        /// How it ended.
        state: LoadState,
        /// Files that failed.
        failed: usize,
    },
    /// The answer cannot be written to stdout (other than a reader that has gone).
    #[error("cannot write the answer to stdout: {0}")]
    Print(#[source] std::io::Error),
    /// A downloaded object's length is not the manifest's size.
    #[error("object {key}: received {actual} bytes, the manifest says {expected}; nothing written")]
    Size {
        /// The object key.
        key: String,
        /// Size in the manifest.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
}

/// Runs the parsed command line.
///
/// # Errors
/// [`CliError`]: the first failure, after which nothing more is sent.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    let token = global.token.clone();
    let catalogd = global.catalogd_url.with_token(token.clone());
    let json = global.json;
    match cli.command {
        Command::Ingest(args) => {
            let ingestd = global.ingestd_url.with_token(token);
            ingest(&ingestd, args, json).await
        }
        Command::Datasets { prefix } => {
            let list = all_datasets(&catalogd, &prefix).await?;
            output::print(&list, json)
        }
        Command::Show { name, version } => {
            let manifest = manifest(&catalogd, &name, version).await?;
            output::print(&manifest, json)
        }
        Command::Versions { name } => {
            let versions = catalogd
                .versions(&name)
                .await
                .map_err(|e| not_found_as(e, CliError::UnknownDataset { name: name.clone() }))?;
            output::print(&versions, json)
        }
        Command::Get {
            name,
            version,
            output: dir,
            force,
        } => {
            let storaged = global.storaged_url.with_token(token);
            let manifest = manifest(&catalogd, &name, version).await?;
            let dir = dir.join(format!("v{}", manifest.version));
            check_writable(&manifest, &dir, force).await?;
            let report = get(&storaged, &manifest, &dir).await?;
            output::print(&report, json)
        }
        Command::Drop { name, yes: _ } => {
            let dropped = catalogd.drop_dataset(&name).await.map_err(|error| {
                if error.code() == lakehouse_api::ErrorCode::NotFound {
                    CliError::UnknownDataset { name: name.clone() }
                } else {
                    CliError::Client(error)
                }
            })?;
            output::print(&dropped, json)
        }
        Command::Load(args) => {
            let ingestd = global.ingestd_url.with_token(token);
            load(&ingestd, args, json).await
        }
        Command::Loads => {
            let ingestd = global.ingestd_url.with_token(token);
            output::print(&ingestd.loads().await?, json)
        }
        Command::Compact { name, dry_run } => {
            let ingestd = global.ingestd_url.with_token(token);
            let report = ingestd.compact(&name, dry_run).await?;
            output::print(&report, json)
        }
        Command::Gc { dry_run } => {
            let report = catalogd.gc(dry_run).await?;
            output::print(&report, json)
        }
    }
}

/// `lakehouse ingest`: checks the file locally (nothing is sent for a missing, unreadable or
/// non-regular file), then streams it with the progress display.
async fn ingest(
    ingestd: &lakehouse_client::IngestdClient,
    args: IngestArgs,
    json: bool,
) -> Result<(), CliError> {
    let input = |source| CliError::Input {
        path: args.file.clone(),
        source,
    };
    let file = tokio::fs::File::open(&args.file).await.map_err(input)?;
    let metadata = file.metadata().await.map_err(input)?;
    if !metadata.is_file() {
        return Err(CliError::NotAFile { path: args.file });
    }
    let length = metadata.len();
    let filename = args
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload.csv".to_owned());
    let options = IngestOptions {
        name: args.name,
        mode: args.mode.map(Into::into),
        key: args.key,
        delimiter: args.delimiter,
        null_values: args.null_values,
        encoding: args.encoding.map(|e| e.as_str().to_owned()),
        decimal_separator: args.decimal_separator,
        date_order: args.date_order.map(Into::into),
        schema_evolution: args.schema_evolution.map(Into::into),
        max_rejects: args.max_rejects,
        dry_run: args.dry_run.then_some(true),
        partition_by: args.partition_by,
    };
    let progress = UploadProgress::new(length);
    let chunks = progress.track(tokio_util::io::ReaderStream::with_capacity(
        file,
        READ_CHUNK_BYTES,
    ));
    let answer = ingestd.ingest(&options, chunks, length, &filename).await;
    progress.finish();
    output::print(&answer?, json)
}

/// How often `lakehouse load` asks where a load stands while it draws the bar.
const LOAD_POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// `lakehouse load`: starts the load; on a terminal follows it with the bar (polling `GET
/// /loads/{id}`), else waits for its end in one request; then prints the table.
async fn load(
    ingestd: &lakehouse_client::IngestdClient,
    args: LoadArgs,
    json: bool,
) -> Result<(), CliError> {
    let request = LoadCreateRequest {
        source: args.source,
        pattern: args.pattern,
        name: args.name.as_str().to_owned(),
        mode: args.mode.map(|mode| {
            match mode {
                crate::cli::LoadModeArg::Append => "append",
                crate::cli::LoadModeArg::Merge => "merge",
            }
            .to_owned()
        }),
        key: args.key,
        force: args.force,
        delimiter: args.delimiter,
        null_values: args.null_values,
        encoding: args.encoding,
        schema_evolution: args
            .schema_evolution
            .map(|e| lakehouse_api::SchemaEvolution::from(e).as_str().to_owned()),
        max_rejects: args.max_rejects,
        decimal_separator: None,
        date_order: None,
        partition_by: args.partition_by,
    };
    let progress = LoadProgress::new();
    let finished = if progress.is_drawn() {
        let id = ingestd.load(&request).await?.load_id;
        loop {
            let status = ingestd.load_get(&id).await?;
            progress.show(&status);
            if status.state != LoadState::Running {
                break status;
            }
            tokio::time::sleep(LOAD_POLL).await;
        }
    } else {
        ingestd.load_and_wait(&request).await?
    };
    progress.finish();
    output::print(&finished, json)?;
    load_outcome(&finished)
}

/// Exit status 1 for a load that failed or has failed files.
fn load_outcome(load: &LoadGetResponse) -> Result<(), CliError> {
    let failed = load.count(LoadFileState::Failed);
    if load.state == LoadState::Failed || failed > 0 {
        return Err(CliError::Load {
            load_id: load.load_id.clone(),
            state: load.state,
            failed,
        });
    }
    Ok(())
}

/// Every page of `GET /datasets?prefix=`, as one list.
async fn all_datasets(
    catalogd: &CatalogdClient,
    prefix: &str,
) -> Result<DatasetListResponse, CliError> {
    let mut all = DatasetListResponse {
        datasets: Vec::new(),
        next_cursor: None,
    };
    let mut cursor: Option<String> = None;
    loop {
        let page = catalogd
            .list(prefix, Some(LIST_PAGE), cursor.as_deref())
            .await?;
        all.datasets.extend(page.datasets);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// Version `version` of `name`, or its latest version.
async fn manifest(
    catalogd: &CatalogdClient,
    name: &DatasetName,
    version: Option<u64>,
) -> Result<Manifest, CliError> {
    Ok(match version {
        Some(version) => match catalogd.version(name, version).await {
            Ok(manifest) => manifest,
            Err(error) if error.code() == ErrorCode::NotFound => {
                // Which is missing, the dataset or the version: one wording each.
                return Err(match catalogd.latest(name).await? {
                    None => CliError::UnknownDataset { name: name.clone() },
                    Some(_) => CliError::UnknownVersion {
                        name: name.clone(),
                        version,
                    },
                });
            }
            Err(error) => return Err(error.into()),
        },
        None => catalogd
            .latest(name)
            .await?
            .ok_or_else(|| CliError::UnknownDataset { name: name.clone() })?,
    })
}

/// A 404 `not_found` as `instead` (so every command words a missing dataset alike), any
/// other failure as it is.
fn not_found_as(error: ClientError, instead: CliError) -> CliError {
    if error.code() == ErrorCode::NotFound {
        instead
    } else {
        error.into()
    }
}

/// Refuses (without `force`) a `dir` holding files other than `manifest`'s objects: a
/// directory that is missing, empty, or holds only this version's files (a download
/// repeated) is fine.
async fn check_writable(manifest: &Manifest, dir: &Path, force: bool) -> Result<(), CliError> {
    if force {
        return Ok(());
    }
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CliError::Output {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let ours: Vec<&str> = manifest
        .objects
        .iter()
        .map(|o| o.key.as_str().rsplit('/').next().unwrap_or_default())
        .collect();
    loop {
        match entries.next_entry().await {
            Ok(Some(entry)) => {
                let name = entry.file_name();
                if !ours.iter().any(|o| name.to_str() == Some(*o)) {
                    return Err(CliError::NotEmpty {
                        dir: dir.to_owned(),
                    });
                }
            }
            Ok(None) => return Ok(()),
            Err(source) => {
                return Err(CliError::Output {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

/// `lakehouse get`: downloads every object of `manifest` into `dir`.
async fn get(
    storaged: &StoragedClient,
    manifest: &Manifest,
    dir: &Path,
) -> Result<GetReport, CliError> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|source| CliError::Output {
            path: dir.to_owned(),
            source,
        })?;
    let mut files = Vec::with_capacity(manifest.objects.len());
    for object in &manifest.objects {
        files.push(download(storaged, object, dir).await?);
    }
    Ok(GetReport {
        name: manifest.name.clone(),
        version: manifest.version,
        dir: dir.to_owned(),
        files,
    })
}

/// Streams `object` into `dir/<last key segment>.part`, hashing it on the way, and renames it
/// into place only when its size and SHA-256 match the manifest's.
async fn download(
    storaged: &StoragedClient,
    object: &ObjectRef,
    dir: &Path,
) -> Result<Downloaded, CliError> {
    let key = object.key.as_str();
    let file_name = key.rsplit('/').next().unwrap_or(key);
    let path = dir.join(file_name);
    let partial = dir.join(format!("{file_name}.part"));
    let written = write_hashed(storaged, object, &partial).await;
    let (size, digest) = match written {
        Ok(done) => done,
        Err(error) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
    };
    if let Some(error) = mismatch(object, size, &digest) {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(error);
    }
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|source| CliError::Output {
            path: path.clone(),
            source,
        })?;
    Ok(Downloaded {
        key: object.key.clone(),
        path,
        size,
        sha256: digest,
        rows: object.row_count,
    })
}

/// Why the `size` bytes of SHA-256 `digest` received for `object` are not it, if they are
/// not: the manifest's size, the manifest's SHA-256 and the digest the key is named by
/// (`<sha256>.parquet`, docs/contract.md section 5) must all agree.
fn mismatch(object: &ObjectRef, size: u64, digest: &str) -> Option<CliError> {
    let key = object.key.as_str();
    let file_name = key.rsplit('/').next().unwrap_or(key);
    let named = file_name.strip_suffix(".parquet").unwrap_or(file_name);
    if size != object.size {
        return Some(CliError::Size {
            key: key.to_owned(),
            expected: object.size,
            actual: size,
        });
    }
    let expected = if named != object.sha256.as_str() {
        named
    } else {
        object.sha256.as_str()
    };
    (digest != expected || digest != object.sha256.as_str()).then(|| CliError::Digest {
        key: key.to_owned(),
        expected: expected.to_owned(),
        actual: digest.to_owned(),
    })
}

/// Streams `object` into `path`: its size and SHA-256 (lowercase hex).
async fn write_hashed(
    storaged: &StoragedClient,
    object: &ObjectRef,
    path: &Path,
) -> Result<(u64, String), CliError> {
    let output = |source| CliError::Output {
        path: path.to_owned(),
        source,
    };
    let (_, mut chunks) = storaged.get_stream(&object.key).await?;
    let mut file = tokio::fs::File::create(path).await.map_err(output)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        hasher.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(output)?;
    }
    file.sync_all().await.map_err(output)?;
    Ok((size, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{ObjectKey, Sha256Digest};

    fn object(key_digest: &str, sha256: &str) -> ObjectRef {
        ObjectRef {
            key: ObjectKey::new(format!(
                "datasets/d/{}/{key_digest}.parquet",
                "f".repeat(64)
            ))
            .unwrap(),
            size: 10,
            sha256: Sha256Digest::new(sha256).unwrap(),
            row_count: 1,
            rejects: None,
            partition: None,
        }
    }

    #[test]
    fn bytes_must_match_the_size_the_sha256_and_the_key() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        assert!(mismatch(&object(&a, &a), 10, &a).is_none());
        assert!(matches!(
            mismatch(&object(&a, &a), 9, &a),
            Some(CliError::Size { .. })
        ));
        assert!(matches!(
            mismatch(&object(&a, &a), 10, &b),
            Some(CliError::Digest { .. })
        ));
        // A manifest whose sha256 field is not the key's: the bytes must match the key too.
        match mismatch(&object(&a, &b), 10, &b) {
            Some(CliError::Digest { expected, .. }) => assert_eq!(expected, a),
            other => panic!("{other:?}"),
        }
        assert!(mismatch(&object(&a, &b), 10, &a).is_some());
    }
}
