//! [`SqlSession`]: runs SQL scripts. DDL and `SET` take effect in order; every `INSERT
//! INTO` (and every bare query, printed) of a script becomes part of one job, which runs
//! when the script ends. `EXPLAIN` prints plans instead of running.

use std::sync::Arc;

use datafusion_expr::{LogicalPlan, ScalarUDF};
use sluice_runtime::plan::plan as physical_plan;
use sluice_runtime::{JobControl, JobGraph, JobResult, LocalExecutor};

use crate::catalog::Catalog;
use crate::config::SqlConfig;
use crate::error::{Error, Location, Result};
use crate::parser::{parse_script, LocatedStatement, Statement, TableDef};
use crate::planner::JobPlanner;

/// A job planned from a script, ready to run.
pub struct PlannedJob {
    /// The job graph.
    pub graph: JobGraph,
    /// The runtime configuration from the script's `SET`s.
    pub config: sluice_runtime::JobConfig,
    /// What `EXPLAIN` statements printed, in order.
    pub explained: Vec<String>,
}

impl std::fmt::Debug for PlannedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlannedJob")
            .field("graph", &self.graph)
            .field("explained", &self.explained)
            .finish()
    }
}

/// A SQL session: a catalog and settings that persist across scripts.
pub struct SqlSession {
    catalog: Catalog,
    config: SqlConfig,
    explain_only: bool,
}

impl Default for SqlSession {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SqlSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlSession")
            .field("catalog", &self.catalog)
            .field("config", &self.config)
            .finish()
    }
}

struct PendingInsert {
    table: String,
    columns: Vec<String>,
    plan: LogicalPlan,
    location: Location,
}

impl SqlSession {
    /// An empty session.
    pub fn new() -> Self {
        SqlSession {
            catalog: Catalog::new(),
            config: SqlConfig::default(),
            explain_only: false,
        }
    }

    /// Makes `function` available to `CREATE FUNCTION name AS 'identifier'`.
    pub fn register_function(&mut self, identifier: &str, function: Arc<ScalarUDF>) {
        self.catalog.register_function(identifier, function);
    }

    /// Makes every `INSERT` and query of later scripts be explained instead of run.
    pub fn set_explain_only(&mut self, on: bool) {
        self.explain_only = on;
    }

    /// Sets a configuration key as `SET` does.
    ///
    /// # Errors
    /// A value the key does not accept.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.config.set(key, value)
    }

    /// The session's catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Runs the DDL and `SET`s of `sql` and plans its INSERTs and queries as one job.
    ///
    /// # Errors
    /// The first statement that does not parse or plan, with its line and column.
    pub fn plan_script(&mut self, sql: &str) -> Result<PlannedJob> {
        let statements = parse_script(sql)?;
        let mut inserts = Vec::new();
        let mut explained = Vec::new();
        for s in statements {
            let location = s.location;
            self.statement(s, &mut inserts, &mut explained)
                .map_err(|e| e.at(location))?;
        }
        let graph = self.plan_inserts(&inserts)?;
        Ok(PlannedJob {
            graph,
            config: self.config.job_config()?,
            explained,
        })
    }

    /// Plans and runs `sql` in this process until its sources end (or it is stopped
    /// through `control`). `EXPLAIN` output is printed first.
    ///
    /// # Errors
    /// Planning errors, and the job's failure.
    pub fn execute_script(
        &mut self,
        sql: &str,
        control: Arc<JobControl>,
    ) -> Result<Option<JobResult>> {
        let job = self.plan_script(sql)?;
        for e in &job.explained {
            #[allow(clippy::print_stdout)]
            {
                println!("{e}");
            }
        }
        if job.graph.nodes.is_empty() {
            return Ok(None);
        }
        let result = LocalExecutor::new(job.config).execute(&job.graph, control)?;
        Ok(Some(result))
    }

    fn plan_inserts(&self, inserts: &[PendingInsert]) -> Result<JobGraph> {
        let parallelism = self.config.job_config()?.default_parallelism;
        let mut planner = JobPlanner::new(&self.catalog, parallelism);
        if let Some(ttl) = self.config.state_ttl()? {
            planner.set_state_ttl(ttl);
        }
        if let Some(idle) = self.config.source_idle_timeout()? {
            planner.set_source_idle_timeout(idle);
        }
        for insert in inserts {
            let table = self.catalog.table(&insert.table).ok_or_else(|| {
                Error::plan(format!("INSERT INTO `{}`: no such table", insert.table))
                    .at(insert.location)
            })?;
            let stream = planner
                .plan(&insert.plan)
                .map_err(|e| e.at(insert.location))?;
            planner
                .insert(table, &insert.columns, stream)
                .map_err(|e| e.at(insert.location))?;
        }
        Ok(planner.finish(&self.config.job_name()))
    }

    fn print_table(
        &mut self,
        schema: &arrow::datatypes::Schema,
        location: Location,
    ) -> Result<String> {
        let name = format!("__print_{}_{}", location.line, location.column);
        let def = TableDef {
            name: name.clone(),
            columns: schema
                .fields()
                .iter()
                .map(|f| crate::parser::ColumnDef {
                    name: f.name().clone(),
                    data_type: f.data_type().clone(),
                    nullable: true,
                    kind: crate::parser::ColumnKind::Physical,
                })
                .collect(),
            watermark: None,
            primary_key: Vec::new(),
            partition_keys: Vec::new(),
            options: [("connector".to_string(), "print".to_string())].into(),
            if_not_exists: true,
            location,
        };
        self.catalog.create_table(def)?;
        Ok(name)
    }

    fn statement(
        &mut self,
        s: LocatedStatement,
        inserts: &mut Vec<PendingInsert>,
        explained: &mut Vec<String>,
    ) -> Result<()> {
        match s.statement {
            Statement::Set { key, value } => self.config.set(&key, &value),
            Statement::Reset { key } => {
                self.config.reset(key.as_deref());
                Ok(())
            }
            Statement::CreateTable(def) => self.catalog.create_table(*def),
            Statement::CreateView {
                name,
                columns,
                query,
            } => self.catalog.create_view(&name, &columns, query),
            Statement::CreateFunction { name, identifier } => {
                self.catalog.create_function(&name, &identifier)
            }
            Statement::Insert { .. } | Statement::Query(_) if self.explain_only => {
                let text = self.explain(s)?;
                explained.push(text);
                Ok(())
            }
            Statement::Insert {
                table,
                columns,
                query,
            } => {
                if self.catalog.table(&table).is_none() {
                    return Err(Error::plan(format!(
                        "INSERT INTO `{table}`: no such table; create it with CREATE TABLE ... WITH ('connector' = ...)"
                    )));
                }
                let plan = self.catalog.plan_query(query)?;
                let plan = self.catalog.analyze_and_optimize(plan)?;
                inserts.push(PendingInsert {
                    table,
                    columns,
                    plan,
                    location: s.location,
                });
                Ok(())
            }
            Statement::Query(query) => {
                let plan = self.catalog.plan_query(query)?;
                let plan = self.catalog.analyze_and_optimize(plan)?;
                let table = self.print_table(plan.schema().as_arrow(), s.location)?;
                inserts.push(PendingInsert {
                    table,
                    columns: Vec::new(),
                    plan,
                    location: s.location,
                });
                Ok(())
            }
            Statement::Explain(inner) => {
                let text = self.explain(*inner)?;
                explained.push(text);
                Ok(())
            }
            Statement::BeginStatementSet | Statement::End => Ok(()),
        }
    }

    fn explain(&mut self, s: LocatedStatement) -> Result<String> {
        let (table, columns, query) = match s.statement {
            Statement::Insert {
                table,
                columns,
                query,
            } => (Some(table), columns, query),
            Statement::Query(q) => (None, Vec::new(), q),
            _ => {
                return Err(Error::unsupported(
                    "EXPLAIN of a statement other than INSERT or a query",
                ))
            }
        };
        let plan = self.catalog.plan_query(query)?;
        let plan = self.catalog.analyze_and_optimize(plan)?;
        let table = match table {
            Some(t) => t,
            None => self.print_table(plan.schema().as_arrow(), s.location)?,
        };
        let logical = plan.display_indent().to_string();
        let graph = self.plan_inserts(&[PendingInsert {
            table,
            columns,
            plan,
            location: s.location,
        }])?;
        let config = self.config.job_config()?;
        let physical = physical_plan(&graph, &config)?.describe(&graph);
        Ok(format!(
            "== Optimized Logical Plan ==\n{logical}\n\n== Physical Plan (tasks, chains, parallelism) ==\n{physical}"
        ))
    }
}
