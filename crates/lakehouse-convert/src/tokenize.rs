//! Splitting CSV bytes into records and fields (RFC 4180, docs/contract.md section 3), with the
//! same results as csv-core configured as `Records` used to configure it (quote `"`, doubled
//! quotes, terminators CR, LF and CRLF, no escapes, no comments), at several GB/s.
//!
//! Why not csv-core itself: its byte-at-a-time state machine and the copy of every field
//! into its output buffer were the largest single cost of an ingest (docs/performance.md).
//! This tokenizer finds the bytes that matter (delimiter, CR, LF, quote) 16 at a time with
//! `wide`'s portable SIMD, runs the same state machine only at those bytes, and leaves the
//! fields where they are in its read buffer: a field is a range of that buffer. A quoted
//! field with a doubled quote, or with text after its closing quote, is compacted in place.
//! A differential property test (`tests` below) checks it against csv-core on arbitrary
//! bytes and chunkings.
//!
//! csv-core's rules, which this follows exactly:
//! - Between records, CR and LF bytes are skipped (empty lines, the LF of a CRLF).
//! - A field that starts with a quote is quoted: up to the next quote, anything is text; a
//!   doubled quote is one quote; after the closing quote a delimiter or terminator ends the
//!   field, any other byte continues it as unquoted text.
//! - Any other field is unquoted: it ends at a delimiter, CR or LF; quotes in it are text.
//! - A CR or LF ends the record and is part of it; at the end of the input, the record in
//!   progress ends (a quoted field may then still be open: [`Tokenizer::open_quote`]).

use std::io::{self, Read};
use wide::u8x32;

/// Initial size of the read buffer, bytes. It grows (doubling) only while one record is
/// larger than the free space, up to the record cap.
const BUFFER_BYTES: usize = 256 * 1024;

/// Bytes of the buffer's tail that must be free before a read: with less, the bytes before
/// the record in progress are dropped first.
const MIN_READ_BYTES: usize = 64 * 1024;

const BOM: &[u8; 3] = b"\xEF\xBB\xBF";

/// Why [`Tokenizer::next_record`] failed.
#[derive(Debug)]
pub(crate) enum TokenError {
    /// The record in progress is longer than the cap (bytes as written): it is not read.
    RecordTooLarge,
    /// The reader failed.
    Io(io::Error),
}

/// Where the state machine stands inside a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a field.
    StartField,
    /// In an unquoted field (or in the text after a quoted one's closing quote).
    InField,
    /// In a quoted field.
    InQuoted,
    /// Just past a quote inside a quoted field: a closing quote, or the first of a pair.
    AfterQuote,
}

/// A record in progress: the state, the scan position, and the field being built, whose
/// bytes so far are `field_start..write` (`write` trails `at` once a quote was dropped).
#[derive(Debug, Clone, Copy)]
struct Cursor {
    state: State,
    at: usize,
    field_start: usize,
    write: usize,
}

/// The structural bytes of one 64-byte block of the buffer, one bit per byte.
#[derive(Debug, Clone, Copy, Default)]
struct Block {
    /// Delimiter, CR or LF.
    separators: u64,
    quotes: u64,
    /// Bytes with the high bit set (not ASCII).
    high: u64,
}

/// The bit masks of `bytes` (at most 64 of them; bits past the end are clear).
fn block_masks(bytes: &[u8], delimiter: u8) -> Block {
    let mut padded = [0u8; 64];
    let chunk: &[u8; 64] = match bytes.try_into() {
        Ok(full) => full,
        Err(_) => {
            let n = bytes.len().min(64);
            padded[..n].copy_from_slice(&bytes[..n]);
            &padded
        }
    };
    let (delimiter, quote) = (u8x32::splat(delimiter), u8x32::splat(b'"'));
    let (cr, lf) = (u8x32::splat(b'\r'), u8x32::splat(b'\n'));
    let mut block = Block::default();
    for (k, lane) in chunk.chunks_exact(32).enumerate() {
        let mut array = [0u8; 32];
        array.copy_from_slice(lane);
        let v = u8x32::new(array);
        let shift = 32 * k;
        let separators = v.simd_eq(delimiter) | v.simd_eq(cr) | v.simd_eq(lf);
        block.separators |= u64::from(separators.to_bitmask()) << shift;
        block.quotes |= u64::from(v.simd_eq(quote).to_bitmask()) << shift;
        block.high |= u64::from(v.to_bitmask()) << shift;
    }
    if bytes.len() < 64 {
        let valid = (1u64 << bytes.len()) - 1;
        block.separators &= valid;
        block.quotes &= valid;
        block.high &= valid;
    }
    block
}

/// LF bytes in `bytes`: per-byte counters in 32 lanes (one AVX2 register where the build
/// has AVX2, two SSE2 ones otherwise), summed every 255 rounds.
pub(crate) fn count_newlines(bytes: &[u8]) -> u64 {
    let lf = u8x32::splat(b'\n');
    let one = u8x32::splat(1);
    let mut chunks = bytes.chunks_exact(32);
    let mut count = 0u64;
    loop {
        let mut lanes = u8x32::splat(0);
        let mut rounds = 0;
        for lane in chunks.by_ref().take(255) {
            let mut array = [0u8; 32];
            array.copy_from_slice(lane);
            lanes += u8x32::new(array).simd_eq(lf) & one;
            rounds += 1;
        }
        count += lanes.to_array().iter().map(|&n| u64::from(n)).sum::<u64>();
        if rounds < 255 {
            break;
        }
    }
    count + chunks.remainder().iter().filter(|&&b| b == b'\n').count() as u64
}

/// The records of a CSV byte stream, one at a time, each as field ranges of the read buffer
/// (see the module docs for the rules).
pub(crate) struct Tokenizer<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes of `buf` holding input.
    filled: usize,
    eof: bool,
    /// The BOM check ran.
    started: bool,
    delimiter: u8,
    max_record_bytes: u64,
    /// LF bytes in the input dropped from the buffer so far.
    newlines: u64,
    /// Where the search for the next record starts.
    next: usize,
    /// The last record: its bytes as written (`start..end`) and its fields.
    start: usize,
    end: usize,
    fields: Vec<(usize, usize)>,
    /// The last record has a byte that is not ASCII (or shares a 64-byte block with one).
    maybe_non_ascii: bool,
    /// The last record ended at the end of the input inside a quoted field.
    open_quote: bool,
    /// The last record's start line, when its bytes before were dropped already.
    line: Option<u64>,
    /// Bytes of the input dropped from the front of `buf` so far: `buf[i]` is input byte
    /// `dropped + i`.
    dropped: u64,
    /// The block the last search looked at, and where it starts.
    block: Block,
    block_at: usize,
}

impl<R: Read> Tokenizer<R> {
    /// A tokenizer over `reader`, splitting fields at `delimiter` (not a quote, CR or LF:
    /// `CsvOptions` refuses those). A record longer than `max_record_bytes` as written is
    /// an error, found before more than that is buffered.
    pub(crate) fn new(reader: R, delimiter: u8, max_record_bytes: u64) -> Self {
        Tokenizer {
            reader,
            buf: vec![0; BUFFER_BYTES],
            filled: 0,
            eof: false,
            started: false,
            delimiter,
            max_record_bytes,
            newlines: 0,
            next: 0,
            start: 0,
            end: 0,
            fields: Vec::new(),
            maybe_non_ascii: false,
            open_quote: false,
            line: None,
            dropped: 0,
            block: Block::default(),
            block_at: usize::MAX,
        }
    }

    /// A tokenizer over the rest of an input whose first `newlines_before` LF bytes were
    /// read elsewhere, starting at a record's first byte (a chunk of docs/contract.md
    /// section 13's parallel read): no BOM is looked for, and lines count on from there.
    pub(crate) fn continuing(
        reader: R,
        delimiter: u8,
        max_record_bytes: u64,
        newlines_before: u64,
    ) -> Self {
        Tokenizer {
            started: true,
            newlines: newlines_before,
            ..Tokenizer::new(reader, delimiter, max_record_bytes)
        }
    }

    /// The reader, for a caller that watches what was read through it.
    pub(crate) fn reader_mut(&mut self) -> &mut R {
        &mut self.reader
    }

    /// Reads the next record; `false` at the end of the input (the last record, if any,
    /// stays readable through [`Tokenizer::line`] and [`Tokenizer::open_quote`]).
    ///
    /// # Errors
    /// [`TokenError::RecordTooLarge`] (then [`Tokenizer::line`] is that record's start
    /// line), [`TokenError::Io`].
    pub(crate) fn next_record(&mut self) -> Result<bool, TokenError> {
        if !self.started {
            self.start_input().map_err(TokenError::Io)?;
        }
        // Skip CR and LF bytes up to the record's first byte.
        let mut at = self.next;
        loop {
            while at < self.filled && matches!(self.buf[at], b'\r' | b'\n') {
                at += 1;
            }
            if at < self.filled {
                break;
            }
            if self.eof {
                self.next = at;
                return Ok(false);
            }
            // The last record's line is still needed at the end of the input; the bytes
            // before `at` are not.
            if self.line.is_none() {
                self.line = Some(self.line());
            }
            let dropped = self.refill(at).map_err(TokenError::Io)?;
            at -= dropped;
        }
        self.start = at;
        self.fields.clear();
        self.maybe_non_ascii = false;
        self.open_quote = false;
        self.line = None;
        if let Some(end) = self.scan_fast(at) {
            self.end = end;
            self.next = end;
            return Ok(true);
        }
        self.fields.clear();
        let mut cursor = Cursor {
            state: State::StartField,
            at,
            field_start: at,
            write: at,
        };
        loop {
            if let Some(end) = self.scan(&mut cursor) {
                self.end = end;
                self.next = end;
                return Ok(true);
            }
            if (self.filled - self.start) as u64 > self.max_record_bytes {
                return Err(TokenError::RecordTooLarge);
            }
            let dropped = self.refill(self.start).map_err(TokenError::Io)?;
            self.start -= dropped;
            cursor.at -= dropped;
            cursor.field_start -= dropped;
            cursor.write -= dropped;
            for field in &mut self.fields {
                field.0 -= dropped;
                field.1 -= dropped;
            }
        }
    }

    /// The fields of the last record.
    pub(crate) fn record(&self) -> Record<'_> {
        Record {
            buf: &self.buf,
            fields: &self.fields,
        }
    }

    /// The last record's bytes as written, from its first byte through its terminator:
    /// its length is the record's size; the content of a quoted field may have moved
    /// inside it.
    pub(crate) fn raw_len(&self) -> u64 {
        (self.end - self.start) as u64
    }

    /// Where the last record's bytes as written (first byte through its terminator) sit in
    /// the input, as byte offsets `start..end` (a leading BOM counts), before any quoted
    /// field's content moved: for a caller that keeps the input and wants the raw text.
    pub(crate) fn raw_span(&self) -> std::ops::Range<u64> {
        self.dropped + self.start as u64..self.dropped + self.end as u64
    }

    /// Whether the last record may hold a byte that is not ASCII; `false` proves it is all
    /// ASCII.
    pub(crate) fn maybe_non_ascii(&self) -> bool {
        self.maybe_non_ascii
    }

    /// The 1-based line on which the last record starts (counting LF bytes before it). Its
    /// cost grows with the buffer (it counts): for error reports, not for every record.
    pub(crate) fn line(&self) -> u64 {
        self.line.unwrap_or_else(|| {
            1 + self.newlines + count_newlines(self.buf.get(..self.start).unwrap_or_default())
        })
    }

    /// `Some(field)` (1-based) when the last record ended at the end of the input inside a
    /// quoted field: a quote left open.
    pub(crate) fn open_quote(&self) -> Option<u64> {
        self.open_quote.then_some(self.fields.len() as u64)
    }

    /// First read: drops a leading UTF-8 BOM, whatever the read chunking.
    fn start_input(&mut self) -> io::Result<()> {
        while self.filled < BOM.len() && !self.eof {
            self.read()?;
        }
        self.started = true;
        if self.buf.get(..BOM.len()) == Some(&BOM[..]) && self.filled >= BOM.len() {
            self.next = BOM.len();
        }
        Ok(())
    }

    /// Makes room and reads once. Bytes before `keep` are dropped when the free tail is
    /// short; returns how many (every position kept moves down by that much).
    fn refill(&mut self, keep: usize) -> io::Result<usize> {
        let mut dropped = 0;
        if self.buf.len() - self.filled < MIN_READ_BYTES && keep > 0 {
            self.newlines += count_newlines(&self.buf[..keep]);
            self.buf.copy_within(keep..self.filled, 0);
            self.filled -= keep;
            self.next = self.next.saturating_sub(keep);
            self.end = self.end.saturating_sub(keep);
            self.dropped += keep as u64;
            dropped = keep;
        }
        if self.buf.len() - self.filled < MIN_READ_BYTES {
            let grown = (self.buf.len() * 2).max(self.filled + MIN_READ_BYTES);
            self.buf.resize(grown, 0);
        }
        self.read()?;
        Ok(dropped)
    }

    /// One read into the free tail; at the end of the input sets `eof`.
    fn read(&mut self) -> io::Result<()> {
        self.block_at = usize::MAX;
        loop {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The first separator (`quotes == false`) or quote (`true`) at or after `from` in the
    /// buffered input.
    #[inline]
    fn find(&mut self, from: usize, quotes: bool) -> Option<usize> {
        let mut base = from & !63;
        let mut skip = from - base;
        while base < self.filled {
            let block = self.block_at(base);
            self.maybe_non_ascii |= block.high != 0;
            let bits = if quotes {
                block.quotes
            } else {
                block.separators
            } & (!0u64 << skip);
            if bits != 0 {
                return Some(base + bits.trailing_zeros() as usize);
            }
            base += 64;
            skip = 0;
        }
        None
    }

    /// The masks of the 64-byte block at `base` (wholly buffered), cached.
    #[inline]
    fn block_at(&mut self, base: usize) -> Block {
        if self.block_at != base {
            let end = (base + 64).min(self.filled);
            self.block = block_masks(&self.buf[base..end], self.delimiter);
            self.block_at = base;
        }
        self.block
    }

    /// The fast path: the record starting at `start` (not a CR or LF), when it lies in whole
    /// 64-byte blocks of the buffer and holds nothing csv-core treats specially. Quote
    /// parity is a prefix XOR of the quote bits, so a separator is a field end exactly when
    /// the quotes before it in the record pair up; each quote must sit where RFC 4180 puts
    /// it: an opening quote first in its field (or right after a closing quote: a doubled
    /// quote), a closing quote right before a separator or another quote. `Some(end)` with
    /// the fields in place; `None` (nothing changed but `fields`) when the exact state
    /// machine must read the record instead: a quote elsewhere, or the record reaching the
    /// buffer's last partial block (more input, or the end of the file, decides it then).
    fn scan_fast(&mut self, start: usize) -> Option<usize> {
        let whole = self.filled & !63;
        let mut base = start & !63;
        let mut considered = !0u64 << (start - base);
        // The record's first byte may open a quote.
        let mut allowed_first = 1u64 << (start - base);
        let mut inside = 0u64;
        let mut pending_close = false;
        let mut field_start = start;
        // A doubled quote was seen: an opening quote right after a closing one.
        let mut doubled = 0u64;
        self.fields.clear();
        while base < whole {
            let block = self.block_at(base);
            self.maybe_non_ascii |= block.high != 0;
            let quotes = block.quotes & considered;
            let separators = block.separators & considered;
            let mut parity = quotes;
            parity ^= parity << 1;
            parity ^= parity << 2;
            parity ^= parity << 4;
            parity ^= parity << 8;
            parity ^= parity << 16;
            parity ^= parity << 32;
            parity ^= inside;
            let ends = separators & !parity;
            let opening = quotes & parity;
            let closing = quotes & !parity;
            let after_closing = (closing << 1) | u64::from(pending_close);
            let allowed_open = ((ends << 1) | after_closing) | allowed_first;
            let followed = (separators | quotes) >> 1;
            if opening & !allowed_open != 0
                || closing & !followed & !(1u64 << 63) != 0
                || (pending_close && (separators | quotes) & 1 == 0)
            {
                return None;
            }
            doubled |= opening & after_closing;
            pending_close = closing >> 63 != 0;
            allowed_first = ends >> 63;
            inside = if parity >> 63 != 0 { !0 } else { 0 };
            let mut bits = ends;
            while bits != 0 {
                let end = base + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                // Quotes are only where RFC 4180 puts them: a field with any is quoted.
                let field = if self.buf[field_start] == b'"' {
                    (field_start + 1, end - 1)
                } else {
                    (field_start, end)
                };
                self.fields.push(field);
                field_start = end + 1;
                if matches!(self.buf[end], b'\r' | b'\n') {
                    if doubled != 0 {
                        self.undouble_quotes();
                    }
                    return Some(end + 1);
                }
            }
            base += 64;
            considered = !0;
        }
        None
    }

    /// Turns each doubled quote of the last record's quoted fields into one, in place (the
    /// bytes left behind are blanked, as in [`Tokenizer::end_field`]).
    #[cold]
    fn undouble_quotes(&mut self) {
        for field in &mut self.fields {
            let (start, end) = *field;
            // A quoted field's bytes follow its opening quote (an unquoted one's follow a
            // delimiter or a line break).
            if start == 0 || self.buf[start - 1] != b'"' || !self.buf[start..end].contains(&b'"') {
                continue;
            }
            // Valid quoting: each quote inside a quoted field is the first of a pair.
            let mut write = start;
            let mut read = start;
            while let Some(quote) = self.buf[read..end].iter().position(|&b| b == b'"') {
                let run = read..read + quote + 1;
                self.buf.copy_within(run.clone(), write);
                write += run.len();
                read = run.end + 1;
            }
            self.buf.copy_within(read..end, write);
            write += end - read;
            self.buf[write..end].fill(b' ');
            field.1 = write;
        }
    }

    /// Adds `cursor.at..to` to the field being built, moving it down when a quote was
    /// dropped before it.
    #[inline]
    fn append(&mut self, cursor: &mut Cursor, to: usize) {
        if cursor.write != cursor.at {
            self.buf.copy_within(cursor.at..to, cursor.write);
        }
        cursor.write += to - cursor.at;
        cursor.at = to;
    }

    /// Ends the field being built at `cursor.at`. When its bytes moved down, what is left
    /// behind them is blanked, so that the record's bytes hold as many LF bytes as written
    /// ([`Tokenizer::line`] counts them).
    #[inline]
    fn end_field(&mut self, cursor: &Cursor) {
        if cursor.write != cursor.at {
            self.buf[cursor.write..cursor.at].fill(b' ');
        }
        self.fields.push((cursor.field_start, cursor.write));
    }

    /// Runs the state machine from `cursor` over the buffered input: `Some(end)` when the
    /// record ends there (its terminator consumed, or at the end of the input), `None` when
    /// more input is needed.
    fn scan(&mut self, cursor: &mut Cursor) -> Option<usize> {
        loop {
            match cursor.state {
                State::StartField => {
                    let Some(&b) = self.buf.get(cursor.at).filter(|_| cursor.at < self.filled)
                    else {
                        // After a delimiter: an empty last field.
                        return self.eof.then(|| {
                            self.fields.push((cursor.at, cursor.at));
                            cursor.at
                        });
                    };
                    if b == b'"' {
                        cursor.at += 1;
                        cursor.field_start = cursor.at;
                        cursor.write = cursor.at;
                        cursor.state = State::InQuoted;
                    } else if b == self.delimiter {
                        self.fields.push((cursor.at, cursor.at));
                        cursor.at += 1;
                    } else if b == b'\r' || b == b'\n' {
                        self.fields.push((cursor.at, cursor.at));
                        return Some(cursor.at + 1);
                    } else {
                        cursor.field_start = cursor.at;
                        cursor.write = cursor.at;
                        cursor.state = State::InField;
                    }
                }
                State::InField => match self.find(cursor.at, false) {
                    Some(at) => {
                        self.append(cursor, at);
                        self.end_field(cursor);
                        cursor.at = at + 1;
                        if self.buf[at] == self.delimiter {
                            cursor.state = State::StartField;
                        } else {
                            return Some(at + 1);
                        }
                    }
                    None => {
                        self.append(cursor, self.filled);
                        if !self.eof {
                            return None;
                        }
                        self.end_field(cursor);
                        return Some(self.filled);
                    }
                },
                State::InQuoted => match self.find(cursor.at, true) {
                    Some(at) => {
                        self.append(cursor, at);
                        cursor.at = at + 1;
                        cursor.state = State::AfterQuote;
                    }
                    None => {
                        self.append(cursor, self.filled);
                        if !self.eof {
                            return None;
                        }
                        self.end_field(cursor);
                        self.open_quote = true;
                        return Some(self.filled);
                    }
                },
                State::AfterQuote => {
                    let Some(&b) = self.buf.get(cursor.at).filter(|_| cursor.at < self.filled)
                    else {
                        return self.eof.then(|| {
                            self.end_field(cursor);
                            cursor.at
                        });
                    };
                    if b == b'"' {
                        // The second quote of a pair: one quote of text.
                        self.append(cursor, cursor.at + 1);
                        cursor.state = State::InQuoted;
                    } else if b == self.delimiter {
                        self.end_field(cursor);
                        cursor.at += 1;
                        cursor.state = State::StartField;
                    } else if b == b'\r' || b == b'\n' {
                        self.end_field(cursor);
                        return Some(cursor.at + 1);
                    } else {
                        cursor.state = State::InField;
                    }
                }
            }
        }
    }
}

/// The fields of one record, borrowed from the tokenizer's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record<'a> {
    buf: &'a [u8],
    fields: &'a [(usize, usize)],
}

impl<'a> Record<'a> {
    /// Number of fields.
    pub(crate) fn len(&self) -> usize {
        self.fields.len()
    }

    /// The fields in order.
    pub(crate) fn iter(&self) -> Fields<'a> {
        Fields {
            buf: self.buf,
            fields: self.fields.iter(),
        }
    }
}

impl<'a> IntoIterator for Record<'a> {
    type Item = &'a [u8];
    type IntoIter = Fields<'a>;

    fn into_iter(self) -> Fields<'a> {
        self.iter()
    }
}

/// Iterator over a [`Record`]'s fields.
#[derive(Debug, Clone)]
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    fields: std::slice::Iter<'a, (usize, usize)>,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        let &(start, end) = self.fields.next()?;
        Some(self.buf.get(start..end).unwrap_or_default())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.fields.size_hint()
    }
}

impl ExactSizeIterator for Fields<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a tokenizer made of an input: each record's fields and start line, whether the
    /// last one left a quote open, or the error.
    type Outcome = (Vec<(u64, Vec<Vec<u8>>)>, Option<u64>);

    /// Hands out the input in chunks of the given sizes (cycled).
    struct Chunked<'a> {
        bytes: &'a [u8],
        sizes: Vec<usize>,
        next: usize,
    }

    impl Read for Chunked<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let size = self.sizes[self.next % self.sizes.len()].max(1);
            self.next += 1;
            let n = size.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn ours(bytes: &[u8], delimiter: u8, sizes: Vec<usize>) -> Outcome {
        let reader = Chunked {
            bytes,
            sizes,
            next: 0,
        };
        let mut tokens = Tokenizer::new(reader, delimiter, u64::MAX);
        let mut records = Vec::new();
        while tokens.next_record().unwrap() {
            let fields = tokens.record().iter().map(<[u8]>::to_vec).collect();
            records.push((tokens.line(), fields));
        }
        (records, tokens.open_quote())
    }

    /// csv-core through the csv crate, as `Records` used it, with the BOM dropped first and
    /// lines counted from each record's first byte.
    fn oracle(bytes: &[u8], delimiter: u8) -> Outcome {
        let bytes = bytes.strip_prefix(&BOM[..]).unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(bytes);
        let mut records = Vec::new();
        let mut record = csv::ByteRecord::new();
        let mut last_start = 0;
        while reader.read_byte_record(&mut record).unwrap() {
            let mut start = record.position().unwrap().byte() as usize;
            while matches!(bytes[start], b'\r' | b'\n') {
                start += 1;
            }
            last_start = start;
            let line = 1 + bytes[..start].iter().filter(|&&b| b == b'\n').count() as u64;
            records.push((line, record.iter().map(<[u8]>::to_vec).collect()));
        }
        let open = open_quote_field(&bytes[last_start..], delimiter);
        let open = open.filter(|_| !records.is_empty());
        (records, open)
    }

    /// Where a quoted field is left open at the end of `bytes`, which start at the start of a
    /// record: `Some(1-based field)` if the last quoted field never closes. Mirrors csv-core's
    /// state machine (quote `"`, doubled quotes, terminators CR, LF, CRLF, no escapes or
    /// comments).
    fn open_quote_field(bytes: &[u8], delimiter: u8) -> Option<u64> {
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

    /// Bytes biased to what matters to a CSV tokenizer.
    fn csv_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => Just(b'a'),
            2 => Just(b','),
            2 => Just(b'"'),
            1 => Just(b'\n'),
            1 => Just(b'\r'),
            1 => Just(b'\t'),
            1 => Just(0xC3u8),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..400)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Same records, fields, lines and open quote as csv-core, whatever the chunking.
        #[test]
        fn matches_csv_core(
            bytes in csv_bytes(),
            tab in any::<bool>(),
            bom in any::<bool>(),
            sizes in prop::collection::vec(1usize..80, 1..5),
        ) {
            let delimiter = if tab { b'\t' } else { b',' };
            let mut input = if bom { BOM.to_vec() } else { Vec::new() };
            input.extend_from_slice(&bytes);
            prop_assert_eq!(ours(&input, delimiter, sizes), oracle(&input, delimiter));
        }

        /// Well-formed CSV (the fast path's input), now and then with one byte changed.
        #[test]
        fn structured_csv_matches_csv_core(
            records in prop::collection::vec(prop::collection::vec((any::<bool>(), "[a-z,\"\n\r é]{0,40}"), 1..8), 1..60),
            crlf in any::<bool>(),
            mutation in prop::option::of((any::<prop::sample::Index>(), prop_oneof![Just(b'"'), Just(b'\r'), Just(b','), Just(b'x')])),
            sizes in prop::collection::vec(1usize..5000, 1..4),
        ) {
            let mut input = Vec::new();
            for fields in &records {
                for (i, (quoted, text)) in fields.iter().enumerate() {
                    if i > 0 {
                        input.push(b',');
                    }
                    if *quoted {
                        input.push(b'"');
                        input.extend_from_slice(text.replace('"', "\"\"").as_bytes());
                        input.push(b'"');
                    } else {
                        input.extend(text.bytes().filter(|b| !matches!(b, b',' | b'"' | b'\n' | b'\r')));
                    }
                }
                input.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            if let Some((at, byte)) = mutation {
                let at = at.index(input.len());
                input[at] = byte;
            }
            let (ours, oracle) = (ours(&input, b',', sizes), oracle(&input, b','));
            prop_assert!(ours == oracle, "ours {:?}\ncsv-core {:?}", ours, oracle);
        }
    }

    proptest! {
        // Each case is up to a megabyte: fewer of them.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Long records and fields cross blocks, reads and buffer growth.
        #[test]
        fn long_fields_match_csv_core(
            parts in prop::collection::vec((0usize..200_000, any::<bool>(), 0u8..4), 1..6),
            sizes in prop::collection::vec(1usize..300_000, 1..4),
        ) {
            let mut input = b"a,b\n".to_vec();
            for (len, quoted, end) in parts {
                let body: Vec<u8> = (0..len).map(|i| match i % 97 { 0 => b'\n', 50 => b',', _ => b'x' }).collect();
                if quoted {
                    input.push(b'"');
                    input.extend(body.iter().flat_map(|&b| if b == b',' { vec![b'"', b'"'] } else { vec![b] }));
                    input.push(b'"');
                } else {
                    input.extend(body.iter().filter(|&&b| b != b'\n' && b != b','));
                }
                input.extend_from_slice(match end { 0 => &b","[..], 1 => b"\n", 2 => b"\r\n", _ => b"\n\n\r\n" });
            }
            let (ours, oracle) = (ours(&input, b',', sizes), oracle(&input, b','));
            let summary = |o: &Outcome| o.0.iter().map(|(line, f)| (*line, f.iter().map(Vec::len).collect::<Vec<_>>())).collect::<Vec<_>>();
            prop_assert!(ours == oracle, "ours {:?} {:?}\ncsv-core {:?} {:?}", summary(&ours), ours.1, summary(&oracle), oracle.1);
        }
    }

    #[test]
    fn fixed_cases_match_csv_core() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n\r\n",
            b"a",
            b"a,",
            b"a,b\nc,d",
            b"a,b\r\nc,d\r\n",
            b"a\rb\r\r\nc",
            b"\"a,b\"\"c\"\"\",d\n",
            b"\"ab\"cd,e",
            b"\"ab\"\"",
            b"\"ab",
            b"x\"y,\"z\"\n",
            b"\"\"\n\"\"\"\"",
            b"a,\"\r\n\",b\n",
            b"\xEF\xBB\xBFa,b\n",
            b"\xEF\xBB",
        ];
        for &case in cases {
            for size in [1, 2, 3, 7, 64, 1 << 20] {
                assert_eq!(ours(case, b',', vec![size]), oracle(case, b','), "{case:?}");
            }
        }
    }

    /// Every quoting case at every offset from a 64-byte block boundary: the fast path's
    /// carries from one block to the next.
    #[test]
    fn quotes_at_every_block_offset_match_csv_core() {
        let snippets: &[&[u8]] = &[
            b"\"x\"y",
            b"x\"y",
            b"\"x\"\"y\"",
            b"\"x\"",
            b"\"\"",
            b"\"\"\"\"",
            b"\"x\r\ny\"",
            b"\"x\"\r",
            b"\"x,y\"",
            b"\"\"x",
            b"\"x\"\"",
        ];
        for pad in 0..140 {
            for &snippet in snippets {
                let mut input = vec![b'a'; pad];
                input.push(b',');
                input.extend_from_slice(snippet);
                input.extend_from_slice(b",z\n");
                input.extend_from_slice(&input.clone());
                for sizes in [vec![1 << 20], vec![7]] {
                    assert_eq!(
                        ours(&input, b',', sizes),
                        oracle(&input, b','),
                        "{pad} {snippet:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_record_over_the_cap_is_refused_before_it_is_buffered() {
        let mut input = b"a\n1\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 10 << 20));
        let mut tokens = Tokenizer::new(&input[..], b',', 1 << 20);
        assert!(tokens.next_record().unwrap());
        assert!(tokens.next_record().unwrap());
        assert!(matches!(
            tokens.next_record(),
            Err(TokenError::RecordTooLarge)
        ));
        assert_eq!(tokens.line(), 3);
        assert!(
            tokens.buf.len() < 3 << 20,
            "buffer grew to {}",
            tokens.buf.len()
        );
    }

    #[test]
    fn ascii_is_proven_per_record() {
        let input = "a,b\n1,2\n\"é\",3\n".repeat(100);
        let mut tokens = Tokenizer::new(input.as_bytes(), b',', u64::MAX);
        let mut non_ascii = 0;
        while tokens.next_record().unwrap() {
            let has = tokens.record().iter().any(|f| !f.is_ascii());
            assert!(!has || tokens.maybe_non_ascii());
            non_ascii += usize::from(has);
        }
        assert_eq!(non_ascii, 100);
    }
}
