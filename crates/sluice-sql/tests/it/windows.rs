//! Window aggregation against a sequential reference on random inputs: random keys,
//! times with bounded disorder, window kinds (TUMBLE, HOP, CUMULATE, SESSION) and sizes,
//! the window table function or the older group window syntax, parallelism and file
//! splits. No
//! row is late by construction (its disorder is below the watermark delay), so every row
//! counts in every window it belongs to.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use proptest::prelude::*;
use sluice_runtime::JobControl;
use sluice_sql::SqlSession;

#[derive(Debug, Clone, Copy)]
enum Window {
    Tumble { size: i64 },
    Hop { slide: i64, size: i64 },
    Cumulate { step: i64, size: i64 },
    Session { gap: i64 },
}

impl Window {
    fn sql(self) -> String {
        match self {
            Window::Tumble { size } => format!("TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '{size}' SECOND)"),
            Window::Hop { slide, size } => format!(
                "HOP(TABLE t, DESCRIPTOR(ts), INTERVAL '{slide}' SECOND, INTERVAL '{size}' SECOND)"
            ),
            Window::Cumulate { step, size } => format!(
                "CUMULATE(TABLE t, DESCRIPTOR(ts), INTERVAL '{step}' SECOND, INTERVAL '{size}' SECOND)"
            ),
            Window::Session { gap } => format!(
                "SESSION(TABLE t PARTITION BY k, DESCRIPTOR(ts), INTERVAL '{gap}' SECOND)"
            ),
        }
    }

    /// The query in Flink's older group window syntax (`GROUP BY k, TUMBLE(ts, size)`),
    /// for the windows that have one.
    fn group_window_query(self) -> Option<String> {
        let (name, args) = match self {
            Window::Tumble { size } => ("TUMBLE", format!("ts, INTERVAL '{size}' SECOND")),
            Window::Hop { slide, size } => (
                "HOP",
                format!("ts, INTERVAL '{slide}' SECOND, INTERVAL '{size}' SECOND"),
            ),
            Window::Session { gap } => ("SESSION", format!("ts, INTERVAL '{gap}' SECOND")),
            Window::Cumulate { .. } => return None,
        };
        Some(format!(
            "SELECT k, {name}_START({args}), {name}_END({args}), COUNT(*), SUM(v), MAX(v), MIN(v)
             FROM t GROUP BY {name}({args}), k"
        ))
    }

    /// The windows of time `ts` (ms), computed the simple way.
    fn of(self, ts: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        match self {
            Window::Tumble { size } => {
                let size = size * 1000;
                let start = ts.div_euclid(size) * size;
                out.push((start, start + size));
            }
            Window::Hop { slide, size } => {
                let (slide, size) = (slide * 1000, size * 1000);
                let mut start = ts.div_euclid(slide) * slide;
                while start + size > ts {
                    out.push((start, start + size));
                    start -= slide;
                }
            }
            Window::Cumulate { step, size } => {
                let (step, size) = (step * 1000, size * 1000);
                let start = ts.div_euclid(size) * size;
                let mut end = start + step;
                while end <= start + size {
                    if end > ts {
                        out.push((start, end));
                    }
                    end += step;
                }
            }
            Window::Session { .. } => unreachable!("sessions depend on the other rows"),
        }
        out
    }
}

/// The sessions of `rows` with inactivity `gap` (ms) per key, as Flink forms them: a
/// row within `gap` of a session's last row (inclusive) joins it.
fn sessions(rows: &[(u8, i64, i64)], gap: i64) -> Vec<(u8, i64, i64, Vec<i64>)> {
    let mut by_key: BTreeMap<u8, Vec<(i64, i64)>> = BTreeMap::new();
    for &(k, t, v) in rows {
        by_key.entry(k).or_default().push((t, v));
    }
    let mut out: Vec<(u8, i64, i64, Vec<i64>)> = Vec::new();
    for (k, mut rows) in by_key {
        rows.sort();
        let mut current: Option<(i64, i64, Vec<i64>)> = None;
        for (t, v) in rows {
            match &mut current {
                Some((_, end, values)) if t <= *end => {
                    *end = (*end).max(t + gap);
                    values.push(v);
                }
                _ => {
                    if let Some((s, e, values)) = current.take() {
                        out.push((k, s, e, values));
                    }
                    current = Some((t, t + gap, vec![v]));
                }
            }
        }
        if let Some((s, e, values)) = current {
            out.push((k, s, e, values));
        }
    }
    out
}

fn window_strategy() -> impl Strategy<Value = Window> {
    prop_oneof![
        (1i64..5).prop_map(|size| Window::Tumble { size }),
        (1i64..3, 1i64..4).prop_map(|(slide, k)| Window::Hop {
            slide,
            size: slide * k
        }),
        (1i64..3, 1i64..4).prop_map(|(step, k)| Window::Cumulate {
            step,
            size: step * k
        }),
        (1i64..3).prop_map(|gap| Window::Session { gap }),
    ]
}

/// Rows (key, time ms, value) whose times go up by random steps with a disorder below
/// one second.
fn rows_strategy() -> impl Strategy<Value = Vec<(u8, i64, i64)>> {
    prop::collection::vec((0u8..6, 0i64..400, 0i64..1000, -50i64..50), 1..250).prop_map(|raw| {
        let mut t = 0i64;
        raw.into_iter()
            .map(|(k, step, jitter, v)| {
                t += step;
                (k, (t - jitter).max(0), v)
            })
            .collect()
    })
}

fn ts(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap()
        .naive_utc()
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

fn reference(rows: &[(u8, i64, i64)], window: Window) -> Vec<String> {
    /// Count, sum, max and min of one (key, window start, window end).
    type Stats = (i64, i64, i64, i64);
    let mut groups: BTreeMap<(u8, i64, i64), Stats> = BTreeMap::new();
    let mut add = |key: (u8, i64, i64), v: i64| {
        let g = groups.entry(key).or_insert((0, 0, i64::MIN, i64::MAX));
        g.0 += 1;
        g.1 += v;
        g.2 = g.2.max(v);
        g.3 = g.3.min(v);
    };
    if let Window::Session { gap } = window {
        for (k, start, end, values) in sessions(rows, gap * 1000) {
            for v in values {
                add((k, start, end), v);
            }
        }
    } else {
        for &(k, t, v) in rows {
            for (start, end) in window.of(t) {
                add((k, start, end), v);
            }
        }
    }
    let mut out: Vec<String> = groups
        .into_iter()
        .map(|((k, s, e), (c, sum, max, min))| {
            format!("{k},{},{},{c},{sum},{max},{min}", ts(s), ts(e))
        })
        .collect();
    out.sort();
    out
}

fn run(
    dir: &Path,
    rows: &[(u8, i64, i64)],
    window: Window,
    group_window_syntax: bool,
    parallelism: u32,
) -> Vec<String> {
    let input = dir.join("in.csv");
    let text: String = rows
        .iter()
        .map(|(k, t, v)| format!("{k},{t},{v}\n"))
        .collect();
    fs::write(&input, text).unwrap();
    let out = dir.join("out");
    let query = window
        .group_window_query()
        .filter(|_| group_window_syntax)
        .unwrap_or_else(|| {
            format!(
                "SELECT k, window_start, window_end, COUNT(*), SUM(v), MAX(v), MIN(v)
                 FROM TABLE({})
                 GROUP BY k, window_start, window_end",
                window.sql()
            )
        });
    let sql = format!(
        "SET 'parallelism.default' = '{parallelism}';
         CREATE TABLE t (k INT, ms BIGINT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(ms, 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE o (k INT, ws TIMESTAMP(3), we TIMESTAMP(3), c BIGINT, s BIGINT, mx BIGINT, mn BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO o {query};",
        input.display(),
        out.display(),
    );
    let mut session = SqlSession::new();
    session
        .execute_script(&sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
    crate::output::committed_lines(&out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn window_aggregation_equals_a_sequential_reference(
        rows in rows_strategy(),
        window in window_strategy(),
        group_window_syntax in any::<bool>(),
        parallelism in 1u32..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let got = run(dir.path(), &rows, window, group_window_syntax, parallelism);
        prop_assert_eq!(got, reference(&rows, window));
    }
}

/// Out-of-order rows within the watermark delay count; rows behind the watermark are late:
/// dropped from the windows and counted in `late_records_dropped`, never silently lost.
/// The late rows are 15 s behind the rows around them, more than a batch of lines plus
/// the delay (watermarks follow each batch read), so which rows are late does not depend
/// on batch boundaries.
#[test]
fn late_rows_are_dropped_and_counted_out_of_order_rows_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
    for i in 0..6_000i64 {
        // Disorder up to 400 ms, under the 1 s delay.
        let ms = i * 10 - (i * 7919 % 41) * 10;
        lines.push(format!("0,{ms},1"));
        *expected.entry(ms.max(0) / 1000).or_default() += 1;
        if i % 1_500 == 1_499 {
            // Late: 15 s behind, more than a batch of lines plus the delay.
            lines.push(format!("0,{},1", i * 10 - 15_000));
        }
    }
    let input = dir.path().join("in.csv");
    fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE t (k INT, ms BIGINT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(GREATEST(ms, 0), 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE o (ws TIMESTAMP(3), c BIGINT)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO o SELECT window_start, COUNT(*)
         FROM TABLE(TUMBLE(TABLE t, DESCRIPTOR(ts), INTERVAL '1' SECOND))
         GROUP BY window_start, window_end;",
        input.display(),
        out.display()
    );
    let result = SqlSession::new()
        .execute_script(&sql, JobControl::new())
        .unwrap()
        .unwrap();
    let late = result.counter_total("late_records_dropped");
    let expected: Vec<String> = expected
        .into_iter()
        .map(|(s, c)| format!("{},{c}", ts(s * 1000)))
        .collect();
    assert_eq!(crate::output::committed_lines(&out), expected);
    assert_eq!(late, 4);
}

/// Session windows over many keys that go idle and come back: keys without an open
/// session are forgotten (their state compacted away) and start new sessions later.
#[test]
fn session_keys_that_go_idle_are_forgotten_and_can_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = (0..6_000i64)
        .map(|i| format!("{},{},1", i % 3_000, i * 10))
        .collect();
    let input = dir.path().join("in.csv");
    fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "SET 'parallelism.default' = '1';
         CREATE TABLE t (k INT, ms BIGINT, v BIGINT,
           ts AS CAST(TO_TIMESTAMP_LTZ(ms, 3) AS TIMESTAMP(3)),
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND)
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         CREATE TABLE o (k INT, n BIGINT, s TIMESTAMP(3))
         WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO o SELECT k, COUNT(*), SESSION_START(ts, INTERVAL '1' SECOND)
         FROM t GROUP BY k, SESSION(ts, INTERVAL '1' SECOND);",
        input.display(),
        out.display()
    );
    SqlSession::new()
        .execute_script(&sql, JobControl::new())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut expected: Vec<String> = (0..6_000i64)
        .map(|i| format!("{},1,{}", i % 3_000, ts(i * 10)))
        .collect();
    expected.sort();
    assert_eq!(crate::output::committed_lines(&out), expected);
}
