//! How one read classifies and parses values beyond docs/contract.md section 3's grammar: the
//! `decimal_separator` and `date_order` options of section 14, over [`crate::classify`].

use crate::classify::{Class, DMY, FLOAT, MDY, NONE, PQ, classify, only, parse_float_literal};
use lakehouse_api::DateOrder;

/// How one read classifies and parses values: by the grammar (the default, one branch per
/// value more), or with a decimal comma, or with one `P/Q/YYYY` reading kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reading {
    /// `decimal_separator=,`: `1234,56` is a float, `1.5` is not.
    decimal_comma: bool,
    /// The `P/Q/YYYY` readings kept: [`PQ`] (the column settles the order), or only
    /// [`DMY`] or [`MDY`] under a `date_order`.
    pq_keep: u16,
}

/// Longest value whose decimal comma is swapped on the stack; longer ones are not floats
/// under `decimal_separator=,` (no f64 literal of the table needs more digits to be exact).
const MAX_COMMA_FLOAT_BYTES: usize = 64;

impl Reading {
    /// The reading `csv` asks for.
    pub(crate) fn new(csv: &lakehouse_api::CsvOptions) -> Self {
        Reading {
            decimal_comma: csv.decimal_separator == lakehouse_api::DecimalSeparator::Comma,
            pq_keep: match csv.date_order {
                None => PQ,
                Some(DateOrder::Dmy) => DMY,
                Some(DateOrder::Mdy) => MDY,
            },
        }
    }

    /// The order a `date_order` fixes for new `P/Q/YYYY` columns, instead of their values
    /// (docs/contract.md section 14), if any.
    pub(crate) fn forced_order(self) -> Option<DateOrder> {
        match self.pq_keep {
            DMY => Some(DateOrder::Dmy),
            MDY => Some(DateOrder::Mdy),
            _ => None,
        }
    }

    /// [`classify`] under this reading.
    #[inline]
    pub(crate) fn classify(self, v: &[u8]) -> Class {
        if !self.decimal_comma && self.pq_keep == PQ {
            return classify(v);
        }
        let mut class = if self.decimal_comma {
            classify_comma(v)
        } else {
            classify(v)
        };
        class.mask &= !(PQ & !self.pq_keep);
        class
    }

    /// [`parse_float_literal`] under this reading.
    #[inline]
    pub(crate) fn parse_float_literal(self, v: &[u8]) -> Option<(f64, bool)> {
        if !self.decimal_comma {
            return parse_float_literal(v);
        }
        if v.contains(&b'.') {
            return None;
        }
        with_point(v, parse_float_literal).flatten()
    }
}

/// `v` with its first `,` made a `.`, handed to `f`; `None` when `v` has no `,` (then `f`
/// gets `v` itself) or is longer than [`MAX_COMMA_FLOAT_BYTES`].
fn with_point<T>(v: &[u8], f: impl Fn(&[u8]) -> T) -> Option<T> {
    let Some(at) = v.iter().position(|&b| b == b',') else {
        return Some(f(v));
    };
    if v.len() > MAX_COMMA_FLOAT_BYTES {
        return None;
    }
    let mut buf = [0u8; MAX_COMMA_FLOAT_BYTES];
    buf[..v.len()].copy_from_slice(v);
    buf[at] = b'.';
    Some(f(&buf[..v.len()]))
}

/// [`classify`] with `,` as the decimal separator: a value with a `,` is at most a float
/// (read with the `,` as the point), and a `.` makes no float.
fn classify_comma(v: &[u8]) -> Class {
    if v.contains(&b',') {
        if v.contains(&b'.') {
            return NONE;
        }
        let class = with_point(v, classify).unwrap_or(NONE);
        return only(class.mask & FLOAT);
    }
    let mut class = classify(v);
    if v.contains(&b'.') {
        class.mask &= !FLOAT;
    }
    class
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::INT;
    use lakehouse_api::{CsvOptions, DecimalSeparator};
    use proptest::prelude::*;

    fn comma() -> Reading {
        Reading::new(&CsvOptions {
            decimal_separator: DecimalSeparator::Comma,
            ..CsvOptions::default()
        })
    }

    #[test]
    fn a_decimal_comma_is_the_point_and_a_point_is_not() {
        let r = comma();
        assert_eq!(r.parse_float_literal(b"1234,56"), Some((1234.56, false)));
        assert_eq!(r.parse_float_literal(b"-0,5"), Some((-0.5, false)));
        assert_eq!(r.parse_float_literal(b"7"), Some((7.0, true)));
        assert_eq!(r.parse_float_literal(b"1.5"), None);
        assert_eq!(r.parse_float_literal(b"1.234,56"), None);
        assert_eq!(r.classify(b"5,5").mask, FLOAT);
        assert_eq!(r.classify(b"1,2,3").mask, 0);
        assert_eq!(r.classify(b"1.5").mask & FLOAT, 0);
        assert_ne!(r.classify(b"12").mask & INT, 0);
        // Dates and timestamps with a `.` keep their own types.
        assert_ne!(r.classify(b"01.02.2024").mask & (DMY | MDY), 0);
        // The default reading is the grammar itself.
        let plain = Reading::new(&CsvOptions::default());
        for v in [&b"1.5"[..], b"5,5", b"01/02/2024", b"x"] {
            assert_eq!(plain.classify(v), classify(v));
        }
    }

    #[test]
    fn a_date_order_keeps_one_reading() {
        let dmy = Reading::new(&CsvOptions {
            date_order: Some(DateOrder::Dmy),
            ..CsvOptions::default()
        });
        assert_eq!(dmy.forced_order(), Some(DateOrder::Dmy));
        assert_eq!(dmy.classify(b"01/02/2024").mask & PQ, DMY);
        assert_eq!(dmy.classify(b"02/13/2024").mask & PQ, 0);
    }

    proptest! {
        /// A value written with a decimal comma reads as the same value written with a point.
        #[test]
        fn a_comma_float_is_the_point_float(
            int in "[+-]?(0|[1-9][0-9]{0,12})",
            frac in "[0-9]{1,6}",
        ) {
            let with_comma = format!("{int},{frac}");
            let with_point = format!("{int}.{frac}");
            let r = comma();
            prop_assert_eq!(r.classify(with_comma.as_bytes()).mask, FLOAT);
            prop_assert_eq!(
                r.parse_float_literal(with_comma.as_bytes()).map(|(v, _)| v.to_bits()),
                parse_float_literal(with_point.as_bytes()).map(|(v, _)| v.to_bits())
            );
            prop_assert_eq!(r.classify(with_point.as_bytes()).mask & FLOAT, 0);
        }
    }
}
