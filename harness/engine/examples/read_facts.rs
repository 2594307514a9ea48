//! Measures how long after a piece of a cut is written the kernel shows
//! that the target read it, through the engine's own send path: the
//! figures behind `Deadline::Read` and the poll intervals in `timing.rs`
//! (`docs/LOOPBACK-FACTS.md`, "What the target has read, and how soon").
//!
//! Usage: cargo run --release -p sockspec-engine --example read_facts -- [BUSY] [CASES]
//!
//! Starts the course's Python server (`fixtures/tcp-upper/server.py`) and
//! BUSY CPU-bound Python processes (default 0), sends CASES generated cuts
//! (default 400) of up to six pieces of 1 to 1024 bytes, each answered
//! before the next cut, and prints the spread of the confirmation times.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use sockspec_engine::conversations::session::{Peer, Session};
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::conversations::transcript::Event;
use sockspec_engine::kernel::ports;
use sockspec_engine::{Conversation, Cut, Timing};

const C1: Conn = Conn(1);
/// Cuts per connection: keeps each session's transcript whole.
const PER_SESSION: usize = 8;

/// Processes ended when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let busy: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let cases: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(400);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut children = Children(Vec::new());
    children.0.push(
        Command::new("python3")
            .arg("fixtures/tcp-upper/server.py")
            .arg(port.to_string())
            .current_dir(&root)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 runs"),
    );
    for _ in 0..busy {
        children.0.push(
            // Started directly, so the drop below ends the loop itself (a
            // wrapper such as `timeout`, killed, would leave it running).
            Command::new("python3")
                .args(["-c", "while True: pass"])
                .spawn()
                .expect("python3 runs"),
        );
    }
    let until = Instant::now() + Duration::from_secs(10);
    while ports::listeners(port).is_empty() && Instant::now() < until {
        thread::sleep(Duration::from_millis(5));
    }
    // Let the busy loops reach full speed.
    thread::sleep(Duration::from_millis(300));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let strategy = Cut::arbitrary(6, 1024);
    let mut runner = TestRunner::deterministic();
    let mut confirmed: Vec<u64> = Vec::new();
    let mut unread = 0usize;
    let mut done = 0;
    let started = Instant::now();
    while done < cases {
        let mut peer = Peer::Remote(addr);
        let mut session = Session::new(&mut peer, Timing::default());
        let mut c = Conversation::new().connect(C1);
        for _ in 0..PER_SESSION.min(cases - done) {
            let cut = strategy.new_tree(&mut runner).expect("a cut").current();
            let len: usize = match &cut {
                Cut::Pieces(p) => p.iter().map(|p| p.len).sum(),
                _ => 1,
            };
            let message: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            c = c
                .send(C1, message.clone(), cut)
                .expect_bytes(C1, message.to_ascii_uppercase());
            done += 1;
        }
        session.play(&c.steps);
        let (outcome, _) = session.finish();
        assert!(outcome.misses.is_empty(), "{:?}", outcome.misses);
        let (entries, _) = outcome.transcript.entries();
        for e in entries {
            match e.event {
                Event::ReadByTarget { after_us } => confirmed.push(after_us),
                Event::NotYetRead { .. } => unread += 1,
                _ => {}
            }
        }
    }
    let took = started.elapsed();
    confirmed.sort_unstable();
    let at = |q: f64| confirmed[((confirmed.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!(
        "{busy} busy loops, {cases} cuts, {} pieces confirmed, {unread} not read in time, {:.2}s",
        confirmed.len(),
        took.as_secs_f64()
    );
    println!(
        "ms from write to confirmed read: min {:.3} median {:.3} p90 {:.3} p99 {:.3} max {:.3}",
        at(0.0),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
