//! Random pipelines, built on the engine and on a sequential reference model.
//!
//! Records are `(key, value)` pairs of `u64`. A pipeline is a list of [`Stage`]s, each
//! with its own parallelism; [`build`] turns it into a job, [`reference()`] computes what the
//! job must output by processing the input in order on one thread.

use std::collections::HashMap;

use proptest::prelude::*;
use sluice_api::{DataStream, StreamExecutionEnvironment};

/// Values stay below this, so sums cannot overflow.
pub const MODULUS: u64 = 1_000_003;

/// One transformation of a random pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// `value = (value * mul + add) % MODULUS`.
    Map {
        /// Multiplier.
        mul: u64,
        /// Addend.
        add: u64,
    },
    /// `key = value % modulus`.
    Rekey {
        /// Number of distinct keys.
        modulus: u64,
    },
    /// Drops records whose `value % modulus == rem`.
    Filter {
        /// Divisor.
        modulus: u64,
        /// Remainder that is dropped.
        rem: u64,
    },
    /// Emits `copies` records `(key, (value + i) % MODULUS)`.
    FlatMap {
        /// Records out per record in (0 drops it).
        copies: u64,
    },
    /// `key_by(key)` then a running sum of values: streaming mode emits every running
    /// sum, batch mode each key's final sum.
    KeyedSum,
    /// Deals records round robin to the next stage.
    Rebalance,
}

/// A stage and the parallelism of its operator.
pub type PlacedStage = (Stage, u32);

/// A strategy for one stage; `allow_sum` admits [`Stage::KeyedSum`].
pub fn stage(allow_sum: bool) -> BoxedStrategy<Stage> {
    let mut options = vec![
        (1u64..5, 0u64..100)
            .prop_map(|(mul, add)| Stage::Map { mul, add })
            .boxed(),
        (1u64..20)
            .prop_map(|modulus| Stage::Rekey { modulus })
            .boxed(),
        (2u64..5, 0u64..5)
            .prop_map(|(modulus, rem)| Stage::Filter {
                modulus,
                rem: rem % modulus,
            })
            .boxed(),
        (0u64..3)
            .prop_map(|copies| Stage::FlatMap { copies })
            .boxed(),
        Just(Stage::Rebalance).boxed(),
    ];
    if allow_sum {
        options.push(Just(Stage::KeyedSum).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

/// Builds `stages` on `input`; each stage's operator gets its parallelism.
pub fn build(input: DataStream<(u64, u64)>, stages: &[PlacedStage]) -> DataStream<(u64, u64)> {
    let mut stream = input;
    for (stage, parallelism) in stages {
        stream = match *stage {
            Stage::Map { mul, add } => stream.map(move |(k, v)| (k, (v * mul + add) % MODULUS)),
            Stage::Rekey { modulus } => stream.map(move |(_, v)| (v % modulus, v)),
            Stage::Filter { modulus, rem } => stream.filter(move |(_, v)| v % modulus != rem),
            Stage::FlatMap { copies } => {
                stream.flat_map(move |(k, v)| (0..copies).map(move |i| (k, (v + i) % MODULUS)))
            }
            Stage::KeyedSum => stream.key_by(|(k, _)| *k).sum(|(_, v)| v),
            Stage::Rebalance => {
                // A rebalance changes the partitioning of the next edge only.
                stream = stream.rebalance();
                continue;
            }
        }
        .set_parallelism(*parallelism);
    }
    stream
}

/// What a stateless stage makes of one record (`None` for [`Stage::KeyedSum`]).
fn apply_stateless(stage: &Stage, (k, v): (u64, u64)) -> Option<Vec<(u64, u64)>> {
    Some(match *stage {
        Stage::Map { mul, add } => vec![(k, (v * mul + add) % MODULUS)],
        Stage::Rekey { modulus } => vec![(v % modulus, v)],
        Stage::Filter { modulus, rem } if v % modulus == rem => vec![],
        Stage::Filter { .. } => vec![(k, v)],
        Stage::FlatMap { copies } => (0..copies).map(|i| (k, (v + i) % MODULUS)).collect(),
        Stage::Rebalance => vec![(k, v)],
        Stage::KeyedSum => return None,
    })
}

/// What `stages` output for `input` when processed in order on one thread, each record
/// carrying a timestamp: stateless stages keep it (a flat map copies it to every output),
/// a running sum emits each update with the timestamp of the record that caused it.
/// `batch_mode` gives keyed sums the final-values semantics, whose results carry no
/// timestamp (`None`).
pub fn reference_timed(
    input: &[((u64, u64), Option<i64>)],
    stages: &[PlacedStage],
    batch_mode: bool,
) -> Vec<((u64, u64), Option<i64>)> {
    let mut records = input.to_vec();
    for (stage, _) in stages {
        if *stage != Stage::KeyedSum {
            records = records
                .into_iter()
                .flat_map(|(r, t)| {
                    apply_stateless(stage, r)
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |out| (out, t))
                })
                .collect();
            continue;
        }
        let mut sums: HashMap<u64, u64> = HashMap::new();
        let mut out = Vec::new();
        for ((k, v), t) in records {
            let s = sums.entry(k).or_insert(0);
            *s += v;
            if !batch_mode {
                out.push(((k, *s), t));
            }
        }
        if batch_mode {
            out.extend(sums.into_iter().map(|r| (r, None)));
        }
        records = out;
    }
    records
}

/// What `stages` output for `input` when processed in order on one thread. `batch_mode`
/// selects the final-sums semantics of [`Stage::KeyedSum`].
pub fn reference(
    input: &[(u64, u64)],
    stages: &[PlacedStage],
    batch_mode: bool,
) -> Vec<(u64, u64)> {
    let timed: Vec<((u64, u64), Option<i64>)> = input.iter().map(|r| (*r, None)).collect();
    reference_timed(&timed, stages, batch_mode)
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// Sorts records, to compare outputs as multisets.
pub fn sorted(mut records: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    records.sort_unstable();
    records
}

/// An environment with the given default parallelism, batch size and channel capacity,
/// without a Ctrl-C handler.
pub fn env(
    parallelism: u32,
    batch_size: usize,
    channel_capacity: usize,
) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism)
        .set_batch_size(batch_size)
        .set_channel_capacity(channel_capacity)
        .set_handle_ctrl_c(false);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_of_a_keyed_sum_in_both_modes() {
        let input = vec![(0, 1), (0, 2), (1, 5)];
        let stages = vec![(Stage::KeyedSum, 1)];
        assert_eq!(
            sorted(reference(&input, &stages, false)),
            vec![(0, 1), (0, 3), (1, 5)]
        );
        assert_eq!(
            sorted(reference(&input, &stages, true)),
            vec![(0, 3), (1, 5)]
        );
    }
}
