//! Stock prices: four generated price streams merged into one; per symbol, rolling
//! min/max/mean over 10 s windows every 5 s, price-change warnings when a price moves
//! more than 5 % (a delta trigger on a global window with a 10 s time evictor), and the
//! number of warnings per symbol every 30 s.
//!
//! ```text
//! cargo run --release --example stock_prices -- [--ticks N] [--parallelism P]
//! ```

use clap::Parser;
use sluice_api::connectors::PrintSink;
use sluice_api::prelude::*;
use sluice_examples::stocks::{stock_prices, PriceStats, PriceWarning};

#[derive(Parser, Debug)]
#[command(about = "Rolling statistics and price warnings over generated stock prices")]
struct Args {
    /// Ticks per symbol (one every 100 ms of event time).
    #[arg(long, default_value_t = 1_800)]
    ticks: u64,
    /// Parallelism of the windowed operators; default: the number of cores.
    #[arg(long)]
    parallelism: Option<u32>,
}

fn main() -> anyhow::Result<()> {
    sluice_examples::init_logging();
    let args = Args::parse();
    let env = StreamExecutionEnvironment::new();
    if let Some(p) = args.parallelism {
        env.set_parallelism(p);
    }
    let streams = stock_prices(&env, args.ticks);
    streams
        .stats
        .add_sink(
            "Stats",
            PrintSink::new(|s: &PriceStats| {
                format!(
                    "stats    {:<5} [{:>6.1}s, +10s)  min {:>8.2}  max {:>8.2}  mean {:>8.2}",
                    s.symbol,
                    s.window_start as f64 / 1e3,
                    s.min,
                    s.max,
                    s.mean
                )
            }),
        )
        .set_parallelism(1);
    streams
        .warnings
        .add_sink(
            "Warnings",
            PrintSink::new(|w: &PriceWarning| {
                format!(
                    "WARNING  {:<5} price moved more than 5 % to {:.2} ({} prices in the last 10 s)",
                    w.symbol, w.price, w.recent
                )
            }),
        )
        .set_parallelism(1);
    streams
        .warning_counts
        .add_sink(
            "Warning counts",
            PrintSink::new(|(symbol, start, n): &(String, i64, u64)| {
                format!(
                    "count    {symbol:<5} [{:>6.1}s, +30s)  {n} warnings",
                    *start as f64 / 1e3
                )
            }),
        )
        .set_parallelism(1);
    let result = env.execute("stock prices")?;
    eprintln!("done in {:.3} s", result.duration.as_secs_f64());
    Ok(())
}
