//! Operator tests of the tumbling window: when windows fire, what they carry, and what
//! happens to late records and records without timestamps.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sluice_api::runtime::operators::window::{
    DefaultTrigger, FinishFn, Incremental, TimeWindow, TumblingWindowOperator, WindowAssigner,
    WindowOperator, WindowResultFn, WindowSettings,
};
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

type General = WindowOperator<
    String,
    (String, i64),
    DefaultTrigger,
    Incremental<String, (String, i64), i64, i64, String>,
>;

fn general(assigner: WindowAssigner, lateness: i64) -> OperatorHarness<General> {
    OperatorHarness::new(RuntimeMode::Streaming, move |ctx| {
        let finish: FinishFn<String, i64, String> = Arc::new(|k, ctx, sum, out| {
            let w = ctx.window();
            out.push(format!("{k}[{},{})={sum}", w.start, w.end));
            Ok(())
        });
        Ok(WindowOperator::new(
            ctx,
            KeySelector::Borrowed(Arc::new(|r: &(String, i64)| &r.0)),
            WindowSettings {
                assigner,
                allowed_lateness_ms: lateness,
                late_tag: None,
            },
            DefaultTrigger::for_assigner(&assigner),
            Incremental::new(Arc::new(Sum), finish),
        ))
    })
    .unwrap()
}

#[test]
fn processing_time_windows_fire_when_the_clock_passes_their_end() {
    let mut h = general(
        WindowAssigner::TumblingProcessingTime {
            size_ms: 1_000,
            offset_ms: 0,
        },
        0,
    );
    h.clock().set(10_100);
    // Records need no timestamps: the clock places them.
    h.push(Records::from(vec![
        ("a".to_string(), 1),
        ("b".to_string(), 2),
    ]))
    .unwrap();
    h.clock().set(10_600);
    h.push(Records::from(vec![("a".to_string(), 4)])).unwrap();
    h.tick().unwrap();
    assert!(
        describe(h.take_output()).is_empty(),
        "window [10000, 11000) is open"
    );
    h.clock().set(11_000);
    h.push(Records::from(vec![("a".to_string(), 8)])).unwrap();
    h.tick().unwrap();
    let mut fired = describe(h.take_output());
    fired.sort();
    assert_eq!(
        fired,
        vec!["a[10000,11000)=5@10999", "b[10000,11000)=2@10999"]
    );
    h.clock().set(12_500);
    h.tick().unwrap();
    assert_eq!(describe(h.take_output()), vec!["a[11000,12000)=8@11999"]);
}

#[test]
fn late_record_merging_into_a_fired_session_refires_it_within_lateness() {
    let mut h = general(WindowAssigner::Session { gap_ms: 100 }, 500);
    h.push(at(&[("a", 1, 1_000), ("a", 2, 1_050)])).unwrap();
    h.watermark(1_200).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a[1000,1150)=3@1149", "wm 1200"]
    );
    // 1 120 is behind the watermark but extends the fired session to [1000, 1220), which
    // is not complete yet: it fires again, with everything, when the watermark gets there.
    h.push(at(&[("a", 4, 1_120)])).unwrap();
    assert!(h.take_output().is_empty());
    h.watermark(1_219).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a[1000,1220)=7@1219", "wm 1219"]
    );
    // 1 030 lies inside the complete session: within the lateness it fires at once.
    h.push(at(&[("a", 8, 1_030)])).unwrap();
    assert_eq!(describe(h.take_output()), vec!["a[1000,1220)=15@1219"]);
    // Past the lateness the session is gone; a record for it is late and dropped.
    h.watermark(1_800).unwrap();
    h.take_output();
    h.push(at(&[("a", 100, 1_010)])).unwrap();
    h.watermark(5_000).unwrap();
    assert_eq!(describe(h.take_output()), vec!["wm 5000"]);
    assert_eq!(
        h.counter(sluice_api::runtime::metrics::LATE_RECORDS_DROPPED),
        1
    );
}

#[test]
fn a_record_bridging_two_sessions_merges_them_and_the_merged_session_is_cleaned_up() {
    let mut h = general(WindowAssigner::Session { gap_ms: 100 }, 500);
    h.push(at(&[("a", 1, 1_000), ("a", 2, 1_150)])).unwrap();
    // 1 090 bridges [1000, 1100) and [1150, 1250).
    h.push(at(&[("a", 4, 1_090)])).unwrap();
    h.watermark(1_249).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a[1000,1250)=7@1249", "wm 1249"]
    );
    // Past the merged session's lateness (1249 + 500) its state is gone: a record that
    // would have touched it starts a session of its own.
    h.watermark(1_800).unwrap();
    h.take_output();
    h.push(at(&[("a", 8, 1_240)])).unwrap();
    assert_eq!(describe(h.take_output()), vec!["a[1240,1340)=8@1339"]);
}

#[test]
fn sessions_that_touch_merge() {
    let mut h = general(WindowAssigner::Session { gap_ms: 10 }, 0);
    h.push(at(&[("a", 1, 0), ("a", 2, 10)])).unwrap();
    h.watermark(100).unwrap();
    assert_eq!(describe(h.take_output()), vec!["a[0,20)=3@19", "wm 100"]);
}
