//! Bytes shown to a person: quoted text with escapes, hex, and the first
//! difference between what was expected and what arrived, marked.

use std::fmt::Write;

/// `bytes` as a quoted, escaped string, cut to about `max` bytes with the
/// total length noted when longer.
pub fn quoted(bytes: &[u8], max: usize) -> String {
    let mut out = String::from("\"");
    let shown = if bytes.len() > max {
        &bytes[..max]
    } else {
        bytes
    };
    out.push_str(&escape(shown));
    out.push('"');
    if bytes.len() > max {
        let _ = write!(out, "... ({} bytes in all)", bytes.len());
    }
    out
}

/// [`quoted`], always with the length.
pub fn sized(bytes: &[u8], max: usize) -> String {
    if bytes.len() > max {
        quoted(bytes, max)
    } else {
        format!("{} ({} bytes)", quoted(bytes, max), bytes.len())
    }
}

/// Printable ASCII as is, everything else escaped as in Python's bytes repr.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// Where two byte strings first differ; `None` when they are equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    if common == a.len() && common == b.len() {
        None
    } else {
        Some(common)
    }
}

/// Hex of up to 16 bytes on either side of `at`, with a caret under `at`.
pub fn hex_around(bytes: &[u8], at: usize) -> String {
    let start = at.saturating_sub(16);
    let end = (at + 16).min(bytes.len());
    let mut line = format!("@{start:<6}");
    let mut caret = None;
    for (i, b) in bytes[start..end].iter().enumerate() {
        if start + i == at {
            caret = Some(line.len() + 1);
        }
        let _ = write!(line, " {b:02x}");
    }
    if at >= end {
        caret = Some(line.len() + 1);
        line.push_str(" ..");
    }
    match caret {
        Some(col) => format!("{line}\n{}^^", " ".repeat(col)),
        None => line,
    }
}

/// Expected against actual, with the first difference located in both.
pub fn compare(expected: &[u8], actual: &[u8]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "expected: {} ({} bytes)",
        quoted(expected, 80),
        expected.len()
    );
    let _ = writeln!(
        out,
        "actual:   {} ({} bytes)",
        quoted(actual, 80),
        actual.len()
    );
    if let Some(at) = first_difference(expected, actual) {
        let _ = writeln!(out, "first difference at byte {at}:");
        let _ = writeln!(
            out,
            "  expected {}",
            hex_around(expected, at).replace('\n', "\n           ")
        );
        let _ = writeln!(
            out,
            "  actual   {}",
            hex_around(actual, at).replace('\n', "\n           ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_python_bytes() {
        assert_eq!(escape(b"hi\n\xff\"x"), "hi\\n\\xff\\\"x");
    }

    #[test]
    fn long_bytes_are_cut_and_counted() {
        assert_eq!(quoted(b"abcdef", 3), "\"abc\"... (6 bytes in all)");
    }

    #[test]
    fn first_difference_is_the_first_unequal_byte_or_the_shorter_end() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
    }

    #[test]
    fn the_caret_marks_the_differing_byte() {
        let shown = hex_around(b"hello", 1);
        let lines: Vec<&str> = shown.lines().collect();
        let col = lines[1].find('^').unwrap();
        assert_eq!(&lines[0][col..col + 2], "65");
    }

    #[test]
    fn a_missing_tail_is_marked_after_the_end() {
        assert!(hex_around(b"ab", 2).contains(".."));
    }
}
