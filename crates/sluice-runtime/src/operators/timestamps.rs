//! [`TimestampsAndWatermarksOperator`]: assigns event timestamps to records and generates
//! watermarks from them (Flink's `assignTimestampsAndWatermarks`).
//!
//! Each record's timestamp comes from the assigner function (or stays as it was, when no
//! assigner is given); after each batch the watermark derived from the newest timestamp
//! is emitted if it advanced. Watermarks from upstream are replaced by the generated ones,
//! except the final [`Watermark::MAX`] of a finished input, which is forwarded; so is an
//! upstream idle status replaced by this operator's own. With an idleness timeout, a
//! subtask that received no record for that long (processing time) declares itself idle
//! and stops holding back the watermark downstream; its next record makes it active
//! again. Per-split watermarks inside a source are `SourceWatermarks` (source task).

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::{Clock, EventTime, Records, Watermark, WatermarkStatus};

use crate::error::Result;
use crate::operator::{Collector, Operator, OperatorContext};
use crate::watermark::{SplitWatermarks, WatermarkBound, WatermarkUpdate};

/// Extracts a record's event time in milliseconds since the Unix epoch.
pub type TimestampFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// How a stream gets timestamps and watermarks, as the runtime uses it.
pub struct WatermarkSpec<T> {
    /// Where timestamps come from (`None`: keep the records' own).
    pub assigner: Option<TimestampFn<T>>,
    /// How far the watermark trails the newest timestamp.
    pub bound: WatermarkBound,
    /// After how long without records (ms of processing time) an input is idle.
    pub idle_timeout_ms: Option<i64>,
}

impl<T> Clone for WatermarkSpec<T> {
    fn clone(&self) -> Self {
        WatermarkSpec {
            assigner: self.assigner.clone(),
            bound: self.bound,
            idle_timeout_ms: self.idle_timeout_ms,
        }
    }
}

impl<T> WatermarkSpec<T> {
    /// Stamps `batch` with the assigner's timestamps, if there is an assigner.
    pub fn stamp(&self, batch: Records<T>) -> Records<T> {
        match &self.assigner {
            Some(assign) => {
                let (values, _) = batch.into_parts();
                let timestamps: Vec<EventTime> =
                    values.iter().map(|v| EventTime(assign(v))).collect();
                Records::with_timestamps(values, timestamps)
            }
            None => batch,
        }
    }
}

/// Emits a watermark update: status first, then the watermark.
pub(crate) fn emit_update<T: Send + 'static>(
    update: WatermarkUpdate,
    out: &mut Collector<'_, Records<T>>,
) -> Result<()> {
    if let Some(status) = update.status {
        out.emit_watermark_status(status)?;
    }
    if let Some(w) = update.watermark {
        out.emit_watermark(w)?;
    }
    Ok(())
}

/// Assigns timestamps and generates watermarks.
pub struct TimestampsAndWatermarksOperator<T> {
    spec: WatermarkSpec<T>,
    watermarks: SplitWatermarks,
    clock: Option<Arc<dyn Clock>>,
    finished: bool,
    _types: PhantomData<fn(T)>,
}

impl<T> TimestampsAndWatermarksOperator<T> {
    /// An operator taking timestamps from `assigner` (or keeping existing ones) and
    /// bounding lateness by `bound`.
    pub fn new(assigner: Option<TimestampFn<T>>, bound: WatermarkBound) -> Self {
        Self::with_spec(WatermarkSpec {
            assigner,
            bound,
            idle_timeout_ms: None,
        })
    }

    /// An operator following `spec` (with its idleness timeout).
    pub fn with_spec(spec: WatermarkSpec<T>) -> Self {
        TimestampsAndWatermarksOperator {
            watermarks: SplitWatermarks::new(spec.bound, spec.idle_timeout_ms),
            spec,
            clock: None,
            finished: false,
            _types: PhantomData,
        }
    }

    /// Processing time, which only idleness needs: without an idleness timeout the clock
    /// is not read on every batch.
    fn now(&self) -> i64 {
        match (&self.clock, self.spec.idle_timeout_ms) {
            (Some(clock), Some(_)) => clock.now_ms(),
            _ => 0,
        }
    }
}

impl<T: Send + 'static> Operator for TimestampsAndWatermarksOperator<T> {
    type In = Records<T>;
    type Out = Records<T>;

    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.clock = Some(Arc::clone(&ctx.clock));
        self.watermarks.add_split(0, self.now());
        Ok(())
    }

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        let batch = self.spec.stamp(batch);
        let now = self.now();
        if let Some(timestamps) = batch.timestamps() {
            if let Some(status) = self.watermarks.on_records(0, timestamps, now) {
                out.emit_watermark_status(status)?;
            }
        }
        out.collect(batch)?;
        if self.finished {
            return Ok(());
        }
        let update = self.watermarks.poll(now);
        emit_update(update, out)
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        if watermark == Watermark::MAX && !self.finished {
            self.finished = true;
            if self.watermarks.status() == WatermarkStatus::Idle {
                out.emit_watermark_status(WatermarkStatus::Active)?;
            }
            return out.emit_watermark(watermark);
        }
        Ok(())
    }

    fn on_watermark_status(
        &mut self,
        _status: WatermarkStatus,
        _out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        // This operator decides idleness from its own input.
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        now_ms: i64,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        if self.finished || self.spec.idle_timeout_ms.is_none() {
            return Ok(());
        }
        let update = self.watermarks.poll(now_ms);
        emit_update(update, out)
    }
}
