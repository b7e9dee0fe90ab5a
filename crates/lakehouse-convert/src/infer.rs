//! Pass 1: whole-file schema inference for a new dataset, and the conformance check of an
//! upload to an existing one (docs/contract.md section 3).

use crate::classify::{Class, ColumnStats, accepts_in};
use crate::error::{ConvertError, Result};
use crate::reading::Reading;
use crate::source::{Header, Nulls, ReadConfig, Records};
use crate::{Checked, Inferred};
use lakehouse_api::{ColumnChange, ColumnType, DateOrder, Field, Schema, SchemaDriftDetails};
use std::collections::BTreeMap;
use std::io::Read;

/// The day/month order of each `date32` column of `P/Q/YYYY` values, by name.
pub(crate) fn orders_of(header: &Header, stats: &[ColumnStats]) -> BTreeMap<String, DateOrder> {
    header
        .names
        .iter()
        .zip(stats)
        .filter_map(|(name, stats)| Some((name.clone(), stats.order()?)))
        .collect()
}

/// The schema the columns' final states give (docs/contract.md section 3).
pub(crate) fn schema_of(header: &Header, stats: &[ColumnStats]) -> Schema {
    Schema {
        fields: header
            .names
            .iter()
            .zip(stats)
            .map(|(name, stats)| Field::new(name.clone(), stats.resolve()))
            .collect(),
    }
}

pub(crate) fn infer_schema<R: Read>(reader: R, options: ReadConfig<'_>) -> Result<Inferred> {
    let (mut records, header) = Records::open(reader, options)?;
    let nulls = Nulls::new(options);
    let reading = Reading::new(options.csv);
    let mut stats = vec![ColumnStats::new(); header.names.len()];
    while records.next_record()? {
        for (column, value) in stats.iter_mut().zip(records.record()) {
            if column.undecided() && !nulls.is_null(value) {
                column.observe(reading.classify(value));
            }
        }
    }
    Ok(Inferred {
        schema: schema_of(&header, &stats),
        date_orders: orders_of(&header, &stats),
        row_count: records.rows(),
        warnings: header.warnings,
    })
}

pub(crate) fn guess(prefix: &[u8], complete: bool, options: ReadConfig<'_>) -> Option<Inferred> {
    if complete {
        return infer_schema(prefix, options).ok();
    }
    let (mut records, header) = Records::open(prefix, options).ok()?;
    let nulls = Nulls::new(options);
    let reading = Reading::new(options.csv);
    let mut stats = vec![ColumnStats::new(); header.names.len()];
    // The classes of the last record read, folded in only once another record follows it.
    let mut last: Vec<Option<Class>> = Vec::with_capacity(stats.len());
    while let Ok(true) = records.next_record() {
        let record = records.record();
        for (column, class) in stats.iter_mut().zip(&last) {
            if let Some(class) = class {
                column.observe(*class);
            }
        }
        last.clear();
        last.extend(
            record
                .iter()
                .map(|value| (!nulls.is_null(value)).then(|| reading.classify(value))),
        );
    }
    Some(Inferred {
        schema: schema_of(&header, &stats),
        date_orders: orders_of(&header, &stats),
        row_count: records.rows(),
        warnings: header.warnings,
    })
}

/// The first value of an upload column that its registered type refuses.
struct Refusal {
    line: u64,
    value: String,
}

pub(crate) fn check_schema<R: Read>(
    reader: R,
    options: ReadConfig<'_>,
    registered: &Schema,
) -> Result<Checked> {
    let (mut records, header) = Records::open(reader, options)?;
    let nulls = Nulls::new(options);
    let reading = Reading::new(options.csv);
    let width = header.names.len();
    let mut stats = vec![ColumnStats::new(); width];
    // The registered type of each upload column, matched by name (so that a reordered
    // column is still checked against its own type).
    let targets: Vec<Option<ColumnType>> = header
        .names
        .iter()
        .map(|name| {
            registered
                .fields
                .iter()
                .find(|f| f.name == *name)
                .map(|f| f.data_type)
        })
        .collect();
    let orders: Vec<Option<DateOrder>> = header
        .names
        .iter()
        .map(|name| options.csv.date_orders.get(name).copied())
        .collect();
    let mut refusals: Vec<Option<Refusal>> = (0..width).map(|_| None).collect();
    while records.next_record()? {
        let record = records.record();
        for ((((column, target), order), refusal), value) in stats
            .iter_mut()
            .zip(&targets)
            .zip(&orders)
            .zip(refusals.iter_mut())
            .zip(record)
        {
            let must_check = refusal.is_none() && target.is_some_and(|t| t != ColumnType::Utf8);
            if !(column.undecided() || must_check) || nulls.is_null(value) {
                continue;
            }
            let class = reading.classify(value);
            column.observe(class);
            if must_check && target.is_some_and(|t| !accepts_in(t, *order, class)) {
                *refusal = Some(Refusal {
                    line: records.line(),
                    value: String::from_utf8_lossy(value).into_owned(),
                });
            }
        }
    }
    let names_match = header
        .names
        .iter()
        .map(String::as_str)
        .eq(registered.names());
    if names_match && refusals.iter().all(Option::is_none) {
        return Ok(Checked {
            warnings: header.warnings,
            row_count: records.rows(),
        });
    }
    let attempted = schema_of(&header, &stats);
    let mut details = SchemaDriftDetails::between(registered, &attempted);
    // Only columns holding a value the registered type refuses are changes: an all-empty
    // int64 column or all-int float64 column infers another type but conforms.
    details.changed = registered
        .fields
        .iter()
        .filter_map(|field| {
            let i = header.names.iter().position(|n| *n == field.name)?;
            let refusal = refusals.get(i)?.as_ref()?;
            Some(ColumnChange {
                column: field.name.clone(),
                registered_type: field.data_type.name().to_owned(),
                attempted_type: attempted
                    .fields
                    .get(i)
                    .map(|f| f.data_type.name().to_owned()),
                line: Some(refusal.line),
                value: Some(refusal.value.clone()),
            })
        })
        .collect();
    Err(ConvertError::SchemaDrift(Box::new(details)))
}
