//! End-to-end jobs on the general window operator: count windows, the global window with
//! a delta trigger and a time evictor, full-window process functions with window
//! metadata, sessions with allowed lateness, and the late-data side output with its
//! counters. Each result is compared with a sequential computation.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_api::prelude::*;
use sluice_api::runtime::metrics::{LATE_RECORDS_DROPPED, LATE_RECORDS_SIDE_OUTPUT};
use sluice_testkit::pipeline::env;

/// (key, value, event time), in event-time order per key.
fn readings() -> Vec<(u32, i64, i64)> {
    (0..3_000i64)
        .map(|i| ((i % 7) as u32, (i * 37) % 101, 1_000 + i * 3))
        .collect()
}

/// The values of each key in arrival order.
fn per_key(records: &[(u32, i64, i64)]) -> BTreeMap<u32, Vec<(i64, i64)>> {
    let mut by_key: BTreeMap<u32, Vec<(i64, i64)>> = BTreeMap::new();
    for &(k, v, t) in records {
        by_key.entry(k).or_default().push((v, t));
    }
    by_key
}

#[test]
fn tumbling_count_windows_sum_every_n_records_of_a_key() {
    let env = env(1, 64, 4);
    let sums = env
        .from_collection(readings())
        .key_by(|r| r.0)
        .count_window(5)
        .reduce(|a, b| (a.0, a.1 + b.1, a.2.max(b.2)))
        .set_parallelism(3)
        .collect();
    env.execute("count windows").unwrap();
    let mut expected = Vec::new();
    for (k, values) in per_key(&readings()) {
        for chunk in values.chunks(5).filter(|c| c.len() == 5) {
            let sum: i64 = chunk.iter().map(|(v, _)| v).sum();
            let t = chunk.iter().map(|(_, t)| *t).max().unwrap();
            expected.push((k, sum, t));
        }
    }
    let mut got = sums.take();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn sliding_count_windows_sum_the_last_size_records_every_slide() {
    let env = env(1, 16, 4);
    let sums = env
        .from_collection(readings())
        .key_by(|r| r.0)
        .count_window_sliding(4, 3)
        .aggregate_with(SumValues, |k, _, sum| (*k, sum))
        .set_parallelism(2)
        .collect();
    env.execute("sliding count windows").unwrap();
    let mut expected = Vec::new();
    for (k, values) in per_key(&readings()) {
        for end in (3..=values.len()).step_by(3) {
            let start = end.saturating_sub(4);
            expected.push((k, values[start..end].iter().map(|(v, _)| v).sum::<i64>()));
        }
    }
    let mut got = sums.take();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

struct SumValues;

impl AggregateFunction<(u32, i64, i64), i64, i64> for SumValues {
    fn create_accumulator(&self) -> i64 {
        0
    }
    fn add(&self, v: (u32, i64, i64), acc: &mut i64) {
        *acc += v.1;
    }
    fn get_result(&self, acc: &i64) -> i64 {
        *acc
    }
    fn merge(&self, a: i64, b: i64) -> i64 {
        a + b
    }
}

#[test]
fn global_window_with_delta_trigger_and_time_evictor() {
    // Fire when the value moved by more than 60 from the last firing record; each firing
    // reports the number and maximum of the values of the last 30 ms of event time.
    let env = env(1, 32, 4);
    let out = env
        .from_collection(readings())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|r: &(u32, i64, i64)| r.2),
        )
        .key_by(|r| r.0)
        .window(GlobalWindows::create())
        .evictor(TimeEvictor::of(30))
        .trigger(DeltaTrigger::of(
            60.0,
            |a: &(u32, i64, i64), b: &(u32, i64, i64)| (b.1 - a.1).abs() as f64,
        ))
        .process(
            |k: &u32, _ctx: &WindowContext, values: &[(u32, i64, i64)], out: &mut Vec<_>| {
                let max = values.iter().map(|v| v.1).max().unwrap_or(0);
                out.push((*k, values.len(), max));
                Ok(())
            },
        )
        .set_parallelism(2)
        .collect();
    env.execute("delta trigger").unwrap();

    let mut expected = Vec::new();
    for (k, values) in per_key(&readings()) {
        let mut reference: Option<i64> = None;
        let mut buffer: Vec<(i64, i64)> = Vec::new();
        for (v, t) in values {
            let fire = match reference {
                None => {
                    reference = Some(v);
                    false
                }
                Some(r) if (v - r).abs() > 60 => {
                    reference = Some(v);
                    true
                }
                Some(_) => false,
            };
            buffer.push((v, t));
            if fire {
                let newest = buffer.iter().map(|(_, t)| *t).max().unwrap();
                buffer.retain(|(_, t)| *t > newest - 30);
                let max = buffer.iter().map(|(v, _)| *v).max().unwrap();
                expected.push((k, buffer.len(), max));
            }
        }
    }
    assert!(expected.len() > 100, "the delta trigger fires often");
    let mut got = out.take();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

#[test]
fn process_window_function_sees_window_and_all_records() {
    let env = env(2, 50, 4);
    let out = env
        .from_collection(readings())
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_timestamp_assigner(|r: &(u32, i64, i64)| r.2),
        )
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(100)))
        .process(
            |k: &u32, ctx: &WindowContext, values: &[(u32, i64, i64)], out: &mut Vec<_>| {
                let w = ctx.window();
                assert!(values.iter().all(|v| v.2 >= w.start && v.2 < w.end));
                let mut sorted: Vec<i64> = values.iter().map(|v| v.1).collect();
                sorted.sort_unstable();
                // The median needs every record: no incremental aggregate can do it.
                out.push((*k, w.start, sorted[sorted.len() / 2]));
                Ok(())
            },
        )
        .collect();
    env.execute("process window").unwrap();
    let mut groups: BTreeMap<(u32, i64), Vec<i64>> = BTreeMap::new();
    for (k, v, t) in readings() {
        groups
            .entry((k, t - t.rem_euclid(100)))
            .or_default()
            .push(v);
    }
    let mut expected: Vec<(u32, i64, i64)> = groups
        .into_iter()
        .map(|((k, start), mut vs)| {
            vs.sort_unstable();
            (k, start, vs[vs.len() / 2])
        })
        .collect();
    let mut got = out.take();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
}

/// Late data, deterministically: one source subtask, one record per batch, no
/// out-of-orderness allowed, so the window sees each record after the watermark of the
/// one before it.
fn late_job(lateness: Option<Duration>, with_side: bool) -> (Vec<(u32, i64)>, Vec<i64>, JobResult) {
    let env = env(1, 1, 4);
    let input = vec![
        (1u32, 1i64, 1_000i64),
        (1, 2, 1_500),
        (1, 4, 2_200),
        (1, 8, 1_800), // late: window [1000, 2000) fired at watermark 2199
        (1, 16, 3_100),
        (1, 32, 2_500), // late: window [2000, 3000) fired at watermark 3099
        (1, 64, 900),   // very late: beyond any lateness below
    ];
    let late = OutputTag::<(u32, i64, i64)>::new("late");
    let mut windowed = env
        .from_collection(input)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_bounded_out_of_orderness(Duration::ZERO)
                .with_timestamp_assigner(|r: &(u32, i64, i64)| r.2),
        )
        .key_by(|r| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(1)));
    if let Some(l) = lateness {
        windowed = windowed.allowed_lateness(l);
    }
    if with_side {
        windowed = windowed.side_output_late_data(&late);
    }
    let sums = windowed.aggregate_with(SumValues, |_, w, sum| (w.start as u32, sum));
    let results = sums.collect();
    let side = sums.side_output(&late).map(|r| r.2).collect();
    let result = env.execute("late data").unwrap();
    let mut got = results.take();
    got.sort_unstable();
    let mut late_times = side.take();
    late_times.sort_unstable();
    (got, late_times, result)
}

#[test]
fn late_records_go_to_the_side_output_and_are_counted() {
    let (results, late, job) = late_job(None, true);
    assert_eq!(results, vec![(1_000, 3), (2_000, 4), (3_000, 16)]);
    assert_eq!(late, vec![900, 1_800, 2_500]);
    assert_eq!(job.counter_total(LATE_RECORDS_SIDE_OUTPUT), 3);
    assert_eq!(job.counter_total(LATE_RECORDS_DROPPED), 0);

    let (results, late, job) = late_job(None, false);
    assert_eq!(results, vec![(1_000, 3), (2_000, 4), (3_000, 16)]);
    assert!(late.is_empty());
    assert_eq!(
        job.counter_total(LATE_RECORDS_DROPPED),
        3,
        "dropped, but counted"
    );
}

#[test]
fn allowed_lateness_refires_windows_with_late_records() {
    let (results, late, job) = late_job(Some(Duration::from_millis(700)), true);
    // [1000, 2000) fires 3, then again with the late 8 (watermark 2199 < 1999 + 700);
    // [2000, 3000) fires 4, then 36 with the late 32 (watermark 3099 < 2999 + 700);
    // the record at 900 is beyond the lateness of its window.
    assert_eq!(
        results,
        vec![
            (1_000, 3),
            (1_000, 11),
            (2_000, 4),
            (2_000, 36),
            (3_000, 16)
        ]
    );
    assert_eq!(late, vec![900]);
    assert_eq!(job.counter_total(LATE_RECORDS_SIDE_OUTPUT), 1);
}
