//! The coordinator: registers workers, schedules jobs onto their slots, runs each job's
//! checkpoint coordinator, detects lost workers, and restarts jobs from their latest
//! checkpoint (Flink's JobManager).
//!
//! - **`state`**: the registry of workers, jobs and deployments, and slot allocation.
//! - **`job_master`**: one thread per job: its attempts, from waiting for slots to
//!   restart or end.
//! - **`store`**: jobs persisted under the state directory, resumed after a restart.
//!
//! Invariant: a deployment's tasks run only while its job master considers it current;
//! on any failure every worker of the deployment is told to cancel it before the next
//! attempt is deployed.

mod job_master;
mod state;
mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sluice_core::{CheckpointId, Clock, SystemClock};
use sluice_runtime::checkpoint::SubtaskSnapshot;
use sluice_runtime::JobControl;
use tokio_stream::wrappers::{TcpListenerStream, UnboundedReceiverStream};
use tonic::{Request, Response, Status};

use crate::error::{Error, Result};
use crate::job::{JobInfo, JobState, JobSubmission};
use crate::rpc::messages::{
    AttemptReport, CheckpointAck, Command, CommandsRequest, Empty, HeartbeatRequest,
    HeartbeatResponse, JobRequest, ListJobsResponse, RegisterWorkerRequest, RegisterWorkerResponse,
    SavepointRequest, SavepointResponse, SubmitRequest, SubmitResponse, TaskFinishedRequest,
    TaskFinishedResponse,
};
use crate::rpc::{CoordinatorServer, CoordinatorService};
use state::{JobEntry, JobEvent, State, WorkerEntry};
use store::{JobStore, StoredJob};

/// How the coordinator runs.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where the control plane listens (`host:port`; port 0 picks one).
    pub listen: String,
    /// Where jobs are persisted, and checkpoints of jobs that name no directory.
    pub state_dir: PathBuf,
    /// How often workers send heartbeats.
    pub heartbeat_interval: Duration,
    /// A worker silent for this long is declared lost.
    pub heartbeat_timeout: Duration,
}

/// What the service, the monitor and the job masters share.
pub(crate) struct Cluster {
    state: Mutex<State>,
    clock: SystemClock,
    config: CoordinatorConfig,
    store: JobStore,
}

impl Cluster {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.clock.monotonic_nanos() / 1_000_000
    }

    /// Changes a job's info and persists it.
    pub(crate) fn update_job(&self, job: u64, change: impl FnOnce(&mut JobInfo)) {
        let stored = {
            let mut state = self.state();
            let Some(entry) = state.jobs.get_mut(&job) else {
                return;
            };
            change(&mut entry.info);
            StoredJob {
                submission: entry.submission.clone(),
                info: entry.info.clone(),
            }
        };
        if let Err(e) = self.store.save(&stored) {
            tracing::error!(job, error = %e, "cannot persist the job's status");
        }
    }

    /// Registers a job and starts its master thread.
    fn start_job(self: &Arc<Self>, submission: JobSubmission, info: JobInfo) -> Result<()> {
        let (events, inbox) = mpsc::channel();
        let id = info.id;
        let stored = StoredJob {
            submission: submission.clone(),
            info: info.clone(),
        };
        self.store.save(&stored)?;
        self.state().jobs.insert(
            id,
            JobEntry {
                info,
                submission,
                events,
                control: JobControl::new(),
            },
        );
        let cluster = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("job {id}"))
            .spawn(move || job_master::run(&cluster, id, &inbox))
            .map_err(|e| Error::Internal(format!("cannot start the job's thread: {e}")))?;
        Ok(())
    }

    /// Declares workers silent for longer than the timeout lost, and tells their jobs.
    fn check_heartbeats(&self) {
        let now = self.now_ms();
        let timeout = u64::try_from(self.config.heartbeat_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut state = self.state();
        let lost: Vec<u64> = state
            .workers
            .iter()
            .filter(|(_, w)| now.saturating_sub(w.last_heartbeat_ms) > timeout)
            .map(|(&id, _)| id)
            .collect();
        for id in lost {
            let Some(worker) = state.workers.remove(&id) else {
                continue;
            };
            tracing::warn!(worker = id, name = %worker.name, data = %worker.data_address, "worker lost: no heartbeat for {} ms", timeout);
            for job in worker.allocated.keys() {
                if let Some(entry) = state.jobs.get(job) {
                    let _ = entry.events.send(JobEvent::WorkerLost(id));
                }
            }
        }
    }
}

/// Runs the coordinator until `shutdown` is set; `on_listening` is told the bound
/// address once clients can connect.
///
/// # Errors
/// [`Error::Bind`] when the address cannot be bound, [`Error::State`] when the state
/// directory cannot be used.
pub fn run_coordinator(
    config: CoordinatorConfig,
    shutdown: Arc<AtomicBool>,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<()> {
    let store = JobStore::open(&config.state_dir)?;
    let stored = store.load()?;
    let clock = SystemClock;
    let cluster = Arc::new(Cluster {
        state: Mutex::new(State {
            next_worker: 1,
            next_job: 1,
            // Unique across coordinator restarts: channels of an old deployment must never
            // be mistaken for a new one's.
            next_deployment: u64::try_from(clock.now_ms()).unwrap_or(1).max(1) << 12,
            ..State::default()
        }),
        clock,
        config: config.clone(),
        store,
    });
    for job in stored {
        {
            let mut state = cluster.state();
            state.next_job = state.next_job.max(job.info.id + 1);
        }
        if job.info.state.is_terminal() {
            continue;
        }
        tracing::info!(job = job.info.id, name = %job.info.name, "resuming job {} from its latest checkpoint once workers join", job.info.id);
        let mut info = job.info;
        info.state = JobState::WaitingForSlots;
        info.message = Some("the coordinator restarted; waiting for workers".into());
        cluster.start_job(job.submission, info)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("coordinator rpc")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the coordinator's runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(&config.listen))
        .map_err(|source| Error::Bind {
            what: "coordinator",
            addr: config.listen.clone(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind {
        what: "coordinator",
        addr: config.listen.clone(),
        source,
    })?;
    let monitor = {
        let cluster = Arc::clone(&cluster);
        let shutdown = Arc::clone(&shutdown);
        let every = (config.heartbeat_interval / 2).max(Duration::from_millis(50));
        std::thread::Builder::new()
            .name("heartbeat monitor".into())
            .spawn(move || {
                while !shutdown.load(Ordering::Acquire) {
                    cluster.clock.sleep(every);
                    cluster.check_heartbeats();
                }
            })
            .map_err(|e| Error::Internal(format!("cannot start the heartbeat monitor: {e}")))?
    };
    tracing::info!(%addr, "coordinator listening");
    on_listening(addr);
    let service = Service {
        cluster: Arc::clone(&cluster),
    };
    let server = CoordinatorServer::new(service)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
    let stop = {
        let shutdown = Arc::clone(&shutdown);
        async move {
            while !shutdown.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    runtime
        .block_on(
            tonic::transport::Server::builder()
                .add_service(server)
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop),
        )
        .map_err(|e| Error::Internal(format!("the coordinator's server failed: {e}")))?;
    let _ = monitor.join();
    Ok(())
}

/// The gRPC service.
struct Service {
    cluster: Arc<Cluster>,
}

fn decode_snapshots(bytes: &[u8]) -> std::result::Result<Vec<SubtaskSnapshot>, Status> {
    postcard::from_bytes(bytes)
        .map_err(|e| Status::invalid_argument(format!("unreadable checkpoint state: {e}")))
}

#[tonic::async_trait]
impl CoordinatorService for Service {
    async fn register_worker(
        &self,
        request: Request<RegisterWorkerRequest>,
    ) -> std::result::Result<Response<RegisterWorkerResponse>, Status> {
        let r = request.into_inner();
        if r.slots == 0 {
            return Err(Status::invalid_argument(
                "a worker needs at least one slot (--slots)",
            ));
        }
        let now = self.cluster.now_ms();
        let mut state = self.cluster.state();
        let id = state.next_worker;
        state.next_worker += 1;
        tracing::info!(worker = id, name = %r.name, slots = r.slots, data = %r.data_address, "worker registered");
        state.workers.insert(
            id,
            WorkerEntry {
                name: r.name,
                slots: r.slots,
                data_address: r.data_address,
                last_heartbeat_ms: now,
                commands: None,
                allocated: Default::default(),
            },
        );
        Ok(Response::new(RegisterWorkerResponse {
            worker_id: id,
            heartbeat_interval_ms: u64::try_from(
                self.cluster.config.heartbeat_interval.as_millis(),
            )
            .unwrap_or(1000),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<HeartbeatRequest>,
    ) -> std::result::Result<Response<HeartbeatResponse>, Status> {
        let id = request.into_inner().worker_id;
        let now = self.cluster.now_ms();
        let known = match self.cluster.state().workers.get_mut(&id) {
            Some(w) => {
                w.last_heartbeat_ms = now;
                true
            }
            None => false,
        };
        Ok(Response::new(HeartbeatResponse { known }))
    }

    type CommandsStream = UnboundedReceiverStream<std::result::Result<Command, Status>>;

    async fn commands(
        &self,
        request: Request<CommandsRequest>,
    ) -> std::result::Result<Response<Self::CommandsStream>, Status> {
        let id = request.into_inner().worker_id;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        match self.cluster.state().workers.get_mut(&id) {
            Some(w) => w.commands = Some(tx),
            None => return Err(Status::not_found(format!("no worker {id}; register first"))),
        }
        Ok(Response::new(UnboundedReceiverStream::new(rx)))
    }

    async fn report_attempt(
        &self,
        request: Request<AttemptReport>,
    ) -> std::result::Result<Response<Empty>, Status> {
        let report = request.into_inner();
        let state = self.cluster.state();
        let job = state.deployments.get(&report.deployment).map(|d| d.job_id);
        if let Some(entry) = job.and_then(|j| state.jobs.get(&j)) {
            let _ = entry.events.send(JobEvent::Report(report));
        }
        Ok(Response::new(Empty {}))
    }

    async fn acknowledge_checkpoint(
        &self,
        request: Request<CheckpointAck>,
    ) -> std::result::Result<Response<Empty>, Status> {
        let ack = request.into_inner();
        let endpoint = self
            .cluster
            .state()
            .deployments
            .get(&ack.deployment)
            .and_then(|d| d.endpoint.clone());
        if let Some(endpoint) = endpoint {
            let snapshots = decode_snapshots(&ack.snapshots)?;
            endpoint.ack(ack.task as usize, CheckpointId(ack.checkpoint), snapshots);
        }
        Ok(Response::new(Empty {}))
    }

    async fn task_finished(
        &self,
        request: Request<TaskFinishedRequest>,
    ) -> std::result::Result<Response<TaskFinishedResponse>, Status> {
        let r = request.into_inner();
        let endpoint = self
            .cluster
            .state()
            .deployments
            .get(&r.deployment)
            .and_then(|d| d.endpoint.clone());
        let Some(endpoint) = endpoint else {
            return Ok(Response::new(TaskFinishedResponse { checkpoint: 0 }));
        };
        let snapshots = if r.has_snapshots {
            Some(decode_snapshots(&r.snapshots)?)
        } else {
            None
        };
        let Some(answer) = endpoint.finished(r.task as usize, snapshots) else {
            return Ok(Response::new(TaskFinishedResponse { checkpoint: 0 }));
        };
        // The checkpoint coordinator answers from its thread; wait off the async runtime.
        let checkpoint = tokio::task::spawn_blocking(move || answer.recv().unwrap_or(0))
            .await
            .unwrap_or(0);
        Ok(Response::new(TaskFinishedResponse { checkpoint }))
    }

    async fn submit_job(
        &self,
        request: Request<SubmitRequest>,
    ) -> std::result::Result<Response<SubmitResponse>, Status> {
        let submission: JobSubmission = serde_json::from_str(&request.into_inner().submission_json)
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "unreadable submission (a client of another Sluice version?): {e}"
                ))
            })?;
        if submission.plan.slots_needed() == 0 {
            return Err(Status::invalid_argument("the job has no tasks"));
        }
        let id = {
            let mut state = self.cluster.state();
            let id = state.next_job;
            state.next_job += 1;
            id
        };
        let info = JobInfo {
            id,
            name: submission.plan.name.clone(),
            state: JobState::WaitingForSlots,
            attempt: 0,
            restarts: 0,
            last_checkpoint: 0,
            slots: submission.plan.slots_needed(),
            message: None,
        };
        tracing::info!(job = id, name = %info.name, slots = info.slots, "job submitted");
        self.cluster
            .start_job(submission, info)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(SubmitResponse { job_id: id }))
    }

    async fn list_jobs(
        &self,
        _request: Request<Empty>,
    ) -> std::result::Result<Response<ListJobsResponse>, Status> {
        let jobs: Vec<JobInfo> = self
            .cluster
            .state()
            .jobs
            .values()
            .map(|j| j.info.clone())
            .collect();
        let jobs_json =
            serde_json::to_string(&jobs).map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(ListJobsResponse { jobs_json }))
    }

    async fn cancel_job(
        &self,
        request: Request<JobRequest>,
    ) -> std::result::Result<Response<Empty>, Status> {
        let id = request.into_inner().job_id;
        let state = self.cluster.state();
        let entry = state
            .jobs
            .get(&id)
            .ok_or_else(|| Status::not_found(Error::UnknownJob(id).to_string()))?;
        let _ = entry.events.send(JobEvent::Cancel);
        Ok(Response::new(Empty {}))
    }

    async fn trigger_savepoint(
        &self,
        request: Request<SavepointRequest>,
    ) -> std::result::Result<Response<SavepointResponse>, Status> {
        let r = request.into_inner();
        let (control, running) = {
            let state = self.cluster.state();
            let entry = state
                .jobs
                .get(&r.job_id)
                .ok_or_else(|| Status::not_found(Error::UnknownJob(r.job_id).to_string()))?;
            (
                Arc::clone(&entry.control),
                entry.info.state == JobState::Running,
            )
        };
        if !running {
            return Err(Status::failed_precondition(format!(
                "job {} is not running; a savepoint is taken of a running job",
                r.job_id
            )));
        }
        let answer = control.request_savepoint(PathBuf::from(&r.directory));
        let result =
            tokio::task::spawn_blocking(move || answer.recv_timeout(Duration::from_secs(600)))
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
        match result {
            Ok(Ok(path)) => Ok(Response::new(SavepointResponse {
                path: path.display().to_string(),
            })),
            Ok(Err(e)) => Err(Status::aborted(e.to_string())),
            Err(_) => Err(Status::deadline_exceeded(
                "the savepoint did not complete within 10 minutes",
            )),
        }
    }
}
