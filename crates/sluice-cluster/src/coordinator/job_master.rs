//! One job's life on the coordinator: attempts, each waiting for slots, deploying,
//! running (bridging its checkpoint coordinator to the workers), and ending in success,
//! cancellation or a failure that restarts the job from its latest completed
//! checkpoint (Flink's restart of the whole job).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use sluice_core::{Clock, SystemClock};
use sluice_runtime::checkpoint::coordinator::JobFacts;
use sluice_runtime::checkpoint::remote::{
    start_coordinator, CheckpointEndpoint, RunningCoordinator,
};
use sluice_runtime::checkpoint::storage::CheckpointStorage;
use sluice_runtime::JobControl;

use super::state::{DeploymentEntry, JobEvent};
use super::Cluster;
use crate::error::Result;
use crate::job::{DeployCheckpoint, Deployment, JobState, JobSubmission, PlanSummary};
use crate::rpc::messages::{Command, CommandKind};

/// How an attempt ended.
#[derive(Debug)]
enum Outcome {
    Finished,
    Cancelled,
    Failed { error: String, retryable: bool },
}

/// The job's checkpoint storage, when it checkpoints.
fn storage_of(
    cluster: &Cluster,
    plan: &PlanSummary,
) -> Result<Option<(PathBuf, Arc<CheckpointStorage>)>> {
    let Some(settings) = &plan.checkpoint else {
        return Ok(None);
    };
    let dir = settings.directory.as_ref().map_or_else(
        || cluster.config.state_dir.join("checkpoints"),
        PathBuf::from,
    );
    let storage = CheckpointStorage::local(&dir, &plan.name)?;
    Ok(Some((dir, Arc::new(storage))))
}

fn facts(plan: &PlanSummary) -> JobFacts {
    let mut sources = HashSet::new();
    let mut index = 0usize;
    for chain in &plan.chains {
        for _ in 0..chain.parallelism {
            if chain.source {
                sources.insert(index);
            }
            index += 1;
        }
    }
    JobFacts {
        job: plan.name.clone(),
        tasks: index,
        max_parallelism: plan.max_parallelism,
        parallelism: plan.operators.clone(),
        sources,
    }
}

/// Runs job `id` until it ends.
pub(super) fn run(cluster: &Arc<Cluster>, id: u64, events: &Receiver<JobEvent>) {
    let (submission, job_control) = {
        let state = cluster.state();
        let Some(entry) = state.jobs.get(&id) else {
            return;
        };
        (entry.submission.clone(), Arc::clone(&entry.control))
    };
    let outcome = attempts(cluster, id, &submission, &job_control, events);
    let (state, message) = match outcome {
        Ok(Outcome::Finished) => (JobState::Finished, None),
        Ok(Outcome::Cancelled) => (JobState::Cancelled, None),
        Ok(Outcome::Failed { error, .. }) => (JobState::Failed, Some(error)),
        Err(e) => (JobState::Failed, Some(e.to_string())),
    };
    tracing::info!(
        job = id,
        ?state,
        message = message.as_deref().unwrap_or(""),
        "job ended"
    );
    cluster.update_job(id, |info| {
        info.state = state;
        if message.is_some() {
            info.message = message;
        }
    });
    cluster.state().release(id);
}

fn attempts(
    cluster: &Arc<Cluster>,
    id: u64,
    submission: &JobSubmission,
    job_control: &Arc<JobControl>,
    events: &Receiver<JobEvent>,
) -> Result<Outcome> {
    let plan = &submission.plan;
    let storage = storage_of(cluster, plan)?;
    let clock = SystemClock;
    let mut since_progress = 0u32;
    loop {
        let Some(slots) = wait_for_slots(cluster, id, plan.slots_needed(), events) else {
            return Ok(Outcome::Cancelled);
        };
        let (restore, restore_directory, last_completed) = match &storage {
            Some((dir, s)) => restore_point(plan, dir, s)?,
            None => (None, String::new(), 0),
        };
        let deployment = {
            let mut state = cluster.state();
            let d = state.next_deployment;
            state.next_deployment += 1;
            d
        };
        let mut attempt = 0;
        cluster.update_job(id, |info| {
            info.attempt += 1;
            attempt = info.attempt;
            info.state = JobState::Deploying;
            info.last_checkpoint = info.last_checkpoint.max(last_completed);
        });
        let placement: Vec<Vec<String>> = plan
            .chains
            .iter()
            .map(|c| {
                (0..c.parallelism as usize)
                    .map(|s| slots[s].1.clone())
                    .collect()
            })
            .collect();
        let control = JobControl::child(job_control);
        let coordinator = match (&storage, &plan.checkpoint) {
            (Some((dir, s)), Some(settings)) => Some(start_coordinator(
                settings.to_config(dir.clone()),
                facts(plan),
                Arc::clone(s),
                Arc::new(clock),
                Arc::clone(&control),
                restore.unwrap_or(0),
            )?),
            _ => None,
        };
        let (endpoint, running) = match coordinator {
            Some((e, r)) => (Some(Arc::new(e)), Some(r)),
            None => (None, None),
        };
        let d = Deployment {
            job_id: id,
            deployment,
            attempt,
            spec: submission.spec.clone(),
            plan: plan.clone(),
            placement,
            checkpoint: storage.as_ref().map(|(dir, _)| DeployCheckpoint {
                directory: dir.display().to_string(),
                restore,
                restore_directory: restore_directory.clone(),
                last_completed,
                exactly_once: plan.checkpoint.as_ref().is_none_or(|c| c.exactly_once),
            }),
        };
        let workers: BTreeSet<u64> = slots.iter().map(|(w, _)| *w).collect();
        let payload = serde_json::to_string(&d)
            .map_err(|e| crate::Error::Internal(format!("cannot encode a deployment: {e}")))?;
        let unreached: Vec<u64> = {
            let mut state = cluster.state();
            state.deployments.insert(
                deployment,
                DeploymentEntry {
                    job_id: id,
                    endpoint: endpoint.clone(),
                },
            );
            workers
                .iter()
                .copied()
                .filter(|&w| {
                    !state.send(
                        w,
                        Command {
                            kind: CommandKind::Deploy as i32,
                            deployment,
                            payload_json: payload.clone(),
                            ..Command::default()
                        },
                    )
                })
                .collect()
        };
        tracing::info!(job = id, deployment, attempt, restore = restore.unwrap_or(0), workers = ?workers, "deployed attempt {attempt}");
        cluster.update_job(id, |info| {
            info.state = JobState::Running;
            info.message = None;
        });
        let mut running_on = workers.clone();
        let outcome = if unreached.is_empty() {
            watch(
                cluster,
                id,
                deployment,
                &mut running_on,
                endpoint.as_deref(),
                last_completed,
                events,
            )
        } else {
            Outcome::Failed {
                error: format!("workers {unreached:?} went away before taking the deployment"),
                retryable: true,
            }
        };
        if !matches!(outcome, Outcome::Finished) {
            cancel_and_wait(cluster, deployment, &running_on, events);
        }
        let report = running.map(finish_coordinator);
        {
            let mut state = cluster.state();
            state.deployments.remove(&deployment);
            state.release(id);
        }
        let progressed = report.as_ref().is_some_and(|r| !r.is_empty());
        match outcome {
            Outcome::Finished => {
                if let Some((_, s)) = &storage {
                    // As embedded: a finished job's checkpoints go, so a resubmission
                    // starts afresh.
                    for c in s.all()? {
                        s.delete(c)?;
                    }
                }
                return Ok(Outcome::Finished);
            }
            Outcome::Cancelled => return Ok(Outcome::Cancelled),
            Outcome::Failed { error, retryable } => {
                let Some(settings) = plan.checkpoint.as_ref().filter(|_| retryable) else {
                    return Ok(Outcome::Failed { error, retryable });
                };
                since_progress = if progressed { 1 } else { since_progress + 1 };
                if since_progress > settings.restart_attempts {
                    return Ok(Outcome::Failed {
                        error: format!(
                            "{error} (no restart left: {} in a row without a completed checkpoint)",
                            settings.restart_attempts
                        ),
                        retryable,
                    });
                }
                tracing::warn!(job = id, error = %error, "attempt {attempt} failed; restarting from the latest checkpoint");
                cluster.update_job(id, |info| {
                    info.state = JobState::Restarting;
                    info.restarts += 1;
                    info.message = Some(error.clone());
                });
                clock.sleep(Duration::from_millis(settings.restart_delay_ms));
            }
        }
    }
}

/// Where an attempt starts: the latest completed checkpoint of the job, else the
/// savepoint it names (`execution.savepoint.path`); with the directory holding it and
/// the id checkpoints go on after.
fn restore_point(
    plan: &PlanSummary,
    dir: &std::path::Path,
    storage: &CheckpointStorage,
) -> Result<(Option<u64>, String, u64)> {
    let newest = storage.completed()?.last().map_or(0, |c| c.0);
    if let Some(meta) = storage.latest()? {
        return Ok((
            Some(meta.id),
            dir.display().to_string(),
            newest.max(meta.id),
        ));
    }
    let savepoint = plan
        .checkpoint
        .as_ref()
        .and_then(|c| c.restore_from.as_ref());
    if let Some(sp) = savepoint {
        let sp_storage = CheckpointStorage::local(std::path::Path::new(sp), &plan.name)?;
        let meta = sp_storage.latest()?.ok_or_else(|| {
            crate::Error::InvalidJob(format!(
                "no complete savepoint of job `{}` in {sp}; pass the directory a savepoint was written to",
                plan.name
            ))
        })?;
        return Ok((Some(meta.id), sp.clone(), newest.max(meta.id)));
    }
    Ok((None, dir.display().to_string(), newest))
}

fn finish_coordinator(running: RunningCoordinator) -> Vec<u64> {
    match running.finish() {
        Ok(report) => report.completed.iter().map(|c| c.0).collect(),
        Err(e) => {
            tracing::error!(error = %e, "the checkpoint coordinator failed");
            Vec::new()
        }
    }
}

/// Waits until `needed` slots are free and allocates them; `None` when the job was
/// cancelled meanwhile.
fn wait_for_slots(
    cluster: &Cluster,
    id: u64,
    needed: u32,
    events: &Receiver<JobEvent>,
) -> Option<Vec<(u64, String)>> {
    let mut told = false;
    loop {
        if let Some(slots) = cluster.state().allocate(id, needed) {
            return Some(slots);
        }
        if !told {
            let free = cluster.state().free_slots();
            let message = format!(
                "waiting for {needed} free slots ({free} free); start workers or add slots"
            );
            tracing::info!(job = id, "{message}");
            cluster.update_job(id, |info| {
                if info.state != JobState::Restarting {
                    info.state = JobState::WaitingForSlots;
                }
                info.message = Some(message.clone());
            });
            told = true;
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(JobEvent::Cancel) => return None,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    }
}

/// Follows a running deployment until it ends; passes its checkpoint coordinator's
/// signals on to the workers meanwhile. `pending` holds the workers whose tasks have not
/// reported their end; reports take them out.
#[allow(clippy::too_many_arguments)]
fn watch(
    cluster: &Cluster,
    id: u64,
    deployment: u64,
    pending: &mut BTreeSet<u64>,
    endpoint: Option<&CheckpointEndpoint>,
    mut completed: u64,
    events: &Receiver<JobEvent>,
) -> Outcome {
    let workers = pending.clone();
    let mut triggered = endpoint.map_or(0, |e| e.triggered().0);
    let mut closed = false;
    let broadcast = |command: Command| {
        let state = cluster.state();
        for &w in &workers {
            state.send(w, command.clone());
        }
    };
    loop {
        match events.recv_timeout(Duration::from_millis(2)) {
            Ok(JobEvent::Report(r)) if r.deployment == deployment => {
                if r.ok {
                    pending.remove(&r.worker_id);
                    if pending.is_empty() {
                        return Outcome::Finished;
                    }
                } else {
                    pending.remove(&r.worker_id);
                    let name = cluster.state().workers.get(&r.worker_id).map_or_else(
                        || format!("worker {}", r.worker_id),
                        |w| format!("worker {} ({})", r.worker_id, w.name),
                    );
                    return Outcome::Failed {
                        error: format!("{name}: {}", r.error),
                        retryable: r.retryable,
                    };
                }
            }
            Ok(JobEvent::WorkerLost(w)) if workers.contains(&w) => {
                return Outcome::Failed {
                    error: format!("worker {w} was lost (no heartbeat)"),
                    retryable: true,
                };
            }
            Ok(JobEvent::Cancel) => return Outcome::Cancelled,
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Outcome::Cancelled,
        }
        let Some(endpoint) = endpoint else { continue };
        let (t, at_ms, unaligned) = endpoint.triggered();
        if t > triggered {
            triggered = t;
            broadcast(Command {
                kind: CommandKind::Trigger as i32,
                deployment,
                checkpoint: t,
                at_ms,
                unaligned,
                ..Command::default()
            });
        }
        let c = endpoint.completed();
        if c > completed {
            completed = c;
            broadcast(Command {
                kind: CommandKind::Complete as i32,
                deployment,
                checkpoint: c,
                ..Command::default()
            });
            cluster.update_job(id, |info| info.last_checkpoint = c);
        }
        if endpoint.closed() && !closed {
            closed = true;
            broadcast(Command {
                kind: CommandKind::Close as i32,
                deployment,
                ..Command::default()
            });
        }
    }
}

/// Tells every worker of `deployment` to cancel it and waits (at most 30 s) until each
/// one still registered reported its tasks ended.
fn cancel_and_wait(
    cluster: &Cluster,
    deployment: u64,
    workers: &BTreeSet<u64>,
    events: &Receiver<JobEvent>,
) {
    {
        let state = cluster.state();
        for &w in workers {
            state.send(
                w,
                Command {
                    kind: CommandKind::Cancel as i32,
                    deployment,
                    ..Command::default()
                },
            );
        }
    }
    let clock = SystemClock;
    let deadline = clock.monotonic_nanos() + 30_000_000_000;
    let mut pending: BTreeSet<u64> = workers.clone();
    while clock.monotonic_nanos() < deadline {
        pending.retain(|w| cluster.state().workers.contains_key(w));
        if pending.is_empty() {
            return;
        }
        match events.recv_timeout(Duration::from_millis(50)) {
            Ok(JobEvent::Report(r)) if r.deployment == deployment => {
                pending.remove(&r.worker_id);
            }
            Ok(JobEvent::WorkerLost(w)) => {
                pending.remove(&w);
            }
            _ => {}
        }
    }
    tracing::warn!(
        deployment,
        ?pending,
        "workers did not report the end of a cancelled deployment within 30 s"
    );
}
