//! The `catalogd` binary: config, tracing, bind, open the catalog, serve until SIGTERM.

use anyhow::Context;
use catalogd::{AppState, Config, STORAGED_WAIT};
use clap::Parser;
use lakehouse_server::{Cli, config, init_tracing, shutdown_signal};
use tokio::net::TcpListener;

/// jemalloc (tikv-jemallocator; one arena per CPU, compiled in by `.cargo/config.toml`:
/// docs/decisions.md, "One file on many cores") as catalogd's allocator, as in ingestd and
/// storaged: a register of a partitioned upload parses hundreds of footers and renders an
/// Avro manifest entry per file, small allocations freed as fast as they are made, on
/// several runtime threads; with glibc's allocator a quarter of catalogd's CPU in that
/// register went to `malloc` and `free`, and arenas grew with `mprotect`
/// (docs/performance.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config: Config = config::load(cli.config.as_deref(), "catalogd")?;
    init_tracing();
    tracing::info!(?config, "starting catalogd");
    let listener = TcpListener::bind(&config.bind)
        .await
        .with_context(|| format!("binding {}", config.bind))?;
    let (catalog, location) =
        catalogd::open_catalog(&config.storaged_url, &config.service_token, STORAGED_WAIT)
            .await
            .map_err(|error| {
                let chain = lakehouse_catalog::error_chain(&error);
                tracing::error!(error = %chain, "cannot start");
                anyhow::anyhow!(chain)
            })?;
    catalog.heal_table_metadata().await;
    let state = AppState::new(catalog, &config).with_storage(location);
    catalogd::run(listener, state, shutdown_signal()).await?;
    tracing::info!("catalogd stopped");
    Ok(())
}
