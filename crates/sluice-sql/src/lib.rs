//! Sluice SQL: Flink SQL scripts planned with DataFusion and run on Arrow batches by the
//! Sluice runtime.
//!
//! - **[`parser`]**: scripts split into statements; Flink's DDL, `SET`, window table
//!   functions; errors with line and column.
//! - **[`batch`]**: [`SqlBatch`], the Arrow `RecordBatch` (with row kinds for updating
//!   streams) SQL operators exchange.
//! - **[`exchange`]**: the edges of SQL jobs: hash, round-robin, broadcast and forward
//!   distribution of Arrow batches.
//! - **[`error`]**: [`Error`], located at the statement that caused it.

pub mod batch;
pub mod catalog;
pub mod config;
pub mod connectors;
pub mod error;
pub mod exchange;
pub mod format;
pub mod functions;
pub mod operators;
pub mod parser;
pub mod planner;
pub mod session;

pub use batch::{RowKind, SqlBatch};
pub use error::{Error, Result};
pub use session::{PlannedJob, SqlSession};

/// Replaces `${KEY}` in `sql` by `vars[KEY]`.
///
/// # Errors
/// A `${KEY}` without a value, naming it.
pub fn substitute(sql: &str, vars: &std::collections::BTreeMap<String, String>) -> Result<String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let key = &after[..end];
        let value = vars.get(key).ok_or_else(|| {
            Error::config(format!(
                "the script uses ${{{key}}} but no value was given; pass -D {key}=VALUE"
            ))
        })?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
