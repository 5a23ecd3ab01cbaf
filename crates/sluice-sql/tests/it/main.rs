//! Integration tests of the SQL layer: whole scripts run on the embedded runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod debezium;
mod joins;
mod kafka;
mod nexmark;
mod nexmark_stateful;
mod output;
mod recovery;
mod scripts;
mod ttl;
mod windows;
