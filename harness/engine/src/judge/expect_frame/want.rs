//! What a framed answer must be: its framing (a length prefix, a decimal
//! length, a JSON header with or without a prefix, a `128sl` struct), the
//! body it must carry, and what its header must hold besides the size.

use std::fmt;

use crate::judge::body::BodySpec;
use crate::judge::frame::PrefixFormat;
use crate::judge::show;

/// How an answer is framed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Framing {
    /// `prefix(N)` then N bytes of body.
    Length { prefix: PrefixFormat },
    /// `prefix(H)`, H bytes of a UTF-8 JSON object whose `size_key` field
    /// is N, then N bytes of body.
    JsonHeader {
        prefix: PrefixFormat,
        size_key: String,
    },
    /// N as decimal ASCII digits in one send, with no terminator; the
    /// client answers `ready` (`ok`), and only then come the N bytes of
    /// body. The client reads the digits with one receive, which the
    /// server's wait for the ready word keeps apart from the body.
    Decimal { ready: String },
    /// A UTF-8 JSON object with no prefix, in one write, its `size_key`
    /// field N, then N bytes of body; when `ready` is set the receiver
    /// answers it (`200`) before the body comes.
    BareJson {
        size_key: String,
        ready: Option<Vec<u8>>,
    },
    /// C's `struct.pack('128sl', name, N)`: [`STRUCT_NAME`] bytes of the
    /// name in UTF-8 padded with NULs, N as 8 bytes little-endian signed,
    /// then N bytes of body. The name is the header's first field.
    Struct128sl,
}

impl Framing {
    /// The binary prefix of the framings that have one. A decimal length
    /// is read in a stage of its own, which never asks for it.
    pub(super) fn prefix(&self) -> PrefixFormat {
        match self {
            Framing::Length { prefix } | Framing::JsonHeader { prefix, .. } => *prefix,
            Framing::Decimal { .. } | Framing::BareJson { .. } | Framing::Struct128sl => {
                PrefixFormat::I32Le
            }
        }
    }
}

/// The bytes of the name in a `128sl` header.
pub const STRUCT_NAME: usize = 128;
/// A `128sl` header's length: the name and an 8-byte size.
pub const STRUCT_LEN: usize = STRUCT_NAME + 8;
/// The key a `128sl` header's size is shown under.
pub(super) const STRUCT_SIZE: &str = "size";

/// The ready word a tolerant binary frame answers a decimal length with:
/// the course's own.
pub const READY: &str = "ok";

/// The most digits a decimal length is read to: more than any length
/// written in decimal has.
pub(super) const MAX_DIGITS: usize = 20;

/// A framed answer the harness waits for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FrameWant {
    pub framing: Framing,
    pub body: BodySpec,
    /// Whether the known variants of the framing's format are taken, and
    /// noted, rather than missed: a prefix in another byte order or width
    /// that reads the body's length, the size under another key that holds
    /// it, or written as a string of digits. For checks whose subject is
    /// not the format (a sequence, a large output), so that one mistake in
    /// the format is blamed by the check about it, not by every check.
    pub tolerant: bool,
    /// What a JSON header must hold besides the body's size; nothing more
    /// by default.
    pub header: HeaderWant,
}

/// What a JSON header must hold besides the size under the framing's key:
/// other keys the size may be under, fields with a known value, an MD5 of
/// the body. An upload's header names the file and may carry its digest,
/// and assignments spell the keys differently.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct HeaderWant {
    /// Other keys the body's size may be under, any one taken when the
    /// framing's key is absent.
    pub other_size_keys: Vec<String>,
    /// Fields that must hold a text, each under any one of its keys.
    pub fields: Vec<FieldWant>,
    /// What is asked of an `md5` field.
    pub md5: Md5Want,
}

/// A header field that must hold `value`, under any one of `keys`;
/// `what` names the value for a miss ("the file's name").
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FieldWant {
    pub keys: Vec<String>,
    pub value: String,
    pub what: &'static str,
}

/// What is asked of a header's `md5` field: 32 hex digits of the body's
/// MD5.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Md5Want {
    /// Not looked at.
    #[default]
    Ignored,
    /// Judged when the header has one.
    WhenSent,
    /// Required, and judged.
    Required,
}

/// The name of the MD5 field in a header.
pub const MD5_KEY: &str = "md5";

/// `keys` as `"a" (or "b", "c")`.
fn keys_words(keys: &[String]) -> String {
    match keys {
        [] => String::new(),
        [one] => format!("{one:?}"),
        [first, rest @ ..] => format!(
            "{first:?} (or {})",
            rest.iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

impl fmt::Display for FrameWant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.framing {
            Framing::Length { prefix } => write!(f, "a {prefix} length prefix and ")?,
            Framing::Decimal { ready } => write!(
                f,
                "the length in decimal digits, answered with {}, and ",
                show::quoted(ready.as_bytes(), 24)
            )?,
            Framing::Struct128sl => {
                write!(
                    f,
                    "a 128sl struct header (name {STRUCT_NAME} bytes, size 8 bytes)"
                )?;
                for field in self.header.fields.iter().take(1) {
                    write!(f, ", named {:?}", field.value)?;
                }
                f.write_str(", and ")?;
            }
            Framing::JsonHeader { size_key, .. } | Framing::BareJson { size_key, .. } => {
                let mut keys = vec![size_key.clone()];
                keys.extend(self.header.other_size_keys.iter().cloned());
                match &self.framing {
                    Framing::JsonHeader { prefix, .. } => write!(
                        f,
                        "a {prefix} header length, a JSON header with {}",
                        keys_words(&keys)
                    )?,
                    _ => write!(f, "a JSON header alone with {}", keys_words(&keys))?,
                }
                for field in &self.header.fields {
                    write!(f, ", {} {:?}", keys_words(&field.keys), field.value)?;
                }
                match self.header.md5 {
                    Md5Want::Ignored => {}
                    Md5Want::WhenSent => write!(f, ", {MD5_KEY:?} if sent")?,
                    Md5Want::Required => write!(f, ", {MD5_KEY:?}")?,
                }
                f.write_str(" and ")?;
            }
        }
        match &self.body {
            BodySpec::Literal(b) => write!(f, "the body {}", show::quoted(b, 48)),
            BodySpec::Seeded { len, .. } => write!(f, "a generated body of {len} bytes"),
            BodySpec::Repeated { pattern, len } => write!(
                f,
                "a body of {len} bytes, {} repeated",
                show::quoted(pattern, 24)
            ),
            BodySpec::RepeatedThen { pattern, len, end } => write!(
                f,
                "a body of {len} bytes, {} repeated, then {}",
                show::quoted(pattern, 24),
                show::quoted(end, 32)
            ),
        }
    }
}
