//! Strict options (docs/contract.md section 14): a query parameter or JSON field an endpoint does not
//! know is a 400 `invalid_option` naming it and the closest known one, before a byte of the
//! body is read.
//!
//! [`crate::ApiQuery`] and [`crate::ApiJson`] apply [`check_known`] to the fields of the type
//! they deserialize (found by [`field_names`]), so a handler using them is strict with no code
//! of its own. A handler that reads its options some other way calls [`check_known`] (or
//! [`unknown_option`]) itself.

use crate::ApiError;
use lakehouse_api::ErrorCode;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// How alike two names must be (Jaro similarity, 0 to 1) for one to be suggested for the
/// other: clap's threshold for its own "did you mean", so the CLI and the services suggest
/// the same names.
const SUGGESTION_THRESHOLD: f64 = 0.7;

/// The known name most like `given` (Jaro similarity above 0.7, the earliest of equals), or
/// `None` when none is close.
pub fn closest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    let mut best: Option<(f64, &'a str)> = None;
    for &candidate in known {
        let score = strsim::jaro(given, candidate);
        if score > SUGGESTION_THRESHOLD && best.is_none_or(|(top, _)| score > top) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, name)| name)
}

/// The message of an unknown option: ``unknown option `null_value`; did you mean
/// `null_values`?`` when one is close, else ``unknown option `x`; known options: `a`, `b` ``.
pub fn unknown_option_message(given: &str, known: &[&str]) -> String {
    match closest(given, known) {
        Some(suggestion) => format!("unknown option `{given}`; did you mean `{suggestion}`?"),
        None if known.is_empty() => format!("unknown option `{given}`; this takes no options"),
        None => {
            let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown option `{given}`; known options: {}",
                list.join(", ")
            )
        }
    }
}

/// A 400 `invalid_option` for the unknown option `given`, with [`unknown_option_message`] and
/// `details` `{"option": given, "did_you_mean": <closest or null>, "known": [...]}`.
pub fn unknown_option(given: &str, known: &[&str]) -> ApiError {
    ApiError::with_details(
        ErrorCode::InvalidOption,
        unknown_option_message(given, known),
        serde_json::json!({
            "option": given,
            "did_you_mean": closest(given, known),
            "known": known,
        }),
    )
}

/// Checks every name in `given` (query parameter names, JSON object keys) against `known`.
///
/// # Errors
/// [`unknown_option`] for the first name not in `known`.
pub fn check_known<'a>(
    given: impl IntoIterator<Item = &'a str>,
    known: &[&str],
) -> Result<(), ApiError> {
    match given.into_iter().find(|name| !known.contains(name)) {
        Some(unknown) => Err(unknown_option(unknown, known)),
        None => Ok(()),
    }
}

/// The query of a route that takes no options: through [`crate::ApiQuery`], any parameter is
/// a 400 `invalid_option` naming it ("this takes no options").
#[derive(Debug, Default, Deserialize)]
pub struct NoOptions {}

/// The field names a `Deserialize` struct accepts, as serde's derive declares them (renames
/// applied; aliases not included), or `None` for a type that is not a plain struct (a map,
/// an enum, a struct with a `#[serde(flatten)]` field): those cannot be checked this way.
pub fn field_names<'de, T: Deserialize<'de>>() -> Option<&'static [&'static str]> {
    let mut fields = None;
    let _ = T::deserialize(Introspect(&mut fields));
    fields
}

/// A deserializer that only records the field list serde's derive passes to
/// `deserialize_struct`, then fails.
struct Introspect<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Introspect<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("introspected"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Params {
        name: Option<String>,
        null_values: Option<String>,
        #[serde(rename = "pageToken")]
        page_token: Option<String>,
    }

    #[test]
    fn the_fields_of_a_struct_are_found() {
        assert_eq!(
            field_names::<Params>(),
            Some(&["name", "null_values", "pageToken"][..])
        );
        assert_eq!(
            field_names::<std::collections::HashMap<String, String>>(),
            None
        );
    }

    #[test]
    fn the_closest_name_is_suggested() {
        let known = ["name", "mode", "null_values", "delimiter", "encoding"];
        assert_eq!(
            unknown_option_message("null_value", &known),
            "unknown option `null_value`; did you mean `null_values`?"
        );
        assert_eq!(closest("nme", &known), Some("name"));
        assert_eq!(closest("delimter", &known), Some("delimiter"));
        assert_eq!(closest("zzzzzz", &known), None);
        assert_eq!(
            unknown_option_message("zzzzzz", &["a", "b"]),
            "unknown option `zzzzzz`; known options: `a`, `b`"
        );
    }

    #[test]
    fn check_known_names_the_first_unknown() {
        let known = ["prefix", "limit"];
        assert!(check_known(["prefix", "limit"], &known).is_ok());
        let error = check_known(["limit", "prefx"], &known).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidOption);
        assert_eq!(error.body.error.details["option"], "prefx");
        assert_eq!(error.body.error.details["did_you_mean"], "prefix");
    }
}
