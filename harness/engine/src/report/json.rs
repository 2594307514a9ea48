//! The JSON report: one document per run, written when the run ends. Its
//! schema is [`RunResults`](crate::results::RunResults): `schema_version`,
//! `suite`, `role`, `target`, `seed`, `isolation`
//! (`namespace`, `user-namespace` or `shared`), `checks`
//! (each with `id`, `level`, `verdict`, `detail`, `misses`, `notes`,
//! `duration_ms`, `transcript`, and more), and `summary` with a count per
//! verdict. A run that stopped early (exit status 3 or 4) still writes the
//! whole document, with `error` (`kind`: `target_failed` or `harness`, and
//! `message`) and the checks that ran.

use std::io::{self, Write};

use serde::Serialize;

use super::{detail, Reporter};
use crate::results::{CheckResult, RunError, RunEvent, RunInfo, Summary, SCHEMA_VERSION};

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
                ..
            } => {
                let checks = std::mem::take(&mut self.checks);
                let doc = Document {
                    schema_version: SCHEMA_VERSION,
                    run: info,
                    checks: checks
                        .iter()
                        .map(|result| Written {
                            result,
                            detail: detail(result),
                        })
                        .collect(),
                    summary,
                    error: *error,
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

/// The document: [`RunResults`](crate::results::RunResults) as written,
/// each check with its `detail` beside its fields, for readers that want
/// one text (and for the manifest's diffs).
#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    #[serde(flatten)]
    run: &'a RunInfo,
    checks: Vec<Written<'a>>,
    summary: &'a Summary,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a RunError>,
}

/// A check's result with its detail, as the terminal shows it.
#[derive(Serialize)]
struct Written<'a> {
    #[serde(flatten)]
    result: &'a CheckResult,
    detail: String,
}
