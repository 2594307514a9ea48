//! Whether the bytes of a framed answer meet what was expected, read as
//! they arrive, across any number of receives: a length prefix and a body
//! (`cmd-len`), the length as decimal digits, the client's ready word and
//! the body (`cmd-len`'s variant), or a prefix, a JSON header that gives
//! the body's size and the body (`cmd-json`). A pure state machine fed with
//! bytes, in the style of
//! [`expect::progress`](crate::judge::expect::progress): it says the frame
//! is done (and how many of the bytes fed last were its own), that it
//! cannot be met any more (where, and why, in words a student can act on),
//! that the harness must answer before more can come (the ready word), or
//! that more must come.
//!
//! Memory stays flat whatever a frame claims: the prefix and the header are
//! kept (a header is bounded by [`MAX_HEADER`]), the body never is. It is
//! compared byte by byte with a body that is described, not stored
//! ([`BodySpec`]), and digested as it passes, so a 64 MiB body costs what a
//! 64 KiB one does.
//!
//! Where the frame is wrong in a way a known variant explains, the miss
//! names the variant and the `--param` that selects it: a prefix written
//! in another byte order or width, a header whose size is under another
//! key, a header length that counts characters instead of bytes.

use std::fmt;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

pub use crate::judge::body::BodySpec;
use crate::judge::frame::{size_field, Decoded, PrefixFormat, SizeError, MAX_HEADER};
use crate::judge::frame_miss::Difference;
pub use crate::judge::frame_miss::FrameMiss;
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
    fn prefix(&self) -> PrefixFormat {
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
const STRUCT_SIZE: &str = "size";

/// The ready word a tolerant binary frame answers a decimal length with:
/// the course's own.
pub const READY: &str = "ok";

/// The most digits a decimal length is read to: more than any length
/// written in decimal has.
const MAX_DIGITS: usize = 20;

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

/// Where a frame stands with the bytes fed so far.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum FrameProgress {
    /// Met; the first `used` bytes of the last feed were the frame's end,
    /// the rest belong to whatever follows.
    Done { used: usize },
    /// Cannot be met any more.
    Mismatch(FrameMiss),
    /// The first `used` bytes of the last feed were read (all of them);
    /// the sender waits for the harness to write `bytes` (the client's
    /// ready word) before more can come. Feed what comes after.
    Reply { used: usize, bytes: Vec<u8> },
    /// Everything so far fits; more must come.
    NeedMore,
}

/// What a frame's reading has taken so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    /// Reading the (first) prefix.
    Prefix,
    /// Reading a decimal length.
    Digits,
    /// Reading a header with no prefix.
    Bare,
    /// Reading a JSON header of this many bytes.
    Header {
        len: usize,
    },
    /// Reading the body: `seen` of the expected bytes so far.
    Body {
        seen: u64,
    },
    /// Reading the `said` bytes a header's wrong size announced, after the
    /// header's end at `from` in `head`, to tell a wrong size from a body
    /// other than the one expected.
    OtherBody {
        from: usize,
        said: usize,
    },
    Done,
}

/// A framed answer being read. Feed it what each receive brings.
#[derive(Clone, Debug)]
pub struct FrameMatch {
    want: FrameWant,
    stage: Stage,
    /// The prefix and header bytes so far: bounded by the prefix width plus
    /// [`MAX_HEADER`], and by a few KiB more when a header cut short is
    /// read on to tell why.
    head: Vec<u8>,
    /// The header as decoded, for the transcript.
    header: Option<Map<String, Value>>,
    /// A body difference that may be a wider prefix's high half.
    suspect: Option<Difference>,
    /// A variant of the format taken in a tolerant frame, in words.
    tolerated: Option<String>,
    /// The length's digits, once a decimal length was read.
    digits: Option<Vec<u8>>,
    digest: Md5,
}

/// How far past a header's claimed length the reader looks to tell why a
/// header does not parse: a header whose length counts characters is
/// longer in bytes, by at most three bytes a character.
const HEADER_SLACK: usize = 3 * 1024;

impl FrameMatch {
    pub fn new(want: FrameWant) -> FrameMatch {
        let stage = match want.framing {
            Framing::Decimal { .. } => Stage::Digits,
            Framing::BareJson { .. } | Framing::Struct128sl => Stage::Bare,
            _ => Stage::Prefix,
        };
        FrameMatch {
            want,
            stage,
            head: Vec::new(),
            header: None,
            suspect: None,
            tolerated: None,
            digits: None,
            digest: Md5::new(),
        }
    }

    /// The length's decimal digits, once the length was read as digits (in
    /// a decimal frame, or taken in a tolerant binary one).
    pub fn digits(&self) -> Option<&[u8]> {
        self.digits.as_deref()
    }

    /// The frame expected.
    pub fn want(&self) -> &FrameWant {
        &self.want
    }

    /// The variant of the format a tolerant frame took, in words, when it
    /// took one.
    pub fn tolerated(&self) -> Option<&str> {
        self.tolerated.as_deref()
    }

    /// The decoded header, once one was read.
    pub fn header(&self) -> Option<&Map<String, Value>> {
        self.header.as_ref()
    }

    /// The MD5 of the body bytes read so far, in hex: what a transcript
    /// shows instead of a large body (a student can compare it with
    /// `md5sum`).
    pub fn body_digest(&self) -> String {
        let sum = self.digest.clone().finalize();
        sum.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Body bytes read so far.
    pub fn body_seen(&self) -> u64 {
        match self.stage {
            Stage::Body { seen } => seen,
            Stage::Done => self.want.body.len(),
            _ => 0,
        }
    }

    /// Takes the bytes of one receive.
    pub fn feed(&mut self, bytes: &[u8]) -> FrameProgress {
        let mut at = 0;
        loop {
            let step = match self.stage {
                Stage::Prefix => self.read_prefix(bytes, &mut at),
                Stage::Digits => self.read_digits(bytes, &mut at),
                Stage::Bare => self.read_bare(bytes, &mut at),
                Stage::Header { len } => self.read_header(len, bytes, &mut at),
                Stage::Body { seen } => self.read_body(seen, bytes, &mut at),
                Stage::OtherBody { from, said } => self.read_other_body(from, said, bytes, &mut at),
                Stage::Done => return self.done(at),
            };
            match step {
                Some(FrameProgress::NeedMore) if at < bytes.len() => continue,
                Some(p) => return p,
                None if self.stage == Stage::Done => return self.done(at),
                None if at >= bytes.len() => return FrameProgress::NeedMore,
                None => continue,
            }
        }
    }

    /// The frame is whole, `used` bytes of the last feed its own: done,
    /// unless its header's MD5 is not the body's.
    fn done(&self, used: usize) -> FrameProgress {
        if self.want.header.md5 == Md5Want::Ignored {
            return FrameProgress::Done { used };
        }
        let actual = self.body_digest();
        match self.header.as_ref().and_then(|h| h.get(MD5_KEY)) {
            None if self.want.header.md5 == Md5Want::WhenSent => FrameProgress::Done { used },
            Some(Value::String(said)) if said.eq_ignore_ascii_case(&actual) => {
                FrameProgress::Done { used }
            }
            said => FrameProgress::Mismatch(FrameMiss::Md5 {
                said: said.map(Value::to_string),
                actual,
            }),
        }
    }

    /// The key the body's size is under in `header`: the framing's, or
    /// the first other one accepted that the header has.
    fn size_key(&self, header: &Map<String, Value>) -> String {
        let size_key = match &self.want.framing {
            Framing::JsonHeader { size_key, .. } | Framing::BareJson { size_key, .. } => size_key,
            Framing::Struct128sl => return STRUCT_SIZE.to_string(),
            _ => return String::new(),
        };
        if header.contains_key(size_key) {
            return size_key.clone();
        }
        self.want
            .header
            .other_size_keys
            .iter()
            .find(|k| header.contains_key(k.as_str()))
            .unwrap_or(size_key)
            .clone()
    }

    /// The first field of the header that does not hold what it must.
    fn field_miss(&self, header: &Map<String, Value>) -> Option<FrameMiss> {
        self.want.header.fields.iter().find_map(|field| {
            let found = field
                .keys
                .iter()
                .find_map(|k| header.get(k).map(|v| (k.clone(), v)));
            match found {
                Some((_, Value::String(got))) if *got == field.value => None,
                Some((key, got)) => Some(FrameMiss::Field {
                    keys: vec![key],
                    what: field.what,
                    expected: field.value.clone(),
                    got: Some(match got {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    }),
                }),
                None => Some(FrameMiss::Field {
                    keys: field.keys.clone(),
                    what: field.what,
                    expected: field.value.clone(),
                    got: None,
                }),
            }
        })
    }

    /// The stream ended, or the deadline passed, before the frame was
    /// whole: why, in the frame's own terms. `None` when it was whole.
    pub fn cut_short(&self) -> Option<FrameMiss> {
        let width = self.want.framing.prefix().width();
        let stage = match self.stage {
            Stage::Done => return None,
            Stage::Prefix | Stage::Digits | Stage::Bare if self.head.is_empty() => {
                "before any byte of it".to_string()
            }
            // Digits that stopped short of the length, the sender waiting
            // for a ready word: the length is what they say.
            Stage::Digits => return Some(self.wrong_digits()),
            // Digits where a binary prefix was expected: a decimal length
            // waiting for the ready word the profile does not send.
            Stage::Prefix if is_digits(&self.head) => return Some(self.decimal_miss()),
            // A wrong prefix waiting to be read as a wider one.
            Stage::Prefix if self.head.len() >= width => return Some(self.wrong_length_now()),
            Stage::Bare => format!(
                "after {} bytes of the header ({})",
                self.head.len(),
                show::quoted(&self.head, 32)
            ),
            Stage::Prefix => format!(
                "after {} of the prefix's {width} bytes ({})",
                self.head.len(),
                show::quoted(&self.head, 16)
            ),
            Stage::Header { len } if self.head.len() < width + len => format!(
                "after {} of the header's {len} bytes",
                self.head.len() - width
            ),
            Stage::Header { len } => {
                // A header that fails to parse for want of its end may be
                // one whose length counts characters: say so if it is.
                return self.header_verdict(len, true);
            }
            Stage::Body { seen } if self.suspect.is_some() => {
                let first = self.suspect?;
                return Some(first.miss(vec![0; (seen - first.offset) as usize]));
            }
            Stage::Body { seen } => {
                format!("after {seen} of the body's {} bytes", self.want.body.len())
            }
            Stage::OtherBody { .. } => return Some(self.wrong_size()),
        };
        Some(FrameMiss::Short { stage })
    }

    fn read_prefix(&mut self, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        let format = self.want.framing.prefix();
        let width = format.width();
        if self.head.len() < width {
            self.take(width, bytes, at);
        }
        if let Framing::Length { .. } = self.want.framing {
            if let Some(p) = self.decimal_in_binary(bytes, at) {
                return Some(p);
            }
        }
        if self.head.len() < width {
            return Some(FrameProgress::NeedMore);
        }
        let Decoded::Done(claimed, _) = format.decode(&self.head) else {
            return Some(FrameProgress::NeedMore);
        };
        match &self.want.framing {
            Framing::Length { .. } => {
                let expected = self.want.body.len();
                if u64::try_from(claimed).ok() == Some(expected) {
                    self.stage = Stage::Body { seen: 0 };
                    return self.finish_if_empty();
                }
                // The same bytes may be the start of a wider prefix: read
                // its rest before naming a format, so the miss does not
                // depend on how the answer was cut.
                if width == 4 && starts_wide(&self.head[..4], expected) {
                    self.take(8, bytes, at);
                    if self.head.len() < 8 {
                        return Some(FrameProgress::NeedMore);
                    }
                }
                let other = other_format(&self.head, format, expected);
                match other {
                    Some(other) if self.want.tolerant && other.width() == self.head.len() => {
                        self.tolerated = Some(format!(
                            "the prefix reads the body's length as {other}, not as the \
                             profile's {format}"
                        ));
                        self.stage = Stage::Body { seen: 0 };
                        self.finish_if_empty()
                    }
                    _ => Some(FrameProgress::Mismatch(self.wrong_length(claimed))),
                }
            }
            // A decimal frame reads its length in a stage of its own.
            Framing::Decimal { .. } => self.read_digits(bytes, at),
            Framing::BareJson { .. } | Framing::Struct128sl => self.read_bare(bytes, at),
            Framing::JsonHeader { .. } => match usize::try_from(claimed) {
                Ok(len) if len <= MAX_HEADER => {
                    self.stage = Stage::Header { len };
                    None
                }
                _ => match plausible_header_format(&self.head, format) {
                    Some(other) if self.want.tolerant => {
                        let Decoded::Done(len, _) = other.decode(&self.head) else {
                            return Some(FrameProgress::NeedMore);
                        };
                        self.tolerated = Some(format!(
                            "the header length reads as {other}, not as the profile's {format}"
                        ));
                        self.stage = Stage::Header {
                            len: usize::try_from(len).unwrap_or(MAX_HEADER),
                        };
                        None
                    }
                    other => Some(FrameProgress::Mismatch(FrameMiss::HeaderLength {
                        claimed,
                        other,
                    })),
                },
            },
        }
    }

    /// A length written in decimal digits where a binary prefix is
    /// expected: the body's length as digits, then nothing (the sender
    /// waits for a ready word) or the body. A tolerant frame answers the
    /// course's ready word and reads the body; otherwise a miss names
    /// `prefix=decimal`. `None` when the head is no such digits and is read
    /// as a binary prefix: no binary prefix of a length under 800 MB
    /// starts with that length's digits.
    fn decimal_in_binary(&mut self, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        let text = self.want.body.len().to_string();
        let text = text.as_bytes();
        let lead = digits_at_start(&self.head);
        if lead == 0 {
            return None;
        }
        if lead < self.head.len() {
            // Digits then other bytes: the length and the body together.
            return (&self.head[..lead] == text)
                .then(|| FrameProgress::Mismatch(self.decimal_miss()));
        }
        if !text.starts_with(&self.head) {
            return None;
        }
        self.take(text.len(), bytes, at);
        if digits_at_start(&self.head) < self.head.len() {
            // Not digits after all: a binary prefix, however it was cut.
            return None;
        }
        if self.head.len() < text.len() {
            return Some(FrameProgress::NeedMore);
        }
        if self.head != text || *at < bytes.len() || !self.want.tolerant {
            return Some(FrameProgress::Mismatch(self.decimal_miss()));
        }
        self.tolerated = Some(format!(
            "the length came as the decimal digits {}, answered with {READY:?}, not as the \
             profile's {} prefix",
            show::quoted(text, 24),
            self.want.framing.prefix()
        ));
        Some(self.digits_read(*at))
    }

    /// A binary prefix expected, decimal digits found.
    fn decimal_miss(&self) -> FrameMiss {
        FrameMiss::DecimalLength {
            digits: self.head[..digits_at_start(&self.head)].to_vec(),
            expected: self.want.body.len(),
            configured: self.want.framing.prefix(),
        }
    }

    /// Reads a decimal length: digits up to the end of the receive, the
    /// sender then waiting for the ready word. The digits of the body's
    /// length, whole, ask for the ready word; their start asks for more.
    fn read_digits(&mut self, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        while let Some(&b) = bytes.get(*at) {
            if !b.is_ascii_digit() || self.head.len() >= MAX_DIGITS {
                break;
            }
            self.head.push(b);
            *at += 1;
        }
        let expected = self.want.body.len();
        let text = expected.to_string();
        let text = text.as_bytes();
        if self.head.is_empty() {
            if *at >= bytes.len() {
                return Some(FrameProgress::NeedMore);
            }
            // Not a digit: perhaps a binary prefix.
            self.take(8, bytes, at);
            let other = PrefixFormat::ALL.into_iter().find(|f| {
                matches!(f.decode(&self.head), Decoded::Done(n, _) if u64::try_from(n).ok() == Some(expected))
            });
            return Some(FrameProgress::Mismatch(FrameMiss::NotDigits {
                got: self.head.clone(),
                other,
            }));
        }
        if let Some(rest) = bytes.get(*at..).filter(|r| !r.is_empty()) {
            // Bytes right behind the digits, before any ready word.
            let miss = match self.head == text {
                true => FrameMiss::BodyBeforeReady {
                    digits: self.head.clone(),
                    after: rest[..rest.len().min(32)].to_vec(),
                },
                false => self.wrong_digits(),
            };
            return Some(FrameProgress::Mismatch(miss));
        }
        if self.head == text {
            return Some(self.digits_read(*at));
        }
        if text.starts_with(&self.head) {
            return Some(FrameProgress::NeedMore);
        }
        Some(FrameProgress::Mismatch(self.wrong_digits()))
    }

    /// The digits in `head` are the length, the last of them at `used` of
    /// the feed: the ready word is due, and the body comes after it.
    fn digits_read(&mut self, used: usize) -> FrameProgress {
        self.digits = Some(std::mem::take(&mut self.head));
        let ready = match &self.want.framing {
            Framing::Decimal { ready } => ready.as_str(),
            _ => READY,
        };
        let bytes = ready.as_bytes().to_vec();
        self.stage = Stage::Body { seen: 0 };
        self.finish_if_empty();
        FrameProgress::Reply { used, bytes }
    }

    /// Decimal digits that are not the body's length.
    fn wrong_digits(&self) -> FrameMiss {
        let claimed = std::str::from_utf8(&self.head)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        FrameMiss::WrongLength {
            claimed,
            expected: self.want.body.len(),
            other: None,
        }
    }

    /// Moves bytes of the feed into `head` until it holds `upto` bytes.
    fn take(&mut self, upto: usize, bytes: &[u8], at: &mut usize) {
        let take = upto.saturating_sub(self.head.len()).min(bytes.len() - *at);
        self.head.extend_from_slice(&bytes[*at..*at + take]);
        *at += take;
    }

    fn wrong_length_now(&self) -> FrameMiss {
        match self.want.framing.prefix().decode(&self.head) {
            Decoded::Done(claimed, _) => self.wrong_length(claimed),
            Decoded::Incomplete(_) => FrameMiss::Short {
                stage: "inside the prefix".into(),
            },
        }
    }

    fn wrong_length(&self, claimed: i64) -> FrameMiss {
        let expected = self.want.body.len();
        FrameMiss::WrongLength {
            claimed,
            expected,
            other: other_format(&self.head, self.want.framing.prefix(), expected),
        }
    }

    fn read_header(&mut self, len: usize, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        let width = self.want.framing.prefix().width();
        if self.head.len() < width + len {
            self.take(width + len, bytes, at);
            if self.head.len() < width + len {
                return Some(FrameProgress::NeedMore);
            }
        }
        let header = &self.head[width..width + len];
        let parsed = match serde_json::from_slice::<Value>(header) {
            // A header in another encoding than UTF-8 (GBK) is the header
            // check's to blame: a tolerant frame reads it with the bytes
            // that are not UTF-8 replaced, as its size field is ASCII.
            Err(_) if self.want.tolerant && std::str::from_utf8(header).is_err() => {
                let lossy = serde_json::from_str::<Value>(&String::from_utf8_lossy(header));
                if lossy.as_ref().is_ok_and(Value::is_object) {
                    self.tolerated = Some("the header's bytes are not UTF-8".to_string());
                }
                lossy
            }
            parsed => parsed,
        };
        match parsed {
            Ok(Value::Object(map)) => {
                self.header = Some(map);
                return self.header_read();
            }
            // A header cut short ends inside the JSON: perhaps its length
            // counts characters, which are more bytes than that. Read on
            // (boundedly) until the object closes, to say so.
            Err(e) if e.is_eof() => {
                self.take(width + len + HEADER_SLACK, bytes, at);
                if let Some(miss) = self.header_verdict(len, false) {
                    return Some(FrameProgress::Mismatch(miss));
                }
                if self.head.len() < width + len + HEADER_SLACK {
                    return Some(FrameProgress::NeedMore);
                }
            }
            _ => {}
        }
        self.header_verdict(len, true).map(FrameProgress::Mismatch)
    }

    /// Why the header of `len` bytes cannot be read, judged on the bytes
    /// kept: a header whose length counts characters when the bytes after
    /// it complete a JSON object of that many characters; otherwise, when
    /// `final` (no more bytes will be read for it), what the parser says.
    fn header_verdict(&self, len: usize, last: bool) -> Option<FrameMiss> {
        let width = self.want.framing.prefix().width();
        let kept = self.head.get(width..)?;
        // The shortest run of whole characters from the header's start that
        // parses and has `len` characters.
        if let Some(bytes) = counted_in_characters(kept, len) {
            return Some(FrameMiss::CountsCharacters { chars: len, bytes });
        }
        if !last {
            return None;
        }
        let header = &kept[..len.min(kept.len())];
        let why = match serde_json::from_slice::<Value>(header) {
            Ok(Value::Object(_)) => return None,
            Ok(_) => "it is JSON but not an object".to_string(),
            // Text in another encoding (GBK, Latin-1) is what a header
            // that does not parse most often is: said before the parser's
            // words, which speak of code points.
            Err(_) if std::str::from_utf8(header).is_err() => {
                let at = std::str::from_utf8(header)
                    .err()
                    .map_or(0, |e| e.valid_up_to());
                format!(
                    "its bytes are not UTF-8 (from byte {at}: {})",
                    show::quoted(&header[at..], 12)
                )
            }
            Err(e) => e.to_string(),
        };
        Some(FrameMiss::BadHeader {
            why,
            header: header.to_vec(),
        })
    }

    /// A header with no prefix: a `128sl` struct of fixed length, or a JSON
    /// object read to its closing brace. Bytes past its end are the body's.
    fn read_bare(&mut self, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        let header = match &self.want.framing {
            Framing::Struct128sl => {
                self.take(STRUCT_LEN, bytes, at);
                if self.head.len() < STRUCT_LEN {
                    return Some(FrameProgress::NeedMore);
                }
                let name = &self.head[..STRUCT_NAME];
                let end = name.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                let name = String::from_utf8_lossy(&name[..end]).into_owned();
                let mut size = [0u8; 8];
                size.copy_from_slice(&self.head[STRUCT_NAME..STRUCT_LEN]);
                let mut header = Map::new();
                // The struct's name answers to every key the name is
                // asked under: it has no keys of its own.
                if let Some(field) = self.want.header.fields.first() {
                    for key in &field.keys {
                        header.insert(key.clone(), Value::from(name.clone()));
                    }
                }
                header.insert(STRUCT_SIZE.into(), Value::from(i64::from_le_bytes(size)));
                header
            }
            _ => {
                let before = self.head.len();
                self.take(MAX_HEADER, bytes, at);
                let mut values =
                    serde_json::Deserializer::from_slice(&self.head).into_iter::<Value>();
                match values.next() {
                    Some(Ok(Value::Object(map))) => {
                        // What follows the object is the body's.
                        let end = values.byte_offset();
                        let past = self.head.len() - end;
                        *at -= past.min(self.head.len() - before);
                        self.head.truncate(end);
                        map
                    }
                    Some(Err(e)) if e.is_eof() && self.head.len() < MAX_HEADER => {
                        return Some(FrameProgress::NeedMore);
                    }
                    None => return Some(FrameProgress::NeedMore),
                    Some(Ok(other)) => {
                        return Some(FrameProgress::Mismatch(FrameMiss::BadHeader {
                            why: format!("it is {other}, not a JSON object"),
                            header: self.head.clone(),
                        }))
                    }
                    Some(Err(e)) => {
                        return Some(FrameProgress::Mismatch(FrameMiss::BadHeader {
                            why: e.to_string(),
                            header: self.head.clone(),
                        }))
                    }
                }
            }
        };
        self.header = Some(header);
        if let Some(p) = self.header_read() {
            return Some(p);
        }
        match &self.want.framing {
            Framing::BareJson {
                ready: Some(ready), ..
            } => Some(FrameProgress::Reply {
                used: *at,
                bytes: ready.clone(),
            }),
            _ => None,
        }
    }

    fn header_read(&mut self) -> Option<FrameProgress> {
        if matches!(
            self.want.framing,
            Framing::Length { .. } | Framing::Decimal { .. }
        ) {
            return None;
        }
        let expected = self.want.body.len();
        let header = self.header.as_ref()?;
        if let Some(miss) = self.field_miss(header) {
            return Some(FrameProgress::Mismatch(miss));
        }
        let size_key = &self.size_key(header);
        let said = match size_field(header, size_key, Some(expected)) {
            Ok(n) => n,
            Err(SizeError::Missing {
                suggestion: Some(other),
                ..
            }) if self.want.tolerant => {
                self.tolerated = Some(format!(
                    "the body's length is under {other:?}, not under {size_key:?}"
                ));
                expected
            }
            Err(SizeError::NotInteger { found, .. })
                if self.want.tolerant && found == format!("\"{expected}\"") =>
            {
                self.tolerated = Some(format!(
                    "the header's {size_key:?} is the string {found}, not an integer"
                ));
                expected
            }
            Err(e) => return Some(FrameProgress::Mismatch(FrameMiss::Size(e))),
        };
        if said != expected {
            // A short literal body is read as far as the size says: the
            // server may have framed, rightly, an output other than the one
            // asked for (a command changed on its way to the shell).
            let from = self.head.len();
            return match (&self.want.body, usize::try_from(said)) {
                (BodySpec::Literal(_), Ok(said)) if said <= MAX_OTHER_BODY => {
                    self.stage = Stage::OtherBody { from, said };
                    None
                }
                _ => Some(FrameProgress::Mismatch(self.wrong_size())),
            };
        }
        self.stage = Stage::Body { seen: 0 };
        self.finish_if_empty()
    }

    /// The header's size is not the body's length.
    fn wrong_size(&self) -> FrameMiss {
        let (key, said) = match (&self.want.framing, &self.header) {
            (
                Framing::JsonHeader { .. } | Framing::BareJson { .. } | Framing::Struct128sl,
                Some(header),
            ) => {
                let key = self.size_key(header);
                let said = size_field(header, &key, None).unwrap_or_default();
                (key, said)
            }
            _ => (String::new(), 0),
        };
        FrameMiss::WrongSize {
            key,
            said,
            expected: self.want.body.len(),
        }
    }

    /// Reads the `said` bytes after the header at `from`: a body other than
    /// the expected one when they differ from it where both have bytes, a
    /// wrong size when they are its start (a size too small) or it is
    /// theirs (too large).
    fn read_other_body(
        &mut self,
        from: usize,
        said: usize,
        bytes: &[u8],
        at: &mut usize,
    ) -> Option<FrameProgress> {
        self.take(from + said, bytes, at);
        if self.head.len() < from + said {
            return Some(FrameProgress::NeedMore);
        }
        let BodySpec::Literal(expected) = &self.want.body else {
            return Some(FrameProgress::Mismatch(self.wrong_size()));
        };
        let got = &self.head[from..];
        let common = got.len().min(expected.len());
        if got[..common] == expected[..common] {
            return Some(FrameProgress::Mismatch(self.wrong_size()));
        }
        let Framing::JsonHeader { size_key, .. } = &self.want.framing else {
            return Some(FrameProgress::Mismatch(self.wrong_size()));
        };
        Some(FrameProgress::Mismatch(FrameMiss::OtherBody {
            key: size_key.clone(),
            expected: expected.clone(),
            got: got.to_vec(),
        }))
    }

    fn finish_if_empty(&mut self) -> Option<FrameProgress> {
        if self.want.body.is_empty() {
            self.stage = Stage::Done;
        }
        None
    }

    fn read_body(&mut self, seen: u64, bytes: &[u8], at: &mut usize) -> Option<FrameProgress> {
        // A suspected wider prefix is read to its end even past a short
        // body.
        let limit = match self.suspect {
            Some(_) => self.want.body.len().max(4),
            None => self.want.body.len(),
        };
        let remaining = limit - seen;
        let available = (bytes.len() - *at) as u64;
        let take = usize::try_from(remaining.min(available)).unwrap_or(usize::MAX);
        let piece = &bytes[*at..*at + take];
        for (i, &got) in piece.iter().enumerate() {
            let offset = seen + i as u64;
            if let Some(first) = self.suspect {
                // Zeros after a 32-bit little-endian prefix: the high half
                // of a 64-bit one, once all four have come.
                if got != 0 {
                    let mut after = vec![0u8; (offset - first.offset) as usize];
                    after.extend_from_slice(&piece[i..piece.len().min(i + 32)]);
                    return Some(FrameProgress::Mismatch(first.miss(after)));
                }
                if offset == 3 {
                    return self.wide_prefix_read(i, at);
                }
                continue;
            }
            let expected = self.want.body.byte_at(offset).unwrap_or_default();
            if got == expected {
                continue;
            }
            if got == 0 && self.may_be_wide(offset) {
                self.suspect = Some(Difference { offset, expected });
                if offset == 3 {
                    return self.wide_prefix_read(i, at);
                }
                continue;
            }
            let after = piece[i..piece.len().min(i + 32)].to_vec();
            return Some(FrameProgress::Mismatch(FrameMiss::Body {
                offset,
                expected,
                got,
                after,
            }));
        }
        self.digest.update(piece);
        *at += take;
        let seen = seen + take as u64;
        self.stage = if seen == self.want.body.len() && self.suspect.is_none() {
            Stage::Done
        } else {
            Stage::Body { seen }
        };
        None
    }

    /// Whether a zero at `offset` of the body may be part of the high half
    /// of a 64-bit little-endian prefix read as a 32-bit one: the low half
    /// then reads right, and the body seems to start with four zeros.
    fn may_be_wide(&self, offset: u64) -> bool {
        let little = matches!(
            self.want.framing,
            Framing::Length {
                prefix: PrefixFormat::I32Le | PrefixFormat::U32Le
            }
        );
        little && offset < 4 && (0..offset).all(|o| self.want.body.byte_at(o) == Some(0))
    }

    /// The fourth zero after a 32-bit little-endian prefix came, at
    /// index `i` of the piece being read: a miss, or in a tolerant frame
    /// the body read again from the next byte on.
    fn wide_prefix_read(&mut self, i: usize, at: &mut usize) -> Option<FrameProgress> {
        if !self.want.tolerant {
            return Some(FrameProgress::Mismatch(self.wider_prefix()));
        }
        let configured = self.want.framing.prefix();
        self.tolerated = Some(format!(
            "the prefix is 8 bytes (i64le), not the profile's {configured}"
        ));
        self.suspect = None;
        self.digest = Md5::new();
        *at += i + 1;
        self.stage = Stage::Body { seen: 0 };
        self.finish_if_empty()
    }

    fn wider_prefix(&self) -> FrameMiss {
        FrameMiss::WiderPrefix {
            configured: self.want.framing.prefix(),
            sent: PrefixFormat::I64Le,
        }
    }
}

/// How many bytes at the start of `bytes` are ASCII digits.
fn digits_at_start(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// Whether `bytes` are ASCII digits, one or more.
fn is_digits(bytes: &[u8]) -> bool {
    !bytes.is_empty() && digits_at_start(bytes) == bytes.len()
}

/// The most bytes read after a header whose size is wrong, to tell whether
/// they are another body: enough for the short outputs compared literally.
const MAX_OTHER_BODY: usize = 4096;

/// Another prefix format under which the bytes `seen` (the prefix and what
/// followed it) read as `expected`.
fn other_format(seen: &[u8], configured: PrefixFormat, expected: u64) -> Option<PrefixFormat> {
    PrefixFormat::ALL
        .into_iter()
        .filter(|f| *f != configured)
        .find(|f| matches!(f.decode(seen), Decoded::Done(n, _) if u64::try_from(n).ok() == Some(expected)))
}

/// Whether `four` are the first bytes of `expected` written as a 64-bit
/// prefix, in either byte order.
fn starts_wide(four: &[u8], expected: u64) -> bool {
    [PrefixFormat::I64Le, PrefixFormat::I64Be]
        .into_iter()
        .filter_map(|f| f.encode(expected))
        .any(|wide| wide.starts_with(four))
}

/// A format of the configured width under which `head` is a plausible
/// header length (1 to [`MAX_HEADER`]).
fn plausible_header_format(head: &[u8], configured: PrefixFormat) -> Option<PrefixFormat> {
    PrefixFormat::ALL
        .into_iter()
        .filter(|f| *f != configured && f.width() == configured.width())
        .find(|f| {
            matches!(f.decode(head), Decoded::Done(n, _)
                if usize::try_from(n).is_ok_and(|n| n > 0 && n <= MAX_HEADER))
        })
}

/// The length in bytes of a JSON object at the start of `kept` that has
/// exactly `chars` characters, when there is one and it is longer in bytes
/// than in characters.
fn counted_in_characters(kept: &[u8], chars: usize) -> Option<usize> {
    let text = match std::str::from_utf8(kept) {
        Ok(t) => t,
        // A piece cut inside a character: the whole characters before it.
        Err(e) => std::str::from_utf8(&kept[..e.valid_up_to()]).ok()?,
    };
    let (end, _) = text.char_indices().nth(chars).unwrap_or((text.len(), ' '));
    if text[..end].chars().count() != chars || end == chars {
        return None;
    }
    match serde_json::from_str::<Value>(&text[..end]) {
        Ok(Value::Object(_)) => Some(end),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn len_frame(prefix: PrefixFormat, body: &[u8]) -> Vec<u8> {
        let mut out = prefix.encode(body.len() as u64).expect("fits");
        out.extend_from_slice(body);
        out
    }

    fn json_frame(prefix: PrefixFormat, header: &str, body: &[u8]) -> Vec<u8> {
        let mut out = prefix.encode(header.len() as u64).expect("fits");
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    fn length(prefix: PrefixFormat, body: &[u8]) -> FrameMatch {
        FrameMatch::new(FrameWant {
            framing: Framing::Length { prefix },
            body: BodySpec::Literal(body.to_vec()),
            tolerant: false,
            header: HeaderWant::default(),
        })
    }

    fn json(prefix: PrefixFormat, key: &str, body: BodySpec) -> FrameMatch {
        FrameMatch::new(FrameWant {
            framing: Framing::JsonHeader {
                prefix,
                size_key: key.into(),
            },
            body,
            tolerant: false,
            header: HeaderWant::default(),
        })
    }

    /// An upload's header: the size under "size" or "filesize", the name
    /// under "filename" or "file_name", the md5 judged when sent.
    fn upload(body: &[u8]) -> FrameMatch {
        FrameMatch::new(FrameWant {
            framing: Framing::JsonHeader {
                prefix: PrefixFormat::I32Le,
                size_key: "size".into(),
            },
            body: BodySpec::Literal(body.to_vec()),
            tolerant: false,
            header: HeaderWant {
                other_size_keys: vec!["filesize".into()],
                fields: vec![FieldWant {
                    keys: vec!["filename".into(), "file_name".into()],
                    value: "回顾.mp4".into(),
                    what: "the file's name",
                }],
                md5: Md5Want::WhenSent,
            },
        })
    }

    #[test]
    fn an_upload_header_takes_any_accepted_size_key_and_the_file_name() {
        let mut m = upload(b"abc");
        let header = r#"{"filename": "回顾.mp4", "filesize": 3}"#;
        let bytes = json_frame(PrefixFormat::I32Le, header, b"abc");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    }

    #[test]
    fn an_upload_header_naming_another_file_is_a_miss_that_quotes_both() {
        let mut m = upload(b"abc");
        let header = r#"{"file_name": "/tmp/x/回顾.mp4", "size": 3}"#;
        let p = m.feed(&json_frame(PrefixFormat::I32Le, header, b"abc"));
        let FrameProgress::Mismatch(miss) = p else {
            panic!("{p:?}")
        };
        let words = miss.to_string();
        assert!(
            words.contains("\"file_name\" is \"/tmp/x/回顾.mp4\""),
            "{words}"
        );
        assert!(words.contains("the file's name, \"回顾.mp4\""), "{words}");
    }

    #[test]
    fn an_md5_that_is_not_the_body_s_is_a_miss_once_the_body_is_in() {
        let mut m = upload(b"abc");
        let header =
            r#"{"filename": "回顾.mp4", "size": 3, "md5": "00000000000000000000000000000000"}"#;
        let p = m.feed(&json_frame(PrefixFormat::I32Le, header, b"abc"));
        let FrameProgress::Mismatch(FrameMiss::Md5 { actual, .. }) = p else {
            panic!("{p:?}")
        };
        assert_eq!(actual, "900150983cd24fb0d6963f7d28e17f72");
        let mut m = upload(b"abc");
        let header =
            r#"{"filename": "回顾.mp4", "size": 3, "md5": "900150983CD24FB0D6963F7D28E17F72"}"#;
        let bytes = json_frame(PrefixFormat::I32Le, header, b"abc");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    }

    /// [`upload`] framed as `framing`.
    fn upload_framed(framing: Framing, body: &[u8]) -> FrameMatch {
        FrameMatch::new(FrameWant {
            framing,
            ..upload(body).want
        })
    }

    #[test]
    fn a_bare_json_header_ends_at_its_closing_brace_and_is_answered_before_the_body() {
        let framing = Framing::BareJson {
            size_key: "size".into(),
            ready: Some(b"200".to_vec()),
        };
        let mut m = upload_framed(framing, b"abc");
        let header = r#"{"filename": "回顾.mp4", "filesize": 3}"#;
        let (p, _) = feed_cut(&mut m, header.as_bytes(), &[5, 20]);
        assert_eq!(
            p,
            FrameProgress::Reply {
                used: header.len() - 20,
                bytes: b"200".to_vec()
            }
        );
        assert_eq!(m.feed(b"abc"), FrameProgress::Done { used: 3 });
    }

    #[test]
    fn a_bare_json_header_leaves_the_bytes_after_it_to_the_body() {
        let framing = Framing::BareJson {
            size_key: "size".into(),
            ready: None,
        };
        let mut m = upload_framed(framing, b"abc");
        let bytes = r#"{"filename": "回顾.mp4", "size": 3}abc"#.as_bytes();
        assert_eq!(m.feed(bytes), FrameProgress::Done { used: bytes.len() });
    }

    #[test]
    fn a_struct_header_is_a_padded_name_and_a_little_endian_size() {
        let mut bytes = "回顾.mp4".as_bytes().to_vec();
        bytes.resize(STRUCT_NAME, 0);
        bytes.extend_from_slice(&3i64.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let mut m = upload_framed(Framing::Struct128sl, b"abc");
        let (p, _) = feed_cut(&mut m, &bytes, &[1, 130]);
        assert!(matches!(p, FrameProgress::Done { .. }), "{p:?}");
        let mut wrong = bytes.clone();
        wrong[STRUCT_NAME] = 4;
        let mut m = upload_framed(Framing::Struct128sl, b"abc");
        // A size of 4 waits for a fourth byte; the end of the stream
        // names the size wrong.
        assert_eq!(m.feed(&wrong), FrameProgress::NeedMore);
        let miss = m.cut_short();
        assert!(
            matches!(miss, Some(FrameMiss::WrongSize { .. })),
            "{miss:?}"
        );
    }

    #[test]
    fn an_upload_header_counted_in_characters_is_named_so() {
        let mut m = upload(b"abcdef");
        let header = r#"{"filename": "回顾.mp4", "filesize": 6}"#;
        let mut bytes = PrefixFormat::I32Le
            .encode(header.chars().count() as u64)
            .expect("fits");
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(b"abcdef");
        let p = m.feed(&bytes);
        assert_eq!(
            p,
            FrameProgress::Mismatch(FrameMiss::CountsCharacters {
                chars: header.chars().count(),
                bytes: header.len()
            })
        );
    }

    /// Feeds `bytes` cut at `cuts` (offsets, in order); the progress of
    /// the last feed, and the bytes used before it.
    fn feed_cut(m: &mut FrameMatch, bytes: &[u8], cuts: &[usize]) -> (FrameProgress, usize) {
        let mut from = 0;
        let mut edges: Vec<usize> = cuts.iter().copied().filter(|&c| c < bytes.len()).collect();
        edges.push(bytes.len());
        for to in edges {
            if to <= from {
                continue;
            }
            match m.feed(&bytes[from..to]) {
                FrameProgress::NeedMore => from = to,
                p => return (p, from),
            }
        }
        (FrameProgress::NeedMore, from)
    }

    #[test]
    fn a_length_frame_is_done_at_its_last_body_byte_and_leaves_what_follows() {
        let mut m = length(PrefixFormat::I32Le, b"total 0\n");
        let mut bytes = len_frame(PrefixFormat::I32Le, b"total 0\n");
        bytes.extend_from_slice(b"NEXT");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: 12 });
    }

    #[test]
    fn an_empty_body_is_done_with_its_prefix() {
        let mut m = length(PrefixFormat::U32Be, b"");
        assert_eq!(m.feed(&[0, 0, 0, 0]), FrameProgress::Done { used: 4 });
    }

    #[test]
    fn a_prefix_in_the_other_byte_order_is_named_with_the_param_that_fits() {
        let mut m = length(PrefixFormat::I32Le, b"hello");
        let p = m.feed(&len_frame(PrefixFormat::I32Be, b"hello"));
        let FrameProgress::Mismatch(miss) = p else {
            panic!("{p:?}")
        };
        assert_eq!(
            miss,
            FrameMiss::WrongLength {
                claimed: 5 << 24,
                expected: 5,
                other: Some(PrefixFormat::I32Be)
            }
        );
        assert!(miss.to_string().contains("--param prefix=i32be"), "{miss}");
    }

    #[test]
    fn a_wider_prefix_than_configured_is_named() {
        let mut m = length(PrefixFormat::I32Be, b"hello");
        let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I64Be, b"hello"))
        else {
            panic!()
        };
        assert!(miss.to_string().contains("prefix=i64be"), "{miss}");
    }

    #[test]
    fn a_wider_prefix_is_named_however_the_answer_was_cut() {
        let bytes = len_frame(PrefixFormat::I64Le, b"hello");
        for cut in 1..bytes.len() {
            let mut m = length(PrefixFormat::I32Le, b"hello");
            let (p, _) = feed_cut(&mut m, &bytes, &[cut]);
            let FrameProgress::Mismatch(miss) = p else {
                panic!("cut at {cut}: {p:?}")
            };
            assert!(
                miss.to_string().contains("prefix=i64le"),
                "cut at {cut}: {miss}"
            );
        }
    }

    #[test]
    fn a_wider_prefix_before_a_body_shorter_than_its_high_half_is_named() {
        let bytes = len_frame(PrefixFormat::I64Le, b"hi");
        for cut in 1..bytes.len() {
            let mut m = length(PrefixFormat::U32Le, b"hi");
            let (p, _) = feed_cut(&mut m, &bytes, &[cut]);
            let FrameProgress::Mismatch(miss) = p else {
                panic!("cut at {cut}: {p:?}")
            };
            assert!(
                miss.to_string().contains("prefix=i64le"),
                "cut at {cut}: {miss}"
            );
        }
    }

    #[test]
    fn a_header_length_in_the_other_byte_order_is_named() {
        let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
        let bytes = json_frame(PrefixFormat::I32Be, r#"{"size": 0}"#, b"");
        let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
            panic!()
        };
        assert!(miss.to_string().contains("--param prefix=i32be"), "{miss}");
    }

    fn decimal(body: BodySpec) -> FrameMatch {
        FrameMatch::new(FrameWant {
            framing: Framing::Decimal {
                ready: "recv_ready".into(),
            },
            body,
            tolerant: false,
            header: HeaderWant::default(),
        })
    }

    fn reply(used: usize, word: &str) -> FrameProgress {
        FrameProgress::Reply {
            used,
            bytes: word.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_decimal_length_asks_for_the_ready_word_and_then_takes_the_body() {
        let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
        assert_eq!(m.feed(b"5"), reply(1, "recv_ready"));
        assert_eq!(m.digits(), Some(&b"5"[..]));
        assert_eq!(m.feed(b"hel"), FrameProgress::NeedMore);
        assert_eq!(m.feed(b"loNEXT"), FrameProgress::Done { used: 2 });
    }

    #[test]
    fn the_digits_of_a_decimal_length_may_come_in_pieces() {
        let mut m = decimal(BodySpec::Repeated {
            pattern: b"x".to_vec(),
            len: 4194304,
        });
        assert_eq!(m.feed(b"41"), FrameProgress::NeedMore);
        assert_eq!(m.feed(b"94304"), reply(5, "recv_ready"));
    }

    #[test]
    fn a_decimal_length_of_zero_is_whole_once_answered() {
        let mut m = decimal(BodySpec::Literal(Vec::new()));
        assert_eq!(m.feed(b"0"), reply(1, "recv_ready"));
        assert_eq!(m.feed(&[]), FrameProgress::Done { used: 0 });
    }

    #[test]
    fn a_decimal_length_that_is_not_the_body_s_is_a_wrong_length() {
        let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
        let FrameProgress::Mismatch(miss) = m.feed(b"14") else {
            panic!()
        };
        assert_eq!(
            miss.to_string(),
            "the prefix reads 14 where the answer has 5 bytes"
        );
        // Digits that begin the length and stop: the sender waits.
        let mut m = decimal(BodySpec::Literal(vec![b'x'; 20]));
        assert_eq!(m.feed(b"2"), FrameProgress::NeedMore);
        assert!(matches!(
            m.cut_short(),
            Some(FrameMiss::WrongLength { claimed: 2, .. })
        ));
    }

    #[test]
    fn a_body_right_behind_the_decimal_length_did_not_wait_for_the_ready_word() {
        let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
        let FrameProgress::Mismatch(miss) = m.feed(b"5hello") else {
            panic!()
        };
        assert!(
            matches!(miss, FrameMiss::BodyBeforeReady { ref after, .. } if after == b"hello"),
            "{miss:?}"
        );
        assert!(
            miss.to_string().contains("before the client answered"),
            "{miss}"
        );
    }

    #[test]
    fn a_binary_prefix_where_digits_are_expected_names_its_format() {
        let mut m = decimal(BodySpec::Literal(b"hello".to_vec()));
        let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I32Le, b"hello"))
        else {
            panic!()
        };
        assert!(miss.to_string().contains("--param prefix=i32le"), "{miss}");
    }

    #[test]
    fn decimal_digits_where_a_binary_prefix_is_expected_name_prefix_decimal() {
        for (body, sent) in [
            (BodySpec::Literal(b"hello".to_vec()), &b"5"[..]),
            (BodySpec::Literal(vec![b'x'; 20]), &b"20"[..]),
            (
                BodySpec::Repeated {
                    pattern: b"x".to_vec(),
                    len: 4194304,
                },
                &b"4194304"[..],
            ),
        ] {
            for cut in 1..=sent.len() {
                let m = FrameMatch::new(FrameWant {
                    framing: Framing::Length {
                        prefix: PrefixFormat::I32Le,
                    },
                    body: body.clone(),
                    tolerant: false,
                    header: HeaderWant::default(),
                });
                let mut m = m;
                let (p, _) = feed_cut(&mut m, sent, &[cut]);
                let FrameProgress::Mismatch(miss) = p else {
                    panic!("{sent:?} cut at {cut}: {p:?}")
                };
                assert!(
                    miss.to_string().contains("--param prefix=decimal"),
                    "{miss}"
                );
            }
        }
        // The digits with the body behind them say the same.
        let mut m = length(PrefixFormat::I32Le, b"hello");
        let FrameProgress::Mismatch(miss) = m.feed(b"5hello") else {
            panic!()
        };
        assert!(
            miss.to_string().contains("--param prefix=decimal"),
            "{miss}"
        );
        // Digits that stop short of the length, then nothing.
        let mut m = length(PrefixFormat::I32Le, &[b'x'; 20]);
        assert_eq!(m.feed(b"2"), FrameProgress::NeedMore);
        assert!(m
            .cut_short()
            .is_some_and(|miss| miss.to_string().contains("--param prefix=decimal")));
    }

    #[test]
    fn a_tolerant_binary_frame_answers_a_decimal_length_with_ok_and_says_so() {
        let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
        assert_eq!(m.feed(b"5"), reply(1, READY));
        assert_eq!(m.feed(b"hello"), FrameProgress::Done { used: 5 });
        assert!(m
            .tolerated()
            .is_some_and(|t| t.contains("decimal digits") && t.contains("i32le")));
    }

    fn tolerant(mut m: FrameMatch) -> FrameMatch {
        m.want.tolerant = true;
        m
    }

    #[test]
    fn a_tolerant_frame_takes_the_known_variants_and_says_which() {
        let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
        assert_eq!(
            m.feed(&len_frame(PrefixFormat::I32Be, b"hello")),
            FrameProgress::Done { used: 9 }
        );
        assert!(m.tolerated().is_some_and(|t| t.contains("i32be")));

        let bytes = len_frame(PrefixFormat::I64Le, b"hello");
        for cut in 1..bytes.len() {
            let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
            let (p, before) = feed_cut(&mut m, &bytes, &[cut]);
            assert_eq!(
                p,
                FrameProgress::Done {
                    used: bytes.len() - before
                },
                "cut {cut}"
            );
            assert!(m.tolerated().is_some_and(|t| t.contains("8 bytes")));
        }

        let mut m = tolerant(json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"abc".to_vec()),
        ));
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"data_size": 3}"#, b"abc");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
        assert!(m.tolerated().is_some_and(|t| t.contains("data_size")));

        let mut m = tolerant(json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"abc".to_vec()),
        ));
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": "3"}"#, b"abc");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });

        let mut m = tolerant(json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"abc".to_vec()),
        ));
        let bytes = json_frame(PrefixFormat::I32Be, r#"{"size": 3}"#, b"abc");
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
    }

    #[test]
    fn a_tolerant_frame_still_misses_what_no_variant_explains() {
        let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
        assert!(matches!(
            m.feed(&len_frame(PrefixFormat::I32Le, b"hellO")),
            FrameProgress::Mismatch(FrameMiss::Body { offset: 4, .. })
        ));
        let mut m = tolerant(length(PrefixFormat::I32Le, b"hello"));
        assert!(matches!(
            m.feed(&[9, 0, 0, 0]),
            FrameProgress::Mismatch(FrameMiss::WrongLength { .. })
        ));
    }

    #[test]
    fn a_body_that_differs_names_the_first_differing_byte() {
        let mut m = length(PrefixFormat::I32Le, b"abcdef");
        let FrameProgress::Mismatch(miss) = m.feed(&len_frame(PrefixFormat::I32Le, b"abcXef"))
        else {
            panic!()
        };
        assert!(
            matches!(
                miss,
                FrameMiss::Body {
                    offset: 3,
                    expected: b'd',
                    got: b'X',
                    ..
                }
            ),
            "{miss:?}"
        );
    }

    #[test]
    fn a_json_header_with_the_size_key_then_the_body() {
        let body = b"a\nb\n";
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(body.to_vec()),
        );
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 4, "cmd": "ls"}"#, body);
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
        assert_eq!(
            m.header().and_then(|h| h.get("cmd")),
            Some(&Value::from("ls"))
        );
    }

    #[test]
    fn a_size_under_another_key_names_that_key() {
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"abc".to_vec()),
        );
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"filesize": 3}"#, b"abc");
        let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
            panic!()
        };
        assert!(
            miss.to_string().contains("--param size_key=filesize"),
            "{miss}"
        );
    }

    #[test]
    fn a_size_that_frames_another_body_rightly_says_the_body_is_another() {
        // The command "printf '回顾 review\n'" decoded as GBK and encoded
        // as UTF-8 on its way to the shell: its output changed, and the
        // header counts the output it got.
        let asked = "回顾 review\n".as_bytes();
        let ran = "鍥為【 review\n".as_bytes();
        let mut m = json(
            PrefixFormat::I32Le,
            "total_size",
            BodySpec::Literal(asked.to_vec()),
        );
        let header = format!(r#"{{"total_size": {}}}"#, ran.len());
        let bytes = json_frame(PrefixFormat::I32Le, &header, ran);
        let (progress, _) = feed_cut(&mut m, &bytes, &[3, 20, bytes.len() - 1]);
        let FrameProgress::Mismatch(miss) = progress else {
            panic!("{progress:?}")
        };
        assert_eq!(
            miss.to_string(),
            r#"the header's "total_size" is 17 and as many bytes follow, but they are not the body expected: "\xe9\x8d\xa5\xe7\x82\xba\xe3\x80\x90 review\n" where it is "\xe5\x9b\x9e\xe9\xa1\xbe review\n" (14 bytes); its ASCII bytes are all there, in order, and only the others differ"#
        );
    }

    #[test]
    fn a_size_short_of_the_body_it_begins_is_a_wrong_size() {
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"out\nerr\n".to_vec()),
        );
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 4}"#, b"out\nerr\n");
        let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
            panic!()
        };
        assert_eq!(
            miss.to_string(),
            r#"the header's "size" is 4 where the body has 8 bytes"#
        );
    }

    #[test]
    fn a_wrong_size_whose_bytes_never_all_come_is_a_wrong_size() {
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"abc".to_vec()),
        );
        let bytes = json_frame(PrefixFormat::I32Le, r#"{"size": 9}"#, b"xyz");
        assert_eq!(m.feed(&bytes), FrameProgress::NeedMore);
        assert_eq!(
            m.cut_short().expect("short").to_string(),
            r#"the header's "size" is 9 where the body has 3 bytes"#
        );
    }

    #[test]
    fn a_header_in_another_encoding_than_utf8_is_named_as_such() {
        // json.dumps(..., ensure_ascii=False).encode("gbk")
        let header = b"{\"co\": \"\xba\xbd\xcc\xec\", \"size\": 1}";
        let mut bytes = PrefixFormat::I32Le
            .encode(header.len() as u64)
            .expect("fits");
        bytes.extend_from_slice(header);
        bytes.push(b'x');
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"x".to_vec()),
        );
        let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
            panic!()
        };
        assert_eq!(
            miss.to_string(),
            r#"the header "{\"co\": \"\xba\xbd\xcc\xec\", \"size\": 1}" is not a JSON object: its bytes are not UTF-8 (from byte 8: "\xba\xbd\xcc\xec\", \"size"... (17 bytes in all))"#
        );
    }

    #[test]
    fn a_tolerant_frame_reads_a_header_that_is_not_utf8_and_says_so() {
        let header = b"{\"co\": \"\xba\xbd\", \"size\": 1}";
        let mut bytes = PrefixFormat::I32Le
            .encode(header.len() as u64)
            .expect("fits");
        bytes.extend_from_slice(header);
        bytes.push(b'x');
        let mut m = tolerant(json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"x".to_vec()),
        ));
        assert_eq!(m.feed(&bytes), FrameProgress::Done { used: bytes.len() });
        assert_eq!(m.tolerated(), Some("the header's bytes are not UTF-8"));
    }

    #[test]
    fn a_header_length_that_counts_characters_is_named_as_such() {
        let header = r#"{"size": 2, "out": "é"}"#;
        let mut bytes = PrefixFormat::I32Le
            .encode(header.chars().count() as u64)
            .unwrap();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(b"ok");
        let mut m = json(
            PrefixFormat::I32Le,
            "size",
            BodySpec::Literal(b"ok".to_vec()),
        );
        let FrameProgress::Mismatch(miss) = m.feed(&bytes) else {
            panic!()
        };
        assert_eq!(
            miss,
            FrameMiss::CountsCharacters {
                chars: header.chars().count(),
                bytes: header.len()
            }
        );
    }

    #[test]
    fn a_header_that_is_not_json_shows_it() {
        let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
        let FrameProgress::Mismatch(miss) = m.feed(&json_frame(PrefixFormat::I32Le, "size=3", b""))
        else {
            panic!()
        };
        assert!(matches!(miss, FrameMiss::BadHeader { .. }), "{miss:?}");
    }

    #[test]
    fn a_lying_header_length_is_refused_without_reading_it() {
        let mut m = json(PrefixFormat::I32Le, "size", BodySpec::Literal(Vec::new()));
        let p = m.feed(&i32::MAX.to_le_bytes());
        assert_eq!(
            p,
            FrameProgress::Mismatch(FrameMiss::HeaderLength {
                claimed: i64::from(i32::MAX),
                other: None
            })
        );
    }

    #[test]
    fn a_stream_that_ends_early_says_where_the_answer_stopped() {
        let mut m = length(PrefixFormat::I32Le, b"abcdef");
        let bytes = len_frame(PrefixFormat::I32Le, b"abcdef");
        assert_eq!(m.feed(&bytes[..7]), FrameProgress::NeedMore);
        let miss = m.cut_short().expect("short");
        assert_eq!(
            miss.to_string(),
            "the answer stopped after 3 of the body's 6 bytes"
        );
        let mut fresh = length(PrefixFormat::I32Le, b"x");
        assert_eq!(fresh.feed(&[1]), FrameProgress::NeedMore);
        assert!(fresh
            .cut_short()
            .expect("short")
            .to_string()
            .contains("after 1 of the prefix's 4 bytes"));
    }

    #[test]
    fn a_seeded_body_is_the_same_at_every_offset_and_differs_between_seeds() {
        let a = BodySpec::Seeded { seed: 7, len: 1000 };
        let b = BodySpec::Seeded { seed: 8, len: 1000 };
        let mut whole = vec![0u8; 1000];
        assert_eq!(a.fill(0, &mut whole), 1000);
        let mut tail = vec![0u8; 10];
        assert_eq!(a.fill(995, &mut tail), 5);
        assert_eq!(&tail[..5], &whole[995..]);
        let mut other = vec![0u8; 1000];
        b.fill(0, &mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn a_repeated_body_is_its_pattern_over_and_over_cut_at_its_length() {
        let body = BodySpec::Repeated {
            pattern: b"abc\n".to_vec(),
            len: 10,
        };
        let mut out = [0u8; 12];
        assert_eq!(body.fill(0, &mut out), 10);
        assert_eq!(&out[..10], b"abc\nabc\nab");
    }

    #[test]
    fn a_large_seeded_body_streams_through_and_is_digested() {
        let body = BodySpec::Seeded {
            seed: 42,
            len: 1 << 20,
        };
        let mut m = json(PrefixFormat::U32Be, "size", body.clone());
        let header = format!(r#"{{"size": {}}}"#, 1 << 20);
        let mut head = PrefixFormat::U32Be.encode(header.len() as u64).unwrap();
        head.extend_from_slice(header.as_bytes());
        assert_eq!(m.feed(&head), FrameProgress::NeedMore);
        let mut chunk = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        let mut last = FrameProgress::NeedMore;
        let mut whole = Md5::new();
        while offset < body.len() {
            let n = body.fill(offset, &mut chunk);
            whole.update(&chunk[..n]);
            last = m.feed(&chunk[..n]);
            offset += n as u64;
        }
        assert_eq!(last, FrameProgress::Done { used: 64 * 1024 });
        let expected: String = whole
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(m.body_digest(), expected);
    }

    proptest! {
        /// However the bytes are cut, the verdict is the same as for the
        /// whole frame fed at once.
        #[test]
        fn the_verdict_does_not_depend_on_how_the_bytes_were_cut(
            body in proptest::collection::vec(any::<u8>(), 0..64),
            noise in proptest::collection::vec(any::<u8>(), 0..4),
            flip in proptest::option::of(0usize..80),
            cuts in proptest::collection::vec(0usize..120, 0..8),
            use_json in any::<bool>(),
            sent_wide in any::<bool>(),
        ) {
            let prefix = PrefixFormat::I32Le;
            let sent = if sent_wide { PrefixFormat::I64Le } else { prefix };
            let mut bytes = if use_json {
                json_frame(sent, &format!(r#"{{"size": {}, "é": 1}}"#, body.len()), &body)
            } else {
                len_frame(sent, &body)
            };
            if let Some(i) = flip {
                if i < bytes.len() {
                    bytes[i] ^= 0x20;
                }
            }
            bytes.extend_from_slice(&noise);
            let make = || if use_json {
                json(prefix, "size", BodySpec::Literal(body.clone()))
            } else {
                length(prefix, &body)
            };
            let mut whole = make();
            let at_once = whole.feed(&bytes);
            let mut sorted = cuts.clone();
            sorted.sort_unstable();
            let mut cut = make();
            let (in_pieces, before) = feed_cut(&mut cut, &bytes, &sorted);
            match (&at_once, &in_pieces) {
                (FrameProgress::Done { used: a }, FrameProgress::Done { used: b }) => {
                    prop_assert_eq!(*a, before + *b);
                }
                (FrameProgress::Mismatch(a), FrameProgress::Mismatch(b)) => match (a, b) {
                    // The bytes shown after a difference are those the
                    // feed held; where it is and what it is do not vary.
                    (
                        FrameMiss::Body { offset, expected, got, .. },
                        FrameMiss::Body { offset: o, expected: e, got: g, .. },
                    ) => prop_assert_eq!((offset, expected, got), (o, e, g)),
                    (a, b) => prop_assert_eq!(a, b),
                },
                (FrameProgress::NeedMore, FrameProgress::NeedMore) => {}
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }
}
