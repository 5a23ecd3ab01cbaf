//! What the file sinks of a test job committed: the sorted lines of its part files, or
//! the final rows of a Debezium JSON changelog.

use std::fs;
use std::path::Path;

/// The lines of every committed part file under `dir`, sorted.
pub(crate) fn committed_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = sluice_connectors::committed_parts(dir)
        .unwrap()
        .into_iter()
        .flat_map(|p| {
            fs::read_to_string(p)
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// Applies the Debezium JSON changelog committed under `dir` in order: the final rows
/// (JSON text, sorted) and the number of changes. Panics on a retraction of a row that
/// was never added (a change counted twice or lost shows here).
pub(crate) fn apply_changelog(dir: &Path) -> (Vec<String>, usize) {
    let mut rows: Vec<String> = Vec::new();
    let mut changes = 0;
    for part in sluice_connectors::committed_parts(dir).unwrap() {
        for line in fs::read_to_string(part).unwrap().lines() {
            changes += 1;
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            match v["op"].as_str() {
                Some("c") => rows.push(v["after"].to_string()),
                Some("d") => {
                    let before = v["before"].to_string();
                    let at = rows
                        .iter()
                        .position(|r| *r == before)
                        .unwrap_or_else(|| panic!("retracts a row never added: {before}"));
                    rows.remove(at);
                }
                other => panic!("unknown op {other:?}"),
            }
        }
    }
    rows.sort();
    (rows, changes)
}
