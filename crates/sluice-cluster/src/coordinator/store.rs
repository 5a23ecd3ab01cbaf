//! The coordinator's persisted jobs: one JSON file per job under `<state dir>/jobs/`,
//! rewritten on every status change, so a restarted coordinator resumes the jobs that had
//! not ended (from their latest checkpoint, which the checkpoint storage holds).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{JobInfo, JobSubmission};

/// One persisted job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoredJob {
    pub(crate) submission: JobSubmission,
    pub(crate) info: JobInfo,
}

/// The directory of persisted jobs.
#[derive(Debug, Clone)]
pub(crate) struct JobStore {
    dir: PathBuf,
}

fn state_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl JobStore {
    /// The store under `state_dir`, created when missing.
    pub(crate) fn open(state_dir: &Path) -> Result<Self> {
        let dir = state_dir.join("jobs");
        std::fs::create_dir_all(&dir).map_err(|e| state_error(&dir, e))?;
        Ok(JobStore { dir })
    }

    /// Writes `job` (atomically: a temporary file renamed over the old one).
    pub(crate) fn save(&self, job: &StoredJob) -> Result<()> {
        let path = self.dir.join(format!("job-{}.json", job.info.id));
        let tmp = self.dir.join(format!(".job-{}.json.tmp", job.info.id));
        let text = serde_json::to_string_pretty(job).map_err(|e| state_error(&path, e))?;
        std::fs::write(&tmp, text).map_err(|e| state_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| state_error(&path, e))
    }

    /// Every persisted job, by id.
    pub(crate) fn load(&self) -> Result<Vec<StoredJob>> {
        let mut jobs = Vec::new();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| state_error(&self.dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| state_error(&self.dir, e))?.path();
            let is_job = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("job-") && n.ends_with(".json"));
            if !is_job {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| state_error(&path, e))?;
            let job: StoredJob = serde_json::from_str(&text).map_err(|e| state_error(&path, e))?;
            jobs.push(job);
        }
        jobs.sort_by_key(|j| j.info.id);
        Ok(jobs)
    }
}
