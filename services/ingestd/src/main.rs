//! `ingestd`: turns CSV uploads into typed, versioned Parquet datasets (DESIGN.md section 6).

use anyhow::Context;
use clap::Parser;
use lakehouse_server::{Cli, init_tracing, shutdown_signal};

/// Blocks of at least this many bytes get their own `mmap` from glibc's `malloc`; none on
/// the ingest path is this big. See [`tune_malloc`].
const MMAP_THRESHOLD_BYTES: i32 = 64 << 20;

/// Free bytes at the top of a `malloc` heap past which glibc gives them back to the kernel.
/// See [`tune_malloc`].
const TRIM_THRESHOLD_BYTES: i32 = 64 << 20;

/// Sets glibc's `malloc` parameters for ingestd (`mallopt(3)`): [`MMAP_THRESHOLD_BYTES`] and
/// [`TRIM_THRESHOLD_BYTES`]. Returns the names of the parameters glibc refused (none on
/// glibc 2.17 and later); does nothing elsewhere than on Linux with glibc.
///
/// Why: by default glibc serves blocks of 128 KiB and more with fresh `mmap`s (until a free
/// raises that threshold) and returns the top of a heap to the kernel as soon as 128 KiB of
/// it are free. Pass 2 allocates and frees blocks of hundreds of KiB to a few MiB per column
/// every 8192 rows (record batch buffers, Parquet pages), so it would map, fault in, zero
/// and unmap the same memory over and over, and on this project's VMs a first touch costs
/// about 0.75 ms per MiB. With these bounds the heap is reused: a 1 GiB ingest faults in
/// about 60 MiB once (15,000 minor faults, against 75,000 to 110,000 with glibc's defaults,
/// and 200+ MiB of huge pages zeroed with mimalloc), 0.4 to 0.7 CPU s less, and its peak RSS
/// is about 70 MiB (docs/performance.md). Memory stays bounded by configuration: at most
/// [`TRIM_THRESHOLD_BYTES`] of freed memory is kept for reuse at the top of each heap.
fn tune_malloc() -> Vec<&'static str> {
    let mut refused = Vec::new();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (name, param, value) in [
        (
            "M_MMAP_THRESHOLD",
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD_BYTES,
        ),
        (
            "M_TRIM_THRESHOLD",
            libc::M_TRIM_THRESHOLD,
            TRIM_THRESHOLD_BYTES,
        ),
    ] {
        // SAFETY: `mallopt` only sets a parameter of glibc's allocator, under the
        // allocator's own lock; it touches no memory of ours and may be called at any time.
        #[allow(unsafe_code)]
        let accepted = unsafe { libc::mallopt(param, value) } == 1;
        if !accepted {
            refused.push(name);
        }
    }
    refused
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before the runtime starts its threads (and their heaps).
    let refused = tune_malloc();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?
        .block_on(serve(cli, refused))
}

async fn serve(cli: Cli, refused_malloc_params: Vec<&'static str>) -> anyhow::Result<()> {
    init_tracing();
    if !refused_malloc_params.is_empty() {
        tracing::warn!(
            params = ?refused_malloc_params,
            "glibc refused these malloc parameters; ingests will fault in more memory"
        );
    }
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

#[cfg(test)]
mod tests {
    /// glibc takes both parameters, so ingestd reuses its heap instead of faulting in fresh
    /// memory for every record batch (a refusal would only show as a slower ingest).
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_accepts_the_malloc_parameters() {
        assert_eq!(super::tune_malloc(), Vec::<&str>::new());
    }
}
