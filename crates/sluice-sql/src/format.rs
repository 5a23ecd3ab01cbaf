//! Row formats of connectors: CSV and JSON lines read into Arrow batches, and rows written
//! as CSV, JSON or Flink's `print` form (`+I[1, abc]`).
//!
//! Decoding follows the table's policy for malformed lines: fail naming the line, or
//! (`csv.ignore-parse-errors` / `json.ignore-parse-errors`) skip and count it in
//! `malformed_records_skipped`.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sluice_runtime::metrics::Counter;
use sluice_runtime::{OperatorContext, Result as RuntimeResult};

use crate::batch::{RowKind, SqlBatch};
use crate::error::{Error, Result};
use crate::operators::decode::RecordDecoder;

/// The timestamp format of Flink's SQL output (`2024-01-31 12:00:00.000`).
pub const SQL_TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.3f";

/// A text format and its options.
#[derive(Debug, Clone)]
pub enum TextFormat {
    /// `'format' = 'csv'`.
    Csv(CsvOptions),
    /// `'format' = 'json'`.
    Json {
        /// `json.ignore-parse-errors`.
        ignore_parse_errors: bool,
    },
    /// `'format' = 'debezium-json'`: a changelog, one Debezium envelope per change
    /// (`op` `c`/`r` insert `after`, `u` retracts `before` and inserts `after`, `d` deletes
    /// `before`; a `payload` wrapper, as with `debezium-json.schema-include`, is read
    /// too).
    DebeziumJson {
        /// `debezium-json.ignore-parse-errors`.
        ignore_parse_errors: bool,
    },
}

impl TextFormat {
    /// Whether rows in this format are a changelog (a source of it is updating).
    pub fn is_changelog(&self) -> bool {
        matches!(self, TextFormat::DebeziumJson { .. })
    }
}

/// Flink's `csv.*` options.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// `csv.field-delimiter`, default `,`.
    pub delimiter: u8,
    /// `csv.quote-character`, default `"`.
    pub quote: u8,
    /// `csv.null-literal`: a field equal to it is NULL.
    pub null_literal: Option<String>,
    /// `csv.ignore-parse-errors`: skip malformed lines (counted) instead of failing.
    pub ignore_parse_errors: bool,
    /// `csv.allow-comments`: skip lines starting with `#`.
    pub allow_comments: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: b',',
            quote: b'"',
            null_literal: None,
            ignore_parse_errors: false,
            allow_comments: false,
        }
    }
}

fn single_byte(key: &str, value: &str) -> Result<u8> {
    let v = match value {
        "\\t" => "\t",
        other => other,
    };
    match v.as_bytes() {
        [b] => Ok(*b),
        _ => Err(Error::config(format!(
            "option '{key}' must be one character, got '{value}'"
        ))),
    }
}

fn flag(key: &str, value: Option<&String>) -> Result<bool> {
    match value.map(|v| v.to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(Error::config(format!(
            "option '{key}' must be 'true' or 'false', got '{v}'"
        ))),
    }
}

impl TextFormat {
    /// The format named by the `format` option, with its `csv.*` / `json.*` options.
    ///
    /// # Errors
    /// An unknown format or a bad option value.
    pub fn from_options(options: &std::collections::BTreeMap<String, String>) -> Result<Self> {
        let format = options
            .get("format")
            .or_else(|| options.get("value.format"))
            .map(String::as_str)
            .unwrap_or("csv");
        match format {
            "csv" => {
                let mut csv = CsvOptions::default();
                if let Some(d) = options.get("csv.field-delimiter") {
                    csv.delimiter = single_byte("csv.field-delimiter", d)?;
                }
                if let Some(q) = options.get("csv.quote-character") {
                    csv.quote = single_byte("csv.quote-character", q)?;
                }
                csv.null_literal = options.get("csv.null-literal").cloned();
                csv.ignore_parse_errors = flag(
                    "csv.ignore-parse-errors",
                    options.get("csv.ignore-parse-errors"),
                )?;
                csv.allow_comments = flag("csv.allow-comments", options.get("csv.allow-comments"))?;
                Ok(TextFormat::Csv(csv))
            }
            "json" => Ok(TextFormat::Json {
                ignore_parse_errors: flag(
                    "json.ignore-parse-errors",
                    options.get("json.ignore-parse-errors"),
                )?,
            }),
            "debezium-json" => Ok(TextFormat::DebeziumJson {
                ignore_parse_errors: flag(
                    "debezium-json.ignore-parse-errors",
                    options.get("debezium-json.ignore-parse-errors"),
                )?,
            }),
            other => Err(Error::config(format!(
                "format '{other}' is not supported; use 'csv', 'json' or 'debezium-json'"
            ))),
        }
    }
}

/// Decodes text lines into rows of a schema.
pub struct LineDecoder {
    format: TextFormat,
    schema: SchemaRef,
    /// Where the lines come from, for messages.
    origin: String,
    skipped: Option<Counter>,
}

impl LineDecoder {
    /// A decoder of lines in `format` into rows of `schema`; `origin` names the table.
    pub fn new(format: TextFormat, schema: SchemaRef, origin: String) -> Self {
        LineDecoder {
            format,
            schema,
            origin,
            skipped: None,
        }
    }

    fn decode_text(
        &self,
        text: &str,
        rows: usize,
    ) -> std::result::Result<Option<RecordBatch>, arrow::error::ArrowError> {
        match &self.format {
            TextFormat::Csv(o) => {
                let mut builder = arrow::csv::ReaderBuilder::new(Arc::clone(&self.schema))
                    .with_header(false)
                    .with_delimiter(o.delimiter)
                    .with_quote(o.quote)
                    .with_batch_size(rows.max(1));
                if let Some(null) = &o.null_literal {
                    let pattern = format!("^{}$", regex::escape(null));
                    if let Ok(r) = regex::Regex::new(&pattern) {
                        builder = builder.with_null_regex(r);
                    }
                }
                if o.allow_comments {
                    builder = builder.with_comment(b'#');
                }
                let mut reader = builder.build(Cursor::new(text.as_bytes()))?;
                reader.next().transpose()
            }
            TextFormat::Json { .. } | TextFormat::DebeziumJson { .. } => {
                let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(&self.schema))
                    .with_batch_size(rows.max(1))
                    .build_decoder()?;
                decoder.decode(text.as_bytes())?;
                decoder.flush()
            }
        }
    }

    /// The option that makes this format skip malformed lines.
    fn ignore_option(&self) -> &'static str {
        match &self.format {
            TextFormat::Csv(_) => "csv.ignore-parse-errors",
            TextFormat::Json { .. } => "json.ignore-parse-errors",
            TextFormat::DebeziumJson { .. } => "debezium-json.ignore-parse-errors",
        }
    }

    fn ignore_errors(&self) -> bool {
        match &self.format {
            TextFormat::Csv(o) => o.ignore_parse_errors,
            TextFormat::Json {
                ignore_parse_errors,
            } => *ignore_parse_errors,
            TextFormat::DebeziumJson {
                ignore_parse_errors,
            } => *ignore_parse_errors,
        }
    }

    /// Decodes lines; a malformed line fails the batch or is skipped by the policy.
    ///
    /// # Errors
    /// A malformed line when the policy is to fail, naming it.
    pub fn decode_lines(&self, lines: &[String]) -> Result<Option<RecordBatch>> {
        self.decode_lines_kept(lines).map(|(b, _)| b)
    }

    /// [`Self::decode_lines`], also giving the index in `lines` of each decoded row
    /// (blank lines and skipped malformed ones have none), so that a connector can add
    /// per-record metadata to the rows.
    ///
    /// # Errors
    /// A malformed line when the policy is to fail, naming it.
    pub fn decode_lines_kept(&self, lines: &[String]) -> Result<(Option<RecordBatch>, Vec<u32>)> {
        let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        let mut kept = Vec::with_capacity(lines.len());
        for (i, l) in lines.iter().enumerate() {
            if l.trim().is_empty() {
                continue;
            }
            text.push_str(l);
            text.push('\n');
            kept.push(i as u32);
        }
        if text.is_empty() {
            return Ok((None, Vec::new()));
        }
        if let Ok(b) = self.decode_text(&text, lines.len()) {
            // Comment lines decode to nothing: then rows and lines no longer pair up.
            if b.as_ref().map_or(0, RecordBatch::num_rows) == kept.len() {
                return Ok((b, kept));
            }
        }
        // Find the bad lines one by one: skip them or name the first.
        let mut good = Vec::new();
        let mut good_rows = Vec::new();
        for i in kept {
            let l = &lines[i as usize];
            let one = format!("{l}\n");
            match self.decode_text(&one, 1) {
                Ok(Some(b)) => {
                    good_rows.extend(std::iter::repeat_n(i, b.num_rows()));
                    good.push(b);
                }
                Ok(None) => {}
                Err(e) if self.ignore_errors() => {
                    tracing::debug!(origin = %self.origin, error = %e, "skipping malformed line");
                    if let Some(c) = &self.skipped {
                        c.inc();
                    }
                }
                Err(e) => {
                    return Err(Error::Execution(format!(
                        "malformed line in {}: {e}: `{}` (set '{}' = 'true' to skip such \
                         lines)",
                        self.origin,
                        truncate(l),
                        self.ignore_option()
                    )))
                }
            }
        }
        if good.is_empty() {
            return Ok((None, Vec::new()));
        }
        Ok((
            Some(arrow::compute::concat_batches(&self.schema, &good)?),
            good_rows,
        ))
    }

    /// Debezium JSON envelopes into rows with their kinds of change.
    ///
    /// # Errors
    /// A malformed envelope when the policy is to fail, naming it.
    pub fn decode_changelog(&self, lines: &[String]) -> Result<Option<SqlBatch>> {
        let mut rows: Vec<String> = Vec::with_capacity(lines.len());
        let mut kinds = Vec::with_capacity(lines.len());
        for line in lines.iter().filter(|l| !l.trim().is_empty()) {
            match debezium_rows(line) {
                Ok(changes) => {
                    for (kind, row) in changes {
                        rows.push(row);
                        kinds.push(kind);
                    }
                }
                Err(e) if self.ignore_errors() => {
                    tracing::debug!(origin = %self.origin, error = %e, "skipping a malformed change");
                    self.skip_record();
                }
                Err(e) => {
                    return Err(Error::Execution(format!(
                        "malformed Debezium change in {}: {e}: `{}` (set \
                         'debezium-json.ignore-parse-errors' = 'true' to skip such lines)",
                        self.origin,
                        truncate(line)
                    )))
                }
            }
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let (batch, kept) = self.decode_lines_kept(&rows)?;
        let Some(batch) = batch else {
            return Ok(None);
        };
        let kinds = kept.iter().map(|&i| kinds[i as usize]).collect();
        Ok(Some(SqlBatch::with_kinds(batch, kinds)))
    }

    /// Counts a record skipped by the policy (malformed before it became a line).
    pub fn skip_record(&self) {
        if let Some(c) = &self.skipped {
            c.inc();
        }
    }

    /// Whether the policy is to skip malformed records.
    pub fn skips_malformed(&self) -> bool {
        self.ignore_errors()
    }

    /// Where the lines come from (for messages).
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// The changes of one Debezium envelope, as (kind, row as a JSON object).
fn debezium_rows(line: &str) -> std::result::Result<Vec<(RowKind, String)>, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let envelope = match v.get("payload") {
        Some(p) if p.get("op").is_some() => p,
        _ => &v,
    };
    let side = |name: &str| -> std::result::Result<String, String> {
        match envelope.get(name) {
            Some(row @ serde_json::Value::Object(_)) => Ok(row.to_string()),
            _ if name == "before" => Err(
                "no 'before' row in an update or delete (for Debezium's Postgres connector, set \
                 the table's REPLICA IDENTITY to FULL)"
                    .into(),
            ),
            _ => Err(format!("no '{name}' row")),
        }
    };
    match envelope.get("op").and_then(serde_json::Value::as_str) {
        Some("c" | "r") => Ok(vec![(RowKind::Insert, side("after")?)]),
        Some("u") => Ok(vec![
            (RowKind::UpdateBefore, side("before")?),
            (RowKind::UpdateAfter, side("after")?),
        ]),
        Some("d") => Ok(vec![(RowKind::Delete, side("before")?)]),
        Some(other) => Err(format!("unknown op '{other}'")),
        None => Err("no 'op'".into()),
    }
}

fn truncate(line: &str) -> String {
    if line.len() <= 200 {
        return line.to_string();
    }
    let mut end = 200;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &line[..end])
}

impl RecordDecoder<String> for LineDecoder {
    fn open(&mut self, ctx: &OperatorContext) -> RuntimeResult<()> {
        self.skipped = Some(ctx.counter("malformed_records_skipped"));
        Ok(())
    }

    fn decode(&mut self, records: Vec<String>) -> RuntimeResult<Option<SqlBatch>> {
        if self.format.is_changelog() {
            return self.decode_changelog(&records).map_err(Error::into_runtime);
        }
        self.decode_lines(&records)
            .map(|b| b.map(SqlBatch::new))
            .map_err(Error::into_runtime)
    }
}

/// How rows become text lines.
#[derive(Debug, Clone)]
pub enum RowWriter {
    /// Flink's print form: `+I[1, abc, null]`, prefixed with `identifier:` when set.
    Print {
        /// The `print-identifier` option.
        identifier: Option<String>,
    },
    /// CSV lines.
    Csv(CsvOptions),
    /// JSON objects, one per line.
    Json,
    /// Empty lines, one per row: for sinks that only count (`blackhole`).
    Nothing,
    /// Debezium JSON envelopes: `{"before":null,"after":{...},"op":"c"}` for `+I`/`+U`,
    /// `{"before":{...},"after":null,"op":"d"}` for `-U`/`-D` (Flink's encoding).
    DebeziumJson,
}

impl RowWriter {
    /// Whether the writer can express updates and deletions.
    pub fn accepts_changelog(&self) -> bool {
        matches!(
            self,
            RowWriter::Print { .. } | RowWriter::Nothing | RowWriter::DebeziumJson
        )
    }
}

impl RowWriter {
    /// The lines of `batch`.
    ///
    /// # Errors
    /// When a value cannot be formatted.
    pub fn lines(&self, batch: &SqlBatch) -> Result<Vec<String>> {
        let data = batch.data();
        match self {
            RowWriter::Print { identifier } => {
                let options = FormatOptions::default()
                    .with_null("null")
                    .with_timestamp_format(Some(SQL_TIMESTAMP_FORMAT))
                    .with_timestamp_tz_format(Some(SQL_TIMESTAMP_FORMAT));
                let formatters = data
                    .columns()
                    .iter()
                    .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let prefix = identifier
                    .as_ref()
                    .map(|i| format!("{i}:"))
                    .unwrap_or_default();
                let mut lines = Vec::with_capacity(data.num_rows());
                for row in 0..data.num_rows() {
                    let mut line = format!("{prefix}{}[", batch.kind(row).short());
                    for (i, f) in formatters.iter().enumerate() {
                        if i > 0 {
                            line.push_str(", ");
                        }
                        line.push_str(&f.value(row).to_string());
                    }
                    line.push(']');
                    lines.push(line);
                }
                Ok(lines)
            }
            RowWriter::Csv(o) => {
                let mut buf = Vec::new();
                {
                    let mut writer = arrow::csv::WriterBuilder::new()
                        .with_header(false)
                        .with_delimiter(o.delimiter)
                        .with_quote(o.quote)
                        .with_timestamp_format(SQL_TIMESTAMP_FORMAT.to_string())
                        .with_timestamp_tz_format(SQL_TIMESTAMP_FORMAT.to_string())
                        .with_null(o.null_literal.clone().unwrap_or_default())
                        .build(&mut buf);
                    writer.write(data)?;
                }
                Ok(text_lines(buf))
            }
            RowWriter::Nothing => Ok(vec![String::new(); data.num_rows()]),
            RowWriter::DebeziumJson => {
                let rows = RowWriter::Json.lines(&SqlBatch::new(data.clone()))?;
                Ok(rows
                    .into_iter()
                    .enumerate()
                    .map(|(i, row)| {
                        if batch.kind(i).is_addition() {
                            format!(r#"{{"before":null,"after":{row},"op":"c"}}"#)
                        } else {
                            format!(r#"{{"before":{row},"after":null,"op":"d"}}"#)
                        }
                    })
                    .collect())
            }
            RowWriter::Json => {
                let mut buf = Vec::new();
                {
                    // Flink's `json.timestamp-format.standard` = 'SQL', its default.
                    let mut writer = arrow::json::WriterBuilder::new()
                        .with_timestamp_format(SQL_TIMESTAMP_FORMAT.to_string())
                        .with_timestamp_tz_format(SQL_TIMESTAMP_FORMAT.to_string())
                        .build::<_, arrow::json::writer::LineDelimited>(&mut buf);
                    writer.write(data)?;
                    writer.finish()?;
                }
                Ok(text_lines(buf))
            }
        }
    }
}

fn text_lines(buf: Vec<u8>) -> Vec<String> {
    String::from_utf8_lossy(&buf)
        .lines()
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]))
    }

    #[test]
    fn csv_lines_decode_and_write_back() {
        let d = LineDecoder::new(TextFormat::Csv(CsvOptions::default()), schema(), "t".into());
        let lines = vec![
            "1,a,2024-01-01 00:00:01.500".to_string(),
            "2,,2024-01-01 00:00:02".into(),
        ];
        let b = d.decode_lines(&lines).unwrap().unwrap();
        assert_eq!(b.num_rows(), 2);
        let out = RowWriter::Csv(CsvOptions::default())
            .lines(&SqlBatch::new(b.clone()))
            .unwrap();
        assert_eq!(
            out,
            vec!["1,a,2024-01-01 00:00:01.500", "2,,2024-01-01 00:00:02.000"]
        );
        let printed = RowWriter::Print { identifier: None }
            .lines(&SqlBatch::new(b))
            .unwrap();
        assert_eq!(printed[1], "+I[2, null, 2024-01-01 00:00:02.000]");
    }

    #[test]
    fn malformed_lines_fail_with_the_line_or_are_skipped() {
        let lines = vec!["1,a,2024-01-01 00:00:01".to_string(), "x,b,nope".into()];
        let d = LineDecoder::new(
            TextFormat::Csv(CsvOptions::default()),
            schema(),
            "table `t`".into(),
        );
        let e = d.decode_lines(&lines).unwrap_err().to_string();
        assert!(e.contains("x,b,nope") && e.contains("table `t`"), "{e}");
        let skip = CsvOptions {
            ignore_parse_errors: true,
            ..CsvOptions::default()
        };
        let d = LineDecoder::new(TextFormat::Csv(skip), schema(), "t".into());
        assert_eq!(d.decode_lines(&lines).unwrap().unwrap().num_rows(), 1);
    }

    #[test]
    fn null_literal_and_json() {
        let o = CsvOptions {
            null_literal: Some("NULL".into()),
            ..CsvOptions::default()
        };
        let d = LineDecoder::new(TextFormat::Csv(o), schema(), "t".into());
        let b = d
            .decode_lines(&["NULL,NULL,NULL".to_string()])
            .unwrap()
            .unwrap();
        assert_eq!(b.column(0).null_count(), 1);
        let d = LineDecoder::new(
            TextFormat::Json {
                ignore_parse_errors: false,
            },
            schema(),
            "t".into(),
        );
        let b = d
            .decode_lines(&[r#"{"id": 3, "name": "c", "ts": "2024-01-01 00:00:00"}"#.to_string()])
            .unwrap()
            .unwrap();
        assert_eq!(b.num_rows(), 1);
    }
}
