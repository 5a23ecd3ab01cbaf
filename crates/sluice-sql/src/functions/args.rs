//! Typed per-row access to scalar-function arguments, whether each one arrived as an
//! Arrow array or as a constant.
//!
//! Invariant: the accessors here never box a row into a `ScalarValue`. A constant argument
//! is unpacked once per batch and an array argument is read in place, so the per-row cost
//! is one `match` and one offset lookup. After `coerce_types` has run, each argument has
//! the type its accessor expects. A mismatch is a planner bug, reported as an internal
//! error and never as a panic.

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use arrow::datatypes::DataType;
use datafusion_common::{internal_err, plan_err, Result, ScalarValue};
use datafusion_expr::ColumnarValue;

/// How many rows a call produces, and whether its result is a constant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows {
    /// Rows to compute: `number_rows`, or 1 when every argument is a constant.
    pub(crate) len: usize,
    /// Every argument is a constant, so the result is returned as a scalar too.
    pub(crate) all_scalar: bool,
}

impl Rows {
    /// Works out the output length for `args` in a batch of `number_rows` rows.
    pub(crate) fn of(args: &[ColumnarValue], number_rows: usize) -> Self {
        let all_scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let len = if all_scalar { 1 } else { number_rows };
        Rows { len, all_scalar }
    }

    /// Wraps a computed array as the call's result: a scalar if all inputs were scalars.
    pub(crate) fn finish(self, array: ArrayRef) -> Result<ColumnarValue> {
        if self.all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &array, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(array))
        }
    }
}

/// A string argument: a constant, or one of Arrow's three string array layouts.
#[derive(Debug)]
pub(crate) enum StrArg<'a> {
    /// The same value (or NULL) for every row.
    Scalar(Option<&'a str>),
    /// `Utf8` array.
    Utf8(&'a StringArray),
    /// `LargeUtf8` array.
    Large(&'a LargeStringArray),
    /// `Utf8View` array.
    View(&'a StringViewArray),
}

impl<'a> StrArg<'a> {
    /// Reads argument `position` (0-based) of `function` as a string.
    pub(crate) fn new(function: &str, position: usize, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v),
            ) => Ok(StrArg::Scalar(v.as_deref())),
            ColumnarValue::Scalar(ScalarValue::Null) => Ok(StrArg::Scalar(None)),
            ColumnarValue::Array(a) => match a.data_type() {
                DataType::Utf8 => Ok(StrArg::Utf8(a.as_string::<i32>())),
                DataType::LargeUtf8 => Ok(StrArg::Large(a.as_string::<i64>())),
                DataType::Utf8View => Ok(StrArg::View(a.as_string_view())),
                other => {
                    internal_err!(
                        "{function}: argument {} must be a string, got {other}",
                        position + 1
                    )
                }
            },
            ColumnarValue::Scalar(other) => internal_err!(
                "{function}: argument {} must be a string, got {}",
                position + 1,
                other.data_type()
            ),
        }
    }

    /// The value at `row`, or `None` for NULL.
    #[inline]
    pub(crate) fn value(&self, row: usize) -> Option<&'a str> {
        match self {
            StrArg::Scalar(v) => *v,
            StrArg::Utf8(a) => a.is_valid(row).then(|| a.value(row)),
            StrArg::Large(a) => a.is_valid(row).then(|| a.value(row)),
            StrArg::View(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }

    /// `Some(value)` when the argument is a constant, so work on it can be done once.
    pub(crate) fn constant(&self) -> Option<Option<&'a str>> {
        match self {
            StrArg::Scalar(v) => Some(*v),
            _ => None,
        }
    }
}

/// An integer argument coerced to `Int64`: a constant or an `Int64` array.
#[derive(Debug)]
pub(crate) enum IntArg<'a> {
    /// The same value (or NULL) for every row.
    Scalar(Option<i64>),
    /// `Int64` array.
    Array(&'a Int64Array),
}

impl<'a> IntArg<'a> {
    /// Reads argument `position` (0-based) of `function` as a 64-bit integer.
    pub(crate) fn new(function: &str, position: usize, arg: &'a ColumnarValue) -> Result<Self> {
        match arg {
            ColumnarValue::Scalar(s) => Ok(IntArg::Scalar(scalar_to_i64(function, position, s)?)),
            ColumnarValue::Array(a) => match a.as_primitive_opt() {
                Some(a) => Ok(IntArg::Array(a)),
                None => internal_err!(
                    "{function}: argument {} must be coerced to Int64, got {}",
                    position + 1,
                    a.data_type()
                ),
            },
        }
    }

    /// The value at `row`, or `None` for NULL.
    #[inline]
    pub(crate) fn value(&self, row: usize) -> Option<i64> {
        match self {
            IntArg::Scalar(v) => *v,
            IntArg::Array(a) => a.is_valid(row).then(|| a.value(row)),
        }
    }
}

/// Converts any integer constant (or NULL) to `i64`.
pub(crate) fn scalar_to_i64(
    function: &str,
    position: usize,
    s: &ScalarValue,
) -> Result<Option<i64>> {
    let v = match s {
        ScalarValue::Null => None,
        ScalarValue::Int8(v) => v.map(i64::from),
        ScalarValue::Int16(v) => v.map(i64::from),
        ScalarValue::Int32(v) => v.map(i64::from),
        ScalarValue::Int64(v) => *v,
        ScalarValue::UInt8(v) => v.map(i64::from),
        ScalarValue::UInt16(v) => v.map(i64::from),
        ScalarValue::UInt32(v) => v.map(i64::from),
        ScalarValue::UInt64(v) => match v.map(i64::try_from).transpose() {
            Ok(v) => v,
            Err(_) => {
                return plan_err!("{function}: argument {} is out of range: {s}", position + 1)
            }
        },
        other => {
            return internal_err!(
                "{function}: argument {} must be an integer, got {}",
                position + 1,
                other.data_type()
            )
        }
    };
    Ok(v)
}

/// Checks that `function` was called with between `min` and `max` arguments.
pub(crate) fn check_arity(
    function: &str,
    arg_types: &[DataType],
    min: usize,
    max: usize,
) -> Result<()> {
    let n = arg_types.len();
    if n < min || n > max {
        let expected = if min == max {
            format!("{min}")
        } else {
            format!("{min} to {max}")
        };
        return plan_err!("{function} expects {expected} arguments, got {n}");
    }
    Ok(())
}

/// The type a string argument is coerced to: string layouts stay as they are, so no cast
/// is inserted; NULL becomes `Utf8`; anything else is a planning error.
pub(crate) fn coerce_string(function: &str, position: usize, t: &DataType) -> Result<DataType> {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(t.clone()),
        DataType::Null => Ok(DataType::Utf8),
        DataType::Dictionary(_, value) if is_string(value) => Ok(value.as_ref().clone()),
        other => plan_err!(
            "{function}: argument {} must be a string (VARCHAR), got {other}",
            position + 1
        ),
    }
}

/// The type an integer argument is coerced to: `Int64`, or a planning error.
pub(crate) fn coerce_integer(function: &str, position: usize, t: &DataType) -> Result<DataType> {
    if t.is_integer() || *t == DataType::Null {
        Ok(DataType::Int64)
    } else {
        plan_err!(
            "{function}: argument {} must be an integer, got {t}",
            position + 1
        )
    }
}

/// Whether `t` is one of Arrow's string types.
pub(crate) fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The constant string at `position` in a planning-time argument list, if it is one.
pub(crate) fn literal_str<'a>(
    scalars: &[Option<&'a ScalarValue>],
    position: usize,
) -> Option<&'a str> {
    match scalars.get(position).copied().flatten() {
        Some(ScalarValue::Utf8(Some(s)))
        | Some(ScalarValue::LargeUtf8(Some(s)))
        | Some(ScalarValue::Utf8View(Some(s))) => Some(s.as_str()),
        _ => None,
    }
}

/// Test helpers: call a UDF directly on arrays and scalars and read its output as text.
#[cfg(test)]
pub(crate) mod harness {
    use std::sync::Arc;

    use arrow::array::ArrayRef;
    use arrow::datatypes::Field;
    use arrow::util::display::{ArrayFormatter, FormatOptions};
    use datafusion_common::config::ConfigOptions;
    use datafusion_common::{Result, ScalarValue};
    use datafusion_expr::{ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl};

    /// Invokes `udf` as DataFusion would after coercion, planning its return field from
    /// the constant arguments first (so planning-time checks run too).
    pub(crate) fn invoke(
        udf: &dyn ScalarUDFImpl,
        args: Vec<ColumnarValue>,
        number_rows: usize,
    ) -> Result<ColumnarValue> {
        let arg_fields: Vec<_> = args
            .iter()
            .map(|a| Arc::new(Field::new("arg", a.data_type(), true)))
            .collect();
        let scalars: Vec<Option<&ScalarValue>> = args
            .iter()
            .map(|a| match a {
                ColumnarValue::Scalar(s) => Some(s),
                ColumnarValue::Array(_) => None,
            })
            .collect();
        let return_field = udf.return_field_from_args(ReturnFieldArgs {
            arg_fields: &arg_fields,
            scalar_arguments: &scalars,
        })?;
        let out = udf.invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields,
            number_rows,
            return_field: Arc::clone(&return_field),
            config_options: Arc::new(ConfigOptions::default()),
        })?;
        assert_eq!(&out.data_type(), return_field.data_type(), "promised type");
        Ok(out)
    }

    /// Renders each value of `array` as text, with NULL as `None`.
    pub(crate) fn texts(array: &ArrayRef) -> Vec<Option<String>> {
        let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())
            .expect("array is displayable");
        (0..array.len())
            .map(|i| array.is_valid(i).then(|| formatter.value(i).to_string()))
            .collect()
    }

    /// Renders `out` (an array of `rows` rows, or a scalar) as text.
    pub(crate) fn output(out: ColumnarValue, rows: usize) -> Vec<Option<String>> {
        texts(&out.into_array(rows).expect("output converts to an array"))
    }

    /// A string column.
    pub(crate) fn strs(values: &[Option<&str>]) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(arrow::array::StringArray::from(values.to_vec())) as ArrayRef)
    }

    /// An `Int64` column.
    pub(crate) fn ints(values: &[Option<i64>]) -> ColumnarValue {
        ColumnarValue::Array(Arc::new(arrow::array::Int64Array::from(values.to_vec())) as ArrayRef)
    }

    /// A constant string.
    pub(crate) fn lit_str(value: &str) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Utf8(Some(value.to_owned())))
    }

    /// A constant integer.
    pub(crate) fn lit_int(value: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(value)))
    }

    /// Expected text values.
    pub(crate) fn some(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_owned)).collect()
    }
}
