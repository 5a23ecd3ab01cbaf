//! Resident memory of the current process (Linux), for tests that prove memory stays
//! bounded.

/// The resident set size of this process in bytes, read from `/proc/self/status`; `None`
/// where that file does not exist.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_a_plausible_size() {
        if let Some(bytes) = super::resident_bytes() {
            assert!(bytes > 100_000 && bytes < 100_000_000_000);
        }
    }
}
