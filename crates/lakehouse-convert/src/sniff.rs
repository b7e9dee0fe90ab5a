//! Delimiter sniffing (docs/contract.md section 3, `inference_version` 2), for a new dataset's
//! first upload that gives no `delimiter`.
//!
//! Each candidate of [`SNIFF_CANDIDATES`] is tried on the first [`SNIFF_RECORDS`] records
//! (all, when fewer), split by the same tokenizer as every other read (so quotes are RFC
//! 4180's, and an empty line is no record). A candidate is consistent when it gives the
//! header at least 2 fields and every one of those records the header's field count. The
//! consistent candidate with the most header fields wins, ties going to the earlier one in
//! the list; with none consistent the delimiter is `,`.

use crate::error::Result;
use crate::tokenize::{TokenError, Tokenizer};
use std::io::Read;

/// The delimiters tried, in order of preference on a tie: `,`, tab, `;`, `|`.
pub const SNIFF_CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];

/// Records (the header included) each candidate is tried on.
pub const SNIFF_RECORDS: usize = 100;

/// What the records seen say of one candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Consistent, with this many header fields.
    Consistent(usize),
    Inconsistent,
    /// The records seen end before [`SNIFF_RECORDS`] and the input goes on.
    Undecided,
}

/// Judges a candidate from the field counts of the input's first records, in order;
/// `ended`: those are all the records the input has.
fn judge(counts: &[usize], ended: bool) -> Verdict {
    let Some((&header, rest)) = counts.split_first() else {
        return if ended {
            Verdict::Inconsistent
        } else {
            Verdict::Undecided
        };
    };
    if header < 2 {
        return Verdict::Inconsistent;
    }
    let seen = rest.len().min(SNIFF_RECORDS - 1);
    if rest[..seen].iter().any(|&count| count != header) {
        return Verdict::Inconsistent;
    }
    if seen + 1 == SNIFF_RECORDS || ended {
        Verdict::Consistent(header)
    } else {
        Verdict::Undecided
    }
}

/// The winner among the verdicts of [`SNIFF_CANDIDATES`], in order; `None` if one is
/// undecided.
fn choose(verdicts: [Verdict; 4]) -> Option<u8> {
    let mut best: Option<(usize, u8)> = None;
    for (verdict, candidate) in verdicts.into_iter().zip(SNIFF_CANDIDATES) {
        match verdict {
            Verdict::Undecided => return None,
            Verdict::Inconsistent => {}
            Verdict::Consistent(width) => {
                if best.is_none_or(|(most, _)| width > most) {
                    best = Some((width, candidate));
                }
            }
        }
    }
    Some(best.map_or(b',', |(_, candidate)| candidate))
}

/// Field counts of the first records of `reader` split at `delimiter`: up to
/// [`SNIFF_RECORDS`] plus one (so that a cut last record can be told), and whether the
/// input ended. A read error, or a record over `max_record_bytes`, ends the records seen
/// there, as the end of the input would: the pass that reads the file with the sniffed
/// delimiter reports it, where it stands among the records.
fn field_counts<R: Read>(reader: R, delimiter: u8, max_record_bytes: u64) -> (Vec<usize>, bool) {
    let mut tokens = Tokenizer::new(reader, delimiter, max_record_bytes);
    let mut counts = Vec::with_capacity(SNIFF_RECORDS + 1);
    while counts.len() <= SNIFF_RECORDS {
        match tokens.next_record() {
            Ok(true) => counts.push(tokens.record().len()),
            Ok(false) | Err(TokenError::RecordTooLarge | TokenError::Io(_)) => {
                return (counts, true);
            }
        }
    }
    (counts, false)
}

/// Sniffs the delimiter from the first bytes of a file (decoded text, as the reading
/// functions take it), for the speculative pass. `complete`: `prefix` is the whole file.
/// `None` when the prefix does not hold enough records to decide: then
/// [`sniff_delimiter`] over the whole file does. When `Some`, it is what
/// [`sniff_delimiter`] returns for any file that starts with `prefix`.
pub fn sniff_delimiter_prefix(prefix: &[u8], complete: bool, max_record_bytes: u64) -> Option<u8> {
    let verdicts = SNIFF_CANDIDATES.map(|candidate| {
        let (mut counts, ended) = field_counts(prefix, candidate, max_record_bytes);
        if complete {
            return judge(&counts, ended);
        }
        // The prefix's last record may be cut short by its end: only the records before it
        // are the file's. Nor is "the input ended" known.
        if ended {
            counts.pop();
        }
        judge(&counts, false)
    });
    choose(verdicts)
}

/// Sniffs the delimiter of a whole file (docs/contract.md section 3): `open` gives a reader from
/// the file's start (decoded text, as the reading functions take it), once per candidate;
/// each reads at most [`SNIFF_RECORDS`] records and one more, never the whole file.
///
/// # Errors
/// What `open` fails with. Failures while reading the records end them instead (see the
/// module docs): the pass that then reads the file reports them.
pub fn sniff_delimiter<R: Read>(
    mut open: impl FnMut() -> Result<R>,
    max_record_bytes: u64,
) -> Result<u8> {
    let mut verdicts = [Verdict::Undecided; 4];
    for (verdict, candidate) in verdicts.iter_mut().zip(SNIFF_CANDIDATES) {
        let (counts, ended) = field_counts(open()?, candidate, max_record_bytes);
        *verdict = judge(&counts, ended);
    }
    // Every verdict of a whole file is decided (the input ended, or SNIFF_RECORDS records
    // were seen), so `choose` has its answer.
    Ok(choose(verdicts).unwrap_or(b','))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = 1 << 20;

    fn sniff(csv: &str) -> u8 {
        let whole = sniff_delimiter(|| Ok(csv.as_bytes()), MAX).unwrap();
        assert_eq!(
            sniff_delimiter_prefix(csv.as_bytes(), true, MAX),
            Some(whole)
        );
        whole
    }

    #[test]
    fn each_candidate_is_found() {
        assert_eq!(sniff("a,b\n1,2\n"), b',');
        assert_eq!(sniff("a\tb\n1\t2\n"), b'\t');
        assert_eq!(sniff("a;b;c\n1;2,5;x\n"), b';');
        assert_eq!(sniff("a|b\n1|2\n"), b'|');
    }

    #[test]
    fn the_most_header_fields_win_and_ties_go_to_the_earlier() {
        // Both consistent: `;` gives 3 fields, `,` 2.
        assert_eq!(sniff("a,b;c;d\n1,2;3;4\n"), b';');
        // Both give 2 fields on every record: `,` comes first.
        assert_eq!(sniff("a,b;c\n1,2;3\n"), b',');
        assert_eq!(sniff("a|b\tc\n1|2\t3\n"), b'\t');
    }

    #[test]
    fn no_consistent_candidate_is_a_comma() {
        assert_eq!(sniff("just one column\n1\n2\n"), b',');
        assert_eq!(sniff(""), b',');
        // Ragged under every candidate.
        assert_eq!(sniff("a;b\n1;2;3\n"), b',');
        assert_eq!(sniff("a,b\n1\n"), b',');
    }

    #[test]
    fn quoted_delimiters_do_not_count() {
        assert_eq!(sniff("name;note\n\"x, y, z\";\"a;b\"\n"), b';');
        assert_eq!(sniff("\"a;b\",c\n\"1;2\",3\n"), b',');
        // A quoted line break keeps one record.
        assert_eq!(sniff("a|b\n\"1\n2\"|3\n"), b'|');
    }

    #[test]
    fn only_the_first_100_records_count() {
        let mut csv = String::from("a;b\n");
        for i in 0..99 {
            csv.push_str(&format!("{i};x\n"));
        }
        // Record 101 is ragged: not looked at.
        csv.push_str("1;2;3\n");
        assert_eq!(sniff(&csv), b';');
        // Record 100 is.
        let mut ragged = String::from("a;b\n");
        for i in 0..98 {
            ragged.push_str(&format!("{i};x\n"));
        }
        ragged.push_str("1;2;3\n");
        assert_eq!(sniff(&ragged), b',');
        // Empty lines are no records.
        let spaced = csv.replace('\n', "\n\n");
        assert_eq!(sniff(&spaced), b';');
    }

    #[test]
    fn a_prefix_decides_only_what_it_holds() {
        let mut csv = String::from("a;b\n");
        for i in 0..200 {
            csv.push_str(&format!("{i};x\n"));
        }
        let bytes = csv.as_bytes();
        for cut in 0..bytes.len() {
            match sniff_delimiter_prefix(&bytes[..cut], false, MAX) {
                Some(d) => assert_eq!(d, b';', "cut {cut}"),
                None => assert!(bytes[..cut].iter().filter(|&&b| b == b'\n').count() < 101),
            }
        }
        // A short file, whole, is decided.
        assert_eq!(sniff_delimiter_prefix(b"a;b\n1;2", true, MAX), Some(b';'));
        assert_eq!(sniff_delimiter_prefix(b"a;b\n1;2", false, MAX), None);
    }
}
