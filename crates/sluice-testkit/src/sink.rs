//! [`TimedCollectSink`]: gathers records with their timestamps, and watermarks, per
//! subtask, in arrival order: what event-time tests check.

use std::sync::{Arc, Mutex, PoisonError};

use sluice_api::runtime::sink::{Sink, SinkWriter};
use sluice_api::runtime::{OperatorContext, Result};
use sluice_core::{EventTime, Records, Watermark};

/// One thing a sink subtask received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<T> {
    /// A record and its timestamp.
    Record(T, Option<EventTime>),
    /// A watermark.
    Watermark(Watermark),
}

/// Everything each sink subtask received, in order, indexed by subtask.
type PerSubtask<T> = Arc<Mutex<Vec<Vec<Received<T>>>>>;

/// A sink that records what each subtask receives.
#[derive(Debug, Clone)]
pub struct TimedCollectSink<T> {
    received: PerSubtask<T>,
}

impl<T> Default for TimedCollectSink<T> {
    fn default() -> Self {
        TimedCollectSink {
            received: Arc::new(Mutex::new(Vec::new())),
        }
    }
}

impl<T: Clone> TimedCollectSink<T> {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// What each subtask received, in order.
    pub fn per_subtask(&self) -> Vec<Vec<Received<T>>> {
        self.received
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Every record with its timestamp, all subtasks together.
    pub fn records(&self) -> Vec<(T, Option<EventTime>)> {
        self.per_subtask()
            .into_iter()
            .flatten()
            .filter_map(|r| match r {
                Received::Record(v, t) => Some((v, t)),
                Received::Watermark(_) => None,
            })
            .collect()
    }
}

struct Writer<T> {
    subtask: usize,
    received: PerSubtask<T>,
}

impl<T> Writer<T> {
    fn push(&self, items: impl IntoIterator<Item = Received<T>>) {
        let mut all = self.received.lock().unwrap_or_else(PoisonError::into_inner);
        if all.len() <= self.subtask {
            all.resize_with(self.subtask + 1, Vec::new);
        }
        all[self.subtask].extend(items);
    }
}

impl<T: Send + 'static> Sink<T> for TimedCollectSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        Ok(Box::new(Writer {
            subtask: ctx.location.subtask as usize,
            received: Arc::clone(&self.received),
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for Writer<T> {
    fn write(&mut self, batch: Records<T>) -> Result<()> {
        self.push(batch.into_iter_timed().map(|(v, t)| Received::Record(v, t)));
        Ok(())
    }

    fn on_watermark(&mut self, watermark: Watermark) -> Result<()> {
        self.push([Received::Watermark(watermark)]);
        Ok(())
    }
}
