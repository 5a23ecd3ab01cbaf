//! [`GeneratorSource`]: records computed from their index `0, 1, 2, ...`.
//!
//! Subtask `i` of `p` generates a contiguous range of indexes. With a rate, each subtask
//! produces its share of `records_per_second`, paced by the job's clock.

use std::sync::Arc;

use sluice_core::{CheckpointId, Records};
use sluice_runtime::source::{
    encode_position, restored_position, Boundedness, Source, SourcePoll, SourceReader,
};
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
        // After a restore, go on from the checkpointed index.
        let next = restored_position(ctx, 1)?
            .and_then(|v| v.first().copied())
            .unwrap_or(next);
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

    fn snapshot_position(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        Ok(Some(encode_position(&[self.next])))
    }
}

/// Generates several streams (*splits*) at once: split `s` produces `f(s, 0), f(s, 1),
/// ...`. Splits are dealt round robin to the source's subtasks; a subtask reads its splits
/// in turns, one split per poll, and reports which split each poll read, so that
/// `from_source` keeps one watermark per split (as it would per Kafka partition).
pub struct SplitGeneratorSource<T> {
    splits: u32,
    per_split: Option<u64>,
    f: Arc<dyn Fn(u32, u64) -> T + Send + Sync>,
    rate_per_split: Option<f64>,
}

impl<T> std::fmt::Debug for SplitGeneratorSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitGeneratorSource")
            .field("splits", &self.splits)
            .field("per_split", &self.per_split)
            .field("rate_per_split", &self.rate_per_split)
            .finish()
    }
}

impl<T> SplitGeneratorSource<T> {
    /// `splits` splits of `per_split` records each.
    pub fn bounded(
        splits: u32,
        per_split: u64,
        f: impl Fn(u32, u64) -> T + Send + Sync + 'static,
    ) -> Self {
        SplitGeneratorSource {
            splits,
            per_split: Some(per_split),
            f: Arc::new(f),
            rate_per_split: None,
        }
    }

    /// `splits` endless splits.
    pub fn unbounded(splits: u32, f: impl Fn(u32, u64) -> T + Send + Sync + 'static) -> Self {
        SplitGeneratorSource {
            splits,
            per_split: None,
            f: Arc::new(f),
            rate_per_split: None,
        }
    }

    /// Paces every split to `records_per_second` by the job's clock.
    pub fn with_rate_per_split(mut self, records_per_second: f64) -> Self {
        self.rate_per_split = Some(records_per_second);
        self
    }
}

struct SplitState {
    id: u32,
    next: u64,
    /// Where the split started in this run (0, or its restored position): pacing counts
    /// from there.
    base: u64,
    finished: bool,
}

struct SplitGeneratorReader<T> {
    f: Arc<dyn Fn(u32, u64) -> T + Send + Sync>,
    splits: Vec<SplitState>,
    end: Option<u64>,
    rate: Option<f64>,
    started_nanos: Option<u64>,
    cursor: usize,
    last: Option<u32>,
    newly_finished: Vec<u32>,
    ctx: OperatorContext,
}

impl<T: Send + 'static> Source<T> for SplitGeneratorSource<T> {
    fn boundedness(&self) -> Boundedness {
        match self.per_split {
            Some(_) => Boundedness::Bounded,
            None => Boundedness::Unbounded,
        }
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<T>>> {
        let (i, p) = (ctx.location.subtask, ctx.location.parallelism.max(1));
        let mine: Vec<u32> = (0..self.splits).filter(|s| s % p == i).collect();
        let restored = restored_position(ctx, mine.len())?;
        let splits: Vec<SplitState> = mine
            .iter()
            .enumerate()
            .map(|(n, &id)| {
                let next = restored
                    .as_ref()
                    .and_then(|r| r.get(n).copied())
                    .unwrap_or(0);
                SplitState {
                    id,
                    next,
                    base: next,
                    finished: self.per_split.is_some_and(|end| next >= end),
                }
            })
            .collect();
        // Splits already exhausted (after a restore) must not hold the watermark back.
        let newly_finished = splits
            .iter()
            .filter(|s: &&SplitState| s.finished)
            .map(|s| s.id)
            .collect();
        Ok(Box::new(SplitGeneratorReader {
            f: Arc::clone(&self.f),
            splits,
            end: self.per_split,
            rate: self.rate_per_split,
            started_nanos: None,
            cursor: 0,
            last: None,
            newly_finished,
            ctx: ctx.clone(),
        }))
    }
}

impl<T: Send + 'static> SourceReader<T> for SplitGeneratorReader<T> {
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll> {
        self.last = None;
        let n = self.splits.len();
        let now = self.ctx.clock.monotonic_nanos();
        let start = *self.started_nanos.get_or_insert(now);
        for step in 0..n {
            let index = (self.cursor + step) % n;
            let split = &mut self.splits[index];
            if split.finished {
                continue;
            }
            let mut stop = split.next.saturating_add(max_records as u64);
            if let Some(end) = self.end {
                stop = stop.min(end);
            }
            if let Some(rate) = self.rate {
                let due = split.base + ((now - start) as f64 * rate / 1e9) as u64;
                stop = stop.min(due.max(split.next));
            }
            if stop == split.next {
                continue;
            }
            for i in split.next..stop {
                out.push((self.f)(split.id, i), None);
            }
            split.next = stop;
            if self.end.is_some_and(|end| split.next >= end) {
                split.finished = true;
                self.newly_finished.push(split.id);
            }
            self.last = Some(split.id);
            self.cursor = (index + 1) % n;
            break;
        }
        Ok(if self.splits.iter().all(|s| s.finished) {
            SourcePoll::Finished
        } else if self.last.is_some() {
            SourcePoll::Ready
        } else {
            SourcePoll::Pending
        })
    }

    fn splits(&self) -> Vec<u32> {
        self.splits.iter().map(|s| s.id).collect()
    }

    fn snapshot_position(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let next: Vec<u64> = self.splits.iter().map(|s| s.next).collect();
        Ok(Some(encode_position(&next)))
    }

    fn last_split(&self) -> Option<u32> {
        self.last
    }

    fn take_finished_splits(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.newly_finished)
    }
}
