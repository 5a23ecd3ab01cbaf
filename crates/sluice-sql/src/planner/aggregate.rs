//! Planning of `GROUP BY`: window aggregation over window table functions (session
//! windows merged by their own operator), group windows (`GROUP BY TUMBLE(ts, size)`)
//! planned as a window assigner and a window aggregation, and regular updating
//! aggregation.

use std::sync::Arc;

use std::collections::BTreeSet;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion_expr::expr::AggregateFunction;
use datafusion_expr::{Aggregate, Expr, LogicalPlan};
use datafusion_physical_expr::aggregate::AggregateExprBuilder;
use datafusion_physical_expr::expressions::Column as PhysicalColumn;
use datafusion_physical_expr::PhysicalExpr;
use sluice_runtime::graph::NodeKind;

use super::{arrow_schema, physical, JobPlanner, Stream, WindowColumns, WindowMode};
use crate::catalog::window::interval_ms;
use crate::catalog::{WindowKind, WindowTableFunction};
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::functions::group_window::{property_of, WindowProperty, GROUP_WINDOWS};
use crate::operators::group_aggregate::{GroupAggregateOperator, GroupAggregateSpec};
use crate::operators::session_aggregate::SessionAggregateOperator;
use crate::operators::window_aggregate::{
    AggregateCall, WindowAggregateOperator, WindowAggregateSpec, WindowOutput,
};
use crate::operators::window_assigner::WindowAssigner;

fn unalias(e: &Expr) -> &Expr {
    match e {
        Expr::Alias(a) => unalias(&a.expr),
        other => other,
    }
}

pub(super) fn plan_aggregate(planner: &mut JobPlanner<'_>, a: &Aggregate) -> Result<Stream> {
    let input = planner.plan(&a.input)?;
    if let Some(call) = group_window_call(a)? {
        return plan_group_window(planner, a, input, &call);
    }
    let window = match input.window {
        Some(w) if grouped_by_window(a, w) => w,
        _ => return plan_group_aggregate(planner, a, input),
    };
    if window.mode == WindowMode::Session {
        check_session_partition(a)?;
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
    plan_window_aggregate(planner, a, &input, window, output, &key_exprs, None)
}

/// A group window in `GROUP BY`: `TUMBLE(ts, size)`, `HOP(ts, slide, size)` or
/// `SESSION(ts, gap)`.
struct GroupWindowCall {
    /// Its position among the group expressions.
    index: usize,
    /// `tumble`, `hop` or `session`.
    name: &'static str,
    /// Its arguments: the time attribute, then intervals.
    args: Vec<Expr>,
}

fn group_window_call(a: &Aggregate) -> Result<Option<GroupWindowCall>> {
    let mut found = None;
    for (index, g) in a.group_expr.iter().enumerate() {
        let Expr::ScalarFunction(f) = unalias(g) else {
            continue;
        };
        let name = f.func.name().to_ascii_lowercase();
        let Some(name) = GROUP_WINDOWS.into_iter().find(|w| *w == name) else {
            continue;
        };
        if found.is_some() {
            return Err(Error::plan("GROUP BY holds two group windows; keep one"));
        }
        found = Some(GroupWindowCall {
            index,
            name,
            args: f.args.clone(),
        });
    }
    Ok(found)
}

/// The window of a group window call, from its interval arguments.
fn group_window_kind(call: &GroupWindowCall) -> Result<WindowKind> {
    let function = call.name.to_ascii_uppercase();
    let n = call.args.len();
    let ms = |i: usize| interval_ms(&call.args, i, &function).map_err(Error::from);
    let kind = match (call.name, n) {
        ("tumble", 2 | 3) => WindowKind::Tumble {
            size_ms: ms(1)?,
            offset_ms: if n == 3 { ms(2)? } else { 0 },
        },
        ("hop", 3 | 4) => WindowKind::Hop {
            slide_ms: ms(1)?,
            size_ms: ms(2)?,
            offset_ms: if n == 4 { ms(3)? } else { 0 },
        },
        ("session", 2) => WindowKind::Session { gap_ms: ms(1)? },
        _ => {
            return Err(Error::plan(format!(
                "wrong arguments for the group window {function}: use TUMBLE(ts, size), \
                 HOP(ts, slide, size) or SESSION(ts, gap)"
            )))
        }
    };
    let positive = match kind {
        WindowKind::Tumble { size_ms, .. } => size_ms > 0,
        WindowKind::Hop {
            slide_ms, size_ms, ..
        } => slide_ms > 0 && size_ms > 0,
        WindowKind::Session { gap_ms } => gap_ms > 0,
        WindowKind::Cumulate { .. } => true,
    };
    if !positive {
        return Err(Error::plan(format!(
            "{function}: window sizes must be positive"
        )));
    }
    Ok(kind)
}

/// `GROUP BY keys, TUMBLE(ts, ...)` (or `HOP`, `SESSION`): windows are assigned to the
/// input rows, then aggregated as a window table function's rows would be.
fn plan_group_window(
    planner: &mut JobPlanner<'_>,
    a: &Aggregate,
    input: Stream,
    call: &GroupWindowCall,
) -> Result<Stream> {
    let kind = group_window_kind(call)?;
    let (timed, time) = planner.with_key_columns(&input, a.input.schema(), &call.args[..1])?;
    let time = time[0];
    let time_type = match timed.schema.field(time).data_type() {
        DataType::Timestamp(_, tz) => DataType::Timestamp(TimeUnit::Millisecond, tz.clone()),
        other => {
            return Err(Error::plan(format!(
                "{}: the time attribute has type {other}; it must be a TIMESTAMP(3) with a \
                 WATERMARK",
                call.name.to_ascii_uppercase()
            )))
        }
    };
    let n = timed.schema.fields().len();
    let mut fields: Vec<Field> = timed
        .schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for name in ["window_start", "window_end", "window_time"] {
        fields.push(Field::new(name, time_type.clone(), false));
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let out = Arc::clone(&schema);
    let mode = super::window_mode(kind, timed.schema.field(time))?;
    let processing_time = matches!(mode, WindowMode::ProcessingTime(_));
    let node = planner.graph().operator(
        "GroupWindowAssigner",
        timed.parallelism,
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
    planner.graph().connect(
        timed.node,
        node,
        Arc::clone(&timed.schema),
        SqlPartitioning::Forward,
    );
    let window = WindowColumns {
        start: n,
        end: n + 1,
        time: Some(n + 2),
        mode,
    };
    let windowed = Stream {
        node,
        schema,
        parallelism: timed.parallelism,
        window: Some(window),
        append_only: timed.append_only,
    };
    let mut output = Vec::new();
    let mut key_exprs = Vec::new();
    for (i, g) in a.group_expr.iter().enumerate() {
        if i == call.index {
            output.push(WindowOutput::Start);
        } else {
            output.push(WindowOutput::Key(key_exprs.len()));
            key_exprs.push(g.clone());
        }
    }
    plan_window_aggregate(
        planner,
        a,
        &windowed,
        window,
        output,
        &key_exprs,
        Some(call),
    )
}

/// A session window table function must be partitioned by the aggregation's keys: Sluice
/// forms sessions per key.
fn check_session_partition(a: &Aggregate) -> Result<()> {
    fn session_source(plan: &LogicalPlan) -> Option<&WindowTableFunction> {
        match plan {
            LogicalPlan::Projection(p) => session_source(&p.input),
            LogicalPlan::Filter(f) => session_source(&f.input),
            LogicalPlan::SubqueryAlias(s) => session_source(&s.input),
            LogicalPlan::TableScan(t) => t.source.downcast_ref::<WindowTableFunction>(),
            _ => None,
        }
    }
    let Some(tvf) = session_source(&a.input) else {
        return Ok(());
    };
    let keys: BTreeSet<String> = a
        .group_expr
        .iter()
        .filter_map(|g| match unalias(g) {
            Expr::Column(c) if !c.name.starts_with("window_") => Some(c.name.clone()),
            _ => None,
        })
        .collect();
    let partition: BTreeSet<String> = tvf.partition_by.iter().cloned().collect();
    if keys != partition {
        return Err(Error::unsupported(format!(
            "SESSION windows partitioned by [{}] with GROUP BY keys [{}]: Sluice forms \
             sessions per key, so write SESSION(TABLE t PARTITION BY {}, DESCRIPTOR(ts), gap)",
            tvf.partition_by.join(", "),
            keys.iter().cloned().collect::<Vec<_>>().join(", "),
            keys.iter().cloned().collect::<Vec<_>>().join(", "),
        )));
    }
    Ok(())
}

/// The window aggregation of `a` over `input`, whose rows carry `window`; `output` says
/// where each group expression's output comes from, `key_exprs` are the group keys
/// besides the window, and `group_window` the `GROUP BY` window the properties
/// (`TUMBLE_START`, ...) refer to.
fn plan_window_aggregate(
    planner: &mut JobPlanner<'_>,
    a: &Aggregate,
    input: &Stream,
    window: WindowColumns,
    mut output: Vec<WindowOutput>,
    key_exprs: &[Expr],
    group_window: Option<&GroupWindowCall>,
) -> Result<Stream> {
    if !input.append_only {
        return Err(Error::unsupported(
            "a window aggregation over an input that produces updates",
        ));
    }
    let (stream, key_columns) = keyed_input(planner, a, input, key_exprs)?;
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
    let (aggregates, aggregate_output) = aggregate_calls(a, &input.schema, group_window)?;
    output.extend(aggregate_output);
    let schema = arrow_schema(&a.schema);
    // Windows of processing time are not event-time windows for the operators above.
    let event_time = !matches!(window.mode, WindowMode::ProcessingTime(_));
    let out_window = {
        let find = |w: WindowOutput| output.iter().position(|o| *o == w).filter(|_| event_time);
        match (find(WindowOutput::Start), find(WindowOutput::End)) {
            (Some(start), Some(end)) => Some(WindowColumns {
                start,
                end,
                time: find(WindowOutput::Time),
                mode: WindowMode::EventTime,
            }),
            _ => None,
        }
    };
    let spec = Arc::new(WindowAggregateSpec {
        keys,
        processing_time: match window.mode {
            WindowMode::ProcessingTime(kind) => Some(kind),
            _ => None,
        },
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
    let node = if window.mode == WindowMode::Session {
        planner.graph().operator(
            "SessionWindowAggregate",
            parallelism,
            NodeKind::Operator,
            move |_| {
                SessionAggregateOperator::new(Arc::clone(&spec), key_types.clone())
                    .map_err(Error::into_runtime)
            },
        )
    } else {
        planner.graph().operator(
            "WindowAggregate",
            parallelism,
            NodeKind::Operator,
            move |_| {
                WindowAggregateOperator::new(Arc::clone(&spec), key_types.clone())
                    .map_err(Error::into_runtime)
            },
        )
    };
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

/// The physical aggregate calls of `a`, and where each aggregate expression's output
/// comes from: a call, or a property (`TUMBLE_START`, ...) of `group_window`.
fn aggregate_calls(
    a: &Aggregate,
    input_schema: &arrow::datatypes::SchemaRef,
    group_window: Option<&GroupWindowCall>,
) -> Result<(Vec<AggregateCall>, Vec<WindowOutput>)> {
    let in_df = a.input.schema();
    let group_len = a.group_expr.len();
    let mut calls = Vec::new();
    let mut output = Vec::new();
    for (i, e) in a.aggr_expr.iter().enumerate() {
        let Expr::AggregateFunction(AggregateFunction { func, params }) = unalias(e) else {
            return Err(Error::unsupported(format!("aggregate expression {e}")));
        };
        if let Some((window, property)) = property_of(func.name()) {
            let matches = group_window
                .is_some_and(|g| g.name == window && g.args.iter().eq(params.args.iter()));
            if !matches {
                return Err(Error::plan(format!(
                    "{}(...) needs GROUP BY {}(...) with the same arguments",
                    func.name().to_ascii_uppercase(),
                    window.to_ascii_uppercase()
                )));
            }
            output.push(match property {
                WindowProperty::Start => WindowOutput::Start,
                WindowProperty::End => WindowOutput::End,
                WindowProperty::Rowtime => WindowOutput::Time,
            });
            continue;
        }
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
        output.push(WindowOutput::Aggregate(calls.len()));
        calls.push(AggregateCall {
            function: Arc::new(function),
            filter,
        });
    }
    Ok((calls, output))
}

/// A regular `GROUP BY`: an updating aggregation emitting a changelog.
fn plan_group_aggregate(
    planner: &mut JobPlanner<'_>,
    a: &Aggregate,
    input: Stream,
) -> Result<Stream> {
    super::refuse_pending_windows(&input, "an aggregation not grouped by the window")?;
    let (keyed, key_columns) = keyed_input(planner, a, &input, &a.group_expr)?;
    let (aggregates, _) = aggregate_calls(a, &input.schema, None)?;
    let key_types: Vec<DataType> = key_columns
        .iter()
        .map(|&i| keyed.schema.field(i).data_type().clone())
        .collect();
    let schema = arrow_schema(&a.schema);
    let spec = Arc::new(GroupAggregateSpec {
        state_ttl: planner.state_ttl(),
        retracting: !input.append_only,
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
