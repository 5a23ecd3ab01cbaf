//! [`NexmarkSource`]: Nexmark events, subtask `i` of `p` generating events `i, i + p, ...`.
//!
//! Invariant: over all subtasks, the event numbers read are exactly `0..events.num` (all
//! numbers when unbounded), each once; a reader restored from its checkpointed position
//! goes on with the first number it had not emitted, so a restored job emits the same
//! events as an uninterrupted one.

use std::sync::Arc;

use sluice_core::{CheckpointId, Records};
use sluice_runtime::source::{
    encode_position, restored_position, Boundedness, Source, SourcePoll, SourceReader,
};
use sluice_runtime::{OperatorContext, Result};

use super::generator::NexmarkGenerator;
use super::model::Event;
use super::NexmarkConfig;
use crate::error::Error;

/// The event numbers of one subtask: `subtask, subtask + parallelism, ...` below
/// `events.num` (without end when it is 0). Lets code outside the source (columnar batch
/// builders) split the work exactly as [`NexmarkSource`] does, calling
/// [`NexmarkGenerator::event`] or [`NexmarkGenerator::bid_view`] per number.
///
/// ```
/// use sluice_connectors::nexmark::SubtaskEventNumbers;
/// let numbers: Vec<u64> = SubtaskEventNumbers::new(1, 3, 10).collect();
/// assert_eq!(numbers, [1, 4, 7]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubtaskEventNumbers {
    next: u64,
    step: u64,
    end: u64,
}

impl SubtaskEventNumbers {
    /// The numbers of subtask `subtask` of `parallelism` when `events_num` events are
    /// generated in all (`0`: unbounded).
    ///
    /// # Panics
    /// When `subtask >= parallelism`: a bug in the caller.
    pub fn new(subtask: u32, parallelism: u32, events_num: u64) -> Self {
        assert!(
            subtask < parallelism,
            "subtask {subtask} out of parallelism {parallelism}"
        );
        SubtaskEventNumbers {
            next: u64::from(subtask),
            step: u64::from(parallelism),
            end: if events_num == 0 {
                u64::MAX
            } else {
                events_num
            },
        }
    }

    /// The same numbers from `position` on: a value of [`Self::position`] continues
    /// exactly; any other value rounds up to the subtask's next number.
    ///
    /// # Panics
    /// When `subtask >= parallelism`: a bug in the caller.
    pub fn resume(subtask: u32, parallelism: u32, events_num: u64, position: u64) -> Self {
        let mut numbers = SubtaskEventNumbers::new(subtask, parallelism, events_num);
        if position > numbers.next {
            let behind = (position - numbers.next).div_ceil(numbers.step);
            numbers.next = numbers
                .next
                .saturating_add(behind.saturating_mul(numbers.step));
        }
        numbers
    }

    /// The next number to read: what a checkpoint stores.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Whether every number was read.
    pub fn is_finished(&self) -> bool {
        self.next >= self.end
    }

    /// How many numbers are left (`u64::MAX / parallelism` or so when unbounded).
    pub fn remaining(&self) -> u64 {
        if self.is_finished() {
            0
        } else {
            (self.end - 1 - self.next) / self.step + 1
        }
    }
}

impl Iterator for SubtaskEventNumbers {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        if self.is_finished() {
            return None;
        }
        let n = self.next;
        self.next = self.next.saturating_add(self.step);
        Some(n)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let remaining = usize::try_from(self.remaining()).ok();
        (remaining.unwrap_or(usize::MAX), remaining)
    }
}

/// The Nexmark source of Flink's benchmark: a stream of [`Event`]s, bounded when
/// `events.num > 0`. Its position (the next event number, and the parallelism it is valid
/// for) goes into checkpoints. Records carry no timestamp: assign event time from
/// [`Event::date_time`] with a watermark strategy, as Flink's DDL does with `dateTime`.
#[derive(Debug, Clone)]
pub struct NexmarkSource {
    generator: Arc<NexmarkGenerator>,
}

impl NexmarkSource {
    /// A source generating events of `config`.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when [`NexmarkConfig::validate`] rejects the config.
    pub fn new(config: NexmarkConfig) -> std::result::Result<Self, Error> {
        Ok(NexmarkSource::from_generator(NexmarkGenerator::new(
            config,
        )?))
    }

    /// A source reading from `generator`.
    pub fn from_generator(generator: NexmarkGenerator) -> Self {
        NexmarkSource {
            generator: Arc::new(generator),
        }
    }

    /// The generator the readers call.
    pub fn generator(&self) -> &NexmarkGenerator {
        &self.generator
    }
}

/// The event numbers a [`NexmarkSource`] would generate, without generating the events:
/// for readers that build columns straight from [`NexmarkGenerator`] (the SQL connector),
/// skipping the [`Event`] values. Same split over subtasks, pacing and checkpointed
/// position as the source it comes from.
#[derive(Debug, Clone)]
pub struct NexmarkEventNumbers {
    source: NexmarkSource,
}

impl NexmarkSource {
    /// This source's event numbers instead of its events.
    pub fn event_numbers(self) -> NexmarkEventNumbers {
        NexmarkEventNumbers { source: self }
    }

    fn boundedness_of(&self) -> Boundedness {
        if self.generator.config().events_num > 0 {
            Boundedness::Bounded
        } else {
            Boundedness::Unbounded
        }
    }
}

impl NexmarkEventNumbers {
    /// The generator that gives each number its event.
    pub fn generator(&self) -> &NexmarkGenerator {
        &self.source.generator
    }
}

impl Source<u64> for NexmarkEventNumbers {
    fn boundedness(&self) -> Boundedness {
        self.source.boundedness_of()
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<u64>>> {
        self.source.reader(ctx, |_, n| n)
    }
}

impl Source<Event> for NexmarkSource {
    fn boundedness(&self) -> Boundedness {
        self.boundedness_of()
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<Event>>> {
        self.reader(ctx, NexmarkGenerator::event)
    }
}

impl NexmarkSource {
    fn reader<T: Send + 'static>(
        &self,
        ctx: &OperatorContext,
        make: fn(&NexmarkGenerator, u64) -> T,
    ) -> Result<Box<dyn SourceReader<T>>> {
        let (i, p) = (ctx.location.subtask, ctx.location.parallelism.max(1));
        let events_num = self.generator.config().events_num;
        let mut events = SubtaskEventNumbers::new(i, p, events_num);
        if let Some(position) = restored_position(ctx, 2)? {
            // Subtask i's numbers are i mod p: a position is only valid at its parallelism.
            if position[1] != u64::from(p) {
                return Err(Error::ParallelismChanged {
                    operator: ctx.location.operator.clone(),
                    checkpointed: position[1],
                    now: p,
                }
                .into());
            }
            events = SubtaskEventNumbers::resume(i, p, events_num, position[0]);
        }
        let pacing = self.generator.config().rate_limited.then(Pacing::default);
        Ok(Box::new(NexmarkReader {
            generator: Arc::clone(&self.generator),
            events,
            parallelism: p,
            pacing,
            ctx: ctx.clone(),
            make,
        }))
    }
}

/// Rate limiting: an event is due once its event time, counted from the first event this
/// reader emits, has passed on the job's clock (Flink's wall-clock pacing).
#[derive(Debug, Default)]
struct Pacing {
    /// The clock and the event number at the first poll.
    start: Option<(u64, u64)>,
}

struct NexmarkReader<T> {
    generator: Arc<NexmarkGenerator>,
    events: SubtaskEventNumbers,
    parallelism: u32,
    pacing: Option<Pacing>,
    ctx: OperatorContext,
    make: fn(&NexmarkGenerator, u64) -> T,
}

impl<T> NexmarkReader<T> {
    /// The last event number due now (`u64::MAX` without rate limiting).
    fn last_due(&mut self) -> u64 {
        let Some(pacing) = &mut self.pacing else {
            return u64::MAX;
        };
        let now = self.ctx.clock.monotonic_nanos();
        let (start_nanos, first) = *pacing.start.get_or_insert((now, self.events.position()));
        let elapsed_us = now.saturating_sub(start_nanos) / 1000;
        let limit_us = self.generator.offset_us(first).saturating_add(elapsed_us);
        self.generator.last_event_due(limit_us)
    }
}

impl<T: Send + 'static> SourceReader<T> for NexmarkReader<T> {
    fn poll(&mut self, out: &mut Records<T>, max_records: usize) -> Result<SourcePoll> {
        let last_due = self.last_due();
        let mut produced = 0;
        while produced < max_records && self.events.position() <= last_due {
            let Some(n) = self.events.next() else {
                break;
            };
            out.push((self.make)(&self.generator, n), None);
            produced += 1;
        }
        Ok(if self.events.is_finished() {
            SourcePoll::Finished
        } else if produced == 0 && self.pacing.is_some() {
            // Nothing is due yet: the task flushes what it holds and polls again soon.
            SourcePoll::Pending
        } else {
            SourcePoll::Ready
        })
    }

    fn snapshot_position(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        Ok(Some(encode_position(&[
            self.events.position(),
            u64::from(self.parallelism),
        ])))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_core::{Clock, KeyGroupRange, ManualClock, OperatorId, DEFAULT_MAX_PARALLELISM};
    use sluice_runtime::checkpoint::RestoredState;
    use sluice_runtime::metrics::MetricRegistry;
    use sluice_runtime::{RuntimeMode, TaskLocation};

    use super::*;

    const N: u64 = 10_000;

    fn ctx(
        subtask: u32,
        parallelism: u32,
        clock: &ManualClock,
        restored: Option<Vec<u8>>,
    ) -> OperatorContext {
        OperatorContext {
            location: TaskLocation {
                operator: "Source: nexmark".into(),
                subtask,
                parallelism,
            },
            max_parallelism: DEFAULT_MAX_PARALLELISM,
            key_group_range: KeyGroupRange::for_subtask(
                DEFAULT_MAX_PARALLELISM,
                parallelism,
                subtask,
            ),
            runtime_mode: RuntimeMode::Streaming,
            batch_size: 1024,
            clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
            metrics: MetricRegistry::new(),
            operator_id: OperatorId(0),
            restored: restored.map(|bytes| {
                Arc::new(RestoredState {
                    operator: Some(bytes),
                    ..RestoredState::default()
                })
            }),
            snapshots: None,
        }
    }

    fn source(events_num: u64) -> NexmarkSource {
        NexmarkSource::new(NexmarkConfig {
            events_num,
            ..NexmarkConfig::default()
        })
        .unwrap()
    }

    /// Polls `reader` until it finishes, `max` records at a time.
    fn drain(reader: &mut dyn SourceReader<Event>, max: usize) -> Vec<Event> {
        let mut out = Records::new();
        while reader.poll(&mut out, max).unwrap() != SourcePoll::Finished {}
        out.into_values()
    }

    #[test]
    fn subtasks_read_every_event_number_once() {
        for p in [1, 2, 3, 7, 50, 64] {
            let mut all: Vec<u64> = (0..p)
                .flat_map(|i| SubtaskEventNumbers::new(i, p, N))
                .collect();
            assert_eq!(all.len() as u64, N, "parallelism {p}");
            all.sort_unstable();
            assert!(all.iter().copied().eq(0..N), "parallelism {p}");
        }
    }

    #[test]
    fn readers_emit_their_subtasks_events_and_finish() {
        let source = source(N);
        assert_eq!(source.boundedness(), Boundedness::Bounded);
        let clock = ManualClock::new(0);
        let p = 3;
        let mut total = 0;
        for i in 0..p {
            let mut reader = source.create_reader(&ctx(i, p, &clock, None)).unwrap();
            let events = drain(reader.as_mut(), 1000);
            let expected: Vec<Event> = SubtaskEventNumbers::new(i, p, N)
                .map(|n| source.generator().event(n))
                .collect();
            assert_eq!(events, expected, "subtask {i}");
            total += events.len();
        }
        assert_eq!(total as u64, N);
    }

    #[test]
    fn a_restored_reader_continues_exactly() {
        let source = source(N);
        let clock = ManualClock::new(0);
        let (i, p) = (1, 4);
        let mut uninterrupted = source.create_reader(&ctx(i, p, &clock, None)).unwrap();
        let expected = drain(uninterrupted.as_mut(), 1000);

        let mut first = source.create_reader(&ctx(i, p, &clock, None)).unwrap();
        let mut out = Records::new();
        for _ in 0..5 {
            assert_eq!(first.poll(&mut out, 37).unwrap(), SourcePoll::Ready);
        }
        let position = first.snapshot_position(CheckpointId(1)).unwrap().unwrap();
        // Records emitted after the checkpoint are lost with the failure.
        first.poll(&mut out, 37).unwrap();
        let mut before = out.into_values();
        before.truncate(5 * 37);

        let mut restored = source
            .create_reader(&ctx(i, p, &clock, Some(position)))
            .unwrap();
        before.extend(drain(restored.as_mut(), 1000));
        assert_eq!(before, expected);
    }

    #[test]
    fn restoring_at_another_parallelism_is_refused() {
        let source = source(N);
        let clock = ManualClock::new(0);
        let mut reader = source.create_reader(&ctx(0, 2, &clock, None)).unwrap();
        let position = reader.snapshot_position(CheckpointId(1)).unwrap();
        let err = source
            .create_reader(&ctx(0, 3, &clock, position))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("parallelism 2 and now runs with 3"), "{err}");
    }

    #[test]
    fn resume_rounds_up_to_the_subtasks_next_number() {
        let numbers = SubtaskEventNumbers::resume(2, 5, 30, 13);
        assert_eq!(numbers.collect::<Vec<_>>(), [17, 22, 27]);
        let numbers = SubtaskEventNumbers::resume(2, 5, 30, 12);
        assert_eq!(numbers.position(), 12);
        assert_eq!(numbers.size_hint(), (4, Some(4)));
        assert!(SubtaskEventNumbers::resume(2, 5, 30, 40).is_finished());
        let unbounded = SubtaskEventNumbers::new(0, 1, 0);
        assert_eq!(unbounded.remaining(), u64::MAX);
    }

    #[test]
    fn an_unbounded_source_keeps_producing() {
        let source = source(0);
        assert_eq!(source.boundedness(), Boundedness::Unbounded);
        let clock = ManualClock::new(0);
        let mut reader = source.create_reader(&ctx(0, 1, &clock, None)).unwrap();
        let mut out = Records::new();
        for _ in 0..3 {
            assert_eq!(reader.poll(&mut out, 100).unwrap(), SourcePoll::Ready);
        }
        assert_eq!(out.len(), 300);
    }

    #[test]
    fn rate_limiting_paces_events_by_their_event_time() {
        let source = NexmarkSource::new(NexmarkConfig {
            first_event_rate: 1000,
            rate_limited: true,
            ..NexmarkConfig::default()
        })
        .unwrap();
        let clock = ManualClock::new(0);
        let mut readers: Vec<_> = (0..2)
            .map(|i| source.create_reader(&ctx(i, 2, &clock, None)).unwrap())
            .collect();
        let mut counts = [0usize; 2];
        let mut poll_all = |readers: &mut Vec<Box<dyn SourceReader<Event>>>| {
            let mut polls = vec![];
            for (i, reader) in readers.iter_mut().enumerate() {
                let mut out = Records::new();
                polls.push(reader.poll(&mut out, 1000).unwrap());
                counts[i] += out.len();
            }
            (polls, counts)
        };
        // At the start, each subtask's first event is due.
        assert_eq!(poll_all(&mut readers).1, [1, 1]);
        let (polls, _) = poll_all(&mut readers);
        assert_eq!(polls, [SourcePoll::Pending, SourcePoll::Pending]);
        // 1 000 events per second over both subtasks: 10 ms later, 5 more each.
        clock.advance(Duration::from_millis(10));
        assert_eq!(poll_all(&mut readers).1, [6, 6]);
        clock.advance(Duration::from_secs(1));
        assert_eq!(poll_all(&mut readers).1, [506, 506]);
    }
}
