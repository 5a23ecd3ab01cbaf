//! Operator metrics: named counters per operator subtask, updated without locks on the hot
//! path and read while the job runs or after it ended (the REST API and Prometheus
//! endpoint of issue #8 read the same registry).
//!
//! Names follow Flink's where one exists: `numLateRecordsDropped`,
//! `numLateRecordsSideOutput`, `numSideOutputRecordsDropped`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sluice_core::OperatorId;

use crate::error::TaskLocation;

/// Late records a window or join dropped (no late-data side output, or nothing consumes it).
pub const LATE_RECORDS_DROPPED: &str = "numLateRecordsDropped";
/// Late records a window sent to its late-data side output.
pub const LATE_RECORDS_SIDE_OUTPUT: &str = "numLateRecordsSideOutput";
/// Records a process function sent to a side output that no operator consumes.
pub const SIDE_OUTPUT_RECORDS_DROPPED: &str = "numSideOutputRecordsDropped";

/// A counter of one operator subtask.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// A counter not registered anywhere (for operators built outside a job).
    pub fn detached() -> Self {
        Counter::default()
    }

    /// Adds one.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One metric value with where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricValue {
    /// Operator (node id of the job graph).
    pub operator_id: OperatorId,
    /// Operator name.
    pub operator: String,
    /// Subtask index.
    pub subtask: u32,
    /// Metric name.
    pub name: String,
    /// Value.
    pub value: u64,
}

/// The counters of one job run.
#[derive(Debug, Default)]
pub struct MetricRegistry {
    counters: Mutex<Vec<(OperatorId, TaskLocation, &'static str, Counter)>>,
}

impl MetricRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The counter `name` of operator `operator`'s subtask at `location`, created at
    /// zero on first use.
    pub fn counter(
        &self,
        operator: OperatorId,
        location: &TaskLocation,
        name: &'static str,
    ) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, _, _, c)) = counters
            .iter()
            .find(|(o, l, n, _)| *o == operator && l.subtask == location.subtask && *n == name)
        {
            return c.clone();
        }
        let counter = Counter::default();
        counters.push((operator, location.clone(), name, counter.clone()));
        counter
    }

    /// Every counter's current value.
    pub fn snapshot(&self) -> Vec<MetricValue> {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters
            .iter()
            .map(|(o, l, n, c)| MetricValue {
                operator_id: *o,
                operator: l.operator.clone(),
                subtask: l.subtask,
                name: (*n).to_string(),
                value: c.get(),
            })
            .collect()
    }
}
