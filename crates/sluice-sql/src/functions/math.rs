//! Flink's `MOD(a, b)` on integers, which DataFusion only offers as the `%` operator.
//!
//! Invariant: the result has the type of `b` and the sign of `a` (Java's `%`), so its
//! magnitude is below `|b|` and the narrowing back to `b`'s type cannot overflow.

use std::sync::Arc;

use arrow::array::{Array, AsArray, Int64Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int64Type};
use datafusion_common::{exec_err, plan_err, Result};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

use super::args::{check_arity, Rows};

/// `MOD(a, b)`: the remainder of `a / b` for integers, with the sign of `a` and the type
/// of `b`, as in Flink (`MOD(-7, 3)` is -1; `MOD(i64::MIN, -1)` is 0). Division by zero
/// is an error, as Java's `ArithmeticException` fails a Flink job. Unsigned `b` types are
/// widened to the next signed type, since Flink has none.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Mod {
    signature: Signature,
}

impl Default for Mod {
    fn default() -> Self {
        Self::new()
    }
}

impl Mod {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The signed integer type an argument of type `t` computes in, or a planning error.
fn signed_integer(position: usize, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => Ok(t.clone()),
        DataType::UInt8 => Ok(DataType::Int16),
        DataType::UInt16 => Ok(DataType::Int32),
        DataType::UInt32 | DataType::UInt64 | DataType::Null => Ok(DataType::Int64),
        other => plan_err!(
            "MOD: argument {} must be an integer, got {other}; use the % operator for \
             decimal and floating-point numbers",
            position + 1
        ),
    }
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("MOD", arg_types, 2, 2)?;
        Ok(vec![
            signed_integer(0, &arg_types[0])?,
            signed_integer(1, &arg_types[1])?,
        ])
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.get(1) {
            Some(t) => signed_integer(1, t),
            None => plan_err!("MOD expects 2 arguments, got {}", arg_types.len()),
        }
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let a = cast(&args.args[0].to_array(rows.len)?, &DataType::Int64)?;
        let b = cast(&args.args[1].to_array(rows.len)?, &DataType::Int64)?;
        let (a, b) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
        if (0..b.len()).any(|i| b.is_valid(i) && a.is_valid(i) && b.value(i) == 0) {
            return exec_err!("MOD: division by zero");
        }
        // Zero divisors were rejected above, so the closure only sees non-zero `y`;
        // `wrapping_rem` makes `i64::MIN % -1` zero, as Java does.
        let remainder: Int64Array =
            arrow::compute::binary(a, b, |x, y| if y == 0 { 0 } else { x.wrapping_rem(y) })?;
        let result = cast(&remainder, args.return_field.data_type())?;
        rows.finish(Arc::new(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int32Array};
    use arrow::datatypes::Field;
    use datafusion_common::config::ConfigOptions;
    use datafusion_common::ScalarValue;

    fn call(args: Vec<ColumnarValue>, rows: usize) -> Result<ColumnarValue> {
        let udf = Mod::new();
        let types: Vec<DataType> = args.iter().map(|a| a.data_type()).collect();
        let ret = udf.return_type(&types)?;
        udf.invoke_with_args(ScalarFunctionArgs {
            arg_fields: types
                .iter()
                .map(|t| Arc::new(Field::new("a", t.clone(), true)))
                .collect(),
            args,
            number_rows: rows,
            return_field: Arc::new(Field::new("mod", ret, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn remainder_has_the_sign_of_the_dividend_and_the_type_of_the_divisor() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![
            Some(7),
            Some(-7),
            Some(7),
            None,
            Some(i64::MIN),
        ]));
        let b: ArrayRef = Arc::new(Int32Array::from(vec![
            Some(3),
            Some(3),
            Some(-3),
            Some(3),
            Some(-1),
        ]));
        let out = call(vec![ColumnarValue::Array(a), ColumnarValue::Array(b)], 5)
            .unwrap()
            .into_array(5)
            .unwrap();
        let expected = Int32Array::from(vec![Some(1), Some(-1), Some(1), None, Some(0)]);
        assert_eq!(out.as_primitive::<arrow::datatypes::Int32Type>(), &expected);
    }

    #[test]
    fn scalars_give_a_scalar() {
        let out = call(
            vec![
                ColumnarValue::Scalar(ScalarValue::Int64(Some(10))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(4))),
            ],
            1,
        )
        .unwrap();
        assert!(matches!(
            out,
            ColumnarValue::Scalar(ScalarValue::Int64(Some(2)))
        ));
    }

    #[test]
    fn division_by_zero_is_an_error() {
        let err = call(
            vec![
                ColumnarValue::Scalar(ScalarValue::Int64(Some(10))),
                ColumnarValue::Scalar(ScalarValue::Int64(Some(0))),
            ],
            1,
        )
        .unwrap_err();
        assert!(err.to_string().contains("MOD: division by zero"), "{err}");
    }

    #[test]
    fn rejects_non_integers_at_planning() {
        let err = Mod::new()
            .coerce_types(&[DataType::Float64, DataType::Int64])
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("MOD: argument 1 must be an integer"),
            "{err}"
        );
    }
}
