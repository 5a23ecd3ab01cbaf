//! [`JobRegistry`]: how a Rust DataStream job runs on a cluster.
//!
//! Closures cannot be shipped, so the job's own binary runs as the worker: it registers
//! its jobs by name (each a function that builds the job graph from parameters), starts
//! with [`crate::worker::run_worker`] and the registry as its [`JobBuilder`], and submits
//! a job by name with [`JobRegistry::submission`] and [`crate::client::submit`]. Every
//! worker must run the same binary (the plan check refuses a mismatch).

use std::collections::BTreeMap;

use sluice_runtime::{JobConfig, JobGraph};

use crate::error::{Error, Result};
use crate::job::{JobBuilder, JobSpec, JobSubmission, PlanSummary};

/// Builds a registered job's graph and configuration from its parameters.
pub type BuildJob =
    Box<dyn Fn(&BTreeMap<String, String>) -> Result<(JobGraph, JobConfig)> + Send + Sync>;

/// The jobs a binary knows how to build, by name.
#[derive(Default)]
pub struct JobRegistry {
    jobs: BTreeMap<String, BuildJob>,
}

impl std::fmt::Debug for JobRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.jobs.keys()).finish()
    }
}

impl JobRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `build` under `name` (not `sql`, which names SQL scripts).
    pub fn register(
        &mut self,
        name: &str,
        build: impl Fn(&BTreeMap<String, String>) -> Result<(JobGraph, JobConfig)>
            + Send
            + Sync
            + 'static,
    ) -> &mut Self {
        self.jobs.insert(name.to_string(), Box::new(build));
        self
    }

    /// The submission of job `name` with `params`: built here, so errors show before
    /// anything is deployed.
    ///
    /// # Errors
    /// [`Error::InvalidJob`] for an unknown name or a job that does not build or plan.
    pub fn submission(
        &self,
        name: &str,
        params: BTreeMap<String, String>,
    ) -> Result<JobSubmission> {
        let spec = JobSpec {
            kind: name.to_string(),
            script: String::new(),
            params,
        };
        let (graph, config) = self.build(&spec)?;
        let plan = sluice_runtime::plan::plan(&graph, &config)?;
        Ok(JobSubmission {
            plan: PlanSummary::of(&graph, &plan, &config),
            spec,
        })
    }
}

impl JobBuilder for JobRegistry {
    fn build(&self, spec: &JobSpec) -> Result<(JobGraph, JobConfig)> {
        let build = self.jobs.get(&spec.kind).ok_or_else(|| {
            Error::InvalidJob(format!(
                "this worker knows the jobs {:?}, not `{}`: start the binary that registers it as the worker",
                self.jobs.keys().collect::<Vec<_>>(),
                spec.kind
            ))
        })?;
        build(&spec.params)
    }
}
