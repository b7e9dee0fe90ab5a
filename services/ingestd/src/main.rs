//! `ingestd`: turns CSV uploads into typed, versioned Parquet datasets (docs/contract.md section 6).

use anyhow::Context;
use clap::Parser;
use lakehouse_server::{Cli, init_tracing, shutdown_signal};

/// jemalloc (tikv-jemallocator; one arena per CPU, compiled in by `.cargo/config.toml`:
/// docs/decisions.md, "One file on many cores") as ingestd's allocator. Pass 2 allocates
/// and frees blocks of hundreds of KiB to a few MiB per column every 8192 rows (record
/// batch buffers, Parquet pages) across threads for the whole upload; jemalloc reuses freed
/// memory (it returns dirty pages to the kernel after a 10 s decay, applied on later
/// allocator calls: there is no background thread), and its RSS showed no upward trend
/// through a 3 GiB ingest, as docs/contract.md section 2, invariant 5 (memory bounded by
/// configuration, not file size) asks. glibc's defaults fault in and zero those blocks
/// afresh every time; glibc with raised thresholds fragmented (RSS growing with the file);
/// mimalloc committed and re-faulted several times the live heap in huge pages, about 7%
/// slower. Measurements: docs/performance.md, "Allocation".
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
