//! `tcp-upper`: uppercase echo over TCP.
//!
//! The server receives up to BUF bytes at a time and sends back each piece
//! with ASCII letters in upper case, until the client closes or resets; then
//! it serves the next client. The client sends each non-empty stripped line
//! of its input and prints the reply. Every check here reads as the sentence
//! of the protocol reference it tests.

use proptest::prelude::*;
use sockspec_engine::conversations::check::{Body, Case, Check, Explain, Generated, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::judge::expect::Want;
use sockspec_engine::model::cut::{Cut, Gap};
use sockspec_engine::model::hint::{Alternative, Language, When};
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{ParamSpec, Profile, Text};
use sockspec_engine::model::timing::Deadline;
use sockspec_engine::Transport;

use crate::checks::{client, server, upper, BUF};
use crate::checks::{BLANK, BLANK_SENT, BLANK_SKIPPED};

const C1: Conn = Conn(1);
const C2: Conn = Conn(2);

/// The client's quit line, `quit`.
pub const QUIT: Text = Text {
    key: "quit",
    meaning: "a line that makes the client stop, e.g. quit",
    default: "",
    shown_default: "end of input",
    refuse_empty: None,
};

/// What the parameters of `tcp-upper` say, typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// The most bytes the program asks for in one receive (`buf`).
    pub buf: usize,
    /// A line that ends the client instead of end of input (`quit`).
    pub quit: Option<String>,
}

impl Params {
    pub fn of(profile: &Profile) -> Params {
        let quit = profile.text(&QUIT);
        Params {
            buf: profile.number(&BUF),
            quit: (!quit.is_empty()).then(|| quit.to_string()),
        }
    }
}

/// Sends `msg` whole on `conn` and expects its `upper` back.
fn echo(c: Conversation, conn: Conn, msg: &[u8]) -> Conversation {
    c.send(conn, msg, Cut::Whole).expect_bytes(conn, upper(msg))
}

/// Sends `msg` whole on `conn` and expects any reply: the server still
/// serves. For checks whose subject is not the reply's bytes, so that a
/// wrong reply is the echo checks' to flag, not every check's.
fn served(c: Conversation, conn: Conn, msg: &[u8]) -> Conversation {
    c.send(conn, msg, Cut::Whole)
        .expect(conn, Want::Served(msg.to_vec()))
}

/// ASCII text of `len` bytes drawn from `seed`: letters of both cases,
/// digits, spaces and punctuation, so a wrong case or a lost byte shows.
pub fn text(len: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzABCXYZ0123456789 .,;:-_!?";
    let mut x = seed ^ 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize]
        })
        .collect()
}

pub fn suite() -> Suite {
    Suite {
        name: "tcp-upper",
        transport: Transport::Stream,
        summary: "uppercase echo over TCP",
        wire: Wire {
            server: "Bind (with `SO_REUSEADDR`), listen with a backlog, then forever: accept a \
                     connection; then loop: receive up to BUF bytes; on zero bytes or a reset, \
                     close the connection and go back to accept; otherwise send `upper` of what \
                     arrived, all of it. `upper(b)` is `b` with each ASCII letter `a`-`z` turned \
                     into `A`-`Z` and every other byte unchanged (Python's `bytes.upper()`). TCP \
                     is a byte stream: one send is not one receive, so pieces may arrive merged \
                     or split, and the answer may leave in any number of pieces. Serving one \
                     client at a time is enough; serving several at once is allowed.",
            client: "Connect; then for each line of standard input: drop its newline (stripping \
                     surrounding white space too is allowed); skip it if empty (sending nothing would leave the receive after it \
                     waiting forever); send its UTF-8 bytes, without the newline; receive up to \
                     BUF bytes and print them decoded. Stop at end of input, or at the quit line \
                     where the profile names one.",
        },
        // Whether the target survived an abusive check: any reply says so.
        sanity: |_| served(Conversation::new().connect(C1), C1, b"sanity check").close(C1),
        params: &[ParamSpec::Number(&BUF), ParamSpec::Text(&QUIT)],
        checks: vec![
            echo_check(),
            many_messages(),
            next_client(),
            no_spin(),
            reset(),
            half_close(),
            stream(),
            large(),
            binary(),
            backlog(),
            no_leak(),
            restart(),
            client_echo(),
            client_empty_line(),
            client_many_lines(),
            client_exit(),
            client_long_reply(),
        ],
    }
}

fn echo_check() -> Check {
    Check {
        explain: Explain {
            why: "The simplest exchange: if one message does not come back upper-cased, nothing else can work.",
            mistake: "data = conn.recv(BUF)\nconn.sendall(data)              # forgot .upper()",
            fix: "Send back data.upper(): the bytes of the request with a-z turned into A-Z.",
        },
        ..server(
            "tcp-upper.echo",
            Level::Must,
            "one message gets its upper back",
            "a message sent on a new connection comes back with its ASCII letters in upper case",
            Body::Conversation(|_| {
                echo(Conversation::new().connect(C1), C1, b"hello, world").close(C1)
            }),
        )
    }
}

fn many_messages() -> Check {
    Check {
        explain: Explain {
            why: "A client may send many lines over one connection; a server that answers once and closes forces it to reconnect for each.",
            mistake: "conn, addr = s.accept()\ndata = conn.recv(BUF)\nconn.sendall(data.upper())\nconn.close()                    # after one reply",
            fix: "Loop on recv until it returns zero bytes, answering each piece, and close only then.",
        },
        ..server(
            "tcp-upper.many-messages",
            Level::Must,
            "one connection carries many request/reply rounds",
            "the server keeps answering on the same connection until the client closes it",
            // Rounds, whatever each reply holds: the echo checks judge that.
            Body::Conversation(|_| {
                let mut c = Conversation::new().connect(C1);
                for i in 1..=10 {
                    c = served(c, C1, format!("message {i} of 10").as_bytes());
                }
                c.close(C1)
            }),
        )
    }
}

fn next_client() -> Check {
    Check {
        explain: Explain {
            why: "A server serves client after client; one that exits or stops accepting after the first is useless to the second.",
            mistake: "conn, addr = s.accept()        # no while True around it\nwhile True:\n    data = conn.recv(BUF)\n    ...",
            fix: "Put accept in a loop: when a client leaves, close its connection and accept the next.",
        },
        ..server(
            "tcp-upper.next-client",
            Level::Must,
            "after a client closes, the next connection is served",
            "when a client closes, the server goes back to accept and serves the next client",
            Body::Conversation(|_| {
                let c = served(Conversation::new().connect(C1), C1, b"first client").close(C1);
                served(c.connect(C2), C2, b"second client").close(C2)
            }),
        )
    }
}

fn no_spin() -> Check {
    Check {
        explain: Explain {
            why: "recv returning zero bytes means the client closed; every later recv returns zero at once, so a loop that ignores it burns a core forever.",
            mistake: "while True:\n    data = conn.recv(BUF)\n    conn.sendall(data.upper())  # b\"\" is sent back, and round it goes",
            fix: "Stop the receive loop when recv returns b\"\": if not data: break, then close the connection.",
        },
        hint: Some(
            "a receive loop must stop when recv returns zero bytes (the client closed); \
             one that goes on calling recv spins forever",
        ),
        ..server(
            "tcp-upper.no-spin",
            Level::Must,
            "after a client closes, the server's CPU use stays idle",
            "when recv returns zero bytes the server stops reading that connection; \
             waiting for the next client uses no CPU",
            Body::Conversation(|_| {
                served(Conversation::new().connect(C1), C1, b"spin check")
                    .shutdown_write(C1)
                    .wait_until(
                        C1,
                        Want::End,
                        Deadline::Eof,
                        "the server closed the connection after the half-close",
                    )
                    .close(C1)
                    .settle()
                    .expect_idle()
            }),
        )
    }
}

fn reset() -> Check {
    Check {
        explain: Explain {
            why: "A client that crashes or is killed often ends with a reset; recv and send then raise ConnectionResetError, which must end that connection, not the server.",
            mistake: "while True:\n    data = conn.recv(BUF)       # raises ConnectionResetError\n    if not data:\n        break",
            fix: "Wrap the connection loop in try/except (ConnectionResetError, BrokenPipeError) and go back to accept.",
        },
        abusive: true,
        hint: Some(
            "catch ConnectionResetError around recv and send: a reset ends that connection, \
             not the server",
        ),
        ..server(
            "tcp-upper.reset",
            Level::Must,
            "a client that aborts with a reset does not stop the server",
            "a reset (ConnectionResetError) ends that connection only; the next client is served",
            Body::Conversation(|_| {
                let c = served(Conversation::new().connect(C1), C1, b"about to reset")
                    .reset(C1)
                    .settle();
                served(c.connect(C2), C2, b"after the reset").close(C2)
            }),
        )
    }
}

fn half_close() -> Check {
    Check {
        explain: Explain {
            why: "A client that shuts down its sending side waits for the server to close; if the server never does, the client waits forever.",
            mistake: "pid = os.fork()\nif pid == 0:\n    serve(conn); os._exit(0)\n# the parent keeps conn open: the client never sees the end",
            fix: "Close the connection once recv returns zero bytes; in a forking server the parent closes its copy right after the fork.",
        },
        hint: Some(
            "close the connection once its receive returns zero bytes; a server that hands \
             connections to child processes must also close its own copy",
        ),
        hints: &[
            SENT_AFTER_CLOSE,
            Alternative {
                when: When::InDetail("; it spins (never asleep)"),
                text: "the process that holds the connection spins: see tcp-upper.no-spin; a \
                       receive loop that stops when recv returns zero bytes closes the \
                       connection, and the client sees the end",
            },
        ],
        ..server(
            "tcp-upper.half-close",
            Level::Must,
            "after the client shuts down its sending side, the server answers and closes",
            "what arrived before the half-close is answered, then the server closes: \
             the client reads end of stream",
            Body::Conversation(|_| {
                Conversation::new()
                    .connect(C1)
                    .send(C1, "last words", Cut::Whole)
                    .shutdown_write(C1)
                    .expect(C1, Want::Served(b"last words".to_vec()))
                    .expect_end(C1)
            }),
        )
    }
}

/// A server that closes a connection on an empty receive and then sends a
/// reply it still held for it: the close is there, the send after it is
/// the mistake (EBADF at a send, in its stderr).
const SENT_AFTER_CLOSE: Alternative = Alternative {
    when: When::Both(
        &When::OnStderr("Bad file descriptor"),
        &When::OnStderr("send"),
    ),
    text: "the server sent on a socket it had already closed: it closed the connection when \
           its receive returned zero bytes, then sent the reply it still held for it, and the \
           send failed with \"Bad file descriptor\" (EBADF, in its stderr); send what is \
           pending before closing, and drop a closed socket from every list it is in (the \
           sockets to write to, the replies waiting)",
};

fn stream() -> Check {
    Check {
        explain: Explain {
            why: "TCP is a byte stream: one send is not one recv. Pieces may arrive split or merged, and every byte must still be answered, in order.",
            mistake: "data = conn.recv(BUF)\nif len(data) < 10:              # expects whole messages\n    continue",
            fix: "Treat whatever recv returns as the next bytes of the stream and answer it; make no assumption about piece sizes.",
        },
        hint: Some(
            "TCP is a byte stream: answer every piece recv returns, whatever its size, and \
             keep receiving until the client closes",
        ),
        ..server(
            "tcp-upper.stream",
            Level::Must,
            "bytes sent in any cut come back as upper of all of them, in order",
            "however the bytes are cut on the wire (one at a time, merged, random pieces), \
             the replies together are upper of everything sent, in order",
            Body::Generated(Generated {
                setup: stream_setup,
                fixed: stream_fixed,
                cases: 16,
                message: |_| {
                    (1usize..=3000, any::<u64>())
                        .prop_map(|(len, seed)| text(len, seed))
                        .boxed()
                },
                cut: |_| Cut::arbitrary(6, 1500),
                case: stream_case,
            }),
        )
    }
}

fn large() -> Check {
    Check {
        explain: Explain {
            why: "A message longer than BUF arrives over several receives; a server that reads once answers only the start of it.",
            mistake: "data = conn.recv(BUF)           # only the first BUF bytes\nconn.sendall(data.upper())\nconn.close()",
            fix: "Keep receiving and answering until the client closes: each recv returns at most BUF bytes.",
        },
        abusive: true,
        hint: Some(
            "keep receiving and answering until the client closes: one recv is at most BUF bytes",
        ),
        ..server(
            "tcp-upper.large",
            Level::Must,
            "a message many times BUF comes back whole",
            "a message of 100 x BUF bytes is answered in full: the server keeps \
             receiving and answering until it has seen all of it",
            // A first exchange shows the server answers at all, as the
            // stream check's does; the long message's reply is then judged
            // alone.
            Body::Conversation(|p: &Profile| {
                let c = served(Conversation::new().connect(C1), C1, b"ready?");
                echo(c, C1, &text(100 * Params::of(p).buf, 7)).close(C1)
            }),
        )
    }
}

fn binary() -> Check {
    Check {
        explain: Explain {
            why: "Clients may send any bytes; a server that decodes them as UTF-8 crashes on the first byte that is not valid UTF-8.",
            mistake: "text = conn.recv(BUF).decode()  # UnicodeDecodeError on b\"\\xff\"\nconn.sendall(text.upper().encode())",
            fix: "Work on bytes: bytes.upper() changes only a-z, needs no decode, and leaves other bytes as they were.",
        },
        abusive: true,
        hint: Some(
            "work on bytes: bytes.upper() needs no decode, and invalid UTF-8 makes decode() raise",
        ),
        hints: &[
            Alternative {
                when: When::Language(Language::Node),
                text: "keep the data a Buffer: socket.setEncoding('utf8') or data.toString() \
                       turns each invalid byte into U+FFFD (ef bf bd); change only the bytes \
                       0x61-0x7a to 0x41-0x5a in the Buffer and write it back",
            },
            Alternative {
                when: When::Language(Language::Java),
                text: "keep the byte[] that read() filled: new String(bytes) or a Reader turns \
                       each invalid byte into U+FFFD (ef bf bd); change only 'a'-'z' to 'A'-'Z' \
                       in the array and write back the count read() returned",
            },
            Alternative {
                when: When::Language(Language::Compiled),
                text: "send the count recv() returned, not strlen(): the message may hold a 0 \
                       byte; change only 'a'-'z' (toupper() on a negative char is undefined)",
            },
        ],
        ..server(
            "tcp-upper.binary",
            Level::Must,
            "bytes that are not UTF-8 do not crash the server (SHOULD: they come back unchanged)",
            "the server works on bytes: invalid UTF-8 does not stop it, and bytes that \
             are not ASCII letters come back as they were",
            Body::Conversation(|_| {
                // No ASCII letters: what comes back unchanged is then the
                // bytes' business alone, not the letters' case (the echo
                // checks' business).
                let bytes: &[u8] = b"\xff\xfe 0\x80-1 \xc3\x28 \xe9\x00 2";
                // The same connection goes on: a server that crashed on the
                // bytes cannot answer, one that replaced them still does,
                // whatever its answer holds.
                let c = served(Conversation::new().connect(C1), C1, b"ready?")
                    .send(C1, bytes, Cut::Whole)
                    .expect_at(C1, Want::Bytes(upper(bytes)), Level::Should);
                served(c, C1, b"still there?").close(C1)
            }),
        )
    }
}

fn backlog() -> Check {
    Check {
        explain: Explain {
            why: "A second client may connect while the first is served; it waits in the listen backlog and must be served when the first leaves.",
            mistake: "s.listen(0)                     # or: accept only once\nconn, addr = s.accept()",
            fix: "listen with a backlog (listen(5)) and go back to accept after each client; or serve clients in threads.",
        },
        ..server(
            "tcp-upper.backlog",
            Level::Should,
            "a second client that connects while the first is open is served once the first closes",
            "a client waiting in the listen backlog is served when the first client leaves \
             (serving both at once is also fine)",
            Body::Conversation(|_| {
                served(Conversation::new().connect(C1), C1, b"first in line")
                    .connect(C2)
                    .send(C2, "waiting in the backlog", Cut::Whole)
                    .observe(
                        C2,
                        Want::Served(b"waiting in the backlog".to_vec()),
                        Deadline::Concurrent,
                        "the second client was served while the first was still connected",
                    )
                    .close(C1)
                    .expect(C2, Want::Served(b"waiting in the backlog".to_vec()))
                    .close(C2)
            }),
        )
    }
}

fn no_leak() -> Check {
    Check {
        explain: Explain {
            why: "Each accepted connection is a descriptor; a server that never closes them runs out after a few hundred clients.",
            mistake: "while True:\n    conn, addr = s.accept()\n    handle(conn)                # returns without conn.close()",
            fix: "Close each accepted connection when its client leaves (conn.close(), or with conn: ...).",
        },
        hint: Some("close each accepted connection when its client leaves"),
        hints: &[Alternative {
            when: When::InDetail("they spin (never asleep"),
            text: "the child processes never exit because they spin: see tcp-upper.no-spin; \
                   a child that stops its receive loop when recv returns zero bytes closes \
                   its connection and exits, and leaves nothing open",
        }],
        ..server(
            "tcp-upper.no-leak",
            Level::Should,
            "after many sequential connections its open descriptors are back where they started",
            "each accepted connection is closed when its client leaves, so descriptors do not pile up",
            Body::Conversation(|_| {
                let round = served(Conversation::new().connect(C1), C1, b"leak check").close(C1);
                served(Conversation::new().connect(C1), C1, b"warm up")
                    .close(C1)
                    .settle()
                    .count_descriptors()
                    .repeat(30, round)
                    .settle()
                    .expect_descriptors_back(2)
            }),
        )
    }
}

fn restart() -> Check {
    Check {
        explain: Explain {
            why: "A server killed while a client is connected leaves its port in TIME_WAIT for about a minute; without SO_REUSEADDR it cannot restart until then.",
            mistake: "s = socket.socket()\ns.bind((\"\", PORT))              # no SO_REUSEADDR\ns.listen(5)",
            fix: "Call s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1) before bind.",
        },
        hint: Some("set SO_REUSEADDR on the listening socket before bind()"),
        ..server(
            "tcp-upper.restart",
            Level::Should,
            "killed with a connection open, it restarts on the same port at once",
            "the server sets SO_REUSEADDR before bind, so a new instance binds the port \
             while the old connection sits in TIME_WAIT",
            // The server must be killed before the harness closes its
            // socket: only then does TIME_WAIT land on the server's port.
            Body::Conversation(|_| {
                let c = served(Conversation::new().connect(C1), C1, b"before the crash")
                    .kill_target()
                    .close(C1)
                    .restart_target();
                served(c.connect(C2), C2, b"after the restart").close(C2)
            }),
        )
    }
}

fn client_echo() -> Check {
    Check {
        explain: Explain {
            why: "The server sees exactly the bytes the client sends; a trailing newline becomes part of the message.",
            mistake: "line = input()\ns.sendall((line + \"\\n\").encode())",
            fix: "Strip the line and send its bytes only: s.sendall(line.strip().encode()).",
        },
        ..client(
            "tcp-upper.client.echo",
            Level::Must,
            "a typed line arrives as its bytes without the newline; the reply is printed",
            "the client sends the stripped line's bytes, nothing more, and prints the reply",
            Body::Conversation(|_| {
                Conversation::new()
                    .input("hello world\n")
                    .accept(C1)
                    .expect(C1, Want::Message(b"hello world".to_vec()))
                    .send(C1, "HELLO WORLD", Cut::Whole)
                    .expect_output("HELLO WORLD")
                    .end_input()
            }),
        )
    }
}

fn client_empty_line() -> Check {
    Check {
        explain: Explain {
            why: "Sending zero bytes on TCP sends nothing, so the reply the client then waits for never comes. A line of spaces is not empty: a client that strips only the newline sends it and gets its echo, one that strips all white space skips it; both go on.",
            mistake: "for line in sys.stdin:\n    s.sendall(line.strip().encode())   # b\"\" for an empty line\n    print(s.recv(BUF).decode())        # waits forever",
            fix: "Skip a line that is empty once stripped: if not line: continue.",
        },
        hint: Some("skip a line that is empty once stripped: send(b\"\") sends nothing, and the recv after it waits forever"),
        hints: &[
            CLIENT_CLOSED_ITSELF,
            CLIENT_CLOSED_ITSELF_JAVA,
            Alternative {
                when: When::Exited,
                text: "the client ended ({exit}) at the empty line instead of going on to the \
                       next: skip an empty line (continue), and stop only at the end of the \
                       input",
            },
        ],
        ..client(
            "tcp-upper.client.empty-line",
            Level::Must,
            "an empty line sends nothing and the client goes on to the next line",
            "an empty line is skipped: sending zero bytes sends nothing, and waiting for a \
             reply to it would hang; a blank line (spaces only) may be sent, and is then \
             answered, or skipped",
            Body::Conversation(|_| {
                Conversation::new()
                    .input(&format!("first\n\n{BLANK}\nsecond\n"))
                    .accept(C1)
                    .expect(C1, Want::Line(b"first".to_vec()))
                    .send(C1, "FIRST", Cut::Whole)
                    .if_next(
                        C1,
                        BLANK,
                        Conversation::new().send(C1, upper(BLANK.as_bytes()), Cut::Whole),
                        BLANK_SENT,
                        BLANK_SKIPPED,
                    )
                    .expect(C1, Want::Line(b"second".to_vec()))
                    .send(C1, "SECOND", Cut::Whole)
                    .expect_output("SECOND")
                    .end_input()
            }),
        )
    }
}

/// A client whose later sends fail because it closed its own socket
/// (`close()` inside its loop): reconnecting or empty lines are not it.
const CLIENT_CLOSED_ITSELF: Alternative = Alternative {
    when: When::OnStderr("Bad file descriptor"),
    text: "the client closed the connection itself after the first reply: its next send \
           failed with \"Bad file descriptor\" (EBADF, in its stderr); close the socket once, \
           after the loop",
};

/// The same in Java's words.
const CLIENT_CLOSED_ITSELF_JAVA: Alternative = Alternative {
    when: When::OnStderr("SocketException: Socket is closed"),
    text: "the client closed the connection itself after the first reply: its next write \
           failed with \"Socket is closed\" (in its stderr); close the socket once, after \
           the loop",
};

fn client_many_lines() -> Check {
    Check {
        hints: &[CLIENT_CLOSED_ITSELF, CLIENT_CLOSED_ITSELF_JAVA],
        explain: Explain {
            why: "One connection carries the whole conversation; reconnecting per line wastes a handshake each time and loses the server state.",
            mistake: "for line in sys.stdin:\n    s = socket.create_connection((HOST, PORT))\n    s.sendall(line.strip().encode())",
            fix: "Connect once before the loop and send every line over that connection.",
        },
        ..client(
            "tcp-upper.client.many-lines",
            Level::Must,
            "many lines travel over the one connection",
            "the client connects once and sends every line over that connection",
            Body::Conversation(|_| {
                let lines = ["one", "two", "three", "four", "five"];
                let mut c = Conversation::new()
                    .input(&(lines.join("\n") + "\n"))
                    .accept(C1);
                for line in lines {
                    let reply = line.to_uppercase();
                    c = c
                        .expect(C1, Want::Line(line.as_bytes().to_vec()))
                        .send(C1, reply.as_bytes(), Cut::Whole)
                        .expect_output(&reply);
                }
                c.expect_no_connection(Deadline::Concurrent, Level::Must)
                    .end_input()
            }),
        )
    }
}

fn client_exit() -> Check {
    Check {
        explain: Explain {
            why: "At end of input the client should close its socket and exit with status 0; a traceback tells the user something broke.",
            mistake: "while True:\n    line = input()              # EOFError at end of input",
            fix: "Loop over sys.stdin (it ends cleanly), or catch EOFError, then close the socket.",
        },
        ..client(
            "tcp-upper.client.exit",
            Level::Should,
            "end of input (or the quit line) ends the client with status 0, not a traceback",
            "when its input ends (or the profile's quit line is typed) the client closes \
             its socket and exits with status 0",
            Body::Conversation(|p: &Profile| {
                let c = Conversation::new()
                    .input("bye\n")
                    .accept(C1)
                    .expect(C1, Want::Line(b"bye".to_vec()))
                    .send(C1, "BYE", Cut::Whole)
                    .expect_output("BYE");
                let c = match Params::of(p).quit {
                    Some(q) => c.input(&format!("{q}\n")),
                    None => c.end_input(),
                };
                // A Python client can exit 0 and still have printed a
                // traceback (from a thread, or an exception it caught late).
                c.expect_clean_exit(Level::Must, Some("Traceback"))
            }),
        )
    }
}

fn client_long_reply() -> Check {
    Check {
        explain: Explain {
            why: "TCP is a byte stream: a reply longer than BUF arrives over several receives. A client that does one recv per line prints the first BUF bytes, and the rest waits in the socket until the next line's recv returns it as that line's answer: every answer after it is one behind.",
            mistake: "s.sendall(line.encode())\nprint(s.recv(1024).decode())    # a reply over 1024 bytes is cut",
            fix: "Receive until you have as many bytes as you sent (the echo is as long as the request); a protocol with a length prefix (cmd-len) says how many to expect.",
        },
        ..client(
            "tcp-upper.client.long-reply",
            Level::Info,
            "whether a reply longer than BUF is printed whole",
            "a line longer than BUF is typed and its reply sent whole, then a short line: \
             the observation says whether the long reply was printed whole, or cut with \
             the rest stuck to the next reply, and the bytes that were",
            Body::Conversation(|p: &Profile| {
                let line = long_line(Params::of(p).buf);
                Conversation::new()
                    .input(&format!("{line}\n{AFTER_LONG}\n"))
                    .accept(C1)
                    .expect(C1, Want::Line(line.as_bytes().to_vec()))
                    .send(C1, upper(line.as_bytes()), Cut::Whole)
                    .expect(C1, Want::Line(AFTER_LONG.as_bytes().to_vec()))
                    .send(C1, upper(AFTER_LONG.as_bytes()), Cut::Whole)
                    .end_input()
                    .observe_printed_whole(
                        upper(line.as_bytes()),
                        &AFTER_LONG.to_ascii_uppercase(),
                    )
            }),
        )
    }
}

/// The line typed after the long one in the long-reply check.
const AFTER_LONG: &str = "after the long one";

/// A line half as long again as BUF, with no white space at its ends (a
/// client strips them) and no newline inside.
fn long_line(buf: usize) -> String {
    let inner = String::from_utf8_lossy(&text(buf + buf / 2, 11)).into_owned();
    format!("<{}>", inner.trim())
}

/// Opens the connection the stream cases share, and shows with a completed
/// request and reply that the server answers at all before any cut.
fn stream_setup(_: &Profile) -> Conversation {
    served(Conversation::new().connect(C1), C1, b"ready?")
}

fn stream_fixed(p: &Profile) -> Vec<Case> {
    let merged = |parts: &[Vec<u8>]| {
        (
            parts.concat(),
            Cut::Merged(parts.iter().map(Vec::len).collect()),
        )
    };
    let buf = Params::of(p).buf;
    let long: Vec<Vec<u8>> = (0..3).map(|i| text(buf, 100 + i)).collect();
    vec![
        (b"one byte at a time".to_vec(), Cut::Bytewise(Gap::Read)),
        merged(&[b"first".to_vec(), b"second".to_vec(), b"third".to_vec()]),
        (
            b"a prefix split 1 then 3, then the rest".to_vec(),
            Cut::pieces(&[1, 3]),
        ),
        merged(&long),
    ]
}

fn stream_case(_: &Profile, message: &[u8], cut: &Cut) -> Conversation {
    Conversation::new()
        .send(C1, message, cut.clone())
        .expect_bytes(C1, upper(message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sockspec_engine::conversations::check::Role;

    #[test]
    fn upper_changes_ascii_letters_only() {
        assert_eq!(upper(b"abc\xff\xe9z 1"), b"ABC\xff\xe9Z 1");
    }

    #[test]
    fn text_is_ascii_and_repeats_for_a_seed() {
        assert_eq!(text(50, 3), text(50, 3));
        assert_ne!(text(50, 3), text(50, 4));
        assert!(text(500, 1).iter().all(u8::is_ascii));
        assert!(text(500, 1).iter().any(u8::is_ascii_lowercase));
    }

    #[test]
    fn only_the_checks_that_watch_or_end_the_server_need_its_process() {
        let needing: Vec<&str> = suite()
            .checks
            .iter()
            .filter(|c| c.role == Role::Server && c.needs_process())
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(
            needing,
            [
                "tcp-upper.no-spin",
                "tcp-upper.no-leak",
                "tcp-upper.restart"
            ]
        );
    }

    fn params(assignments: &[&str]) -> Params {
        Params::of(&Profile::of(assignments, suite().params).unwrap())
    }

    #[test]
    fn by_default_buf_is_1024_and_the_client_stops_at_end_of_input() {
        assert_eq!(
            params(&[]),
            Params {
                buf: 1024,
                quit: None
            }
        );
    }

    #[test]
    fn buf_and_quit_are_read_as_given() {
        assert_eq!(
            params(&["buf=2048", "quit=bye"]),
            Params {
                buf: 2048,
                quit: Some("bye".into())
            }
        );
    }

    #[test]
    fn an_empty_quit_line_is_none() {
        assert_eq!(params(&["quit="]).quit, None);
    }

    #[test]
    fn the_parameters_are_listed_with_their_values_and_defaults() {
        let shown: Vec<String> = suite().params.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "buf: most bytes the program asks for in one receive (1 to 65536; default 1024)",
                "quit: a line that makes the client stop, e.g. quit (text; default end of input)",
            ]
        );
    }

    #[test]
    fn stream_fixed_cuts_include_a_merge_longer_than_buf() {
        let p = Profile::default();
        let long_merge = stream_fixed(&p)
            .iter()
            .any(|(message, cut)| matches!(cut, Cut::Merged(_)) && message.len() > BUF.default);
        assert!(long_merge);
    }
}
