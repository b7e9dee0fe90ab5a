//! The catalog's error enum: what a caller (catalogd's error table, a test) can act on.

use lakehouse_api::{DatasetName, ObjectKey, SchemaDriftDetails, SchemaFingerprint};

/// Boxed source error of a [`StoreError`].
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of the [`crate::ManifestStore`] underneath the catalog.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer (connection refused, timeout, 503): retrying later may work.
    #[error("manifest store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The store answered with an error the catalog cannot act on.
    #[error("manifest store failed")]
    Failed(#[source] BoxError),
}

impl StoreError {
    /// A [`StoreError::Unavailable`] from any error or message.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(source.into())
    }

    /// A [`StoreError::Failed`] from any error or message.
    pub fn failed(source: impl Into<BoxError>) -> Self {
        StoreError::Failed(source.into())
    }
}

/// Everything [`crate::Catalog`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The dataset has no version.
    #[error("dataset {name} not found")]
    NotFound {
        /// The dataset asked for.
        name: DatasetName,
    },
    /// The dataset exists but not at this version.
    #[error("dataset {name} has no version {version}")]
    VersionNotFound {
        /// The dataset asked for.
        name: DatasetName,
        /// The version asked for.
        version: u64,
    },
    /// The version exists but is past retention (`retain_versions` / `retain_ms`, docs/decisions.md, "Garbage collection and retention"):
    /// its manifest is kept, its objects may already be garbage collected.
    #[error("version {version} of {name} is past retention")]
    Gone {
        /// The dataset asked for.
        name: DatasetName,
        /// The version asked for.
        version: u64,
    },
    /// A register request whose `schema_fingerprint` is not the fingerprint of its `schema`
    /// (docs/contract.md section 6).
    #[error("schema_fingerprint {declared} is not the fingerprint of the schema ({computed})")]
    FingerprintMismatch {
        /// The request's `schema_fingerprint`.
        declared: SchemaFingerprint,
        /// `schema.fingerprint()`.
        computed: SchemaFingerprint,
    },
    /// A register request naming an object with a key outside the dataset's content-addressed
    /// layout, or one the store does not hold with the stated size (docs/contract.md section 2,
    /// invariant 7), or whose partition tuple does not fit the partition spec: of another
    /// width, or a value not of its field's type (docs/contract.md section 10).
    #[error("object {key}: {reason}")]
    InvalidObject {
        /// The object's key.
        key: ObjectKey,
        /// What is wrong with it.
        reason: String,
    },
    /// A register request that is not of the documented shape (no objects, duplicates, ...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The request's schema differs from the latest version's (docs/contract.md section 2,
    /// invariant 2): nothing was written.
    /// `evolvable`: the request's schema only adds columns after the latest one's, so
    /// `schema_evolution: "add_columns"` would have accepted it (the message says so).
    #[error(
        "schema drift: dataset has schema {}, the request has {}{}",
        .details.current_fingerprint,
        .details.attempted_fingerprint,
        if *.evolvable { "; it only adds columns at the end, which schema_evolution=add_columns accepts" } else { "" }
    )]
    SchemaDrift {
        /// The diff.
        details: Box<SchemaDriftDetails>,
        /// Whether `schema_evolution: "add_columns"` would have accepted the change.
        evolvable: bool,
    },
    /// Other committers won the race for the next version [`crate::MAX_COMMIT_ATTEMPTS`]
    /// times in a row; nothing was written and retrying is safe.
    #[error("gave up committing a version of {name} after {attempts} lost races")]
    Conflict {
        /// The dataset.
        name: DatasetName,
        /// How many create-only puts were refused.
        attempts: u32,
    },
    /// A compaction's input is no longer live in the latest version (a replace removed it
    /// meanwhile): nothing was written (docs/contract.md section 10).
    #[error(
        "compaction of {name} lost its input {key}: it is no longer live in the latest version; nothing was committed"
    )]
    CompactionConflict {
        /// The dataset.
        name: DatasetName,
        /// The first replaced object that is not live.
        key: ObjectKey,
    },
    /// A register whose partition spec is not the dataset's (docs/contract.md section 10):
    /// nothing was written.
    #[error(
        "dataset {name} is partitioned by {}, the request by {}; a dataset keeps the partition_by it was made with",
        lakehouse_api::partition_by_text(.recorded.as_deref()),
        lakehouse_api::partition_by_text(.requested.as_deref())
    )]
    PartitionSpecMismatch {
        /// The dataset.
        name: DatasetName,
        /// The dataset's canonical `partition_by`, `None` when unpartitioned.
        recorded: Option<String>,
        /// The request's, `None` when unpartitioned.
        requested: Option<String>,
    },
    /// A merge or delete naming other key columns than the dataset's recorded key
    /// (docs/contract.md section 11): nothing was written.
    #[error(
        "dataset {name} has the key ({}), the request names ({}); a dataset keeps the key its first merge declared",
        .recorded.join(", "),
        .requested.join(", ")
    )]
    KeyMismatch {
        /// The dataset.
        name: DatasetName,
        /// The recorded key columns.
        recorded: Vec<String>,
        /// The request's.
        requested: Vec<String>,
    },
    /// A merge or delete planned on a version that is no longer the latest
    /// (docs/contract.md section 11): nothing was written; plan again on the latest.
    #[error(
        "{name}'s merge was planned on version {base}, but version {latest} is the latest now; nothing was committed"
    )]
    StaleBase {
        /// The dataset.
        name: DatasetName,
        /// The version the request was planned on.
        base: u64,
        /// The latest version (0: none).
        latest: u64,
    },
    /// A stored manifest that does not parse or does not match its key.
    #[error("corrupt manifest {key}: {reason}")]
    CorruptManifest {
        /// The manifest's key in the store.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A manifest could not be encoded as JSON (a bug).
    #[error("cannot encode manifest")]
    Encode(#[source] serde_json::Error),
    /// The Iceberg projection of a version failed (an invalid key or a render error; an
    /// unreadable footer is not one); the version itself is committed, and a retry of the
    /// same register heals the metadata (docs/contract.md section 8).
    #[error("iceberg metadata of version {version} of {name}: {reason}")]
    TableMetadata {
        /// The dataset.
        name: DatasetName,
        /// The committed version.
        version: u64,
        /// What failed.
        reason: String,
    },
    /// The store underneath failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Result` with [`CatalogError`].
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

pub use lakehouse_api::error_chain;
