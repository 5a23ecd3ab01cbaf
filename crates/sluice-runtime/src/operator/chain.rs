//! Operator chains: operators fused into one task, handing batches on by function call.
//!
//! Each [`ChainLink`] owns its operator and the rest of the chain downstream of it; the last
//! element is the task's output (a partitioning router, a fan-out, or [`Terminal`]).
//! Invariant: every control event passes every link in order, after the link's operator
//! handled it; a panic or error inside an operator is attributed to that operator.

use std::panic::{catch_unwind, AssertUnwindSafe};

use sluice_core::{Batch, CheckpointId, StreamEvent};

use super::side_output::SideOutputs;
use super::{Collector, Operator, OperatorContext};
use crate::checkpoint::SubtaskSnapshot;
use crate::error::{panic_message, Error, Result};

/// Something that consumes the events of a stream: a chain link or a task output.
pub trait EventSink<B>: Send {
    /// Consumes one event.
    ///
    /// # Errors
    /// Any failure downstream; callers pass it on unchanged.
    fn on_event(&mut self, event: StreamEvent<B>) -> Result<()>;

    /// Sends partially filled output batches now. Called when the task is idle so that
    /// slow inputs do not wait in buffers.
    ///
    /// # Errors
    /// Any failure downstream.
    fn flush(&mut self) -> Result<()>;

    /// Processing time is now `now_ms`: operators of the chain fire due timers. Called by
    /// the task between events and while it waits. Default: nothing (task outputs).
    ///
    /// # Errors
    /// Any failure of an operator or downstream.
    fn on_processing_time(&mut self, now_ms: i64) -> Result<()> {
        let _ = now_ms;
        Ok(())
    }

    /// Checkpoint `id` completed: operators of the chain are told (sinks commit).
    /// Default: nothing (task outputs).
    ///
    /// # Errors
    /// Any failure of an operator or downstream.
    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        let _ = id;
        Ok(())
    }

    /// The task's input ended: operators of the chain snapshot their final state (with
    /// [`CheckpointId::FINAL`]) into the task's snapshot collector, without a barrier.
    /// Default: nothing (task outputs).
    ///
    /// # Errors
    /// Any failure of an operator.
    fn snapshot_final(&mut self) -> Result<()> {
        Ok(())
    }
}

impl<B, S: EventSink<B> + ?Sized> EventSink<B> for Box<S> {
    fn on_event(&mut self, event: StreamEvent<B>) -> Result<()> {
        (**self).on_event(event)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn on_processing_time(&mut self, now_ms: i64) -> Result<()> {
        (**self).on_processing_time(now_ms)
    }
    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        (**self).notify_checkpoint_complete(id)
    }
    fn snapshot_final(&mut self) -> Result<()> {
        (**self).snapshot_final()
    }
}

/// One operator of a chain and everything downstream of it.
pub struct ChainLink<Op: Operator> {
    operator: Op,
    ctx: OperatorContext,
    downstream: Box<dyn EventSink<Op::Out>>,
    side: SideOutputs,
    opened: bool,
}

impl<Op: Operator> ChainLink<Op> {
    /// Snapshots the operator into the task's collector (when the job checkpoints).
    fn snapshot(&mut self, id: CheckpointId) -> Result<()> {
        if let Some(collector) = self.ctx.snapshots.clone() {
            let state = self.guarded(|op, _, _| op.snapshot_state(id))?;
            collector
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(SubtaskSnapshot {
                    operator: self.ctx.operator_id,
                    subtask: self.ctx.location.subtask,
                    state,
                });
        }
        Ok(())
    }

    /// Links `operator` in front of `downstream`.
    pub fn new(
        operator: Op,
        ctx: OperatorContext,
        downstream: Box<dyn EventSink<Op::Out>>,
    ) -> Self {
        ChainLink {
            operator,
            ctx,
            downstream,
            side: SideOutputs::default(),
            opened: false,
        }
    }

    /// Gives the operator side outputs.
    #[must_use]
    pub fn with_side_outputs(mut self, side: SideOutputs) -> Self {
        self.side = side;
        self
    }

    fn guarded<R>(
        &mut self,
        call: impl FnOnce(&mut Op, &mut Collector<'_, Op::Out>, &OperatorContext) -> Result<R>,
    ) -> Result<R> {
        let ChainLink {
            operator,
            ctx,
            downstream,
            side,
            ..
        } = self;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut out = Collector::with_side_outputs(downstream.as_mut(), side);
            let value = call(operator, &mut out, ctx)?;
            side.send_buffered()?;
            Ok(value)
        }));
        match result {
            Ok(r) => r.map_err(|e: Error| e.at(|| ctx.location.clone())),
            Err(payload) => Err(Error::OperatorPanicked {
                location: ctx.location.clone(),
                message: panic_message(payload.as_ref()),
            }),
        }
    }

    fn ensure_open(&mut self) -> Result<()> {
        if !self.opened {
            self.opened = true;
            self.guarded(|op, _, ctx| op.open(ctx))?;
        }
        Ok(())
    }
}

impl<Op: Operator> EventSink<Op::In> for ChainLink<Op> {
    fn on_event(&mut self, event: StreamEvent<Op::In>) -> Result<()> {
        self.ensure_open()?;
        match event {
            StreamEvent::Data(batch) => self.guarded(|op, out, _| op.on_data(batch, out)),
            StreamEvent::Watermark(w) => self.guarded(|op, out, _| op.on_watermark(w, out)),
            StreamEvent::WatermarkStatus(s) => {
                self.guarded(|op, out, _| op.on_watermark_status(s, out))
            }
            StreamEvent::Barrier(b) => {
                self.snapshot(b.id)?;
                self.side.on_control(&StreamEvent::Barrier(b))?;
                self.downstream.on_event(StreamEvent::Barrier(b))
            }
            StreamEvent::EndOfStream => {
                self.guarded(|op, out, _| op.on_end_of_input(out))?;
                self.side.on_control(&StreamEvent::EndOfStream)?;
                self.downstream.on_event(StreamEvent::EndOfStream)
            }
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.side.flush()?;
        self.downstream.flush()
    }

    fn on_processing_time(&mut self, now_ms: i64) -> Result<()> {
        self.ensure_open()?;
        self.guarded(|op, out, _| op.on_processing_time(now_ms, out))?;
        self.downstream.on_processing_time(now_ms)
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.ensure_open()?;
        self.guarded(|op, out, _| op.notify_checkpoint_complete(id, out))?;
        self.downstream.notify_checkpoint_complete(id)
    }

    fn snapshot_final(&mut self) -> Result<()> {
        self.ensure_open()?;
        self.snapshot(CheckpointId::FINAL)?;
        self.downstream.snapshot_final()
    }
}

/// The end of a chain whose last operator has no consumer (a sink).
#[derive(Debug, Default)]
pub struct Terminal;

impl<B: Batch> EventSink<B> for Terminal {
    fn on_event(&mut self, _event: StreamEvent<B>) -> Result<()> {
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Sends every event to several outputs (a stream consumed by several operators).
pub struct FanOut<B> {
    outputs: Vec<Box<dyn EventSink<B>>>,
}

impl<B> FanOut<B> {
    /// A fan-out over `outputs`.
    pub fn new(outputs: Vec<Box<dyn EventSink<B>>>) -> Self {
        FanOut { outputs }
    }
}

impl<B: Clone + Send> EventSink<B> for FanOut<B> {
    fn on_event(&mut self, event: StreamEvent<B>) -> Result<()> {
        let Some((last, rest)) = self.outputs.split_last_mut() else {
            return Ok(());
        };
        for output in rest {
            output.on_event(event.clone())?;
        }
        last.on_event(event)
    }

    fn flush(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.flush())
    }

    fn on_processing_time(&mut self, now_ms: i64) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.on_processing_time(now_ms))
    }

    fn notify_checkpoint_complete(&mut self, id: CheckpointId) -> Result<()> {
        self.outputs
            .iter_mut()
            .try_for_each(|o| o.notify_checkpoint_complete(id))
    }

    fn snapshot_final(&mut self) -> Result<()> {
        self.outputs.iter_mut().try_for_each(|o| o.snapshot_final())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RuntimeMode;
    use crate::error::TaskLocation;
    use sluice_core::{KeyGroupRange, Records, SystemClock, Watermark};
    use std::sync::{Arc, Mutex};

    pub(crate) fn ctx(name: &str) -> OperatorContext {
        OperatorContext {
            location: TaskLocation {
                operator: name.into(),
                subtask: 0,
                parallelism: 1,
            },
            max_parallelism: 128,
            key_group_range: KeyGroupRange::for_subtask(128, 1, 0),
            runtime_mode: RuntimeMode::Streaming,
            batch_size: 1024,
            clock: Arc::new(SystemClock),
            metrics: crate::metrics::MetricRegistry::new(),
            operator_id: sluice_core::OperatorId(0),
            restored: None,
            snapshots: None,
        }
    }

    struct Record(Arc<Mutex<Vec<String>>>);
    impl EventSink<Records<i32>> for Record {
        fn on_event(&mut self, event: StreamEvent<Records<i32>>) -> Result<()> {
            let text = match event {
                StreamEvent::Data(b) => format!("data{:?}", b.values()),
                StreamEvent::Watermark(w) => format!("wm{}", w.0 .0),
                StreamEvent::WatermarkStatus(s) => format!("{s:?}"),
                StreamEvent::Barrier(_) => "barrier".into(),
                StreamEvent::EndOfStream => "end".into(),
            };
            self.0.lock().unwrap().push(text);
            Ok(())
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
    }

    struct Double;
    impl Operator for Double {
        type In = Records<i32>;
        type Out = Records<i32>;
        fn on_data(
            &mut self,
            batch: Records<i32>,
            out: &mut Collector<'_, Records<i32>>,
        ) -> Result<()> {
            if batch.values().contains(&13) {
                panic!("unlucky record");
            }
            out.collect(batch.map(|v| v * 2))
        }
        fn on_end_of_input(&mut self, out: &mut Collector<'_, Records<i32>>) -> Result<()> {
            out.collect(Records::from(vec![-1]))
        }
    }

    #[test]
    fn link_passes_data_and_control_in_order() {
        let log = Arc::new(Mutex::new(vec![]));
        let mut link = ChainLink::new(Double, ctx("Double"), Box::new(Record(Arc::clone(&log))));
        link.on_event(StreamEvent::Data(Records::from(vec![1, 2])))
            .unwrap();
        link.on_event(StreamEvent::Watermark(Watermark(sluice_core::EventTime(5))))
            .unwrap();
        link.on_event(StreamEvent::EndOfStream).unwrap();
        assert_eq!(
            *log.lock().unwrap(),
            vec!["data[2, 4]", "wm5", "data[-1]", "end"]
        );
    }

    #[test]
    fn panics_name_the_operator() {
        let log = Arc::new(Mutex::new(vec![]));
        let inner = ChainLink::new(Double, ctx("Inner"), Box::new(Record(log)));
        let mut outer = ChainLink::new(Double, ctx("Outer"), Box::new(inner));
        // 13 does not panic in the outer link (it sees 13 only if the input has it)...
        let err = outer
            .on_event(StreamEvent::Data(Records::from(vec![13])))
            .unwrap_err();
        assert!(err.to_string().contains("`Outer`"), "{err}");
        // ...and a value that becomes 13 cannot exist, so use one the inner link sees.
        let log = Arc::new(Mutex::new(vec![]));
        let inner = ChainLink::new(Double, ctx("Inner"), Box::new(Record(log)));
        struct Plus;
        impl Operator for Plus {
            type In = Records<i32>;
            type Out = Records<i32>;
            fn on_data(
                &mut self,
                b: Records<i32>,
                out: &mut Collector<'_, Records<i32>>,
            ) -> Result<()> {
                out.collect(b.map(|v| v + 12))
            }
        }
        let mut outer = ChainLink::new(Plus, ctx("Outer"), Box::new(inner));
        let err = outer
            .on_event(StreamEvent::Data(Records::from(vec![1])))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "operator `Inner` (subtask 1/1) panicked: unlucky record"
        );
    }
}
