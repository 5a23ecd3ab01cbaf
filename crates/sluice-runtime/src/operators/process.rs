//! [`ProcessOperator`]: runs a user [`ProcessFunction`] on every record of a stream that is
//! not keyed (Flink's `ProcessFunction`): any number of outputs per record, side outputs,
//! and the record's timestamp and the current watermark. No keyed state or timers; key
//! the stream for those.

use std::marker::PhantomData;

use sluice_core::{EventTime, Records, Watermark};

use super::keyed_process::ProcessOutput;
use super::UserResult;
use crate::error::{Error, Result};
use crate::metrics::{Counter, SIDE_OUTPUT_RECORDS_DROPPED};
use crate::operator::{Collector, Operator, OperatorContext};

/// What a process function sees of the current record.
#[derive(Debug, Clone, Copy)]
pub struct ProcessContext {
    timestamp: Option<EventTime>,
    watermark: Watermark,
}

impl ProcessContext {
    /// The record's event time, if timestamps were assigned.
    pub fn timestamp(&self) -> Option<EventTime> {
        self.timestamp
    }

    /// The operator's current watermark.
    pub fn current_watermark(&self) -> Watermark {
        self.watermark
    }
}

/// User logic run on every record of a stream.
///
/// One instance runs per parallel subtask (cloned from the one given to the API).
pub trait ProcessFunction<I, O>: Send + 'static {
    /// Processes one record; emit with `out.collect` or `out.output(&tag, ..)`.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn process_element(
        &mut self,
        value: I,
        ctx: &ProcessContext,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult;
}

/// Runs a [`ProcessFunction`].
pub struct ProcessOperator<I, O, P> {
    function: P,
    watermark: Watermark,
    unconsumed_side: Counter,
    _types: PhantomData<fn(I) -> O>,
}

impl<I, O, P> ProcessOperator<I, O, P> {
    /// Runs `function` for the subtask at `ctx`.
    pub fn new(ctx: &OperatorContext, function: P) -> Self {
        ProcessOperator {
            function,
            watermark: Watermark::MIN,
            unconsumed_side: ctx.counter(SIDE_OUTPUT_RECORDS_DROPPED),
            _types: PhantomData,
        }
    }
}

impl<I, O, P> Operator for ProcessOperator<I, O, P>
where
    I: Send + 'static,
    O: Send + 'static,
    P: ProcessFunction<I, O>,
{
    type In = Records<I>;
    type Out = Records<O>;

    fn on_data(&mut self, batch: Records<I>, out: &mut Collector<'_, Records<O>>) -> Result<()> {
        let mut output = Records::with_capacity(batch.len());
        for (value, timestamp) in batch.into_iter_timed() {
            let ctx = ProcessContext {
                timestamp,
                watermark: self.watermark,
            };
            let mut emit = ProcessOutput::new(
                &mut output,
                timestamp,
                out.side_outputs(),
                &self.unconsumed_side,
            );
            self.function
                .process_element(value, &ctx, &mut emit)
                .map_err(Error::User)?;
        }
        out.collect(output)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        self.watermark = watermark;
        out.emit_watermark(watermark)
    }
}
