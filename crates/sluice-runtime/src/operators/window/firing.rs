//! What the window operators share: the registry of keys by the window end at which they
//! fire, and the check that records carry event time.
//!
//! Invariant: keys come out in window-end order, and only ends the watermark has reached
//! (`end - 1 <= watermark`).

use std::collections::BTreeMap;

use sluice_core::{Batch, EventTime};

use crate::error::{Error, Result};
use crate::metrics::{Counter, LATE_RECORDS_DROPPED, LATE_RECORDS_SIDE_OUTPUT};
use crate::operator::side_output::OutputTag;
use crate::operator::{Collector, OperatorContext};

/// Where a window operator's late records go: the late-data side output if the job has
/// one, else they are dropped; counted either way.
pub(crate) struct LateRecords<T> {
    tag: Option<OutputTag<T>>,
    dropped: Counter,
    side: Counter,
}

impl<T> LateRecords<T> {
    /// Late records of the operator at `ctx`, sent to `tag` if given.
    pub(crate) fn new(ctx: &OperatorContext, tag: Option<OutputTag<T>>) -> Self {
        LateRecords {
            tag,
            dropped: ctx.counter(LATE_RECORDS_DROPPED),
            side: ctx.counter(LATE_RECORDS_SIDE_OUTPUT),
        }
    }

    /// Handles one late record.
    pub(crate) fn late<B: Batch>(&self, value: T, timestamp: EventTime, out: &mut Collector<'_, B>)
    where
        T: Send + 'static,
    {
        match self.tag.as_ref().and_then(|tag| out.side_output(tag)) {
            Some(side) => {
                side.push(value, Some(timestamp));
                self.side.inc();
            }
            None => self.dropped.inc(),
        }
    }
}

/// Keys (with their stable hash) registered under the window end at which they fire.
#[derive(Debug)]
pub(crate) struct WindowFirings<K> {
    by_end: BTreeMap<i64, Vec<(K, u64)>>,
}

impl<K> Default for WindowFirings<K> {
    fn default() -> Self {
        WindowFirings {
            by_end: BTreeMap::new(),
        }
    }
}

impl<K> WindowFirings<K> {
    /// Registers `key` to fire when the watermark reaches `end - 1`.
    pub(crate) fn register(&mut self, end: i64, key: K, hash: u64) {
        self.by_end.entry(end).or_default().push((key, hash));
    }

    /// The earliest window end the watermark has reached, with its keys.
    pub(crate) fn pop_due(&mut self, watermark: i64) -> Option<(i64, Vec<(K, u64)>)> {
        let entry = self.by_end.first_entry()?;
        if entry.key().saturating_sub(1) > watermark {
            return None;
        }
        Some(entry.remove_entry())
    }
}

/// The timestamp column of a batch entering a window operator.
///
/// # Errors
/// [`Error::User`] naming `operator` and what to do, when records carry no timestamps.
pub(crate) fn require_timestamps(
    operator: &str,
    timestamps: Option<Vec<EventTime>>,
) -> Result<Vec<EventTime>> {
    timestamps.ok_or_else(|| {
        Error::User(
            format!(
                "`{operator}` windows by event time, but its records have no timestamps; call `assign_timestamps_and_watermarks` upstream"
            )
            .into(),
        )
    })
}
