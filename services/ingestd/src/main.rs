//! `ingestd`: turns CSV uploads into typed, versioned Parquet datasets (DESIGN.md section 6).

use anyhow::Context;
use clap::Parser;
use lakehouse_server::{Cli, init_tracing, shutdown_signal};

/// jemalloc (tikv-jemallocator, default settings) as ingestd's allocator. Pass 2 allocates
/// and frees blocks of hundreds of KiB to a few MiB per column every 8192 rows (record batch
/// buffers, Parquet pages) across threads, for the whole upload; jemalloc keeps freed
/// memory for reuse (10 s decay) and does not fragment under that pattern, so a 1 GiB
/// ingest faults in about 90 MiB and peak RSS stays near 70 to 80 MiB at any file size.
/// Measured against it (docs/performance.md): glibc's defaults map and zero the big blocks
/// afresh every time (75,000 to 110,000 page faults per GiB); glibc with raised mmap and trim
/// thresholds is as fast but fragments (RSS creeping from 58 to 80 MiB through a 3 GiB
/// ingest while the live heap stays at 44 MiB); mimalloc committed about 230 MiB of huge
/// pages for that heap and purged and re-faulted 340 MiB more per GiB (8 to 9% slower).
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
