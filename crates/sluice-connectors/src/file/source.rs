//! [`TextFileSource`]: lines of text files, read in parallel by byte-range splits.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use sluice_core::{CheckpointId, Records};
use sluice_runtime::source::{
    encode_position, restored_position, Boundedness, Source, SourcePoll, SourceReader,
};
use sluice_runtime::{OperatorContext, Result};

use super::split::{list_files, plan_splits, FileSplit};
use crate::error::Error;

const READ_BUFFER_BYTES: usize = 1024 * 1024;

/// Reads the lines (without line terminators) of a file, or of every file of a directory.
///
/// The files are listed and cut into splits once, by the first subtask that starts; every
/// subtask then takes its share of that one plan, so a file that appears or grows while
/// subtasks start cannot make two subtasks disagree on split boundaries.
#[derive(Debug)]
pub struct TextFileSource {
    path: PathBuf,
    /// The split plan and the parallelism it was made for.
    plan: Mutex<Option<(u32, Arc<Vec<FileSplit>>)>>,
    /// Whether each file is one split (read whole, in order, by one subtask).
    whole_files: bool,
}

impl TextFileSource {
    /// A source over `path`, a file or a directory.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        TextFileSource {
            path: path.into(),
            plan: Mutex::new(None),
            whole_files: false,
        }
    }

    /// Reads every file as one split, from start to end by one subtask, instead of cutting
    /// large files into byte ranges: for files whose line order matters (a changelog).
    /// Files are taken in name order, numbers compared by value (`part-0-2` before
    /// `part-0-10`).
    #[must_use]
    pub fn whole_files(mut self) -> Self {
        self.whole_files = true;
        self
    }

    fn splits(&self, parallelism: u32) -> Result<Arc<Vec<FileSplit>>, Error> {
        let mut plan = self.plan.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((p, splits)) = plan.as_ref() {
            if *p == parallelism {
                return Ok(Arc::clone(splits));
            }
        }
        let files = list_files(&self.path)?;
        let splits = if self.whole_files {
            files
                .into_iter()
                .filter(|(_, len)| *len > 0)
                .map(|(path, len)| FileSplit {
                    path,
                    start: 0,
                    end: len,
                })
                .collect()
        } else {
            plan_splits(&files, parallelism)
        };
        let splits = Arc::new(splits);
        *plan = Some((parallelism, Arc::clone(&splits)));
        Ok(splits)
    }
}

impl Source<String> for TextFileSource {
    fn boundedness(&self) -> Boundedness {
        Boundedness::Bounded
    }

    fn create_reader(&self, ctx: &OperatorContext) -> Result<Box<dyn SourceReader<String>>> {
        let (i, p) = (ctx.location.subtask as usize, ctx.location.parallelism);
        let splits: VecDeque<FileSplit> = self
            .splits(p)?
            .iter()
            .enumerate()
            .filter(|(k, _)| k % p as usize == i)
            .map(|(_, s)| s.clone())
            .collect();
        let mut reader = TextFileReader {
            splits,
            current: None,
            done: 0,
        };
        // After a restore: skip the splits read completely, resume inside the current one.
        if let Some(position) = restored_position(ctx, 2)? {
            let (done, offset) = (position[0], position[1]);
            for _ in 0..done {
                reader.splits.pop_front();
            }
            reader.done = done;
            if offset != u64::MAX {
                if let Some(split) = reader.splits.pop_front() {
                    reader.current = Some(OpenSplit::open_at(split, offset)?);
                }
            }
        }
        Ok(Box::new(reader))
    }
}

struct OpenSplit {
    split: FileSplit,
    reader: BufReader<File>,
    /// Byte offset of the next line to read.
    position: u64,
    line_len_hint: usize,
}

struct TextFileReader {
    splits: VecDeque<FileSplit>,
    current: Option<OpenSplit>,
    /// Splits of this subtask read completely (the position in checkpoints).
    done: u64,
}

fn read_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl OpenSplit {
    fn open(split: FileSplit) -> Result<Self, Error> {
        let file = File::open(&split.path).map_err(|e| read_error(&split.path, e))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        let mut position = split.start;
        if split.start > 0 {
            // The line that straddles the split start belongs to the previous split:
            // skip to the first line that starts at or after `start`.
            reader
                .seek(SeekFrom::Start(split.start - 1))
                .map_err(|e| read_error(&split.path, e))?;
            let mut skipped = Vec::new();
            let n = reader
                .read_until(b'\n', &mut skipped)
                .map_err(|e| read_error(&split.path, e))?;
            position = split.start - 1 + n as u64;
        }
        Ok(OpenSplit {
            split,
            reader,
            position,
            line_len_hint: 64,
        })
    }

    /// Reads the next line of the split, or `None` when the split is done.
    /// Opens `split` at `position`, the start of a line (a restored position).
    fn open_at(split: FileSplit, position: u64) -> Result<Self, Error> {
        let file = File::open(&split.path).map_err(|e| read_error(&split.path, e))?;
        let mut reader = BufReader::with_capacity(READ_BUFFER_BYTES, file);
        reader
            .seek(SeekFrom::Start(position))
            .map_err(|e| read_error(&split.path, e))?;
        Ok(OpenSplit {
            split,
            reader,
            position,
            line_len_hint: 64,
        })
    }

    fn next_line(&mut self) -> Result<Option<String>, Error> {
        if self.position >= self.split.end {
            return Ok(None);
        }
        let mut line = Vec::with_capacity(self.line_len_hint);
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| read_error(&self.split.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        let offset = self.position;
        self.position += n as u64;
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        self.line_len_hint = line.len() + 16;
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| Error::InvalidUtf8 {
                path: self.split.path.clone(),
                offset,
            })
    }
}

impl SourceReader<String> for TextFileReader {
    fn poll(&mut self, out: &mut Records<String>, max_records: usize) -> Result<SourcePoll> {
        while out.len() < max_records {
            let current = match &mut self.current {
                Some(c) => c,
                None => match self.splits.pop_front() {
                    Some(split) => self.current.insert(OpenSplit::open(split)?),
                    None => return Ok(SourcePoll::Finished),
                },
            };
            match current.next_line()? {
                Some(line) => out.push(line, None),
                None => {
                    self.current = None;
                    self.done += 1;
                }
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn snapshot_position(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let offset = self.current.as_ref().map_or(u64::MAX, |c| c.position);
        Ok(Some(encode_position(&[self.done, offset])))
    }
}
