//! [`KeyedCoProcessOperator`]: runs a user [`KeyedCoProcessFunction`] over two connected
//! keyed streams with shared per-key state and timers (Flink's `KeyedCoProcessFunction`).
//!
//! Both inputs are partitioned by key groups of the same key type, so records of one key
//! from either input meet in the same subtask, where they see the same state.

use std::marker::PhantomData;

use sluice_core::{CheckpointId, KeyGroupRange, Records, Watermark};
use sluice_state::StateKey;

use super::keyed_process::KeyedRuntime;
use super::timers::TimeDomain;
use super::{KeySelector, KeyedContext, OpenContext, ProcessOutput, UserResult};
use crate::checkpoint::OperatorSnapshot;
use crate::error::{Error, Result};
use crate::metrics::{Counter, SIDE_OUTPUT_RECORDS_DROPPED};
use crate::operator::two_input::TwoInputOperator;
use crate::operator::{Collector, OperatorContext};

/// User logic over two keyed streams with shared per-key state and timers.
///
/// One instance runs per parallel subtask; keep per-key data in state, not in fields.
pub trait KeyedCoProcessFunction<K, I1, I2, O>: Send + 'static {
    /// Registers states. Default: none.
    ///
    /// # Errors
    /// An error fails the job before any record is processed.
    fn open(&mut self, ctx: &mut OpenContext<'_, K>) -> UserResult {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record of the first input, of key `ctx.key()`.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult;

    /// Processes one record of the second input, of key `ctx.key()`.
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult;

    /// A timer of `ctx.key()` fired (see `KeyedProcessFunction::on_timer`).
    ///
    /// # Errors
    /// An error fails the job, naming the operator and subtask.
    fn on_timer(
        &mut self,
        time: i64,
        domain: TimeDomain,
        ctx: &mut KeyedContext<'_, K>,
        out: &mut ProcessOutput<'_, O>,
    ) -> UserResult {
        let _ = (time, domain, ctx, out);
        Ok(())
    }
}

/// Runs a [`KeyedCoProcessFunction`] over two keyed streams.
pub struct KeyedCoProcessOperator<K, I1, I2, O, P> {
    key1: KeySelector<I1, K>,
    key2: KeySelector<I2, K>,
    function: P,
    keyed: KeyedRuntime<K>,
    unconsumed_side: Counter,
    range: KeyGroupRange,
    max_parallelism: u32,
    _types: PhantomData<fn(I1, I2) -> O>,
}

impl<K, I1, I2, O, P> KeyedCoProcessOperator<K, I1, I2, O, P>
where
    K: StateKey,
{
    /// Runs `function` on two inputs keyed by `key1` and `key2`.
    pub fn new(
        ctx: &OperatorContext,
        key1: KeySelector<I1, K>,
        key2: KeySelector<I2, K>,
        function: P,
    ) -> Self {
        KeyedCoProcessOperator {
            key1,
            key2,
            function,
            keyed: KeyedRuntime::new(ctx),
            unconsumed_side: ctx.counter(SIDE_OUTPUT_RECORDS_DROPPED),
            range: ctx.key_group_range,
            max_parallelism: ctx.max_parallelism,
            _types: PhantomData,
        }
    }
}

impl<K, I1, I2, O, P> KeyedCoProcessOperator<K, I1, I2, O, P>
where
    K: StateKey,
    I1: Send + 'static,
    I2: Send + 'static,
    O: Send + 'static,
    P: KeyedCoProcessFunction<K, I1, I2, O>,
{
    fn fire(
        &mut self,
        domain: TimeDomain,
        up_to: i64,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        let function = &mut self.function;
        self.keyed.fire_timers(
            domain,
            up_to,
            out,
            &self.unconsumed_side,
            |time, domain, ctx, emit| function.on_timer(time, domain, ctx, emit),
        )
    }
}

impl<K, I1, I2, O, P> TwoInputOperator for KeyedCoProcessOperator<K, I1, I2, O, P>
where
    K: StateKey,
    I1: Send + 'static,
    I2: Send + 'static,
    O: Send + 'static,
    P: KeyedCoProcessFunction<K, I1, I2, O>,
{
    type In1 = Records<I1>;
    type In2 = Records<I2>;
    type Out = Records<O>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        if let Some(restored) = &ctx.restored {
            self.keyed.restore(restored)?;
        }
        let mut open = OpenContext::new(&mut self.keyed.store, ctx);
        self.function.open(&mut open).map_err(Error::User)
    }

    fn snapshot_state(&mut self, _checkpoint: CheckpointId) -> Result<OperatorSnapshot> {
        self.keyed.snapshot(self.range, self.max_parallelism)
    }

    fn on_data1(&mut self, batch: Records<I1>, out: &mut Collector<'_, Records<O>>) -> Result<()> {
        let function = &mut self.function;
        self.keyed.process_batch(
            batch,
            &self.key1,
            out,
            &self.unconsumed_side,
            |value, ctx, emit| function.process_element1(value, ctx, emit),
        )
    }

    fn on_data2(&mut self, batch: Records<I2>, out: &mut Collector<'_, Records<O>>) -> Result<()> {
        let function = &mut self.function;
        self.keyed.process_batch(
            batch,
            &self.key2,
            out,
            &self.unconsumed_side,
            |value, ctx, emit| function.process_element2(value, ctx, emit),
        )
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        self.keyed.watermark = watermark;
        self.fire(TimeDomain::EventTime, watermark.0.millis(), out)?;
        out.emit_watermark(watermark)
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Records<O>>,
    ) -> Result<()> {
        self.fire(TimeDomain::ProcessingTime, now_ms, out)
    }
}
