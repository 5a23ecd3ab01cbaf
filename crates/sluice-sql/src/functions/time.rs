//! Flink's temporal scalar functions: `TO_TIMESTAMP_LTZ`, `TO_TIMESTAMP`, `DATE_FORMAT`,
//! `UNIX_TIMESTAMP` and `FROM_UNIXTIME`.
//!
//! Invariant: the session time zone is UTC. A `TIMESTAMP` without time zone is read as a
//! UTC wall clock, strings are parsed as UTC, and a `TIMESTAMP_LTZ` is formatted in UTC.
//! Date patterns use Java letters (table below) and are compiled once per batch when
//! constant; a pattern that Sluice cannot translate is an error naming the
//! function and the letter, never a silently wrong result. Unparseable input gives NULL
//! (or `Long.MIN_VALUE` for `UNIX_TIMESTAMP`), as in Flink.
//!
//! Supported Java pattern letters, all formatted in UTC:
//!
//! | Java | meaning | chrono |
//! |---|---|---|
//! | `yyyy`, `y`, `yy` | year, 2-digit year | `%Y`, `%-Y`, `%y` |
//! | `MM`, `M`, `MMM`, `MMMM` | month, `Jan`, `January` | `%m`, `%-m`, `%b`, `%B` |
//! | `dd`, `d`, `D` | day of month, day of year | `%d`, `%-d`, `%j` |
//! | `HH`, `H`, `hh`, `h`, `a` | hour 0-23, hour 1-12, `AM`/`PM` | `%H`, `%-H`, `%I`, `%-I`, `%p` |
//! | `mm`, `m`, `ss`, `s` | minute, second | `%M`, `%-M`, `%S`, `%-S` |
//! | `SSS`, `SSSSSS`, `SSSSSSSSS` | fraction of a second | `%3f`, `%6f`, `%9f` |
//! | `EEE`, `EEEE` | `Mon`, `Monday` | `%a`, `%A` |
//! | `z`, `Z`, `xx`, `xxx` | `UTC`, `+0000`, `+0000`, `+00:00` | `%Z`, `%z`, `%z`, `%:z` |
//! | `'text'`, `''` | literal text, a quote | literal |

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, Int64Builder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow::temporal_conversions::as_datetime;
use chrono::{DateTime, NaiveDateTime};
use datafusion_common::{
    exec_datafusion_err, exec_err, internal_err, plan_err, Result, ScalarValue,
};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use sluice_core::time::{Clock, SystemClock};

use super::args::{
    check_arity, coerce_integer, coerce_string, is_string, literal_str, scalar_to_i64, IntArg,
    Rows, StrArg,
};
use super::java_format::{parse_default_timestamp, JavaDateTimeFormat, DEFAULT_PATTERN};

/// The earliest instant Flink's timestamps hold: 0000-01-01 00:00:00 UTC, in seconds.
const MIN_EPOCH_SECONDS: i64 = -62_167_219_200;
/// The latest instant Flink's timestamps hold: 9999-12-31 23:59:59 UTC, in seconds.
const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;
/// [`MIN_EPOCH_SECONDS`] in milliseconds.
const MIN_EPOCH_MILLIS: i64 = -62_167_219_200_000;
/// 9999-12-31 23:59:59.999 UTC in milliseconds.
const MAX_EPOCH_MILLIS: i64 = 253_402_300_799_999;

/// `Timestamp(Millisecond, "UTC")`, the type of Flink's `TIMESTAMP_LTZ(3)`.
fn timestamp_ltz() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

/// A nullable result field named after the function.
fn result_field(name: &str, data_type: DataType) -> FieldRef {
    Arc::new(Field::new(name, data_type, true))
}

/// `Some(ms)` when `ms` lies in Flink's timestamp range, else `None` (a NULL result).
fn in_range_millis(ms: i64) -> Option<i64> {
    (MIN_EPOCH_MILLIS..=MAX_EPOCH_MILLIS)
        .contains(&ms)
        .then_some(ms)
}

/// A date pattern argument: compiled once when constant, once per distinct value when it
/// comes from a column (a one-entry cache, since such columns rarely change row to row).
struct PatternArg<'a> {
    function: &'static str,
    kind: PatternKind<'a>,
}

enum PatternKind<'a> {
    Constant(Option<JavaDateTimeFormat>),
    PerRow(StrArg<'a>, Option<(String, JavaDateTimeFormat)>),
}

impl<'a> PatternArg<'a> {
    /// Reads the pattern at `position`, or compiles `default` when the call omits it.
    fn new(
        function: &'static str,
        args: &'a [ColumnarValue],
        position: usize,
        default: &str,
    ) -> Result<Self> {
        let kind = match args.get(position) {
            None => PatternKind::Constant(Some(JavaDateTimeFormat::compile(function, default)?)),
            Some(arg) => {
                let arg = StrArg::new(function, position, arg)?;
                match arg.constant() {
                    Some(Some(p)) => {
                        PatternKind::Constant(Some(JavaDateTimeFormat::compile(function, p)?))
                    }
                    Some(None) => PatternKind::Constant(None),
                    None => PatternKind::PerRow(arg, None),
                }
            }
        };
        Ok(PatternArg { function, kind })
    }

    /// The compiled pattern for `row`, or `None` when the pattern is NULL.
    fn get(&mut self, row: usize) -> Result<Option<&JavaDateTimeFormat>> {
        match &mut self.kind {
            PatternKind::Constant(f) => Ok(f.as_ref()),
            PatternKind::PerRow(arg, cache) => {
                let Some(p) = arg.value(row) else {
                    return Ok(None);
                };
                if !matches!(cache, Some((k, _)) if k == p) {
                    *cache = Some((p.to_owned(), JavaDateTimeFormat::compile(self.function, p)?));
                }
                Ok(cache.as_ref().map(|(_, f)| f))
            }
        }
    }
}

/// Checks a constant pattern at planning time so a typo fails the query before it runs.
fn check_literal_pattern(
    function: &str,
    args: &ReturnFieldArgs<'_>,
    position: usize,
) -> Result<()> {
    match literal_str(args.scalar_arguments, position) {
        Some(p) => JavaDateTimeFormat::compile(function, p).map(|_| ()),
        None => Ok(()),
    }
}

/// Formats `ts` with `f` as the next value of `out`.
fn append_formatted(
    function: &str,
    f: &JavaDateTimeFormat,
    ts: NaiveDateTime,
    out: &mut StringBuilder,
) -> Result<()> {
    f.format_into(ts, out).map_err(|_| {
        exec_datafusion_err!("{function}: cannot format {ts} with the given pattern")
    })?;
    out.append_value("");
    Ok(())
}

// ---------------------------------------------------------------------------------------
// TO_TIMESTAMP_LTZ
// ---------------------------------------------------------------------------------------

/// `TO_TIMESTAMP_LTZ(numeric[, precision])`: epoch seconds (precision 0) or milliseconds
/// (precision 3, the default) to `TIMESTAMP_LTZ(3)`, i.e. `Timestamp(Millisecond, "UTC")`.
///
/// Integers, floats and decimals are accepted. As in Flink, values outside years
/// 0000-9999 give NULL, floats and decimals are truncated toward zero (decimal seconds to
/// whole seconds), and a precision other than 0 or 3 is an error.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestampLtz {
    signature: Signature,
}

impl Default for ToTimestampLtz {
    fn default() -> Self {
        Self::new()
    }
}

impl ToTimestampLtz {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Why `precision` is rejected, and what to use instead.
fn unsupported_precision(precision: i64) -> String {
    format!(
        "TO_TIMESTAMP_LTZ: precision {precision} is not supported; use 0 for epoch seconds \
         or 3 for epoch milliseconds"
    )
}

/// The unit of the numeric argument of `TO_TIMESTAMP_LTZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochUnit {
    Seconds,
    Millis,
}

impl EpochUnit {
    fn from_precision(precision: i64) -> Option<Self> {
        match precision {
            0 => Some(EpochUnit::Seconds),
            3 => Some(EpochUnit::Millis),
            _ => None,
        }
    }

    fn millis_from_i64(self, v: i64) -> Option<i64> {
        match self {
            EpochUnit::Seconds => (MIN_EPOCH_SECONDS..=MAX_EPOCH_SECONDS)
                .contains(&v)
                .then(|| v * 1000),
            EpochUnit::Millis => in_range_millis(v),
        }
    }

    fn millis_from_f64(self, v: f64) -> Option<i64> {
        // `as` truncates toward zero and saturates, like Java's `(long)` cast.
        match self {
            EpochUnit::Seconds => ((MIN_EPOCH_SECONDS as f64) <= v
                && v <= (MAX_EPOCH_SECONDS as f64))
                .then_some((v * 1000.0) as i64),
            EpochUnit::Millis => in_range_millis(v as i64),
        }
    }

    fn millis_from_decimal(self, v: i128, scale: i8) -> Option<i64> {
        // Truncate to an integer (Java's RoundingMode.DOWN), then scale to milliseconds.
        let whole = if scale >= 0 {
            v / 10i128.checked_pow(u32::from(scale.unsigned_abs()))?
        } else {
            v.checked_mul(10i128.checked_pow(u32::from(scale.unsigned_abs()))?)?
        };
        let millis = match self {
            EpochUnit::Seconds => whole.checked_mul(1000)?,
            EpochUnit::Millis => whole,
        };
        in_range_millis(i64::try_from(millis).ok()?)
    }
}

impl ScalarUDFImpl for ToTimestampLtz {
    fn name(&self) -> &str {
        "to_timestamp_ltz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("TO_TIMESTAMP_LTZ", arg_types, 1, 2)?;
        let value = match &arg_types[0] {
            t if t.is_integer() || *t == DataType::Null => DataType::Int64,
            t if t.is_floating() => DataType::Float64,
            t @ DataType::Decimal128(_, _) => t.clone(),
            DataType::Decimal256(_, s) => DataType::Decimal128(38, *s),
            other => {
                return plan_err!(
                    "TO_TIMESTAMP_LTZ: argument 1 must be a numeric epoch value, got {other}"
                )
            }
        };
        let mut out = vec![value];
        if let Some(t) = arg_types.get(1) {
            out.push(coerce_integer("TO_TIMESTAMP_LTZ", 1, t)?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(timestamp_ltz())
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        if let Some(Some(p)) = args.scalar_arguments.get(1) {
            if let Some(p) = scalar_to_i64("TO_TIMESTAMP_LTZ", 1, p)? {
                if EpochUnit::from_precision(p).is_none() {
                    return plan_err!("{}", unsupported_precision(p));
                }
            }
        }
        Ok(result_field(self.name(), timestamp_ltz()))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let precision = match args.args.get(1) {
            Some(p) => IntArg::new("TO_TIMESTAMP_LTZ", 1, p)?,
            None => IntArg::Scalar(Some(3)),
        };
        let values = args.args[0].to_array(rows.len)?;
        let mut out = TimestampMillisecondBuilder::with_capacity(rows.len).with_timezone("UTC");
        let unit_at = |row: usize| -> Result<Option<EpochUnit>> {
            match precision.value(row) {
                None => Ok(None),
                Some(p) => match EpochUnit::from_precision(p) {
                    Some(unit) => Ok(Some(unit)),
                    None => exec_err!("{}", unsupported_precision(p)),
                },
            }
        };
        match values.data_type() {
            DataType::Int64 => {
                let a = values.as_primitive::<Int64Type>();
                for row in 0..rows.len {
                    let unit = unit_at(row)?;
                    let v = a.is_valid(row).then(|| a.value(row));
                    out.append_option(v.zip(unit).and_then(|(v, u)| u.millis_from_i64(v)));
                }
            }
            DataType::Float64 => {
                let a = values.as_primitive::<Float64Type>();
                for row in 0..rows.len {
                    let unit = unit_at(row)?;
                    let v = a.is_valid(row).then(|| a.value(row));
                    out.append_option(v.zip(unit).and_then(|(v, u)| u.millis_from_f64(v)));
                }
            }
            DataType::Decimal128(_, scale) => {
                let a = values.as_primitive::<Decimal128Type>();
                for row in 0..rows.len {
                    let unit = unit_at(row)?;
                    let v = a.is_valid(row).then(|| a.value(row));
                    out.append_option(
                        v.zip(unit)
                            .and_then(|(v, u)| u.millis_from_decimal(v, *scale)),
                    );
                }
            }
            other => return internal_err!("TO_TIMESTAMP_LTZ: unexpected argument type {other}"),
        }
        rows.finish(Arc::new(out.finish()))
    }
}

// ---------------------------------------------------------------------------------------
// TO_TIMESTAMP
// ---------------------------------------------------------------------------------------

/// `TO_TIMESTAMP(string[, format])`: a date-time string to `TIMESTAMP(3)`, i.e.
/// `Timestamp(Millisecond, None)`.
///
/// Without `format` the string is `yyyy-[M]M-[d]d[ [H]H:[m]m:[s]s[.fraction]]` (a `T`
/// may replace the space). With a Java `format`, the whole string must match; missing
/// fields default to 1970-01-01 00:00:00, and if it does not match the default form is
/// tried on the trimmed string, as Flink does. Unparseable strings give NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToTimestamp {
    signature: Signature,
}

impl Default for ToTimestamp {
    fn default() -> Self {
        Self::new()
    }
}

impl ToTimestamp {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        "to_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("TO_TIMESTAMP", arg_types, 1, 2)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| coerce_string("TO_TIMESTAMP", i, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        check_literal_pattern("TO_TIMESTAMP", &args, 1)?;
        Ok(result_field(
            self.name(),
            DataType::Timestamp(TimeUnit::Millisecond, None),
        ))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let input = StrArg::new("TO_TIMESTAMP", 0, &args.args[0])?;
        let mut out = TimestampMillisecondBuilder::with_capacity(rows.len);
        if args.args.len() == 1 {
            for row in 0..rows.len {
                let ts = input.value(row).and_then(parse_default_timestamp);
                out.append_option(ts.map(|t| t.and_utc().timestamp_millis()));
            }
        } else {
            let mut pattern = PatternArg::new("TO_TIMESTAMP", &args.args, 1, DEFAULT_PATTERN)?;
            for row in 0..rows.len {
                let ts = match (input.value(row), pattern.get(row)?) {
                    (Some(s), Some(f)) => f
                        .parse(s, false)
                        .or_else(|| parse_default_timestamp(s.trim())),
                    _ => None,
                };
                out.append_option(ts.map(|t| t.and_utc().timestamp_millis()));
            }
        }
        rows.finish(Arc::new(out.finish()))
    }
}

// ---------------------------------------------------------------------------------------
// DATE_FORMAT
// ---------------------------------------------------------------------------------------

/// `DATE_FORMAT(timestamp_or_string, format)`: formats a timestamp (or a
/// `yyyy-MM-dd HH:mm:ss` string) with a Java date pattern, returning `Utf8`.
///
/// Timestamps of every unit and dates are accepted; time-zone-aware timestamps are
/// formatted in UTC. A string that does not parse gives NULL, as in Flink.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateFormat {
    signature: Signature,
}

impl Default for DateFormat {
    fn default() -> Self {
        Self::new()
    }
}

impl DateFormat {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DateFormat {
    fn name(&self) -> &str {
        "date_format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("DATE_FORMAT", arg_types, 2, 2)?;
        let value = match &arg_types[0] {
            t @ DataType::Timestamp(_, _) => t.clone(),
            DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Millisecond, None),
            t if is_string(t) || *t == DataType::Null => coerce_string("DATE_FORMAT", 0, t)?,
            other => {
                return plan_err!(
                    "DATE_FORMAT: argument 1 must be a TIMESTAMP, DATE or string, got {other}"
                )
            }
        };
        Ok(vec![value, coerce_string("DATE_FORMAT", 1, &arg_types[1])?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        check_literal_pattern("DATE_FORMAT", &args, 1)?;
        Ok(result_field(self.name(), DataType::Utf8))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let mut pattern = PatternArg::new("DATE_FORMAT", &args.args, 1, DEFAULT_PATTERN)?;
        let mut out = StringBuilder::with_capacity(rows.len, rows.len * 20);
        match args.args[0].data_type() {
            DataType::Timestamp(unit, _) => {
                let values = args.args[0].to_array(rows.len)?;
                match unit {
                    TimeUnit::Second => {
                        format_timestamps::<TimestampSecondType>(&values, &mut pattern, &mut out)
                    }
                    TimeUnit::Millisecond => format_timestamps::<TimestampMillisecondType>(
                        &values,
                        &mut pattern,
                        &mut out,
                    ),
                    TimeUnit::Microsecond => format_timestamps::<TimestampMicrosecondType>(
                        &values,
                        &mut pattern,
                        &mut out,
                    ),
                    TimeUnit::Nanosecond => format_timestamps::<TimestampNanosecondType>(
                        &values,
                        &mut pattern,
                        &mut out,
                    ),
                }?;
            }
            t if is_string(&t) || t == DataType::Null => {
                let input = StrArg::new("DATE_FORMAT", 0, &args.args[0])?;
                let from = JavaDateTimeFormat::compile("DATE_FORMAT", DEFAULT_PATTERN)?;
                for row in 0..rows.len {
                    let ts = input.value(row).and_then(|s| from.parse(s, true));
                    match (ts, pattern.get(row)?) {
                        (Some(ts), Some(f)) => append_formatted("DATE_FORMAT", f, ts, &mut out)?,
                        _ => out.append_null(),
                    }
                }
            }
            other => return internal_err!("DATE_FORMAT: unexpected argument type {other}"),
        }
        rows.finish(Arc::new(out.finish()))
    }
}

/// Formats every timestamp of `values` (an array of `T`) into `out`.
fn format_timestamps<T: ArrowTimestampType>(
    values: &ArrayRef,
    pattern: &mut PatternArg<'_>,
    out: &mut StringBuilder,
) -> Result<()> {
    let a = values.as_primitive::<T>();
    for row in 0..a.len() {
        let ts = a
            .is_valid(row)
            .then(|| as_datetime::<T>(a.value(row)))
            .flatten();
        match (ts, pattern.get(row)?) {
            (Some(ts), Some(f)) => append_formatted("DATE_FORMAT", f, ts, out)?,
            _ => out.append_null(),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// UNIX_TIMESTAMP
// ---------------------------------------------------------------------------------------

/// `UNIX_TIMESTAMP([string[, format]])`: seconds since the epoch as `Int64`.
///
/// Without arguments it reads the processing-time [`Clock`] once per batch (Flink
/// re-evaluates it per record; a batch is Sluice's record granularity). With a string it
/// parses a Java `format` (default `yyyy-MM-dd HH:mm:ss`) in UTC, ignoring trailing text
/// as `SimpleDateFormat` does; a string that does not parse gives `i64::MIN`
/// (`Long.MIN_VALUE`), exactly as Flink documents.
#[derive(Debug)]
pub struct UnixTimestamp {
    signature: Signature,
    clock: Arc<dyn Clock>,
}

impl Default for UnixTimestamp {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl UnixTimestamp {
    /// Creates the function reading the current time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Volatile),
            clock,
        }
    }
}

impl PartialEq for UnixTimestamp {
    fn eq(&self, other: &Self) -> bool {
        // Two instances are the same function only if they read the same clock.
        self.signature == other.signature
            && std::ptr::addr_eq(Arc::as_ptr(&self.clock), Arc::as_ptr(&other.clock))
    }
}

impl Eq for UnixTimestamp {}

impl Hash for UnixTimestamp {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.signature.hash(state);
        Arc::as_ptr(&self.clock).cast::<()>().hash(state);
    }
}

impl ScalarUDFImpl for UnixTimestamp {
    fn name(&self) -> &str {
        "unix_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("UNIX_TIMESTAMP", arg_types, 0, 2)?;
        arg_types
            .iter()
            .enumerate()
            .map(|(i, t)| coerce_string("UNIX_TIMESTAMP", i, t))
            .collect()
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        check_literal_pattern("UNIX_TIMESTAMP", &args, 1)?;
        Ok(result_field(self.name(), DataType::Int64))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if args.args.is_empty() {
            let seconds = self.clock.now_ms().div_euclid(1000);
            return Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(seconds))));
        }
        let rows = Rows::of(&args.args, args.number_rows);
        let input = StrArg::new("UNIX_TIMESTAMP", 0, &args.args[0])?;
        let mut pattern = PatternArg::new("UNIX_TIMESTAMP", &args.args, 1, DEFAULT_PATTERN)?;
        let mut out = Int64Builder::with_capacity(rows.len);
        for row in 0..rows.len {
            match (input.value(row), pattern.get(row)?) {
                (Some(s), Some(f)) => {
                    // Java's `millis / 1000` truncates toward zero; keep that for
                    // patterns with milliseconds before 1970.
                    let seconds = f
                        .parse(s, true)
                        .map(|t| t.and_utc().timestamp_millis() / 1000);
                    out.append_value(seconds.unwrap_or(i64::MIN));
                }
                _ => out.append_null(),
            }
        }
        rows.finish(Arc::new(out.finish()))
    }
}

// ---------------------------------------------------------------------------------------
// FROM_UNIXTIME
// ---------------------------------------------------------------------------------------

/// `FROM_UNIXTIME(seconds[, format])`: epoch seconds formatted in UTC with a Java `format`
/// (default `yyyy-MM-dd HH:mm:ss`), returning `Utf8`. Seconds outside chrono's range give
/// NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FromUnixtime {
    signature: Signature,
}

impl Default for FromUnixtime {
    fn default() -> Self {
        Self::new()
    }
}

impl FromUnixtime {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FromUnixtime {
    fn name(&self) -> &str {
        "from_unixtime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("FROM_UNIXTIME", arg_types, 1, 2)?;
        let seconds = match &arg_types[0] {
            t if t.is_numeric() || *t == DataType::Null => DataType::Int64,
            other => {
                return plan_err!(
                    "FROM_UNIXTIME: argument 1 must be numeric epoch seconds, got {other}"
                )
            }
        };
        let mut out = vec![seconds];
        if let Some(t) = arg_types.get(1) {
            out.push(coerce_string("FROM_UNIXTIME", 1, t)?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        check_literal_pattern("FROM_UNIXTIME", &args, 1)?;
        Ok(result_field(self.name(), DataType::Utf8))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let seconds = IntArg::new("FROM_UNIXTIME", 0, &args.args[0])?;
        let mut pattern = PatternArg::new("FROM_UNIXTIME", &args.args, 1, DEFAULT_PATTERN)?;
        let mut out = StringBuilder::with_capacity(rows.len, rows.len * 19);
        for row in 0..rows.len {
            let ts = seconds
                .value(row)
                .and_then(|s| DateTime::from_timestamp(s, 0))
                .map(|t| t.naive_utc());
            match (ts, pattern.get(row)?) {
                (Some(ts), Some(f)) => append_formatted("FROM_UNIXTIME", f, ts, &mut out)?,
                _ => out.append_null(),
            }
        }
        rows.finish(Arc::new(out.finish()))
    }
}

#[cfg(test)]
mod tests;
