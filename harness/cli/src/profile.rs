//! Assignment profiles (`--profile FILE`, TOML): a course assignment's
//! suite and role, its parameters (the names `--param` takes), and per
//! check its points, visibility, whether it runs and what it depends on.
//! `sockspec profile SUITE` prints a starting profile with every check at
//! one point and every parameter at its default, commented.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;
use sockspec_engine::conversations::check::{Role, Suite};
use sockspec_engine::model::profile::{ParamSpec, Profile};
use sockspec_engine::results::{FlakyCredit, Grading, Visibility};

use crate::suggest;

/// A profile as written in its file.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct AssignmentProfile {
    pub suite: String,
    /// `server` or `client`: which checks the profile grades.
    pub role: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Checks a known deviation of the target is expected to miss.
    #[serde(default)]
    pub xfail: Vec<String>,
    /// How many more times a missed check runs (`--retries`).
    pub retries: Option<u32>,
    /// How a FLAKY check scores: `full`, `half` (the default) or `none`.
    #[serde(default)]
    pub flaky: FlakyCredit,
    #[serde(default)]
    pub checks: BTreeMap<String, CheckEntry>,
}

/// What a profile says of one check.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct CheckEntry {
    /// What the check is worth; read by graders of the reports.
    pub points: Option<f64>,
    pub visibility: Option<Visibility>,
    /// Whether it runs at all.
    #[serde(default = "yes")]
    pub run: bool,
    /// Checks that must pass first: when one misses, this one is skipped
    /// with the reason.
    #[serde(default)]
    pub depends: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What a profile asks of a run, checked against its suite.
#[derive(Debug, Default)]
pub struct Asked {
    pub role: Option<Role>,
    /// Ids of the checks that do not run.
    pub skipped: Vec<String>,
    pub xfail: Vec<String>,
    pub retries: Option<u32>,
    pub depends: BTreeMap<String, Vec<String>>,
    /// Each listed check's points and visibility.
    pub grading: BTreeMap<String, Grading>,
    /// How a FLAKY check scores, for checks the profile does not list.
    pub flaky: FlakyCredit,
}

/// Reads the profile at `path` for `suite`, applying its parameters to
/// `params` (before any `--param`, which overrides them). An error names
/// the file and what to change.
pub fn load(path: &Path, suite: &Suite, params: &mut Profile) -> Result<Asked, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --profile {}: {e}", path.display()))?;
    let file: AssignmentProfile = toml::from_str(&text)
        .map_err(|e| format!("--profile {} is not a valid profile: {e}", path.display()))?;
    let at = |what: String| format!("--profile {}: {what}", path.display());
    if file.suite != suite.name {
        return Err(at(format!(
            "it is a profile for {}, and this run is of {}",
            file.suite, suite.name
        )));
    }
    let role = match file.role.as_deref() {
        None => None,
        Some("server") => Some(Role::Server),
        Some("client") => Some(Role::Client),
        Some(other) => {
            return Err(at(format!(
                "role = {other:?}: use \"server\" or \"client\""
            )))
        }
    };
    for (key, value) in &file.params {
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => if *b { "yes" } else { "no" }.to_string(),
            other => {
                return Err(at(format!(
                    "params.{key} = {other}: give a number, a word or a string"
                )))
            }
        };
        params
            .set(key, &text, suite.params)
            .map_err(|e| at(e.to_string()))?;
    }
    let ids: Vec<&str> = suite.checks.iter().map(|c| c.id.as_str()).collect();
    let known = |id: &str, field: &str| -> Result<(), String> {
        if ids.contains(&id) {
            return Ok(());
        }
        Err(at(format!(
            "{field} names {id:?}, no check of {}; the closest are: {}",
            suite.name,
            suggest::closest(id, &ids, 3).join(", ")
        )))
    };
    for id in &file.xfail {
        known(id, "xfail")?;
    }
    let mut asked = Asked {
        role,
        xfail: file.xfail.clone(),
        retries: file.retries,
        flaky: file.flaky,
        ..Asked::default()
    };
    let order = |id: &str| ids.iter().position(|i| *i == id);
    for (id, entry) in &file.checks {
        known(id, "checks")?;
        if !entry.run {
            asked.skipped.push(id.clone());
        }
        for on in &entry.depends {
            known(on, &format!("checks.\"{id}\".depends"))?;
            let check_role = |i: &str| {
                suite
                    .checks
                    .iter()
                    .find(|c| c.id.as_str() == i)
                    .map(|c| c.role)
            };
            if order(on) >= order(id) || check_role(on) != check_role(id) {
                return Err(at(format!(
                    "checks.\"{id}\".depends names {on}, which does not run before it in the \
                     same role: a check can depend only on one listed before it by \
                     `sockspec list {}`",
                    suite.name
                )));
            }
        }
        if !entry.depends.is_empty() {
            asked.depends.insert(id.clone(), entry.depends.clone());
        }
        if entry.points.is_some() || entry.visibility.is_some() {
            let points = entry.points.unwrap_or(1.0);
            if !(points.is_finite() && points >= 0.0) {
                return Err(at(format!(
                    "checks.\"{id}\".points = {points}: give 0 or more"
                )));
            }
            let visibility = entry.visibility.unwrap_or(Visibility::Visible);
            asked.grading.insert(
                id.clone(),
                Grading {
                    points,
                    visibility,
                    flaky: file.flaky,
                },
            );
        }
    }
    Ok(asked)
}

/// A starting profile for `suite`: every check at one point, visible and
/// run, every parameter at its default, commented.
pub fn starting(suite: &Suite) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# An assignment profile for sockspec: sockspec run {} --profile THIS_FILE ...\n\
         # --param on the command line overrides a parameter set here.\n",
        suite.name
    );
    let _ = writeln!(out, "suite = {:?}", suite.name);
    let _ = writeln!(
        out,
        "# role = \"server\"   # or \"client\": the checks this assignment grades\n\
         # retries = 0        # run a missed check again up to N times, each on a fresh \
         target: one that then passes is FLAKY\n\
         # xfail = []         # checks a known deviation is expected to miss\n\
         # flaky = \"half\"     # what a FLAKY check scores: \"full\", \"half\" or \"none\"\n"
    );
    let _ = writeln!(out, "[params]");
    for p in suite.params {
        let default = match p {
            ParamSpec::Text(_) | ParamSpec::Choice(_) => format!("{:?}", p.shown_default()),
            _ => p.shown_default(),
        };
        let _ = writeln!(out, "# {} = {default}   # {}", p.key(), p.meaning());
    }
    for check in &suite.checks {
        let _ = writeln!(
            out,
            "\n[checks.{:?}]   # {} {}: {}",
            check.id.as_str(),
            check.role.as_str(),
            check.level,
            check.summary
        );
        let _ = writeln!(
            out,
            "points = 1\nvisibility = \"visible\"   # visible, hidden or after_due_date\n\
             run = true\n# depends = []   # checks listed before it that must pass first"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_starting_profile_reads_back_as_every_check_run_at_one_point() {
        for suite in sockspec_suites::all() {
            let text = starting(&suite);
            let file: AssignmentProfile =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", suite.name));
            assert_eq!(file.suite, suite.name);
            assert_eq!(file.checks.len(), suite.checks.len());
            assert!(file.checks.values().all(|c| c.run && c.points == Some(1.0)));
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("profile.toml");
            std::fs::write(&path, &text).unwrap();
            let asked = load(&path, &suite, &mut Profile::default()).unwrap();
            assert!(asked.skipped.is_empty() && asked.depends.is_empty());
        }
    }

    #[test]
    fn a_dependency_must_run_before_its_check_and_an_id_must_exist() {
        let suite = sockspec_suites::find("tcp-upper").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        let try_load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            load(&path, &suite, &mut Profile::default())
        };
        let ok = try_load(
            "suite = \"tcp-upper\"\n[checks.\"tcp-upper.next-client\"]\ndepends = [\"tcp-upper.echo\"]\n",
        )
        .unwrap();
        assert_eq!(ok.depends["tcp-upper.next-client"], vec!["tcp-upper.echo"]);
        let later = try_load(
            "suite = \"tcp-upper\"\n[checks.\"tcp-upper.echo\"]\ndepends = [\"tcp-upper.large\"]\n",
        )
        .unwrap_err();
        assert!(later.contains("does not run before it"), "{later}");
        let typo = try_load("suite = \"tcp-upper\"\nxfail = [\"tcp-upper.ecko\"]\n").unwrap_err();
        assert!(typo.contains("tcp-upper.echo"), "{typo}");
        let other = try_load("suite = \"udp-upper\"\n").unwrap_err();
        assert!(other.contains("profile for udp-upper"), "{other}");
    }
}
