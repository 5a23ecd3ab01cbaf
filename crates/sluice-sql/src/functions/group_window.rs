//! Flink's group window functions: `GROUP BY TUMBLE(ts, size)`, `HOP(ts, slide, size)`,
//! `SESSION(ts, gap)` and the window properties `TUMBLE_START(ts, size)`, `_END`,
//! `_ROWTIME` (and `HOP_*`, `SESSION_*`) in the SELECT list.
//!
//! They are markers for the planner, never evaluated: the group functions are scalar
//! functions (so DataFusion accepts them as group keys) and the properties are aggregate
//! functions (so DataFusion accepts them beside the group keys). The streaming planner
//! turns an aggregation grouped by one of them into a window aggregation
//! ([`crate::planner`]). Evaluated anywhere else, they fail with the fix.

use std::sync::Arc;

use arrow::datatypes::{DataType, FieldRef};
use datafusion_common::{plan_err, Result as DfResult};
use datafusion_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

/// The group window functions.
pub const GROUP_WINDOWS: [&str; 3] = ["tumble", "hop", "session"];

/// Which window property a property function gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowProperty {
    /// `*_START`.
    Start,
    /// `*_END`.
    End,
    /// `*_ROWTIME`: the end minus 1 ms, a time attribute.
    Rowtime,
}

/// The group window and property of a property function's name (`tumble_start`).
pub fn property_of(name: &str) -> Option<(&'static str, WindowProperty)> {
    let name = name.to_ascii_lowercase();
    let (window, property) = name.rsplit_once('_')?;
    let window = GROUP_WINDOWS.into_iter().find(|w| *w == window)?;
    let property = match property {
        "start" => WindowProperty::Start,
        "end" => WindowProperty::End,
        "rowtime" => WindowProperty::Rowtime,
        _ => return None,
    };
    Some((window, property))
}

fn time_type(name: &str, args: &[DataType]) -> DfResult<DataType> {
    match args.first() {
        Some(t @ DataType::Timestamp(..)) => Ok(t.clone()),
        Some(other) => plan_err!(
            "{}: the first argument must be a time attribute (TIMESTAMP(3)), not {other}",
            name.to_ascii_uppercase()
        ),
        None => plan_err!("{}: a time attribute is missing", name.to_ascii_uppercase()),
    }
}

/// `TUMBLE`, `HOP` or `SESSION` as a group key.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GroupWindow {
    name: &'static str,
    signature: Signature,
}

impl ScalarUDFImpl for GroupWindow {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        time_type(self.name, args)
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        plan_err!(
            "{}(...) is a group window: use it in GROUP BY, with {0}_START/{0}_END in the \
             SELECT list",
            self.name.to_ascii_uppercase()
        )
    }
}

/// `TUMBLE_START` and the other window properties beside a group window.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GroupWindowProperty {
    name: String,
    signature: Signature,
}

impl AggregateUDFImpl for GroupWindowProperty {
    fn name(&self) -> &str {
        &self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        time_type(&self.name, args)
    }
    fn accumulator(&self, _args: AccumulatorArgs<'_>) -> DfResult<Box<dyn Accumulator>> {
        plan_err!(
            "{} needs the same window in GROUP BY",
            self.name.to_ascii_uppercase()
        )
    }
    fn state_fields(&self, _args: StateFieldsArgs<'_>) -> DfResult<Vec<FieldRef>> {
        Ok(Vec::new())
    }
}

/// The group window functions, to register as scalar functions.
pub fn group_windows() -> Vec<Arc<ScalarUDF>> {
    GROUP_WINDOWS
        .into_iter()
        .map(|name| {
            Arc::new(ScalarUDF::from(GroupWindow {
                name,
                signature: Signature::variadic_any(Volatility::Immutable),
            }))
        })
        .collect()
}

/// The window property functions, to register as aggregate functions.
pub fn group_window_properties() -> Vec<Arc<AggregateUDF>> {
    GROUP_WINDOWS
        .into_iter()
        .flat_map(|w| ["start", "end", "rowtime"].map(|p| format!("{w}_{p}")))
        .map(|name| {
            Arc::new(AggregateUDF::from(GroupWindowProperty {
                name,
                signature: Signature::variadic_any(Volatility::Immutable),
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_names_map_to_their_window() {
        assert_eq!(
            property_of("SESSION_START"),
            Some(("session", WindowProperty::Start))
        );
        assert_eq!(
            property_of("hop_rowtime"),
            Some(("hop", WindowProperty::Rowtime))
        );
        assert_eq!(property_of("tumble"), None);
        assert_eq!(property_of("date_end"), None);
    }
}
