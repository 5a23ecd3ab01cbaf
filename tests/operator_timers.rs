//! Operator tests of keyed timers: event-time timers fire on watermarks in time order,
//! processing-time timers fire when the (manual) clock reaches them, once per key and
//! time, and with the key's state at hand.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sluice_api::runtime::operators::{KeySelector, KeyedProcessOperator};
use sluice_api::{
    EventTime, KeyedContext, KeyedProcessFunction, OpenContext, ProcessOutput, Records,
    RuntimeMode, TimeDomain, UserResult, ValueStateHandle,
};
use sluice_core::{Clock, StreamEvent};
use sluice_testkit::harness::OperatorHarness;

/// Counts records per key; each record asks for an event-time timer at its timestamp +
/// 10 and a processing-time timer 100 ms from now. A timer reports the key's count.
#[derive(Clone, Default)]
struct CountThenReport {
    count: Option<ValueStateHandle<u64>>,
}

impl KeyedProcessFunction<String, (String, i64), String> for CountThenReport {
    fn open(&mut self, ctx: &mut OpenContext<'_, String>) -> UserResult {
        self.count = Some(ctx.value_state("count")?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (_, ts): (String, i64),
        ctx: &mut KeyedContext<'_, String>,
        _out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let count = self.count.ok_or("not opened")?;
        *ctx.value_state(&count).get_or_insert_with(|| 0) += 1;
        ctx.register_event_time_timer(ts + 10);
        let now = ctx.current_processing_time();
        ctx.register_processing_time_timer(now + 100);
        Ok(())
    }

    fn on_timer(
        &mut self,
        time: i64,
        domain: TimeDomain,
        ctx: &mut KeyedContext<'_, String>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let count = self.count.ok_or("not opened")?;
        let n = ctx.value_state(&count).value().copied().unwrap_or(0);
        let kind = match domain {
            TimeDomain::EventTime => "event",
            TimeDomain::ProcessingTime => "processing",
        };
        out.collect(format!("{kind} {time} {}={n}", ctx.key()));
        Ok(())
    }
}

type Op = KeyedProcessOperator<String, (String, i64), String, CountThenReport>;

fn harness() -> OperatorHarness<Op> {
    OperatorHarness::new(RuntimeMode::Streaming, |ctx| {
        let key_of = KeySelector::Borrowed(Arc::new(|r: &(String, i64)| &r.0));
        Ok(KeyedProcessOperator::new(
            ctx,
            key_of,
            CountThenReport::default(),
        ))
    })
    .unwrap()
}

fn records(items: &[(&str, i64)]) -> Records<(String, i64)> {
    Records::with_timestamps(
        items.iter().map(|(k, t)| (k.to_string(), *t)).collect(),
        items.iter().map(|(_, t)| EventTime(*t)).collect(),
    )
}

fn describe(events: Vec<StreamEvent<Records<String>>>) -> Vec<String> {
    events
        .into_iter()
        .flat_map(|e| match e {
            StreamEvent::Data(b) => b
                .iter()
                .map(|(v, t)| format!("{v} @{:?}", t.map(EventTime::millis)))
                .collect(),
            StreamEvent::Watermark(w) => vec![format!("wm {}", w.0.millis())],
            other => vec![format!("{other:?}")],
        })
        .collect()
}

#[test]
fn event_time_timers_fire_in_time_order_once_per_key_and_time() {
    let mut h = harness();
    h.push(records(&[("a", 100), ("b", 95), ("a", 100), ("a", 120)]))
        .unwrap();
    h.take_output();
    h.watermark(104).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["wm 104"],
        "no timer is due before 105"
    );
    h.watermark(110).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec![
            "event 105 b=1 @Some(105)",
            "event 110 a=3 @Some(110)",
            "wm 110"
        ],
        "timers fire before the watermark passes on, earliest first, a's duplicate once"
    );
    h.watermark(1_000).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["event 130 a=3 @Some(130)", "wm 1000"]
    );
}

#[test]
fn processing_time_timers_fire_when_the_clock_reaches_them() {
    let mut h = harness();
    h.clock().advance(Duration::from_millis(1_000));
    h.push(records(&[("a", 1)])).unwrap();
    h.clock().advance(Duration::from_millis(50));
    h.push(records(&[("b", 2)])).unwrap();
    h.take_output();
    h.clock().advance(Duration::from_millis(49));
    h.tick().unwrap();
    assert!(
        describe(h.take_output()).is_empty(),
        "clock at 1099: nothing due"
    );
    h.clock().advance(Duration::from_millis(1));
    h.tick().unwrap();
    assert_eq!(describe(h.take_output()), vec!["processing 1100 a=1 @None"]);
    h.clock().advance(Duration::from_millis(500));
    assert_eq!(h.clock().now_ms(), 1_600);
    h.tick().unwrap();
    assert_eq!(describe(h.take_output()), vec!["processing 1150 b=1 @None"]);
}
