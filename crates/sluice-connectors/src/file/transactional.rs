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
//!
//! A partitioned sink ([`TransactionalFileSink::partitioned`]) writes each record into the
//! subdirectory its partition names (`dt=2024-01-31/hm=12%3A00`), one open file per
//! partition; file numbers are unique per subtask across partitions, so the checkpointed
//! state stays a list of numbers and a restore finds each file by walking the directory.

use std::collections::{BTreeMap, HashMap};
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
    partition: Option<Partitioner<T>>,
}

/// The partition directory of a record, relative to the sink's directory.
type Partitioner<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

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
            partition: None,
        }
    }

    /// A sink writing part files under `dir/<partition(record)>`, each record formatted by
    /// `format`; `partition` gives a relative path (`a=1/b=x`).
    pub fn partitioned(
        dir: impl Into<PathBuf>,
        format: impl Fn(&T) -> String + Send + Sync + 'static,
        partition: impl Fn(&T) -> String + Send + Sync + 'static,
    ) -> Self {
        TransactionalFileSink {
            dir: dir.into(),
            format: Arc::new(format),
            partition: Some(Arc::new(partition)),
        }
    }
}

/// The committed files under `dir` and its partition subdirectories, with their
/// partition path relative to `dir` (empty for files directly in `dir`), in path order.
pub fn committed_partition_parts(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (relative, name, path) in walk(dir)? {
        if name.starts_with("part-") {
            out.push((relative, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Every file under `dir`, recursively: (directory relative to `dir`, file name, path).
fn walk(dir: &Path) -> std::io::Result<Vec<(String, String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), dir.to_path_buf())];
    while let Some((relative, d)) = stack.pop() {
        for entry in fs::read_dir(&d)?.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let sub = if relative.is_empty() {
                    name
                } else {
                    format!("{relative}/{name}")
                };
                stack.push((sub, path));
            } else {
                out.push((relative.clone(), name, path));
            }
        }
    }
    Ok(out)
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
    partition: Option<Partitioner<T>>,
    /// The open in-progress files, by partition ("" without partitions), and numbers.
    current: BTreeMap<String, (u64, BufWriter<File>)>,
    /// The partition of each file this writer knows, by number.
    partitions: HashMap<u64, String>,
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

/// What a file name says: `part-<subtask>-<n>` or `.part-<subtask>-<n>.inprogress`.
fn parse_name(name: &str, subtask: u32) -> Option<(bool, u64)> {
    if let Some(rest) = name.strip_prefix(&format!("part-{subtask}-")) {
        return rest.parse().ok().map(|n| (false, n));
    }
    name.strip_prefix(&format!(".part-{subtask}-"))
        .and_then(|rest| rest.strip_suffix(".inprogress"))
        .and_then(|n| n.parse().ok())
        .map(|n| (true, n))
}

/// One of a subtask's files on disk.
struct PartFile {
    partition: String,
    in_progress: bool,
    n: u64,
    path: PathBuf,
}

impl<T> TransactionalFileWriter<T> {
    fn partition_dir(&self, partition: &str) -> PathBuf {
        if partition.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(partition)
        }
    }

    fn in_progress(&self, partition: &str, n: u64) -> PathBuf {
        self.partition_dir(partition)
            .join(format!(".part-{}-{n}.inprogress", self.subtask))
    }

    fn committed(&self, partition: &str, n: u64) -> PathBuf {
        self.partition_dir(partition)
            .join(format!("part-{}-{n}", self.subtask))
    }

    /// This subtask's files, committed and in progress, in every partition.
    fn files(&self) -> Result<Vec<PartFile>> {
        let entries = if self.partition.is_some() {
            walk(&self.dir).map_err(|e| io_error(&self.dir, e))?
        } else {
            fs::read_dir(&self.dir)
                .map_err(|e| io_error(&self.dir, e))?
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    Some((String::new(), name, e.path()))
                })
                .collect()
        };
        Ok(entries
            .into_iter()
            .filter_map(|(partition, name, path)| {
                let (in_progress, n) = parse_name(&name, self.subtask)?;
                Some(PartFile {
                    partition,
                    in_progress,
                    n,
                    path,
                })
            })
            .collect())
    }

    /// Flushes and closes the open files; returns their numbers.
    fn close_current(&mut self) -> Result<Vec<u64>> {
        let mut closed = Vec::new();
        for (partition, (n, mut out)) in std::mem::take(&mut self.current) {
            let path = self.in_progress(&partition, n);
            out.flush().map_err(|e| io_error(&path, e))?;
            out.get_ref().sync_all().map_err(|e| io_error(&path, e))?;
            closed.push(n);
        }
        Ok(closed)
    }

    /// Makes file `n` visible under its final name (a no-op if it already is).
    fn commit(&mut self, n: u64) -> Result<()> {
        let partition = match self.partitions.get(&n) {
            Some(p) => p.clone(),
            None => match self.files()?.into_iter().find(|f| f.n == n) {
                Some(f) => f.partition,
                // Neither in progress nor committed: nothing to commit.
                None => return Ok(()),
            },
        };
        let from = self.in_progress(&partition, n);
        let to = self.committed(&partition, n);
        self.partitions.remove(&n);
        if to.exists() && !from.exists() {
            return Ok(());
        }
        fs::rename(&from, &to).map_err(|e| io_error(&from, e))
    }

    /// The highest number of this subtask's files, committed or in progress.
    fn highest_file(&self) -> Result<Option<u64>> {
        Ok(self.files()?.iter().map(|f| f.n).max())
    }

    /// Deletes this subtask's committed files numbered `first` or higher.
    fn remove_committed_from(&self, first: u64) -> Result<()> {
        for f in self.files()? {
            if !f.in_progress && f.n >= first {
                fs::remove_file(&f.path).map_err(|e| io_error(&f.path, e))?;
            }
        }
        Ok(())
    }

    /// Deletes this subtask's in-progress files except those still pending.
    fn abort_leftovers(&self) -> Result<()> {
        for f in self.files()? {
            if f.in_progress && !self.pending.iter().any(|(_, p)| *p == f.n) {
                fs::remove_file(&f.path).map_err(|e| io_error(&f.path, e))?;
            }
        }
        Ok(())
    }

    /// The open file of `partition`, created when missing.
    fn open_file(&mut self, partition: &str) -> Result<&mut (u64, BufWriter<File>)> {
        if !self.current.contains_key(partition) {
            let n = self.next_file;
            self.next_file += 1;
            let dir = self.partition_dir(partition);
            fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            let path = self.in_progress(partition, n);
            let file = File::create(&path).map_err(|e| io_error(&path, e))?;
            self.partitions.insert(n, partition.to_string());
            self.current
                .insert(partition.to_string(), (n, BufWriter::new(file)));
        }
        self.current
            .get_mut(partition)
            .ok_or_else(|| io_error(&self.dir, std::io::Error::other("file vanished")))
    }
}

impl<T: Send + 'static> Sink<T> for TransactionalFileSink<T> {
    fn create_writer(&self, ctx: &OperatorContext) -> Result<Box<dyn SinkWriter<T>>> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        Ok(Box::new(TransactionalFileWriter {
            dir: self.dir.clone(),
            subtask: ctx.location.subtask,
            format: Arc::clone(&self.format),
            partition: self.partition.clone(),
            current: BTreeMap::new(),
            partitions: HashMap::new(),
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
            self.next_file = self.highest_file()?.map_or(0, |n| n + 1);
        }
        self.abort_leftovers()
    }

    fn write(&mut self, batch: Records<T>) -> Result<()> {
        for value in batch.values() {
            let partition = match &self.partition {
                Some(p) => p(value),
                None => String::new(),
            };
            let line = (self.format)(value);
            let (n, out) = self.open_file(&partition)?;
            let n = *n;
            let written = out
                .write_all(line.as_bytes())
                .and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                return Err(io_error(&self.in_progress(&partition, n), e));
            }
        }
        Ok(())
    }

    fn snapshot_state(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        for n in self.close_current()? {
            self.pending.push((checkpoint.0, n));
        }
        let mut values = vec![self.next_file, self.pending.len() as u64];
        for &(cp, n) in &self.pending {
            values.extend([cp, n]);
        }
        Ok(Some(encode_position(&values)))
    }

    fn notify_checkpoint_complete(&mut self, checkpoint: CheckpointId) -> Result<()> {
        let (done, waiting): (Vec<_>, Vec<_>) = self
            .pending
            .iter()
            .copied()
            .partition(|(cp, _)| *cp <= checkpoint.0);
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
        // The input is complete: what is pending and the last files are final.
        for n in self.close_current()? {
            self.pending.push((u64::MAX, n));
        }
        for (_, n) in std::mem::take(&mut self.pending) {
            self.commit(n)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::{KeyGroupRange, OperatorId};
    use sluice_runtime::checkpoint::RestoredState;
    use sluice_runtime::{RuntimeMode, TaskLocation};

    fn ctx(restored: Option<Vec<u8>>) -> OperatorContext {
        OperatorContext {
            location: TaskLocation {
                operator: "sink".into(),
                subtask: 0,
                parallelism: 1,
            },
            max_parallelism: 128,
            key_group_range: KeyGroupRange::for_subtask(128, 1, 0),
            runtime_mode: RuntimeMode::Streaming,
            batch_size: 16,
            clock: Arc::new(sluice_core::time::SystemClock),
            metrics: Arc::default(),
            operator_id: OperatorId(0),
            restored: restored.map(|operator| {
                Arc::new(RestoredState {
                    checkpoint: Some(CheckpointId(1)),
                    operator: Some(operator),
                    ..RestoredState::default()
                })
            }),
            snapshots: None,
        }
    }

    fn records(values: &[(&str, &str)]) -> Records<(String, String)> {
        Records::from(
            values
                .iter()
                .map(|(p, l)| (p.to_string(), l.to_string()))
                .collect::<Vec<_>>(),
        )
    }

    fn lines(dir: &Path) -> Vec<(String, String)> {
        committed_partition_parts(dir)
            .unwrap()
            .into_iter()
            .flat_map(|(p, path)| {
                fs::read_to_string(path)
                    .unwrap()
                    .lines()
                    .map(|l| (p.clone(), l.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_restore_commits_the_pre_committed_files_of_every_partition() {
        let dir = tempfile::tempdir().unwrap();
        let sink = TransactionalFileSink::partitioned(
            dir.path(),
            |r: &(String, String)| r.1.clone(),
            |r: &(String, String)| r.0.clone(),
        );
        let fresh = ctx(None);
        let mut writer = sink.create_writer(&fresh).unwrap();
        writer.open(&fresh).unwrap();
        writer
            .write(records(&[("p=a", "1"), ("p=b/q=x", "2"), ("p=a", "3")]))
            .unwrap();
        let state = writer.snapshot_state(CheckpointId(1)).unwrap().unwrap();
        // After the checkpoint, then a crash before it is confirmed.
        writer
            .write(records(&[("p=a", "4"), ("p=c", "5")]))
            .unwrap();
        drop(writer);
        assert!(
            lines(dir.path()).is_empty(),
            "nothing is visible before the commit"
        );

        let restored = ctx(Some(state));
        let mut writer = sink.create_writer(&restored).unwrap();
        writer.open(&restored).unwrap();
        let mut got = lines(dir.path());
        got.sort();
        let expected: Vec<(String, String)> = [("p=a", "1"), ("p=a", "3"), ("p=b/q=x", "2")]
            .iter()
            .map(|(p, l)| (p.to_string(), l.to_string()))
            .collect();
        assert_eq!(got, expected);
        let leftovers: Vec<_> = walk(dir.path())
            .unwrap()
            .into_iter()
            .filter(|(_, name, _)| name.ends_with(".inprogress"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
