//! Flink's string scalar functions that DataFusion lacks: `SPLIT_INDEX`,
//! `REGEXP_EXTRACT`, `LOCATE` and `HASH_CODE`.
//!
//! Invariant: positions count Unicode code points (as Flink's `BinaryStringData` does),
//! NULL in any argument gives NULL, and a constant regular expression is compiled once
//! per batch. Regular expressions use the `regex` crate, which agrees with Java's syntax
//! for the common cases but has no look-around or backreferences, and whose `\d`, `\w`,
//! `\s` and `\b` are Unicode-aware where Java's are ASCII-only.

use std::sync::Arc;

use arrow::array::{Int32Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, FieldRef};
use datafusion_common::{exec_err, plan_err, Result};
use datafusion_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

use super::args::{check_arity, coerce_integer, coerce_string, literal_str, IntArg, Rows, StrArg};

// ---------------------------------------------------------------------------------------
// SPLIT_INDEX
// ---------------------------------------------------------------------------------------

/// `SPLIT_INDEX(str, separator, index)`: the `index`-th (0-based) field of `str` split by
/// the whole string `separator`, as `Utf8`.
///
/// As in Flink (Commons Lang `splitByWholeSeparatorPreserveAllTokens`): empty fields are
/// kept (`'a,,b'` has three), an empty `str` has no fields, an empty `separator` splits on
/// each Java whitespace character, and a negative or too large `index` gives NULL.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SplitIndex {
    signature: Signature,
}

impl Default for SplitIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl SplitIndex {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SplitIndex {
    fn name(&self) -> &str {
        "split_index"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("SPLIT_INDEX", arg_types, 3, 3)?;
        Ok(vec![
            coerce_string("SPLIT_INDEX", 0, &arg_types[0])?,
            coerce_string("SPLIT_INDEX", 1, &arg_types[1])?,
            coerce_integer("SPLIT_INDEX", 2, &arg_types[2])?,
        ])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let input = StrArg::new("SPLIT_INDEX", 0, &args.args[0])?;
        let separator = StrArg::new("SPLIT_INDEX", 1, &args.args[1])?;
        let index = IntArg::new("SPLIT_INDEX", 2, &args.args[2])?;
        let mut out = StringBuilder::with_capacity(rows.len, 0);
        for row in 0..rows.len {
            let field = match (input.value(row), separator.value(row), index.value(row)) {
                (Some(s), Some(sep), Some(i)) => split_index(s, sep, i),
                _ => None,
            };
            out.append_option(field);
        }
        rows.finish(Arc::new(out.finish()))
    }
}

/// The `index`-th field of `s` split by `separator`, Flink style.
fn split_index<'a>(s: &'a str, separator: &str, index: i64) -> Option<&'a str> {
    let index = usize::try_from(index).ok()?;
    if s.is_empty() {
        None
    } else if separator.is_empty() {
        s.split(is_java_whitespace).nth(index)
    } else {
        s.split(separator).nth(index)
    }
}

/// Java's `Character.isWhitespace`: Unicode spaces except the no-break ones, plus the
/// ASCII controls TAB, LF, VT, FF, CR and FS, GS, RS, US.
fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r' | '\u{1C}'..='\u{1F}'
    ) || (c.is_whitespace() && !matches!(c, '\u{85}' | '\u{A0}' | '\u{2007}' | '\u{202F}'))
}

// ---------------------------------------------------------------------------------------
// REGEXP_EXTRACT
// ---------------------------------------------------------------------------------------

/// `REGEXP_EXTRACT(str, regex[, group])`: the text of capture `group` in the first match
/// of `regex` in `str`, as `Utf8`. Group 0, the default as in Flink, is the whole match.
///
/// No match, a group that did not take part in the match, or a group index that is
/// negative or past the last group gives NULL, as in Flink. A constant `regex` that does
/// not compile is an error at planning time (Flink would return NULL for every row, which
/// hides a Java-only pattern such as a look-ahead); one read from a column gives NULL for
/// that row.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
}

impl Default for RegexpExtract {
    fn default() -> Self {
        Self::new()
    }
}

impl RegexpExtract {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// Compiles `pattern`, explaining a failure in terms a Flink user can act on.
fn compile_regex(pattern: &str) -> Result<Regex> {
    Regex::new(pattern).or_else(|e| {
        plan_err!(
            "REGEXP_EXTRACT: cannot compile regular expression '{pattern}': {e}. Sluice uses \
             the Rust regex syntax, which has no look-around or backreferences"
        )
    })
}

/// The regular expression argument: compiled once when constant, else per distinct value.
enum RegexArg<'a> {
    Constant(Option<Regex>),
    PerRow(StrArg<'a>, Option<(String, Option<Regex>)>),
}

impl RegexArg<'_> {
    /// The compiled expression for `row`; `None` when it is NULL or (per row) invalid.
    fn get(&mut self, row: usize) -> Option<&Regex> {
        match self {
            RegexArg::Constant(re) => re.as_ref(),
            RegexArg::PerRow(arg, cache) => {
                let p = arg.value(row)?;
                if !matches!(cache, Some((k, _)) if k == p) {
                    *cache = Some((p.to_owned(), Regex::new(p).ok()));
                }
                cache.as_ref().and_then(|(_, re)| re.as_ref())
            }
        }
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("REGEXP_EXTRACT", arg_types, 2, 3)?;
        let mut out = vec![
            coerce_string("REGEXP_EXTRACT", 0, &arg_types[0])?,
            coerce_string("REGEXP_EXTRACT", 1, &arg_types[1])?,
        ];
        if let Some(t) = arg_types.get(2) {
            out.push(coerce_integer("REGEXP_EXTRACT", 2, t)?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs<'_>) -> Result<FieldRef> {
        if let Some(p) = literal_str(args.scalar_arguments, 1) {
            compile_regex(p)?;
        }
        Ok(Arc::new(Field::new(self.name(), DataType::Utf8, true)))
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let input = StrArg::new("REGEXP_EXTRACT", 0, &args.args[0])?;
        let pattern = StrArg::new("REGEXP_EXTRACT", 1, &args.args[1])?;
        let mut regex = match pattern.constant() {
            Some(Some(p)) => RegexArg::Constant(Some(compile_regex(p)?)),
            Some(None) => RegexArg::Constant(None),
            None => RegexArg::PerRow(pattern, None),
        };
        let group = match args.args.get(2) {
            Some(g) => IntArg::new("REGEXP_EXTRACT", 2, g)?,
            None => IntArg::Scalar(Some(0)),
        };
        let mut out = StringBuilder::with_capacity(rows.len, 0);
        for row in 0..rows.len {
            let (Some(s), Some(g)) = (input.value(row), group.value(row)) else {
                out.append_null();
                continue;
            };
            let extracted = match (regex.get(row), usize::try_from(g)) {
                (Some(re), Ok(0)) => re.find(s).map(|m| m.as_str()),
                (Some(re), Ok(g)) => re.captures(s).and_then(|c| c.get(g)).map(|m| m.as_str()),
                _ => None,
            };
            out.append_option(extracted);
        }
        rows.finish(Arc::new(out.finish()))
    }
}

// ---------------------------------------------------------------------------------------
// LOCATE
// ---------------------------------------------------------------------------------------

/// `LOCATE(needle, haystack[, start])`: the 1-based position of the first `needle` in
/// `haystack` at or after position `start` (default 1), or 0 if there is none, as
/// `Int32`. As in Flink, a `start` below 1 searches from the beginning and an empty
/// `needle` is found at position 1.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Locate {
    signature: Signature,
}

impl Default for Locate {
    fn default() -> Self {
        Self::new()
    }
}

impl Locate {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Locate {
    fn name(&self) -> &str {
        "locate"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("LOCATE", arg_types, 2, 3)?;
        let mut out = vec![
            coerce_string("LOCATE", 0, &arg_types[0])?,
            coerce_string("LOCATE", 1, &arg_types[1])?,
        ];
        if let Some(t) = arg_types.get(2) {
            out.push(coerce_integer("LOCATE", 2, t)?);
        }
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let needle = StrArg::new("LOCATE", 0, &args.args[0])?;
        let haystack = StrArg::new("LOCATE", 1, &args.args[1])?;
        let start = match args.args.get(2) {
            Some(s) => IntArg::new("LOCATE", 2, s)?,
            None => IntArg::Scalar(Some(1)),
        };
        let mut out = Int32Builder::with_capacity(rows.len);
        for row in 0..rows.len {
            match (needle.value(row), haystack.value(row), start.value(row)) {
                (Some(n), Some(h), Some(s)) => out.append_value(locate(n, h, s)),
                _ => out.append_null(),
            }
        }
        rows.finish(Arc::new(out.finish()))
    }
}

/// Flink's `haystack.indexOf(needle, start - 1) + 1`, counting code points.
fn locate(needle: &str, haystack: &str, start: i64) -> i32 {
    if needle.is_empty() {
        return 1;
    }
    let skip = usize::try_from(start.saturating_sub(1)).unwrap_or(0);
    let from_byte = if haystack.is_ascii() {
        skip.min(haystack.len())
    } else {
        match haystack.char_indices().nth(skip) {
            Some((b, _)) => b,
            None => return 0,
        }
    };
    let Some(found) = haystack[from_byte..].find(needle) else {
        return 0;
    };
    let end = from_byte + found;
    let chars = if haystack.is_ascii() {
        end
    } else {
        haystack[..end].chars().count()
    };
    i32::try_from(chars + 1).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------
// HASH_CODE
// ---------------------------------------------------------------------------------------

/// `HASH_CODE(str)`: Flink's `Math.abs(str.hashCode())`, Java's `String.hashCode` over
/// UTF-16 code units made non-negative, as `Int32`. Like Java's `Math.abs`, it stays
/// `i32::MIN` for the one hash whose absolute value does not fit.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HashCode {
    signature: Signature,
}

impl Default for HashCode {
    fn default() -> Self {
        Self::new()
    }
}

impl HashCode {
    /// Creates the function.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HashCode {
    fn name(&self) -> &str {
        "hash_code"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        check_arity("HASH_CODE", arg_types, 1, 1)?;
        Ok(vec![coerce_string("HASH_CODE", 0, &arg_types[0])?])
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = Rows::of(&args.args, args.number_rows);
        let [input] = args.args.as_slice() else {
            return exec_err!("HASH_CODE expects 1 argument, got {}", args.args.len());
        };
        let input = StrArg::new("HASH_CODE", 0, input)?;
        let mut out = Int32Builder::with_capacity(rows.len);
        for row in 0..rows.len {
            out.append_option(input.value(row).map(|s| java_string_hash(s).wrapping_abs()));
        }
        rows.finish(Arc::new(out.finish()))
    }
}

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, with
/// wrapping `int` arithmetic.
fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

#[cfg(test)]
mod tests;
