//! What a verified pass 2 that was not proven learned of the whole-file inference: the
//! second guess of docs/contract.md section 13 ("A guess refuted late"), so that the caller
//! can run one more verified pass instead of pass 1 and pass 2.

use super::{BatchBuilder, Column};
use crate::SecondGuess;
use crate::classify::{BOOL, ColumnStats, DATE, DMY, FLOAT, INT, MDY, PQ, TIME, TS, TS_UTC};
use crate::error::Result;
use crate::reading::Reading;
use crate::source::{Nulls, Records};
use crate::tokenize::Record;
use lakehouse_api::{ColumnType, DateOrder};
use std::collections::BTreeMap;
use std::io::Read;

/// The record whose value the schema refused: each field's inference state on its own
/// (a fresh state that observed it, or nothing for a null).
pub(crate) fn refused_record(
    record: Record<'_>,
    nulls: &Nulls<'_>,
    reading: Reading,
) -> Vec<ColumnStats> {
    record
        .iter()
        .map(|value| {
            let mut stats = ColumnStats::new();
            if !nulls.is_null(value) {
                stats.observe(reading.classify(value));
            }
            stats
        })
        .collect()
}

/// Reads the records after the refused one to the end, folding them into `stats` (the
/// refused record's, [`refused_record`]) as pass 1 would. The input's errors are pass 1's
/// for the same records, since both read every record in order.
///
/// # Errors
/// The CSV errors of the records read, [`crate::ConvertError::Io`].
pub(crate) fn infer_rest<R: Read>(
    records: &mut Records<R>,
    nulls: &Nulls<'_>,
    reading: Reading,
    mut stats: Vec<ColumnStats>,
) -> Result<Vec<ColumnStats>> {
    while records.next_record()? {
        for (column, value) in stats.iter_mut().zip(records.record()) {
            if column.undecided() && !nulls.is_null(value) {
                column.observe(reading.classify(value));
            }
        }
    }
    Ok(stats)
}

impl Column {
    /// The inference state (docs/contract.md section 3) of the values appended so far,
    /// rebuilt from what the column tracks: every value a typed column accepts has its
    /// type's one class (an int `int64|float64`, a float `float64`, a date `date32`, ...),
    /// a float64 column knows whether all were ints, a `P/Q/YYYY` column whether the other
    /// reading held and its separators, an int64 column whether an int was beyond 2^53, and
    /// a utf8 column classified its values. So the state is exact.
    fn stats(&self) -> ColumnStats {
        if !self.non_null {
            return ColumnStats::new();
        }
        if let Some(stats) = self.inference {
            return stats;
        }
        let mask = match self.ty {
            ColumnType::Bool => BOOL,
            ColumnType::Int64 => INT | FLOAT,
            ColumnType::Float64 if self.non_int => FLOAT,
            ColumnType::Float64 => INT | FLOAT,
            ColumnType::Date32 => match self.order {
                None => DATE,
                Some(order) => {
                    let (own, other) = match order {
                        DateOrder::Mdy => (MDY, DMY),
                        DateOrder::Dmy => (DMY, MDY),
                    };
                    let other_holds = !self.other_order_refused;
                    // Under a `date_order` the values are classified in that order only.
                    let mask = match self.reading.forced_order() {
                        Some(forced) if forced == order => own,
                        Some(_) if other_holds => other,
                        Some(_) => 0,
                        None if other_holds => own | other,
                        None => own,
                    };
                    if self.pq_mixed { mask & !PQ } else { mask }
                }
            },
            ColumnType::Time64 => TIME,
            ColumnType::TimestampUtc => TS_UTC,
            ColumnType::Timestamp => TS,
            // A utf8 column that did not classify (a registered schema's): nothing narrower.
            ColumnType::Utf8 => 0,
        };
        ColumnStats {
            mask,
            sep: self.pq_sep,
            non_null: true,
            big_int: self.big_int,
        }
    }
}

/// Folds into `after` (per column, what the records from a refused value on point to) a
/// later chunk of the file read on another thread (docs/contract.md section 13): `chunk`'s
/// columns, then `chunk_after` when a value of the chunk was refused too.
pub(crate) fn fold_chunk(
    after: &mut [ColumnStats],
    chunk: &BatchBuilder<'_>,
    chunk_after: Option<&[ColumnStats]>,
) {
    for (i, (stats, column)) in after.iter_mut().zip(&chunk.columns).enumerate() {
        let mut later = column.stats();
        if let Some(rest) = chunk_after.and_then(|rest| rest.get(i)) {
            later = later.then(*rest);
        }
        *stats = stats.then(later);
    }
}

impl BatchBuilder<'_> {
    /// The schema (and day/month orders) docs/contract.md section 3 gives the records this
    /// builder took followed by `after` (per column: the refused record and every record
    /// after it, [`infer_rest`]; `None` when the pass read every record), when it is not
    /// the builder's own: exactly the whole-file inference ([`Column::stats`]).
    pub(crate) fn second_guess(&self, after: Option<&[ColumnStats]>) -> Option<SecondGuess> {
        let mut schema = self.schema.clone();
        let mut date_orders = BTreeMap::new();
        let mut same_orders = true;
        for (i, (column, field)) in self.columns.iter().zip(&mut schema.fields).enumerate() {
            let mut stats = column.stats();
            if let Some(later) = after.and_then(|after| after.get(i)) {
                stats = stats.then(*later);
            }
            field.data_type = stats.resolve();
            let order = stats
                .order()
                .filter(|_| field.data_type == ColumnType::Date32);
            same_orders &= order == column.order;
            if let Some(order) = order {
                date_orders.insert(field.name.clone(), order);
            }
        }
        (schema != *self.schema || !same_orders).then_some(SecondGuess {
            schema,
            date_orders,
        })
    }
}
