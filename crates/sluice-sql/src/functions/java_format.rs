//! Java date-time patterns (`SimpleDateFormat` / `DateTimeFormatter` letters, as Flink
//! SQL uses them) translated once into chrono format items, plus Flink's default
//! `TO_TIMESTAMP` string parser.
//!
//! Invariant: a pattern either translates to items that format and parse exactly what
//! the supported Java letters mean, or [`JavaDateTimeFormat::compile`] returns a planning
//! error that names the function, the pattern and the offending letter. An unknown letter
//! is never silently printed as text. All times are UTC: a `TIMESTAMP` without time zone
//! is read as a UTC wall clock.
//!
//! The supported letters are listed in the [`super::time`] module documentation.

use std::fmt;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use datafusion_common::{plan_err, Result};

/// Flink's default timestamp pattern for `UNIX_TIMESTAMP`, `FROM_UNIXTIME` and
/// `DATE_FORMAT` on strings.
pub(crate) const DEFAULT_PATTERN: &str = "yyyy-MM-dd HH:mm:ss";

/// A Java date-time pattern compiled to chrono format items.
#[derive(Debug, Clone)]
pub(crate) struct JavaDateTimeFormat {
    items: Vec<Item<'static>>,
}

impl JavaDateTimeFormat {
    /// Translates the Java `pattern` for `function`, or explains which letter is wrong.
    pub(crate) fn compile(function: &str, pattern: &str) -> Result<Self> {
        let strftime = to_strftime(function, pattern)?;
        match StrftimeItems::new(&strftime).parse_to_owned() {
            Ok(items) => Ok(JavaDateTimeFormat { items }),
            Err(e) => plan_err!(
                "{function}: cannot translate date pattern '{pattern}' (as '{strftime}'): {e}"
            ),
        }
    }

    /// Writes `ts` (a UTC wall clock) formatted with this pattern to `out`.
    pub(crate) fn format_into(&self, ts: NaiveDateTime, out: &mut impl fmt::Write) -> fmt::Result {
        let utc: DateTime<Utc> = ts.and_utc();
        write!(out, "{}", utc.format_with_items(self.items.iter()))
    }

    /// Parses `s` with this pattern, Flink style: fields the pattern lacks default to
    /// 1970-01-01 00:00:00, an offset (`Z`, `xx`) is applied, and the fraction is cut to
    /// milliseconds. With `allow_trailing`, text after the pattern is ignored, as
    /// `SimpleDateFormat.parse` does; without it the whole string must match, as
    /// `DateTimeFormatter.parse` requires. `None` if `s` does not match.
    pub(crate) fn parse(&self, s: &str, allow_trailing: bool) -> Option<NaiveDateTime> {
        let mut parsed = Parsed::new();
        let rest = chrono::format::parse_and_remainder(&mut parsed, s, self.items.iter()).ok()?;
        if !allow_trailing && !rest.is_empty() {
            return None;
        }
        let year = parsed
            .year()
            .or_else(|| parsed.year_mod_100().map(|y| 2000 + y))
            .unwrap_or(1970);
        let date =
            NaiveDate::from_ymd_opt(year, parsed.month().unwrap_or(1), parsed.day().unwrap_or(1))?;
        let hour = parsed.hour_div_12().unwrap_or(0) * 12 + parsed.hour_mod_12().unwrap_or(0);
        let nanos = parsed.nanosecond().unwrap_or(0) / 1_000_000 * 1_000_000;
        let time = NaiveTime::from_hms_nano_opt(
            hour,
            parsed.minute().unwrap_or(0),
            parsed.second().unwrap_or(0),
            nanos,
        )?;
        let local = NaiveDateTime::new(date, time);
        match parsed.offset() {
            Some(offset) => local.checked_sub_signed(TimeDelta::seconds(i64::from(offset))),
            None => Some(local),
        }
    }
}

/// Translates a Java pattern to a chrono strftime string.
fn to_strftime(function: &str, pattern: &str) -> Result<String> {
    let mut out = String::with_capacity(pattern.len() * 2);
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            // `''` is a quote; otherwise everything up to the closing quote is literal,
            // with `''` inside standing for one quote.
            if chars.peek() == Some(&'\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            let mut closed = false;
            while let Some(q) = chars.next() {
                if q == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                        out.push('\'');
                    } else {
                        closed = true;
                        break;
                    }
                } else {
                    push_literal(&mut out, q);
                }
            }
            if !closed {
                return plan_err!(
                    "{function}: date pattern '{pattern}' has an unterminated quote; \
                     close literal text with ' or write '' for a quote"
                );
            }
        } else if c.is_ascii_alphabetic() {
            let mut count = 1;
            while chars.peek() == Some(&c) {
                chars.next();
                count += 1;
            }
            out.push_str(letter_to_strftime(function, pattern, c, count)?);
        } else if c == '[' || c == ']' || c == '{' || c == '}' || c == '#' {
            return plan_err!(
                "{function}: date pattern '{pattern}' uses '{c}', which Java reserves \
                 (optional sections are not supported); quote it as '{c}' for literal text"
            );
        } else {
            push_literal(&mut out, c);
        }
    }
    Ok(out)
}

/// Appends `c` as literal text, escaping chrono's `%`.
fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

/// The chrono specifier for `count` repetitions of the Java pattern letter `c`.
fn letter_to_strftime(
    function: &str,
    pattern: &str,
    c: char,
    count: usize,
) -> Result<&'static str> {
    let spec = match (c, count) {
        ('y', 2) => "%y",
        ('y', 1 | 3) => "%-Y",
        ('y', _) => "%Y",
        ('M' | 'L', 1) => "%-m",
        ('M' | 'L', 2) => "%m",
        ('M' | 'L', 3) => "%b",
        ('M' | 'L', _) => "%B",
        ('d', 1) => "%-d",
        ('d', 2) => "%d",
        ('D', 1 | 2) => "%-j",
        ('D', 3) => "%j",
        ('H', 1) => "%-H",
        ('H', 2) => "%H",
        ('h', 1) => "%-I",
        ('h', 2) => "%I",
        ('m', 1) => "%-M",
        ('m', 2) => "%M",
        ('s', 1) => "%-S",
        ('s', 2) => "%S",
        ('S', 3) => "%3f",
        ('S', 6) => "%6f",
        ('S', 9) => "%9f",
        ('a', 1) => "%p",
        ('E', 1..=3) => "%a",
        ('E', _) => "%A",
        ('z', 1..=3) => "%Z",
        ('Z', 1..=3) => "%z",
        ('x', 2) => "%z",
        ('x', 3) => "%:z",
        _ => {
            let letters = std::iter::repeat_n(c, count).collect::<String>();
            let hint = match c {
                'Y' => " (week-based year; did you mean 'yyyy'?)",
                'S' => " (use SSS, SSSSSS or SSSSSSSSS)",
                'k' | 'K' => " (use HH or hh)",
                _ => "",
            };
            return plan_err!(
                "{function}: unsupported letters '{letters}' in date pattern '{pattern}'{hint}; \
                 supported: yyyy yy MM M MMM MMMM dd d D HH H hh h a mm m ss s SSS SSSSSS \
                 SSSSSSSSS EEE EEEE z Z xx xxx and quoted text"
            );
        }
    };
    Ok(spec)
}

/// Parses Flink's default `TO_TIMESTAMP` input, `yyyy-[M]M-[d]d[ [H]H:[m]m:[s]s[.fffffffff]]`,
/// also accepting `T` between date and time. The fraction is cut to milliseconds, and a
/// day past the end of its month is clamped to the last day, as Java's SMART resolver
/// does (`2023-02-30` is `2023-02-28`). `None` if `s` does not match.
pub(crate) fn parse_default_timestamp(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    let mut pos = 0;
    let year = digits(b, &mut pos, 4, 4)?;
    consume(b, &mut pos, b'-')?;
    let month = digits(b, &mut pos, 1, 2)?;
    consume(b, &mut pos, b'-')?;
    let day = digits(b, &mut pos, 1, 2)?;
    let (mut hour, mut minute, mut second, mut millis) = (0, 0, 0, 0);
    if pos < b.len() {
        if b[pos] != b' ' && b[pos] != b'T' {
            return None;
        }
        pos += 1;
        hour = digits(b, &mut pos, 1, 2)?;
        consume(b, &mut pos, b':')?;
        minute = digits(b, &mut pos, 1, 2)?;
        consume(b, &mut pos, b':')?;
        second = digits(b, &mut pos, 1, 2)?;
        if pos < b.len() {
            consume(b, &mut pos, b'.')?;
            let start = pos;
            let fraction = digits(b, &mut pos, 1, 9)?;
            let width = (pos - start) as u32;
            // Scale the fraction to nanoseconds, then cut to milliseconds.
            millis = fraction * 10u32.pow(9 - width) / 1_000_000;
        }
    }
    if pos != b.len() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let day = day.min(days_in_month(year as i32, month)?);
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let time = NaiveTime::from_hms_milli_opt(hour, minute, second, millis)?;
    Some(NaiveDateTime::new(date, time))
}

/// Reads between `min` and `max` ASCII digits at `pos`.
fn digits(b: &[u8], pos: &mut usize, min: usize, max: usize) -> Option<u32> {
    let start = *pos;
    let mut value: u32 = 0;
    while *pos < b.len() && *pos - start < max && b[*pos].is_ascii_digit() {
        value = value * 10 + u32::from(b[*pos] - b'0');
        *pos += 1;
    }
    (*pos - start >= min).then_some(value)
}

/// Consumes the byte `want` at `pos`.
fn consume(b: &[u8], pos: &mut usize, want: u8) -> Option<()> {
    if b.get(*pos) == Some(&want) {
        *pos += 1;
        Some(())
    } else {
        None
    }
}

/// The number of days in `month` of `year`.
fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    u32::try_from((next - first).num_days()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    fn format(pattern: &str, at: &str) -> String {
        let f = JavaDateTimeFormat::compile("DATE_FORMAT", pattern).unwrap();
        let mut out = String::new();
        f.format_into(ts(at), &mut out).unwrap();
        out
    }

    #[test]
    fn formats_common_java_patterns() {
        let at = "2024-03-05 07:08:09.123";
        assert_eq!(format("yyyy-MM-dd HH:mm:ss", at), "2024-03-05 07:08:09");
        assert_eq!(
            format("yyyy-MM-dd'T'HH:mm:ss.SSS", at),
            "2024-03-05T07:08:09.123"
        );
        assert_eq!(format("yy/M/d H:m:s", at), "24/3/5 7:8:9");
        assert_eq!(
            format("EEE, d MMM yyyy hh:mm a", at),
            "Tue, 5 Mar 2024 07:08 AM"
        );
        assert_eq!(format("EEEE MMMM", at), "Tuesday March");
        assert_eq!(format("yyyyMMdd", at), "20240305");
        assert_eq!(format("D", at), "65");
        assert_eq!(format("HH:mm z Z xxx", at), "07:08 UTC +0000 +00:00");
    }

    #[test]
    fn quotes_and_percent_are_literal() {
        let at = "2024-03-05 07:08:09";
        assert_eq!(format("'at' HH 'o''clock'", at), "at 07 o'clock");
        assert_eq!(format("''yy''", at), "'24'");
        assert_eq!(format("100% yyyy", at), "100% 2024");
    }

    #[test]
    fn rejects_unsupported_letters_with_a_hint() {
        let err = JavaDateTimeFormat::compile("DATE_FORMAT", "YYYY-MM-dd")
            .unwrap_err()
            .to_string();
        assert!(err.contains("DATE_FORMAT"), "{err}");
        assert!(err.contains("'YYYY'"), "{err}");
        assert!(err.contains("did you mean 'yyyy'"), "{err}");
        let err = JavaDateTimeFormat::compile("DATE_FORMAT", "yyyy-Q").unwrap_err();
        assert!(err.to_string().contains("'Q'"), "{err}");
        let err = JavaDateTimeFormat::compile("DATE_FORMAT", "HH 'oops").unwrap_err();
        assert!(err.to_string().contains("unterminated quote"), "{err}");
        let err = JavaDateTimeFormat::compile("DATE_FORMAT", "yyyy[-MM]").unwrap_err();
        assert!(err.to_string().contains("optional sections"), "{err}");
    }

    #[test]
    fn parses_with_defaults_for_missing_fields() {
        let f = JavaDateTimeFormat::compile("TO_TIMESTAMP", "yyyy/MM/dd").unwrap();
        assert_eq!(
            f.parse("2024/03/05", false),
            Some(ts("2024-03-05 00:00:00"))
        );
        let f = JavaDateTimeFormat::compile("TO_TIMESTAMP", "HH:mm").unwrap();
        assert_eq!(f.parse("13:45", false), Some(ts("1970-01-01 13:45:00")));
        let f = JavaDateTimeFormat::compile("TO_TIMESTAMP", "dd.MM.yy hh:mm a").unwrap();
        assert_eq!(
            f.parse("05.03.24 01:02 PM", false),
            Some(ts("2024-03-05 13:02:00"))
        );
    }

    #[test]
    fn parse_applies_offsets_and_cuts_fraction_to_millis() {
        let f = JavaDateTimeFormat::compile("TO_TIMESTAMP", "yyyy-MM-dd HH:mm:ss Z").unwrap();
        assert_eq!(
            f.parse("2024-03-05 10:00:00 +0200", false),
            Some(ts("2024-03-05 08:00:00"))
        );
        let f = JavaDateTimeFormat::compile("TO_TIMESTAMP", "HH:mm:ss.SSSSSS").unwrap();
        assert_eq!(
            f.parse("00:00:01.123999", false),
            Some(ts("1970-01-01 00:00:01.123"))
        );
    }

    #[test]
    fn parse_trailing_text_only_when_allowed() {
        let f = JavaDateTimeFormat::compile("UNIX_TIMESTAMP", DEFAULT_PATTERN).unwrap();
        assert_eq!(
            f.parse("2024-03-05 07:08:09.999", true),
            Some(ts("2024-03-05 07:08:09"))
        );
        assert_eq!(f.parse("2024-03-05 07:08:09.999", false), None);
        assert_eq!(f.parse("2024-03-05", true), None);
        assert_eq!(f.parse("2024-13-05 07:08:09", true), None);
    }

    #[test]
    fn default_parser_accepts_flink_forms() {
        assert_eq!(
            parse_default_timestamp("2024-03-05 07:08:09"),
            Some(ts("2024-03-05 07:08:09"))
        );
        assert_eq!(
            parse_default_timestamp("2024-3-5 7:8:9"),
            Some(ts("2024-03-05 07:08:09"))
        );
        assert_eq!(
            parse_default_timestamp("2024-03-05T07:08:09.1239"),
            Some(ts("2024-03-05 07:08:09.123"))
        );
        assert_eq!(
            parse_default_timestamp("2024-03-05"),
            Some(ts("2024-03-05 00:00:00"))
        );
        assert_eq!(
            parse_default_timestamp("2023-02-30 00:00:00"),
            Some(ts("2023-02-28 00:00:00"))
        );
    }

    #[test]
    fn default_parser_rejects_malformed_input() {
        for bad in [
            "",
            "2024",
            "2024-03-05 07:08",
            "2024-03-05 24:00:00",
            "2024-13-05",
            "2024-00-05",
            "2024-03-32",
            "2024-03-05 07:08:09.",
            "2024-03-05 07:08:09.1234567890",
            "2024-03-05 07:08:09 ",
            "2024-03-05X07:08:09",
            "24-03-05",
            "not a date",
        ] {
            assert_eq!(parse_default_timestamp(bad), None, "{bad:?}");
        }
    }
}
