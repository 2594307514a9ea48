//! `cmd-udp`: remote commands over UDP.
//!
//! The client sends a command as one datagram; the server runs it through
//! the shell and sends its stderr as one datagram, then its stdout as one
//! datagram, either possibly empty. Nothing sticks together on UDP, but a
//! client that receives once per command reads every answer one command
//! late.

use sockspec_engine::conversations::check::{Body, Check, Explain, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Sock;
use sockspec_engine::model::level::Level;
use sockspec_engine::Transport;

use crate::checks::{client, server};

const U1: Sock = Sock(1);

/// What a client that receives once per command does, for a miss of the
/// in-step check.
const SHIFTED: &str = "a client that receives one datagram per command prints the stderr \
                       datagram (often empty) and leaves stdout waiting: every answer then \
                       arrives one command late";

pub fn suite() -> Suite {
    Suite {
        name: "cmd-udp",
        transport: Transport::Datagram,
        summary: "remote commands over UDP: stderr and stdout as two datagrams",
        wire: Wire {
            server: "Bind a UDP socket; for each datagram, run it as a command through the \
                     shell and send back two datagrams to its sender: the command's stderr, \
                     then its stdout, either possibly empty (an empty datagram is still sent).",
            client: "For each line of standard input: send it as one datagram; receive two \
                     datagrams, stderr then stdout, and print them. A client that receives one \
                     datagram per command reads every answer one command late.",
        },
        sanity: |_| {
            Conversation::new()
                .send_datagram(U1, "echo sanity")
                .expect_datagram(U1, "")
                .expect_datagram(U1, "sanity\n")
        },
        params: &[],
        checks: vec![two_datagrams(), client_in_step()],
    }
}

/// Sends `command` and expects its stderr, then its stdout, as datagrams.
fn command(c: Conversation, command: &str, stderr: &str, stdout: &str) -> Conversation {
    c.send_datagram(U1, command)
        .expect_datagram(U1, stderr)
        .expect_datagram(U1, stdout)
}

fn two_datagrams() -> Check {
    Check {
        hint: Some(
            "send exactly two datagrams per command, stderr first and stdout second, each \
             even when empty (sendto(b'', addr) sends an empty datagram): the client counts \
             on two",
        ),
        explain: Explain {
            why: "The client receives twice per command: stderr, then stdout. One datagram more or fewer, or the two in one, and every later answer is read out of step.",
            mistake: "out = res.stdout or res.stderr or '执行成功'.encode('gbk')\ns.sendto(out, addr)             # one datagram, a placeholder for no output",
            fix: "s.sendto(res.stderr, addr); s.sendto(res.stdout, addr) — always both, the bytes as the command wrote them.",
        },
        ..server(
            "cmd-udp.two-datagrams",
            Level::Must,
            "each command gets exactly two datagrams, stderr then stdout",
            "a command writing to both streams, one writing to stdout alone and one writing \
             nothing each get two datagrams: stderr, then stdout, empty where the command \
             wrote nothing",
            Body::Conversation(|_| {
                let c = command(
                    Conversation::new(),
                    "echo out-text; echo err-text >&2",
                    "err-text\n",
                    "out-text\n",
                );
                let c = command(c, "echo only-stdout", "", "only-stdout\n");
                command(c, "true", "", "")
                    .expect_no_late_datagram("each command gets exactly two datagrams")
            }),
        )
    }
}

fn client_in_step() -> Check {
    Check {
        hint: Some(
            "receive twice per command, stderr then stdout, and print both before reading \
             the next command",
        ),
        explain: Explain {
            why: "Each command is answered by two datagrams. A client that receives only one per command leaves the other in its socket, and prints it as the answer to the next command.",
            mistake: "s.sendto(cmd.encode(), server)\ndata, addr = s.recvfrom(1024)   # the stderr datagram only\nprint(data.decode())",
            fix: "err, _ = s.recvfrom(BUF); out, _ = s.recvfrom(BUF); print both, then read the next command.",
        },
        ..client(
            "cmd-udp.client.in-step",
            Level::Must,
            "each command's printed answer is its own, not the previous command's",
            "two commands are answered with stderr and stdout datagrams; each answer is \
             printed whole before the next command is sent, its parts in any order, on the \
             client's output or error output",
            Body::Conversation(|_| {
                Conversation::new()
                    .input("first command\n")
                    .expect_datagram(U1, "first command")
                    .send_datagram(U1, "")
                    .send_datagram(U1, "ANSWER ONE\n")
                    .expect_answer(&["ANSWER ONE"], Level::Must, SHIFTED)
                    .input("second command\n")
                    .expect_datagram(U1, "second command")
                    .send_datagram(U1, "warning two\n")
                    .send_datagram(U1, "ANSWER TWO\n")
                    .expect_answer(&["warning two", "ANSWER TWO"], Level::Must, SHIFTED)
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
                ("cmd-udp.two-datagrams", Level::Must),
                ("cmd-udp.client.in-step", Level::Must)
            ]
        );
    }
}
