//! [`CollectionSource`] and [`CollectSink`]: in-memory input and output.

use std::sync::{Arc, Mutex, PoisonError};

use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::source::{
    encode_position, restored_position, Boundedness, Source, SourcePoll, SourceReader,
};
use sluice_runtime::{OperatorContext, Result};

/// Reads the elements of a vector; subtask `i` of `p` reads the `i`-th contiguous slice,
/// so order is kept within each slice.
#[derive(Debug)]
pub struct CollectionSource<T> {
    items: Arc<Vec<T>>,
}

impl<T> CollectionSource<T> {
    /// A source over `items`.
    pub fn new(items: Vec<T>) -> Self {
        CollectionSource {
            items: Arc::new(items),
        }
    }
}

struct CollectionReader<T> {
    items: Arc<Vec<T>>,
    next: usize,
    end: usize,
}

impl<T: Clone + Send + Sync + 'static> Source<T> for CollectionSource<T> {
    fn boundedness(&self) -> Boundedness {
        Boundedness::Bounded
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<T>>> {
        let n = self.items.len();
        let (i, p) = (
            ctx.location.subtask as usize,
            ctx.location.parallelism as usize,
        );
        let start = i * n / p;
        // After a restore, go on from the checkpointed index.
        let next = restored_position(ctx, 1)?
            .and_then(|v| v.first().copied())
            .map_or(start, |v| v as usize);
        Ok(Box::new(CollectionReader {
            items: Arc::clone(&self.items),
            next,
            end: (i + 1) * n / p,
        }))
    }
}

impl<T: Clone + Send + Sync + 'static> SourceReader<T> for CollectionReader<T> {
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll> {
        let stop = self.end.min(self.next + max_records);
        for item in &self.items[self.next..stop] {
            out.push(item.clone(), None);
        }
        self.next = stop;
        Ok(if self.next >= self.end {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }

    fn snapshot_position(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        Ok(Some(encode_position(&[self.next as u64])))
    }
}

/// Gathers every record into a shared vector, readable through [`CollectSink::handle`]
/// after the job ends. Meant for tests and small results.
#[derive(Debug, Clone)]
pub struct CollectSink<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        CollectSink {
            items: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Send + 'static> CollectSink<T> {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared vector the sink fills.
    pub fn handle(&self) -> Arc<Mutex<Vec<T>>> {
        Arc::clone(&self.items)
    }

    /// Takes the collected records out.
    pub fn take(&self) -> Vec<T> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

struct CollectWriter<T> {
    items: Arc<Mutex<Vec<T>>>,
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn create_writer(&self, _ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        Ok(Box::new(CollectWriter {
            items: Arc::clone(&self.items),
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for CollectWriter<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch.into_values());
        Ok(())
    }
}
