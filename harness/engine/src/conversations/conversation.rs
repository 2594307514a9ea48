//! A check as data: the steps of one conversation with the target.
//!
//! A suite builds a [`Conversation`] (connect, send this cut this way, expect
//! that within a deadline, half-close, reset, kill the target...) and the
//! engine's [`session`](crate::conversations::session) runs it. Because a conversation is a
//! value, a failure can print every step it took and `--seed` can replay it.
//! The steps themselves live in [`crate::conversations::steps`], one module per domain;
//! this is the vocabulary suites write them with.

use std::fmt;

use crate::conversations::steps::datagram::Seen;
use crate::conversations::steps::{
    Conn, DatagramStep, FileStep, FrameCut, FrameOut, FrameStep, IfNext, ProcessStep, Sock,
    StdioStep, Step, StreamStep,
};
use crate::conversations::transcript::Channel;
use crate::judge::body::{BodySpec, GivenFile};
use crate::judge::expect::Want;
use crate::judge::expect_datagram::DatagramWant;
use crate::judge::expect_frame::FrameWant;
use crate::model::cut::Cut;
use crate::model::level::Level;
use crate::model::timing::{Deadline, Pause};

/// The steps of one check's conversation, built with a small vocabulary.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Conversation {
    pub steps: Vec<Step>,
    /// A file made for a client under test before it starts (`{file}` in
    /// its command, `SOCKSPEC_FILE`): what it uploads.
    pub file: Option<GivenFile>,
    /// Whether the harness listens for a client under test with the
    /// smallest receive buffer the kernel allows, so the connections it
    /// accepts keep a small window: for a frame read slowly.
    pub small_receive_buffer: bool,
}

impl Conversation {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn step(mut self, step: impl Into<Step>) -> Self {
        self.steps.push(step.into());
        self
    }

    /// Whether any step needs the target's process: a check made of this
    /// conversation is skipped against a server the harness did not start.
    pub fn needs_process(&self) -> bool {
        self.steps.iter().any(Step::needs_process)
    }

    /// Whether any step looks at the files the target writes: the target
    /// of a check made of this conversation works in a folder of its own.
    pub fn touches_files(&self) -> bool {
        self.steps.iter().any(Step::touches_files)
    }

    pub fn connect(self, conn: Conn) -> Self {
        self.step(StreamStep::Connect {
            conn,
            small_buffers: false,
        })
    }

    /// Connects with the smallest socket buffers the kernel allows, so the
    /// target's sends meet a slow, small window.
    pub fn connect_small(self, conn: Conn) -> Self {
        self.step(StreamStep::Connect {
            conn,
            small_buffers: true,
        })
    }

    pub fn accept(self, conn: Conn) -> Self {
        self.step(StreamStep::Accept { conn })
    }

    pub fn send(self, conn: Conn, data: impl Into<Vec<u8>>, cut: Cut) -> Self {
        self.step(StreamStep::Send {
            conn,
            data: data.into(),
            cut,
        })
    }

    /// Sends several messages joined in one write.
    pub fn send_merged(self, conn: Conn, messages: &[&[u8]]) -> Self {
        let cut = Cut::Merged(messages.iter().map(|m| m.len()).collect());
        self.send(conn, messages.concat(), cut)
    }

    pub fn expect(self, conn: Conn, want: Want) -> Self {
        self.expect_at(conn, want, Level::Must)
    }

    pub fn expect_at(self, conn: Conn, want: Want, level: Level) -> Self {
        self.step(StreamStep::Expect { conn, want, level })
    }

    pub fn expect_bytes(self, conn: Conn, bytes: impl Into<Vec<u8>>) -> Self {
        self.expect(conn, Want::Bytes(bytes.into()))
    }

    pub fn expect_end(self, conn: Conn) -> Self {
        self.expect(conn, Want::End)
    }

    /// Expects any one of `alternatives` on `conn`, where the protocol
    /// allows several outcomes ("this reply, or a close"); a miss names
    /// them all and what arrived.
    pub fn expect_one_of(self, conn: Conn, alternatives: impl IntoIterator<Item = Want>) -> Self {
        self.expect(conn, Want::OneOf(alternatives.into_iter().collect()))
    }

    /// Records whether `want` arrives on `conn` within `within`, as the
    /// answer to `question`; never a miss.
    pub fn observe(
        self,
        conn: Conn,
        want: Want,
        within: Deadline,
        question: impl Into<String>,
    ) -> Self {
        self.step(StreamStep::Observe {
            conn,
            want,
            within,
            question: question.into(),
            noted: true,
        })
    }

    /// Waits until `want` arrives on `conn` or `within` passes, to pace
    /// the check; the answer to `question` is in the transcript only, as
    /// it is not what the check judges.
    pub fn wait_until(
        self,
        conn: Conn,
        want: Want,
        within: Deadline,
        question: impl Into<String>,
    ) -> Self {
        self.step(StreamStep::Observe {
            conn,
            want,
            within,
            question: question.into(),
            noted: false,
        })
    }

    pub fn shutdown_write(self, conn: Conn) -> Self {
        self.step(StreamStep::ShutdownWrite { conn })
    }

    pub fn reset(self, conn: Conn) -> Self {
        self.step(StreamStep::Reset { conn })
    }

    pub fn close(self, conn: Conn) -> Self {
        self.step(StreamStep::Close { conn })
    }

    /// Closes `conn`, with a reset if the target closed it first, so the
    /// target's port is free for it at once ([`StreamStep::Release`]).
    pub fn release(self, conn: Conn) -> Self {
        self.step(StreamStep::Release { conn })
    }

    pub fn expect_no_connection(self, within: Deadline, level: Level) -> Self {
        self.step(StreamStep::ExpectNoConnection { within, level })
    }

    /// Expects the framed answer `want` on `conn` (`cmd-len`, `cmd-json`),
    /// read as it arrives however large; what follows it is left for the
    /// next step.
    pub fn expect_frame(self, conn: Conn, want: FrameWant) -> Self {
        self.expect_frame_at(conn, want, Level::Must)
    }

    /// Expects the frame `want` on `conn`, read slowly through the smallest
    /// receive buffer the kernel allows (the harness listens so for a
    /// client): a sender whose partial sends are not continued loses bytes.
    pub fn expect_frame_slowly(mut self, conn: Conn, want: FrameWant) -> Self {
        self.small_receive_buffer = true;
        self.step(FrameStep::ExpectSlowly { conn, want })
    }

    pub fn expect_frame_at(self, conn: Conn, want: FrameWant, level: Level) -> Self {
        self.step(FrameStep::Expect {
            conn,
            want,
            level,
            or_end: false,
        })
    }

    /// Expects the framed answer `want` on `conn`, or an end of the stream
    /// (a close or a reset) before any byte of it: the two legal outcomes
    /// of a request the target may refuse by hanging up.
    pub fn expect_frame_or_end(self, conn: Conn, want: FrameWant, level: Level) -> Self {
        self.step(FrameStep::Expect {
            conn,
            want,
            level,
            or_end: true,
        })
    }

    /// Reads one framed answer on `conn` and records which of `ways` (each
    /// a name and the frame it reads as) it is, as the answer to
    /// `question`; never a miss.
    pub fn observe_frame(
        self,
        conn: Conn,
        ways: impl IntoIterator<Item = (String, FrameWant)>,
        question: impl Into<String>,
    ) -> Self {
        self.step(FrameStep::Observe {
            conn,
            ways: ways.into_iter().collect(),
            question: question.into(),
        })
    }

    /// Expects the last JSON header read on `conn` to hold the time its
    /// answer was made (`time`, near the harness's clock).
    pub fn expect_header_time(self, conn: Conn, level: Level) -> Self {
        self.step(FrameStep::ExpectTime { conn, level })
    }

    /// Answers on `conn` with `frame`, cut as `cut` says: the harness
    /// plays the server of a client under test.
    pub fn send_frame(self, conn: Conn, frame: FrameOut, cut: FrameCut) -> Self {
        self.step(FrameStep::Send { conn, frame, cut })
    }

    /// Sends one datagram from `sock` to the target.
    /// Expects the target to have stored `body` as the file `name` in its
    /// folder; with `any_name`, under whatever name it stored it.
    pub fn expect_file(self, name: &str, body: BodySpec, any_name: bool, level: Level) -> Self {
        self.step(FileStep::Expect {
            name: name.to_string(),
            body,
            any_name,
            level,
        })
    }

    /// Expects no file written anywhere in the target's scratch tree
    /// outside its folder.
    pub fn expect_no_file_outside(self, level: Level) -> Self {
        self.step(FileStep::ExpectNoneOutside { level })
    }

    /// Records what the target's folder holds.
    pub fn list_files(self) -> Self {
        self.step(FileStep::List)
    }

    /// Remembers the target's peak virtual memory.
    pub fn remember_memory(self) -> Self {
        self.step(ProcessStep::RememberMemory)
    }

    /// Expects the target's peak virtual memory grown by less than `mib`
    /// MiB since it was remembered.
    pub fn expect_memory_within(self, mib: u32) -> Self {
        self.step(ProcessStep::ExpectMemoryWithin { mib })
    }

    /// Starts the target again if it exited once done with its client;
    /// with `report`, the exit is an INFO miss.
    pub fn restart_if_exited(self, report: bool) -> Self {
        self.step(ProcessStep::RestartIfExited { report })
    }

    pub fn send_datagram(self, sock: Sock, data: impl Into<Vec<u8>>) -> Self {
        self.step(DatagramStep::Send {
            sock,
            data: data.into(),
        })
    }

    /// Expects the next datagram on `sock` to hold exactly `bytes`.
    pub fn expect_datagram(self, sock: Sock, bytes: impl Into<Vec<u8>>) -> Self {
        self.expect_datagram_at(sock, DatagramWant::Exactly(bytes.into()), Level::Must)
    }

    /// Expects `bytes` on `sock`, passing over white space after them in
    /// the datagram: for checks about something other than stray newlines.
    pub fn expect_datagram_line(self, sock: Sock, bytes: impl Into<Vec<u8>>) -> Self {
        self.expect_datagram_at(sock, DatagramWant::Line(bytes.into()), Level::Must)
    }

    pub fn expect_datagram_at(self, sock: Sock, want: DatagramWant, level: Level) -> Self {
        self.step(DatagramStep::Expect {
            sock,
            want,
            level,
            if_other: None,
        })
    }

    /// Expects exactly `bytes` on `sock`; another non-empty datagram is a
    /// miss that adds `if_other`, what it likely is.
    pub fn expect_datagram_or(
        self,
        sock: Sock,
        bytes: impl Into<Vec<u8>>,
        if_other: &'static str,
    ) -> Self {
        self.step(DatagramStep::Expect {
            sock,
            want: DatagramWant::Exactly(bytes.into()),
            level: Level::Must,
            if_other: Some(if_other),
        })
    }

    /// Expects the next datagrams on `sock` to hold exactly `wants`, one
    /// each, in any order.
    pub fn expect_each_datagram(self, sock: Sock, wants: Vec<Vec<u8>>) -> Self {
        self.step(DatagramStep::ExpectEach { sock, wants })
    }

    /// Sends `request` from the first of `from` (then from the next ones
    /// while nothing comes back) and expects `want` on any of the
    /// harness's sockets: the target still serves.
    pub fn expect_serving(
        self,
        from: &[Sock],
        request: impl Into<Vec<u8>>,
        want: impl Into<Vec<u8>>,
    ) -> Self {
        self.step(DatagramStep::ExpectServing {
            from: from.to_vec(),
            request: request.into(),
            want: want.into(),
        })
    }

    /// Expects no more datagrams on any socket until the late window has
    /// passed since the last one: a reply repeated by a timer or a second
    /// worker, hundreds of milliseconds later, is caught too.
    pub fn expect_no_late_datagram(self, meaning: &'static str) -> Self {
        self.expect_no_datagram_at(Deadline::Late, Level::Must, meaning)
    }

    /// Expects no more datagrams on any socket for a quiet moment; one that
    /// arrives is a miss that says `meaning`.
    pub fn expect_no_datagram(self, meaning: &'static str) -> Self {
        self.expect_no_datagram_at(Deadline::Quiet, Level::Must, meaning)
    }

    pub fn expect_no_datagram_at(
        self,
        within: Deadline,
        level: Level,
        meaning: &'static str,
    ) -> Self {
        self.step(DatagramStep::ExpectNone {
            within,
            level,
            meaning,
        })
    }

    /// Records whether a datagram arrives on `sock` within `within`, and
    /// its length, as the answer to `question`; never a miss.
    pub fn observe_datagram(self, sock: Sock, within: Deadline, question: &'static str) -> Self {
        self.step(DatagramStep::Observe {
            sock,
            within,
            question,
            seen_of: None,
        })
    }

    /// Records what an echo server saw of a request of `sent` bytes, from
    /// the length of its reply on `sock`; never a miss.
    pub fn observe_echo_length(self, sock: Sock, sent: usize, buf: usize) -> Self {
        self.step(DatagramStep::Observe {
            sock,
            within: Deadline::Reply,
            question: "what the server received of the long datagram",
            seen_of: Some(Seen { sent, buf }),
        })
    }

    /// Expects the target's output to show the port `sock` sends from.
    pub fn expect_sender_printed(self, sock: Sock, level: Level) -> Self {
        self.step(DatagramStep::ExpectSenderPrinted { sock, level })
    }

    pub fn pause(self, pause: Pause) -> Self {
        self.step(Step::Pause(pause))
    }

    /// Waits until the target has acted on what it was just sent: it
    /// closed what the harness closed and sleeps, or it exited; a datagram
    /// server has taken every datagram it is going to take.
    pub fn settle(self) -> Self {
        self.step(Step::Settle)
    }

    /// Runs `round`'s steps `times` times.
    /// A message the target may send or leave out: when `message` comes
    /// next on `on` (a connection's next bytes, a socket's next datagram),
    /// it is taken and `then` answers it; otherwise the conversation goes
    /// on with what came. Records `sent` or `skipped`, as the target did.
    pub fn if_next(
        self,
        on: impl Into<Channel>,
        message: impl Into<Vec<u8>>,
        then: Conversation,
        sent: &'static str,
        skipped: &'static str,
    ) -> Self {
        self.step(Step::IfNext(Box::new(IfNext {
            on: on.into(),
            message: message.into(),
            then: then.steps,
            sent,
            skipped,
        })))
    }

    pub fn repeat(self, times: u32, round: Conversation) -> Self {
        self.step(Step::Repeat {
            times,
            steps: round.steps,
        })
    }

    pub fn expect_idle(self) -> Self {
        self.step(ProcessStep::ExpectIdle)
    }

    pub fn count_descriptors(self) -> Self {
        self.step(ProcessStep::CountDescriptors)
    }

    pub fn expect_descriptors_back(self, slack: usize) -> Self {
        self.step(ProcessStep::ExpectDescriptorsBack { slack })
    }

    pub fn kill_target(self) -> Self {
        self.step(ProcessStep::KillTarget)
    }

    pub fn restart_target(self) -> Self {
        self.step(ProcessStep::RestartTarget)
    }

    /// Gives the client a file named `name` (the last component only)
    /// holding `body`, made in its scratch directory before it starts.
    pub fn give_file(mut self, name: &str, body: BodySpec) -> Self {
        self.file = Some(GivenFile::new(name, body));
        self
    }

    /// Types `before`, the given file's path and a newline, for a client
    /// that asks for the file on its standard input (`before` empty) or
    /// reads commands such as `put <path>` (`before` "put ").
    pub fn type_file_path(self, before: &str) -> Self {
        self.step(StdioStep::InputFilePath {
            before: before.to_string(),
        })
    }

    /// Ends the client and starts it again with a file named `name`
    /// holding `body`.
    pub fn start_client_with(self, name: &str, body: BodySpec) -> Self {
        self.step(ProcessStep::StartClientWith {
            file: GivenFile::new(name, body),
        })
    }

    pub fn input(self, text: &str) -> Self {
        self.step(StdioStep::Input(text.as_bytes().to_vec()))
    }

    pub fn end_input(self) -> Self {
        self.step(StdioStep::EndInput)
    }

    /// Records whether the target printed `text` whole, or in parts with
    /// the bytes that went elsewhere; looked at once `until` is printed or
    /// the target has ended.
    pub fn observe_printed_whole(self, text: impl Into<Vec<u8>>, until: &str) -> Self {
        self.step(StdioStep::ObserveWhole {
            text: text.into(),
            until: until.as_bytes().to_vec(),
        })
    }

    pub fn expect_output(self, text: &str) -> Self {
        self.step(StdioStep::ExpectOutput {
            text: text.to_string(),
            level: Level::Must,
            if_missing: None,
        })
    }

    /// Expects `text` on the target's output; a miss adds `if_missing`, the
    /// likely reason.
    pub fn expect_output_or(self, text: &str, level: Level, if_missing: &'static str) -> Self {
        self.step(StdioStep::ExpectOutput {
            text: text.to_string(),
            level,
            if_missing: Some(if_missing),
        })
    }

    /// Expects the target to exit with status 0 after its input ended,
    /// with `not_on_stderr` (if given) nowhere at the end of its stderr.
    /// Expects each of `parts` on the target's output or error output, in
    /// any order; a miss weighs `level` and adds `if_missing`.
    pub fn expect_answer(self, parts: &[&str], level: Level, if_missing: &'static str) -> Self {
        self.step(StdioStep::ExpectAnswer {
            parts: parts.iter().map(|p| p.to_string()).collect(),
            level,
            if_missing: Some(if_missing),
        })
    }

    pub fn expect_clean_exit(self, level: Level, not_on_stderr: Option<&'static str>) -> Self {
        self.step(StdioStep::ExpectCleanExit {
            level,
            not_on_stderr,
        })
    }

    /// Appends another conversation's steps.
    pub fn then(mut self, other: Conversation) -> Self {
        self.steps.extend(other.steps);
        self
    }
}

impl fmt::Display for Conversation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f, "{:>3}. {step}", i + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_prints_as_numbered_steps() {
        let c = Conversation::new()
            .connect(Conn(1))
            .send(Conn(1), "hi", Cut::Whole)
            .expect_bytes(Conn(1), "HI");
        assert_eq!(
            c.to_string(),
            "  1. connect c1 (TCP_NODELAY)\n  2. send on c1 \"hi\" (2 bytes), cut: whole\n  3. expect on c1 \"HI\"\n"
        );
    }

    #[test]
    fn a_conversation_needs_the_process_when_any_step_does() {
        let talk = Conversation::new().connect(Conn(1)).close(Conn(1));
        assert!(!talk.needs_process());
        assert!(talk.clone().expect_idle().needs_process());
        let nested = Conversation::new().repeat(2, Conversation::new().count_descriptors());
        assert!(nested.needs_process());
    }

    #[test]
    fn a_given_file_is_the_conversation_s_and_its_path_typing_and_next_client_print_as_steps() {
        let body = BodySpec::Seeded { seed: 1, len: 10 };
        let c = Conversation::new()
            .give_file("回顾.mp4", body.clone())
            .type_file_path("put ")
            .start_client_with("b.bin", body.clone())
            .type_file_path("");
        assert_eq!(c.file, Some(GivenFile::new("回顾.mp4", body)));
        assert!(!c.small_receive_buffer);
        assert_eq!(
            c.to_string(),
            "  1. type \"put \" then the given file's path and a newline\n  \
             2. start the client again with a file \"b.bin\" of 10 bytes\n  \
             3. type the given file's path and a newline\n"
        );
    }

    #[test]
    fn a_frame_read_slowly_asks_for_a_listener_with_the_smallest_receive_buffer() {
        let want = FrameWant {
            framing: crate::judge::expect_frame::Framing::Length {
                prefix: crate::judge::frame::PrefixFormat::I32Le,
            },
            body: BodySpec::Literal(b"x".to_vec()),
            tolerant: false,
            header: Default::default(),
        };
        let c = Conversation::new()
            .accept(Conn(1))
            .expect_frame_slowly(Conn(1), want);
        assert!(c.small_receive_buffer);
    }
}
