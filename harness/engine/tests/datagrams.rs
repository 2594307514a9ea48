//! Datagram steps against scripted servers: what a reply must be (whole,
//! from the server's port, once), and how each way of getting it wrong is
//! worded. The servers are threads with a UDP socket of their own; each
//! runs for a bounded time.

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::Duration;

use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::session::{Outcome, Peer, Session};
use sockspec_engine::conversations::steps::mailbox::MAX_PAYLOAD;
use sockspec_engine::conversations::steps::Sock;
use sockspec_engine::conversations::transcript::Event;
use sockspec_engine::model::timing::Timing;

const U1: Sock = Sock(1);
const U2: Sock = Sock(2);

/// A server that answers each of the first `requests` datagrams with what
/// `answer` makes of it: a list of (bytes, from which socket) to send back
/// to the request's sender. `spare` is a second socket it may answer from.
fn scripted(
    requests: usize,
    answer: impl Fn(&[u8], SocketAddr) -> Vec<(Vec<u8>, bool, Option<SocketAddr>)> + Send + 'static,
) -> Peer {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let spare = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        for _ in 0..requests {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            for (bytes, from_spare, to) in answer(&buf[..n], from) {
                let via = if from_spare { &spare } else { &socket };
                let _ = via.send_to(&bytes, to.unwrap_or(from));
            }
        }
    });
    Peer::Remote(addr)
}

/// Answers every request once with its upper case.
fn echo(requests: usize) -> Peer {
    scripted(requests, |b, _| vec![(b.to_ascii_uppercase(), false, None)])
}

fn run(peer: &mut Peer, c: Conversation) -> Outcome {
    Session::new(peer, Timing::new(0.5)).run(&c.steps)
}

fn first_miss(out: &Outcome) -> String {
    out.misses
        .first()
        .map(|m| m.detail.clone())
        .unwrap_or_default()
}

#[test]
fn a_reply_from_the_servers_port_holding_the_upper_case_passes() {
    let mut peer = echo(1);
    let c = Conversation::new()
        .send_datagram(U1, "hi there")
        .expect_datagram(U1, "HI THERE")
        .expect_no_datagram("one reply");
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    assert!(out.fault.is_none());
}

#[test]
fn an_empty_datagram_is_sent_and_its_empty_reply_received() {
    let mut peer = echo(1);
    let c = Conversation::new()
        .send_datagram(U1, Vec::new())
        .expect_datagram(U1, Vec::new());
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
}

#[test]
fn a_reply_from_another_port_is_a_miss_that_names_both_ports() {
    let mut peer = scripted(1, |b, _| vec![(b.to_vec(), true, None)]);
    let Peer::Remote(server) = peer else {
        unreachable!()
    };
    let out = run(
        &mut peer,
        Conversation::new()
            .send_datagram(U1, "x")
            .expect_datagram(U1, "x"),
    );
    let detail = first_miss(&out);
    assert!(
        detail.contains(&format!("not from the server's port {}", server.port())),
        "{detail}"
    );
}

#[test]
fn a_second_reply_is_a_miss_in_the_quiet_window() {
    let mut peer = scripted(1, |b, _| {
        vec![(b.to_vec(), false, None), (b.to_vec(), false, None)]
    });
    let c = Conversation::new()
        .send_datagram(U1, "twice")
        .expect_datagram(U1, "twice")
        .expect_no_datagram("each request gets exactly one datagram back");
    let out = run(&mut peer, c);
    let detail = first_miss(&out);
    assert!(detail.contains("received another datagram"), "{detail}");
    assert!(detail.contains("exactly one datagram back"), "{detail}");
    assert!(
        out.paused > Duration::ZERO,
        "the window is a deliberate wait"
    );
}

#[test]
fn a_reply_sent_to_another_client_is_named_where_it_arrived() {
    // Every reply goes to the first sender, as a server that connect()ed to
    // its first client does.
    let first = std::sync::Mutex::new(None);
    let mut peer = scripted(2, move |b, from| {
        let mut f = first.lock().unwrap();
        let to = *f.get_or_insert(from);
        vec![(b.to_ascii_uppercase(), false, Some(to))]
    });
    let c = Conversation::new()
        .send_datagram(U1, "one")
        .expect_datagram(U1, "ONE")
        .send_datagram(U2, "two")
        .expect_datagram(U2, "TWO");
    let out = run(&mut peer, c);
    let detail = first_miss(&out);
    assert!(detail.contains("no datagram arrived on u2"), "{detail}");
    assert!(detail.contains("u1 received \"TWO\""), "{detail}");
}

#[test]
fn a_different_datagram_says_its_length_and_where_it_differs() {
    let mut peer = scripted(1, |_, _| vec![(b"HELLO\n".to_vec(), false, None)]);
    let c = Conversation::new()
        .send_datagram(U1, "hello")
        .expect_datagram(U1, "HELLO");
    let detail = first_miss(&run(&mut peer, c));
    assert!(
        detail.contains("a datagram of 6 bytes arrived, not 5"),
        "{detail}"
    );
    assert!(detail.contains("first difference at byte 5"), "{detail}");
}

#[test]
fn the_largest_datagram_is_sent_whole_and_its_real_length_recorded() {
    let mut peer = echo(1);
    let big = vec![b'a'; MAX_PAYLOAD];
    let c = Conversation::new()
        .send_datagram(U1, big.clone())
        .expect_datagram(U1, big.to_ascii_uppercase());
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    let (entries, _) = out.transcript.entries();
    let received: Vec<usize> = entries
        .filter_map(|e| match &e.event {
            Event::ReceivedDatagram { len, .. } => Some(*len),
            _ => None,
        })
        .collect();
    assert_eq!(received, [MAX_PAYLOAD]);
}

#[test]
fn an_observation_records_what_an_echo_shows_the_server_received() {
    // The server truncates at 16 bytes, as a receive of 16 does.
    let mut peer = scripted(1, |b, _| vec![(b[..16].to_ascii_uppercase(), false, None)]);
    let c = Conversation::new()
        .send_datagram(U1, vec![b'x'; 32])
        .observe_echo_length(U1, 32, 16)
        .expect_datagram(U1, vec![b'X'; 16]);
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    assert!(
        out.notes.iter().any(|n| n.contains("its first 16 bytes")),
        "{:?}",
        out.notes
    );
}

#[test]
fn silence_is_a_miss_within_the_reply_deadline() {
    let mut peer = scripted(1, |_, _| Vec::new());
    let c = Conversation::new()
        .send_datagram(U1, "anyone?")
        .expect_datagram(U1, "ANYONE?");
    let started = std::time::Instant::now();
    let detail = first_miss(&run(&mut peer, c));
    assert!(
        detail.contains("no datagram arrived on u1 within 1.0s"),
        "{detail}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A server that reads `k` requests, then answers them last first.
fn answers_in_reverse(k: usize) -> Peer {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    thread::spawn(move || {
        let mut buf = vec![0u8; 1024];
        let mut got = Vec::new();
        for _ in 0..k {
            let Ok((n, from)) = socket.recv_from(&mut buf) else {
                return;
            };
            got.push((buf[..n].to_ascii_uppercase(), from));
        }
        for (bytes, to) in got.into_iter().rev() {
            let _ = socket.send_to(&bytes, to);
        }
    });
    Peer::Remote(addr)
}

#[test]
fn replies_in_another_order_each_match_their_own_request_and_the_order_is_said() {
    let mut peer = answers_in_reverse(3);
    let c = Conversation::new()
        .send_datagram(U1, "a")
        .send_datagram(U1, "bb")
        .send_datagram(U1, "three ccc")
        .expect_each_datagram(
            U1,
            vec![b"A".to_vec(), b"BB".to_vec(), b"THREE CCC".to_vec()],
        )
        .expect_no_datagram("one reply each");
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    assert!(
        out.notes
            .iter()
            .any(|n| n.contains("another order") && n.contains("3, 2, 1")),
        "{:?}",
        out.notes
    );
}

#[test]
fn a_reply_to_none_of_the_requests_is_a_miss_beside_the_nearest() {
    let mut peer = scripted(2, |b, _| vec![([b"!", b].concat(), false, None)]);
    let c = Conversation::new()
        .send_datagram(U1, "one")
        .send_datagram(U1, "two")
        .expect_each_datagram(U1, vec![b"one".to_vec(), b"two".to_vec()]);
    let out = run(&mut peer, c);
    let miss = first_miss(&out);
    assert!(
        miss.contains("a datagram of 4 bytes arrived that is the reply to none of the 2 requests"),
        "{miss}"
    );
}

#[test]
fn a_server_still_serves_when_the_probe_is_answered_on_another_socket() {
    // Answers everyone at the first sender's address, as a server that
    // connect()ed to its first client does.
    let first = std::sync::Mutex::new(None);
    let mut peer = scripted(3, move |b, from| {
        let to = *first.lock().unwrap().get_or_insert(from);
        vec![(b.to_ascii_uppercase(), false, Some(to))]
    });
    let c = Conversation::new()
        .send_datagram(U1, "abuse")
        .expect_serving(&[U2, U1], "still there?", "STILL THERE?")
        .expect_datagram(U1, "ABUSE");
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    assert!(
        out.notes.iter().any(|n| n.contains("answered on u1")),
        "{:?}",
        out.notes
    );
}

#[test]
fn a_server_that_answers_no_probe_anywhere_no_longer_serves() {
    let mut peer = echo(1);
    let c = Conversation::new()
        .send_datagram(U1, "the last it answers")
        .expect_datagram(U1, "THE LAST IT ANSWERS")
        .expect_serving(&[U2, U1], "still there?", "STILL THERE?");
    let out = run(&mut peer, c);
    assert!(
        first_miss(&out).contains("the server no longer serves"),
        "{}",
        first_miss(&out)
    );
}

#[test]
fn a_reply_repeated_300_ms_later_is_caught_and_its_delay_said() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            return;
        };
        let reply = buf[..n].to_ascii_uppercase();
        let _ = socket.send_to(&reply, from);
        thread::sleep(Duration::from_millis(300));
        let _ = socket.send_to(&reply, from);
    });
    let mut peer = Peer::Remote(addr);
    let c = Conversation::new()
        .send_datagram(U1, "once")
        .expect_datagram(U1, "ONCE")
        .expect_no_late_datagram("each request gets exactly one datagram back");
    // At the default timing: the late window is what is under test.
    let out = Session::new(&mut peer, Timing::new(1.0)).run(&c.steps);
    let detail = first_miss(&out);
    assert!(detail.contains("received another datagram"), "{detail}");
    assert!(
        detail.contains("ms after the last datagram expected"),
        "{detail}"
    );
}

#[test]
fn the_late_window_lasts_from_the_last_datagram_and_the_quiet_one_from_the_step() {
    let timing = Timing::new(1.0);
    let late = timing.deadline(sockspec_engine::model::timing::Deadline::Late);
    let quiet = timing.deadline(sockspec_engine::model::timing::Deadline::Quiet);
    for (c, at_least, below) in [
        (
            Conversation::new()
                .send_datagram(U1, "x")
                .expect_datagram(U1, "X")
                .expect_no_late_datagram("one reply"),
            late,
            late + quiet,
        ),
        (
            Conversation::new()
                .send_datagram(U1, "x")
                .expect_datagram(U1, "X")
                .expect_no_datagram("one reply"),
            quiet,
            late,
        ),
    ] {
        let mut peer = echo(1);
        let out = Session::new(&mut peer, timing).run(&c.steps);
        assert!(out.misses.is_empty(), "{:?}", out.misses);
        assert!(
            out.paused >= at_least - Duration::from_millis(20) && out.paused < below,
            "{:?}",
            out.paused
        );
    }
}

#[test]
fn a_reply_padded_after_its_answer_is_still_its_request_s_and_said_so() {
    // A server that sends its whole receive buffer: the answer, then zeros.
    let mut peer = scripted(2, |b, _| {
        let mut padded = b.to_vec();
        padded.resize(16, 0);
        vec![(padded, false, None)]
    });
    let c = Conversation::new()
        .send_datagram(U1, "one")
        .send_datagram(U1, "two")
        .expect_each_datagram(U1, vec![b"one".to_vec(), b"two".to_vec()]);
    let out = run(&mut peer, c);
    assert!(out.misses.is_empty(), "{:?}", out.misses);
    assert!(
        out.notes.iter().any(
            |n| n.contains("began with the expected answer and carried more")
                && n.contains("16 bytes")
        ),
        "{:?}",
        out.notes
    );
}
