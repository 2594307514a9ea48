//! The progress of a grading on the terminal.

use std::io::{self, IsTerminal};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::summary::{self, Row};

/// What the terminal shows while a class is graded: a bar of submissions
/// done, running and left on a terminal; one line per finished submission
/// otherwise. Never in colour.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    running: usize,
}

impl Progress {
    pub(super) fn new(total: usize, resumed: usize) -> Progress {
        if resumed > 0 {
            eprintln!(
                "sockspec grade: {resumed} submission{} already graded, kept (--resume)",
                if resumed == 1 { "" } else { "s" }
            );
        }
        let bar = io::stderr().is_terminal().then(|| {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {pos}/{len} graded, {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let p = Progress {
            bar,
            total,
            done: 0,
            running: 0,
        };
        p.show();
        p
    }

    pub(super) fn show(&self) {
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(format!(
                "{} running, {} left",
                self.running,
                self.total - self.done - self.running
            ));
        }
    }

    pub(super) fn say(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    pub(super) fn started(&mut self, _name: &str) {
        self.running += 1;
        self.show();
    }

    pub(super) fn requeued(&mut self, name: &str) {
        self.running -= 1;
        self.say(format!(
            "{name}: its fixed port was held by another process; it runs again after the others"
        ));
        self.show();
    }

    pub(super) fn finished(&mut self, row: &Row) {
        self.running -= 1;
        self.done += 1;
        let width = self.total.to_string().len();
        self.say(format!(
            "[{:>width$}/{}] {:<10} {:>6} {}",
            self.done,
            self.total,
            row.status.as_str(),
            format!(
                "{}/{}",
                summary::points(row.score),
                summary::points(row.max_score)
            ),
            row.submission
        ));
        self.show();
    }

    pub(super) fn end(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
