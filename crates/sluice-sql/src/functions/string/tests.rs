//! Unit tests for the string functions, calling each UDF on Arrow arrays and scalars.

use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, StringViewArray};
use datafusion_common::ScalarValue;
use datafusion_expr::{ColumnarValue, ScalarUDFImpl};

use super::*;
use crate::functions::args::harness::{ints, invoke, lit_int, lit_str, output, some, strs};

#[test]
fn split_index_picks_zero_based_fields() {
    let udf = SplitIndex::new();
    let input = strs(&[
        Some("Jack,John,Mary"),
        Some("Jack,John,Mary"),
        Some("Jack,John,Mary"),
        Some("a,,b"),
        Some(""),
        None,
    ]);
    let index = ints(&[Some(2), Some(3), Some(-1), Some(1), Some(0), Some(0)]);
    let out = invoke(&udf, vec![input, lit_str(","), index], 6).unwrap();
    assert_eq!(
        output(out, 6),
        some(&[Some("Mary"), None, None, Some(""), None, None])
    );
}

#[test]
fn split_index_uses_whole_separators_and_java_whitespace() {
    let udf = SplitIndex::new();
    let out = invoke(&udf, vec![lit_str("a<>b<>c"), lit_str("<>"), lit_int(1)], 1).unwrap();
    assert_eq!(output(out, 1), some(&[Some("b")]));
    // An empty separator splits on each whitespace character, keeping empty fields;
    // the no-break space is not whitespace to Java.
    let input = strs(&[Some("a\t b"), Some("a\u{A0}b c")]);
    let out = invoke(&udf, vec![input, lit_str(""), ints(&[Some(2), Some(0)])], 2).unwrap();
    assert_eq!(output(out, 2), some(&[Some("b"), Some("a\u{A0}b")]));
    let null_sep = ColumnarValue::Scalar(ScalarValue::Utf8(None));
    let out = invoke(&udf, vec![lit_str("a,b"), null_sep, lit_int(0)], 1).unwrap();
    assert_eq!(output(out, 1), vec![None]);
}

#[test]
fn split_index_reads_large_and_view_strings() {
    let udf = SplitIndex::new();
    let large = ColumnarValue::Array(Arc::new(LargeStringArray::from(vec!["x.y"])) as ArrayRef);
    let out = invoke(&udf, vec![large, lit_str("."), lit_int(1)], 1).unwrap();
    assert_eq!(output(out, 1), some(&[Some("y")]));
    let view = ColumnarValue::Array(Arc::new(StringViewArray::from(vec!["x.y"])) as ArrayRef);
    let out = invoke(&udf, vec![view, lit_str("."), lit_int(0)], 1).unwrap();
    assert_eq!(output(out, 1), some(&[Some("x")]));
}

#[test]
fn regexp_extract_defaults_to_the_whole_match() {
    let udf = RegexpExtract::new();
    let input = strs(&[Some("foothebar"), Some("nothing"), None]);
    let out = invoke(&udf, vec![input.clone(), lit_str("foo(.*?)(bar)")], 3).unwrap();
    assert_eq!(output(out, 3), some(&[Some("foothebar"), None, None]));
    let out = invoke(&udf, vec![input, lit_str("foo(.*?)(bar)"), lit_int(2)], 3).unwrap();
    assert_eq!(output(out, 3), some(&[Some("bar"), None, None]));
}

#[test]
fn regexp_extract_gives_null_for_missing_groups() {
    let udf = RegexpExtract::new();
    let groups = ints(&[Some(1), Some(3), Some(-1), Some(2), None]);
    let input = strs(&[Some("ab"), Some("ab"), Some("ab"), Some("ab"), Some("ab")]);
    let out = invoke(&udf, vec![input, lit_str("(a)(x)?"), groups], 5).unwrap();
    assert_eq!(output(out, 5), some(&[Some("a"), None, None, None, None]));
}

#[test]
fn regexp_extract_compiles_per_row_patterns_and_nulls_invalid_ones() {
    let udf = RegexpExtract::new();
    let input = strs(&[Some("a1b22"), Some("a1b22"), Some("a1b22"), Some("x")]);
    let patterns = strs(&[Some(r"\d+"), Some(r"b(\d+)"), Some("("), None]);
    let out = invoke(&udf, vec![input, patterns, lit_int(0)], 4).unwrap();
    assert_eq!(output(out, 4), some(&[Some("1"), Some("b22"), None, None]));
}

#[test]
fn regexp_extract_rejects_a_constant_pattern_it_cannot_compile() {
    let udf = RegexpExtract::new();
    let err = invoke(&udf, vec![strs(&[Some("ab")]), lit_str("(?<=a)b")], 1).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("Error during planning"), "{msg}");
    assert!(
        msg.contains("REGEXP_EXTRACT: cannot compile regular expression '(?<=a)b'"),
        "{msg}"
    );
    assert!(msg.contains("no look-around"), "{msg}");
}

#[test]
fn locate_counts_code_points_from_one() {
    let udf = Locate::new();
    let needles = strs(&[Some("b"), Some("z"), Some(""), Some("ü"), Some("b"), None]);
    let haystacks = strs(&[
        Some("abcb"),
        Some("abc"),
        Some("abc"),
        Some("grüß ü"),
        Some("ab"),
        Some("b"),
    ]);
    let out = invoke(&udf, vec![needles, haystacks], 6).unwrap();
    assert_eq!(
        output(out, 6),
        some(&[Some("2"), Some("0"), Some("1"), Some("3"), Some("2"), None])
    );
}

#[test]
fn locate_starts_at_the_given_position() {
    let udf = Locate::new();
    let starts = ints(&[Some(3), Some(0), Some(-5), Some(5), Some(99), None]);
    let haystacks = strs(&[Some("abcb"); 6]);
    let out = invoke(&udf, vec![lit_str("b"), haystacks, starts], 6).unwrap();
    assert_eq!(
        output(out, 6),
        some(&[Some("4"), Some("2"), Some("2"), Some("0"), Some("0"), None])
    );
    let out = invoke(&udf, vec![lit_str("ß"), lit_str("ßaß"), lit_int(2)], 1).unwrap();
    assert!(matches!(
        out,
        ColumnarValue::Scalar(ScalarValue::Int32(Some(3)))
    ));
}

#[test]
fn hash_code_matches_java() {
    let udf = HashCode::new();
    // Values from Java: "hello".hashCode() = 99162322, "Flink".hashCode() = 67968320,
    // "polygenelubricants".hashCode() = Integer.MIN_VALUE, "😀".hashCode() = 1772899.
    let input = strs(&[
        Some("hello"),
        Some(""),
        Some("Flink"),
        Some("polygenelubricants"),
        Some("😀"),
        None,
    ]);
    let out = invoke(&udf, vec![input], 6).unwrap();
    let min = i32::MIN.to_string();
    assert_eq!(
        output(out, 6),
        some(&[
            Some("99162322"),
            Some("0"),
            Some("67968320"),
            Some(&min),
            Some("1772899"),
            None
        ])
    );
}

#[test]
fn hash_code_is_non_negative() {
    // "abcdef".hashCode() is -1424385949 in Java; Flink returns its absolute value.
    assert_eq!(java_string_hash("abcdef"), -1_424_385_949);
    let out = invoke(&HashCode::new(), vec![lit_str("abcdef")], 1).unwrap();
    assert!(matches!(
        out,
        ColumnarValue::Scalar(ScalarValue::Int32(Some(1_424_385_949)))
    ));
}

#[test]
fn string_functions_reject_non_strings_at_planning() {
    let err = SplitIndex::new()
        .coerce_types(&[DataType::Int64, DataType::Utf8, DataType::Int64])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("SPLIT_INDEX: argument 1 must be a string"),
        "{err}"
    );
    let err = Locate::new()
        .coerce_types(&[DataType::Utf8, DataType::Utf8, DataType::Utf8])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("LOCATE: argument 3 must be an integer"),
        "{err}"
    );
    let err = RegexpExtract::new()
        .coerce_types(&[DataType::Utf8])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("REGEXP_EXTRACT expects 2 to 3 arguments"),
        "{err}"
    );
}
