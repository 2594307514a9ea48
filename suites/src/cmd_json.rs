//! `cmd-json`: remote commands over TCP, each answer a length prefix, a
//! JSON header of that many bytes holding the body's size (and the time
//! the command ran), and the body: the command's stdout, then its stderr.
//!
//! Assignments name the size field differently (`data_size`,
//! `total_size`, `file_size`...): it is the `size_key` parameter, and a
//! header that lacks it but holds one integer equal to the body's length is
//! told which `--param size_key=` fits. The checks send a command whose
//! output is not ASCII, so a server whose header length counts characters
//! (a header echoing the command, written with `ensure_ascii=False`) is
//! caught.

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
    self, ask, json_frame, prefix, tolerant_json_frame, HELLO, LARGE_SIZE, PREFIX, SIZE_KEY,
    UNICODE,
};

const C1: Conn = Conn(1);

pub fn suite() -> Suite {
    Suite {
        name: "cmd-json",
        transport: Transport::Stream,
        summary: "remote commands over TCP: each answer a prefix, a JSON header with its size, then the output",
        wire: Wire {
            server: "Listen on TCP; for each receive of up to BUF bytes, run it as a command \
                     through the shell and answer prefix(H), H bytes of a UTF-8 JSON object \
                     holding the body's length (\"size\", see --param size_key) and the time, \
                     then the body: the command's stdout, then its stderr. H counts the \
                     header's bytes, not its characters.",
            client: "For each line of standard input: send it as the command; read the prefix \
                     and then exactly H header bytes (looping), parse the header, print its \
                     time, then read exactly `size` body bytes and print them.",
        },
        sanity: |p| {
            Conversation::new()
                .connect(C1)
                .send(C1, "printf sanity", Cut::Whole)
                .expect_frame(C1, tolerant_json_frame(p, BodySpec::Literal(b"sanity".to_vec())))
                .close(C1)
        },
        params: &[
            ParamSpec::Choice(&PREFIX),
            ParamSpec::Text(&SIZE_KEY),
            ParamSpec::Number(&BUF),
            ParamSpec::Number(&LARGE_SIZE),
        ],
        checks: vec![
            header(),
            time(),
            sequence(),
            large(),
            stderr(),
            bytes(),
            disconnect(),
            client_split_header(),
            client_merged(),
            client_extra_fields(),
            client_large(),
        ],
    }
}

const HEADER_HINTS: &[Alternative] = &[
    Alternative {
        when: When::InDetail("only the others differ"),
        text: "the answer is framed rightly, for another command: the command's non-ASCII \
               text changed before it reached the shell, as when the server decodes the \
               command's bytes in an encoding other than the client's (data.decode(\"gbk\") of \
               UTF-8 bytes, as written for a Chinese Windows); decode them as UTF-8, or give \
               Popen the bytes as they came",
    },
    Alternative {
        when: When::InDetail("its bytes are not UTF-8"),
        text: "encode the header as UTF-8: json.dumps(header).encode(\"utf-8\") (a header \
               encoded with .encode(\"gbk\") is not UTF-8 once it holds non-ASCII text, as \
               with ensure_ascii=False); send the length of those bytes",
    },
    commands::DIED_WRITING_TO_CLOSED,
];

fn header() -> Check {
    Check {
        hints: HEADER_HINTS,
        hint: Some(
            "encode the header first and send the length of its bytes: \
             header_bytes = json.dumps(header).encode(); struct.pack(\"i\", len(header_bytes)); \
             the size is an integer under the key the client reads",
        ),
        explain: Explain {
            why: "The client reads exactly H header bytes and parses them, then reads `size` body bytes. A length counted in characters is short of the bytes once the header holds non-ASCII text; a size under another key, or as a string, leaves the client without a length.",
            mistake: "header = json.dumps({'data_size': n, 'cmd': cmd}, ensure_ascii=False)\nconn.send(struct.pack('i', len(header)))   # characters, not bytes",
            fix: "header_bytes = json.dumps({'size': n, 'time': now}).encode('utf-8'); conn.sendall(struct.pack('i', len(header_bytes)) + header_bytes + body)",
        },
        ..server(
            "cmd-json.header",
            Level::Must,
            "the prefix counts the header's bytes; the header is a JSON object with integer size equal to the body length",
            "a command whose output is not ASCII and a plain one each get prefix(H), H bytes \
             of a JSON object with an integer size (under size_key) equal to the body's \
             length, and the body",
            Body::Conversation(|p| {
                let c = ask(Conversation::new().connect(C1), p, json_frame, C1, &UNICODE);
                ask(c, p, json_frame, C1, &HELLO).close(C1)
            }),
        )
    }
}

fn time() -> Check {
    Check {
        hint: Some(
            "put the time the command ran in the header: \
             datetime.datetime.now().strftime(\"%Y-%m-%d %H:%M:%S.%f\")",
        ),
        explain: Explain {
            why: "The protocol's header says when the command ran, so a client can show it; a time fixed in the code, or another field's value, says nothing.",
            mistake: "header = {'size': n, 'time': '2018-12-26 10:20:30'}   # copied from the example",
            fix: "header = {'size': n, 'time': datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S.%f')}",
        },
        ..server(
            "cmd-json.time",
            Level::Should,
            "time is present and parses as a date-time within a few minutes of the harness clock",
            "the header of an answer holds time, a date-time such as \
             \"2018-12-26 10:20:30.123456\" within five minutes of the harness's clock, in \
             local time or UTC",
            Body::Conversation(|p| {
                ask(Conversation::new().connect(C1), p, tolerant_json_frame, C1, &HELLO)
                    .expect_header_time(C1, Level::Should)
                    .close(C1)
            }),
        )
    }
}

fn sequence() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some("send each answer whole (prefix, header, body) before reading the next command"),
        explain: Explain {
            why: "Many commands share one connection: each answer must be self-contained, so the client can find where one ends and the next begins.",
            mistake: "conn.send(head)\nconn.send(out[:1024])    # the rest is sent with the next answer",
            fix: "conn.sendall(prefix + header + body) for every command.",
        },
        ..server(
            "cmd-json.sequence",
            Level::Must,
            "many commands on one connection each get a self-contained answer",
            "four commands sent one after the other on one connection each get their own \
             framed answer: nothing of one answer inside another",
            Body::Conversation(|p| commands::server::sequence(p, tolerant_json_frame)),
        )
    }
}

const LARGE_HINTS: &[Alternative] = &[
    Alternative {
        when: When::InDetail("where the body has"),
        text: "the header's size is not the length of the answer: it counts stdout and stderr \
               together, as the body carries both (cmd-json.header says more)",
    },
    commands::DIED_WRITING_TO_CLOSED,
];

fn large() -> Check {
    Check {
        hints: LARGE_HINTS,
        hint: Some(
            "read the command's stdout and stderr at the same time (communicate()), then send \
             everything (sendall, not one send)",
        ),
        explain: Explain {
            why: "An output of several MiB fills the 64 KiB pipe between the command and the server, and the socket's buffers: both must be drained as the data comes, and every byte sent.",
            mistake: "err = res.stderr.read()    # stdout fills its pipe; the command never ends\nout = res.stdout.read()",
            fix: "out, err = res.communicate(); conn.sendall(head + out + err)",
        },
        ..server(
            "cmd-json.large",
            Level::Must,
            "an output of several MiB is framed and sent whole",
            "a command writing 4 MiB to stdout, then one writing 4 MiB to stderr, each get a \
             header with size 4194304 and every byte of its output",
            Body::Conversation(|p| commands::server::large(p, tolerant_json_frame)),
        )
    }
}

fn stderr() -> Check {
    Check {
        hints: commands::CLOSED_HINTS,
        hint: Some(
            "the body is the command's output as it is: its error text when it fails, and \
             nothing at all (size 0) when it writes nothing",
        ),
        explain: Explain {
            why: "A failing command's error text is its answer; a command that writes nothing has an empty answer, announced with a size of 0, not made-up text.",
            mistake: "body = stdout or '执行成功'.encode('gbk')   # a placeholder for no output",
            fix: "body = stdout + stderr, even when empty.",
        },
        ..server(
            "cmd-json.stderr",
            Level::Must,
            "a failing command's error text is in the body; a command with no output gets size 0",
            "a failing command writing only to stderr gets its error text as the body; a \
             command writing nothing gets a header with size 0 and no body; for a command \
             writing to both, the order found is observed: stdout then stderr, the reverse, or \
             stderr alone",
            Body::Conversation(|p| commands::server::stderr(p, tolerant_json_frame)),
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
            mistake: "body = stdout.decode('utf-8', errors='replace').encode()",
            fix: "Keep stdout and stderr as bytes from subprocess to sendall.",
        },
        ..server(
            "cmd-json.bytes",
            Level::Must,
            "output bytes that are not UTF-8 arrive unchanged",
            "a command writing the bytes ff fe 80 gets them back unchanged, with a size that \
             counts them",
            Body::Conversation(|p| commands::server::bytes(p, tolerant_json_frame)),
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
            why: "Clients go away while their answer is being written. The server must go on serving the next one.",
            mistake: "except ConnectionResetError:   # Linux raises BrokenPipeError on a closed peer\n    break",
            fix: "except (ConnectionResetError, BrokenPipeError): break — then conn.close() and back to accept().",
        },
        ..server(
            "cmd-json.disconnect",
            Level::Must,
            "a client that closes or resets in the middle of an answer does not stop the server",
            "one client closes right after asking for an output that comes late, another \
             closes its side right after asking for a large output and a third resets its \
             connection in the middle of one; the next client is served",
            Body::Conversation(|p| commands::server::disconnect(p, tolerant_json_frame)),
        )
    }
}

/// The answer the harness sends a client: a JSON-header frame of `body`.
fn answer(p: &Profile, body: &[u8]) -> FrameOut {
    described_answer(p, BodySpec::Literal(body.to_vec()))
}

/// [`answer`] of a body described rather than held.
fn described_answer(p: &Profile, body: BodySpec) -> FrameOut {
    FrameOut::json(prefix(p), p.text(&SIZE_KEY), body).field("time", "2026-01-02 03:04:05.678901")
}

/// Sends `command` as typed and answers it with `answer`, cut as `cut`.
fn exchange(c: Conversation, command: &str, answer: FrameOut, cut: FrameCut) -> Conversation {
    c.input(&format!("{command}\n"))
        .expect(C1, Want::Line(command.as_bytes().to_vec()))
        .send_frame(C1, answer, cut)
}

/// Advice for a client that parsed part of a header.
const SPLIT_HEADER_HINTS: &[Alternative] = &[Alternative {
    when: When::OnStderr("JSONDecodeError"),
    text: "the client parsed the header from a single receive that got only part of it \
           (JSONDecodeError in its stderr): loop until all H header bytes are in",
}];

fn client_split_header() -> Check {
    Check {
        hint: Some(
            "read the prefix and then the header in loops until all of their bytes are in: \
             one recv(H) may return 1 byte",
        ),
        hints: SPLIT_HEADER_HINTS,
        explain: Explain {
            why: "TCP is a stream: the prefix and the header may arrive in any number of pieces, and one receive returns what has arrived.",
            mistake: "h = struct.unpack('i', s.recv(4))[0]\nheader = json.loads(s.recv(h))   # recv(h) may return part of it",
            fix: "Read exactly 4, then exactly h bytes (a recv_exactly loop), then json.loads.",
        },
        ..client(
            "cmd-json.client.split-header",
            Level::Must,
            "prefix and header arriving byte by byte give exactly the body",
            "after a plain answer, answers cut in generated pieces, one of them ending inside \
             the prefix and one inside the header, each sent once the client has read the one \
             before: the client prints each body; a cut that fails is shrunk to the smallest \
             that still does",
            Body::Generated(Generated {
                setup: |_| Conversation::new().accept(C1),
                fixed: |_| vec![(commands::cut_answer(0), Cut::Whole)],
                cases: 16,
                message: |_| commands::cut_answers(),
                cut: |p| {
                    let frame = answer(p, &commands::cut_answer(0));
                    let total = usize::try_from(frame.total_len()).unwrap_or(usize::MAX);
                    Cut::splitting(&frame.parts(), total, 3)
                },
                case: |p, body, cut| {
                    exchange(
                        Conversation::new(),
                        commands::CUT_COMMAND,
                        answer(p, body),
                        FrameCut::Schedule(cut.clone()),
                    )
                    .expect_output(&commands::printed(body))
                },
            }),
        )
    }
}

fn client_merged() -> Check {
    Check {
        hint: Some(
            "read exactly the prefix's bytes, then exactly H header bytes, then exactly size \
             body bytes: what arrives with them belongs to the answer",
        ),
        explain: Explain {
            why: "Prefix, header and body often arrive in one piece. A client that reads more than it needs at any stage takes bytes of the next part for this one.",
            mistake: "data = s.recv(1024)\nh = struct.unpack('i', data[:4])[0]\nheader = json.loads(s.recv(h))   # the header already came with the prefix",
            fix: "Read 4 bytes exactly, then h bytes exactly, then size bytes exactly.",
        },
        ..client(
            "cmd-json.client.merged",
            Level::Must,
            "prefix, header and body in one piece give exactly the body",
            "two answers, each prefix, header and body in one write, are printed each in \
             full and in order",
            Body::Conversation(|p| {
                let c = Conversation::new().accept(C1);
                let c = exchange(c, "printf first", answer(p, b"FIRST ANSWER\n"), FrameCut::Whole)
                    .expect_output("FIRST ANSWER");
                exchange(c, "printf second", answer(p, b"SECOND ANSWER\n"), FrameCut::Whole)
                    .expect_output("SECOND ANSWER")
                    .end_input()
            }),
        )
    }
}

fn client_extra_fields() -> Check {
    Check {
        hint: Some("read the fields the protocol names and ignore any other"),
        explain: Explain {
            why: "Servers add fields to the header (a file name, a checksum). A client that expects exactly the fields it knows breaks on the first server that adds one.",
            mistake: "size, time = header.values()   # breaks on a third field",
            fix: "size = header['size']; time = header.get('time')",
        },
        ..client(
            "cmd-json.client.extra-fields",
            Level::Must,
            "unknown header fields are ignored",
            "an answer whose header holds fields the protocol does not name (a file name, a \
             checksum) is printed as any other",
            Body::Conversation(|p| {
                let c = Conversation::new().accept(C1);
                let extra = answer(p, b"ANSWER WITH MORE FIELDS\n")
                    .field("filename", "result.txt")
                    .field("md5", 123_456);
                exchange(c, "printf extra", extra, FrameCut::Whole)
                    .expect_output("ANSWER WITH MORE FIELDS")
                    .end_input()
            }),
        )
    }
}

fn client_large() -> Check {
    Check {
        hint: Some(
            "loop until all size body bytes are in: one receive returns at most what the \
             socket holds, far less than a large answer",
        ),
        explain: Explain {
            why: "A body of megabytes arrives over many receives; only a loop that counts them gets it whole.",
            mistake: "body = s.recv(header['size'])   # returns what has arrived, perhaps 64 KiB",
            fix: "while len(body) < size: body += s.recv(min(BUF, size - len(body)))",
        },
        ..client(
            "cmd-json.client.large",
            Level::Must,
            "a body far larger than BUF and than its socket buffer is received whole",
            "an answer of half a MiB is printed whole, up to its last line",
            Body::Conversation(|p| {
                let c = Conversation::new().accept(C1);
                exchange(
                    c,
                    "printf large",
                    described_answer(p, commands::large_answer_for_client(p)),
                    FrameCut::Whole,
                )
                .expect_output(commands::LARGE_ANSWER_END)
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
                ("cmd-json.header", Level::Must),
                ("cmd-json.time", Level::Should),
                ("cmd-json.sequence", Level::Must),
                ("cmd-json.large", Level::Must),
                ("cmd-json.stderr", Level::Must),
                ("cmd-json.bytes", Level::Must),
                ("cmd-json.disconnect", Level::Must),
                ("cmd-json.client.split-header", Level::Must),
                ("cmd-json.client.merged", Level::Must),
                ("cmd-json.client.extra-fields", Level::Must),
                ("cmd-json.client.large", Level::Must),
            ]
        );
    }
}
