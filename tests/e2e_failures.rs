//! End-to-end: failing user code fails the job with a clear message naming the operator
//! and subtask, and `execute` returns instead of hanging, even when other tasks are
//! blocked by back-pressure or read an unbounded source.

// Test helpers may panic on unexpected values: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sluice_api::connectors::GeneratorSource;
use sluice_api::prelude::*;
use sluice_api::runtime::ErrorKind;
use sluice_api::StreamExecutionEnvironment;
use sluice_testkit::watchdog::Watchdog;
use std::time::Duration;

fn env(parallelism: u32) -> StreamExecutionEnvironment {
    let env = StreamExecutionEnvironment::new();
    env.set_parallelism(parallelism).set_handle_ctrl_c(false);
    env
}

#[test]
fn a_panicking_map_fails_the_job_naming_operator_and_subtask() {
    let env = env(2);
    env.from_sequence(0, 100_000)
        .rebalance()
        .map(|x| {
            if x == 77_777 {
                panic!("cannot handle record {x}");
            }
            x
        })
        .name("Fragile Map")
        .discard();
    let err = env.execute("panic").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("operator `Fragile Map` (subtask "),
        "{message}"
    );
    assert!(
        message.ends_with("/2) panicked: cannot handle record 77777"),
        "{message}"
    );
    assert_eq!(err.kind(), ErrorKind::User);
}

#[test]
fn a_failure_downstream_of_an_unbounded_source_does_not_hang() {
    let _watchdog = Watchdog::start(
        "a_failure_downstream_of_an_unbounded_source_does_not_hang",
        Duration::from_secs(60),
    );
    let env = env(2);
    env.set_batch_size(64).set_channel_capacity(1);
    env.add_source("Endless", GeneratorSource::unbounded(|i| i))
        .key_by(|x| x % 10)
        .map(|x| {
            assert!(x < 50_000, "record {x} is too large");
            x
        })
        .discard();
    let err = env.execute("unbounded-failure").unwrap_err().to_string();
    assert!(err.contains("panicked: record"), "{err}");
    assert!(err.contains("is too large"), "{err}");
}

#[derive(Clone)]
struct RejectNegative;

impl KeyedProcessFunction<bool, i64, i64> for RejectNegative {
    fn process_element(
        &mut self,
        value: i64,
        _ctx: &mut KeyedContext<'_, bool>,
        out: &mut ProcessOutput<'_, i64>,
    ) -> UserResult {
        if value < 0 {
            return Err(format!("negative amount {value}").into());
        }
        out.collect(value);
        Ok(())
    }
}

#[test]
fn a_process_function_error_fails_the_job_with_its_message() {
    let env = env(1);
    env.from_collection(vec![5i64, 3, -4, 8])
        .key_by(|v| *v > 0)
        .process(RejectNegative)
        .discard();
    let err = env.execute("error").unwrap_err().to_string();
    assert_eq!(
        err,
        "operator `Keyed Process` (subtask 1/1) failed: negative amount -4"
    );
}

#[test]
fn a_panicking_sink_is_named() {
    let env = env(1);
    env.from_sequence(1, 10).add_sink(
        "Exploding",
        sluice_api::connectors::PrintSink::new(|x: &u64| {
            if *x == 5 {
                panic!("sink refused {x}")
            }
            String::new()
        }),
    );
    let err = env.execute("sink").unwrap_err().to_string();
    assert_eq!(
        err,
        "operator `Sink: Exploding` (subtask 1/1) panicked: sink refused 5"
    );
}

#[test]
fn invalid_jobs_are_rejected_before_running_with_what_to_change() {
    let env1 = env(1);
    env1.socket_text_stream("127.0.0.1", 9)
        .set_parallelism(2)
        .discard();
    let err = env1.execute("socket").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::User);
    assert!(matches!(err, sluice_api::Error::InvalidJob(_)), "{err}");
    let err = err.to_string();
    assert!(err.contains("supports parallelism up to 1"), "{err}");

    let env2 = env(1);
    env2.set_runtime_mode(RuntimeMode::Batch);
    env2.add_source("Endless", GeneratorSource::unbounded(|i| i))
        .discard();
    let err = env2.execute("batch").unwrap_err().to_string();
    assert!(
        err.contains("unbounded, but the job runs in batch mode"),
        "{err}"
    );

    let env3 = env(1);
    env3.from_sequence(0, 1)
        .map(|x| x)
        .set_parallelism(0)
        .discard();
    let err = env3.execute("zero").unwrap_err().to_string();
    assert!(err.contains("`Map` has parallelism 0"), "{err}");

    let env4 = env(2);
    env4.from_sequence(0, 1)
        .forward()
        .map(|x| x)
        .set_parallelism(3)
        .discard();
    let err = env4.execute("forward").unwrap_err().to_string();
    assert!(err.contains("needs equal parallelism"), "{err}");

    let config = sluice_api::JobConfig {
        batch_size: 0,
        ..sluice_api::JobConfig::default()
    };
    let env6 = StreamExecutionEnvironment::with_config(config);
    env6.set_handle_ctrl_c(false);
    env6.from_sequence(0, 1).discard();
    let err = env6.execute("zero-batch").unwrap_err().to_string();
    assert!(err.contains("batch size (0)"), "{err}");

    let env5 = env(200);
    env5.from_sequence(0, 1).discard();
    let err = env5.execute("too-parallel").unwrap_err().to_string();
    assert!(err.contains("above the maximum parallelism 128"), "{err}");
}

#[test]
fn an_unreachable_socket_names_the_address_and_how_to_fix_it() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = env(1);
    env.socket_text_stream("127.0.0.1", port).discard();
    let err = env.execute("socket").unwrap_err().to_string();
    assert!(err.contains(&format!("socket `127.0.0.1:{port}`")), "{err}");
    assert!(err.contains(&format!("nc -lk {port}")), "{err}");
}
