//! The value grammar of docs/contract.md section 3: a hand-written byte scanner that classifies a
//! non-null value into the set of column types that accept it, and the parsers that turn an
//! accepted value into its Arrow value.
//!
//! Classification and parsing share the same scanners, so a value is written exactly as it
//! was classified. Nothing here allocates.

use lakehouse_api::{ColumnType, DateOrder};

/// `true`/`false` in any letter case.
pub(crate) const BOOL: u16 = 1 << 0;
/// `[+-]?(0|[1-9][0-9]*)` fitting i64.
pub(crate) const INT: u16 = 1 << 1;
/// Any float literal of the table, ints included.
pub(crate) const FLOAT: u16 = 1 << 2;
/// `YYYY-MM-DD` or `YYYY/MM/DD`, a real calendar date.
pub(crate) const DATE: u16 = 1 << 3;
/// A timestamp with `Z` or `+HH:MM`/`-HH:MM`.
pub(crate) const TS_UTC: u16 = 1 << 4;
/// A timestamp without an offset.
pub(crate) const TS: u16 = 1 << 5;
/// `HH:MM` or `HH:MM:SS[.f{1,6}]`, a time of day (inference version 2).
pub(crate) const TIME: u16 = 1 << 6;
/// `P<s>Q<s>YYYY` that is a real date read month first (inference version 2).
pub(crate) const MDY: u16 = 1 << 7;
/// `P<s>Q<s>YYYY` that is a real date read day first (inference version 2).
pub(crate) const DMY: u16 = 1 << 8;
/// Both readings of `P/Q/YYYY`.
pub(crate) const PQ: u16 = MDY | DMY;
/// Every bit: the mask of a column before its first value.
pub(crate) const ALL: u16 = BOOL | INT | FLOAT | DATE | TIME | TS_UTC | TS | MDY | DMY;

/// 2^53: the largest magnitude up to which every integer is exact in an f64.
pub(crate) const MAX_EXACT_INT: u64 = 1 << 53;

/// What one non-null value can be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Class {
    /// Types (bits above) that accept the value; `utf8` accepts everything and has no bit.
    pub mask: u16,
    /// The value is an int whose magnitude exceeds 2^53, so a float64 column must refuse it.
    pub big_int: bool,
    /// The separator of a `P<s>Q<s>YYYY` value (`/`, `-` or `.`), else 0.
    pub sep: u8,
}

pub(crate) const NONE: Class = Class {
    mask: 0,
    big_int: false,
    sep: 0,
};

/// A class of `mask` alone.
pub(crate) const fn only(mask: u16) -> Class {
    Class {
        mask,
        big_int: false,
        sep: 0,
    }
}

/// The result of scanning a numeric literal.
enum Number {
    /// Not a literal of the table.
    Not,
    /// An int that fits i64.
    Int(i64),
    /// Int grammar but outside i64: neither an int nor a float (it could not be stored
    /// without rounding).
    IntOverflow,
    /// One of the non-int float forms; `exp` tells whether it has an exponent, `int_digits`
    /// how many digits precede the point (to rule out overflow cheaply).
    Float { exp: bool, int_digits: usize },
}

/// Classifies a non-null value (docs/contract.md section 3's table).
#[inline]
pub(crate) fn classify(v: &[u8]) -> Class {
    let Some(&first) = v.first() else {
        return NONE;
    };
    match first {
        b'0'..=b'9' => {
            // `1.5e-3` also has a `-` at index 4: a value that is not a date or timestamp
            // may still be a number.
            if matches!(v.get(4), Some(b'-' | b'/')) {
                let temporal = classify_temporal(v);
                if temporal.mask != 0 {
                    return temporal;
                }
            }
            if v.get(2) == Some(&b':') {
                // Not a number either.
                return if parse_time(v).is_some() {
                    only(TIME)
                } else {
                    NONE
                };
            }
            if (8..=10).contains(&v.len())
                && (matches!(v.get(1), Some(b'/' | b'-' | b'.'))
                    || matches!(v.get(2), Some(b'/' | b'-' | b'.')))
                && let Some((sep, mdy, dmy)) = pq_readings(v)
            {
                return Class {
                    mask: if mdy.is_some() { MDY } else { 0 } | if dmy.is_some() { DMY } else { 0 },
                    big_int: false,
                    sep,
                };
            }
            classify_number(v)
        }
        b'+' | b'-' | b'.' => classify_number(v),
        b't' | b'T' | b'f' | b'F' => {
            if parse_bool(v).is_some() {
                only(BOOL)
            } else {
                NONE
            }
        }
        b'n' | b'N' | b'i' | b'I' => {
            if special_float(v).is_some() {
                only(FLOAT)
            } else {
                NONE
            }
        }
        _ => NONE,
    }
}

fn classify_temporal(v: &[u8]) -> Class {
    if v.len() == 10 {
        return if parse_date(v).is_some() {
            only(DATE)
        } else {
            NONE
        };
    }
    match parse_timestamp(v) {
        Some((_, true)) => only(TS_UTC),
        Some((_, false)) => only(TS),
        None => NONE,
    }
}

fn classify_number(v: &[u8]) -> Class {
    match scan_number(v) {
        Number::Int(i) => Class {
            mask: INT | FLOAT,
            big_int: i.unsigned_abs() > MAX_EXACT_INT,
            sep: 0,
        },
        Number::Float { exp, int_digits } => {
            if float_fits(v, exp, int_digits) {
                only(FLOAT)
            } else {
                NONE
            }
        }
        Number::Not | Number::IntOverflow => {
            if special_float(v).is_some() {
                only(FLOAT)
            } else {
                NONE
            }
        }
    }
}

/// A non-int float literal overflows f64 only when it is huge: without an exponent that
/// needs more than 308 integer digits, so only then (or with an exponent) is it parsed.
fn float_fits(v: &[u8], exp: bool, int_digits: usize) -> bool {
    if !exp && int_digits <= 308 {
        return true;
    }
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .is_some_and(f64::is_finite)
}

/// Scans `[+-]?(0|[1-9][0-9]*)` (an int), or the two non-int float forms
/// `[+-]?(0|[1-9][0-9]*)?\.[0-9]+([eE][+-]?[0-9]+)?` and `[+-]?(0|[1-9][0-9]*)[eE][+-]?[0-9]+`.
fn scan_number(v: &[u8]) -> Number {
    let mut i = 0;
    let negative = match v.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    // Integer part, accumulated as a magnitude; `overflow` once it passes 2^63.
    let int_start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    match v.get(i) {
        Some(b'0') => {
            i += 1;
            if v.get(i).is_some_and(u8::is_ascii_digit) {
                return Number::Not; // a leading zero such as `007`
            }
        }
        Some(b'1'..=b'9') => {
            while let Some(&d) = v.get(i) {
                if !d.is_ascii_digit() {
                    break;
                }
                match magnitude
                    .checked_mul(10)
                    .and_then(|m| m.checked_add(u64::from(d - b'0')))
                {
                    Some(m) => magnitude = m,
                    None => overflow = true,
                }
                i += 1;
            }
        }
        _ => {}
    }
    let int_digits = i - int_start;
    match v.get(i) {
        None => {
            if int_digits == 0 {
                return Number::Not;
            }
            if overflow {
                return Number::IntOverflow;
            }
            return match int_value(negative, magnitude) {
                Some(value) => Number::Int(value),
                None => Number::IntOverflow,
            };
        }
        Some(b'.') => {
            i += 1;
            let frac_start = i;
            while v.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == frac_start {
                return Number::Not; // `5.` or `.`
            }
        }
        Some(b'e' | b'E') => {
            if int_digits == 0 {
                return Number::Not;
            }
        }
        Some(_) => return Number::Not,
    }
    match v.get(i) {
        None => Number::Float {
            exp: false,
            int_digits,
        },
        Some(b'e' | b'E') => {
            i += 1;
            if matches!(v.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let exp_start = i;
            while v.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == exp_start || i != v.len() {
                Number::Not
            } else {
                Number::Float {
                    exp: true,
                    int_digits,
                }
            }
        }
        Some(_) => Number::Not,
    }
}

fn int_value(negative: bool, magnitude: u64) -> Option<i64> {
    if negative {
        if magnitude == 1 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// `nan`, `inf`, `infinity` with an optional sign, any letter case.
fn special_float(v: &[u8]) -> Option<f64> {
    let (negative, rest) = match v.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, v),
    };
    if rest.eq_ignore_ascii_case(b"nan") {
        Some(f64::NAN)
    } else if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        })
    } else {
        None
    }
}

/// `true`/`false`, any letter case.
pub(crate) fn parse_bool(v: &[u8]) -> Option<bool> {
    if v.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if v.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

/// An int64 value: `[+-]?(0|[1-9][0-9]*)` fitting i64.
/// Up to 18 digits cannot overflow, so they take a loop with no overflow checks; longer
/// literals take [`scan_number`].
pub(crate) fn parse_int(v: &[u8]) -> Option<i64> {
    let (negative, digits) = split_sign(v)?;
    if digits.len() > 18 {
        return scan_int(v);
    }
    // No digits, or a leading zero (`007`).
    if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
        return None;
    }
    let mut magnitude: i64 = 0;
    for &d in digits {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude * 10 + i64::from(digit);
    }
    Some(if negative { -magnitude } else { magnitude })
}

/// [`parse_int`] by the full scan, for any length.
fn scan_int(v: &[u8]) -> Option<i64> {
    match scan_number(v) {
        Number::Int(value) => Some(value),
        _ => None,
    }
}

/// `v` without its leading `+` or `-`, and whether that was `-`; `None` for an empty `v`.
fn split_sign(v: &[u8]) -> Option<(bool, &[u8])> {
    Some(match v.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, v),
    })
}

/// A float64 value: any float literal of the table, except ints beyond 2^53 and literals
/// that overflow f64. Decimal literals are converted by Rust's correctly rounded parser.
#[cfg(test)]
pub(crate) fn parse_float(v: &[u8]) -> Option<f64> {
    parse_float_literal(v).map(|(value, _)| value)
}

/// [`parse_float`], also telling whether the literal was an int (`[+-]?(0|[1-9][0-9]*)`):
/// a float64 column is the narrowest type of a whole file only if one of its values is not
/// an int (docs/contract.md section 3), which the verified pass 2 checks with this.
pub(crate) fn parse_float_literal(v: &[u8]) -> Option<(f64, bool)> {
    plain_number(v).or_else(|| any_float_literal(v))
}

/// [`parse_float_literal`] for any literal.
fn any_float_literal(v: &[u8]) -> Option<(f64, bool)> {
    match scan_number(v) {
        Number::Int(value) => {
            if value.unsigned_abs() > MAX_EXACT_INT {
                None
            } else {
                // Exact: |value| <= 2^53.
                Some((value as f64, true))
            }
        }
        Number::Float { .. } => std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map(|f| (f, false)),
        Number::Not | Number::IntOverflow => special_float(v).map(|f| (f, false)),
    }
}

/// Powers of ten exact in an f64.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The fast path of [`parse_float_literal`], in one scan, for its commonest literals: an int
/// `[+-]?(0|[1-9][0-9]*)` or a decimal `[+-]?(0|[1-9][0-9]*)\.[0-9]+` whose digits make an
/// integer `m <= 2^53` (with at most 22 decimals). Then `m` and `10^decimals` are exact f64
/// values and one IEEE division rounds correctly (Clinger's fast path): the value
/// `str::parse` returns. `None` for anything else, which [`any_float_literal`] decides.
fn plain_number(v: &[u8]) -> Option<(f64, bool)> {
    let (negative, digits) = split_sign(v)?;
    let mut mantissa: u64 = 0;
    let mut i = 0;
    while let Some(&d) = digits.get(i).filter(|d| d.is_ascii_digit()) {
        mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        i += 1;
    }
    // No int digits, or a leading zero (`007`, `00.5`).
    if i == 0 || (i > 1 && digits.first() == Some(&b'0')) {
        return None;
    }
    let (value, int) = match digits.get(i) {
        None => {
            let int = i64::try_from(mantissa).ok()?;
            (if negative { -int } else { int } as f64, true)
        }
        Some(b'.') => {
            let frac = digits.get(i + 1..)?;
            if frac.is_empty() {
                return None;
            }
            for &d in frac {
                if !d.is_ascii_digit() {
                    return None;
                }
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            }
            let value = mantissa as f64 / *EXACT_POWERS_OF_TEN.get(frac.len())?;
            (if negative { -value } else { value }, false)
        }
        Some(_) => return None,
    };
    (mantissa <= MAX_EXACT_INT).then_some((value, int))
}

/// The value of the ASCII digits `bytes`, if they all are.
fn digits<const N: usize>(bytes: [u8; N]) -> Option<u32> {
    let mut value = 0u32;
    for b in bytes {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u32::from(digit);
    }
    Some(value)
}

/// `N` bytes of `v` from `at`, as an array (no bounds checks left for the caller).
fn bytes_at<const N: usize>(v: &[u8], at: usize) -> Option<[u8; N]> {
    v.get(at..at + N)?.try_into().ok()
}

fn is_leap(year: u32) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic-Gregorian date (H. Hinnant's `days_from_civil`),
/// for years 0000..=9999: the year is moved on by one 400-year era (146,097 days) so that
/// every step is unsigned and divides by a constant.
fn days_from_civil(year: u32, month: u32, day: u32) -> i32 {
    let y = year + 400 - u32::from(month <= 2);
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // The era is at most 25: far inside i32 either way.
    (era * 146_097 + doe) as i32 - 719_468 - 146_097
}

/// The `YYYY-MM-DD` or `YYYY/MM/DD` prefix of `v` (the same separator twice) as days since
/// the epoch, if it is a real date.
fn date_prefix(v: &[u8]) -> Option<i32> {
    let [y0, y1, y2, y3, dash1, m0, m1, dash2, d0, d1] = bytes_at::<10>(v, 0)?;
    if dash1 != dash2 || !matches!(dash1, b'-' | b'/') {
        return None;
    }
    let year = digits([y0, y1, y2, y3])?;
    let month = digits([m0, m1])?;
    let day = digits([d0, d1])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year, month, day))
}

/// A `P<s>Q<s>YYYY` value (P and Q one or two digits, `<s>` one of `/`, `-`, `.`, the same
/// twice; docs/contract.md section 3): its separator, and its days since the epoch read month
/// first and read day first, each `None` when that reading is not a real date. `None` when
/// the value is not of that form.
pub(crate) fn pq_readings(v: &[u8]) -> Option<(u8, Option<i32>, Option<i32>)> {
    let split = |at: usize| -> Option<(u32, usize)> {
        // One or two digits from `at`, then the separator: (number, separator's index).
        let first = *v.get(at)?;
        if !first.is_ascii_digit() {
            return None;
        }
        match v.get(at + 1)? {
            d @ b'0'..=b'9' => Some((u32::from(first - b'0') * 10 + u32::from(d - b'0'), at + 2)),
            _ => Some((u32::from(first - b'0'), at + 1)),
        }
    };
    let (p, s1) = split(0)?;
    let sep = *v.get(s1)?;
    if !matches!(sep, b'/' | b'-' | b'.') {
        return None;
    }
    let (q, s2) = split(s1 + 1)?;
    if v.get(s2) != Some(&sep) || v.len() != s2 + 5 {
        return None;
    }
    let [y0, y1, y2, y3] = bytes_at::<4>(v, s2 + 1)?;
    let year = digits([y0, y1, y2, y3])?;
    let real = |month: u32, day: u32| {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then(|| days_from_civil(year, month, day))
    };
    Some((sep, real(p, q), real(q, p)))
}

/// A date32 value: exactly `YYYY-MM-DD` or `YYYY/MM/DD` (docs/contract.md section 3, inference
/// version 2), a real proleptic-Gregorian date, as days since 1970-01-01.
pub(crate) fn parse_date(v: &[u8]) -> Option<i32> {
    if v.len() != 10 {
        return None;
    }
    date_prefix(v)
}

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;

/// A time64[us] value (docs/contract.md section 3, inference version 2): `HH:MM` or
/// `HH:MM:SS[.f{1,6}]`, hours 00-23, minutes and seconds 00-59, as microseconds since
/// midnight.
pub(crate) fn parse_time(v: &[u8]) -> Option<i64> {
    let [h0, h1, colon1, m0, m1] = bytes_at::<5>(v, 0)?;
    if colon1 != b':' {
        return None;
    }
    let hour = digits([h0, h1])?;
    let minute = digits([m0, m1])?;
    let (second, mut i) = match v.get(5) {
        None => (0, 5),
        Some(b':') => {
            let [s0, s1] = bytes_at::<2>(v, 6)?;
            (digits([s0, s1])?, 8)
        }
        Some(_) => return None,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut micros: i64 = 0;
    if i == 8 && v.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(&d) = v.get(i) {
            if !d.is_ascii_digit() || i - start == 6 {
                return None; // not a digit, or more than 6 of them
            }
            micros = micros * 10 + i64::from(d - b'0');
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    if i != v.len() {
        return None;
    }
    Some(
        (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * MICROS_PER_SECOND
            + micros,
    )
}

/// A timestamp value: a date as [`parse_date`] takes it, `T` or one space, `HH:MM` or
/// `HH:MM:SS[.f{1,6}]`, then an optional `Z` or `+HH:MM`/`-HH:MM`; as (microseconds since
/// the epoch in UTC, had an offset). `HH:MM` is inference version 2's, as `YYYY/MM/DD`.
pub(crate) fn parse_timestamp(v: &[u8]) -> Option<(i64, bool)> {
    let days = date_prefix(v)?;
    if !matches!(v.get(10), Some(b'T' | b' ')) {
        return None;
    }
    let [h0, h1, colon1, m0, m1] = bytes_at::<5>(v, 11)?;
    if colon1 != b':' {
        return None;
    }
    let hour = digits([h0, h1])?;
    let minute = digits([m0, m1])?;
    let (second, mut i) = if v.get(16) == Some(&b':') {
        let [s0, s1] = bytes_at::<2>(v, 17)?;
        (digits([s0, s1])?, 19)
    } else {
        (0, 16)
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut micros: i64 = 0;
    // A fraction only after seconds.
    if i == 19 && v.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(&d) = v.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            if i - start == 6 {
                return None; // more than 6 fractional digits would be truncated
            }
            micros = micros * 10 + i64::from(d - b'0');
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let local = i64::from(days) * MICROS_PER_DAY
        + (i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)) * MICROS_PER_SECOND
        + micros;
    match v.get(i) {
        None => Some((local, false)),
        Some(b'Z') if i + 1 == v.len() => Some((local, true)),
        Some(&sign @ (b'+' | b'-')) if i + 6 == v.len() => {
            let [h0, h1, colon, m0, m1] = bytes_at::<5>(v, i + 1)?;
            let oh = digits([h0, h1])?;
            let om = digits([m0, m1])?;
            if colon != b':' || oh > 23 || om > 59 {
                return None;
            }
            let offset = (i64::from(oh) * 3600 + i64::from(om) * 60) * MICROS_PER_SECOND;
            // Local time = UTC + offset, so UTC = local - offset.
            Some((
                if sign == b'+' {
                    local - offset
                } else {
                    local + offset
                },
                true,
            ))
        }
        Some(_) => None,
    }
}

/// Per-column state of the whole-file inference of docs/contract.md section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ColumnStats {
    /// Types that accepted every non-null value so far.
    pub mask: u16,
    /// The separator of the column's `P/Q/YYYY` values so far (0 before the first).
    pub sep: u8,
    /// At least one non-null value was seen.
    pub non_null: bool,
    /// At least one int with magnitude above 2^53 was seen.
    pub big_int: bool,
}

impl ColumnStats {
    pub(crate) const fn new() -> Self {
        ColumnStats {
            mask: ALL,
            sep: 0,
            non_null: false,
            big_int: false,
        }
    }

    /// Folds in one classified non-null value.
    #[inline]
    pub(crate) fn observe(&mut self, class: Class) {
        self.mask &= class.mask;
        if class.mask & PQ != 0 {
            // One separator for the whole column, else not a P/Q/YYYY date column.
            if self.sep == 0 {
                self.sep = class.sep;
            } else if self.sep != class.sep {
                self.mask &= !PQ;
            }
        }
        self.non_null = true;
        self.big_int |= class.big_int;
    }

    /// The state after the values of `self` and then those of `later`, each classified
    /// from a fresh state: exactly what observing them all in that order gives, so that
    /// chunks of one file classified on several threads fold into the file's state
    /// (docs/contract.md section 13).
    pub(crate) fn then(self, later: ColumnStats) -> ColumnStats {
        let mut mask = self.mask & later.mask;
        if self.sep != 0 && later.sep != 0 && self.sep != later.sep {
            mask &= !PQ;
        }
        ColumnStats {
            mask,
            sep: if self.sep == 0 { later.sep } else { self.sep },
            non_null: self.non_null || later.non_null,
            big_int: self.big_int || later.big_int,
        }
    }

    /// The day/month order of a `date32` column of `P/Q/YYYY` values (docs/contract.md section 3).
    pub(crate) fn order(&self) -> Option<DateOrder> {
        if !self.non_null || self.mask & (BOOL | INT | FLOAT | DATE) != 0 {
            return None;
        }
        match self.mask & PQ {
            MDY => Some(DateOrder::Mdy),
            DMY => Some(DateOrder::Dmy),
            _ => None,
        }
    }

    /// Whether another value could still change the outcome (false once it is utf8).
    #[inline]
    pub(crate) fn undecided(&self) -> bool {
        self.mask != 0
    }

    /// The narrowest type of the table that accepts every value seen.
    pub(crate) fn resolve(&self) -> ColumnType {
        let mask = self.mask;
        if !self.non_null {
            ColumnType::Utf8
        } else if mask & BOOL != 0 {
            ColumnType::Bool
        } else if mask & INT != 0 {
            ColumnType::Int64
        } else if mask & FLOAT != 0 {
            // Ints mixed with non-int floats: only if every int is exact in an f64.
            if self.big_int {
                ColumnType::Utf8
            } else {
                ColumnType::Float64
            }
        } else if mask & DATE != 0 || mask & PQ == MDY || mask & PQ == DMY {
            // Day/month order settled by the whole column (both readings, or neither: utf8).
            ColumnType::Date32
        } else if mask & TIME != 0 {
            ColumnType::Time64
        } else if mask & TS_UTC != 0 {
            ColumnType::TimestampUtc
        } else if mask & TS != 0 {
            ColumnType::Timestamp
        } else {
            ColumnType::Utf8
        }
    }
}

/// Whether the values folded into `stats` rule out every type above `ty` in docs/contract.md
/// section 3's table (its "Inference report": the value that makes this true first is the
/// column's `decided_by`). Float64 is ruled out by a non-float value, or by an int beyond
/// 2^53 together with a value that is not an int.
pub(crate) fn rules_out_above(stats: &ColumnStats, ty: ColumnType) -> bool {
    let mask = stats.mask;
    ColumnType::ALL
        .iter()
        .take_while(|&&above| above != ty)
        .all(|&above| match above {
            ColumnType::Bool => mask & BOOL == 0,
            ColumnType::Int64 => mask & INT == 0,
            ColumnType::Float64 => mask & FLOAT == 0 || (stats.big_int && mask & INT == 0),
            ColumnType::Date32 => mask & (DATE | PQ) == 0,
            ColumnType::Time64 => mask & TIME == 0,
            ColumnType::TimestampUtc => mask & TS_UTC == 0,
            ColumnType::Timestamp => mask & TS == 0,
            ColumnType::Utf8 => false,
        })
}

/// Whether a column registered as `ty` accepts a value of class `class` (docs/contract.md section 3,
/// "Uploads to an existing dataset"): the table's rules, float64 accepting ints up to 2^53 in
/// magnitude, utf8 accepting anything.
#[cfg(test)]
pub(crate) fn accepts(ty: ColumnType, class: Class) -> bool {
    accepts_in(ty, None, class)
}

/// [`accepts`] for a column that may have a day/month order: a `date32` column with one
/// accepts `P/Q/YYYY` values that are real dates in that order (and no other form).
#[inline]
pub(crate) fn accepts_in(ty: ColumnType, order: Option<DateOrder>, class: Class) -> bool {
    match ty {
        ColumnType::Bool => class.mask & BOOL != 0,
        ColumnType::Int64 => class.mask & INT != 0,
        ColumnType::Float64 => class.mask & FLOAT != 0 && !class.big_int,
        ColumnType::Date32 => match order {
            None => class.mask & DATE != 0,
            Some(DateOrder::Mdy) => class.mask & MDY != 0,
            Some(DateOrder::Dmy) => class.mask & DMY != 0,
        },
        ColumnType::Time64 => class.mask & TIME != 0,
        ColumnType::TimestampUtc => class.mask & TS_UTC != 0,
        ColumnType::Timestamp => class.mask & TS != 0,
        ColumnType::Utf8 => true,
    }
}

#[cfg(test)]
mod tests;
