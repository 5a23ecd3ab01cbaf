//! Planning of `GROUP BY`: window aggregation over window table functions.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion_expr::expr::AggregateFunction;
use datafusion_expr::{Aggregate, Expr};
use datafusion_physical_expr::aggregate::AggregateExprBuilder;
use datafusion_physical_expr::expressions::Column as PhysicalColumn;
use datafusion_physical_expr::PhysicalExpr;
use sluice_runtime::graph::NodeKind;

use super::{arrow_schema, physical, JobPlanner, Stream, WindowColumns};
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::operators::group_aggregate::{GroupAggregateOperator, GroupAggregateSpec};
use crate::operators::window_aggregate::{
    AggregateCall, WindowAggregateOperator, WindowAggregateSpec, WindowOutput,
};

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

pub(super) fn plan_aggregate(planner: &mut JobPlanner<'_>, a: &Aggregate) -> Result<Stream> {
    let input = planner.plan(&a.input)?;
    let window = match input.window {
        Some(w) if grouped_by_window(a, w) => w,
        _ => return plan_group_aggregate(planner, a, input),
    };
    if !input.append_only {
        return Err(Error::unsupported(
            "a window aggregation over an input that produces updates",
        ));
    }
    let in_df = a.input.schema();
    let mut output = Vec::new();
    let mut key_exprs: Vec<Expr> = Vec::new();
    for g in &a.group_expr {
        let col = match unalias(g) {
            Expr::Column(c) => in_df.index_of_column(c).ok(),
            _ => None,
        };
        match col {
            Some(i) if i == window.start => output.push(WindowOutput::Start),
            Some(i) if i == window.end => output.push(WindowOutput::End),
            Some(i) if Some(i) == window.time => output.push(WindowOutput::Time),
            _ => {
                output.push(WindowOutput::Key(key_exprs.len()));
                key_exprs.push(g.clone());
            }
        }
    }
    if !output.contains(&WindowOutput::Start) || !output.contains(&WindowOutput::End) {
        return Err(Error::unsupported(
            "a window aggregation must GROUP BY both window_start and window_end",
        ));
    }
    let (stream, key_columns) = keyed_input(planner, a, &input, &key_exprs)?;
    let keyed_schema = Arc::clone(&stream.schema);
    let keys: Vec<Arc<dyn PhysicalExpr>> = key_columns
        .iter()
        .map(|&i| {
            Arc::new(PhysicalColumn::new(keyed_schema.field(i).name(), i)) as Arc<dyn PhysicalExpr>
        })
        .collect();
    let key_types = key_columns
        .iter()
        .map(|&i| keyed_schema.field(i).data_type().clone())
        .collect::<Vec<DataType>>();
    let aggregates = aggregate_calls(a, &input.schema)?;
    for i in 0..aggregates.len() {
        output.push(WindowOutput::Aggregate(i));
    }
    let schema = arrow_schema(&a.schema);
    let out_window = {
        let find = |w: WindowOutput| output.iter().position(|o| *o == w);
        match (find(WindowOutput::Start), find(WindowOutput::End)) {
            (Some(start), Some(end)) => Some(WindowColumns {
                start,
                end,
                time: find(WindowOutput::Time),
            }),
            _ => None,
        }
    };
    let spec = Arc::new(WindowAggregateSpec {
        keys,
        start_column: window.start,
        end_column: window.end,
        aggregates,
        output,
        schema: Arc::clone(&schema),
    });
    let (parallelism, partitioning) = if key_columns.is_empty() {
        (1, SqlPartitioning::Global)
    } else {
        (
            planner.default_parallelism(),
            SqlPartitioning::Hash(key_columns),
        )
    };
    let node = planner.graph().operator(
        "WindowAggregate",
        parallelism,
        NodeKind::Operator,
        move |_| {
            WindowAggregateOperator::new(Arc::clone(&spec), key_types.clone())
                .map_err(Error::into_runtime)
        },
    );
    planner
        .graph()
        .connect(stream.node, node, keyed_schema, partitioning);
    Ok(Stream {
        node,
        schema,
        parallelism,
        window: out_window,
        append_only: true,
    })
}

/// Whether `a` groups by both window columns of its input.
fn grouped_by_window(a: &Aggregate, window: WindowColumns) -> bool {
    let in_df = a.input.schema();
    let cols: Vec<usize> = a
        .group_expr
        .iter()
        .filter_map(|g| match unalias(g) {
            Expr::Column(c) => in_df.index_of_column(c).ok(),
            _ => None,
        })
        .collect();
    cols.contains(&window.start) && cols.contains(&window.end)
}

/// The group keys of `a` as columns of `input` (see [`JobPlanner::with_key_columns`]).
fn keyed_input(
    planner: &mut JobPlanner<'_>,
    a: &Aggregate,
    input: &Stream,
    keys: &[Expr],
) -> Result<(Stream, Vec<usize>)> {
    planner.with_key_columns(input, a.input.schema(), keys)
}

/// The physical aggregate calls of `a`.
fn aggregate_calls(
    a: &Aggregate,
    input_schema: &arrow::datatypes::SchemaRef,
) -> Result<Vec<AggregateCall>> {
    let in_df = a.input.schema();
    let group_len = a.group_expr.len();
    let mut calls = Vec::new();
    for (i, e) in a.aggr_expr.iter().enumerate() {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
            return Err(Error::unsupported(format!("aggregate expression {e}")));
        };
        if !params.order_by.is_empty() {
            return Err(Error::unsupported("ORDER BY inside an aggregate call"));
        }
        let args = physical(&params.args, in_df)?;
        let name = a.schema.field(group_len + i).name().clone();
        let function = AggregateExprBuilder::new(Arc::clone(func), args)
            .schema(Arc::clone(input_schema))
            .alias(name)
            .with_distinct(params.distinct)
            .build()?;
        let filter = match &params.filter {
            None => None,
            Some(f) => physical(std::slice::from_ref(f.as_ref()), in_df)?
                .into_iter()
                .next(),
        };
        calls.push(AggregateCall {
            function: Arc::new(function),
            filter,
        });
    }
    Ok(calls)
}

/// A regular `GROUP BY`: an updating aggregation emitting a changelog.
fn plan_group_aggregate(
    planner: &mut JobPlanner<'_>,
    a: &Aggregate,
    input: Stream,
) -> Result<Stream> {
    let (keyed, key_columns) = keyed_input(planner, a, &input, &a.group_expr)?;
    let aggregates = aggregate_calls(a, &input.schema)?;
    let key_types: Vec<DataType> = key_columns
        .iter()
        .map(|&i| keyed.schema.field(i).data_type().clone())
        .collect();
    let schema = arrow_schema(&a.schema);
    let spec = Arc::new(GroupAggregateSpec {
        key_columns: key_columns.clone(),
        aggregates,
        schema: Arc::clone(&schema),
    });
    let (parallelism, partitioning) = if key_columns.is_empty() {
        (1, SqlPartitioning::Global)
    } else {
        (
            planner.default_parallelism(),
            SqlPartitioning::Hash(key_columns),
        )
    };
    let node = planner.graph().operator(
        "GroupAggregate",
        parallelism,
        NodeKind::Operator,
        move |_| {
            GroupAggregateOperator::new(Arc::clone(&spec), key_types.clone())
                .map_err(Error::into_runtime)
        },
    );
    planner
        .graph()
        .connect(keyed.node, node, Arc::clone(&keyed.schema), partitioning);
    Ok(Stream {
        node,
        schema,
        parallelism,
        window: None,
        append_only: false,
    })
}
