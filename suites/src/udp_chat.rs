//! `udp-chat`: one server, several chatting clients.
//!
//! The server prints each message with its sender's address, reads a reply
//! typed on its standard input and sends it back to that sender as one
//! datagram. The client reads a contact name, then messages: `quit` goes
//! back to choosing a contact, empty messages and messages to an unknown
//! contact are not sent, anything else is one datagram whose reply is
//! printed. Course clients differ in ways the profile names: a contact
//! before every message (`contact_each`), a datagram of their own when a
//! contact is chosen (`announce`), another quit word (`quit`).

use sockspec_engine::conversations::check::{Body, Check, Explain, Suite, Wire};
use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::steps::Sock;
use sockspec_engine::judge::expect_datagram::DatagramWant;
use sockspec_engine::model::hint::{Alternative, When};
use sockspec_engine::model::level::Level;
use sockspec_engine::model::profile::{ParamSpec, Profile, Switch, Text};
use sockspec_engine::Transport;

use crate::checks::{client, server};

const U1: Sock = Sock(1);
const U2: Sock = Sock(2);

/// The contact the client is told to write to, `contact`.
pub const CONTACT: Text = Text {
    key: "contact",
    meaning: "the contact name the chat client is given",
    default: "TOM",
    shown_default: "TOM",
    refuse_empty: Some("the contact needs a name, such as contact=TOM"),
};

/// A client that asks for the contact before every message, `contact_each`.
pub const CONTACT_EACH: Switch = Switch {
    key: "contact_each",
    meaning: "the chat client asks for the contact before every message",
    default: false,
};

/// A client that sends a datagram of its own when a contact is chosen,
/// `announce`.
pub const ANNOUNCE: Switch = Switch {
    key: "announce",
    meaning: "the chat client sends a datagram of its own when a contact is chosen",
    default: false,
};

/// The client's quit word, `quit`: it goes back to choosing a contact
/// rather than ending the client.
pub const QUIT: Text = Text {
    key: "quit",
    meaning: "the line that makes the chat client go back to choosing a contact",
    default: "quit",
    shown_default: "quit",
    refuse_empty: None,
};

/// What the parameters of `udp-chat` say, typed: the ways course chat
/// clients differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// The contact the client is told to write to (`contact`).
    pub contact: String,
    /// Whether the client asks for the contact before every message
    /// (`contact_each`), not once.
    pub contact_each: bool,
    /// Whether the client sends a datagram of its own when a contact is
    /// chosen (`announce`), before any message.
    pub announce: bool,
    /// The line that goes back to choosing a contact (`quit`).
    pub quit: String,
}

impl Params {
    pub fn of(profile: &Profile) -> Params {
        Params {
            contact: profile.text(&CONTACT).to_string(),
            contact_each: profile.switch(&CONTACT_EACH),
            announce: profile.switch(&ANNOUNCE),
            quit: profile.text(&QUIT).to_string(),
        }
    }
}

const ONE_REPLY: &str = "each typed reply is sent once";

/// What another datagram where the first message was expected likely is.
const ANNOUNCED: &str = "if the client sent it when the contact was chosen, before the \
                         message, it is an announcement: against a server that answers every \
                         datagram, each reply then arrives one message late. If the \
                         assignment asks for one, run with --param announce=yes";

/// A message and the reply typed for it, with text beyond ASCII both ways.
const UNICODE_MESSAGE: &str = "你好，服务器 — café ü";
const UNICODE_REPLY: &str = "收到：一切都好 — naïve ß";

pub fn suite() -> Suite {
    Suite {
        name: "udp-chat",
        transport: Transport::Datagram,
        summary: "UDP chat: the server prints each message and sends back a typed reply",
        wire: Wire {
            server: "Bind a UDP socket; for each datagram, print the sender's address and the \
                     message (UTF-8 text, Chinese included), then read one line typed on \
                     standard input and send it, without the newline, as one datagram to that \
                     sender, from the bound socket. Each reply goes to the sender of the message \
                     it answers, even when another client wrote in the meantime.",
            client: "Read a contact name from standard input (the contacts are fixed in the \
                     program, and all of them are the server's address here). Then read \
                     messages: the quit word goes back to choosing a contact; empty lines, and \
                     every message while the chosen name is unknown or empty, are skipped \
                     without sending (asking for the contact again at once does as well); \
                     anything else is sent as one UTF-8 datagram, and one reply datagram is \
                     received and printed with its sender's address.",
        },
        sanity: |_| relay(Conversation::new(), U1, "sanity check", "sanity reply"),
        params: &[
            ParamSpec::Text(&CONTACT),
            ParamSpec::Switch(&CONTACT_EACH),
            ParamSpec::Switch(&ANNOUNCE),
            ParamSpec::Text(&QUIT),
        ],
        checks: vec![
            relay_check(),
            two_clients(),
            unicode(),
            client_send(),
            client_skip(),
        ],
    }
}

/// Sends `message` from `sock`, expects the server to print it, types
/// `reply` and expects it back on `sock`.
fn relay(c: Conversation, sock: Sock, message: &str, reply: &str) -> Conversation {
    c.send_datagram(sock, message)
        .expect_output(message)
        .input(&format!("{reply}\n"))
        .expect_datagram(sock, reply)
}

fn relay_check() -> Check {
    Check {
        explain: Explain {
            why: "The chat server's whole job: show who wrote what, and send the operator's reply to that person.",
            mistake: "data, addr = s.recvfrom(1024)\nreply = input('reply: ')\ns.sendto(reply.encode(), ('127.0.0.1', 8888))   # not the sender",
            fix: "print(addr, data.decode()); then s.sendto(input().encode(), addr), addr being the sender recvfrom returned.",
        },
        ..server(
            "udp-chat.relay",
            Level::Must,
            "the message is printed, and the typed reply reaches its sender as one datagram",
            "a message is printed on the server's output; the line typed on its input comes \
             back to the sender as one datagram, without the newline; SHOULD: the output \
             shows the sender's port",
            Body::Conversation(|_| {
                relay(Conversation::new(), U1, "hello server", "hi client")
                    .expect_sender_printed(U1, Level::Should)
                    .expect_no_datagram(ONE_REPLY)
            }),
        )
    }
}

fn two_clients() -> Check {
    Check {
        hint: Some(
            "answer the address recvfrom returned with the message being answered; keep it \
             with the message, not in a variable another receive overwrites",
        ),
        explain: Explain {
            why: "Two clients may write before the operator answers the first. Each reply belongs to the message it answers, and must go to that message's sender.",
            mistake: "def receive():\n    global last_addr\n    while True:\n        data, last_addr = s.recvfrom(1024)   # overwritten by the next client\n...\ns.sendto(input().encode(), last_addr)",
            fix: "Take one datagram, print it, read the reply and sendto its own addr before taking the next.",
        },
        ..server(
            "udp-chat.two-clients",
            Level::Must,
            "messages from two clients are each answered to their own sender, in arrival order",
            "two clients write before any reply is typed; the first reply goes to the first \
             client, the second to the second",
            Body::Conversation(|_| {
                // Before the first reply is typed the server has taken
                // every datagram it will: one that handles a message at a
                // time has left the second queued, one with a receiving
                // thread has taken it, whatever the scheduler did.
                Conversation::new()
                    .send_datagram(U1, "first, from one")
                    .send_datagram(U2, "then, from two")
                    .expect_output("first, from one")
                    .settle()
                    .input("reply to one\n")
                    .expect_output("then, from two")
                    .input("reply to two\n")
                    .expect_datagram(U1, "reply to one")
                    .expect_datagram(U2, "reply to two")
                    .expect_no_datagram(ONE_REPLY)
            }),
        )
    }
}

fn unicode() -> Check {
    Check {
        hint: Some("decode and encode with UTF-8 on both sides: .decode('utf-8'), .encode('utf-8')"),
        explain: Explain {
            why: "Chat text is UTF-8, Chinese included. A server that decodes or encodes with another codec (GBK, latin-1) garbles it or crashes.",
            mistake: "print(addr, data.decode('gbk'))\ns.sendto(reply.encode('gbk'), addr)",
            fix: "data.decode('utf-8') to print, reply.encode('utf-8') to send.",
        },
        ..server(
            "udp-chat.unicode",
            Level::Must,
            "non-ASCII text arrives and is printed intact, both ways",
            "a message in Chinese and accented Latin is printed as written, and a reply in \
             the same is sent as its UTF-8 bytes",
            Body::Conversation(|_| {
                relay(Conversation::new(), U1, UNICODE_MESSAGE, UNICODE_REPLY)
                    .expect_no_datagram(ONE_REPLY)
            }),
        )
    }
}

/// Types the contact; where the profile says the client announces itself
/// then, expects that datagram and leaves it unanswered, as the variant's
/// server does.
fn choose_contact(c: Conversation, p: &Params) -> Conversation {
    let c = c.input(&format!("{}\n", p.contact));
    if p.announce {
        c.expect_datagram_at(U1, DatagramWant::Any, Level::Must)
    } else {
        c
    }
}

/// Types `message` (after the contact, where the client asks for it every
/// time), expects it as one datagram, answers `reply` and expects it
/// printed. A datagram other than the message is named for what it likely
/// is: an announcement the profile does not expect.
fn message(c: Conversation, p: &Params, message: &str, reply: &str) -> Conversation {
    let c = if p.contact_each {
        choose_contact(c, p)
    } else {
        c
    };
    c.input(&format!("{message}\n"))
        .expect_datagram_or(U1, message, ANNOUNCED)
        .send_datagram(U1, reply)
        .expect_output(reply)
}

fn client_send() -> Check {
    Check {
        explain: Explain {
            why: "Once a contact is chosen, each message is one datagram to that contact, and the reply is shown.",
            mistake: "name = input('contact: ')\nmsg = input('message: ')\ns.sendto((name + ':' + msg).encode(), server)   # the message must travel alone",
            fix: "Look the contact up, sendto(msg.encode('utf-8'), address), then recvfrom and print the reply with its sender.",
        },
        ..client(
            "udp-chat.client.send",
            Level::Must,
            "after a contact is chosen, a message arrives as one datagram and the reply is printed",
            "the contact is typed, then messages; each arrives as one datagram holding the \
             message, and each reply is printed",
            Body::Conversation(|p: &Profile| {
                let p = &Params::of(p);
                let c = if p.contact_each {
                    Conversation::new()
                } else {
                    choose_contact(Conversation::new(), p)
                };
                let c = message(c, p, "hello there", "hi, this is the server");
                message(c, p, "你好 second message", "second reply")
            }),
        )
    }
}

/// The message typed after an empty one, in `client.skip`.
const AFTER_EMPTY: &str = "after the empty message";
/// The message typed after quit, an unknown contact, quit again and a known
/// contact.
const AFTER_QUIT: &str = "back with a contact";

fn client_skip() -> Check {
    Check {
        hint: Some(
            "skip empty messages before sending (on UDP sendto(b'') sends an empty datagram), \
             and send nothing while the contact is unknown",
        ),
        // A client that exited on its own (status 0) chose to stop: where
        // the check missed says at which line.
        hints: &[
            Alternative {
                when: When::Both(&When::Exited, &When::MissedAt(AFTER_EMPTY)),
                text: "the client ended ({exit}) at the empty message instead of going on to \
                       the next: skip an empty message (continue), and stop only at the end of \
                       the input",
            },
            Alternative {
                when: When::Both(&When::Exited, &When::MissedAt(AFTER_QUIT)),
                text: "the client ended ({exit}) at the quit line (or the unknown contact after \
                       it) instead of going back to choosing a contact: quit returns to the \
                       contact prompt, an unknown contact is asked again or its messages \
                       skipped, and only the end of the input ends the client",
            },
        ],
        explain: Explain {
            why: "An empty send is a datagram on UDP, and the receive after it waits for an answer that may never come; a message to an unknown contact has nowhere to go.",
            mistake: "msg = input('message: ')\ns.sendto(msg.encode(), contacts.get(name, default))",
            fix: "if not msg: continue; if name not in contacts: ask again, or skip every message until quit; and quit goes back to choosing a contact.",
        },
        ..client(
            "udp-chat.client.skip",
            Level::Must,
            "empty messages and unknown contacts send nothing; quit goes back to choosing",
            "an empty message sends nothing; after the quit word and an unknown contact, a \
             message sends nothing; after the quit word again and a known contact, the next \
             message is sent",
            Body::Conversation(|p: &Profile| {
                let p = &Params::of(p);
                if p.contact_each {
                    // The contact comes with every message: an unknown one
                    // sends nothing, a known one sends.
                    let c = Conversation::new()
                        .input("NOBODY-KNOWN\nto nobody\n")
                        .input(&format!("{}\n\n", p.contact));
                    return message(c, p, AFTER_EMPTY, "ok");
                }
                let c = choose_contact(Conversation::new(), p).input("\n");
                let c = message(c, p, AFTER_EMPTY, "ok one");
                // A client that refuses an unknown contact asks again and
                // takes the message and the quit word after it for names it
                // also refuses; one that keeps the unknown contact skips
                // the message and goes back to choosing at the quit word.
                // Either way the known contact typed next is chosen.
                let quit = format!("{}\n", p.quit);
                let c = c
                    .input(&quit)
                    .input("NOBODY-KNOWN\nto nobody\n")
                    .input(&quit);
                let c = choose_contact(c, p);
                message(c, p, AFTER_QUIT, "ok two")
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
                ("udp-chat.relay", Level::Must),
                ("udp-chat.two-clients", Level::Must),
                ("udp-chat.unicode", Level::Must),
                ("udp-chat.client.send", Level::Must),
                ("udp-chat.client.skip", Level::Must),
            ]
        );
    }

    fn params(assignments: &[&str]) -> Params {
        Params::of(&Profile::of(assignments, suite().params).unwrap())
    }

    #[test]
    fn by_default_the_client_writes_to_tom_once_without_announcing_and_quits_with_quit() {
        assert_eq!(
            params(&[]),
            Params {
                contact: "TOM".into(),
                contact_each: false,
                announce: false,
                quit: "quit".into(),
            }
        );
    }

    #[test]
    fn each_variant_of_the_course_client_is_read_as_given() {
        assert_eq!(
            params(&[
                "contact=JERRY",
                "contact_each=yes",
                "announce=yes",
                "quit=q"
            ]),
            Params {
                contact: "JERRY".into(),
                contact_each: true,
                announce: true,
                quit: "q".into(),
            }
        );
    }

    #[test]
    fn an_empty_quit_word_is_the_default_one() {
        assert_eq!(params(&["quit="]).quit, "quit");
    }

    #[test]
    fn an_empty_contact_is_refused_with_an_example() {
        assert_eq!(
            Profile::of(&["contact="], suite().params)
                .unwrap_err()
                .to_string(),
            "--param contact=: the contact needs a name, such as contact=TOM"
        );
    }

    #[test]
    fn the_switches_take_yes_or_no() {
        let err = Profile::of(&["announce=true"], suite().params).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--param announce=true: announce takes yes or no"
        );
    }

    use sockspec_engine::conversations::steps::{DatagramStep, StdioStep, Step};

    /// The lines `client.skip` types under the default profile with the
    /// contact TOM, and the messages it expects sent, in order.
    fn skip_script() -> (Vec<String>, Vec<String>) {
        let check = client_skip();
        let Body::Conversation(build) = check.body else {
            panic!("client.skip is one fixed conversation")
        };
        let profile = Profile::of(&["contact=TOM"], suite().params).unwrap();
        let mut typed = Vec::new();
        let mut sent = Vec::new();
        for step in build(&profile).steps {
            match step {
                Step::Stdio(StdioStep::Input(bytes)) => {
                    typed.extend(String::from_utf8(bytes).unwrap().lines().map(str::to_owned))
                }
                Step::Datagram(DatagramStep::Expect {
                    want: DatagramWant::Exactly(bytes),
                    ..
                }) => sent.push(String::from_utf8(bytes).unwrap()),
                _ => {}
            }
        }
        (typed, sent)
    }

    /// What a chat client sends for `typed`: `refuses` asks again for an
    /// unknown contact; otherwise it keeps the contact, skipping every
    /// message, until `quit` (the course material's own loop).
    fn chat_client(typed: &[String], refuses: bool) -> Vec<String> {
        let contacts = ["TOM", "JERRY"];
        let mut lines = typed.iter().map(|l| l.trim());
        let mut sent = Vec::new();
        while let Some(name) = lines.next() {
            if refuses && !contacts.contains(&name) {
                continue;
            }
            for msg in lines.by_ref() {
                if msg == "quit" {
                    break;
                }
                if msg.is_empty() || !contacts.contains(&name) {
                    continue;
                }
                sent.push(msg.to_owned());
            }
        }
        sent
    }

    #[test]
    fn skip_is_passed_by_a_client_that_refuses_an_unknown_contact() {
        let (typed, expected) = skip_script();
        assert_eq!(chat_client(&typed, true), expected);
    }

    #[test]
    fn skip_is_passed_by_a_client_that_keeps_an_unknown_contact_until_quit() {
        let (typed, expected) = skip_script();
        assert_eq!(chat_client(&typed, false), expected);
    }

    #[test]
    fn skip_expects_no_message_to_an_unknown_contact() {
        let (typed, expected) = skip_script();
        assert!(typed.iter().any(|l| l == "NOBODY-KNOWN"), "{typed:?}");
        assert!(expected.iter().all(|m| m != "to nobody"), "{expected:?}");
        assert_eq!(expected.len(), 2, "{expected:?}");
    }

    #[test]
    fn the_unicode_texts_are_beyond_ascii_and_beyond_latin_1() {
        for t in [UNICODE_MESSAGE, UNICODE_REPLY] {
            assert!(t.chars().any(|c| u32::from(c) > 0xff), "{t}");
        }
    }
}
