//! Planning of Top-N and deduplication: a filter on the row number of a `ROW_NUMBER()
//! OVER (PARTITION BY ... ORDER BY ...)` window becomes a [`RankOperator`] after a hash
//! exchange on the partition key.

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::DataType;
use datafusion_common::ScalarValue;
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{BinaryExpr, Expr, Filter, LogicalPlan, Operator, Projection, Window};
use sluice_runtime::graph::NodeKind;

use super::{arrow_schema, physical, JobPlanner, Stream};
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::operators::rank::{RankOperator, RankSpec};

/// The Top-N pattern: a filter over a window of one `ROW_NUMBER()`, with projections of
/// columns in between (the optimizer puts them there to drop unused columns).
pub(super) struct RankPattern<'a> {
    filter: &'a Filter,
    /// The projections between the window and the filter, bottom first.
    projections: Vec<&'a Projection>,
    window: &'a Window,
    /// The row number's column in the filter's input.
    pub row_number: usize,
}

/// The Top-N pattern at `plan`, if it is one.
pub(super) fn rank_pattern(plan: &LogicalPlan) -> Option<RankPattern<'_>> {
    let LogicalPlan::Filter(filter) = plan else {
        return None;
    };
    let mut projections = Vec::new();
    let mut input = filter.input.as_ref();
    let window = loop {
        match input {
            LogicalPlan::SubqueryAlias(a) => input = &a.input,
            LogicalPlan::Projection(p) => {
                projections.push(p);
                input = &p.input;
            }
            LogicalPlan::Window(w) => break w,
            _ => return None,
        }
    };
    projections.reverse();
    // Follow the row number up through the projections.
    let mut row_number = row_number_index(window);
    for p in &projections {
        row_number = p.expr.iter().position(|e| {
            matches!(e.clone().unalias(), Expr::Column(c)
                if p.input.schema().index_of_column(&c).ok() == Some(row_number))
        })?;
    }
    Some(RankPattern {
        filter,
        projections,
        window,
        row_number,
    })
}

/// Whether `expr` refers to column `index` of `plan`'s schema.
pub(super) fn refers_to(expr: &Expr, plan: &LogicalPlan, index: usize) -> bool {
    expr.column_refs()
        .iter()
        .any(|c| plan.schema().index_of_column(c).ok() == Some(index))
}

/// The row number column of a window: after the input's columns.
fn row_number_index(w: &Window) -> usize {
    w.input.schema().fields().len()
}

/// The ranks a filter keeps, and its conditions that do not involve the row number.
fn rank_range(f: &Filter, rn: usize) -> Result<(u64, u64, Vec<Expr>)> {
    let (mut start, mut end) = (1_i64, None::<i64>);
    let mut rest = Vec::new();
    let int = |e: &Expr| match e {
        Expr::Literal(v, _) => match v.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(v))) => Some(v),
            _ => None,
        },
        _ => None,
    };
    let is_rn = |e: &Expr| matches!(e, Expr::Column(c) if f.input.schema().index_of_column(c).ok() == Some(rn));
    for c in split_conjunction(&f.predicate) {
        if !refers_to(c, &f.input, rn) {
            rest.push(c.clone());
            continue;
        }
        let unsupported = || {
            Error::unsupported(format!(
                "the condition `{c}` on a row number; a Top-N filters it with `rownum <= N`, \
                 `rownum < N`, `rownum = N` or `rownum BETWEEN a AND b`"
            ))
        };
        let mut bound = |op: Operator, v: i64| -> Result<()> {
            match op {
                Operator::Lt => end = Some(end.map_or(v - 1, |e| e.min(v - 1))),
                Operator::LtEq => end = Some(end.map_or(v, |e| e.min(v))),
                Operator::Eq => {
                    start = start.max(v);
                    end = Some(end.map_or(v, |e| e.min(v)));
                }
                Operator::Gt => start = start.max(v + 1),
                Operator::GtEq => start = start.max(v),
                _ => return Err(unsupported()),
            }
            Ok(())
        };
        match c {
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if is_rn(left) && int(right).is_some() =>
            {
                bound(*op, int(right).unwrap_or_default())?;
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right })
                if is_rn(right) && int(left).is_some() =>
            {
                match op.swap() {
                    Some(op) => bound(op, int(left).unwrap_or_default())?,
                    None => return Err(unsupported()),
                }
            }
            Expr::Between(b)
                if !b.negated
                    && is_rn(&b.expr)
                    && int(&b.low).is_some()
                    && int(&b.high).is_some() =>
            {
                bound(Operator::GtEq, int(&b.low).unwrap_or_default())?;
                bound(Operator::LtEq, int(&b.high).unwrap_or_default())?;
            }
            other => {
                return Err(Error::unsupported(format!(
                    "the condition `{other}` on a row number; a Top-N filters it with \
                     `rownum <= N`, `rownum < N`, `rownum = N` or `rownum BETWEEN a AND b`"
                )))
            }
        }
    }
    let end = end.ok_or_else(|| {
        Error::unsupported(
            "a ROW_NUMBER() without an upper bound; keep the first rows with `WHERE rownum <= N`",
        )
    })?;
    if end < start || end < 1 {
        return Err(Error::plan(format!(
            "the row number filter keeps no row (ranks {start} to {end})"
        )));
    }
    Ok((start.max(1) as u64, end as u64, rest))
}

/// Plans the Top-N of `pattern`; `emit_rank` says whether the row number is used above.
pub(super) fn plan_rank(
    planner: &mut JobPlanner<'_>,
    pattern: &RankPattern<'_>,
    emit_rank: bool,
) -> Result<Stream> {
    let (f, w) = (pattern.filter, pattern.window);
    let [Expr::WindowFunction(wf)] = w.window_expr.as_slice() else {
        return Err(Error::unsupported(
            "several OVER windows in one SELECT; a Top-N has one ROW_NUMBER()",
        ));
    };
    let name = wf.fun.name().to_ascii_lowercase();
    if name != "row_number" {
        return Err(Error::unsupported(format!(
            "the window function {name}() (Sluice runs Top-N and deduplication with ROW_NUMBER())"
        )));
    }
    let (rank_start, rank_end, rest) = rank_range(f, pattern.row_number)?;
    let input = planner.plan(&w.input)?;
    super::refuse_pending_windows(&input, "a Top-N")?;
    let retracting = !input.append_only;
    let params = &wf.params;
    let mut keys = params.partition_by.clone();
    keys.extend(params.order_by.iter().map(|s| s.expr.clone()));
    let (input, columns) = planner.with_key_columns(&input, w.input.schema(), &keys)?;
    let partition_columns = columns[..params.partition_by.len()].to_vec();
    let order: Vec<(usize, SortOptions)> = columns[params.partition_by.len()..]
        .iter()
        .zip(&params.order_by)
        .map(|(&c, s)| {
            (
                c,
                SortOptions {
                    descending: !s.asc,
                    nulls_first: s.nulls_first,
                },
            )
        })
        .collect();
    if order.is_empty() {
        return Err(Error::unsupported(
            "ROW_NUMBER() without ORDER BY; say which rows come first",
        ));
    }
    let window_end = input.window.and_then(|wc| {
        (partition_columns.contains(&wc.start) && partition_columns.contains(&wc.end))
            .then_some(wc.end)
    });
    if retracting && window_end.is_some() {
        return Err(Error::unsupported(
            "a window Top-N over an updating input; rank the rows of a window aggregation or \
             a window table function",
        ));
    }
    let later_wins_ties = rank_end == 1
        && order.len() == 1
        && order[0].1.descending
        && matches!(
            input.schema.field(order[0].0).data_type(),
            DataType::Timestamp(..)
        );
    let schema = arrow_schema(&w.schema);
    let spec = Arc::new(RankSpec {
        input_schema: Arc::clone(&input.schema),
        partition_columns: partition_columns.clone(),
        order,
        rank_start,
        rank_end,
        output_width: w.input.schema().fields().len(),
        emit_rank,
        later_wins_ties,
        window_end,
        retracting,
        schema: Arc::clone(&schema),
        state_ttl: planner.state_ttl(),
    });
    let (parallelism, partitioning) = if partition_columns.is_empty() {
        (1, SqlPartitioning::Global)
    } else {
        (
            planner.default_parallelism(),
            SqlPartitioning::Hash(partition_columns),
        )
    };
    let label = match (window_end.is_some(), rank_end) {
        (true, 1) => "WindowDeduplicate",
        (true, _) => "WindowRank",
        (false, 1) => "Deduplicate",
        (false, _) => "Rank",
    };
    let node = planner
        .graph()
        .operator(label, parallelism, NodeKind::Operator, move |_| {
            RankOperator::new(Arc::clone(&spec)).map_err(Error::into_runtime)
        });
    planner
        .graph()
        .connect(input.node, node, Arc::clone(&input.schema), partitioning);
    let mut stream = Stream {
        node,
        schema,
        parallelism,
        window: window_end.and(input.window),
        append_only: window_end.is_some(),
    };
    for p in &pattern.projections {
        stream = planner.project(p, &stream)?;
    }
    if rest.is_empty() {
        return Ok(stream);
    }
    let predicate = datafusion_expr::utils::conjunction(rest)
        .ok_or_else(|| Error::plan("a filter without conditions"))?;
    let predicate = physical(std::slice::from_ref(&predicate), f.input.schema())?
        .into_iter()
        .next();
    let schema = Arc::clone(&stream.schema);
    Ok(planner.calc(&stream, "Calc", predicate, None, schema))
}
