//! End-to-end: the semantics of each DataStream operation in whole jobs.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sluice_api::prelude::*;
use sluice_api::StreamExecutionEnvironment;

fn env(parallelism: u32) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism).set_handle_ctrl_c(false);
    env
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

#[test]
fn map_filter_flat_map_compose() {
    let env = env(3);
    let out = env
        .from_sequence(1, 100)
        .map(|x| x * 2)
        .filter(|x| x % 3 == 0)
        .flat_map(|x| vec![x, x + 1])
        .collect();
    env.execute("compose").unwrap();
    let expected: Vec<u64> = (1..=100u64)
        .map(|x| x * 2)
        .filter(|x| x % 3 == 0)
        .flat_map(|x| [x, x + 1])
        .collect();
    assert_eq!(sorted(out.take()), sorted(expected));
}

#[test]
fn union_merges_streams_of_different_parallelism() {
    let env = env(2);
    let a = env.from_sequence(0, 999);
    let b = env.from_sequence(1000, 1499).set_parallelism(3);
    let c = env.from_collection(vec![5000u64, 5001]).set_parallelism(1);
    let out = a.union(&[b, c]).map(|x| x + 1).collect();
    env.execute("union").unwrap();
    let mut expected: Vec<u64> = (1..=1500).collect();
    expected.extend([5001, 5002]);
    assert_eq!(sorted(out.take()), expected);
}

#[test]
fn broadcast_delivers_every_record_to_every_subtask() {
    let env = env(1);
    let out = env
        .from_sequence(1, 10)
        .broadcast()
        .map(|x| x * 10)
        .set_parallelism(3)
        .collect();
    env.execute("broadcast").unwrap();
    let values = out.take();
    assert_eq!(values.len(), 30);
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    assert!(counts.values().all(|&c| c == 3));
}

#[test]
fn running_reduce_emits_an_update_per_record_in_streaming_mode() {
    let env = env(1);
    let out = env
        .from_collection(vec![
            ("a".to_string(), 1u64),
            ("b".into(), 10),
            ("a".into(), 2),
            ("a".into(), 3),
        ])
        .key_by_ref(|(k, _): &(String, u64)| k)
        .reduce(|(k, x), (_, y)| (k, x + y))
        .collect();
    env.execute("reduce").unwrap();
    assert_eq!(
        out.take(),
        vec![
            ("a".to_string(), 1),
            ("b".into(), 10),
            ("a".into(), 3),
            ("a".into(), 6)
        ]
    );
}

#[test]
fn batch_mode_emits_one_final_value_per_key() {
    let env = env(2);
    env.set_runtime_mode(RuntimeMode::Batch);
    let out = env
        .from_sequence(0, 9_999)
        .map(|x| (x % 7, 1u64))
        .key_by(|(k, _)| *k)
        .sum(|(_, n)| n)
        .collect();
    env.execute("batch").unwrap();
    let got: BTreeMap<u64, u64> = out.take().into_iter().collect();
    let expected: BTreeMap<u64, u64> = (0..7)
        .map(|k| (k, (0..10_000u64).filter(|x| x % 7 == k).count() as u64))
        .collect();
    assert_eq!(got, expected);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trade {
    symbol: String,
    price: i64,
    id: u32,
}

fn trades() -> Vec<Trade> {
    vec![
        Trade {
            symbol: "X".into(),
            price: 10,
            id: 1,
        },
        Trade {
            symbol: "X".into(),
            price: 7,
            id: 2,
        },
        Trade {
            symbol: "X".into(),
            price: 12,
            id: 3,
        },
        Trade {
            symbol: "X".into(),
            price: 7,
            id: 4,
        },
    ]
}

#[test]
fn min_max_keep_the_first_record_but_min_by_max_by_keep_the_whole_record() {
    let env = env(1);
    let keyed = env
        .from_collection(trades())
        .key_by_ref(|t: &Trade| &t.symbol);
    let min = keyed.min(|t| &mut t.price).collect();
    let max = keyed.max(|t| &mut t.price).collect();
    let min_by = keyed.min_by(|t| t.price).collect();
    let max_by = keyed.max_by(|t| t.price).collect();
    let sum = keyed.sum(|t| &mut t.price).collect();
    env.execute("aggregates").unwrap();
    let prices = |v: Vec<Trade>| v.into_iter().map(|t| (t.price, t.id)).collect::<Vec<_>>();
    assert_eq!(prices(min.take()), vec![(10, 1), (7, 1), (7, 1), (7, 1)]);
    assert_eq!(prices(max.take()), vec![(10, 1), (10, 1), (12, 1), (12, 1)]);
    assert_eq!(prices(min_by.take()), vec![(10, 1), (7, 2), (7, 2), (7, 2)]);
    assert_eq!(
        prices(max_by.take()),
        vec![(10, 1), (10, 1), (12, 3), (12, 3)]
    );
    assert_eq!(prices(sum.take()), vec![(10, 1), (17, 1), (29, 1), (36, 1)]);
}

/// Emits a user's first login and every login after more than `gap` others, using two
/// value states per key.
#[derive(Clone)]
struct LoginAlerts {
    seen: Option<ValueStateHandle<u64>>,
    first: Option<ValueStateHandle<String>>,
}

impl KeyedProcessFunction<String, (String, String), String> for LoginAlerts {
    fn open(&mut self, ctx: &mut OpenContext<'_, String>) -> UserResult {
        self.seen = Some(ctx.value_state("seen")?);
        self.first = Some(ctx.value_state("first-device")?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (user, device): (String, String),
        ctx: &mut KeyedContext<'_, String>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let (seen, first) = (
            self.seen.ok_or("not opened")?,
            self.first.ok_or("not opened")?,
        );
        let mut count = ctx.value_state(&seen);
        let n = count.value().copied().unwrap_or(0) + 1;
        count.update(n);
        let mut first_device = ctx.value_state(&first);
        if first_device.value().is_none() {
            first_device.update(device.clone());
            out.collect(format!("{user}: first login from {device}"));
        } else if n % 3 == 0 {
            let original = first_device.value().cloned().unwrap_or_default();
            out.collect(format!(
                "{}: login {n} from {device} (first {original})",
                ctx.key()
            ));
        }
        Ok(())
    }
}

#[test]
fn keyed_process_keeps_state_per_key_across_subtasks() {
    let env = env(3);
    let mut logins = Vec::new();
    for i in 0..60u32 {
        logins.push((format!("user{}", i % 5), format!("dev{i}")));
    }
    let out = env
        .from_collection(logins)
        .set_parallelism(1)
        .key_by_ref(|(u, _): &(String, String)| u)
        .process(LoginAlerts {
            seen: None,
            first: None,
        })
        .collect();
    env.execute("process").unwrap();
    let alerts = sorted(out.take());
    // 5 users x (1 first login + 12 logins, every third alerts = 4).
    assert_eq!(alerts.len(), 5 * (1 + 4));
    assert!(alerts.contains(&"user0: first login from dev0".to_string()));
    assert!(alerts.contains(&"user2: login 3 from dev12 (first dev2)".to_string()));
}

#[test]
fn explain_shows_chains_and_partitioning() {
    let env = env(2);
    env.from_sequence(0, 10)
        .map(|x| x + 1)
        .filter(|x| x % 2 == 0)
        .key_by(|x| x % 3)
        .reduce(|a, b| a + b)
        .discard();
    let plan = env.explain().unwrap();
    assert!(
        plan.contains("task 0: Source: Sequence -> Map -> Filter [parallelism 2]"),
        "{plan}"
    );
    assert!(
        plan.contains("task 1: Keyed Reduce -> Sink: Discard [parallelism 2]"),
        "{plan}"
    );
    assert!(
        plan.contains("edge: Filter -> Keyed Reduce [HASH]"),
        "{plan}"
    );
}

#[test]
fn execute_runs_each_job_once_and_leaves_an_empty_environment() {
    let env = env(2);
    let first = env.from_sequence(1, 10).collect();
    env.execute("first").unwrap();
    let second = env.from_sequence(100, 104).collect();
    env.execute("second").unwrap();
    assert_eq!(first.take().len(), 10, "the first job ran once");
    assert_eq!(sorted(second.take()), vec![100, 101, 102, 103, 104]);
    let err = env.execute("empty").unwrap_err().to_string();
    assert!(err.contains("no operators"), "{err}");
}
