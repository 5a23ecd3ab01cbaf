//! [`Evictor`]s: remove records from a window's buffer before or after its function runs
//! (Flink's `Evictor`). A window with an evictor keeps its records instead of an
//! accumulator.

use super::TimeWindow;

/// The records of one window with their event times, in arrival order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WindowBuffer<T> {
    values: Vec<T>,
    timestamps: Vec<i64>,
}

impl<T> Default for WindowBuffer<T> {
    fn default() -> Self {
        WindowBuffer {
            values: Vec::new(),
            timestamps: Vec::new(),
        }
    }
}

impl<T> WindowBuffer<T> {
    /// Appends a record.
    pub fn push(&mut self, value: T, timestamp: i64) {
        self.values.push(value);
        self.timestamps.push(timestamp);
    }

    /// The records.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// Their event times.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Removes the `n` oldest records.
    pub fn remove_first(&mut self, n: usize) {
        let n = n.min(self.values.len());
        self.values.drain(..n);
        self.timestamps.drain(..n);
    }

    /// Keeps the records for which `keep(value, timestamp)` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&T, i64) -> bool) {
        let mut i = 0;
        while i < self.values.len() {
            if keep(&self.values[i], self.timestamps[i]) {
                i += 1;
            } else {
                self.values.remove(i);
                self.timestamps.remove(i);
            }
        }
    }

    /// Appends every record of `other`.
    pub fn append(&mut self, mut other: WindowBuffer<T>) {
        self.values.append(&mut other.values);
        self.timestamps.append(&mut other.timestamps);
    }
}

/// Removes records from a window's buffer around the window function.
pub trait Evictor<T>: Send + Sync + 'static {
    /// Before the window function runs. Default: nothing.
    fn evict_before(&self, buffer: &mut WindowBuffer<T>, window: &TimeWindow) {
        let _ = (buffer, window);
    }

    /// After the window function ran. Default: nothing.
    fn evict_after(&self, buffer: &mut WindowBuffer<T>, window: &TimeWindow) {
        let _ = (buffer, window);
    }

    /// Whether this evictor never evicts (lets the runtime aggregate incrementally).
    fn is_none(&self) -> bool {
        false
    }
}

/// Evicts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvictor;

impl<T> Evictor<T> for NoEvictor {
    fn is_none(&self) -> bool {
        true
    }
}

/// Keeps at most `max` records: the most recent ones (Flink's `CountEvictor`).
#[derive(Debug, Clone, Copy)]
pub struct CountEvictor {
    max: usize,
    after: bool,
}

impl CountEvictor {
    /// Keeps the last `max` records, evicting before the window function.
    pub fn of(max: usize) -> Self {
        CountEvictor { max, after: false }
    }

    /// Evicts after the window function instead.
    pub fn after(mut self) -> Self {
        self.after = true;
        self
    }

    fn evict<T>(&self, buffer: &mut WindowBuffer<T>) {
        if buffer.len() > self.max {
            buffer.remove_first(buffer.len() - self.max);
        }
    }
}

impl<T> Evictor<T> for CountEvictor {
    fn evict_before(&self, buffer: &mut WindowBuffer<T>, _window: &TimeWindow) {
        if !self.after {
            self.evict(buffer);
        }
    }

    fn evict_after(&self, buffer: &mut WindowBuffer<T>, _window: &TimeWindow) {
        if self.after {
            self.evict(buffer);
        }
    }
}

/// Keeps the records within `keep_ms` of the newest record's time: evicts those at or
/// before `newest - keep_ms` (Flink's `TimeEvictor`).
#[derive(Debug, Clone, Copy)]
pub struct TimeEvictor {
    keep_ms: i64,
    after: bool,
}

impl TimeEvictor {
    /// Keeps records newer than `newest - keep_ms`, evicting before the window function.
    pub fn of(keep_ms: i64) -> Self {
        TimeEvictor {
            keep_ms,
            after: false,
        }
    }

    /// Evicts after the window function instead.
    pub fn after(mut self) -> Self {
        self.after = true;
        self
    }

    fn evict<T>(&self, buffer: &mut WindowBuffer<T>) {
        let Some(&newest) = buffer.timestamps().iter().max() else {
            return;
        };
        let cutoff = newest.saturating_sub(self.keep_ms);
        buffer.retain(|_, t| t > cutoff);
    }
}

impl<T> Evictor<T> for TimeEvictor {
    fn evict_before(&self, buffer: &mut WindowBuffer<T>, _window: &TimeWindow) {
        if !self.after {
            self.evict(buffer);
        }
    }

    fn evict_after(&self, buffer: &mut WindowBuffer<T>, _window: &TimeWindow) {
        if self.after {
            self.evict(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buffer(ts: &[i64]) -> WindowBuffer<i64> {
        let mut b = WindowBuffer::default();
        for &t in ts {
            b.push(t * 10, t);
        }
        b
    }

    #[test]
    fn count_and_time_evictors_keep_the_newest() {
        let w = TimeWindow::GLOBAL;
        let mut b = buffer(&[1, 2, 3, 4, 5]);
        CountEvictor::of(2).evict_before(&mut b, &w);
        assert_eq!(b.values(), &[40, 50]);
        let mut b = buffer(&[5, 1, 9, 3, 7]);
        TimeEvictor::of(4).evict_before(&mut b, &w);
        assert_eq!(b.timestamps(), &[9, 7], "keeps t > 9 - 4");
        let mut b = buffer(&[1, 2, 3]);
        CountEvictor::of(1).after().evict_before(&mut b, &w);
        assert_eq!(b.len(), 3, "an after-evictor does nothing before");
        CountEvictor::of(1).after().evict_after(&mut b, &w);
        assert_eq!(b.values(), &[30]);
    }
}
