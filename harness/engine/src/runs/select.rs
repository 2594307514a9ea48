//! Choosing checks by id with `--only` and `--skip` globs.

use glob::Pattern;

use crate::conversations::check::CheckId;

/// Which checks of a suite run.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    only: Vec<Pattern>,
    skip: Vec<Pattern>,
}

impl Selection {
    /// Builds a selection; an invalid glob is named in the error.
    pub fn new(only: &[String], skip: &[String]) -> Result<Selection, String> {
        let compile = |flag: &str, globs: &[String]| -> Result<Vec<Pattern>, String> {
            globs
                .iter()
                .map(|g| {
                    Pattern::new(g).map_err(|e| {
                        format!("{flag} {g:?} is not a valid glob ({e}); for example {flag} 'tcp-upper.client.*'")
                    })
                })
                .collect()
        };
        Ok(Selection {
            only: compile("--only", only)?,
            skip: compile("--skip", skip)?,
        })
    }

    /// The `--only` globs that match none of `ids`: most likely a typo,
    /// which would otherwise quietly run fewer checks than meant.
    pub fn unmatched<'a>(&'a self, ids: &[CheckId]) -> Vec<&'a str> {
        self.only
            .iter()
            .filter(|p| !ids.iter().any(|id| p.matches(id.as_str())))
            .map(Pattern::as_str)
            .collect()
    }

    /// Whether `id` runs: it matches some `--only` (or there is none) and
    /// no `--skip`.
    pub fn includes(&self, id: CheckId) -> bool {
        (self.only.is_empty() || self.only.iter().any(|p| p.matches(id.as_str())))
            && !self.skip.iter().any(|p| p.matches(id.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(only: &[&str], skip: &[&str]) -> Selection {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Selection::new(&s(only), &s(skip)).unwrap()
    }

    #[test]
    fn everything_runs_by_default() {
        assert!(sel(&[], &[]).includes(CheckId::new("tcp-upper.echo")));
    }

    #[test]
    fn only_and_skip_combine() {
        let s = sel(&["tcp-upper.*"], &["*.no-spin"]);
        assert!(s.includes(CheckId::new("tcp-upper.echo")));
        assert!(!s.includes(CheckId::new("tcp-upper.no-spin")));
        assert!(!s.includes(CheckId::new("udp-upper.echo")));
    }

    #[test]
    fn a_bad_glob_is_reported_with_an_example() {
        let err = Selection::new(&["[".to_string()], &[]).unwrap_err();
        assert!(err.contains("--only \"[\" is not a valid glob"), "{err}");
    }

    #[test]
    fn an_only_that_matches_nothing_is_named() {
        let s = sel(&["tcp-upper.ech", "*.echo"], &[]);
        let ids = [CheckId::new("tcp-upper.echo")];
        assert_eq!(s.unmatched(&ids), vec!["tcp-upper.ech"]);
    }
}
