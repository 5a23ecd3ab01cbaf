//! Operator tests of timestamp assignment and watermark generation.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sluice_api::runtime::operators::TimestampsAndWatermarksOperator;
use sluice_api::runtime::watermark::WatermarkBound;
use sluice_api::{EventTime, Records, RuntimeMode};
use sluice_core::{StreamEvent, Watermark};
use sluice_testkit::harness::OperatorHarness;

fn harness(
    bound: WatermarkBound,
) -> OperatorHarness<TimestampsAndWatermarksOperator<(i64, &'static str)>> {
    OperatorHarness::new(RuntimeMode::Streaming, |_| {
        Ok(TimestampsAndWatermarksOperator::new(
            Some(Arc::new(|r: &(i64, &'static str)| r.0)),
            bound,
        ))
    })
    .unwrap()
}

fn watermarks(events: &[StreamEvent<Records<(i64, &'static str)>>]) -> Vec<i64> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Watermark(w) => Some(w.0 .0),
            _ => None,
        })
        .collect()
}

#[test]
fn assigns_timestamps_and_trails_the_newest_by_the_bound() {
    let mut h = harness(WatermarkBound::OutOfOrderness(Duration::from_millis(5)));
    h.push(Records::from(vec![
        (10, "a"),
        (5, "b"),
        (30, "c"),
        (20, "d"),
    ]))
    .unwrap();
    let out = h.take_output();
    match &out[0] {
        StreamEvent::Data(b) => assert_eq!(
            b.timestamps(),
            Some(&[EventTime(10), EventTime(5), EventTime(30), EventTime(20)][..])
        ),
        other => panic!("expected data first, got {other:?}"),
    }
    assert_eq!(watermarks(&out), vec![24]);
    // An older batch does not move the watermark back or emit it again.
    h.push(Records::from(vec![(21, "late but allowed")]))
        .unwrap();
    assert_eq!(watermarks(&h.take_output()), Vec::<i64>::new());
    h.push(Records::from(vec![(40, "e")])).unwrap();
    assert_eq!(watermarks(&h.take_output()), vec![34]);
}

#[test]
fn upstream_watermarks_are_replaced_but_the_final_one_passes() {
    let mut h = harness(WatermarkBound::Monotonous);
    h.watermark(1_000).unwrap();
    assert!(
        h.take_output().is_empty(),
        "upstream watermarks are replaced by generated ones"
    );
    h.push(Records::from(vec![(7, "a")])).unwrap();
    assert_eq!(watermarks(&h.take_output()), vec![6]);
    h.watermark(Watermark::MAX.0 .0).unwrap();
    assert_eq!(watermarks(&h.take_output()), vec![i64::MAX]);
    h.end().unwrap();
    assert_eq!(h.take_output(), vec![StreamEvent::EndOfStream]);
}
