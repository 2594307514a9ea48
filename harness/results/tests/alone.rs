//! A tool that reads sockspec's reports (an autograder, a dashboard, a
//! merger of shards) depends on this crate alone: its dependencies are
//! serde and nothing of the engine or the command.

/// The names under `[dependencies]` in this crate's manifest.
fn dependencies(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.']).next().unwrap_or_default();
            names.push(key.trim().to_string());
        }
    }
    names
}

#[test]
fn the_results_crate_depends_on_serde_alone() {
    let manifest = include_str!("../Cargo.toml");
    assert_eq!(dependencies(manifest), ["serde"], "{manifest}");
}
