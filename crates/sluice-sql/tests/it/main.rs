//! Integration tests of the SQL layer: whole scripts run on the embedded runtime.

mod nexmark;
mod scripts;
