//! [`OperatorHarness`]: drives one operator with scripted events and records what it
//! emits, without threads or channels (RisingWave's `check_until_pending`, Flink's
//! `OneInputStreamOperatorTestHarness`).

use std::sync::{Arc, Mutex, PoisonError};

use sluice_api::runtime::error::TaskLocation;
use sluice_api::runtime::metrics::MetricRegistry;
use sluice_api::runtime::operator::chain::{ChainLink, EventSink};
use sluice_api::runtime::operator::side_output::{SideOutput, SideOutputs, TypedSideOutput};
use sluice_api::runtime::{Operator, OperatorContext, OutputTag, Result, RuntimeMode};
use sluice_core::{Batch, EventTime, KeyGroupRange, ManualClock, Records, StreamEvent, Watermark};

/// What the harnessed operator emitted, in order.
type Emitted<B> = Arc<Mutex<Vec<StreamEvent<B>>>>;

struct Recorder<B>(Emitted<B>);

impl<B: Batch> EventSink<B> for Recorder<B> {
    fn on_event(&mut self, event: StreamEvent<B>) -> Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One operator instance fed by the test, as subtask 0 of parallelism 1 (owning every
/// key group), on a [`ManualClock`].
pub struct OperatorHarness<Op: Operator> {
    link: ChainLink<Op>,
    emitted: Emitted<Op::Out>,
    clock: ManualClock,
    metrics: Arc<MetricRegistry>,
}

impl<Op: Operator> OperatorHarness<Op> {
    /// A harness around the operator that `make` builds from the harness's context.
    ///
    /// # Errors
    /// Whatever `make` returns.
    pub fn new(
        mode: RuntimeMode,
        make: impl FnOnce(&OperatorContext) -> Result<Op>,
    ) -> Result<Self> {
        Self::with_side_outputs(mode, make, SideOutputs::default())
    }

    /// Like [`OperatorHarness::new`], with side outputs (see [`SideCapture`]).
    ///
    /// # Errors
    /// Whatever `make` returns.
    pub fn with_side_outputs(
        mode: RuntimeMode,
        make: impl FnOnce(&OperatorContext) -> Result<Op>,
        side: SideOutputs,
    ) -> Result<Self> {
        let clock = ManualClock::new(0);
        let metrics = MetricRegistry::new();
        let ctx = OperatorContext {
            location: TaskLocation {
                operator: "Harnessed".into(),
                subtask: 0,
                parallelism: 1,
            },
            max_parallelism: sluice_core::DEFAULT_MAX_PARALLELISM,
            key_group_range: KeyGroupRange::for_subtask(sluice_core::DEFAULT_MAX_PARALLELISM, 1, 0),
            runtime_mode: mode,
            batch_size: 1024,
            clock: Arc::new(clock.clone()),
            metrics: Arc::clone(&metrics),
            operator_id: sluice_core::OperatorId(0),
            restored: None,
            snapshots: None,
        };
        let operator = make(&ctx)?;
        let emitted: Emitted<Op::Out> = Arc::new(Mutex::new(Vec::new()));
        let link = ChainLink::new(operator, ctx, Box::new(Recorder(Arc::clone(&emitted))))
            .with_side_outputs(side);
        Ok(OperatorHarness {
            link,
            emitted,
            clock,
            metrics,
        })
    }

    /// The operator's counter `name` (0 if never registered).
    pub fn counter(&self, name: &str) -> u64 {
        self.metrics
            .snapshot()
            .iter()
            .filter(|m| m.name == name)
            .map(|m| m.value)
            .sum()
    }

    /// The processing-time clock the operator sees.
    pub fn clock(&self) -> &ManualClock {
        &self.clock
    }

    /// Feeds a batch.
    ///
    /// # Errors
    /// The operator's failure.
    pub fn push(&mut self, batch: Op::In) -> Result<()> {
        self.link.on_event(StreamEvent::Data(batch))
    }

    /// Feeds a watermark at `time` ms.
    ///
    /// # Errors
    /// The operator's failure.
    pub fn watermark(&mut self, time: i64) -> Result<()> {
        self.link
            .on_event(StreamEvent::Watermark(Watermark(EventTime(time))))
    }

    /// Hands the harness clock's current time to the operator (processing-time timers);
    /// advance the clock with [`OperatorHarness::clock`] first.
    ///
    /// # Errors
    /// The operator's failure.
    pub fn tick(&mut self) -> Result<()> {
        use sluice_core::Clock;
        self.link.on_processing_time(self.clock.now_ms())
    }

    /// Ends the input.
    ///
    /// # Errors
    /// The operator's failure.
    pub fn end(&mut self) -> Result<()> {
        self.link.on_event(StreamEvent::EndOfStream)
    }

    /// Takes what the operator emitted since the last call.
    pub fn take_output(&self) -> Vec<StreamEvent<Op::Out>> {
        std::mem::take(&mut *self.emitted.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Captures the events of one side output of a harnessed operator.
pub struct SideCapture<T> {
    emitted: Emitted<Records<T>>,
}

impl<T: Send + 'static> SideCapture<T> {
    /// A capture of `tag` and the side output to give the harness.
    pub fn new(tag: &OutputTag<T>) -> (Self, Box<dyn SideOutput>) {
        let emitted: Emitted<Records<T>> = Arc::new(Mutex::new(Vec::new()));
        let output = TypedSideOutput::new(tag.id(), Box::new(Recorder(Arc::clone(&emitted))));
        (SideCapture { emitted }, Box::new(output))
    }

    /// Takes the events captured so far.
    pub fn take(&self) -> Vec<StreamEvent<Records<T>>> {
        std::mem::take(&mut *self.emitted.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
