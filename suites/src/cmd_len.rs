//! `cmd-len`: remote commands over TCP, each answer a length prefix and
//! then exactly that many bytes: the command's stdout, then its stderr,
//! as the shell produced them.
//!
//! The server checks send commands whose output is known wherever they run
//! and read each answer as a frame, however it is cut on the wire; the
//! client checks play the server and cut the answer: in generated pieces,
//! one of them always ending inside the prefix, each sent once the kernel
//! shows the client read the one before, so a client that reads the prefix
//! with one receive of 4 gets part of it, on every run; the cut that fails
//! is shrunk to the smallest that still does.

use sockspec_engine::conversations::check::{Body, Check, Explain, Generated, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::{Conn, FrameCut, FrameOut};
use sockspec_engine::judge::expect::Want;
use sockspec_engine::judge::expect_frame::BodySpec;
use sockspec_engine::model::cut::Cut;
use sockspec_engine::model::hint::{Alternative, When};
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{ParamSpec, Profile};
use sockspec_engine::Transport;

use crate::checks::{client, server, BUF};
use crate::commands::{
    self, length_frame, length_framing, tolerant_length_frame, LARGE_SIZE, LENGTH_PREFIX, READY,
};

const C1: Conn = Conn(1);

pub fn suite() -> Suite {
    Suite {
        name: "cmd-len",
        transport: Transport::Stream,
        summary: "remote commands over TCP: each answer a length prefix, then stdout and stderr",
        wire: Wire {
            server: "Listen on TCP; for each receive of up to BUF bytes, run it as a command \
                     through the shell and answer prefix(N) followed by exactly N bytes: the \
                     command's stdout, then its stderr, as the shell produced them (prefix: \
                     struct.pack(\"i\", N), see --param prefix). Serve the next client once one \
                     leaves, however it leaves.",
            client: "For each line of standard input: send it as the command; read the prefix \
                     (looping until all of its bytes are in), then loop until the N body bytes \
                     are in, and print them. Skip an empty line.",
        },
        sanity: |p| {
            Conversation::new()
                .connect(C1)
                .send(C1, "printf sanity", Cut::Whole)
                .expect_frame(
                    C1,
                    tolerant_length_frame(p, BodySpec::Literal(b"sanity".to_vec())),
                )
                .close(C1)
        },
        params: &[
            ParamSpec::Choice(&LENGTH_PREFIX),
            ParamSpec::Text(&READY),
            ParamSpec::Number(&BUF),
            ParamSpec::Number(&LARGE_SIZE),
        ],
        checks: vec![
            frame(),
            sequence(),
            large(),
            stderr(),
            bytes(),
            disconnect(),
            byte_order(),
            client_split_prefix(),
            client_merged(),
            client_large(),
            client_empty(),
            client_empty_line(),
        ],
    }
}

fn frame() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "the prefix is the length of everything that follows it: len(stdout) + \
             len(stderr), in bytes, and the body is both, as the command wrote them",
        ),
        explain: Explain {
            why: "The client reads the prefix and then exactly that many bytes. A prefix that counts less than what follows leaves the rest in the stream, where the next answer is read from it; one that counts more makes the client wait forever.",
            mistake: "header = struct.pack('i', len(stdout))    # stderr not counted\nconn.send(header); conn.send(stdout); conn.send(stderr)",
            fix: "data = stdout + stderr; conn.sendall(struct.pack('i', len(data)) + data)",
        },
        ..server(
            "cmd-len.frame",
            Level::Must,
            "the prefix equals the number of body bytes that follow, and the body is the command's output",
            "a command writing to stdout and a failing command writing to stderr each get \
             prefix(N) and then exactly N bytes of their output",
            Body::Conversation(|p| commands::server::frame(p, tolerant_length_frame)),
        )
    }
}

fn sequence() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "send each answer whole before reading the next command, with its own prefix",
        ),
        explain: Explain {
            why: "Many commands share one connection: each answer must be self-contained, so the client can find where one ends and the next begins.",
            mistake: "conn.send(struct.pack('i', n))\nconn.send(out[:1024])    # the rest is sent with the next answer",
            fix: "conn.sendall(prefix + data) for every command.",
        },
        ..server(
            "cmd-len.sequence",
            Level::Must,
            "many commands on one connection each get a self-contained answer",
            "four commands sent one after the other on one connection each get their own \
             framed answer: nothing of one answer inside another",
            Body::Conversation(|p| commands::server::sequence(p, tolerant_length_frame)),
        )
    }
}

/// Advice for a large answer that stopped coming.
const LARGE_HINTS: &[Alternative] = &[
    Alternative {
        when: When::OnStderr("timed out"),
        text: "a send with a timeout set stopped part-way (its count ignored): use sendall, \
               which sends everything or raises",
    },
    Alternative {
        when: When::InDetail("the prefix reads"),
        text: "the prefix is not the length of the answer: it counts stdout and stderr \
               together, as the body carries both (cmd-len.frame says more)",
    },
    commands::DIED_WRITING_TO_CLOSED,
];

fn large() -> Check {
    Check {
        hint: Some(
            "read the command's stdout and stderr at the same time (communicate()): a command \
             that fills one pipe waits until it is read, so reading the other to its end \
             first waits for good; then send everything (sendall, not one send)",
        ),
        hints: LARGE_HINTS,
        explain: Explain {
            why: "An output of several MiB fills the 64 KiB pipe between the command and the server, and the socket's buffers: both must be drained as the data comes, and every byte sent.",
            mistake: "err = res.stderr.read()    # stdout fills its pipe; the command never ends\nout = res.stdout.read()\nconn.send(header + out + err)   # with a timeout set, may send only part",
            fix: "out, err = res.communicate(); conn.sendall(struct.pack('i', len(out) + len(err)) + out + err)",
        },
        ..server(
            "cmd-len.large",
            Level::Must,
            "an output of several MiB is framed and sent whole",
            "a command writing 4 MiB to stdout, then one writing 4 MiB to stderr, each get a \
             prefix of 4194304 and every byte of its output",
            Body::Conversation(|p| commands::server::large(p, tolerant_length_frame)),
        )
    }
}

fn stderr() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "the body is the command's output as it is: its error text when it fails, and \
             nothing at all (a prefix of 0) when it writes nothing",
        ),
        explain: Explain {
            why: "A failing command's error text is its answer; a command that writes nothing has an empty answer, and the client must be told so with a prefix of 0, not with made-up text.",
            mistake: "data = res.stdout.read() or '执行成功'.encode('gbk')   # a placeholder for no output",
            fix: "data = stdout + stderr; even when empty, send struct.pack('i', len(data)) + data.",
        },
        ..server(
            "cmd-len.stderr",
            Level::Must,
            "a failing command's error text is in the body; a command with no output gets prefix 0",
            "a failing command writing only to stderr gets its error text as the body; a \
             command writing nothing gets a prefix of 0 and no body; for a command writing to \
             both, the order found is observed: stdout then stderr, the reverse, or stderr alone",
            Body::Conversation(|p| commands::server::stderr(p, tolerant_length_frame)),
        )
    }
}

fn bytes() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "send the output's bytes as the command wrote them: decoding and encoding again \
             turns bytes that are not UTF-8 into U+FFFD (ef bf bd) and changes the length",
        ),
        explain: Explain {
            why: "A command may write any bytes. The protocol carries them unchanged; only the client, printing them, decides what they mean.",
            mistake: "data = stdout.decode('utf-8', errors='replace').encode()   # \\xff becomes ef bf bd",
            fix: "Keep stdout and stderr as bytes from subprocess to sendall.",
        },
        ..server(
            "cmd-len.bytes",
            Level::Must,
            "output bytes that are not UTF-8 arrive unchanged",
            "a command writing the bytes ff fe 80 gets them back unchanged, with a prefix \
             that counts them",
            Body::Conversation(|p| commands::server::bytes(p, tolerant_length_frame)),
        )
    }
}

/// Advice for a server that died when a client left.
const DISCONNECT_HINTS: &[Alternative] = &[Alternative {
    when: When::OnStderr("BrokenPipeError"),
    text: "the server died of BrokenPipeError (in its stderr): on Linux, writing to a client \
           that closed raises BrokenPipeError, not only ConnectionResetError; catch both \
           (or OSError) around the client's loop, close the connection and accept the next",
}];

fn disconnect() -> Check {
    Check {
        abusive: true,
        hint: Some(
            "a client that leaves in the middle of an answer ends that client only: catch the \
             error of the send (BrokenPipeError, ConnectionResetError), close its connection \
             and accept the next client",
        ),
        hints: DISCONNECT_HINTS,
        explain: Explain {
            why: "Clients go away while their answer is being written: closed windows, Ctrl-C. The server must go on serving the next one.",
            mistake: "except ConnectionResetError:   # Windows' error; Linux raises BrokenPipeError on a closed peer\n    break",
            fix: "except (ConnectionResetError, BrokenPipeError): break — then conn.close() and back to accept().",
        },
        ..server(
            "cmd-len.disconnect",
            Level::Must,
            "a client that closes or resets in the middle of an answer does not stop the server",
            "one client closes right after asking for an output that comes late, another \
             closes its side right after asking for a large output and a third resets its \
             connection in the middle of one; the next client is served",
            Body::Conversation(|p| commands::server::disconnect(p, tolerant_length_frame)),
        )
    }
}

fn byte_order() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "write the prefix as the assignment says: struct.pack(\"i\", n) is little-endian \
             on Linux, struct.pack(\"!i\", n) big-endian; if your assignment says the other, \
             run with the --param prefix=... the detail names",
        ),
        explain: Explain {
            why: "Both sides must agree on the prefix's width and byte order. Read in the other order, a length of 5 is 83886080: the client waits for 80 MB that never come.",
            mistake: "conn.sendall(struct.pack('!i', n))   # network order, where the client unpacks 'i'",
            fix: "struct.pack('i', n) on both sides (or '!i' on both, and --param prefix=i32be).",
        },
        ..server(
            "cmd-len.byte-order",
            Level::Must,
            "the prefix is in the profile's format; the detail names the format it looks like when it is not",
            "the prefix of a short answer reads as its length in the profile's format (i32le \
             by default); when it does not, the format it does read in is named",
            Body::Conversation(|p| commands::server::byte_order(p, length_frame)),
        )
    }
}

/// The answer the harness sends a client: a length frame of `body`, or
/// its decimal variant.
fn answer(p: &Profile, body: &[u8]) -> FrameOut {
    described_answer(p, BodySpec::Literal(body.to_vec()))
}

/// The same for a described body, streamed as it is sent.
fn described_answer(p: &Profile, body: BodySpec) -> FrameOut {
    FrameOut {
        framing: length_framing(p),
        body,
        fields: Vec::new(),
    }
}

/// Advice for a client that crashed unpacking a short prefix.
const SPLIT_PREFIX_HINTS: &[Alternative] = &[Alternative {
    when: When::OnStderr("unpack requires a buffer of"),
    text: "the client unpacked the prefix from a single receive that got fewer than its \
           bytes (struct.error in its stderr): loop until all of the prefix's bytes are in",
}];

fn client_split_prefix() -> Check {
    Check {
        hint: Some(
            "read the prefix in a loop until all of its bytes are in: one recv(4) may return \
             1 byte",
        ),
        hints: SPLIT_PREFIX_HINTS,
        explain: Explain {
            why: "TCP is a stream: the four bytes of the prefix may arrive in any number of pieces, and one receive returns what has arrived.",
            mistake: "n = struct.unpack('i', s.recv(4))[0]   # recv(4) may return 1 byte",
            fix: "def recv_exactly(s, n): loop on s.recv(n - len(data)) until len(data) == n; use it for the prefix and the body.",
        },
        ..client(
            "cmd-len.client.split-prefix",
            Level::Must,
            "a prefix arriving in pieces (1 byte, then 3) still gives exactly the body",
            "after a plain answer, answers cut in generated pieces, one of them ending inside \
             the prefix, each sent once the client has read the one before: the client prints \
             each body; a cut that fails is shrunk to the smallest that still does",
            Body::Generated(Generated {
                setup: |_| Conversation::new().accept(C1),
                fixed: |_| vec![(commands::cut_answer(0), Cut::Whole)],
                cases: 16,
                message: |_| commands::cut_answers(),
                cut: |p| {
                    let frame = answer(p, &commands::cut_answer(0));
                    let total = usize::try_from(frame.total_len()).unwrap_or(usize::MAX);
                    Cut::splitting(&frame.parts()[..1], total, 3)
                },
                case: |p, body, cut| {
                    let command = commands::CUT_COMMAND;
                    Conversation::new()
                        .input(&format!("{command}\n"))
                        .expect(C1, Want::Line(command.as_bytes().to_vec()))
                        .send_frame(C1, answer(p, body), FrameCut::Schedule(cut.clone()))
                        .expect_output(&commands::printed(body))
                },
            }),
        )
    }
}

fn client_merged() -> Check {
    Check {
        hint: Some(
            "read exactly the prefix's bytes, then exactly N body bytes: what arrives with \
             them belongs to the answer, not to the next one",
        ),
        explain: Explain {
            why: "The prefix and the body often arrive in one piece. A client that reads more than the prefix with its first receive takes body bytes for the prefix; one that reads a fixed size for the body takes too much or too little.",
            mistake: "data = s.recv(1024)\nn = struct.unpack('i', data[:4])[0]\nbody = s.recv(n)   # the body already came with the prefix",
            fix: "Read 4 bytes exactly, then n bytes exactly.",
        },
        ..client(
            "cmd-len.client.merged",
            Level::Must,
            "prefix and body arriving in one piece give exactly the body, nothing more or less",
            "two answers, each prefix and body in one write, are printed each in full and \
             in order",
            Body::Conversation(|p| {
                Conversation::new()
                    .input("printf first\n")
                    .accept(C1)
                    .expect(C1, Want::Line(b"printf first".to_vec()))
                    .send_frame(C1, answer(p, b"FIRST ANSWER\n"), FrameCut::Whole)
                    .expect_output("FIRST ANSWER")
                    .input("printf second\n")
                    .expect(C1, Want::Line(b"printf second".to_vec()))
                    .send_frame(C1, answer(p, b"SECOND ANSWER\n"), FrameCut::Whole)
                    .expect_output("SECOND ANSWER")
                    .end_input()
            }),
        )
    }
}

fn client_large() -> Check {
    Check {
        hint: Some(
            "loop until all N body bytes are in: one receive returns at most what the socket \
             holds, far less than a large answer",
        ),
        explain: Explain {
            why: "A body of megabytes is larger than BUF and than the client's socket buffer: it arrives over many receives, and only a loop that counts them gets it whole.",
            mistake: "body = s.recv(n)   # n is 1 MiB; recv returns what has arrived, perhaps 64 KiB",
            fix: "while len(body) < n: body += s.recv(min(BUF, n - len(body)))",
        },
        ..client(
            "cmd-len.client.large",
            Level::Must,
            "a body far larger than BUF and than its socket buffer is received whole",
            "an answer of half a MiB is printed whole, up to its last line",
            Body::Conversation(|p| {
                Conversation::new()
                    .input("printf large\n")
                    .accept(C1)
                    .expect(C1, Want::Line(b"printf large".to_vec()))
                    .send_frame(
                        C1,
                        described_answer(p, commands::large_answer_for_client(p)),
                        FrameCut::Whole,
                    )
                    .expect_output(commands::LARGE_ANSWER_END)
                    .end_input()
            }),
        )
    }
}

fn client_empty() -> Check {
    Check {
        hint: Some(
            "a prefix of 0 is a whole answer with no body: print nothing and go on to the \
             next command",
        ),
        explain: Explain {
            why: "A command that writes nothing gets a prefix of 0 and no body. A client that waits for at least one body byte waits forever.",
            mistake: "body = s.recv(n)   # recv(0) returns b'' at once, but a loop `while not body:` never ends",
            fix: "Loop while len(body) < n: for n = 0 the loop does not run.",
        },
        ..client(
            "cmd-len.client.empty",
            Level::Must,
            "a zero-length body is handled",
            "an answer with a prefix of 0 and no body, then a second answer: the client goes \
             on and prints the second",
            Body::Conversation(|p| {
                Conversation::new()
                    .input("true\n")
                    .accept(C1)
                    .expect(C1, Want::Line(b"true".to_vec()))
                    .send_frame(C1, answer(p, b""), FrameCut::Whole)
                    .input("printf after\n")
                    .expect(C1, Want::Line(b"printf after".to_vec()))
                    .send_frame(C1, answer(p, b"AFTER THE EMPTY ANSWER\n"), FrameCut::Whole)
                    .expect_output("AFTER THE EMPTY ANSWER")
                    .end_input()
            }),
        )
    }
}

/// Advice for a client that ended at the empty line.
const EMPTY_LINE_HINTS: &[Alternative] = &[Alternative {
    when: When::Exited,
    text: "the client ended ({exit}) at the empty line instead of going on to the next: \
           skip an empty line (continue), and stop only at the end of the input",
}];

fn client_empty_line() -> Check {
    Check {
        hint: Some(
            "skip a line that is empty once stripped: send(b\"\") sends nothing, and the \
             client then waits for an answer to a command the server never got",
        ),
        hints: EMPTY_LINE_HINTS,
        explain: Explain {
            why: "Sending zero bytes on TCP sends nothing: the server never sees a command, and the client waiting for its answer hangs.",
            mistake: "cmd = input('>>: ').strip()\ns.send(cmd.encode())   # b'' sends nothing\nn = struct.unpack('i', s.recv(4))[0]   # waits forever",
            fix: "if not cmd: continue",
        },
        ..client(
            "cmd-len.client.empty-line",
            Level::Must,
            "an empty line sends nothing and the client goes on to the next line",
            "an empty line is skipped: the next command arrives and its answer is printed",
            Body::Conversation(|p| {
                Conversation::new()
                    .input("\nprintf next\n")
                    .accept(C1)
                    .expect(C1, Want::Line(b"printf next".to_vec()))
                    .send_frame(C1, answer(p, b"ANSWER AFTER AN EMPTY LINE\n"), FrameCut::Whole)
                    .expect_output("ANSWER AFTER AN EMPTY LINE")
                    .end_input()
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                ("cmd-len.frame", Level::Must),
                ("cmd-len.sequence", Level::Must),
                ("cmd-len.large", Level::Must),
                ("cmd-len.stderr", Level::Must),
                ("cmd-len.bytes", Level::Must),
                ("cmd-len.disconnect", Level::Must),
                ("cmd-len.byte-order", Level::Must),
                ("cmd-len.client.split-prefix", Level::Must),
                ("cmd-len.client.merged", Level::Must),
                ("cmd-len.client.large", Level::Must),
                ("cmd-len.client.empty", Level::Must),
                ("cmd-len.client.empty-line", Level::Must),
            ]
        );
    }
}
