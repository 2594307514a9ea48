//! A split cut is made, not hoped for: a server that records the size of
//! each of its receives gets exactly the pieces of every generated cut, one
//! receive per piece, while two busy loops keep both cores loaded.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use sockspec_engine::conversations::session::{Peer, Session};
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::conversations::transcript::Event;
use sockspec_engine::kernel::ports;
use sockspec_engine::{Conversation, Cut, Timing};

const C1: Conn = Conn(1);

/// Generated cuts sent in a row on one connection.
const CASES: usize = 100;

/// The fixture's receive size: pieces up to it arrive in one receive each.
const BUF: usize = 1024;

/// The longest the busy loops spin, should the test hang.
const BUSY_AT_MOST: Duration = Duration::from_secs(120);

/// Threads that spin until dropped, or for [`BUSY_AT_MOST`].
struct Busy {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Busy {
    fn start(n: usize) -> Busy {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    let until = Instant::now() + BUSY_AT_MOST;
                    let mut x: u64 = 1;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_mul(6364136223846793005) + 1);
                        }
                    }
                })
            })
            .collect();
        Busy { stop, threads }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The recording server, ended when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Starts `server_records_reads.py`, writing its receive sizes to `reads`,
/// and waits until it listens (watched in the kernel's socket table, so no
/// probe connection shows up among its receives).
fn start_server(reads: &Path) -> Server {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new("python3")
        .arg("fixtures/tcp-upper/server_records_reads.py")
        .arg(port.to_string())
        .arg(reads)
        .current_dir(repo_root())
        .stdout(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let server = Server {
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ports::listeners(port).is_empty() {
        assert!(Instant::now() < deadline, "the server never listened");
        thread::sleep(Duration::from_millis(5));
    }
    server
}

/// The receive sizes recorded since the first `seen`.
fn new_reads(reads: &Path, seen: &mut usize) -> Vec<usize> {
    let text = std::fs::read_to_string(reads).unwrap_or_default();
    let sizes: Vec<usize> = text
        .lines()
        .skip(*seen)
        .map(|l| l.parse().unwrap_or(usize::MAX))
        .collect();
    *seen += sizes.len();
    sizes
}

/// The lengths of the writes a cut makes of a message it covers exactly.
fn pieces(cut: &Cut) -> Vec<usize> {
    match cut {
        Cut::Pieces(p) => p.iter().map(|p| p.len).collect(),
        other => panic!("generated cuts are pieces, not {other}"),
    }
}

#[test]
fn every_piece_of_a_generated_cut_is_read_on_its_own_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let reads = dir.path().join("reads");
    let server = start_server(&reads);
    let _busy = Busy::start(2);
    let mut peer = Peer::Remote(server.addr);
    let mut session = Session::new(&mut peer, Timing::default());
    assert!(session.play(&Conversation::new().connect(C1).steps));
    let strategy = Cut::arbitrary(6, BUF);
    let mut runner = TestRunner::deterministic();
    let mut seen = 0;
    for case in 1..=CASES {
        let cut = strategy.new_tree(&mut runner).unwrap().current();
        let lens = pieces(&cut);
        let message: Vec<u8> = (0..lens.iter().sum::<usize>())
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let exchange = Conversation::new()
            .send(C1, message.clone(), cut.clone())
            .expect_bytes(C1, message.to_ascii_uppercase());
        if !session.play(&exchange.steps) {
            let (outcome, _) = session.finish();
            panic!(
                "case {case} ({cut}) missed: {:?}\n{}",
                outcome.misses,
                sockspec_engine::report::wording::transcript(&outcome.transcript.records())
            );
        }
        assert_eq!(
            new_reads(&reads, &mut seen),
            lens,
            "case {case}: the server's receives are not the pieces of {cut}"
        );
    }
    let (outcome, _) = session.finish();
    assert!(outcome.unmade.is_empty(), "{:?}", outcome.unmade);
    let (entries, _) = outcome.transcript.entries();
    let notes: Vec<String> = entries
        .filter_map(|e| match &e.event {
            Event::Note { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("confirmed by the kernel")),
        "{notes:?}"
    );
    assert!(!notes.iter().any(|n| n.contains("time-paced")), "{notes:?}");
}
