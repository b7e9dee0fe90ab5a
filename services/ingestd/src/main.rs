//! `ingestd`: turns CSV uploads into typed, versioned Parquet datasets (DESIGN.md section 6).

use anyhow::Context;
use clap::Parser;
use lakehouse_server::{Cli, init_tracing, shutdown_signal};

/// mimalloc instead of the system allocator: pass 2 allocates and frees record batches of
/// hundreds of KiB per column every 8192 rows, which glibc serves with fresh mappings (page
/// faults, and TLB shootdowns across the threads on every unmap); mimalloc reuses them
/// (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config: ingestd::Config = lakehouse_server::config::load(cli.config.as_deref(), "ingestd")
        .context("loading the [ingestd] configuration")?;
    let listener = tokio::net::TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let state = ingestd::AppState::new(config).context("starting ingestd")?;
    ingestd::run(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}
