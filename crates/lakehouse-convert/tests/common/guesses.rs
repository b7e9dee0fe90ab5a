//! Guesses of a file's schema for the verified pass's property tests: right in some
//! columns, wrong in others, and small files over every class of docs/contract.md section 3.

use lakehouse_api::{ColumnType, Field, Schema};
use proptest::prelude::*;

/// Any column type.
pub fn column_type() -> impl Strategy<Value = ColumnType> {
    prop::sample::select(ColumnType::ALL.to_vec())
}

/// `schema` with the type of each column replaced by the matching `Some` of `types`: a guess
/// that is right in some columns and wrong in others.
pub fn perturbed(schema: &Schema, types: &[Option<ColumnType>]) -> Schema {
    Schema {
        fields: schema
            .fields
            .iter()
            .zip(types.iter().chain(std::iter::repeat(&None)))
            .map(|(f, t)| Field::new(f.name.clone(), t.unwrap_or(f.data_type)))
            .collect(),
    }
}

/// A guess per column (up to 5): `None` keeps the right type, `Some` puts another.
pub fn guesses() -> impl Strategy<Value = Vec<Option<ColumnType>>> {
    prop::collection::vec(prop::option::weighted(0.3, column_type()), 5)
}

/// Values of every class of docs/contract.md section 3's table and its edges, for a file whose
/// columns each draw from a few of them.
pub const CLASS_VALUES: &[&str] = &[
    "",
    "1",
    "-2",
    "0",
    "1.5",
    "2e3",
    "nan",
    "true",
    "FALSE",
    "2020-02-29",
    "2021-02-29",
    "2020-01-01T00:00:00Z",
    "2020-01-01 00:00:00.5+02:00",
    "2020-01-01T00:00:00",
    "2020-01-01T00:00:00.1234567",
    "12:30",
    "23:59:59.5",
    "03/04/2021",
    "13/04/2021",
    "04/13/2021",
    "03-04-2021",
    "9007199254740993",
    "-9007199254740992",
    "007",
    "x",
];

/// A small CSV whose columns each hold values from a random few of [`CLASS_VALUES`], and a
/// guess of its schema per column: the right type or any other.
pub fn lattice_case() -> impl Strategy<Value = (Vec<u8>, Vec<Option<ColumnType>>)> {
    (1usize..=3, 0usize..=6)
        .prop_flat_map(|(ncols, nrows)| {
            let palettes = prop::collection::vec(
                prop::collection::vec(prop::sample::select(CLASS_VALUES), 1..=3),
                ncols,
            );
            (palettes, Just(nrows), guesses())
        })
        .prop_flat_map(|(palettes, nrows, guess)| {
            let row: Vec<_> = palettes
                .iter()
                .map(|p| prop::sample::select(p.clone()))
                .collect();
            (
                prop::collection::vec(row, nrows),
                Just(palettes.len()),
                Just(guess),
            )
        })
        .prop_map(|(rows, ncols, guess)| {
            let names: Vec<String> = (0..ncols).map(|i| format!("c{i}")).collect();
            let mut csv = names.join(",");
            csv.push('\n');
            for row in rows {
                csv.push_str(&row.join(","));
                csv.push('\n');
            }
            (csv.into_bytes(), guess)
        })
}
