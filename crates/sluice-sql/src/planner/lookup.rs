//! Planning of lookup joins: a join whose right side reads a [`LookupTableSource`]
//! (`JOIN t FOR SYSTEM_TIME AS OF s.proc_time`) becomes a [`LookupJoinOperator`] chained
//! behind the left input; the right side's filters and projections run on the loaded
//! rows.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion_expr::{Join, JoinType, LogicalPlan};
use datafusion_physical_expr::expressions::{CastExpr, Column as PhysicalColumn};
use datafusion_physical_expr::PhysicalExpr;
use sluice_runtime::graph::NodeKind;

use super::{arrow_schema, physical, JobPlanner, Stream};
use crate::catalog::{CatalogTable, LookupTableSource};
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::format::TextFormat;
use crate::operators::lookup_join::{LookupJoinOperator, LookupJoinSpec, LookupStep, LookupTable};

/// The lookup table under `plan` (with the time column after `AS OF`) and the plan nodes
/// above its scan, top first.
fn lookup_side(plan: &LogicalPlan) -> Option<(Arc<CatalogTable>, String, Vec<&LogicalPlan>)> {
    let mut above = Vec::new();
    let mut node = plan;
    loop {
        match node {
            LogicalPlan::SubqueryAlias(a) => node = &a.input,
            LogicalPlan::Projection(p) => {
                above.push(node);
                node = &p.input;
            }
            LogicalPlan::Filter(f) => {
                above.push(node);
                node = &f.input;
            }
            LogicalPlan::TableScan(scan) => {
                let source = scan.source.downcast_ref::<LookupTableSource>()?;
                above.push(node);
                return Some((Arc::clone(&source.table), source.time_column.clone(), above));
            }
            _ => return None,
        }
    }
}

/// The steps that turn the loaded rows into the rows of the lookup side's plan.
fn lookup_steps(nodes: &[&LogicalPlan]) -> Result<Vec<LookupStep>> {
    let mut steps = Vec::new();
    for node in nodes.iter().rev() {
        match node {
            LogicalPlan::TableScan(scan) => {
                if !scan.filters.is_empty() {
                    return Err(Error::unsupported(
                        "filters pushed into a lookup table scan",
                    ));
                }
                if let Some(indices) = &scan.projection {
                    let full = scan.source.schema();
                    let exprs = indices
                        .iter()
                        .map(|&i| {
                            Arc::new(PhysicalColumn::new(full.field(i).name(), i))
                                as Arc<dyn PhysicalExpr>
                        })
                        .collect();
                    steps.push(LookupStep::Project(
                        exprs,
                        arrow_schema(&scan.projected_schema),
                    ));
                }
            }
            LogicalPlan::Filter(f) => {
                let predicate = physical(std::slice::from_ref(&f.predicate), f.input.schema())?;
                if let Some(p) = predicate.into_iter().next() {
                    steps.push(LookupStep::Filter(p));
                }
            }
            LogicalPlan::Projection(p) => {
                let exprs = physical(&p.expr, p.input.schema())?;
                steps.push(LookupStep::Project(exprs, arrow_schema(&p.schema)));
            }
            _ => return Err(Error::plan("unexpected node over a lookup table")),
        }
    }
    Ok(steps)
}

/// Plans `j` as a lookup join when its right side is a lookup table.
pub(super) fn try_plan_lookup_join(
    planner: &mut JobPlanner<'_>,
    j: &Join,
) -> Result<Option<Stream>> {
    if lookup_side(&j.left).is_some() {
        return Err(Error::unsupported(
            "a lookup table (FOR SYSTEM_TIME AS OF) on the left of a join; put the stream \
             first: `FROM stream JOIN dim FOR SYSTEM_TIME AS OF stream.proc_time`",
        ));
    }
    let Some((table, _, nodes)) = lookup_side(&j.right) else {
        return Ok(None);
    };
    let left_outer = match j.join_type {
        JoinType::Inner => false,
        JoinType::Left => true,
        other => {
            return Err(Error::unsupported(format!(
                "a {other} lookup join; Flink's lookup joins are INNER or LEFT"
            )))
        }
    };
    let name = table.def.name.clone();
    if table.connector() != "filesystem" {
        return Err(Error::unsupported(format!(
            "lookup table `{name}` has connector '{}'; lookup joins read 'filesystem' tables",
            table.connector()
        )));
    }
    if j.on.is_empty() {
        return Err(Error::plan(format!(
            "the lookup join with `{name}` needs an equality on its columns (ON s.k = {name}.k)"
        )));
    }
    let path = table
        .option("path")
        .ok_or_else(|| Error::config(format!("lookup table `{name}` needs the option 'path'")))?;
    let ttl = table
        .option("lookup.cache.ttl")
        .or_else(|| table.option("lookup.join.cache.ttl"))
        .map(|v| crate::config::parse_duration("lookup.cache.ttl", v))
        .transpose()?
        .map_or(3_600_000, |d| d.as_millis() as i64);
    let lookup = LookupTable {
        path: PathBuf::from(path),
        format: TextFormat::from_options(&table.def.options)?,
        schema: Arc::clone(&table.physical_schema),
        name: name.clone(),
        ttl_ms: ttl.max(1),
    };
    let steps = lookup_steps(&nodes)?;
    let left = planner.plan(&j.left)?;
    super::refuse_pending_windows(&left, "a lookup join")?;
    let (left_exprs, right_exprs): (Vec<_>, Vec<_>) = j.on.iter().cloned().unzip();
    let input_width = left.schema.fields().len();
    let (left, input_keys) = planner.with_key_columns(&left, j.left.schema(), &left_exprs)?;
    let right_schema = arrow_schema(j.right.schema());
    let mut lookup_keys = Vec::with_capacity(right_exprs.len());
    let mut key_types = Vec::with_capacity(right_exprs.len());
    for (e, &l) in physical(&right_exprs, j.right.schema())?
        .into_iter()
        .zip(&input_keys)
    {
        let want = left.schema.field(l).data_type().clone();
        let have = e.data_type(&right_schema)?;
        lookup_keys.push(if have == want {
            e
        } else {
            Arc::new(CastExpr::new(e, want.clone(), None)) as Arc<dyn PhysicalExpr>
        });
        key_types.push(want);
    }
    let joined_df = j.left.schema().as_ref().clone().join(j.right.schema())?;
    let filter = match &j.filter {
        None => None,
        Some(f) => physical(std::slice::from_ref(f), &joined_df)?
            .into_iter()
            .next(),
    };
    let schema = arrow_schema(&j.schema);
    let spec = Arc::new(LookupJoinSpec {
        table: lookup,
        steps,
        lookup_keys,
        input_keys,
        input_width,
        left_outer,
        filter,
        schema: Arc::clone(&schema),
    });
    let parallelism = left.parallelism;
    let node = planner.graph().operator(
        &format!("LookupJoin({name})"),
        parallelism,
        NodeKind::Operator,
        move |_| {
            LookupJoinOperator::new(Arc::clone(&spec), key_types.clone())
                .map_err(Error::into_runtime)
        },
    );
    planner.graph().connect(
        left.node,
        node,
        Arc::clone(&left.schema),
        SqlPartitioning::Forward,
    );
    Ok(Some(Stream {
        node,
        schema,
        parallelism,
        window: None,
        append_only: left.append_only,
    }))
}
