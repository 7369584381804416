//! The layers of `src/` (`src/lib.rs`, ../shared/LAYOUT.md), checked over
//! the source text: a file imports only from its own layer and the layers
//! below it, and no files import each other in a cycle. The imports that
//! still run upwards are listed here by name; the list may only shrink (a
//! listed import that is gone fails too, so the list stays the truth).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom. Folders on one line are one layer.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["server"],
    &["worker"],
    &["api"],
    &["dialect", "ui"],
    &["service"],
    &["http"],
    &["store"],
    &["telemetry"],
    &["model"],
];

/// Imports across layers that LAYOUT.md allows: the native API renders
/// errors in the Azure.Core envelope the Dev Center dialect defines, and a
/// webhook's body is the native operation JSON.
const SIDEWAYS: &[(&str, &str)] = &[("api", "dialect"), ("worker", "api")];

/// Upward imports not yet removed, as "file → layer". Remove a line when
/// its import goes; never add one.
const KNOWN_UPWARD: &[&str] = &[];

fn layer_of(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&folder))
}

/// The top-level modules `text` names through `crate::`.
fn imported(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines().map(str::trim).filter(|line| !line.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let end = list.find('}').unwrap_or(list.len());
                for item in list[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or("");
                    found.insert(name.to_owned());
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                found.insert(name);
            }
        }
    }
    found.retain(|name| !name.is_empty());
    found
}

fn source_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every "file → layer" import that runs up the layers.
fn upward_imports() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let mut upward = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let Some((folder, _)) = relative.split_once('/') else { continue }; // main.rs, lib.rs
        let own = layer_of(folder).unwrap_or_else(|| panic!("src/{folder}/ is in no layer: add it to LAYERS"));
        for module in imported(&std::fs::read_to_string(&file).unwrap()) {
            let Some(theirs) = layer_of(&module) else { continue };
            if theirs < own && !SIDEWAYS.contains(&(folder, module.as_str())) {
                upward.insert(format!("{relative} → {module}"));
            }
        }
    }
    upward
}

#[test]
fn no_module_imports_from_a_layer_above_it_but_the_listed_ones() {
    let upward = upward_imports();
    let known: BTreeSet<String> = KNOWN_UPWARD.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = upward.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&upward).collect();
    assert!(new.is_empty(), "imports up the layers (move the code down instead):\n{new:#?}");
    assert!(gone.is_empty(), "these listed imports are gone: remove them from KNOWN_UPWARD:\n{gone:#?}");
}

/// Each file of `src/` as its module path (`service::auth`), with the
/// modules it names through `crate::…` or `super::…`, resolved to files.
fn file_imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &mut files);
    let module_of = |file: &Path| {
        let relative = file.strip_prefix(&src).unwrap().with_extension("");
        let parts: Vec<String> = relative.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let parts = if parts.last().is_some_and(|p| p == "mod") { &parts[..parts.len() - 1] } else { &parts[..] };
        parts.join("::")
    };
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|f| (module_of(f), std::fs::read_to_string(f).unwrap()))
        .filter(|(m, _)| m != "lib" && m != "main")
        .collect();
    let resolve = |path: &str| {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|m| modules.contains_key(m))
    };
    let mut graph = BTreeMap::new();
    for (module, text) in &modules {
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        let mut names = BTreeSet::new();
        // Unit tests (an inline module at the end of a file, where `super`
        // is the file itself) are not part of the file's imports.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for line in code.lines().map(str::trim).filter(|line| !line.starts_with("//")) {
            for (prefix, base) in [("crate::", ""), ("super::", parent)] {
                for (at, _) in line.match_indices(prefix) {
                    if prefix == "super::" && line[..at].ends_with("::") {
                        continue;
                    }
                    let rest = &line[at + prefix.len()..];
                    let path: String =
                        rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
                    let path = path.trim_end_matches(':');
                    let full = if base.is_empty() { path.to_owned() } else { format!("{base}::{path}") };
                    names.insert(full.clone());
                    if let Some(list) = rest[path.len()..].strip_prefix("::{") {
                        for item in list[..list.find('}').unwrap_or(list.len())].split(',') {
                            let item = item.trim().split([' ', ':']).next().unwrap_or("");
                            if !item.is_empty() && item != "self" {
                                names.insert(format!("{full}::{item}"));
                            }
                        }
                    }
                }
            }
        }
        let targets: BTreeSet<String> =
            names.iter().filter_map(|name| resolve(name)).filter(|target| target != module).collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

/// A cycle in `graph`, if there is one (depth-first, three colours).
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit<'a>(
        node: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<&'a str>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            return Some(path[at..].iter().chain([&node]).map(|n| n.to_string()).collect());
        }
        if done.contains(node) {
            return None;
        }
        path.push(node);
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node);
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

#[test]
fn no_files_of_src_import_each_other_in_a_cycle() {
    let cycle = find_cycle(&file_imports());
    assert!(cycle.is_none(), "an import cycle: {}", cycle.unwrap().join(" → "));
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_only_a_cycle() {
    let graph = |edges: &[(&str, &str)]| {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, to) in edges {
            graph.entry(from.to_string()).or_default().insert(to.to_string());
            graph.entry(to.to_string()).or_default();
        }
        graph
    };
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])), None);
    assert_eq!(find_cycle(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])).map(|c| c.len()), Some(4));
}

#[test]
fn only_the_entry_files_sit_at_the_top_of_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let loose: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(loose, BTreeSet::from(["lib.rs".to_owned(), "main.rs".to_owned()]));
}

#[test]
fn the_import_reader_sees_paths_and_brace_lists_but_not_comments() {
    let text = "use crate::{api, http::error};\n// crate::cli in a comment\nlet x = crate::store::open();";
    let names: Vec<String> = imported(text).into_iter().collect();
    assert_eq!(names, ["api", "http", "store"]);
}
