//! [`CheckpointStorage`]: where checkpoints are written, through the `object_store`
//! abstraction (a local directory by default; in memory for jobs without a directory;
//! S3-style stores later).
//!
//! Layout under the job's prefix (`<directory>/<job name>/`):
//!
//! ```text
//! chk-<id>/op-<operator>-<subtask>.state   postcard of an OperatorSnapshot
//! chk-<id>/_metadata                        JSON CheckpointMetadata, written last
//! ```
//!
//! A checkpoint is complete exactly when its `_metadata` exists (the local store writes a
//! file under a temporary name and renames it). Older checkpoints are deleted only after a
//! newer one completed.

use std::path::Path as FsPath;
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, PutPayload};
use serde::{Deserialize, Serialize};
use sluice_core::{CheckpointId, OperatorId};

use super::{OperatorSnapshot, SubtaskSnapshot};
use crate::error::{Error, Result};

/// One operator subtask's state file in a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    /// The operator (graph node id).
    pub operator: u32,
    /// The subtask that wrote it.
    pub subtask: u32,
    /// Its path under the job's prefix.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
}

/// What a completed checkpoint holds (its `_metadata` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The job's name.
    pub job: String,
    /// The checkpoint's number.
    pub id: u64,
    /// When it was triggered (ms since the Unix epoch).
    pub triggered_at_ms: i64,
    /// Number of key groups of the job.
    pub max_parallelism: u32,
    /// Parallelism of each operator when the checkpoint was taken: (operator, parallelism).
    pub parallelism: Vec<(u32, u32)>,
    /// The state files.
    pub files: Vec<StateFile>,
}

/// Checkpoint storage of one job.
pub struct CheckpointStorage {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    location: String,
    runtime: tokio::runtime::Runtime,
    /// The directory of a local store (its emptied checkpoint directories are removed).
    local_root: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for CheckpointStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStorage")
            .field("location", &self.location)
            .finish()
    }
}

fn storage_error(location: &str, message: impl std::fmt::Display) -> Error {
    Error::Checkpoint {
        location: location.to_string(),
        message: message.to_string(),
    }
}

/// A file-name-safe form of a job name.
fn job_prefix(job: &str) -> String {
    let cleaned: String = job
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() {
        "job".into()
    } else {
        cleaned
    }
}

impl CheckpointStorage {
    fn with_store(store: Arc<dyn ObjectStore>, job: &str, location: String) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| storage_error(&location, format!("cannot start the I/O runtime: {e}")))?;
        Ok(CheckpointStorage {
            store,
            prefix: Path::from(job_prefix(job)),
            location,
            runtime,
            local_root: None,
        })
    }

    /// Checkpoints of `job` under the local directory `dir` (created if missing).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the directory cannot be created or opened.
    pub fn local(dir: &FsPath, job: &str) -> Result<Self> {
        let location = dir.display().to_string();
        std::fs::create_dir_all(dir).map_err(|e| {
            storage_error(
                &location,
                format!("cannot create the checkpoint directory: {e}"),
            )
        })?;
        let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            storage_error(
                &location,
                format!("cannot open the checkpoint directory: {e}"),
            )
        })?;
        let mut storage = Self::with_store(Arc::new(store), job, location)?;
        storage.local_root = Some(dir.to_path_buf());
        Ok(storage)
    }

    /// Checkpoints kept in memory (they do not survive the process).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] if the I/O runtime cannot start.
    pub fn in_memory(job: &str) -> Result<Self> {
        Self::with_store(Arc::new(InMemory::new()), job, "memory".into())
    }

    fn checkpoint_dir(&self, id: CheckpointId) -> Path {
        self.prefix.child(format!("chk-{}", id.0))
    }

    fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        self.runtime
            .block_on(self.store.put(path, PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| storage_error(&self.location, format!("cannot write {path}: {e}")))?;
        self.sync_local(path)
    }

    /// Makes a file written to a local store durable (its data, and its name in the
    /// directory, which the store gave it by a rename), so a completed checkpoint
    /// survives a power loss, not only a process crash.
    fn sync_local(&self, path: &Path) -> Result<()> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let file = root.join(path.as_ref());
        let sync = |p: &FsPath| std::fs::File::open(p).and_then(|f| f.sync_all());
        sync(&file)
            .and_then(|()| match file.parent() {
                Some(dir) => sync(dir),
                None => Ok(()),
            })
            .map_err(|e| storage_error(&self.location, format!("cannot sync {path}: {e}")))
    }

    fn get(&self, path: &Path) -> Result<Vec<u8>> {
        self.runtime
            .block_on(async {
                let result = self.store.get(path).await?;
                result.bytes().await
            })
            .map(|b| b.to_vec())
            .map_err(|e| storage_error(&self.location, format!("cannot read {path}: {e}")))
    }

    /// Writes one operator subtask's snapshot of checkpoint `id`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the write fails.
    pub fn write_state(&self, id: CheckpointId, snapshot: &SubtaskSnapshot) -> Result<StateFile> {
        let path = self.checkpoint_dir(id).child(format!(
            "op-{}-{}.state",
            snapshot.operator.0, snapshot.subtask
        ));
        let bytes = postcard::to_allocvec(&snapshot.state)
            .map_err(|e| storage_error(&self.location, format!("cannot encode state: {e}")))?;
        let size = bytes.len() as u64;
        self.put(&path, bytes)?;
        Ok(StateFile {
            operator: snapshot.operator.0,
            subtask: snapshot.subtask,
            path: path.to_string(),
            bytes: size,
        })
    }

    /// Writes the metadata of checkpoint `meta.id`, which completes it.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the write fails.
    pub fn complete(&self, meta: &CheckpointMetadata) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(meta)
            .map_err(|e| storage_error(&self.location, format!("cannot encode metadata: {e}")))?;
        self.put(
            &self
                .checkpoint_dir(CheckpointId(meta.id))
                .child("_metadata"),
            bytes,
        )
    }

    /// Reads a state file listed in a checkpoint's metadata.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the file is missing or unreadable.
    pub fn read_state(&self, file: &StateFile) -> Result<OperatorSnapshot> {
        let bytes = self.get(&Path::from(file.path.as_str()))?;
        postcard::from_bytes(&bytes).map_err(|e| {
            storage_error(
                &self.location,
                format!("state file {} is corrupt: {e}", file.path),
            )
        })
    }

    /// Ids of the completed checkpoints, oldest first.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the store cannot be listed.
    pub fn completed(&self) -> Result<Vec<CheckpointId>> {
        Ok(self
            .listed()?
            .into_iter()
            .filter(|(_, complete)| *complete)
            .map(|(id, _)| id)
            .collect())
    }

    /// Ids of every checkpoint directory, complete or not (a checkpoint interrupted by
    /// a crash leaves one without metadata), oldest first.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the store cannot be listed.
    pub fn all(&self) -> Result<Vec<CheckpointId>> {
        Ok(self.listed()?.into_iter().map(|(id, _)| id).collect())
    }

    /// Every checkpoint directory with whether it is complete.
    fn listed(&self) -> Result<Vec<(CheckpointId, bool)>> {
        let listing = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&self.prefix)))
            .map_err(|e| storage_error(&self.location, format!("cannot list checkpoints: {e}")))?;
        let mut ids = Vec::new();
        for dir in listing.common_prefixes {
            let Some(id) = dir
                .filename()
                .and_then(|n| n.strip_prefix("chk-"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let metadata = dir.child("_metadata");
            let complete = self.runtime.block_on(self.store.head(&metadata)).is_ok();
            ids.push((CheckpointId(id), complete));
        }
        ids.sort();
        Ok(ids)
    }

    /// The metadata of completed checkpoint `id`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when it cannot be read.
    pub fn metadata(&self, id: CheckpointId) -> Result<CheckpointMetadata> {
        let bytes = self.get(&self.checkpoint_dir(id).child("_metadata"))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            storage_error(
                &self.location,
                format!("metadata of checkpoint {} is corrupt: {e}", id.0),
            )
        })
    }

    /// The latest completed checkpoint, if any.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the store cannot be read.
    pub fn latest(&self) -> Result<Option<CheckpointMetadata>> {
        self.latest_readable(&std::collections::HashSet::new())
    }

    /// The metadata of the latest completed checkpoint not in `skip` whose metadata is
    /// readable (an unreadable one is skipped with a warning: an older retained
    /// checkpoint is better than none).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when the store cannot be listed.
    pub fn latest_readable(
        &self,
        skip: &std::collections::HashSet<u64>,
    ) -> Result<Option<CheckpointMetadata>> {
        for id in self.completed()?.into_iter().rev() {
            if skip.contains(&id.0) {
                continue;
            }
            match self.metadata(id) {
                Ok(meta) => return Ok(Some(meta)),
                Err(e) => {
                    tracing::warn!(checkpoint = id.0, error = %e, "skipping checkpoint {}: its metadata is unreadable", id.0);
                }
            }
        }
        Ok(None)
    }

    /// Deletes every file of checkpoint `id` (complete or not).
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when listing or deleting fails.
    pub fn delete(&self, id: CheckpointId) -> Result<()> {
        let dir = self.checkpoint_dir(id);
        let listing = self
            .runtime
            .block_on(self.store.list_with_delimiter(Some(&dir)))
            .map_err(|e| storage_error(&self.location, format!("cannot list {dir}: {e}")))?;
        // The metadata goes first, so a half-deleted checkpoint is never taken as complete.
        let mut paths: Vec<Path> = listing.objects.into_iter().map(|o| o.location).collect();
        paths.sort_by_key(|p| p.filename() != Some("_metadata"));
        for path in paths {
            self.runtime
                .block_on(self.store.delete(&path))
                .map_err(|e| storage_error(&self.location, format!("cannot delete {path}: {e}")))?;
        }
        if let Some(root) = &self.local_root {
            // The local store leaves the emptied directory behind.
            let _ = std::fs::remove_dir(root.join(dir.as_ref()));
        }
        Ok(())
    }

    /// Where checkpoints go, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }
}

/// The operator id of a state file.
pub(crate) fn operator_of(file: &StateFile) -> OperatorId {
    OperatorId(file.operator)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::ChannelState;

    fn snapshot(op: u32, subtask: u32, bytes: &[u8]) -> SubtaskSnapshot {
        SubtaskSnapshot {
            operator: OperatorId(op),
            subtask,
            state: OperatorSnapshot {
                keyed: vec![(3, bytes.to_vec())],
                operator: Some(vec![subtask as u8]),
                channels: vec![ChannelState {
                    channel: 1,
                    batches: vec![bytes.to_vec()],
                }],
            },
        }
    }

    #[test]
    fn checkpoints_are_complete_only_with_metadata_and_can_be_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = CheckpointStorage::local(dir.path(), "my job/1").unwrap();
        let f1 = storage
            .write_state(CheckpointId(1), &snapshot(0, 0, b"a"))
            .unwrap();
        assert!(storage.completed().unwrap().is_empty(), "no metadata yet");
        let meta = CheckpointMetadata {
            job: "my job/1".into(),
            id: 1,
            triggered_at_ms: 5,
            max_parallelism: 128,
            parallelism: vec![(0, 1)],
            files: vec![f1.clone()],
        };
        storage.complete(&meta).unwrap();
        storage
            .write_state(CheckpointId(2), &snapshot(0, 0, b"b"))
            .unwrap();
        assert_eq!(storage.completed().unwrap(), vec![CheckpointId(1)]);
        assert_eq!(storage.latest().unwrap(), Some(meta));
        assert_eq!(storage.read_state(&f1).unwrap(), snapshot(0, 0, b"a").state);
        // A new storage object over the same directory sees the same checkpoints.
        let again = CheckpointStorage::local(dir.path(), "my job/1").unwrap();
        assert_eq!(again.completed().unwrap(), vec![CheckpointId(1)]);
        again.delete(CheckpointId(1)).unwrap();
        again.delete(CheckpointId(2)).unwrap();
        assert!(again.completed().unwrap().is_empty());
        assert!(storage.read_state(&f1).is_err());
        let memory = CheckpointStorage::in_memory("x").unwrap();
        assert!(memory.latest().unwrap().is_none());
    }
}
