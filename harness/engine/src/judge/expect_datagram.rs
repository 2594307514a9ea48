//! What an expectation wants of one datagram, and whether a datagram that
//! arrived meets it: a pure function of the datagram and of the address it
//! had to come from, as [`crate::judge::expect`] is for byte streams. A datagram is
//! matched whole: its boundaries are the protocol's, so a datagram that
//! holds the right bytes and more is a different datagram, not a reply
//! with something stuck to it.

use std::fmt;
use std::net::SocketAddr;

use crate::judge::show;

/// What the next datagram on a socket must be.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DatagramWant {
    /// Exactly these bytes, in one datagram.
    Exactly(Vec<u8>),
    /// These bytes, in one datagram, and any white space after them in it
    /// passed over: for checks about something other than stray newlines,
    /// so that a client that sends the line's newline is blamed by the
    /// check about what a line sends, not by every check (as
    /// [`crate::judge::expect::Want::Line`] is for streams).
    Line(Vec<u8>),
    /// Any datagram: its arrival is what counts.
    Any,
    /// No datagram within the deadline: a silence the protocol allows (a
    /// request it may drop), among the alternatives of a
    /// [`DatagramWant::OneOf`].
    Nothing,
    /// Any one of these outcomes: this datagram, or that one, or none
    /// within the deadline. Met as soon as one is; a miss names them all.
    /// With no alternatives, nothing can meet it.
    OneOf(Vec<DatagramWant>),
}

impl DatagramWant {
    /// Whether no datagram arriving by the deadline meets the want.
    pub fn met_by_silence(&self) -> bool {
        match self {
            DatagramWant::Nothing => true,
            DatagramWant::OneOf(alternatives) => alternatives.iter().any(Self::met_by_silence),
            DatagramWant::Exactly(_) | DatagramWant::Line(_) | DatagramWant::Any => false,
        }
    }
}

impl fmt::Display for DatagramWant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramWant::Exactly(b) if b.is_empty() => f.write_str("an empty datagram"),
            DatagramWant::Exactly(b) => write!(f, "a datagram {}", show::sized(b, 48)),
            DatagramWant::Line(b) => write!(
                f,
                "a datagram {} (white space after it passed over)",
                show::sized(b, 48)
            ),
            DatagramWant::Any => f.write_str("any datagram"),
            DatagramWant::Nothing => f.write_str("no datagram within the deadline"),
            DatagramWant::OneOf(alternatives) => {
                f.write_str("one of: ")?;
                for (i, alternative) in alternatives.iter().enumerate() {
                    match i {
                        0 => {}
                        _ if i + 1 == alternatives.len() => f.write_str(", or ")?,
                        _ => f.write_str(", ")?,
                    }
                    write!(f, "{alternative}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a datagram does not meet an expectation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mismatch {
    /// It came from another address than the one the reply must come from.
    Sender { expected: SocketAddr },
    /// Its bytes differ: at byte `at`, or in length alone (`at` is then
    /// the shorter length).
    Bytes { at: usize },
    /// A datagram arrived where none was wanted.
    Arrived,
    /// It meets none of the alternatives of a [`DatagramWant::OneOf`].
    NoneOf,
}

/// Whether `bytes`, received from `from`, meet `want`; `from_must_be` is
/// the address a reply must come from, when there is one (a server answers
/// from the port it was sent to).
pub fn judge(
    want: &DatagramWant,
    bytes: &[u8],
    from: SocketAddr,
    from_must_be: Option<SocketAddr>,
) -> Result<(), Mismatch> {
    if let Some(expected) = from_must_be {
        if !same_endpoint(expected, from) {
            return Err(Mismatch::Sender { expected });
        }
    }
    match want {
        DatagramWant::Any => Ok(()),
        DatagramWant::Exactly(b) if b.as_slice() == bytes => Ok(()),
        DatagramWant::Line(b)
            if bytes.starts_with(b) && bytes[b.len()..].iter().all(u8::is_ascii_whitespace) =>
        {
            Ok(())
        }
        DatagramWant::Exactly(b) | DatagramWant::Line(b) => Err(Mismatch::Bytes {
            at: show::first_difference(b, bytes).unwrap_or(b.len().min(bytes.len())),
        }),
        DatagramWant::Nothing => Err(Mismatch::Arrived),
        // The sender was judged above, once for all of them.
        DatagramWant::OneOf(alternatives) => match alternatives
            .iter()
            .any(|a| judge(a, bytes, from, None).is_ok())
        {
            true => Ok(()),
            false => Err(Mismatch::NoneOf),
        },
    }
}

impl DatagramWant {
    /// The bytes expected, for wants that expect bytes.
    pub fn bytes(&self) -> &[u8] {
        match self {
            DatagramWant::Exactly(b) | DatagramWant::Line(b) => b,
            DatagramWant::Any | DatagramWant::Nothing | DatagramWant::OneOf(_) => &[],
        }
    }
}

/// Whether a reply from `got` comes from the server at `expected`: the same
/// port, and the same address unless the server was reached through the
/// wildcard (a server bound to 0.0.0.0 answers from 127.0.0.1).
fn same_endpoint(expected: SocketAddr, got: SocketAddr) -> bool {
    expected.port() == got.port()
        && (expected.ip() == got.ip() || expected.ip().is_unspecified() || got.ip().is_loopback())
}

/// What an echo server that truncates at `buf` saw of a datagram of `sent`
/// bytes, from the length of its `upper` reply: the whole datagram, its
/// first `buf` bytes, or some other amount.
pub fn seen_of(sent: usize, reply: usize, buf: usize) -> String {
    if reply == sent {
        format!("the whole datagram, {sent} bytes (it receives with a buffer of {sent} or more)")
    } else if reply == buf.min(sent) {
        format!("its first {reply} bytes (truncated at {buf}, as a receive of {buf} does)")
    } else {
        format!("{reply} of its {sent} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_same_bytes_from_the_servers_port_match() {
        let want = DatagramWant::Exactly(b"HI".to_vec());
        assert_eq!(judge(&want, b"HI", at(9000), Some(at(9000))), Ok(()));
    }

    #[test]
    fn a_line_passes_over_the_white_space_after_it_and_nothing_else() {
        let want = DatagramWant::Line(b"hello".to_vec());
        assert_eq!(judge(&want, b"hello", at(9000), None), Ok(()));
        assert_eq!(judge(&want, b"hello\r\n", at(9000), None), Ok(()));
        assert_eq!(
            judge(&want, b"hello!\n", at(9000), None),
            Err(Mismatch::Bytes { at: 5 })
        );
        assert_eq!(
            judge(
                &DatagramWant::Exactly(b"hello".to_vec()),
                b"hello\n",
                at(9000),
                None
            ),
            Err(Mismatch::Bytes { at: 5 })
        );
    }

    #[test]
    fn a_reply_from_another_port_is_a_mismatch_naming_the_port_expected() {
        let want = DatagramWant::Exactly(b"HI".to_vec());
        assert_eq!(
            judge(&want, b"HI", at(9001), Some(at(9000))),
            Err(Mismatch::Sender { expected: at(9000) })
        );
    }

    #[test]
    fn a_server_bound_to_the_wildcard_answers_from_loopback() {
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(judge(&DatagramWant::Any, b"", at(9000), Some(any)), Ok(()));
    }

    #[test]
    fn a_longer_datagram_is_a_different_datagram() {
        let want = DatagramWant::Exactly(b"HI".to_vec());
        assert_eq!(
            judge(&want, b"HI\n", at(1), None),
            Err(Mismatch::Bytes { at: 2 })
        );
        assert_eq!(
            judge(&want, b"", at(1), None),
            Err(Mismatch::Bytes { at: 0 })
        );
    }

    #[test]
    fn an_empty_datagram_meets_an_empty_want() {
        let want = DatagramWant::Exactly(Vec::new());
        assert_eq!(judge(&want, b"", at(1), None), Ok(()));
        assert_eq!(want.to_string(), "an empty datagram");
    }

    fn reply_or_silence() -> DatagramWant {
        DatagramWant::OneOf(vec![
            DatagramWant::Exactly(b"ERR".to_vec()),
            DatagramWant::Nothing,
        ])
    }

    #[test]
    fn one_of_is_met_by_the_datagram_or_by_silence_when_silence_is_among_them() {
        assert_eq!(judge(&reply_or_silence(), b"ERR", at(1), None), Ok(()));
        assert!(reply_or_silence().met_by_silence());
        let two = DatagramWant::OneOf(vec![
            DatagramWant::Exactly(b"A".to_vec()),
            DatagramWant::Exactly(b"B".to_vec()),
        ]);
        assert_eq!(judge(&two, b"B", at(1), None), Ok(()));
        assert!(!two.met_by_silence());
    }

    #[test]
    fn one_of_misses_a_datagram_that_is_none_of_them() {
        assert_eq!(
            judge(&reply_or_silence(), b"OK", at(1), None),
            Err(Mismatch::NoneOf)
        );
    }

    #[test]
    fn one_of_still_wants_the_reply_from_the_servers_port() {
        assert_eq!(
            judge(&reply_or_silence(), b"ERR", at(9001), Some(at(9000))),
            Err(Mismatch::Sender { expected: at(9000) })
        );
    }

    #[test]
    fn a_datagram_where_none_was_wanted_is_a_mismatch() {
        assert_eq!(
            judge(&DatagramWant::Nothing, b"", at(1), None),
            Err(Mismatch::Arrived)
        );
        assert!(!DatagramWant::Any.met_by_silence());
    }

    #[test]
    fn one_of_names_every_alternative() {
        assert_eq!(
            reply_or_silence().to_string(),
            "one of: a datagram \"ERR\" (3 bytes), or no datagram within the deadline"
        );
    }

    #[test]
    fn the_length_of_an_echo_tells_what_the_server_saw() {
        assert!(seen_of(2048, 1024, 1024).starts_with("its first 1024 bytes"));
        assert!(seen_of(2048, 2048, 1024).starts_with("the whole datagram"));
        assert_eq!(seen_of(2048, 512, 1024), "512 of its 2048 bytes");
    }
}
