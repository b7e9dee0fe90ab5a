//! Setting bad records aside (docs/contract.md section 3, "Rejects"): one read of the CSV that
//! copies the good records to a clean CSV and the bad ones, up to a limit, to a rejects CSV
//! `line,column,reason,record`. The other passes then read the clean CSV as usual, so the
//! hot path of an upload without `max_rejects` is untouched.

use crate::classify::accepts_in;
use crate::error::{ConvertError, Result};
use crate::reading::Reading;
use crate::source::{Nulls, ReadConfig, Records};
use lakehouse_api::{ColumnChange, ColumnType, DateOrder, Schema, SchemaDriftDetails};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;

/// Input bytes kept past their reading, so a rejected record's text can be written as it
/// was (the tokenizer unescapes quoted fields in its own buffer).
#[derive(Debug, Default)]
struct Window {
    /// Input bytes from offset `base` on.
    bytes: Vec<u8>,
    base: u64,
}

impl Window {
    /// Input bytes `span`, when still kept.
    fn get(&self, span: std::ops::Range<u64>) -> Option<&[u8]> {
        let start = usize::try_from(span.start.checked_sub(self.base)?).ok()?;
        let end = usize::try_from(span.end.checked_sub(self.base)?).ok()?;
        self.bytes.get(start..end)
    }

    /// Forgets the bytes before offset `upto` once they are many (amortized: not per record).
    fn release(&mut self, upto: u64) {
        let done = usize::try_from(upto.saturating_sub(self.base)).unwrap_or(usize::MAX);
        if done >= WINDOW_SLACK_BYTES && done <= self.bytes.len() {
            self.bytes.drain(..done);
            self.base += done as u64;
        }
    }
}

/// Bytes already read past that the window may keep before it drops them.
const WINDOW_SLACK_BYTES: usize = 1 << 20;

/// A reader that copies what it reads into a [`Window`].
struct Tee<R> {
    inner: R,
    window: Rc<RefCell<Window>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window.borrow_mut().bytes.extend_from_slice(&buf[..n]);
        Ok(n)
    }
}

/// The record text at `span` without its line break.
fn raw_text(window: &Window, span: std::ops::Range<u64>) -> Vec<u8> {
    let mut raw = window.get(span).unwrap_or_default().to_vec();
    if raw.last() == Some(&b'\n') {
        raw.pop();
        if raw.last() == Some(&b'\r') {
            raw.pop();
        }
    } else if raw.last() == Some(&b'\r') {
        raw.pop();
    }
    raw
}

/// Header of every rejects CSV.
pub const REJECTS_HEADER: &str = "line,column,reason,record";

/// What [`set_aside`](crate::set_aside) wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Header renames, as [`infer_schema`](crate::infer_schema) reports them (the clean
    /// CSV's header already holds the final names, so reading it reports none).
    pub warnings: Vec<String>,
    /// Data records copied to the clean CSV.
    pub kept: u64,
    /// Records written to the rejects CSV.
    pub rejected: u64,
}

pub(crate) fn set_aside<R: Read, K: Write, J: Write>(
    reader: R,
    read: ReadConfig<'_>,
    registered: Option<&Schema>,
    max_rejects: u64,
    mut kept: K,
    mut rejects: J,
) -> Result<SetAside> {
    let window = Rc::new(RefCell::new(Window::default()));
    let tee = Tee {
        inner: reader,
        window: Rc::clone(&window),
    };
    let (mut records, header) = Records::open(tee, read)?;
    let delimiter = read.csv.delimiter;
    let nulls = Nulls::new(read);
    let width = header.names.len();
    let mut line_buf = Vec::new();
    serialize(
        &mut line_buf,
        header.names.iter().map(String::as_bytes),
        delimiter,
        width,
        true,
    );
    kept.write_all(&line_buf).map_err(ConvertError::Io)?;
    rejects
        .write_all(REJECTS_HEADER.as_bytes())
        .and_then(|()| rejects.write_all(b"\n"))
        .map_err(ConvertError::Io)?;
    // The registered type of each upload column by name, where it can refuse a value.
    let targets: Vec<Option<ColumnType>> = header
        .names
        .iter()
        .map(|name| {
            registered
                .and_then(|schema| schema.fields.iter().find(|f| f.name == *name))
                .map(|f| f.data_type)
                .filter(|t| *t != ColumnType::Utf8)
        })
        .collect();
    let orders: Vec<Option<DateOrder>> = header
        .names
        .iter()
        .map(|name| read.csv.date_orders.get(name).copied())
        .collect();
    let (mut rejected, mut kept_rows) = (0u64, 0u64);
    while let Some(flaw) = records.next_or_flaw()? {
        let problem = match flaw {
            Some(error) => {
                let (column, reason) = match &error {
                    ConvertError::MalformedCsv { column, reason, .. } => (*column, reason.clone()),
                    other => (None, other.to_string()),
                };
                Some((column, reason, error))
            }
            None => refusal(
                &records,
                &targets,
                &orders,
                &nulls,
                Reading::new(read.csv),
                &header.names,
                registered,
            ),
        };
        line_buf.clear();
        let span = records.raw_span();
        let Some((column, reason, error)) = problem else {
            window.borrow_mut().release(span.end);
            serialize(
                &mut line_buf,
                records.record().iter(),
                delimiter,
                width,
                false,
            );
            kept.write_all(&line_buf).map_err(ConvertError::Io)?;
            kept_rows += 1;
            continue;
        };
        rejected += 1;
        if rejected > max_rejects {
            return Err(ConvertError::TooManyRejects {
                rejected,
                error: Box::new(error),
            });
        }
        let raw = raw_text(&window.borrow(), span.clone());
        window.borrow_mut().release(span.end);
        let line = records.line().to_string();
        let column = column.map(|c| c.to_string()).unwrap_or_default();
        let raw = String::from_utf8_lossy(&raw);
        let row = [
            line.as_bytes(),
            column.as_bytes(),
            reason.as_bytes(),
            raw.as_bytes(),
        ];
        serialize(&mut line_buf, row.into_iter(), b',', 4, false);
        rejects.write_all(&line_buf).map_err(ConvertError::Io)?;
    }
    kept.flush().map_err(ConvertError::Io)?;
    rejects.flush().map_err(ConvertError::Io)?;
    Ok(SetAside {
        warnings: header.warnings,
        kept: kept_rows,
        rejected,
    })
}

/// The first value of the last record read that its column's registered type refuses:
/// `(column, reason, the 409 check_schema would give)`.
fn refusal<R: Read>(
    records: &Records<R>,
    targets: &[Option<ColumnType>],
    orders: &[Option<DateOrder>],
    nulls: &Nulls<'_>,
    reading: Reading,
    names: &[String],
    registered: Option<&Schema>,
) -> Option<(Option<u64>, String, ConvertError)> {
    let registered = registered?;
    let (i, (target, value)) = targets
        .iter()
        .zip(records.record().iter())
        .enumerate()
        .find(|(i, (target, value))| {
            let order = orders.get(*i).copied().flatten();
            target.is_some_and(|t| {
                !nulls.is_null(value) && !accepts_in(t, order, reading.classify(value))
            })
        })?;
    let target = (*target)?;
    let text = String::from_utf8_lossy(value).into_owned();
    let reason = format!("value {text:?} is not {}", target.name());
    let mut details = SchemaDriftDetails::between(registered, registered);
    details.changed = vec![ColumnChange {
        column: names[i].clone(),
        registered_type: target.name().to_owned(),
        attempted_type: None,
        line: Some(records.line()),
        value: Some(text),
    }];
    Some((
        Some(i as u64 + 1),
        reason,
        ConvertError::SchemaDrift(Box::new(details)),
    ))
}

/// Appends `fields` as one CSV record ending in `\n` to `out`: joined by `delimiter`, a field
/// quoted (quotes doubled) when it holds the delimiter, a quote, CR or LF, and an empty
/// field quoted when it is the record's only one (unquoted, it would be an empty line), as
/// is a first field starting with a BOM when the record starts the file (`at_file_start`:
/// reading drops a leading BOM).
fn serialize<'a>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = &'a [u8]>,
    delimiter: u8,
    width: usize,
    at_file_start: bool,
) {
    for (i, field) in fields.enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        let quote = (field.is_empty() && width == 1)
            || (i == 0 && at_file_start && field.starts_with(b"\xEF\xBB\xBF"))
            || field
                .iter()
                .any(|&b| b == delimiter || b == b'"' || b == b'\r' || b == b'\n');
        if quote {
            out.push(b'"');
            for &b in field {
                if b == b'"' {
                    out.push(b'"');
                }
                out.push(b);
            }
            out.push(b'"');
        } else {
            out.extend_from_slice(field);
        }
    }
    out.push(b'\n');
}
