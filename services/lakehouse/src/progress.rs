//! The progress displays: for `ingest`, an indicatif bar (bytes, rate, time left) while the
//! file is sent, then a spinner while ingestd converts and commits; for `load`, a bar over
//! the load's bytes with its files done. Drawn only when stderr is a terminal; piped or
//! redirected, nothing is drawn.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lakehouse_api::LoadGetResponse;
use std::io::IsTerminal;
use std::time::Duration;

/// Tick of the spinner while the server works, and of the bar's redraws.
const TICK: Duration = Duration::from_millis(120);

/// The progress of one upload of `total` bytes.
#[derive(Debug, Clone)]
pub struct UploadProgress {
    bar: ProgressBar,
    total: u64,
}

impl UploadProgress {
    /// A bar for an upload of `total` bytes on stderr, hidden unless stderr is a terminal.
    pub fn new(total: u64) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // The template is a constant known to parse; fall back to the default bar otherwise.
        // The bar takes the width the terminal leaves (`wide_bar`), so the line fits: at
        // most 58 columns of text besides it.
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("uploading");
        UploadProgress { bar, total }
    }

    /// `chunks`, counting each chunk into the bar; once `total` bytes went by, the bar turns
    /// into the "processing" spinner.
    pub fn track(
        &self,
        chunks: impl Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    ) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
        let progress = self.clone();
        chunks.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                progress.bar.inc(chunk.len() as u64);
                if progress.bar.position() >= progress.total {
                    progress.processing();
                }
            }
        })
    }

    /// Switches to the spinner of the server's phase (idempotent).
    fn processing(&self) {
        // `wide_msg` is cut to the terminal's width.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {wide_msg}") {
            self.bar.set_style(style);
        }
        self.bar.set_message(format!(
            "sent {}; ingestd is converting and committing",
            indicatif::HumanBytes(self.total)
        ));
        self.bar.enable_steady_tick(TICK);
        self.bar.tick();
    }

    /// Removes the bar from the terminal (whatever the outcome).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The progress of one load: bytes done of the matched files' total, and files done.
#[derive(Debug)]
pub struct LoadProgress {
    bar: ProgressBar,
}

impl LoadProgress {
    /// A bar on stderr, hidden unless stderr is a terminal.
    pub fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(0), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("listing");
        LoadProgress { bar }
    }

    /// Whether the bar is drawn (stderr is a terminal).
    pub fn is_drawn(&self) -> bool {
        !self.bar.is_hidden()
    }

    /// Shows where `load` stands.
    pub fn show(&self, load: &LoadGetResponse) {
        self.bar.set_length(load.bytes_total);
        self.bar.set_position(load.bytes_done);
        self.bar
            .set_message(format!("files {}/{}", load.files_done, load.files_total));
    }

    /// Removes the bar from the terminal.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
