//! Two streams processed together: [`KeyedConnectedStreams`] (`connect` with a co-process
//! function sharing keyed state and timers) and the event-time interval join
//! ([`IntervalJoin`]).

use std::hash::Hash;
use std::sync::Arc;

use sluice_core::{Data, Records};
use sluice_runtime::factories::TwoInputOperatorNode;
use sluice_runtime::graph::NodeKind;
use sluice_runtime::operators::{
    IntervalJoinFunction, JoinFn, KeyedCoProcessFunction, KeyedCoProcessOperator,
};
use sluice_runtime::{OperatorContext, Result, TwoInputOperator};

use crate::builder::EdgePort;
use crate::datastream::DataStream;
use crate::keyed::KeyedStream;

impl<T: Data> DataStream<T> {
    /// Adds a two-input operator node fed by this stream (first input) and `other`.
    pub(crate) fn add_two_input_operator<B: Data, U: Data, Op>(
        &self,
        other: &DataStream<B>,
        name: &str,
        make: impl Fn(&OperatorContext) -> Result<Op> + Send + Sync + 'static,
    ) -> DataStream<U>
    where
        Op: TwoInputOperator<In1 = Records<T>, In2 = Records<B>, Out = Records<U>>,
    {
        let parallelism = self.env.default_parallelism();
        let factory = Arc::new(TwoInputOperatorNode::new(make));
        let id = self.env.with_builder(|b| {
            let id = b.add_node(name.to_string(), parallelism, NodeKind::Operator, factory);
            if let Some(node) = b.node_mut(id) {
                node.chainable = false;
            }
            b.add_edge(self.id, id, self.partition.clone(), self.port());
            let second = EdgePort {
                side_output: other.side,
                input: 1,
            };
            b.add_edge(other.id, id, other.partition.clone(), second);
            id
        });
        DataStream::new(self.env.clone(), id)
    }
}

/// Two keyed streams with the same key type, processed together so that records of a key
/// from either stream meet in one subtask and share its state and timers.
pub struct KeyedConnectedStreams<K, A, B> {
    first: KeyedStream<K, A>,
    second: KeyedStream<K, B>,
}

impl<K, A, B> std::fmt::Debug for KeyedConnectedStreams<K, A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedConnectedStreams").finish()
    }
}

impl<K: Data + Hash + Eq, A: Data> KeyedStream<K, A> {
    /// This stream and `other` processed together by key (Flink's `connect`).
    pub fn connect<B: Data>(&self, other: &KeyedStream<K, B>) -> KeyedConnectedStreams<K, A, B> {
        KeyedConnectedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }

    /// Joins this stream (left) with `other` (right) on key and event time: see
    /// [`IntervalJoin::between`].
    pub fn interval_join<B: Data>(&self, other: &KeyedStream<K, B>) -> IntervalJoin<K, A, B> {
        IntervalJoin {
            streams: self.connect(other),
        }
    }
}

impl<K: Data + Hash + Eq, A: Data, B: Data> KeyedConnectedStreams<K, A, B> {
    /// Runs `function` on the records of both streams, each with its key's state and
    /// timers. Each subtask gets its own clone of `function`.
    pub fn process<O, P>(&self, function: P) -> DataStream<O>
    where
        O: Data,
        P: KeyedCoProcessFunction<K, A, B, O> + Clone + Sync,
    {
        self.process_named("Keyed Co-Process", move || Ok(function.clone()))
    }

    fn process_named<O, P>(
        &self,
        name: &str,
        make: impl Fn() -> Result<P> + Send + Sync + 'static,
    ) -> DataStream<O>
    where
        O: Data,
        P: KeyedCoProcessFunction<K, A, B, O>,
    {
        let key1 = self.first.key_of.clone();
        let key2 = self.second.key_of.clone();
        self.first
            .stream
            .add_two_input_operator(&self.second.stream, name, move |ctx| {
                Ok(KeyedCoProcessOperator::new(
                    ctx,
                    key1.clone(),
                    key2.clone(),
                    make()?,
                ))
            })
    }
}

/// An interval join under construction: call [`IntervalJoin::between`].
pub struct IntervalJoin<K, A, B> {
    streams: KeyedConnectedStreams<K, A, B>,
}

impl<K, A, B> std::fmt::Debug for IntervalJoin<K, A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalJoin").finish()
    }
}

/// An interval join with its bounds: call [`IntervalJoinBetween::process`].
pub struct IntervalJoinBetween<K, A, B> {
    streams: KeyedConnectedStreams<K, A, B>,
    lower_ms: i64,
    upper_ms: i64,
}

impl<K, A, B> std::fmt::Debug for IntervalJoinBetween<K, A, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntervalJoinBetween")
            .field("lower_ms", &self.lower_ms)
            .field("upper_ms", &self.upper_ms)
            .finish()
    }
}

impl<K: Data + Hash + Eq, A: Data, B: Data> IntervalJoin<K, A, B> {
    /// Pairs a left record at `t` with every right record of its key at `r` where
    /// `t + lower_ms <= r <= t + upper_ms` (both bounds inclusive; they may be negative).
    /// Both streams need event time.
    pub fn between(self, lower_ms: i64, upper_ms: i64) -> IntervalJoinBetween<K, A, B> {
        IntervalJoinBetween {
            streams: self.streams,
            lower_ms,
            upper_ms,
        }
    }
}

impl<K: Data + Hash + Eq, A: Data, B: Data> IntervalJoinBetween<K, A, B> {
    /// Emits `join(left, right)` for every matching pair, stamped with the later of the
    /// two timestamps. Records that arrive at or behind the watermark are dropped.
    pub fn process<O: Data>(
        &self,
        join: impl Fn(&A, &B) -> O + Send + Sync + 'static,
    ) -> DataStream<O> {
        let join: JoinFn<A, B, O> = Arc::new(join);
        let (lower, upper) = (self.lower_ms, self.upper_ms);
        self.streams.process_named("Interval Join", move || {
            if lower > upper {
                return Err(sluice_runtime::Error::InvalidJob(format!(
                    "interval join bounds are reversed: lower {lower} ms > upper {upper} ms; call `between(lower, upper)` with lower <= upper"
                )));
            }
            Ok(IntervalJoinFunction::new(lower, upper, Arc::clone(&join)))
        })
    }
}
