//! Window table functions (`TUMBLE`, `HOP`, `CUMULATE`, `SESSION`) as DataFusion table
//! sources: the planner sees a scan of a [`WindowTableFunction`] and plans its input and
//! a window assigner ([`crate::operators::window_assigner`]).
//!
//! The output schema is the input's columns, then `window_start`, `window_end` and
//! `window_time` (`window_end` minus 1 ms, the rows' new time attribute), as in Flink.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion_common::{DataFusionError, ScalarValue};
use datafusion_expr::{Expr, TableSource};

/// The kind of window and its sizes in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `TUMBLE(data, timecol, size [, offset])`.
    Tumble {
        /// Window length.
        size_ms: i64,
        /// Shift of the window starts.
        offset_ms: i64,
    },
    /// `HOP(data, timecol, slide, size [, offset])`.
    Hop {
        /// Distance between window starts.
        slide_ms: i64,
        /// Window length.
        size_ms: i64,
        /// Shift of the window starts.
        offset_ms: i64,
    },
    /// `CUMULATE(data, timecol, step, size [, offset])`.
    Cumulate {
        /// Growth of the window end.
        step_ms: i64,
        /// Maximum window length.
        size_ms: i64,
        /// Shift of the window starts.
        offset_ms: i64,
    },
    /// `SESSION(data [PARTITION BY keys], timecol, gap)`.
    Session {
        /// Inactivity that closes a session.
        gap_ms: i64,
    },
}

/// A window table function call with its input resolved.
#[derive(Debug, Clone)]
pub struct WindowTableFunction {
    /// The window.
    pub kind: WindowKind,
    /// The table or view the function reads.
    pub input: String,
    /// The time attribute column (`DESCRIPTOR(col)`).
    pub time_column: String,
    /// `PARTITION BY` columns of a session window.
    pub partition_by: Vec<String>,
    /// The input's schema followed by the window columns.
    pub schema: SchemaRef,
}

impl TableSource for WindowTableFunction {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

fn plan_err(message: String) -> DataFusionError {
    DataFusionError::Plan(message)
}

fn string_arg(
    args: &[Expr],
    i: usize,
    function: &str,
    what: &str,
) -> Result<String, DataFusionError> {
    match args.get(i) {
        Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) => Ok(s.clone()),
        _ => Err(plan_err(format!(
            "argument {} of {function} must be {what}",
            i + 1
        ))),
    }
}

/// An interval literal in milliseconds.
pub(crate) fn interval_ms(args: &[Expr], i: usize, function: &str) -> Result<i64, DataFusionError> {
    let bad = || {
        plan_err(format!(
            "argument {} of {function} must be an interval such as INTERVAL '10' SECOND",
            i + 1
        ))
    };
    let Some(Expr::Literal(value, _)) = args.get(i) else {
        return Err(bad());
    };
    let ms = match value {
        ScalarValue::IntervalDayTime(Some(v)) => {
            i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds)
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) => {
            if v.months != 0 {
                return Err(plan_err(format!(
                    "{function}: windows of months are not supported; use days"
                )));
            }
            i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000
        }
        ScalarValue::IntervalYearMonth(Some(_)) => {
            return Err(plan_err(format!(
                "{function}: windows of months or years are not supported; use days"
            )))
        }
        _ => return Err(bad()),
    };
    if ms < 0 {
        return Err(plan_err(format!(
            "{function}: intervals must not be negative"
        )));
    }
    Ok(ms)
}

impl WindowTableFunction {
    /// Resolves a call of `name` with the rewritten arguments (see
    /// [`crate::parser::tvf`]); `input_schema` gives the schema of a table or view.
    ///
    /// # Errors
    /// Wrong arguments, an unknown input, or a time column that is not a timestamp.
    pub fn resolve(
        name: &str,
        args: &[Expr],
        input_schema: impl Fn(&str) -> Option<SchemaRef>,
    ) -> Result<Self, DataFusionError> {
        let function = name.to_ascii_uppercase();
        let input = string_arg(args, 0, &function, "TABLE name")?;
        let (partition_by, rest) = match args.get(1) {
            Some(Expr::Literal(ScalarValue::Utf8(Some(s)), _)) if s.starts_with("partition:") => {
                let cols = s["partition:".len()..]
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect();
                (cols, &args[2..])
            }
            _ => (Vec::new(), &args[1..]),
        };
        let time_column = string_arg(rest, 0, &function, "DESCRIPTOR(time column)")?;
        let n = rest.len();
        let kind = match function.as_str() {
            "TUMBLE" if n == 2 || n == 3 => WindowKind::Tumble {
                size_ms: interval_ms(rest, 1, &function)?,
                offset_ms: if n == 3 {
                    interval_ms(rest, 2, &function)?
                } else {
                    0
                },
            },
            "HOP" if n == 3 || n == 4 => WindowKind::Hop {
                slide_ms: interval_ms(rest, 1, &function)?,
                size_ms: interval_ms(rest, 2, &function)?,
                offset_ms: if n == 4 {
                    interval_ms(rest, 3, &function)?
                } else {
                    0
                },
            },
            "CUMULATE" if n == 3 || n == 4 => WindowKind::Cumulate {
                step_ms: interval_ms(rest, 1, &function)?,
                size_ms: interval_ms(rest, 2, &function)?,
                offset_ms: if n == 4 {
                    interval_ms(rest, 3, &function)?
                } else {
                    0
                },
            },
            "SESSION" if n == 2 => WindowKind::Session {
                gap_ms: interval_ms(rest, 1, &function)?,
            },
            _ => {
                return Err(plan_err(format!(
                    "wrong arguments for {function}: use TUMBLE(TABLE t, DESCRIPTOR(ts), size \
                     [, offset]), HOP(TABLE t, DESCRIPTOR(ts), slide, size [, offset]), \
                     CUMULATE(TABLE t, DESCRIPTOR(ts), step, size [, offset]) or \
                     SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)"
                )))
            }
        };
        match kind {
            WindowKind::Tumble { size_ms: 0, .. } => {
                return Err(plan_err("TUMBLE: the size must be positive".into()))
            }
            WindowKind::Hop {
                slide_ms, size_ms, ..
            } if slide_ms == 0 || size_ms == 0 => {
                return Err(plan_err("HOP: slide and size must be positive".into()))
            }
            WindowKind::Cumulate {
                step_ms, size_ms, ..
            } if step_ms == 0 || size_ms % step_ms != 0 => {
                return Err(plan_err(
                    "CUMULATE: the size must be a positive multiple of the step".into(),
                ))
            }
            WindowKind::Session { gap_ms: 0 } => {
                return Err(plan_err("SESSION: the gap must be positive".into()))
            }
            _ => {}
        }
        let input_schema = input_schema(&input).ok_or_else(|| {
            plan_err(format!(
                "{function}: table or view `{input}` does not exist"
            ))
        })?;
        let time_field = input_schema.field_with_name(&time_column).map_err(|_| {
            plan_err(format!(
                "{function}: DESCRIPTOR column `{time_column}` is not a column of `{input}`"
            ))
        })?;
        let tz = match time_field.data_type() {
            DataType::Timestamp(_, tz) => tz.clone(),
            other => {
                return Err(plan_err(format!(
                    "{function}: DESCRIPTOR column `{time_column}` has type {other}; it must be \
                     a time attribute (TIMESTAMP(3) or TIMESTAMP_LTZ(3) with a WATERMARK)"
                )))
            }
        };
        let ts = DataType::Timestamp(TimeUnit::Millisecond, tz);
        let mut fields: Vec<Field> = input_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for name in ["window_start", "window_end", "window_time"] {
            fields.push(Field::new(name, ts.clone(), false));
        }
        Ok(WindowTableFunction {
            kind,
            input,
            time_column,
            partition_by,
            schema: Arc::new(Schema::new(fields)),
        })
    }
}
