//! Fraud detection: a small transaction (under $1) followed within a minute by a large
//! one (over $500) on the same account raises an alert. A keyed process function keeps a
//! flag per account in keyed state and clears it with an event-time timer.
//!
//! ```text
//! cargo run --release --example fraud_detection -- [--transactions N]
//! ```

use clap::Parser;
use sluice_api::connectors::PrintSink;
use sluice_api::prelude::*;
use sluice_examples::fraud::{fraud_alerts, Alert};

#[derive(Parser, Debug)]
#[command(about = "Flag card-testing patterns in generated transactions")]
struct Args {
    /// Number of generated transactions (one every 500 ms of event time).
    #[arg(long, default_value_t = 20_000)]
    transactions: u64,
}

fn main() -> anyhow::Result<()> {
    sluice_examples::init_logging();
    let args = Args::parse();
    let env = StreamExecutionEnvironment::new();
    fraud_alerts(&env, args.transactions)
        .add_sink(
            "Alerts",
            PrintSink::new(|a: &Alert| {
                format!(
                    "ALERT account {:>2}: large transaction at {:.1} s right after a card test",
                    a.account,
                    a.time_ms as f64 / 1e3
                )
            }),
        )
        .set_parallelism(1);
    let result = env.execute("fraud detection")?;
    eprintln!("done in {:.3} s", result.duration.as_secs_f64());
    Ok(())
}
