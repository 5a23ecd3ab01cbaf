//! Planning of joins: a regular inner equi-join of append-only inputs.

use std::sync::Arc;

use datafusion_expr::{Join, JoinType};

use super::{arrow_schema, physical, JobPlanner, Stream};
use crate::error::{Error, Result};
use crate::exchange::SqlPartitioning;
use crate::operators::join::{JoinKind, JoinOperator, JoinSpec};

pub(super) fn plan_join(planner: &mut JobPlanner<'_>, j: &Join) -> Result<Stream> {
    if let Some(stream) = super::lookup::try_plan_lookup_join(planner, j)? {
        return Ok(stream);
    }
    let kind = match j.join_type {
        JoinType::Inner => JoinKind::Inner,
        JoinType::LeftSemi => JoinKind::LeftSemi,
        JoinType::RightSemi => JoinKind::RightSemi,
        other => {
            return Err(Error::unsupported(format!(
                "{other} joins (they retract rows); use an INNER JOIN"
            )))
        }
    };
    if j.on.is_empty() {
        return Err(Error::unsupported(
            "a join without an equality between the two inputs (a cross join)",
        ));
    }
    let left = planner.plan(&j.left)?;
    let right = planner.plan(&j.right)?;
    super::refuse_pending_windows(&left, "a join")?;
    super::refuse_pending_windows(&right, "a join")?;
    if !left.append_only || !right.append_only {
        return Err(Error::unsupported(
            "a join of an input that produces updates",
        ));
    }
    let (left_exprs, right_exprs): (Vec<_>, Vec<_>) = j.on.iter().cloned().unzip();
    let left_width = left.schema.fields().len();
    let right_width = right.schema.fields().len();
    let (left, left_keys) = planner.with_key_columns(&left, j.left.schema(), &left_exprs)?;
    let (right, right_keys) = planner.with_key_columns(&right, j.right.schema(), &right_exprs)?;
    let mut key_types = Vec::with_capacity(left_keys.len());
    for (&l, &r) in left_keys.iter().zip(&right_keys) {
        let (lt, rt) = (
            left.schema.field(l).data_type(),
            right.schema.field(r).data_type(),
        );
        if lt != rt {
            return Err(Error::unsupported(format!(
                "join keys of different types ({lt} and {rt}); CAST one side to the other's type"
            )));
        }
        key_types.push(lt.clone());
    }
    // The other conditions see the left row then the right row, whatever the join emits.
    let joined_df = j.left.schema().as_ref().clone().join(j.right.schema())?;
    let joined_schema = arrow_schema(&joined_df);
    let filter = match &j.filter {
        None => None,
        Some(f) => physical(std::slice::from_ref(f), &joined_df)?
            .into_iter()
            .next(),
    };
    let schema = arrow_schema(&j.schema);
    let spec = Arc::new(JoinSpec {
        kind,
        joined_schema,
        left_keys: left_keys.clone(),
        right_keys: right_keys.clone(),
        left_width,
        right_width,
        filter,
        schema: Arc::clone(&schema),
    });
    let parallelism = planner.default_parallelism();
    let node = planner
        .graph()
        .two_input_operator("Join", parallelism, move |_| {
            JoinOperator::new(Arc::clone(&spec), key_types.clone()).map_err(Error::into_runtime)
        });
    planner.graph().connect_input(
        left.node,
        node,
        Arc::clone(&left.schema),
        SqlPartitioning::Hash(left_keys),
        0,
    );
    planner.graph().connect_input(
        right.node,
        node,
        Arc::clone(&right.schema),
        SqlPartitioning::Hash(right_keys),
        1,
    );
    Ok(Stream {
        node,
        schema,
        parallelism,
        window: None,
        append_only: true,
    })
}
