//! Parsing SQL scripts in the Flink dialect.
//!
//! A script is tokenized once (so every error carries its line and column in the script)
//! and split at top-level semicolons. Statements DataFusion's parser (`sqlparser`) reads
//! as they are (`CREATE VIEW`, `INSERT INTO`, queries) go to it; Flink's streaming DDL
//! (`CREATE TABLE` with computed columns, `WATERMARK FOR` and `WITH` options), `SET`,
//! `CREATE FUNCTION`, `EXPLAIN` and statement sets are read here ([`ddl`]). Window table
//! functions (`TABLE(TUMBLE(TABLE t, DESCRIPTOR(c), ...))`) are rewritten to table
//! function calls DataFusion can plan ([`tvf`]), and lookup tables (`JOIN t FOR
//! SYSTEM_TIME AS OF s.proc_time`) too ([`lookup`]).

pub mod ddl;
pub mod lookup;
pub mod tvf;

use datafusion_sql::sqlparser::ast::{Query, SetExpr, Statement as AstStatement, TableObject};
use datafusion_sql::sqlparser::dialect::GenericDialect;
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Word};

pub use ddl::{ColumnDef, ColumnKind, TableDef, WatermarkDef};

use crate::error::{Error, Location, Result};

/// One statement of a script.
#[derive(Debug, Clone)]
pub enum Statement {
    /// `SET 'key' = 'value'`.
    Set {
        /// The configuration key (Flink's names).
        key: String,
        /// Its value.
        value: String,
    },
    /// `RESET` or `RESET 'key'`.
    Reset {
        /// The key, or all when `None`.
        key: Option<String>,
    },
    /// `CREATE TABLE`.
    CreateTable(Box<TableDef>),
    /// `CREATE [TEMPORARY] VIEW name [(columns)] AS query`.
    CreateView {
        /// The view's name.
        name: String,
        /// Column names given after the name, if any.
        columns: Vec<String>,
        /// The query.
        query: Box<Query>,
    },
    /// `CREATE [TEMPORARY [SYSTEM]] FUNCTION name AS 'identifier'`.
    CreateFunction {
        /// The name queries call it by.
        name: String,
        /// The identifier it was registered under from Rust.
        identifier: String,
    },
    /// `INSERT INTO table [(columns)] query`.
    Insert {
        /// The sink table.
        table: String,
        /// Target columns, when given.
        columns: Vec<String>,
        /// The query.
        query: Box<Query>,
    },
    /// A query on its own: its rows are printed.
    Query(Box<Query>),
    /// `EXPLAIN [PLAN FOR] statement`.
    Explain(Box<LocatedStatement>),
    /// `BEGIN STATEMENT SET` or `EXECUTE STATEMENT SET BEGIN`: the INSERTs that follow
    /// run as one job (as every INSERT of a script does).
    BeginStatementSet,
    /// `END` of a statement set.
    End,
}

/// A statement with where it starts in the script.
#[derive(Debug, Clone)]
pub struct LocatedStatement {
    /// The statement.
    pub statement: Statement,
    /// Where its first token is.
    pub location: Location,
}

/// Parses a whole script into statements.
///
/// # Errors
/// [`Error::Parse`] at the first statement that does not parse, with its line and column.
pub fn parse_script(sql: &str) -> Result<Vec<LocatedStatement>> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::Parse {
            location: Location {
                line: e.location.line,
                column: e.location.column,
            },
            message: e.message,
        })?;
    let mut statements = Vec::new();
    for tokens in split_statements(tokens) {
        statements.push(parse_statement(tokens)?);
    }
    Ok(statements)
}

fn is_blank(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

/// The tokens of each statement (without the semicolon), skipping empty ones.
fn split_statements(tokens: Vec<TokenWithSpan>) -> Vec<Vec<TokenWithSpan>> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        match t.token {
            Token::SemiColon => {
                if current.iter().any(|t: &TokenWithSpan| !is_blank(&t.token)) {
                    out.push(std::mem::take(&mut current));
                } else {
                    current.clear();
                }
            }
            Token::EOF => {}
            _ => current.push(t),
        }
    }
    if current.iter().any(|t| !is_blank(&t.token)) {
        out.push(current);
    }
    out
}

fn location_of(tokens: &[TokenWithSpan]) -> Location {
    tokens
        .iter()
        .find(|t| !is_blank(&t.token))
        .map(|t| Location {
            line: t.span.start.line,
            column: t.span.start.column,
        })
        .unwrap_or_default()
}

/// A parser error as [`Error::Parse`], at the position the message names (sqlparser
/// appends "at Line: l, Column: c") or else at `fallback`.
pub(crate) fn parse_error(e: ParserError, fallback: Location) -> Error {
    let message = match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement nested too deeply".to_string(),
    };
    if let Some(pos) = message.rfind(" at Line: ") {
        let tail = &message[pos + " at Line: ".len()..];
        let mut parts = tail.split(", Column: ");
        let line = parts.next().and_then(|l| l.trim().parse().ok());
        let column = parts.next().and_then(|c| c.trim().parse().ok());
        if let (Some(line), Some(column)) = (line, column) {
            return Error::Parse {
                location: Location { line, column },
                message: message[..pos].to_string(),
            };
        }
    }
    Error::Parse {
        location: fallback,
        message,
    }
}

fn words(tokens: &[TokenWithSpan], n: usize) -> Vec<Keyword> {
    tokens
        .iter()
        .filter(|t| !is_blank(&t.token))
        .take(n)
        .map(|t| match &t.token {
            Token::Word(Word { keyword, .. }) => *keyword,
            _ => Keyword::NoKeyword,
        })
        .collect()
}

fn new_parser(tokens: Vec<TokenWithSpan>) -> Parser<'static> {
    static DIALECT: GenericDialect = GenericDialect {};
    Parser::new(&DIALECT).with_tokens_with_locations(tokens)
}

fn parse_statement(tokens: Vec<TokenWithSpan>) -> Result<LocatedStatement> {
    let location = location_of(&tokens);
    let lead = words(&tokens, 4);
    let first = lead.first().copied().unwrap_or(Keyword::NoKeyword);
    let statement = match first {
        Keyword::SET => ddl::parse_set(new_parser(tokens)).map_err(|e| parse_error(e, location))?,
        Keyword::RESET => {
            ddl::parse_reset(new_parser(tokens)).map_err(|e| parse_error(e, location))?
        }
        Keyword::EXPLAIN => {
            let mut rest: Vec<TokenWithSpan> = tokens
                .into_iter()
                .skip_while(|t| is_blank(&t.token))
                .skip(1)
                .collect();
            let lead = words(&rest, 2);
            if lead == [Keyword::PLAN, Keyword::FOR] {
                rest = rest
                    .into_iter()
                    .skip_while(|t| is_blank(&t.token))
                    .skip(1)
                    .skip_while(|t| is_blank(&t.token))
                    .skip(1)
                    .collect();
            }
            Statement::Explain(Box::new(parse_statement(rest)?))
        }
        Keyword::BEGIN if lead.get(1) == Some(&Keyword::STATEMENT) => Statement::BeginStatementSet,
        Keyword::EXECUTE if lead.get(1) == Some(&Keyword::STATEMENT) => {
            Statement::BeginStatementSet
        }
        Keyword::END => Statement::End,
        Keyword::CREATE => {
            let kind = lead
                .iter()
                .skip(1)
                .find(|k| !matches!(k, Keyword::TEMPORARY | Keyword::SYSTEM | Keyword::OR))
                .copied();
            match kind {
                Some(Keyword::TABLE) => Statement::CreateTable(Box::new(
                    ddl::parse_create_table(new_parser(split_shift_right(tokens)), location)
                        .map_err(|e| parse_error(e, location))?,
                )),
                Some(Keyword::FUNCTION) => ddl::parse_create_function(new_parser(tokens))
                    .map_err(|e| parse_error(e, location))?,
                _ => parse_with_sqlparser(lookup::rewrite(tvf::rewrite(tokens)), location)?,
            }
        }
        _ => parse_with_sqlparser(lookup::rewrite(tvf::rewrite(tokens)), location)?,
    };
    Ok(LocatedStatement {
        statement,
        location,
    })
}

/// `>>` closing two nested types (`ARRAY<ROW<a INT>>`) as two `>` tokens.
fn split_shift_right(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.token == Token::ShiftRight {
            out.push(TokenWithSpan::new(Token::Gt, t.span));
            out.push(TokenWithSpan::new(Token::Gt, t.span));
        } else {
            out.push(t);
        }
    }
    out
}

fn object_name(name: &datafusion_sql::sqlparser::ast::ObjectName) -> String {
    name.0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.clone()))
        .collect::<Vec<_>>()
        .join(".")
}

fn parse_with_sqlparser(tokens: Vec<TokenWithSpan>, location: Location) -> Result<Statement> {
    let mut parser = new_parser(tokens);
    let ast = parser
        .parse_statement()
        .map_err(|e| parse_error(e, location))?;
    if parser.peek_token().token != Token::EOF {
        let t = parser.peek_token();
        return Err(Error::Parse {
            location: Location {
                line: t.span.start.line,
                column: t.span.start.column,
            },
            message: format!("unexpected `{}` after the end of the statement", t.token),
        });
    }
    match ast {
        AstStatement::Query(query) => Ok(Statement::Query(query)),
        AstStatement::CreateView(view) => Ok(Statement::CreateView {
            name: object_name(&view.name),
            columns: view.columns.iter().map(|c| c.name.value.clone()).collect(),
            query: view.query,
        }),
        AstStatement::Insert(insert) => {
            let table = match &insert.table {
                TableObject::TableName(name) => object_name(name),
                other => {
                    return Err(Error::Unsupported {
                        location: Some(location),
                        message: format!("INSERT INTO {other}: insert into a table name"),
                    })
                }
            };
            let Some(query) = insert.source else {
                return Err(Error::Unsupported {
                    location: Some(location),
                    message: "INSERT without a query".into(),
                });
            };
            if insert.overwrite {
                return Err(Error::Unsupported {
                    location: Some(location),
                    message: "INSERT OVERWRITE: streaming sinks append; use INSERT INTO".into(),
                });
            }
            Ok(Statement::Insert {
                table,
                columns: insert.columns.iter().map(ToString::to_string).collect(),
                query,
            })
        }
        other => Err(Error::Unsupported {
            location: Some(location),
            message: format!(
                "statement `{}`: Sluice runs SET, CREATE TABLE/VIEW/FUNCTION, INSERT INTO, \
                 queries and EXPLAIN",
                first_words(&other.to_string())
            ),
        }),
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// Whether the query is a plain `SELECT`/`UNION`/`VALUES` (for messages).
pub fn is_select(query: &Query) -> bool {
    matches!(
        *query.body,
        SetExpr::Select(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_) | SetExpr::Query(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_statements_and_locates_them() {
        let script = "SET 'parallelism.default' = '2';\n\n  -- comment\nSELECT 1;\n;\nINSERT INTO s SELECT a FROM t";
        let statements = parse_script(script).unwrap();
        assert_eq!(statements.len(), 3);
        assert!(
            matches!(&statements[0].statement, Statement::Set { key, value }
            if key == "parallelism.default" && value == "2")
        );
        assert_eq!(statements[1].location, Location { line: 4, column: 1 });
        assert!(
            matches!(&statements[2].statement, Statement::Insert { table, .. } if table == "s")
        );
    }

    #[test]
    fn a_parse_error_names_line_and_column_in_the_script() {
        let err = parse_script("SELECT 1;\nSELECT a FROM t WHERE x = )").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2"), "{text}");
        assert!(text.contains("column"), "{text}");
    }

    #[test]
    fn explain_wraps_the_statement() {
        let s = parse_script("EXPLAIN PLAN FOR SELECT 1").unwrap();
        assert!(matches!(&s[0].statement, Statement::Explain(inner)
            if matches!(inner.statement, Statement::Query(_))));
    }
}
