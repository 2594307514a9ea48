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
}

impl BodySpec {
    /// The body's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            BodySpec::Literal(b) => b.len() as u64,
            BodySpec::Seeded { len, .. } | BodySpec::Repeated { len, .. } => *len,
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
            BodySpec::Repeated { pattern, .. } => {
                let at = offset % (pattern.len().max(1) as u64);
                pattern.get(usize::try_from(at).ok()?).copied()
            }
        }
    }

    /// Writes the body's bytes from `offset` into `out` (as many as fit
    /// and remain); returns how many were written. For the harness's own
    /// sends of a large body, a chunk at a time.
    pub fn fill(&self, offset: u64, out: &mut [u8]) -> usize {
        if let BodySpec::Seeded { seed, len } = self {
            // A word of the generator gives eight bytes: computed once for
            // them, as a given file of 100 MiB is written through here.
            let n = usize::try_from(len.saturating_sub(offset))
                .unwrap_or(usize::MAX)
                .min(out.len());
            let mut word = [0u8; 8];
            for (i, slot) in out[..n].iter_mut().enumerate() {
                let at = offset + i as u64;
                if i == 0 || at.is_multiple_of(8) {
                    word = splitmix64(seed ^ (at / 8)).to_le_bytes();
                }
                *slot = word[(at % 8) as usize];
            }
            return n;
        }
        let mut n = 0;
        for (i, slot) in out.iter_mut().enumerate() {
            match self.byte_at(offset + i as u64) {
                Some(b) => {
                    *slot = b;
                    n += 1;
                }
                None => break,
            }
        }
        n
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
