//! The worker: offers task slots to a coordinator and runs the tasks it is given (Flink's
//! TaskManager).
//!
//! A worker registers, sends heartbeats, and follows its stream of commands. For a
//! deployment it builds the job from its spec, checks the plan against the submitted one,
//! deploys the tasks placed on it (connecting the other channels through its
//! [`DataPlane`]), runs them, carries their checkpoint acknowledgements to the
//! coordinator, and reports how they ended. When the coordinator is lost (the stream
//! breaks or a heartbeat is refused) the worker cancels every task and registers again,
//! so a restarted coordinator finds it ready.

mod deployment;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sluice_runtime::checkpoint::remote::WorkerCheckpointing;
use sluice_runtime::JobControl;
use tonic::transport::Channel;

use crate::error::{Error, Result};
use crate::job::{Deployment, JobBuilder};
use crate::rpc::messages::{
    Command, CommandKind, CommandsRequest, HeartbeatRequest, RegisterWorkerRequest,
};
use crate::rpc::CoordinatorClient;
use crate::transport::DataPlane;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The coordinator's address (`host:port`).
    pub coordinator: String,
    /// Task slots offered.
    pub slots: u32,
    /// Where the data plane listens (`host:port`; port 0 picks one).
    pub data_listen: String,
    /// Where other workers reach the data plane; the bound address when `None` (which
    /// must then not be a wildcard such as `0.0.0.0`).
    pub data_advertise: Option<String>,
    /// A name for logs and listings.
    pub name: String,
}

/// One deployment running on this worker.
struct Running {
    control: Arc<JobControl>,
    checkpointing: Option<Arc<WorkerCheckpointing>>,
}

/// What the threads of a worker share.
#[derive(Clone)]
pub(crate) struct WorkerContext {
    pub(crate) worker_id: u64,
    pub(crate) client: CoordinatorClient<Channel>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) plane: DataPlane,
    pub(crate) data_address: String,
    pub(crate) builder: Arc<dyn JobBuilder>,
    running: Arc<Mutex<HashMap<u64, Running>>>,
}

impl WorkerContext {
    fn running(&self) -> MutexGuard<'_, HashMap<u64, Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The address clients and workers dial for `addr` (`host:port` or a URL).
pub fn endpoint_url(addr: &str) -> String {
    if addr.starts_with("http://") || addr.starts_with("https://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    }
}

/// Connects a gRPC client to the coordinator at `addr`.
///
/// # Errors
/// [`Error::Rpc`] when it cannot be reached.
pub async fn connect(addr: &str) -> Result<CoordinatorClient<Channel>> {
    let endpoint = tonic::transport::Endpoint::from_shared(endpoint_url(addr))
        .map_err(|e| Error::Rpc {
            addr: addr.to_string(),
            message: format!("not a valid address: {e}"),
        })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    let channel = endpoint.connect().await.map_err(|e| Error::Rpc {
        addr: addr.to_string(),
        message: format!(
            "cannot connect ({e}); start it with `sluice coordinator --listen {addr}` or check the address"
        ),
    })?;
    Ok(CoordinatorClient::new(channel)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// Runs a worker until `shutdown` is set: registers with the coordinator (retrying while
/// it is unreachable), runs what it deploys, and registers again when it is lost.
///
/// # Errors
/// [`Error::Bind`] when the data plane cannot listen, and configuration errors.
pub fn run_worker(
    config: WorkerConfig,
    builder: Arc<dyn JobBuilder>,
    shutdown: Arc<AtomicBool>,
) -> Result<()> {
    let plane = DataPlane::bind(&config.data_listen)?;
    let data_address = match &config.data_advertise {
        Some(a) => a.clone(),
        None => {
            let bound = plane.local_addr();
            if bound.ip().is_unspecified() {
                return Err(Error::InvalidJob(format!(
                    "the data plane listens on {bound}, which other workers cannot dial; pass --data-advertise HOST:{} with this host's address",
                    bound.port()
                )));
            }
            bound.to_string()
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("worker rpc")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the worker's runtime: {e}")))?;
    tracing::info!(data = %data_address, slots = config.slots, "worker starting; coordinator at {}", config.coordinator);
    let running = Arc::new(Mutex::new(HashMap::new()));
    while !shutdown.load(Ordering::Acquire) {
        let session = runtime.block_on(session(
            &config,
            &plane,
            &data_address,
            &builder,
            &running,
            &shutdown,
            runtime.handle().clone(),
        ));
        if let Err(e) = session {
            tracing::warn!(error = %e, "lost the coordinator; registering again in 1 s");
        }
        // Tasks of a coordinator that is gone cannot checkpoint or be restarted by it.
        for (_, r) in running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            r.control.cancel();
        }
        if !shutdown.load(Ordering::Acquire) {
            // The timer must be created inside the runtime.
            runtime.block_on(async { tokio::time::sleep(Duration::from_secs(1)).await });
        }
    }
    Ok(())
}

/// One registration: runs until the coordinator is lost or `shutdown` is set.
async fn session(
    config: &WorkerConfig,
    plane: &DataPlane,
    data_address: &str,
    builder: &Arc<dyn JobBuilder>,
    running: &Arc<Mutex<HashMap<u64, Running>>>,
    shutdown: &Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
) -> Result<()> {
    let mut client = connect(&config.coordinator).await?;
    let rpc = |e: tonic::Status| Error::Rpc {
        addr: config.coordinator.clone(),
        message: e.message().to_string(),
    };
    let registered = client
        .register_worker(RegisterWorkerRequest {
            name: config.name.clone(),
            slots: config.slots,
            data_address: data_address.to_string(),
        })
        .await
        .map_err(rpc)?
        .into_inner();
    let worker_id = registered.worker_id;
    tracing::info!(worker = worker_id, "registered with the coordinator");
    let ctx = WorkerContext {
        worker_id,
        client: client.clone(),
        runtime,
        plane: plane.clone(),
        data_address: data_address.to_string(),
        builder: Arc::clone(builder),
        running: Arc::clone(running),
    };
    let mut commands = client
        .commands(CommandsRequest { worker_id })
        .await
        .map_err(rpc)?
        .into_inner();
    let interval = Duration::from_millis(registered.heartbeat_interval_ms.max(50));
    let mut beat = tokio::time::interval(interval);
    loop {
        tokio::select! {
            command = commands.message() => {
                match command.map_err(rpc)? {
                    Some(command) => on_command(&ctx, command),
                    None => return Err(Error::Rpc { addr: config.coordinator.clone(), message: "the command stream ended".into() }),
                }
            }
            _ = beat.tick() => {
                if shutdown.load(Ordering::Acquire) {
                    return Ok(());
                }
                let known = client
                    .heartbeat(HeartbeatRequest { worker_id })
                    .await
                    .map_err(rpc)?
                    .into_inner()
                    .known;
                if !known {
                    return Err(Error::Rpc { addr: config.coordinator.clone(), message: "the coordinator no longer knows this worker".into() });
                }
            }
        }
    }
}

fn on_command(ctx: &WorkerContext, command: Command) {
    let kind = CommandKind::try_from(command.kind).unwrap_or(CommandKind::Unspecified);
    let deployment = command.deployment;
    match kind {
        CommandKind::Deploy => match serde_json::from_str::<Deployment>(&command.payload_json) {
            Ok(d) => start_deployment(ctx, d),
            Err(e) => {
                tracing::error!(deployment, error = %e, "unreadable deployment (a coordinator of another Sluice version?)")
            }
        },
        CommandKind::Cancel => {
            if let Some(r) = ctx.running().get(&deployment) {
                tracing::info!(deployment, "cancelling");
                r.control.cancel();
            }
        }
        CommandKind::Trigger | CommandKind::Complete | CommandKind::Close => {
            let checkpointing = ctx
                .running()
                .get(&deployment)
                .and_then(|r| r.checkpointing.clone());
            if let Some(c) = checkpointing {
                match kind {
                    CommandKind::Trigger => {
                        c.trigger(command.checkpoint, command.at_ms, command.unaligned)
                    }
                    CommandKind::Complete => c.complete(command.checkpoint),
                    _ => c.close(),
                }
            }
        }
        CommandKind::Unspecified => {
            tracing::warn!(
                kind = command.kind,
                "unknown command (a coordinator of another Sluice version?)"
            );
        }
    }
}

fn start_deployment(ctx: &WorkerContext, d: Deployment) {
    let control = JobControl::new();
    let checkpointing = d.checkpoint.as_ref().map(|c| {
        Arc::new(WorkerCheckpointing::new(
            if c.exactly_once {
                sluice_runtime::checkpoint::CheckpointingMode::ExactlyOnce
            } else {
                sluice_runtime::checkpoint::CheckpointingMode::AtLeastOnce
            },
            c.last_completed,
        ))
    });
    ctx.running().insert(
        d.deployment,
        Running {
            control: Arc::clone(&control),
            checkpointing: checkpointing.clone(),
        },
    );
    let ctx = ctx.clone();
    let name = format!("deployment {}", d.deployment);
    let spawned = std::thread::Builder::new()
        .name(name)
        .spawn(move || deployment::run(&ctx, &d, &control, checkpointing));
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start a deployment thread");
    }
}

impl WorkerContext {
    /// Forgets a deployment that ended.
    pub(crate) fn remove(&self, deployment: u64) {
        self.running().remove(&deployment);
        self.plane.forget(deployment);
    }
}
