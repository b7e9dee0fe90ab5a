//! From the bytes of an upload to the UTF-8 text the tokenizer reads (docs/contract.md section 3,
//! "Compressed uploads" and `encoding`): gzip or zstd detected by magic bytes and
//! decompressed while streaming, `max_csv_bytes` on the decompressed size, a UTF-16 byte
//! order mark detected, and any encoding but UTF-8 transcoded with `encoding_rs`.
//!
//! A plain UTF-8 upload (the common case, and the 1 GiB bench) goes through none of it: its
//! bytes are handed on as they are read, with a counter for the cap and no copy.

use crate::error::{ConvertError, Result};
use crate::tokenize::count_newlines;
use encoding_rs::{DecoderResult, Encoding};
use lakehouse_api::{Compression, TextEncoding};
use std::io::{self, Read};

/// What [`decode`] found at the start of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The compression its magic bytes name, if any.
    pub compression: Option<Compression>,
    /// The encoding its text is read in: the option given, or UTF-16 when the (decompressed)
    /// text starts with a UTF-16 byte order mark.
    pub encoding: TextEncoding,
}

/// An upload as UTF-8 text (see the module docs), a `Read` for the reading functions of this
/// crate. Made by [`decode`].
pub struct Decoded<'a> {
    reader: Box<dyn Read + 'a>,
    detected: Detected,
    /// LF bytes handed out so far, counted only when the text was decompressed or
    /// transcoded (the only cases where a read can fail in the middle of the text).
    newlines: Option<u64>,
}

impl Decoded<'_> {
    /// The compression and encoding found.
    pub fn detected(&self) -> Detected {
        self.detected
    }
}

impl Read for Decoded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.reader.read(buf) {
            Ok(n) => {
                if let Some(newlines) = &mut self.newlines {
                    *newlines += count_newlines(buf.get(..n).unwrap_or_default());
                }
                Ok(n)
            }
            Err(e) => Err(self.locate(e)),
        }
    }
}

impl Decoded<'_> {
    /// Gives a broken-text error the line where the text broke: the one after the last LF
    /// handed out.
    fn locate(&self, error: io::Error) -> io::Error {
        let line = self.newlines.unwrap_or(0) + 1;
        match take_decode_error(error) {
            Ok(DecodeError::Broken { reason, .. }) => DecodeError::Broken {
                line: Some(line),
                reason,
            }
            .into(),
            Ok(other) => other.into(),
            Err(error) => error,
        }
    }
}

/// Opens an upload for reading as UTF-8 text (docs/contract.md section 3): reads its first bytes
/// to detect gzip (`1f 8b`) or zstd (`28 b5 2f fd`), then, on the decompressed bytes, a
/// UTF-16 byte order mark (`ff fe` little-endian, `fe ff` big-endian), which selects UTF-16
/// whatever `encoding` says. Text in any encoding but UTF-8 is transcoded to UTF-8 as it is
/// read (`encoding_rs`; for `windows-1252` its WHATWG decode, so a UTF-8 byte order mark
/// selects UTF-8 as browsers do); a UTF-8 upload is left to the tokenizer, which drops its
/// byte order mark and checks it.
///
/// Reads from the result fail, as `ConvertError`s through the reading functions of this
/// crate, with [`ConvertError::TooLarge`] once more than `max_csv_bytes` bytes come out of
/// the decompressor (or the file, when it is not compressed), and with
/// [`ConvertError::MalformedCsv`] (the line where the text broke) when a compressed stream
/// is corrupt or truncated or the text is not valid in its encoding (an unpaired UTF-16
/// surrogate, an odd number of UTF-16 bytes). Everything before the break is read first.
///
/// # Errors
/// As the reads above, for the first bytes; [`ConvertError::Io`] when `reader` fails.
pub fn decode<'a, R: Read + 'a>(
    reader: R,
    encoding: TextEncoding,
    max_csv_bytes: u64,
) -> Result<Decoded<'a>> {
    let mut raw = Peeked::new(Marked(reader));
    raw.fill(4).map_err(ConvertError::from_read)?;
    let compression = match raw.head() {
        [0x1f, 0x8b, ..] => Some(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Compression::Zstd),
        _ => None,
    };
    let bytes: Box<dyn Read + 'a> = match compression {
        None => Box::new(raw),
        Some(Compression::Gzip) => Box::new(Decompressed {
            inner: flate2::read::MultiGzDecoder::new(raw),
            format: "gzip",
        }),
        Some(Compression::Zstd) => Box::new(Decompressed {
            inner: zstd::stream::read::Decoder::new(raw).map_err(ConvertError::Io)?,
            format: "zstd",
        }),
    };
    let mut text = Peeked::new(Capped {
        inner: bytes,
        left: max_csv_bytes,
        max: max_csv_bytes,
    });
    let decode_error = |e| ConvertError::from_read(Decoded::unlocated(e));
    text.fill(MAGIC_BYTES).map_err(decode_error)?;
    if let Some((format, advice)) = not_csv(text.head()) {
        return Err(ConvertError::UnsupportedFormat { format, advice });
    }
    let encoding = match text.head() {
        [0xff, 0xfe, ..] => TextEncoding::Utf16Le,
        [0xfe, 0xff, ..] => TextEncoding::Utf16Be,
        _ => encoding,
    };
    let transcoded = encoding != TextEncoding::Utf8;
    let reader: Box<dyn Read + 'a> = if transcoded {
        Box::new(Transcoder::new(text, encoding))
    } else {
        Box::new(text)
    };
    Ok(Decoded {
        reader,
        detected: Detected {
            compression,
            encoding,
        },
        newlines: (transcoded || compression.is_some()).then_some(0),
    })
}

/// Bytes of the (decompressed) text looked at by [`not_csv`].
const MAGIC_BYTES: usize = 8;

/// The format and advice of a file that is certainly not CSV, by its first bytes
/// (docs/contract.md section 14): ZIP (an xlsx is one), PDF, PNG, Parquet (`PAR1` then a byte no
/// text holds).
fn not_csv(head: &[u8]) -> Option<(&'static str, &'static str)> {
    match head {
        [b'P', b'K', 3, 4, ..] => Some((
            "an xlsx or other ZIP file",
            "export the sheet as CSV (in Excel: File > Save As > CSV UTF-8)",
        )),
        [b'%', b'P', b'D', b'F', b'-', ..] => Some(("a PDF file", "send the data as CSV")),
        [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n', ..] => {
            Some(("a PNG image", "send the data as CSV"))
        }
        [b'P', b'A', b'R', b'1', next, ..]
            if (*next < 0x20 && !matches!(next, b'\t' | b'\r' | b'\n')) || *next >= 0x80 =>
        {
            Some((
                "a Parquet file",
                "this service turns CSV into Parquet; read the Parquet directly",
            ))
        }
        _ => None,
    }
}

impl Decoded<'_> {
    /// A broken-text error found before any text was handed out: on line 1.
    fn unlocated(error: io::Error) -> io::Error {
        match take_decode_error(error) {
            Ok(DecodeError::Broken { reason, .. }) => DecodeError::Broken {
                line: Some(1),
                reason,
            }
            .into(),
            Ok(other) => other.into(),
            Err(error) => error,
        }
    }
}

/// Parses the `encoding` query parameter: a WHATWG label (case-insensitive, as
/// `encoding_rs` looks them up) of one of the encodings of [`TextEncoding`], so `latin1`,
/// `iso-8859-1` and `cp1252` name `windows-1252`, and `utf8` names `utf-8`.
///
/// # Errors
/// A reason naming the accepted encodings, for a 400 `invalid_option`.
pub fn parse_encoding(label: &str) -> std::result::Result<TextEncoding, String> {
    TextEncoding::from_label(label)
}

fn encoding_of(encoding: TextEncoding) -> &'static Encoding {
    match encoding {
        TextEncoding::Utf8 => encoding_rs::UTF_8,
        TextEncoding::Windows1252 => encoding_rs::WINDOWS_1252,
        TextEncoding::Utf16Le => encoding_rs::UTF_16LE,
        TextEncoding::Utf16Be => encoding_rs::UTF_16BE,
    }
}

/// Why reading the text failed, carried inside an `io::Error` through the tokenizer and
/// turned into a [`ConvertError`] by [`ConvertError::from_read`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// More than `max_csv_bytes` bytes of CSV (decompressed).
    #[error("csv exceeds max_csv_bytes = {max}")]
    TooLarge { max: u64 },
    /// The compressed stream or the encoded text is broken; `line` is filled in by
    /// [`Decoded`], which counts the lines handed out.
    #[error("{reason}")]
    Broken { line: Option<u64>, reason: String },
    /// The upload's own reader failed (not the decompressor): passed on as it is.
    #[error("reading the upload failed")]
    Source(#[source] io::Error),
}

impl From<DecodeError> for io::Error {
    fn from(error: DecodeError) -> Self {
        io::Error::other(error)
    }
}

/// The `DecodeError` inside `error`, or `error` itself when it holds none.
pub(crate) fn take_decode_error(error: io::Error) -> std::result::Result<DecodeError, io::Error> {
    if error
        .get_ref()
        .is_some_and(|inner| inner.is::<DecodeError>())
    {
        let inner = error.into_inner().map(|e| e.downcast::<DecodeError>());
        match inner {
            Some(Ok(decode)) => Ok(*decode),
            Some(Err(other)) => Err(io::Error::other(other)),
            None => Err(io::Error::other("decode error lost")),
        }
    } else {
        Err(error)
    }
}

/// The upload's own reader, its errors marked as [`DecodeError::Source`] so that an error
/// coming out of a decompressor can be told from one it passed on.
struct Marked<R>(R);

impl<R: Read> Read for Marked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| match e.kind() {
            io::ErrorKind::Interrupted => e,
            _ => DecodeError::Source(e).into(),
        })
    }
}

/// A reader whose first bytes were read ahead to look at them, then handed out first.
struct Peeked<R> {
    inner: R,
    head: [u8; MAGIC_BYTES],
    len: usize,
    at: usize,
}

impl<R: Read> Peeked<R> {
    fn new(inner: R) -> Self {
        Peeked {
            inner,
            head: [0; MAGIC_BYTES],
            len: 0,
            at: 0,
        }
    }

    /// Reads until `n` (at most [`MAGIC_BYTES`]) bytes are held or the input ends.
    fn fill(&mut self, n: usize) -> io::Result<()> {
        while self.len < n {
            match self.inner.read(&mut self.head[self.len..n]) {
                Ok(0) => break,
                Ok(read) => self.len += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn head(&self) -> &[u8] {
        &self.head[..self.len]
    }
}

impl<R: Read> Read for Peeked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.len {
            let n = (self.len - self.at).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            return Ok(n);
        }
        self.inner.read(buf)
    }
}

/// A decompressor whose own errors (not its input's) become [`DecodeError::Broken`].
struct Decompressed<R> {
    inner: R,
    format: &'static str,
}

impl<R: Read> Read for Decompressed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::Interrupted
                || e.get_ref().is_some_and(|inner| inner.is::<DecodeError>())
            {
                return e;
            }
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "truncated"
            } else {
                "corrupt"
            };
            DecodeError::Broken {
                line: None,
                reason: format!("{} stream is {what} ({e})", self.format),
            }
            .into()
        })
    }
}

/// At most `max` bytes pass; one more is [`DecodeError::TooLarge`]. The first `max` bytes
/// are all handed out before that error, whatever the read sizes, so that what the reader
/// above makes of them (a CSV error in a record before the cap) does not depend on them.
struct Capped<R> {
    inner: R,
    left: u64,
    max: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Past the cap only if there is more.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(DecodeError::TooLarge { max: self.max }.into()),
            };
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..room])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Bytes of input (and of output) the transcoder works through at a time.
const TRANSCODE_BYTES: usize = 64 * 1024;

/// Text in another encoding, transcoded to UTF-8 as it is read (`encoding_rs`, no
/// replacement: a malformed sequence is an error once the text before it is handed out).
struct Transcoder<R> {
    inner: R,
    encoding: TextEncoding,
    decoder: encoding_rs::Decoder,
    input: Box<[u8]>,
    in_start: usize,
    in_end: usize,
    eof: bool,
    output: Box<[u8]>,
    out_start: usize,
    out_end: usize,
    done: bool,
    broken: Option<String>,
}

impl<R: Read> Transcoder<R> {
    fn new(inner: R, encoding: TextEncoding) -> Self {
        let decoder = match encoding {
            // A UTF-16 BOM is dropped; windows-1252 text is decoded as WHATWG's `decode`
            // does (a byte order mark, if any, decides).
            TextEncoding::Utf16Le | TextEncoding::Utf16Be => {
                encoding_of(encoding).new_decoder_with_bom_removal()
            }
            TextEncoding::Utf8 | TextEncoding::Windows1252 => encoding_of(encoding).new_decoder(),
        };
        Transcoder {
            inner,
            encoding,
            decoder,
            input: vec![0; TRANSCODE_BYTES].into_boxed_slice(),
            in_start: 0,
            in_end: 0,
            eof: false,
            output: vec![0; TRANSCODE_BYTES].into_boxed_slice(),
            out_start: 0,
            out_end: 0,
            done: false,
            broken: None,
        }
    }
}

impl<R: Read> Read for Transcoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out_start < self.out_end {
                let n = (self.out_end - self.out_start).min(buf.len());
                buf[..n].copy_from_slice(&self.output[self.out_start..self.out_start + n]);
                self.out_start += n;
                return Ok(n);
            }
            if let Some(reason) = self.broken.take() {
                return Err(DecodeError::Broken { line: None, reason }.into());
            }
            if self.done {
                return Ok(0);
            }
            if self.in_start == self.in_end && !self.eof {
                let n = self.inner.read(&mut self.input)?;
                self.in_start = 0;
                self.in_end = n;
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.input[self.in_start..self.in_end],
                &mut self.output,
                self.eof,
            );
            self.in_start += read;
            self.out_start = 0;
            self.out_end = written;
            match result {
                DecoderResult::InputEmpty => self.done = self.eof,
                DecoderResult::OutputFull => {}
                DecoderResult::Malformed(bad, _) => {
                    let odd_end = self.eof && self.in_start == self.in_end && bad == 1;
                    self.broken = Some(if odd_end {
                        format!(
                            "invalid {} text: an odd number of bytes (half a code unit at the end)",
                            self.encoding
                        )
                    } else {
                        format!(
                            "invalid {} text: {bad} byte(s) that are not a character (an unpaired surrogate)",
                            self.encoding
                        )
                    });
                    self.done = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn zstd(bytes: &[u8]) -> Vec<u8> {
        zstd::stream::encode_all(bytes, 1).unwrap()
    }

    fn read_all(bytes: &[u8], encoding: TextEncoding, max: u64) -> Result<(Vec<u8>, Detected)> {
        let mut decoded = decode(bytes, encoding, max)?;
        let mut out = Vec::new();
        match decoded.read_to_end(&mut out) {
            Ok(_) => Ok((out, decoded.detected())),
            Err(e) => Err(ConvertError::from_read(e)),
        }
    }

    #[test]
    fn plain_bytes_pass_through_whatever_their_length() {
        for input in [&b""[..], b"a", b"\x1f", b"ab\n1,2\n", b"\xEF\xBB\xBFid\n"] {
            let (out, detected) = read_all(input, TextEncoding::Utf8, u64::MAX).unwrap();
            assert_eq!(out, input);
            assert_eq!(detected.compression, None);
            assert_eq!(detected.encoding, TextEncoding::Utf8);
        }
    }

    #[test]
    fn gzip_and_zstd_are_detected_and_decompressed() {
        let csv = b"a,b\n1,2\n".repeat(10_000);
        let (out, detected) = read_all(&gzip(&csv), TextEncoding::Utf8, u64::MAX).unwrap();
        assert_eq!(out, csv);
        assert_eq!(detected.compression, Some(Compression::Gzip));
        let (out, detected) = read_all(&zstd(&csv), TextEncoding::Utf8, u64::MAX).unwrap();
        assert_eq!(out, csv);
        assert_eq!(detected.compression, Some(Compression::Zstd));
        // Concatenated gzip members are one stream (what `cat a.gz b.gz` makes).
        let mut two = gzip(b"a\n1\n");
        two.extend(gzip(b"2\n"));
        assert_eq!(
            read_all(&two, TextEncoding::Utf8, 100).unwrap().0,
            b"a\n1\n2\n"
        );
    }

    #[test]
    fn the_cap_counts_decompressed_bytes() {
        let csv = b"a,b\n1,2\n".repeat(1000);
        assert!(read_all(&gzip(&csv), TextEncoding::Utf8, csv.len() as u64).is_ok());
        for compressed in [gzip(&csv), zstd(&csv), csv.clone()] {
            let error = read_all(&compressed, TextEncoding::Utf8, csv.len() as u64 - 1);
            assert!(
                matches!(
                    error,
                    Err(ConvertError::TooLarge {
                        limit: "max_csv_bytes",
                        ..
                    })
                ),
                "{error:?}"
            );
        }
    }

    #[test]
    fn truncated_streams_are_broken_text_on_the_line_they_stop() {
        // Big enough for several zstd blocks (128 KiB each): a block is decoded whole.
        let csv = (0..100_000).map(|i| format!("{i},x\n")).collect::<String>();
        for (format, compressed) in [
            ("gzip", gzip(csv.as_bytes())),
            ("zstd", zstd(csv.as_bytes())),
        ] {
            let cut = &compressed[..compressed.len() * 9 / 10];
            let error = read_all(cut, TextEncoding::Utf8, u64::MAX).unwrap_err();
            let ConvertError::MalformedCsv { line, reason, .. } = error else {
                panic!("{format}: {error:?}");
            };
            assert!(
                reason.starts_with(&format!("{format} stream is")),
                "{reason}"
            );
            // Everything before the cut came out: the break is well past the first line.
            assert!(line > 10_000 && line <= 100_001, "{format}: line {line}");
            // The lines before it were read whole.
            let mut decoded = decode(cut, TextEncoding::Utf8, u64::MAX).unwrap();
            let mut out = Vec::new();
            assert!(decoded.read_to_end(&mut out).is_err());
            assert!(out.iter().filter(|&&b| b == b'\n').count() as u64 >= line - 1);
        }
    }

    #[test]
    fn windows_1252_and_utf16_become_utf8() {
        let text = "name,price\ncafé,3€ ’x’\n";
        let cp1252 = b"name,price\ncaf\xe9,3\x80 \x92x\x92\n";
        let (out, _) = read_all(cp1252, TextEncoding::Windows1252, u64::MAX).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
        let mut le = vec![0xff, 0xfe];
        le.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        let mut be = vec![0xfe, 0xff];
        be.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
        // The byte order mark selects UTF-16 whatever the option.
        for (bytes, expected) in [(le, TextEncoding::Utf16Le), (be, TextEncoding::Utf16Be)] {
            for option in TextEncoding::ALL {
                let (out, detected) = read_all(&bytes, option, u64::MAX).unwrap();
                assert_eq!(String::from_utf8(out).unwrap(), text);
                assert_eq!(detected.encoding, expected);
            }
            let (out, _) = read_all(&gzip(&bytes), TextEncoding::Utf8, u64::MAX).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), text);
        }
        // Without a BOM, the option says.
        let bare: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let (out, _) = read_all(&bare, TextEncoding::Utf16Le, u64::MAX).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }

    #[test]
    fn invalid_utf16_is_broken_text_on_its_line() {
        let mut odd: Vec<u8> = vec![0xff, 0xfe];
        odd.extend("a\n1\n2\n".encode_utf16().flat_map(u16::to_le_bytes));
        odd.push(b'3');
        let error = read_all(&odd, TextEncoding::Utf8, u64::MAX).unwrap_err();
        assert!(
            matches!(&error, ConvertError::MalformedCsv { line: 4, reason, .. } if reason.contains("odd number")),
            "{error:?}"
        );
        let mut lone: Vec<u8> = vec![0xff, 0xfe];
        lone.extend("a\n1\n".encode_utf16().flat_map(u16::to_le_bytes));
        lone.extend([0x00, 0xd8, b'x', 0]);
        let error = read_all(&lone, TextEncoding::Utf8, u64::MAX).unwrap_err();
        assert!(
            matches!(&error, ConvertError::MalformedCsv { line: 3, reason, .. } if reason.contains("surrogate")),
            "{error:?}"
        );
    }

    #[test]
    fn encoding_labels() {
        for (label, encoding) in [
            ("utf-8", TextEncoding::Utf8),
            ("UTF8", TextEncoding::Utf8),
            ("windows-1252", TextEncoding::Windows1252),
            ("latin1", TextEncoding::Windows1252),
            ("ISO-8859-1", TextEncoding::Windows1252),
            ("cp1252", TextEncoding::Windows1252),
            ("utf-16le", TextEncoding::Utf16Le),
            ("utf-16be", TextEncoding::Utf16Be),
        ] {
            assert_eq!(parse_encoding(label), Ok(encoding), "{label}");
        }
        for label in ["", "ebcdic", "shift_jis", "iso-8859-2"] {
            let reason = parse_encoding(label).unwrap_err();
            assert!(reason.contains("utf-8, windows-1252"), "{reason}");
        }
    }
}
