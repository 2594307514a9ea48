//! Why a framed answer cannot be met, in words a student can act on: a
//! length that is not the body's (and the format under which it would be,
//! decimal digits among them),
//! a header that is not a JSON object or not UTF-8, a size under another
//! key, a body that differs, an answer that stopped.

use std::fmt;

use crate::judge::frame::{PrefixFormat, SizeError, MAX_HEADER};
use crate::judge::show;

/// Why a frame cannot be met, with what is needed to say so to a student.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FrameMiss {
    /// The prefix is not the body's length. `other` names a format under
    /// which the same bytes are the right length, when one is.
    WrongLength {
        claimed: i64,
        expected: u64,
        other: Option<PrefixFormat>,
    },
    /// The header's length prefix is negative or beyond any real header;
    /// `other` names a format of the same width under which it is a
    /// header's length.
    HeaderLength {
        claimed: i64,
        other: Option<PrefixFormat>,
    },
    /// The header is not a UTF-8 JSON object.
    BadHeader { why: String, header: Vec<u8> },
    /// The header length counts the header's characters, not its bytes.
    CountsCharacters { chars: usize, bytes: usize },
    /// The header's size field is missing, not an integer or negative
    /// (with the field that holds the length, when exactly one does).
    Size(SizeError),
    /// The header's size is not the body's length.
    WrongSize {
        key: String,
        said: u64,
        expected: u64,
    },
    /// The header's size is not the body's length, and as many bytes as it
    /// says followed it, other than the body expected: the header is right
    /// about a body that is not the one asked for.
    OtherBody {
        key: String,
        expected: Vec<u8>,
        got: Vec<u8>,
    },
    /// The body differs from the one expected at `offset`.
    Body {
        offset: u64,
        expected: u8,
        got: u8,
        /// The bytes received from the difference on, as many as the feed
        /// held (at most a few dozen).
        after: Vec<u8>,
    },
    /// The prefix is 64 bits wide where the profile says 32.
    WiderPrefix {
        configured: PrefixFormat,
        sent: PrefixFormat,
    },
    /// The length came as decimal digits where the profile reads a binary
    /// prefix: the decimal variant, which waits for a ready word.
    DecimalLength {
        digits: Vec<u8>,
        expected: u64,
        configured: PrefixFormat,
    },
    /// A decimal length expected, and the first byte is not a digit;
    /// `other` names a binary format under which the bytes read the body's
    /// length, when one does.
    NotDigits {
        got: Vec<u8>,
        other: Option<PrefixFormat>,
    },
    /// The body came right behind the decimal length, before the harness
    /// answered with the ready word.
    BodyBeforeReady { digits: Vec<u8>, after: Vec<u8> },
    /// A header field does not hold what it must (`got`), or is missing
    /// under every one of `keys`.
    Field {
        keys: Vec<String>,
        what: &'static str,
        expected: String,
        got: Option<String>,
    },
    /// The header's `md5` is not the body's MD5 (`said` as sent, JSON;
    /// `None` when missing).
    Md5 {
        said: Option<String>,
        actual: String,
    },
    /// The stream ended (or the time ran out) before the frame was whole.
    Short { stage: String },
}

/// The first body byte that differed, held while it may still turn out to
/// be part of a wider prefix.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Difference {
    pub(crate) offset: u64,
    pub(crate) expected: u8,
}

impl Difference {
    pub(crate) fn miss(self, after: Vec<u8>) -> FrameMiss {
        FrameMiss::Body {
            offset: self.offset,
            expected: self.expected,
            got: 0,
            after,
        }
    }
}

impl fmt::Display for FrameMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameMiss::WrongLength {
                claimed,
                expected,
                other: Some(other),
            } => write!(
                f,
                "the prefix reads {claimed} where the answer has {expected} bytes; read as \
                 {other} it is {expected}: if the assignment writes it so, run with \
                 --param prefix={other}"
            ),
            FrameMiss::WrongLength {
                claimed, expected, ..
            } => write!(
                f,
                "the prefix reads {claimed} where the answer has {expected} bytes"
            ),
            FrameMiss::HeaderLength {
                claimed,
                other: Some(other),
            } => write!(
                f,
                "the header's length prefix reads {claimed}: no header is negative or \
                 longer than {MAX_HEADER} bytes; read as {other} it is a header's length: \
                 if the assignment writes it so, run with --param prefix={other}"
            ),
            FrameMiss::HeaderLength { claimed, .. } => write!(
                f,
                "the header's length prefix reads {claimed}: no header is negative or \
                 longer than {MAX_HEADER} bytes"
            ),
            FrameMiss::BadHeader { why, header } => write!(
                f,
                "the header {} is not a JSON object: {why}",
                show::quoted(header, 80)
            ),
            FrameMiss::CountsCharacters { chars, bytes } => write!(
                f,
                "the header length counts characters ({chars}) where the header has {bytes} \
                 bytes in UTF-8: send len(header_bytes), the length of the encoded header"
            ),
            FrameMiss::Size(e) => write!(f, "{e}"),
            FrameMiss::WrongSize {
                key,
                said,
                expected,
            } => write!(
                f,
                "the header's {key:?} is {said} where the body has {expected} bytes"
            ),
            FrameMiss::OtherBody { key, expected, got } => {
                write!(
                    f,
                    "the header's {key:?} is {} and as many bytes follow, but they are not the \
                     body expected: {} where it is {} ({} bytes)",
                    got.len(),
                    show::quoted(got, 48),
                    show::quoted(expected, 48),
                    expected.len()
                )?;
                if same_ascii(got, expected) {
                    write!(
                        f,
                        "; its ASCII bytes are all there, in order, and only the others differ"
                    )?;
                }
                Ok(())
            }
            FrameMiss::Body {
                offset,
                expected,
                got,
                after,
            } => write!(
                f,
                "the body differs at byte {offset}: expected 0x{expected:02x}, got 0x{got:02x} \
                 (from there: {})",
                show::quoted(after, 32)
            ),
            FrameMiss::WiderPrefix { configured, sent } => write!(
                f,
                "the prefix is 8 bytes ({sent}) where the profile reads {} ({configured}): \
                 the body seems to start with 4 zero bytes; if the assignment writes it so, \
                 run with --param prefix={sent}",
                configured.width()
            ),
            FrameMiss::DecimalLength {
                digits,
                expected,
                configured,
            } => write!(
                f,
                "the answer starts with the decimal digits {} where the profile reads a \
                 {configured} prefix (the answer has {expected} bytes): if the assignment sends \
                 the length as text and the body once the client answers ok, run with \
                 --param prefix=decimal",
                show::quoted(digits, 24)
            ),
            FrameMiss::NotDigits { got, other } => {
                write!(
                    f,
                    "the length is not decimal digits: the answer starts with {}",
                    show::quoted(got, 16)
                )?;
                if let Some(other) = other {
                    write!(
                        f,
                        "; read as {other} it is the answer's length: if the assignment \
                         writes it so, run with --param prefix={other}"
                    )?;
                }
                Ok(())
            }
            FrameMiss::BodyBeforeReady { digits, after } => write!(
                f,
                "the length {} came with more bytes right behind it ({}), before the client \
                 answered it: a client reading the length with one receive gets them too; \
                 send the body only once the client's ready word is in",
                show::quoted(digits, 24),
                show::quoted(after, 32)
            ),
            FrameMiss::Field {
                keys,
                what,
                expected,
                got: Some(got),
            } => write!(
                f,
                "the header's {} is {got:?} where it should be {what}, {expected:?}",
                keys.iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            FrameMiss::Field {
                keys,
                what,
                expected,
                got: None,
            } => write!(
                f,
                "the header has no {} (expected {what}, {expected:?})",
                keys.iter()
                    .map(|k| format!("{k:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
            FrameMiss::Md5 {
                said: Some(said),
                actual,
            } => write!(
                f,
                "the header's \"md5\" is {said} where the MD5 of the bytes that followed is \
                 {actual:?}"
            ),
            FrameMiss::Md5 { said: None, actual } => write!(
                f,
                "the header has no \"md5\" (the MD5 of the bytes that followed is {actual:?})"
            ),
            FrameMiss::Short { stage } => write!(f, "the answer stopped {stage}"),
        }
    }
}

/// Whether `a` and `b` hold the same ASCII bytes in the same order once
/// their other bytes are left out, and differ only in those: text whose
/// non-ASCII characters were changed, as by decoding it in one encoding and
/// encoding it in another.
fn same_ascii(a: &[u8], b: &[u8]) -> bool {
    let ascii = |x: &[u8]| x.iter().copied().filter(u8::is_ascii).collect::<Vec<u8>>();
    a != b && a.iter().any(|c| !c.is_ascii()) && ascii(a) == ascii(b)
}
