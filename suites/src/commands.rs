//! What the remote-command suites over TCP share (`cmd-raw`, `cmd-len`,
//! `cmd-json`): the commands the checks send, each with the output it
//! writes wherever it runs (no locale, no working directory, no clock in
//! it), the `prefix` parameter of the framed two, and the expected answers
//! built from a profile.

use proptest::prelude::*;
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::judge::expect_frame::{BodySpec, FrameWant, Framing, HeaderWant};
use sockspec_engine::judge::frame::PrefixFormat;
use sockspec_engine::model::cut::Cut;
use sockspec_engine::model::hint::{Alternative, When};
use sockspec_engine::model::profile::{Choice, Number, Profile, Text};

/// How a length is written: the course's `struct.pack("i", n)` on Linux
/// is a little-endian signed 32-bit integer.
pub const PREFIX: Choice = Choice {
    key: "prefix",
    meaning: "how a length is written: i32le is struct.pack(\"i\") on Linux, i32be is \
              struct.pack(\"!i\")",
    options: &["i32le", "i32be", "u32le", "u32be", "i64le", "i64be"],
    default: "i32le",
};

/// How `cmd-len` writes a length: [`PREFIX`]'s formats, or the length as
/// decimal digits with a handshake, which only `cmd-len` has.
pub const LENGTH_PREFIX: Choice = Choice {
    key: "prefix",
    meaning: "how a length is written: i32le is struct.pack(\"i\") on Linux, i32be is \
              struct.pack(\"!i\"); decimal (cmd-len only) is str(len(data)).encode() in one \
              send, the client answering with --param ready before the body comes",
    options: &[
        "i32le", "i32be", "u32le", "u32be", "i64le", "i64be", "decimal",
    ],
    default: "i32le",
};

/// The word a client answers a decimal length with.
pub const READY: Text = Text {
    key: "ready",
    meaning: "with prefix=decimal, what the client sends once it has the length, before the \
              body comes (ok; recv_ready is seen too)",
    default: "ok",
    shown_default: "ok",
    refuse_empty: Some(
        "the client's ready word needs a text, such as ready=ok: a send of no \
                        bytes sends nothing",
    ),
};

/// The JSON header's name for the body's length.
pub const SIZE_KEY: Text = Text {
    key: "size_key",
    meaning: "the JSON header's name for the body's length (data_size, total_size, \
              file_size, filesize and length are seen in assignments)",
    default: "size",
    shown_default: "size",
    refuse_empty: Some("the header's size field needs a name, such as size_key=data_size"),
};

/// The prefix format a profile asks for.
pub fn prefix(p: &Profile) -> PrefixFormat {
    PrefixFormat::parse(p.choice(&PREFIX)).unwrap_or(PrefixFormat::I32Le)
}

/// A command line a check sends, and what it writes: its stdout, then its
/// stderr.
#[derive(Clone, Copy, Debug)]
pub struct Command {
    pub line: &'static str,
    pub stdout: &'static [u8],
    pub stderr: &'static [u8],
}

impl Command {
    /// The answer's body: stdout, then stderr.
    pub fn output(&self) -> Vec<u8> {
        [self.stdout, self.stderr].concat()
    }
}

/// A command with a short output on stdout.
pub const HELLO: Command = Command {
    line: "printf 'hello from sockspec\\n'",
    stdout: b"hello from sockspec\n",
    stderr: b"",
};

/// A failing command that writes only to stderr: its answer is its error
/// text, whichever stream a server puts first.
pub const FAILING: Command = Command {
    line: "printf 'no such thing\\n' >&2; exit 3",
    stdout: b"",
    stderr: b"no such thing\n",
};

/// A command with a short output that comes only after a pause: a client
/// that closes at once has left before the answer is written.
pub const LATE_HELLO: Command = Command {
    line: "sleep 0.2; printf 'hello from sockspec\\n'",
    stdout: b"hello from sockspec\n",
    stderr: b"",
};

/// A command that writes a line to each stream, stdout first: its answer's
/// body holds both, in the order the server puts them, or stderr alone.
pub const BOTH: Command = Command {
    line: "printf 'to stdout\\n'; printf 'to stderr\\n' >&2",
    stdout: b"to stdout\n",
    stderr: b"to stderr\n",
};

/// A command that writes nothing.
pub const SILENT: Command = Command {
    line: "true",
    stdout: b"",
    stderr: b"",
};

/// Bytes that are not UTF-8, on stdout.
pub const NOT_UTF8: Command = Command {
    line: "printf '\\377\\376\\200 not utf-8\\n'",
    stdout: b"\xff\xfe\x80 not utf-8\n",
    stderr: b"",
};

/// Text that is not ASCII, in the command line and on stdout: a header
/// that echoes the command holds characters of more than one byte.
pub const UNICODE: Command = Command {
    line: "printf '回顾 review\\n'",
    stdout: "回顾 review\n".as_bytes(),
    stderr: b"",
};

/// A few short commands with outputs of different lengths, for a sequence
/// on one connection.
pub const SEQUENCE: [Command; 4] = [
    Command {
        line: "printf 'one\\n'",
        stdout: b"one\n",
        stderr: b"",
    },
    Command {
        line: "printf 'two two\\n'",
        stdout: b"two two\n",
        stderr: b"",
    },
    Command {
        line: "printf 'three three three\\n'",
        stdout: b"three three three\n",
        stderr: b"",
    },
    Command {
        line: "printf 'four\\n'",
        stdout: b"four\n",
        stderr: b"",
    },
];

/// The line `yes` repeats for a large output.
pub const LARGE_LINE: &[u8] = b"0123456789abcde\n";

/// Bytes of the large output: several MiB, far over the 64 KiB a pipe
/// holds (a server that reads one of the command's pipes to its end before
/// the other waits for good) and over any socket buffer.
pub const LARGE_LEN: u64 = 4 << 20;

/// The command that writes [`LARGE_LEN`] bytes of [`LARGE_LINE`]s.
pub const LARGE_COMMAND: &str = "yes 0123456789abcde | head -c 4194304";

/// The same output on stderr: a server that reads stdout to its end before
/// stderr waits for good on it, as one reading stderr first does on
/// [`LARGE_COMMAND`].
pub const LARGE_STDERR_COMMAND: &str = "yes 0123456789abcde | head -c 4194304 >&2";

/// The large output, described.
pub fn large_body() -> BodySpec {
    BodySpec::Repeated {
        pattern: LARGE_LINE.to_vec(),
        len: LARGE_LEN,
    }
}

/// The last line of [`large_answer_for_client`]: a client prints it only
/// if it read every byte before it.
pub const LARGE_ANSWER_END: &str = "END OF THE LARGE ANSWER";

/// The line the large answer to a client repeats before its end.
const LARGE_ANSWER_LINE: &[u8] = b"large answer line\n";

/// Bytes of the large answer the harness sends a client: by default half
/// a MiB of lines, far more than BUF and than the 128 KiB a socket starts
/// with. Not more: a course client appends each receive of BUF bytes to
/// what it has (a copy of it all), and must print the answer within the
/// output deadline on a loaded machine. More measures a client's (and the
/// harness's) throughput.
pub const LARGE_SIZE: Number = Number {
    key: "large_size",
    meaning: "bytes of the large answer the client checks send, its last line included",
    min: 65_536,
    max: 1 << 30,
    default: 29_000 * LARGE_ANSWER_LINE.len() + LARGE_ANSWER_END.len() + 1,
};

/// The large answer the harness sends a client: [`LARGE_SIZE`] bytes of
/// lines, the last one [`LARGE_ANSWER_END`]. Described, not held: an
/// answer of many MiB is streamed as it is written.
pub fn large_answer_for_client(p: &Profile) -> BodySpec {
    BodySpec::RepeatedThen {
        pattern: LARGE_ANSWER_LINE.to_vec(),
        len: p.number(&LARGE_SIZE) as u64,
        end: format!("{LARGE_ANSWER_END}\n").into_bytes(),
    }
}

/// How a `cmd-len` answer is framed: a prefix in the profile's format, or
/// the length in decimal digits answered with the profile's ready word.
pub fn length_framing(p: &Profile) -> Framing {
    match p.choice(&LENGTH_PREFIX) {
        "decimal" => Framing::Decimal {
            ready: p.text(&READY).to_string(),
        },
        _ => Framing::Length { prefix: prefix(p) },
    }
}

/// The command a client check's generated cases type, one per case.
pub const CUT_COMMAND: &str = "printf cut";

/// The body of a generated case's answer: a line of the same length for
/// every seed, so that a frame's prefix and header lie at the same bytes
/// in every case, and its own text, so that each case's printed answer is
/// told from the one before.
pub fn cut_answer(seed: u64) -> Vec<u8> {
    format!("ANSWER {seed:016X} CUT IN PIECES\n").into_bytes()
}

/// Draws [`cut_answer`]s. A failing case's answer is kept as drawn while
/// its cut shrinks: the text of a line of fixed length is not what a
/// reader's loops get wrong, and shrinking it would spend the budget of
/// restarts a client's case costs.
pub fn cut_answers() -> BoxedStrategy<Vec<u8>> {
    any::<u64>().no_shrink().prop_map(cut_answer).boxed()
}

/// How a client prints a body: its text, without the line's end.
pub fn printed(body: &[u8]) -> String {
    String::from_utf8_lossy(body).trim_end().to_string()
}

/// A length-prefixed answer of `body`, in the profile's prefix format.
pub fn length_frame(p: &Profile, body: BodySpec) -> FrameWant {
    FrameWant {
        framing: length_framing(p),
        body,
        tolerant: false,
        header: HeaderWant::default(),
    }
}

/// A JSON-header answer of `body`, with the profile's prefix format and
/// size key.
pub fn json_frame(p: &Profile, body: BodySpec) -> FrameWant {
    FrameWant {
        framing: Framing::JsonHeader {
            prefix: prefix(p),
            size_key: p.text(&SIZE_KEY).to_string(),
        },
        body,
        tolerant: false,
        header: HeaderWant::default(),
    }
}

/// [`length_frame`], taking the known variants of the format (another byte
/// order, another width) and noting them: for the checks whose subject is
/// not the format, so that `byte-order` alone blames it.
pub fn tolerant_length_frame(p: &Profile, body: BodySpec) -> FrameWant {
    FrameWant {
        tolerant: true,
        ..length_frame(p, body)
    }
}

/// [`json_frame`], taking the known variants of the format (the prefix in
/// another byte order, the size under another key or as digits) and noting
/// them: for the checks whose subject is not the header, so that `header`
/// alone blames it.
pub fn tolerant_json_frame(p: &Profile, body: BodySpec) -> FrameWant {
    FrameWant {
        tolerant: true,
        ..json_frame(p, body)
    }
}

/// The answer a command's output makes, described.
pub fn literal(c: &Command) -> BodySpec {
    BodySpec::Literal(c.output())
}

/// How a framed suite expects an answer of a body: [`length_frame`] or
/// [`json_frame`].
pub type Frame = fn(&Profile, BodySpec) -> FrameWant;

const C1: Conn = Conn(1);
const C2: Conn = Conn(2);
const C3: Conn = Conn(3);
const C4: Conn = Conn(4);

/// Sends `command` on `conn` and expects its answer, framed.
pub fn ask(
    c: Conversation,
    p: &Profile,
    frame: Frame,
    conn: Conn,
    command: &Command,
) -> Conversation {
    c.send(conn, command.line, Cut::Whole)
        .expect_frame(conn, frame(p, literal(command)))
}

/// A server that died of `BrokenPipeError` in a check other than the one
/// about clients that leave: it wrote to a connection the harness had
/// closed, most often because it does not stop at the empty read a close
/// gives and runs the empty command.
pub const DIED_WRITING_TO_CLOSED: Alternative = Alternative {
    when: When::Both(
        &When::OnStderr("BrokenPipeError"),
        &When::InDetail("the server crashed during the check"),
    ),
    text: "the server died of BrokenPipeError (in its stderr), writing to a connection the \
           harness had closed: on Linux a client that closes makes recv return b''; stop \
           serving it then (if not data: break) rather than run the empty command and write \
           its answer, and catch BrokenPipeError as well as ConnectionResetError",
};

/// The conditional hints of a server check that has none of its own.
pub const CLOSED_HINTS: &[Alternative] = &[DIED_WRITING_TO_CLOSED];

/// The server checks' conversations, the same for every framing: each on
/// a connection of its own, closed at the end.
pub mod server {
    use super::*;

    /// A command writing to stdout and a failing one writing to stderr.
    pub fn frame(p: &Profile, frame: Frame) -> Conversation {
        let c = ask(Conversation::new().connect(C1), p, frame, C1, &HELLO);
        ask(c, p, frame, C1, &FAILING).close(C1)
    }

    /// Commands one after the other on one connection.
    pub fn sequence(p: &Profile, frame: Frame) -> Conversation {
        let mut c = Conversation::new().connect(C1);
        for command in &SEQUENCE {
            c = ask(c, p, frame, C1, command);
        }
        c.close(C1)
    }

    /// An output of several MiB on stdout, then on stderr: more than a
    /// pipe holds on either stream.
    pub fn large(p: &Profile, frame: Frame) -> Conversation {
        Conversation::new()
            .connect(C1)
            .send(C1, LARGE_COMMAND, Cut::Whole)
            .expect_frame(C1, frame(p, large_body()))
            .send(C1, LARGE_STDERR_COMMAND, Cut::Whole)
            .expect_frame(C1, frame(p, large_body()))
            .close(C1)
    }

    /// A failing command's error text, and no output at all; then, as an
    /// observation, the order of the two streams in the answer to a
    /// command that writes to both.
    pub fn stderr(p: &Profile, frame: Frame) -> Conversation {
        let c = ask(Conversation::new().connect(C1), p, frame, C1, &FAILING);
        let c = ask(c, p, frame, C1, &SILENT);
        let both = &BOTH;
        let ways = [
            ("stdout then stderr", both.output()),
            ("stderr then stdout", [both.stderr, both.stdout].concat()),
            ("stderr alone", both.stderr.to_vec()),
        ]
        .map(|(name, body)| (name.to_string(), frame(p, BodySpec::Literal(body))));
        c.send(C1, both.line, Cut::Whole)
            .observe_frame(
                C1,
                ways,
                "for a command writing to both stdout and stderr, the body held",
            )
            .close(C1)
    }

    /// Bytes that are not UTF-8.
    pub fn bytes(p: &Profile, frame: Frame) -> Conversation {
        ask(Conversation::new().connect(C1), p, frame, C1, &NOT_UTF8).close(C1)
    }

    /// One client asks for a short output that comes late and closes at
    /// once, before the answer is written: the server's first write draws a reset and its
    /// next one fails (on Linux `BrokenPipeError`), which a server writing
    /// each answer with a few `send` calls meets even when a failing
    /// `send` of a large answer only comes back short. Another asks for a
    /// large output and closes its side at once, a third resets in the
    /// middle of its answer (`ConnectionResetError`); each of these is
    /// ended once the server settled, blocked writing an answer larger
    /// than the connection's buffers hold. The next client is served.
    pub fn disconnect(p: &Profile, frame: Frame) -> Conversation {
        let c = Conversation::new()
            .connect(C1)
            .send(C1, LATE_HELLO.line, Cut::Whole)
            .close(C1)
            .settle()
            .connect(C2)
            .send(C2, LARGE_COMMAND, Cut::Whole)
            .shutdown_write(C2)
            .settle()
            .close(C2)
            .connect(C3)
            .send(C3, LARGE_COMMAND, Cut::Whole)
            .settle()
            .reset(C3)
            .connect(C4);
        ask(c, p, frame, C4, &HELLO).close(C4)
    }

    /// A short answer, read in the profile's prefix format.
    pub fn byte_order(p: &Profile, frame: Frame) -> Conversation {
        ask(Conversation::new().connect(C1), p, frame, C1, &HELLO).close(C1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockspec_engine::model::profile::ParamSpec;

    /// Every byte of `body`, for a body small enough to hold.
    fn bytes_of(body: &BodySpec) -> Vec<u8> {
        let mut all = vec![0u8; body.len() as usize];
        assert_eq!(body.fill(0, &mut all), all.len());
        all
    }

    #[test]
    fn the_large_answer_to_a_client_is_half_a_mib_of_lines_and_ends_with_its_marker() {
        let body = bytes_of(&large_answer_for_client(&Profile::default()));
        assert_eq!(body.len(), 522_024);
        assert!(body.starts_with(b"large answer line\nlarge answer line\n"));
        assert!(body.ends_with(b"large answer line\nEND OF THE LARGE ANSWER\n"));
    }

    #[test]
    fn the_large_answer_is_as_long_as_the_profile_asks_and_still_ends_with_its_marker() {
        let params = [ParamSpec::Number(&LARGE_SIZE)];
        let p = Profile::of(&["large_size=100000"], &params).unwrap();
        let body = bytes_of(&large_answer_for_client(&p));
        assert_eq!(body.len(), 100_000);
        assert!(body.ends_with(b"END OF THE LARGE ANSWER\n"));
    }

    #[test]
    fn the_profile_chooses_the_prefix_and_the_size_key() {
        let params = [ParamSpec::Choice(&PREFIX), ParamSpec::Text(&SIZE_KEY)];
        let p = Profile::of(&["prefix=u32be", "size_key=data_size"], &params).unwrap();
        assert_eq!(prefix(&p), PrefixFormat::U32Be);
        let want = json_frame(&p, literal(&HELLO));
        assert_eq!(
            want.framing,
            Framing::JsonHeader {
                prefix: PrefixFormat::U32Be,
                size_key: "data_size".into()
            }
        );
        assert_eq!(prefix(&Profile::default()), PrefixFormat::I32Le);
    }

    #[test]
    fn every_prefix_the_parameter_takes_is_a_format_the_engine_reads() {
        for name in PREFIX.options {
            assert!(PrefixFormat::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn cmd_len_s_prefix_takes_the_formats_and_decimal_with_its_ready_word() {
        let params = [ParamSpec::Choice(&LENGTH_PREFIX), ParamSpec::Text(&READY)];
        for name in LENGTH_PREFIX.options {
            let p = Profile::of(&[&format!("prefix={name}")], &params).unwrap();
            let framing = length_framing(&p);
            match PrefixFormat::parse(name) {
                Some(prefix) => assert_eq!(framing, Framing::Length { prefix }),
                None => assert_eq!(framing, Framing::Decimal { ready: "ok".into() }),
            }
        }
        let p = Profile::of(&["prefix=decimal", "ready=recv_ready"], &params).unwrap();
        assert_eq!(
            length_framing(&p),
            Framing::Decimal {
                ready: "recv_ready".into()
            }
        );
        assert!(Profile::of(&["prefix=decimal"], &[ParamSpec::Choice(&PREFIX)]).is_err());
    }
}
