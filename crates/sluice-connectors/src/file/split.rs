//! [`FileSplit`]: a byte range of a file read by one subtask, and how files are split.
//!
//! Invariant: a line belongs to the split in which its first byte lies, so the splits of a
//! file together yield each line exactly once, whatever their boundaries.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// Largest split, so that many files or a huge file still spread over subtasks.
const SPLIT_BYTES_MAX: u64 = 32 * 1024 * 1024;

/// A byte range `start..end` of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSplit {
    /// The file.
    pub path: PathBuf,
    /// First byte of the range.
    pub start: u64,
    /// One past the last byte of the range.
    pub end: u64,
}

fn read_error(path: &Path, source: std::io::Error) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// The files under `path` (itself if it is a file; its non-hidden regular files, sorted by
/// name, if it is a directory), with their sizes.
pub(crate) fn list_files(path: &Path) -> Result<Vec<(PathBuf, u64)>, Error> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
    if meta.is_file() {
        return Ok(vec![(path.to_path_buf(), meta.len())]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| read_error(path, e))? {
        let entry = entry.map_err(|e| read_error(path, e))?;
        let hidden = entry.file_name().to_string_lossy().starts_with(['.', '_']);
        let meta = entry.metadata().map_err(|e| read_error(&entry.path(), e))?;
        if meta.is_file() && !hidden {
            files.push((entry.path(), meta.len()));
        }
    }
    files.sort_by(|a, b| natural_order(&a.0.to_string_lossy(), &b.0.to_string_lossy()));
    Ok(files)
}

/// Compares names with runs of digits compared by value (`part-0-2` before `part-0-10`).
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, run)) if *d == digit => run.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    };
    let (pa, pb) = (parts(a), parts(b));
    for ((da, ra), (db, rb)) in pa.iter().zip(&pb) {
        let ord = if *da && *db {
            let (ta, tb) = (ra.trim_start_matches('0'), rb.trim_start_matches('0'));
            ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
        } else {
            ra.cmp(rb)
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

/// Cuts `files` into splits so that `parallelism` readers get similar amounts of bytes.
pub(crate) fn plan_splits(files: &[(PathBuf, u64)], parallelism: u32) -> Vec<FileSplit> {
    let total: u64 = files.iter().map(|(_, len)| len).sum();
    let split_bytes = total
        .div_ceil(u64::from(parallelism.max(1)))
        .clamp(1, SPLIT_BYTES_MAX);
    let mut splits = Vec::new();
    for (path, len) in files {
        let mut start = 0;
        while start < *len {
            let end = (start + split_bytes).min(*len);
            splits.push(FileSplit {
                path: path.clone(),
                start,
                end,
            });
            start = end;
        }
    }
    splits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_names_are_ordered_by_value() {
        let mut names = vec!["part-0-10", "part-0-2", "part-1-0", "part-0-0"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(names, ["part-0-0", "part-0-2", "part-0-10", "part-1-0"]);
    }

    #[test]
    fn splits_cover_each_file_without_overlap() {
        let files = vec![
            (PathBuf::from("a"), 100),
            (PathBuf::from("b"), 0),
            (PathBuf::from("c"), 7),
        ];
        let splits = plan_splits(&files, 4);
        let a: Vec<(u64, u64)> = splits
            .iter()
            .filter(|s| s.path == Path::new("a"))
            .map(|s| (s.start, s.end))
            .collect();
        assert_eq!(a, vec![(0, 27), (27, 54), (54, 81), (81, 100)]);
        assert!(splits.iter().all(|s| s.path != Path::new("b")));
        assert_eq!(splits.last().map(|s| (s.start, s.end)), Some((0, 7)));
    }
}
