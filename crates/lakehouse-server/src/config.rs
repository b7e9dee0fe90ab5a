//! Configuration loading: defaults < TOML file < environment (docs/contract.md section 7).

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The config file used when `--config` is not given and the file exists.
pub const DEFAULT_CONFIG_PATH: &str = "config/lakehouse.toml";

/// Prefix of environment overrides: `LAKEHOUSE_<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "LAKEHOUSE_";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--config` names a file that does not exist.
    #[error("config file {0} does not exist")]
    Missing(PathBuf),
    /// A key is unknown, of the wrong type, or the TOML does not parse.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
}

/// Loads section `section` (`storaged`, `catalogd`, `ingestd`) into `T`.
///
/// Precedence, lowest first: `T::default()`, the TOML file (`path`, or
/// [`DEFAULT_CONFIG_PATH`] when `path` is `None` and that file exists), then environment
/// variables `LAKEHOUSE_<SECTION>__<KEY>` (case-insensitive). `T` should use
/// `#[serde(deny_unknown_fields)]` so a misspelt key is an error, not a silent default.
///
/// # Errors
/// [`ConfigError::Missing`] when an explicit `path` does not exist; [`ConfigError::Invalid`]
/// for unknown keys, wrong types or TOML syntax errors.
pub fn load<T>(path: Option<&Path>, section: &str) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let file = match path {
        Some(path) if !path.exists() => return Err(ConfigError::Missing(path.to_owned())),
        Some(path) => Some(path.to_owned()),
        None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
    };
    let mut figment = Figment::new().merge(Serialized::default(section, T::default()));
    if let Some(file) = file {
        figment = figment.merge(Toml::file_exact(file));
    }
    figment
        .merge(Env::prefixed(ENV_PREFIX).split("__"))
        .extract_inner(section)
        .map_err(|e| ConfigError::Invalid(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, Serialize, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Demo {
        bind: String,
        limit_bytes: u64,
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure returns figment::Error
    fn file_beats_defaults_and_environment_beats_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[demo]\nbind = \"file\"\nlimit_bytes = 5\n[other]\nx = 1\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            let demo: Demo = load(Some(&path), "demo").unwrap();
            assert_eq!(
                demo,
                Demo {
                    bind: "file".into(),
                    limit_bytes: 5
                }
            );
            jail.set_env("LAKEHOUSE_DEMO__LIMIT_BYTES", "7");
            let demo: Demo = load(Some(&path), "demo").unwrap();
            assert_eq!(demo.limit_bytes, 7);
            assert_eq!(demo.bind, "file");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_missing_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[demo]\nbnd = \"typo\"\n").unwrap();
        assert!(matches!(
            load::<Demo>(Some(&path), "demo"),
            Err(ConfigError::Invalid(_))
        ));
        let missing = dir.path().join("nope.toml");
        assert!(matches!(
            load::<Demo>(Some(&missing), "demo"),
            Err(ConfigError::Missing(_))
        ));
    }
}
