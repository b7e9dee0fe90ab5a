//! HTTP handlers, one module per resource.

pub mod admin;
pub mod cursor;
pub mod datasets;
pub mod iceberg;
pub mod loaded;
