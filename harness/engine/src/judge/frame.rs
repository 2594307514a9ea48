//! Frames as the protocols write them (a length prefix, a JSON header),
//! decoded from bytes that came from a target. Decoding is a pure function
//! over a buffer: it says what it found and how many bytes that took, or
//! that more bytes are needed. It never panics on what a target sends and
//! never reserves memory for a length a target claims: a prefix of 2^31-1
//! is an error at once, not a 2 GiB buffer.

use std::fmt;

use serde_json::{Map, Value};

/// How a length prefix is written (`prefix` profile parameter).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum PrefixFormat {
    I32Le,
    I32Be,
    U32Le,
    U32Be,
    I64Le,
    I64Be,
}

/// The result of decoding from a buffer that may hold only part of a frame.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Decoded<T> {
    /// The value and how many bytes it took.
    Done(T, usize),
    /// At least this many bytes in all are needed.
    Incomplete(usize),
}

impl PrefixFormat {
    pub const ALL: [PrefixFormat; 6] = [
        PrefixFormat::I32Le,
        PrefixFormat::I32Be,
        PrefixFormat::U32Le,
        PrefixFormat::U32Be,
        PrefixFormat::I64Le,
        PrefixFormat::I64Be,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PrefixFormat::I32Le => "i32le",
            PrefixFormat::I32Be => "i32be",
            PrefixFormat::U32Le => "u32le",
            PrefixFormat::U32Be => "u32be",
            PrefixFormat::I64Le => "i64le",
            PrefixFormat::I64Be => "i64be",
        }
    }

    pub fn parse(name: &str) -> Option<PrefixFormat> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn width(self) -> usize {
        match self {
            PrefixFormat::I64Le | PrefixFormat::I64Be => 8,
            _ => 4,
        }
    }

    /// Encodes `n`; `None` when it does not fit the format.
    pub fn encode(self, n: u64) -> Option<Vec<u8>> {
        Some(match self {
            PrefixFormat::I32Le => i32::try_from(n).ok()?.to_le_bytes().to_vec(),
            PrefixFormat::I32Be => i32::try_from(n).ok()?.to_be_bytes().to_vec(),
            PrefixFormat::U32Le => u32::try_from(n).ok()?.to_le_bytes().to_vec(),
            PrefixFormat::U32Be => u32::try_from(n).ok()?.to_be_bytes().to_vec(),
            PrefixFormat::I64Le => i64::try_from(n).ok()?.to_le_bytes().to_vec(),
            PrefixFormat::I64Be => i64::try_from(n).ok()?.to_be_bytes().to_vec(),
        })
    }

    /// Decodes a prefix from the start of `buf`. Negative values are
    /// returned as they are: whether one is acceptable is the check's call.
    pub fn decode(self, buf: &[u8]) -> Decoded<i64> {
        let w = self.width();
        let Some(bytes) = buf.get(..w) else {
            return Decoded::Incomplete(w);
        };
        let mut b4 = [0u8; 4];
        let mut b8 = [0u8; 8];
        let v = if w == 4 {
            b4.copy_from_slice(bytes);
            match self {
                PrefixFormat::I32Le => i64::from(i32::from_le_bytes(b4)),
                PrefixFormat::I32Be => i64::from(i32::from_be_bytes(b4)),
                PrefixFormat::U32Le => i64::from(u32::from_le_bytes(b4)),
                _ => i64::from(u32::from_be_bytes(b4)),
            }
        } else {
            b8.copy_from_slice(bytes);
            match self {
                PrefixFormat::I64Le => i64::from_le_bytes(b8),
                _ => i64::from_be_bytes(b8),
            }
        };
        Decoded::Done(v, w)
    }
}

impl fmt::Display for PrefixFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The longest JSON header accepted. Real headers are under 200 bytes;
/// 64 KiB is far above any of them and bounds what a lying prefix costs.
pub const MAX_HEADER: usize = 64 * 1024;

/// Why a header frame cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The prefix is negative.
    Negative(i64),
    /// The prefix claims more than the limit.
    TooLong { claimed: i64, limit: usize },
    /// The header is not UTF-8; `at` is the first bad byte.
    NotUtf8 { at: usize },
    /// The header is not JSON.
    NotJson(String),
    /// The header is JSON but not an object.
    NotObject,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Negative(n) => write!(f, "the header length prefix is negative ({n})"),
            HeaderError::TooLong { claimed, limit } => {
                write!(f, "the header length prefix claims {claimed} bytes, more than the {limit} any header needs")
            }
            HeaderError::NotUtf8 { at } => write!(f, "the header is not UTF-8 (bad byte at {at})"),
            HeaderError::NotJson(e) => write!(f, "the header is not JSON: {e}"),
            HeaderError::NotObject => f.write_str("the header is JSON but not an object"),
        }
    }
}

/// Decodes `prefix(H)` and H bytes of a UTF-8 JSON object from the start
/// of `buf`. Returns the object and the bytes used, or how many bytes are
/// needed in all when `buf` holds only part of the frame.
pub fn decode_header(
    buf: &[u8],
    prefix: PrefixFormat,
    limit: usize,
) -> Result<Decoded<Map<String, Value>>, HeaderError> {
    let (claimed, w) = match prefix.decode(buf) {
        Decoded::Done(n, w) => (n, w),
        Decoded::Incomplete(n) => return Ok(Decoded::Incomplete(n)),
    };
    if claimed < 0 {
        return Err(HeaderError::Negative(claimed));
    }
    let len = usize::try_from(claimed).ok().filter(|&n| n <= limit);
    let Some(len) = len else {
        return Err(HeaderError::TooLong { claimed, limit });
    };
    let Some(bytes) = buf.get(w..w + len) else {
        return Ok(Decoded::Incomplete(w + len));
    };
    let text = std::str::from_utf8(bytes).map_err(|e| HeaderError::NotUtf8 {
        at: e.valid_up_to(),
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(Decoded::Done(map, w + len)),
        Ok(_) => Err(HeaderError::NotObject),
        Err(e) => Err(HeaderError::NotJson(e.to_string())),
    }
}

/// Why a header's size field cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeError {
    /// The field is absent; `suggestion` names the one integer field that
    /// equals the expected length, when there is exactly one.
    Missing {
        key: String,
        suggestion: Option<String>,
    },
    /// The field is there but not an integer (a string, say): its JSON.
    NotInteger { key: String, found: String },
    /// The field is a negative integer.
    Negative { key: String, value: i64 },
}

impl fmt::Display for SizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeError::Missing {
                key,
                suggestion: Some(s),
            } => write!(
                f,
                "the header has no {key:?} field, but its field {s:?} holds the body length; \
                 if that is the assignment's name for it, run with --param size_key={s}"
            ),
            SizeError::Missing {
                key,
                suggestion: None,
            } => write!(f, "the header has no {key:?} field"),
            SizeError::NotInteger { key, found } => {
                write!(f, "the header's {key:?} is {found}, not an integer")
            }
            SizeError::Negative { key, value } => {
                write!(f, "the header's {key:?} is negative ({value})")
            }
        }
    }
}

/// The body length a header announces under `key`. `expected` is the
/// length the harness knows the body has, used only to suggest a field
/// name when `key` is missing.
pub fn size_field(
    header: &Map<String, Value>,
    key: &str,
    expected: Option<u64>,
) -> Result<u64, SizeError> {
    match header.get(key) {
        Some(Value::Number(n)) if n.is_u64() => Ok(n.as_u64().unwrap_or_default()),
        Some(Value::Number(n)) if n.is_i64() => Err(SizeError::Negative {
            key: key.to_string(),
            value: n.as_i64().unwrap_or_default(),
        }),
        Some(other) => Err(SizeError::NotInteger {
            key: key.to_string(),
            found: truncate(&other.to_string(), 60),
        }),
        None => {
            let matching: Vec<&String> = header
                .iter()
                .filter(|(_, v)| expected.is_some() && v.as_u64() == expected)
                .map(|(k, _)| k)
                .collect();
            let suggestion = (matching.len() == 1).then(|| matching[0].clone());
            Err(SizeError::Missing {
                key: key.to_string(),
                suggestion,
            })
        }
    }
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(json: &str) -> Vec<u8> {
        let mut b = PrefixFormat::I32Le.encode(json.len() as u64).unwrap();
        b.extend_from_slice(json.as_bytes());
        b
    }

    #[test]
    fn a_header_frame_decodes_to_its_object_and_length() {
        let buf = frame(r#"{"size": 5, "time": "now"}"#);
        let Ok(Decoded::Done(map, used)) = decode_header(&buf, PrefixFormat::I32Le, MAX_HEADER)
        else {
            panic!("decodes")
        };
        assert_eq!(used, buf.len());
        assert_eq!(size_field(&map, "size", None), Ok(5));
    }

    #[test]
    fn part_of_a_header_asks_for_the_whole() {
        let buf = frame(r#"{"size": 5}"#);
        assert_eq!(
            decode_header(&buf[..6], PrefixFormat::I32Le, MAX_HEADER),
            Ok(Decoded::Incomplete(buf.len()))
        );
    }

    #[test]
    fn a_prefix_of_two_gigabytes_is_refused_without_waiting_for_it() {
        let buf = (i32::MAX).to_le_bytes();
        assert_eq!(
            decode_header(&buf, PrefixFormat::I32Le, MAX_HEADER),
            Err(HeaderError::TooLong {
                claimed: i32::MAX as i64,
                limit: MAX_HEADER
            })
        );
    }

    #[test]
    fn a_missing_size_suggests_the_field_that_holds_the_length() {
        let Ok(Decoded::Done(map, _)) = decode_header(
            &frame(r#"{"data_size": 42, "n": 1}"#),
            PrefixFormat::I32Le,
            MAX_HEADER,
        ) else {
            panic!("decodes")
        };
        let err = size_field(&map, "size", Some(42)).unwrap_err();
        assert!(
            err.to_string().contains("--param size_key=data_size"),
            "{err}"
        );
    }

    #[test]
    fn a_size_sent_as_a_string_is_named() {
        let Ok(Decoded::Done(map, _)) =
            decode_header(&frame(r#"{"size": "42"}"#), PrefixFormat::I32Le, MAX_HEADER)
        else {
            panic!("decodes")
        };
        assert_eq!(
            size_field(&map, "size", Some(42)),
            Err(SizeError::NotInteger {
                key: "size".into(),
                found: "\"42\"".into()
            })
        );
    }

    #[test]
    fn python_struct_i_is_little_endian() {
        assert_eq!(
            PrefixFormat::I32Le.decode(&[5, 0, 0, 0, 9]),
            Decoded::Done(5, 4)
        );
        assert_eq!(
            PrefixFormat::I32Be.decode(&[0, 0, 0, 5]),
            Decoded::Done(5, 4)
        );
    }

    #[test]
    fn three_bytes_of_a_prefix_are_incomplete() {
        assert_eq!(
            PrefixFormat::I32Le.decode(&[1, 2, 3]),
            Decoded::Incomplete(4)
        );
    }

    #[test]
    fn a_negative_prefix_is_reported_not_hidden() {
        assert_eq!(
            PrefixFormat::I32Le.decode(&(-1i32).to_le_bytes()),
            Decoded::Done(-1, 4)
        );
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_round_trips(buf in proptest::collection::vec(any::<u8>(), 0..12), n in 0u64..(1 << 31)) {
            for f in PrefixFormat::ALL {
                let _ = f.decode(&buf);
                let enc = f.encode(n).unwrap();
                prop_assert_eq!(f.decode(&enc), Decoded::Done(n as i64, f.width()));
                prop_assert_eq!(PrefixFormat::parse(f.name()), Some(f));
            }
        }
    }
}
