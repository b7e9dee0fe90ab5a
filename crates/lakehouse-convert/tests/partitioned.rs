//! The partitioned pass 2 (docs/contract.md section 10, "Partitioned datasets"): every file
//! holds one partition's rows in file order, the budget and the target size change only
//! where files and row groups are cut, never the rows, and the same input and
//! configuration give the same bytes.

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bytes::Bytes;
use lakehouse_api::{ColumnType, CsvOptions, Field, Schema, error_chain};
use lakehouse_convert::{
    BATCH_ROWS, ConvertError, Expected, PartitionSink, PartitionedConfig, Partitioner,
    write_parquet_partitioned,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};
use std::collections::BTreeMap;

/// Rows by `id % modulus`, numbered in order of first appearance, at most `max`.
struct ByModulus {
    modulus: i64,
    seen: BTreeMap<i64, u32>,
    /// The partition index of each residue, as assigned.
    max: usize,
}

impl Partitioner for ByModulus {
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> lakehouse_convert::Result<()> {
        out.clear();
        let ids = batch.column(0).as_primitive::<Int64Type>();
        for id in ids.values() {
            let residue = id.rem_euclid(self.modulus);
            let next = self.seen.len() as u32;
            let p = *self.seen.entry(residue).or_insert(next);
            if self.seen.len() > self.max {
                return Err(ConvertError::TooManyPartitions {
                    max: self.max as u64,
                });
            }
            out.push(p);
        }
        Ok(())
    }
}

/// Files kept in memory, by (partition, file number), with what `finish` said.
#[derive(Default)]
struct Memory {
    files: BTreeMap<(u32, u32), Vec<u8>>,
    finished: BTreeMap<(u32, u32), (u64, u64)>,
    /// The length of each file's footer (its last bytes).
    footers: BTreeMap<(u32, u32), usize>,
}

impl PartitionSink for Memory {
    fn append(&mut self, partition: u32, file: u32, bytes: &[u8]) -> std::io::Result<()> {
        assert!(
            !self.finished.contains_key(&(partition, file)),
            "appended after finish"
        );
        self.files
            .entry((partition, file))
            .or_default()
            .extend_from_slice(bytes);
        Ok(())
    }

    fn finish(
        &mut self,
        partition: u32,
        file: u32,
        footer: &[u8],
        size: u64,
        rows: u64,
    ) -> std::io::Result<()> {
        self.append(partition, file, footer)?;
        self.footers.insert((partition, file), footer.len());
        self.finished.insert((partition, file), (size, rows));
        Ok(())
    }
}

fn csv(rows: i64) -> Vec<u8> {
    let mut out = String::from("id,name\n");
    for id in 0..rows {
        out.push_str(&format!("{id},name-{}\n", id * 7919 % 1000));
    }
    out.into_bytes()
}

fn schema() -> Schema {
    Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Utf8),
        ],
    }
}

fn run(rows: i64, modulus: i64, config: PartitionedConfig) -> Memory {
    let mut partitioner = ByModulus {
        modulus,
        seen: BTreeMap::new(),
        max: 10_000,
    };
    let mut sink = Memory::default();
    let options = CsvOptions::default();
    let schema = schema();
    let output = write_parquet_partitioned(
        csv(rows).as_slice(),
        &options,
        Expected::Registered(&schema),
        &mut partitioner,
        &mut sink,
        config,
    )
    .expect("written")
    .expect("the schema holds")
    .output;
    assert_eq!(output.row_count, rows as u64);
    let total: u64 = sink.files.values().map(|f| f.len() as u64).sum();
    assert_eq!(output.size_bytes, total);
    sink
}

/// Each file's ids, and its number of row groups.
fn ids_of(file: &[u8]) -> (Vec<i64>, usize) {
    let bytes = Bytes::copy_from_slice(file);
    let groups = SerializedFileReader::new(bytes.clone())
        .expect("a Parquet file")
        .metadata()
        .num_row_groups();
    let mut ids = Vec::new();
    for batch in ParquetRecordBatchReaderBuilder::try_new(bytes)
        .expect("a Parquet file")
        .build()
        .expect("a reader")
    {
        ids.extend(
            batch
                .expect("a batch")
                .column(0)
                .as_primitive::<Int64Type>()
                .values(),
        );
    }
    (ids, groups)
}

/// Every partition's ids, its files read in order.
fn partitions(sink: &Memory) -> BTreeMap<u32, Vec<i64>> {
    let mut out: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for ((partition, _), file) in &sink.files {
        out.entry(*partition).or_default().extend(ids_of(file).0);
    }
    out
}

const ROOMY: PartitionedConfig = PartitionedConfig {
    buffer_bytes: 64 << 20,
    target_file_bytes: 128 << 20,
    spill_dir: None,
};

#[test]
fn each_partition_gets_its_rows_in_file_order() {
    let sink = run(50_000, 7, ROOMY);
    assert_eq!(sink.files.len(), 7, "one file per partition");
    for ((partition, file), bytes) in &sink.files {
        assert_eq!(
            sink.finished[&(*partition, *file)],
            (bytes.len() as u64, ids_of(bytes).0.len() as u64)
        );
    }
    for (partition, ids) in partitions(&sink) {
        // Partition indexes follow first appearance: id p is the first of residue p.
        let expected: Vec<i64> = (0..50_000)
            .filter(|id| id % 7 == i64::from(partition))
            .collect();
        assert_eq!(ids, expected);
    }
}

#[test]
fn a_tiny_budget_and_target_cut_row_groups_and_files_not_rows() {
    let tight = PartitionedConfig {
        buffer_bytes: 1,
        target_file_bytes: 4_000,
        spill_dir: None,
    };
    let cut = run(200_000, 7, tight.clone());
    assert!(cut.files.len() > 7, "files cut: {}", cut.files.len());
    assert_eq!(partitions(&cut), partitions(&run(200_000, 7, ROOMY)));
    // Every file is a whole Parquet file, cut at a row-group boundary past the target.
    for bytes in cut.files.values() {
        let (ids, groups) = ids_of(bytes);
        assert!(!ids.is_empty());
        assert!(groups >= 1);
    }
}

#[test]
fn the_same_input_and_configuration_give_the_same_bytes() {
    let config = PartitionedConfig {
        buffer_bytes: 100_000,
        target_file_bytes: 50_000,
        spill_dir: None,
    };
    assert_eq!(
        run(30_000, 13, config.clone()).files,
        run(30_000, 13, config).files
    );
}

#[test]
fn no_row_gives_one_empty_file_as_partition_zero() {
    let sink = run(0, 7, ROOMY);
    assert_eq!(sink.files.len(), 1);
    assert_eq!(sink.finished[&(0, 0)].1, 0);
    assert!(ids_of(&sink.files[&(0, 0)]).0.is_empty());
}

#[test]
fn an_inference_that_does_not_hold_is_not_proven() {
    // `name` guessed as int64: the first value refuses it.
    let guess = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("name", ColumnType::Int64),
        ],
    };
    let mut partitioner = ByModulus {
        modulus: 3,
        seen: BTreeMap::new(),
        max: 10,
    };
    let outcome = write_parquet_partitioned(
        csv(100).as_slice(),
        &CsvOptions::default(),
        Expected::Inferred(&guess),
        &mut partitioner,
        &mut Memory::default(),
        ROOMY,
    )
    .expect("no CSV error");
    assert!(outcome.is_none());
    // The right guess is proven.
    let proven = write_parquet_partitioned(
        csv(100).as_slice(),
        &CsvOptions::default(),
        Expected::Inferred(&schema()),
        &mut ByModulus {
            modulus: 3,
            seen: BTreeMap::new(),
            max: 10,
        },
        &mut Memory::default(),
        ROOMY,
    )
    .expect("no CSV error");
    assert_eq!(proven.expect("proven").output.row_count, 100);
}

#[test]
fn the_partitioners_refusal_stops_the_pass() {
    let mut partitioner = ByModulus {
        modulus: 100,
        seen: BTreeMap::new(),
        max: 10,
    };
    let result = write_parquet_partitioned(
        csv(1_000).as_slice(),
        &CsvOptions::default(),
        Expected::Registered(&schema()),
        &mut partitioner,
        &mut Memory::default(),
        ROOMY,
    );
    assert!(matches!(
        result,
        Err(ConvertError::TooManyPartitions { max: 10 })
    ));
}

#[test]
fn many_partitions_close_files_to_bound_their_metadata_without_changing_the_rows() {
    // 400 partitions and a 2 MiB budget: the open files' row-group metadata passes its
    // share (the budget again) long before any file nears the target size.
    let tight = PartitionedConfig {
        buffer_bytes: 2 << 20,
        target_file_bytes: 128 << 20,
        spill_dir: None,
    };
    let cut = run(400_000, 400, tight.clone());
    assert!(
        cut.files.len() > 400,
        "files closed early: {}",
        cut.files.len()
    );
    assert_eq!(partitions(&cut), partitions(&run(400_000, 400, ROOMY)));
}

#[test]
fn a_stamped_footer_names_the_upload_and_keeps_the_rows() {
    let sink = run(3_000, 3, ROOMY);
    let digest = "ab".repeat(32);
    for (at, file) in &sink.files {
        let mut file = file.clone();
        let footer_at = file.len() - sink.footers[at];
        lakehouse_convert::stamp_upload(&mut file[footer_at..], &digest).expect("stamped");
        let reader = SerializedFileReader::new(Bytes::from(file.clone())).expect("a Parquet file");
        let entries = reader
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .cloned()
            .unwrap_or_default();
        let named = entries
            .iter()
            .find(|e| e.key == lakehouse_convert::UPLOAD_KEY)
            .and_then(|e| e.value.clone());
        assert_eq!(named.as_deref(), Some(digest.as_str()));
        assert_eq!(ids_of(&file).0, ids_of(&sink.files[at]).0);
        // Stamped once: no placeholder is left to stamp.
        assert!(lakehouse_convert::stamp_upload(&mut file[footer_at..], &digest).is_err());
    }
    let (at, file) = sink.files.iter().next().expect("a file");
    let mut file = file.clone();
    let footer_at = file.len() - sink.footers[at];
    assert!(lakehouse_convert::stamp_upload(&mut file[footer_at..], "not hex").is_err());
    assert!(lakehouse_convert::stamp_upload(&mut file[..footer_at], &digest).is_err());
}

/// A fresh, empty directory under the system's temporary one.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

#[test]
fn small_partitions_spill_instead_of_making_tiny_row_groups() {
    // 2,000 partitions of 30 rows under a 1 MiB budget: without a spill directory the
    // budget makes row groups of a few rows and the metadata bound closes files; with one,
    // the small partitions' rows wait on disk and each partition is one file of one row
    // group, with the same rows in the same order.
    let tight = |spill_dir| PartitionedConfig {
        buffer_bytes: 1 << 20,
        target_file_bytes: 128 << 20,
        spill_dir,
    };
    let dir = scratch_dir("lakehouse-spill-test");
    let spilled = run(60_000, 2_000, tight(Some(dir.clone())));
    assert_eq!(spilled.files.len(), 2_000);
    assert!(spilled.files.values().all(|f| ids_of(f).1 == 1));
    assert_eq!(partitions(&spilled), partitions(&run(60_000, 2_000, ROOMY)));
    // Every run was read back and removed.
    assert_eq!(std::fs::read_dir(&dir).expect("the directory").count(), 0);
    let unspilled = run(60_000, 2_000, tight(None));
    assert!(unspilled.files.len() > 2_000, "{}", unspilled.files.len());
    assert_eq!(partitions(&unspilled), partitions(&spilled));
    // Spilling is deterministic too.
    assert_eq!(
        run(60_000, 2_000, tight(Some(dir.clone()))).files,
        spilled.files
    );
    std::fs::remove_dir_all(dir).expect("removed");
}

/// One large partition and 500 small ones, each small one getting about one row per 8,192
/// (ids divisible by 16 go to `1 + (id / 16) % 500`, the rest to the large one).
struct Skewed(BTreeMap<i64, u32>);

impl Partitioner for Skewed {
    fn assign(&mut self, batch: &RecordBatch, out: &mut Vec<u32>) -> lakehouse_convert::Result<()> {
        out.clear();
        for id in batch.column(0).as_primitive::<Int64Type>().values() {
            let value = if id % 16 == 0 { 1 + (id / 16) % 500 } else { 0 };
            let next = self.0.len() as u32;
            out.push(*self.0.entry(value).or_insert(next));
        }
        Ok(())
    }
}

/// A sink that keeps the files and watches how many spill runs are on disk.
struct Watching<'a> {
    memory: Memory,
    spill_dir: &'a std::path::Path,
    most_runs: usize,
}

impl PartitionSink for Watching<'_> {
    fn append(&mut self, partition: u32, file: u32, bytes: &[u8]) -> std::io::Result<()> {
        let runs = std::fs::read_dir(self.spill_dir)?.count();
        self.most_runs = self.most_runs.max(runs);
        self.memory.append(partition, file, bytes)
    }

    fn finish(
        &mut self,
        partition: u32,
        file: u32,
        footer: &[u8],
        size: u64,
        rows: u64,
    ) -> std::io::Result<()> {
        self.memory.finish(partition, file, footer, size, rows)
    }
}

#[test]
fn spill_runs_stay_few_when_small_partitions_fill_slowly() {
    // The flushes of the large partition spill the 500 small ones' few rows into runs of
    // their own, none of which is read back before the small ones reach 1,024 rows.
    const ROWS: i64 = 100 * 8_192;
    let dir = scratch_dir("lakehouse-spill-runs");
    let mut sink = Watching {
        memory: Memory::default(),
        spill_dir: &dir,
        most_runs: 0,
    };
    let output = write_parquet_partitioned(
        csv(ROWS).as_slice(),
        &CsvOptions::default(),
        Expected::Registered(&schema()),
        &mut Skewed(BTreeMap::new()),
        &mut sink,
        PartitionedConfig {
            buffer_bytes: 64 << 10,
            target_file_bytes: 128 << 20,
            spill_dir: Some(dir.clone()),
        },
    )
    .expect("written")
    .expect("the schema holds");
    assert_eq!(output.output.row_count, ROWS as u64);
    assert!(sink.most_runs > 2, "runs were spilled: {}", sink.most_runs);
    // Unbounded, this input keeps about 400 runs on disk by the end.
    assert!(
        sink.most_runs < 100,
        "{} runs on disk at once",
        sink.most_runs
    );
    assert!(sink.most_runs <= lakehouse_convert::MAX_SPILL_RUNS + 1);
    assert_eq!(std::fs::read_dir(&dir).expect("the directory").count(), 0);
    // Every row, once, each partition's in file order.
    let mut ids: Vec<i64> = Vec::new();
    for (_, rows) in partitions(&sink.memory) {
        assert!(rows.windows(2).all(|w| w[0] < w[1]));
        ids.extend(rows);
    }
    ids.sort_unstable();
    assert_eq!(ids, (0..ROWS).collect::<Vec<_>>());
    std::fs::remove_dir_all(dir).expect("removed");
}

/// Whether each column of `file`'s row groups starts with a dictionary page, by column
/// name: true only when every row group's chunk of it does.
fn dictionaries_of(file: &[u8]) -> BTreeMap<String, bool> {
    let reader = SerializedFileReader::new(Bytes::copy_from_slice(file)).expect("a Parquet file");
    let mut out = BTreeMap::new();
    for group in reader.metadata().row_groups() {
        for column in group.columns() {
            let has = column.dictionary_page_offset().is_some();
            *out.entry(column.column_path().string()).or_insert(has) &= has;
        }
    }
    out
}

/// `csv` under `schema`, partitioned by its first column modulo `modulus`.
fn written_by_modulus(
    csv: &str,
    schema: &Schema,
    modulus: i64,
    config: PartitionedConfig,
) -> Memory {
    let mut partitioner = ByModulus {
        modulus,
        seen: BTreeMap::new(),
        max: 10_000,
    };
    let mut sink = Memory::default();
    write_parquet_partitioned(
        csv.as_bytes(),
        &CsvOptions::default(),
        Expected::Registered(schema),
        &mut partitioner,
        &mut sink,
        config,
    )
    .expect("written")
    .expect("the schema holds");
    sink
}

#[test]
fn free_text_is_written_plain_and_strings_with_few_values_keep_their_dictionary() {
    // 6,000 notes of 37 bytes, all distinct: about 240 KiB of distinct values in the first
    // chunk, past one 128 KiB dictionary page. Four cities.
    let mut csv = String::from("id,city,note\n");
    for id in 0..6_000 {
        let city = ["Austin", "Boston", "Chicago", "Denver"][id % 4];
        csv.push_str(&format!("{id},{city},note number {id:08} of the upload\n"));
    }
    let schema = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("city", ColumnType::Utf8),
            Field::new("note", ColumnType::Utf8),
        ],
    };
    let sink = written_by_modulus(&csv, &schema, 50, ROOMY);
    assert_eq!(sink.files.len(), 50);
    for file in sink.files.values() {
        let dictionaries = dictionaries_of(file);
        assert!(dictionaries["city"], "{dictionaries:?}");
        assert!(!dictionaries["note"], "{dictionaries:?}");
    }
    // Ten distinct notes: the same column keeps its dictionary.
    let few: String = csv
        .lines()
        .enumerate()
        .map(|(i, line)| match i {
            0 => format!("{line}\n"),
            _ => {
                let (head, _) = line.rsplit_once(',').expect("three fields");
                format!("{head},note {}\n", i % 10)
            }
        })
        .collect();
    for file in written_by_modulus(&few, &schema, 50, ROOMY).files.values() {
        assert!(dictionaries_of(file)["note"]);
    }
}

#[test]
fn the_first_chunk_decides_the_dictionaries_of_every_file() {
    // Ten distinct notes in the first batch, distinct ones after it. A budget of 256 KiB
    // makes that batch the first chunk (cut once it holds a quarter of the budget).
    let mut csv = String::from("id,note\n");
    for id in 0..30_000 {
        match id {
            0..BATCH_ROWS => csv.push_str(&format!("{id},note {}\n", id % 10)),
            _ => csv.push_str(&format!("{id},note number {id:08} of the upload\n")),
        }
    }
    let schema = Schema {
        fields: vec![
            Field::new("id", ColumnType::Int64),
            Field::new("note", ColumnType::Utf8),
        ],
    };
    let config = PartitionedConfig {
        buffer_bytes: 256 << 10,
        ..ROOMY
    };
    let sink = written_by_modulus(&csv, &schema, 3, config);
    assert_eq!(sink.files.len(), 3);
    for file in sink.files.values() {
        // Every row group starts with a dictionary page, the later ones' too, though
        // their notes are all distinct (parquet then falls back to plain within them).
        assert!(dictionaries_of(file)["note"]);
    }
}

/// A sink that fails, or panics, at its `after`-th append and every later one to an odd
/// partition (those of one encoder thread; the other's still succeed).
struct Breaking {
    after: usize,
    appends: usize,
    panics: bool,
}

impl PartitionSink for Breaking {
    fn append(&mut self, partition: u32, _: u32, _: &[u8]) -> std::io::Result<()> {
        self.appends += 1;
        if self.appends < self.after || partition.is_multiple_of(2) {
            return Ok(());
        }
        assert!(!self.panics, "the sink panics");
        Err(std::io::Error::other("the sink is full"))
    }

    fn finish(
        &mut self,
        partition: u32,
        file: u32,
        footer: &[u8],
        _: u64,
        _: u64,
    ) -> std::io::Result<()> {
        self.append(partition, file, footer)
    }
}

#[test]
fn a_sink_that_fails_or_panics_stops_the_pass_with_an_error() {
    for panics in [false, true] {
        // Many partitions and a small budget: many small flushes queued to the encoders
        // when the sink breaks.
        let (done, outcome) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut partitioner = ByModulus {
                modulus: 500,
                seen: BTreeMap::new(),
                max: 10_000,
            };
            let mut sink = Breaking {
                after: 20,
                appends: 0,
                panics,
            };
            let config = PartitionedConfig {
                buffer_bytes: 64 << 10,
                ..ROOMY
            };
            let result = write_parquet_partitioned(
                csv(50_000).as_slice(),
                &CsvOptions::default(),
                Expected::Registered(&schema()),
                &mut partitioner,
                &mut sink,
                config,
            );
            // The error and its sources, as a log would show them.
            let result = result.map(|_| ()).map_err(|e| error_chain(&e));
            let _ = done.send((result, sink.appends));
        });
        // A pass that waited forever on a broken encoder would never answer.
        let (result, appends) = outcome
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the pass ends");
        // The pass stops soon after the sink broke (the jobs already queued to the other
        // encoder thread: about 45 appends here), rather than splitting and writing the rest
        // of the upload (3,187 appends before it did).
        assert!(appends < 200, "{appends} appends, the sink broke at 20");
        let error = result.expect_err("the sink broke");
        let expected = if panics {
            "panicked"
        } else {
            "the sink is full"
        };
        assert!(error.contains(expected), "{error}");
    }
}
