//! The one test that a service's built-in configuration defaults equal the checked-in
//! `config/lakehouse.toml` (docs/contract.md section 7; STYLE.md, "Config").

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

/// The checked-in `config/lakehouse.toml` at the workspace root.
pub const CHECKED_IN_CONFIG: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../config/lakehouse.toml");

/// Asserts that section `section` of the checked-in config file, read alone (no defaults
/// underneath, no environment on top), spells out every field of `T` with the value of
/// `T::default()`, and that it loads as a `T` equal to the defaults. A key missing from the
/// file, an extra or misspelt one, or a value that differs fails it, naming the section.
///
/// # Panics
/// When the file does not parse, the section is missing, or it differs from the defaults:
/// that is the assertion.
pub fn assert_defaults_equal_checked_in<T>(section: &str)
where
    T: Serialize + DeserializeOwned + Default + PartialEq + Debug,
{
    let file = Figment::from(Toml::file_exact(CHECKED_IN_CONFIG));
    let in_file: serde_json::Value = file
        .extract_inner(section)
        .unwrap_or_else(|e| panic!("[{section}] of {CHECKED_IN_CONFIG}: {e}"));
    // The defaults through the same figment value model as the file (so `None` fields and
    // integer widths compare the same way).
    let defaults: serde_json::Value = Figment::from(Serialized::defaults(T::default()))
        .extract()
        .unwrap_or_else(|e| panic!("the defaults of [{section}] do not serialize: {e}"));
    assert_eq!(
        in_file, defaults,
        "[{section}] of {CHECKED_IN_CONFIG} (left) is not the built-in defaults (right), key for key"
    );
    let loaded: T = file
        .extract_inner(section)
        .unwrap_or_else(|e| panic!("[{section}] of {CHECKED_IN_CONFIG} does not load: {e}"));
    assert_eq!(loaded, T::default(), "[{section}] loaded from the file");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct OneKeyTooMany {
        bind: String,
        not_in_any_file_bytes: u64,
    }

    #[test]
    #[should_panic(expected = "key for key")]
    fn a_field_the_file_does_not_spell_out_fails() {
        assert_defaults_equal_checked_in::<OneKeyTooMany>("storaged");
    }
}
