//! The streaming planner: DataFusion's optimized logical plan of each `INSERT INTO`
//! becomes operators of a Sluice job graph.
//!
//! | logical plan | Sluice operators |
//! |---|---|
//! | scan of a table | connector source → decoder → computed columns → watermark assigner |
//! | scan of `TUMBLE`/`HOP`/`CUMULATE` | the input's plan → window assigner |
//! | projection, filter | `Calc` (vectorized DataFusion expressions) |
//! | aggregate grouped by `window_start, window_end` | hash exchange on the other keys → window aggregate |
//! | filter on `ROW_NUMBER() OVER (PARTITION BY k ORDER BY s)` | hash exchange on `k` → Top-N / deduplication (per window when `k` holds the window) |
//! | join with a lookup table (`FOR SYSTEM_TIME AS OF`) | lookup join chained behind the stream |
//! | union | the inputs feeding one identity `Calc` |
//! | `INSERT INTO` | cast to the sink's columns → connector sink |
//!
//! A table scanned several times in one job is read once (its source is shared).
//! Forward edges between operators of equal parallelism are chained by the runtime, so
//! a stateless query runs as one task per subtask.

mod aggregate;
pub mod graph;
mod join;
mod lookup;
mod rank;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion_common::DFSchema;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::{Expr, LogicalPlan};
use datafusion_physical_expr::{create_physical_expr, PhysicalExpr};
use sluice_core::OperatorId;
use sluice_runtime::graph::NodeKind;

use crate::catalog::{
    Catalog, CatalogTable, PhysicalTable, TableScanSource, WindowKind, WindowTableFunction,
};
use crate::connectors;
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::operators::calc::CalcOperator;
use crate::operators::watermark::WatermarkAssigner;
use crate::operators::window_assigner::WindowAssigner;
use crate::operators::StateTtl;
use graph::GraphBuilder;

/// The window columns of a stream (indices into its schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowColumns {
    /// `window_start`.
    pub start: usize,
    /// `window_end`.
    pub end: usize,
    /// `window_time`, when the stream has it.
    pub time: Option<usize>,
    /// How the window columns hold the rows' windows.
    pub mode: WindowMode,
}

/// How a stream's window columns hold its rows' windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowMode {
    /// Windows of event time, final: fired by watermarks.
    EventTime,
    /// Each row's own session window `[ts, ts + gap)`, which only a session aggregation
    /// merges into sessions.
    Session,
    /// Windows of processing time: the aggregation assigns rows to the windows of its
    /// clock when they arrive and fires them as its clock passes their ends (the columns
    /// hold the windows of the row's `PROCTIME()`, a placeholder).
    ProcessingTime(WindowKind),
}

/// A planned stream: the node producing it and what is known of its rows.
#[derive(Debug, Clone)]
pub struct Stream {
    /// The node whose main output carries the rows.
    pub node: OperatorId,
    /// The rows' schema.
    pub schema: SchemaRef,
    /// The node's parallelism.
    pub parallelism: u32,
    /// The window columns, when the rows come from a window table function.
    pub window: Option<WindowColumns>,
    /// Whether the rows are only insertions (else a changelog with updates).
    pub append_only: bool,
}

/// The mode of windows of `kind` over the time attribute `time_field`.
///
/// # Errors
/// Session windows of processing time, which Sluice does not run.
pub(crate) fn window_mode(
    kind: WindowKind,
    time_field: &arrow::datatypes::Field,
) -> Result<WindowMode> {
    let proctime = crate::functions::proctime::is_proctime(time_field);
    match (kind, proctime) {
        (WindowKind::Session { .. }, true) => Err(Error::unsupported(
            "SESSION windows of processing time; use a time attribute with a WATERMARK",
        )),
        (WindowKind::Session { .. }, false) => Ok(WindowMode::Session),
        (kind, true) => Ok(WindowMode::ProcessingTime(kind)),
        (_, false) => Ok(WindowMode::EventTime),
    }
}

/// Refuses rows whose windows only an aggregation decides (`SESSION` windows, windows of
/// processing time) anywhere but in a window aggregation.
pub(crate) fn refuse_pending_windows(stream: &Stream, what: &str) -> Result<()> {
    let which = match stream.window.map(|w| w.mode) {
        Some(WindowMode::Session) => "SESSION window",
        Some(WindowMode::ProcessingTime(_)) => "processing time window",
        _ => return Ok(()),
    };
    Err(Error::unsupported(format!(
        "{what} of {which} rows; aggregate them first (GROUP BY window_start, window_end \
         and keys)"
    )))
}

/// Physical expressions of `exprs` over rows of `schema`.
pub(crate) fn physical(exprs: &[Expr], schema: &DFSchema) -> Result<Vec<Arc<dyn PhysicalExpr>>> {
    let props = ExecutionProps::new();
    let ctx = PhysicalPlanningContext::default();
    exprs
        .iter()
        .map(|e| Ok(create_physical_expr(e, schema, &props, &ctx)?))
        .collect()
}

fn arrow_schema(schema: &DFSchema) -> SchemaRef {
    Arc::new(schema.as_arrow().clone())
}

/// Builds the job graph of the INSERTs of a script.
pub struct JobPlanner<'a> {
    catalog: &'a Catalog,
    graph: GraphBuilder,
    parallelism: u32,
    tables: HashMap<String, Stream>,
    sources: HashMap<String, Stream>,
    state_ttl: Option<StateTtl>,
    source_idle_timeout_ms: Option<i64>,
    /// The splits of the sources that announce them, by table.
    split_registries: HashMap<String, crate::operators::watermark::SplitRegistry>,
}

impl<'a> JobPlanner<'a> {
    /// A planner of jobs over `catalog` whose operators run with `parallelism` subtasks.
    pub fn new(catalog: &'a Catalog, parallelism: u32) -> Self {
        JobPlanner {
            catalog,
            graph: GraphBuilder::default(),
            parallelism: parallelism.max(1),
            tables: HashMap::new(),
            sources: HashMap::new(),
            state_ttl: None,
            source_idle_timeout_ms: None,
            split_registries: HashMap::new(),
        }
    }

    /// Source splits (Kafka partitions) without rows for `timeout` stop holding
    /// watermarks back (`table.exec.source.idle-timeout`).
    pub fn set_source_idle_timeout(&mut self, timeout: std::time::Duration) {
        self.source_idle_timeout_ms = Some(timeout.as_millis() as i64);
    }

    /// Drops idle state of regular aggregations, joins and Top-N after `ttl`
    /// (`table.exec.state.ttl`).
    pub fn set_state_ttl(&mut self, ttl: std::time::Duration) {
        self.state_ttl = Some(StateTtl::new(ttl.as_millis() as i64));
    }

    /// The state TTL of the job's updating operators.
    pub(crate) fn state_ttl(&self) -> Option<StateTtl> {
        self.state_ttl
    }

    /// The graph planned so far.
    pub fn finish(self, name: &str) -> sluice_runtime::JobGraph {
        self.graph.build(name)
    }

    /// Whether nothing was planned.
    pub fn is_empty(&self) -> bool {
        self.graph.is_empty()
    }

    pub(crate) fn calc(
        &mut self,
        input: &Stream,
        name: &str,
        filter: Option<Arc<dyn PhysicalExpr>>,
        projection: Option<Vec<Arc<dyn PhysicalExpr>>>,
        schema: SchemaRef,
    ) -> Stream {
        let out_schema = Arc::clone(&schema);
        let node = self
            .graph
            .operator(name, input.parallelism, NodeKind::Operator, move |_| {
                Ok(CalcOperator::new(
                    filter.clone(),
                    projection.clone(),
                    Arc::clone(&out_schema),
                ))
            });
        self.graph.connect(
            input.node,
            node,
            Arc::clone(&input.schema),
            SqlPartitioning::Forward,
        );
        Stream {
            node,
            schema,
            parallelism: input.parallelism,
            window: input.window,
            append_only: input.append_only,
        }
    }

    /// Plans a logical plan into operators and returns the stream of its rows.
    ///
    /// # Errors
    /// Plans Sluice does not run yet, or expressions that do not compile.
    pub fn plan(&mut self, plan: &LogicalPlan) -> Result<Stream> {
        match plan {
            LogicalPlan::Projection(p) => {
                let input = match rank::rank_pattern(&p.input) {
                    Some(pattern) => {
                        let emit_rank = p
                            .expr
                            .iter()
                            .any(|e| rank::refers_to(e, &p.input, pattern.row_number));
                        rank::plan_rank(self, &pattern, emit_rank)?
                    }
                    None => self.plan(&p.input)?,
                };
                self.project(p, &input)
            }
            LogicalPlan::Filter(f) => {
                if let Some(pattern) = rank::rank_pattern(plan) {
                    return rank::plan_rank(self, &pattern, true);
                }
                let input = self.plan(&f.input)?;
                let predicate = physical(std::slice::from_ref(&f.predicate), f.input.schema())?;
                let schema = Arc::clone(&input.schema);
                Ok(self.calc(&input, "Calc", predicate.into_iter().next(), None, schema))
            }
            LogicalPlan::SubqueryAlias(a) => self.plan(&a.input),
            LogicalPlan::TableScan(scan) => self.plan_scan(scan),
            LogicalPlan::Aggregate(a) => aggregate::plan_aggregate(self, a),
            LogicalPlan::Join(j) => join::plan_join(self, j),
            LogicalPlan::Union(u) => {
                let inputs = u
                    .inputs
                    .iter()
                    .map(|i| self.plan(i))
                    .collect::<Result<Vec<_>>>()?;
                let schema = arrow_schema(&u.schema);
                let out_schema = Arc::clone(&schema);
                let node =
                    self.graph
                        .operator("Union", self.parallelism, NodeKind::Operator, move |_| {
                            Ok(CalcOperator::new(None, None, Arc::clone(&out_schema)))
                        });
                for i in &inputs {
                    let p = if i.parallelism == self.parallelism {
                        SqlPartitioning::Forward
                    } else {
                        SqlPartitioning::Rebalance
                    };
                    self.graph.connect(i.node, node, Arc::clone(&i.schema), p);
                }
                Ok(Stream {
                    node,
                    schema,
                    parallelism: self.parallelism,
                    window: None,
                    append_only: inputs.iter().all(|i| i.append_only),
                })
            }
            other => Err(Error::unsupported(format!(
                "{} is not supported in streaming queries yet",
                describe(other)
            ))),
        }
    }

    /// `input`, the planned rows of `p.input`, projected by `p`.
    pub(crate) fn project(
        &mut self,
        p: &datafusion_expr::Projection,
        input: &Stream,
    ) -> Result<Stream> {
        let exprs = physical(&p.expr, p.input.schema())?;
        let schema = arrow_schema(&p.schema);
        // Window columns survive a projection that passes them on, renamed or not
        // (`window_start AS starttime`).
        let in_df = p.input.schema();
        let window = input.window.and_then(|w| {
            let find = |i: usize| {
                p.expr.iter().position(|e| {
                    matches!(e.clone().unalias(), Expr::Column(c)
                        if in_df.index_of_column(&c).ok() == Some(i))
                })
            };
            Some(WindowColumns {
                start: find(w.start)?,
                end: find(w.end)?,
                time: w.time.and_then(find),
                mode: w.mode,
            })
        });
        let mut s = self.calc(input, "Calc", None, Some(exprs), schema);
        s.window = window;
        Ok(s)
    }

    fn plan_scan(&mut self, scan: &datafusion_expr::TableScan) -> Result<Stream> {
        let source = &scan.source;
        let full = if let Some(t) = source.downcast_ref::<TableScanSource>() {
            self.plan_table(&t.table)?
        } else if let Some(p) = source.downcast_ref::<PhysicalTable>() {
            self.plan_physical(&p.name)?
        } else if let Some(w) = source.downcast_ref::<WindowTableFunction>() {
            self.plan_window_function(w)?
        } else {
            return Err(Error::unsupported(format!(
                "scan of `{}`: unknown table source",
                scan.table_name
            )));
        };
        if !scan.filters.is_empty() {
            return Err(Error::unsupported("filters pushed into a scan"));
        }
        match &scan.projection {
            None => Ok(full),
            Some(indices) if indices.iter().copied().eq(0..full.schema.fields().len()) => Ok(full),
            Some(indices) => {
                let physical: Vec<Arc<dyn PhysicalExpr>> = indices
                    .iter()
                    .map(|&i| {
                        Arc::new(datafusion_physical_expr::expressions::Column::new(
                            full.schema.field(i).name(),
                            i,
                        )) as Arc<dyn PhysicalExpr>
                    })
                    .collect();
                let schema = arrow_schema(&scan.projected_schema);
                let window = full.window.and_then(|w| {
                    let find = |c: usize| indices.iter().position(|&i| i == c);
                    Some(WindowColumns {
                        start: find(w.start)?,
                        end: find(w.end)?,
                        time: w.time.and_then(find),
                        mode: w.mode,
                    })
                });
                let mut s = self.calc(&full, "Calc", None, Some(physical), schema);
                s.window = window;
                Ok(s)
            }
        }
    }

    /// The rows of a table with computed columns and watermarks; shared by every scan.
    fn plan_table(&mut self, table: &Arc<CatalogTable>) -> Result<Stream> {
        let name = table.def.name.clone();
        if let Some(s) = self.tables.get(&name) {
            return Ok(s.clone());
        }
        let mut stream = self.plan(&table.plan)?;
        if let Some(w) = &table.watermark {
            let expr = physical(std::slice::from_ref(w), table.plan.schema())?
                .into_iter()
                .next()
                .ok_or_else(|| Error::plan("watermark expression vanished"))?;
            let idle = self.source_idle_timeout_ms;
            let known = self.split_registries.get(&name).cloned();
            let node = self.graph.operator(
                &format!("WatermarkAssigner({name})"),
                stream.parallelism,
                NodeKind::Operator,
                move |_| {
                    Ok(WatermarkAssigner::new(Arc::clone(&expr), idle)
                        .with_known_splits(known.clone()))
                },
            );
            self.graph.connect(
                stream.node,
                node,
                Arc::clone(&stream.schema),
                SqlPartitioning::Forward,
            );
            stream.node = node;
        }
        self.tables.insert(name, stream.clone());
        Ok(stream)
    }

    fn plan_physical(&mut self, name: &str) -> Result<Stream> {
        if let Some(s) = self.sources.get(name) {
            return Ok(s.clone());
        }
        let table = self
            .catalog
            .table(name)
            .ok_or_else(|| Error::plan(format!("table `{name}` vanished")))?;
        let planned = connectors::add_source(&mut self.graph, table, self.parallelism)?;
        let (node, parallelism) = (planned.node, planned.parallelism);
        if let Some(splits) = planned.splits {
            self.split_registries.insert(name.to_string(), splits);
        }
        // A changelog format (`debezium-json`) makes the table an updating stream.
        let changelog = crate::format::TextFormat::from_options(&table.def.options)
            .is_ok_and(|f| f.is_changelog());
        let s = Stream {
            node,
            schema: Arc::clone(&table.physical_schema),
            parallelism,
            window: None,
            append_only: !changelog,
        };
        self.sources.insert(name.to_string(), s.clone());
        Ok(s)
    }

    fn plan_window_function(&mut self, w: &WindowTableFunction) -> Result<Stream> {
        let input = if let Some(t) = self.catalog.table(&w.input).cloned() {
            self.plan_table(&t)?
        } else {
            let plan = self.catalog.view_plan(&w.input)?;
            self.plan(&plan)?
        };
        if !input.append_only {
            return Err(Error::unsupported(format!(
                "a window table function over `{}`, which produces updates; window an \
                 append-only table",
                w.input
            )));
        }
        let time = input
            .schema
            .index_of(&w.time_column)
            .map_err(|_| Error::plan(format!("DESCRIPTOR column `{}` not found", w.time_column)))?;
        let n = input.schema.fields().len();
        let schema = Arc::clone(&w.schema);
        let kind = w.kind;
        let mode = window_mode(kind, input.schema.field(time))?;
        let out = Arc::clone(&schema);
        let processing_time = matches!(mode, WindowMode::ProcessingTime(_));
        let node = self.graph.operator(
            "WindowTableFunction",
            input.parallelism,
            NodeKind::Operator,
            move |_| {
                Ok(WindowAssigner::new(
                    kind,
                    time,
                    processing_time,
                    Arc::clone(&out),
                ))
            },
        );
        self.graph.connect(
            input.node,
            node,
            Arc::clone(&input.schema),
            SqlPartitioning::Forward,
        );
        Ok(Stream {
            node,
            schema,
            parallelism: input.parallelism,
            window: Some(WindowColumns {
                start: n,
                end: n + 1,
                time: Some(n + 2),
                mode,
            }),
            append_only: true,
        })
    }

    /// Adds `INSERT INTO table` of `stream`.
    ///
    /// # Errors
    /// When the columns do not match the table's.
    pub fn insert(
        &mut self,
        table: &CatalogTable,
        columns: &[String],
        stream: Stream,
    ) -> Result<()> {
        refuse_pending_windows(&stream, "INSERT")?;
        let target = &table.physical_schema;
        let source_fields = stream.schema.fields();
        let names: Vec<String> = if columns.is_empty() {
            target.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            columns.to_vec()
        };
        if names.len() != target.fields().len() || source_fields.len() != names.len() {
            return Err(Error::plan(format!(
                "INSERT INTO `{}`: the query gives {} columns but the table has {} ({}); select \
                 one value per column",
                table.def.name,
                source_fields.len(),
                target.fields().len(),
                target
                    .fields()
                    .iter()
                    .map(|f| format!("{} {}", f.name(), f.data_type()))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // By position, not by name: a join's output may repeat a name (`B.extra`,
        // `A.extra`). The Calc casts each column to the sink's type.
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = Vec::with_capacity(names.len());
        for field in target.fields() {
            let pos = names
                .iter()
                .position(|n| n == field.name())
                .ok_or_else(|| {
                    Error::plan(format!(
                        "INSERT INTO `{}`: column `{}` is not given a value",
                        table.def.name,
                        field.name()
                    ))
                })?;
            exprs.push(Arc::new(
                datafusion_physical_expr::expressions::Column::new(source_fields[pos].name(), pos),
            ));
        }
        let s = self.calc(&stream, "Calc", None, Some(exprs), Arc::clone(target));
        connectors::add_sink(&mut self.graph, table, &s)
    }

    /// `input` with the values of `keys` (over `in_df`, the input's logical schema) as
    /// columns an exchange can hash: plain columns are used as they are, other expressions
    /// are computed and appended. Returns the stream and the key columns.
    pub(crate) fn with_key_columns(
        &mut self,
        input: &Stream,
        in_df: &DFSchema,
        keys: &[Expr],
    ) -> Result<(Stream, Vec<usize>)> {
        let mut key_columns = Vec::with_capacity(keys.len());
        let mut extra = Vec::new();
        for k in keys {
            match k.clone().unalias() {
                Expr::Column(c) => key_columns.push(in_df.index_of_column(&c)?),
                other => {
                    key_columns.push(input.schema.fields().len() + extra.len());
                    extra.push(other);
                }
            }
        }
        if extra.is_empty() {
            return Ok((input.clone(), key_columns));
        }
        let mut exprs: Vec<Arc<dyn PhysicalExpr>> = input
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                Arc::new(datafusion_physical_expr::expressions::Column::new(
                    f.name(),
                    i,
                )) as Arc<dyn PhysicalExpr>
            })
            .collect();
        let computed = physical(&extra, in_df)?;
        let mut fields: Vec<arrow::datatypes::Field> = input
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (i, e) in computed.iter().enumerate() {
            fields.push(arrow::datatypes::Field::new(
                format!("__key{i}"),
                e.data_type(&input.schema)?,
                true,
            ));
        }
        exprs.extend(computed);
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        Ok((
            self.calc(input, "Calc", None, Some(exprs), schema),
            key_columns,
        ))
    }

    pub(crate) fn graph(&mut self) -> &mut GraphBuilder {
        &mut self.graph
    }

    pub(crate) fn default_parallelism(&self) -> u32 {
        self.parallelism
    }
}

fn describe(plan: &LogicalPlan) -> String {
    match plan {
        LogicalPlan::Window(_) => {
            "an OVER window other than a Top-N (`ROW_NUMBER() OVER (...)` filtered by \
             `rownum <= N`)"
                .into()
        }
        LogicalPlan::Sort(_) => "ORDER BY".into(),
        LogicalPlan::Limit(_) => "LIMIT".into(),
        LogicalPlan::Distinct(_) => "DISTINCT".into(),
        LogicalPlan::Values(_) => "VALUES".into(),
        LogicalPlan::EmptyRelation(_) => "a query without FROM".into(),
        other => format!("the plan node `{}`", other.display()),
    }
}
