//! The JSON report: one document per run, written when the run ends. Its
//! schema is [`RunResults`]: `suite`, `role`, `target`, `seed`, `isolation`
//! (`namespace`, `user-namespace` or `shared`), `checks`
//! (each with `id`, `level`, `verdict`, `detail`, `misses`, `notes`,
//! `duration_ms`, `transcript`, and more), and `summary` with a count per
//! verdict. A run that stopped early (exit status 3 or 4) still writes the
//! whole document, with `error` (`kind`: `target_failed` or `harness`, and
//! `message`) and the checks that ran.

use std::io::{self, Write};

use super::Reporter;
use crate::results::{CheckResult, RunEvent, RunResults, SCHEMA_VERSION};

pub struct JsonReporter<W: Write> {
    out: W,
    checks: Vec<CheckResult>,
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
    fn report(&mut self, event: &RunEvent) -> io::Result<()> {
        match event {
            RunEvent::CheckFinished { result, .. } => self.checks.push((*result).clone()),
            RunEvent::RunFinished {
                info,
                summary,
                error,
            } => {
                let doc = RunResults {
                    schema_version: SCHEMA_VERSION,
                    run: (*info).clone(),
                    checks: std::mem::take(&mut self.checks),
                    summary: (*summary).clone(),
                    error: error.cloned(),
                };
                serde_json::to_writer_pretty(&mut self.out, &doc)?;
                writeln!(self.out)?;
                self.out.flush()?;
            }
            _ => {}
        }
        Ok(())
    }
}
