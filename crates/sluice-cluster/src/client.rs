//! Cluster clients: what `sluice submit`, `list`, `cancel` and `savepoint` call.
//!
//! Each call opens a connection to the coordinator, makes one request and returns; they
//! block the calling thread (a small runtime runs the request).

use std::future::Future;

use crate::error::{Error, Result};
use crate::job::{JobInfo, JobSubmission};
use crate::rpc::messages::{Empty, JobRequest, SavepointRequest, SubmitRequest};
use crate::worker::connect;

fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start a client runtime: {e}")))?
        .block_on(future)
}

fn rpc(addr: &str) -> impl Fn(tonic::Status) -> Error + '_ {
    move |status| Error::Rpc {
        addr: addr.to_string(),
        message: status.message().to_string(),
    }
}

/// Submits a job; returns its id.
///
/// # Errors
/// [`Error::Rpc`] when the coordinator is unreachable or refuses the job.
pub fn submit(coordinator: &str, submission: &JobSubmission) -> Result<u64> {
    let submission_json = serde_json::to_string(submission)
        .map_err(|e| Error::Internal(format!("cannot encode the submission: {e}")))?;
    block_on(async {
        let mut client = connect(coordinator).await?;
        let r = client
            .submit_job(SubmitRequest { submission_json })
            .await
            .map_err(rpc(coordinator))?;
        Ok(r.into_inner().job_id)
    })
}

/// The cluster's jobs.
///
/// # Errors
/// [`Error::Rpc`] when the coordinator is unreachable.
pub fn list(coordinator: &str) -> Result<Vec<JobInfo>> {
    block_on(async {
        let mut client = connect(coordinator).await?;
        let r = client.list_jobs(Empty {}).await.map_err(rpc(coordinator))?;
        serde_json::from_str(&r.into_inner().jobs_json).map_err(|e| Error::Rpc {
            addr: coordinator.to_string(),
            message: format!("unreadable job list: {e}"),
        })
    })
}

/// Cancels job `id`.
///
/// # Errors
/// [`Error::Rpc`] when the coordinator is unreachable or does not know the job.
pub fn cancel(coordinator: &str, id: u64) -> Result<()> {
    block_on(async {
        let mut client = connect(coordinator).await?;
        client
            .cancel_job(JobRequest { job_id: id })
            .await
            .map_err(rpc(coordinator))?;
        Ok(())
    })
}

/// Takes a savepoint of job `id` under `directory`; returns its path.
///
/// # Errors
/// [`Error::Rpc`] when the coordinator is unreachable, the job is not running, or the
/// savepoint fails.
pub fn savepoint(coordinator: &str, id: u64, directory: &str) -> Result<String> {
    block_on(async {
        let mut client = connect(coordinator).await?;
        let r = client
            .trigger_savepoint(SavepointRequest {
                job_id: id,
                directory: directory.to_string(),
            })
            .await
            .map_err(rpc(coordinator))?;
        Ok(r.into_inner().path)
    })
}
