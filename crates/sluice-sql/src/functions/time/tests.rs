//! Unit tests for the temporal functions, calling each UDF on Arrow arrays and scalars.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Decimal128Array, Float64Array, Int64Array, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray,
};
use arrow::datatypes::{DataType, TimeUnit, TimestampMillisecondType};
use chrono::NaiveDateTime;
use datafusion_common::ScalarValue;
use datafusion_expr::{ColumnarValue, ScalarUDFImpl};
use sluice_core::time::ManualClock;

use super::*;
use crate::functions::args::harness::{ints, invoke, lit_int, lit_str, output, some, strs};

fn millis(out: ColumnarValue, rows: usize) -> Vec<Option<i64>> {
    let array = out.into_array(rows).unwrap();
    array
        .as_primitive::<TimestampMillisecondType>()
        .iter()
        .collect()
}

fn epoch_ms(s: &str) -> i64 {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn column(array: impl arrow::array::Array + 'static) -> ColumnarValue {
    ColumnarValue::Array(Arc::new(array) as ArrayRef)
}

#[test]
fn to_timestamp_ltz_converts_seconds_and_millis() {
    let udf = ToTimestampLtz::new();
    let values = ints(&[
        Some(0),
        Some(1_700_000_000),
        None,
        Some(MAX_EPOCH_SECONDS + 1),
    ]);
    let out = invoke(&udf, vec![values.clone(), lit_int(0)], 4).unwrap();
    assert_eq!(out.data_type(), timestamp_ltz());
    assert_eq!(
        millis(out, 4),
        vec![Some(0), Some(1_700_000_000_000), None, None]
    );
    let out = invoke(&udf, vec![values], 4).unwrap();
    assert_eq!(
        millis(out, 4),
        vec![
            Some(0),
            Some(1_700_000_000),
            None,
            Some(MAX_EPOCH_SECONDS + 1)
        ]
    );
}

#[test]
fn to_timestamp_ltz_truncates_floats_and_decimals_like_flink() {
    let udf = ToTimestampLtz::new();
    let floats = column(Float64Array::from(vec![
        Some(1.5),
        Some(-1.5),
        Some(f64::NAN),
    ]));
    let out = invoke(&udf, vec![floats.clone(), lit_int(0)], 3).unwrap();
    assert_eq!(millis(out, 3), vec![Some(1500), Some(-1500), None]);
    let out = invoke(&udf, vec![floats, lit_int(3)], 3).unwrap();
    assert_eq!(millis(out, 3), vec![Some(1), Some(-1), Some(0)]);

    // 1500.999 as DECIMAL(10, 3): whole seconds are kept, the fraction is dropped.
    let decimals = Decimal128Array::from(vec![Some(1_500_999), None])
        .with_precision_and_scale(10, 3)
        .unwrap();
    let out = invoke(&udf, vec![column(decimals.clone()), lit_int(0)], 2).unwrap();
    assert_eq!(millis(out, 2), vec![Some(1_500_000), None]);
    let out = invoke(&udf, vec![column(decimals), lit_int(3)], 2).unwrap();
    assert_eq!(millis(out, 2), vec![Some(1500), None]);
}

#[test]
fn to_timestamp_ltz_rejects_unsupported_precision() {
    let udf = ToTimestampLtz::new();
    let err = invoke(&udf, vec![ints(&[Some(1)]), lit_int(6)], 1).unwrap_err();
    assert!(
        err.to_string()
            .contains("TO_TIMESTAMP_LTZ: precision 6 is not supported"),
        "{err}"
    );
    // A precision read from a column is checked per row at execution time.
    let err = invoke(
        &udf,
        vec![ints(&[Some(1), Some(2)]), ints(&[Some(3), Some(9)])],
        2,
    )
    .unwrap_err();
    assert!(err.to_string().contains("precision 9"), "{err}");
    let out = invoke(&udf, vec![ints(&[Some(1)]), ints(&[None])], 1).unwrap();
    assert_eq!(millis(out, 1), vec![None]);
    let err = udf.coerce_types(&[DataType::Utf8]).unwrap_err();
    assert!(err.to_string().contains("numeric epoch value"), "{err}");
}

#[test]
fn to_timestamp_parses_the_default_format() {
    let udf = ToTimestamp::new();
    let input = strs(&[
        Some("2024-03-05 07:08:09"),
        Some("2024-03-05T07:08:09.123456"),
        Some("2024-03-05"),
        Some("garbage"),
        None,
    ]);
    let out = invoke(&udf, vec![input], 5).unwrap();
    assert_eq!(
        out.data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, None)
    );
    assert_eq!(
        millis(out, 5),
        vec![
            Some(epoch_ms("2024-03-05 07:08:09")),
            Some(epoch_ms("2024-03-05 07:08:09.123")),
            Some(epoch_ms("2024-03-05 00:00:00")),
            None,
            None,
        ]
    );
}

#[test]
fn to_timestamp_with_a_java_format_falls_back_to_the_default() {
    let udf = ToTimestamp::new();
    let input = strs(&[
        Some("05/03/2024 07:08"),
        Some(" 2024-03-05 07:08:09 "),
        Some("05/03/2024"),
    ]);
    let out = invoke(&udf, vec![input, lit_str("dd/MM/yyyy HH:mm")], 3).unwrap();
    assert_eq!(
        millis(out, 3),
        vec![
            Some(epoch_ms("2024-03-05 07:08:00")),
            Some(epoch_ms("2024-03-05 07:08:09")),
            None,
        ]
    );
    // Formats read from a column are compiled per distinct value.
    let formats = strs(&[Some("yyyy"), Some("yyyy"), Some("HH:mm"), None]);
    let input = strs(&[Some("2024"), Some("1999"), Some("13:45"), Some("2024")]);
    let out = invoke(&udf, vec![input, formats], 4).unwrap();
    assert_eq!(
        millis(out, 4),
        vec![
            Some(epoch_ms("2024-01-01 00:00:00")),
            Some(epoch_ms("1999-01-01 00:00:00")),
            Some(epoch_ms("1970-01-01 13:45:00")),
            None,
        ]
    );
}

#[test]
fn to_timestamp_of_constants_is_a_constant() {
    let out = invoke(&ToTimestamp::new(), vec![lit_str("2024-03-05 07:08:09")], 7).unwrap();
    let expected = epoch_ms("2024-03-05 07:08:09");
    assert!(
        matches!(out, ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(Some(v), None)) if v == expected),
        "{out:?}"
    );
}

#[test]
fn to_timestamp_rejects_a_bad_pattern_at_planning() {
    let err = invoke(
        &ToTimestamp::new(),
        vec![strs(&[Some("x")]), lit_str("yyyy-MM-dd kk")],
        1,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("Error during planning"), "{msg}");
    assert!(
        msg.contains("TO_TIMESTAMP: unsupported letters 'kk'"),
        "{msg}"
    );
}

#[test]
fn date_format_formats_timestamps_of_every_unit() {
    let udf = DateFormat::new();
    let ms = column(TimestampMillisecondArray::from(vec![
        Some(epoch_ms("2024-03-05 07:08:09.123")),
        None,
    ]));
    let out = invoke(&udf, vec![ms, lit_str("yyyy-MM-dd'T'HH:mm:ss.SSS")], 2).unwrap();
    assert_eq!(
        output(out, 2),
        some(&[Some("2024-03-05T07:08:09.123"), None])
    );

    let ns = column(TimestampNanosecondArray::from(vec![
        epoch_ms("2024-03-05 19:08:09.123") * 1_000_000 + 456_789,
    ]));
    let out = invoke(
        &udf,
        vec![ns, lit_str("EEE, d MMM yy hh:mm:ss.SSSSSSSSS a")],
        1,
    )
    .unwrap();
    assert_eq!(
        output(out, 1),
        some(&[Some("Tue, 5 Mar 24 07:08:09.123456789 PM")])
    );

    let ltz = column(
        TimestampSecondArray::from(vec![epoch_ms("2024-03-05 07:08:09") / 1000])
            .with_timezone("+02:00"),
    );
    let out = invoke(&udf, vec![ltz, lit_str("HH:mm z")], 1).unwrap();
    assert_eq!(output(out, 1), some(&[Some("07:08 UTC")]));
}

#[test]
fn date_format_formats_strings_and_nulls() {
    let udf = DateFormat::new();
    let input = strs(&[Some("2024-03-05 07:08:09"), Some("not a time"), None]);
    let out = invoke(&udf, vec![input.clone(), lit_str("yyyy/MM/dd")], 3).unwrap();
    assert_eq!(output(out, 3), some(&[Some("2024/03/05"), None, None]));
    let null_format = ColumnarValue::Scalar(ScalarValue::Utf8(None));
    let out = invoke(&udf, vec![input, null_format], 3).unwrap();
    assert_eq!(output(out, 3), some(&[None, None, None]));
    let out = invoke(
        &udf,
        vec![lit_str("2024-03-05 07:08:09"), lit_str("MMMM")],
        1,
    )
    .unwrap();
    assert!(matches!(out, ColumnarValue::Scalar(ScalarValue::Utf8(Some(ref s))) if s == "March"));
}

#[test]
fn date_format_reports_bad_patterns() {
    let udf = DateFormat::new();
    let err = invoke(&udf, vec![strs(&[Some("x")]), lit_str("YYYY-MM-dd")], 1).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("DATE_FORMAT: unsupported letters 'YYYY'"),
        "{msg}"
    );
    let formats = strs(&[Some("yyyy"), Some("yyyy-Q")]);
    let input = strs(&[Some("2024-03-05 07:08:09"), Some("2024-03-05 07:08:09")]);
    let err = invoke(&udf, vec![input, formats], 2).unwrap_err();
    assert!(err.to_string().contains("'Q'"), "{err}");
    let err = udf
        .coerce_types(&[DataType::Int64, DataType::Utf8])
        .unwrap_err();
    assert!(
        err.to_string().contains("TIMESTAMP, DATE or string"),
        "{err}"
    );
}

#[test]
fn unix_timestamp_reads_the_clock_without_arguments() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_999));
    let udf = UnixTimestamp::new(Arc::clone(&clock) as Arc<dyn Clock>);
    let out = invoke(&udf, vec![], 3).unwrap();
    assert!(matches!(
        out,
        ColumnarValue::Scalar(ScalarValue::Int64(Some(1_700_000_000)))
    ));
    clock.set(1_700_000_060_000);
    let out = invoke(&udf, vec![], 3).unwrap();
    assert!(matches!(
        out,
        ColumnarValue::Scalar(ScalarValue::Int64(Some(1_700_000_060)))
    ));
}

#[test]
fn unix_timestamp_parses_strings_and_flags_failures_with_long_min() {
    let udf = UnixTimestamp::default();
    let input = strs(&[Some("2024-03-05 07:08:09"), Some("garbage"), None]);
    let out = invoke(&udf, vec![input], 3).unwrap();
    let expected = epoch_ms("2024-03-05 07:08:09") / 1000;
    assert_eq!(
        output(out, 3),
        vec![Some(expected.to_string()), Some(i64::MIN.to_string()), None]
    );
    let out = invoke(
        &udf,
        vec![strs(&[Some("05.03.2024")]), lit_str("dd.MM.yyyy")],
        1,
    )
    .unwrap();
    let expected = epoch_ms("2024-03-05 00:00:00") / 1000;
    assert_eq!(output(out, 1), vec![Some(expected.to_string())]);
}

#[test]
fn unix_timestamp_instances_compare_by_clock() {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(0));
    assert_eq!(
        UnixTimestamp::new(Arc::clone(&clock)),
        UnixTimestamp::new(Arc::clone(&clock))
    );
    assert_ne!(UnixTimestamp::new(clock), UnixTimestamp::default());
}

#[test]
fn from_unixtime_formats_seconds() {
    let udf = FromUnixtime::new();
    let seconds = ints(&[
        Some(0),
        Some(epoch_ms("2024-03-05 07:08:09") / 1000),
        None,
        Some(i64::MAX),
    ]);
    let out = invoke(&udf, vec![seconds.clone()], 4).unwrap();
    assert_eq!(
        output(out, 4),
        some(&[
            Some("1970-01-01 00:00:00"),
            Some("2024-03-05 07:08:09"),
            None,
            None
        ])
    );
    let out = invoke(&udf, vec![seconds, lit_str("yyyyMMdd")], 4).unwrap();
    assert_eq!(
        output(out, 4),
        some(&[Some("19700101"), Some("20240305"), None, None])
    );
    let err = udf.coerce_types(&[DataType::Utf8]).unwrap_err();
    assert!(
        err.to_string().contains("FROM_UNIXTIME: argument 1"),
        "{err}"
    );
}

#[test]
fn from_unixtime_accepts_an_int64_column() {
    let seconds = column(Int64Array::from(vec![86_400]));
    let out = invoke(
        &FromUnixtime::new(),
        vec![seconds, lit_str("yyyy-MM-dd")],
        1,
    )
    .unwrap();
    assert_eq!(output(out, 1), some(&[Some("1970-01-02")]));
}
