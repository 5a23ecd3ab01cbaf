//! Fraud detection (after Flink's fraud detection walkthrough): a small transaction
//! followed within a minute by a large one on the same account raises an alert. A keyed
//! process function keeps a flag per account and clears it with an event-time timer.

use serde::{Deserialize, Serialize};
use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;

/// A card transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    /// Account id.
    pub account: u32,
    /// Amount in cents.
    pub amount_cents: u64,
    /// Event time, ms.
    pub time_ms: i64,
}

/// An alert: the account and the large transaction's time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Alert {
    /// Account id.
    pub account: u32,
    /// Time of the large transaction, ms.
    pub time_ms: i64,
}

/// Below this a transaction is "small" (a card test).
pub const SMALL_CENTS: u64 = 100;
/// Above this a transaction is "large".
pub const LARGE_CENTS: u64 = 50_000;
/// How long after a small transaction a large one is suspicious.
pub const WINDOW_MS: i64 = 60_000;

/// The detector: per account, whether a small transaction was seen in the last minute.
#[derive(Debug, Clone, Default)]
pub struct FraudDetector {
    flag: Option<ValueStateHandle<i64>>,
}

impl KeyedProcessFunction<u32, Transaction, Alert> for FraudDetector {
    fn open(&mut self, ctx: &mut OpenContext<'_, u32>) -> UserResult {
        // The flag holds the time its timer fires at.
        self.flag = Some(ctx.value_state("small-transaction-seen")?);
        Ok(())
    }

    fn process_element(
        &mut self,
        tx: Transaction,
        ctx: &mut KeyedContext<'_, u32>,
        out: &mut ProcessOutput<'_, Alert>,
    ) -> UserResult {
        let flag = self.flag.ok_or("the detector was not opened")?;
        if let Some(&timer) = ctx.value_state(&flag).value() {
            // The timer clears the flag once the watermark passes it; comparing event
            // times keeps the result exact whatever the watermark's pace.
            if tx.amount_cents > LARGE_CENTS && tx.time_ms <= timer {
                out.collect(Alert {
                    account: tx.account,
                    time_ms: tx.time_ms,
                });
            }
            // Any transaction after the small one ends the pattern.
            ctx.value_state(&flag).clear();
            ctx.delete_event_time_timer(timer);
        }
        if tx.amount_cents < SMALL_CENTS {
            let timer = tx.time_ms + WINDOW_MS;
            ctx.value_state(&flag).update(timer);
            ctx.register_event_time_timer(timer);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u32>,
        _out: &mut ProcessOutput<'_, Alert>,
    ) -> UserResult {
        let flag = self.flag.ok_or("the detector was not opened")?;
        ctx.value_state(&flag).clear();
        Ok(())
    }
}

/// The `i`-th generated transaction: mostly ordinary amounts, some card tests and some
/// large purchases, over 50 accounts, one transaction every 500 ms.
pub fn transaction(i: u64) -> Transaction {
    // splitmix64: well-mixed bits from the index.
    let mut h = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    h ^= h >> 31;
    let amount_cents = match h % 20 {
        0 | 1 => 1 + h % 99,
        2 => 60_000 + h % 100_000,
        _ => 1_000 + h % 20_000,
    };
    Transaction {
        account: ((h >> 32) % 50) as u32,
        amount_cents,
        time_ms: i as i64 * 500,
    }
}

/// The alerts for `count` generated transactions.
pub fn fraud_alerts(env: &StreamExecutionEnvironment, count: u64) -> DataStream<Alert> {
    // Timestamps are assigned in the source, so each account's transactions reach the
    // detector in order (a separate timestamp operator with more subtasks would deal them
    // round robin and mix up their order).
    env.from_source(
        "Transactions",
        GeneratorSource::bounded(count, transaction),
        WatermarkStrategy::for_monotonous_timestamps()
            .with_timestamp_assigner(|t: &Transaction| t.time_ms),
    )
    .set_parallelism(1)
    .key_by(|t: &Transaction| t.account)
    .process(FraudDetector::default())
    .name("Fraud Detector")
}
