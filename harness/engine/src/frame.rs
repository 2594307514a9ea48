//! Length prefixes as the protocols write them, decoded from bytes that
//! came from a target. Decoding is a pure function over a buffer: it says
//! how long the prefix was, or that more bytes are needed, and never panics
//! on what a target sends.

use std::fmt;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
