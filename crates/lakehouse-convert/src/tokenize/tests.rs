//! The tokenizer against csv-core, on arbitrary bytes and chunkings.

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

impl<'a> Chunked<'a> {
    /// `bytes` handed out in reads of `sizes`, in turn.
    fn new(bytes: &'a [u8], sizes: Vec<usize>) -> Self {
        Chunked {
            bytes,
            sizes,
            next: 0,
        }
    }
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
    let mut tokens = Tokenizer::new(Chunked::new(bytes, sizes), delimiter, u64::MAX);
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

/// How a reading ended: at the end of the input (and whether a quote was left open), or
/// with `error` at the line the tokenizer reports.
fn ending<R: Read>(tokenizer: &Tokenizer<R>, error: Option<TokenError>) -> String {
    match error {
        None => format!("end {:?}", tokenizer.open_quote().is_some()),
        Some(e) => format!("{e:?} at line {}", tokenizer.line()),
    }
}

/// Each record's span and start line, and how the reading ended (`None`: the end of the
/// input; else the error's kind), read with `skip_record` or with `next_record`.
fn spans(bytes: &[u8], sizes: Vec<usize>, cap: u64, skip: bool) -> (Vec<(u64, u64, u64)>, String) {
    let mut tokenizer = Tokenizer::new(Chunked::new(bytes, sizes), b',', cap);
    let mut spans = Vec::new();
    loop {
        let next = if skip {
            tokenizer.skip_record()
        } else {
            tokenizer.next_record()
        };
        match next {
            Ok(true) => {
                let span = tokenizer.raw_span();
                spans.push((span.start, span.end, tokenizer.line()));
            }
            Ok(false) => return (spans, ending(&tokenizer, None)),
            Err(e) => return (spans, ending(&tokenizer, Some(e))),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// `skip_record` finds exactly the records, spans, lines, open quote and errors of
    /// `next_record`, whatever the chunking and the cap (docs/contract.md section 13: the
    /// splitter of a parallel read cuts chunks at these ends).
    #[test]
    fn skipping_finds_the_records_reading_finds(
        bytes in csv_bytes(),
        structured in prop::collection::vec("[a-z,\"\n\r é]{0,90}", 0..20),
        sizes in prop::collection::vec(1usize..200, 1..5),
        cap in prop::sample::select(vec![8u64, 100, 1 << 20]),
    ) {
        let mut input = bytes;
        for line in structured {
            input.extend_from_slice(line.as_bytes());
            input.push(b'\n');
        }
        prop_assert_eq!(
            spans(&input, sizes.clone(), cap, true),
            spans(&input, sizes, cap, false)
        );
    }
}

/// The record ends `skip_records` finds, and how the reading ended, as [`spans`] says it.
fn bulk_ends(bytes: &[u8], sizes: Vec<usize>, cap: u64) -> (Vec<u64>, String) {
    let mut tokenizer = Tokenizer::new(Chunked::new(bytes, sizes), b',', cap);
    let mut all = Vec::new();
    let mut ends = Vec::new();
    loop {
        match tokenizer.skip_records(&mut ends) {
            Ok(true) => {
                assert!(!ends.is_empty(), "a call that found records gave no end");
                all.extend_from_slice(&ends);
            }
            Ok(false) => return (all, ending(&tokenizer, None)),
            Err(e) => return (all, ending(&tokenizer, Some(e))),
        }
    }
}

/// Well-formed records (quoted fields with doubled quotes and line breaks, every
/// terminator, empty lines), so that many whole 64-byte blocks are read by the bulk path.
fn regular_records() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![
        3 => "[a-z0-9 .é-]{0,14}",
        1 => "\"([a-z,\n\r ]|\"\"){0,24}\"",
    ];
    let terminator = prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n", "\r\n\r\n"]);
    let record = (prop::collection::vec(field, 1..6), terminator)
        .prop_map(|(fields, end)| fields.join(",") + end);
    prop::collection::vec(record, 0..120).prop_map(|records| records.concat().into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// `skip_records` finds exactly the record ends of `next_record`, and ends the same way
    /// (the same error at the same line, the same open quote), whatever the chunking and
    /// the cap, on well-formed records with stray bytes spliced in (docs/contract.md
    /// section 13: the splitter of a parallel read cuts chunks at these ends).
    #[test]
    fn bulk_skipping_finds_the_ends_reading_finds(
        head in regular_records(),
        stray in csv_bytes(),
        tail in regular_records(),
        sizes in prop::collection::vec(
            prop_oneof![1usize..200, 500usize..5000, Just(1 << 20)], 1..5),
        cap in prop::sample::select(vec![8u64, 40, 100, 1 << 20]),
    ) {
        let mut input = head;
        input.extend_from_slice(&stray[..stray.len() % 7]);
        input.extend_from_slice(&tail);
        let (spans, outcome) = spans(&input, sizes.clone(), cap, false);
        let reading: Vec<u64> = spans.iter().map(|&(_, end, _)| end).collect();
        prop_assert_eq!(bulk_ends(&input, sizes, cap), (reading, outcome));
    }
}

/// On well-formed records the splitter's path is the bulk one: a single `skip_records`
/// call finds the records of a whole read buffer, not one (docs/contract.md section 13: the
/// splitter reads each 64-byte block once).
#[test]
fn bulk_skipping_takes_a_buffer_of_records_at_once() {
    let record = "12,\"a, \"\"quoted\"\"\nfield\",3.5\r\n";
    let input = record.repeat(10_000);
    let mut tokenizer = Tokenizer::new(input.as_bytes(), b',', u64::MAX);
    assert!(tokenizer.next_record().unwrap());
    let mut ends = Vec::new();
    let mut calls = 0;
    let mut found = 1;
    while tokenizer.skip_records(&mut ends).unwrap() {
        calls += 1;
        found += ends.len();
        // A record ends with its CR; the LF after it is skipped before the next one.
        let last = *ends.last().unwrap();
        assert_eq!(
            (last + 1) % record.len() as u64,
            0,
            "a record end at {last}"
        );
    }
    assert_eq!(found, 10_000);
    // The read buffer holds 256 KiB, about 7,000 of these records.
    assert!(calls < 10, "{calls} calls for 9,999 records");
}
