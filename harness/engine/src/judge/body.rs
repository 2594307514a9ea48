//! A body the harness expects or sends, described rather than held: a
//! literal, a seed and a length, or a pattern repeated to a length. Its
//! bytes are computed at any offset, so a body of many MiB is compared as
//! it arrives, or written a chunk at a time, without being stored.

/// A body the harness expects, described rather than held: its bytes are
/// computed at any offset, so a body is compared as it arrives.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BodySpec {
    /// These bytes: a command's short output.
    Literal(Vec<u8>),
    /// `len` bytes, each a function of `seed` and its offset: a large body
    /// the harness sends or asks for and can check without storing it.
    Seeded { seed: u64, len: u64 },
    /// `pattern` repeated until `len` bytes, the last repeat cut short:
    /// the output of a command such as `yes LINE | head -c LEN`, which a
    /// server under test can be asked to produce.
    Repeated { pattern: Vec<u8>, len: u64 },
    /// `pattern` repeated, the last repeat cut short, then `end`: `len`
    /// bytes in all. A large answer whose last line a client prints only
    /// if it read every byte before it.
    RepeatedThen {
        pattern: Vec<u8>,
        len: u64,
        end: Vec<u8>,
    },
}

impl BodySpec {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BodySpec::Literal(b) => b.len() as u64,
            BodySpec::Seeded { len, .. }
            | BodySpec::Repeated { len, .. }
            | BodySpec::RepeatedThen { len, .. } => *len,
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The byte at `offset`; `None` past the end.
    pub fn byte_at(&self, offset: u64) -> Option<u8> {
        if offset >= self.len() {
            return None;
        }
        match self {
            BodySpec::Literal(b) => b.get(usize::try_from(offset).ok()?).copied(),
            BodySpec::Seeded { seed, .. } => {
                let word = splitmix64(seed ^ (offset / 8));
                Some(word.to_le_bytes()[(offset % 8) as usize])
            }
            BodySpec::Repeated { pattern, .. } => repeated_at(pattern, offset),
            BodySpec::RepeatedThen { pattern, len, end } => {
                let end_at = len.saturating_sub(end.len() as u64);
                match offset.checked_sub(end_at) {
                    Some(i) => end.get(usize::try_from(i).ok()?).copied(),
                    None => repeated_at(pattern, offset),
                }
            }
        }
    }

    /// Writes the body's bytes from `offset` into `out` (as many as fit
    /// and remain); returns how many were written. For the harness's own
    /// sends of a large body, a chunk at a time.
    pub fn fill(&self, offset: u64, out: &mut [u8]) -> usize {
        if let BodySpec::Seeded { seed, len } = self {
            // A word of the generator gives eight bytes: the bytes before
            // the first whole word, then whole words copied eight at a
            // time, then the tail; a body of a GiB is made as fast as
            // loopback carries it.
            let n = usize::try_from(len.saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(out.len());
            let word = |i: u64| splitmix64(seed ^ i).to_le_bytes();
            let lead = (((8 - offset % 8) % 8) as usize).min(n);
            if lead > 0 {
                let w = word(offset / 8);
                let from = (offset % 8) as usize;
                out[..lead].copy_from_slice(&w[from..from + lead]);
            }
            let mut index = (offset + lead as u64) / 8;
            let mut words = out[lead..n].chunks_exact_mut(8);
            for slot in &mut words {
                slot.copy_from_slice(&word(index));
                index += 1;
            }
            let tail = words.into_remainder();
            if !tail.is_empty() {
                let w = word(index);
                let k = tail.len();
                tail.copy_from_slice(&w[..k]);
            }
            return n;
        }
        // A repeated pattern is copied a run at a time: a body of many
        // MiB is written as fast as the connection takes it.
        let mut n = match self {
            BodySpec::Repeated { pattern, len } => {
                return fill_repeated(pattern, offset, *len, out)
            }
            BodySpec::RepeatedThen { pattern, len, end } => {
                let end_at = len.saturating_sub(end.len() as u64);
                fill_repeated(pattern, offset, end_at, out)
            }
            _ => 0,
        };
        let (offset, out) = (offset + n as u64, &mut out[n..]);
        let before = n;
        n = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            match self.byte_at(offset + i as u64) {
                Some(b) => {
                    *slot = b;
                    n += 1;
                }
                None => break,
            }
        }
        before + n
    }
}

/// The byte at `offset` of `pattern` repeated without end.
fn repeated_at(pattern: &[u8], offset: u64) -> Option<u8> {
    let at = offset % (pattern.len().max(1) as u64);
    pattern.get(usize::try_from(at).ok()?).copied()
}

/// [`BodySpec::fill`] for `pattern` repeated to `len`, a run of the pattern
/// at a time.
fn fill_repeated(pattern: &[u8], offset: u64, len: u64, out: &mut [u8]) -> usize {
    if pattern.is_empty() || offset >= len {
        return 0;
    }
    let want = usize::try_from(len - offset)
        .unwrap_or(usize::MAX)
        .min(out.len());
    let mut at = (offset % pattern.len() as u64) as usize;
    let mut n = 0;
    while n < want {
        let run = (pattern.len() - at).min(want - n);
        out[n..n + run].copy_from_slice(&pattern[at..at + run]);
        n += run;
        at = 0;
    }
    n
}

impl BodySpec {
    /// The MD5 digest of the body, 32 lowercase hex digits, computed a
    /// chunk at a time.
    pub fn md5_hex(&self) -> String {
        use md5::{Digest, Md5};
        let mut digest = Md5::new();
        let mut chunk = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        while offset < self.len() {
            let n = self.fill(offset, &mut chunk);
            digest.update(&chunk[..n]);
            offset += n as u64;
        }
        digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// A file the harness makes for a client under test before starting it,
/// in the client's scratch directory: its name (the last component only)
/// and its content, described so that a file of many MiB is written a
/// chunk at a time and compared as it comes back without being held.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GivenFile {
    pub name: String,
    pub body: BodySpec,
}

impl GivenFile {
    pub fn new(name: &str, body: BodySpec) -> GivenFile {
        GivenFile {
            name: name.to_string(),
            body,
        }
    }
}

/// A well-mixed 64-bit function of its input (SplitMix64's finaliser):
/// neighbouring offsets give unrelated bytes, so a body shifted by one
/// byte differs at once.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seeded_body_filled_from_any_offset_and_any_length_is_its_bytes() {
        let body = BodySpec::Seeded { seed: 11, len: 61 };
        for offset in 0..20u64 {
            for size in [0, 1, 3, 7, 8, 9, 16, 23, 64] {
                let mut out = vec![0u8; size];
                let n = body.fill(offset, &mut out);
                assert_eq!(n as u64, (61 - offset).min(size as u64));
                for (i, b) in out[..n].iter().enumerate() {
                    assert_eq!(
                        Some(*b),
                        body.byte_at(offset + i as u64),
                        "{offset} {size} {i}"
                    );
                }
            }
        }
    }

    /// Every byte `fill` writes from `offset`, in chunks of `chunk`.
    fn filled(body: &BodySpec, offset: u64, chunk: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = vec![0u8; chunk];
        let mut at = offset;
        loop {
            let n = body.fill(at, &mut buf);
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&buf[..n]);
            at += n as u64;
        }
    }

    fn bytewise(body: &BodySpec, offset: u64) -> Vec<u8> {
        (offset..body.len())
            .filter_map(|i| body.byte_at(i))
            .collect()
    }

    #[test]
    fn a_repeated_pattern_is_filled_as_it_reads_byte_by_byte_from_any_offset() {
        let body = BodySpec::Repeated {
            pattern: b"abcde\n".to_vec(),
            len: 100,
        };
        for (offset, chunk) in [(0, 7), (3, 5), (50, 64), (99, 3)] {
            assert_eq!(filled(&body, offset, chunk), bytewise(&body, offset));
        }
        assert_eq!(&filled(&body, 0, 9)[..8], b"abcde\nab");
    }

    #[test]
    fn a_repeated_pattern_then_its_end_fills_to_its_length_with_the_end_last() {
        let body = BodySpec::RepeatedThen {
            pattern: b"line\n".to_vec(),
            len: 17,
            end: b"END\n".to_vec(),
        };
        let all = filled(&body, 0, 4);
        assert_eq!(all, b"line\nline\nlinEND\n");
        for offset in 0..17 {
            assert_eq!(filled(&body, offset, 3), bytewise(&body, offset));
        }
    }
}
