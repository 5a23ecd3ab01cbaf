//! Operator tests of keyed process functions: the context they see (key, timestamp,
//! watermark, processing time from the job's clock) and their errors.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use sluice_api::runtime::operators::{KeySelector, KeyedProcessOperator};
use sluice_api::{
    EventTime, KeyedContext, KeyedProcessFunction, ProcessOutput, Records, RuntimeMode, UserResult,
};
use sluice_core::StreamEvent;
use sluice_testkit::harness::OperatorHarness;

#[derive(Clone)]
struct Describe;

impl KeyedProcessFunction<u64, u64, String> for Describe {
    fn process_element(
        &mut self,
        value: u64,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        if value == 13 {
            return Err("unlucky".into());
        }
        out.collect(format!(
            "key={} value={} ts={:?} wm={} now={}",
            ctx.key(),
            value,
            ctx.timestamp().map(EventTime::millis),
            ctx.current_watermark().0.millis(),
            ctx.current_processing_time()
        ));
        Ok(())
    }
}

type Op = KeyedProcessOperator<u64, u64, String, Describe>;

fn harness() -> OperatorHarness<Op> {
    OperatorHarness::new(RuntimeMode::Streaming, |ctx| {
        let key_of = KeySelector::Owned(Arc::new(|v: &u64| v % 10));
        Ok(KeyedProcessOperator::new(ctx, key_of, Describe))
    })
    .unwrap()
}

fn lines(events: Vec<StreamEvent<Records<String>>>) -> Vec<String> {
    events
        .into_iter()
        .flat_map(|e| match e {
            StreamEvent::Data(b) => b.into_values(),
            StreamEvent::Watermark(w) => vec![format!("wm {}", w.0.millis())],
            other => vec![format!("{other:?}")],
        })
        .collect()
}

#[test]
fn the_context_shows_key_timestamp_watermark_and_processing_time() {
    let mut h = harness();
    h.push(Records::with_timestamps(vec![21], vec![EventTime(500)]))
        .unwrap();
    h.watermark(400).unwrap();
    h.clock().advance(Duration::from_millis(250));
    h.push(Records::from(vec![7])).unwrap();
    assert_eq!(
        lines(h.take_output()),
        vec![
            "key=1 value=21 ts=Some(500) wm=-9223372036854775808 now=0",
            "wm 400",
            "key=7 value=7 ts=None wm=400 now=250",
        ]
    );
}

#[test]
fn a_function_error_is_attributed_to_the_operator() {
    let mut h = harness();
    let err = h.push(Records::from(vec![13])).unwrap_err().to_string();
    assert_eq!(err, "operator `Harnessed` (subtask 1/1) failed: unlucky");
}

/// Counts records per key in a value state with a 1 s time-to-live: a key that was
/// quiet for a second starts again from zero.
#[derive(Clone, Default)]
struct ExpiringCount {
    count: Option<sluice_api::ValueStateHandle<u64>>,
}

impl KeyedProcessFunction<u64, u64, String> for ExpiringCount {
    fn open(&mut self, ctx: &mut sluice_api::OpenContext<'_, u64>) -> UserResult {
        let h = ctx.value_state("count")?;
        ctx.enable_ttl(&h, sluice_api::StateTtlConfig::new(Duration::from_secs(1)));
        self.count = Some(h);
        Ok(())
    }

    fn process_element(
        &mut self,
        value: u64,
        ctx: &mut KeyedContext<'_, u64>,
        out: &mut ProcessOutput<'_, String>,
    ) -> UserResult {
        let h = self.count.ok_or("not opened")?;
        let mut state = ctx.value_state(&h);
        let n = state.get_or_insert_with(|| 0);
        *n += 1;
        out.collect(format!("{value}:{n}"));
        Ok(())
    }
}

#[test]
fn state_with_ttl_expires_by_the_job_clock() {
    let mut h = OperatorHarness::new(RuntimeMode::Streaming, |ctx| {
        let key_of = KeySelector::Owned(Arc::new(|v: &u64| v % 10));
        Ok(KeyedProcessOperator::new(
            ctx,
            key_of,
            ExpiringCount::default(),
        ))
    })
    .unwrap();
    h.push(Records::from(vec![1, 11, 2])).unwrap();
    h.clock().advance(Duration::from_millis(999));
    h.push(Records::from(vec![21])).unwrap();
    h.clock().advance(Duration::from_millis(1));
    // Key 1 was written at 999 ms: alive. Key 2 was written at 0: expired at 1 000 ms.
    h.push(Records::from(vec![31, 12])).unwrap();
    h.clock().advance(Duration::from_secs(5));
    h.tick().unwrap();
    h.push(Records::from(vec![41])).unwrap();
    assert_eq!(
        lines(h.take_output()),
        vec!["1:1", "11:2", "2:1", "21:3", "31:4", "12:1", "41:1"]
    );
}
