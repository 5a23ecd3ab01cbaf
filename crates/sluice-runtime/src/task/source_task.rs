//! [`SourceTask`]: polls a source reader and pushes its batches into the chain behind it.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Records, StreamEvent, Watermark};

use super::Task;
use crate::control::JobControl;
use crate::error::{panic_message, Error, Result, TaskLocation};
use crate::operator::chain::EventSink;
use crate::operator::OperatorContext;
use crate::source::{Source, SourcePoll};

const PENDING_BACKOFF_MIN: Duration = Duration::from_millis(1);
const PENDING_BACKOFF_MAX: Duration = Duration::from_millis(50);

/// A task running one subtask of a source and the chain behind it.
pub struct SourceTask<T> {
    source: Arc<dyn Source<T>>,
    ctx: OperatorContext,
    downstream: Box<dyn EventSink<Records<T>>>,
    control: Arc<JobControl>,
}

impl<T: Send + 'static> SourceTask<T> {
    /// A task reading `source` as subtask `ctx.location.subtask` into `downstream`.
    pub fn new(
        source: Arc<dyn Source<T>>,
        ctx: OperatorContext,
        downstream: Box<dyn EventSink<Records<T>>>,
        control: Arc<JobControl>,
    ) -> Self {
        SourceTask {
            source,
            ctx,
            downstream,
            control,
        }
    }

    fn guarded<R>(&self, call: impl FnOnce() -> Result<R>) -> Result<R> {
        match catch_unwind(AssertUnwindSafe(call)) {
            Ok(r) => r.map_err(|e| e.at(|| self.ctx.location.clone())),
            Err(payload) => Err(Error::OperatorPanicked {
                location: self.ctx.location.clone(),
                message: panic_message(payload.as_ref()),
            }),
        }
    }
}

impl<T: Send + 'static> Task for SourceTask<T> {
    fn location(&self) -> &TaskLocation {
        &self.ctx.location
    }

    fn run(mut self: Box<Self>) -> Result<()> {
        let mut reader = self.guarded(|| self.source.create_reader(&self.ctx))?;
        let batch_size = self.ctx.batch_size;
        let mut backoff = PENDING_BACKOFF_MIN;
        let mut last_tick = i64::MIN;
        let finished_naturally = loop {
            if self.control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if self.control.is_stop_requested() {
                break false;
            }
            // Processing time moves on for the chain behind the source too.
            let now = self.ctx.clock.now_ms();
            if now != last_tick {
                last_tick = now;
                self.downstream.on_processing_time(now)?;
            }
            let mut batch = Records::with_capacity(batch_size);
            let poll = self.guarded(|| reader.poll(&mut batch, batch_size))?;
            let produced = !batch.is_empty();
            if produced {
                self.downstream.on_event(StreamEvent::Data(batch))?;
            }
            match poll {
                SourcePoll::Ready => backoff = PENDING_BACKOFF_MIN,
                SourcePoll::Pending => {
                    self.downstream.flush()?;
                    if produced {
                        // The reader had data and drained it: look again at once.
                        backoff = PENDING_BACKOFF_MIN;
                    } else {
                        self.ctx.clock.sleep(backoff);
                        backoff = (backoff * 2).min(PENDING_BACKOFF_MAX);
                    }
                }
                SourcePoll::Finished => break true,
            }
        };
        if finished_naturally {
            // The end of a bounded input completes event time: every pending window and
            // timer downstream fires.
            self.downstream
                .on_event(StreamEvent::Watermark(Watermark::MAX))?;
        }
        self.downstream.on_event(StreamEvent::EndOfStream)?;
        self.downstream.flush()
    }
}
