//! [`SocketTextSource`]: lines of text read from a TCP server (Flink's
//! `socketTextStream`). Non-parallel; ends when the server closes the connection.

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use sluice_core::Records;
use sluice_runtime::source::{Boundedness, Source, SourcePoll, SourceReader};
use sluice_runtime::{OperatorContext, Result};

use crate::error::Error;

const READ_TIMEOUT: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `host:port` and emits each line it receives.
#[derive(Debug, Clone)]
pub struct SocketTextSource {
    host: String,
    port: u16,
}

impl SocketTextSource {
    /// A source reading lines from `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        SocketTextSource {
            host: host.into(),
            port,
        }
    }

    fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn error(&self, source: std::io::Error) -> Error {
        Error::Socket {
            address: self.address(),
            port: self.port,
            source,
        }
    }

    fn connect(&self) -> Result<TcpStream, Error> {
        let addrs = self
            .address()
            .to_socket_addrs()
            .map_err(|e| self.error(e))?;
        let mut last =
            std::io::Error::new(ErrorKind::NotFound, "the host name resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = e,
            }
        }
        Err(self.error(last))
    }
}

struct SocketReader {
    source: SocketTextSource,
    reader: BufReader<TcpStream>,
    partial: Vec<u8>,
}

impl Source<String> for SocketTextSource {
    fn boundedness(&self) -> Boundedness {
        Boundedness::Unbounded
    }

    fn max_parallelism(&self) -> Option<u32> {
        Some(1)
    }

    fn create_reader(&self, _ctx: &OperatorContext) -> Result<Box<dyn SourceReader<String>>> {
        let stream = self.connect()?;
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .map_err(|e| self.error(e))?;
        Ok(Box::new(SocketReader {
            source: self.clone(),
            reader: BufReader::with_capacity(64 * 1024, stream),
            partial: Vec::new(),
        }))
    }
}

impl SocketReader {
    fn emit(&mut self, out: &mut Records<String>) {
        let mut line = std::mem::take(&mut self.partial);
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        // Invalid UTF-8 from a socket is replaced rather than failing the job: a text
        // socket is a debugging source, and the replacement character shows the problem.
        let text = match String::from_utf8(line) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        out.push(text, None);
    }
}

impl SourceReader<String> for SocketReader {
    fn poll(&mut self, out: &mut Records<String>, max_records: usize) -> Result<SourcePoll> {
        while out.len() < max_records {
            match self.reader.read_until(b'\n', &mut self.partial) {
                Ok(0) => {
                    if !self.partial.is_empty() {
                        self.emit(out);
                    }
                    return Ok(SourcePoll::Finished);
                }
                Ok(_) if self.partial.last() == Some(&b'\n') => self.emit(out),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(SourcePoll::Pending);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(self.source.error(e).into()),
            }
            if self.reader.buffer().is_empty() && !out.is_empty() {
                // Nothing more has arrived: hand over (and flush) what we have instead of
                // waiting for a full batch.
                return Ok(SourcePoll::Pending);
            }
        }
        Ok(SourcePoll::Ready)
    }
}
