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
    /// CR or LF.
    line_ends: u64,
    quotes: u64,
    /// Bytes with the high bit set (not ASCII).
    high: u64,
}

/// Where a block's quotes leave the fields ([`quoting`]).
struct Quoting {
    /// Bytes inside quotes (a quote itself: the opening one is inside, the closing one not).
    parity: u64,
    /// Separators outside quotes: field and record ends.
    ends: u64,
    opening: u64,
    closing: u64,
    /// Bytes right after a closing quote.
    after_closing: u64,
}

/// The fast path's reading of a block's quotes (see [`Tokenizer::scan_fast`]): the
/// `considered` bits of `block`, `inside` all ones when the block starts inside quotes,
/// `pending_close` when the previous block ended on a closing quote, `allowed_first` the bit
/// of a byte that starts a field. `None` when a quote sits where RFC 4180 does not put one
/// (the exact state machine must read the record).
#[inline]
fn quoting(
    block: Block,
    considered: u64,
    inside: u64,
    pending_close: bool,
    allowed_first: u64,
) -> Option<Quoting> {
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
    Some(Quoting {
        parity,
        ends,
        opening,
        closing,
        after_closing,
    })
}

/// The fast path's walk over whole 64-byte blocks of the buffer from a record's first byte,
/// carrying [`quoting`]'s state from one block to the next (shared by
/// [`Tokenizer::scan_fast`], [`Tokenizer::scan_bounds`] and [`Tokenizer::scan_ends`]).
struct BlockWalk {
    /// The block's first byte (a multiple of 64).
    base: usize,
    /// The block's bits from the record's first byte on.
    considered: u64,
    inside: u64,
    pending_close: bool,
    allowed_first: u64,
}

impl BlockWalk {
    /// From `start`, a record's first byte (which may open a quote).
    #[inline]
    fn from(start: usize) -> Self {
        let base = start & !63;
        BlockWalk {
            base,
            considered: !0u64 << (start - base),
            inside: 0,
            pending_close: false,
            allowed_first: 1u64 << (start - base),
        }
    }

    /// [`quoting`] of `block`, the block at `base`.
    #[inline]
    fn quoting(&self, block: Block) -> Option<Quoting> {
        quoting(
            block,
            self.considered,
            self.inside,
            self.pending_close,
            self.allowed_first,
        )
    }

    /// On to the next block, `read` being the quoting of this one.
    #[inline]
    fn advance(&mut self, read: &Quoting) {
        self.pending_close = read.closing >> 63 != 0;
        self.allowed_first = read.ends >> 63;
        self.inside = if read.parity >> 63 != 0 { !0 } else { 0 };
        self.base += 64;
        self.considered = !0;
    }
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
        let line_ends = v.simd_eq(cr) | v.simd_eq(lf);
        let separators = v.simd_eq(delimiter) | line_ends;
        block.separators |= u64::from(separators.to_bitmask()) << shift;
        block.line_ends |= u64::from(line_ends.to_bitmask()) << shift;
        block.quotes |= u64::from(v.simd_eq(quote).to_bitmask()) << shift;
        block.high |= u64::from(v.to_bitmask()) << shift;
    }
    if bytes.len() < 64 {
        let valid = (1u64 << bytes.len()) - 1;
        block.separators &= valid;
        block.line_ends &= valid;
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
    /// [`Tokenizer::skip_record`] is reading: the fast path finds no fields.
    skipping: bool,
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
            skipping: false,
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
        let fast = if self.skipping {
            self.scan_bounds(at)
        } else {
            self.scan_fast(at)
        };
        if let Some(end) = fast {
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

    /// [`Tokenizer::next_record`] for a caller that only needs where records end (the
    /// splitter of a parallel read, docs/contract.md section 13): the same records, ends,
    /// lines and errors, but the fields of a record read by the fast path are not found
    /// ([`Tokenizer::record`] is then empty).
    ///
    /// # Errors
    /// As [`Tokenizer::next_record`].
    pub(crate) fn skip_record(&mut self) -> Result<bool, TokenError> {
        self.skipping = true;
        let next = self.next_record();
        self.skipping = false;
        next
    }

    /// [`Tokenizer::skip_record`] for every whole record the read buffer holds at once:
    /// clears `ends`, then puts there the input offset just past each record's terminator
    /// (what [`Tokenizer::raw_span`]'s end would be), in order; `false` at the end of the
    /// input. Where [`Tokenizer::skip_record`] finds one record per call, this runs the fast
    /// path's checks over the buffer block by block, carrying the quote state from one
    /// record to the next, so that each 64-byte block is looked at once (the splitter of a
    /// parallel read, docs/contract.md section 13). What the fast path cannot settle (a
    /// quote where RFC 4180 puts none, the end of the buffered input) is left to
    /// [`Tokenizer::skip_record`]: the same records and errors. Like the fast path of
    /// [`Tokenizer::next_record`], it does not check the cap on a record it finds whole in
    /// the buffer (the reader of the records does).
    /// After it, the last record's fields, span and line are not kept: only `ends` says
    /// where records end.
    ///
    /// # Errors
    /// As [`Tokenizer::next_record`], for the first record the fast path left.
    pub(crate) fn skip_records(&mut self, ends: &mut Vec<u64>) -> Result<bool, TokenError> {
        ends.clear();
        if self.started {
            self.scan_ends(ends);
            if !ends.is_empty() {
                return Ok(true);
            }
        }
        if self.skip_record()? {
            ends.push(self.raw_span().end);
            return Ok(true);
        }
        Ok(false)
    }

    /// The fast path of [`Tokenizer::skip_records`]: from `next`, the ends of the records
    /// that lie whole in whole 64-byte blocks of the buffer, up to the first block whose
    /// quotes the fast path refuses.
    fn scan_ends(&mut self, ends: &mut Vec<u64>) {
        let mut at = self.next;
        while at < self.filled && matches!(self.buf[at], b'\r' | b'\n') {
            at += 1;
        }
        let whole = self.filled & !63;
        let mut walk = BlockWalk::from(at);
        // The last bit of the block before was a CR or LF outside quotes.
        let mut after_stop = 0u64;
        // Just past the last record found.
        let mut from = at;
        while walk.base < whole {
            let block = self.block_at(walk.base);
            let Some(read) = walk.quoting(block) else {
                break;
            };
            // A CR or LF outside quotes ends a record unless a CR or LF is just before it
            // (an empty line, the LF of a CRLF: skipped between records).
            let stops = block.line_ends & walk.considered & !read.parity;
            let mut record_ends = stops & !((stops << 1) | after_stop);
            while record_ends != 0 {
                let end = walk.base + record_ends.trailing_zeros() as usize + 1;
                ends.push(self.dropped + end as u64);
                from = end;
                record_ends &= record_ends - 1;
            }
            after_stop = stops >> 63;
            walk.advance(&read);
        }
        if !ends.is_empty() {
            self.next = from;
            self.start = from;
            self.end = from;
            self.fields.clear();
            self.maybe_non_ascii = false;
            self.open_quote = false;
            self.line = None;
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
        let mut walk = BlockWalk::from(start);
        let mut field_start = start;
        // A doubled quote was seen: an opening quote right after a closing one.
        let mut doubled = 0u64;
        self.fields.clear();
        while walk.base < whole {
            let block = self.block_at(walk.base);
            self.maybe_non_ascii |= block.high != 0;
            let read = walk.quoting(block)?;
            doubled |= read.opening & read.after_closing;
            let base = walk.base;
            walk.advance(&read);
            let mut bits = read.ends;
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
        }
        None
    }

    /// [`Tokenizer::scan_fast`] without the fields: the same checks of where quotes sit
    /// (else `None`, and the exact state machine reads the record), then the record ends at
    /// its first CR or LF outside quotes.
    fn scan_bounds(&mut self, start: usize) -> Option<usize> {
        let whole = self.filled & !63;
        let mut walk = BlockWalk::from(start);
        self.fields.clear();
        while walk.base < whole {
            let block = self.block_at(walk.base);
            let read = walk.quoting(block)?;
            let stops = block.line_ends & walk.considered & !read.parity;
            if stops != 0 {
                return Some(walk.base + stops.trailing_zeros() as usize + 1);
            }
            walk.advance(&read);
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
mod tests;
