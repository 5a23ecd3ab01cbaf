//! [`PrintSink`]: writes records to standard output, one line each.

use std::io::Write;
use std::sync::Arc;

use sluice_core::Records;
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::{OperatorContext, Result};

use crate::error::Error;

/// Prints each record as a line; with parallelism above one, lines start with the
/// subtask number (`2> ...`), as in Flink.
pub struct PrintSink<T> {
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> std::fmt::Debug for PrintSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrintSink")
    }
}

impl<T> PrintSink<T> {
    /// Prints `format(record)` for each record.
    pub fn new(format: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        PrintSink {
            format: Arc::new(format),
        }
    }
}

struct PrintWriter<T> {
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
    prefix: String,
}

impl<T: Send + 'static> Sink<T> for PrintSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        let prefix = if ctx.location.parallelism > 1 {
            format!("{}> ", ctx.location.subtask + 1)
        } else {
            String::new()
        };
        Ok(Box::new(PrintWriter {
            format: Arc::clone(&self.format),
            prefix,
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for PrintWriter<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        let mut text = String::new();
        for value in batch.values() {
            text.push_str(&self.prefix);
            text.push_str(&(self.format)(value));
            text.push('\n');
        }
        // One locked write per batch keeps lines of different subtasks whole.
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|_| stdout.flush())
            .map_err(|e| Error::Stdout(e).into())
    }
}
