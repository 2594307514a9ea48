//! The engine's folders are its layers, and each imports only the layers
//! below it: a lower layer that reached up would make the layers a circle
//! and a new protocol a change to everything.

use std::fs;
use std::path::{Path, PathBuf};

/// The layers, lowest first: each module may import its own layer and the
/// ones before it.
const LAYERS: &[&str] = &[
    "model",
    "judge",
    "kernel",
    "targets",
    "conversations",
    "results",
    "runs",
    "report",
];

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == layer)
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("the engine's sources can be listed") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The layer a source file belongs to: its first folder, or its own name
/// for a file at the top (`results.rs`).
fn layer_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// Every `crate::<layer>` path a file names.
fn imported_layers(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push((n + 1, name));
            }
            rest = after;
        }
    }
    found
}

#[test]
fn every_import_runs_to_the_same_layer_or_a_lower_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let layer = layer_of(&src, file);
        if layer == "lib" {
            continue;
        }
        let own = rank(&layer)
            .unwrap_or_else(|| panic!("{} is in no layer: add it to LAYERS", file.display()));
        let text = fs::read_to_string(file).expect("a source file reads");
        for (line, name) in imported_layers(&text) {
            let Some(theirs) = rank(&name) else {
                upward.push(format!(
                    "{}:{line}: crate::{name} is not a layer",
                    file.display()
                ));
                continue;
            };
            if theirs > own {
                upward.push(format!(
                    "{}:{line}: the {layer} layer imports {name}, a higher one",
                    file.display()
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that run upward:\n{}",
        upward.join("\n")
    );
}

#[test]
fn every_folder_of_the_engine_is_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for entry in fs::read_dir(&src).expect("src lists") {
        let path = entry.expect("an entry").path();
        let name = path
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        assert!(
            name == "lib" || rank(&name).is_some(),
            "{} is not one of the layers {LAYERS:?}",
            path.display()
        );
    }
}
