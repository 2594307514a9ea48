//! `cmd-raw`: remote commands over TCP with no framing, the flawed
//! original. The answer is the command's stderr, then its stdout, as they
//! are, and nothing says where it ends: a client that receives up to BUF
//! bytes per command reads the rest of a long answer as the start of the
//! next. The suite shows the flaw (INFO) rather than failing on it; the
//! framed protocols (`cmd-len`, `cmd-json`) exist to fix it.

use sockspec_engine::conversations::check::{Body, Check, Explain, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::judge::expect::Want;
use sockspec_engine::judge::show;
use sockspec_engine::model::cut::Cut;
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::ParamSpec;
use sockspec_engine::model::timing::Deadline;
use sockspec_engine::Transport;

use crate::checks::{server, BUF};
use crate::commands::{Command, HELLO};

const C1: Conn = Conn(1);
const C2: Conn = Conn(2);

/// A command whose output is longer than BUF: 3000 bytes of lines.
const LONG: &str = "yes 0123456789abcde | head -c 3000";

/// The line `yes` repeats in [`LONG`]'s output.
const LONG_LINE: &[u8] = b"0123456789abcde\n";

/// What [`LONG`] writes.
fn long_output() -> Vec<u8> {
    LONG_LINE.iter().copied().cycle().take(3000).collect()
}

pub fn suite() -> Suite {
    Suite {
        name: "cmd-raw",
        transport: Transport::Stream,
        summary: "remote commands over TCP with no framing: the answer is stderr then stdout",
        wire: Wire {
            server: "Listen on TCP; for each receive of up to BUF bytes, run it as a command \
                     through the shell and send back its stderr, then its stdout, as they are, \
                     with nothing to mark where the answer ends. Serve the next client once one \
                     leaves.",
            client: "For each line of standard input: send it as the command, receive once (up \
                     to BUF bytes) and print what came. An answer longer than BUF is left in \
                     the stream and shows up in the answers to later commands: the protocol \
                     cannot be implemented correctly.",
        },
        sanity: |_| ask(Conversation::new().connect(C1), C1, &HELLO).close(C1),
        params: &[ParamSpec::Number(&BUF)],
        checks: vec![short(), next_client(), bleed()],
    }
}

/// Sends `command` on `conn` and expects its output back: stderr, then
/// stdout, in any number of pieces.
fn ask(c: Conversation, conn: Conn, command: &Command) -> Conversation {
    let answer = [command.stderr, command.stdout].concat();
    c.send(conn, command.line, Cut::Whole)
        .expect(conn, Want::Bytes(answer))
}

fn short() -> Check {
    Check {
        hint: Some(
            "send back the command's stderr, then its stdout, as the shell produced them: \
             the bytes, not a decoded and re-encoded text",
        ),
        explain: Explain {
            why: "The client prints what comes back; with no framing, the bytes of the output are the whole answer.",
            mistake: "conn.send(res.stdout.read().decode('gbk').encode())   # re-encoded: other bytes than the command wrote",
            fix: "out, err = res.communicate(); conn.sendall(err); conn.sendall(out)",
        },
        ..server(
            "cmd-raw.short",
            Level::Must,
            "a command with short output gets that output back",
            "a command writing a short line to stdout gets that line back",
            Body::Conversation(|_| ask(Conversation::new().connect(C1), C1, &HELLO).close(C1)),
        )
    }
}

fn next_client() -> Check {
    Check {
        hint: Some(
            "put accept() in a loop of its own: when a client leaves (its receive returns \
             zero bytes), close its connection and accept the next",
        ),
        explain: Explain {
            why: "A server outlives its clients: when one leaves, the next one must be served.",
            mistake: "conn, addr = phone.accept()\nwhile True:               # only the first client\n    cmd = conn.recv(1024)",
            fix: "while True: conn, addr = phone.accept(); serve it until recv returns b''; conn.close()",
        },
        ..server(
            "cmd-raw.next-client",
            Level::Must,
            "after a client closes, the next one is served",
            "a client asks a command and closes; a second client's command is answered",
            Body::Conversation(|_| {
                let c = ask(Conversation::new().connect(C1), C1, &HELLO).close(C1);
                ask(c.connect(C2), C2, &HELLO).close(C2)
            }),
        )
    }
}

fn bleed() -> Check {
    Check {
        explain: Explain {
            why: "Nothing marks where an answer ends. A client that receives up to BUF bytes per command prints the first BUF bytes of a longer answer, and the rest arrives as the start of the next command's answer: the answers then drift. This is the flaw the framed protocols fix: cmd-len sends the length first.",
            mistake: "conn.send(cmd)\nprint(conn.recv(1024).decode())   # an answer of 3000 bytes takes three receives",
            fix: "Frame each answer: send its length first (cmd-len), or a header with it (cmd-json).",
        },
        ..server(
            "cmd-raw.bleed",
            Level::Info,
            "whether output longer than BUF bleeds into the next answer",
            "a command writing 3000 bytes and a short one right after it: both answers arrive \
             back to back, with nothing to tell where the first ends, so a client receiving \
             BUF bytes per command reads the rest of the first as the start of the second",
            Body::Conversation(|p| {
                let mut both = long_output();
                both.extend_from_slice(HELLO.stdout);
                Conversation::new()
                    .connect(C1)
                    .send(C1, LONG, Cut::Whole)
                    // The server has read the first command and answered
                    // it: the second is a command of its own.
                    .settle()
                    .send(C1, HELLO.line, Cut::Whole)
                    .observe(C1, Want::Bytes(both), Deadline::Reply, bled(p.number(&BUF)))
                    .close(C1)
            }),
        )
    }
}

/// What the bleed observation says arrived: the long answer and the next
/// as one stream, and which bytes of the long one a client receiving `buf`
/// bytes per command takes for the start of the next answer.
fn bled(buf: usize) -> String {
    let long = long_output();
    let stream = long.len() + HELLO.stdout.len();
    let head = format!(
        "the {}-byte answer and the next came as one stream of {stream} bytes: a client \
         receiving {buf} bytes per command",
        long.len()
    );
    let Some(rest) = long.get(buf..).filter(|rest| !rest.is_empty()) else {
        return format!("{head} gets all of the first answer in one receive: none of it bleeds");
    };
    const SHOWN: usize = 16;
    format!(
        "{head} prints the first {buf}, and the next command's answer begins with the other \
         {} bytes of it (bytes {buf} to {} of the first answer), from {} to {}",
        rest.len(),
        long.len() - 1,
        show::quoted(&rest[..SHOWN.min(rest.len())], SHOWN),
        show::quoted(&rest[rest.len().saturating_sub(SHOWN)..], SHOWN),
    )
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
                ("cmd-raw.short", Level::Must),
                ("cmd-raw.next-client", Level::Must),
                ("cmd-raw.bleed", Level::Info),
            ]
        );
    }

    #[test]
    fn the_bleed_names_the_count_and_the_first_and_last_bytes_that_bled() {
        assert_eq!(
            bled(1024),
            "the 3000-byte answer and the next came as one stream of 3020 bytes: a client \
             receiving 1024 bytes per command prints the first 1024, and the next command's \
             answer begins with the other 1976 bytes of it (bytes 1024 to 2999 of the first \
             answer), from \"0123456789abcde\\n\" to \"89abcde\\n01234567\""
        );
    }

    #[test]
    fn nothing_bleeds_for_a_buf_that_holds_the_long_answer() {
        assert!(bled(3000).ends_with(
            "receiving 3000 bytes per command gets all of the first answer in one receive: \
             none of it bleeds"
        ));
    }

    #[test]
    fn the_long_output_is_longer_than_the_default_buf() {
        assert_eq!(long_output().len(), 3000);
        assert!(long_output().starts_with(LONG_LINE));
    }
}
