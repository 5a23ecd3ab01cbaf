//! Batches: the unit that crosses a channel. Per-record work never crosses a thread.
//!
//! [`Batch`] is what the runtime needs of any container (the typed API's [`Records`], and
//! Arrow `RecordBatch`es for SQL later). [`Records`] holds the values of a typed stream and,
//! once timestamps were assigned, one [`EventTime`] per value in a parallel column.
//! Invariant: when the timestamp column is present it has exactly one entry per value.

use serde::{Deserialize, Serialize};

use crate::time::EventTime;

/// A container of records that travels on a channel as one unit.
pub trait Batch: Send + 'static {
    /// Number of records in the batch.
    fn len(&self) -> usize;
    /// Whether the batch holds no record.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The batch container of the typed DataStream API: values, plus an optional event-time
/// column (present once a timestamp assigner ran upstream). Serializable (for the channel
/// state of unaligned checkpoints and, later, the network) when `T` is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Records<T> {
    values: Vec<T>,
    timestamps: Option<Vec<EventTime>>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            values: Vec::new(),
            timestamps: None,
        }
    }
}

impl<T: Send + 'static> Batch for Records<T> {
    fn len(&self) -> usize {
        self.values.len()
    }
}

/// A batch of one of the two inputs of a two-input operator (`connect`, joins). The task
/// of such an operator reads the channels of both inputs through one gate, so watermarks,
/// barriers and end of stream are handled over all of them together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TwoInputBatch<A, B> {
    /// A batch of the first input.
    First(A),
    /// A batch of the second input.
    Second(B),
}

impl<A: Batch, B: Batch> Batch for TwoInputBatch<A, B> {
    fn len(&self) -> usize {
        match self {
            TwoInputBatch::First(a) => a.len(),
            TwoInputBatch::Second(b) => b.len(),
        }
    }
}

impl<T> From<Vec<T>> for Records<T> {
    fn from(values: Vec<T>) -> Self {
        Records {
            values,
            timestamps: None,
        }
    }
}

impl<T> Records<T> {
    /// An empty batch without timestamps.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        Records {
            values: Vec::with_capacity(capacity),
            timestamps: None,
        }
    }

    /// A batch of values with one timestamp each.
    ///
    /// # Panics
    /// If the two vectors differ in length: that is a bug in the caller.
    pub fn with_timestamps(values: Vec<T>, timestamps: Vec<EventTime>) -> Self {
        assert_eq!(
            values.len(),
            timestamps.len(),
            "a timestamp column must have one entry per value"
        );
        Records {
            values,
            timestamps: Some(timestamps),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values.
    pub fn values(&self) -> &[T] {
        &self.values
    }

    /// The timestamp column, if timestamps were assigned.
    pub fn timestamps(&self) -> Option<&[EventTime]> {
        self.timestamps.as_deref()
    }

    /// The timestamp of value `index`, if timestamps were assigned.
    pub fn timestamp(&self, index: usize) -> Option<EventTime> {
        self.timestamps.as_ref().and_then(|t| t.get(index).copied())
    }

    /// Splits the batch into its values and its timestamp column.
    pub fn into_parts(self) -> (Vec<T>, Option<Vec<EventTime>>) {
        (self.values, self.timestamps)
    }

    /// Takes the values, dropping timestamps.
    pub fn into_values(self) -> Vec<T> {
        self.values
    }

    /// Appends one value with an optional timestamp, keeping the column consistent: a
    /// value without a timestamp in a batch that has them gets [`EventTime::MIN`], and the
    /// first timestamped value backfills [`EventTime::MIN`] for earlier values.
    #[inline]
    pub fn push(&mut self, value: T, timestamp: Option<EventTime>) {
        match (&mut self.timestamps, timestamp) {
            (Some(column), t) => column.push(t.unwrap_or(EventTime::MIN)),
            (None, Some(t)) => {
                let mut column = Vec::with_capacity(self.values.capacity().max(1));
                column.resize(self.values.len(), EventTime::MIN);
                column.push(t);
                self.timestamps = Some(column);
            }
            (None, None) => {}
        }
        self.values.push(value);
    }

    /// Moves every value of `other` to the end of this batch.
    pub fn append(&mut self, other: Records<T>) {
        let (values, timestamps) = other.into_parts();
        match (&mut self.timestamps, timestamps) {
            (None, None) => {}
            (Some(column), Some(more)) => column.extend(more),
            (Some(column), None) => column.resize(column.len() + values.len(), EventTime::MIN),
            (None, Some(more)) => {
                let mut column = Vec::with_capacity(self.values.len() + more.len());
                column.resize(self.values.len(), EventTime::MIN);
                column.extend(more);
                self.timestamps = Some(column);
            }
        }
        if self.values.is_empty() {
            self.values = values;
        } else {
            self.values.extend(values);
        }
    }

    /// Removes all values, keeping allocations.
    pub fn clear(&mut self) {
        self.values.clear();
        if let Some(t) = &mut self.timestamps {
            t.clear();
        }
    }

    /// Takes the content out, leaving an empty batch with the same capacity hint.
    pub fn take(&mut self, capacity: usize) -> Records<T> {
        let values = std::mem::replace(&mut self.values, Vec::with_capacity(capacity));
        let timestamps = self.timestamps.take();
        Records { values, timestamps }
    }

    /// Iterates over `(value, timestamp)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&T, Option<EventTime>)> + '_ {
        self.values
            .iter()
            .enumerate()
            .map(move |(i, v)| (v, self.timestamp(i)))
    }

    /// Consumes the batch into `(value, timestamp)` pairs.
    pub fn into_iter_timed(self) -> impl Iterator<Item = (T, Option<EventTime>)> {
        let ts = self.timestamps;
        self.values
            .into_iter()
            .enumerate()
            .map(move |(i, v)| (v, ts.as_ref().map(|t| t[i])))
    }

    /// Applies `f` to every value, keeping timestamps.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Records<U> {
        Records {
            values: self.values.into_iter().map(f).collect(),
            timestamps: self.timestamps,
        }
    }

    /// Keeps the values for which `keep` is true, with their timestamps.
    pub fn filter(self, mut keep: impl FnMut(&T) -> bool) -> Records<T> {
        match self.timestamps {
            None => {
                let mut values = self.values;
                values.retain(|v| keep(v));
                Records::from(values)
            }
            Some(ts) => {
                let mut values = Vec::with_capacity(self.values.len());
                let mut kept_ts = Vec::with_capacity(ts.len());
                for (v, t) in self.values.into_iter().zip(ts) {
                    if keep(&v) {
                        values.push(v);
                        kept_ts.push(t);
                    }
                }
                Records::with_timestamps(values, kept_ts)
            }
        }
    }

    /// Replaces every value with the values `f` yields for it; each output value inherits
    /// the timestamp of the input value it came from.
    pub fn flat_map<U, I>(self, mut f: impl FnMut(T) -> I) -> Records<U>
    where
        I: IntoIterator<Item = U>,
    {
        match self.timestamps {
            None => {
                let mut out = Vec::with_capacity(self.values.len());
                for v in self.values {
                    out.extend(f(v));
                }
                Records::from(out)
            }
            Some(ts) => {
                let mut out = Vec::with_capacity(self.values.len());
                let mut out_ts = Vec::with_capacity(ts.len());
                for (v, t) in self.values.into_iter().zip(ts) {
                    let before = out.len();
                    out.extend(f(v));
                    out_ts.resize(out_ts.len() + (out.len() - before), t);
                }
                Records::with_timestamps(out, out_ts)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_backfills_timestamp_column() {
        let mut r = Records::new();
        r.push(1, None);
        r.push(2, Some(EventTime(10)));
        r.push(3, None);
        assert_eq!(
            r.timestamps(),
            Some(&[EventTime::MIN, EventTime(10), EventTime::MIN][..])
        );
    }

    #[test]
    fn append_keeps_columns_aligned() {
        let mut a = Records::from(vec![1, 2]);
        a.append(Records::with_timestamps(vec![3], vec![EventTime(7)]));
        a.append(Records::from(vec![4]));
        assert_eq!(a.values(), &[1, 2, 3, 4]);
        assert_eq!(a.timestamp(2), Some(EventTime(7)));
        assert_eq!(a.timestamp(3), Some(EventTime::MIN));
        assert_eq!(a.timestamps().map(|t| t.len()), Some(4));
    }

    #[test]
    fn filter_and_flat_map_carry_timestamps() {
        let r = Records::with_timestamps(
            vec![1, 2, 3],
            vec![EventTime(1), EventTime(2), EventTime(3)],
        );
        let f = r.clone().filter(|v| v % 2 == 1);
        assert_eq!(f.values(), &[1, 3]);
        assert_eq!(f.timestamps(), Some(&[EventTime(1), EventTime(3)][..]));
        let fm = r.flat_map(|v| std::iter::repeat_n(v, v as usize));
        assert_eq!(fm.values(), &[1, 2, 2, 3, 3, 3]);
        assert_eq!(fm.timestamp(5), Some(EventTime(3)));
        assert_eq!(fm.timestamp(1), Some(EventTime(2)));
    }

    #[test]
    fn map_keeps_timestamps_and_take_empties() {
        let mut r = Records::with_timestamps(vec![1, 2], vec![EventTime(5), EventTime(6)]);
        let taken = r.take(4);
        assert!(r.is_empty());
        let m = taken.map(|v| v * 10);
        assert_eq!(m.values(), &[10, 20]);
        assert_eq!(m.timestamp(1), Some(EventTime(6)));
    }
}
