//! Shared plumbing of the three services: configuration (file + environment), tracing,
//! the shutdown signal, `serve(listener, router, shutdown)`, the JSON error response and the
//! common layer stack (request ids, tracing spans, JSON fallbacks).
//!
//! Not for domain logic: a service's handlers, state and error enum live in the service.

pub mod auth;
pub mod config;
pub mod direct;
mod error;
pub mod metrics;
pub mod openapi;
pub mod options;
mod serve;
mod telemetry;
mod timeout;

pub use error::{ApiError, ApiJson, ApiQuery};
pub use serve::{
    DEFAULT_HEADER_READ_TIMEOUT, ServeOptions, common_layers, healthz, serve, serve_with,
    shutdown_signal,
};
pub use telemetry::init_tracing;
pub use timeout::request_timeout;

/// Command line shared by the three binaries.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// TOML config file (docs/contract.md section 7). Defaults to `config/lakehouse.toml` when that
    /// file exists, else the built-in defaults; `LAKEHOUSE_<SECTION>__<KEY>` variables win over
    /// both.
    #[arg(long, value_name = "PATH")]
    pub config: Option<std::path::PathBuf>,
}
