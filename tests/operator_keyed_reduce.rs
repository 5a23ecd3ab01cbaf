//! Operator tests of the keyed running reduction, driven by the `OperatorHarness`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sluice_api::runtime::operators::{KeySelector, KeyedReduceOperator};
use sluice_api::{EventTime, Records, RuntimeMode};
use sluice_core::{StreamEvent, Watermark};
use sluice_testkit::harness::OperatorHarness;

type Pair = (String, u64);
type SumFn = dyn Fn(Pair, Pair) -> Pair + Send + Sync;
type Sum = KeyedReduceOperator<String, Pair, SumFn>;

fn harness(mode: RuntimeMode) -> OperatorHarness<Sum> {
    OperatorHarness::new(mode, |ctx| {
        let key_of = KeySelector::Borrowed(Arc::new(|r: &(String, u64)| &r.0));
        let sum: Arc<SumFn> = Arc::new(|a: (String, u64), b: (String, u64)| (a.0, a.1 + b.1));
        Ok(KeyedReduceOperator::new(ctx, key_of, sum))
    })
    .unwrap()
}

fn describe(events: Vec<StreamEvent<Records<(String, u64)>>>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| match e {
            StreamEvent::Data(b) => b
                .iter()
                .map(|((k, v), t)| format!("{k}={v}@{}", t.map_or("-".into(), |t| t.0.to_string())))
                .collect::<Vec<_>>()
                .join(" "),
            StreamEvent::Watermark(w) => format!("wm {}", w.0 .0),
            StreamEvent::WatermarkStatus(s) => format!("{s:?}"),
            StreamEvent::Barrier(b) => format!("barrier {}", b.id.0),
            StreamEvent::EndOfStream => "end".into(),
        })
        .collect()
}

fn timed(records: &[(&str, u64, i64)]) -> Records<(String, u64)> {
    Records::with_timestamps(
        records
            .iter()
            .map(|(k, v, _)| (k.to_string(), *v))
            .collect(),
        records.iter().map(|(_, _, t)| EventTime(*t)).collect(),
    )
}

#[test]
fn streaming_emits_running_values_with_input_timestamps_and_forwards_watermarks() {
    let mut h = harness(RuntimeMode::Streaming);
    h.push(timed(&[("a", 1, 10), ("b", 5, 11), ("a", 2, 12)]))
        .unwrap();
    h.watermark(12).unwrap();
    h.push(timed(&[("a", 3, 13)])).unwrap();
    h.end().unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["a=1@10 b=5@11 a=3@12", "wm 12", "a=6@13", "end"]
    );
}

#[test]
fn batch_mode_emits_final_values_before_the_final_watermark() {
    let mut h = harness(RuntimeMode::Batch);
    h.push(timed(&[("a", 1, 10), ("b", 5, 11), ("a", 2, 12)]))
        .unwrap();
    h.watermark(100).unwrap();
    assert_eq!(
        describe(h.take_output()),
        vec!["wm 100"],
        "nothing before the input is complete"
    );
    h.watermark(Watermark::MAX.0 .0).unwrap();
    let mut output = h.take_output();
    let last = output.pop();
    assert_eq!(
        last,
        Some(StreamEvent::Watermark(Watermark::MAX)),
        "the final watermark comes last"
    );
    let mut finals: Vec<(String, u64)> = Vec::new();
    for event in output {
        match event {
            StreamEvent::Data(batch) => {
                assert!(
                    batch.timestamps().is_none(),
                    "final values carry no timestamp"
                );
                finals.extend(batch.into_values());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    finals.sort();
    assert_eq!(finals, vec![("a".to_string(), 3), ("b".to_string(), 5)]);
    h.end().unwrap();
    assert_eq!(describe(h.take_output()), vec!["end"], "nothing twice");
}

#[test]
fn batch_mode_after_a_stop_emits_at_the_end_of_input() {
    let mut h = harness(RuntimeMode::Batch);
    h.push(timed(&[("a", 1, 10), ("a", 2, 12)])).unwrap();
    h.end().unwrap();
    assert_eq!(describe(h.take_output()), vec!["a=3@-", "end"]);
}
