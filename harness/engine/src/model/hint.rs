//! Choosing a check's hint from what the harness saw. A check's plain hint
//! is right for the usual mistake; where the evidence shows another (the
//! program exited on its own, it is written in another language, its
//! stderr names the failing call), a hint written for that evidence is
//! chosen instead, and none is better than one the evidence contradicts.

use std::fmt;

/// The language a target is written in, as its command line and the shape
/// of its stderr show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Python,
    Node,
    Java,
    /// A binary run directly (C, C++, Rust, Go).
    Compiled,
    Unknown,
}

impl Language {
    /// The language of `command`, or failing that of the traceback in
    /// `stderr`: an interpreter named in the command (`node`, `java`,
    /// `python3`), a source file it runs, or a binary run by its path.
    pub fn of(command: &str, stderr: &str) -> Language {
        for word in command.split_whitespace() {
            let word = word.trim_matches(|c| c == '\'' || c == '"');
            let name = word.rsplit('/').next().unwrap_or(word);
            if name == "node" || name == "nodejs" || name.ends_with(".js") || name.ends_with(".mjs")
            {
                return Language::Node;
            }
            if name == "java" || name.ends_with(".java") || name.ends_with(".jar") {
                return Language::Java;
            }
            if name.starts_with("python") || name.ends_with(".py") {
                return Language::Python;
            }
        }
        if stderr.contains("Traceback (most recent call last)") {
            return Language::Python;
        }
        if stderr.contains("Exception in thread") {
            return Language::Java;
        }
        if stderr.contains("node:internal") || stderr.contains("    at ") {
            return Language::Node;
        }
        match command.split_whitespace().next() {
            Some(first) if first.starts_with("./") || first.starts_with('/') => Language::Compiled,
            _ => Language::Unknown,
        }
    }
}

/// The length of a reply to a datagram sent to learn the target's receive
/// size: an echo is as long as what its receive took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoLength {
    /// The datagram sent.
    pub sent: usize,
    /// Its reply.
    pub reply: usize,
    /// The receive size of the profile (BUF).
    pub buf: usize,
}

impl EchoLength {
    /// The receive size the reply shows when it is not BUF: shorter than
    /// both the datagram and BUF, the receive took no more; longer than
    /// BUF, it took at least that.
    fn receive(&self) -> Option<Receive> {
        if self.reply < self.sent && self.reply < self.buf {
            Some(Receive::Less(self.reply))
        } else if self.reply > self.buf {
            Some(Receive::More(self.reply))
        } else {
            None
        }
    }
}

/// How a target's receive size differs from BUF, as an echo shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Receive {
    Less(usize),
    More(usize),
}

/// What the harness holds about a target once a check has run.
#[derive(Clone, Debug)]
pub struct Evidence<'a> {
    pub language: Language,
    /// How the target ended when it exited on its own during the check
    /// (`exit status 0`), before the harness ended it.
    pub exited: Option<String>,
    /// The end of its stderr.
    pub stderr: &'a str,
    /// The files its processes had mapped when the check ended, one a
    /// line: the libraries and extension modules it loaded.
    pub mapped: &'a str,
    /// The lengths of the echoes the check asked for to learn the
    /// target's receive size.
    pub echoes: &'a [EchoLength],
    /// The steps the check missed at, as printed.
    pub missed_at: &'a [String],
    /// What the check's misses said, one a line.
    pub details: &'a str,
}

impl Evidence<'_> {
    /// The first receive size an echo shows that is not BUF.
    fn receive(&self) -> Option<Receive> {
        self.echoes.iter().find_map(EchoLength::receive)
    }
}

/// How a clean exit is described (`target::describe_exit`).
const CLEAN_EXIT: &str = "exit status 0";

/// When a hint written for particular evidence applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// The target exited on its own during the check, with status 0: it
    /// chose to stop, it did not crash.
    Exited,
    /// The target is written in this language.
    Language(Language),
    /// Its stderr holds this text (an exception and the call it failed in).
    OnStderr(&'static str),
    /// One of its processes had a file of this name mapped: a library or
    /// extension module it uses (`_asyncio` for Python's asyncio).
    Mapped(&'static str),
    /// An echo shows the target receives fewer bytes at a time than BUF
    /// (`{receive}` in the text is how many).
    ReceivesLess,
    /// An echo shows it receives more than BUF (`{receive}`: at least how
    /// many).
    ReceivesMore,
    /// The check missed at a step whose printed form holds this text: how
    /// far the conversation got (where a client that exited stopped).
    MissedAt(&'static str),
    /// A miss of the check said this: a finding another check owns (the
    /// children that never exit spin).
    InDetail(&'static str),
    /// Both hold.
    Both(&'static When, &'static When),
}

impl When {
    fn holds(&self, ev: &Evidence) -> bool {
        match self {
            When::Exited => ev.exited.as_deref() == Some(CLEAN_EXIT),
            When::Language(l) => ev.language == *l,
            When::OnStderr(text) => ev.stderr.contains(text),
            When::Mapped(name) => ev.mapped.lines().any(|l| l.contains(name)),
            When::ReceivesLess => matches!(ev.receive(), Some(Receive::Less(_))),
            When::ReceivesMore => matches!(ev.receive(), Some(Receive::More(_))),
            When::MissedAt(text) => ev.missed_at.iter().any(|s| s.contains(text)),
            When::InDetail(text) => ev.details.contains(text),
            When::Both(a, b) => a.holds(ev) && b.holds(ev),
        }
    }
}

/// A hint for particular evidence; `{exit}` in its text is replaced by how
/// the target ended, `{receive}` by the receive size an echo showed, and
/// `{crash}` (in a step's hint too) by a clause on the crash its stderr
/// shows, or by nothing when it did not crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alternative {
    pub when: When,
    pub text: &'static str,
}

impl fmt::Display for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text)
    }
}

/// The hint to show: the missed step's own, which knows what it saw; else
/// the first alternative whose evidence holds; else the check's plain hint.
pub fn choose(
    step: Option<&str>,
    plain: Option<&str>,
    alternatives: &[Alternative],
    ev: &Evidence,
) -> Option<String> {
    if let Some(h) = step {
        return Some(h.replace("{crash}", &crash(ev)));
    }
    if let Some(a) = alternatives.iter().find(|a| a.when.holds(ev)) {
        let exit = ev.exited.as_deref().unwrap_or("an exit");
        let receive = match ev.receive() {
            Some(Receive::Less(n) | Receive::More(n)) => n.to_string(),
            None => "N".to_string(),
        };
        return Some(
            a.text
                .replace("{exit}", exit)
                .replace("{receive}", &receive)
                .replace("{crash}", &crash(ev)),
        );
    }
    plain.map(String::from)
}

/// "; then it crashed (exit status 1): its stderr shows the KeyError" for a
/// target that exited with a failure during the check, naming the error
/// its stderr ends with when it names one; nothing otherwise.
fn crash(ev: &Evidence) -> String {
    let Some(exit) = ev.exited.as_deref().filter(|e| *e != CLEAN_EXIT) else {
        return String::new();
    };
    let last = ev
        .stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty());
    let error = last
        .and_then(|l| l.split_once(':'))
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty() && !n.contains(char::is_whitespace));
    match error {
        Some(name) => format!("; then it crashed ({exit}): its stderr shows the {name}"),
        None => format!("; then it crashed ({exit}): its stderr shows how"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(language: Language, exited: Option<&str>) -> Evidence<'static> {
        Evidence {
            language,
            exited: exited.map(String::from),
            stderr: "",
            mapped: "",
            echoes: &[],
            missed_at: &[],
            details: "",
        }
    }

    #[test]
    fn the_language_comes_from_the_command_then_the_traceback() {
        assert_eq!(Language::of("node server.js {port}", ""), Language::Node);
        assert_eq!(Language::of("python3 s.py 1", ""), Language::Python);
        assert_eq!(
            Language::of("sh fixtures/java.sh Server 1", ""),
            Language::Unknown
        );
        assert_eq!(Language::of("java -cp x Server", ""), Language::Java);
        assert_eq!(Language::of("./server 1", ""), Language::Compiled);
        assert_eq!(
            Language::of("sh run.sh", "Traceback (most recent call last):\n"),
            Language::Python
        );
    }

    #[test]
    fn the_evidence_chooses_before_the_plain_hint() {
        let alts = [Alternative {
            when: When::Exited,
            text: "it ended with {exit}",
        }];
        let e = ev(Language::Python, Some("exit status 0"));
        assert_eq!(
            choose(None, Some("plain"), &alts, &e).as_deref(),
            Some("it ended with exit status 0")
        );
        let e = ev(Language::Python, None);
        assert_eq!(
            choose(None, Some("plain"), &alts, &e).as_deref(),
            Some("plain")
        );
        assert_eq!(
            choose(Some("step"), Some("plain"), &alts, &e).as_deref(),
            Some("step")
        );
    }

    #[test]
    fn a_crash_is_named_from_the_stderr_only_when_there_was_one() {
        let mut e = ev(Language::Python, Some("exit status 1"));
        e.stderr = "Traceback (most recent call last):\n  ...\nKeyError: <socket fd=4>\n";
        assert_eq!(
            choose(Some("lost{crash}"), None, &[], &e).as_deref(),
            Some("lost; then it crashed (exit status 1): its stderr shows the KeyError")
        );
        let e = ev(Language::Python, None);
        assert_eq!(
            choose(Some("lost{crash}"), None, &[], &e).as_deref(),
            Some("lost")
        );
    }

    #[test]
    fn a_language_gets_its_own_words() {
        let alts = [Alternative {
            when: When::Language(Language::Node),
            text: "keep the Buffer",
        }];
        let e = ev(Language::Node, None);
        assert_eq!(
            choose(None, Some("bytes.upper()"), &alts, &e).as_deref(),
            Some("keep the Buffer")
        );
    }

    #[test]
    fn an_echo_shorter_than_buf_shows_the_receive_size() {
        let alts = [
            Alternative {
                when: When::ReceivesLess,
                text: "it receives {receive} bytes",
            },
            Alternative {
                when: When::ReceivesMore,
                text: "it receives at least {receive} bytes",
            },
        ];
        let echo = |reply| EchoLength {
            sent: 2048,
            reply,
            buf: 1024,
        };
        let mut e = ev(Language::Java, None);
        let shorter = [echo(512)];
        e.echoes = &shorter;
        assert_eq!(
            choose(None, None, &alts, &e).as_deref(),
            Some("it receives 512 bytes")
        );
        let longer = [echo(2048)];
        e.echoes = &longer;
        assert_eq!(
            choose(None, None, &alts, &e).as_deref(),
            Some("it receives at least 2048 bytes")
        );
        // An echo as long as BUF shows nothing about the receive size: a
        // reply that differs in its bytes gets no hint about sizes.
        let even = [echo(1024)];
        e.echoes = &even;
        assert_eq!(choose(None, None, &alts, &e), None);
        // Nor does one as long as the whole datagram, BUF being larger.
        let whole = [EchoLength {
            sent: 65_507,
            reply: 65_507,
            buf: 65_536,
        }];
        e.echoes = &whole;
        assert_eq!(choose(None, None, &alts, &e), None);
    }

    #[test]
    fn where_the_check_missed_tells_where_an_exited_client_stopped() {
        const AT_QUIT: When = When::MissedAt("after the quit");
        let alts = [Alternative {
            when: When::Both(&When::Exited, &AT_QUIT),
            text: "it ended ({exit}) at the quit line",
        }];
        let mut e = ev(Language::Python, Some("exit status 0"));
        let missed = ["expect a datagram \"after the quit\"".to_string()];
        e.missed_at = &missed;
        assert_eq!(
            choose(None, Some("plain"), &alts, &e).as_deref(),
            Some("it ended (exit status 0) at the quit line")
        );
        let earlier = ["expect a datagram \"before the quit\"".to_string()];
        e.missed_at = &earlier;
        assert_eq!(
            choose(None, Some("plain"), &alts, &e).as_deref(),
            Some("plain")
        );
    }
}
