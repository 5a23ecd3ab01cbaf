//! [`DiscardSink`]: drops records, counting them (Flink's `DiscardingSink`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use sluice_core::Records;
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::{OperatorContext, Result};

/// Drops every record; the number dropped is readable through [`DiscardSink::count`].
#[derive(Debug, Clone, Default)]
pub struct DiscardSink {
    count: Arc<AtomicU64>,
}

impl DiscardSink {
    /// A sink counting from zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records dropped so far by all subtasks.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The shared counter.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.count)
    }
}

struct DiscardWriter {
    local: u64,
    count: Arc<AtomicU64>,
}

impl<T: Send + 'static> Sink<T> for DiscardSink {
    fn create_writer(&self, _ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        Ok(Box::new(DiscardWriter {
            local: 0,
            count: Arc::clone(&self.count),
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for DiscardWriter {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        self.local += batch.len() as u64;
        // Publishing per batch keeps the shared counter live for progress reports
        // without a contended atomic per record.
        self.count.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        tracing::debug!(records = self.local, "discard sink finished");
        Ok(())
    }
}
