//! Where a partitioned pass 2 puts the rows of partitions too small to be worth a row group
//! when its memory budget is reached (docs/decisions.md, "Partitioned writes"): Arrow IPC
//! files in a spill directory, one per spill (a "run"), each partition's rows of that spill
//! as one record batch. A partition's spilled batches are read back, in order, when it is
//! next written out; a run's file is removed once every batch in it was read back.
//!
//! Why files per spill and not per partition: a spill touches up to thousands of
//! partitions, and one file written front to back costs one open, where a file per
//! partition would cost one each. At most [`MAX_LIVE_RUNS`] runs are kept: past that, the
//! caller writes out the partitions of the oldest ([`Spill::over_limit`]), so the open
//! readers, their memory and the files stay bounded whatever the input.

use crate::error::{ConvertError, Result};
use arrow_array::RecordBatch;
use arrow_ipc::reader::FileReader;
use arrow_ipc::writer::FileWriter;
use arrow_schema::SchemaRef;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;

/// Where one spilled batch is: its run and its index in the run's file.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spilled {
    run: u32,
    index: u32,
}

/// Runs kept at once, at most: each may hold an open reader (a descriptor, its buffer and
/// the list of its batches) until all of it is read back.
pub const MAX_LIVE_RUNS: usize = 32;

/// A run's file, the reader once one of its batches is read back, how many of its batches
/// are still to be, and the partitions it holds batches of.
struct Run {
    path: PathBuf,
    reader: Option<FileReader<BufReader<File>>>,
    left: usize,
    partitions: Vec<usize>,
}

/// The spill directory's runs.
pub(crate) struct Spill {
    dir: PathBuf,
    arrow: SchemaRef,
    runs: HashMap<u32, Run>,
    next_run: u32,
}

fn arrow_error(e: arrow_schema::ArrowError) -> ConvertError {
    ConvertError::Parquet(format!("spilled rows: {e}"))
}

impl Spill {
    /// Runs go into `dir`, which exists and which the caller removes.
    pub(crate) fn new(dir: PathBuf, arrow: SchemaRef) -> Self {
        Spill {
            dir,
            arrow,
            runs: HashMap::new(),
            next_run: 0,
        }
    }

    /// Writes one run: each of `batches` as one record batch (a partition's rows, the
    /// caller's order). Returns where each went, in the same order.
    ///
    /// # Errors
    /// `Io` when the file cannot be written, `Parquet` from the IPC writer.
    pub(crate) fn write(&mut self, batches: &[(usize, RecordBatch)]) -> Result<Vec<Spilled>> {
        let run = self.next_run;
        self.next_run += 1;
        let path = self.dir.join(format!("run-{run}.arrow"));
        let file = BufWriter::new(File::create(&path).map_err(ConvertError::Io)?);
        let mut writer = FileWriter::try_new(file, &self.arrow).map_err(arrow_error)?;
        let mut placed = Vec::with_capacity(batches.len());
        for (index, (_, batch)) in batches.iter().enumerate() {
            writer.write(batch).map_err(arrow_error)?;
            placed.push(Spilled {
                run,
                index: index as u32,
            });
        }
        writer.finish().map_err(arrow_error)?;
        self.runs.insert(
            run,
            Run {
                path,
                reader: None,
                left: batches.len(),
                partitions: batches.iter().map(|(p, _)| *p).collect(),
            },
        );
        Ok(placed)
    }

    /// When more than [`MAX_LIVE_RUNS`] runs are live: the partitions the oldest holds
    /// batches of, for the caller to write out (which reads the run back, whole, and so
    /// removes it). `None` otherwise.
    pub(crate) fn over_limit(&self) -> Option<Vec<usize>> {
        if self.runs.len() <= MAX_LIVE_RUNS {
            return None;
        }
        let oldest = self.runs.keys().min()?;
        self.runs.get(oldest).map(|run| run.partitions.clone())
    }

    /// Reads `at` back; removes its run's file once nothing of it is left to read.
    ///
    /// # Errors
    /// `Io`, `Parquet` from the IPC reader, or when `at` is not a batch of a live run.
    pub(crate) fn read(&mut self, at: Spilled) -> Result<RecordBatch> {
        let gone = || ConvertError::Parquet(format!("spilled run {} is gone", at.run));
        let run = self.runs.get_mut(&at.run).ok_or_else(gone)?;
        if run.reader.is_none() {
            let file = File::open(&run.path).map_err(ConvertError::Io)?;
            run.reader = Some(FileReader::try_new_buffered(file, None).map_err(arrow_error)?);
        }
        let reader = run.reader.as_mut().ok_or_else(gone)?;
        reader.set_index(at.index as usize).map_err(arrow_error)?;
        let batch = reader.next().ok_or_else(gone)?.map_err(arrow_error)?;
        run.left -= 1;
        if run.left == 0 {
            let path = run.path.clone();
            self.runs.remove(&at.run);
            std::fs::remove_file(path).map_err(ConvertError::Io)?;
        }
        Ok(batch)
    }
}
