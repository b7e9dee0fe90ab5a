//! The one table from [`CatalogError`] to HTTP status and error code (docs/contract.md section 6).

use lakehouse_api::ErrorCode;
use lakehouse_catalog::{CatalogError, StoreError, error_chain};
use lakehouse_server::ApiError;
use serde_json::json;

/// `Retry-After` seconds of the 503s: a lost commit race or storaged not answering.
const RETRY_AFTER_SECS: u64 = 1;

/// Maps a catalog error to its HTTP answer in one exhaustive `match` (no `_` arm, so a new
/// variant cannot silently become a 500).
///
/// `not_found` 404, `gone` 410 (a version past retention), `fingerprint_mismatch` / `invalid_object` / `invalid_request` 400,
/// `schema_drift` 409 with the [`lakehouse_api::SchemaDriftDetails`] as `details`,
/// `unavailable` 503 (storaged down, lost races), `upstream_error` 502 (storaged failed or
/// holds a corrupt manifest), `internal` 500.
pub fn api_error(error: CatalogError) -> ApiError {
    let message = error_chain(&error);
    match error {
        CatalogError::NotFound { name } => {
            ApiError::with_details(ErrorCode::NotFound, message, json!({ "name": name }))
        }
        CatalogError::VersionNotFound { name, version } => ApiError::with_details(
            ErrorCode::NotFound,
            message,
            json!({ "name": name, "version": version }),
        ),
        CatalogError::Gone { name, version } => ApiError::with_details(
            ErrorCode::Gone,
            message,
            json!({ "name": name, "version": version }),
        ),
        CatalogError::FingerprintMismatch { declared, computed } => ApiError::with_details(
            ErrorCode::FingerprintMismatch,
            message,
            json!({ "declared": declared, "computed": computed }),
        ),
        CatalogError::InvalidObject { key, reason } => ApiError::with_details(
            ErrorCode::InvalidObject,
            message,
            json!({ "key": key, "reason": reason }),
        ),
        CatalogError::InvalidRequest(_) => ApiError::new(ErrorCode::InvalidRequest, message),
        CatalogError::SchemaDrift { details, .. } => ApiError::with_details(
            ErrorCode::SchemaDrift,
            message,
            serde_json::to_value(&*details).unwrap_or_default(),
        ),
        CatalogError::Conflict { .. } => {
            ApiError::new(ErrorCode::Unavailable, message).retry_after(RETRY_AFTER_SECS)
        }
        CatalogError::CompactionConflict { name, key } => ApiError::with_details(
            ErrorCode::Conflict,
            message,
            json!({ "name": name, "key": key }),
        ),
        CatalogError::PartitionSpecMismatch {
            name,
            recorded,
            requested,
        } => ApiError::with_details(
            ErrorCode::PartitionSpecMismatch,
            message,
            json!({ "name": name, "recorded": recorded, "requested": requested }),
        ),
        CatalogError::KeyMismatch {
            name,
            recorded,
            requested,
        } => ApiError::with_details(
            ErrorCode::KeyMismatch,
            message,
            json!({ "name": name, "recorded": recorded, "requested": requested }),
        ),
        CatalogError::StaleBase { name, base, latest } => ApiError::with_details(
            ErrorCode::Conflict,
            message,
            json!({ "name": name, "base_version": base, "latest_version": latest }),
        ),
        CatalogError::CorruptManifest { key, .. } => {
            ApiError::with_details(ErrorCode::UpstreamError, message, json!({ "key": key }))
        }
        CatalogError::TableMetadata { name, version, .. } => ApiError::with_details(
            ErrorCode::Unavailable,
            message,
            json!({ "name": name, "version": version }),
        )
        .retry_after(RETRY_AFTER_SECS),
        CatalogError::Encode(_) => ApiError::new(ErrorCode::Internal, message),
        CatalogError::Store(StoreError::Unavailable(_)) => {
            ApiError::new(ErrorCode::Unavailable, message).retry_after(RETRY_AFTER_SECS)
        }
        CatalogError::Store(StoreError::Failed(_)) => {
            ApiError::new(ErrorCode::UpstreamError, message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use lakehouse_api::{ColumnType, DatasetName, Field, Schema, SchemaDriftDetails};

    #[test]
    fn drift_is_a_409_with_the_diff_as_details() {
        let current = Schema {
            fields: vec![Field::new("a", ColumnType::Int64)],
        };
        let attempted = Schema {
            fields: vec![Field::new("b", ColumnType::Int64)],
        };
        let details = SchemaDriftDetails::between(&current, &attempted);
        let error = api_error(CatalogError::SchemaDrift {
            details: Box::new(details.clone()),
            evolvable: false,
        });
        assert_eq!(error.code().status(), StatusCode::CONFLICT);
        assert_eq!(
            error.body.error.details,
            serde_json::to_value(&details).unwrap()
        );
        assert_eq!(error.body.error.details["added"], json!(["b"]));
    }

    #[test]
    fn statuses_follow_the_table() {
        let name = DatasetName::new("d").unwrap();
        let cases = [
            (CatalogError::NotFound { name: name.clone() }, 404),
            (
                CatalogError::VersionNotFound {
                    name: name.clone(),
                    version: 3,
                },
                404,
            ),
            (
                CatalogError::FingerprintMismatch {
                    declared: lakehouse_api::fingerprint_of_pairs([("x", "int64")]),
                    computed: lakehouse_api::fingerprint_of_pairs([("y", "int64")]),
                },
                400,
            ),
            (
                CatalogError::Gone {
                    name: name.clone(),
                    version: 1,
                },
                410,
            ),
            (CatalogError::InvalidRequest("no objects".into()), 400),
            (CatalogError::Conflict { name, attempts: 16 }, 503),
            (CatalogError::Store(StoreError::unavailable("down")), 503),
            (CatalogError::Store(StoreError::failed("broken")), 502),
            (
                CatalogError::CorruptManifest {
                    key: "k".into(),
                    reason: "r".into(),
                },
                502,
            ),
        ];
        for (error, status) in cases {
            let error = api_error(error);
            assert_eq!(error.code().status().as_u16(), status, "{:?}", error.body);
        }
    }

    #[test]
    fn store_messages_carry_their_source() {
        let error = api_error(CatalogError::Store(StoreError::unavailable(
            "connection refused",
        )));
        assert!(error.body.error.message.contains("connection refused"));
        assert_eq!(error.retry_after_secs, Some(RETRY_AFTER_SECS));
    }
}
