//! Merge and delete by key, the data side (docs/contract.md section 11): which upload rows are
//! new, changed or unchanged, and which rows of the table's live files they replace or
//! delete. Synchronous and pure like [`compact`](crate::compact): files are read through a
//! [`RangeRead`], the caller rewrites the touched files with
//! [`rewrite_without`](crate::rewrite_without) and commits.
//!
//! 1. The upload's rows (Parquet the ingest just wrote with the dataset's schema) are read
//!    once: each key is encoded with the Arrow row format (byte order is the typed values'
//!    order, so keys compare by typed value) and kept in a hash map with a SHA-256 prefix of
//!    the whole row; a null key or a key seen twice stops the merge. The memory this takes
//!    is counted against `key_memory_bytes`: past it, the keys are split by hash into 2, 4,
//!    ... up to [`MAX_KEY_PARTS`] parts, each read, held and matched against the table in
//!    turn (the table's key columns are then read once per part), so memory stays bounded
//!    whatever the upload's size.
//! 2. Each live file's footer is read. A row group is read only when, for every key column,
//!    some upload key falls within that column's min/max statistics; it is read by its key
//!    columns first, and by every column only when one of its keys matched (merge), to tell
//!    an update from an unchanged row.
//! 3. An upload row is `inserted` when no table row has its key, `unchanged` when exactly
//!    one has and is equal in every column, else `updated` (every table row with its key is
//!    removed). A delete removes every table row with a listed key.

use crate::BATCH_ROWS;
use crate::compact::{RangeRead, Window, conform, input_error, reader_metadata, row_group_window};
use crate::error::{ConvertError, Result};
use crate::write::arrow_schema;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::SchemaRef;
use lakehouse_api::Schema;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// What a keyed upload asks for (docs/contract.md section 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedMode {
    /// Upload rows replace the rows with their key; new keys are added.
    Merge,
    /// The rows with the upload's keys are removed.
    Delete,
}

/// The plan of a merge or delete: the counts, and the rows to leave out of each file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergePlan {
    /// Upload rows whose key no table row had.
    pub inserted: u64,
    /// Upload rows that replace other rows.
    pub updated: u64,
    /// Upload rows equal to the one row with their key.
    pub unchanged: u64,
    /// Table rows a delete removes.
    pub deleted: u64,
    /// Keys of a delete no table row had.
    pub not_found: u64,
    /// Per upload file: its rows to leave out (the `unchanged` ones), ascending.
    pub upload_removed: Vec<Vec<u64>>,
    /// Per table file with rows to remove: its position in `table` and those rows
    /// (0-based within the file), ascending. In `table` order.
    pub table_removed: Vec<(usize, Vec<u64>)>,
}

impl MergePlan {
    /// True when the plan changes no row: no version to make.
    pub fn changes_nothing(&self) -> bool {
        self.inserted == 0 && self.updated == 0 && self.deleted == 0
    }

    /// Adds the plan of one part of the upload's keys.
    fn absorb(&mut self, part: MergePlan) {
        self.inserted += part.inserted;
        self.updated += part.updated;
        self.unchanged += part.unchanged;
        self.deleted += part.deleted;
        self.not_found += part.not_found;
        for (rows, more) in self.upload_removed.iter_mut().zip(part.upload_removed) {
            rows.extend(more);
        }
        self.table_removed.extend(part.table_removed);
    }

    /// Rows ascending, files in `table` order, each file once.
    fn sort(&mut self) {
        for rows in &mut self.upload_removed {
            rows.sort_unstable();
        }
        let mut by_file: std::collections::BTreeMap<usize, Vec<u64>> = Default::default();
        for (file, rows) in self.table_removed.drain(..) {
            by_file.entry(file).or_default().extend(rows);
        }
        self.table_removed = by_file
            .into_iter()
            .map(|(file, mut rows)| {
                rows.sort_unstable();
                (file, rows)
            })
            .collect();
    }
}

/// Bytes counted per upload key beside its encoding: the map entry, the row digest and the
/// per-column bounds (an estimate of what the allocator hands out).
const KEY_OVERHEAD_BYTES: u64 = 96;

/// One upload row's key: its row (0-based across the upload files), and what the table
/// said of it.
struct UploadKey {
    row: u64,
    /// The first 16 bytes of the SHA-256 of the whole row (merge), to tell an update from
    /// an unchanged row.
    digest: [u8; 16],
    /// Table rows with this key.
    matches: u32,
    /// Whether every table row with this key equals the upload row.
    all_equal: bool,
}

/// The upload's keys (step 1 of the module docs).
struct UploadKeys {
    keys: HashMap<Box<[u8]>, UploadKey>,
    /// Per key column: the encoded values of every upload key, sorted, for the row-group
    /// bounds test.
    columns: Vec<Vec<Box<[u8]>>>,
    /// Rows per upload file.
    file_rows: Vec<u64>,
}

/// Plans a merge or delete of `upload` (Parquet files of `schema`, or for a delete of the
/// key columns only, in upload order) into the live files `table` (in version order) by the
/// key columns `key` (names in `schema`).
///
/// # Errors
/// [`ConvertError::NullKey`], [`ConvertError::DuplicateKey`] naming upload rows;
/// [`ConvertError::MergeTooLarge`] when even [`MAX_KEY_PARTS`] parts of the keys do not fit
/// in `key_memory_bytes` each; [`ConvertError::Parquet`] for
/// an unreadable file, a key column `schema` lacks; [`ConvertError::Io`] from the reads.
pub fn plan_merge(
    schema: &Schema,
    key: &[String],
    mode: KeyedMode,
    upload: &[Arc<dyn RangeRead>],
    table: &[Arc<dyn RangeRead>],
    key_memory_bytes: u64,
) -> Result<MergePlan> {
    let arrow = arrow_schema(schema);
    let key_columns = key
        .iter()
        .map(|name| {
            arrow.index_of(name).map_err(|_| {
                ConvertError::Parquet(format!("key column {name:?} is not in the schema"))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    let converters = Converters::new(&arrow, &key_columns, mode)?;
    // The upload's keys in `parts` parts by hash, each held and matched against the table
    // in turn: doubled until each part fits in `key_memory_bytes`.
    let mut parts = 1u64;
    loop {
        let planned = plan_in_parts(&converters, mode, upload, table, key_memory_bytes, parts);
        match planned {
            Err(ConvertError::MergeTooLarge { .. }) if parts < MAX_KEY_PARTS => parts *= 2,
            other => return other,
        }
    }
}

/// The plan, the upload's keys taken in `parts` parts.
///
/// # Errors
/// As [`plan_merge`]; [`ConvertError::MergeTooLarge`] when a part does not fit.
fn plan_in_parts(
    converters: &Converters,
    mode: KeyedMode,
    upload: &[Arc<dyn RangeRead>],
    table: &[Arc<dyn RangeRead>],
    key_memory_bytes: u64,
    parts: u64,
) -> Result<MergePlan> {
    let mut plan = MergePlan {
        upload_removed: vec![Vec::new(); upload.len()],
        ..MergePlan::default()
    };
    for part in 0..parts {
        let mut keys = read_upload(converters, mode, upload, key_memory_bytes, (part, parts))?;
        let mut matched: Vec<(usize, u64, Box<[u8]>)> = Vec::new();
        if !keys.keys.is_empty() {
            for (position, input) in table.iter().enumerate() {
                scan_table_file(converters, mode, &mut keys, position, input, &mut matched)?;
            }
        }
        plan.absorb(settle(mode, keys, matched));
    }
    plan.sort();
    Ok(plan)
}

/// The most parts the upload's keys are split into (docs/contract.md section 11): past
/// `MAX_KEY_PARTS * key_memory_bytes` of keys, a merge is refused.
pub const MAX_KEY_PARTS: u64 = 256;

/// Which of `parts` parts a key (its row-format bytes) falls in.
fn part_of(key: &[u8], parts: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    if parts == 1 {
        return 0;
    }
    // SipHash with fixed keys: the same part for the same key within a plan.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish() % parts
}

/// The Arrow row converters of one merge: the key columns together, each key column alone
/// (for the bounds test), every column (for the row digest of a merge).
struct Converters {
    arrow: SchemaRef,
    /// Key column indices in `arrow`.
    key_columns: Vec<usize>,
    key: RowConverter,
    per_column: Vec<RowConverter>,
    whole: Option<RowConverter>,
}

impl Converters {
    fn new(arrow: &SchemaRef, key_columns: &[usize], mode: KeyedMode) -> Result<Self> {
        let field = |i: usize| SortField::new(arrow.field(i).data_type().clone());
        let converter = |fields: Vec<SortField>| {
            RowConverter::new(fields).map_err(|e| ConvertError::Parquet(e.to_string()))
        };
        Ok(Converters {
            arrow: arrow.clone(),
            key_columns: key_columns.to_vec(),
            key: converter(key_columns.iter().map(|&i| field(i)).collect())?,
            per_column: key_columns
                .iter()
                .map(|&i| converter(vec![field(i)]))
                .collect::<Result<_>>()?,
            whole: match mode {
                KeyedMode::Merge => {
                    Some(converter((0..arrow.fields().len()).map(field).collect())?)
                }
                KeyedMode::Delete => None,
            },
        })
    }

    /// The key rows of `columns` (the key columns, in key order).
    fn keys(&self, columns: &[ArrayRef]) -> Result<Rows> {
        self.key
            .convert_columns(columns)
            .map_err(|e| ConvertError::Parquet(e.to_string()))
    }

    /// The first 16 bytes of the SHA-256 of each row of `batch` (every column, Arrow row
    /// format): 128 bits, so two different rows that share one are not a real risk.
    fn digests(&self, batch: &RecordBatch) -> Result<Vec<[u8; 16]>> {
        let Some(whole) = &self.whole else {
            return Ok(vec![[0; 16]; batch.num_rows()]);
        };
        let rows = whole
            .convert_columns(batch.columns())
            .map_err(|e| ConvertError::Parquet(e.to_string()))?;
        Ok(rows
            .iter()
            .map(|row| {
                let mut digest = [0; 16];
                digest.copy_from_slice(&Sha256::digest(row.as_ref())[..16]);
                digest
            })
            .collect())
    }
}

/// Step 1: every upload row's key of part `part` of `parts`, checked (no null anywhere,
/// none twice) and counted against `key_memory_bytes`.
fn read_upload(
    converters: &Converters,
    mode: KeyedMode,
    upload: &[Arc<dyn RangeRead>],
    key_memory_bytes: u64,
    (part, parts): (u64, u64),
) -> Result<UploadKeys> {
    let mut keys = UploadKeys {
        keys: HashMap::new(),
        columns: vec![Vec::new(); converters.key_columns.len()],
        file_rows: Vec::with_capacity(upload.len()),
    };
    let mut row = 0u64;
    let mut memory = 0u64;
    for (position, input) in upload.iter().enumerate() {
        let first = row;
        let metadata = reader_metadata(input, position)?;
        // One row group's batches at a time: the upload is never held whole.
        let batches = (0..metadata.metadata().num_row_groups()).map(|row_group| {
            let window = row_group_window(input, &metadata, row_group)
                .map_err(|e| input_error(position, e))?;
            read_row_group(window, &metadata, row_group, None, position)
        });
        for batch in batches.flat_map(|group| match group {
            Ok(batches) => batches.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(error) => vec![Err(error)],
        }) {
            let batch = batch?;
            let batch = match mode {
                KeyedMode::Merge => conform(&converters.arrow, batch)
                    .map_err(|r| ConvertError::Parquet(format!("upload {position}: {r}")))?,
                KeyedMode::Delete => batch,
            };
            // A delete's upload holds the key columns only, in key order.
            let columns: Vec<ArrayRef> = match mode {
                KeyedMode::Merge => converters
                    .key_columns
                    .iter()
                    .map(|&i| Arc::clone(batch.column(i)))
                    .collect(),
                KeyedMode::Delete => batch.columns().to_vec(),
            };
            for (name_at, column) in columns.iter().enumerate() {
                if let Some(at) = (0..column.len()).find(|&i| column.is_null(i)) {
                    let index = converters.key_columns[name_at];
                    return Err(ConvertError::NullKey {
                        row: row + at as u64,
                        column: converters.arrow.field(index).name().clone(),
                    });
                }
            }
            let encoded = converters.keys(&columns)?;
            let digests = converters.digests(&batch)?;
            let singles = per_column_rows(converters, &columns)?;
            for (i, (key, digest)) in encoded.iter().zip(digests).enumerate() {
                if part_of(key.as_ref(), parts) != part {
                    continue;
                }
                let bytes: Box<[u8]> = key.as_ref().into();
                memory += bytes.len() as u64 * 2 + KEY_OVERHEAD_BYTES;
                if memory > key_memory_bytes {
                    return Err(ConvertError::MergeTooLarge {
                        max: key_memory_bytes,
                        rows: row + i as u64,
                    });
                }
                let this = row + i as u64;
                if let Some(earlier) = keys.keys.get(&bytes) {
                    return Err(ConvertError::DuplicateKey {
                        first: earlier.row,
                        second: this,
                    });
                }
                for (column, single) in keys.columns.iter_mut().zip(&singles) {
                    column.push(single.row(i).as_ref().into());
                }
                keys.keys.insert(
                    bytes,
                    UploadKey {
                        row: this,
                        digest,
                        matches: 0,
                        all_equal: true,
                    },
                );
            }
            row += batch.num_rows() as u64;
        }
        keys.file_rows.push(row - first);
    }
    for column in &mut keys.columns {
        column.sort_unstable();
        column.dedup();
    }
    Ok(keys)
}

/// Each key column of `columns` alone, in the row format of the bounds test.
fn per_column_rows(converters: &Converters, columns: &[ArrayRef]) -> Result<Vec<Rows>> {
    converters
        .per_column
        .iter()
        .zip(columns)
        .map(|(converter, column)| {
            converter
                .convert_columns(std::slice::from_ref(column))
                .map_err(|e| ConvertError::Parquet(e.to_string()))
        })
        .collect()
}

fn read_row_group(
    window: Window,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    projection: Option<ProjectionMask>,
    position: usize,
) -> Result<Vec<RecordBatch>> {
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(window, metadata.clone())
        .with_row_groups(vec![row_group])
        .with_batch_size(BATCH_ROWS);
    if let Some(projection) = projection {
        builder = builder.with_projection(projection);
    }
    let reader = builder.build().map_err(|e| input_error(position, e))?;
    reader
        .map(|batch| batch.map_err(|e| ConvertError::Parquet(format!("input {position}: {e}"))))
        .collect()
}

/// Step 2 for one live file: its row groups whose bounds may hold an upload key, read by
/// their key columns; each table row with an upload key recorded in `matched` (file
/// position, row in the file, key), and for a merge compared with the upload row.
fn scan_table_file(
    converters: &Converters,
    mode: KeyedMode,
    keys: &mut UploadKeys,
    position: usize,
    input: &Arc<dyn RangeRead>,
    matched: &mut Vec<(usize, u64, Box<[u8]>)>,
) -> Result<()> {
    let metadata = reader_metadata(input, position)?;
    let file_schema = metadata.schema().clone();
    let parquet = metadata.metadata().file_metadata().schema_descr();
    // A file of an older schema that lacks a key column holds only null keys there: no
    // upload key can match (docs/contract.md section 11: keys are never null).
    let mut leaves = Vec::with_capacity(converters.key_columns.len());
    let mut bounds = Vec::with_capacity(converters.key_columns.len());
    for (at, &index) in converters.key_columns.iter().enumerate() {
        let field = converters.arrow.field(index);
        let Some((leaf, _)) = parquet::arrow::parquet_column(parquet, &file_schema, field.name())
        else {
            return Ok(());
        };
        leaves.push(leaf);
        // Statistics that cannot be read bound nothing: every row group is then read.
        let Ok(stats) = StatisticsConverter::try_new(field.name(), &file_schema, parquet) else {
            bounds.push(None);
            continue;
        };
        let row_groups = metadata.metadata().row_groups();
        let mins = stats.row_group_mins(row_groups.iter());
        let maxes = stats.row_group_maxes(row_groups.iter());
        bounds.push(match (mins, maxes) {
            (Ok(mins), Ok(maxes)) => {
                let unknown = (0..row_groups.len())
                    .map(|i| mins.is_null(i) || maxes.is_null(i))
                    .collect();
                let converter = &converters.per_column[at];
                match (
                    converter.convert_columns(&[mins]),
                    converter.convert_columns(&[maxes]),
                ) {
                    (Ok(mins), Ok(maxes)) => Some((mins, maxes, unknown)),
                    _ => None,
                }
            }
            _ => None,
        });
    }
    let projection = ProjectionMask::leaves(parquet, leaves.iter().copied());
    let mut first_row = 0u64;
    for row_group in 0..metadata.metadata().num_row_groups() {
        let rows = metadata.metadata().row_group(row_group).num_rows() as u64;
        let may_hold = bounds
            .iter()
            .zip(&keys.columns)
            .all(|(bound, values)| may_hold_key(bound.as_ref(), row_group, values));
        if may_hold {
            let window = key_window(input, &metadata, row_group, &leaves)
                .map_err(|e| input_error(position, e))?;
            let batches = read_row_group(
                window,
                &metadata,
                row_group,
                Some(projection.clone()),
                position,
            )?;
            let found = match_keys(converters, keys, &batches, position, first_row, matched)?;
            if found && mode == KeyedMode::Merge {
                compare_rows(converters, keys, input, &metadata, row_group, position)?;
            }
        }
        first_row += rows;
    }
    Ok(())
}

/// One key column's row-group bounds: mins, maxes (row format), and which row groups have
/// none.
type Bounds = (Rows, Rows, Vec<bool>);

/// Whether row group `row_group` may hold one of `values` (one key column's upload values,
/// sorted) by its min/max statistics; true when it has none.
fn may_hold_key(bound: Option<&Bounds>, row_group: usize, values: &[Box<[u8]>]) -> bool {
    let Some((mins, maxes, unknown)) = bound else {
        return true;
    };
    if unknown.get(row_group).copied().unwrap_or(true) {
        return true;
    }
    let min = mins.row(row_group);
    let max = maxes.row(row_group);
    let from = values.partition_point(|v| v.as_ref() < min.as_ref());
    values.get(from).is_some_and(|v| v.as_ref() <= max.as_ref())
}

/// The bytes of row group `row_group`'s key column chunks (from the first to the last).
fn key_window(
    input: &Arc<dyn RangeRead>,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    leaves: &[usize],
) -> std::result::Result<Window, parquet::errors::ParquetError> {
    let group = metadata.metadata().row_group(row_group);
    let mut start = u64::MAX;
    let mut end = 0u64;
    for &leaf in leaves {
        let (offset, length) = group.column(leaf).byte_range();
        start = start.min(offset);
        end = end.max(offset.saturating_add(length));
    }
    Window::read(input, start, end)
}

/// Looks up every key of `batches` (rows `first_row..` of table file `position`, key
/// columns only) in the upload's; records each match. True when one matched.
fn match_keys(
    converters: &Converters,
    keys: &mut UploadKeys,
    batches: &[RecordBatch],
    position: usize,
    first_row: u64,
    matched: &mut Vec<(usize, u64, Box<[u8]>)>,
) -> Result<bool> {
    let mut row = first_row;
    let mut found = false;
    for batch in batches {
        // The projection keeps the file's column order; the key is in key order.
        let columns = key_order(converters, batch)?;
        let encoded = converters.keys(&columns)?;
        for (i, key) in encoded.iter().enumerate() {
            let bytes = key.as_ref();
            if let Some(entry) = keys.keys.get_mut(bytes) {
                entry.matches += 1;
                matched.push((position, row + i as u64, bytes.into()));
                found = true;
            }
        }
        row += batch.num_rows() as u64;
    }
    Ok(found)
}

/// The key columns of a projected batch, in key order, by name.
fn key_order(converters: &Converters, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
    converters
        .key_columns
        .iter()
        .map(|&i| {
            let name = converters.arrow.field(i).name();
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| ConvertError::Parquet(format!("key column {name:?} not read")))
        })
        .collect()
}

/// For a merge, row group `row_group` of a file with a matched key read whole: each table
/// row with an upload key compared with the upload row by digest.
fn compare_rows(
    converters: &Converters,
    keys: &mut UploadKeys,
    input: &Arc<dyn RangeRead>,
    metadata: &ArrowReaderMetadata,
    row_group: usize,
    position: usize,
) -> Result<()> {
    let window =
        row_group_window(input, metadata, row_group).map_err(|e| input_error(position, e))?;
    for batch in read_row_group(window, metadata, row_group, None, position)? {
        let batch = conform(&converters.arrow, batch)
            .map_err(|r| ConvertError::Parquet(format!("input {position}: {r}")))?;
        let columns: Vec<ArrayRef> = converters
            .key_columns
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let encoded = converters.keys(&columns)?;
        let mut digests = None;
        for (i, key) in encoded.iter().enumerate() {
            let Some(entry) = keys.keys.get_mut(key.as_ref()) else {
                continue;
            };
            let all = match &digests {
                Some(all) => all,
                None => digests.insert(converters.digests(&batch)?),
            };
            let digest: &[u8; 16] = &all[i];
            if *digest != entry.digest {
                entry.all_equal = false;
            }
        }
    }
    Ok(())
}

/// Step 3: the counts and the rows each file loses.
fn settle(mode: KeyedMode, keys: UploadKeys, matched: Vec<(usize, u64, Box<[u8]>)>) -> MergePlan {
    let mut plan = MergePlan {
        upload_removed: vec![Vec::new(); keys.file_rows.len()],
        ..MergePlan::default()
    };
    let unchanged = |entry: &UploadKey| entry.matches == 1 && entry.all_equal;
    for entry in keys.keys.values() {
        match (mode, entry.matches) {
            (KeyedMode::Merge, 0) => plan.inserted += 1,
            (KeyedMode::Merge, _) if unchanged(entry) => {
                plan.unchanged += 1;
                let (file, row) = file_row(&keys.file_rows, entry.row);
                plan.upload_removed[file].push(row);
            }
            (KeyedMode::Merge, _) => plan.updated += 1,
            (KeyedMode::Delete, 0) => plan.not_found += 1,
            (KeyedMode::Delete, n) => plan.deleted += u64::from(n),
        }
    }
    for rows in &mut plan.upload_removed {
        rows.sort_unstable();
    }
    let mut by_file: std::collections::BTreeMap<usize, Vec<u64>> = Default::default();
    for (file, row, key) in matched {
        let entry = &keys.keys[&key];
        if mode == KeyedMode::Delete || !unchanged(entry) {
            by_file.entry(file).or_default().push(row);
        }
    }
    plan.table_removed = by_file
        .into_iter()
        .map(|(file, mut rows)| {
            rows.sort_unstable();
            (file, rows)
        })
        .collect();
    plan
}

/// Upload file and row within it of upload row `row`.
fn file_row(file_rows: &[u64], mut row: u64) -> (usize, u64) {
    for (file, &rows) in file_rows.iter().enumerate() {
        if row < rows {
            return (file, row);
        }
        row -= rows;
    }
    (file_rows.len().saturating_sub(1), row)
}
