//! Test-only helpers shared by Sluice's tests.
//!
//! - **[`pipeline`]**: random pipelines of map/filter/flat_map/key_by/reduce stages that can
//!   be built on the engine and evaluated by a sequential reference model.
//! - **[`seed`]**: the seed of randomized tests, printed and replayable with
//!   `SLUICE_TEST_SEED`.
//! - **[`sink`]**: [`sink::TimedCollectSink`], records with timestamps and watermarks per subtask.
//! - **[`watchdog`]**: aborts a test that hangs instead of letting CI stall.
//! - **[`harness`]**: [`harness::OperatorHarness`], one operator driven by scripted events.
//! - **[`memory`]**: the resident memory of this process, for boundedness tests.
//! - **[`files`]**: the lines a transactional file sink committed.
//! - **[`examples`]**: the example binaries, for tests that run jobs as processes.
//! - **[`broker`]**: a real Kafka-protocol broker on 127.0.0.1, installed on first use.
//!
//! What it is *not*: part of any shipped binary.

pub mod broker;
pub mod examples;
pub mod files;
pub mod harness;
pub mod memory;
pub mod pipeline;
pub mod seed;
pub mod sink;
pub mod watchdog;
