//! The HTTP side of object reads: the `Range` header (RFC 9110 section 14.2) and the `ETag`
//! form of an object's entity tag.

use object_store::{GetRange, ObjectMeta};

/// What part of an object a GET asks for, from its `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ByteRange {
    /// No `Range` header, a unit other than `bytes`, or several ranges: the whole object (200).
    Whole,
    /// One satisfiable-looking range (206 when it fits the object, else 416).
    Part(GetRange),
    /// A `bytes=` header that does not parse: always 416.
    Malformed,
}

impl ByteRange {
    /// Reads a `Range` header value (RFC 9110 section 14.2): `bytes=a-b`, `bytes=a-` or
    /// `bytes=-n`.
    ///
    /// Multi-range requests (`bytes=0-1,5-6`) are answered with the whole object and a 200, as
    /// RFC 9110 allows, instead of a `multipart/byteranges` body. A header whose unit is not
    /// `bytes` is ignored (also as RFC 9110 requires); a `bytes=` header that does not parse
    /// is [`ByteRange::Malformed`].
    pub fn from_header(value: Option<&str>) -> ByteRange {
        use http_range_header::{EndPosition, StartPosition};
        let Some(value) = value else {
            return ByteRange::Whole;
        };
        if !value.trim_start().starts_with("bytes=") {
            return ByteRange::Whole;
        }
        let Ok(parsed) = http_range_header::parse_range_header(value.trim()) else {
            return ByteRange::Malformed;
        };
        match parsed.ranges.as_slice() {
            [one] => match (one.start, one.end) {
                (StartPosition::Index(a), EndPosition::Index(b)) if b >= a => {
                    ByteRange::Part(GetRange::Bounded(a..b.saturating_add(1)))
                }
                (StartPosition::Index(a), EndPosition::LastByte) => {
                    ByteRange::Part(GetRange::Offset(a))
                }
                (StartPosition::FromLast(n), _) if n > 0 => ByteRange::Part(GetRange::Suffix(n)),
                _ => ByteRange::Malformed,
            },
            [] => ByteRange::Malformed,
            _ => ByteRange::Whole,
        }
    }
}

/// The HTTP form of an object's entity tag: the backend's tag in double quotes (the local
/// backend reports it bare, the memory backend already quoted).
pub fn quoted_etag(meta: &ObjectMeta) -> Option<String> {
    meta.e_tag
        .as_deref()
        .map(|tag| format!("\"{}\"", tag.trim_matches('"')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers_parse_to_one_get_range() {
        let part = |s| ByteRange::from_header(Some(s));
        assert_eq!(part("bytes=2-5"), ByteRange::Part(GetRange::Bounded(2..6)));
        assert_eq!(part("bytes=7-"), ByteRange::Part(GetRange::Offset(7)));
        assert_eq!(part("bytes=-3"), ByteRange::Part(GetRange::Suffix(3)));
        assert_eq!(part("bytes=0-1,4-5"), ByteRange::Whole);
        assert_eq!(part("items=0-1"), ByteRange::Whole);
        assert_eq!(ByteRange::from_header(None), ByteRange::Whole);
        for bad in [
            "bytes=5-2",
            "bytes=x-1",
            "bytes=-0",
            "bytes=",
            "bytes=1-2-3",
        ] {
            assert_eq!(part(bad), ByteRange::Malformed, "{bad}");
        }
    }
}
