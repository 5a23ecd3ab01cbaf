//! Flink's DDL and configuration statements: `CREATE TABLE` with physical, computed and
//! metadata columns, `WATERMARK FOR`, `PRIMARY KEY ... NOT ENFORCED` and `WITH` options;
//! Flink's data types mapped to Arrow types; `SET`, `RESET`, `CREATE FUNCTION`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use datafusion_sql::sqlparser::ast::Expr;
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Token, Word};

use super::Statement;
use crate::error::Location;

/// A column of a `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct ColumnDef {
    /// The column's name (case-sensitive, as in Flink).
    pub name: String,
    /// Its type (for computed columns: unknown until planned, `Null`).
    pub data_type: DataType,
    /// Whether it may be null (`NOT NULL` absent).
    pub nullable: bool,
    /// Where its values come from.
    pub kind: ColumnKind,
}

/// Where a column's values come from.
#[derive(Debug, Clone)]
pub enum ColumnKind {
    /// Read from the source.
    Physical,
    /// `name AS expression` over physical columns.
    Computed(Box<Expr>),
    /// `name TYPE METADATA [FROM 'key'] [VIRTUAL]`: connector metadata such as a Kafka
    /// record's timestamp.
    Metadata {
        /// The metadata key (the column name when absent).
        key: String,
        /// Whether the column is read-only (not written by sinks).
        is_virtual: bool,
    },
}

/// `WATERMARK FOR column AS expression`.
#[derive(Debug, Clone)]
pub struct WatermarkDef {
    /// The event-time column (the table's time attribute).
    pub column: String,
    /// The watermark of a row: usually `column - INTERVAL 'n' SECOND`.
    pub expr: Expr,
}

/// A parsed `CREATE TABLE`.
#[derive(Debug, Clone)]
pub struct TableDef {
    /// The table's name.
    pub name: String,
    /// Columns in declaration order.
    pub columns: Vec<ColumnDef>,
    /// The watermark declaration.
    pub watermark: Option<WatermarkDef>,
    /// `PRIMARY KEY (...) NOT ENFORCED` columns.
    pub primary_key: Vec<String>,
    /// `PARTITIONED BY (...)` columns.
    pub partition_keys: Vec<String>,
    /// The `WITH (...)` options, keys as written.
    pub options: BTreeMap<String, String>,
    /// `IF NOT EXISTS` was given.
    pub if_not_exists: bool,
    /// Where the statement starts.
    pub location: Location,
}

impl TableDef {
    /// The physical columns (read from or written to the connector).
    pub fn physical_columns(&self) -> impl Iterator<Item = &ColumnDef> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Physical))
    }
}

fn unexpected<T>(parser: &Parser<'_>, what: &str) -> Result<T, ParserError> {
    let t = parser.peek_token();
    Err(ParserError::ParserError(format!(
        "Expected: {what}, found: {} at Line: {}, Column: {}",
        t.token, t.span.start.line, t.span.start.column
    )))
}

fn string_literal(parser: &mut Parser<'_>, what: &str) -> Result<String, ParserError> {
    match parser.peek_token().token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
            parser.next_token();
            Ok(s)
        }
        _ => unexpected(parser, what),
    }
}

/// A key of `SET` / `WITH`: a quoted string, or dotted words.
fn option_key(parser: &mut Parser<'_>) -> Result<String, ParserError> {
    match parser.peek_token().token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => {
            parser.next_token();
            Ok(s)
        }
        Token::Word(_) => {
            let mut key = parser.parse_identifier()?.value;
            while parser.consume_token(&Token::Period) || parser.consume_token(&Token::Minus) {
                key.push('.');
                key.push_str(&parser.parse_identifier()?.value);
            }
            Ok(key)
        }
        _ => unexpected(parser, "an option key such as 'parallelism.default'"),
    }
}

/// A value of `SET`: a quoted string or a bare word or number.
fn option_value(parser: &mut Parser<'_>) -> Result<String, ParserError> {
    let t = parser.next_token();
    match t.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        Token::Word(w) => Ok(w.value),
        _ => {
            parser.prev_token();
            unexpected(parser, "a quoted option value")
        }
    }
}

/// `SET 'key' = 'value'`.
pub(crate) fn parse_set(mut parser: Parser<'_>) -> Result<Statement, ParserError> {
    parser.expect_keyword(Keyword::SET)?;
    let key = option_key(&mut parser)?;
    parser.expect_token(&Token::Eq)?;
    let value = option_value(&mut parser)?;
    expect_end(&parser)?;
    Ok(Statement::Set { key, value })
}

/// `RESET ['key']`.
pub(crate) fn parse_reset(mut parser: Parser<'_>) -> Result<Statement, ParserError> {
    parser.expect_keyword(Keyword::RESET)?;
    let key = if parser.peek_token().token == Token::EOF {
        None
    } else {
        Some(option_key(&mut parser)?)
    };
    expect_end(&parser)?;
    Ok(Statement::Reset { key })
}

fn expect_end(parser: &Parser<'_>) -> Result<(), ParserError> {
    if parser.peek_token().token == Token::EOF {
        Ok(())
    } else {
        unexpected(parser, "the end of the statement")
    }
}

/// `CREATE [TEMPORARY [SYSTEM]] FUNCTION [IF NOT EXISTS] name AS 'identifier' [LANGUAGE ..]`.
pub(crate) fn parse_create_function(mut parser: Parser<'_>) -> Result<Statement, ParserError> {
    parser.expect_keyword(Keyword::CREATE)?;
    let _ = parser.parse_keyword(Keyword::TEMPORARY);
    let _ = parser.parse_keyword(Keyword::SYSTEM);
    parser.expect_keyword(Keyword::FUNCTION)?;
    let _ = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?.to_string();
    parser.expect_keyword(Keyword::AS)?;
    let identifier = string_literal(&mut parser, "the function's identifier in quotes")?;
    if parser.parse_keyword(Keyword::LANGUAGE) {
        parser.next_token();
    }
    expect_end(&parser)?;
    Ok(Statement::CreateFunction { name, identifier })
}

/// `CREATE TABLE`.
pub(crate) fn parse_create_table(
    mut parser: Parser<'_>,
    location: Location,
) -> Result<TableDef, ParserError> {
    parser.expect_keyword(Keyword::CREATE)?;
    let _ = parser.parse_keyword(Keyword::TEMPORARY);
    parser.expect_keyword(Keyword::TABLE)?;
    let if_not_exists = parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
    let name = parser.parse_object_name(false)?.to_string();
    let mut table = TableDef {
        name,
        columns: Vec::new(),
        watermark: None,
        primary_key: Vec::new(),
        partition_keys: Vec::new(),
        options: BTreeMap::new(),
        if_not_exists,
        location,
    };
    parser.expect_token(&Token::LParen)?;
    loop {
        parse_table_element(&mut parser, &mut table)?;
        if parser.consume_token(&Token::Comma) {
            continue;
        }
        parser.expect_token(&Token::RParen)?;
        break;
    }
    if parser.parse_keyword(Keyword::COMMENT) {
        string_literal(&mut parser, "a comment string")?;
    }
    if parser.parse_keywords(&[Keyword::PARTITIONED, Keyword::BY]) {
        parser.expect_token(&Token::LParen)?;
        loop {
            table.partition_keys.push(parser.parse_identifier()?.value);
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    }
    if parser.parse_keyword(Keyword::WITH) {
        parser.expect_token(&Token::LParen)?;
        if !parser.consume_token(&Token::RParen) {
            loop {
                let key = option_key(&mut parser)?;
                parser.expect_token(&Token::Eq)?;
                let value = option_value(&mut parser)?;
                table.options.insert(key, value);
                if parser.consume_token(&Token::Comma) {
                    continue;
                }
                parser.expect_token(&Token::RParen)?;
                break;
            }
        }
    }
    expect_end(&parser)?;
    Ok(table)
}

fn parse_table_element(parser: &mut Parser<'_>, table: &mut TableDef) -> Result<(), ParserError> {
    if parse_word(parser, "WATERMARK") {
        parser.expect_keyword(Keyword::FOR)?;
        let column = parser.parse_identifier()?.value;
        parser.expect_keyword(Keyword::AS)?;
        let expr = parser.parse_expr()?;
        table.watermark = Some(WatermarkDef { column, expr });
        return Ok(());
    }
    if parser.parse_keyword(Keyword::CONSTRAINT) {
        parser.parse_identifier()?;
    }
    if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
        table.primary_key = parse_column_list(parser)?;
        let _ = parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
        return Ok(());
    }
    let name = parser.parse_identifier()?.value;
    if parser.parse_keyword(Keyword::AS) {
        let expr = parser.parse_expr()?;
        skip_comment(parser)?;
        table.columns.push(ColumnDef {
            name,
            data_type: DataType::Null,
            nullable: true,
            kind: ColumnKind::Computed(Box::new(expr)),
        });
        return Ok(());
    }
    let data_type = parse_flink_type(parser)?;
    let mut column = ColumnDef {
        name,
        data_type,
        nullable: true,
        kind: ColumnKind::Physical,
    };
    loop {
        if parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]) {
            column.nullable = false;
        } else if parser.parse_keyword(Keyword::NULL) {
            column.nullable = true;
        } else if parser.parse_keyword(Keyword::METADATA) {
            let key = if parser.parse_keyword(Keyword::FROM) {
                string_literal(parser, "a metadata key in quotes")?
            } else {
                column.name.clone()
            };
            let is_virtual = parser.parse_keyword(Keyword::VIRTUAL);
            column.kind = ColumnKind::Metadata { key, is_virtual };
        } else if parser.parse_keywords(&[Keyword::PRIMARY, Keyword::KEY]) {
            let _ = parser.parse_keywords(&[Keyword::NOT, Keyword::ENFORCED]);
            table.primary_key = vec![column.name.clone()];
        } else if parser.parse_keyword(Keyword::COMMENT) {
            string_literal(parser, "a comment string")?;
        } else {
            break;
        }
    }
    table.columns.push(column);
    Ok(())
}

/// Consumes the next token when it is the word `word` (for words sqlparser has no
/// keyword for).
fn parse_word(parser: &mut Parser<'_>, word: &str) -> bool {
    let is =
        matches!(&parser.peek_token().token, Token::Word(w) if w.value.eq_ignore_ascii_case(word));
    if is {
        parser.next_token();
    }
    is
}

fn skip_comment(parser: &mut Parser<'_>) -> Result<(), ParserError> {
    if parser.parse_keyword(Keyword::COMMENT) {
        string_literal(parser, "a comment string")?;
    }
    Ok(())
}

fn parse_column_list(parser: &mut Parser<'_>) -> Result<Vec<String>, ParserError> {
    parser.expect_token(&Token::LParen)?;
    let mut columns = Vec::new();
    loop {
        columns.push(parser.parse_identifier()?.value);
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    Ok(columns)
}

fn type_params(parser: &mut Parser<'_>) -> Result<Vec<u64>, ParserError> {
    let mut params = Vec::new();
    if parser.consume_token(&Token::LParen) {
        loop {
            let t = parser.next_token();
            match t.token {
                Token::Number(n, _) => params.push(n.parse::<u64>().map_err(|_| {
                    ParserError::ParserError(format!(
                        "type parameter `{n}` is not a whole number at Line: {}, Column: {}",
                        t.span.start.line, t.span.start.column
                    ))
                })?),
                _ => {
                    parser.prev_token();
                    return unexpected(parser, "a number");
                }
            }
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    }
    Ok(params)
}

fn time_unit(precision: u64) -> TimeUnit {
    match precision {
        0 => TimeUnit::Second,
        1..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

/// Whether the next tokens say `WITH [LOCAL] TIME ZONE` (consumed) or `WITHOUT TIME ZONE`.
fn parse_time_zone_suffix(parser: &mut Parser<'_>) -> bool {
    if parser.parse_keywords(&[Keyword::WITHOUT, Keyword::TIME, Keyword::ZONE]) {
        return false;
    }
    parser.parse_keywords(&[Keyword::WITH, Keyword::LOCAL, Keyword::TIME, Keyword::ZONE])
        || parser.parse_keywords(&[Keyword::WITH, Keyword::TIME, Keyword::ZONE])
}

/// Reads a Flink SQL data type and maps it to Arrow.
///
/// # Errors
/// An unknown type name, with the types Sluice knows.
pub fn parse_flink_type(parser: &mut Parser<'_>) -> Result<DataType, ParserError> {
    let t = parser.next_token();
    let (line, column) = (t.span.start.line, t.span.start.column);
    let Token::Word(Word { value, .. }) = t.token else {
        parser.prev_token();
        return unexpected(parser, "a data type");
    };
    let name = value.to_ascii_uppercase();
    let ty = match name.as_str() {
        "CHAR" | "VARCHAR" | "STRING" | "TEXT" => {
            type_params(parser)?;
            DataType::Utf8
        }
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "TINYINT" => DataType::Int8,
        "SMALLINT" => DataType::Int16,
        "INT" | "INTEGER" => DataType::Int32,
        "BIGINT" => DataType::Int64,
        "FLOAT" | "REAL" => DataType::Float32,
        "DOUBLE" => {
            let _ = parser.parse_keyword(Keyword::PRECISION);
            DataType::Float64
        }
        "DECIMAL" | "DEC" | "NUMERIC" => {
            let p = type_params(parser)?;
            let precision = p.first().copied().unwrap_or(10).min(38) as u8;
            let scale = p.get(1).copied().unwrap_or(0).min(u64::from(precision)) as i8;
            DataType::Decimal128(precision, scale)
        }
        "DATE" => DataType::Date32,
        "TIME" => {
            type_params(parser)?;
            let _ = parse_time_zone_suffix(parser);
            DataType::Time32(TimeUnit::Millisecond)
        }
        "TIMESTAMP" => {
            let p = type_params(parser)?;
            let unit = time_unit(p.first().copied().unwrap_or(6));
            if parse_time_zone_suffix(parser) {
                DataType::Timestamp(unit, Some(Arc::from("UTC")))
            } else {
                DataType::Timestamp(unit, None)
            }
        }
        "TIMESTAMP_LTZ" => {
            let p = type_params(parser)?;
            DataType::Timestamp(
                time_unit(p.first().copied().unwrap_or(6)),
                Some("UTC".into()),
            )
        }
        "BINARY" | "VARBINARY" | "BYTES" => {
            type_params(parser)?;
            DataType::Binary
        }
        "ARRAY" => {
            parser.expect_token(&Token::Lt)?;
            let element = parse_flink_type(parser)?;
            expect_gt(parser)?;
            DataType::List(Arc::new(Field::new("element", element, true)))
        }
        "MAP" => {
            parser.expect_token(&Token::Lt)?;
            let key = parse_flink_type(parser)?;
            parser.expect_token(&Token::Comma)?;
            let value = parse_flink_type(parser)?;
            expect_gt(parser)?;
            let entries = Field::new(
                "entries",
                DataType::Struct(Fields::from(vec![
                    Field::new("key", key, false),
                    Field::new("value", value, true),
                ])),
                false,
            );
            DataType::Map(Arc::new(entries), false)
        }
        "ROW" => parse_row_type(parser)?,
        other => {
            return Err(ParserError::ParserError(format!(
                "unknown data type `{other}` (Sluice knows STRING, VARCHAR, CHAR, BOOLEAN, \
                 TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL(p, s), DATE, TIME, \
                 TIMESTAMP(p), TIMESTAMP_LTZ(p), BYTES, ARRAY<t>, MAP<k, v>, ROW<...>) \
                 at Line: {line}, Column: {column}"
            )))
        }
    };
    Ok(ty)
}

fn expect_gt(parser: &mut Parser<'_>) -> Result<(), ParserError> {
    parser.expect_token(&Token::Gt).map(|_| ())
}

/// `ROW<name type, ...>` or `ROW(name type, ...)`.
fn parse_row_type(parser: &mut Parser<'_>) -> Result<DataType, ParserError> {
    let angle = if parser.consume_token(&Token::Lt) {
        true
    } else {
        parser.expect_token(&Token::LParen)?;
        false
    };
    let mut fields = Vec::new();
    loop {
        let name = parser.parse_identifier()?.value;
        let ty = parse_flink_type(parser)?;
        let nullable = !parser.parse_keywords(&[Keyword::NOT, Keyword::NULL]);
        if parser.parse_keyword(Keyword::COMMENT) {
            string_literal(parser, "a comment string")?;
        }
        fields.push(Field::new(name, ty, nullable));
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    if angle {
        expect_gt(parser)?;
    } else {
        parser.expect_token(&Token::RParen)?;
    }
    Ok(DataType::Struct(Fields::from(fields)))
}

#[cfg(test)]
mod tests {
    use super::super::{parse_script, Statement};
    use super::*;

    fn table(sql: &str) -> TableDef {
        match parse_script(sql).unwrap().remove(0).statement {
            Statement::CreateTable(t) => *t,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_flink_create_table_with_computed_columns_and_watermark() {
        let t = table(
            "CREATE TABLE bid (\n  auction BIGINT NOT NULL,\n  price DECIMAL(10, 2),\n  \
             ms BIGINT,\n  ts AS CAST(TO_TIMESTAMP_LTZ(ms, 3) AS TIMESTAMP(3)),\n  \
             dateTime TIMESTAMP(3),\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND\n\
             ) WITH ('connector' = 'filesystem', 'path' = '/tmp/x.csv', 'format' = 'csv')",
        );
        assert_eq!(t.name, "bid");
        assert_eq!(t.columns.len(), 5);
        assert_eq!(t.columns[0].data_type, DataType::Int64);
        assert!(!t.columns[0].nullable);
        assert_eq!(t.columns[1].data_type, DataType::Decimal128(10, 2));
        assert!(matches!(t.columns[3].kind, ColumnKind::Computed(_)));
        assert_eq!(
            t.columns[4].data_type,
            DataType::Timestamp(TimeUnit::Millisecond, None)
        );
        assert_eq!(t.watermark.as_ref().unwrap().column, "dateTime");
        assert_eq!(t.options["connector"], "filesystem");
        assert_eq!(t.physical_columns().count(), 4);
    }

    #[test]
    fn parses_nested_row_types_like_the_nexmark_ddl() {
        let t = table(
            "CREATE TABLE datagen (event_type int, \
             person ROW<id BIGINT, name VARCHAR, dateTime TIMESTAMP(3)>, \
             tags ARRAY<ROW<k STRING, v ARRAY<INT>>>, \
             m MAP<STRING, BIGINT>, ltz TIMESTAMP(3) WITH LOCAL TIME ZONE, \
             PRIMARY KEY (event_type) NOT ENFORCED) WITH ('connector' = 'nexmark')",
        );
        let DataType::Struct(fields) = &t.columns[1].data_type else {
            panic!()
        };
        assert_eq!(fields.len(), 3);
        assert!(matches!(t.columns[2].data_type, DataType::List(_)));
        assert!(matches!(t.columns[3].data_type, DataType::Map(_, _)));
        assert_eq!(
            t.columns[4].data_type,
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
        );
        assert_eq!(t.primary_key, vec!["event_type"]);
    }

    #[test]
    fn unknown_types_and_missing_commas_are_located() {
        let e = parse_script("CREATE TABLE t (\n  a FOO\n)")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown data type `FOO`") && e.contains("line 2"),
            "{e}"
        );
        let e = parse_script("CREATE TABLE t (a INT b INT)")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1, column 23"), "{e}");
    }

    #[test]
    fn set_and_create_function() {
        let s = parse_script("SET 'execution.checkpointing.interval' = '10s'; SET x.y = 3; CREATE TEMPORARY FUNCTION f AS 'my_fn'").unwrap();
        assert!(
            matches!(&s[1].statement, Statement::Set { key, value } if key == "x.y" && value == "3")
        );
        assert!(
            matches!(&s[2].statement, Statement::CreateFunction { name, identifier } if name == "f" && identifier == "my_fn")
        );
    }
}
