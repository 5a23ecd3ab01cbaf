//! Reading what file sinks committed.

use std::path::Path;

/// Every line of the part files a transactional file sink committed under `dir`, sorted
/// (parallel subtasks write in no particular order).
///
/// # Errors
/// When the directory or a part file cannot be read.
pub fn committed_lines(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut lines = Vec::new();
    for part in sluice_api::connectors::committed_parts(dir)? {
        lines.extend(std::fs::read_to_string(part)?.lines().map(str::to_string));
    }
    lines.sort();
    Ok(lines)
}
