//! The JSON report: one document per run, written when the run ends.
//!
//! Shape: `suite`, `role`, `target`, `seed`, `checks` (each with `id`,
//! `level`, `verdict`, `detail`, `duration_ms`, `transcript`, and more), and
//! `summary` with a count per verdict. A run that stopped early (exit
//! status 3 or 4) still writes the whole document, with `error` (`kind`:
//! `target_failed` or `harness`, and `message`) and the checks that ran.

use std::io::{self, Write};

use serde_json::{json, Map, Value};

use super::{Event, Reporter};
use crate::verdict::Verdict;

pub struct JsonReporter<W: Write> {
    out: W,
    checks: Vec<Value>,
}

impl<W: Write> JsonReporter<W> {
    pub fn new(out: W) -> Self {
        JsonReporter {
            out,
            checks: Vec::new(),
        }
    }
}

impl<W: Write> Reporter for JsonReporter<W> {
    fn report(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::CheckFinished { result: r, .. } => {
                self.checks.push(json!({
                    "id": r.id.as_str(),
                    "level": r.level.as_str(),
                    "verdict": r.verdict.as_str(),
                    "summary": r.summary,
                    "expectation": r.expectation,
                    "detail": r.detail,
                    "duration_ms": r.duration.as_secs_f64() * 1000.0,
                    "deliberate_ms": r.deliberate.as_secs_f64() * 1000.0,
                    "steps": r.conversation.lines().map(str::trim).collect::<Vec<_>>(),
                    "transcript": r.transcript.records(),
                    "stderr_tail": r.stderr_tail,
                }));
            }
            Event::RunFinished {
                info,
                summary,
                error,
            } => {
                let mut counts = Map::new();
                for v in Verdict::ALL {
                    counts.insert(v.as_str().to_string(), json!(summary.count(v)));
                }
                counts.insert("total".into(), json!(info.total));
                counts.insert(
                    "duration_ms".into(),
                    json!(summary.duration.as_secs_f64() * 1000.0),
                );
                counts.insert("peak_rss_kib".into(), json!(summary.peak_rss_kib));
                counts.insert(
                    "deliberate_ms".into(),
                    json!(summary.deliberate.as_secs_f64() * 1000.0),
                );
                let mut doc = json!({
                    "suite": info.suite,
                    "role": info.role.as_str(),
                    "target": info.target,
                    "seed": info.seed,
                    "checks": std::mem::take(&mut self.checks),
                    "summary": counts,
                });
                if let Some(e) = error {
                    doc["error"] = json!({ "kind": e.kind(), "message": e.message() });
                }
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                writeln!(self.out)?;
                self.out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }
}
