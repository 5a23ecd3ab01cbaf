//! Flink's field functions of timestamps and dates: `YEAR`, `QUARTER`, `MONTH`, `WEEK`,
//! `DAYOFYEAR`, `DAYOFMONTH`, `DAYOFWEEK` (1 = Sunday, as Flink), `HOUR`, `MINUTE`,
//! `SECOND`, each returning `BIGINT` (NULL for NULL).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::kernels::temporal::{date_part, DatePart};
use arrow::datatypes::DataType;
use datafusion_common::{exec_err, plan_err, Result};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// One of the field functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TimePart {
    name: &'static str,
    part: DatePartKey,
    signature: Signature,
}

/// The part a [`TimePart`] extracts (a hashable mirror of Arrow's `DatePart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatePartKey {
    /// `YEAR`.
    Year,
    /// `QUARTER`.
    Quarter,
    /// `MONTH`.
    Month,
    /// `WEEK` (ISO week).
    Week,
    /// `DAYOFYEAR`.
    DayOfYear,
    /// `DAYOFMONTH`.
    DayOfMonth,
    /// `DAYOFWEEK`, 1 = Sunday.
    DayOfWeek,
    /// `HOUR`.
    Hour,
    /// `MINUTE`.
    Minute,
    /// `SECOND`.
    Second,
}

impl DatePartKey {
    fn arrow(self) -> DatePart {
        match self {
            DatePartKey::Year => DatePart::Year,
            DatePartKey::Quarter => DatePart::Quarter,
            DatePartKey::Month => DatePart::Month,
            DatePartKey::Week => DatePart::Week,
            DatePartKey::DayOfYear => DatePart::DayOfYear,
            DatePartKey::DayOfMonth => DatePart::Day,
            DatePartKey::DayOfWeek => DatePart::DayOfWeekSunday0,
            DatePartKey::Hour => DatePart::Hour,
            DatePartKey::Minute => DatePart::Minute,
            DatePartKey::Second => DatePart::Second,
        }
    }
}

impl TimePart {
    /// The function `name` extracting `part`.
    pub fn new(name: &'static str, part: DatePartKey) -> Self {
        TimePart {
            name,
            part,
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

/// Every field function.
pub fn all() -> Vec<TimePart> {
    use DatePartKey::*;
    [
        ("year", Year),
        ("quarter", Quarter),
        ("month", Month),
        ("week", Week),
        ("dayofyear", DayOfYear),
        ("dayofmonth", DayOfMonth),
        ("dayofweek", DayOfWeek),
        ("hour", Hour),
        ("minute", Minute),
        ("second", Second),
    ]
    .into_iter()
    .map(|(n, p)| TimePart::new(n, p))
    .collect()
}

impl ScalarUDFImpl for TimePart {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64) => {
                Ok(DataType::Int64)
            }
            Some(DataType::Time32(_) | DataType::Time64(_))
                if matches!(
                    self.part,
                    DatePartKey::Hour | DatePartKey::Minute | DatePartKey::Second
                ) =>
            {
                Ok(DataType::Int64)
            }
            Some(other) => plan_err!(
                "{}: expects a TIMESTAMP or DATE, got {other}",
                self.name.to_ascii_uppercase()
            ),
            None => plan_err!("{} expects one argument", self.name.to_ascii_uppercase()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} expects one argument", self.name.to_ascii_uppercase());
        };
        let is_scalar = matches!(arg, ColumnarValue::Scalar(_));
        let array = arg.to_array(args.number_rows)?;
        let parts = date_part(array.as_ref(), self.part.arrow())?;
        let mut out: ArrayRef = arrow::compute::cast(&parts, &DataType::Int64)?;
        if self.part == DatePartKey::DayOfWeek {
            // Arrow counts Sunday as 0; Flink as 1.
            let a = out
                .as_any()
                .downcast_ref::<Int64Array>()
                .map(|a| a.iter().map(|v| v.map(|d| d + 1)).collect::<Int64Array>());
            if let Some(a) = a {
                out = Arc::new(a);
            }
        }
        if is_scalar && !out.is_empty() {
            return Ok(ColumnarValue::Scalar(
                datafusion_common::ScalarValue::try_from_array(&out, 0)?,
            ));
        }
        Ok(ColumnarValue::Array(out))
    }
}
