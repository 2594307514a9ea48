//! The engine's folders are its layers, and each imports only the layers
//! below it: a lower layer that reached up would make the layers a circle
//! and a new protocol a change to everything.

use std::collections::{BTreeMap, BTreeSet};
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

/// The module path a source file is, under `src` (`conversations/steps/mod.rs`
/// is `conversations::steps`; `lib.rs` is the crate itself).
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let last = parts.pop().expect("a file name");
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The module paths a file names outside comments, with their lines:
/// `crate::a::b` and `super::x` paths, each as far as it runs (a `{` list
/// counts as its prefix).
fn named_modules(module: &[String], text: &str) -> Vec<(usize, Vec<String>)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(|c: char| c.is_ascii_alphabetic()) {
            let from_here = &rest[at..];
            let word: String = from_here
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let boundary = at == 0 || {
                let before = rest[..at].chars().last().unwrap_or(' ');
                !(before.is_ascii_alphanumeric() || before == '_' || before == ':')
            };
            if boundary && (word.starts_with("crate::") || word.starts_with("super::")) {
                let mut segments = word.split("::").filter(|s| !s.is_empty());
                let mut path: Vec<String> = match segments.next() {
                    Some("crate") => Vec::new(),
                    _ => {
                        // `super` from `a/b.rs` and from `a/b/mod.rs` (both
                        // the module a::b) is `a`.
                        let mut parent = module.to_vec();
                        parent.pop();
                        parent
                    }
                };
                for s in segments {
                    if s == "super" {
                        path.pop();
                    } else {
                        path.push(s.to_string());
                    }
                }
                found.push((n + 1, path));
            }
            rest = &from_here[word.len().max(1)..];
        }
    }
    found
}

/// The file a module path runs to: the longest prefix of it that is a
/// source file of the engine.
fn file_of(by_module: &BTreeMap<Vec<String>, PathBuf>, path: &[String]) -> Option<PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| by_module.get(&path[..n]).cloned())
}

/// Every file of the engine with the files it imports.
fn import_graph(src: &Path) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut files = Vec::new();
    sources(src, &mut files);
    let by_module: BTreeMap<Vec<String>, PathBuf> = files
        .iter()
        .map(|f| (module_of(src, f), f.clone()))
        .collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(src, file);
        let text = fs::read_to_string(file).expect("a source file reads");
        // A file's tests, at its end, may use what imports the file: they
        // are no part of the engine's structure.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        let mut to = BTreeSet::new();
        for (_, path) in named_modules(&module, text) {
            if let Some(target) = file_of(&by_module, &path) {
                // A module's own items are no import, nor is the crate root.
                if &target != file && !path.is_empty() {
                    to.insert(target);
                }
            }
        }
        graph.insert(file.clone(), to);
    }
    graph
}

/// A circle of files, each importing the next and the last the first, if
/// there is one.
fn find_circle(graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    // Depth first; a file met again while still on the path closes a circle.
    fn visit(
        file: &PathBuf,
        graph: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        path: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = path.iter().position(|f| f == file) {
            return Some(path[at..].to_vec());
        }
        if done.contains(file) {
            return None;
        }
        path.push(file.clone());
        for next in graph.get(file).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(file.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|f| visit(f, graph, &mut Vec::new(), &mut done))
}

#[test]
fn no_file_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = import_graph(&src);
    if let Some(circle) = find_circle(&graph) {
        let names: Vec<String> = circle
            .iter()
            .chain(circle.first())
            .map(|f| f.strip_prefix(&src).unwrap_or(f).display().to_string())
            .collect();
        panic!(
            "the files import each other in a circle: {}",
            names.join(" -> ")
        );
    }
}

#[test]
fn a_circle_of_two_files_is_found_and_named() {
    let (a, b, c) = (
        PathBuf::from("a.rs"),
        PathBuf::from("b.rs"),
        PathBuf::from("c.rs"),
    );
    let mut graph = BTreeMap::new();
    graph.insert(a.clone(), BTreeSet::from([b.clone()]));
    graph.insert(b.clone(), BTreeSet::from([c.clone()]));
    graph.insert(c.clone(), BTreeSet::from([b.clone()]));
    assert_eq!(find_circle(&graph), Some(vec![b, c]));
}

#[test]
fn super_and_crate_paths_run_to_the_files_they_name() {
    let module = vec![
        "conversations".to_string(),
        "steps".to_string(),
        "stream".to_string(),
    ];
    let text = "use super::link::{Conn, Link};\nuse crate::conversations::session::Session;\n";
    let named: Vec<Vec<String>> = named_modules(&module, text)
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    assert_eq!(
        named,
        vec![
            vec!["conversations", "steps", "link"],
            vec!["conversations", "session", "Session"],
        ]
    );
}
