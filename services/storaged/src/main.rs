//! The `storaged` binary: parse the command line, load the `[storaged]` config, open the
//! store, bind, serve until SIGTERM (docs/contract.md sections 6 and 7).

use anyhow::Context;
use clap::Parser;
use lakehouse_server::{Cli, config, init_tracing, shutdown_signal};
use storaged::{AppState, Config};
use tokio::net::TcpListener;

/// jemalloc (tikv-jemallocator; one arena per CPU, compiled in by `.cargo/config.toml`:
/// docs/decisions.md, "One file on many cores") as storaged's allocator, as in ingestd: an
/// upload's body arrives in chunks of up to 1 MiB that are hashed, written and freed one
/// after another; jemalloc serves the next one from the memory just freed, where glibc's
/// defaults returned it to the kernel and faulted in (and zeroed) fresh pages: 35,000 to
/// 57,000 page faults (140 to 230 MB) per GiB of CSV ingested, 2,800 with jemalloc
/// (docs/performance.md, "Allocation"). Its memory stays bounded by configuration
/// (docs/contract.md section 2, invariant 5): 17 to 18 MiB peak RSS in the benchmark.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let config: Config = config::load(cli.config.as_deref(), "storaged")?;
    tracing::info!(?config, "starting storaged");
    // Open the store before binding: once `listening on` is logged, requests can be served.
    let state = AppState::open(&config)
        .await
        .context("cannot open the object store")?;
    let listener = TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("cannot bind {}", config.bind))?;
    storaged::run(listener, state, shutdown_signal()).await?;
    tracing::info!("storaged stopped");
    Ok(())
}
