//! Operator tests of the tumbling window: when windows fire, what they carry, and what
//! happens to late records and records without timestamps.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sluice_api::runtime::operators::window::{TimeWindow, TumblingWindowOperator, WindowResultFn};
use sluice_api::runtime::operators::KeySelector;
use sluice_api::{AggregateFunction, EventTime, Records, RuntimeMode};
use sluice_core::StreamEvent;
use sluice_testkit::harness::OperatorHarness;

struct Sum;

impl AggregateFunction<(String, i64), i64, i64> for Sum {
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, value: (String, i64), acc: &mut i64) {
        *acc += value.1;
    }
    fn get_result(&self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

type Op = TumblingWindowOperator<String, (String, i64), i64, i64, String>;

fn harness() -> OperatorHarness<Op> {
    OperatorHarness::new(RuntimeMode::Streaming, |ctx| {
        let key_of = KeySelector::Borrowed(Arc::new(|r: &(String, i64)| &r.0));
        let result: WindowResultFn<String, i64, String> =
            Arc::new(|k: &String, w: TimeWindow, sum: i64| {
                format!("{k}[{},{})={sum}", w.start, w.end)
            });
        Ok(TumblingWindowOperator::new(
            ctx,
            key_of,
            100,
            0,
            Arc::new(Sum),
            result,
        ))
    })
    .unwrap()
}

fn at(items: &[(&str, i64, i64)]) -> Records<(String, i64)> {
    Records::with_timestamps(
        items.iter().map(|(k, v, _)| (k.to_string(), *v)).collect(),
        items.iter().map(|(_, _, t)| EventTime(*t)).collect(),
    )
}

fn describe(events: Vec<StreamEvent<Records<String>>>) -> Vec<String> {
    events
        .into_iter()
        .flat_map(|e| match e {
            StreamEvent::Data(b) => b
                .iter()
                .map(|(v, t)| format!("{v}@{}", t.map_or(-1, EventTime::millis)))
                .collect(),
            StreamEvent::Watermark(w) => vec![format!("wm {}", w.0.millis())],
            other => vec![format!("{other:?}")],
        })
        .collect()
}

#[test]
fn a_window_fires_when_the_watermark_reaches_its_last_millisecond() {
    let mut h = harness();
    h.push(at(&[
        ("a", 1, 10),
        ("b", 5, 50),
        ("a", 2, 99),
        ("a", 7, 100),
    ]))
    .unwrap();
    h.watermark(98).unwrap();
    assert_eq!(describe(h.take_output()), vec!["wm 98"]);
    h.watermark(99).unwrap();
    let mut fired = describe(h.take_output());
    let wm = fired.pop();
    fired.sort();
    assert_eq!(fired, vec!["a[0,100)=3@99", "b[0,100)=5@99"]);
    assert_eq!(wm.as_deref(), Some("wm 99"));
    h.watermark(199).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a[100,200)=7@199", "wm 199"]
    );
}

#[test]
fn records_for_fired_windows_are_dropped_but_open_ones_accept_late_records() {
    let mut h = harness();
    h.push(at(&[("a", 1, 150)])).unwrap();
    h.watermark(120).unwrap();
    h.take_output();
    // 50 belongs to [0,100), already complete (watermark 120): dropped.
    // 110 is behind the watermark but its window [100,200) is still open: counted.
    h.push(at(&[("a", 1_000, 50), ("a", 10, 110)])).unwrap();
    h.watermark(200).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a[100,200)=11@199", "wm 200"]
    );
}

#[test]
fn records_without_timestamps_fail_with_a_hint() {
    let mut h = harness();
    let err = h
        .push(Records::from(vec![("a".to_string(), 1)]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("call `assign_timestamps_and_watermarks` upstream"),
        "{err}"
    );
}
