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
