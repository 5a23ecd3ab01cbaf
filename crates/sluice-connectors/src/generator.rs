//! [`GeneratorSource`]: records computed from their index `0, 1, 2, ...`.
//!
//! Subtask `i` of `p` generates a contiguous range of indexes. With a rate, each subtask
//! produces its share of `records_per_second`, paced by the job's clock.

use std::sync::Arc;

use sluice_core::Records;
use sluice_runtime::source::{Boundedness, Source, SourcePoll, SourceReader};
use sluice_runtime::{OperatorContext, Result};

/// Generates `f(index)` for each index of its range.
pub struct GeneratorSource<T> {
    f: Arc<dyn Fn(u64) -> T + Send + Sync>,
    count: Option<u64>,
    records_per_second: Option<f64>,
}

impl<T> std::fmt::Debug for GeneratorSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSource")
            .field("count", &self.count)
            .field("records_per_second", &self.records_per_second)
            .finish()
    }
}

impl<T> GeneratorSource<T> {
    /// Generates `f(0) .. f(count - 1)`, then ends.
    pub fn bounded(count: u64, f: impl Fn(u64) -> T + Send + Sync + 'static) -> Self {
        GeneratorSource {
            f: Arc::new(f),
            count: Some(count),
            records_per_second: None,
        }
    }

    /// Generates `f(0), f(1), ...` until the job is stopped.
    pub fn unbounded(f: impl Fn(u64) -> T + Send + Sync + 'static) -> Self {
        GeneratorSource {
            f: Arc::new(f),
            count: None,
            records_per_second: None,
        }
    }

    /// Limits the total rate over all subtasks.
    pub fn with_rate(mut self, records_per_second: f64) -> Self {
        self.records_per_second = Some(records_per_second);
        self
    }
}

struct GeneratorReader<T> {
    f: Arc<dyn Fn(u64) -> T + Send + Sync>,
    next: u64,
    end: u64,
    rate: Option<f64>,
    started_nanos: Option<u64>,
    produced: u64,
    ctx: OperatorContext,
}

impl<T: Send + 'static> Source<T> for GeneratorSource<T> {
    fn boundedness(&self) -> Boundedness {
        match self.count {
            Some(_) => Boundedness::Bounded,
            None => Boundedness::Unbounded,
        }
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<T>>> {
        let (i, p) = (
            u64::from(ctx.location.subtask),
            u64::from(ctx.location.parallelism),
        );
        let (next, end) = match self.count {
            Some(n) => (
                (u128::from(i) * u128::from(n) / u128::from(p)) as u64,
                (u128::from(i + 1) * u128::from(n) / u128::from(p)) as u64,
            ),
            // Unbounded: subtasks take interleaved blocks of 2^48 indexes.
            None => (i << 48, u64::MAX),
        };
        Ok(Box::new(GeneratorReader {
            f: Arc::clone(&self.f),
            next,
            end,
            rate: self.records_per_second.map(|r| r / p as f64),
            started_nanos: None,
            produced: 0,
            ctx: ctx.clone(),
        }))
    }
}

impl<T: Send + 'static> SourceReader<T> for GeneratorReader<T> {
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll> {
        let mut budget = max_records as u64;
        if let Some(rate) = self.rate {
            let now = self.ctx.clock.monotonic_nanos();
            let start = *self.started_nanos.get_or_insert(now);
            let due = ((now - start) as f64 * rate / 1e9) as u64;
            let allowed = due.saturating_sub(self.produced);
            if allowed == 0 {
                // Nothing is due yet: the task flushes what it holds and polls again soon.
                return Ok(SourcePoll::Pending);
            }
            budget = budget.min(allowed);
        }
        let stop = self.end.min(self.next.saturating_add(budget));
        for index in self.next..stop {
            out.push((self.f)(index), None);
        }
        self.produced += stop - self.next;
        self.next = stop;
        Ok(if self.next >= self.end {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }
}
