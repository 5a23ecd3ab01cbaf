//! Tidy: rules of the codebase checked on every test run (TigerBeetle's spirit).
//!
//! - no `.rs` file over 1000 lines without a `tidy: long file` waiver in its first lines;
//! - no `dbg!`, `todo!` or bare to-do markers (write the marker with `(#issue)`);
//! - no `.unwrap()` or `.expect(` in library code outside `#[cfg(test)]`;
//! - every library source file opens with a `//!` module doc;
//! - crate dependencies point one way: core <- state <- runtime <- connectors <- {api,
//!   sql} <- {testkit, cluster} <- sluice <- bench.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates", "src", "tests", "examples"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(
        files.len() > 30,
        "tidy found too few files: {}",
        files.len()
    );
    files
}

fn is_library_source(path: &Path) -> bool {
    let rel = path
        .strip_prefix(root())
        .unwrap()
        .to_string_lossy()
        .replace('\\', "/");
    // A sibling `tests.rs` holds a module's unit tests (`#[cfg(test)] mod tests;`).
    let is_test_module = rel.ends_with("/tests.rs");
    ((rel.starts_with("crates/") && rel.contains("/src/")) || rel.starts_with("src/"))
        && !is_test_module
}

#[test]
fn files_stay_short_and_free_of_debugging_leftovers() {
    let mut problems = Vec::new();
    // The patterns are split so this file does not match itself.
    let (dbg, todo_macro, todo) = (
        concat!("dbg", "!("),
        concat!("todo", "!("),
        concat!("TO", "DO"),
    );
    for path in all_files() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let waived = lines.iter().take(20).any(|l| l.contains("tidy: long file"));
        if lines.len() > 1000 && !waived {
            problems.push(format!(
                "{}: {} lines (split it, or add a waiver with a reason)",
                path.display(),
                lines.len()
            ));
        }
        for (i, line) in lines.iter().enumerate() {
            let at = format!("{}:{}", path.display(), i + 1);
            if line.contains(dbg) || line.contains(todo_macro) {
                problems.push(format!("{at}: debugging macro"));
            }
            if let Some(pos) = line.find(todo) {
                if !line[pos + todo.len()..].starts_with("(#") {
                    problems.push(format!("{at}: bare {todo}; write {todo}(#issue)"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn library_code_has_module_docs_and_no_unwrap() {
    let mut problems = Vec::new();
    let (unwrap, expect) = (concat!(".unwrap", "()"), concat!(".expect", "("));
    for path in all_files().into_iter().filter(|p| is_library_source(p)) {
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.trim_start().starts_with("//!") {
            problems.push(format!(
                "{}: does not open with a //! module doc",
                path.display()
            ));
        }
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line.split("//").next().unwrap_or("");
            if code.contains(unwrap) || code.contains(expect) {
                problems.push(format!(
                    "{}:{}: unwrap/expect in library code",
                    path.display(),
                    i + 1
                ));
            }
        }
    }
    assert!(problems.is_empty(), "tidy:\n{}", problems.join("\n"));
}

#[test]
fn crate_dependencies_point_one_way() {
    // Each crate may depend only on crates of lower layers.
    let layers = [
        ("sluice-core", 0),
        ("sluice-state", 1),
        ("sluice-runtime", 2),
        ("sluice-connectors", 3),
        ("sluice-api", 4),
        ("sluice-sql", 4),
        ("sluice-testkit", 5),
        ("sluice-cluster", 5),
        ("sluice", 6),
        ("sluice-bench", 7),
    ];
    let layer_of = |name: &str| layers.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
    let mut problems = Vec::new();
    for (name, layer) in layers {
        let manifest =
            std::fs::read_to_string(root().join("crates").join(name).join("Cargo.toml")).unwrap();
        let deps = manifest.split("[dev-dependencies]").next().unwrap_or("");
        for line in deps.lines() {
            let dep = line.split(['.', ' ', '=']).next().unwrap_or("");
            if let Some(dep_layer) = layer_of(dep) {
                if dep_layer >= layer {
                    problems.push(format!("{name} depends on {dep}, which is not below it"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
