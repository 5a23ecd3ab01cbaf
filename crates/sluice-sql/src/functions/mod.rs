//! Flink SQL built-in scalar functions that DataFusion lacks, or has under the same name
//! with different behaviour, as DataFusion [`ScalarUDF`]s.
//!
//! Invariant: every function follows Flink's semantics (NULL in gives NULL out unless
//! Flink documents otherwise), is vectorized over Arrow arrays without boxing rows into
//! `ScalarValue`s, compiles a constant pattern or regular expression once per batch, and
//! reports bad arguments as a `DataFusionError` that names the function and the fix.
//! The session time zone is UTC.
//!
//! Register these **after** DataFusion's defaults: `to_timestamp`, `date_format` and
//! `from_unixtime` deliberately replace DataFusion's functions of the same name (which
//! take chrono patterns and return other types).
//!
//! | function | returns | what it does |
//! |---|---|---|
//! | `TO_TIMESTAMP_LTZ(numeric[, precision])` | `Timestamp(ms, "UTC")` | epoch seconds (precision 0) or millis (3, default) to an instant |
//! | `TO_TIMESTAMP(string[, format])` | `Timestamp(ms)` | parses `yyyy-MM-dd HH:mm:ss[.SSS]` or a Java pattern; NULL if unparseable |
//! | `DATE_FORMAT(ts_or_string, format)` | `Utf8` | formats with a Java pattern (`yyyy-MM-dd HH:mm:ss`, `'T'`, `SSS`, `EEE`, ...) |
//! | `UNIX_TIMESTAMP([string[, format]])` | `Int64` | now, or a parsed string, in epoch seconds; `i64::MIN` if unparseable |
//! | `FROM_UNIXTIME(seconds[, format])` | `Utf8` | epoch seconds formatted with a Java pattern |
//! | `SPLIT_INDEX(str, sep, index)` | `Utf8` | 0-based field of `str` split by `sep`; NULL when out of range |
//! | `REGEXP_EXTRACT(str, regex[, group])` | `Utf8` | capture `group` (default 0, the whole match) of the first match |
//! | `LOCATE(needle, haystack[, start])` | `Int32` | 1-based position of `needle` at or after `start`; 0 if absent |
//! | `HASH_CODE(str)` | `Int32` | `Math.abs(str.hashCode())` as Java computes it |
//! | `MOD(a, b)` | type of `b` | integer remainder with the sign of `a` |
//! | `PROCTIME()` | `Timestamp(ms, "UTC")` | the processing time attribute: the clock when the row is processed |
//! | `YEAR`, `QUARTER`, `MONTH`, `WEEK`, `DAYOFYEAR`, `DAYOFMONTH`, `DAYOFWEEK`, `HOUR`, `MINUTE`, `SECOND` | `Int64` | a field of a timestamp or date (`DAYOFWEEK`: 1 = Sunday) |
//!
//! The group windows `TUMBLE`, `HOP`, `SESSION` and their `*_START`, `*_END` and
//! `*_ROWTIME` properties are markers for the planner ([`group_window`]).
//!
//! Nexmark's user function `count_char(str, ch)` ([`nexmark::CountChar`]) is registered
//! for `CREATE FUNCTION count_char AS 'com.github.nexmark.flink.udf.CountChar'`.
//!
//! Flink functions DataFusion already provides with compatible behaviour are not
//! repeated: `CHAR_LENGTH` (`character_length`), `IFNULL` (`nvl`) and two-argument
//! `INSTR` (`strpos`).

use std::sync::Arc;

use datafusion_expr::ScalarUDF;
use sluice_core::time::{Clock, SystemClock};

mod args;
pub mod group_window;
mod java_format;
pub mod math;
pub mod nexmark;
pub mod proctime;
pub mod string;
pub mod time;
pub mod time_part;

/// All of Sluice's Flink scalar functions, with `UNIX_TIMESTAMP()` reading the machine's
/// clock. Register them after DataFusion's defaults so that they take precedence.
pub fn flink_scalar_functions() -> Vec<Arc<ScalarUDF>> {
    flink_scalar_functions_with_clock(Arc::new(SystemClock))
}

/// All of Sluice's Flink scalar functions, with `UNIX_TIMESTAMP()` reading `clock` (a
/// `ManualClock` in tests).
pub fn flink_scalar_functions_with_clock(clock: Arc<dyn Clock>) -> Vec<Arc<ScalarUDF>> {
    let parts = time_part::all()
        .into_iter()
        .map(|f| Arc::new(ScalarUDF::from(f)));
    let mut functions = vec![
        Arc::new(ScalarUDF::from(time::ToTimestampLtz::new())),
        Arc::new(ScalarUDF::from(time::ToTimestamp::new())),
        Arc::new(ScalarUDF::from(time::DateFormat::new())),
        Arc::new(ScalarUDF::from(time::UnixTimestamp::new(Arc::clone(
            &clock,
        )))),
        Arc::new(ScalarUDF::from(proctime::Proctime::new(clock))),
        Arc::new(ScalarUDF::from(time::FromUnixtime::new())),
        Arc::new(ScalarUDF::from(string::SplitIndex::new())),
        Arc::new(ScalarUDF::from(string::RegexpExtract::new())),
        Arc::new(ScalarUDF::from(string::Locate::new())),
        Arc::new(ScalarUDF::from(string::HashCode::new())),
        Arc::new(ScalarUDF::from(math::Mod::new())),
    ];
    functions.extend(parts);
    functions
}

#[cfg(test)]
mod tests;
