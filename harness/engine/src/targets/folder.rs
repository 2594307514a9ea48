//! A folder of the target's own, for a target whose work is writing files
//! (an upload server): a fresh directory deep inside the target's scratch
//! tree, so that what it writes, and where, is the harness's to look at,
//! and a name that climbs out of it (`../x`, `a/../../x`) still lands
//! inside the tree, which is removed with the target.
//!
//! The command was typed in another directory: its words that name files
//! there (`server.py`, `./server`, `src/main.py`) are made absolute, so
//! `python3 server.py {port}` still finds `server.py` while the target runs
//! in its own folder, as an ordinary user and with no namespace.

use std::path::{Path, PathBuf};

/// Where the target's folder is inside its scratch tree: deep enough that
/// a name climbing three levels up is still inside the tree.
pub const OWN_FOLDER: &str = "d1/d2/d3/work";

/// The target's folder inside the scratch tree `scratch`.
pub fn own_folder(scratch: &Path) -> PathBuf {
    scratch.join(OWN_FOLDER)
}

/// `command` with each word that names an existing file or directory in
/// `base` made absolute, quoted for the shell. Only plain words are
/// touched: a word with quotes, `$`, globs or other shell syntax, an
/// absolute path, an option (`-c`) or a placeholder (`{port}`) stays as
/// typed.
pub fn resolve_paths(command: &str, base: &Path) -> String {
    let mut out = String::with_capacity(command.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(&resolved(word, base));
        word.clear();
    };
    for c in command.chars() {
        if c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '<' | '>') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// One word, made absolute when it is a plain relative path to something
/// that exists in `base`.
fn resolved(word: &str, base: &Path) -> String {
    let plain = !word.is_empty()
        && !word.starts_with('-')
        && !word.starts_with('/')
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+' | ',' | '@'));
    if !plain {
        return word.to_string();
    }
    let path = base.join(word);
    if !path.exists() {
        return word.to_string();
    }
    shell_quoted(&path.to_string_lossy())
}

/// `text` as one shell word.
fn shell_quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.py"), "").unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.py"), "").unwrap();
        dir
    }

    #[test]
    fn a_script_named_in_the_command_is_found_from_another_folder() {
        let b = base();
        let got = resolve_paths("python3 server.py {port}", b.path());
        assert_eq!(
            got,
            format!(
                "python3 '{}' {{port}}",
                b.path().join("server.py").display()
            )
        );
    }

    #[test]
    fn paths_below_the_folder_and_dot_slash_paths_are_made_absolute() {
        let b = base();
        let got = resolve_paths("python3 src/main.py && ./server.py", b.path());
        assert!(got.contains(&format!("'{}'", b.path().join("src/main.py").display())));
        assert!(got.contains(&format!("'{}'", b.path().join("./server.py").display())));
        assert!(got.contains(" && "), "{got}");
    }

    #[test]
    fn words_that_name_nothing_there_options_and_quoted_words_stay_as_typed() {
        let b = base();
        for command in [
            "python3 -u missing.py {port}",
            "python3 -c 'print(1)'",
            "python3 \"server.py\"",
            "/usr/bin/python3 $HOME/x",
        ] {
            assert_eq!(resolve_paths(command, b.path()), command);
        }
    }
}
