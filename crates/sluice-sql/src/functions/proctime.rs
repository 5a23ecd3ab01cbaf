//! `PROCTIME()`: the processing time attribute, the machine's clock when a row is
//! processed, as `TIMESTAMP_LTZ(3)`. Its field carries the metadata
//! [`PROCTIME_METADATA`], so the planner knows a window over it runs on processing time
//! (as Flink's `*PROCTIME*` type does).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion_common::{Result as DfResult, ScalarValue};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use sluice_core::time::Clock;

/// The field metadata key and value of a processing time attribute.
pub const PROCTIME_METADATA: (&str, &str) = ("sluice.time", "proctime");

/// Whether `field` is a processing time attribute.
pub fn is_proctime(field: &Field) -> bool {
    field
        .metadata()
        .get(PROCTIME_METADATA.0)
        .map(String::as_str)
        == Some(PROCTIME_METADATA.1)
}

fn proctime_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// `PROCTIME()`.
#[derive(Debug)]
pub struct Proctime {
    clock: Arc<dyn Clock>,
    signature: Signature,
}

impl PartialEq for Proctime {
    fn eq(&self, other: &Self) -> bool {
        self.signature == other.signature
    }
}
impl Eq for Proctime {}
impl std::hash::Hash for Proctime {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "proctime".hash(state);
    }
}

impl Proctime {
    /// `PROCTIME()` reading `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Proctime {
            clock,
            signature: Signature::exact(Vec::new(), Volatility::Volatile),
        }
    }
}

impl ScalarUDFImpl for Proctime {
    fn name(&self) -> &str {
        "proctime"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(proctime_type())
    }
    fn return_field_from_args(&self, _args: ReturnFieldArgs<'_>) -> DfResult<FieldRef> {
        let metadata = [(
            PROCTIME_METADATA.0.to_string(),
            PROCTIME_METADATA.1.to_string(),
        )]
        .into();
        Ok(Arc::new(
            Field::new("proctime", proctime_type(), false).with_metadata(metadata),
        ))
    }
    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
            Some(self.clock.now_ms()),
            Some("UTC".into()),
        )))
    }
}
