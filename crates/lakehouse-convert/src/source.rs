//! Reading the CSV: RFC 4180 records split by [`crate::tokenize`], with the checks docs/contract.md
//! section 3 asks for on top: the header renames, field counts, UTF-8, the caps of
//! [`ReadLimits`], and a quoted field still open at the end of the file.

use crate::error::{ConvertError, Result};
use crate::tokenize::{Record, TokenError, Tokenizer};
use lakehouse_api::CsvOptions;
use std::collections::HashSet;
use std::io::Read;

/// Caps a CSV must stay within, so that no input can make a reader hold more than a
/// configured amount of memory (docs/contract.md section 2, invariant 5). Exceeding one is a 400
/// `limit_exceeded` naming the cap, the line and, for fields, the column.
///
/// A setting of the reading service (ingestd's configuration), not of the dataset: it is not
/// part of [`CsvOptions`], the wire type the manifest records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReadLimits {
    /// Most fields in the header (and so in every record).
    pub max_columns: u64,
    /// Most bytes in one field (after unquoting).
    pub max_field_bytes: u64,
    /// Most bytes in one record as written (quotes and line breaks inside it included).
    pub max_record_bytes: u64,
}

impl Default for ReadLimits {
    /// 10,000 columns, 16 MiB per field, 64 MiB per record.
    fn default() -> Self {
        ReadLimits {
            max_columns: 10_000,
            max_field_bytes: 16 * 1024 * 1024,
            max_record_bytes: 64 * 1024 * 1024,
        }
    }
}

/// How to read one CSV: the dataset's [`CsvOptions`] (delimiter, null tokens) and the
/// service's [`ReadLimits`]. Every reading function of this crate takes
/// `impl Into<ReadConfig>`, so `&CsvOptions` alone reads with the default limits.
#[derive(Debug, Clone, Copy)]
pub struct ReadConfig<'a> {
    /// Delimiter and null tokens (docs/contract.md section 3).
    pub csv: &'a CsvOptions,
    /// Caps on the input's shape.
    pub limits: ReadLimits,
    /// `csv.delimiter` was sniffed (docs/contract.md section 3), not given: a ragged record's
    /// `malformed_csv` message then names it and says how to give one.
    pub delimiter_sniffed: bool,
    /// Threads that parse one CSV in pass 2 when it is large (docs/contract.md section 13):
    /// 1 reads it on the calling thread; the bytes written are the same at any count.
    pub threads: usize,
    /// With `threads` > 1: the bytes of a chunk one thread parses (a chunk ends after the
    /// record that reaches this size, at most four times it), and an input shorter than
    /// four times this is parsed on the calling thread. [`crate::PARALLEL_CHUNK_BYTES`] unless
    /// set; tests set a few bytes, to put chunk boundaries everywhere.
    pub chunk_bytes: usize,
}

impl<'a> ReadConfig<'a> {
    /// `csv` read within `limits`.
    pub fn new(csv: &'a CsvOptions, limits: ReadLimits) -> Self {
        ReadConfig {
            csv,
            limits,
            delimiter_sniffed: false,
            threads: 1,
            chunk_bytes: crate::PARALLEL_CHUNK_BYTES,
        }
    }

    /// The same, with chunks of `chunk_bytes` (at least 1) for a parallel pass 2.
    pub fn chunk_bytes(self, chunk_bytes: usize) -> Self {
        ReadConfig {
            chunk_bytes: chunk_bytes.max(1),
            ..self
        }
    }

    /// The same, parsing pass 2 on `threads` threads (at least 1).
    pub fn threads(self, threads: usize) -> Self {
        ReadConfig {
            threads: threads.max(1),
            ..self
        }
    }

    /// The same, saying whether `csv.delimiter` was sniffed.
    pub fn sniffed(self, delimiter_sniffed: bool) -> Self {
        ReadConfig {
            delimiter_sniffed,
            ..self
        }
    }
}

impl<'a> From<&'a CsvOptions> for ReadConfig<'a> {
    /// `csv` with [`ReadLimits::default`].
    fn from(csv: &'a CsvOptions) -> Self {
        ReadConfig::new(csv, ReadLimits::default())
    }
}

/// The header of a CSV after docs/contract.md section 3's renames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// Final column names, in order.
    pub names: Vec<String>,
    /// One line per rename.
    pub warnings: Vec<String>,
}

/// Applies the renames of docs/contract.md section 3 to raw header names.
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
/// all UTF-8. [`Records::line`] gives a record's 1-based start line.
pub(crate) struct Records<R> {
    tokens: Tokenizer<R>,
    limits: ReadLimits,
    /// The sniffed delimiter, to name in a ragged record's message.
    sniffed: Option<u8>,
    width: usize,
    rows: u64,
    done: bool,
}

impl<R: Read> Records<R> {
    /// Opens `reader` and reads and validates its header.
    ///
    /// # Errors
    /// `EmptyCsv`, `MalformedCsv`, `InvalidHeader`, `LimitExceeded`, `Io`.
    pub(crate) fn open(reader: R, read: ReadConfig<'_>) -> Result<(Self, Header)> {
        let mut records = Records {
            tokens: Tokenizer::new(reader, read.csv.delimiter, read.limits.max_record_bytes),
            limits: read.limits,
            sniffed: read.delimiter_sniffed.then_some(read.csv.delimiter),
            width: 0,
            rows: 0,
            done: false,
        };
        if !records.read()? {
            return Err(ConvertError::EmptyCsv);
        }
        records.check_limits()?;
        let header = records.tokens.record();
        if header.len() as u64 > records.limits.max_columns {
            return Err(records.limit(
                "max_columns",
                records.limits.max_columns,
                Some(records.limits.max_columns + 1),
            ));
        }
        let mut raw = Vec::with_capacity(header.len());
        for (i, field) in header.iter().enumerate() {
            let column = i as u64 + 1;
            let name = match std::str::from_utf8(field) {
                Ok(name) => name,
                Err(e) => return Err(records.error(Some(column), utf8_reason(field, &e))),
            };
            if let Some(c) = name.chars().find(|c| u32::from(*c) <= 0x1f) {
                if let Some(open) = records.open_quote() {
                    return Err(open);
                }
                return Err(ConvertError::InvalidHeader {
                    column,
                    reason: format!(
                        "header name contains control character U+{:04X}{}",
                        u32::from(c),
                        utf16_hint(header.iter().next().unwrap_or_default())
                    ),
                });
            }
            raw.push(name);
        }
        let header = rename_header(&raw);
        records.width = header.names.len();
        Ok((records, header))
    }

    /// The data records of a chunk of a CSV whose header is `width` fields wide, the chunk
    /// starting at a record's first byte after `newlines_before` LF bytes of the file
    /// (docs/contract.md section 13): the same records, errors and lines as [`Records::open`]
    /// gives for those bytes in the whole file.
    pub(crate) fn continuing(
        reader: R,
        read: ReadConfig<'_>,
        width: usize,
        newlines_before: u64,
    ) -> Self {
        Records {
            tokens: Tokenizer::continuing(
                reader,
                read.csv.delimiter,
                read.limits.max_record_bytes,
                newlines_before,
            ),
            limits: read.limits,
            sniffed: read.delimiter_sniffed.then_some(read.csv.delimiter),
            width,
            rows: 0,
            done: false,
        }
    }

    /// Data records read so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads the next data record, then [`Records::record`] has it; `false` at the end of
    /// the file.
    ///
    /// # Errors
    /// `MalformedCsv` (wrong field count, invalid UTF-8, a quoted field open at the end of
    /// the file), `LimitExceeded`, `Io`.
    pub(crate) fn next_record(&mut self) -> Result<bool> {
        if self.done {
            return Ok(false);
        }
        if !self.read()? {
            self.done = true;
            // The last record read ends at the end of the file: is a quote still open in it?
            return match self.open_quote() {
                Some(error) => Err(error),
                None => Ok(false),
            };
        }
        self.check_limits()?;
        let record = self.tokens.record();
        if record.len() != self.width {
            let mut reason = format!(
                "expected {} fields as in the header, found {}",
                self.width,
                record.len()
            );
            if let Some(delimiter) = self.sniffed {
                reason.push_str(&format!(
                    " (the delimiter {} was sniffed from the first {} records; give \
                     `delimiter=` to set another)",
                    delimiter_name(delimiter),
                    crate::SNIFF_RECORDS
                ));
            }
            return Err(self.error(None, reason));
        }
        if self.tokens.maybe_non_ascii()
            && let Some((column, reason)) = utf8_problem(record)
        {
            return Err(self.error(Some(column), reason));
        }
        self.rows += 1;
        Ok(true)
    }

    /// [`Records::next_record`] for reading with rejects (docs/contract.md section 3, "Rejects"):
    /// a record with the wrong field count or invalid UTF-8 is not an error of the read but
    /// `Some(Some(error))`, the error [`Records::next_record`] would have returned, and the
    /// read goes on after it; `Some(None)` is a good record, `None` the end of the file. An
    /// open quote at the end of the file and the caps stay errors.
    ///
    /// # Errors
    /// `MalformedCsv` (a quoted field open at the end of the file), `LimitExceeded`, `Io`.
    pub(crate) fn next_or_flaw(&mut self) -> Result<Option<Option<ConvertError>>> {
        if self.done {
            return Ok(None);
        }
        if !self.read()? {
            self.done = true;
            return match self.open_quote() {
                Some(error) => Err(error),
                None => Ok(None),
            };
        }
        self.check_limits()?;
        if let Some(open) = self.open_quote() {
            return Err(open);
        }
        let record = self.tokens.record();
        if record.len() != self.width {
            let reason = format!(
                "expected {} fields as in the header, found {}",
                self.width,
                record.len()
            );
            return Ok(Some(Some(self.error(None, reason))));
        }
        if self.tokens.maybe_non_ascii()
            && let Some((column, reason)) = utf8_problem(record)
        {
            return Ok(Some(Some(self.error(Some(column), reason))));
        }
        self.rows += 1;
        Ok(Some(None))
    }

    /// The fields of the last record read.
    pub(crate) fn record(&self) -> Record<'_> {
        self.tokens.record()
    }

    /// Where the last record read sits in the input, as byte offsets (its terminator
    /// included; see `Tokenizer::raw_span`).
    pub(crate) fn raw_span(&self) -> std::ops::Range<u64> {
        self.tokens.raw_span()
    }

    /// The 1-based line on which the last record read starts.
    pub(crate) fn line(&self) -> u64 {
        self.tokens.line()
    }

    fn read(&mut self) -> Result<bool> {
        self.tokens.next_record().map_err(|e| match e {
            TokenError::RecordTooLarge => {
                self.limit("max_record_bytes", self.limits.max_record_bytes, None)
            }
            TokenError::Io(io) => ConvertError::from_read(io),
        })
    }

    /// The caps of [`ReadLimits`] on the last record read: its size as written (quotes and
    /// line break included), then each field's size.
    fn check_limits(&self) -> Result<()> {
        let size = self.tokens.raw_len();
        if size > self.limits.max_record_bytes {
            return Err(self.limit("max_record_bytes", self.limits.max_record_bytes, None));
        }
        // No field is longer than the record as written.
        if size <= self.limits.max_field_bytes {
            return Ok(());
        }
        for (i, field) in self.tokens.record().iter().enumerate() {
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
            line: self.line(),
            column,
        }
    }

    /// `MalformedCsv` for the last record read; an unclosed quote, when there is one, is the
    /// better explanation of anything wrong with it.
    fn error(&self, column: Option<u64>, reason: String) -> ConvertError {
        self.open_quote().unwrap_or(ConvertError::MalformedCsv {
            line: self.line(),
            column,
            reason,
        })
    }

    /// `MalformedCsv` if the last record read ends inside a quoted field, which the
    /// tokenizer allows only at the end of the file.
    fn open_quote(&self) -> Option<ConvertError> {
        self.tokens
            .open_quote()
            .map(|field| ConvertError::MalformedCsv {
                line: self.line(),
                column: Some(field),
                reason: "quoted field not closed at end of file".to_owned(),
            })
    }
}

/// A delimiter as a message shows it: `tab`, or the character quoted.
fn delimiter_name(delimiter: u8) -> String {
    match delimiter {
        b'\t' => "`tab`".to_owned(),
        other => format!("`{}`", char::from(other)),
    }
}

/// Bytes Windows-1252 leaves undefined (and NUL): a field holding one is not Windows-1252
/// text either.
const NOT_WINDOWS_1252: [u8; 6] = [0x00, 0x81, 0x8d, 0x8f, 0x90, 0x9d];

/// The reason of a field that is not UTF-8, with the likely fix when the field reads as
/// Windows-1252 (docs/contract.md section 14).
fn utf8_reason(field: &[u8], e: &std::str::Utf8Error) -> String {
    let mut reason = format!("invalid utf-8 at byte {} of the field", e.valid_up_to() + 1);
    if !field.iter().any(|b| NOT_WINDOWS_1252.contains(b)) {
        reason.push_str(
            " (it reads as Windows-1252, which spreadsheet exports on Windows often are: \
             add `encoding=windows-1252`)",
        );
    }
    reason
}

/// The likely cause of a NUL in the header (docs/contract.md section 14): the first header field
/// has NUL bytes in every other position, as ASCII text in UTF-16 has, and there was no
/// byte order mark to say so. Empty when it does not look like that.
fn utf16_hint(first: &[u8]) -> &'static str {
    let every_other =
        |start: usize| first.len() >= 2 && first.iter().skip(start).step_by(2).all(|&b| b == 0);
    if first.first().is_some_and(|&b| b != 0) && every_other(1) {
        " (the header has a NUL byte after every character: the file looks like UTF-16 \
         little-endian without a byte order mark; add `encoding=utf-16le`)"
    } else if every_other(0) {
        " (the header has a NUL byte before every character: the file looks like UTF-16 \
         big-endian without a byte order mark; add `encoding=utf-16be`)"
    } else {
        ""
    }
}

/// The first field (1-based) of `record` that is not UTF-8, with a reason.
fn utf8_problem(record: Record<'_>) -> Option<(u64, String)> {
    record.iter().enumerate().find_map(|(i, field)| {
        std::str::from_utf8(field)
            .err()
            .map(|e| (i as u64 + 1, utf8_reason(field, &e)))
    })
}

/// The null test of docs/contract.md section 3: the empty field or an exact `null_values` token.
pub(crate) struct Nulls<'a> {
    tokens: &'a [String],
}

impl<'a> Nulls<'a> {
    pub(crate) fn new(read: ReadConfig<'a>) -> Self {
        Nulls {
            tokens: &read.csv.null_values,
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
    use std::io;

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
            let (_, header) =
                Records::open(OneByte(input), (&CsvOptions::default()).into()).unwrap();
            assert_eq!(header.names, ["id"]);
            let (_, header) = Records::open(input, (&CsvOptions::default()).into()).unwrap();
            assert_eq!(header.names, ["id"]);
        }
        // A partial BOM is not dropped: it is invalid UTF-8 in the header.
        let result = Records::open(&b"\xEF\xBB"[..], (&CsvOptions::default()).into());
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
    fn lines_count_newlines_in_quoted_fields() {
        let mut csv = b"a,b\n".to_vec();
        for i in 0..50_000 {
            csv.extend_from_slice(format!("{i},\"x\ny\"\n").as_bytes());
        }
        let (mut records, _) = Records::open(&csv[..], (&CsvOptions::default()).into()).unwrap();
        let mut rows = 0;
        while records.next_record().unwrap() {
            rows += 1;
            if rows == 1000 {
                assert_eq!(records.line(), 1 + 2 * 1000 - 1);
            }
        }
        // The last record's line, still known after the end of the file.
        assert_eq!(records.line(), 1 + 2 * 50_000 - 1);
    }
}
