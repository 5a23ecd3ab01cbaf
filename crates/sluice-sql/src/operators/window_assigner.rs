//! [`WindowAssigner`]: the windowing table functions `TUMBLE`, `HOP`, `CUMULATE` and
//! `SESSION`. Each row gets `window_start`, `window_end` and `window_time` (`window_end -
//! 1 ms`) for every window it belongs to (one for `TUMBLE`, `size / slide` for `HOP`, up
//! to `size / step` for `CUMULATE`). A `SESSION` row gets its own window `[ts, ts + gap)`,
//! which the session aggregation merges with the key's other windows.
//!
//! As in Flink, rows of windows the watermark already passed (late rows) and rows
//! without a time are dropped and counted (`late_records_dropped`).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch, TimestampMillisecondArray};
use arrow::compute::take;
use arrow::datatypes::{DataType, SchemaRef};
use sluice_core::Watermark;
use sluice_runtime::metrics::Counter;
use sluice_runtime::{Collector, Operator, OperatorContext, Result as RuntimeResult};

use crate::batch::SqlBatch;
use crate::catalog::WindowKind;
use crate::error::{exec, Error};

/// The windows a time falls into, as `(start, end)` in milliseconds.
pub fn windows_of(kind: WindowKind, ts: i64, out: &mut Vec<(i64, i64)>) {
    out.clear();
    match kind {
        WindowKind::Tumble { size_ms, offset_ms } => {
            let start = ts - (ts - offset_ms).rem_euclid(size_ms);
            out.push((start, start + size_ms));
        }
        WindowKind::Hop {
            slide_ms,
            size_ms,
            offset_ms,
        } => {
            let mut start = ts - (ts - offset_ms).rem_euclid(slide_ms);
            while start > ts - size_ms {
                out.push((start, start + size_ms));
                start -= slide_ms;
            }
        }
        WindowKind::Cumulate {
            step_ms,
            size_ms,
            offset_ms,
        } => {
            let start = ts - (ts - offset_ms).rem_euclid(size_ms);
            let first_end = ts - (ts - offset_ms).rem_euclid(step_ms) + step_ms;
            let mut end = first_end;
            while end <= start + size_ms {
                out.push((start, end));
                end += step_ms;
            }
        }
        // A row's own session window; the session aggregation merges them.
        WindowKind::Session { gap_ms } => out.push((ts, ts + gap_ms)),
    }
}

/// Adds window columns to rows.
pub struct WindowAssigner {
    kind: WindowKind,
    time_column: usize,
    processing_time: bool,
    schema: SchemaRef,
    watermark: i64,
    late: Option<Counter>,
}

impl WindowAssigner {
    /// Windows of `kind` over the time in column `time_column`; output rows have
    /// `schema` (the input's columns and the three window columns). Over a processing
    /// time attribute (`processing_time`) each row is passed on once, with its first
    /// window as a placeholder: the aggregation assigns it by its own clock.
    pub fn new(
        kind: WindowKind,
        time_column: usize,
        processing_time: bool,
        schema: SchemaRef,
    ) -> Self {
        WindowAssigner {
            kind,
            time_column,
            processing_time,
            schema,
            watermark: i64::MIN,
            late: None,
        }
    }

    /// The rows of `batch` with their windows.
    ///
    /// # Errors
    /// When the time column is not a timestamp.
    pub fn assign(&mut self, batch: &SqlBatch) -> Result<Option<SqlBatch>, Error> {
        let times = batch.data().column(self.time_column);
        let times = super::timestamps_ms(times, "the window time column")?;
        let rows = batch.num_rows();
        let mut indices: Vec<u32> = Vec::with_capacity(rows);
        let mut starts: Vec<i64> = Vec::with_capacity(rows);
        let mut ends: Vec<i64> = Vec::with_capacity(rows);
        let mut windows = Vec::with_capacity(4);
        let mut dropped = 0u64;
        for i in 0..rows {
            if times.is_null(i) {
                dropped += 1;
                continue;
            }
            windows_of(self.kind, times.value(i), &mut windows);
            if self.processing_time {
                windows.truncate(1);
            }
            for &(start, end) in &windows {
                // A session row may still join an open session: its aggregation decides.
                let session = matches!(self.kind, WindowKind::Session { .. });
                if end - 1 <= self.watermark && !session && !self.processing_time {
                    dropped += 1;
                    continue;
                }
                indices.push(i as u32);
                starts.push(start);
                ends.push(end);
            }
        }
        if dropped > 0 {
            if let Some(c) = &self.late {
                c.add(dropped);
            }
        }
        if indices.is_empty() {
            return Ok(None);
        }
        let tz = match self
            .schema
            .field(self.schema.fields().len() - 1)
            .data_type()
        {
            DataType::Timestamp(_, tz) => tz.clone(),
            _ => None,
        };
        let identity =
            indices.len() == rows && indices.iter().enumerate().all(|(i, &x)| i as u32 == x);
        let mut columns: Vec<ArrayRef> = if identity {
            batch.data().columns().to_vec()
        } else {
            let idx = arrow::array::UInt32Array::from(indices.clone());
            batch
                .data()
                .columns()
                .iter()
                .map(|c| take(c.as_ref(), &idx, None))
                .collect::<Result<_, _>>()?
        };
        let times: Vec<i64> = ends.iter().map(|e| e - 1).collect();
        for values in [starts, ends, times] {
            columns.push(Arc::new(
                TimestampMillisecondArray::from(values).with_timezone_opt(tz.clone()),
            ));
        }
        let data = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(Some(match batch.kinds() {
            None => SqlBatch::new(data),
            Some(k) => SqlBatch::with_kinds(data, indices.iter().map(|&i| k[i as usize]).collect()),
        }))
    }
}

impl Operator for WindowAssigner {
    type In = SqlBatch;
    type Out = SqlBatch;

    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.late = Some(ctx.counter("late_records_dropped"));
        Ok(())
    }

    fn on_data(&mut self, batch: SqlBatch, out: &mut Collector<'_, SqlBatch>) -> RuntimeResult<()> {
        if let Some(b) = exec(self.assign(&batch))? {
            out.collect(b)?;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Collector<'_, SqlBatch>,
    ) -> RuntimeResult<()> {
        self.watermark = self.watermark.max(watermark.0 .0);
        out.emit_watermark(watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: WindowKind, ts: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        windows_of(kind, ts, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn tumbling_hopping_and_cumulating_windows_follow_flink() {
        let t = WindowKind::Tumble {
            size_ms: 10,
            offset_ms: 0,
        };
        assert_eq!(w(t, 0), vec![(0, 10)]);
        assert_eq!(w(t, 9), vec![(0, 10)]);
        assert_eq!(w(t, -1), vec![(-10, 0)]);
        let t = WindowKind::Tumble {
            size_ms: 10,
            offset_ms: 3,
        };
        assert_eq!(w(t, 2), vec![(-7, 3)]);
        let h = WindowKind::Hop {
            slide_ms: 2,
            size_ms: 10,
            offset_ms: 0,
        };
        assert_eq!(w(h, 11), vec![(2, 12), (4, 14), (6, 16), (8, 18), (10, 20)]);
        let h = WindowKind::Hop {
            slide_ms: 4,
            size_ms: 6,
            offset_ms: 0,
        };
        assert_eq!(w(h, 5), vec![(0, 6), (4, 10)]);
        assert_eq!(w(h, 6), vec![(4, 10)]);
        let c = WindowKind::Cumulate {
            step_ms: 2,
            size_ms: 6,
            offset_ms: 0,
        };
        assert_eq!(w(c, 0), vec![(0, 2), (0, 4), (0, 6)]);
        assert_eq!(w(c, 3), vec![(0, 4), (0, 6)]);
        assert_eq!(w(c, 5), vec![(0, 6)]);
        assert_eq!(w(c, 6), vec![(6, 8), (6, 10), (6, 12)]);
    }
}
