//! The stock prices and fraud detection examples, run as the examples run them, against
//! sequential computations of the same results.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use sluice_api::StreamExecutionEnvironment;
use sluice_examples::fraud::{
    fraud_alerts, transaction, Alert, LARGE_CENTS, SMALL_CENTS, WINDOW_MS,
};
use sluice_examples::stocks::{stock_prices, tick, PriceWarning, SYMBOLS, WARNING_THRESHOLD};

const TICKS: u64 = 1_200;

#[test]
fn stock_prices_match_a_sequential_computation() {
    for parallelism in [1, 3] {
        let env = StreamExecutionEnvironment::new();
        env.set_parallelism(parallelism).set_handle_ctrl_c(false);
        let streams = stock_prices(&env, TICKS);
        let stats = streams.stats.collect();
        let warnings = streams.warnings.collect();
        let counts = streams.warning_counts.collect();
        env.execute("stock prices").unwrap();

        // Rolling stats: every 10 s window starting at a multiple of 5 s.
        let mut expected_stats = BTreeMap::new();
        for s in 0..SYMBOLS.len() {
            for i in 0..TICKS {
                let p = tick(s, i);
                let mut start = p.time_ms - p.time_ms.rem_euclid(5_000);
                while start > p.time_ms - 10_000 {
                    let e = expected_stats
                        .entry((p.symbol.clone(), start))
                        .or_insert((f64::INFINITY, f64::NEG_INFINITY));
                    e.0 = e.0.min(p.price);
                    e.1 = e.1.max(p.price);
                    start -= 5_000;
                }
            }
        }
        let got: BTreeMap<(String, i64), (f64, f64)> = stats
            .take()
            .into_iter()
            .map(|s| ((s.symbol, s.window_start), (s.min, s.max)))
            .collect();
        assert_eq!(got, expected_stats);

        // Warnings: per symbol, in tick order, a delta above the threshold from the last
        // warning's price (the first tick is the first reference).
        let mut expected_warnings: Vec<(String, i64)> = Vec::new();
        for s in 0..SYMBOLS.len() {
            let mut reference: Option<f64> = None;
            for i in 0..TICKS {
                let p = tick(s, i);
                match reference {
                    None => reference = Some(p.price),
                    Some(r) if (p.price - r).abs() / r > WARNING_THRESHOLD => {
                        reference = Some(p.price);
                        expected_warnings.push((p.symbol.clone(), p.time_ms));
                    }
                    Some(_) => {}
                }
            }
        }
        let prices: BTreeMap<(String, i64), f64> = (0..SYMBOLS.len())
            .flat_map(|s| (0..TICKS).map(move |i| tick(s, i)))
            .map(|p| ((p.symbol.clone(), p.time_ms), p.price))
            .collect();
        let mut got: Vec<PriceWarning> = warnings.take();
        let mut expected: Vec<PriceWarning> = expected_warnings
            .iter()
            .map(|(symbol, t)| PriceWarning {
                symbol: symbol.clone(),
                price: prices[&(symbol.clone(), *t)],
                recent: (*t / 100 + 1).min(100) as usize,
            })
            .collect();
        let key = |w: &PriceWarning| (w.symbol.clone(), (w.price * 100.0) as i64, w.recent);
        got.sort_by_key(key);
        expected.sort_by_key(key);
        assert!(expected.len() > 50);
        assert_eq!(got, expected, "parallelism {parallelism}");

        // Warning counts per 30 s window.
        let mut expected_counts: BTreeMap<(String, i64), u64> = BTreeMap::new();
        for (symbol, t) in &expected_warnings {
            *expected_counts
                .entry((symbol.clone(), t - t.rem_euclid(30_000)))
                .or_default() += 1;
        }
        let got: BTreeMap<(String, i64), u64> = counts
            .take()
            .into_iter()
            .map(|(s, start, n)| ((s, start), n))
            .collect();
        assert_eq!(got, expected_counts);
    }
}

#[test]
fn fraud_alerts_match_a_sequential_scan() {
    const N: u64 = 30_000;
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(2).set_handle_ctrl_c(false);
    let alerts = fraud_alerts(&env, N).collect();
    env.execute("fraud").unwrap();
    // Per account: a large transaction right after a small one, within the window.
    let mut previous: BTreeMap<u32, (u64, i64)> = BTreeMap::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let t = transaction(i);
        if let Some(&(amount, time)) = previous.get(&t.account) {
            if amount < SMALL_CENTS && t.amount_cents > LARGE_CENTS && t.time_ms - time <= WINDOW_MS
            {
                expected.push(Alert {
                    account: t.account,
                    time_ms: t.time_ms,
                });
            }
        }
        previous.insert(t.account, (t.amount_cents, t.time_ms));
    }
    let mut got = alerts.take();
    got.sort();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}
