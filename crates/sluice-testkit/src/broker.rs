//! A real Kafka-protocol broker on 127.0.0.1 for tests: [`KafkaBroker`].
//!
//! The broker is `noida-db` (PyPI, MIT), the one installable here that passes Kafka's
//! transaction semantics (see `docs/design/kafka.md`). The first test that needs it
//! installs it with pip into a virtual environment under the workspace's `target`
//! directory (`target/kafka-broker`), so `cargo test` needs nothing but Python; set
//! `SLUICE_KAFKA_BROKER` to the path of a `noida-db` binary to use another one. Each
//! broker gets a free port and a fresh data directory, and is killed when dropped; its
//! output is kept in a log file whose path every error names.

use std::fs::OpenOptions;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sluice_core::{Clock, SystemClock};

/// The broker version tests run against.
pub const NOIDA_VERSION: &str = "0.2.3";

/// A broker process listening on 127.0.0.1.
#[derive(Debug)]
pub struct KafkaBroker {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
}

fn other(message: String) -> io::Error {
    io::Error::other(message)
}

/// The workspace's target directory (where the broker is installed once).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    }
}

/// Installs `noida-db` into `venv` unless it is there; serialized between test
/// processes by a lock file.
fn install(venv: &Path) -> io::Result<PathBuf> {
    let binary = venv.join("bin").join("noida-db");
    if binary.exists() {
        return Ok(binary);
    }
    std::fs::create_dir_all(venv.parent().unwrap_or(venv))?;
    let lock = venv.with_extension("lock");
    let clock = SystemClock;
    let deadline = clock.monotonic_nanos() + 300_000_000_000;
    // Another test process may be installing: wait for its lock to go.
    loop {
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if binary.exists() {
                    return Ok(binary);
                }
                if clock.monotonic_nanos() > deadline {
                    return Err(other(format!(
                        "waited 5 minutes for another process to install the Kafka broker; delete {} if no install is running",
                        lock.display()
                    )));
                }
                clock.sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
    let result = (|| {
        eprintln!(
            "installing the test Kafka broker (noida-db {NOIDA_VERSION}) into {}",
            venv.display()
        );
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let status = Command::new(&python)
            .args(["-m", "venv"])
            .arg(venv)
            .status()
            .map_err(|e| other(format!("cannot run `{python} -m venv`: {e}; install Python 3 (apt-get install python3 python3-venv)")))?;
        if !status.success() {
            return Err(other(format!(
                "`{python} -m venv {}` failed; install python3-venv",
                venv.display()
            )));
        }
        let status = Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", &format!("noida-db=={NOIDA_VERSION}")])
            .status()
            .map_err(|e| other(format!("cannot run pip: {e}")))?;
        if !status.success() || !binary.exists() {
            return Err(other(format!(
                "pip could not install noida-db {NOIDA_VERSION} into {}; check access to PyPI",
                venv.display()
            )));
        }
        Ok(binary.clone())
    })();
    let _ = std::fs::remove_file(&lock);
    result
}

/// The broker binary: `SLUICE_KAFKA_BROKER`, or the one installed under `target`.
fn binary() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SLUICE_KAFKA_BROKER") {
        return Ok(PathBuf::from(path));
    }
    let venv = target_dir().join("kafka-broker");
    let script = install(&venv)?;
    Ok(native_binary(&venv).unwrap_or(script))
}

/// The broker's native executable inside the package (`lib/python3.*/site-packages/
/// noida_db/noida-db`): the `bin/noida-db` script starts it as a child, which killing the
/// script would leave running, so the broker runs it directly.
fn native_binary(venv: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|e| {
            e.path()
                .join("site-packages")
                .join("noida_db")
                .join("noida-db")
        })
        .find(|p| p.is_file())
}

fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl KafkaBroker {
    /// Starts a broker on a free port of 127.0.0.1 and waits until it accepts
    /// connections.
    ///
    /// # Errors
    /// When the broker cannot be installed or started; the message says why and where
    /// its log is.
    pub fn start() -> io::Result<Self> {
        let binary = binary()?;
        let data = tempfile::Builder::new().prefix("sluice-kafka-").tempdir()?;
        let log_path = data.path().join("broker.log");
        let log = std::fs::File::create(&log_path)?;
        let port = free_port()?;
        let child = Command::new(&binary)
            .args([
                "start",
                "--only",
                "kafka",
                "--host",
                "127.0.0.1",
                "--kafka-port",
            ])
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| other(format!("cannot start {}: {e}", binary.display())))?;
        let mut broker = KafkaBroker { child, port, data };
        let clock = SystemClock;
        let deadline = clock.monotonic_nanos() + 20_000_000_000;
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(broker);
            }
            if let Ok(Some(status)) = broker.child.try_wait() {
                return Err(other(format!(
                    "the Kafka broker exited ({status}) before listening; its log: {}",
                    broker.log()
                )));
            }
            if clock.monotonic_nanos() > deadline {
                return Err(other(format!(
                    "the Kafka broker did not listen on port {port} within 20 s; its log: {}",
                    broker.log()
                )));
            }
            clock.sleep(Duration::from_millis(50));
        }
    }

    /// `127.0.0.1:<port>`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Writes `(key, value)` records to `topic` with a plain producer and waits until
    /// the broker acknowledged them.
    ///
    /// # Errors
    /// When the producer cannot be created or a record is not delivered.
    pub fn produce(&self, topic: &str, records: &[(Option<String>, String)]) -> io::Result<()> {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .create()
            .map_err(|e| other(format!("cannot create a producer: {e}")))?;
        for (key, value) in records {
            let mut record = BaseRecord::to(topic).payload(value.as_bytes());
            if let Some(k) = key {
                record = record.key(k.as_bytes());
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                }
            }
        }
        producer
            .flush(Duration::from_secs(60))
            .map_err(|e| other(format!("records for `{topic}` not delivered: {e}")))
    }

    /// The values of every partition of `topic` (`0..partitions`) as a plain
    /// `read_committed` consumer sees them, sorted: reads until `expected` values
    /// arrived (or 60 s passed), then half a second more so that extra ones show.
    ///
    /// # Errors
    /// When the consumer cannot be created or assigned.
    pub fn read_committed(
        &self,
        topic: &str,
        partitions: i32,
        expected: usize,
    ) -> io::Result<Vec<String>> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "sluice-test-checker")
            .set("isolation.level", "read_committed")
            .set("receive.message.max.bytes", "2000000000")
            .create()
            .map_err(|e| other(format!("cannot create a consumer: {e}")))?;
        let mut tpl = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
                .map_err(|e| other(e.to_string()))?;
        }
        consumer.assign(&tpl).map_err(|e| other(e.to_string()))?;
        let clock = SystemClock;
        let mut values = Vec::new();
        let mut poll_until = |deadline: u64, stop_at: Option<usize>| {
            while clock.monotonic_nanos() < deadline && stop_at.is_none_or(|n| values.len() < n) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    values.push(
                        String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                    );
                }
            }
        };
        poll_until(clock.monotonic_nanos() + 60_000_000_000, Some(expected));
        poll_until(clock.monotonic_nanos() + 500_000_000, None);
        values.sort();
        Ok(values)
    }

    /// What the broker printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("broker.log")).unwrap_or_default()
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
