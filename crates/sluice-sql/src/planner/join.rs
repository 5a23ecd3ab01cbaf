//! Planning of regular equi-joins: an inner (or semi) join of append-only inputs runs as
//! the append-only [`JoinOperator`] (a window join when both inputs carry windows and
//! the condition equates their ends: its rows are dropped when their window closes); outer, anti and semi joins and joins of updating
//! inputs run as the [`ChangelogJoinOperator`]. Lookup joins are planned in
//! [`super::lookup`].

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion_expr::utils::split_conjunction;
use datafusion_expr::{BinaryExpr, Expr, Join, JoinType, Operator};
use datafusion_physical_expr::PhysicalExpr;

use super::{arrow_schema, physical, JobPlanner, Stream, WindowMode};
use crate::catalog::is_rowtime;
use crate::catalog::window::interval_ms;
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::operators::changelog_join::{
    ChangelogJoinKind, ChangelogJoinOperator, ChangelogJoinSpec,
};
use crate::operators::join::{JoinKind, JoinOperator, JoinSpec, RowExpiry, SideExpiry};

pub(super) fn plan_join(planner: &mut JobPlanner<'_>, j: &Join) -> Result<Stream> {
    if let Some(stream) = super::lookup::try_plan_lookup_join(planner, j)? {
        return Ok(stream);
    }
    if j.null_aware {
        return Err(Error::unsupported(
            "NOT IN over a subquery (its NULL semantics); write NOT EXISTS",
        ));
    }
    if j.on.is_empty() {
        return Err(Error::unsupported(
            "a join without an equality between the two inputs (a cross join)",
        ));
    }
    let left = planner.plan(&j.left)?;
    let right = planner.plan(&j.right)?;
    super::refuse_pending_windows(&left, "a join")?;
    super::refuse_pending_windows(&right, "a join")?;
    let append_only = left.append_only && right.append_only;
    let kind = match j.join_type {
        JoinType::Inner if append_only => JoinKind::Inner,
        JoinType::LeftSemi if append_only => JoinKind::LeftSemi,
        JoinType::RightSemi if append_only => JoinKind::RightSemi,
        other => {
            let kind = match other {
                JoinType::Inner => ChangelogJoinKind::Inner,
                JoinType::Left => ChangelogJoinKind::Left,
                JoinType::Right => ChangelogJoinKind::Right,
                JoinType::Full => ChangelogJoinKind::Full,
                JoinType::LeftSemi => ChangelogJoinKind::LeftSemi,
                JoinType::LeftAnti => ChangelogJoinKind::LeftAnti,
                JoinType::RightSemi => ChangelogJoinKind::RightSemi,
                JoinType::RightAnti => ChangelogJoinKind::RightAnti,
                other => {
                    return Err(Error::unsupported(format!("{other} joins")));
                }
            };
            return plan_changelog_join(planner, j, kind, left, right);
        }
    };
    let expiry = window_join_ends(j, &left, &right)
        .map(|(l, r)| RowExpiry {
            left: SideExpiry {
                column: l,
                offset_ms: -1,
            },
            right: SideExpiry {
                column: r,
                offset_ms: -1,
            },
            drop_late: false,
        })
        .or_else(|| interval_join(j));
    let label = match expiry {
        Some(e) if e.drop_late => "IntervalJoin",
        Some(_) => "WindowJoin",
        None => "Join",
    };
    let inputs = JoinInputs::new(planner, j, &left, &right)?;
    let spec = Arc::new(JoinSpec {
        expiry,
        kind,
        joined_schema: Arc::clone(&inputs.joined_schema),
        left_keys: inputs.left_keys.clone(),
        right_keys: inputs.right_keys.clone(),
        left_width: inputs.left_width,
        right_width: inputs.right_width,
        filter: inputs.filter.clone(),
        schema: Arc::clone(&inputs.schema),
        state_ttl: planner.state_ttl(),
    });
    let key_types = inputs.key_types.clone();
    let parallelism = planner.default_parallelism();
    let node = planner
        .graph()
        .two_input_operator(label, parallelism, move |_| {
            JoinOperator::new(Arc::clone(&spec), key_types.clone()).map_err(Error::into_runtime)
        });
    Ok(inputs.connect(planner, node, parallelism, true))
}

/// An interval join: the condition bounds the difference of the inputs' event time
/// attributes from both sides (`l.t BETWEEN r.t - INTERVAL '5' SECOND AND r.t`, or the
/// same with `>=`/`<=`/`>`/`<`). Returns the expiry of both sides' rows.
fn interval_join(j: &Join) -> Option<RowExpiry> {
    let filter = j.filter.as_ref()?;
    // A side of a comparison: a time attribute of one input, plus milliseconds.
    let term = |e: &Expr| -> Option<(bool, usize, i64)> {
        let (column, offset) = match e.clone().unalias() {
            Expr::Column(c) => (c, 0),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let Expr::Column(c) = left.as_ref().clone().unalias() else {
                    return None;
                };
                let ms = interval_ms(std::slice::from_ref(right.as_ref()), 0, "an interval join")
                    .ok()?;
                match op {
                    Operator::Plus => (c, ms),
                    Operator::Minus => (c, -ms),
                    _ => return None,
                }
            }
            _ => return None,
        };
        for (is_left, schema) in [(true, j.left.schema()), (false, j.right.schema())] {
            if let Ok(i) = schema.index_of_column(&column) {
                return is_rowtime(schema.field(i)).then_some((is_left, i, offset));
            }
        }
        None
    };
    let (mut lower, mut upper) = (None::<i64>, None::<i64>);
    let mut columns = None;
    for c in split_conjunction(filter) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = c else {
            continue;
        };
        let (Some(a), Some(b)) = (term(left), term(right)) else {
            continue;
        };
        // a.t + a.off OP b.t + b.off, with a and b of different inputs.
        let ((l, lo), (r, ro), op) = match (a.0, b.0) {
            (true, false) => ((a.1, a.2), (b.1, b.2), *op),
            (false, true) => ((b.1, b.2), (a.1, a.2), op.swap()?),
            _ => continue,
        };
        if *columns.get_or_insert((l, r)) != (l, r) {
            return None;
        }
        // l - r OP ro - lo
        let bound = ro - lo;
        match op {
            Operator::GtEq => lower = Some(lower.map_or(bound, |x| x.max(bound))),
            Operator::Gt => lower = Some(lower.map_or(bound + 1, |x| x.max(bound + 1))),
            Operator::LtEq => upper = Some(upper.map_or(bound, |x| x.min(bound))),
            Operator::Lt => upper = Some(upper.map_or(bound - 1, |x| x.min(bound - 1))),
            _ => {}
        }
    }
    let ((l, r), lower, upper) = (columns?, lower?, upper?);
    Some(RowExpiry {
        left: SideExpiry {
            column: l,
            offset_ms: -lower,
        },
        right: SideExpiry {
            column: r,
            offset_ms: upper,
        },
        drop_late: true,
    })
}

/// A window join: both inputs carry event-time windows and the condition equates their
/// `window_end`s. Returns the two `window_end` columns.
fn window_join_ends(j: &Join, left: &Stream, right: &Stream) -> Option<(usize, usize)> {
    let (lw, rw) = (left.window?, right.window?);
    if lw.mode != WindowMode::EventTime || rw.mode != WindowMode::EventTime {
        return None;
    }
    let column = |e: &Expr, schema: &datafusion_common::DFSchema| match e.clone().unalias() {
        Expr::Column(c) => schema.index_of_column(&c).ok(),
        _ => None,
    };
    j.on.iter()
        .any(|(l, r)| {
            column(l, j.left.schema()) == Some(lw.end)
                && column(r, j.right.schema()) == Some(rw.end)
        })
        .then_some((lw.end, rw.end))
}

/// A join's inputs with their key columns, and what every join operator needs.
struct JoinInputs {
    left: Stream,
    right: Stream,
    left_keys: Vec<usize>,
    right_keys: Vec<usize>,
    left_width: usize,
    right_width: usize,
    key_types: Vec<DataType>,
    joined_schema: SchemaRef,
    filter: Option<Arc<dyn PhysicalExpr>>,
    schema: SchemaRef,
}

impl JoinInputs {
    fn new(planner: &mut JobPlanner<'_>, j: &Join, left: &Stream, right: &Stream) -> Result<Self> {
        let (left_exprs, right_exprs): (Vec<_>, Vec<_>) = j.on.iter().cloned().unzip();
        let left_width = left.schema.fields().len();
        let right_width = right.schema.fields().len();
        let (left, left_keys) = planner.with_key_columns(left, j.left.schema(), &left_exprs)?;
        let (right, right_keys) =
            planner.with_key_columns(right, j.right.schema(), &right_exprs)?;
        let mut key_types = Vec::with_capacity(left_keys.len());
        for (&l, &r) in left_keys.iter().zip(&right_keys) {
            let (lt, rt) = (
                left.schema.field(l).data_type(),
                right.schema.field(r).data_type(),
            );
            if lt != rt {
                return Err(Error::unsupported(format!(
                    "join keys of different types ({lt} and {rt}); CAST one side to the other's \
                     type"
                )));
            }
            key_types.push(lt.clone());
        }
        // The other conditions see the left row then the right row, whatever the join
        // emits.
        let joined_df = j.left.schema().as_ref().clone().join(j.right.schema())?;
        let filter = match &j.filter {
            None => None,
            Some(f) => physical(std::slice::from_ref(f), &joined_df)?
                .into_iter()
                .next(),
        };
        let joined = arrow_schema(&joined_df);
        let joined_schema = Arc::new(Schema::new(
            joined
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
        ));
        Ok(JoinInputs {
            left,
            right,
            left_keys,
            right_keys,
            left_width,
            right_width,
            key_types,
            joined_schema,
            filter,
            schema: arrow_schema(&j.schema),
        })
    }

    /// Connects the inputs to `node` by hash of their keys; the stream of its output.
    fn connect(
        self,
        planner: &mut JobPlanner<'_>,
        node: sluice_core::OperatorId,
        parallelism: u32,
        append_only: bool,
    ) -> Stream {
        planner.graph().connect_input(
            self.left.node,
            node,
            Arc::clone(&self.left.schema),
            SqlPartitioning::Hash(self.left_keys),
            0,
        );
        planner.graph().connect_input(
            self.right.node,
            node,
            Arc::clone(&self.right.schema),
            SqlPartitioning::Hash(self.right_keys),
            1,
        );
        Stream {
            node,
            schema: self.schema,
            parallelism,
            window: None,
            append_only,
        }
    }
}

/// An outer, semi or anti join, or a join of updating inputs: a changelog.
fn plan_changelog_join(
    planner: &mut JobPlanner<'_>,
    j: &Join,
    kind: ChangelogJoinKind,
    left: Stream,
    right: Stream,
) -> Result<Stream> {
    let inputs = JoinInputs::new(planner, j, &left, &right)?;
    let spec = Arc::new(ChangelogJoinSpec {
        kind,
        left_schema: Arc::clone(&inputs.left.schema),
        right_schema: Arc::clone(&inputs.right.schema),
        left_keys: inputs.left_keys.clone(),
        right_keys: inputs.right_keys.clone(),
        left_width: inputs.left_width,
        right_width: inputs.right_width,
        filter: inputs.filter.clone(),
        joined_schema: Arc::clone(&inputs.joined_schema),
        schema: Arc::clone(&inputs.schema),
        state_ttl: planner.state_ttl(),
    });
    let key_types = inputs.key_types.clone();
    let parallelism = planner.default_parallelism();
    let node = planner
        .graph()
        .two_input_operator("ChangelogJoin", parallelism, move |_| {
            ChangelogJoinOperator::new(Arc::clone(&spec), key_types.clone())
                .map_err(Error::into_runtime)
        });
    Ok(inputs.connect(planner, node, parallelism, false))
}
