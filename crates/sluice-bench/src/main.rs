//! `sluice-bench`: whole-job throughput benchmarks.
//!
//! ```text
//! cargo run --release -p sluice-bench -- gen-text --lines 2000000 --output /tmp/zipf.txt
//! cargo run --release -p sluice-bench -- wordcount --input /tmp/zipf.txt --parallelism 2
//! cargo run --release -p sluice-bench -- keyed-sum --events 100000000 --keys 100000
//! cargo run --release -p sluice-bench -- grep --input /tmp/zipf.txt --pattern abc
//! cargo run --release -p sluice-bench -- latency --rate 1000000 --seconds 10
//! cargo run --release -p sluice-bench -- recovery --keys 1000000   # checkpoints, restore
//! cargo run --release -p sluice-bench -- kafka --messages 1000000    # against a local broker
//! cargo run --release -p sluice-bench -- --checkpoint-interval-ms 1000 window
//! cargo run --release -p sluice-bench -- micro-state      # state table updates
//! cargo run --release -p sluice-bench -- micro-partition  # hash partitioning
//! cargo run --release -p sluice-bench -- micro-channel    # batches between threads
//! ```
//!
//! Each run ends with one line
//! `RESULT workload=<name> parallelism=<n> events=<n> seconds=<s> events_per_sec=<x>`.

mod exchange;
mod kafka;
mod latency;
mod micro;
mod nexmark;
mod recovery;
mod text;

// mimalloc instead of the system allocator: records are allocated on one thread and freed
// on another, which glibc's malloc handles poorly (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use sluice_api::prelude::*;
use sluice_api::{
    EventTimeSessionWindows, JobConfig, SlidingEventTimeWindows, TumblingEventTimeWindows,
    WatermarkStrategy,
};
use sluice_core::{Clock, SystemClock};

#[derive(Parser, Debug)]
#[command(about = "Sluice whole-job benchmarks")]
struct Cli {
    #[command(subcommand)]
    workload: Workload,
    /// Records per batch on channels.
    #[arg(long, global = true, default_value_t = 1024)]
    batch_size: usize,
    /// Capacity of each channel in batches.
    #[arg(long, global = true, default_value_t = 4)]
    channel_capacity: usize,
    /// Whether idle tasks spin before parking (`true`/`false`); default: when the job
    /// has no more tasks than the machine has cores.
    #[arg(long, global = true)]
    spin: Option<bool>,
    /// Take an exactly-once checkpoint every this many milliseconds.
    #[arg(long, global = true)]
    checkpoint_interval_ms: Option<u64>,
    /// Unaligned checkpoints (with `--checkpoint-interval-ms`).
    #[arg(long, global = true)]
    unaligned: bool,
    /// Write checkpoints to this local directory (default: in memory).
    #[arg(long, global = true)]
    checkpoint_dir: Option<PathBuf>,
}

/// What every workload runs with.
#[derive(Debug, Clone, Default)]
struct Tuning {
    batch_size: usize,
    channel_capacity: usize,
    spin: Option<bool>,
    checkpoint_interval_ms: Option<u64>,
    unaligned: bool,
    checkpoint_dir: Option<PathBuf>,
}

static TUNING: std::sync::OnceLock<Tuning> = std::sync::OnceLock::new();

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// Final counts once, at the end of the input.
    Batch,
    /// An updated count for every word.
    Streaming,
}

#[derive(Subcommand, Debug)]
enum Workload {
    /// Count words of a text file (events = lines).
    Wordcount {
        #[arg(long)]
        input: PathBuf,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
        #[arg(long, value_enum, default_value_t = Mode::Batch)]
        mode: Mode,
    },
    /// Running sum per key of an in-process sequence of (index % keys, index).
    KeyedSum {
        #[arg(long, default_value_t = 100_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
    },
    /// 1-second tumbling event-time windows summing (index % keys, index) per key; event
    /// time = index / 1000 ms (1 M events per event-time second), monotonous watermarks.
    Window {
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
        /// Allowed lateness in ms; above 0 the job runs on the general window operator
        /// (triggers, lateness) instead of the specialised tumbling one.
        #[arg(long, default_value_t = 0)]
        allowed_lateness_ms: u64,
    },
    /// Like `window`, with 10-second windows sliding by 1 second (pane-based).
    Sliding {
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
    },
    /// Session windows with a 1-second gap: like `window`, but event time pauses for 5 s
    /// after every 5 M events, so each key has one session per burst.
    Session {
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
    },
    /// Lines of a text file that contain a pattern (events = lines).
    Grep {
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        pattern: String,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
    },
    /// Source-to-sink latency percentiles at a fixed rate through a keyed running count.
    Latency {
        /// Events per second (over all source subtasks).
        #[arg(long, default_value_t = 1_000_000.0)]
        rate: f64,
        /// Measured seconds (after one second of warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
    },
    /// Running sums over many keys with checkpoints (every second unless
    /// `--checkpoint-interval-ms` says otherwise) and one failure: checkpoint duration
    /// and size, and the time from the failure to processing again.
    Recovery {
        #[arg(long, default_value_t = 100_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1_000_000)]
        keys: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
        /// Index of the event at which the job fails (default: at 60%).
        #[arg(long)]
        fail_at: Option<u64>,
    },
    /// Kafka throughput against a local broker (started here unless `--bootstrap`):
    /// plain-client produce and consume limits, Sluice consume-only and
    /// consume-transform-produce (at-least-once and exactly-once).
    Kafka {
        /// An already running broker; default: start the test broker.
        #[arg(long)]
        bootstrap: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        messages: u64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 100)]
        size: usize,
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        #[arg(long, default_value_t = 2)]
        parallelism: u32,
    },
    /// A Nexmark SQL query (`sql/nexmark/qN.sql`) on the built-in generator.
    Nexmark {
        /// Query name: q0, q1, q2, ...
        #[arg(long, default_value = "q0")]
        query: String,
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1)]
        parallelism: u32,
        /// Read the events from CSV files in this directory (written there first, from
        /// the generator, when missing) instead of generating them in the job.
        #[arg(long)]
        csv: Option<PathBuf>,
    },
    /// Micro: increments in a key-group state table, with and without prefetching.
    MicroState {
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        #[arg(long, default_value_t = 100_000)]
        keys: u64,
    },
    /// Micro: hash partitioning of batches into channels (one thread).
    MicroPartition {
        #[arg(long, default_value_t = 50_000_000)]
        events: u64,
        #[arg(long, default_value_t = 4)]
        channels: usize,
    },
    /// Records through one remote channel between two processes (the cluster's data plane).
    Exchange {
        #[arg(long, default_value_t = 100_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1024)]
        batch: usize,
    },
    /// The receiving process of `exchange` (started by it).
    #[command(hide = true)]
    ExchangeReceive,
    /// Micro: batches through one channel between two threads.
    MicroChannel {
        #[arg(long, default_value_t = 200_000_000)]
        events: u64,
        #[arg(long, default_value_t = 1024)]
        batch: usize,
    },
    /// Writes a text of Zipf-distributed words (the wordcount input).
    GenText {
        #[arg(long, default_value_t = 2_000_000)]
        lines: u64,
        #[arg(long)]
        output: PathBuf,
        /// Number of distinct words.
        #[arg(long, default_value_t = 100_000)]
        vocabulary: usize,
    },
}

/// Prints a progress line to stderr every second until dropped.
struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(label: String, counter: Option<Arc<AtomicU64>>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let d = Arc::clone(&done);
        let thread = std::thread::spawn(move || {
            let clock = SystemClock;
            let start = clock.monotonic_nanos();
            let mut ticks = 0u64;
            while !d.load(Ordering::Relaxed) {
                clock.sleep(Duration::from_millis(100));
                ticks += 1;
                if ticks % 10 == 0 {
                    let secs = (clock.monotonic_nanos() - start) as f64 / 1e9;
                    match &counter {
                        Some(c) => eprintln!(
                            "  {label}: {:.0} s, {} records out",
                            secs,
                            c.load(Ordering::Relaxed)
                        ),
                        None => eprintln!("  {label}: {secs:.0} s"),
                    }
                }
            }
        });
        Progress {
            done,
            thread: Some(thread),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The checkpoint configuration of the command line, if it asks for checkpoints.
fn checkpoint_config(tuning: &Tuning) -> Option<sluice_api::CheckpointConfig> {
    tuning.checkpoint_interval_ms.map(|ms| {
        let mut config = sluice_api::CheckpointConfig::every(Duration::from_millis(ms));
        config.unaligned = tuning.unaligned;
        config.directory = tuning.checkpoint_dir.clone();
        // A benchmark measures a run of its own, not the resumption of an earlier one.
        config.resume = false;
        config
    })
}

fn env_with(parallelism: u32) -> StreamExecutionEnvironment {
    let tuning = TUNING.get().cloned().unwrap_or_default();
    let config = JobConfig {
        spin_before_park: tuning.spin,
        checkpointing: checkpoint_config(&tuning),
        ..JobConfig::default()
    };
    let env = StreamExecutionEnvironment::with_config(config);
    env.set_parallelism(parallelism)
        .set_batch_size(tuning.batch_size.max(1))
        .set_channel_capacity(tuning.channel_capacity.max(1));
    env
}

fn report(workload: &str, parallelism: u32, events: u64, result: &JobResult, extra: &str) {
    let seconds = result.duration.as_secs_f64();
    let checkpoints = if result.checkpoints.is_empty() && result.checkpoints_aborted == 0 {
        String::new()
    } else {
        format!(
            " checkpoints={} checkpoints_aborted={}{}",
            result.checkpoints.len(),
            result.checkpoints_aborted,
            recovery::summarize(&result.checkpoint_stats)
        )
    };
    println!(
        "RESULT workload={workload} parallelism={parallelism} events={events} seconds={seconds:.3} events_per_sec={:.0}{extra}{checkpoints}",
        events as f64 / seconds
    );
}

fn count_lines_and_words(path: &Path) -> anyhow::Result<(u64, u64)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let (mut lines, mut words) = (0u64, 0u64);
    for line in BufReader::new(file).lines() {
        let line = line?;
        lines += 1;
        words += line.split_whitespace().count() as u64;
    }
    Ok((lines, words))
}

fn wordcount(input: &Path, parallelism: u32, mode: Mode) -> anyhow::Result<()> {
    let (lines, words) = count_lines_and_words(input)?;
    eprintln!("wordcount: {lines} lines, {words} words, parallelism {parallelism}, {mode:?} mode");
    let env = env_with(parallelism);
    env.set_runtime_mode(match mode {
        Mode::Batch => RuntimeMode::Batch,
        Mode::Streaming => RuntimeMode::Streaming,
    });
    let sink = env
        .read_text_file(input)
        .flat_map(|line: String| {
            line.split_whitespace()
                .map(|w| (w.to_string(), 1u64))
                .collect::<Vec<_>>()
        })
        .key_by_ref(|(w, _): &(String, u64)| w)
        .sum(|(_, n)| n)
        .discard();
    let _progress = Progress::start("wordcount".into(), Some(sink.counter()));
    let result = env.execute("bench-wordcount")?;
    report(
        "wordcount",
        parallelism,
        lines,
        &result,
        &format!(
            " words={words} words_per_sec={:.0} outputs={}",
            words as f64 / result.duration.as_secs_f64(),
            sink.count()
        ),
    );
    Ok(())
}

fn keyed_sum(events: u64, keys: u64, parallelism: u32) -> anyhow::Result<()> {
    eprintln!("keyed-sum: {events} events, {keys} keys, parallelism {parallelism}");
    let env = env_with(parallelism);
    let keys = keys.max(1);
    let sink = env
        .generate(events, move |i| (i % keys, i))
        .key_by(|(k, _)| *k)
        .sum(|(_, v)| v)
        .discard();
    let _progress = Progress::start("keyed-sum".into(), Some(sink.counter()));
    let result = env.execute("bench-keyed-sum")?;
    anyhow::ensure!(
        sink.count() == events,
        "expected {events} outputs, got {}",
        sink.count()
    );
    report(
        "keyed-sum",
        parallelism,
        events,
        &result,
        &format!(" keys={keys}"),
    );
    Ok(())
}

fn window(
    events: u64,
    keys: u64,
    parallelism: u32,
    sliding: bool,
    lateness_ms: u64,
) -> anyhow::Result<()> {
    let name = match (sliding, lateness_ms) {
        (true, _) => "sliding",
        (false, 0) => "window",
        (false, _) => "window-general",
    };
    eprintln!("{name}: {events} events, {keys} keys, parallelism {parallelism}");
    let env = env_with(parallelism);
    let keyed = env
        .generate(events, move |i| (i % keys, i))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|(_, i)| (*i / 1000) as i64),
        )
        .key_by(|(k, _)| *k);
    let windowed = if sliding {
        keyed.window(SlidingEventTimeWindows::of(
            Duration::from_secs(10),
            Duration::from_secs(1),
        ))
    } else {
        keyed.window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
    }
    .allowed_lateness(Duration::from_millis(lateness_ms));
    let sink = windowed.reduce(|a, b| (a.0, a.1 + b.1)).discard();
    let _progress = Progress::start(name.into(), Some(sink.counter()));
    let result = env.execute("bench-window")?;
    let seconds = (events / 1000).div_ceil(1000).max(1);
    let windows = if sliding { seconds + 9 } else { seconds };
    let expected = if events == 0 {
        0
    } else {
        keys.min(events) * windows
    };
    report(
        name,
        parallelism,
        events,
        &result,
        &format!(
            " keys={keys} results={} expected_results~={expected}",
            sink.count()
        ),
    );
    Ok(())
}

fn session(events: u64, keys: u64, parallelism: u32) -> anyhow::Result<()> {
    const BURST: u64 = 5_000_000;
    eprintln!("session: {events} events, {keys} keys, 1 s gap, bursts of {BURST}, parallelism {parallelism}");
    let env = env_with(parallelism);
    let sink = env
        .generate(events, move |i| (i % keys, i))
        .assign_timestamps_and_watermarks(
            WatermarkStrategy::for_monotonous_timestamps()
                .with_timestamp_assigner(|(_, i)| (*i / 1000 + (*i / BURST) * 5_000) as i64),
        )
        .key_by(|(k, _)| *k)
        .window(EventTimeSessionWindows::with_gap(Duration::from_secs(1)))
        .reduce(|a, b| (a.0, a.1 + b.1))
        .discard();
    let _progress = Progress::start("session".into(), Some(sink.counter()));
    let result = env.execute("bench-session")?;
    let expected = keys.min(events) * events.div_ceil(BURST);
    report(
        "session",
        parallelism,
        events,
        &result,
        &format!(
            " keys={keys} results={} expected_results~={expected}",
            sink.count()
        ),
    );
    Ok(())
}

fn grep(input: &Path, pattern: String, parallelism: u32) -> anyhow::Result<()> {
    let (lines, _) = count_lines_and_words(input)?;
    eprintln!("grep: {lines} lines, pattern {pattern:?}, parallelism {parallelism}");
    let env = env_with(parallelism);
    let sink = env
        .read_text_file(input)
        .filter(move |line: &String| line.contains(pattern.as_str()))
        .discard();
    let _progress = Progress::start("grep".into(), Some(sink.counter()));
    let result = env.execute("bench-grep")?;
    report(
        "grep",
        parallelism,
        lines,
        &result,
        &format!(" matches={}", sink.count()),
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let _ = TUNING.set(Tuning {
        batch_size: cli.batch_size,
        channel_capacity: cli.channel_capacity,
        spin: cli.spin,
        checkpoint_interval_ms: cli.checkpoint_interval_ms,
        unaligned: cli.unaligned,
        checkpoint_dir: cli.checkpoint_dir.clone(),
    });
    match cli.workload {
        Workload::Wordcount {
            input,
            parallelism,
            mode,
        } => wordcount(&input, parallelism, mode),
        Workload::KeyedSum {
            events,
            keys,
            parallelism,
        } => keyed_sum(events, keys, parallelism),
        Workload::Grep {
            input,
            pattern,
            parallelism,
        } => grep(&input, pattern, parallelism),
        Workload::Window {
            events,
            keys,
            parallelism,
            allowed_lateness_ms,
        } => window(events, keys.max(1), parallelism, false, allowed_lateness_ms),
        Workload::Sliding {
            events,
            keys,
            parallelism,
        } => window(events, keys.max(1), parallelism, true, 0),
        Workload::Session {
            events,
            keys,
            parallelism,
        } => session(events, keys.max(1), parallelism),
        Workload::Latency {
            rate,
            seconds,
            keys,
            parallelism,
        } => latency::latency(
            &env_with(parallelism),
            rate,
            seconds.max(1),
            keys,
            parallelism,
        ),
        Workload::Recovery {
            events,
            keys,
            parallelism,
            fail_at,
        } => {
            let mut tuning = TUNING.get().cloned().unwrap_or_default();
            tuning.checkpoint_interval_ms = tuning.checkpoint_interval_ms.or(Some(1000));
            let mut checkpoints = checkpoint_config(&tuning)
                .ok_or_else(|| anyhow::anyhow!("recovery needs checkpoints"))?;
            checkpoints.restart = recovery::restart_at_once();
            let env = env_with(parallelism);
            env.set_checkpointing(checkpoints);
            recovery::recovery(
                &env,
                events,
                keys.max(1),
                parallelism,
                fail_at.unwrap_or(events / 10 * 6),
            )
        }
        Workload::Kafka {
            bootstrap,
            messages,
            size,
            partitions,
            parallelism,
        } => kafka::kafka(bootstrap, messages, size, partitions.max(1), parallelism),
        Workload::Nexmark {
            query,
            events,
            parallelism,
            csv,
        } => nexmark::nexmark(&query, events, parallelism, csv),
        Workload::MicroState { events, keys } => micro::state(events, keys.max(1)),
        Workload::MicroPartition { events, channels } => micro::partition(events, channels.max(1)),
        Workload::MicroChannel { events, batch } => micro::channel(events, batch.max(1)),
        Workload::Exchange { events, batch } => exchange::exchange(events, batch.max(1)),
        Workload::ExchangeReceive => exchange::receive(),
        Workload::GenText {
            lines,
            output,
            vocabulary,
        } => text::generate(&output, lines, vocabulary),
    }
}
