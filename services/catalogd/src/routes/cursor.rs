//! The list cursor of `GET /datasets` and `GET /ui` (docs/contract.md sections 6 and 14): opaque to
//! clients, the hex of the last name of the previous page (the Iceberg catalog's `pageToken`
//! is written the same way), so a cursor this catalog did not hand out is a 400 instead of
//! a silently empty page.

use lakehouse_api::DatasetName;

/// The cursor that continues a list after `last_name`.
pub fn encode(last_name: &str) -> String {
    hex::encode(last_name)
}

/// The name a cursor continues after.
///
/// # Errors
/// A message naming the cursor when it is not one [`encode`] makes (not hex, not UTF-8, not
/// a dataset name).
pub fn decode(cursor: &str) -> Result<String, String> {
    hex::decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|name| DatasetName::new(name.as_str()).is_ok())
        .ok_or_else(|| {
            format!("cursor {cursor:?} is not one this catalog handed out (its `next_cursor`)")
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cursor_round_trips_and_a_made_up_one_is_refused() {
        assert_eq!(super::decode(&super::encode("flights")).unwrap(), "flights");
        assert!(super::decode("zzz").is_err());
        assert!(super::decode("").is_err());
        assert!(super::decode(&hex::encode("../x")).is_err());
    }
}
