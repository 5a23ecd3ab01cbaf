//! [`AggregateFunction`]: incremental aggregation with an accumulator (Flink's
//! `AggregateFunction`), used by aggregating state and, later, window aggregations.

/// Folds values of type `IN` into an accumulator `ACC` and reads a result `OUT` from it.
///
/// Implementations must make `merge` consistent with `add`: merging the accumulators of
/// two halves of the input gives the accumulator of the whole (session windows rely on
/// it).
pub trait AggregateFunction<IN, ACC, OUT>: Send + Sync + 'static {
    /// A new, empty accumulator.
    fn create_accumulator(&self) -> ACC;
    /// Adds one value.
    fn add(&self, value: IN, accumulator: &mut ACC);
    /// The result for an accumulator.
    fn get_result(&self, accumulator: &ACC) -> OUT;
    /// Two accumulators combined into one.
    fn merge(&self, a: ACC, b: ACC) -> ACC;
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Average;
    impl AggregateFunction<f64, (f64, u64), f64> for Average {
        fn create_accumulator(&self) -> (f64, u64) {
            (0.0, 0)
        }
        fn add(&self, value: f64, acc: &mut (f64, u64)) {
            acc.0 += value;
            acc.1 += 1;
        }
        fn get_result(&self, acc: &(f64, u64)) -> f64 {
            acc.0 / acc.1 as f64
        }
        fn merge(&self, a: (f64, u64), b: (f64, u64)) -> (f64, u64) {
            (a.0 + b.0, a.1 + b.1)
        }
    }

    #[test]
    fn merging_halves_equals_adding_all() {
        let f = Average;
        let mut all = f.create_accumulator();
        let (mut left, mut right) = (f.create_accumulator(), f.create_accumulator());
        for (i, v) in [1.0, 2.0, 6.0, 7.0].into_iter().enumerate() {
            f.add(v, &mut all);
            f.add(v, if i < 2 { &mut left } else { &mut right });
        }
        assert_eq!(f.get_result(&f.merge(left, right)), f.get_result(&all));
        assert_eq!(f.get_result(&all), 4.0);
    }
}
