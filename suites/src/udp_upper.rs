//! `udp-upper`: uppercase echo over UDP.
//!
//! The server receives one datagram of up to BUF bytes and sends `upper` of
//! it back to its sender, from the socket it arrived on. The client sends
//! each non-empty line of its input as one datagram and prints the reply.
//! On UDP a datagram is received whole or truncated, never split or merged;
//! an empty datagram is still a datagram; a reply can be lost, and a
//! receive without a timeout then waits forever.

use sockspec_engine::conversations::check::{Body, Check, Explain, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::datagram::Seen;
use sockspec_engine::conversations::steps::mailbox::MAX_PAYLOAD;
use sockspec_engine::conversations::steps::{DatagramStep, Sock};
use sockspec_engine::judge::expect_datagram::DatagramWant;
use sockspec_engine::model::hint::{Alternative, Language, When};
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{ParamSpec, Profile};
use sockspec_engine::model::timing::{DatagramBurst, Deadline};
use sockspec_engine::Transport;

use crate::checks::{client, server, upper, BUF};
use crate::checks::{BLANK, BLANK_SENT, BLANK_SKIPPED};
use crate::tcp_upper::text;

const U1: Sock = Sock(1);
const U2: Sock = Sock(2);
const U3: Sock = Sock(3);

/// What the parameters of `udp-upper` say, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// The most bytes the program asks for in one receive (`buf`).
    pub buf: usize,
}

impl Params {
    pub fn of(profile: &Profile) -> Params {
        Params {
            buf: profile.number(&BUF),
        }
    }
}

/// What an extra reply means: the protocol answers each request once.
const ONE_REPLY: &str = "each request gets exactly one datagram back";

pub fn suite() -> Suite {
    Suite {
        name: "udp-upper",
        transport: Transport::Datagram,
        summary: "uppercase echo over UDP",
        wire: Wire {
            server: "Bind a UDP socket; forever: receive one datagram of up to BUF bytes and \
                     its sender's address; send one datagram holding `upper` of it back to that \
                     address, from the bound socket. A datagram is received whole or not at all, \
                     never merged with another; one longer than BUF is cut to its first BUF \
                     bytes (on Linux); an empty datagram is still a datagram, and should get an \
                     empty one back.",
            client: "For each line of standard input: strip it; skip it if empty (on UDP an \
                     empty send is a datagram); send it as one datagram to the server; receive \
                     one datagram and print it (the course client also prints the sender's \
                     address). A reply can be lost: a receive without a timeout then waits \
                     forever.",
        },
        // After a check the question is only whether the server still
        // serves: any reply holding the answer says so (what the reply
        // holds exactly is the echo check's to judge).
        sanity: |_| Conversation::new().expect_serving(&[U1], "sanity check", "SANITY CHECK"),
        params: &[ParamSpec::Number(&BUF)],
        checks: vec![
            echo_check(),
            boundaries(),
            senders(),
            truncation(),
            empty(),
            binary(),
            max_size(),
            client_echo(),
            client_empty_line(),
            client_oversized_reply(),
            client_lost_reply(),
        ],
    }
}

/// Sends `msg` from `sock` and expects its `upper` back on it.
fn echo(c: Conversation, sock: Sock, msg: &[u8]) -> Conversation {
    c.send_datagram(sock, msg).expect_datagram(sock, upper(msg))
}

/// A plain request from a socket of its own, after an abusive datagram:
/// the server is still serving. Any reply to it, on any socket, says so;
/// a server that answers only the abusive datagram's sender (connected to
/// it) is asked from there too. Where replies go is `senders`' to judge.
fn still_serving(c: Conversation) -> Conversation {
    c.expect_serving(&[U2, U1], "still there?", "STILL THERE?")
}

fn echo_check() -> Check {
    Check {
        explain: Explain {
            why: "The simplest exchange: one datagram in, its upper case back, from the port it was sent to.",
            mistake: "data, addr = s.recvfrom(1024)\ns.sendto(data, addr)            # forgot .upper()",
            fix: "Send back data.upper() with sendto(..., addr), from the socket that received it.",
        },
        ..server(
            "udp-upper.echo",
            Level::Must,
            "one datagram gets exactly one datagram back, holding its upper",
            "a datagram sent to the server comes back once, with its ASCII letters in upper \
             case, from the server's port",
            Body::Conversation(|_| {
                echo(Conversation::new(), U1, b"hello, udp").expect_no_late_datagram(ONE_REPLY)
            }),
        )
    }
}

/// Requests of different lengths, sent back to back: as many as a server
/// with default buffers takes with a wide margin, so a drop is never what
/// fails a correct server.
const BURST: [&[u8]; DatagramBurst::SMALL] = [
    b"a",
    b"bb",
    b"three ccc",
    b"dddd dddd dddd",
    b"e",
    b"ff ff",
    b"g g g g g g g g g g g g",
    b"last one",
];

fn boundaries() -> Check {
    Check {
        explain: Explain {
            why: "UDP keeps message boundaries: each datagram is received whole by one recvfrom, so k requests get k replies, each its own.",
            mistake: "data = b''\nwhile len(data) < 1024:         # reads datagrams as if they were a stream\n    data += s.recvfrom(1024)[0]",
            fix: "Answer each datagram as it arrives: one recvfrom, one sendto.",
        },
        ..server(
            "udp-upper.boundaries",
            Level::Must,
            "k datagrams sent back to back get k replies, each matching its own request",
            "datagrams sent one after the other without waiting are answered one by one, \
             each reply holding the upper of its own request, in any order (UDP keeps none)",
            Body::Conversation(|_| {
                let sent = BURST
                    .iter()
                    .fold(Conversation::new(), |c, m| c.send_datagram(U1, *m));
                sent.expect_each_datagram(U1, BURST.iter().map(|m| upper(m)).collect())
                    .expect_no_datagram(ONE_REPLY)
            }),
        )
    }
}

fn senders() -> Check {
    Check {
        hint: Some(
            "reply with sendto(reply, addr) to the address recvfrom returned with that \
             datagram; never to a fixed address or through a socket connect()ed to the first client",
        ),
        explain: Explain {
            why: "A UDP server has no connections: the only way to know who asked is the address recvfrom returns, and each reply must go there.",
            mistake: "data, addr = s.recvfrom(1024)\ns.connect(addr)                 # the first client only\ns.send(data.upper())",
            fix: "Keep the socket unconnected and answer every datagram with sendto(reply, addr), addr being that datagram's sender.",
        },
        ..server(
            "udp-upper.senders",
            Level::Must,
            "with several clients interleaving, each reply goes to the sender of its request",
            "three clients send in turn; each gets the replies to its own requests and no \
             other",
            Body::Conversation(|_| {
                let order: [(Sock, &[u8]); 5] = [
                    (U1, b"one from u1"),
                    (U2, b"two from u2"),
                    (U3, b"three from u3"),
                    (U2, b"four from u2"),
                    (U1, b"five from u1"),
                ];
                let sent = order
                    .iter()
                    .fold(Conversation::new(), |c, (s, m)| c.send_datagram(*s, *m));
                // Each client's replies, in any order among themselves.
                [U1, U2, U3]
                    .into_iter()
                    .fold(sent, |c, sock| {
                        let own = order
                            .iter()
                            .filter(|(s, _)| *s == sock)
                            .map(|(_, m)| upper(m))
                            .collect();
                        c.expect_each_datagram(sock, own)
                    })
                    .expect_no_datagram(ONE_REPLY)
            }),
        )
    }
}

/// The datagram longer than BUF: twice BUF, or the largest UDP carries
/// over IPv4 when twice BUF is more.
fn long_datagram(buf: usize) -> Vec<u8> {
    text((2 * buf).min(MAX_PAYLOAD), 7)
}

/// What the truncation check says when BUF is so large that no datagram
/// over IPv4 is longer.
const NONE_LONGER: &str = "no datagram over IPv4 is longer than BUF (65,507 bytes at most), \
                           so none can be truncated; what the server received of the largest";

fn truncation() -> Check {
    Check {
        abusive: true,
        // Which way the receive size differs from BUF is the echo's length
        // to say; a reply as long as BUF that differs in its bytes says
        // nothing about sizes.
        hints: &[
            Alternative {
                when: When::ReceivesMore,
                text: "a reply longer than BUF means the program receives more than BUF bytes \
                       at a time: give its receive size with --param buf=N",
            },
            Alternative {
                when: When::ReceivesLess,
                text: "its receive appears to take {receive} bytes at a time: the reply to a \
                       longer datagram stops there, short of BUF; if {receive} is the \
                       program's chosen size, give it with --param buf={receive}, otherwise \
                       receive BUF bytes (recvfrom(BUF), new byte[BUF])",
            },
        ],
        explain: Explain {
            why: "A datagram longer than the receive size is cut to its first BUF bytes on Linux and macOS (the rest is dropped silently); on Windows the receive raises an error. Either way the server must go on.",
            mistake: "data, addr = s.recvfrom(1024)  # on Windows: OSError 10040 for a longer datagram\nreply = data.upper()",
            fix: "Catch the error of an oversized datagram and go on; on Linux there is nothing to do: the first BUF bytes arrive.",
        },
        ..server(
            "udp-upper.truncation",
            Level::Must,
            "a datagram longer than BUF does not stop the server",
            "after a datagram of twice BUF bytes the server still answers; SHOULD: its reply is \
             the upper of the first BUF bytes; INFO: how many bytes it saw",
            Body::Conversation(|p: &Profile| {
                let buf = Params::of(p).buf;
                let long = long_datagram(buf);
                let kept = buf.min(long.len());
                let c = still_serving(Conversation::new().send_datagram(U1, long.clone()));
                let c = if long.len() > buf {
                    c.observe_echo_length(U1, long.len(), buf)
                } else {
                    c.step(DatagramStep::Observe {
                        sock: U1,
                        within: Deadline::Reply,
                        question: NONE_LONGER,
                        seen_of: Some(Seen {
                            sent: long.len(),
                            buf,
                        }),
                    })
                };
                c.expect_datagram_at(
                    U1,
                    DatagramWant::Exactly(upper(&long[..kept])),
                    Level::Should,
                )
            }),
        )
    }
}

fn empty() -> Check {
    Check {
        hint: Some(
            "an empty datagram is still a datagram: recvfrom returns b'' with the sender's \
             address, and the reply is an empty datagram (sendto(b'', addr))",
        ),
        hints: &[
            Alternative {
                when: When::Language(Language::Java),
                text: "receive(packet) of an empty datagram sets packet.getLength() to 0 and \
                       leaves getData() the whole buffer: build the reply from the received \
                       length only (new String(packet.getData(), 0, packet.getLength())), and \
                       send it even when it is empty",
            },
            Alternative {
            when: When::Mapped("_asyncio"),
            text: "asyncio's transport.sendto() sends nothing for an empty payload (in \
                   Python 3.11 it returns at `if not data`), so the empty reply never leaves: \
                   make the socket yourself, pass it as sock= to create_datagram_endpoint, \
                   and send the empty reply with that socket's sendto(b'', addr)",
            },
        ],
        explain: Explain {
            why: "On UDP an empty datagram is delivered like any other: recvfrom returns zero bytes and the sender's address. It does not mean anybody closed anything.",
            mistake: "data, addr = s.recvfrom(1024)\nif not data:                    # taken for a closed connection\n    continue",
            fix: "Treat b'' as a request like any other and send back its upper, b''.",
        },
        ..server(
            "udp-upper.empty",
            Level::Must,
            "an empty datagram does not stop the server; SHOULD: it gets an empty datagram back",
            "after an empty datagram the server still answers others; SHOULD: the empty \
             datagram gets an empty datagram back",
            Body::Conversation(|_| {
                still_serving(Conversation::new().send_datagram(U1, Vec::new()))
                    .expect_datagram_at(U1, DatagramWant::Exactly(Vec::new()), Level::Should)
            }),
        )
    }
}

/// Bytes that are not UTF-8, with letters among them.
fn binary_bytes() -> Vec<u8> {
    let mut b: Vec<u8> = (0x80..=0xff).collect();
    b.extend_from_slice(b"abc\x00\xc3\x28xyz");
    b
}

fn binary() -> Check {
    Check {
        abusive: true,
        hints: &[Alternative {
            when: When::OnStderr("UnicodeDecodeError"),
            text: "the server decoded the datagram as UTF-8 and died on bytes that are not \
                   (UnicodeDecodeError, on its stderr): upper-case the bytes themselves \
                   (data.upper()) and send them back, without decode() and encode()",
        }],
        explain: Explain {
            why: "A datagram holds bytes, not text: anything may arrive, and a server that decodes it as UTF-8 dies on the first byte that is not.",
            mistake: "data, addr = s.recvfrom(1024)\nreply = data.decode().upper().encode()   # UnicodeDecodeError",
            fix: "Upper-case the bytes themselves: data.upper() leaves every byte that is not a-z unchanged.",
        },
        ..server(
            "udp-upper.binary",
            Level::Must,
            "arbitrary bytes do not stop the server",
            "after a datagram of bytes that are not UTF-8 the server still answers; INFO: \
             whether it answered that datagram too",
            Body::Conversation(|_| {
                still_serving(Conversation::new().send_datagram(U1, binary_bytes()))
                    .observe_datagram(
                        U1,
                        Deadline::Quiet,
                        "whether the bytes that are not UTF-8 were answered",
                    )
            }),
        )
    }
}

fn max_size() -> Check {
    Check {
        abusive: true,
        explain: Explain {
            why: "65,507 bytes is the largest UDP payload over IPv4; a server must survive it whatever its receive size.",
            mistake: "buf = bytearray(1024)\nn, addr = s.recvfrom_into(buf, 65535)   # ValueError: larger than the buffer",
            fix: "Receive with recvfrom(BUF): the kernel cuts the datagram to BUF bytes and the server goes on.",
        },
        ..server(
            "udp-upper.max-size",
            Level::Must,
            "a 65,507-byte datagram does not stop the server",
            "after a datagram of the largest size UDP carries over IPv4 the server still \
             answers; INFO: how many bytes it saw",
            Body::Conversation(|p: &Profile| {
                let biggest = text(MAX_PAYLOAD, 11);
                still_serving(Conversation::new().send_datagram(U1, biggest))
                    .observe_echo_length(U1, MAX_PAYLOAD, Params::of(p).buf)
            }),
        )
    }
}

/// The check that owns a newline sent with the line: the other client
/// checks pass over white space after a line (`expect_datagram_line`), so
/// that one fault is blamed once.
fn client_echo() -> Check {
    Check {
        explain: Explain {
            why: "Each line typed is one request: its bytes, without the newline, in one datagram; the reply datagram is printed.",
            mistake: "line = input()\ns.sendto((line + '\\n').encode(), server)   # the newline travels too",
            fix: "Strip the line, send line.encode() with sendto, then recvfrom and print the reply.",
        },
        ..client(
            "udp-upper.client.echo",
            Level::Must,
            "each non-empty line is sent as one datagram and the reply printed",
            "each typed line arrives as one datagram holding its bytes without the newline, \
             and the reply is printed",
            Body::Conversation(|_| {
                Conversation::new()
                    .input("hello server\n")
                    .expect_datagram(U1, "hello server")
                    .send_datagram(U1, "HELLO SERVER")
                    .expect_output("HELLO SERVER")
                    .input("second line\n")
                    .expect_datagram(U1, "second line")
                    .send_datagram(U1, "SECOND LINE")
                    .expect_output("SECOND LINE")
            }),
        )
    }
}

fn client_empty_line() -> Check {
    Check {
        hint: Some(
            "skip a line that is empty once stripped: on UDP sendto(b'') sends an empty \
             datagram, and the receive after it waits for a reply that may never come",
        ),
        hints: &[Alternative {
            when: When::Exited,
            text: "the client ended ({exit}) at the empty line instead of going on to the \
                   next: skip an empty line (continue), and stop only at the end of the input",
        }],
        explain: Explain {
            why: "On TCP sending zero bytes sends nothing; on UDP it sends an empty datagram, which a server answers or not, and the client's next receive may wait forever. A line of spaces is not empty: a client may send it (and gets its echo) or skip it.",
            mistake: "line = input().strip()\ns.sendto(line.encode(), server)   # an empty datagram for an empty line",
            fix: "if not line: continue, before sending.",
        },
        ..client(
            "udp-upper.client.empty-line",
            Level::Must,
            "an empty line sends no datagram and the client goes on to the next line",
            "an empty line sends nothing; a blank line (spaces only) may be sent, and is \
             then answered, or skipped; the next line is sent and its reply printed",
            Body::Conversation(|_| {
                Conversation::new()
                    .input(&format!("\n{BLANK}\nafter the empty lines\n"))
                    .if_next(
                        U1,
                        BLANK,
                        Conversation::new().send_datagram(U1, upper(BLANK.as_bytes())),
                        BLANK_SENT,
                        BLANK_SKIPPED,
                    )
                    .expect_datagram_line(U1, "after the empty lines")
                    .send_datagram(U1, "AFTER THE EMPTY LINES")
                    .expect_output("AFTER THE EMPTY LINES")
            }),
        )
    }
}

/// A reply longer than BUF (twice BUF, as far as UDP carries) whose cut at
/// BUF falls inside a character: ASCII up to the byte before BUF, then
/// three-byte characters. A client that decodes the cut strictly raises,
/// as it would on any reply that is not ASCII.
fn oversized_reply(buf: usize) -> Vec<u8> {
    let len = (2 * buf).min(MAX_PAYLOAD);
    let ascii = buf.saturating_sub(1).min(len.saturating_sub(WIDE.len()));
    let mut reply = upper(&text(ascii, 5));
    reply.extend_from_slice(WIDE.as_bytes());
    while reply.len() + WIDE.len() <= len {
        reply.extend_from_slice(WIDE.as_bytes());
    }
    reply
}

/// A character of three bytes in UTF-8.
const WIDE: &str = "中";

fn client_oversized_reply() -> Check {
    Check {
        explain: Explain {
            why: "A reply longer than the client's receive size is cut to its first BUF bytes on Linux (an error on Windows); the client must go on either way.",
            mistake: "data, addr = s.recvfrom(1024)\nprint(data.decode())            # a cut inside a UTF-8 character raises",
            fix: "Decode with errors='replace' (or print the bytes) and catch the receive error where the platform raises one.",
        },
        ..client(
            "udp-upper.client.oversized-reply",
            Level::Should,
            "a reply longer than its BUF does not stop it",
            "after a reply of twice BUF bytes the client still sends its next line and prints \
             the reply",
            Body::Conversation(|p: &Profile| {
                Conversation::new()
                    .input("a long reply please\n")
                    .expect_datagram_line(U1, "a long reply please")
                    .send_datagram(U1, oversized_reply(Params::of(p).buf))
                    .input("after the long reply\n")
                    .expect_datagram_line(U1, "after the long reply")
                    .send_datagram(U1, "AFTER THE LONG REPLY")
                    .expect_output("AFTER THE LONG REPLY")
            }),
        )
    }
}

fn client_lost_reply() -> Check {
    Check {
        explain: Explain {
            why: "UDP does not resend: a lost datagram is gone, and a recvfrom without a timeout waits for it forever.",
            mistake: "s.sendto(line.encode(), server)\ndata, addr = s.recvfrom(1024)   # blocks forever if the reply is lost",
            fix: "s.settimeout(2.0) and catch socket.timeout: say the reply was lost and go on with the next line.",
        },
        ..client(
            "udp-upper.client.lost-reply",
            Level::Info,
            "whether it recovers when a reply never comes",
            "a request whose reply never comes; then the next line is typed: a client with a \
             receive timeout sends it",
            Body::Conversation(|_| {
                Conversation::new()
                    .input("this reply is lost\nthe next line\n")
                    .expect_datagram_line(U1, "this reply is lost")
                    .observe_datagram(
                        U1,
                        Deadline::Recover,
                        "whether it sent its next line after a reply was lost",
                    )
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockspec_engine::conversations::check::Role;

    #[test]
    fn every_protocol_check_is_here_at_its_level() {
        let ids: Vec<(&str, Level)> = suite()
            .checks
            .iter()
            .map(|c| (c.id.as_str(), c.level))
            .collect();
        assert_eq!(
            ids,
            [
                ("udp-upper.echo", Level::Must),
                ("udp-upper.boundaries", Level::Must),
                ("udp-upper.senders", Level::Must),
                ("udp-upper.truncation", Level::Must),
                ("udp-upper.empty", Level::Must),
                ("udp-upper.binary", Level::Must),
                ("udp-upper.max-size", Level::Must),
                ("udp-upper.client.echo", Level::Must),
                ("udp-upper.client.empty-line", Level::Must),
                ("udp-upper.client.oversized-reply", Level::Should),
                ("udp-upper.client.lost-reply", Level::Info),
            ]
        );
    }

    #[test]
    fn no_server_check_needs_the_process_so_a_remote_server_gets_them_all() {
        for c in suite().checks.iter().filter(|c| c.role == Role::Server) {
            assert!(!c.needs_process(), "{}", c.id);
        }
    }

    #[test]
    fn bursts_stay_small_enough_to_lose_nothing() {
        assert!(BURST.iter().all(|m| m.len() <= 64));
    }

    fn params(assignments: &[&str]) -> Params {
        Params::of(&Profile::of(assignments, suite().params).unwrap())
    }

    #[test]
    fn buf_is_1024_unless_given() {
        assert_eq!(params(&[]), Params { buf: 1024 });
        assert_eq!(params(&["buf=512"]), Params { buf: 512 });
    }

    #[test]
    fn buf_is_at_most_the_65536_bytes_a_receive_asks_for() {
        assert_eq!(params(&["buf=65536"]).buf, 65_536);
        assert!(Profile::of(&["buf=65537"], suite().params).is_err());
    }

    #[test]
    fn the_long_datagram_is_twice_buf_as_far_as_udp_carries() {
        assert_eq!(long_datagram(1024).len(), 2048);
        assert_eq!(long_datagram(32_754).len(), MAX_PAYLOAD);
        assert_eq!(long_datagram(65_536).len(), MAX_PAYLOAD);
    }

    #[test]
    fn with_a_buf_no_datagram_exceeds_truncation_says_so_and_expects_the_whole_echo() {
        let p = Profile::of(&["buf=65536"], suite().params).unwrap();
        let Body::Conversation(build) = truncation().body else {
            panic!("a conversation");
        };
        let steps: Vec<String> = build(&p).steps.iter().map(ToString::to_string).collect();
        assert!(
            steps.iter().any(|s| s.contains("none can be truncated")),
            "{steps:?}"
        );
    }

    #[test]
    fn the_oversized_reply_is_cut_at_buf_inside_a_character() {
        for buf in [1, 2, 1024, 4096, 32_000] {
            let reply = oversized_reply(buf);
            assert!(reply.len() > buf, "{buf}");
            assert!(std::str::from_utf8(&reply).is_ok(), "{buf}");
            assert!(std::str::from_utf8(&reply[..buf]).is_err(), "{buf}");
        }
        assert!(oversized_reply(65_536).len() <= MAX_PAYLOAD);
    }

    #[test]
    fn the_binary_datagram_is_not_utf8() {
        assert!(std::str::from_utf8(&binary_bytes()).is_err());
    }
}
