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

#[cfg(test)]
mod tests;
mod want;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

pub use crate::judge::body::BodySpec;
use crate::judge::frame::{size_field, Decoded, PrefixFormat, SizeError, MAX_HEADER};
use crate::judge::frame_miss::Difference;
pub use crate::judge::frame_miss::FrameMiss;
use crate::judge::show;

pub use want::{
    FieldWant, FrameWant, Framing, HeaderWant, Md5Want, MD5_KEY, READY, STRUCT_LEN, STRUCT_NAME,
};
use want::{MAX_DIGITS, STRUCT_SIZE};

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
