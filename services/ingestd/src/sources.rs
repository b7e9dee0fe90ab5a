//! The sources loads read (docs/contract.md section 12): `[[ingestd.sources]]` entries opened
//! as `object_store` readers the way storaged opens its backends (an S3-compatible bucket
//! with a prefix, or a local directory), the patterns a request may give, the listing of the
//! files a pattern matches, and the reading of one file as a stream of chunks for the
//! ingest pipeline. Only configured sources are ever read: a request names one and a
//! pattern under it, never a URL.

use crate::IngestError;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One `[[ingestd.sources]]` entry of `config/lakehouse.toml` (docs/contract.md section 12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The name requests use (`source` of `POST /loads`): `^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`.
    pub name: String,
    /// `s3://bucket/prefix/` (the prefix may be empty) or `file:///absolute/dir/` (an
    /// existing directory; symlinks inside it that resolve outside it are never read).
    pub url: String,
    /// `s3`: endpoint of an S3-compatible server; empty = `AWS_ENDPOINT`, else AWS S3.
    #[serde(default)]
    pub endpoint: String,
    /// `s3`: region; empty = `AWS_REGION`, else `us-east-1`.
    #[serde(default)]
    pub region: String,
    /// `s3`: allow a plain `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// `s3`: name of the environment variable holding this source's access key id; empty =
    /// the usual `AWS_ACCESS_KEY_ID` (a source with credentials of its own names them here,
    /// so several sources can hold different ones).
    #[serde(default)]
    pub access_key_id_env: String,
    /// `s3`: name of the variable holding its secret access key; empty = `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key_env: String,
    /// `s3`: name of the variable holding its session token, if any; empty = `AWS_SESSION_TOKEN`.
    #[serde(default)]
    pub session_token_env: String,
}

/// Why a configured source could not be opened at start (a [`crate::StartError`]).
#[derive(Debug, thiserror::Error)]
#[error("source {name:?}: {reason}")]
pub struct SourceConfigError {
    /// The source's name as configured.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

/// One opened source.
#[derive(Debug)]
pub struct Source {
    /// Its configured name.
    pub name: String,
    /// Its URL, as configured.
    pub url: String,
    store: Arc<dyn ObjectStore>,
    /// The canonical directory of a `file://` source: a listed file must resolve inside it.
    root: Option<PathBuf>,
}

/// One file a pattern matched: its path under the source, ETag and size as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Path under the source's URL.
    pub path: String,
    /// The ETag listed, when the source gives one.
    pub etag: Option<String>,
    /// Size listed, bytes.
    pub size: u64,
}

/// The configured sources, by name.
#[derive(Debug, Default)]
pub struct Sources {
    by_name: BTreeMap<String, Arc<Source>>,
}

impl Sources {
    /// Opens every configured source.
    ///
    /// # Errors
    /// [`SourceConfigError`] for an invalid or repeated name, an unsupported URL, a
    /// directory that does not exist, or settings object_store refuses.
    pub fn open(configs: &[SourceConfig]) -> Result<Sources, SourceConfigError> {
        let mut by_name = BTreeMap::new();
        for config in configs {
            let error = |reason: String| SourceConfigError {
                name: config.name.clone(),
                reason,
            };
            lakehouse_api::DatasetName::new(config.name.clone()).map_err(|_| {
                error("the name must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$".into())
            })?;
            if by_name.contains_key(&config.name) {
                return Err(error("the name is configured twice".into()));
            }
            let source = open_source(config).map_err(error)?;
            by_name.insert(config.name.clone(), Arc::new(source));
        }
        Ok(Sources { by_name })
    }

    /// The source named `name`.
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`] (`source`) naming the configured ones.
    pub fn get(&self, name: &str) -> Result<Arc<Source>, IngestError> {
        self.by_name.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            IngestError::InvalidOption {
                option: "source",
                reason: if known.is_empty() {
                    format!("{name:?} is not a configured source (none is configured)")
                } else {
                    format!(
                        "{name:?} is not a configured source (configured: {})",
                        known.join(", ")
                    )
                },
            }
        })
    }
}

fn open_source(config: &SourceConfig) -> Result<Source, String> {
    let url = config.url.as_str();
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("an s3:// url needs a bucket: s3://bucket/prefix/".into());
        }
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // A load streams objects of any size: no whole-request timeout (the ingest's
            // idle timeout bounds a stalled read instead).
            .with_client_options(object_store::ClientOptions::new().with_timeout_disabled());
        if !config.endpoint.is_empty() {
            builder = builder.with_endpoint(&config.endpoint);
        }
        if !config.region.is_empty() {
            builder = builder.with_region(&config.region);
        }
        if config.allow_http {
            builder = builder.with_allow_http(true);
        }
        for (variable, setter) in [
            (&config.access_key_id_env, 0),
            (&config.secret_access_key_env, 1),
            (&config.session_token_env, 2),
        ] {
            if variable.is_empty() {
                continue;
            }
            let value = std::env::var(variable)
                .map_err(|_| format!("the environment variable {variable} is not set"))?;
            builder = match setter {
                0 => builder.with_access_key_id(value),
                1 => builder.with_secret_access_key(value),
                _ => builder.with_token(value),
            };
        }
        let s3 = builder.build().map_err(|e| e.to_string())?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            let prefix = StorePath::parse(prefix).map_err(|e| format!("its prefix: {e}"))?;
            Arc::new(object_store::prefix::PrefixStore::new(s3, prefix))
        };
        return Ok(Source {
            name: config.name.clone(),
            url: config.url.clone(),
            store,
            root: None,
        });
    }
    if let Some(dir) = url.strip_prefix("file://") {
        if !dir.starts_with('/') {
            return Err("a file:// url names an absolute directory: file:///absolute/dir/".into());
        }
        let root = std::fs::canonicalize(dir)
            .map_err(|e| format!("the directory {dir} cannot be opened: {e}"))?;
        if !root.is_dir() {
            return Err(format!("{dir} is not a directory"));
        }
        let local = object_store::local::LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| e.to_string())?;
        return Ok(Source {
            name: config.name.clone(),
            url: config.url.clone(),
            store: Arc::new(local),
            root: Some(root),
        });
    }
    Err(format!(
        "{url:?} is not an s3://bucket/prefix/ or file:///absolute/dir/ url"
    ))
}

/// A validated pattern of `POST /loads`: a path or glob under a source.
#[derive(Debug, Clone)]
pub struct Pattern {
    glob: glob::Pattern,
    /// The literal directories before the first segment with a wildcard (or before the last
    /// segment): what is listed.
    list_prefix: Option<StorePath>,
}

impl Pattern {
    /// Checks `pattern`: not empty, not absolute, not a URL, no `.` or `..` segment, no empty
    /// segment, no backslash, a glob that parses. A trailing `/` means every file under that
    /// directory (`dir/` is `dir/**`).
    ///
    /// # Errors
    /// [`IngestError::InvalidOption`] (`pattern`) saying what is wrong.
    pub fn parse(pattern: &str) -> Result<Pattern, IngestError> {
        let invalid = |reason: &str| IngestError::InvalidOption {
            option: "pattern",
            reason: format!("{pattern:?} {reason}"),
        };
        if pattern.is_empty() {
            return Err(invalid("is empty: give a path or glob under the source"));
        }
        if pattern.len() > 1024 {
            return Err(invalid("is longer than 1024 bytes"));
        }
        if pattern.contains("://") {
            return Err(invalid(
                "is a URL: a pattern is a path under the source, which names its bucket or directory",
            ));
        }
        if pattern.starts_with('/') {
            return Err(invalid("is absolute: give a path under the source"));
        }
        if pattern.contains('\\') || pattern.chars().any(char::is_control) {
            return Err(invalid("holds a backslash or a control character"));
        }
        let expanded = match pattern.strip_suffix('/') {
            Some(dir) => format!("{dir}/**"),
            None => pattern.to_owned(),
        };
        let segments: Vec<&str> = expanded.split('/').collect();
        if segments.iter().any(|s| *s == ".." || *s == ".") {
            return Err(invalid(
                "has a `.` or `..` segment: it may not leave the source",
            ));
        }
        if segments.iter().any(|s| s.is_empty()) {
            return Err(invalid("has an empty segment (`//`)"));
        }
        let glob = glob::Pattern::new(&expanded)
            .map_err(|e| invalid(&format!("is not a valid glob: {}", e.msg)))?;
        let literal: Vec<&str> = segments[..segments.len() - 1]
            .iter()
            .take_while(|s| !s.contains(['*', '?', '[', ']']))
            .copied()
            .collect();
        let list_prefix = if literal.is_empty() {
            None
        } else {
            Some(
                StorePath::parse(literal.join("/"))
                    .map_err(|e| invalid(&format!("is not a valid path: {e}")))?,
            )
        };
        Ok(Pattern { glob, list_prefix })
    }

    fn matches(&self, path: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.glob.matches_with(path, options)
    }
}

impl Source {
    /// Lists the files `pattern` matches, in key order.
    ///
    /// # Errors
    /// [`IngestError::SourceFailed`] when the source cannot be listed (unreachable, refused
    /// credentials, a directory gone).
    pub async fn list(&self, pattern: &Pattern) -> Result<Vec<Listed>, IngestError> {
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(pattern.list_prefix.as_ref())
            .try_collect()
            .await
            .map_err(|e| self.failed("", &e))?;
        let mut files: Vec<Listed> = metas
            .into_iter()
            .filter(|meta| pattern.matches(meta.location.as_ref()))
            .map(|meta| Listed {
                path: meta.location.to_string(),
                etag: meta.e_tag,
                size: meta.size,
            })
            .collect();
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Opens `file` for reading: its chunks, then, once they are all read, a check that the
    /// file is still what was listed (same ETag and size), so that a file changed while it
    /// was read is an error before anything is committed. A `file://` source first resolves
    /// the file's path and refuses one that leaves its directory (a symlink), without
    /// reading it.
    ///
    /// # Errors
    /// [`IngestError::SourceEscape`], [`IngestError::SourceChanged`] (changed since it was
    /// listed), [`IngestError::SourceFailed`]; the stream's items fail with those too.
    pub async fn open(
        self: &Arc<Self>,
        file: &Listed,
    ) -> Result<impl Stream<Item = Result<Bytes, IngestError>> + Send + 'static, IngestError> {
        let location = self.resolve(&file.path).await?;
        let options = object_store::GetOptions {
            if_match: file.etag.clone(),
            ..Default::default()
        };
        let got = match self.store.get_opts(&location, options).await {
            Ok(got) => got,
            Err(object_store::Error::Precondition { .. }) => {
                return Err(self.changed(file, "since it was listed"));
            }
            Err(e) => return Err(self.failed(&file.path, &e)),
        };
        let body: futures::stream::BoxStream<'static, object_store::Result<Bytes>> =
            match got.payload {
                object_store::GetResultPayload::File(handle, _) => {
                    // 1 MiB reads rather than object_store's 8 KiB chunks.
                    let reader = tokio::fs::File::from_std(handle);
                    tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20)
                        .map_err(|e| object_store::Error::Generic {
                            store: "LocalFileSystem",
                            source: Box::new(e),
                        })
                        .boxed()
                }
                object_store::GetResultPayload::Stream(stream) => stream,
            };
        let source = Arc::clone(self);
        let file = file.clone();
        let end_check = {
            let source = Arc::clone(&source);
            let file = file.clone();
            futures::stream::once(async move { source.still_as_listed(&location, &file).await })
                .filter_map(|result| async move { result.err().map(Err) })
        };
        let path = file.path.clone();
        let mut read = 0u64;
        let size = file.size;
        let chunks = body.map(move |chunk| {
            let chunk = chunk.map_err(|e| source.failed(&path, &e))?;
            read += chunk.len() as u64;
            if read > size {
                return Err(IngestError::SourceChanged {
                    source_name: source.name.clone(),
                    path: path.clone(),
                    reason: format!(
                        "it grew past its listed size of {size} bytes while it was read"
                    ),
                });
            }
            Ok(chunk)
        });
        Ok(chunks.chain(end_check))
    }

    /// The object_store location to read for `path`: the path itself, or for a `file://`
    /// source the path it resolves to, which must stay inside the source's directory.
    async fn resolve(&self, path: &str) -> Result<StorePath, IngestError> {
        let location = StorePath::parse(path).map_err(|e| self.failed(path, &e))?;
        let Some(root) = self.root.clone() else {
            return Ok(location);
        };
        let full = root.join(path);
        let resolved = tokio::task::spawn_blocking(move || std::fs::canonicalize(full))
            .await
            .map_err(IngestError::Task)?
            .map_err(|e| IngestError::SourceFailed {
                source_name: self.name.clone(),
                path: path.to_owned(),
                reason: format!("cannot resolve it: {e}"),
            })?;
        let escape = || IngestError::SourceEscape {
            source_name: self.name.clone(),
            path: path.to_owned(),
        };
        let relative = resolved.strip_prefix(&root).map_err(|_| escape())?;
        let parts: Option<Vec<&str>> = relative.iter().map(|part| part.to_str()).collect();
        match parts {
            Some(parts) if !parts.is_empty() => Ok(StorePath::from_iter(parts)),
            _ => Err(escape()),
        }
    }

    /// After the last chunk: the file must still have the ETag and size it was listed with.
    async fn still_as_listed(
        &self,
        location: &StorePath,
        file: &Listed,
    ) -> Result<(), IngestError> {
        let now = self
            .store
            .head(location)
            .await
            .map_err(|e| self.failed(&file.path, &e))?;
        if now.e_tag != file.etag || now.size != file.size {
            return Err(self.changed(file, "while it was read"));
        }
        Ok(())
    }

    fn changed(&self, file: &Listed, when: &str) -> IngestError {
        IngestError::SourceChanged {
            source_name: self.name.clone(),
            path: file.path.clone(),
            reason: format!(
                "it changed {when} (listed with ETag {} and {} bytes)",
                file.etag.as_deref().unwrap_or("none"),
                file.size
            ),
        }
    }

    fn failed(&self, path: &str, error: &dyn std::error::Error) -> IngestError {
        IngestError::SourceFailed {
            source_name: self.name.clone(),
            path: path.to_owned(),
            reason: error_chain(error),
        }
    }
}

/// An error and its sources, `: `-separated (object_store's messages wrap the cause, such as
/// S3's `InvalidAccessKeyId`, several levels down).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_that_leave_the_source_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x.csv",
            "a/../../x.csv",
            "./a.csv",
            "s3://other-bucket/x.csv",
            "file:///etc/passwd",
            "a//b.csv",
            "a\\b.csv",
            "[.csv",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn globs_match_within_segments_and_double_stars_across_them() {
        let star = Pattern::parse("drops/*.csv").unwrap();
        assert!(star.matches("drops/a.csv"));
        assert!(!star.matches("drops/sub/a.csv"));
        assert!(!star.matches("other/a.csv"));
        assert_eq!(
            star.list_prefix.as_ref().map(|p| p.to_string()),
            Some("drops".into())
        );
        let deep = Pattern::parse("drops/**/*.csv.gz").unwrap();
        assert!(deep.matches("drops/2026/12/a.csv.gz"));
        assert!(!deep.matches("drops/2026/12/a.csv"));
        let dir = Pattern::parse("drops/").unwrap();
        assert!(dir.matches("drops/x/y.csv"));
        assert!(!dir.matches("dropsy/x.csv"));
        let exact = Pattern::parse("a/b.csv").unwrap();
        assert!(exact.matches("a/b.csv"));
        assert!(!exact.matches("a/b.csvx"));
        assert!(Pattern::parse("*.csv").unwrap().list_prefix.is_none());
    }
}
