//! Sluice connectors: where records come from and where they go.
//!
//! - **[`collection`]**: [`CollectionSource`] (an in-memory vector, split over subtasks)
//!   and [`CollectSink`] (gathers results in memory, for tests).
//! - **[`generator`]**: [`GeneratorSource`], records computed from their index (sequences,
//!   benchmark data), bounded or not, optionally rate limited.
//! - **[`file`](mod@file)**: [`TextFileSource`] (lines of files, split by byte ranges over
//!   subtasks) and [`TextFileSink`].
//! - **[`socket`]**: [`SocketTextSource`], lines from a TCP server.
//! - **[`stdout`]**: [`PrintSink`].
//! - **[`discard`]**: [`DiscardSink`], counts and drops.
//! - **[`kafka`]**: [`KafkaSource`] and [`KafkaSink`], topics read and written with
//!   offsets in checkpoints.
//! - **[`nexmark`]**: [`NexmarkSource`] and [`NexmarkGenerator`], the Nexmark benchmark's
//!   persons, auctions and bids (a port of Flink's generator), configured by
//!   [`NexmarkConfig`] with Flink's option keys.
//!
//! Each source implements [`sluice_runtime::source::Source`], each sink
//! [`sluice_runtime::sink::Sink`]. Errors say which file or address failed and how to fix it.
//!
//! ```
//! use sluice_connectors::GeneratorSource;
//! let squares = GeneratorSource::bounded(10, |i| i * i);
//! # let _ = squares;
//! ```

pub mod collection;
pub mod discard;
pub mod error;
pub mod file;
pub mod generator;
pub mod kafka;
pub mod nexmark;
pub mod socket;
pub mod stdout;

pub use collection::{CollectSink, CollectionSource};
pub use discard::DiscardSink;
pub use error::Error;
pub use file::{
    committed_partition_parts, committed_parts, TextFileSink, TextFileSource, TransactionalFileSink,
};
pub use generator::{GeneratorSource, SplitGeneratorSource};
pub use kafka::{KafkaProperties, KafkaRecord, KafkaSink, KafkaSource};
pub use nexmark::{NexmarkConfig, NexmarkGenerator, NexmarkSource};
pub use socket::SocketTextSource;
pub use stdout::PrintSink;
