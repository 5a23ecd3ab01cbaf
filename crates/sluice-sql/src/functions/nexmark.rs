//! Nexmark's user function `count_char(str, ch)` (q14), shipped with Sluice as its jar
//! ships with Flink's Nexmark benchmark.

use std::sync::Arc;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::DataType;
use datafusion_common::{exec_err, Result};
use datafusion_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility};

/// `count_char(str, ch)`: how often the one-character string `ch` occurs in `str`. The
/// user function of Nexmark's q14 (`com.github.nexmark.flink.udf.CountChar`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CountChar {
    signature: Signature,
}

impl Default for CountChar {
    fn default() -> Self {
        CountChar {
            signature: Signature::exact(
                vec![DataType::Utf8, DataType::Utf8],
                Volatility::Immutable,
            ),
        }
    }
}

/// The identifier Nexmark's `CREATE FUNCTION count_char AS '...'` names.
pub const COUNT_CHAR_IDENTIFIER: &str = "com.github.nexmark.flink.udf.CountChar";

impl ScalarUDFImpl for CountChar {
    fn name(&self) -> &str {
        "count_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [s, c] = args.args.as_slice() else {
            return exec_err!("count_char expects two arguments");
        };
        let s = s.to_array(rows)?;
        let c = c.to_array(rows)?;
        let (Some(s), Some(c)) = (
            s.as_any().downcast_ref::<arrow::array::StringArray>(),
            c.as_any().downcast_ref::<arrow::array::StringArray>(),
        ) else {
            return exec_err!("count_char expects strings");
        };
        let out: Int64Array = (0..rows)
            .map(|i| {
                if s.is_null(i) || c.is_null(i) {
                    return None;
                }
                let needle = c.value(i).chars().next()?;
                Some(s.value(i).chars().filter(|ch| *ch == needle).count() as i64)
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}
