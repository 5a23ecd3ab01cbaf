//! `SET` keys with Flink's names, turned into a job configuration.
//!
//! | key | effect |
//! |---|---|
//! | `parallelism.default` | parallelism of every operator (default: the number of cores) |
//! | `pipeline.name` | the job's name |
//! | `pipeline.max-parallelism` | number of key groups (default 128) |
//! | `execution.checkpointing.interval` | checkpoint interval (`10s`, `1 min`, `500 ms`); off when absent |
//! | `execution.checkpointing.mode` | `EXACTLY_ONCE` (default) or `AT_LEAST_ONCE` |
//! | `execution.checkpointing.unaligned` / `.enabled` | unaligned checkpoints (`true`/`false`) |
//! | `execution.checkpointing.timeout` | abort a checkpoint after this long |
//! | `state.checkpoints.dir` | where checkpoints go (a local directory or `file://` URL) |
//! | `state.checkpoints.num-retained` | completed checkpoints kept |
//! | `execution.savepoint.path` | restore from this checkpoint or savepoint directory |
//! | `table.exec.resource.default-parallelism` | as `parallelism.default` for SQL operators |
//! | `table.exec.source.idle-timeout` | a Kafka partition without rows for this long stops holding the watermark back (default: it holds it) |
//! | `table.exec.state.ttl` | idle state of regular aggregations, joins and Top-N is dropped after this long (default: kept) |
//!
//! Other keys are kept (and shown by `SET;`) but have no effect; unknown keys are logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_runtime::checkpoint::{CheckpointConfig, CheckpointingMode};
use sluice_runtime::JobConfig;

use crate::error::{Error, Result};

const KNOWN: [&str; 11] = [
    "parallelism.default",
    "pipeline.name",
    "pipeline.max-parallelism",
    "execution.checkpointing.interval",
    "execution.checkpointing.mode",
    "execution.checkpointing.unaligned",
    "execution.checkpointing.unaligned.enabled",
    "execution.checkpointing.timeout",
    "state.checkpoints.dir",
    "state.checkpoints.num-retained",
    "execution.savepoint.path",
];

/// Parses Flink durations: `10s`, `10 s`, `500ms`, `1 min`, `2h`, `100` (milliseconds).
///
/// # Errors
/// A value that is not a duration.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let v = value.trim().to_ascii_lowercase();
    let split = v
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| bad_duration(key, value))?;
    let ms = match unit.trim() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => number,
        "s" | "sec" | "secs" | "second" | "seconds" => number * 1e3,
        "m" | "min" | "mins" | "minute" | "minutes" => number * 60e3,
        "h" | "hour" | "hours" => number * 3600e3,
        "d" | "day" | "days" => number * 86400e3,
        _ => return Err(bad_duration(key, value)),
    };
    Ok(Duration::from_millis(ms as u64))
}

fn bad_duration(key: &str, value: &str) -> Error {
    Error::config(format!(
        "'{key}' = '{value}' is not a duration; write e.g. '10s', '500 ms' or '1 min'"
    ))
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Error::config(format!(
            "'{key}' must be 'true' or 'false', got '{value}'"
        ))),
    }
}

fn parse_u32(key: &str, value: &str) -> Result<u32> {
    value
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::config(format!("'{key}' must be a positive number, got '{value}'")))
}

/// The settings of a SQL session.
#[derive(Debug, Clone, Default)]
pub struct SqlConfig {
    values: BTreeMap<String, String>,
}

impl SqlConfig {
    /// Sets `key` after checking its value.
    ///
    /// # Errors
    /// A value the key does not accept.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "parallelism.default"
            | "table.exec.resource.default-parallelism"
            | "pipeline.max-parallelism"
            | "state.checkpoints.num-retained" => {
                parse_u32(key, value)?;
            }
            "execution.checkpointing.interval"
            | "execution.checkpointing.timeout"
            | "table.exec.state.ttl"
            | "table.exec.source.idle-timeout" => {
                parse_duration(key, value)?;
            }
            "execution.checkpointing.mode" => {
                if !matches!(
                    value.to_ascii_uppercase().as_str(),
                    "EXACTLY_ONCE" | "AT_LEAST_ONCE"
                ) {
                    return Err(Error::config(format!(
                        "'{key}' must be 'EXACTLY_ONCE' or 'AT_LEAST_ONCE', got '{value}'"
                    )));
                }
            }
            "execution.checkpointing.unaligned" | "execution.checkpointing.unaligned.enabled" => {
                parse_bool(key, value)?;
            }
            k if KNOWN.contains(&k)
                || k == "table.exec.resource.default-parallelism"
                || k == "table.exec.state.ttl"
                || k == "table.exec.source.idle-timeout" => {}
            other => tracing::info!(key = other, "SET key has no effect in Sluice"),
        }
        self.values.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Removes `key`, or every key.
    pub fn reset(&mut self, key: Option<&str>) {
        match key {
            Some(k) => {
                self.values.remove(k);
            }
            None => self.values.clear(),
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key and value.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &String)> {
        self.values.iter()
    }

    /// The parallelism of operators.
    pub fn parallelism(&self, default: u32) -> u32 {
        self.get("table.exec.resource.default-parallelism")
            .or_else(|| self.get("parallelism.default"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// How long idle state of regular aggregations, joins and Top-N lives
    /// (`table.exec.state.ttl`); `None` (or 0): forever.
    ///
    /// # Errors
    /// A value that is not a duration.
    pub fn state_ttl(&self) -> Result<Option<Duration>> {
        match self.get("table.exec.state.ttl") {
            None => Ok(None),
            Some(v) => {
                let d = parse_duration("table.exec.state.ttl", v)?;
                Ok((!d.is_zero()).then_some(d))
            }
        }
    }

    /// How long a source split may go without rows before it stops holding watermarks
    /// back (`table.exec.source.idle-timeout`); `None` (or 0): never.
    ///
    /// # Errors
    /// A value that is not a duration.
    pub fn source_idle_timeout(&self) -> Result<Option<Duration>> {
        match self.get("table.exec.source.idle-timeout") {
            None => Ok(None),
            Some(v) => {
                let d = parse_duration("table.exec.source.idle-timeout", v)?;
                Ok((!d.is_zero()).then_some(d))
            }
        }
    }

    /// The job's name.
    pub fn job_name(&self) -> String {
        self.get("pipeline.name")
            .unwrap_or("sluice-sql")
            .to_string()
    }

    /// The runtime configuration.
    ///
    /// # Errors
    /// Values that became invalid (checked again).
    pub fn job_config(&self) -> Result<JobConfig> {
        let mut config = JobConfig::default();
        config.default_parallelism = self.parallelism(config.default_parallelism);
        if let Some(v) = self.get("pipeline.max-parallelism") {
            config.max_parallelism = parse_u32("pipeline.max-parallelism", v)?;
        }
        if let Some(v) = self.get("execution.checkpointing.interval") {
            let mut cp =
                CheckpointConfig::every(parse_duration("execution.checkpointing.interval", v)?);
            if let Some(m) = self.get("execution.checkpointing.mode") {
                if m.eq_ignore_ascii_case("AT_LEAST_ONCE") {
                    cp.mode = CheckpointingMode::AtLeastOnce;
                }
            }
            for key in [
                "execution.checkpointing.unaligned",
                "execution.checkpointing.unaligned.enabled",
            ] {
                if let Some(v) = self.get(key) {
                    cp.unaligned = parse_bool(key, v)?;
                }
            }
            if let Some(v) = self.get("execution.checkpointing.timeout") {
                cp.timeout = parse_duration("execution.checkpointing.timeout", v)?;
            }
            if let Some(v) = self.get("state.checkpoints.dir") {
                let path = v.strip_prefix("file://").unwrap_or(v);
                cp.directory = Some(PathBuf::from(path));
            }
            if let Some(v) = self.get("state.checkpoints.num-retained") {
                cp.retained = parse_u32("state.checkpoints.num-retained", v)? as usize;
            }
            if let Some(v) = self.get("execution.savepoint.path") {
                let path = v.strip_prefix("file://").unwrap_or(v);
                cp.restore_from = Some(PathBuf::from(path));
            }
            config.checkpointing = Some(cp);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flink_durations_and_checkpoint_keys() {
        assert_eq!(parse_duration("k", "10s").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration("k", "1 min").unwrap(),
            Duration::from_secs(60)
        );
        assert_eq!(
            parse_duration("k", "500 ms").unwrap(),
            Duration::from_millis(500)
        );
        assert!(parse_duration("k", "soon").is_err());
        let mut c = SqlConfig::default();
        c.set("parallelism.default", "3").unwrap();
        c.set("execution.checkpointing.interval", "2s").unwrap();
        c.set("state.checkpoints.dir", "file:///tmp/cp").unwrap();
        let j = c.job_config().unwrap();
        assert_eq!(j.default_parallelism, 3);
        let cp = j.checkpointing.unwrap();
        assert_eq!(cp.interval, Duration::from_secs(2));
        assert_eq!(cp.directory, Some(PathBuf::from("/tmp/cp")));
        assert!(c.set("parallelism.default", "zero").is_err());
    }
}
