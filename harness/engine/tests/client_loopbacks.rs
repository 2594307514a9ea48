//! The harness playing the server for a client under test: it listens on
//! both loopbacks on one port, accepts a client of either, and its
//! transcript says which one the client used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};

use sockspec_engine::conversations::conversation::Conversation;
use sockspec_engine::conversations::session::{Peer, Session};
use sockspec_engine::conversations::steps::Conn;
use sockspec_engine::conversations::transcript::Event;
use sockspec_engine::kernel::loopback::Pair;
use sockspec_engine::targets::fleet::Fleet;
use sockspec_engine::targets::target::{Launch, Workdir};
use sockspec_engine::{Timing, Transport};

/// A client process that only waits: the test connects in its place, so
/// the addresses used are known. Dropping the peer ends it.
fn idle_client(listeners: Pair<TcpListener>) -> Peer {
    let launch = Launch {
        command: "sleep 10".into(),
        port: Some(listeners.port()),
        stdin: true,
        transport: Transport::Stream,
        workdir: Workdir::Here,
        file: None,
        confine: None,
    };
    let process = Fleet::new().spawn(&launch).unwrap();
    Peer::Client { listeners, process }
}

fn has_ipv6_loopback() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

#[test]
fn clients_of_both_loopbacks_are_accepted_on_one_port_and_named_in_the_transcript() {
    if !has_ipv6_loopback() {
        eprintln!("skipped: this machine has no ::1");
        return;
    }
    let listeners = Pair::<TcpListener>::bind(None).unwrap();
    let port = listeners.port();
    let _v6 = TcpStream::connect((Ipv6Addr::LOCALHOST, port)).unwrap();
    let _v4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut peer = idle_client(listeners);
    let steps = Conversation::new().accept(Conn(1)).accept(Conn(2)).steps;
    let out = Session::new(&mut peer, Timing::default()).run(&steps);
    assert!(out.misses.is_empty(), "{:?}", out.misses);

    let (entries, _) = out.transcript.entries();
    let mut from: Vec<SocketAddr> = entries
        .filter_map(|e| match e.event {
            Event::Accepted { peer } => Some(peer),
            _ => None,
        })
        .collect();
    from.sort();
    let ips: Vec<IpAddr> = from.iter().map(SocketAddr::ip).collect();
    assert_eq!(
        ips,
        [
            IpAddr::from(Ipv4Addr::LOCALHOST),
            Ipv6Addr::LOCALHOST.into()
        ]
    );

    let text = sockspec_engine::report::wording::transcript(&out.transcript.records());
    for addr in &from {
        assert!(text.contains(&format!("accepted from {addr}")), "{text}");
    }
    let json = serde_json::to_string(&out.transcript.records()).unwrap();
    assert!(
        json.contains(&format!("\"peer\":\"[::1]:{}\"", from[1].port())),
        "{json}"
    );
}
