//! Reading the CSV: RFC 4180 records through the `csv` crate, with the checks it leaves to
//! us (DESIGN.md section 3): the BOM, true start lines, field counts, UTF-8, a quoted field
//! still open at the end of the file, and the header renames.

use crate::error::{ConvertError, Result};
use csv::ByteRecord;
use lakehouse_api::{CsvOptions, ReadLimits};
use std::collections::HashSet;
use std::io::{self, Read};

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Read buffer of the csv reader, bytes (its default of 8 KiB costs more calls per byte).
const READ_BUFFER_BYTES: usize = 32 * 1024;

/// Dead bytes kept before the tail buffer is compacted.
const COMPACT_BYTES: usize = 64 * 1024;

/// The input as the `csv` crate sees it: without a leading BOM, and with the bytes of the
/// current record kept (from its start to the read frontier) so that its true start line and
/// an unclosed quote can be found.
///
/// The `csv` crate strips a BOM only when its first buffer holds all three bytes, which
/// depends on how the input is chunked; this reader strips it itself and hands over the first
/// byte alone, so the crate never strips anything and the result does not depend on chunking.
struct Source<R> {
    inner: R,
    /// Up to three bytes read ahead to look for the BOM, served before `inner`.
    pending: [u8; 3],
    pending_at: usize,
    pending_len: usize,
    /// The BOM check has run.
    started: bool,
    /// No byte has been handed to the csv crate yet.
    first: bool,
    /// Bytes handed out from absolute offset `tail_start` (offsets exclude the BOM, like the
    /// csv crate's positions).
    tail: Vec<u8>,
    tail_start: u64,
    /// Absolute offset where the record being parsed began (the end of the last complete
    /// record), and the most bytes past it the reader may hand out: the memory guard.
    boundary: u64,
    max_in_flight: u64,
}

/// The marker error [`Source`] fails a read with when a record in progress is certainly
/// larger than `max_record_bytes`.
#[derive(Debug)]
struct RecordTooLarge;

impl std::fmt::Display for RecordTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("record larger than max_record_bytes")
    }
}

impl std::error::Error for RecordTooLarge {}

impl<R: Read> Source<R> {
    fn new(inner: R, max_record_bytes: u64) -> Self {
        Source {
            boundary: 0,
            // The csv crate reads ahead by at most its buffer, so a record in progress whose
            // bytes reach past this is larger than the cap whatever the read chunking.
            max_in_flight: max_record_bytes.saturating_add(2 * READ_BUFFER_BYTES as u64),
            inner,
            pending: [0; 3],
            pending_at: 0,
            pending_len: 0,
            started: false,
            first: true,
            tail: Vec::new(),
            tail_start: 0,
        }
    }

    fn start(&mut self) -> io::Result<()> {
        while self.pending_len < 3 {
            let Some(buf) = self.pending.get_mut(self.pending_len..) else {
                break;
            };
            match self.inner.read(buf) {
                Ok(0) => break,
                Ok(n) => self.pending_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if self.pending_len == 3 && &self.pending == BOM {
            self.pending_len = 0;
        }
        self.started = true;
        Ok(())
    }

    /// Forgets the bytes before absolute offset `offset` (amortized: compacts only when the
    /// dead prefix is large and at least half of the buffer).
    fn release_before(&mut self, offset: u64) {
        let dead = usize::try_from(offset.saturating_sub(self.tail_start)).unwrap_or(usize::MAX);
        if dead >= COMPACT_BYTES && dead.saturating_mul(2) >= self.tail.len() {
            let dead = dead.min(self.tail.len());
            self.tail.drain(..dead);
            self.tail_start += dead as u64;
        }
    }

    /// The kept bytes from absolute offset `from` up to `to` (clamped to what is kept).
    fn span(&self, from: u64, to: u64) -> &[u8] {
        let start = usize::try_from(from.saturating_sub(self.tail_start)).unwrap_or(usize::MAX);
        let end = usize::try_from(to.saturating_sub(self.tail_start)).unwrap_or(usize::MAX);
        let end = end.min(self.tail.len());
        self.tail.get(start.min(end)..end).unwrap_or(&[])
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.start()?;
        }
        let frontier = self.tail_start + self.tail.len() as u64;
        if frontier.saturating_sub(self.boundary) > self.max_in_flight {
            return Err(io::Error::other(RecordTooLarge));
        }
        let limit = if self.first { 1 } else { buf.len() };
        let n = if self.pending_at < self.pending_len {
            // One byte at a time: at most three calls.
            match (buf.first_mut(), self.pending.get(self.pending_at)) {
                (Some(slot), Some(&b)) => {
                    *slot = b;
                    self.pending_at += 1;
                    1
                }
                _ => 0,
            }
        } else {
            let end = limit.min(buf.len());
            let Some(dest) = buf.get_mut(..end) else {
                return Ok(0);
            };
            self.inner.read(dest)?
        };
        if n > 0 {
            self.first = false;
            self.tail.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        }
        Ok(n)
    }
}

/// Where a quoted field is left open at the end of `bytes`, which start at the start of a
/// record: `Some(1-based field)` if the last quoted field never closes. Mirrors csv-core's
/// state machine (quote `"`, doubled quotes, terminators CR, LF, CRLF, no escapes or
/// comments).
pub(crate) fn open_quote_field(bytes: &[u8], delimiter: u8) -> Option<u64> {
    #[derive(Clone, Copy)]
    enum State {
        StartField,
        InField,
        InQuoted,
        QuoteInQuoted,
    }
    let is_term = |b: u8| b == b'\r' || b == b'\n';
    let mut state = State::StartField;
    let mut field: u64 = 1;
    for &b in bytes {
        state = match (state, b) {
            (State::InQuoted, b'"') => State::QuoteInQuoted,
            (State::InQuoted, _) => State::InQuoted,
            // Opening quote, or the second quote of a doubled `""` inside a quoted field.
            (State::StartField | State::QuoteInQuoted, b'"') => State::InQuoted,
            (_, b) if b == delimiter => {
                field += 1;
                State::StartField
            }
            (_, b) if is_term(b) => {
                field = 1;
                State::StartField
            }
            // A quote inside an unquoted field, or text after a closing quote, is literal.
            _ => State::InField,
        };
    }
    matches!(state, State::InQuoted).then_some(field)
}

/// The header of a CSV after DESIGN.md section 3's renames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Final column names, in order.
    pub names: Vec<String>,
    /// One line per rename.
    pub warnings: Vec<String>,
}

/// Applies the renames of DESIGN.md section 3 to raw header names.
///
/// Left to right: an empty name becomes `column_<n>` (n = 1-based position); then a name
/// equal to an EARLIER final name gets `_2`, `_3`, ... appended (the first suffix not taken
/// by an earlier final name). Later names are not looked at, so `a,a,a_2` becomes `a`,
/// `a_2`, `a_2_2`.
pub(crate) fn rename_header(raw: &[&str]) -> Header {
    let mut taken: HashSet<String> = HashSet::with_capacity(raw.len());
    let mut names = Vec::with_capacity(raw.len());
    let mut warnings = Vec::new();
    for (i, &name) in raw.iter().enumerate() {
        let n = i + 1;
        let base = if name.is_empty() {
            format!("column_{n}")
        } else {
            name.to_owned()
        };
        let final_name = if taken.contains(&base) {
            (2u64..)
                .map(|k| format!("{base}_{k}"))
                .find(|candidate| !taken.contains(candidate))
                .unwrap_or_default()
        } else {
            base
        };
        if name.is_empty() {
            warnings.push(format!(
                "column {n}: empty header name renamed to \"{final_name}\""
            ));
        } else if final_name != name {
            warnings.push(format!(
                "column {n}: duplicate header name \"{name}\" renamed to \"{final_name}\""
            ));
        }
        taken.insert(final_name.clone());
        names.push(final_name);
    }
    Header { names, warnings }
}

/// Validated records of one CSV: the header first, then data records of the header's width,
/// all UTF-8, each with its true 1-based start line.
pub(crate) struct Records<R> {
    reader: csv::Reader<Source<R>>,
    record: ByteRecord,
    delimiter: u8,
    limits: ReadLimits,
    width: usize,
    /// Absolute byte offsets at which the last record read starts and ends, and its line.
    last_start: u64,
    last_end: u64,
    last_line: u64,
    rows: u64,
    done: bool,
}

impl<R: Read> Records<R> {
    /// Opens `reader` and reads and validates its header.
    ///
    /// # Errors
    /// `EmptyCsv`, `MalformedCsv`, `InvalidHeader`, `Io`.
    pub(crate) fn open(reader: R, options: &CsvOptions) -> Result<(Self, Header)> {
        let reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(options.delimiter)
            .buffer_capacity(READ_BUFFER_BYTES)
            .from_reader(Source::new(reader, options.limits.max_record_bytes));
        let mut records = Records {
            reader,
            record: ByteRecord::new(),
            delimiter: options.delimiter,
            limits: options.limits,
            width: 0,
            last_start: 0,
            last_end: 0,
            last_line: 1,
            rows: 0,
            done: false,
        };
        if !records.read()? {
            return Err(ConvertError::EmptyCsv);
        }
        records.check_limits()?;
        if records.record.len() as u64 > records.limits.max_columns {
            return Err(records.limit(
                "max_columns",
                records.limits.max_columns,
                Some(records.limits.max_columns + 1),
            ));
        }
        let mut raw = Vec::with_capacity(records.record.len());
        for (i, field) in records.record.iter().enumerate() {
            let column = i as u64 + 1;
            let name = match std::str::from_utf8(field) {
                Ok(name) => name,
                Err(e) => return Err(records.error(Some(column), utf8_reason(&e))),
            };
            if let Some(c) = name.chars().find(|c| u32::from(*c) <= 0x1f) {
                if let Some(open) = records.open_quote() {
                    return Err(open);
                }
                return Err(ConvertError::InvalidHeader {
                    column,
                    reason: format!(
                        "header name contains control character U+{:04X}",
                        u32::from(c)
                    ),
                });
            }
            raw.push(name);
        }
        let header = rename_header(&raw);
        records.width = header.names.len();
        Ok((records, header))
    }

    /// Data records read so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// The next data record with its 1-based start line, or `None` at the end of the file.
    ///
    /// # Errors
    /// `MalformedCsv` (wrong field count, invalid UTF-8, a quoted field open at the end of
    /// the file), `Io`.
    pub(crate) fn next_record(&mut self) -> Result<Option<(u64, &ByteRecord)>> {
        if self.done {
            return Ok(None);
        }
        if !self.read()? {
            self.done = true;
            // The last record read ends at the end of the file: is a quote still open in it?
            return match self.open_quote() {
                Some(error) => Err(error),
                None => Ok(None),
            };
        }
        self.check_limits()?;
        if self.record.len() != self.width {
            let reason = format!(
                "expected {} fields as in the header, found {}",
                self.width,
                self.record.len()
            );
            return Err(self.error(None, reason));
        }
        if let Some((column, reason)) = utf8_problem(&self.record) {
            return Err(self.error(Some(column), reason));
        }
        self.rows += 1;
        Ok(Some((self.last_line, &self.record)))
    }

    /// Reads the next raw record and works out where it truly starts: the csv crate's
    /// position is where the previous record ended, before any empty lines and the rest of
    /// a CRLF, so those are skipped here.
    fn read(&mut self) -> Result<bool> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) if is_record_too_large(&e) => {
                // The oversized record starts after the last complete record and any empty
                // lines: the same start line a complete record gets below.
                let from = self.reader.position().byte();
                let line = self.reader.position().line();
                self.last_line = self.true_start(from, line, u64::MAX).1;
                return Err(self.limit("max_record_bytes", self.limits.max_record_bytes, None));
            }
            Err(e) => return Err(csv_error(e)),
        }
        let (start, line) = self
            .record
            .position()
            .map_or((0, 1), |p| (p.byte(), p.line()));
        let end = self.reader.position().byte();
        let (start, line) = self.true_start(start, line, end);
        self.last_start = start;
        self.last_end = end;
        self.last_line = line;
        let source = self.reader.get_mut();
        source.release_before(start);
        source.boundary = end;
        Ok(true)
    }

    /// The csv crate's position of a record is where the previous record ended, before any
    /// empty lines and the rest of a CRLF: skips those to the record's first byte, counting
    /// lines. Returns that byte offset and its 1-based line.
    fn true_start(&self, mut start: u64, mut line: u64, end: u64) -> (u64, u64) {
        for &b in self.reader.get_ref().span(start, end) {
            match b {
                b'\n' => line += 1,
                b'\r' => {}
                _ => break,
            }
            start += 1;
        }
        (start, line)
    }

    /// The caps of [`ReadLimits`] on the last record read: its size as written (quotes and
    /// line break included), then each field's size.
    fn check_limits(&self) -> Result<()> {
        if self.last_end.saturating_sub(self.last_start) > self.limits.max_record_bytes {
            return Err(self.limit("max_record_bytes", self.limits.max_record_bytes, None));
        }
        // No field is longer than all of them together.
        if self.record.as_slice().len() as u64 <= self.limits.max_field_bytes {
            return Ok(());
        }
        for (i, field) in self.record.iter().enumerate() {
            if field.len() as u64 > self.limits.max_field_bytes {
                return Err(self.limit(
                    "max_field_bytes",
                    self.limits.max_field_bytes,
                    Some(i as u64 + 1),
                ));
            }
        }
        Ok(())
    }

    fn limit(&self, limit: &'static str, max: u64, column: Option<u64>) -> ConvertError {
        ConvertError::LimitExceeded {
            limit,
            max,
            line: self.last_line,
            column,
        }
    }

    /// `MalformedCsv` for the last record read; an unclosed quote, when there is one, is the
    /// better explanation of anything wrong with it.
    fn error(&self, column: Option<u64>, reason: String) -> ConvertError {
        self.open_quote().unwrap_or(ConvertError::MalformedCsv {
            line: self.last_line,
            column,
            reason,
        })
    }

    /// `MalformedCsv` if the last record read ends inside a quoted field, which the csv
    /// crate allows only at the end of the file.
    fn open_quote(&self) -> Option<ConvertError> {
        let end = self.reader.position().byte();
        let bytes = self.reader.get_ref().span(self.last_start, end);
        open_quote_field(bytes, self.delimiter).map(|field| ConvertError::MalformedCsv {
            line: self.last_line,
            column: Some(field),
            reason: "quoted field not closed at end of file".to_owned(),
        })
    }
}

fn utf8_reason(e: &std::str::Utf8Error) -> String {
    format!("invalid utf-8 at byte {} of the field", e.valid_up_to() + 1)
}

/// The first field (1-based) of `record` that is not UTF-8, with a reason.
fn utf8_problem(record: &ByteRecord) -> Option<(u64, String)> {
    // Fastest path: ASCII, word at a time.
    if record.as_slice().is_ascii() {
        return None;
    }
    // Fast path: the whole record is UTF-8 and every field starts on a char boundary, so
    // every field is UTF-8.
    if std::str::from_utf8(record.as_slice()).is_ok()
        && record
            .iter()
            .all(|f| f.first().is_none_or(|&b| b & 0xC0 != 0x80))
    {
        return None;
    }
    record.iter().enumerate().find_map(|(i, field)| {
        std::str::from_utf8(field)
            .err()
            .map(|e| (i as u64 + 1, utf8_reason(&e)))
    })
}

/// Whether `e` is [`Source`]'s memory guard firing.
fn is_record_too_large(e: &csv::Error) -> bool {
    match e.kind() {
        csv::ErrorKind::Io(io) => io
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<RecordTooLarge>().is_some()),
        _ => false,
    }
}

fn csv_error(e: csv::Error) -> ConvertError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ConvertError::Io(io),
        other => ConvertError::MalformedCsv {
            line,
            column: None,
            reason: format!("unreadable csv: {other:?}"),
        },
    }
}

/// The null test of DESIGN.md section 3: the empty field or an exact `null_values` token.
pub(crate) struct Nulls<'a> {
    tokens: &'a [String],
}

impl<'a> Nulls<'a> {
    pub(crate) fn new(options: &'a CsvOptions) -> Self {
        Nulls {
            tokens: &options.null_values,
        }
    }

    #[inline]
    pub(crate) fn is_null(&self, value: &[u8]) -> bool {
        value.is_empty() || self.tokens.iter().any(|t| t.as_bytes() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_quote_state_machine() {
        assert_eq!(open_quote_field(b"a,\"b", b','), Some(2));
        assert_eq!(open_quote_field(b"a,\"b\"", b','), None);
        assert_eq!(
            open_quote_field(b"\"a\"\"", b','),
            Some(1),
            "escaped quote keeps it open"
        );
        assert_eq!(open_quote_field(b"\"a\"\"\"", b','), None);
        assert_eq!(
            open_quote_field(b"x\"y", b','),
            None,
            "quote inside an unquoted field"
        );
        assert_eq!(
            open_quote_field(b"\"x\"y\"", b','),
            None,
            "text after a closing quote"
        );
        assert_eq!(open_quote_field(b"1,2\r\n3\t\"x\r\n", b'\t'), Some(2));
        assert_eq!(open_quote_field(b"", b','), None);
    }

    /// A reader handing out one byte per call, the worst chunking.
    struct OneByte<'a>(&'a [u8]);

    impl Read for OneByte<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn bom_is_stripped_whatever_the_chunking() {
        for input in [&b"\xEF\xBB\xBFid\n1\n"[..], b"id\n1\n"] {
            let (_, header) = Records::open(OneByte(input), &CsvOptions::default()).unwrap();
            assert_eq!(header.names, ["id"]);
            let (_, header) = Records::open(input, &CsvOptions::default()).unwrap();
            assert_eq!(header.names, ["id"]);
        }
        // A partial BOM is not dropped: it is invalid UTF-8 in the header.
        let result = Records::open(&b"\xEF\xBB"[..], &CsvOptions::default());
        assert!(matches!(
            result.err(),
            Some(ConvertError::MalformedCsv {
                line: 1,
                column: Some(1),
                ..
            })
        ));
    }

    #[test]
    fn tail_buffer_stays_small_on_long_inputs() {
        let mut csv = b"a,b\n".to_vec();
        for i in 0..50_000 {
            csv.extend_from_slice(format!("{i},\"x\ny\"\n").as_bytes());
        }
        let (mut records, _) = Records::open(&csv[..], &CsvOptions::default()).unwrap();
        let mut max_tail = 0;
        let mut last_line = 0;
        while let Some((line, _)) = records.next_record().unwrap() {
            last_line = line;
            max_tail = max_tail.max(records.reader.get_ref().tail.len());
        }
        assert_eq!(last_line, 1 + 2 * 50_000 - 1);
        assert!(max_tail < 4 * COMPACT_BYTES, "tail grew to {max_tail}");
    }
}
