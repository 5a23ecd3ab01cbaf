//! The stock prices demo (after Flink's classic streaming demo): several generated price
//! streams merged into one; per symbol, rolling min/max/mean over a sliding window;
//! price-change warnings from a delta trigger on a global window; and a count of warnings
//! per symbol every 30 s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;

/// The generated symbols.
pub const SYMBOLS: [&str; 4] = ["SPX", "FTSE", "DJI", "HDP"];

/// Milliseconds of event time between two ticks of a symbol.
pub const TICK_MS: i64 = 100;

/// One price tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockPrice {
    /// Ticker symbol.
    pub symbol: String,
    /// Price.
    pub price: f64,
    /// Event time, ms.
    pub time_ms: i64,
}

/// The price of symbol `s` at tick `tick`: a slow wave with a per-symbol period and
/// phase, plus deterministic noise, so prices move by several percent within seconds.
pub fn price_at(s: usize, tick: u64) -> f64 {
    let base = 100.0 * (s as f64 + 1.0);
    let t = tick as f64;
    let period = 120.0 + 40.0 * s as f64;
    let wave = 0.12 * (std::f64::consts::TAU * t / period + s as f64).sin();
    let noise = ((tick.wrapping_mul(2_654_435_761).wrapping_add(s as u64 * 97) % 1_000) as f64
        / 1_000.0
        - 0.5)
        * 0.01;
    (base * (1.0 + wave + noise) * 100.0).round() / 100.0
}

/// The tick `tick` of symbol `s`.
pub fn tick(s: usize, tick: u64) -> StockPrice {
    StockPrice {
        symbol: SYMBOLS[s].to_string(),
        price: price_at(s, tick),
        time_ms: tick as i64 * TICK_MS,
    }
}

/// Rolling statistics of one symbol over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceStats {
    /// Ticker symbol.
    pub symbol: String,
    /// Window start, ms.
    pub window_start: i64,
    /// Lowest price.
    pub min: f64,
    /// Highest price.
    pub max: f64,
    /// Mean price.
    pub mean: f64,
}

/// A price that moved more than the threshold since the last warning's price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PriceWarning {
    /// Ticker symbol.
    pub symbol: String,
    /// The price that triggered the warning.
    pub price: f64,
    /// Prices of the last 10 s that the warning covers.
    pub recent: usize,
}

/// Min, max, sum and count of prices.
pub struct MinMaxMean;

impl AggregateFunction<StockPrice, (f64, f64, f64, u64), (f64, f64, f64)> for MinMaxMean {
    fn create_accumulator(&self) -> (f64, f64, f64, u64) {
        (f64::INFINITY, f64::NEG_INFINITY, 0.0, 0)
    }
    fn add(&self, p: StockPrice, acc: &mut (f64, f64, f64, u64)) {
        acc.0 = acc.0.min(p.price);
        acc.1 = acc.1.max(p.price);
        acc.2 += p.price;
        acc.3 += 1;
    }
    fn get_result(&self, acc: &(f64, f64, f64, u64)) -> (f64, f64, f64) {
        (acc.0, acc.1, acc.2 / acc.3.max(1) as f64)
    }
    fn merge(&self, a: (f64, f64, f64, u64), b: (f64, f64, f64, u64)) -> (f64, f64, f64, u64) {
        (a.0.min(b.0), a.1.max(b.1), a.2 + b.2, a.3 + b.3)
    }
}

/// Counts records.
pub struct CountRecords;

impl<T> AggregateFunction<T, u64, u64> for CountRecords {
    fn create_accumulator(&self) -> u64 {
        0
    }
    fn add(&self, _: T, acc: &mut u64) {
        *acc += 1;
    }
    fn get_result(&self, acc: &u64) -> u64 {
        *acc
    }
    fn merge(&self, a: u64, b: u64) -> u64 {
        a + b
    }
}

/// The three result streams of the demo.
#[derive(Debug)]
pub struct StockStreams {
    /// Rolling min/max/mean per symbol, 10 s windows every 5 s.
    pub stats: DataStream<PriceStats>,
    /// Price-change warnings.
    pub warnings: DataStream<PriceWarning>,
    /// Warnings per symbol and 30 s window: (symbol, window start, count).
    pub warning_counts: DataStream<(String, i64, u64)>,
}

/// The relative price change that raises a warning.
pub const WARNING_THRESHOLD: f64 = 0.05;

/// Builds the demo on `env` over `ticks` ticks of every symbol.
pub fn stock_prices(env: &StreamExecutionEnvironment, ticks: u64) -> StockStreams {
    let timestamps = || {
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|p: &StockPrice| p.time_ms)
    };
    // One generated stream per symbol, each in time order, merged into one.
    let streams: Vec<DataStream<StockPrice>> = (0..SYMBOLS.len())
        .map(|s| {
            env.from_source(
                SYMBOLS[s],
                GeneratorSource::bounded(ticks, move |i| tick(s, i)),
                timestamps(),
            )
            .set_parallelism(1)
        })
        .collect();
    // The union runs with the sources' parallelism, so each symbol's ticks stay in order
    // (a rebalance to more subtasks would interleave them, and the delta trigger, which
    // compares consecutive prices, depends on their order).
    let prices = streams[0].union(&streams[1..]).set_parallelism(1);
    let by_symbol = prices.key_by(|p: &StockPrice| p.symbol.clone());

    let stats = by_symbol
        .window(SlidingEventTimeWindows::of(
            Duration::from_secs(10),
            Duration::from_secs(5),
        ))
        .aggregate_with(MinMaxMean, |symbol, w, (min, max, mean)| PriceStats {
            symbol: symbol.clone(),
            window_start: w.start,
            min,
            max,
            mean: (mean * 100.0).round() / 100.0,
        })
        .name("Rolling Stats");

    let warnings = by_symbol
        .window(GlobalWindows::create())
        .evictor(TimeEvictor::of(10_000))
        .trigger(DeltaTrigger::of(
            WARNING_THRESHOLD,
            |old: &StockPrice, new: &StockPrice| (new.price - old.price).abs() / old.price,
        ))
        .process(
            |symbol: &String, _ctx: &WindowContext, recent: &[StockPrice], out: &mut Vec<_>| {
                if let Some(last) = recent.last() {
                    out.push(PriceWarning {
                        symbol: symbol.clone(),
                        price: last.price,
                        recent: recent.len(),
                    });
                }
                Ok(())
            },
        )
        .name("Price Warnings");

    let warning_counts = warnings
        .key_by(|w: &PriceWarning| w.symbol.clone())
        .window(TumblingEventTimeWindows::of(Duration::from_secs(30)))
        .aggregate_with(CountRecords, |symbol, w, n| (symbol.clone(), w.start, n))
        .name("Warnings per 30 s");

    StockStreams {
        stats,
        warnings,
        warning_counts,
    }
}
