//! Property tests of allowed lateness, late firings and the late-data side output, at the
//! operator level so that the watermark each record sees is scripted exactly: random
//! scripts of out-of-order records (many of them late) and watermarks drive the general
//! window operator and the specialised tumbling/sliding operators; their fired results
//! (with timestamps) and side-output records must equal a sequential reference of Flink's
//! semantics. Replay with the printed `SLUICE_TEST_SEED=<seed>`.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use sluice_api::runtime::metrics::{LATE_RECORDS_DROPPED, LATE_RECORDS_SIDE_OUTPUT};
use sluice_api::runtime::operator::side_output::SideOutputs;
use sluice_api::runtime::operators::window::{
    DefaultTrigger, FinishFn, Incremental, SessionWindowOperator, SlidingWindowOperator,
    TumblingWindowOperator, WindowAssigner, WindowOperator, WindowResultFn, WindowSettings,
};
use sluice_api::runtime::operators::KeySelector;
use sluice_api::runtime::Operator;
use sluice_api::{AggregateFunction, EventTime, OutputTag, Records, RuntimeMode, TimeWindow};
use sluice_core::StreamEvent;
use sluice_testkit::harness::{OperatorHarness, SideCapture};
use sluice_testkit::seed::proptest_config;

type Rec = (u8, i64);
/// A result `(key, window start, sum)` and its timestamp.
type Fired = ((u8, i64, i64), i64);

#[derive(Debug, Clone)]
enum Step {
    Record(u8, i64, i64),
    Watermark(i64),
}

/// Records jitter up to 300 ms behind a rising clock; watermarks trail it by 0..150 ms
/// and only rise (as the runtime guarantees), so many records are late by various amounts.
fn script() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (0u8..4, 1i64..50, 0i64..20, 0i64..300, 0u8..6, 0i64..150),
        0..200,
    )
    .prop_map(|raw| {
        let mut clock = 1_000i64;
        let mut last_wm = i64::MIN;
        let mut steps = Vec::new();
        for (k, v, step, jitter, wm_roll, slack) in raw {
            clock += step;
            steps.push(Step::Record(k, v, clock - jitter));
            if wm_roll == 0 && clock - slack > last_wm {
                last_wm = clock - slack;
                steps.push(Step::Watermark(last_wm));
            }
        }
        steps
    })
}

struct Sum;

impl AggregateFunction<Rec, i64, i64> for Sum {
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, v: Rec, acc: &mut i64) {
        *acc += v.1;
    }
    fn get_result(&self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

/// Flink's semantics for event-time windows with the default trigger, sequentially.
fn reference(
    script: &[Step],
    assigner: WindowAssigner,
    lateness: i64,
) -> (Vec<Fired>, Vec<(Rec, i64)>) {
    let mut open: BTreeMap<(u8, TimeWindow), i64> = BTreeMap::new();
    let mut wm = i64::MIN;
    let mut fired = Vec::new();
    let mut late = Vec::new();
    let mut windows = Vec::new();
    let advance = |to: i64,
                   open: &mut BTreeMap<(u8, TimeWindow), i64>,
                   fired: &mut Vec<Fired>,
                   wm: &mut i64| {
        if to <= *wm {
            return;
        }
        for (&(k, w), &sum) in open.iter() {
            if w.max_timestamp() > *wm && w.max_timestamp() <= to {
                fired.push(((k, w.start, sum), w.max_timestamp()));
            }
        }
        open.retain(|(_, w), _| w.max_timestamp().saturating_add(lateness) > to);
        *wm = to;
    };
    for step in script
        .iter()
        .chain(std::iter::once(&Step::Watermark(i64::MAX)))
    {
        match *step {
            Step::Record(k, v, t) => {
                windows.clear();
                assigner.assign(t, 0, &mut windows);
                let mut accepted = false;
                for &w in &windows {
                    if w.max_timestamp().saturating_add(lateness) <= wm {
                        continue;
                    }
                    accepted = true;
                    let sum = open.entry((k, w)).or_insert(0);
                    *sum += v;
                    if w.max_timestamp() <= wm {
                        fired.push(((k, w.start, *sum), w.max_timestamp()));
                    }
                }
                if !accepted {
                    late.push(((k, v), t));
                }
            }
            Step::Watermark(to) => advance(to, &mut open, &mut fired, &mut wm),
        }
    }
    fired.sort_unstable();
    late.sort_unstable();
    (fired, late)
}

/// Runs `script` through the harnessed operator; returns fired results and late records.
fn run<Op>(
    script: &[Step],
    make: impl FnOnce(&sluice_api::runtime::OperatorContext, OutputTag<Rec>) -> Op,
    batch: usize,
) -> (Vec<Fired>, Vec<(Rec, i64)>, u64)
where
    Op: Operator<In = Records<Rec>, Out = Records<(u8, i64, i64)>>,
{
    let tag = OutputTag::<Rec>::new("late");
    let (capture, side) = SideCapture::new(&tag);
    let t2 = tag.clone();
    let mut h = OperatorHarness::with_side_outputs(
        RuntimeMode::Streaming,
        move |ctx| Ok(make(ctx, t2)),
        SideOutputs::new(vec![side]),
    )
    .unwrap();
    let mut pending: Vec<(Rec, i64)> = Vec::new();
    let flush = |h: &mut OperatorHarness<Op>, pending: &mut Vec<(Rec, i64)>| {
        if !pending.is_empty() {
            let (values, ts): (Vec<Rec>, Vec<i64>) = pending.drain(..).unzip();
            h.push(Records::with_timestamps(
                values,
                ts.into_iter().map(EventTime).collect(),
            ))
            .unwrap();
        }
    };
    for step in script {
        match *step {
            Step::Record(k, v, t) => {
                pending.push(((k, v), t));
                if pending.len() >= batch {
                    flush(&mut h, &mut pending);
                }
            }
            Step::Watermark(w) => {
                flush(&mut h, &mut pending);
                h.watermark(w).unwrap();
            }
        }
    }
    flush(&mut h, &mut pending);
    h.watermark(i64::MAX).unwrap();
    h.end().unwrap();
    let mut fired = Vec::new();
    for e in h.take_output() {
        if let StreamEvent::Data(b) = e {
            fired.extend(b.iter().map(|(r, t)| (*r, t.unwrap().0)));
        }
    }
    let mut late = Vec::new();
    for e in capture.take() {
        if let StreamEvent::Data(b) = e {
            late.extend(b.iter().map(|(r, t)| (*r, t.unwrap().0)));
        }
    }
    assert_eq!(
        h.counter(LATE_RECORDS_SIDE_OUTPUT) as usize,
        late.len(),
        "every late record is counted"
    );
    assert_eq!(
        h.counter(LATE_RECORDS_DROPPED),
        0,
        "a side output is consumed"
    );
    fired.sort_unstable();
    late.sort_unstable();
    (fired, late, 0)
}

fn general(
    ctx: &sluice_api::runtime::OperatorContext,
    tag: OutputTag<Rec>,
    assigner: WindowAssigner,
    lateness: i64,
) -> impl Operator<In = Records<Rec>, Out = Records<(u8, i64, i64)>> {
    let finish: FinishFn<u8, i64, (u8, i64, i64)> = Arc::new(|k, ctx, sum, out| {
        out.push((*k, ctx.window().start, sum));
        Ok(())
    });
    WindowOperator::new(
        ctx,
        KeySelector::Owned(Arc::new(|r: &Rec| r.0)),
        WindowSettings {
            assigner,
            allowed_lateness_ms: lateness,
            late_tag: Some(tag),
        },
        DefaultTrigger::for_assigner(&assigner),
        Incremental::new(Arc::new(Sum), finish),
    )
}

fn result_fn() -> WindowResultFn<u8, i64, (u8, i64, i64)> {
    Arc::new(|k, w, sum| (*k, w.start, sum))
}

#[test]
fn general_window_operator_with_lateness_equals_the_reference() {
    let mut runner = TestRunner::new(proptest_config(
        "general_window_operator_with_lateness_equals_the_reference",
        64,
    ));
    let strategy = (
        script(),
        1i64..200,
        1i64..4,
        0i64..300,
        any::<bool>(),
        1usize..8,
    );
    runner
        .run(
            &strategy,
            |(script, size, panes, lateness, sliding, batch)| {
                let assigner = if sliding {
                    WindowAssigner::Sliding {
                        size_ms: size * panes,
                        slide_ms: size,
                        offset_ms: 0,
                    }
                } else {
                    WindowAssigner::Tumbling {
                        size_ms: size,
                        offset_ms: 0,
                    }
                };
                let expected = reference(&script, assigner, lateness);
                let (fired, late, _) = run(
                    &script,
                    |ctx, tag| general(ctx, tag, assigner, lateness),
                    batch,
                );
                prop_assert_eq!(fired, expected.0);
                prop_assert_eq!(late, expected.1);
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn specialised_operators_send_late_records_to_the_side_output() {
    let mut runner = TestRunner::new(proptest_config(
        "specialised_operators_send_late_records_to_the_side_output",
        64,
    ));
    let strategy = (script(), 1i64..200, 1i64..4, 1usize..8);
    runner
        .run(&strategy, |(script, size, panes, batch)| {
            let tumbling = WindowAssigner::Tumbling {
                size_ms: size,
                offset_ms: 0,
            };
            let expected = reference(&script, tumbling, 0);
            let (fired, late, _) = run(
                &script,
                |ctx, tag| {
                    TumblingWindowOperator::new(
                        ctx,
                        KeySelector::Owned(Arc::new(|r: &Rec| r.0)),
                        size,
                        0,
                        Arc::new(Sum),
                        result_fn(),
                    )
                    .with_late_output(ctx, tag)
                },
                batch,
            );
            prop_assert_eq!(fired, expected.0);
            prop_assert_eq!(late, expected.1);

            let sliding = WindowAssigner::Sliding {
                size_ms: size * panes,
                slide_ms: size,
                offset_ms: 0,
            };
            let expected = reference(&script, sliding, 0);
            let (fired, late, _) = run(
                &script,
                |ctx, tag| {
                    SlidingWindowOperator::new(
                        ctx,
                        KeySelector::Owned(Arc::new(|r: &Rec| r.0)),
                        size * panes,
                        size,
                        0,
                        Arc::new(Sum),
                        result_fn(),
                    )
                    .with_late_output(ctx, tag)
                },
                batch,
            );
            prop_assert_eq!(fired, expected.0);
            prop_assert_eq!(late, expected.1);
            Ok(())
        })
        .unwrap();
}

#[test]
fn specialised_session_operator_equals_the_general_one() {
    let mut runner = TestRunner::new(proptest_config(
        "specialised_session_operator_equals_the_general_one",
        64,
    ));
    let strategy = (script(), 1i64..150, 1usize..8);
    runner
        .run(&strategy, |(script, gap, batch)| {
            let assigner = WindowAssigner::Session { gap_ms: gap };
            let general_run = run(&script, |ctx, tag| general(ctx, tag, assigner, 0), batch);
            let fast_run = run(
                &script,
                |ctx, tag| {
                    SessionWindowOperator::new(
                        ctx,
                        KeySelector::Owned(Arc::new(|r: &Rec| r.0)),
                        gap,
                        Arc::new(Sum),
                        result_fn(),
                    )
                    .with_late_output(ctx, tag)
                },
                batch,
            );
            prop_assert_eq!(fast_run.0, general_run.0);
            prop_assert_eq!(fast_run.1, general_run.1);
            Ok(())
        })
        .unwrap();
}
