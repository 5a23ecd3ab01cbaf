//! [`TimestampsAndWatermarksOperator`]: assigns event timestamps to records and generates
//! watermarks from them (Flink's `assignTimestampsAndWatermarks`).
//!
//! Each record's timestamp comes from the assigner function (or stays as it was, when no
//! assigner is given); after each batch the watermark derived from the newest timestamp
//! is emitted if it advanced. Watermarks from upstream are replaced by the generated ones,
//! except the final [`Watermark::MAX`] of a finished input, which is forwarded.
//!
//! Not yet: idleness (a subtask without records stops holding the watermark back) and
//! per-split watermarks inside a source. TODO(#3): idleness with processing-time timers.

use std::marker::PhantomData;
use std::sync::Arc;

use sluice_core::{EventTime, Records, Watermark};

use crate::error::Result;
use crate::operator::{Collector, Operator};
use crate::watermark::{BoundedOutOfOrdernessGenerator, WatermarkBound};

/// Extracts a record's event time in milliseconds since the Unix epoch.
pub type TimestampFn<T> = Arc<dyn Fn(&T) -> i64 + Send + Sync>;

/// Assigns timestamps and generates watermarks.
pub struct TimestampsAndWatermarksOperator<T> {
    assigner: Option<TimestampFn<T>>,
    generator: BoundedOutOfOrdernessGenerator,
    emitted: Watermark,
    _types: PhantomData<fn(T)>,
}

impl<T> TimestampsAndWatermarksOperator<T> {
    /// An operator taking timestamps from `assigner` (or keeping existing ones) and
    /// bounding lateness by `bound`.
    pub fn new(assigner: Option<TimestampFn<T>>, bound: WatermarkBound) -> Self {
        TimestampsAndWatermarksOperator {
            assigner,
            generator: BoundedOutOfOrdernessGenerator::new(bound),
            emitted: Watermark::MIN,
            _types: PhantomData,
        }
    }
}

impl<T: Send + 'static> Operator for TimestampsAndWatermarksOperator<T> {
    type In = Records<T>;
    type Out = Records<T>;

    fn on_data(&mut self, batch: Records<T>, out: &mut Collector<'_, Records<T>>) -> Result<()> {
        let batch = match &self.assigner {
            Some(assign) => {
                let (values, _) = batch.into_parts();
                let timestamps: Vec<EventTime> =
                    values.iter().map(|v| EventTime(assign(v))).collect();
                Records::with_timestamps(values, timestamps)
            }
            None => batch,
        };
        if let Some(timestamps) = batch.timestamps() {
            for &t in timestamps {
                self.generator.on_event(t);
            }
        }
        out.collect(batch)?;
        let watermark = self.generator.current();
        if watermark > self.emitted {
            self.emitted = watermark;
            out.emit_watermark(watermark)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, Records<T>>,
    ) -> Result<()> {
        if watermark == Watermark::MAX && self.emitted < Watermark::MAX {
            self.emitted = Watermark::MAX;
            return out.emit_watermark(watermark);
        }
        Ok(())
    }
}
