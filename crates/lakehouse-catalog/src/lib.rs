//! The catalog's domain logic (docs/contract.md sections 2 and 6): versioned manifests, the
//! in-memory index that serves lookups, the schema drift check and the commit protocol that
//! makes `register` the one atomic, race-safe gate of a dataset.
//!
//! The catalog runs over a [`ManifestStore`]: create-only puts, gets, listings and object
//! sizes. catalogd implements it over storaged's HTTP client; [`MemoryStore`] implements it in
//! memory for tests. Every version is an immutable record
//! `_catalog/datasets/<name>/<version as 20 digits>.json`, written create-only, naming the
//! objects it adds and removes, with a checkpoint of the whole object list every
//! [`CHECKPOINT_INTERVAL`] versions (`record.rs`), so a commit costs what it changes, the
//! store is the one source of truth and the index can always be rebuilt from it
//! ([`Catalog::open`]).
//!
//! Old versions past a [`RetentionPolicy`] answer [`CatalogError::Gone`];
//! [`Catalog::collect_garbage`] deletes objects under `datasets/` that no retained version
//! references once they are older than a grace period (docs/decisions.md, "Garbage collection and retention").
//!
//! Not here: HTTP (routes, status codes, clients) and anything about CSV or Parquet bytes.

mod catalog;
mod commit;
mod error;
pub mod footer;
mod gc;
mod history;
mod record;
mod retention;
mod store;
mod table;

#[cfg(test)]
mod gc_tests;
#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod record_tests;
#[cfg(test)]
mod tests;

pub use catalog::{Catalog, manifest_prefix};
pub use commit::{MAX_COMMIT_ATTEMPTS, RegisterOutcome};
pub use error::{CatalogError, Result, StoreError, error_chain};
pub use gc::{DATA_PREFIX, GcOptions};
pub use record::CHECKPOINT_INTERVAL;
pub use retention::RetentionPolicy;
pub use store::{ManifestStore, MemoryStore, PutOutcome, StoredObject};
