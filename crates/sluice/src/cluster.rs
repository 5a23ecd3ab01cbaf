//! The cluster subcommands: `coordinator`, `worker`, `submit`, `list`, `cancel`,
//! `savepoint`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice_cluster::coordinator::{run_coordinator, CoordinatorConfig};
use sluice_cluster::job::{JobBuilder, JobSpec, JobSubmission, PlanSummary};
use sluice_cluster::worker::{run_worker, WorkerConfig};
use sluice_runtime::{JobConfig, JobGraph};
use sluice_sql::SqlSession;

/// Builds SQL jobs (`kind = "sql"`) from their script and parameters.
pub(crate) struct SqlJobBuilder;

impl JobBuilder for SqlJobBuilder {
    fn build(&self, spec: &JobSpec) -> sluice_cluster::Result<(JobGraph, JobConfig)> {
        if spec.kind != "sql" {
            return Err(sluice_cluster::Error::InvalidJob(format!(
                "this worker runs SQL jobs; `{}` is a job registered by another binary: start that binary as the worker",
                spec.kind
            )));
        }
        let script = sluice_sql::substitute(&spec.script, &spec.params)
            .map_err(|e| sluice_cluster::Error::InvalidJob(e.to_string()))?;
        let job = SqlSession::new()
            .plan_script(&script)
            .map_err(|e| sluice_cluster::Error::InvalidJob(e.to_string()))?;
        if job.graph.nodes.is_empty() {
            return Err(sluice_cluster::Error::InvalidJob(
                "the script has no INSERT INTO: nothing to run".into(),
            ));
        }
        Ok((job.graph, job.config))
    }
}

/// Stops a long-running command at Ctrl-C.
fn shutdown_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let shutdown = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shutdown);
    ctrlc::set_handler(move || {
        eprintln!("Ctrl-C: shutting down");
        flag.store(true, Ordering::Release);
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(shutdown)
}

/// `sluice coordinator`.
pub(crate) fn coordinator(
    listen: String,
    state_dir: PathBuf,
    heartbeat_timeout_ms: u64,
) -> Result<()> {
    let shutdown = shutdown_on_ctrl_c()?;
    let config = CoordinatorConfig {
        listen,
        state_dir,
        heartbeat_interval: Duration::from_millis((heartbeat_timeout_ms / 5).clamp(50, 1000)),
        heartbeat_timeout: Duration::from_millis(heartbeat_timeout_ms),
    };
    run_coordinator(config, shutdown, |addr| {
        // Scripts and tests read the address from this line.
        println!("coordinator listening on {addr}");
        let _ = std::io::stdout().flush();
    })?;
    Ok(())
}

/// `sluice worker`.
pub(crate) fn worker(
    coordinator: String,
    slots: u32,
    data_listen: String,
    data_advertise: Option<String>,
    name: Option<String>,
) -> Result<()> {
    let shutdown = shutdown_on_ctrl_c()?;
    let name = name.unwrap_or_else(|| format!("worker-{}", std::process::id()));
    run_worker(
        WorkerConfig {
            coordinator,
            slots,
            data_listen,
            data_advertise,
            name,
        },
        Arc::new(SqlJobBuilder),
        shutdown,
    )?;
    Ok(())
}

/// `sluice submit`: plans the script here (so errors show before anything is
/// deployed) and submits it.
pub(crate) fn submit(
    coordinator: &str,
    script: String,
    params: BTreeMap<String, String>,
) -> Result<()> {
    let spec = JobSpec {
        kind: "sql".into(),
        script,
        params,
    };
    let (graph, config) = SqlJobBuilder.build(&spec)?;
    let plan = sluice_runtime::plan::plan(&graph, &config)?;
    let summary = PlanSummary::of(&graph, &plan, &config);
    eprintln!(
        "job `{}`: {} tasks in {} chains, needs {} slots",
        summary.name,
        summary.tasks(),
        summary.chains.len(),
        summary.slots_needed()
    );
    let id = sluice_cluster::client::submit(
        coordinator,
        &JobSubmission {
            spec,
            plan: summary,
        },
    )?;
    println!("submitted job {id}");
    Ok(())
}

/// `sluice list`.
pub(crate) fn list(coordinator: &str) -> Result<()> {
    let jobs = sluice_cluster::client::list(coordinator)?;
    println!(
        "{:>4}  {:<16} {:<16} {:>7} {:>8} {:>10}  message",
        "id", "name", "state", "attempt", "restarts", "checkpoint"
    );
    for j in jobs {
        println!(
            "{:>4}  {:<16} {:<16} {:>7} {:>8} {:>10}  {}",
            j.id,
            j.name,
            format!("{:?}", j.state),
            j.attempt,
            j.restarts,
            j.last_checkpoint,
            j.message.unwrap_or_default()
        );
    }
    Ok(())
}

/// `sluice cancel`.
pub(crate) fn cancel(coordinator: &str, job: u64) -> Result<()> {
    sluice_cluster::client::cancel(coordinator, job)?;
    println!("cancelling job {job}");
    Ok(())
}

/// `sluice savepoint`.
pub(crate) fn savepoint(coordinator: &str, job: u64, dir: &str) -> Result<()> {
    let path = sluice_cluster::client::savepoint(coordinator, job, dir)?;
    println!("savepoint written to {path}");
    Ok(())
}
