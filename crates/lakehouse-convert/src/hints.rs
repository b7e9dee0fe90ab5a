//! Warnings that teach (docs/contract.md section 14): after a new dataset's schema is inferred, the
//! utf8 columns that another reading option would have typed: float64 with
//! `decimal_separator=,`, date32 with a `date_order`.
//!
//! Exact, not a guess from a sample: a column is named only when every non-null value of the
//! whole file fits the other reading. The pass reads only while some utf8 column still
//! could (the first value that fits neither ends a column's candidacy, and the pass stops
//! once no candidate is left), so a file whose utf8 columns hold plain text costs one record.

use crate::classify::{DMY, FLOAT, MDY, classify, pq_readings};
use crate::error::Result;
use crate::reading::Reading;
use crate::source::{Nulls, ReadConfig, Records};
use lakehouse_api::{ColumnType, CsvOptions, DecimalSeparator, Schema};
use std::io::Read;

/// What the values of one utf8 column have shown so far.
struct Candidate {
    /// Position in the record.
    column: usize,
    /// Every value so far is an int or a float written with a decimal comma.
    comma: bool,
    /// The first value with a decimal comma.
    comma_example: Option<String>,
    /// Every value so far is `P/Q/YYYY`, with one separator, a real date read day first
    /// and read month first.
    ambiguous_dates: bool,
    /// The column's separator of `P/Q/YYYY` values (0 before the first).
    sep: u8,
    /// The first value.
    date_example: Option<String>,
}

impl Candidate {
    fn alive(&self) -> bool {
        self.comma || self.ambiguous_dates
    }

    fn observe(&mut self, value: &[u8], comma_reading: Reading) {
        if self.comma {
            let class = comma_reading.classify(value);
            if class.mask & FLOAT == 0 || class.big_int {
                self.comma = false;
            } else if self.comma_example.is_none() && value.contains(&b',') {
                self.comma_example = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
        if self.ambiguous_dates {
            let class = classify(value);
            let both = class.mask & (DMY | MDY) == DMY | MDY;
            let same_sep = pq_readings(value).is_some_and(|(sep, _, _)| {
                let first = self.sep == 0;
                if first {
                    self.sep = sep;
                }
                first || self.sep == sep
            });
            if !(both && same_sep) {
                self.ambiguous_dates = false;
            } else if self.date_example.is_none() {
                self.date_example = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }

    fn warnings(&self, name: &str) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.comma
            && let Some(example) = &self.comma_example
        {
            warnings.push(format!(
                "column {name:?} is utf8; with decimal_separator=, it would be float64 \
                 (values such as {example:?})"
            ));
        }
        if self.ambiguous_dates
            && let Some(example) = &self.date_example
        {
            warnings.push(format!(
                "column {name:?} is utf8: its dates such as {example:?} are real dates read \
                 day first and month first; with date_order=DMY or date_order=MDY it would be \
                 date32"
            ));
        }
        warnings
    }
}

/// The warnings that teach for a new dataset's upload read with `options` and inferred as
/// `schema` (docs/contract.md section 14), one per column and option, in column order. Reads
/// `reader` (the same bytes the inference read) only as far as a utf8 column could still
/// deserve one.
///
/// # Errors
/// The CSV errors of [`crate::infer_schema`] for bytes it did not see as far (none when
/// `reader` holds the bytes the inference read).
pub fn teaching_warnings<'a, R: Read>(
    reader: R,
    options: impl Into<ReadConfig<'a>>,
    schema: &Schema,
) -> Result<Vec<String>> {
    let options = options.into();
    let try_comma = options.csv.decimal_separator == DecimalSeparator::Point;
    let try_dates = options.csv.date_order.is_none();
    let mut candidates: Vec<Candidate> = schema
        .fields
        .iter()
        .enumerate()
        .filter(|(_, field)| field.data_type == ColumnType::Utf8)
        .map(|(column, _)| Candidate {
            column,
            comma: try_comma,
            comma_example: None,
            ambiguous_dates: try_dates,
            sep: 0,
            date_example: None,
        })
        .filter(Candidate::alive)
        .collect();
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let comma_reading = Reading::new(&CsvOptions {
        decimal_separator: DecimalSeparator::Comma,
        ..CsvOptions::default()
    });
    let (mut records, _header) = Records::open(reader, options)?;
    let nulls = Nulls::new(options);
    while !candidates.is_empty() && records.next_record()? {
        let record = records.record();
        for candidate in &mut candidates {
            if let Some(value) = record.iter().nth(candidate.column)
                && !nulls.is_null(value)
            {
                candidate.observe(value, comma_reading);
            }
        }
        // A candidate that saw no value of its kind stays until the end: all its values
        // may be ints or nulls so far.
        candidates.retain(Candidate::alive);
    }
    Ok(candidates
        .iter()
        .flat_map(|c| c.warnings(&schema.fields[c.column].name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lakehouse_api::{DateOrder, Field};

    fn utf8(names: &[&str]) -> Schema {
        Schema {
            fields: names
                .iter()
                .map(|n| Field::new((*n).to_owned(), ColumnType::Utf8))
                .collect(),
        }
    }

    #[test]
    fn decimal_commas_and_ambiguous_dates_are_named() {
        let csv = b"price;day;city\n5,5;01/02/2024;Lyon\n-0,5;03/04/2024;Paris\n12;;Nice\n";
        let options = CsvOptions {
            delimiter: b';',
            ..CsvOptions::default()
        };
        let warnings =
            teaching_warnings(&csv[..], &options, &utf8(&["price", "day", "city"])).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].contains("\"price\"") && warnings[0].contains("decimal_separator=,"));
        assert!(warnings[1].contains("\"day\"") && warnings[1].contains("date_order=DMY"));
    }

    #[test]
    fn a_column_that_fits_neither_reading_is_not_named() {
        let csv = b"a,b\n\"5,5\",01/02/2024\nx,13/02/2024\n";
        let warnings =
            teaching_warnings(&csv[..], &CsvOptions::default(), &utf8(&["a", "b"])).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn options_given_are_not_suggested_again() {
        let csv = b"a;b\n5,5;01/02/2024\n";
        let options = CsvOptions {
            delimiter: b';',
            decimal_separator: DecimalSeparator::Comma,
            date_order: Some(DateOrder::Mdy),
            ..CsvOptions::default()
        };
        let warnings = teaching_warnings(&csv[..], &options, &utf8(&["a", "b"])).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
