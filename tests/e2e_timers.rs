//! End-to-end: a fraud-detection style keyed process function with timers (Flink's
//! walkthrough): a small transaction followed within one minute (event time) by a large
//! one raises an alert; the flag expires by an event-time timer. Checked against a
//! sequential model, at parallelism 3; the final watermark of the bounded input fires
//! every remaining timer. Batches of one record make the source emit a watermark after
//! every record, so when each timer fires is exactly determined.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};

use sluice_api::prelude::*;
use sluice_api::WatermarkStrategy;

const MINUTE: i64 = 60_000;
const SMALL: u64 = 1;
const LARGE: u64 = 500;

/// (account, amount, event time ms)
type Transaction = (u32, u64, i64);

#[derive(Clone, Default)]
struct FraudDetector {
    flag: Option<ValueStateHandle<i64>>,
    expired: Option<ValueStateHandle<u64>>,
}

impl KeyedProcessFunction<u32, Transaction, String> for FraudDetector {
    fn open(&mut self, ctx: &mut OpenContext<'_, u32>) -> UserResult {
        self.flag = Some(ctx.value_state("small-seen-at")?);
        self.expired = Some(ctx.value_state("expired-flags")?);
        Ok(())
    }

    fn process_element(
        &mut self,
        (account, amount, ts): Transaction,
        ctx: &mut KeyedContext<'_, u32>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let flag = self.flag.ok_or("not opened")?;
        if let Some(&seen_at) = ctx.value_state(&flag).value() {
            if ts - seen_at <= MINUTE && amount > LARGE {
                out.collect(format!("alert account={account} at={ts}"));
            }
            ctx.delete_event_time_timer(seen_at + MINUTE);
            ctx.value_state(&flag).clear();
        }
        if amount <= SMALL {
            ctx.value_state(&flag).update(ts);
            ctx.register_event_time_timer(ts + MINUTE);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        time: i64,
        _domain: TimeDomain,
        ctx: &mut KeyedContext<'_, u32>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let flag = self.flag.ok_or("not opened")?;
        let expired = self.expired.ok_or("not opened")?;
        ctx.value_state(&flag).clear();
        *ctx.value_state(&expired).get_or_insert_with(|| 0) += 1;
        out.collect(format!("expired account={} at={time}", ctx.key()));
        Ok(())
    }
}

fn transactions() -> Vec<Transaction> {
    let mut out = Vec::new();
    for i in 0..2_000i64 {
        let account = (i % 13) as u32;
        // Per account, amounts step through small, small, large, medium x 6; event time
        // advances 1 s a record (13 s between an account's records), and every 50th
        // record leaves a gap of 90 s, so some flags expire before the next transaction.
        let amount = match (i * 7 + account as i64) % 9 {
            0 | 1 => SMALL,
            2 => LARGE + 100,
            _ => 50,
        };
        out.push((account, amount, i * 1_000 + (i / 50) * 90_000));
    }
    out
}

/// The same logic, sequentially. A watermark of `previous timestamp - 1` (monotonous
/// timestamps) arrives before each record and fires the timers it passes.
fn model(input: &[Transaction]) -> BTreeSet<String> {
    let mut flags: HashMap<u32, i64> = HashMap::new();
    let mut out = BTreeSet::new();
    let mut watermark = i64::MIN;
    for &(account, amount, ts) in input {
        let mut due: Vec<(i64, u32)> = flags
            .iter()
            .map(|(a, seen)| (seen + MINUTE, *a))
            .filter(|(time, _)| *time <= watermark)
            .collect();
        due.sort_unstable();
        for (time, a) in due {
            flags.remove(&a);
            out.insert(format!("expired account={a} at={time}"));
        }
        if let Some(seen_at) = flags.remove(&account) {
            if ts - seen_at <= MINUTE && amount > LARGE {
                out.insert(format!("alert account={account} at={ts}"));
            }
        }
        if amount <= SMALL {
            flags.insert(account, ts);
        }
        watermark = ts - 1;
    }
    for (a, seen) in flags {
        out.insert(format!("expired account={a} at={}", seen + MINUTE));
    }
    out
}

#[test]
fn alerts_and_expiries_match_the_sequential_model() {
    let input = transactions();
    let expected = model(&input);
    assert!(expected.iter().any(|l| l.starts_with("alert")));
    assert!(expected.iter().any(|l| l.starts_with("expired")));
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(3)
        .set_batch_size(1)
        .set_handle_ctrl_c(false);
    let out = env
        .from_collection(input)
        .set_parallelism(1)
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|(_, _, ts)| *ts),
        )
        .set_parallelism(1)
        .key_by(|(account, _, _)| *account)
        .process(FraudDetector::default())
        .collect();
    env.execute("fraud").unwrap();
    let got: BTreeSet<String> = out.take().into_iter().collect();
    assert_eq!(got, expected);
}
