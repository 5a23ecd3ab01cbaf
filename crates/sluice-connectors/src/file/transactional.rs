//! [`TransactionalFileSink`]: exactly-once text output through two-phase commit on
//! checkpoints (Flink's `FileSink` in row format).
//!
//! Each subtask writes lines into a hidden in-progress file
//! (`.part-<subtask>-<n>.inprogress`). When a checkpoint barrier arrives the file is flushed
//! to disk and closed (pre-commit) and its number goes into the checkpoint; when the
//! checkpoint completes the file is renamed to `part-<subtask>-<n>` (commit), atomically.
//! After a failure the subtask restores its list of pre-committed files, commits them
//! (renaming is idempotent), and deletes its other in-progress files: they hold records
//! after the checkpoint, which the restored job writes again. So the committed files hold
//! every record exactly once. At the end of a bounded input the last file is committed
//! directly (a restore after that deletes the files committed after its checkpoint, which
//! the restored run writes again); a stopped job leaves it in progress for the resumed run.
//! Without checkpoints the sink writes its files at the end of the input.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::{CheckpointId, Records};
use sluice_runtime::sink::{Sink, SinkWriter};
use sluice_runtime::source::{encode_position, restored_position};
use sluice_runtime::{OperatorContext, Result};

use crate::error::Error;

/// Writes `format(record)` as one line per record into part files under a directory,
/// committed exactly once on checkpoints.
pub struct TransactionalFileSink<T> {
    dir: PathBuf,
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
}

impl<T> std::fmt::Debug for TransactionalFileSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalFileSink")
            .field("dir", &self.dir)
            .finish()
    }
}

impl<T> TransactionalFileSink<T> {
    /// A sink writing part files under `dir`, each record formatted by `format`.
    pub fn new(
        dir: impl Into<PathBuf>,
        format: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        TransactionalFileSink {
            dir: dir.into(),
            format: Arc::new(format),
        }
    }
}

/// The committed files under `dir`, in name order.
pub fn committed_parts(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut parts: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-"))
        })
        .collect();
    parts.sort();
    Ok(parts)
}

struct TransactionalFileWriter<T> {
    dir: PathBuf,
    subtask: u32,
    format: Arc<dyn Fn(&T) -> String + Send + Sync>,
    /// The open in-progress file and its number.
    current: Option<(u64, BufWriter<File>)>,
    next_file: u64,
    /// Pre-committed files: (checkpoint, file number).
    pending: Vec<(u64, u64)>,
}

fn io_error(path: &Path, source: std::io::Error) -> sluice_runtime::Error {
    Error::Write {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

impl<T> TransactionalFileWriter<T> {
    fn in_progress(&self, n: u64) -> PathBuf {
        self.dir
            .join(format!(".part-{}-{n}.inprogress", self.subtask))
    }

    fn committed(&self, n: u64) -> PathBuf {
        self.dir.join(format!("part-{}-{n}", self.subtask))
    }

    /// Flushes and closes the open file; returns its number.
    fn close_current(&mut self) -> Result<Option<u64>> {
        let Some((n, mut out)) = self.current.take() else {
            return Ok(None);
        };
        let path = self.in_progress(n);
        out.flush().map_err(|e| io_error(&path, e))?;
        out.get_ref().sync_all().map_err(|e| io_error(&path, e))?;
        Ok(Some(n))
    }

    /// Makes file `n` visible under its final name (a no-op if it already is).
    fn commit(&self, n: u64) -> Result<()> {
        let from = self.in_progress(n);
        let to = self.committed(n);
        if to.exists() && !from.exists() {
            return Ok(());
        }
        fs::rename(&from, &to).map_err(|e| io_error(&from, e))
    }

    /// The highest number of this subtask's committed files.
    fn highest_committed(&self) -> Result<Option<u64>> {
        let prefix = format!("part-{}-", self.subtask);
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        Ok(entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|name| name.strip_prefix(&prefix))
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .max())
    }

    /// Deletes this subtask's committed files numbered `first` or higher.
    fn remove_committed_from(&self, first: u64) -> Result<()> {
        let prefix = format!("part-{}-", self.subtask);
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(n) = name
                .to_str()
                .and_then(|name| name.strip_prefix(&prefix))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if n >= first {
                fs::remove_file(entry.path()).map_err(|e| io_error(&entry.path(), e))?;
            }
        }
        Ok(())
    }

    /// Deletes this subtask's in-progress files except those still pending.
    fn abort_leftovers(&self) -> Result<()> {
        let prefix = format!(".part-{}-", self.subtask);
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(n) = name
                .strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".inprogress"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if !self.pending.iter().any(|(_, p)| *p == n) {
                fs::remove_file(entry.path()).map_err(|e| io_error(&entry.path(), e))?;
            }
        }
        Ok(())
    }
}

impl<T: Send + 'static> Sink<T> for TransactionalFileSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        Ok(Box::new(TransactionalFileWriter {
            dir: self.dir.clone(),
            subtask: ctx.location.subtask,
            format: Arc::clone(&self.format),
            current: None,
            next_file: 0,
            pending: Vec::new(),
        }))
    }
}

impl<T: Send + 'static> SinkWriter<T> for TransactionalFileWriter<T> {
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        // Restored state: [next file, number of pending files, (checkpoint, file)...].
        let stored = ctx
            .restored
            .as_ref()
            .and_then(|r| r.operator.as_ref())
            .map(|b| b.len() / 8)
            .unwrap_or(0);
        if stored >= 2 {
            let values = restored_position(ctx, stored)?.unwrap_or_default();
            self.next_file = values.first().copied().unwrap_or(0);
            let pending: Vec<(u64, u64)> =
                values[2..].chunks_exact(2).map(|c| (c[0], c[1])).collect();
            // Everything pre-committed in the restored checkpoint belongs to it: commit.
            self.pending = pending;
            for &(_, n) in &self.pending.clone() {
                self.commit(n)?;
            }
            self.pending.clear();
            // Files numbered from `next_file` on were made final after the checkpoint (at
            // the end of the input): the restored run writes their records again.
            self.remove_committed_from(self.next_file)?;
        } else {
            // A fresh start next to files of an earlier run: add to them, never overwrite.
            self.next_file = self.highest_committed()?.map_or(0, |n| n + 1);
        }
        self.abort_leftovers()
    }

    fn write(&mut self, batch: Records<T>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.current.is_none() {
            let n = self.next_file;
            self.next_file += 1;
            let path = self.in_progress(n);
            let file = File::create(&path).map_err(|e| io_error(&path, e))?;
            self.current = Some((n, BufWriter::new(file)));
        }
        let (n, out) = match self.current.as_mut() {
            Some((n, out)) => (*n, out),
            None => return Ok(()),
        };
        for value in batch.values() {
            let line = (self.format)(value);
            out.write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| {
                    io_error(
                        &self
                            .dir
                            .join(format!(".part-{}-{n}.inprogress", self.subtask)),
                        e,
                    )
                })?;
        }
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        if let Some(n) = self.close_current()? {
            self.pending.push((checkpoint.0, n));
        }
        let mut values = vec![self.next_file, self.pending.len() as u64];
        for &(cp, n) in &self.pending {
            values.extend([cp, n]);
        }
        Ok(Some(encode_position(&values)))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        let (done, waiting): (Vec<_>, Vec<_>) =
            self.pending.iter().partition(|(cp, _)| *cp <= checkpoint.0);
        for (_, n) in done {
            self.commit(n)?;
        }
        self.pending = waiting;
        Ok(())
    }

    fn stop(&mut self) -> Result<()> {
        // Stopped with checkpoints: the open file stays in progress; a resumed run deletes
        // it and writes its records again, and commits what its checkpoint lists.
        self.close_current()?;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // The input is complete: what is pending and the last file are final.
        if let Some(n) = self.close_current()? {
            self.pending.push((u64::MAX, n));
        }
        for (_, n) in std::mem::take(&mut self.pending) {
            self.commit(n)?;
        }
        Ok(())
    }
}
