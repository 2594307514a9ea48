//! Closest names, for errors that suggest what the user meant: a misspelt
//! suite or a `--only` that matches no check.

/// Edit distance between two strings (insertions, deletions, changes).
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Up to `n` of `candidates` closest to `name`, nearest first; a candidate
/// that contains `name` counts as near.
pub fn closest<'a>(name: &str, candidates: &[&'a str], n: usize) -> Vec<&'a str> {
    let mut scored: Vec<(usize, &'a str)> = candidates
        .iter()
        .map(|&c| {
            let d = if c.contains(name) {
                0
            } else {
                distance(name, c)
            };
            (d, c)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(n).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("tcp-uper", "tcp-upper"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn the_closest_come_first() {
        let ids = ["tcp-upper.echo", "tcp-upper.reset", "tcp-upper.client.echo"];
        assert_eq!(closest("tcp-upper.ech", &ids, 2)[0], "tcp-upper.echo");
    }
}
