//! The harness's side of one stream connection: its socket, the bytes
//! received and not yet matched (a reply may come in any number of pieces,
//! or stuck to the next one), how it ended, and the thread writing the
//! current cut. The stream domain keeps one per open connection in its
//! [`StreamState`]; the stream steps work on them.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::thread::JoinHandle;

use std::time::Instant;

use super::writer::Written;
use super::At;
use crate::kernel::confirm::Watch;
use crate::model::level::Level;

/// Most bytes read in one receive; also how far past an expectation the
/// harness reads, so a flooding target costs bounded memory.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

pub use crate::model::names::Conn;

/// How a connection ended, as seen by the harness.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    Closed,
    Reset,
}

/// The harness's side of one connection.
pub(crate) struct Link {
    pub(crate) stream: TcpStream,
    /// Received and not yet matched.
    pub(crate) buffered: Vec<u8>,
    pub(crate) ended: Option<End>,
    pub(crate) writer: Option<JoinHandle<Written>>,
    /// Bytes the harness wrote on the connection so far: what the target's
    /// socket must show received before it has read everything.
    pub(crate) sent: u64,
    /// The kernel's view of the target's end, made on the session's thread
    /// the first time a cut needs it; a running writer holds it.
    pub(crate) watch: Option<Watch>,
    /// Whether the target's processes were noted once a reply came on this
    /// connection (the process serving it is alive then).
    pub(crate) served_by_noted: bool,
    /// A whole message ([`crate::judge::expect::Want::Message`]) was matched and
    /// the harness answered without waiting: what arrives before `until`
    /// followed it, and is judged when the connection is closed or the
    /// conversation ends.
    pub(crate) message_end: Option<MessageEnd>,
}

/// What the stream domain keeps during a conversation.
pub(crate) struct StreamState {
    /// The harness's side of each connection.
    pub(crate) links: BTreeMap<Conn, Link>,
    /// Connections accepted only to be judged (a client's second one),
    /// ended with the rest when the conversation is over.
    pub(crate) strays: Vec<TcpStream>,
    /// Where each receive lands before it joins a link's buffer.
    pub(crate) scratch: Vec<u8>,
}

impl Default for StreamState {
    fn default() -> StreamState {
        StreamState {
            links: BTreeMap::new(),
            strays: Vec::new(),
            scratch: vec![0u8; READ_CHUNK],
        }
    }
}

/// The end of a whole message, still to be judged.
pub(crate) struct MessageEnd {
    pub(crate) level: Level,
    pub(crate) until: Instant,
    /// The expectation that matched it, as printed.
    pub(crate) step: String,
    /// Where that expectation is in the conversation.
    pub(crate) at: At,
}

impl Link {
    pub(crate) fn new(stream: TcpStream) -> Link {
        Link {
            stream,
            buffered: Vec::new(),
            ended: None,
            writer: None,
            sent: 0,
            watch: None,
            served_by_noted: false,
            message_end: None,
        }
    }
}

/// Waits for the thread writing the current cut, if any, and takes back
/// the count of bytes written and the kernel's view.
pub(crate) fn join_writer(link: &mut Link) {
    if let Some(w) = link.writer.take() {
        if let Ok(written) = w.join() {
            link.sent = written.total;
            link.watch = written.watch;
        }
    }
}
