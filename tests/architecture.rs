//! The layers of `src/` (`src/lib.rs`, ../shared/LAYOUT.md), checked over
//! the source text: a file imports only from its own layer and the layers
//! below it. The imports that still run upwards are listed here by name;
//! the list may only shrink (a listed import that is gone fails too, so the
//! list stays the truth).

use std::collections::BTreeSet;
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
